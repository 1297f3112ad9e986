/*
 * sched_table.c - the scheduler's objects: the hash tables of queues and
 * destinations, creation and freeing, collection of idle queues, the
 * slots by creation id and the /queues views of them.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>
#include <utlist.h>

#include "heap.h"
#include "sched.h"
#include "sched_int.h"

/* --- idle lists --- */

/* --- queues and destinations --- */

struct sched *sched_new(unsigned max_in_flight, unsigned max_queued,
                        int64_t idle_reset_us)
{
	struct sched *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->max_in_flight = max_in_flight ? max_in_flight : 1;
	s->max_queued = max_queued ? max_queued : 1;
	s->idle_reset = idle_reset_us;
	s->ctl_cfg = (struct rate_ctl_cfg){
		.probe_interval = 5000000,
		.idle_reset = idle_reset_us,
		.min_rps = 0.1,
		.max_rps = 10000,
	};
	return s;
}

/*
 * Drops the holes of s->slots once they are a quarter of it: O(n) every
 * n/4 frees, so O(1) per free, and a page never steps over more holes
 * than a quarter of the queues.
 */
static void slots_compact(struct sched *s)
{
	size_t j = 0;

	if (s->n_holes < 64 || s->n_holes * 4 < s->n_slots)
		return;
	for (size_t i = 0; i < s->n_slots; i++) {
		if (!s->slots[i].q)
			continue;
		s->slots[j] = s->slots[i];
		s->slots[j].q->slot = j;
		j++;
	}
	s->n_slots = j;
	s->n_holes = 0;
}

static int slots_push(struct sched *s, struct sched_queue *q)
{
	if (s->n_slots == s->cap_slots) {
		size_t cap = s->cap_slots ? s->cap_slots * 2 : 64;
		struct slot *v = realloc(s->slots, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		s->slots = v;
		s->cap_slots = cap;
	}
	q->id = ++s->next_id;
	q->slot = s->n_slots;
	s->slots[s->n_slots++] = (struct slot){ q->id, q };
	return 0;
}

static void queue_free(struct sched *s, struct sched_queue *q)
{
	s->slots[q->slot].q = NULL;
	s->n_holes++;
	slots_compact(s);

	sched_q_detach(s, q);
	sched_idle_remove(s, q);
	if (q->ctl.mode != RATE_PACED)
		DL_DELETE2(s->moded, q, mprev, mnext);
	HASH_DEL(s->queues, q);
	DL_DELETE2(q->d->queues, q, dprev, dnext);
	q->d->n_queues--;
	s->n_queues--;
	free(q);
}

static void dest_free(struct sched *s, struct sched_dest *d)
{
	sched_d_detach(s, d);
	HASH_DEL(s->dests, d);
	free(d->key);
	free(d);
}

void sched_free(struct sched *s)
{
	struct sched_queue *q, *qt;
	struct sched_dest *d, *dt;

	if (!s)
		return;
	HASH_ITER(hh, s->queues, q, qt) {
		HASH_DEL(s->queues, q);
		free(q);
	}
	HASH_ITER(hh, s->dests, d, dt) {
		HASH_DEL(s->dests, d);
		free(d->key);
		free(d);
	}
	heap_done(&s->timers);
	free(s->slots);
	free(s);
}

struct sched_dest *sched_dest_find(const struct sched *s, const char *key)
{
	struct sched_dest *d;

	HASH_FIND(hh, s->dests, key, strlen(key), d);
	return d;
}

struct sched_dest *sched_dest_get(struct sched *s, const char *key,
                                  const struct sched_dest_limits *lim)
{
	struct sched_dest *d;
	size_t len = strlen(key);

	HASH_FIND(hh, s->dests, key, len, d);
	if (d)
		return d;
	d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	d->key = strdup(key);
	if (!d->key) {
		free(d);
		return NULL;
	}
	d->lim = *lim;
	if (d->lim.weight == 0)
		d->lim.weight = 1;
	if (d->lim.aggregate_burst == 0)
		d->lim.aggregate_burst = 1;
	d->timer.is_dest = true;
	heap_node_init(&d->timer.node);
	HASH_ADD_KEYPTR(hh, s->dests, d->key, len, d);
	return d;
}

/* The hash key of (d, key): zero-padded, so it compares as bytes. */
static void qkey_make(struct qkey *k, struct sched_dest *d, const void *key,
                      size_t key_len)
{
	if (key_len > SCHED_KEY_MAX)
		key_len = SCHED_KEY_MAX;
	memset(k, 0, sizeof(*k));
	k->d = d;
	k->len = key_len;
	memcpy(k->bytes, key, key_len);
}

struct sched_queue *sched_queue_get(struct sched *s, struct sched_dest *d,
                                    const void *key, size_t key_len,
                                    const struct sched_limits *lim)
{
	struct sched_queue *q;
	struct qkey k;

	qkey_make(&k, d, key, key_len);
	HASH_FIND(hh, s->queues, &k, sizeof(k), q);
	if (q)
		return q;
	q = calloc(1, sizeof(*q));
	if (!q)
		return NULL;
	if (slots_push(s, q) < 0) {
		free(q);
		return NULL;
	}
	q->key = k;
	q->d = d;
	q->lim = *lim;
	sched_limits_fix(&q->lim);
	q->quota_req = q->quota_tok = (struct sched_quota){ -1, -1, -1, -1 };
	rate_ctl_init(&q->ctl, q->lim.mode, q->lim.rps, 0);
	if (q->ctl.mode != RATE_PACED)
		DL_APPEND2(s->moded, q, mprev, mnext);
	heap_node_init(&q->timer.node);
	HASH_ADD(hh, s->queues, key, sizeof(q->key), q);
	DL_PREPEND2(d->queues, q, dprev, dnext);
	d->n_queues++;
	s->n_queues++;
	/*
	 * Idle since ever: one that gets no item (its enqueue refused) is
	 * collected like any idle queue, not kept for good.
	 */
	sched_idle_add(s, q);
	return q;
}

struct sched_queue *sched_queue_find(const struct sched *s,
                                     struct sched_dest *d, const void *key,
                                     size_t key_len)
{
	struct sched_queue *q;
	struct qkey k;

	qkey_make(&k, d, key, key_len);
	HASH_FIND(hh, s->queues, &k, sizeof(k), q);
	return q;
}

/* --- collection --- */

/* d's own state (aggregate pacing, learned values) is all in the past. */
static bool dest_blank(const struct sched_dest *d, int64_t now)
{
	return d->agg_in_flight == 0 && d->agg_tat <= now &&
	       d->rps_learned == 0 && d->conc_learned == 0;
}

/*
 * q's state tells nothing a new queue would not: freeing it changes no
 * decision. Its destination's last queue also stands for the
 * destination's own state.
 */
static bool queue_blank(const struct sched_queue *q, int64_t now)
{
	return !q->head && q->in_flight == 0 && q->rps_learned == 0 &&
	       q->conc_learned == 0 && q->paused_until <= now &&
	       q->tat <= now && (q->d->n_queues > 1 || dest_blank(q->d, now));
}

void sched_collect(struct sched *s, int64_t now)
{
	struct sched_queue *q;

	/* Quiet long enough: free the blank, keep the rest. */
	while ((q = s->quiet_head) && now - q->last_active >= SCHED_QUIET_US) {
		struct sched_dest *d = q->d;

		sched_idle_remove(s, q);
		if (!queue_blank(q, now)) {
			sched_idle_append(s, q, I_KEPT);
			continue;
		}
		queue_free(s, q);
		if (d->n_queues == 0)
			dest_free(s, d);
	}
	while ((q = s->idle_head) && now - q->last_active >= s->idle_reset) {
		struct sched_dest *d = q->d;

		if (q->paused_until > now) {
			/* Keep a pause: look again when it ends. */
			sched_idle_remove(s, q);
			q->last_active = q->paused_until - s->idle_reset;
			sched_idle_append(s, q, I_KEPT);
			if (s->idle_head == q)
				break;
			continue;
		}
		queue_free(s, q);
		if (d->n_queues == 0 && d->agg_in_flight == 0)
			dest_free(s, d);
	}
}

/* --- views --- */

struct sched_dest *sched_queue_dest(const struct sched_queue *q)
{
	return q->d;
}

unsigned sched_in_flight(const struct sched *s)
{
	return s->in_flight;
}

unsigned sched_queued(const struct sched *s)
{
	return s->n_waiting;
}

size_t sched_n_queues(const struct sched *s)
{
	return s->n_queues;
}

static void queue_info(const struct sched_queue *q,
                       struct sched_queue_info *ret)
{
	*ret = (struct sched_queue_info){
		.id = q->id,
		.dest = q->d->key,
		.dest_user = q->d->user,
		.key = q->key.bytes,
		.key_len = q->key.len,
		.rps = q->lim.rps,
		.rps_learned = q->rps_learned ? q->rps_learned
		                              : q->d->rps_learned,
		.rate = sched_q_rps(q),
		.rate_source = q->rps_learned ? q->rps_source
		               : q->d->rps_learned ? q->d->rps_source
		               : sched_ctl_source(q),
		.mode = q->ctl.mode,
		.concurrency = q->lim.concurrency,
		.concurrency_learned = q->conc_learned ? q->conc_learned
		                                       : q->d->conc_learned,
		.burst = q->lim.burst,
		.weight = q->lim.weight,
		.waiting = q->n_waiting,
		.in_flight = q->in_flight,
		.paused_until = q->paused_until,
		.last_active = q->last_active,
		.requests = q->quota_req,
		.tokens = q->quota_tok,
	};
}

void sched_foreach(const struct sched *s,
                   void (*fn)(const struct sched_queue_info *, void *),
                   void *arg)
{
	const struct sched_queue *q;

	for (q = s->queues; q; q = q->hh.next) {
		struct sched_queue_info info;

		queue_info(q, &info);
		fn(&info, arg);
	}
}

bool sched_page(const struct sched *s, uint64_t after, size_t limit,
                void (*fn)(const struct sched_queue_info *, void *),
                void *arg)
{
	size_t lo = 0, hi = s->n_slots, i;

	/* The first slot with an id above after: ids ascend. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (s->slots[mid].id <= after)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (i = lo; i < s->n_slots; i++) {
		struct sched_queue_info info;

		if (!s->slots[i].q)
			continue;
		if (limit == 0)
			return true;
		queue_info(s->slots[i].q, &info);
		fn(&info, arg);
		limit--;
	}
	return false;
}

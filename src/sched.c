/*
 * sched.c - GCRA pacing, concurrency caps, deficit round robin.
 *
 * States. A queue is IDLE (nothing waiting), READY (in its destination's
 * ring: may dispatch now as far as its own limits go), TIMER (in the heap:
 * rate, pause or a retry's not-before time says later) or CAPPED (at its
 * concurrency cap: sched_done() re-evaluates it). A destination is IDLE
 * (no ready queue), READY (in the global ring), TIMER (its aggregate rate
 * says later) or CAPPED (aggregate concurrency). q_eval() and d_eval()
 * compute the state from scratch and move the object; every event calls
 * them for what it touched, so the structures never drift.
 *
 * DRR with unit cost: the head of a ring gets a fresh quantum (its weight)
 * when its deficit is 0, spends one per dispatch, and the ring turns when
 * the deficit is spent or the head leaves. A ready queue therefore waits
 * at most one round of the others' quanta.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>

#include "sched.h"

enum state { S_IDLE, S_READY, S_TIMER, S_CAPPED };

/*
 * Idle queues: QUIET for their first SCHED_QUIET_US, then freed at once if
 * they carry nothing (queue_blank()), else KEPT until idle_reset.
 */
enum idle_list { I_NONE, I_QUIET, I_KEPT };

/* A queue in creation order; q NULL: freed (a hole until compaction). */
struct slot {
	uint64_t id;
	struct sched_queue *q;
};

struct timer {
	struct heap_node node;
	bool is_dest;
};

struct qkey {
	struct sched_dest *d;
	size_t len;
	unsigned char bytes[SCHED_KEY_MAX];
};

struct sched_queue {
	struct qkey key;             /* zero-padded: hashed whole */
	UT_hash_handle hh;
	struct sched_dest *d;
	struct sched_limits lim;
	double rps_learned;          /* 0 = none */
	unsigned conc_learned;       /* 0 = none */

	struct sched_item *head, *tail;
	unsigned n_waiting;
	unsigned in_flight;
	int64_t tat;                 /* GCRA theoretical arrival, us */
	int64_t paused_until;        /* us */
	int64_t last_active;         /* us */

	enum state state;
	struct timer timer;
	unsigned deficit;
	struct sched_queue *rprev, *rnext; /* destination's ring */
	struct sched_queue *iprev, *inext; /* scheduler's idle lists */
	enum idle_list idle;         /* which one, if any */
	uint64_t id;                 /* creation order, for /queues pages */
	size_t slot;                 /* index in sched.slots */
	struct sched_queue *dprev, *dnext; /* all queues of the dest */
};

struct sched_dest {
	char *key;
	UT_hash_handle hh;
	struct sched_dest_limits lim;
	double rps_learned;
	unsigned conc_learned;
	size_t n_queues;
	struct sched_queue *queues;  /* list through dprev/dnext */
	int64_t last_active;         /* us */

	unsigned agg_in_flight;
	int64_t agg_tat;             /* us */
	unsigned n_waiting;          /* items waiting in all its queues */

	enum state state;
	struct timer timer;
	unsigned deficit;
	struct sched_queue *ring;    /* ready queues; head has the turn */
	struct sched_dest *rprev, *rnext; /* global ring */
};

struct sched {
	unsigned max_in_flight;
	unsigned max_queued;
	int64_t idle_reset;          /* us */
	unsigned in_flight;
	unsigned n_waiting;
	size_t n_queues;

	struct sched_dest *dests;    /* hash by key */
	struct sched_queue *queues;  /* hash by qkey */
	struct sched_dest *ring;     /* ready destinations */
	struct heap timers;
	/* Idle queues, each list by last_active. */
	struct sched_queue *quiet_head, *quiet_tail;
	struct sched_queue *idle_head, *idle_tail; /* kept */
	/* Every queue by id, ascending, for /queues pages. */
	struct slot *slots;
	size_t n_slots, cap_slots, n_holes;
	uint64_t next_id;
};

#define CONTAINER(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))

/* --- limits --- */

/* q's rate if its destination had learned d_rps (0: nothing). */
static double q_rps_with(const struct sched_queue *q, double d_rps)
{
	if (q->rps_learned > 0)
		return q->rps_learned;
	if (d_rps > 0)
		return d_rps;
	return q->lim.rps;
}

static double q_rps(const struct sched_queue *q)
{
	return q_rps_with(q, q->d->rps_learned);
}

static unsigned q_conc(const struct sched_queue *q)
{
	if (q->conc_learned)
		return q->conc_learned;
	if (q->d->conc_learned)
		return q->d->conc_learned;
	return q->lim.concurrency;
}

/* GCRA emission interval in us, rounded up so pacing never runs fast. */
static int64_t interval(double rps)
{
	double t = ceil(1e6 / rps);

	return t < 1 ? 1 : t > 1e15 ? (int64_t)1e15 : (int64_t)t;
}

/* Earliest time a dispatch conforms: TAT minus the burst tolerance. */
static int64_t gcra_allow(int64_t tat, double rps, unsigned burst)
{
	int64_t t = interval(rps);

	return tat - t * (int64_t)(burst > 0 ? burst - 1 : 0);
}

static int64_t gcra_advance(int64_t tat, double rps, int64_t now)
{
	return (tat > now ? tat : now) + interval(rps);
}

/*
 * q's rate went from old_rps to q_rps(q). What q still owes (TAT ahead of
 * now) is counted in emission intervals and carried over at the new
 * interval, as a token bucket whose fill rate changes now; otherwise the
 * next dispatch would keep the old spacing and the new rate would only
 * apply to the one after.
 */
static void gcra_rescale(struct sched_queue *q, double old_rps, int64_t now)
{
	int64_t t_old = interval(old_rps), t_new = interval(q_rps(q));
	double owed;

	if (t_old == t_new || q->tat <= now)
		return;
	owed = ceil((double)(q->tat - now) / (double)t_old * (double)t_new);
	q->tat = now + (owed > 1e18 ? (int64_t)1e18 : (int64_t)owed);
}

/* Invalid (zero) limits taken as the least valid ones. */
static void limits_fix(struct sched_limits *l)
{
	if (l->burst == 0)
		l->burst = 1;
	if (l->concurrency == 0)
		l->concurrency = 1;
	if (l->weight == 0)
		l->weight = 1;
	if (!(l->rps > 0))
		l->rps = 1;
}

/* --- rings --- */

#define RING_PUSH(headp, x)                                   \
	do {                                                  \
		if (!*(headp)) {                              \
			(x)->rprev = (x)->rnext = (x);        \
			*(headp) = (x);                       \
		} else {                                      \
			(x)->rnext = *(headp);                \
			(x)->rprev = (*(headp))->rprev;       \
			(x)->rprev->rnext = (x);              \
			(*(headp))->rprev = (x);              \
		}                                             \
	} while (0)

/* Inserts x as the new head: it takes the turn. */
#define RING_PUSH_HEAD(headp, x)                              \
	do {                                                  \
		RING_PUSH(headp, x);                          \
		*(headp) = (x);                               \
	} while (0)

#define RING_UNLINK(headp, x)                                 \
	do {                                                  \
		if ((x)->rnext == (x)) {                      \
			*(headp) = NULL;                      \
		} else {                                      \
			(x)->rprev->rnext = (x)->rnext;       \
			(x)->rnext->rprev = (x)->rprev;       \
			if (*(headp) == (x))                  \
				*(headp) = (x)->rnext;        \
		}                                             \
		(x)->rprev = (x)->rnext = NULL;               \
	} while (0)

/*
 * Moves x, a queue or a destination, from its state to want (!= its
 * state): out of ringp or the timer heap, into the other. One that only
 * waited for its own rate or cap keeps the rest of its quantum and, back
 * in the ring, takes the turn again; otherwise pacing would cost it its
 * turn every time and weights would flatten to 1:1. An emptied one starts
 * afresh (its caller zeroes the deficit), as in DRR.
 */
#define MOVE_STATE(s, ringp, x, want, when)                           \
	do {                                                          \
		if ((x)->state == S_READY)                            \
			RING_UNLINK(ringp, x);                        \
		else if ((x)->state == S_TIMER)                       \
			heap_remove(&(s)->timers, &(x)->timer.node);  \
		(x)->state = (want);                                  \
		if ((want) == S_READY && (x)->deficit > 0)            \
			RING_PUSH_HEAD(ringp, x);                     \
		else if ((want) == S_READY)                           \
			RING_PUSH(ringp, x);                          \
		else if ((want) == S_TIMER)                           \
			set_timer(s, &(x)->timer, when);              \
	} while (0)

/* --- idle lists --- */

static void idle_remove(struct sched *s, struct sched_queue *q)
{
	struct sched_queue **head, **tail;

	if (q->idle == I_NONE)
		return;
	head = q->idle == I_QUIET ? &s->quiet_head : &s->idle_head;
	tail = q->idle == I_QUIET ? &s->quiet_tail : &s->idle_tail;
	if (q->iprev)
		q->iprev->inext = q->inext;
	else
		*head = q->inext;
	if (q->inext)
		q->inext->iprev = q->iprev;
	else
		*tail = q->iprev;
	q->iprev = q->inext = NULL;
	q->idle = I_NONE;
}

static void idle_append(struct sched *s, struct sched_queue *q,
                        enum idle_list which)
{
	struct sched_queue **head, **tail;

	head = which == I_QUIET ? &s->quiet_head : &s->idle_head;
	tail = which == I_QUIET ? &s->quiet_tail : &s->idle_tail;
	q->iprev = *tail;
	q->inext = NULL;
	if (*tail)
		(*tail)->inext = q;
	else
		*head = q;
	*tail = q;
	q->idle = which;
}

/* q has nothing waiting or in flight: it may be collected later. */
static void idle_add(struct sched *s, struct sched_queue *q)
{
	if (q->idle != I_NONE || q->head || q->in_flight)
		return;
	idle_append(s, q, I_QUIET);
}

/* --- state evaluation --- */

static void set_timer(struct sched *s, struct timer *t, int64_t when)
{
	if (heap_update(&s->timers, &t->node, when) < 0) {
		/* No memory for the heap: retry at the next event. */
		return;
	}
}

static void d_eval(struct sched *s, struct sched_dest *d, int64_t now)
{
	enum state want;
	int64_t when = 0;

	if (!d->ring) {
		want = S_IDLE;
	} else if (d->lim.aggregate_concurrency &&
	           d->agg_in_flight >= d->lim.aggregate_concurrency) {
		want = S_CAPPED;
	} else if (d->lim.aggregate_rps > 0 &&
	           (when = gcra_allow(d->agg_tat, d->lim.aggregate_rps,
	                              d->lim.aggregate_burst)) > now) {
		want = S_TIMER;
	} else {
		want = S_READY;
	}
	/*
	 * Only an emptied destination starts afresh: one whose queues all
	 * wait for their own timers or caps (after every dispatch, with
	 * burst 1) keeps the rest of its quantum, as a queue does.
	 */
	if (want == S_IDLE && d->n_waiting == 0)
		d->deficit = 0;
	if (want == d->state) {
		if (want == S_TIMER && d->timer.node.when != when)
			set_timer(s, &d->timer, when);
		return;
	}
	MOVE_STATE(s, &s->ring, d, want, when);
}

/* Re-evaluates q; then its destination, whose ring q may have left. */
static void q_eval(struct sched *s, struct sched_queue *q, int64_t now)
{
	struct sched_dest *d = q->d;
	enum state want;
	int64_t when = 0;

	if (!q->head) {
		want = S_IDLE;
	} else if (q->in_flight >= q_conc(q)) {
		want = S_CAPPED;
	} else {
		when = gcra_allow(q->tat, q_rps(q), q->lim.burst);
		if (q->paused_until > when)
			when = q->paused_until;
		if (q->head->not_before > when)
			when = q->head->not_before;
		want = when > now ? S_TIMER : S_READY;
	}
	if (want == S_IDLE)
		q->deficit = 0;
	if (want == q->state) {
		if (want == S_TIMER && q->timer.node.when != when)
			set_timer(s, &q->timer, when);
		return;
	}
	MOVE_STATE(s, &d->ring, q, want, when);
	if (want == S_IDLE)
		idle_add(s, q);
	d_eval(s, d, now);
}

static void fire_timers(struct sched *s, int64_t now)
{
	struct heap_node *n;

	while ((n = heap_top(&s->timers)) && n->when <= now) {
		struct timer *t = CONTAINER(n, struct timer, node);

		heap_pop(&s->timers);
		if (t->is_dest) {
			struct sched_dest *d =
				CONTAINER(t, struct sched_dest, timer);

			d->state = S_IDLE; /* not in the heap any more */
			d_eval(s, d, now);
		} else {
			struct sched_queue *q =
				CONTAINER(t, struct sched_queue, timer);

			q->state = S_IDLE;
			q_eval(s, q, now);
		}
	}
}

/* --- public --- */

struct sched *sched_new(unsigned max_in_flight, unsigned max_queued,
                        int64_t idle_reset_us)
{
	struct sched *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->max_in_flight = max_in_flight ? max_in_flight : 1;
	s->max_queued = max_queued ? max_queued : 1;
	s->idle_reset = idle_reset_us;
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

	if (q->state == S_READY)
		RING_UNLINK(&q->d->ring, q);
	else if (q->state == S_TIMER)
		heap_remove(&s->timers, &q->timer.node);
	idle_remove(s, q);
	HASH_DEL(s->queues, q);
	if (q->dprev)
		q->dprev->dnext = q->dnext;
	else
		q->d->queues = q->dnext;
	if (q->dnext)
		q->dnext->dprev = q->dprev;
	q->d->n_queues--;
	s->n_queues--;
	free(q);
}

static void dest_free(struct sched *s, struct sched_dest *d)
{
	if (d->state == S_READY)
		RING_UNLINK(&s->ring, d);
	else if (d->state == S_TIMER)
		heap_remove(&s->timers, &d->timer.node);
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
	limits_fix(&q->lim);
	heap_node_init(&q->timer.node);
	HASH_ADD(hh, s->queues, key, sizeof(q->key), q);
	q->dnext = d->queues;
	if (d->queues)
		d->queues->dprev = q;
	d->queues = q;
	d->n_queues++;
	s->n_queues++;
	/*
	 * Idle since ever: one that gets no item (its enqueue refused) is
	 * collected like any idle queue, not kept for good.
	 */
	idle_add(s, q);
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

/* Forget learned limits of a queue (and destination) idle too long. */
static void maybe_reset(struct sched *s, struct sched_queue *q, int64_t now)
{
	double old_rps = q_rps(q);

	if (q->head || q->in_flight || now - q->last_active < s->idle_reset)
		return;
	q->rps_learned = 0;
	q->conc_learned = 0;
	if (q->d->agg_in_flight == 0 &&
	    now - q->d->last_active >= s->idle_reset) {
		q->d->rps_learned = 0;
		q->d->conc_learned = 0;
	}
	gcra_rescale(q, old_rps, now);
}

int sched_enqueue(struct sched *s, struct sched_queue *q,
                  struct sched_item *it, int64_t now)
{
	if (q->n_waiting >= q->lim.max_queued || s->n_waiting >= s->max_queued)
		return -ENOBUFS;
	maybe_reset(s, q, now);
	it->q = q;
	it->not_before = 0; /* a new arrival; only retries wait */
	it->next = NULL;
	it->prev = q->tail;
	if (q->tail)
		q->tail->next = it;
	else
		q->head = it;
	q->tail = it;
	q->n_waiting++;
	q->d->n_waiting++;
	s->n_waiting++;
	q->last_active = now;
	idle_remove(s, q);
	q_eval(s, q, now);
	return 0;
}

static void unlink_item(struct sched *s, struct sched_queue *q,
                        struct sched_item *it)
{
	if (it->prev)
		it->prev->next = it->next;
	else
		q->head = it->next;
	if (it->next)
		it->next->prev = it->prev;
	else
		q->tail = it->prev;
	it->prev = it->next = NULL;
	q->n_waiting--;
	q->d->n_waiting--;
	s->n_waiting--;
}

void sched_remove(struct sched *s, struct sched_item *it, int64_t now)
{
	struct sched_queue *q = it->q;

	unlink_item(s, q, it);
	q->last_active = now; /* it was not idle until now */
	q_eval(s, q, now);
}

/* Releases one in-flight slot of q at every level; no evaluation. */
static void release_slot(struct sched *s, struct sched_queue *q)
{
	if (q->in_flight)
		q->in_flight--;
	if (q->d->agg_in_flight)
		q->d->agg_in_flight--;
	if (s->in_flight)
		s->in_flight--;
}

void sched_done(struct sched *s, struct sched_queue *q, int64_t now)
{
	release_slot(s, q);
	q->last_active = now;
	q->d->last_active = now;
	q_eval(s, q, now);
	d_eval(s, q->d, now); /* q_eval may not have: q's state held */
	idle_add(s, q);
}

void sched_requeue(struct sched *s, struct sched_item *it,
                   int64_t not_before, int64_t now)
{
	struct sched_queue *q = it->q;

	release_slot(s, q);
	it->not_before = not_before;
	it->prev = NULL;
	it->next = q->head;
	if (q->head)
		q->head->prev = it;
	else
		q->tail = it;
	q->head = it;
	q->n_waiting++;
	q->d->n_waiting++;
	s->n_waiting++;
	q->last_active = now;
	idle_remove(s, q);
	q_eval(s, q, now);
	d_eval(s, q->d, now);
}

struct sched_item *sched_next(struct sched *s, int64_t now)
{
	struct sched_dest *d;
	struct sched_queue *q;
	struct sched_item *it;

	fire_timers(s, now);
	if (s->in_flight >= s->max_in_flight || !s->ring)
		return NULL;
	d = s->ring;
	q = d->ring;
	if (d->deficit == 0)
		d->deficit = d->lim.weight;
	if (q->deficit == 0)
		q->deficit = q->lim.weight;

	it = q->head;
	unlink_item(s, q, it);
	it->not_before = 0;
	q->in_flight++;
	d->agg_in_flight++;
	s->in_flight++;
	q->tat = gcra_advance(q->tat, q_rps(q), now);
	if (d->lim.aggregate_rps > 0)
		d->agg_tat = gcra_advance(d->agg_tat, d->lim.aggregate_rps,
		                          now);
	q->last_active = now;
	d->last_active = now;
	q->deficit--;
	d->deficit--;

	/* The turn passes when the quantum is spent (or q left the ring). */
	q_eval(s, q, now);
	if (q->state == S_READY && q->deficit == 0 && d->ring == q)
		d->ring = q->rnext;
	d_eval(s, d, now);
	if (d->state == S_READY && d->deficit == 0 && s->ring == d)
		s->ring = d->rnext;
	return it;
}

int64_t sched_next_wakeup(const struct sched *s)
{
	struct heap_node *n = heap_top(&s->timers);

	return n ? n->when : INT64_MAX;
}

void sched_pause(struct sched *s, struct sched_queue *q, int64_t until,
                 int64_t now)
{
	if (until > q->paused_until)
		q->paused_until = until;
	q_eval(s, q, now);
}

void sched_learn_queue(struct sched *s, struct sched_queue *q, double rps,
                       unsigned concurrency, int64_t now)
{
	double old_rps = q_rps(q);

	if (rps <= 0)
		rps = q->rps_learned;
	if (concurrency == 0)
		concurrency = q->conc_learned;
	if (q->rps_learned == rps && q->conc_learned == concurrency)
		return; /* upstreams repeat themselves on every response */
	q->rps_learned = rps;
	q->conc_learned = concurrency;
	gcra_rescale(q, old_rps, now);
	q_eval(s, q, now);
}

void sched_learn_dest(struct sched *s, struct sched_dest *d, double rps,
                      unsigned concurrency, int64_t now)
{
	struct sched_queue *q;
	double old_rps;

	if (rps <= 0)
		rps = d->rps_learned;
	if (concurrency == 0)
		concurrency = d->conc_learned;
	if (d->rps_learned == rps && d->conc_learned == concurrency)
		return;
	old_rps = d->rps_learned;
	d->rps_learned = rps;
	d->conc_learned = concurrency;
	/* Every queue of d may now be due sooner or later. */
	for (q = d->queues; q; q = q->dnext) {
		gcra_rescale(q, q_rps_with(q, old_rps), now);
		q_eval(s, q, now);
	}
	d_eval(s, d, now);
}

void sched_queue_set_limits(struct sched *s, struct sched_queue *q,
                            const struct sched_limits *lim, int64_t now)
{
	double old_rps = q_rps(q);

	q->lim = *lim;
	limits_fix(&q->lim);
	gcra_rescale(q, old_rps, now);
	q_eval(s, q, now);
}

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

		idle_remove(s, q);
		if (!queue_blank(q, now)) {
			idle_append(s, q, I_KEPT);
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
			idle_remove(s, q);
			q->last_active = q->paused_until - s->idle_reset;
			idle_append(s, q, I_KEPT);
			if (s->idle_head == q)
				break;
			continue;
		}
		queue_free(s, q);
		if (d->n_queues == 0 && d->agg_in_flight == 0)
			dest_free(s, d);
	}
}

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
		.key = q->key.bytes,
		.key_len = q->key.len,
		.rps = q->lim.rps,
		.rps_learned = q->rps_learned ? q->rps_learned
		                              : q->d->rps_learned,
		.concurrency = q->lim.concurrency,
		.concurrency_learned = q->conc_learned ? q->conc_learned
		                                       : q->d->conc_learned,
		.burst = q->lim.burst,
		.weight = q->lim.weight,
		.waiting = q->n_waiting,
		.in_flight = q->in_flight,
		.paused_until = q->paused_until,
		.last_active = q->last_active,
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

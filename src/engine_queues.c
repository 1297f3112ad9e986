/*
 * engine_queues.c - which queue a request joins (its destination's limits,
 * its credential's key weight, the overflow queue past max_queues), the
 * backlog of jobs that found their queue full, and the /queues page: a
 * copy of the scheduler's rows made under the engine's lock for another
 * thread.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <utlist.h>

#include "clock.h"
#include "config.h"
#include "cred.h"
#include "curlloop.h"
#include "engine.h"
#include "engine_int.h"
#include "log.h"
#include "request.h"
#include "sched.h"

/* The key of a destination's overflow queue: no credential hash is 1 byte. */
#define OVERFLOW_KEY "\xff"
#define OVERFLOW_KEY_LEN 1
#define OVERFLOW_LOG_MS 10000        /* one warning per this, at most */

/*
 * max_queues is reached and r's credential has no queue: r joins its
 * destination's overflow queue. Counted; logged at most once every
 * OVERFLOW_LOG_MS, never with the credential.
 */
static void overflow(struct engine *e, const struct request *r)
{
	int64_t now = clock_now_ms();

	e->stats.overflow++;
	if (e->overflow_logged && now - e->overflow_logged < OVERFLOW_LOG_MS)
		return;
	e->overflow_logged = now;
	log_warn("queues full max_queues=%u, new credentials share their "
	         "destination's overflow queue dest='%s' overflowed=%" PRIu64,
	         e->cfg->max_queues, r->dest_key, e->stats.overflow);
}

static struct sched_dest_limits dest_limits(const struct limits *lim)
{
	return (struct sched_dest_limits){
		.aggregate_rps = lim->aggregate_rps,
		.aggregate_burst = lim->burst,
		.aggregate_concurrency = lim->aggregate_concurrency,
		.weight = lim->weight,
	};
}

/* A queue's limits; cred (CRED_HASH_LEN bytes) picks its key's weight. */
static struct sched_limits queue_limits(const struct config *cfg,
                                        const struct limits *lim,
                                        const unsigned char *cred)
{
	struct sched_limits ql = {
		.rps = lim->rps,
		.max_rps = lim->max_rps,
		.mode = lim->mode,
		.burst = lim->burst,
		.concurrency = lim->concurrency,
		.max_queued = lim->max_queued,
		.weight = lim->weight,
	};

	if (cred && cfg->n_keys > 0) {
		char shown[CRED_DISPLAY_LEN + 1];

		cred_display(cred, shown);
		for (size_t i = 0; i < cfg->n_keys; i++)
			if (strcmp(cfg->keys[i].hash, shown) == 0)
				ql.weight = cfg->keys[i].weight;
	}
	return ql;
}

/*
 * A queue that exists is found in two hash lookups; the destination's
 * limits and the key's weight are looked up only for a new one.
 */
struct sched_queue *engine_queue_for(struct engine *e, struct request *r)
{
	const struct config *cfg = e->cfg;
	const struct destination *dst = &r->target.dest;
	bool by_cred = r->has_cred &&
	               cfg->defaults.queue_by == QUEUE_BY_CREDENTIAL;
	size_t key_len = by_cred ? CRED_HASH_LEN : 0;
	struct sched_dest_limits dl;
	struct sched_limits ql;
	struct sched_queue *q;
	struct limits lim;
	struct sched_dest *d;

	d = sched_dest_find(e->sched, r->dest_key);
	if (d && (q = sched_queue_find(e->sched, d, r->cred, key_len)))
		return q;
	config_limits_for(cfg, dst->host, dst->port, &lim);
	if (!d) {
		dl = dest_limits(&lim);
		d = sched_dest_get(e->sched, r->dest_key, &dl);
		if (!d)
			return NULL;
		sched_dest_set_user(d, engine_dest_stats(e, r->dest_key));
	}
	if (by_cred && sched_n_queues(e->sched) >= cfg->max_queues) {
		overflow(e, r);
		ql = queue_limits(cfg, &lim, NULL);
		return sched_queue_get(e->sched, d, OVERFLOW_KEY,
		                       OVERFLOW_KEY_LEN, &ql);
	}
	ql = queue_limits(cfg, &lim, by_cred ? r->cred : NULL);
	return sched_queue_get(e->sched, d, r->cred, key_len, &ql);
}

/*
 * "scheme://host:port" or "scheme://[v6]:port" (destination_format) into
 * host, without brackets, and port. -1 when it is not one.
 */
static int dest_key_split(const char *key, char *host, size_t size,
                          unsigned *port)
{
	const char *h = strstr(key, "://"), *colon, *end;
	char *stop;
	unsigned long p;

	if (!h)
		return -1;
	h += 3;
	colon = strrchr(h, ':');
	if (!colon)
		return -1;
	end = colon;
	if (*h == '[' && end > h && end[-1] == ']') {
		h++;
		end--;
	}
	if ((size_t)(end - h) >= size)
		return -1;
	p = strtoul(colon + 1, &stop, 10);
	if (*stop || p == 0 || p > 65535)
		return -1;
	memcpy(host, h, (size_t)(end - h));
	host[end - h] = '\0';
	*port = (unsigned)p;
	return 0;
}

static bool limits_equal(const struct limits *a, const struct limits *b)
{
	return a->rps == b->rps && a->max_rps == b->max_rps &&
	       a->mode == b->mode && a->burst == b->burst &&
	       a->concurrency == b->concurrency &&
	       a->max_queued == b->max_queued &&
	       a->aggregate_rps == b->aggregate_rps &&
	       a->aggregate_concurrency == b->aggregate_concurrency &&
	       a->weight == b->weight;
}

struct reconf {
	const struct config *old, *cfg;
	int64_t now;
	unsigned dests, queues;      /* changed */
};

static void reconf_one(struct sched *s, struct sched_dest *d,
                       struct sched_queue *q, void *arg)
{
	struct reconf *rc = arg;
	char host[DEST_HOST_MAX + 1];
	const unsigned char *key;
	struct limits ol, nl;
	struct sched_limits oq, nq;
	struct sched_dest_limits dl;
	unsigned port;
	size_t len;

	if (dest_key_split(sched_dest_key(d), host, sizeof(host), &port) < 0)
		return;
	config_limits_for(rc->old, host, port, &ol);
	config_limits_for(rc->cfg, host, port, &nl);
	if (!q) {
		if (limits_equal(&ol, &nl))
			return;
		dl = dest_limits(&nl);
		sched_dest_set_limits(s, d, &dl, rc->now);
		rc->dests++;
		return;
	}
	key = sched_queue_key(q, &len);
	if (len != CRED_HASH_LEN)
		key = NULL; /* no credential, or the overflow queue */
	oq = queue_limits(rc->old, &ol, key);
	nq = queue_limits(rc->cfg, &nl, key);
	if (limits_equal(&ol, &nl) && oq.weight == nq.weight)
		return;
	sched_queue_set_limits(s, q, &nq, rc->now);
	sched_set_mode(s, q, nq.mode, rc->now);
	/* What it learned holds unless its destination's limits changed. */
	if (!limits_equal(&ol, &nl))
		sched_forget(s, q, true, rc->now);
	rc->queues++;
}

void engine_queues_reconfigure(struct engine *e, const struct config *old)
{
	struct reconf rc = { .old = old, .cfg = e->cfg,
	                     .now = clock_now_us() };

	sched_each(e->sched, reconf_one, &rc);
	log_info("reload: limits changed for destinations=%u queues=%u",
	         rc.dests, rc.queues);
}

void engine_backlog_push(struct eworker *w, struct request *r)
{
	DL_APPEND2(w->backlog, r, eng_prev, eng_next);
}

/*
 * Jobs that found their queue full try again, in order, once a second (a
 * full queue drains slowly anyway). One still refused keeps its place and
 * does not hold back the jobs of other queues behind it.
 */
void engine_backlog_retry(struct eworker *w)
{
	struct engine *e = w->e;
	int64_t now = clock_now_us();
	struct request *r, *next, *list = w->backlog;

	if (!list)
		return;
	w->backlog = NULL;
	pthread_mutex_lock(&e->lock);
	for (r = list; r; r = next) {
		struct sched_queue *q = engine_queue_for(e, r);

		next = r->eng_next;
		r->enqueued_us = now;
		if (!q || sched_enqueue(e->sched, q, &r->item, now) < 0) {
			engine_backlog_push(w, r);
			continue;
		}
		r->eng_state = ENG_WAITING;
		engine_hold(w, r);
	}
	pthread_mutex_unlock(&e->lock);
}

/* A stated quota as a row shows it: the reset as ms from now. */
static struct quota_row quota_of(const struct sched_quota *sq, int64_t now)
{
	return (struct quota_row){
		.limit = sq->limit,
		.remaining = sq->remaining,
		.window_ms = sq->window_ms,
		.reset_ms = sq->reset_at < 0 ? -1
		            : sq->reset_at > now ? (sq->reset_at - now + 999) / 1000
		            : 0,
	};
}

/* --- /queues --- */

static void snap_row(const struct sched_queue_info *qi, void *arg)
{
	struct queues_page *pg = arg;
	struct queue_row *row = &pg->rows[pg->n++];

	row->id = qi->id;
	snprintf(row->dest, sizeof(row->dest), "%s", qi->dest);
	if (qi->key_len == CRED_HASH_LEN)
		cred_display(qi->key, row->key);
	else if (qi->key_len == OVERFLOW_KEY_LEN)
		snprintf(row->key, sizeof(row->key), "overflow");
	else
		row->key[0] = '\0';
	row->rps = qi->rps;
	row->rps_learned = qi->rps_learned;
	row->rate = qi->rate;
	row->rate_source = sched_rate_source_name(qi->rate_source);
	row->mode = rate_mode_name(qi->mode);
	row->concurrency = qi->concurrency;
	row->concurrency_learned = qi->concurrency_learned;
	row->burst = qi->burst;
	row->weight = qi->weight;
	row->waiting = qi->waiting;
	row->in_flight = qi->in_flight;
	row->paused_ms = qi->paused_until > pg->now
	                 ? (qi->paused_until - pg->now + 999) / 1000 : 0;
	row->idle_ms = pg->now > qi->last_active
	               ? (pg->now - qi->last_active) / 1000 : 0;
	row->requests = quota_of(&qi->requests, pg->now);
	row->tokens = quota_of(&qi->tokens, pg->now);
}

/* Under the lock: O(log n + limit) copying, no JSON. */
static void snap_fill(struct engine *e, struct queues_page *pg)
{
	pg->now = clock_now_us();
	pg->n = 0;
	pg->more = sched_page(e->sched, pg->after, pg->limit, snap_row, pg);
	engine_counts_fill(e, &pg->c);
	pg->engine_us = clock_now_us() - pg->now;
}

void engine_counts_fill(struct engine *e, struct engine_counts *c)
{
	*c = (struct engine_counts){
		.queues = sched_n_queues(e->sched),
		.waiting = sched_queued(e->sched),
		.in_flight = sched_in_flight(e->sched),
		.requests = e->stats.requests,
		.attempts = e->stats.attempts,
		.retries = e->stats.retries,
		.queue_full = e->stats.queue_full,
		.hopeless = e->stats.hopeless,
		.timeouts = e->stats.timeouts,
		.learn_bad = e->stats.learn_bad,
		.overflow = e->stats.overflow,
	};
}

int engine_queues_page(struct engine *e, struct queues_page *pg)
{
	if (pg->limit == 0 || pg->limit > ENGINE_PAGE_MAX)
		return -EINVAL;
	pthread_mutex_lock(&e->lock);
	snap_fill(e, pg);
	pthread_mutex_unlock(&e->lock);
	return 0;
}

int engine_metrics(struct engine *e, struct engine_metrics *m)
{
	pthread_mutex_lock(&e->lock);
	engine_metrics_fill(e, m);
	pthread_mutex_unlock(&e->lock);
	return 0;
}

/*
 * engine_int.h - the engine's state, shared by its files (engine.c: the
 * loop, messages and transfers; engine_queues.c: which queue a request
 * joins, the backlog of jobs refused by a full queue, the /queues page).
 * Private to them. Everything here belongs to the engine's thread unless
 * marked.
 */
#ifndef SLUICE_ENGINE_INT_H
#define SLUICE_ENGINE_INT_H

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <uthash.h>

#include "metrics_types.h"
#include "request.h"

/*
 * Idle easy handles kept for reuse. Each keeps curl's 64 KiB receive
 * buffer (upstream.c): 64 of them hold 4 MiB, whatever the load.
 */
#define EASY_POOL_MAX 64

enum eng_state { ENG_NONE, ENG_WAITING, ENG_RUNNING, ENG_DONE };

/* A destination's counters for /metrics, kept for the daemon's life. */
struct dest_stats {
	UT_hash_handle hh;           /* by m.dest */
	unsigned idx;                /* in creation order; other: the cap */
	struct dest_metrics m;       /* counters only; gauges at a scrape */
};

struct engine_mstate {
	struct dest_stats *by_dest;  /* hash */
	unsigned n_dests;
	struct dest_stats other;     /* every destination past the cap */
	uint64_t wait[ENGINE_WAIT_BUCKETS + 1];
	uint64_t wait_count;
	double wait_sum;
	uint64_t pauses_retry_after, pauses_quota;
};

struct engine {
	const struct config *cfg;    /* the engine thread's; a reference */
	struct config_slot cfg_next; /* a reload's, taken at a round's start */
	struct curlloop *loop;       /* the thread, its transfers, deadlines */
	atomic_uint active;          /* any thread */
	atomic_uint jobs_held;       /* of active: webhook jobs */
	atomic_bool refusing;        /* draining: no new submissions */

	struct sched *sched;         /* queues, limits, fairness */
	/*
	 * Every request the engine holds is on one of two lists through
	 * eng_prev/eng_next: held (head and tail: one per request, so no
	 * read of the oldest one's line to find the tail), or backlog
	 * (utlist DL) for jobs refused by a full queue, tried again every
	 * second.
	 */
	struct request *held, *held_tail;
	struct request *backlog;
	struct request *touched;     /* fronts to wake this round */
	unsigned n_running;
	uint64_t rng;                /* xorshift64* state, for jitter */
	int64_t next_collect;        /* ms: sched_collect() is due */
	struct {
		uint64_t requests, attempts, retries, queue_full;
		uint64_t timeouts, learn_bad;
		uint64_t overflow;   /* requests sent to an overflow queue */
		uint64_t hopeless;   /* answered 503 queue_wait_exceeds_deadline */
	} stats;
	int64_t overflow_logged;     /* ms, last overflow warning */
	bool abandon;                /* stopping: jobs stay in the store */
	CURL *easy_pool[EASY_POOL_MAX]; /* set up with this cfg_gen */
	unsigned n_easy_pool;
	unsigned cfg_gen;            /* configurations taken */

	struct engine_mstate ms;     /* /metrics counters */

	/* /queues, /metrics: another thread asks, the engine fills in. */
	pthread_mutex_t snap_lock;
	pthread_cond_t snap_cond;
	atomic_bool snap_wanted;
	bool snap_busy, snap_ready;
	struct queues_page *snap_page; /* the asker's, while snap_busy */
	struct engine_metrics *snap_metrics; /* or this */
};

/* Puts r at the end of the held list. */
static inline void engine_hold(struct engine *e, struct request *r)
{
	r->eng_next = NULL;
	r->eng_prev = e->held_tail;
	if (e->held_tail)
		e->held_tail->eng_next = r;
	else
		e->held = r;
	e->held_tail = r;
}

/* Takes r off the held list. */
static inline void engine_unhold(struct engine *e, struct request *r)
{
	if (r->eng_prev)
		r->eng_prev->eng_next = r->eng_next;
	else
		e->held = r->eng_next;
	if (r->eng_next)
		r->eng_next->eng_prev = r->eng_prev;
	else
		e->held_tail = r->eng_prev;
	r->eng_prev = r->eng_next = NULL;
}

/* engine_queues.c */

/* r's queue, created when new; NULL on OOM. */
struct sched_queue *engine_queue_for(struct engine *e, struct request *r);

/* Jobs whose queue was full: they wait on the backlog for room. */
void engine_backlog_push(struct engine *e, struct request *r);

/*
 * A reload: e->cfg is the new configuration, old the one before. Every
 * queue and destination takes the limits, mode and weight it now has;
 * those whose limits changed forget what they learned.
 */
void engine_queues_reconfigure(struct engine *e, const struct config *old);

/*
 * /metrics accounting, on the engine thread (engine_metrics.c). The
 * stats of r's destination: its own up to metrics.max_destinations, then
 * the shared "other".
 */
struct dest_stats *engine_dest_stats(struct engine *e, const char *dest);
void engine_metrics_attempt(struct engine *e, struct request *r,
                            int64_t waited_us);
void engine_metrics_retry(struct engine *e, struct request *r);
void engine_metrics_error(struct engine *e, struct request *r, int rc);
void engine_metrics_end(struct engine *e, struct request *r);
void engine_metrics_fill(struct engine *e, struct engine_metrics *m);

/* The daemon-wide counts, on the engine thread. */
void engine_counts_fill(struct engine *e, struct engine_counts *c);
void engine_metrics_free(struct engine *e);
void engine_backlog_retry(struct engine *e);

/* Fills the /queues page another thread asked for, if any. */
void engine_answer_page(struct engine *e);

#endif

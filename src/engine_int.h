/*
 * engine_int.h - the engine's state, shared by its files (engine.c: the
 * workers, messages and transfers; engine_queues.c: which queue a request
 * joins, the backlog of jobs refused by a full queue, the /queues page).
 * Private to them.
 */
#ifndef SLUICE_ENGINE_INT_H
#define SLUICE_ENGINE_INT_H

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <uthash.h>

#include "heap.h"
#include "metrics_types.h"
#include "request.h"

/*
 * Idle easy handles kept for reuse. Each keeps curl's 64 KiB receive
 * buffer (upstream.c): 64 of them hold 4 MiB, whatever the load.
 */
#define EASY_POOL_MAX 64

/*
 * A request's place in the engine; changed under the engine's lock.
 * WAITING to STARTING happens on the worker whose dispatch takes it,
 * which becomes its home; every other change on its home.
 */
enum eng_state { ENG_NONE, ENG_WAITING, ENG_STARTING, ENG_RUNNING, ENG_DONE };

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

/*
 * One loop of the engine: its thread, curl multi handle, deadlines and
 * handle pool, and the requests whose home it is (the worker they were
 * submitted on). Everything here belongs to its thread.
 */
struct eworker {
	struct engine *e;
	unsigned idx;                /* 0 runs the scheduler's wakeups */
	const struct config *cfg;    /* this thread's; a reference */
	struct config_slot cfg_next; /* a reload's, taken at a round's start */
	struct curlloop *loop;
	/*
	 * Every request at home here is on one of two lists through
	 * eng_prev/eng_next: held (head and tail: one per request, so no
	 * read of the oldest one's line to find the tail; under the
	 * engine's lock, as a dispatch on another worker moves the
	 * request it starts to its own), or backlog (utlist DL) for jobs
	 * refused by a full queue, tried again every second.
	 */
	struct request *held, *held_tail;  /* under e->lock */
	struct request *backlog;
	struct request *touched;     /* fronts to wake this round */
	uint64_t rng;                /* xorshift64* state, for jitter */
	int64_t next_collect;        /* ms: the once-a-second work is due */
	CURL *easy_pool[EASY_POOL_MAX]; /* set up with this cfg_gen */
	unsigned n_easy_pool;
	unsigned cfg_gen;            /* configurations taken */
	/* Stopping: jobs stay in the store. Set under e->lock. */
	bool abandon;
	atomic_int_least64_t last_round; /* ms; read by any thread */
};

/*
 * The engine: its workers, and what they share under lock, the
 * scheduler and the counters. A worker holds the lock for scheduling
 * decisions only, never across a curl call or a wake-up.
 */
struct engine {
	pthread_mutex_t lock;
	const struct config *cfg;    /* the scheduler's; under lock */
	struct config_slot cfg_next; /* a reload's, taken by worker 0 */
	struct sched *sched;         /* queues, limits, fairness; under lock */
	struct heap deadlines;       /* requests' deadlines; under lock */
	int64_t wake_at;             /* under lock: worker 0's next round */
	struct {
		uint64_t requests, attempts, retries, queue_full;
		uint64_t timeouts, learn_bad;
		uint64_t overflow;   /* requests sent to an overflow queue */
		uint64_t hopeless;   /* answered 503 queue_wait_exceeds_deadline */
	} stats;                     /* under lock */
	int64_t overflow_logged;     /* ms, last overflow warning; under lock */
	struct engine_mstate ms;     /* /metrics counters; under lock */

	atomic_uint active;          /* any thread */
	atomic_uint jobs_held;       /* of active: webhook jobs */
	atomic_bool refusing;        /* draining: no new submissions */
	atomic_uint next_home;       /* round robin for other threads */
	unsigned n_workers;
	struct eworker *w;
};

/* Puts r at the end of w's held list; under e->lock. */
static inline void engine_hold(struct eworker *w, struct request *r)
{
	r->eng_next = NULL;
	r->eng_prev = w->held_tail;
	if (w->held_tail)
		w->held_tail->eng_next = r;
	else
		w->held = r;
	w->held_tail = r;
}

/* Takes r off w's held list; under e->lock. */
static inline void engine_unhold(struct eworker *w, struct request *r)
{
	if (r->eng_prev)
		r->eng_prev->eng_next = r->eng_next;
	else
		w->held = r->eng_next;
	if (r->eng_next)
		r->eng_next->eng_prev = r->eng_prev;
	else
		w->held_tail = r->eng_prev;
	r->eng_prev = r->eng_next = NULL;
}

/* engine_queues.c */

/* r's queue, created when new; NULL on OOM. Under lock. */
struct sched_queue *engine_queue_for(struct engine *e, struct request *r);

/* Jobs whose queue was full: they wait on w's backlog for room. */
void engine_backlog_push(struct eworker *w, struct request *r);

/*
 * A reload: e->cfg is the new configuration, old the one before. Every
 * queue and destination takes the limits, mode and weight it now has;
 * those whose limits changed forget what they learned. Under lock.
 */
void engine_queues_reconfigure(struct engine *e, const struct config *old);

/*
 * /metrics accounting, under lock (engine_metrics.c). The
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

/* The daemon-wide counts, under lock. */
void engine_counts_fill(struct engine *e, struct engine_counts *c);
void engine_metrics_free(struct engine *e);

/* On w's thread: its backlog's jobs try their queues again. */
void engine_backlog_retry(struct eworker *w);

#endif

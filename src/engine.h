/*
 * engine.h - the upstream side: workers, each a thread owning a libcurl
 * multi handle, sharing one scheduler under a lock.
 *
 * Other threads talk to the engine only through messages (submit, cancel,
 * unpause) embedded in the request and posted to its home worker (the
 * submitting thread's, or the next in turn); posting never blocks on the
 * engine and never allocates. The scheduling state is under one lock,
 * held for decisions only; a request's transfer runs on its home. It
 * reports progress to each request's owner (struct req_owner) and treats
 * it as the request's policy says (struct req_policy): it never names the
 * front or the job runner.
 */
#ifndef SLUICE_ENGINE_H
#define SLUICE_ENGINE_H

#include <stdbool.h>
#include <stdint.h>

#include "classify.h"
#include "cred.h"
#include "metrics_types.h"

struct config;
struct curlloop;
struct request;

struct engine;

/* A new, not yet running engine, with a reference to cfg. NULL on error. */
struct engine *engine_new(const struct config *cfg);

/*
 * A reload: the engine takes cfg (a reference of its own) at its next
 * round. Waiting requests keep their place. Any thread.
 */
void engine_reconfigure(struct engine *e, const struct config *cfg);

/* Starts the workers' threads. 0 or negative errno. */
int engine_start(struct engine *e);

/*
 * Whether every worker ran a round in the last within_ms (each runs one
 * a second at least): a wedged worker is what a watchdog must catch.
 * Any thread.
 */
bool engine_alive(struct engine *e, int64_t within_ms);

/*
 * The engine's workers (the `workers` key), and the loop of worker i, for
 * a guest to run on its thread (the front's shards, front_shards.h; a
 * listener on each): a request submitted on a worker's thread runs
 * there, so its submission costs no wakeup and no context switch.
 */
unsigned engine_workers(const struct engine *e);
struct curlloop *engine_loop(struct engine *e, unsigned i);

/*
 * The index of the calling thread's worker; on another thread (the job
 * runner, the tunnels), the next worker in turn. Any thread.
 */
unsigned engine_worker_here(struct engine *e);

/*
 * Hands r to the engine, which takes a reference of its own. r's request
 * fields must be complete; the front must not change them afterwards.
 * -ESHUTDOWN when the engine is draining or stopped: r was not taken.
 */
int engine_submit(struct engine *e, struct request *r);

/* Draining: refuse new submissions; held requests go on. Any thread. */
void engine_refuse(struct engine *e);

/* The client went away: drop r from its queue or stop its transfer. */
void engine_cancel(struct engine *e, struct request *r);

/* The front drained r's response buffer: resume a paused transfer. */
void engine_unpause(struct engine *e, struct request *r);

#define ENGINE_PAGE_DEFAULT 1000    /* queues in a /queues page */
#define ENGINE_PAGE_MAX 10000

/* A quota an API stated; -1 members: not stated. reset_ms from now. */
struct quota_row {
	int64_t limit, remaining, window_ms, reset_ms;
};

/* One queue of a /queues page, copied under the engine's lock. */
struct queue_row {
	uint64_t id;
	char dest[DEST_HOST_MAX + 32];
	char key[CRED_DISPLAY_LEN + 1]; /* "" anonymous, "overflow" */
	double rps, rps_learned;
	double rate;                 /* in force */
	const char *rate_source;     /* "configured", "quota", ... */
	const char *mode;            /* "paced", "frugal", "adaptive" */
	unsigned concurrency, concurrency_learned, burst, weight;
	unsigned waiting, in_flight;
	int64_t paused_ms, idle_ms;
	struct quota_row requests, tokens; /* its answers stated */
};

/*
 * A /queues page: the asker sets after, limit and rows (limit of them,
 * its own memory); the engine fills the rest.
 */
struct queues_page {
	uint64_t after;              /* queue id; 0: from the first */
	unsigned limit;              /* 1..ENGINE_PAGE_MAX */
	struct queue_row *rows;
	unsigned n;
	bool more;
	int64_t now;                 /* monotonic us */
	struct engine_counts c;
	int64_t engine_us;           /* time the engine spent on it */
};

/*
 * Fills pg with the daemon's counters and at most pg->limit queues created
 * after the one whose id is pg->after, in creation order (pg->more: others
 * follow). The engine only copies, in O(log n + limit); formatting is the
 * caller's; the engine's lock is held for the copy. 0 or -EINVAL (limit).
 * Any thread but a worker's.
 */
int engine_queues_page(struct engine *e, struct queues_page *pg);

/*
 * Requests the engine holds (waiting or running), jobs included. Any
 * thread.
 */
unsigned engine_active(const struct engine *e);

/* Of those, webhook jobs (they need no client and survive a stop). */
unsigned engine_jobs_held(const struct engine *e);

/* --- /metrics --- */

/* Upper bounds (seconds) of the queue wait histogram's buckets. */
extern const double engine_wait_le[ENGINE_WAIT_BUCKETS];

/* "dns", "connect", ...; "2xx" .. "5xx", "none". */
const char *engine_error_name(enum upstream_error k);
const char *engine_class_name(unsigned c);

/*
 * Fills m (its arrays the caller's) under the engine's lock, in
 * O(queues). 0. Any thread but a worker's.
 */
int engine_metrics(struct engine *e, struct engine_metrics *m);

/*
 * Stops the engine: every request still held fails (503) or, if its
 * response has begun, ends with an error; returns when they have. The
 * thread goes on for a guest (the front writing those answers) until
 * engine_free().
 */
void engine_stop(struct engine *e);

/* Stops if needed and frees. Takes NULL. */
void engine_free(struct engine *e);

#endif

/*
 * engine.h - the upstream side: one thread owning a libcurl multi handle.
 *
 * Other threads talk to the engine only through messages (submit, cancel,
 * unpause) embedded in the request; posting never blocks on the engine and
 * never allocates. The engine owns all scheduling state without locks. It
 * reports progress to each request's owner (struct req_owner) and treats
 * it as the request's policy says (struct req_policy): it never names the
 * front or the job runner.
 */
#ifndef SLUICE_ENGINE_H
#define SLUICE_ENGINE_H

#include <stdbool.h>
#include <stdint.h>

struct config;
struct jobrun;
struct request;

struct engine;

/* A new, not yet running engine. cfg must outlive it. NULL on error. */
struct engine *engine_new(const struct config *cfg);

/* Starts the engine thread. 0 or negative errno. */
int engine_start(struct engine *e);

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

/*
 * One page of the live queue state as a JSON document (malloc'd; caller
 * frees): the daemon's counters and at most limit (1..ENGINE_PAGE_MAX)
 * queues created after the one whose id is after (0: from the first), in
 * creation order, with "next" (the cursor for the following page) when
 * more follow. The engine only copies the page, in O(log n + limit); the
 * JSON is built on the calling thread. NULL when the engine did not
 * answer within 2 s, or on OOM. Any thread but the engine's.
 */
char *engine_queues_json(struct engine *e, uint64_t after, unsigned limit);

/*
 * The webhook job runner the front hands jobs to (NULL: none). Set
 * before the threads start.
 */
void engine_set_jobrun(struct engine *e, struct jobrun *jr);
struct jobrun *engine_jobrun(const struct engine *e);

/*
 * Requests the engine holds (waiting or running), jobs included. Any
 * thread.
 */
unsigned engine_active(const struct engine *e);

/* Of those, webhook jobs (they need no client and survive a stop). */
unsigned engine_jobs_held(const struct engine *e);

/*
 * Stops the thread: every request still held fails (503) or, if its
 * response has begun, ends with an error. Then joins the thread.
 */
void engine_stop(struct engine *e);

/* Stops if needed and frees. Takes NULL. */
void engine_free(struct engine *e);

#endif

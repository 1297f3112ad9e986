/*
 * jobrun.h - webhook jobs through the daemon: the job runner's life, its
 * pending counts and restart recovery. Its other faces: the front's
 * intake (jobrun_intake.h: checks, the durable write, the 202) and the
 * JSON of GET /jobs/<id> (jobrun_json.h). A job's upstream request is a
 * struct request the runner owns, run by the engine like any other; its
 * end is stored (jobs_finish_async()), then delivered.
 *
 * Threads: the intake runs on a shards thread and completes on the
 * store's writer thread; a job's request owner runs on any engine worker's
 * thread (the one whose dispatch starts it);
 * recovery on the caller's, then the pager's. Nothing here blocks but
 * jobrun_recover().
 *
 * A job's stored request headers hold its credential: they are replayed
 * upstream and never shown, logged or put in a webhook payload.
 */
#ifndef SLUICE_JOBRUN_H
#define SLUICE_JOBRUN_H

#include <stdint.h>

struct config;
struct delivery;
struct engine;
struct jobs;

/* Cap on a job's stored upstream response body; beyond it the job fails. */
#define JOB_RESPONSE_MAX (16u * 1024 * 1024)

struct jobrun;

/*
 * The glue, with a reference to cfg; store, e and d must outlive it.
 * NULL on OOM.
 */
struct jobrun *jobrun_new(const struct config *cfg, struct jobs *store,
                          struct engine *e, struct delivery *d);

/* A reload: jobs accepted from now on follow cfg. Any thread. */
void jobrun_reconfigure(struct jobrun *jr, const struct config *cfg);

/*
 * Stops the pager thread (stored jobs loaded as room frees): call before
 * the engine is freed. Idempotent; takes NULL.
 */
void jobrun_stop(struct jobrun *jr);

/* jobrun_stop(), then frees. Takes NULL. */
void jobrun_free(struct jobrun *jr);

/* Jobs accepted and not finished (what jobs.max_pending caps). */
struct jobrun_pending {
	uint64_t jobs, bytes;        /* all of them; bytes of request body */
	uint64_t held, held_bytes;   /* of those, in memory (the engine) */
	uint64_t stored;             /* of those, only in the store */
	uint64_t succeeded, failed;  /* jobs ended since the start */
};

/* A snapshot of the counts. Any thread. */
void jobrun_pending(struct jobrun *jr, struct jobrun_pending *ret);

/* The store, for the admin listener. */
struct jobs *jobrun_store(const struct jobrun *jr);

/*
 * Restart recovery: every queued or running job is submitted to the
 * engine again, every done job with deliveries pending goes to the
 * delivery thread. Call with both threads started. Unfinished jobs are
 * loaded (bodies included) while they fit in jobs.max_pending and
 * jobs.max_pending_bytes; the others stay in the store and a pager
 * thread loads them, in order, as earlier jobs finish. *ret_run counts
 * every unfinished job, *ret_deliver the deliveries. 0 or a negative
 * errno from the store.
 */
int jobrun_recover(struct jobrun *jr, unsigned *ret_run,
                   unsigned *ret_deliver);

#endif

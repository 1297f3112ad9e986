/*
 * jobrun.h - webhook jobs through the daemon: the front's intake (checks,
 * the durable write, the 202), the job's upstream request (a struct
 * request with a sink instead of a client connection, run by the engine
 * like any other), its end (jobs_finish, then the deliveries), recovery
 * at start-up, and the JSON of GET /jobs/<id>.
 *
 * Threads: the intake runs on the shards thread and completes on the store's
 * writer thread; the sink runs on the engine thread; recovery on the
 * caller's. Nothing here blocks but jobrun_recover().
 *
 * A job's stored request headers hold its credential: they are replayed
 * upstream and never shown, logged or put in a webhook payload.
 */
#ifndef SLUICE_JOBRUN_H
#define SLUICE_JOBRUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "jobs.h"
#include "webhook.h"

struct config;
struct delivery;
struct engine;
struct request;

/* Cap on a job's stored upstream response body; beyond it the job fails. */
#define JOB_RESPONSE_MAX (16u * 1024 * 1024)
#define JOB_KEY_MAX 255            /* bytes of an idempotent key */

struct jobrun;

/*
 * The glue; cfg, store, e and d must outlive it. NULL on OOM.
 */
struct jobrun *jobrun_new(const struct config *cfg, struct jobs *store,
                          struct engine *e, struct delivery *d);

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

/* --- intake (front) --- */

/* The X-EZTHROTTLE-* fields of a job request, as the client sent them. */
struct job_fields {
	const char *const *webhooks;   /* every X-EZTHROTTLE-WEBHOOK value */
	size_t n_webhooks;
	const char *quorum;            /* NULL: 1 */
	const char *metadata;          /* NULL: none */
	const char *idempotent_key;    /* NULL: none */
	const char *max_retries;       /* replayed with the job; NULL: none */
	const char *retry_on;
};

/*
 * A job being accepted. The front owns it through request->intake; the
 * result fields are written under that request's lock by the store's
 * writer thread, then ready() is called (without the lock).
 */
struct job_intake {
	struct webhook_urls urls;
	unsigned quorum;
	char *metadata_json;           /* compact text, or NULL */
	char *idempotent_key;
	char *max_retries, *retry_on;
	char *headers_json;
	struct job_new jn;
	struct request *owner;         /* the front's request (a reference) */
	struct request *job;           /* the engine's request, once durable */
	struct jobrun *jr;
	void (*ready)(struct request *owner);

	/* Result, under owner->lock. */
	bool done;
	int err;
	int refused;                   /* the pending caps' -errno, or 0 */
	bool duplicate;
	char id[JOB_ID_LEN + 1];
};

/*
 * Checks the fields. On success *ret is a new intake. On a bad field,
 * -EINVAL with the status (400), a static error code and a message for
 * the client; -ENOMEM.
 */
int job_intake_new(const struct jobrun *jr, const struct job_fields *f,
                   struct job_intake **ret, const char **ret_code,
                   char *msg, size_t size);

/* Frees ji (and drops its references). Takes NULL. */
void job_intake_free(struct job_intake *ji);

/*
 * Writes the job of r (r->intake, method, raw_target, up_headers, body,
 * credential) to the store. 0: ready(r) will be called once it is durable
 * or failed, and a new job then goes to the engine. Negative errno: the
 * store refused at once, or the pending caps did (-EDQUOT at
 * jobs.max_pending, -ENOBUFS at jobs.max_pending_bytes, -EFBIG a body
 * over it alone); the result is set already and ready() will not be
 * called. jr may be NULL (no store): -ENODEV.
 */
int job_intake_submit(struct jobrun *jr, struct request *r,
                      void (*ready)(struct request *r));

/*
 * The answer for the client once the intake is done: a malloc'd JSON
 * body; *ret_status 202 (new), 200 (duplicate), 400, 413 or 503; *ret_location
 * true when the answer names the job (Location: /jobs/<id>). NULL on OOM.
 */
char *job_intake_answer(const struct job_intake *ji, unsigned *ret_status,
                        bool *ret_location);

/* --- admin --- */

/* True when id looks like a job id ("job_" and 44 lower-case hex). */
bool job_id_valid(const char *id);

/*
 * GET /jobs/<id>: the job as a malloc'd JSON document, without its
 * request headers or body. NULL on OOM.
 */
char *job_to_json(const struct job *jb);

#endif

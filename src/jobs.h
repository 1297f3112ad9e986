/*
 * jobs.h - the durable job store: webhook jobs in STATE_DIR/jobs.db.
 *
 * SQLite in WAL mode with synchronous=FULL: a verb that changes the store
 * returns only after its transaction is on disk. One writer thread owns
 * the write connection; callers on any thread queue their change and
 * sleep, and the writer commits everything queued in ONE transaction
 * (group commit), so many concurrent submitters share one fsync. A batch
 * that fails is rolled back and every caller in it gets the error: what
 * was acknowledged is never lost, what failed was never acknowledged.
 * Reads use a second, read-only connection and never wait for the writer;
 * jobs_get_result() has a third of its own.
 *
 * The verbs block for about one commit (a millisecond or more): call them
 * from threads that may block. An event loop submits with
 * jobs_submit_async(), which is what lets one thread's many clients share
 * a commit.
 *
 * The request headers kept for replay include its credential
 * (Authorization, ...): jobs.db is created mode 0600, and they are
 * cleared (with secure_delete, WAL truncated) when the job finishes, and
 * at open from any done job that still has them (an older store).
 */
#ifndef SLUICE_JOBS_H
#define SLUICE_JOBS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* "job_" + 12 hex digits of unix ms (index locality) + 128 random bits. */
#define JOB_ID_LEN 48
#define JOBS_GIVE_UP (-1)        /* next_at of a delivery that gave up */
#define JOBS_PRUNE_MAX 1000      /* jobs removed per jobs_prune() call */

enum job_state { JOB_QUEUED, JOB_RUNNING, JOB_DONE };
enum delivery_state { DELIVERY_PENDING, DELIVERY_DELIVERED, DELIVERY_GAVE_UP };

/*
 * A job to store. jobs_submit() has copied it when it returns;
 * jobs_submit_async() reads it until its done callback.
 */
struct job_new {
	const unsigned char *cred;    /* queue's credential hash; NULL: none */
	size_t cred_len;
	const char *idempotent_key;   /* NULL: none */
	/* With dedupe, the key is unique within (cred, dest): another job
	 * with the same three is a duplicate. Without, the key is only
	 * echoed (anonymous clients do not share one scope). */
	const char *dest;             /* "scheme://host:port"; with dedupe */
	bool dedupe;
	const char *method;
	const char *url;              /* absolute target */
	const char *headers_json;     /* [[name, value], ...], filtered */
	const void *body;
	size_t body_len;              /* may contain NUL bytes */
	const char *metadata_json;    /* a JSON object, or NULL */
	const char *const *webhooks;  /* distinct URLs */
	size_t n_webhooks;            /* >= 1 */
	unsigned quorum;              /* 1..n_webhooks */
};

struct job_delivery {
	char *url;
	enum delivery_state state;
	unsigned attempts;
	int64_t next_at;              /* unix ms; JOBS_GIVE_UP when given up */
	int last_status;              /* HTTP status of the last try; 0: none */
	char *last_error;             /* NULL: none */
	int64_t delivered_at;         /* unix ms; 0: not delivered */
};

/*
 * A stored job, all of it malloc'd and owned by the struct. Strings are
 * NUL-terminated; body and resp_body also carry a NUL after their length.
 */
struct job {
	char id[JOB_ID_LEN + 1];
	unsigned char *cred;          /* NULL when cred_len is 0 */
	size_t cred_len;
	char *idempotent_key;         /* NULL: none */
	enum job_state state;
	bool success;                 /* when JOB_DONE */
	int64_t created_ms, updated_ms, finished_ms; /* unix ms; 0: not yet */
	unsigned attempts;            /* jobs_mark_running() calls */
	char *method, *url, *headers_json;
	char *body;
	size_t body_len;
	char *metadata_json;          /* NULL: none */
	unsigned quorum;
	int status_code;              /* final response, when JOB_DONE */
	char *resp_headers_json;
	char *resp_body;
	size_t resp_body_len;
	char *error_code;             /* why a failed job failed; NULL: none */
	char *error_message;
	struct job_delivery *deliveries;
	size_t n_deliveries;
};

/* Counters since jobs_open(). */
struct jobs_stats {
	uint64_t transactions;        /* committed batches (one fsync each) */
	uint64_t failed_batches;      /* rolled back */
	uint64_t ops;                 /* changes committed, all verbs */
	uint64_t jobs;                /* new jobs committed */
	uint64_t duplicates;          /* submits answered with an existing id */
	uint64_t max_batch;           /* most changes in one transaction */
	uint64_t checkpoints;         /* WAL truncated after a scrub */
	uint64_t checkpoints_busy;    /* ... tried, a reader in the way */
};

struct jobs;

/*
 * Opens STATE_DIR/jobs.db (creating the directory mode 0700 and the file
 * mode 0600, and the schema), and starts the writer thread. NULL on
 * error, with the negative errno in *ret_err.
 */
struct jobs *jobs_open(const char *state_dir, int *ret_err);

/*
 * Commits what is queued (callbacks included), then stops the writer:
 * from then on every writing verb answers -ESHUTDOWN; jobs_get() and
 * jobs_stats() still work. Idempotent; takes NULL.
 */
void jobs_shutdown(struct jobs *j);

/* jobs_shutdown(), then closes and frees. Takes NULL. */
void jobs_free(struct jobs *j);

/*
 * Replaces the wall clock (unix ms) used for timestamps. Call before any
 * other verb; for tests.
 */
void jobs_set_clock(struct jobs *j, int64_t (*now_ms)(void *arg), void *arg);

/*
 * Stores a new job with one pending delivery per webhook, durably. With
 * dedupe and an idempotent key already used under the same credential
 * and destination, stores nothing and answers that job's id with
 * *ret_duplicate true. Any thread.
 * The JSON texts are stored as given: the caller validates them. 0;
 * -EINVAL quorum out of range or a webhook repeated; -ENOSPC disk full;
 * -EIO, -EBUSY, ... store errors; -ESHUTDOWN while closing.
 */
int jobs_submit(struct jobs *j, const struct job_new *jn,
                char ret_id[JOB_ID_LEN + 1], bool *ret_duplicate);

/*
 * Completion of jobs_submit_async(), on the writer thread: err is 0 with
 * the job's id (valid during the call) and duplicate as for jobs_submit(),
 * or a negative errno with id NULL. Keep it short; it may queue more work
 * (jobs_submit_async()) but must not call a verb that waits.
 */
typedef void jobs_submit_done(void *arg, int err, const char *id,
                              bool duplicate);

/*
 * jobs_submit() for a thread that must not block (the MHD front): queues
 * the job and returns; done is called once the job is durable or failed.
 * jn and what it points to are NOT copied: they must stay valid until
 * done is called. 0 (done will be called exactly once), or -EINVAL,
 * -ENOMEM, -ESHUTDOWN at once (done will not be called).
 */
int jobs_submit_async(struct jobs *j, const struct job_new *jn,
                      jobs_submit_done *done, void *arg);

/* How a job ended, for jobs_finish_async(). */
struct job_result {
	int status_code;
	const char *headers_json;     /* as in job_new; NULL: [] */
	const void *body;
	size_t body_len;              /* may contain NUL bytes */
	bool success;
	const char *error_code;       /* failed jobs: why; else NULL */
	const char *error_message;
};

/*
 * Completion of the other asynchronous verbs, on the writer thread: err
 * as the blocking verb would have returned it. Same rules as
 * jobs_submit_done.
 */
typedef void jobs_op_done(void *arg, int err);

/*
 * Asynchronous forms of jobs_mark_running(), jobs_finish() and
 * jobs_delivery_result(), for threads that must not wait for a commit
 * (the engine, the delivery thread). They copy everything they are given
 * and return at once; the change is committed in a later batch, in the
 * order the verbs were called. done (may be NULL) is called exactly once
 * when they return 0; -ENOENT (malformed id), -EINVAL, -ENOMEM,
 * -ESHUTDOWN at once otherwise.
 */
int jobs_mark_running_async(struct jobs *j, const char *id,
                            jobs_op_done *done, void *arg);
int jobs_finish_async(struct jobs *j, const char *id,
                      const struct job_result *res, jobs_op_done *done,
                      void *arg);
int jobs_delivery_result_async(struct jobs *j, const char *id,
                               const char *url, bool ok, int status,
                               const char *error, int64_t next_at,
                               jobs_op_done *done, void *arg);

/*
 * The job is starting (again): state running, attempts + 1. -ENOENT when
 * there is no such job or it is done.
 */
int jobs_mark_running(struct jobs *j, const char *id);

/*
 * The job ended with this final response (headers_json as in job_new;
 * body copied, may be binary). Its request headers, body and URL query
 * are cleared, with secure_delete, and the WAL is truncated within
 * about a second: a finished job never runs again. Its pending
 * deliveries become due now. -ENOENT when there is no such job or it is
 * done already.
 */
int jobs_finish(struct jobs *j, const char *id, int status_code,
                const char *headers_json, const void *body, size_t len,
                bool success);

/*
 * Records one delivery try to url: delivered when ok, else retried at
 * next_at (unix ms) or given up when next_at is JOBS_GIVE_UP. status is
 * the receiver's HTTP status (0: none), error a message or NULL.
 * -ENOENT when the job has no such webhook still pending: a settled
 * delivery stays settled.
 */
int jobs_delivery_result(struct jobs *j, const char *id, const char *url,
                         bool ok, int status, const char *error,
                         int64_t next_at);

/*
 * Removes up to JOBS_PRUNE_MAX jobs finished before now_ms - retain_ms
 * whose deliveries are all delivered or given up; call again while
 * *ret_pruned is JOBS_PRUNE_MAX. ret_pruned may be NULL.
 */
int jobs_prune(struct jobs *j, int64_t now_ms, int64_t retain_ms,
               unsigned *ret_pruned);

/*
 * The job named id, or -ENOENT. *ret_job is the caller's (job_free()).
 * Any thread.
 */
int jobs_get(struct jobs *j, const char *id, struct job **ret_job);

/*
 * Restart recovery: calls cb for every job not done (to run again) and
 * every done job with deliveries pending (to deliver), oldest first. cb
 * owns the job it is given (job_free()); a non-zero return stops the walk
 * and is returned. cb may call the writing verbs, not jobs_get() or
 * jobs_load_pending().
 */
int jobs_load_pending(struct jobs *j, int (*cb)(void *arg, struct job *jb),
                      void *arg);

/*
 * Truncates the WAL now (after the scrubbed bytes of finished jobs,
 * which the writer otherwise does within about a second). For tests.
 */
int jobs_checkpoint(struct jobs *j);

/*
 * The unfinished (queued or running) jobs: how many, their request body
 * bytes, and the largest row number among them (0: none), the end of
 * what jobs_load_unfinished() pages through. No body is read.
 */
int jobs_unfinished(struct jobs *j, uint64_t *ret_jobs, uint64_t *ret_bytes,
                    int64_t *ret_last);

/*
 * Restart recovery, a page at a time: calls cb for the unfinished jobs
 * with row numbers in (after, last], in that order, up to max_jobs of
 * them and while their bodies total at most max_bytes (a job whose body
 * would pass it is not read). *ret_after is the row number of the last
 * job cb accepted (returned 0; after when none), *ret_done true when no
 * unfinished job is left in (*ret_after, last]. A job cb refuses (a
 * negative errno, such as -ENOMEM: cb still owns and frees it) stops the
 * page and is returned: it is the first one the next call from
 * *ret_after offers again. Jobs added after jobs_unfinished() have larger
 * row numbers: they are never paged in. cb as for jobs_load_pending().
 */
int jobs_load_unfinished(struct jobs *j, int64_t after, int64_t last,
                         size_t max_jobs, uint64_t max_bytes,
                         int (*cb)(void *arg, struct job *jb), void *arg,
                         int64_t *ret_after, bool *ret_done);

/*
 * Restart recovery: calls cb for every done job with deliveries pending,
 * in no particular order, one job in memory at a time, with only what
 * scheduling its deliveries needs: id, state, quorum, finished_ms,
 * resp_body_len (the length only: resp_body is NULL, its bytes are not
 * read) and the deliveries; every other field is zero. cb as for
 * jobs_load_pending().
 */
int jobs_load_deliveries(struct jobs *j, int (*cb)(void *arg, struct job *jb),
                         void *arg);

/*
 * The stored end of the done job named id, for its webhook payload: the
 * fields of jobs_get() without the deliveries (n_deliveries 0). -ENOENT
 * when there is no such job or it is not done. Reads through a
 * connection of its own, so the other reads (a page of recovery) never
 * delay it; a call reads one row. *ret_job is the caller's (job_free()).
 * Any thread.
 */
int jobs_get_result(struct jobs *j, const char *id, struct job **ret_job);

/* A snapshot of the counters. Any thread. */
void jobs_stats(struct jobs *j, struct jobs_stats *ret_stats);

/*
 * For tests of a full disk: caps the database at pages pages of 4 KiB
 * (SQLite never goes below its current size); 0 lifts the cap.
 */
int jobs_set_max_pages(struct jobs *j, unsigned long pages);

/* Frees jb and everything in it. Takes NULL. */
void job_free(struct job *jb);

#endif

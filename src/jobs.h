/*
 * jobs.h - the durable job store: webhook jobs in STATE_DIR/jobs.db.
 *
 * SQLite in WAL mode with synchronous=FULL: a change is acknowledged
 * only once its transaction is on disk. One writer thread owns the write
 * connection; callers on any thread queue their change, and the writer
 * commits everything queued in ONE transaction (group commit), so many
 * concurrent submitters share one fsync. A batch that fails is rolled
 * back and every change in it gets the error: what was acknowledged is
 * never lost, what failed was never acknowledged. Reads use a second,
 * read-only connection and never wait for the writer; jobs_get_result()
 * has a third of its own.
 *
 * The writing verbs here return at once and a callback on the writer
 * thread tells when the change is durable (blocking forms, for tests,
 * are in jobs_test.h). jobs_prune() and the reads block (a commit, a
 * read: a millisecond or more): call them from threads that may block.
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

#include "jobs_types.h"

#define JOBS_PRUNE_MAX 1000      /* jobs removed per jobs_prune() call */

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
 * Stores a new job with one pending delivery per webhook, durably: queues
 * the job and returns; done is called once the job is durable or failed.
 * With dedupe and an idempotent key already used under the same
 * credential and destination, stores nothing and answers that job's id
 * as a duplicate. The JSON texts are stored as given: the caller
 * validates them. spec and what it points to are NOT copied: they must
 * stay valid until done is called. 0 (done will be called exactly once, err
 * -ENOSPC disk full, -EIO, -EBUSY, ... store errors), or -EINVAL (quorum
 * out of range or a webhook repeated), -ENOMEM, -ESHUTDOWN at once (done
 * will not be called). Any thread.
 */
int jobs_submit_async(struct jobs *j, const struct job_spec *spec,
                      jobs_submit_done *done, void *arg);

/*
 * The verbs below are for threads that must not wait for a commit (the
 * engine, the delivery thread). They copy everything they are given and
 * return at once; the change is committed in a later batch, in the order
 * the verbs were called. done (may be NULL) is called exactly once when
 * they return 0; -ENOENT (malformed id), -EINVAL, -ENOMEM, -ESHUTDOWN at
 * once otherwise.
 */

/*
 * The job is starting (again): state running, attempts + 1. done gets
 * -ENOENT when there is no such job or it is done.
 */
int jobs_mark_running_async(struct jobs *j, const char *id,
                            jobs_op_done *done, void *arg);

/*
 * The job ended with res. Its request headers, body and URL query are
 * cleared, with secure_delete, and the WAL is truncated within about a
 * second: a finished job never runs again. Its pending deliveries become
 * due now. done gets -ENOENT when there is no such job or it is done
 * already.
 */
int jobs_finish_async(struct jobs *j, const char *id,
                      const struct job_result *res, jobs_op_done *done,
                      void *arg);

/*
 * Records one delivery try to url: delivered when ok, else retried at
 * next_at (unix ms) or given up when next_at is JOBS_GIVE_UP. status is
 * the receiver's HTTP status (0: none), error a message or NULL. done
 * gets -ENOENT when the job has no such webhook still pending: a settled
 * delivery stays settled.
 */
int jobs_delivery_result_async(struct jobs *j, const char *id,
                               const char *url, bool ok, int status,
                               const char *error, int64_t next_at,
                               jobs_op_done *done, void *arg);

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
 * row numbers: they are never paged in. cb owns the job it is given
 * (job_free()); it may call the writing verbs, not the reads.
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
 * read) and the deliveries; every other field is zero. cb owns the job
 * it is given (job_free()); a non-zero return stops the walk and is
 * returned. It may call the asynchronous verbs, not the reads.
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

#endif

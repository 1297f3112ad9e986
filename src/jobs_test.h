/*
 * jobs_test.h - verbs of the job store (jobs.h) for tests: blocking forms
 * of the asynchronous writing verbs, an injected clock, a walk of every
 * pending job, and hooks for the WAL and a full disk. Each blocks for
 * about one commit; never call one on the writer thread (from a
 * callback). The daemon uses none of them.
 */
#ifndef SLUICE_JOBS_TEST_H
#define SLUICE_JOBS_TEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "jobs_types.h"

struct jobs;

/*
 * Replaces the wall clock (unix ms) used for timestamps. Call before any
 * other verb.
 */
void jobs_set_clock(struct jobs *j, int64_t (*now_ms)(void *arg), void *arg);

/*
 * jobs_submit_async(), blocking: spec is copied when it returns, and
 * *ret_duplicate (may be NULL) says whether the job was a duplicate.
 * 0 or an error, as jobs_submit_async()'s or its callback's.
 */
int jobs_submit(struct jobs *j, const struct job_spec *spec,
                char ret_id[JOB_ID_LEN + 1], bool *ret_duplicate);

/*
 * jobs_mark_running_async(), blocking: 0, or -ENOENT when there is no
 * such job or it is done.
 */
int jobs_mark_running(struct jobs *j, const char *id);

/*
 * jobs_finish_async(), blocking, of a job_result with these fields and
 * no error code: 0, or -ENOENT when there is no such job or it is done
 * already.
 */
int jobs_finish(struct jobs *j, const char *id, int status_code,
                const char *headers_json, const void *body, size_t len,
                bool success);

/*
 * jobs_delivery_result_async(), blocking: 0, or -ENOENT when the job has
 * no such webhook still pending.
 */
int jobs_delivery_result(struct jobs *j, const char *id, const char *url,
                         bool ok, int status, const char *error,
                         int64_t next_at);

/*
 * Calls cb for every job not done and every done job with deliveries
 * pending, oldest first, in one read transaction (bodies included). cb
 * owns the job it is given (job_free()); a non-zero return stops the walk
 * and is returned. cb may call the writing verbs, not jobs_get() or
 * jobs_load_pending().
 */
int jobs_load_pending(struct jobs *j, int (*cb)(void *arg, struct job *jb),
                      void *arg);

/*
 * Truncates the WAL now (after the scrubbed bytes of finished jobs,
 * which the writer otherwise does within about a second).
 */
int jobs_checkpoint(struct jobs *j);

/*
 * A full disk: caps the database at pages pages of 4 KiB (SQLite never
 * goes below its current size); 0 lifts the cap.
 */
int jobs_set_max_pages(struct jobs *j, unsigned long pages);

#endif

/*
 * jobs_types.h - the job store's data (the verbs are in jobs.h) beside
 * the job's own shapes (job.h): the completions of the asynchronous verbs
 * and the store's counters.
 */
#ifndef SLUICE_JOBS_TYPES_H
#define SLUICE_JOBS_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "job.h"

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

/*
 * Completion of jobs_submit_async(), on the writer thread: err is 0 with
 * the job's id (valid during the call) and duplicate true when the job
 * was a duplicate, or a negative errno with id NULL. Keep it short; it
 * may queue more work (jobs_submit_async()) but must not call a verb that
 * waits.
 */
typedef void jobs_submit_done(void *arg, int err, const char *id,
                              bool duplicate);

/*
 * Completion of the other asynchronous verbs, on the writer thread: 0,
 * -ENOENT as each verb says, or a store error. Same rules as
 * jobs_submit_done.
 */
typedef void jobs_op_done(void *arg, int err);

#endif

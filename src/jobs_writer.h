/*
 * jobs_writer.h - the job store's writer thread (see jobs.h): it owns the
 * write connection and commits every change queued since its last batch
 * in one transaction (group commit). A batch that fails is rolled back
 * and every op in it gets the error. jobs.c builds the ops; nothing
 * outside the store includes this.
 */
#ifndef SLUICE_JOBS_WRITER_H
#define SLUICE_JOBS_WRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "jobs_types.h"

enum jop_type { JOP_SUBMIT, JOP_RUNNING, JOP_FINISH, JOP_DELIVERY,
                JOP_PRUNE, JOP_MAX_PAGES, JOP_CHECKPOINT };

/*
 * One queued change: on a blocked caller's stack, or malloc'd (heap) for
 * the asynchronous verbs, which copy what they are given behind the op.
 */
struct jop {
	struct jop *next;
	enum jop_type type;
	const struct job_spec *spec;
	char id[JOB_ID_LEN + 1];      /* job addressed, or the new job's */
	const char *url, *text;       /* delivery url and error */
	struct job_result res;        /* finish */
	int status;                   /* delivery */
	bool ok;                      /* delivery */
	int64_t when;                 /* next_at, prune cut-off */
	unsigned long count;          /* prune limit / pruned; max pages */
	bool heap;                    /* malloc'd: freed after its callback */
	jobs_submit_done *cb;         /* submit's completion, or NULL */
	jobs_op_done *op_cb;          /* other verbs' completion, or NULL */
	void *cb_arg;
	/* Results, written by the writer thread. */
	int err;
	bool duplicate;
	bool done;                    /* under lock; blocking callers */
};

struct jobs_writer;

/*
 * Opens the write connection to path (creating, migrating and scrubbing
 * the store: jobs_sql_open_writer()) and prepares its statements; the
 * thread is not started yet. 0 or a negative errno.
 */
int jobs_writer_open(const char *path, struct jobs_writer **ret_writer);

/*
 * Starts the thread, with a checkpoint due at once (the WAL may hold
 * bytes scrubbed at open). 0 or a negative errno.
 */
int jobs_writer_start(struct jobs_writer *w);

/*
 * Commits what is queued (callbacks included), then stops the thread:
 * from then on jobs_writer_enqueue() answers -ESHUTDOWN. Idempotent;
 * takes NULL.
 */
void jobs_writer_stop(struct jobs_writer *w);

/* jobs_writer_stop(), then closes and frees. Takes NULL. */
void jobs_writer_free(struct jobs_writer *w);

/*
 * Queues op (a heap op: its callback is called once, then it is freed).
 * 0, or -ESHUTDOWN (op is still the caller's).
 */
int jobs_writer_enqueue(struct jobs_writer *w, struct jop *op);

/*
 * Queues op (on the caller's stack) and sleeps until its batch is
 * committed or failed: op->err, or -ESHUTDOWN. Never on the writer thread.
 */
int jobs_writer_run(struct jobs_writer *w, struct jop *op);

/* The store's wall clock, unix ms (jobs_set_clock()). */
int64_t jobs_writer_now(struct jobs_writer *w);
void jobs_writer_set_clock(struct jobs_writer *w,
                           int64_t (*now_ms)(void *arg), void *arg);

/* A snapshot of the counters. Any thread. */
void jobs_writer_stats(struct jobs_writer *w, struct jobs_stats *ret_stats);

#endif

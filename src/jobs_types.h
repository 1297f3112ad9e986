/*
 * jobs_types.h - the job store's data (the verbs are in jobs.h): a job to
 * store (job_new), how it ended (job_result), a stored job with its
 * deliveries (struct job), the completions of the asynchronous verbs and
 * the store's counters.
 */
#ifndef SLUICE_JOBS_TYPES_H
#define SLUICE_JOBS_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* "job_" + 12 hex digits of unix ms (index locality) + 128 random bits. */
#define JOB_ID_LEN 48
#define JOBS_GIVE_UP (-1)        /* next_at of a delivery that gave up */

enum job_state { JOB_QUEUED, JOB_RUNNING, JOB_DONE };
enum delivery_state { DELIVERY_PENDING, DELIVERY_DELIVERED, DELIVERY_GAVE_UP };

/*
 * A job to store. jobs_submit_async() reads it until its done callback.
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
	unsigned attempts;            /* times marked running */
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

/* Frees jb and everything in it (jobs_read.c). Takes NULL. */
void job_free(struct job *jb);

#endif

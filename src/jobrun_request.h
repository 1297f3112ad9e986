/*
 * jobrun_request.h - a job's upstream request (a struct request owned by
 * the job runner, run by the engine like any other) and its end: stored,
 * then told to its webhooks. For the runner's files (jobrun*.c).
 */
#ifndef SLUICE_JOBRUN_REQUEST_H
#define SLUICE_JOBRUN_REQUEST_H

#include <stdbool.h>
#include <stddef.h>

#include "jobs_types.h"

struct jobrun;
struct request;

/* What the engine's job request carries besides the request itself. */
struct job_run {
	struct jobrun *jr;
	size_t body_len;
	bool counted;                /* in jr->held and jr->pending */
	char id[JOB_ID_LEN + 1];
	char *idempotent_key;
	char *metadata_json;
	char **webhooks;
	size_t n_webhooks;
	unsigned quorum;
};

/* Everything a job's request is built from (the store's columns). */
struct job_spec {
	const char *method, *url, *headers_json;
	const void *body;
	size_t body_len;
	const unsigned char *cred;
	size_t cred_len;
	const char *idempotent_key, *metadata_json;
	const char *const *webhooks;
	size_t n_webhooks;
	unsigned quorum;
};

/* Whom a job's end is told to, and what of the job they are told. */
struct job_who {
	const char *id, *idempotent_key, *metadata_json;
	const char *const *webhooks;
	size_t n_webhooks;            /* 0: the end is stored, not delivered */
	unsigned quorum;
};

/*
 * A request for the engine from a stored (or about to be stored) job,
 * owned by the job runner, with no client. id may be NULL: set before
 * submission. 0, -ENOMEM, or -EINVAL when the stored request cannot be
 * rebuilt (its URL or header list does not parse).
 */
int job_request_new(struct jobrun *jr, const struct job_spec *s,
                    const char *id, struct request **ret);

/*
 * Stores res as the end of the job (which scrubs its request fields)
 * and, once that is durable, hands its deliveries to the delivery
 * thread. 0, -ENOMEM (nothing queued), or jobs_finish_async()'s error.
 */
int job_end(struct jobrun *jr, const struct job_who *w,
            const struct job_result *res);

/* The job leaves the pending counts (jobrun_release()), once. */
void job_run_release(struct job_run *jrun, bool finished);

#endif

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
	struct job_spec *spec;       /* job_spec_dup_webhooks(): its end's */
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
 * Stores res as the end of the job id (which scrubs its request fields)
 * and, once that is durable, hands its deliveries to the delivery
 * thread: to s's webhooks (none: stored only), with its idempotent key,
 * metadata and quorum; s's request fields are not read. 0, -ENOMEM
 * (nothing queued), or jobs_finish_async()'s error.
 */
int job_end(struct jobrun *jr, const char *id, const struct job_spec *s,
            const struct job_result *res);

/* The job leaves the pending counts (jobrun_release()), once. */
void job_run_release(struct job_run *jrun, bool finished);

#endif

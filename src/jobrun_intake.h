/*
 * jobrun_intake.h - a job accepted from a client of the front: its
 * X-EZTHROTTLE-* fields checked, written to the store without blocking,
 * then handed to the engine, and the client's answer (202, 200 duplicate,
 * 4xx, 503). The intake is created on the front's thread and completes on
 * the store's writer thread.
 *
 * A job's stored request headers hold its credential: they are replayed
 * upstream and never shown, logged or put in a webhook payload.
 */
#ifndef SLUICE_JOBRUN_INTAKE_H
#define SLUICE_JOBRUN_INTAKE_H

#include <stdbool.h>
#include <stddef.h>

#include "jobs_types.h"
#include "webhook.h"

#define JOB_KEY_MAX 255            /* bytes of an idempotent key */

struct jobrun;
struct request;

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
 * A job being accepted. The front owns it with its client's request (the
 * owner); the result fields are written under that request's lock by the
 * store's writer thread, then ready() is called (without the lock).
 */
struct job_intake {
	struct webhook_urls urls;
	unsigned quorum;
	char *metadata_json;           /* compact text, or NULL */
	char *idempotent_key;
	char *max_retries, *retry_on;
	char *headers_json;
	struct job_spec spec;          /* the store reads it until done */
	struct request *owner;         /* the client's request, while stored */
	struct request *job;           /* the engine's request, once durable */
	struct jobrun *jr;
	void (*ready)(struct request *owner);

	/* Result, under owner->lock. */
	bool done;
	int err;
	int refused;                   /* the pending caps' -errno, or 0 */
	unsigned max_pending;          /* the caps then, for the answer */
	uint64_t max_pending_bytes;
	bool duplicate;
	char id[JOB_ID_LEN + 1];
};

/*
 * Checks the fields. On success *ret is a new intake. On a bad field,
 * -EINVAL with the status (400), a static error code and a message for
 * the client; -ENOMEM.
 */
int job_intake_new(struct jobrun *jr, const struct job_fields *f,
                   struct job_intake **ret, const char **ret_code,
                   char *msg, size_t size);

/* Frees ji (and drops its references). Takes NULL. */
void job_intake_free(struct job_intake *ji);

/*
 * Writes the job ji of r (ji's fields and r's method, raw_target,
 * up_headers, body, credential) to the store. 0: ready(r) will be called
 * once it is durable or failed, and a new job then goes to the engine.
 * Negative errno: the store refused at once, or the pending caps did
 * (-EDQUOT at jobs.max_pending, -ENOBUFS at jobs.max_pending_bytes, -EFBIG
 * a body over it alone); the result is set already and ready() will not
 * be called. jr may be NULL (no store): -ENODEV.
 */
int job_intake_submit(struct jobrun *jr, struct job_intake *ji,
                      struct request *r, void (*ready)(struct request *r));

/*
 * The answer for the client once the intake is done: a malloc'd JSON
 * body; *ret_status 202 (new), 200 (duplicate), 400, 413 or 503; *ret_location
 * true when the answer names the job (Location: /jobs/<id>). NULL on OOM.
 */
char *job_intake_answer(const struct job_intake *ji, unsigned *ret_status,
                        bool *ret_location);

#endif

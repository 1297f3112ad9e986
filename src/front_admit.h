/*
 * front_admit.h - what the front decides about a request from its target
 * and header fields, whatever framed them: the head's body size and Host,
 * the target checks, the queue identity and per-request controls
 * (credential, X-EZTHROTTLE-*), a webhook job's fields, and the field list
 * that goes upstream.
 *
 * The fields come through struct admit_fields (MHD's connection values in
 * the daemon, a plain list under test), so nothing here knows MHD.
 */
#ifndef SLUICE_FRONT_ADMIT_H
#define SLUICE_FRONT_ADMIT_H

#include <stdbool.h>
#include <stddef.h>

#include "jobrun_intake.h"
#include "webhook.h"

struct config;
struct job_intake;
struct request;

/* Called per field, in order; false stops the walk. value may be NULL. */
typedef bool admit_field_fn(void *arg, const char *name, const char *value);

/* A request's header fields, as the framing layer holds them. */
struct admit_fields {
	void *src;
	/* The value of the first field named name (any case), or NULL. */
	const char *(*lookup)(void *src, const char *name);
	/* fn(arg, name, value) for every field in order, until it says no. */
	void (*each)(void *src, admit_field_fn *fn, void *arg);
};

/* What admission reads from the daemon. */
struct admit_ctx {
	const struct config *cfg;
	const unsigned char *salt;   /* CRED_SALT_LEN bytes */
	struct jobrun *jobs;         /* takes webhook jobs */
};

/* What the head's framing fields decide, before any body is read. */
struct admit_head {
	unsigned status;             /* 0: go on; else 400 or 413 */
	bool now;                    /* answer at once (and close) */
	bool body_too_large;         /* read the body, drop it, 413 at its end */
	bool has_body;               /* a body follows: start its clock */
	const char *code;            /* with status */
	const char *msg;             /* into the caller's msg, or a constant */
};

/*
 * The first look at a parsed head (version as "HTTP/1.1"): a
 * Content-Length over max_body (413: now when the client waits for
 * 100-continue or would send far too much, else after its body), whether
 * a body follows, and a 1.1 request without Host (400).
 */
void admit_head(const struct config *cfg, const struct admit_fields *hf,
                const char *version, struct admit_head *ret, char *msg,
                size_t size);

/*
 * Checks r->raw_target into r->target: 0 when it is a proxy request to a
 * destination outside deny_destinations (a fragment is cut off the raw
 * target), else the status to answer (400, 403) with a code and a
 * message (*ret_msg points into msg or at a constant).
 */
unsigned admit_target(const struct config *cfg, struct request *r,
                      const char **ret_code, const char **ret_msg,
                      char *msg, size_t size);

/* A webhook job's fields, pointing into the request's fields. */
struct admit_job {
	/* Every X-EZTHROTTLE-WEBHOOK value; one too many is refused later. */
	const char *webhooks[WEBHOOK_MAX_URLS + 1];
	struct job_fields f;
};

/* Collects the X-EZTHROTTLE-WEBHOOK* and replayed retry fields. */
void admit_job_fields(const struct admit_fields *hf, struct admit_job *ret);

/*
 * The queue identity and the per-request controls: r->dest_key, the
 * credential hash of the first configured key header present
 * (r->cred, r->has_cred), r->deadline (from r->t_arrival) and r->rules;
 * for a webhook job a new *ret_intake (else it is left alone). -EINVAL
 * with an error code and a message for the client when a control is bad;
 * -ENOMEM.
 */
int admit_classify(const struct admit_ctx *ctx,
                   const struct admit_fields *hf, struct request *r,
                   struct job_intake **ret_intake, const char **ret_code,
                   char *msg, size_t size);

/*
 * Appends the fields that go upstream to r->up_headers as curl lines:
 * hop-by-hop fields (and those Connection names), X-EZTHROTTLE-*, Host,
 * Content-Length and Expect are dropped; an empty value is sent as
 * "Name;"; empty Expect, Accept and Content-Type entries keep curl from
 * adding its own. Adds to *ret_fields and *ret_text the fields walked and
 * the bytes of their names and values. -EINVAL when a name is not a token
 * or a value holds a control byte (the last guard before upstream),
 * -ENOMEM.
 */
int admit_upstream_headers(const struct admit_fields *hf, struct request *r,
                           size_t *ret_fields, size_t *ret_text);

#endif

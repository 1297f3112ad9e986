/*
 * job.h - the shapes of a webhook job, shared by the store (jobs*.c), the
 * job runner (jobrun*.c), delivery and webhook: what a job is
 * (job_spec, from intake to the store to the engine's request), how it
 * ended (job_result, from the runner to the store to its webhooks), and a
 * stored job (struct job, which owns its fields), with the one function
 * each that views a stored job in the two shapes and the copies the
 * runner, the store and delivery keep.
 */
#ifndef SLUICE_JOB_H
#define SLUICE_JOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* "job_" + 12 hex digits of unix ms (index locality) + 128 random bits. */
#define JOB_ID_LEN 48
#define JOBS_GIVE_UP (-1)        /* next_at of a delivery that gave up */

enum job_state { JOB_QUEUED, JOB_RUNNING, JOB_DONE };
enum delivery_state { DELIVERY_PENDING, DELIVERY_DELIVERED, DELIVERY_GAVE_UP };

/*
 * Everything a job is: its upstream request, who is told its end and
 * how. A view: it owns nothing.
 */
struct job_spec {
	const char *method;
	const char *url;              /* absolute target */
	const char *headers_json;     /* [[name, value], ...], filtered */
	const void *body;
	size_t body_len;              /* may contain NUL bytes */
	const unsigned char *cred;    /* queue's credential hash; NULL: none */
	size_t cred_len;
	const char *idempotent_key;   /* NULL: none */
	/* With dedupe, the key is unique within (cred, dest): another job
	 * with the same three is a duplicate. Without, the key is only
	 * echoed (anonymous clients do not share one scope). */
	const char *dest;             /* "scheme://host:port"; with dedupe */
	bool dedupe;
	const char *metadata_json;    /* a JSON object, or NULL */
	const char *const *webhooks;  /* distinct URLs */
	size_t n_webhooks;            /* >= 1 */
	unsigned quorum;              /* 1..n_webhooks */
};

/*
 * How a job ended: the upstream answer, or the one a synchronous client
 * would have had from the proxy. A view: it owns nothing.
 */
struct job_result {
	int status_code;
	const char *headers_json;     /* [[name, value], ...]; NULL: [] */
	const void *body;
	size_t body_len;              /* may contain NUL bytes */
	bool failed;
	const char *error_code;       /* failed jobs: why; else NULL */
	const char *error_message;
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

/*
 * Strings copied into one allocation (a "room"): job_str_size(s) is the
 * bytes s takes there (0 for NULL); job_room_str() copies s (may be NULL)
 * to *room, advances *room past it and returns the copy (NULL for NULL).
 */
size_t job_str_size(const char *s);
const char *job_room_str(char **room, const char *s);

/* Bytes job_result_copy() needs for the strings and body r points to. */
size_t job_result_room(const struct job_result *r);

/*
 * r, its strings and body copied to room (job_result_room(r) bytes; the
 * body is followed by a NUL). The copy's pointers are into room.
 */
struct job_result job_result_copy(const struct job_result *r, void *room);

/*
 * A copy of r and what it points to, in one allocation: free() it. NULL
 * on OOM.
 */
struct job_result *job_result_dup(const struct job_result *r);

/*
 * A copy of what of s a job's end is told with: idempotent_key,
 * metadata_json, webhooks and quorum; the request's fields are NULL (0,
 * false). One allocation: free() it. NULL on OOM.
 */
struct job_spec *job_spec_dup_webhooks(const struct job_spec *s);

/*
 * The webhook URLs of jb's deliveries, in order, as an array for
 * job_spec's webhooks (its strings are jb's): free() it. NULL on OOM.
 */
const char **job_webhooks(const struct job *jb);

/*
 * jb as a job_spec, viewing jb's fields and webhooks (job_webhooks()):
 * both must outlive *ret. The store keeps no destination (dedupe false).
 */
void job_spec_of(const struct job *jb, const char *const *webhooks,
                 struct job_spec *ret);

/* How the done job jb ended, viewing jb's fields. */
void job_result_of(const struct job *jb, struct job_result *ret);

/* Frees jb and everything in it. Takes NULL. */
void job_free(struct job *jb);

#endif

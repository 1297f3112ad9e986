/*
 * webhook.h - the pure parts of webhook jobs: the request's
 * X-EZTHROTTLE-WEBHOOK* fields, the delivery payload, its signature and
 * the delivery retry schedule. No I/O but webhook_secret_load(), no
 * clock (the caller passes the time), no logging. The fields are parsed
 * in webhook_fields.c, the rest is in webhook.c.
 *
 * Signature: X-EZThrottle-Signature: t=<unix seconds>,v1=<64 lower-case
 * hex digits of HMAC-SHA-256(secret, "<t>.<raw body>")>, one v1 only.
 * The hosted service's SDK verifiers (Python, Node, Go) read the header
 * into a map, so with several v1 entries only the last is checked: two
 * signatures would be verified against the second secret alone. They
 * accept |now - t| <= 300 s by default, so every delivery attempt is
 * signed afresh at send time, and the clock must be right (NTP).
 * Rotation therefore goes: receivers accept the old and the new secret
 * (try_verify_with_secrets in the SDKs), then the daemon signs with the
 * new one, then receivers drop the old one.
 */
#ifndef SLUICE_WEBHOOK_H
#define SLUICE_WEBHOOK_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "job.h"

#define WEBHOOK_SIGNATURE_HEADER "X-EZThrottle-Signature"
/* "t=" + 20 digits + ",v1=" + 64 hex + NUL, rounded up. */
#define WEBHOOK_SIGNATURE_MAX 96

#define WEBHOOK_SECRET_MIN 16        /* characters, as the hosted service */
#define WEBHOOK_SECRET_MAX 1024      /* bytes */

#define WEBHOOK_MAX_URLS 10          /* per job */
#define WEBHOOK_URL_MAX 2048         /* bytes */
#define WEBHOOK_METADATA_MAX (64 * 1024) /* bytes of JSON text */

/*
 * Writes "t=<t_unix>,v1=<hex>" (NUL-terminated) into out. The HMAC covers
 * the decimal t, a '.', then body[0..len) as sent. Returns the length
 * without the NUL, -ENOSPC when size is too small (WEBHOOK_SIGNATURE_MAX
 * always fits), or -ENOMEM when OpenSSL fails.
 */
int webhook_sign(const unsigned char *secret, size_t secret_len,
                 int64_t t_unix, const char *body, size_t len, char *out,
                 size_t size);

struct webhook_secret {
	size_t len;
	unsigned char key[WEBHOOK_SECRET_MAX];
};

/*
 * Reads a secret file: its bytes, less trailing CR and LF. Refused: empty
 * (-ENODATA), longer than WEBHOOK_SECRET_MAX (-EFBIG), not UTF-8 text or
 * holding a NUL (-EILSEQ: the SDKs take the secret as a string), shorter
 * than WEBHOOK_SECRET_MIN characters (-ERANGE); open and read errors as
 * negative errno. On success *ret_exposed tells whether others may read
 * the file or anyone but the owner may write it (mode & 0026): the caller
 * warns and carries on. Group-readable is normal (root:sluice 0640).
 */
int webhook_secret_load(const char *path, struct webhook_secret *ret,
                        bool *ret_exposed);

/* Wipes the key. */
void webhook_secret_done(struct webhook_secret *s);

/*
 * Why webhook_secret_load() failed, to follow the path in a message:
 * "is empty", "is shorter than 16 characters", ..., else strerror(-err).
 */
const char *webhook_secret_error_str(int err);

/*
 * What a webhook is told: a job's end and the job's own fields. The
 * payload is
 * {"job_id","idempotent_key","status":"success"|"failed",
 *  "response":{"status_code","headers":{},"body",["body_encoding"]},
 *  ["error":{"code","message"},] "metadata":{}}, compact.
 * response is always an object: a job that got no upstream answer carries
 * the answer a synchronous client would have had from the proxy (e.g. 502
 * with the proxy's JSON error body), and "error" says why it failed
 * (end.error_code and error_message, both required when end.failed).
 * Strings that are not UTF-8 (ids, key, error) are read as ISO-8859-1.
 */
struct webhook_result {
	const char *job_id;
	const char *idempotent_key;  /* NULL: JSON null */
	struct job_result end;
	json_t *metadata;            /* borrowed; NULL: {} */
};

/*
 * Builds the delivery body ("response" as webhook_response_json()). On
 * success *ret is a malloc'd NUL-terminated string the caller frees,
 * *ret_len its length. -EINVAL when end.headers_json is not such a list;
 * -ENOMEM.
 */
int webhook_payload(const struct webhook_result *res, char **ret,
                    size_t *ret_len);

/*
 * The payload's "response" object alone, for GET /jobs/<id>: status_code;
 * headers from end's [["name", "value"], ...] (already filtered as for a
 * synchronous client), names lower-cased, repeated names joined with ", "
 * (RFC 9110 section 5.3), Set-Cookie with "\n" (its values hold commas;
 * a field value cannot hold LF), so every value is a string; body as a
 * JSON string when it is strict UTF-8 (no overlongs, no surrogates,
 * nothing above U+10FFFF), else base64 (RFC 4648, padded) with
 * "body_encoding":"base64". *ret is a new reference. 0, -EINVAL (the
 * field list does not parse), -ENOMEM.
 */
int webhook_response_json(const struct job_result *end, json_t **ret);

/* A job's webhooks. Owns the strings. */
struct webhook_urls {
	char *url[WEBHOOK_MAX_URLS];
	size_t n;
};

/*
 * Parses the X-EZTHROTTLE-WEBHOOK values[0..n) (the field may repeat, each
 * value a comma list; a comma inside a URL must be written %2C). Each URL:
 * http or https, absolute, a host (name or [IPv6]), port 1..65535 if any,
 * no user info, no fragment, only RFC 3986 characters (percent-encode the
 * rest), at most WEBHOOK_URL_MAX bytes, not given twice; at most
 * WEBHOOK_MAX_URLS in all. 0, -EINVAL with a message naming the webhook
 * and the reason in err, or -ENOMEM. Denied destinations are the
 * caller's check.
 */
int webhook_parse_urls(const char *const *values, size_t n,
                       struct webhook_urls *ret, char *err, size_t err_size);

/* Frees the strings; u is empty afterwards. */
void webhook_urls_done(struct webhook_urls *u);

/*
 * X-EZTHROTTLE-WEBHOOK-QUORUM: an integer 1..n_urls, optional surrounding
 * whitespace. 0, -EINVAL (not an integer) or -ERANGE. Absent means 1.
 */
int webhook_parse_quorum(const char *s, size_t n_urls, unsigned *ret);

/*
 * X-EZTHROTTLE-METADATA: a JSON object (duplicate keys refused) of at most
 * WEBHOOK_METADATA_MAX bytes. On success *ret is a new reference. -EINVAL
 * or -E2BIG with a message in err; -ENOMEM.
 */
int webhook_parse_metadata(const char *s, size_t len, json_t **ret,
                           char *err, size_t err_size);

/*
 * When the next delivery attempt is due (ms, the caller's clock) after
 * attempt failed attempts, the last failing at now_ms: now_ms +
 * schedule_ms[attempt], the last step repeating (n >= 1; negative steps
 * count as 0). attempt 0 asks for the first attempt, now_ms being when
 * the job finished; first_try_ms is then unused. Deliveries stop
 * give_up_after_ms after the first attempt (first_try_ms): -1 once now_ms
 * has reached that deadline; a step that would pass it ends on it, so
 * the last attempt is made at the deadline.
 */
int64_t webhook_next_attempt(const int64_t *schedule_ms, size_t n,
                             unsigned attempt, int64_t first_try_ms,
                             int64_t give_up_after_ms, int64_t now_ms);

#endif

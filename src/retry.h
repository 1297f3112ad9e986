/*
 * retry.h - when to retry an upstream attempt, and after how long.
 *
 * struct retry_rules is one request's policy: the configured retry: block,
 * 500 added for idempotent requests, then the request's own
 * X-EZTHROTTLE-MAX-RETRIES / X-EZTHROTTLE-RETRY-ON. retry_decide() judges
 * one finished attempt. The caller supplies the randomness, so the module
 * is deterministic under test. No allocation.
 */
#ifndef SLUICE_RETRY_H
#define SLUICE_RETRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RETRY_MAX_RETRIES 1000           /* X-EZTHROTTLE-MAX-RETRIES cap */
#define RETRY_STATUS_LIMIT 640           /* bitset covers 0..639 */

struct retry_rules {
	unsigned max_retries;
	uint64_t on[RETRY_STATUS_LIMIT / 64]; /* bitset of status codes */
	bool idempotent;             /* idempotent method or idempotency key */
};

/*
 * The policy from configuration: the codes in on[0..n_on) (codes outside
 * 0..639 ignored), plus 500 when idempotent.
 */
void retry_rules_init(struct retry_rules *r, unsigned max_retries,
                      const unsigned *on, size_t n_on, bool idempotent);

/* True when status is in r's set. */
bool retry_rules_has(const struct retry_rules *r, unsigned status);

/*
 * X-EZTHROTTLE-MAX-RETRIES: an integer 0..RETRY_MAX_RETRIES, optional
 * surrounding whitespace. 0, -EINVAL or -ERANGE.
 */
int retry_parse_max(const char *s, unsigned *ret);

/*
 * X-EZTHROTTLE-RETRY-ON: "429,503", codes 100..599, spaces allowed around
 * commas. On success replaces r's status set exactly (500 is not added
 * back: the request said what it wants). -EINVAL on an empty list, an
 * empty member or junk; r is then unchanged.
 */
int retry_parse_on(const char *s, struct retry_rules *r);

/*
 * True for GET, HEAD, OPTIONS, PUT, DELETE and TRACE (RFC 9110 section
 * 9.2.2). Case-sensitive, as methods are.
 */
bool retry_method_idempotent(const char *method);

enum retry_verdict {
	RETRY_NO,                    /* final: hand this response back */
	RETRY_YES,                   /* retry after delay_ms */
	RETRY_GIVE_UP,               /* retryable, but not within limits */
};

struct retry_decision {
	enum retry_verdict verdict;
	int64_t delay_ms;            /* RETRY_YES only; else 0 */
	const char *reason;          /* static string, for logs and bodies */
};

/*
 * Judges an attempt. attempts_done counts attempts made so far, this one
 * included (1 after the first; 0 counts as 1); more than max_retries is
 * RETRY_NO. status 0 = the connection failed before any response byte:
 * retryable whatever the set (but not past max_retries). retry_after_ms is
 * the response's Retry-After as a delay (-1 absent); when present it is
 * the delay, or RETRY_GIVE_UP beyond max_retry_after_ms. Otherwise the
 * delay is retry_backoff_ms(attempts_done, ...). random: 64 uniform bits.
 */
struct retry_decision retry_decide(const struct retry_rules *r,
                                   unsigned attempts_done, unsigned status,
                                   int64_t retry_after_ms,
                                   int64_t backoff_base_ms,
                                   int64_t backoff_cap_ms,
                                   int64_t max_retry_after_ms,
                                   uint64_t random);

/*
 * Full jitter: uniform in [0, min(cap_ms, base_ms * 2^(attempt - 1))],
 * attempt 1 being the first retry (0 counts as 1). Never overflows.
 * Negative base or cap count as 0.
 */
int64_t retry_backoff_ms(unsigned attempt, int64_t base_ms, int64_t cap_ms,
                         uint64_t random);

#endif

/*
 * learn.h - rate-limit signals from the header fields of one response.
 *
 * The engine calls learn_init(), then learn_field() for each response
 * field in order, then learn_finish(); the public fields of struct
 * learn_signals then say what the upstream asked for. Nothing here knows
 * the configuration: the engine ignores the sources it has switched off
 * (rps and concurrency: learn.ezthrottle_headers; retry_after_ms:
 * learn.retry_after; pause_ms: learn.ratelimit_headers) and clamps with
 * learn_clamp_rps() / learn_clamp_concurrency(). Wall-clock time is
 * passed in (Unix milliseconds) for HTTP-dates, RFC 3339 times and epoch
 * resets. No allocation.
 *
 * Fields understood (names case-insensitive):
 *   X-EZTHROTTLE-RPS, X-EZTHROTTLE-MAX-CONCURRENT, Retry-After,
 *   retry-after-ms (milliseconds; wins over Retry-After);
 *   X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset (also
 *   X-Rate-Limit-*; the limit may name its window: "100, 100;w=60");
 *   X-RateLimit-Limit-Requests, X-RateLimit-Remaining-Requests,
 *   X-RateLimit-Reset-Requests and the same with -Tokens (OpenAI);
 *   anthropic-ratelimit-requests-limit, -remaining, -reset (an RFC 3339
 *   time) and the same for tokens, input-tokens and output-tokens;
 *   RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset (early IETF
 *   drafts; the limit may list policies: "10, 10;w=1, 50;w=60");
 *   RateLimit: limit=10, remaining=0, reset=5 (one dictionary; also
 *   r=0;t=5 with no name);
 *   RateLimit-Policy: 10;w=1 or "name";q=100;w=60 (a policy whose qu is
 *   not "requests" is no request quota) with RateLimit: "name";r=0;t=30
 *   (recent drafts; without t, the named policy's window w is the pause).
 * Other fields (X-RateLimit-Used, X-RateLimit-Resource...) are ignored.
 *
 * Pause: a quota with nothing remaining and a known reset gives a pause
 * until the reset; OpenAI's and Anthropic's request quotas are buckets
 * whose reset is when they are full again, so theirs is one request's
 * worth, window / limit, when shorter. When several pause, the longest
 * wins.
 *
 * Quotas: requests is the request quota of the first dialect present of
 * (1) RateLimit / RateLimit-Policy, with the older IETF fields they
 * complete, (2) anthropic-ratelimit-requests-*, (3) X-RateLimit-*-Requests,
 * (4) RateLimit-Limit/-Remaining/-Reset alone, (5) X-RateLimit-*. A
 * dialect is present when one of its values parsed. Among several IETF
 * policies it is the most restrictive (lowest rate, nothing remaining
 * first) of those RateLimit names, or of all policies without RateLimit;
 * an older-draft limit takes the window of the policy of the same quota.
 * tokens is anthropic-ratelimit-tokens-* (Anthropic's tightest token
 * limit), else X-RateLimit-*-Tokens; Anthropic's input-tokens and
 * output-tokens only pause. OpenAI's and Anthropic's limits are per
 * minute (window 60 s); X-RateLimit-* windows are unknown unless the
 * limit names one. quota_rps and the spread come from requests alone.
 *
 * Bounds: limits, quotas and remaining counts 0..LEARN_MAX_COUNT; windows
 * 1 ms..LEARN_MAX_WINDOW_MS; resets as learn_parse_reset() and
 * learn_parse_rfc3339() read them; t as delta-seconds. A value outside
 * is unparsable: counted in bad, ignored.
 */
#ifndef SLUICE_LEARN_H
#define SLUICE_LEARN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LEARN_MAX_CONCURRENCY 1000000    /* largest value parsed */
#define LEARN_MAX_POLICIES 8             /* RateLimit(-Policy) items kept */
#define LEARN_MAX_COUNT 1000000000000LL  /* 10^12: largest limit, remaining */
#define LEARN_MAX_WINDOW_MS 2678400000LL /* 31 days: a monthly quota */

/* A quota the answer stated. Every member -1 when absent. */
struct learn_quota {
	int64_t limit;               /* requests (or tokens) per window */
	int64_t remaining;           /* left until reset */
	int64_t reset_ms;            /* delay from now until it is whole
	                                again */
	int64_t window_ms;           /* the limit's window, when known */
};

/* A RateLimit list item (drafts 7 on): private to learn*.c. */
struct learn_item {
	uint64_t name;               /* FNV-1a of the policy name */
	int64_t r;                   /* remaining */
	int64_t t_ms;                /* reset, -1 absent */
	bool named;                  /* false: "r=3;t=1", no name */
};

/* A RateLimit-Policy item: private to learn*.c. */
struct learn_policy {
	uint64_t name;               /* FNV-1a of the name (or the number) */
	int64_t q;                   /* quota, -1 absent */
	int64_t w_ms;                /* window, -1 absent */
	bool requests;               /* qu absent or "requests" */
};

struct learn_signals {
	double rps;                  /* X-EZTHROTTLE-RPS, 0 absent */
	unsigned concurrency;        /* X-EZTHROTTLE-MAX-CONCURRENT, 0 absent */
	int64_t retry_after_ms;      /* Retry-After or retry-after-ms as a
	                                delay, -1 absent */
	int64_t pause_ms;            /* from rate-limit fields, -1 none */
	unsigned bad;                /* unparsable values seen (ignored) */

	/* Set by learn_finish(). */
	double quota_rps;            /* limit / window of the request quota;
	                                0 unknown */
	double spread_rps;           /* remaining / reset: at most remaining
	                                more dispatches before reset, spread
	                                evenly; 0 none */
	int64_t spread_ms;           /* how long spread_rps holds (the reset);
	                                -1 none */
	struct learn_quota requests; /* the request quota seen (for /queues) */
	struct learn_quota tokens;   /* the token quota seen (shown, not
	                                paced) */

	/* Private accumulators, combined by learn_finish(). */
	bool retry_after_exact;      /* retry_after_ms is from retry-after-ms */
	struct learn_quota x;        /* X-RateLimit-{Limit,Remaining,Reset} */
	struct learn_quota x_req;    /* ...-Requests (OpenAI) */
	struct learn_quota x_tok;    /* ...-Tokens (OpenAI) */
	struct learn_quota an_req;   /* anthropic-ratelimit-requests-* */
	struct learn_quota an_tok;   /* anthropic-ratelimit-tokens-* */
	struct learn_quota an_in;    /* ...-input-tokens-* */
	struct learn_quota an_out;   /* ...-output-tokens-* */
	struct learn_quota ietf;     /* RateLimit-{Limit,Remaining,Reset} */
	struct learn_quota dict;     /* RateLimit: limit=, remaining=, reset= */
	int64_t list_pause_ms;       /* RateLimit: ...;r=0;t=N, -1 none */
	/* RateLimit items with r=0 but no t, by name hash. */
	uint64_t want[LEARN_MAX_POLICIES];
	unsigned n_want;
	/* RateLimit items, in order; the extra ones are dropped. */
	struct learn_item item[LEARN_MAX_POLICIES];
	unsigned n_item;
	/* RateLimit-Policy items with q or w; the extra ones are dropped. */
	struct learn_policy policy[LEARN_MAX_POLICIES];
	unsigned n_policy;
};

/* Sets every signal to absent. */
void learn_init(struct learn_signals *ls);

/*
 * Takes one response field: name is (name, name_len), value a
 * NUL-terminated field value. Unknown fields are ignored; unparsable values
 * of known ones increment ls->bad and are otherwise ignored. A field given
 * twice: the later value wins (RateLimit and RateLimit-Policy add up).
 */
void learn_field(struct learn_signals *ls, const char *name, size_t name_len,
                 const char *value, int64_t now_unix_ms);

/*
 * Combines the rate-limit fields into ls->pause_ms, the quotas
 * ls->requests and ls->tokens, and the rates of the request quota:
 * quota_rps = limit / window when both are known and > 0; spread_rps =
 * remaining / reset and spread_ms = reset when remaining > 0 and reset >
 * 0 (remaining 0 pauses instead). spread_rps may exceed quota_rps: the
 * caller takes the smaller. May be called again.
 */
void learn_finish(struct learn_signals *ls, int64_t now_unix_ms);

/*
 * X-EZTHROTTLE-RPS: a decimal > 0 ("10", "0.5", "2.50"), optional
 * surrounding whitespace. No sign, exponent, hex, inf or nan.
 * 0, -EINVAL or -ERANGE (not finite).
 */
int learn_parse_rps(const char *s, double *ret);

/*
 * X-EZTHROTTLE-MAX-CONCURRENT: an integer 1..LEARN_MAX_CONCURRENCY,
 * optional surrounding whitespace. 0, -EINVAL or -ERANGE.
 */
int learn_parse_concurrency(const char *s, unsigned *ret);

/*
 * Retry-After (RFC 9110 section 10.2.3): delta-seconds (a fraction is
 * tolerated and rounded up to the millisecond; more than 2^31 s counts as
 * 2^31 s) or an HTTP-date in any of its three forms (section 5.6.7).
 * Writes the delay from now in ms; a date in the past gives 0.
 * 0 or -EINVAL.
 */
int learn_parse_retry_after(const char *s, int64_t now_unix_ms,
                            int64_t *ret_ms);

/*
 * An HTTP-date: IMF-fixdate "Sun, 06 Nov 1994 08:49:37 GMT", rfc850-date
 * "Sunday, 06-Nov-94 08:49:37 GMT" (two-digit year: the nearest year not
 * more than 50 years after now) or asctime "Sun Nov  6 08:49:37 1994".
 * Writes Unix milliseconds. 0 or -EINVAL.
 */
int learn_parse_http_date(const char *s, int64_t now_unix_ms,
                          int64_t *ret_unix_ms);

/*
 * An RFC 3339 date-time (section 5.6), as Anthropic's resets are written:
 * "2026-12-06T12:00:00Z", "2026-12-06T13:00:00.25+01:00". "T" and "Z" in
 * either case, or a space for "T" (the section's note); seconds may be 60
 * (a leap second reads as the next one); a fraction of any length is
 * rounded up to the millisecond. Only numeric offsets ("-00:00" is UTC):
 * no time zone database. Writes Unix milliseconds. 0 or -EINVAL.
 */
int learn_parse_rfc3339(const char *s, int64_t *ret_unix_ms);

/*
 * X-RateLimit-Reset / RateLimit-Reset: a non-negative number, maybe
 * fractional, told apart by size: >= 10^12 is Unix milliseconds, >= 10^9
 * Unix seconds (GitHub), else seconds from now. A Go duration ("1m30s",
 * "6m0s", "250ms", as OpenAI sends) is also read as a delay. Writes the
 * delay from now in ms, rounded up; an epoch in the past gives 0.
 * 0, -EINVAL or -ERANGE (beyond year 9999).
 */
int learn_parse_reset(const char *s, int64_t now_unix_ms, int64_t *ret_ms);

/* v limited to [min, max]. */
double learn_clamp_rps(double v, double min, double max);

/* v limited to [1, max] (max 0 counts as 1). */
unsigned learn_clamp_concurrency(unsigned v, unsigned max);

#endif

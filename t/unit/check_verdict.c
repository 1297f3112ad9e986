/*
 * check_verdict.c - what one answer means: learned rate and concurrency
 * as the learn: switches and bounds allow, the pause from Retry-After
 * (429/503 only) or rate-limit fields (the longer, capped by
 * max_retry_after), and whether the request goes again (retry rules,
 * deadline).
 */
#include <check.h>
#include <string.h>

#include "config.h"
#include "engine_verdict.h"
#include "retry.h"
#include "testlib.h"

#define WALL 1800000000000LL     /* Unix ms, a fixed wall clock */

static struct config *cfg;
static char block[1024];
static size_t n_fields, used;
static struct verdict_learned v;

static void setup(void)
{
	cfg = config_new();
	ck_assert_ptr_nonnull(cfg);
	n_fields = used = 0;
}

static void teardown(void)
{
	config_free(cfg);
}

/* Appends a field to the answer's header block. */
static void field(const char *name, const char *value)
{
	size_t nl = strlen(name) + 1, vl = strlen(value) + 1;

	ck_assert_uint_lt(used + nl + vl, sizeof(block));
	memcpy(block + used, name, nl);
	memcpy(block + used + nl, value, vl);
	used += nl + vl;
	n_fields++;
}

static void learn(unsigned status)
{
	verdict_learn(cfg, block, n_fields, status, WALL, &v);
}

START_TEST(nothing)
{
	field("Content-Type", "text/plain");
	learn(200);
	ck_assert(v.rps == 0);
	ck_assert_uint_eq(v.concurrency, 0);
	ck_assert_int_eq(v.pause_ms, 0);
	ck_assert_int_eq(v.retry_after_ms, -1);
	ck_assert_uint_eq(v.bad, 0);
}
END_TEST

START_TEST(ezthrottle_clamped)
{
	field("X-EZTHROTTLE-RPS", "50000");
	field("X-EZTHROTTLE-MAX-CONCURRENT", "4");
	learn(200);
	ck_assert(v.rps == cfg->learn.max_rps);
	ck_assert_uint_eq(v.concurrency, 4);

	n_fields = used = 0;
	field("x-ezthrottle-rps", "0.001");
	field("X-EZTHROTTLE-MAX-CONCURRENT", "99999");
	learn(200);
	ck_assert(v.rps == cfg->learn.min_rps);
	ck_assert_uint_eq(v.concurrency, cfg->learn.max_concurrency);
}
END_TEST

START_TEST(ezthrottle_off)
{
	cfg->learn.ezthrottle_headers = false;
	field("X-EZTHROTTLE-RPS", "5");
	field("X-EZTHROTTLE-MAX-CONCURRENT", "4");
	learn(200);
	ck_assert(v.rps == 0);
	ck_assert_uint_eq(v.concurrency, 0);
}
END_TEST

START_TEST(bad_counted)
{
	field("X-EZTHROTTLE-RPS", "fast");
	learn(200);
	ck_assert(v.rps == 0);
	ck_assert_uint_eq(v.bad, 1);
}
END_TEST

START_TEST(retry_after_pauses_429_and_503_only)
{
	field("Retry-After", "7");
	learn(429);
	ck_assert_int_eq(v.pause_ms, 7000);
	ck_assert_int_eq(v.retry_after_ms, 7000);
	learn(503);
	ck_assert_int_eq(v.pause_ms, 7000);
	learn(500);
	ck_assert_int_eq(v.pause_ms, 0);
	ck_assert_int_eq(v.retry_after_ms, 7000);

	cfg->learn.retry_after = false;
	learn(429);
	ck_assert_int_eq(v.pause_ms, 0);
	/* Still the retry's delay: only the pause is switched off. */
	ck_assert_int_eq(v.retry_after_ms, 7000);
}
END_TEST

START_TEST(ratelimit_pause_longer_wins)
{
	field("Retry-After", "3");
	field("X-RateLimit-Remaining", "0");
	field("X-RateLimit-Reset", "9");
	learn(429);
	ck_assert_int_eq(v.pause_ms, 9000);

	cfg->learn.ratelimit_headers = false;
	learn(429);
	ck_assert_int_eq(v.pause_ms, 3000);
	/* Any status: the quota is spent whatever the answer. */
	cfg->learn.ratelimit_headers = true;
	learn(200);
	ck_assert_int_eq(v.pause_ms, 9000);
}
END_TEST

START_TEST(pause_capped)
{
	cfg->retry.max_retry_after = 60 * 1000;
	field("Retry-After", "3600");
	learn(429);
	ck_assert_int_eq(v.pause_ms, 60 * 1000);
	ck_assert_int_eq(v.retry_after_ms, 3600 * 1000);
}
END_TEST

static struct retry_rules rules;

static void rules_init(unsigned max_retries)
{
	static const unsigned on[] = { 429, 502, 503 };

	retry_rules_init(&rules, max_retries, on, 3, false);
}

START_TEST(quota_openai)
{
	/* OpenAI: 60 requests a minute, 59 left, whole again in 1 s. */
	field("x-ratelimit-limit-requests", "60");
	field("x-ratelimit-remaining-requests", "59");
	field("x-ratelimit-reset-requests", "1s");
	field("x-ratelimit-limit-tokens", "150000");
	field("x-ratelimit-remaining-tokens", "149984");
	field("x-ratelimit-reset-tokens", "6m0s");
	learn(200);
	ck_assert_double_eq_tol(v.rps, 1.0, 1e-9);
	ck_assert_int_eq(v.rps_source, SCHED_RATE_QUOTA);
	ck_assert_int_eq(v.requests.limit, 60);
	ck_assert_int_eq(v.requests.remaining, 59);
	ck_assert_int_eq(v.tokens.limit, 150000);
	ck_assert_int_eq(v.tokens.remaining, 149984);
	ck_assert_int_eq(v.pause_ms, 0);
}
END_TEST

START_TEST(quota_spread)
{
	/*
	 * GitHub: no window stated; 4999 left for the next hour, spread
	 * over it, and the next hour's first at its start.
	 */
	field("x-ratelimit-limit", "5000");
	field("x-ratelimit-remaining", "4999");
	field("x-ratelimit-reset", "1800003600");
	learn(200);
	ck_assert_double_eq_tol(v.rps, 5000.0 / 3600, 1e-6);
	ck_assert_int_eq(v.rps_source, SCHED_RATE_QUOTA);

	/*
	 * IETF: 10 a second, 3 left "within 1 s" (whole seconds): the
	 * window is known, evenly 10/s never overruns it.
	 */
	n_fields = used = 0;
	field("RateLimit-Policy", "\"default\";q=10;w=1");
	field("RateLimit", "\"default\";r=3;t=1");
	learn(200);
	ck_assert_double_eq_tol(v.rps, 10.0, 1e-9);

	/* A token bucket empty: one token back, not the whole bucket. */
	n_fields = used = 0;
	field("x-ratelimit-limit-requests", "60");
	field("x-ratelimit-remaining-requests", "0");
	field("x-ratelimit-reset-requests", "6m0s");
	learn(429);
	ck_assert_int_eq(v.pause_ms, 1000);
	n_fields = used = 0;
	field("anthropic-ratelimit-requests-limit", "50");
	field("anthropic-ratelimit-requests-remaining", "0");
	field("anthropic-ratelimit-requests-reset", "2027-01-15T08:01:00Z");
	learn(429);
	ck_assert_int_eq(v.pause_ms, 1200);

	/* Nothing left: a pause, not a rate. */
	n_fields = used = 0;
	field("RateLimit-Policy", "\"default\";q=10;w=1");
	field("RateLimit", "\"default\";r=0;t=1");
	learn(200);
	ck_assert_int_eq(v.pause_ms, 1000);
}
END_TEST

START_TEST(quota_under_ezthrottle_and_off)
{
	/* X-EZTHROTTLE-RPS is said for this proxy: it wins. */
	field("x-ratelimit-limit-requests", "60");
	field("x-ratelimit-remaining-requests", "59");
	field("x-ratelimit-reset-requests", "1s");
	field("X-EZTHROTTLE-RPS", "5");
	learn(200);
	ck_assert(v.rps == 5);
	ck_assert_int_eq(v.rps_source, SCHED_RATE_EZTHROTTLE);

	/* Clamped like any learned rate. */
	n_fields = used = 0;
	field("RateLimit-Policy", "100000;w=1");
	learn(200);
	ck_assert(v.rps == cfg->learn.max_rps);

	/* learn.ratelimit_headers: false: quotas are only shown. */
	cfg->learn.ratelimit_headers = false;
	n_fields = used = 0;
	field("x-ratelimit-limit-requests", "60");
	field("x-ratelimit-remaining-requests", "59");
	field("x-ratelimit-reset-requests", "1s");
	learn(200);
	ck_assert(v.rps == 0);
	ck_assert_int_eq(v.requests.limit, 60);
}
END_TEST

START_TEST(retry_by_rules)
{
	rules_init(2);
	/* A retryable status with Retry-After: that delay. */
	ck_assert_int_eq(verdict_retry(cfg, &rules, 1, 429, 2000, 0,
	                               60000, 0), 2000);
	/* Not in the set: final. */
	ck_assert_int_eq(verdict_retry(cfg, &rules, 1, 404, -1, 0, 60000, 0),
	                 -1);
	/* Backoff with full jitter: within [0, base]. */
	int64_t d = verdict_retry(cfg, &rules, 1, 503, -1, 0, 60000,
	                          UINT64_MAX);
	ck_assert_int_ge(d, 0);
	ck_assert_int_le(d, cfg->retry.backoff_base);
	/* Out of retries: two attempts made after the first. */
	ck_assert_int_eq(verdict_retry(cfg, &rules, 3, 429, 10, 0, 60000, 0),
	                 -1);
}
END_TEST

START_TEST(retry_never_past_deadline)
{
	rules_init(5);
	/* Deadline already reached. */
	ck_assert_int_eq(verdict_retry(cfg, &rules, 1, 429, 10, 5000, 5000, 0),
	                 -1);
	/* The wait would end at or after the deadline. */
	ck_assert_int_eq(verdict_retry(cfg, &rules, 1, 429, 1000, 4000, 5000,
	                               0), -1);
	ck_assert_int_eq(verdict_retry(cfg, &rules, 1, 429, 999, 4000, 5000,
	                               0), 999);
	/* Retry-After beyond max_retry_after: given up. */
	ck_assert_int_eq(verdict_retry(cfg, &rules, 1, 429,
	                               cfg->retry.max_retry_after + 1, 0,
	                               INT64_MAX, 0), -1);
}
END_TEST

static Suite *verdict_suite(void)
{
	Suite *s = suite_create("verdict");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, nothing);
	tcase_add_test(tc, ezthrottle_clamped);
	tcase_add_test(tc, ezthrottle_off);
	tcase_add_test(tc, quota_openai);
	tcase_add_test(tc, quota_spread);
	tcase_add_test(tc, quota_under_ezthrottle_and_off);
	tcase_add_test(tc, bad_counted);
	tcase_add_test(tc, retry_after_pauses_429_and_503_only);
	tcase_add_test(tc, ratelimit_pause_longer_wins);
	tcase_add_test(tc, pause_capped);
	tcase_add_test(tc, retry_by_rules);
	tcase_add_test(tc, retry_never_past_deadline);
	suite_add_tcase(s, tc);
	return s;
}

TESTLIB_MAIN(verdict_suite)

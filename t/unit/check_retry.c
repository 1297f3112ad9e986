/*
 * check_retry.c - the retry policy: rules, the per-request overrides,
 * full-jitter backoff bounds and retry_decide() on a table.
 */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "retry.h"
#include "testlib.h"

/* Check's ck_assert_*() costs a pipe write per success; loops use this. */
#define CHECK(cond) \
	do { \
		if (!(cond)) \
			ck_abort_msg("%s:%d: %s", __FILE__, __LINE__, #cond); \
	} while (0)

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* The defaults of sluice.yaml's retry: block. */
#define BASE_MS 500
#define CAP_MS 30000
#define MAX_RA_MS 300000
#define MAX_RETRIES 5

static const unsigned default_on[] = { 429, 502, 503, 504 };

/* Fixed-seed xorshift64*, so every run sees the same values. */
static uint64_t rng_state = 0xbac0ff5eedULL;

static uint64_t rng_next(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dULL;
}

/* The statuses 0..639 in r, as a count, checking has() against on[]. */
static unsigned count_statuses(const struct retry_rules *r)
{
	unsigned s, n = 0;

	for (s = 0; s < RETRY_STATUS_LIMIT; s++) {
		CHECK(retry_rules_has(r, s) ==
		      (bool)((r->on[s / 64] >> (s % 64)) & 1));
		n += retry_rules_has(r, s);
	}
	return n;
}

START_TEST(test_rules_init)
{
	static const unsigned odd[] = { 429, 429, 639, 640, 1000, 65535 };
	struct retry_rules r;

	retry_rules_init(&r, MAX_RETRIES, default_on, N_ELEMS(default_on),
	                 false);
	ck_assert_uint_eq(r.max_retries, MAX_RETRIES);
	ck_assert(!r.idempotent);
	ck_assert(retry_rules_has(&r, 429));
	ck_assert(retry_rules_has(&r, 502));
	ck_assert(retry_rules_has(&r, 503));
	ck_assert(retry_rules_has(&r, 504));
	ck_assert(!retry_rules_has(&r, 500));
	ck_assert(!retry_rules_has(&r, 0));
	ck_assert(!retry_rules_has(&r, 640));
	ck_assert(!retry_rules_has(&r, 100000));
	ck_assert_uint_eq(count_statuses(&r), 4);

	retry_rules_init(&r, 0, default_on, N_ELEMS(default_on), true);
	ck_assert(r.idempotent);
	ck_assert(retry_rules_has(&r, 500));
	ck_assert_uint_eq(count_statuses(&r), 5);

	/* Out-of-range codes are ignored; 639 is the last one kept. */
	retry_rules_init(&r, 1, odd, N_ELEMS(odd), false);
	ck_assert(retry_rules_has(&r, 429));
	ck_assert(retry_rules_has(&r, 639));
	ck_assert_uint_eq(count_statuses(&r), 2);

	retry_rules_init(&r, 1, NULL, 0, false);
	ck_assert_uint_eq(count_statuses(&r), 0);
	retry_rules_init(&r, 1, NULL, 0, true);
	ck_assert_uint_eq(count_statuses(&r), 1);
}
END_TEST

START_TEST(test_parse_max)
{
	static const struct {
		const char *s;
		unsigned v;
	} good[] = {
		{ "0", 0 }, { "5", 5 }, { " 7 ", 7 }, { "\t3", 3 },
		{ "0005", 5 }, { "1000", 1000 }, { "999", 999 },
	};
	static const struct {
		const char *s;
		int err;
	} bad[] = {
		{ "", -EINVAL }, { " ", -EINVAL }, { "-1", -EINVAL },
		{ "+1", -EINVAL }, { "1.0", -EINVAL }, { "abc", -EINVAL },
		{ "5x", -EINVAL }, { "1 2", -EINVAL }, { "0x5", -EINVAL },
		{ "5,6", -EINVAL }, { "1e3", -EINVAL }, { "5\r", -EINVAL },
		{ "1001", -ERANGE }, { "4294967296", -ERANGE },
		{ "99999999999999999999999", -ERANGE },
	};
	size_t i;
	unsigned v;
	int r;

	for (i = 0; i < N_ELEMS(good); i++) {
		v = 12345;
		r = retry_parse_max(good[i].s, &v);
		ck_assert_msg(r == 0 && v == good[i].v, "'%s' -> %d %u",
		              good[i].s, r, v);
	}
	for (i = 0; i < N_ELEMS(bad); i++) {
		v = 12345;
		r = retry_parse_max(bad[i].s, &v);
		ck_assert_msg(r == bad[i].err && v == 12345, "'%s' -> %d",
		              bad[i].s, r);
	}
}
END_TEST

START_TEST(test_parse_on)
{
	static const struct {
		const char *s;
		unsigned codes[4];       /* 0-terminated */
	} good[] = {
		{ "429,503", { 429, 503 } },
		{ " 429 , 503 ", { 429, 503 } },
		{ "\t429,\t503\t", { 429, 503 } },
		{ "500", { 500 } },
		{ "100,599", { 100, 599 } },
		{ "429,429", { 429 } },
		{ "503,502,504", { 502, 503, 504 } },
		{ "0429", { 429 } },
	};
	static const char *const bad[] = {
		"", " ", ",", "429,", ",429", "429,,503", "429, ,503", "99",
		"600", "099", "0", "1000", "4294967725", "abc", "429;503",
		"429 503", "-429", "+429", "42 9", "429x", "4.29", "429,abc",
		"0x1f5",
	};
	struct retry_rules r, before;
	size_t i, j;

	for (i = 0; i < N_ELEMS(good); i++) {
		retry_rules_init(&r, MAX_RETRIES, default_on,
		                 N_ELEMS(default_on), true);
		ck_assert_msg(retry_parse_on(good[i].s, &r) == 0,
		              "'%s' rejected", good[i].s);
		for (j = 0; good[i].codes[j]; j++)
			ck_assert_msg(retry_rules_has(&r, good[i].codes[j]),
			              "'%s' lacks %u", good[i].s,
			              good[i].codes[j]);
		/* Replaced exactly: 500 is not added back. */
		ck_assert_msg(count_statuses(&r) == j, "'%s'", good[i].s);
		/* Only the set changes. */
		ck_assert_uint_eq(r.max_retries, MAX_RETRIES);
		ck_assert(r.idempotent);
	}
	for (i = 0; i < N_ELEMS(bad); i++) {
		retry_rules_init(&r, MAX_RETRIES, default_on,
		                 N_ELEMS(default_on), false);
		before = r;
		ck_assert_msg(retry_parse_on(bad[i], &r) == -EINVAL,
		              "'%s' accepted", bad[i]);
		ck_assert_msg(memcmp(&r, &before, sizeof(r)) == 0,
		              "'%s' changed the rules", bad[i]);
	}
}
END_TEST

START_TEST(test_method_idempotent)
{
	static const char *const yes[] = {
		"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE",
	};
	static const char *const no[] = {
		"POST", "PATCH", "CONNECT", "", "get", "Get", "put", "GETX",
		"GE", " GET", "GET ", "PROPFIND",
	};
	size_t i;

	for (i = 0; i < N_ELEMS(yes); i++)
		ck_assert_msg(retry_method_idempotent(yes[i]), "%s", yes[i]);
	for (i = 0; i < N_ELEMS(no); i++)
		ck_assert_msg(!retry_method_idempotent(no[i]), "'%s'", no[i]);
}
END_TEST

/* min(cap, base * 2^(attempt - 1)), computed the slow, obvious way. */
static int64_t ref_bound(unsigned attempt, int64_t base, int64_t cap)
{
	int64_t b = base;
	unsigned i;

	for (i = 1; i < attempt && b < cap; i++)
		b = b > cap / 2 ? cap : b * 2;
	return b < cap ? b : cap;
}

/* 10^5 draws per attempt: in bounds, and the mean about half the bound. */
START_TEST(test_backoff_bounds)
{
	static const unsigned attempts[] = { 1, 2, 3, 4, 5, 6, 7, 8, 10, 60 };
	const int n = 100000;
	int64_t bound, d, lo, hi;
	double sum, mean;
	size_t a;
	int i;

	for (a = 0; a < N_ELEMS(attempts); a++) {
		bound = ref_bound(attempts[a], BASE_MS, CAP_MS);
		sum = 0;
		lo = INT64_MAX;
		hi = -1;
		for (i = 0; i < n; i++) {
			d = retry_backoff_ms(attempts[a], BASE_MS, CAP_MS,
			                     rng_next());
			CHECK(d >= 0 && d <= bound);
			sum += (double)d;
			lo = d < lo ? d : lo;
			hi = d > hi ? d : hi;
		}
		/* The mean's standard error is bound / sqrt(12 n), < 0.1%
		 * of the bound: 2% is many sigmas away. */
		mean = sum / n;
		ck_assert_msg(mean > bound * 0.48 && mean < bound * 0.52,
		              "attempt %u: mean %f, bound %lld", attempts[a],
		              mean, (long long)bound);
		/* Both ends are reached (or nearly, for wide bounds). */
		ck_assert_int_le(lo, bound / 1000);
		ck_assert_int_ge(hi, bound - bound / 1000);
	}
	ck_assert_int_eq(ref_bound(1, BASE_MS, CAP_MS), 500);
	ck_assert_int_eq(ref_bound(4, BASE_MS, CAP_MS), 4000);
	ck_assert_int_eq(ref_bound(7, BASE_MS, CAP_MS), 30000);
}
END_TEST

START_TEST(test_backoff_edges)
{
	static const unsigned attempts[] = {
		0, 1, 2, 31, 32, 33, 62, 63, 64, 65, 100, 1000, 65536,
		UINT32_MAX,
	};
	static const uint64_t randoms[] = {
		0, 1, 499, 500, 501, 29999, 30000, 30001, UINT32_MAX,
		(uint64_t)INT64_MAX, (uint64_t)INT64_MAX + 1, UINT64_MAX,
	};
	size_t a, k;
	int64_t bound, d;

	/* The exact value: random mod (bound + 1). */
	for (a = 0; a < N_ELEMS(attempts); a++) {
		bound = ref_bound(attempts[a] ? attempts[a] : 1, BASE_MS,
		                  CAP_MS);
		for (k = 0; k < N_ELEMS(randoms); k++) {
			d = retry_backoff_ms(attempts[a], BASE_MS, CAP_MS,
			                     randoms[k]);
			ck_assert_msg(d == (int64_t)(randoms[k] %
			                             (uint64_t)(bound + 1)),
			              "attempt %u random %llu: %lld",
			              attempts[a],
			              (unsigned long long)randoms[k],
			              (long long)d);
		}
	}
	/* Attempt 0 counts as the first retry. */
	ck_assert_int_eq(retry_backoff_ms(0, 500, 30000, 500), 500);
	ck_assert_int_eq(retry_backoff_ms(0, 500, 30000, 501), 0);
	/* Huge attempts, huge caps: no overflow. */
	ck_assert_int_eq(retry_backoff_ms(1000, 500, INT64_MAX, UINT64_MAX),
	                 (int64_t)(UINT64_MAX % ((uint64_t)INT64_MAX + 1)));
	ck_assert_int_eq(retry_backoff_ms(64, 1, INT64_MAX,
	                                  (uint64_t)INT64_MAX),
	                 INT64_MAX);
	ck_assert_int_eq(retry_backoff_ms(63, 1, INT64_MAX, UINT64_MAX),
	                 (int64_t)(UINT64_MAX % ((UINT64_C(1) << 62) + 1)));
	ck_assert_int_eq(retry_backoff_ms(62, 1, INT64_MAX, UINT64_MAX),
	                 (int64_t)(UINT64_MAX % ((UINT64_C(1) << 61) + 1)));
	ck_assert_int_eq(retry_backoff_ms(2, INT64_MAX, INT64_MAX, 5), 5);
	ck_assert_int_eq(retry_backoff_ms(1000, INT64_MAX / 3, INT64_MAX / 2,
	                                  UINT64_MAX),
	                 (int64_t)(UINT64_MAX % ((uint64_t)INT64_MAX / 2 + 1)));
	/* A base above the cap: the cap. */
	ck_assert_int_eq(retry_backoff_ms(1, 5000, 1000, 1000), 1000);
	ck_assert_int_eq(retry_backoff_ms(1, 5000, 1000, 1001), 0);
	/* Zero or negative base or cap: no delay. */
	ck_assert_int_eq(retry_backoff_ms(3, 0, 30000, 12345), 0);
	ck_assert_int_eq(retry_backoff_ms(3, 500, 0, 12345), 0);
	ck_assert_int_eq(retry_backoff_ms(3, -500, 30000, 12345), 0);
	ck_assert_int_eq(retry_backoff_ms(3, 500, -1, 12345), 0);
}
END_TEST

/* A delay_ms meaning "the backoff for this attempt". */
#define BACKOFF (-2)

START_TEST(test_decide_table)
{
	static const struct {
		unsigned max;            /* max_retries */
		bool idem;
		const char *on;          /* X-EZTHROTTLE-RETRY-ON, or NULL */
		unsigned attempts;
		unsigned status;
		int64_t ra;              /* retry_after_ms */
		enum retry_verdict verdict;
		int64_t delay;           /* or BACKOFF */
		const char *reason;
	} cases[] = {
		/* The default set; 500 only when idempotent. */
		{ 5, false, NULL, 1, 429, -1, RETRY_YES, BACKOFF, "backoff" },
		{ 5, false, NULL, 1, 502, -1, RETRY_YES, BACKOFF, "backoff" },
		{ 5, false, NULL, 2, 503, -1, RETRY_YES, BACKOFF, "backoff" },
		{ 5, false, NULL, 3, 504, -1, RETRY_YES, BACKOFF, "backoff" },
		{ 5, false, NULL, 1, 500, -1, RETRY_NO, 0,
		  "status not retryable" },
		{ 5, true, NULL, 1, 500, -1, RETRY_YES, BACKOFF, "backoff" },
		{ 5, true, NULL, 1, 200, -1, RETRY_NO, 0,
		  "status not retryable" },
		{ 5, true, NULL, 1, 404, -1, RETRY_NO, 0,
		  "status not retryable" },
		{ 5, true, NULL, 1, 501, -1, RETRY_NO, 0,
		  "status not retryable" },
		{ 5, true, NULL, 1, 505, -1, RETRY_NO, 0,
		  "status not retryable" },
		{ 5, false, NULL, 1, 999, -1, RETRY_NO, 0,
		  "status not retryable" },
		/* Connection failed before any response byte. */
		{ 5, false, NULL, 1, 0, -1, RETRY_YES, BACKOFF,
		  "connection failed" },
		{ 5, false, NULL, 5, 0, -1, RETRY_YES, BACKOFF,
		  "connection failed" },
		{ 5, false, NULL, 6, 0, -1, RETRY_NO, 0,
		  "retries exhausted" },
		{ 0, false, NULL, 1, 0, -1, RETRY_NO, 0,
		  "retries exhausted" },
		/* Exhaustion: attempts_done counts this attempt. */
		{ 5, false, NULL, 5, 429, -1, RETRY_YES, BACKOFF, "backoff" },
		{ 5, false, NULL, 6, 429, -1, RETRY_NO, 0,
		  "retries exhausted" },
		{ 5, false, NULL, 1000, 429, -1, RETRY_NO, 0,
		  "retries exhausted" },
		{ 1000, false, NULL, 1000, 429, -1, RETRY_YES, BACKOFF,
		  "backoff" },
		{ 1, false, NULL, 1, 429, -1, RETRY_YES, BACKOFF, "backoff" },
		{ 1, false, NULL, 2, 429, -1, RETRY_NO, 0,
		  "retries exhausted" },
		/* max_retries 0: never, whatever else. */
		{ 0, true, NULL, 1, 429, -1, RETRY_NO, 0,
		  "retries exhausted" },
		{ 0, true, NULL, 1, 503, 1000, RETRY_NO, 0,
		  "retries exhausted" },
		{ 0, true, NULL, 0, 429, -1, RETRY_NO, 0,
		  "retries exhausted" },
		{ 0, true, "429", 1, 429, -1, RETRY_NO, 0,
		  "retries exhausted" },
		/* Retry-After: used as is, up to max_retry_after. */
		{ 5, false, NULL, 1, 429, 2000, RETRY_YES, 2000,
		  "retry-after" },
		{ 5, false, NULL, 4, 503, 0, RETRY_YES, 0, "retry-after" },
		{ 5, false, NULL, 1, 429, 120000, RETRY_YES, 120000,
		  "retry-after" },
		{ 5, false, NULL, 1, 429, MAX_RA_MS, RETRY_YES, MAX_RA_MS,
		  "retry-after" },
		{ 5, false, NULL, 1, 429, MAX_RA_MS + 1, RETRY_GIVE_UP, 0,
		  "retry-after too long" },
		{ 5, false, NULL, 1, 503, INT64_MAX, RETRY_GIVE_UP, 0,
		  "retry-after too long" },
		/* A non-retryable or exhausted attempt: Retry-After moot. */
		{ 5, false, NULL, 1, 200, 2000, RETRY_NO, 0,
		  "status not retryable" },
		{ 5, false, NULL, 1, 500, 2000, RETRY_NO, 0,
		  "status not retryable" },
		{ 5, false, NULL, 6, 429, MAX_RA_MS + 1, RETRY_NO, 0,
		  "retries exhausted" },
		/* Per-request X-EZTHROTTLE-RETRY-ON replaces the set. */
		{ 5, false, "503", 1, 429, -1, RETRY_NO, 0,
		  "status not retryable" },
		{ 5, false, "503", 1, 503, -1, RETRY_YES, BACKOFF,
		  "backoff" },
		{ 5, true, "429", 1, 500, -1, RETRY_NO, 0,
		  "status not retryable" },
		{ 5, false, "500", 1, 500, -1, RETRY_YES, BACKOFF,
		  "backoff" },
		{ 5, false, "404, 409", 1, 409, 3000, RETRY_YES, 3000,
		  "retry-after" },
		{ 5, false, "503", 1, 0, -1, RETRY_YES, BACKOFF,
		  "connection failed" },
	};
	struct retry_rules r;
	struct retry_decision d;
	uint64_t random;
	int64_t want;
	size_t i;

	for (i = 0; i < N_ELEMS(cases); i++) {
		retry_rules_init(&r, cases[i].max, default_on,
		                 N_ELEMS(default_on), cases[i].idem);
		if (cases[i].on)
			ck_assert_int_eq(retry_parse_on(cases[i].on, &r), 0);
		random = rng_next();
		d = retry_decide(&r, cases[i].attempts, cases[i].status,
		                 cases[i].ra, BASE_MS, CAP_MS, MAX_RA_MS,
		                 random);
		want = cases[i].delay;
		if (want == BACKOFF)
			want = (int64_t)(random % (uint64_t)(ref_bound(
				cases[i].attempts, BASE_MS, CAP_MS) + 1));
		ck_assert_msg(d.verdict == cases[i].verdict &&
		              d.delay_ms == want &&
		              strcmp(d.reason, cases[i].reason) == 0,
		              "case %zu: verdict %d delay %lld reason '%s', "
		              "want %d %lld '%s'", i, d.verdict,
		              (long long)d.delay_ms, d.reason,
		              cases[i].verdict, (long long)want,
		              cases[i].reason);
	}
}
END_TEST

/* X-EZTHROTTLE-MAX-RETRIES through retry_decide, and its bound. */
START_TEST(test_decide_max_override)
{
	struct retry_rules r;
	struct retry_decision d;
	unsigned max, n;

	retry_rules_init(&r, MAX_RETRIES, default_on, N_ELEMS(default_on),
	                 false);
	ck_assert_int_eq(retry_parse_max("0", &r.max_retries), 0);
	d = retry_decide(&r, 1, 429, -1, BASE_MS, CAP_MS, MAX_RA_MS, 7);
	ck_assert_int_eq(d.verdict, RETRY_NO);

	ck_assert_int_eq(retry_parse_max("1000", &max), 0);
	r.max_retries = max;
	for (n = 1; n <= 1001; n++) {
		d = retry_decide(&r, n, 503, -1, BASE_MS, CAP_MS, MAX_RA_MS,
		                 UINT64_MAX);
		if (n <= 1000) {
			CHECK(d.verdict == RETRY_YES);
			CHECK(d.delay_ms >= 0 && d.delay_ms <= CAP_MS);
		} else {
			CHECK(d.verdict == RETRY_NO);
			CHECK(d.delay_ms == 0);
		}
	}
}
END_TEST

static Suite *retry_suite(void)
{
	Suite *s = suite_create("retry");
	TCase *tc;

	tc = tcase_create("rules");
	tcase_add_test(tc, test_rules_init);
	tcase_add_test(tc, test_parse_max);
	tcase_add_test(tc, test_parse_on);
	tcase_add_test(tc, test_method_idempotent);
	suite_add_tcase(s, tc);

	tc = tcase_create("backoff");
	tcase_add_test(tc, test_backoff_bounds);
	tcase_add_test(tc, test_backoff_edges);
	suite_add_tcase(s, tc);

	tc = tcase_create("decide");
	tcase_add_test(tc, test_decide_table);
	tcase_add_test(tc, test_decide_max_override);
	suite_add_tcase(s, tc);
	return s;
}

TESTLIB_MAIN(retry_suite)

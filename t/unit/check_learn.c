/*
 * check_learn.c - rate-limit signals: each parser on tables of good and bad
 * values, HTTP-dates and RFC 3339 times against timegm(), structured-field
 * members, and whole responses through learn_field() / learn_finish().
 */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "learn.h"
#include "learn_sf.h"
#include "testlib.h"

/* Check's ck_assert_*() costs a pipe write per success; loops use this. */
#define CHECK(cond) \
	do { \
		if (!(cond)) \
			ck_abort_msg("%s:%d: %s", __FILE__, __LINE__, #cond); \
	} while (0)

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* 2023-11-14 22:13:20 UTC: the wall clock of most tests. */
#define NOW 1700000000000LL

/* 1994-11-06 08:49:37 UTC, the RFC 9110 example date. */
#define RFC_DATE 784111777000LL

/* 2^31 seconds: the most a delta-seconds can mean. */
#define DELTA_MAX_MS 2147483648000LL

struct bad_case {
	const char *s;
	int err;                     /* expected negative errno */
};

START_TEST(test_rps_good)
{
	static const struct {
		const char *s;
		double v;
	} good[] = {
		{ "10", 10 },
		{ "0.5", 0.5 },
		{ "2.50", 2.5 },
		{ "1", 1 },
		{ "007", 7 },
		{ "0.1", 0.1 },
		{ "0.001", 0.001 },
		{ "  3  ", 3 },
		{ "\t1.25\t", 1.25 },
		{ "10000", 10000 },
		{ "123.456", 123.456 },
		{ "0.000000000000000000001", 1e-21 },
		{ "123456789012345678901234567890", 1.2345678901234568e29 },
		{ "1.0000000000000000000000001", 1 },
	};
	size_t i;
	double v;

	for (i = 0; i < N_ELEMS(good); i++) {
		v = -1;
		if (learn_parse_rps(good[i].s, &v) != 0)
			ck_abort_msg("'%s' rejected", good[i].s);
		if (fabs(v - good[i].v) > fabs(good[i].v) * 1e-12)
			ck_abort_msg("'%s' -> %.17g, want %.17g", good[i].s, v,
			             good[i].v);
	}
}
END_TEST

START_TEST(test_rps_bad)
{
	static const char ten_400[] =
		"1000000000000000000000000000000000000000000000000000000000"
		"0000000000000000000000000000000000000000000000000000000000"
		"0000000000000000000000000000000000000000000000000000000000"
		"0000000000000000000000000000000000000000000000000000000000"
		"0000000000000000000000000000000000000000000000000000000000"
		"0000000000000000000000000000000000000000000000000000000000"
		"0000000000000000000000000000000000000000000000000000000000";
	static const struct bad_case bad[] = {
		{ "", -EINVAL }, { " ", -EINVAL }, { "0", -EINVAL },
		{ "0.0", -EINVAL }, { "000", -EINVAL }, { "-1", -EINVAL },
		{ "-0.5", -EINVAL }, { "+1", -EINVAL }, { "1e3", -EINVAL },
		{ "1E3", -EINVAL }, { "0x10", -EINVAL }, { "0X1p4", -EINVAL },
		{ "inf", -EINVAL }, { "INF", -EINVAL }, { "infinity", -EINVAL },
		{ "nan", -EINVAL }, { "NaN", -EINVAL }, { "1.", -EINVAL },
		{ ".5", -EINVAL }, { "1.5x", -EINVAL }, { "1 2", -EINVAL },
		{ "1,5", -EINVAL }, { "abc", -EINVAL }, { "1..2", -EINVAL },
		{ "1.2.3", -EINVAL }, { "- 1", -EINVAL }, { "2 rps", -EINVAL },
		{ "1\n", -EINVAL }, { ten_400, -ERANGE },
	};
	size_t i;
	double v = 42;
	int r;

	for (i = 0; i < N_ELEMS(bad); i++) {
		r = learn_parse_rps(bad[i].s, &v);
		if (r != bad[i].err)
			ck_abort_msg("'%.20s' -> %d, want %d", bad[i].s, r,
			             bad[i].err);
	}
	/* Outputs are written only on success. */
	ck_assert(v == 42);
}
END_TEST

START_TEST(test_concurrency)
{
	static const struct {
		const char *s;
		unsigned v;
	} good[] = {
		{ "1", 1 }, { "2", 2 }, { " 4 ", 4 }, { "\t16", 16 },
		{ "0001", 1 }, { "1024", 1024 }, { "1000000", 1000000 },
	};
	static const struct bad_case bad[] = {
		{ "", -EINVAL }, { "0", -EINVAL }, { "00", -EINVAL },
		{ "-1", -EINVAL }, { "+3", -EINVAL }, { "1.0", -EINVAL },
		{ "2.5", -EINVAL }, { "4x", -EINVAL }, { "x", -EINVAL },
		{ "0x10", -EINVAL }, { "1 2", -EINVAL }, { "1e3", -EINVAL },
		{ "1000001", -ERANGE }, { "4294967297", -ERANGE },
		{ "99999999999999999999999999", -ERANGE },
	};
	size_t i;
	unsigned v;
	int r;

	for (i = 0; i < N_ELEMS(good); i++) {
		v = 0;
		ck_assert_msg(learn_parse_concurrency(good[i].s, &v) == 0 &&
		              v == good[i].v, "'%s' -> %u", good[i].s, v);
	}
	for (i = 0; i < N_ELEMS(bad); i++) {
		v = 7;
		r = learn_parse_concurrency(bad[i].s, &v);
		ck_assert_msg(r == bad[i].err && v == 7, "'%s' -> %d",
		              bad[i].s, r);
	}
}
END_TEST

START_TEST(test_http_date_forms)
{
	static const struct {
		const char *s;
		int64_t now;
		int64_t when;
	} good[] = {
		/* The three forms of RFC 9110 section 5.6.7. */
		{ "Sun, 06 Nov 1994 08:49:37 GMT", NOW, RFC_DATE },
		{ "Sunday, 06-Nov-94 08:49:37 GMT", NOW, RFC_DATE },
		{ "Sun Nov  6 08:49:37 1994", NOW, RFC_DATE },
		/* Names in any case; surrounding whitespace. */
		{ "sun, 06 nov 1994 08:49:37 gmt", NOW, RFC_DATE },
		{ "SUNDAY, 06-NOV-94 08:49:37 GMT", NOW, RFC_DATE },
		{ "  Sun, 06 Nov 1994 08:49:37 GMT\t", NOW, RFC_DATE },
		/* A wrong weekday is not checked. */
		{ "Mon, 06 Nov 1994 08:49:37 GMT", NOW, RFC_DATE },
		{ "Thu, 01 Jan 1970 00:00:00 GMT", NOW, 0 },
		{ "Thu, 29 Feb 2024 12:00:00 GMT", NOW, 1709208000000LL },
		{ "Tue, 29 Feb 2000 00:00:00 GMT", NOW, 951782400000LL },
		{ "Fri, 31 Dec 9999 23:59:59 GMT", NOW, 253402300799000LL },
		{ "Sun Nov 16 08:49:37 1994", NOW, RFC_DATE + 10 * 86400000LL },
		/* A leap second is let through (it reads as :00 next). */
		{ "Sat, 31 Dec 2016 23:59:60 GMT", NOW, 1483228800000LL },
		/* Two-digit years: at most 50 years ahead of now (2023). */
		{ "Thursday, 01-Jan-70 00:00:00 GMT", NOW, 3155760000000LL },
		{ "Sunday, 01-Jan-73 00:00:00 GMT", NOW, 3250454400000LL },
		{ "Tuesday, 01-Jan-74 00:00:00 GMT", NOW, 126230400000LL },
		{ "Saturday, 01-Jan-80 00:00:00 GMT", NOW, 315532800000LL },
		{ "Friday, 01-Jan-99 00:00:00 GMT", NOW, 915148800000LL },
		{ "Saturday, 01-Jan-00 00:00:00 GMT", NOW, 946684800000LL },
		/* ... and from 1994's point of view. */
		{ "Friday, 01-Jan-99 00:00:00 GMT", RFC_DATE, 915148800000LL },
		{ "Wednesday, 01-Jan-70 00:00:00 GMT", RFC_DATE, 0 },
		{ "Thursday, 01-Jan-44 00:00:00 GMT", RFC_DATE,
		  2335219200000LL },
		{ "Saturday, 01-Jan-45 00:00:00 GMT", RFC_DATE,
		  -788918400000LL },
	};
	static const char *const bad[] = {
		"", "Sun", "Sun,", "GMT", "784111777",
		"Sun, 6 Nov 1994 08:49:37 GMT",
		"Sun, 06 Nov 94 08:49:37 GMT",
		"Sun, 06 Nov 1994 08:49:37 UTC",
		"Sun, 06 Nov 1994 08:49:37 +0000",
		"Sun, 06 Nov 1994 08:49:37",
		"Sun, 06 Nov 1994 08:49 GMT",
		"Sun, 06 Nov 1994 8:49:37 GMT",
		"Sun, 06 Nov 1994 24:00:00 GMT",
		"Sun, 06 Nov 1994 08:60:00 GMT",
		"Sun, 06 Nov 1994 08:49:61 GMT",
		"Sun, 00 Nov 1994 08:49:37 GMT",
		"Sun, 31 Nov 1994 08:49:37 GMT",
		"Wed, 29 Feb 2023 08:49:37 GMT",
		"Mon, 29 Feb 1900 08:49:37 GMT",
		"Foo, 06 Nov 1994 08:49:37 GMT",
		"Sun, 06 Xyz 1994 08:49:37 GMT",
		"Sun, 06 November 1994 08:49:37 GMT",
		"Sun,06 Nov 1994 08:49:37 GMT",
		"Sun, 06  Nov 1994 08:49:37 GMT",
		"Sun, 06 Nov 1994 08:49:37 GMTx",
		"Sun, 06 Nov 1994 08:49:37 GMT x",
		"Sun, 06 Nov 19940 08:49:37 GMT",
		"Sunday, 06-Nov-1994 08:49:37 GMT",
		"Sunday, 06-Nov-94 08:49:37",
		"Sunday, 6-Nov-94 08:49:37 GMT",
		"Sun Nov 6 08:49:37 1994",
		"Sun Nov   6 08:49:37 1994",
		"Sun Nov  6 08:49:37 94",
		"Sun Nov  6 08:49:37 1994 GMT",
		"Sun 06 Nov 1994 08:49:37 GMT",
		"Sun, 06 Nov 1994 08:49:37 GMT\r\n",
	};
	size_t i;
	int64_t when;

	for (i = 0; i < N_ELEMS(good); i++) {
		when = -1;
		if (learn_parse_http_date(good[i].s, good[i].now, &when) != 0)
			ck_abort_msg("'%s' rejected", good[i].s);
		if (when != good[i].when)
			ck_abort_msg("'%s' -> %lld, want %lld", good[i].s,
			             (long long)when, (long long)good[i].when);
	}
	for (i = 0; i < N_ELEMS(bad); i++) {
		when = 42;
		if (learn_parse_http_date(bad[i], NOW, &when) != -EINVAL ||
		    when != 42)
			ck_abort_msg("'%s' accepted", bad[i]);
	}
}
END_TEST

/* Fixed-seed xorshift64*, so every run sees the same values. */
static uint64_t rng_state = 0x1ea2ea7e5eedULL;

static uint64_t rng_next(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dULL;
}

/* t in HTTP-date form f (0 IMF, 1 rfc850, 2 asctime), C locale. */
static size_t format_date(char *buf, size_t size, unsigned f,
                          const struct tm *tm)
{
	size_t n;

	switch (f) {
	case 0:
		return strftime(buf, size, "%a, %d %b %Y %H:%M:%S GMT", tm);
	case 1:
		/* "%y" by hand: gcc's -Wformat-y2k frowns on it. */
		n = strftime(buf, size, "%A, %d-%b-", tm);
		n += (size_t)snprintf(buf + n, size - n, "%02d",
		                      (tm->tm_year + 1900) % 100);
		return n + strftime(buf + n, size - n, " %H:%M:%S GMT", tm);
	default:
		return strftime(buf, size, "%a %b %e %H:%M:%S %Y", tm);
	}
}

/* Random instants 1600..9999, in all three forms, against timegm(). */
START_TEST(test_http_date_random)
{
	const int64_t lo = -11676096000LL;      /* 1600-01-01 */
	const int64_t span = 253402300800LL - lo;
	char buf[64];
	struct tm tm;
	time_t t;
	int64_t when;
	unsigned f;
	int i;

	for (i = 0; i < 20000; i++) {
		t = (time_t)(lo + (int64_t)(rng_next() % (uint64_t)span));
		CHECK(gmtime_r(&t, &tm) != NULL);
		for (f = 0; f < 3; f++) {
			CHECK(format_date(buf, sizeof(buf), f, &tm) > 0);
			/* Now = the instant itself, so a two-digit year
			 * resolves to its own century. */
			when = -1;
			CHECK(learn_parse_http_date(buf, (int64_t)t * 1000,
			                            &when) == 0);
			if (when != (int64_t)timegm(&tm) * 1000)
				ck_abort_msg("'%s' -> %lld", buf,
				             (long long)when);
		}
	}
}
END_TEST

START_TEST(test_rfc3339)
{
	static const struct {
		const char *s;
		int64_t when;
	} good[] = {
		/* Anthropic's form, then the examples of RFC 3339 5.8. */
		{ "2026-12-06T12:00:00Z", 1796558400000LL },
		{ "1985-04-12T23:20:50.52Z", 482196050520LL },
		{ "1996-12-19T16:39:57-08:00", 851042397000LL },
		{ "1990-12-31T23:59:60Z", 662688000000LL },
		{ "1990-12-31T15:59:60-08:00", 662688000000LL },
		{ "1937-01-01T12:00:27.87+00:20", -1041337172130LL },
		/* Offsets; "-00:00" is UTC with an unknown local offset. */
		{ "2026-12-06T13:00:00+01:00", 1796558400000LL },
		{ "2026-12-06T13:00:00.25+01:00", 1796558400250LL },
		{ "2026-12-06T06:30:00-05:30", 1796558400000LL },
		{ "2026-12-07T11:59:00+23:59", 1796558400000LL },
		{ "2026-12-06T12:00:00-00:00", 1796558400000LL },
		{ "2026-12-06T12:00:00+00:00", 1796558400000LL },
		/* Lower-case "t" and "z" (5.6 note), or a space for "T". */
		{ "2026-12-06t12:00:00z", 1796558400000LL },
		{ "2026-12-06 12:00:00Z", 1796558400000LL },
		{ "  2026-12-06T12:00:00Z\t", 1796558400000LL },
		/* Fractions: any length, rounded up to the millisecond. */
		{ "2026-12-06T12:00:00.1Z", 1796558400100LL },
		{ "2026-12-06T12:00:00.123Z", 1796558400123LL },
		{ "2026-12-06T12:00:00.123000000Z", 1796558400123LL },
		{ "2026-12-06T12:00:00.1230001Z", 1796558400124LL },
		{ "2026-12-06T12:00:00.9999Z", 1796558401000LL },
		{ "2026-12-06T12:00:00.000Z", 1796558400000LL },
		/* Leap years. */
		{ "2024-02-29T00:00:00Z", 1709164800000LL },
		{ "2000-02-29T23:59:59-05:30", 951888599000LL },
		{ "1970-01-01T00:00:00Z", 0 },
		{ "1969-12-31T23:59:59Z", -1000 },
		{ "0001-01-01T00:00:00Z", -62135596800000LL },
		{ "9999-12-31T23:59:59Z", 253402300799000LL },
	};
	static const char *const bad[] = {
		"", " ", "2026", "2026-12-06", "12:00:00Z", "now",
		"1796558400", "Sun, 06 Dec 2026 12:00:00 GMT",
		/* Missing or malformed parts. */
		"2026-12-06T12:00:00", "2026-12-06T12:00Z",
		"2026-12-06T12:00:00+01", "2026-12-06T12:00:00+0100",
		"2026-12-06T12:00:00+1:00", "2026-12-06T12:00:00 Z",
		"2026-12-06T12:00:00ZZ", "2026-12-06T12:00:00Z x",
		"2026-12-06T12:00:00.Z", "2026-12-06T12:00:00,5Z",
		"2026-12-06T12:00:00UTC", "2026-12-06T12:00:00GMT",
		"2026-12-06X12:00:00Z", "2026-12-06TT12:00:00Z",
		"2026-12-06  12:00:00Z", "2026-12-6T12:00:00Z",
		"26-12-06T12:00:00Z", "+2026-12-06T12:00:00Z",
		"20261206T120000Z", "2026/12/06T12:00:00Z",
		"2026-12-06T1:00:00Z", "2026-12-06T12:00:00.5.5Z",
		"2026-12-06T12:00:00Z\r\n",
		/* Out of range. */
		"2026-00-06T12:00:00Z", "2026-13-06T12:00:00Z",
		"2026-12-00T12:00:00Z", "2026-12-32T12:00:00Z",
		"2026-11-31T12:00:00Z", "2023-02-29T12:00:00Z",
		"1900-02-29T12:00:00Z", "2026-12-06T24:00:00Z",
		"2026-12-06T12:60:00Z", "2026-12-06T12:00:61Z",
		"2026-12-06T12:00:00+24:00", "2026-12-06T12:00:00+01:60",
	};
	size_t i;
	int64_t when;

	for (i = 0; i < N_ELEMS(good); i++) {
		when = -7;
		if (learn_parse_rfc3339(good[i].s, &when) != 0)
			ck_abort_msg("'%s' rejected", good[i].s);
		if (when != good[i].when)
			ck_abort_msg("'%s' -> %lld, want %lld", good[i].s,
			             (long long)when, (long long)good[i].when);
	}
	for (i = 0; i < N_ELEMS(bad); i++) {
		when = 42;
		if (learn_parse_rfc3339(bad[i], &when) != -EINVAL || when != 42)
			ck_abort_msg("'%s' accepted", bad[i]);
	}
}
END_TEST

/* Random instants and offsets, written by strftime(), against timegm(). */
START_TEST(test_rfc3339_random)
{
	const int64_t lo = -11676096000LL;      /* 1600-01-01 */
	const int64_t span = 253402300800LL - 86400 - lo;
	char buf[64];
	struct tm tm;
	time_t t, local;
	int64_t when;
	int off, i;
	size_t n;

	for (i = 0; i < 20000; i++) {
		t = (time_t)(lo + (int64_t)(rng_next() % (uint64_t)span));
		/* -23:59 .. +23:59, in minutes. */
		off = (int)(rng_next() % (2 * 1439 + 1)) - 1439;
		local = t + off * 60;
		CHECK(gmtime_r(&local, &tm) != NULL);
		n = strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
		CHECK(n > 0);
		snprintf(buf + n, sizeof(buf) - n, "%c%02d:%02d",
		         off < 0 ? '-' : '+', abs(off) / 60, abs(off) % 60);
		when = -1;
		CHECK(learn_parse_rfc3339(buf, &when) == 0);
		if (when != (int64_t)t * 1000)
			ck_abort_msg("'%s' -> %lld, want %lld", buf,
			             (long long)when, (long long)t * 1000);
	}
}
END_TEST

START_TEST(test_retry_after)
{
	static const struct {
		const char *s;
		int64_t now;
		int64_t ms;
	} good[] = {
		{ "120", NOW, 120000 },
		{ "0", NOW, 0 },
		{ " 5 ", NOW, 5000 },
		{ "\t60", NOW, 60000 },
		{ "007", NOW, 7000 },
		{ "1.5", NOW, 1500 },
		{ "0.0001", NOW, 1 },
		{ "2147483648", NOW, DELTA_MAX_MS },
		{ "2147483649", NOW, DELTA_MAX_MS },
		{ "99999999999999999999999999999", NOW, DELTA_MAX_MS },
		{ "Sun, 06 Nov 1994 08:49:37 GMT", RFC_DATE - 10000, 10000 },
		{ "Sunday, 06-Nov-94 08:49:37 GMT", RFC_DATE - 1, 1 },
		{ "Sun Nov  6 08:49:37 1994", RFC_DATE - 86400000LL,
		  86400000LL },
		{ "Sun, 06 Nov 1994 08:49:37 GMT", RFC_DATE, 0 },
		{ "Sun, 06 Nov 1994 08:49:37 GMT", NOW, 0 },
		{ "Wed, 15 Nov 2023 00:00:00 GMT", NOW, 6400000 },
	};
	static const char *const bad[] = {
		"", " ", "-1", "+1", "abc", "1x", "0x10", "1e3", "12 34",
		"1.", "soon", "Sun, 06 Nov 1994", "120 seconds", "1,5",
	};
	size_t i;
	int64_t ms;

	for (i = 0; i < N_ELEMS(good); i++) {
		ms = -1;
		if (learn_parse_retry_after(good[i].s, good[i].now, &ms) != 0)
			ck_abort_msg("'%s' rejected", good[i].s);
		if (ms != good[i].ms)
			ck_abort_msg("'%s' -> %lld, want %lld", good[i].s,
			             (long long)ms, (long long)good[i].ms);
	}
	for (i = 0; i < N_ELEMS(bad); i++) {
		ms = 42;
		if (learn_parse_retry_after(bad[i], NOW, &ms) != -EINVAL ||
		    ms != 42)
			ck_abort_msg("'%s' accepted", bad[i]);
	}
}
END_TEST

START_TEST(test_reset)
{
	static const struct {
		const char *s;
		int64_t ms;
	} good[] = {
		/* Seconds from now, fractions rounded up to the ms. */
		{ "30", 30000 },
		{ "0", 0 },
		{ " 30 ", 30000 },
		{ "1.5", 1500 },
		{ "0.0001", 1 },
		{ "0.999", 999 },
		{ "60.000", 60000 },
		{ "999999999", 999999999000LL },
		/* From 10^9: Unix seconds (GitHub, Twitter); 2001 is past. */
		{ "1000000000", 0 },
		{ "1700000060", 60000 },
		{ "1700000000", 0 },
		{ "1699999990", 0 },
		{ "1700000000.5", 500 },
		{ "1700000000.0001", 1 },
		{ "253402300799", 253402300799000LL - NOW },
		/* From 10^12: Unix milliseconds. */
		{ "1000000000000", 0 },
		{ "1700000060000", 60000 },
		{ "1700000000000", 0 },
		{ "1699999999999", 0 },
		{ "1700000000500.4", 501 },
		{ "253402300799999", 253402300799999LL - NOW },
		/* Go durations (OpenAI). */
		{ "1m30s", 90000 },
		{ "6m0s", 360000 },
		{ "250ms", 250 },
		{ "20ms", 20 },
		{ "0.5ms", 1 },
		{ "1h", 3600000 },
		{ "1h2m3.5s", 3723500 },
		{ "1.5s", 1500 },
		{ "0s", 0 },
		{ " 2s ", 2000 },
		{ "2S", 2000 },
	};
	static const struct bad_case bad[] = {
		{ "", -EINVAL }, { " ", -EINVAL }, { "-5", -EINVAL },
		{ "+5", -EINVAL }, { "abc", -EINVAL }, { "5x", -EINVAL },
		{ "1e3", -EINVAL }, { "0x10", -EINVAL }, { "1.", -EINVAL },
		{ ".5", -EINVAL }, { "inf", -EINVAL }, { "nan", -EINVAL },
		{ "1m30", -EINVAL }, { "ms", -EINVAL }, { "s", -EINVAL },
		{ "5 s", -EINVAL }, { "5d", -EINVAL }, { "1,5", -EINVAL },
		{ "Sun, 06 Nov 1994 08:49:37 GMT", -EINVAL },
		/* Beyond year 9999. */
		{ "253402300800", -ERANGE }, { "999999999999", -ERANGE },
		{ "253402300800000", -ERANGE },
		{ "99999999999999999999999", -ERANGE },
		{ "1000000000s", -ERANGE }, { "300000h", -ERANGE },
		{ "99999999999999999999999h", -ERANGE },
	};
	size_t i;
	int64_t ms;
	int r;

	for (i = 0; i < N_ELEMS(good); i++) {
		ms = -1;
		if (learn_parse_reset(good[i].s, NOW, &ms) != 0)
			ck_abort_msg("'%s' rejected", good[i].s);
		if (ms != good[i].ms)
			ck_abort_msg("'%s' -> %lld, want %lld", good[i].s,
			             (long long)ms, (long long)good[i].ms);
	}
	for (i = 0; i < N_ELEMS(bad); i++) {
		ms = 42;
		r = learn_parse_reset(bad[i].s, NOW, &ms);
		if (r != bad[i].err || ms != 42)
			ck_abort_msg("'%s' -> %d, want %d", bad[i].s, r,
			             bad[i].err);
	}
}
END_TEST

START_TEST(test_clamp)
{
	ck_assert(learn_clamp_rps(5, 0.1, 10000) == 5);
	ck_assert(learn_clamp_rps(0.01, 0.1, 10000) == 0.1);
	ck_assert(learn_clamp_rps(1e9, 0.1, 10000) == 10000);
	ck_assert(learn_clamp_rps(0.1, 0.1, 10000) == 0.1);
	ck_assert(learn_clamp_rps(NAN, 0.1, 10000) == 0.1);
	ck_assert(learn_clamp_rps(INFINITY, 0.1, 10000) == 10000);
	ck_assert_uint_eq(learn_clamp_concurrency(4, 1024), 4);
	ck_assert_uint_eq(learn_clamp_concurrency(5000, 1024), 1024);
	ck_assert_uint_eq(learn_clamp_concurrency(1024, 1024), 1024);
	ck_assert_uint_eq(learn_clamp_concurrency(0, 1024), 1);
	ck_assert_uint_eq(learn_clamp_concurrency(7, 0), 1);
}
END_TEST

/* A response: up to 16 "Name: value" fields, fed in order. */
struct response {
	const char *fields[16];
};

/* The fields of resp at now (Unix ms), then learn_finish(). */
static void feed_at(struct learn_signals *ls, const struct response *resp,
                    int64_t now)
{
	const char *colon, *value;
	size_t i;

	learn_init(ls);
	for (i = 0; i < N_ELEMS(resp->fields) && resp->fields[i]; i++) {
		colon = strchr(resp->fields[i], ':');
		CHECK(colon != NULL);
		value = colon + 1;
		while (*value == ' ')
			value++;
		learn_field(ls, resp->fields[i],
		            (size_t)(colon - resp->fields[i]), value, now);
	}
	learn_finish(ls, now);
}

static void feed(struct learn_signals *ls, const struct response *resp)
{
	feed_at(ls, resp, NOW);
}

START_TEST(test_ezthrottle_fields)
{
	struct learn_signals ls;
	static const struct response
		both = { { "X-EZTHROTTLE-RPS: 0.5",
		           "X-EZTHROTTLE-MAX-CONCURRENT: 3" } },
		lower = { { "x-ezthrottle-rps: 10",
		            "x-Ezthrottle-Max-Concurrent: 1" } },
		later = { { "X-EZTHROTTLE-RPS: 4", "X-EZTHROTTLE-RPS: 2.5" } },
		junk = { { "X-EZTHROTTLE-RPS: fast",
		           "X-EZTHROTTLE-MAX-CONCURRENT: 0",
		           "X-EZTHROTTLE-RPS: -1" } },
		junk_after = { { "X-EZTHROTTLE-RPS: 4",
		                 "X-EZTHROTTLE-RPS: nan" } },
		none = { { "Content-Type: application/json",
		           "X-EZTHROTTLE-RPSX: 5", "X-RateLimit-Limit: 100",
		           "RateLimit-Limit: 10" } };

	feed(&ls, &both);
	ck_assert(ls.rps == 0.5);
	ck_assert_uint_eq(ls.concurrency, 3);
	ck_assert_uint_eq(ls.bad, 0);
	ck_assert_int_eq(ls.retry_after_ms, -1);
	ck_assert_int_eq(ls.pause_ms, -1);

	feed(&ls, &lower);
	ck_assert(ls.rps == 10);
	ck_assert_uint_eq(ls.concurrency, 1);

	feed(&ls, &later);
	ck_assert(ls.rps == 2.5);
	ck_assert_uint_eq(ls.concurrency, 0);

	feed(&ls, &junk);
	ck_assert(ls.rps == 0);
	ck_assert_uint_eq(ls.concurrency, 0);
	ck_assert_uint_eq(ls.bad, 3);

	/* A bad value leaves the good one before it. */
	feed(&ls, &junk_after);
	ck_assert(ls.rps == 4);
	ck_assert_uint_eq(ls.bad, 1);

	feed(&ls, &none);
	ck_assert(ls.rps == 0);
	ck_assert_uint_eq(ls.concurrency, 0);
	ck_assert_uint_eq(ls.bad, 0);
	ck_assert_int_eq(ls.pause_ms, -1);
}
END_TEST

START_TEST(test_retry_after_field)
{
	struct learn_signals ls;
	static const struct response
		secs = { { "Retry-After: 120" } },
		date = { { "retry-after: Wed, 15 Nov 2023 00:00:00 GMT" } },
		past = { { "RETRY-AFTER: Sun, 06 Nov 1994 08:49:37 GMT" } },
		junk = { { "Retry-After: later" } };

	feed(&ls, &secs);
	ck_assert_int_eq(ls.retry_after_ms, 120000);
	ck_assert_int_eq(ls.pause_ms, -1);
	feed(&ls, &date);
	ck_assert_int_eq(ls.retry_after_ms, 6400000);
	feed(&ls, &past);
	ck_assert_int_eq(ls.retry_after_ms, 0);
	feed(&ls, &junk);
	ck_assert_int_eq(ls.retry_after_ms, -1);
	ck_assert_uint_eq(ls.bad, 1);
}
END_TEST

/* retry-after-ms (OpenAI, Azure) wins over Retry-After, in either order. */
START_TEST(test_retry_after_ms_field)
{
	static const struct {
		struct response resp;
		int64_t ms;
		unsigned bad;
	} cases[] = {
		{ { { "retry-after-ms: 1500" } }, 1500, 0 },
		{ { { "Retry-After-Ms: 20" } }, 20, 0 },
		{ { { "retry-after-ms: 0" } }, 0, 0 },
		{ { { "retry-after-ms: 0.1" } }, 1, 0 },
		{ { { "retry-after-ms: 1500.2" } }, 1501, 0 },
		{ { { "retry-after-ms:  250 " } }, 250, 0 },
		{ { { "retry-after-ms: 99999999999999999999" } }, DELTA_MAX_MS,
		  0 },
		/* Azure OpenAI sends both. */
		{ { { "retry-after: 2", "retry-after-ms: 1500" } }, 1500, 0 },
		{ { { "retry-after-ms: 1500", "retry-after: 2" } }, 1500, 0 },
		{ { { "Retry-After: Wed, 15 Nov 2023 00:00:00 GMT",
		      "retry-after-ms: 300" } }, 300, 0 },
		/* The later retry-after-ms wins, as for every field. */
		{ { { "retry-after-ms: 100", "retry-after-ms: 200" } },
		  200, 0 },
		/* A bad one leaves Retry-After. */
		{ { { "retry-after: 2", "retry-after-ms: soon" } }, 2000, 1 },
		{ { { "retry-after-ms: -5", "retry-after: 2" } }, 2000, 1 },
		{ { { "retry-after-ms: 1e3" } }, -1, 1 },
		{ { { "retry-after-ms: 1.5s" } }, -1, 1 },
		{ { { "retry-after-ms: " } }, -1, 1 },
		{ { { "retry-after-ms: 1500", "retry-after: junk" } },
		  1500, 1 },
	};
	struct learn_signals ls;
	size_t i;

	for (i = 0; i < N_ELEMS(cases); i++) {
		feed(&ls, &cases[i].resp);
		if (ls.retry_after_ms != cases[i].ms || ls.bad != cases[i].bad)
			ck_abort_msg("case %zu ('%s'): %lld bad %u, "
			             "want %lld %u", i, cases[i].resp.fields[0],
			             (long long)ls.retry_after_ms, ls.bad,
			             (long long)cases[i].ms, cases[i].bad);
		CHECK(ls.pause_ms == -1);
	}
}
END_TEST

/* Whole responses and the pause they give. */
START_TEST(test_pause_table)
{
	static const struct {
		struct response resp;
		int64_t pause_ms;
		unsigned bad;
	} cases[] = {
		/* X-RateLimit-*, either order, any case. */
		{ { { "X-RateLimit-Remaining: 0",
		      "X-RateLimit-Reset: 30" } }, 30000, 0 },
		{ { { "X-RateLimit-Reset: 30",
		      "X-RateLimit-Remaining: 0" } }, 30000, 0 },
		{ { { "x-ratelimit-remaining: 0",
		      "X-RATELIMIT-RESET: 1.5" } }, 1500, 0 },
		{ { { "X-RateLimit-Limit: 60", "X-RateLimit-Remaining: 0",
		      "X-RateLimit-Used: 60",
		      "X-RateLimit-Reset: 1700000060" } }, 60000, 0 },
		{ { { "X-RateLimit-Remaining: 0",
		      "X-RateLimit-Reset: 1700000060000" } }, 60000, 0 },
		/* Reset already past: pause 0, not none. */
		{ { { "X-RateLimit-Remaining: 0",
		      "X-RateLimit-Reset: 1699999000" } }, 0, 0 },
		/* Something remains, or no reset: no pause. */
		{ { { "X-RateLimit-Remaining: 5",
		      "X-RateLimit-Reset: 30" } }, -1, 0 },
		{ { { "X-RateLimit-Remaining: 0" } }, -1, 0 },
		{ { { "X-RateLimit-Reset: 30" } }, -1, 0 },
		{ { { "X-RateLimit-Remaining: 0",
		      "X-RateLimit-Remaining: 3",
		      "X-RateLimit-Reset: 30" } }, -1, 0 },
		{ { { "X-RateLimit-Remaining: 3",
		      "X-RateLimit-Remaining: 0",
		      "X-RateLimit-Reset: 30" } }, 30000, 0 },
		/* Bad values are counted and ignored. */
		{ { { "X-RateLimit-Remaining: none",
		      "X-RateLimit-Reset: 30" } }, -1, 1 },
		{ { { "X-RateLimit-Remaining: -1",
		      "X-RateLimit-Reset: 30" } }, -1, 1 },
		{ { { "X-RateLimit-Remaining: 0",
		      "X-RateLimit-Reset: soon" } }, -1, 1 },
		{ { { "X-RateLimit-Remaining: 0",
		      "X-RateLimit-Reset: 30",
		      "X-RateLimit-Reset: soon" } }, 30000, 1 },
		/* Twitter's spelling. */
		{ { { "x-rate-limit-remaining: 0",
		      "x-rate-limit-reset: 1700000009" } }, 9000, 0 },
		/* OpenAI: requests and tokens, Go durations. */
		{ { { "x-ratelimit-remaining-requests: 0",
		      "x-ratelimit-reset-requests: 6m0s",
		      "x-ratelimit-remaining-tokens: 100",
		      "x-ratelimit-reset-tokens: 1s" } }, 360000, 0 },
		{ { { "x-ratelimit-remaining-requests: 10",
		      "x-ratelimit-reset-requests: 6m0s",
		      "x-ratelimit-remaining-tokens: 0",
		      "x-ratelimit-reset-tokens: 250ms" } }, 250, 0 },
		{ { { "x-ratelimit-remaining-requests: 0",
		      "x-ratelimit-reset-tokens: 1s" } }, -1, 0 },
		/* IETF drafts 0-4: separate fields. */
		{ { { "RateLimit-Limit: 10", "RateLimit-Remaining: 0",
		      "RateLimit-Reset: 7" } }, 7000, 0 },
		{ { { "ratelimit-reset: 7",
		      "ratelimit-remaining: 0" } }, 7000, 0 },
		{ { { "RateLimit-Remaining: 1",
		      "RateLimit-Reset: 7" } }, -1, 0 },
		/* Drafts 5-6: one dictionary. */
		{ { { "RateLimit: limit=10, remaining=0, reset=5" } },
		  5000, 0 },
		{ { { "RateLimit: reset=5, remaining=0, limit=10" } },
		  5000, 0 },
		{ { { "RateLimit: limit=10,remaining=0,reset=5",
		      "RateLimit-Policy: 10;w=60" } }, 5000, 0 },
		{ { { "ratelimit: limit=10, remaining=3, reset=5" } },
		  -1, 0 },
		{ { { "RateLimit: limit=10, remaining=0" } }, -1, 0 },
		{ { { "RateLimit: limit=10, remaining=x, reset=5" } },
		  -1, 1 },
		/* Drafts 7 on: a list of named policies. */
		{ { { "RateLimit: \"default\";r=0;t=30",
		      "RateLimit-Policy: \"default\";q=100;w=60" } },
		  30000, 0 },
		{ { { "RateLimit-Policy: \"default\";q=100;w=60",
		      "RateLimit: \"default\";r=0;t=30" } }, 30000, 0 },
		{ { { "RateLimit: \"default\";r=0;t=30" } }, 30000, 0 },
		{ { { "RateLimit: \"default\";r=50;t=30",
		      "RateLimit-Policy: \"default\";q=100;w=60" } },
		  -1, 0 },
		{ { { "RateLimit: \"default\"; r=0; t=2" } }, 2000, 0 },
		{ { { "RateLimit: default;r=0;t=3" } }, 3000, 0 },
		/* Drafts 8 on: a partition key, a byte sequence. */
		{ { { "RateLimit: \"default\";r=0;t=30;"
		      "pk=:cHJvamVjdC0xMjM=:" } }, 30000, 0 },
		{ { { "RateLimit: \"default\";r=0;t=30;pk=:cHJv=" } }, -1,
		  1 },
		/* Without t, the named policy's window. */
		{ { { "RateLimit: \"default\";r=0",
		      "RateLimit-Policy: \"default\";q=100;w=60" } },
		  60000, 0 },
		{ { { "RateLimit-Policy: \"burst\";q=10;w=1, "
		      "\"day\";q=1000;w=86400",
		      "RateLimit: \"day\";r=0" } }, 86400000, 0 },
		{ { { "RateLimit: \"daily\";r=0",
		      "RateLimit-Policy: \"default\";q=100;w=60" } },
		  -1, 0 },
		{ { { "RateLimit: \"default\";r=0" } }, -1, 0 },
		/* Several quotas: the longest exhausted one wins. */
		{ { { "RateLimit: \"a\";r=5;t=100, \"b\";r=0;t=10, "
		      "\"c\";r=0;t=20" } }, 20000, 0 },
		{ { { "RateLimit: \"a\";r=0;t=4",
		      "RateLimit: \"b\";r=0;t=9" } }, 9000, 0 },
		{ { { "X-RateLimit-Remaining: 0", "X-RateLimit-Reset: 30",
		      "RateLimit: \"a\";r=0;t=4", "RateLimit-Remaining: 0",
		      "RateLimit-Reset: 45" } }, 45000, 0 },
		{ { { "X-RateLimit-Remaining: 4", "X-RateLimit-Reset: 30",
		      "RateLimit: \"a\";r=0;t=4" } }, 4000, 0 },
		/* Broken structured fields. */
		{ { { "RateLimit: \"default\";r=0;t=x" } }, -1, 1 },
		{ { { "RateLimit: \"default\";r=-1;t=3" } }, -1, 1 },
		{ { { "RateLimit: \"default;r=0;t=3" } }, -1, 1 },
		{ { { "RateLimit: \"default\";r=0;t=3," } }, -1, 1 },
		{ { { "RateLimit: ," } }, -1, 1 },
		{ { { "RateLimit: " } }, -1, 1 },
		{ { { "RateLimit: \"a\";r=0;t=3 \"b\"" } }, -1, 1 },
		{ { { "RateLimit: \"a\";r=0;t=3, \"b\";r=0;t=?" } }, 3000, 1 },
		{ { { "RateLimit-Policy: \"default\";w=soon",
		      "RateLimit: \"default\";r=0" } }, -1, 1 },
	};
	struct learn_signals ls;
	size_t i;

	for (i = 0; i < N_ELEMS(cases); i++) {
		feed(&ls, &cases[i].resp);
		if (ls.pause_ms != cases[i].pause_ms || ls.bad != cases[i].bad)
			ck_abort_msg("case %zu ('%s'): pause %lld bad %u, "
			             "want %lld %u", i, cases[i].resp.fields[0],
			             (long long)ls.pause_ms, ls.bad,
			             (long long)cases[i].pause_ms,
			             cases[i].bad);
		/* Rate-limit fields never touch the other signals. */
		CHECK(ls.rps == 0 && ls.concurrency == 0);
		CHECK(ls.retry_after_ms == -1);
	}
}
END_TEST

/* 2013-07-01 20:47:53 UTC less 50 minutes: GitHub's sample reset. */
#define GH_NOW (1372700873000LL - 3000000)

/* 2026-12-06 11:59:30 UTC: 30 s before Anthropic's sample reset. */
#define AN_NOW 1796558370000LL

#define NO_QUOTA { -1, -1, -1, -1 }

struct quota_case {
	struct response resp;
	int64_t now;                 /* 0: NOW */
	struct learn_quota requests, tokens;
	double quota_rps, spread_rps;
	int64_t spread_ms, pause_ms;
	unsigned bad;
};

static const struct quota_case quota_cases[] = {
	/* 1. Generic X-RateLimit-*, GitHub's sample: window unknown. */
	{ { { "x-ratelimit-limit: 5000", "x-ratelimit-remaining: 4999",
	      "x-ratelimit-reset: 1372700873", "x-ratelimit-used: 1",
	      "x-ratelimit-resource: core" } }, GH_NOW,
	  { 5000, 4999, 3000000, -1 }, NO_QUOTA,
	  0, 4999.0 / 3000, 3000000, -1, 0 },
	{ { { "X-RateLimit-Limit: 5000", "X-RateLimit-Remaining: 0",
	      "X-RateLimit-Reset: 1372700873", "X-RateLimit-Used: 5000",
	      "X-RateLimit-Resource: search" } }, GH_NOW,
	  { 5000, 0, 3000000, -1 }, NO_QUOTA, 0, 0, -1, 3000000, 0 },
	/* Reset past: no spread, pause 0 when exhausted. */
	{ { { "x-ratelimit-limit: 5000", "x-ratelimit-remaining: 4999",
	      "x-ratelimit-reset: 1372700873" } }, 0,
	  { 5000, 4999, 0, -1 }, NO_QUOTA, 0, 0, -1, -1, 0 },
	/* Twitter's spelling; seconds from now; Unix ms. */
	{ { { "x-rate-limit-limit: 900", "x-rate-limit-remaining: 450",
	      "x-rate-limit-reset: 1700000900" } }, 0,
	  { 900, 450, 900000, -1 }, NO_QUOTA, 0, 0.5, 900000, -1, 0 },
	{ { { "X-RateLimit-Limit: 60", "X-RateLimit-Remaining: 30",
	      "X-RateLimit-Reset: 15" } }, 0,
	  { 60, 30, 15000, -1 }, NO_QUOTA, 0, 2, 15000, -1, 0 },
	{ { { "X-RateLimit-Remaining: 3",
	      "X-RateLimit-Reset: 1700000001500" } }, 0,
	  { -1, 3, 1500, -1 }, NO_QUOTA, 0, 2, 1500, -1, 0 },
	{ { { "X-RateLimit-Limit: 100" } }, 0,
	  { 100, -1, -1, -1 }, NO_QUOTA, 0, 0, -1, -1, 0 },
	/* The limit may name its window, as the early IETF drafts did. */
	{ { { "X-RateLimit-Limit: 100, 100;w=60",
	      "X-RateLimit-Remaining: 40", "X-RateLimit-Reset: 20" } }, 0,
	  { 100, 40, 20000, 60000 }, NO_QUOTA, 100.0 / 60, 2, 20000, -1,
	  0 },
	{ { { "X-RateLimit-Limit: 100, 10;w=1, 100;w=60" } }, 0,
	  { 100, -1, -1, 60000 }, NO_QUOTA, 100.0 / 60, 0, -1, -1, 0 },
	{ { { "X-RateLimit-Limit: 100, 10;w=1" } }, 0,
	  { 100, -1, -1, -1 }, NO_QUOTA, 0, 0, -1, -1, 0 },
	/* remaining above limit is let through. */
	{ { { "X-RateLimit-Limit: 10", "X-RateLimit-Remaining: 20",
	      "X-RateLimit-Reset: 10" } }, 0,
	  { 10, 20, 10000, -1 }, NO_QUOTA, 0, 2, 10000, -1, 0 },

	/* 2. IETF: RateLimit-Policy with RateLimit, unnamed and named. */
	{ { { "RateLimit-Policy: 10;w=1", "RateLimit: r=3;t=1" } }, 0,
	  { 10, 3, 1000, 1000 }, NO_QUOTA, 10, 3, 1000, -1, 0 },
	{ { { "RateLimit: r=3;t=1", "RateLimit-Policy: 10;w=1" } }, 0,
	  { 10, 3, 1000, 1000 }, NO_QUOTA, 10, 3, 1000, -1, 0 },
	{ { { "RateLimit-Policy: \"default\";q=100;w=60",
	      "RateLimit: \"default\";r=50;t=30" } }, 0,
	  { 100, 50, 30000, 60000 }, NO_QUOTA, 100.0 / 60, 50.0 / 30,
	  30000, -1, 0 },
	{ { { "RateLimit-Policy: default;q=100;w=60",
	      "RateLimit: \"default\";r=0;t=30" } }, 0,
	  { 100, 0, 30000, 60000 }, NO_QUOTA, 100.0 / 60, 0, -1, 30000,
	  0 },
	/* Several policies: the one RateLimit names. */
	{ { { "RateLimit-Policy: \"burst\";q=100;w=60, "
	      "\"day\";q=1000;w=86400",
	      "RateLimit: \"day\";r=600;t=3600" } }, 0,
	  { 1000, 600, 3600000, 86400000 }, NO_QUOTA, 1000.0 / 86400,
	  600.0 / 3600, 3600000, -1, 0 },
	{ { { "RateLimit-Policy: \"burst\";q=100;w=60, "
	      "\"day\";q=1000;w=86400",
	      "RateLimit: \"burst\";r=90;t=30" } }, 0,
	  { 100, 90, 30000, 60000 }, NO_QUOTA, 100.0 / 60, 3, 30000, -1,
	  0 },
	/* RateLimit names several: the tightest (day: 1000 a day). */
	{ { { "RateLimit-Policy: \"burst\";q=100;w=60, "
	      "\"day\";q=1000;w=86400",
	      "RateLimit: \"burst\";r=90;t=30, \"day\";r=600;t=3600" } },
	  0, { 1000, 600, 3600000, 86400000 }, NO_QUOTA, 1000.0 / 86400,
	  600.0 / 3600, 3600000, -1, 0 },
	/* ... and one with nothing left is tighter than any. */
	{ { { "RateLimit-Policy: \"burst\";q=100;w=60, "
	      "\"day\";q=1000;w=86400",
	      "RateLimit: \"day\";r=600;t=3600, \"burst\";r=0;t=20" } },
	  0, { 100, 0, 20000, 60000 }, NO_QUOTA, 100.0 / 60, 0, -1, 20000,
	  0 },
	/* A policy alone: the tightest. */
	{ { { "RateLimit-Policy: 10;w=1" } }, 0,
	  { 10, -1, -1, 1000 }, NO_QUOTA, 10, 0, -1, -1, 0 },
	{ { { "RateLimit-Policy: \"burst\";q=100;w=60, "
	      "\"day\";q=1000;w=86400" } }, 0,
	  { 1000, -1, -1, 86400000 }, NO_QUOTA, 1000.0 / 86400, 0, -1, -1,
	  0 },
	/* RateLimit alone: remaining and reset, no window. */
	{ { { "RateLimit: \"default\";r=50;t=30" } }, 0,
	  { -1, 50, 30000, -1 }, NO_QUOTA, 0, 50.0 / 30, 30000, -1, 0 },
	/* Drafts 8 on: a policy in other units is no request quota. */
	{ { { "RateLimit-Policy: \"bytes\";q=65536;w=1;qu=\"content-bytes\", "
	      "\"default\";q=100;w=60;qu=\"requests\"",
	      "RateLimit: \"bytes\";r=0;t=1, \"default\";r=99;t=60" } }, 0,
	  { 100, 99, 60000, 60000 }, NO_QUOTA, 100.0 / 60, 99.0 / 60,
	  60000, 1000, 0 },
	{ { { "RateLimit-Policy: \"bytes\";q=65536;w=1;qu=content-bytes",
	      "X-RateLimit-Limit: 50" } }, 0,
	  { 50, -1, -1, -1 }, NO_QUOTA, 0, 0, -1, -1, 0 },
	/* Drafts 5-6: one dictionary, the window from the policy. */
	{ { { "RateLimit: limit=100, remaining=50, reset=5" } }, 0,
	  { 100, 50, 5000, -1 }, NO_QUOTA, 0, 10, 5000, -1, 0 },
	{ { { "RateLimit: limit=100, remaining=50, reset=5",
	      "RateLimit-Policy: 100;w=60" } }, 0,
	  { 100, 50, 5000, 60000 }, NO_QUOTA, 100.0 / 60, 10, 5000, -1,
	  0 },
	{ { { "RateLimit: limit=100, remaining=50, reset=5",
	      "RateLimit-Policy: 10;w=1" } }, 0,
	  { 100, 50, 5000, -1 }, NO_QUOTA, 0, 10, 5000, -1, 0 },
	{ { { "RateLimit: remaining=5, reset=1",
	      "RateLimit-Policy: 10;w=1, 50;w=60" } }, 0,
	  { 50, 5, 1000, 60000 }, NO_QUOTA, 50.0 / 60, 5, 1000, -1, 0 },
	/* Drafts 0-4: separate fields, the policies in the limit (0-2). */
	{ { { "RateLimit-Limit: 100", "RateLimit-Remaining: 50",
	      "RateLimit-Reset: 50" } }, 0,
	  { 100, 50, 50000, -1 }, NO_QUOTA, 0, 1, 50000, -1, 0 },
	{ { { "RateLimit-Limit: 10, 10;w=1, 50;w=60",
	      "RateLimit-Remaining: 9", "RateLimit-Reset: 1" } }, 0,
	  { 10, 9, 1000, 1000 }, NO_QUOTA, 10, 9, 1000, -1, 0 },
	{ { { "RateLimit-Limit: 50", "RateLimit-Remaining: 20",
	      "RateLimit-Reset: 30",
	      "RateLimit-Policy: 10;w=1, 50;w=60" } }, 0,
	  { 50, 20, 30000, 60000 }, NO_QUOTA, 50.0 / 60, 20.0 / 30, 30000,
	  -1, 0 },

	/* 3. OpenAI's sample: 60 a minute; spread above it is reported. */
	{ { { "x-ratelimit-limit-requests: 60",
	      "x-ratelimit-limit-tokens: 150000",
	      "x-ratelimit-remaining-requests: 59",
	      "x-ratelimit-remaining-tokens: 149984",
	      "x-ratelimit-reset-requests: 1s",
	      "x-ratelimit-reset-tokens: 6m0s" } }, 0,
	  { 60, 59, 1000, 60000 }, { 150000, 149984, 360000, 60000 },
	  1, 59, 1000, -1, 0 },
	{ { { "x-ratelimit-limit-requests: 5000",
	      "x-ratelimit-remaining-requests: 4000",
	      "x-ratelimit-reset-requests: 1m30.5s" } }, 0,
	  { 5000, 4000, 90500, 60000 }, NO_QUOTA, 5000.0 / 60,
	  4000 / 90.5, 90500, -1, 0 },
	{ { { "x-ratelimit-limit-requests: 500",
	      "x-ratelimit-remaining-requests: 0",
	      "x-ratelimit-reset-requests: 120ms",
	      "x-ratelimit-limit-tokens: 30000",
	      "x-ratelimit-remaining-tokens: 0",
	      "x-ratelimit-reset-tokens: 20ms" } }, 0,
	  { 500, 0, 120, 60000 }, { 30000, 0, 20, 60000 }, 500.0 / 60, 0,
	  -1, 120, 0 },
	/* Tokens exhausted: a pause, not a request spread. */
	{ { { "x-ratelimit-limit-requests: 500",
	      "x-ratelimit-remaining-requests: 499",
	      "x-ratelimit-reset-requests: 120ms",
	      "x-ratelimit-remaining-tokens: 0",
	      "x-ratelimit-reset-tokens: 8.5s" } }, 0,
	  { 500, 499, 120, 60000 }, { -1, 0, 8500, -1 }, 500.0 / 60,
	  499 / 0.12, 120, 8500, 0 },

	/* 4. Anthropic's sample: 50 a minute, resets as RFC 3339 times. */
	{ { { "anthropic-ratelimit-requests-limit: 50",
	      "anthropic-ratelimit-requests-remaining: 49",
	      "anthropic-ratelimit-requests-reset: 2026-12-06T12:00:00Z",
	      "anthropic-ratelimit-tokens-limit: 80000",
	      "anthropic-ratelimit-tokens-remaining: 79000",
	      "anthropic-ratelimit-tokens-reset: 2026-12-06T12:00:00Z",
	      "anthropic-ratelimit-input-tokens-limit: 40000",
	      "anthropic-ratelimit-input-tokens-remaining: 39500",
	      "anthropic-ratelimit-input-tokens-reset: "
	      "2026-12-06T12:00:00Z",
	      "anthropic-ratelimit-output-tokens-limit: 8000",
	      "anthropic-ratelimit-output-tokens-remaining: 7500",
	      "anthropic-ratelimit-output-tokens-reset: "
	      "2026-12-06T12:00:00Z" } }, AN_NOW,
	  { 50, 49, 30000, 60000 }, { 80000, 79000, 30000, 60000 },
	  50.0 / 60, 49.0 / 30, 30000, -1, 0 },
	/* An offset and a fraction: 12:00:15.5 UTC. */
	{ { { "Anthropic-RateLimit-Requests-Limit: 4000",
	      "Anthropic-RateLimit-Requests-Remaining: 3999",
	      "Anthropic-RateLimit-Requests-Reset: "
	      "2026-12-06T13:00:15.5+01:00" } }, AN_NOW,
	  { 4000, 3999, 45500, 60000 }, NO_QUOTA, 4000.0 / 60,
	  3999 / 45.5, 45500, -1, 0 },
	{ { { "anthropic-ratelimit-requests-remaining: 10",
	      "anthropic-ratelimit-requests-reset: "
	      "2026-12-06t06:30:10.000-05:30" } }, AN_NOW,
	  { -1, 10, 40000, -1 }, NO_QUOTA, 0, 0.25, 40000, -1, 0 },
	/* A reset in the past is 0: no spread. */
	{ { { "anthropic-ratelimit-requests-limit: 50",
	      "anthropic-ratelimit-requests-remaining: 49",
	      "anthropic-ratelimit-requests-reset: 2026-12-06T11:00:00Z" } },
	  AN_NOW, { 50, 49, 0, 60000 }, NO_QUOTA, 50.0 / 60, 0, -1, -1,
	  0 },
	/* Exhausted output tokens pause; they are not the tokens quota. */
	{ { { "anthropic-ratelimit-requests-limit: 50",
	      "anthropic-ratelimit-requests-remaining: 20",
	      "anthropic-ratelimit-requests-reset: 2026-12-06T12:00:00Z",
	      "anthropic-ratelimit-output-tokens-limit: 8000",
	      "anthropic-ratelimit-output-tokens-remaining: 0",
	      "anthropic-ratelimit-output-tokens-reset: "
	      "2026-12-06T12:00:10Z" } }, AN_NOW,
	  { 50, 20, 30000, 60000 }, NO_QUOTA, 50.0 / 60, 20.0 / 30,
	  30000, 40000, 0 },
	{ { { "anthropic-ratelimit-requests-remaining: 0",
	      "anthropic-ratelimit-requests-reset: 2026-12-06T12:00:00Z" } },
	  AN_NOW, { -1, 0, 30000, -1 }, NO_QUOTA, 0, 0, -1, 30000, 0 },
	/* Only RFC 3339 resets. */
	{ { { "anthropic-ratelimit-requests-remaining: 0",
	      "anthropic-ratelimit-requests-reset: 30",
	      "anthropic-ratelimit-tokens-reset: 1796558400" } }, AN_NOW,
	  { -1, 0, -1, -1 }, NO_QUOTA, 0, 0, -1, -1, 2 },

	/* Precedence: IETF structured, Anthropic, OpenAI, older IETF, X. */
	{ { { "X-RateLimit-Limit: 5000", "X-RateLimit-Remaining: 4999",
	      "X-RateLimit-Reset: 60", "RateLimit-Policy: 10;w=1",
	      "RateLimit: r=3;t=1" } }, 0,
	  { 10, 3, 1000, 1000 }, NO_QUOTA, 10, 3, 1000, -1, 0 },
	{ { { "RateLimit: r=3;t=1", "RateLimit-Policy: 10;w=1",
	      "x-ratelimit-limit-requests: 60",
	      "anthropic-ratelimit-requests-limit: 50" } }, 0,
	  { 10, 3, 1000, 1000 }, NO_QUOTA, 10, 3, 1000, -1, 0 },
	{ { { "x-ratelimit-limit-requests: 60",
	      "x-ratelimit-remaining-requests: 30",
	      "x-ratelimit-reset-requests: 10s",
	      "anthropic-ratelimit-requests-limit: 50",
	      "x-ratelimit-limit-tokens: 1000",
	      "anthropic-ratelimit-tokens-limit: 2000" } }, 0,
	  { 50, -1, -1, 60000 }, { 2000, -1, -1, 60000 }, 50.0 / 60, 0, -1,
	  -1, 0 },
	{ { { "X-RateLimit-Limit: 5000", "X-RateLimit-Remaining: 4999",
	      "X-RateLimit-Reset: 60", "x-ratelimit-limit-requests: 60",
	      "x-ratelimit-remaining-requests: 59",
	      "x-ratelimit-reset-requests: 1s" } }, 0,
	  { 60, 59, 1000, 60000 }, NO_QUOTA, 1, 59, 1000, -1, 0 },
	{ { { "RateLimit-Limit: 100", "RateLimit-Remaining: 50",
	      "RateLimit-Reset: 50", "x-ratelimit-limit-requests: 60" } },
	  0, { 60, -1, -1, 60000 }, NO_QUOTA, 1, 0, -1, -1, 0 },
	{ { { "X-RateLimit-Limit: 5000", "X-RateLimit-Remaining: 4999",
	      "X-RateLimit-Reset: 60", "RateLimit-Limit: 100",
	      "RateLimit-Remaining: 50", "RateLimit-Reset: 50" } }, 0,
	  { 100, 50, 50000, -1 }, NO_QUOTA, 0, 1, 50000, -1, 0 },
	/* The whole quota from one dialect, never mixed. */
	{ { { "X-RateLimit-Limit: 5000", "X-RateLimit-Remaining: 4999",
	      "X-RateLimit-Reset: 60",
	      "x-ratelimit-limit-requests: 60" } }, 0,
	  { 60, -1, -1, 60000 }, NO_QUOTA, 1, 0, -1, -1, 0 },

	/* Bad values: counted, ignored; the rest still counts. */
	{ { { "X-RateLimit-Limit: 1000000000000",
	      "X-RateLimit-Remaining: 1000000000000",
	      "X-RateLimit-Reset: 1" } }, 0,
	  { 1000000000000LL, 1000000000000LL, 1000, -1 }, NO_QUOTA, 0,
	  1e12, 1000, -1, 0 },
	{ { { "X-RateLimit-Limit: 1000000000001",
	      "X-RateLimit-Remaining: 99999999999999999999",
	      "X-RateLimit-Reset: 1" } }, 0,
	  { -1, -1, 1000, -1 }, NO_QUOTA, 0, 0, -1, -1, 2 },
	{ { { "X-RateLimit-Limit: many", "X-RateLimit-Limit: -1",
	      "X-RateLimit-Limit: 1.5", "X-RateLimit-Limit: 100, x;w=60",
	      "X-RateLimit-Limit: 100, 100;w=0",
	      "X-RateLimit-Limit: 100,", "X-RateLimit-Limit: " } }, 0,
	  NO_QUOTA, NO_QUOTA, 0, 0, -1, -1, 7 },
	{ { { "x-ratelimit-limit-requests: sixty",
	      "x-ratelimit-remaining-requests: 59",
	      "x-ratelimit-reset-requests: 1 s",
	      "x-ratelimit-limit-tokens: 1e5" } }, 0,
	  { -1, 59, -1, -1 }, NO_QUOTA, 0, 0, -1, -1, 3 },
	{ { { "RateLimit-Policy: 10;w=0" } }, 0,
	  NO_QUOTA, NO_QUOTA, 0, 0, -1, -1, 1 },
	{ { { "RateLimit-Policy: \"month\";q=100000;w=2678400" } }, 0,
	  { 100000, -1, -1, 2678400000LL }, NO_QUOTA, 100000 / 2678400.0,
	  0, -1, -1, 0 },
	{ { { "RateLimit-Policy: \"month\";q=100000;w=2678401" } }, 0,
	  NO_QUOTA, NO_QUOTA, 0, 0, -1, -1, 1 },
	{ { { "RateLimit-Policy: \"a\";q=x;w=1" } }, 0,
	  NO_QUOTA, NO_QUOTA, 0, 0, -1, -1, 1 },
	{ { { "RateLimit-Policy: \"a\";q=1000000000001;w=1" } }, 0,
	  NO_QUOTA, NO_QUOTA, 0, 0, -1, -1, 1 },
	{ { { "RateLimit: \"a\";r=1000000000001;t=1" } }, 0,
	  NO_QUOTA, NO_QUOTA, 0, 0, -1, -1, 1 },
	{ { { "RateLimit: limit=x, remaining=5, reset=1" } }, 0,
	  NO_QUOTA, NO_QUOTA, 0, 0, -1, -1, 1 },
	{ { { "anthropic-ratelimit-tokens-limit: 80000",
	      "anthropic-ratelimit-tokens-remaining: -3",
	      "anthropic-ratelimit-tokens-reset: 2026-12-06T12:00:00" } },
	  AN_NOW, NO_QUOTA, { 80000, -1, -1, 60000 }, 0, 0, -1, -1, 2 },
};

START_TEST(test_quota_table)
{
	const struct quota_case *c;
	struct learn_signals ls;
	size_t i;

	for (i = 0; i < N_ELEMS(quota_cases); i++) {
		c = &quota_cases[i];
		feed_at(&ls, &c->resp, c->now ? c->now : NOW);
		if (memcmp(&ls.requests, &c->requests, sizeof(c->requests)) ||
		    memcmp(&ls.tokens, &c->tokens, sizeof(c->tokens)))
			ck_abort_msg("case %zu ('%s'): requests %lld %lld %lld "
			             "%lld tokens %lld %lld %lld %lld", i,
			             c->resp.fields[0],
			             (long long)ls.requests.limit,
			             (long long)ls.requests.remaining,
			             (long long)ls.requests.reset_ms,
			             (long long)ls.requests.window_ms,
			             (long long)ls.tokens.limit,
			             (long long)ls.tokens.remaining,
			             (long long)ls.tokens.reset_ms,
			             (long long)ls.tokens.window_ms);
		if (fabs(ls.quota_rps - c->quota_rps) > 1e-9 * c->quota_rps ||
		    fabs(ls.spread_rps - c->spread_rps) >
		    1e-9 * c->spread_rps || ls.spread_ms != c->spread_ms ||
		    ls.pause_ms != c->pause_ms || ls.bad != c->bad)
			ck_abort_msg("case %zu ('%s'): quota %.17g spread %.17g "
			             "for %lld pause %lld bad %u", i,
			             c->resp.fields[0], ls.quota_rps,
			             ls.spread_rps, (long long)ls.spread_ms,
			             (long long)ls.pause_ms, ls.bad);
		/* Quota fields never touch the other signals. */
		CHECK(ls.rps == 0 && ls.concurrency == 0);
		CHECK(ls.retry_after_ms == -1);
	}
}
END_TEST

/* The quotas do not depend on the order of the fields. */
START_TEST(test_quota_order)
{
	struct learn_signals fwd, rev;
	struct response r;
	size_t i, n, k;

	for (i = 0; i < N_ELEMS(quota_cases); i++) {
		const struct quota_case *c = &quota_cases[i];

		for (n = 0; n < N_ELEMS(r.fields) && c->resp.fields[n]; n++)
			;
		memset(&r, 0, sizeof(r));
		for (k = 0; k < n; k++)
			r.fields[k] = c->resp.fields[n - 1 - k];
		feed_at(&fwd, &c->resp, c->now ? c->now : NOW);
		feed_at(&rev, &r, c->now ? c->now : NOW);
		if (memcmp(&fwd.requests, &rev.requests,
		           sizeof(fwd.requests)) ||
		    memcmp(&fwd.tokens, &rev.tokens, sizeof(fwd.tokens)) ||
		    fwd.quota_rps != rev.quota_rps ||
		    fwd.spread_rps != rev.spread_rps ||
		    fwd.spread_ms != rev.spread_ms ||
		    fwd.pause_ms != rev.pause_ms || fwd.bad != rev.bad)
			ck_abort_msg("case %zu ('%s') differs reversed", i,
			             c->resp.fields[0]);
	}
}
END_TEST

/* learn_finish() again gives the same; learn_init() forgets. */
START_TEST(test_quota_finish_again)
{
	struct learn_signals ls;
	struct learn_quota req;
	double quota, spread;

	feed_at(&ls, &quota_cases[0].resp, GH_NOW);
	req = ls.requests;
	quota = ls.quota_rps;
	spread = ls.spread_rps;
	learn_finish(&ls, GH_NOW);
	ck_assert(memcmp(&req, &ls.requests, sizeof(req)) == 0);
	ck_assert(ls.quota_rps == quota && ls.spread_rps == spread);
	ck_assert_int_eq(ls.spread_ms, 3000000);
	learn_init(&ls);
	learn_finish(&ls, NOW);
	ck_assert_int_eq(ls.requests.limit, -1);
	ck_assert_int_eq(ls.requests.remaining, -1);
	ck_assert_int_eq(ls.requests.reset_ms, -1);
	ck_assert_int_eq(ls.requests.window_ms, -1);
	ck_assert_int_eq(ls.tokens.limit, -1);
	ck_assert_int_eq(ls.tokens.window_ms, -1);
	ck_assert(ls.quota_rps == 0 && ls.spread_rps == 0);
	ck_assert_int_eq(ls.spread_ms, -1);
	ck_assert_int_eq(ls.pause_ms, -1);
}
END_TEST

/* "r=0" with no name waits out the only policy's window. */
START_TEST(test_unnamed_pause)
{
	static const struct {
		struct response resp;
		int64_t pause_ms;
	} cases[] = {
		{ { { "RateLimit-Policy: 10;w=1", "RateLimit: r=0" } }, 1000 },
		{ { { "RateLimit: r=0", "RateLimit-Policy: 10;w=1" } }, 1000 },
		{ { { "RateLimit-Policy: 10;w=1", "RateLimit: r=0;t=2" } },
		  2000 },
		{ { { "RateLimit: r=0" } }, -1 },
		{ { { "RateLimit-Policy: 10;w=1, 50;w=60",
		      "RateLimit: r=0" } }, -1 },
	};
	struct learn_signals ls;
	size_t i;

	for (i = 0; i < N_ELEMS(cases); i++) {
		feed(&ls, &cases[i].resp);
		ck_assert_msg(ls.pause_ms == cases[i].pause_ms && ls.bad == 0,
		              "case %zu: pause %lld bad %u", i,
		              (long long)ls.pause_ms, ls.bad);
	}
}
END_TEST

/* name_len bounds the name; learn_finish may be called again. */
START_TEST(test_field_details)
{
	struct learn_signals ls;
	static const char names[] = "Retry-AfterX-RateLimit-Remaining";

	learn_init(&ls);
	learn_field(&ls, names, 11, "3", NOW);
	ck_assert_int_eq(ls.retry_after_ms, 3000);
	learn_field(&ls, names, 10, "4", NOW);
	ck_assert_int_eq(ls.retry_after_ms, 3000);
	learn_field(&ls, names + 11, 21, "0", NOW);
	learn_field(&ls, "X-RateLimit-Reset", 17, "12", NOW);
	ck_assert_uint_eq(ls.bad, 0);
	learn_finish(&ls, NOW);
	ck_assert_int_eq(ls.pause_ms, 12000);
	learn_finish(&ls, NOW);
	ck_assert_int_eq(ls.pause_ms, 12000);
	/* Empty values of known fields are bad; of unknown ones, nothing. */
	learn_init(&ls);
	learn_field(&ls, "X-EZTHROTTLE-RPS", 16, "", NOW);
	learn_field(&ls, "Retry-After", 11, "", NOW);
	learn_field(&ls, "X-Other", 7, "", NOW);
	learn_field(&ls, "", 0, "", NOW);
	learn_finish(&ls, NOW);
	ck_assert_uint_eq(ls.bad, 2);
	ck_assert_int_eq(ls.pause_ms, -1);
}
END_TEST

/* More policies than LEARN_MAX_POLICIES: the extra ones are dropped. */
START_TEST(test_many_policies)
{
	struct learn_signals ls;
	char policy[512], limit[512];
	size_t n = 0, m = 0;
	unsigned i;

	for (i = 0; i < LEARN_MAX_POLICIES + 4; i++) {
		n += (size_t)snprintf(policy + n, sizeof(policy) - n,
		                      "%s\"p%u\";q=1;w=%u", i ? ", " : "", i,
		                      i + 1);
		m += (size_t)snprintf(limit + m, sizeof(limit) - m,
		                      "%s\"p%u\";r=0", i ? ", " : "", i);
	}
	ck_assert_uint_lt(n, sizeof(policy));
	ck_assert_uint_lt(m, sizeof(limit));
	learn_init(&ls);
	learn_field(&ls, "RateLimit-Policy", 16, policy, NOW);
	learn_field(&ls, "RateLimit", 9, limit, NOW);
	learn_finish(&ls, NOW);
	ck_assert_uint_eq(ls.bad, 0);
	ck_assert_int_eq(ls.pause_ms, LEARN_MAX_POLICIES * 1000);
}
END_TEST

/* (s, len) is the text lit. */
static int sf_is(const struct sf_value *v, const char *lit)
{
	return v->p && v->len == strlen(lit) && memcmp(v->p, lit, v->len) == 0;
}

/* Members one by one: dictionary members, items, parameters, commas. */
START_TEST(test_sf_members)
{
	const char *s = "limit=10, \"a\\\"b\";r=0;w=60 ,tok;t=5;x";
	const char *p = s, *end = s + strlen(s), *start;
	struct sf_member m, m2;

	ck_assert_int_eq(sf_member_parse(&p, end, &m), 0);
	ck_assert(sf_is(&m.key, "limit") && sf_is(&m.value, "10"));
	ck_assert(!m.r.p && !m.t.p && !m.w.p);
	ck_assert_int_eq(sf_member_parse(&p, end, &m), 0);
	ck_assert(!m.key.p);
	ck_assert(sf_is(&m.r, "0") && sf_is(&m.w, "60") && !m.t.p);
	ck_assert_int_eq(sf_member_parse(&p, end, &m), 0);
	ck_assert(!m.key.p && sf_is(&m.t, "5"));
	ck_assert(p == end);

	/* q, qu and the item's text are kept too. */
	s = "\"day\";q=1000;w=86400;qu=\"requests\";pk=:abc=:, 10;w=1";
	p = s;
	end = s + strlen(s);
	ck_assert_int_eq(sf_member_parse(&p, end, &m), 0);
	ck_assert(sf_is(&m.item, "\"day\"") && sf_is(&m.q, "1000"));
	ck_assert(sf_is(&m.w, "86400") && sf_is(&m.qu, "\"requests\""));
	ck_assert_int_eq(sf_member_parse(&p, end, &m), 0);
	ck_assert(sf_is(&m.item, "10") && sf_is(&m.w, "1") && !m.q.p);
	ck_assert(p == end);

	/* An item's name is hashed without its quotes. */
	s = "\"tok\", tok";
	p = s;
	end = s + strlen(s);
	ck_assert_int_eq(sf_member_parse(&p, end, &m), 0);
	ck_assert_int_eq(sf_member_parse(&p, end, &m2), 0);
	ck_assert(m.name == m2.name);

	/* Errors leave the position alone. */
	static const char *const bad[] = {
		"a,", "\"open", ";r=0", "a;=1", "a b", "a;r=\"x", "",
		"a;pk=:abc", "a;pk=:a b:", "a;pk=:a\":",
	};
	for (size_t i = 0; i < N_ELEMS(bad); i++) {
		p = start = bad[i];
		end = p + strlen(p);
		if (sf_member_parse(&p, end, &m) == 0 && p < end)
			ck_assert_int_eq(sf_member_parse(&p, end, &m), -EINVAL);
		else
			ck_assert(p == start);
	}
}
END_TEST

/*
 * Random junk from a hostile alphabet into every known field: nothing may
 * crash or read out of bounds (ASan), and the signals stay in range.
 */
START_TEST(test_junk)
{
	static const char *const names[] = {
		"X-EZTHROTTLE-RPS", "X-EZTHROTTLE-MAX-CONCURRENT",
		"Retry-After", "X-RateLimit-Remaining", "X-RateLimit-Reset",
		"x-ratelimit-reset-requests", "RateLimit-Reset", "RateLimit",
		"RateLimit-Policy", "retry-after-ms", "X-RateLimit-Limit",
		"RateLimit-Limit", "x-ratelimit-limit-requests",
		"anthropic-ratelimit-requests-reset",
		"anthropic-ratelimit-tokens-remaining",
	};
	static const char alphabet[] = "0123456789.,;=\" -:?tTrRwWqmsZz+";
	struct learn_signals ls;
	char value[24];
	size_t len, k;
	int i;

	for (i = 0; i < 200000; i++) {
		len = (size_t)(rng_next() % sizeof(value));
		for (k = 0; k < len; k++)
			value[k] = alphabet[rng_next() %
			                    (sizeof(alphabet) - 1)];
		value[len] = '\0';
		learn_init(&ls);
		learn_field(&ls, names[i % N_ELEMS(names)],
		            strlen(names[i % N_ELEMS(names)]), value, NOW);
		learn_finish(&ls, NOW);
		CHECK(ls.bad <= 1);
		CHECK(ls.rps >= 0 && isfinite(ls.rps));
		CHECK(ls.concurrency <= LEARN_MAX_CONCURRENCY);
		CHECK(ls.retry_after_ms >= -1);
		CHECK(ls.pause_ms >= -1);
		CHECK(ls.requests.limit >= -1 &&
		      ls.requests.limit <= LEARN_MAX_COUNT);
		CHECK(ls.requests.remaining >= -1 &&
		      ls.requests.remaining <= LEARN_MAX_COUNT);
		CHECK(ls.requests.reset_ms >= -1);
		CHECK(ls.requests.window_ms == -1 ||
		      (ls.requests.window_ms >= 1 &&
		       ls.requests.window_ms <= LEARN_MAX_WINDOW_MS));
		CHECK(ls.quota_rps >= 0 && isfinite(ls.quota_rps));
		CHECK(ls.spread_rps >= 0 && isfinite(ls.spread_rps));
		CHECK((ls.spread_rps > 0) == (ls.spread_ms > 0));
		CHECK(ls.spread_ms == -1 || ls.spread_ms > 0);
		CHECK(ls.tokens.limit <= LEARN_MAX_COUNT);
	}
}
END_TEST

static Suite *learn_suite(void)
{
	Suite *s = suite_create("learn");
	TCase *tc;

	tc = tcase_create("parsers");
	tcase_add_test(tc, test_rps_good);
	tcase_add_test(tc, test_rps_bad);
	tcase_add_test(tc, test_concurrency);
	tcase_add_test(tc, test_http_date_forms);
	tcase_add_test(tc, test_http_date_random);
	tcase_add_test(tc, test_rfc3339);
	tcase_add_test(tc, test_rfc3339_random);
	tcase_add_test(tc, test_retry_after);
	tcase_add_test(tc, test_reset);
	tcase_add_test(tc, test_clamp);
	tcase_add_test(tc, test_sf_members);
	suite_add_tcase(s, tc);

	tc = tcase_create("fields");
	tcase_add_test(tc, test_ezthrottle_fields);
	tcase_add_test(tc, test_retry_after_field);
	tcase_add_test(tc, test_retry_after_ms_field);
	tcase_add_test(tc, test_pause_table);
	tcase_add_test(tc, test_quota_table);
	tcase_add_test(tc, test_quota_order);
	tcase_add_test(tc, test_quota_finish_again);
	tcase_add_test(tc, test_unnamed_pause);
	tcase_add_test(tc, test_field_details);
	tcase_add_test(tc, test_many_policies);
	tcase_add_test(tc, test_junk);
	suite_add_tcase(s, tc);
	return s;
}

TESTLIB_MAIN(learn_suite)

/*
 * check_rate_ctl.c - frugal and adaptive mode as a pure function of
 * dispatches, pushbacks and time (rate_ctl.c).
 */
#include <check.h>
#include <math.h>
#include <stdint.h>

#include "rate_ctl.h"
#include "testlib.h"

#define SEC 1000000LL

static const struct rate_ctl_cfg cfg = {
	.probe_interval = 5 * SEC,
	.idle_reset = 300 * SEC,
	.min_rps = 0.1,
	.max_rps = 10000,
};

START_TEST(test_names)
{
	enum rate_mode m;

	ck_assert_int_eq(rate_mode_parse("paced", &m), 0);
	ck_assert_int_eq(m, RATE_PACED);
	ck_assert_int_eq(rate_mode_parse("FRUGAL", &m), 0);
	ck_assert_int_eq(m, RATE_FRUGAL);
	ck_assert_int_eq(rate_mode_parse("Adaptive", &m), 0);
	ck_assert_int_eq(m, RATE_ADAPTIVE);
	ck_assert_int_eq(rate_mode_parse("performance", &m), -1);
	ck_assert_int_eq(rate_mode_parse("", &m), -1);
	ck_assert_str_eq(rate_mode_name(RATE_FRUGAL), "frugal");
	ck_assert_str_eq(rate_mode_name((enum rate_mode)7), "paced");
}
END_TEST

START_TEST(test_paced_never_moves)
{
	struct rate_ctl c;

	rate_ctl_init(&c, RATE_PACED, 2, 0);
	ck_assert(rate_ctl_rate(&c) == 2);
	ck_assert(!rate_ctl_pushback(&c, &cfg, SEC));
	ck_assert(!rate_ctl_tick(&c, &cfg, true, 100 * SEC));
	ck_assert(rate_ctl_rate(&c) == 2);
}
END_TEST

START_TEST(test_frugal)
{
	struct rate_ctl c;
	int64_t t;

	rate_ctl_init(&c, RATE_FRUGAL, 2, 0);
	ck_assert(rate_ctl_rate(&c) == 0);
	/* 25 a second for two seconds, unpaced. */
	for (t = 0; t < 2 * SEC; t += 40000)
		rate_ctl_success(&c, t);
	ck_assert(!rate_ctl_tick(&c, &cfg, true, 2 * SEC));
	/* Pushed back: paced at what it sustained. */
	ck_assert(rate_ctl_pushback(&c, &cfg, 2 * SEC + 10));
	ck_assert_double_eq_tol(rate_ctl_rate(&c), 25, 0.01);
	/* The in-flight requests' 429s do not cut again. */
	ck_assert(!rate_ctl_pushback(&c, &cfg, 2 * SEC + 500000));
	ck_assert_double_eq_tol(rate_ctl_rate(&c), 25, 0.01);
	/* A later one, while paced: halved. */
	ck_assert(rate_ctl_pushback(&c, &cfg, 10 * SEC));
	ck_assert_double_eq_tol(rate_ctl_rate(&c), 12.5, 0.01);
	/* idle_reset without pushback: unpaced again. */
	ck_assert(!rate_ctl_tick(&c, &cfg, true, 10 * SEC + 299 * SEC));
	ck_assert(rate_ctl_tick(&c, &cfg, false, 10 * SEC + 300 * SEC));
	ck_assert(rate_ctl_rate(&c) == 0);

	/*
	 * A pushback in the first second: what it took so far, not
	 * extrapolated (50 taken in 500 ms of a window of 50 a second).
	 */
	rate_ctl_init(&c, RATE_FRUGAL, 2, 0);
	for (t = 0; t < SEC / 2; t += 10000)
		rate_ctl_success(&c, t);
	ck_assert(rate_ctl_pushback(&c, &cfg, SEC / 2));
	ck_assert_double_eq_tol(rate_ctl_rate(&c), 50, 1e-9);
	/* None dispatched at all: the base rate. */
	rate_ctl_init(&c, RATE_FRUGAL, 2, 0);
	ck_assert(rate_ctl_pushback(&c, &cfg, 5 * SEC));
	ck_assert(rate_ctl_rate(&c) == 2);
}
END_TEST

START_TEST(test_adaptive_steps)
{
	struct rate_ctl c;
	int64_t t;

	rate_ctl_init(&c, RATE_ADAPTIVE, 2, 0);
	ck_assert(rate_ctl_rate(&c) == 2);
	/* Nothing waiting: no probe. */
	ck_assert(!rate_ctl_tick(&c, &cfg, false, 1 * SEC));
	ck_assert(!rate_ctl_tick(&c, &cfg, false, 5 * SEC));
	/*
	 * Waiting, until a pushback: up a little each tick, doubled in a
	 * probe interval (5 s), never more, however long between ticks.
	 */
	for (t = 6 * SEC; t <= 10 * SEC; t += SEC) {
		double before = rate_ctl_rate(&c);

		ck_assert(rate_ctl_tick(&c, &cfg, true, t));
		ck_assert_double_eq_tol(rate_ctl_rate(&c), before * exp2(0.2),
		                        1e-9);
	}
	ck_assert_double_eq_tol(rate_ctl_rate(&c), 4, 1e-9);
	ck_assert(rate_ctl_tick(&c, &cfg, true, 30 * SEC));
	ck_assert_double_eq_tol(rate_ctl_rate(&c), 8, 1e-9);
	/*
	 * A pushback: back to the last rate that worked, finer steps, and
	 * twice the wait before the next probe.
	 */
	ck_assert(rate_ctl_pushback(&c, &cfg, 31 * SEC));
	ck_assert_double_eq_tol(rate_ctl_rate(&c), 4, 1e-9);
	ck_assert(!rate_ctl_tick(&c, &cfg, true, 40 * SEC));
	ck_assert(rate_ctl_tick(&c, &cfg, true, 41 * SEC));
	ck_assert_double_eq_tol(rate_ctl_rate(&c), 5, 1e-9);
	/* It held: the next after the same wait, then one interval. */
	ck_assert(!rate_ctl_tick(&c, &cfg, true, 50 * SEC));
	ck_assert(rate_ctl_tick(&c, &cfg, true, 51 * SEC));
	ck_assert_double_eq_tol(rate_ctl_rate(&c), 6, 1e-9);
	ck_assert(!rate_ctl_tick(&c, &cfg, true, 55 * SEC));
	ck_assert(rate_ctl_tick(&c, &cfg, true, 56 * SEC));
	ck_assert_double_eq_tol(rate_ctl_rate(&c), 7, 1e-9);
	/* Never below min_rps, never above max_rps. */
	rate_ctl_init(&c, RATE_ADAPTIVE, 0.15, 0);
	ck_assert(rate_ctl_pushback(&c, &cfg, SEC));
	ck_assert(rate_ctl_rate(&c) == 0.1);
	rate_ctl_init(&c, RATE_ADAPTIVE, 8000, 0);
	ck_assert(!rate_ctl_tick(&c, &cfg, true, 1));
	ck_assert(rate_ctl_tick(&c, &cfg, true, 5 * SEC + 1));
	ck_assert(rate_ctl_rate(&c) == 10000);
	/* A small rate doubles at most. */
	rate_ctl_init(&c, RATE_ADAPTIVE, 1, 0);
	rate_ctl_pushback(&c, &cfg, SEC);            /* 0.5, step 0.5 */
	ck_assert(rate_ctl_rate(&c) == 0.5);
	ck_assert(rate_ctl_tick(&c, &cfg, true, 11 * SEC));
	ck_assert(rate_ctl_rate(&c) == 1);
}
END_TEST

/*
 * Against an API that allows limit req/s and pushes back above it,
 * adaptive mode settles close under the limit with few pushbacks.
 */
START_TEST(test_adaptive_converges)
{
	static const double limits[] = { 3, 10, 50, 400 };

	for (unsigned i = 0; i < sizeof(limits) / sizeof(*limits); i++) {
		double limit = limits[i], sum = 0;
		unsigned pushbacks = 0, n = 0;
		struct rate_ctl c;

		rate_ctl_init(&c, RATE_ADAPTIVE, 2, 0);
		for (int64_t t = SEC; t <= 1200 * SEC; t += SEC) {
			if (rate_ctl_rate(&c) > limit &&
			    rate_ctl_pushback(&c, &cfg, t))
				pushbacks++;
			rate_ctl_tick(&c, &cfg, true, t);
			if (t > 600 * SEC) {
				double r = rate_ctl_rate(&c);

				sum += r > limit ? limit : r;
				n++;
			}
		}
		ck_assert_msg(sum / n >= 0.85 * limit,
		              "limit %g: %g on average", limit, sum / n);
		/* Failed probes space out: few pushbacks in 20 minutes. */
		ck_assert_msg(pushbacks < 30, "limit %g: %u pushbacks", limit,
		              pushbacks);
	}
}
END_TEST

/* A probe past the limit: back to what the API took, not further. */
START_TEST(test_adaptive_sustained)
{
	struct rate_ctl c;
	int64_t t;

	rate_ctl_init(&c, RATE_ADAPTIVE, 2, 0);
	ck_assert(!rate_ctl_tick(&c, &cfg, true, 1));
	ck_assert(rate_ctl_tick(&c, &cfg, true, 5 * SEC + 1));   /* 4 */
	ck_assert(rate_ctl_tick(&c, &cfg, true, 10 * SEC + 1));  /* 8 */
	ck_assert(rate_ctl_tick(&c, &cfg, true, 15 * SEC + 1));  /* 16 */
	ck_assert(rate_ctl_rate(&c) == 16);
	/* The API takes 10 a second; at 16 it pushes back. */
	for (t = 15 * SEC; t < 16 * SEC; t += 100000)
		rate_ctl_success(&c, t);
	ck_assert(rate_ctl_pushback(&c, &cfg, 16 * SEC));
	ck_assert_double_eq_tol(rate_ctl_rate(&c), 10, 0.01);
	/* Never above the rate that failed, never below half of it. */
	rate_ctl_init(&c, RATE_ADAPTIVE, 8, 0);
	for (t = 0; t < SEC; t += 10000)
		rate_ctl_success(&c, t);
	ck_assert(rate_ctl_pushback(&c, &cfg, SEC));
	ck_assert(rate_ctl_rate(&c) == 4);
}
END_TEST

static Suite *rate_ctl_suite(void)
{
	Suite *s = suite_create("rate_ctl");
	TCase *tc = tcase_create("modes");

	tcase_add_test(tc, test_names);
	tcase_add_test(tc, test_paced_never_moves);
	tcase_add_test(tc, test_frugal);
	tcase_add_test(tc, test_adaptive_steps);
	tcase_add_test(tc, test_adaptive_converges);
	tcase_add_test(tc, test_adaptive_sustained);
	suite_add_tcase(s, tc);
	return s;
}

TESTLIB_MAIN(rate_ctl_suite)

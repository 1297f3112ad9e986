/*
 * testlib.h - what every Check suite in t/unit shares: its main() and a
 * fake clock. Header only; include it after <check.h>.
 */
#ifndef SLUICE_TESTLIB_H
#define SLUICE_TESTLIB_H

#include <check.h>
#include <stdint.h>
#include <stdlib.h>

/*
 * Runs every test of the suite (CK_NORMAL output; CK_FORK and
 * CK_DEFAULT_TIMEOUT from the environment), frees the runner and returns
 * the process exit status: EXIT_SUCCESS when no test failed.
 */
static inline int testlib_run(Suite *s)
{
	SRunner *sr = srunner_create(s);
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

/* The main() of a suite: TESTLIB_MAIN(money_suite) runs money_suite(). */
#define TESTLIB_MAIN(suite_fn) \
	int main(void) \
	{ \
		return testlib_run(suite_fn()); \
	}

/*
 * A fake clock for modules that take an int64_t (*now_ms)(void *arg):
 * pass fake_clock_ms and a pointer to an int64_t the test sets and
 * advances; the module reads it, in milliseconds.
 */
static inline int64_t fake_clock_ms(void *arg)
{
	return *(const int64_t *)arg;
}

#endif

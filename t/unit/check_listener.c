/*
 * check_listener.c - what the listener decides from a connection's first
 * bytes (listener_first_bytes()): wait for more, refuse a client outside
 * allow, refuse CONNECT, or hand the connection to the front. No sockets.
 */
#include <check.h>
#include <stdbool.h>
#include <string.h>

#include "listener.h"
#include "testlib.h"

/* The verdict on the string s (its length, up to the 8 bytes peeked). */
static enum listener_verdict verdict(const char *s, bool denied)
{
	size_t n = strlen(s);

	return listener_first_bytes(s, n > 8 ? 8 : n, denied);
}

START_TEST(test_plain_requests)
{
	static const char *const plain[] = {
		"GET http://example.com/ HTTP/1.1\r\n",
		"POST http://a/ HTTP/1.1\r\n",
		"G",
		"\r\n",
		/* Methods are case-sensitive. */
		"connect example.com:443 HTTP/1.1\r\n",
		"CONNECTX",
		"CONNECT\t",
		"CONNEC ",
		"OPTIONS * HTTP/1.1\r\n",
	};

	for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++)
		ck_assert_msg(verdict(plain[i], false) == LISTENER_FRONT,
		              "'%s'", plain[i]);
}
END_TEST

START_TEST(test_connect)
{
	static const char *const prefixes[] = {
		"C", "CO", "CON", "CONN", "CONNE", "CONNEC", "CONNECT",
	};

	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
		ck_assert_msg(verdict(prefixes[i], false) == LISTENER_WAIT,
		              "'%s'", prefixes[i]);
	ck_assert_int_eq(verdict("CONNECT ", false), LISTENER_CONNECT);
	ck_assert_int_eq(verdict("CONNECT example.com:443 HTTP/1.1\r\n",
	                         false), LISTENER_CONNECT);
}
END_TEST

/* A NUL byte ends a CONNECT prefix: the front gets (and rejects) it. */
START_TEST(test_nul_bytes)
{
	ck_assert_int_eq(listener_first_bytes("C\0", 2, false),
	                 LISTENER_FRONT);
	ck_assert_int_eq(listener_first_bytes("CONNECT\0", 8, false),
	                 LISTENER_FRONT);
	ck_assert_int_eq(listener_first_bytes("\0", 1, false),
	                 LISTENER_FRONT);
}
END_TEST

/* A client outside allow is refused whatever it sent. */
START_TEST(test_denied)
{
	ck_assert_int_eq(verdict("GET http://a/ HTTP/1.1\r\n", true),
	                 LISTENER_DENY);
	ck_assert_int_eq(verdict("CONN", true), LISTENER_DENY);
	ck_assert_int_eq(verdict("CONNECT a:443 HTTP/1.1\r\n", true),
	                 LISTENER_DENY);
	ck_assert_int_eq(listener_first_bytes("\0", 1, true), LISTENER_DENY);
}
END_TEST

static Suite *listener_suite(void)
{
	Suite *s = suite_create("listener");
	TCase *tc = tcase_create("first bytes");

	tcase_add_test(tc, test_plain_requests);
	tcase_add_test(tc, test_connect);
	tcase_add_test(tc, test_nul_bytes);
	tcase_add_test(tc, test_denied);
	suite_add_tcase(s, tc);
	return s;
}

TESTLIB_MAIN(listener_suite)

/*
 * check_headers.c - which header fields cross the proxy.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ascii.h"
#include "headers.h"
#include "testlib.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define NAME_MAX_LEN 64
#define N_CASES 5

/* Dropped in both directions. */
static const char *const hop_by_hop[] = {
	"Connection", "Proxy-Connection", "Keep-Alive", "TE", "Trailer",
	"Transfer-Encoding", "Upgrade", "Proxy-Authorization",
	"Proxy-Authenticate", "Content-Length",
};

/* Dropped from requests only: the upstream client writes these. */
static const char *const request_only[] = { "Host", "Expect" };

static const char *const sluice_names[] = {
	"X-EZTHROTTLE-Key", "X-EZTHROTTLE-Queue", "X-Ezthrottle-Retry-Max",
	"x-ezthrottle-webhook-url", "X-EZTHROTTLE-", "X-EZTHROTTLE--",
	"X-EZTHROTTLE-Authorization",
};

/* Near misses of the names above, and fields that must get through. */
static const char *const ordinary[] = {
	"Authorization", "Cookie", "Content-Type", "X-Custom", "Accept",
	"Accept-Encoding", "User-Agent", "Content-Encoding", "X-Api-Key",
	"Api-Key", "Via", "Range", "If-None-Match", "Origin", "Referer",
	"Content-Lengths", "Content-Lengt", "Hosts", "Hos", "T", "TEE",
	"Tx", "Expects", "Upgrade-Insecure-Requests", "Keep-Alive-X",
	"Connection-Id", "Proxy", "Proxy-Authorizatio", "Trailers",
	"Transfer-Encodings", "X-EZTHROTTLE", "X-EZTHROTTLEX",
	"X-EZTHROTTLE_Key", "X-EZ-THROTTLE-Key", "X-Forwarded-For",
};

/* Upstream fields that must reach the client. */
static const char *const response_kept[] = {
	"Set-Cookie", "Date", "Content-Type", "Content-Encoding",
	"Cache-Control", "Location", "WWW-Authenticate", "Retry-After",
	"X-RateLimit-Remaining", "ETag", "Vary", "Server", "Age",
};

/*
 * Writes the k-th spelling of name into buf: as given, lower, upper, and
 * two alternating cases.
 */
static void spell(const char *name, int k, char *buf)
{
	size_t i, len = strlen(name);

	ck_assert_uint_lt(len, NAME_MAX_LEN);
	for (i = 0; i < len; i++) {
		char c = name[i];
		char lo = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
		char up = (c >= 'a' && c <= 'z') ? (char)(c - 'a' + 'A') : c;

		switch (k) {
		case 0:
			buf[i] = c;
			break;
		case 1:
			buf[i] = lo;
			break;
		case 2:
			buf[i] = up;
			break;
		case 3:
			buf[i] = i % 2 ? lo : up;
			break;
		default:
			buf[i] = i % 2 ? up : lo;
			break;
		}
	}
	buf[len] = '\0';
}

START_TEST(test_request_hop_by_hop)
{
	char buf[NAME_MAX_LEN];
	size_t i;
	int k;

	for (i = 0; i < ARRAY_SIZE(hop_by_hop); i++) {
		for (k = 0; k < N_CASES; k++) {
			spell(hop_by_hop[i], k, buf);
			ck_assert_msg(header_drop_request(buf, strlen(buf),
			                                  NULL),
			              "request '%s' not dropped", buf);
			ck_assert_msg(header_drop_request(buf, strlen(buf),
			                                  "X-Other"),
			              "request '%s' not dropped", buf);
		}
	}
	for (i = 0; i < ARRAY_SIZE(request_only); i++) {
		for (k = 0; k < N_CASES; k++) {
			spell(request_only[i], k, buf);
			ck_assert_msg(header_drop_request(buf, strlen(buf),
			                                  NULL),
			              "request '%s' not dropped", buf);
		}
	}
}
END_TEST

START_TEST(test_request_sluice)
{
	char buf[NAME_MAX_LEN];
	size_t i;
	int k;

	for (i = 0; i < ARRAY_SIZE(sluice_names); i++) {
		for (k = 0; k < N_CASES; k++) {
			spell(sluice_names[i], k, buf);
			ck_assert(header_is_sluice(buf, strlen(buf)));
			ck_assert_msg(header_drop_request(buf, strlen(buf),
			                                  NULL),
			              "request '%s' not dropped", buf);
		}
	}
	ck_assert(!header_is_sluice("X-EZTHROTTLE", 12));
	ck_assert(!header_is_sluice("X-EZTHROTTLE_", 13));
	ck_assert(!header_is_sluice("", 0));
	ck_assert(!header_is_sluice("X-Custom", 8));
	/* Only len bytes count. */
	ck_assert(!header_is_sluice("X-EZTHROTTLE-Key", 12));
	ck_assert(header_is_sluice("X-EZTHROTTLE-Key", 13));
}
END_TEST

START_TEST(test_request_ordinary)
{
	char buf[NAME_MAX_LEN];
	size_t i;
	int k;

	for (i = 0; i < ARRAY_SIZE(ordinary); i++) {
		for (k = 0; k < N_CASES; k++) {
			spell(ordinary[i], k, buf);
			ck_assert_msg(!header_drop_request(buf, strlen(buf),
			                                   NULL),
			              "request '%s' dropped", buf);
			ck_assert_msg(!header_drop_request(buf, strlen(buf),
			                                   "close, X-Other"),
			              "request '%s' dropped", buf);
		}
	}
	ck_assert(!header_drop_request("", 0, NULL));
	ck_assert(!header_drop_request("", 0, ",,"));
}
END_TEST

/* Names are (ptr, len): nothing past len is read. */
START_TEST(test_request_len_bounded)
{
	ck_assert(header_drop_request("Hostname", 4, NULL));
	ck_assert(!header_drop_request("Hostname", 8, NULL));
	ck_assert(header_drop_request("TE: trailers", 2, NULL));
	ck_assert(header_drop_request("Content-Length: 5", 14, NULL));
	ck_assert(!header_drop_request("Content-Length", 13, NULL));
	ck_assert(header_drop_request("X-Foo: 1", 5, "x-foo"));
	ck_assert(!header_drop_request("X-Foo", 4, "x-foo"));
}
END_TEST

START_TEST(test_request_connection_listed)
{
	static const char *const conn =
		" X-A ,\tx-b\t,,keep-alive, Authorization,X-Ezthrottle ,close";
	static const char *const dropped[] = {
		"X-A", "x-a", "X-B", "Authorization", "AUTHORIZATION",
		"X-EZTHROTTLE", "Keep-Alive",
	};
	static const char *const kept[] = {
		"X-AB", "X-", "X", "X-C", "Cookie", "Close-Not", "A",
		"X-A ", "Authorizatio",
	};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(dropped); i++) {
		ck_assert_msg(header_drop_request(dropped[i],
		                                  strlen(dropped[i]), conn),
		              "request '%s' not dropped", dropped[i]);
		ck_assert_msg(header_drop_response(dropped[i],
		                                   strlen(dropped[i]), conn),
		              "response '%s' not dropped", dropped[i]);
	}
	for (i = 0; i < ARRAY_SIZE(kept); i++) {
		ck_assert_msg(!header_drop_request(kept[i], strlen(kept[i]),
		                                   conn),
		              "request '%s' dropped", kept[i]);
		ck_assert_msg(!header_drop_response(kept[i], strlen(kept[i]),
		                                    conn),
		              "response '%s' dropped", kept[i]);
	}
	/* Without the Connection value the same names pass. */
	ck_assert(!header_drop_request("X-A", 3, NULL));
	ck_assert(!header_drop_request("Authorization", 13, NULL));
}
END_TEST

START_TEST(test_listed_in)
{
	ck_assert(!header_listed_in(NULL, "X-A", 3));
	ck_assert(!header_listed_in("", "X-A", 3));
	ck_assert(!header_listed_in(",, ,\t,", "X-A", 3));
	ck_assert(!header_listed_in(",,", "", 0));
	ck_assert(!header_listed_in("", "", 0));
	ck_assert(header_listed_in("X-A", "X-A", 3));
	ck_assert(header_listed_in("x-a", "X-A", 3));
	ck_assert(header_listed_in("X-A", "x-a", 3));
	ck_assert(header_listed_in("  X-A  ", "X-A", 3));
	ck_assert(header_listed_in("\tX-A\t", "X-A", 3));
	ck_assert(header_listed_in("close,X-A", "X-A", 3));
	ck_assert(header_listed_in("X-A,close", "X-A", 3));
	ck_assert(header_listed_in("close , X-A , keep-alive", "X-A", 3));
	ck_assert(header_listed_in("close,X-A,", "X-A", 3));
	ck_assert(header_listed_in(",X-A", "X-A", 3));
	/* Joined from several Connection fields. */
	ck_assert(header_listed_in("close,X-B, X-A", "x-a", 3));
	/* Whole tokens only. */
	ck_assert(!header_listed_in("X-AB", "X-A", 3));
	ck_assert(!header_listed_in("X-A-B", "X-A", 3));
	ck_assert(!header_listed_in("XX-A", "X-A", 3));
	ck_assert(!header_listed_in("X-A", "X-AB", 4));
	ck_assert(!header_listed_in("X- A", "X-A", 3));
	ck_assert(!header_listed_in("X-A;q=1", "X-A", 3));
	/* Only len bytes of the name count. */
	ck_assert(header_listed_in("close, X-A", "X-AB", 3));
}
END_TEST

START_TEST(test_response)
{
	char buf[NAME_MAX_LEN];
	size_t i;
	int k;

	for (i = 0; i < ARRAY_SIZE(hop_by_hop); i++) {
		for (k = 0; k < N_CASES; k++) {
			spell(hop_by_hop[i], k, buf);
			ck_assert_msg(header_drop_response(buf, strlen(buf),
			                                   NULL),
			              "response '%s' not dropped", buf);
		}
	}
	for (i = 0; i < ARRAY_SIZE(response_kept); i++) {
		for (k = 0; k < N_CASES; k++) {
			spell(response_kept[i], k, buf);
			ck_assert_msg(!header_drop_response(buf, strlen(buf),
			                                    NULL),
			              "response '%s' dropped", buf);
			ck_assert_msg(!header_drop_response(buf, strlen(buf),
			                                    "close, X-A"),
			              "response '%s' dropped", buf);
		}
	}
	ck_assert(header_drop_response("Set-Cookie", 10, "close, set-cookie"));
	ck_assert(!header_drop_response("Set-Cookie", 10, "close"));
}
END_TEST

START_TEST(test_name_eq)
{
	ck_assert(header_name_eq("Content-Type", 12, "Content-Type"));
	ck_assert(header_name_eq("content-type", 12, "Content-Type"));
	ck_assert(header_name_eq("CONTENT-TYPE", 12, "content-type"));
	ck_assert(header_name_eq("Content-Type: x", 12, "Content-Type"));
	ck_assert(!header_name_eq("Content-Type", 11, "Content-Type"));
	ck_assert(!header_name_eq("Content-Typo", 12, "Content-Type"));
	ck_assert(!header_name_eq("Content-Types", 13, "Content-Type"));
	ck_assert(header_name_eq("", 0, ""));
	ck_assert(!header_name_eq("", 0, "A"));
	/* Not a letter: no case folding between '[' and '{'. */
	ck_assert(!header_name_eq("[", 1, "{"));
	ck_assert(!header_name_eq("@", 1, "`"));
}
END_TEST

START_TEST(test_name_ok)
{
	ck_assert(header_name_ok("Content-Length", 14));
	ck_assert(header_name_ok("!#$%&'*+-.^_`|~09azAZ", 21));
	ck_assert(!header_name_ok("", 0));
	ck_assert(!header_name_ok("Transfer-Encoding ", 18));
	ck_assert(!header_name_ok("Foo Bar", 7));
	ck_assert(!header_name_ok("X\tY", 3));
	ck_assert(!header_name_ok("F\xc3\xb6", 3));
	ck_assert(!header_name_ok("a:b", 3));
	ck_assert(!header_name_ok("a\0b", 3));
	ck_assert(!header_name_ok("(x)", 3));
	/* Only len bytes count. */
	ck_assert(header_name_ok("ab c", 2));
}
END_TEST

START_TEST(test_value_ok)
{
	ck_assert(header_value_ok("", 0));
	ck_assert(header_value_ok("abc", 3));
	ck_assert(header_value_ok("a b\tc", 5));
	ck_assert(header_value_ok("caf\xc3\xa9", 5));
	ck_assert(!header_value_ok("a\x01", 2));
	ck_assert(!header_value_ok("a\x7f", 2));
	ck_assert(!header_value_ok("\x1b[0m", 4));
	ck_assert(header_value_ok("\x80\xff", 2));
	ck_assert(!header_value_ok("a\rb", 3));
	ck_assert(!header_value_ok("a\nb", 3));
	ck_assert(!header_value_ok("a\r\nX-Injected: 1", 16));
	ck_assert(!header_value_ok("\n", 1));
	ck_assert(!header_value_ok("ab\0c", 4));
	ck_assert(!header_value_ok("abc\r", 4));
	/* Only len bytes count. */
	ck_assert(header_value_ok("abc\r\n", 3));
}
END_TEST

/* The decimal formatter of the hot path (ascii.h). */
START_TEST(test_u64)
{
	char b[ASCII_U64_MAX];

	ck_assert_uint_eq(ascii_u64(0, b), 1);
	ck_assert_str_eq(b, "0");
	ck_assert_uint_eq(ascii_u64(7, b), 1);
	ck_assert_str_eq(b, "7");
	ck_assert_uint_eq(ascii_u64(10, b), 2);
	ck_assert_str_eq(b, "10");
	ck_assert_uint_eq(ascii_u64(65535, b), 5);
	ck_assert_str_eq(b, "65535");
	ck_assert_uint_eq(ascii_u64(UINT64_MAX, b), 20);
	ck_assert_str_eq(b, "18446744073709551615");
}
END_TEST

/*
 * The list curl sends: each line as curl reads it, in order, across
 * blocks, a line longer than a block included; sealing adds the removals.
 */
START_TEST(test_list_lines)
{
	struct hlist l = { 0 };
	char big[3000], name[16], want[32];
	const struct curl_slist *n;
	int i;

	memset(big, 'v', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	ck_assert_int_eq(header_list_add(&l, "X-A", "1"), 0);
	ck_assert_int_eq(header_list_add(&l, "X-Empty", ""), 0);
	ck_assert_int_eq(header_list_add(&l, "X-Gone", NULL), 0);
	for (i = 0; i < 100; i++) {
		snprintf(name, sizeof(name), "X-%d", i);
		ck_assert_int_eq(header_list_add(&l, name, "some value"), 0);
	}
	ck_assert_int_eq(header_list_add(&l, "X-Big", big), 0);
	ck_assert_int_eq(header_list_seal(&l, true, false), 0);
	n = l.head;
	ck_assert_str_eq(n->data, "X-A: 1");
	n = n->next;
	ck_assert_str_eq(n->data, "X-Empty;");
	n = n->next;
	ck_assert_str_eq(n->data, "X-Gone:");
	for (i = 0; i < 100; i++) {
		n = n->next;
		snprintf(want, sizeof(want), "X-%d: some value", i);
		ck_assert_str_eq(n->data, want);
	}
	n = n->next;
	ck_assert_int_eq(strlen(n->data), strlen("X-Big: ") + sizeof(big) - 1);
	ck_assert(strncmp(n->data, "X-Big: vvv", 10) == 0);
	n = n->next;
	ck_assert_str_eq(n->data, "Expect:");
	n = n->next;
	ck_assert_str_eq(n->data, "Content-Type:");
	ck_assert_ptr_null(n->next);
	ck_assert_ptr_eq(l.tail, n);
	header_list_free(&l);
	ck_assert_ptr_null(l.head);
	ck_assert_ptr_null(l.blocks);
	/* Empty again, and usable. */
	ck_assert_int_eq(header_list_seal(&l, false, true), 0);
	ck_assert_str_eq(l.head->data, "Expect:");
	ck_assert_str_eq(l.head->next->data, "Accept:");
	ck_assert_ptr_null(l.head->next->next);
	header_list_free(&l);
}
END_TEST

static Suite *headers_suite(void)
{
	Suite *s = suite_create("headers");
	TCase *tc;

	tc = tcase_create("request");
	tcase_add_test(tc, test_request_hop_by_hop);
	tcase_add_test(tc, test_request_sluice);
	tcase_add_test(tc, test_request_ordinary);
	tcase_add_test(tc, test_request_len_bounded);
	tcase_add_test(tc, test_request_connection_listed);
	tcase_add_test(tc, test_listed_in);
	suite_add_tcase(s, tc);

	tc = tcase_create("response");
	tcase_add_test(tc, test_response);
	suite_add_tcase(s, tc);

	tc = tcase_create("util");
	tcase_add_test(tc, test_name_eq);
	tcase_add_test(tc, test_name_ok);
	tcase_add_test(tc, test_value_ok);
	tcase_add_test(tc, test_list_lines);
	tcase_add_test(tc, test_u64);
	suite_add_tcase(s, tc);
	return s;
}

TESTLIB_MAIN(headers_suite)

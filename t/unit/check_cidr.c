/*
 * check_cidr.c - parsing networks and matching client addresses.
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "cidr.h"
#include "testlib.h"

static struct cidr_list list;

static void setup(void)
{
	memset(&list, 0, sizeof(list));
}

static void teardown(void)
{
	cidr_list_done(&list);
}

/* An address as a sockaddr of its family. */
static const struct sockaddr *addr(const char *s,
                                   struct sockaddr_storage *ss)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, s, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
	} else {
		ck_assert_int_eq(inet_pton(AF_INET6, s, &sin6->sin6_addr), 1);
		sin6->sin6_family = AF_INET6;
	}
	return (const struct sockaddr *)ss;
}

static void add(const char *s)
{
	struct cidr c;

	ck_assert_int_eq(cidr_parse(s, &c), 0);
	ck_assert_int_eq(cidr_list_add(&list, &c), 0);
}

static int matches(const char *a)
{
	struct sockaddr_storage ss;

	return cidr_list_match(&list, addr(a, &ss));
}

START_TEST(test_parse_ipv4)
{
	static const uint8_t net[4] = { 10, 0, 0, 0 };
	struct cidr c;

	ck_assert_int_eq(cidr_parse("10.0.0.0/8", &c), 0);
	ck_assert_int_eq(c.family, AF_INET);
	ck_assert_uint_eq(c.prefix, 8);
	ck_assert_mem_eq(c.addr, net, 4);
}
END_TEST

START_TEST(test_parse_bare_is_full_prefix)
{
	static const uint8_t a4[4] = { 192, 0, 2, 7 };
	static const uint8_t a6[16] = { [15] = 1 };
	struct cidr c;

	ck_assert_int_eq(cidr_parse("192.0.2.7", &c), 0);
	ck_assert_uint_eq(c.prefix, 32);
	ck_assert_mem_eq(c.addr, a4, 4);
	ck_assert_int_eq(cidr_parse("::1", &c), 0);
	ck_assert_int_eq(c.family, AF_INET6);
	ck_assert_uint_eq(c.prefix, 128);
	ck_assert_mem_eq(c.addr, a6, 16);
}
END_TEST

START_TEST(test_parse_clears_host_bits)
{
	static const uint8_t a4[4] = { 10, 1, 0, 0 };
	static const uint8_t a6[16] = { 0x20, 0x01, 0x0d, 0xb8, 0xff, 0x80 };
	struct cidr c;

	ck_assert_int_eq(cidr_parse("10.1.2.3/17", &c), 0);
	ck_assert_mem_eq(c.addr, a4, 4);
	ck_assert_int_eq(cidr_parse("2001:db8:ffff:ffff::1/41", &c), 0);
	ck_assert_uint_eq(c.prefix, 41);
	ck_assert_mem_eq(c.addr, a6, 16);
	ck_assert_int_eq(cidr_parse("255.255.255.255/0", &c), 0);
	ck_assert_uint_eq(c.prefix, 0);
	ck_assert_uint_eq(c.addr[0], 0);
}
END_TEST

static const char *const bad[] = {
	"", "/", "/8", "10.0.0.0/", "10.0.0.0/33", "::/129", "10.0.0.0/-1",
	"10.0.0.0/+8", "10.0.0.0/ 8", "10.0.0.0/8x", "10.0.0.0/0x8",
	"10.0.0", "10.0.0.0.0", "300.0.0.0/8", "localhost", "fe80::1%eth0",
	"10.0.0.0/8/8", " 10.0.0.0/8", "1::2::3",
	"ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255/1280",
};

START_TEST(test_parse_rejects)
{
	struct cidr c = { .family = 99 };

	ck_assert_msg(cidr_parse(bad[_i], &c) == -EINVAL, "accepted '%s'",
	              bad[_i]);
	ck_assert_int_eq(c.family, 99);
}
END_TEST

START_TEST(test_match_ipv4)
{
	add("127.0.0.0/8");
	add("192.168.1.128/25");
	ck_assert(matches("127.0.0.1"));
	ck_assert(matches("127.255.255.255"));
	ck_assert(!matches("128.0.0.1"));
	ck_assert(matches("192.168.1.200"));
	ck_assert(!matches("192.168.1.127"));
	ck_assert(!matches("::1"));
}
END_TEST

START_TEST(test_match_ipv6)
{
	add("::1/128");
	add("2001:db8::/32");
	ck_assert(matches("::1"));
	ck_assert(!matches("::2"));
	ck_assert(matches("2001:db8:1234::5"));
	ck_assert(!matches("2001:db9::"));
	ck_assert(!matches("127.0.0.1"));
}
END_TEST

START_TEST(test_match_v4_mapped)
{
	add("127.0.0.0/8");
	add("169.254.169.254/32");
	ck_assert(matches("::ffff:127.0.0.1"));
	ck_assert(matches("::ffff:169.254.169.254"));
	ck_assert(!matches("::ffff:169.254.169.253"));
	/* Not mapped: ::7f00:1 is not 127.0.0.1. */
	ck_assert(!matches("::7f00:1"));
}
END_TEST

static int dest_matches(const char *a, unsigned port)
{
	struct sockaddr_storage ss;
	const struct sockaddr *sa = addr(a, &ss);

	if (sa->sa_family == AF_INET)
		((struct sockaddr_in *)&ss)->sin_port = htons(port);
	else
		((struct sockaddr_in6 *)&ss)->sin6_port = htons(port);
	return cidr_list_match_dest(&list, sa);
}

/* Every IPv6 spelling of a denied IPv4 address is denied. */
START_TEST(test_match_dest_embedded)
{
	add("169.254.169.254/32");
	ck_assert(dest_matches("169.254.169.254", 80));
	ck_assert(dest_matches("::ffff:169.254.169.254", 80));
	ck_assert(dest_matches("::169.254.169.254", 80));
	ck_assert(dest_matches("::a9fe:a9fe", 80));
	ck_assert(dest_matches("64:ff9b::a9fe:a9fe", 80));
	ck_assert(dest_matches("64:ff9b::169.254.169.254", 443));
	ck_assert(!dest_matches("64:ff9b::a9fe:a9fd", 80));
	ck_assert(!dest_matches("64:ff9b:1::a9fe:a9fe", 80));
	ck_assert(!dest_matches("2001:db8::a9fe:a9fe", 80));
	/* A client is not: ::a9fe:a9fe is not in an IPv4 allow list. */
	ck_assert(!matches("::a9fe:a9fe"));
	ck_assert(!matches("64:ff9b::a9fe:a9fe"));
}
END_TEST

/* An entry with a port matches that port only. */
START_TEST(test_match_dest_port)
{
	struct cidr c;

	ck_assert_int_eq(cidr_parse("127.0.0.0/8", &c), 0);
	c.port = 8081;
	ck_assert_int_eq(cidr_list_add(&list, &c), 0);
	ck_assert(dest_matches("127.0.0.1", 8081));
	ck_assert(dest_matches("127.1.2.3", 8081));
	ck_assert(dest_matches("::ffff:127.0.0.1", 8081));
	ck_assert(dest_matches("64:ff9b::7f00:1", 8081));
	ck_assert(!dest_matches("127.0.0.1", 8080));
	ck_assert(!dest_matches("10.0.0.1", 8081));
}
END_TEST

START_TEST(test_match_v6_entry_covers_v4)
{
	add("::ffff:10.0.0.0/104");
	ck_assert(matches("10.1.2.3"));
	ck_assert(matches("::ffff:10.9.9.9"));
	ck_assert(!matches("11.0.0.1"));
}
END_TEST

START_TEST(test_match_prefix_zero)
{
	add("0.0.0.0/0");
	ck_assert(matches("1.2.3.4"));
	ck_assert(matches("::ffff:8.8.8.8"));
	ck_assert(!matches("2001:db8::1"));
	add("::/0");
	ck_assert(matches("2001:db8::1"));
}
END_TEST

START_TEST(test_match_empty_and_other_families)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };

	ck_assert(!matches("127.0.0.1"));
	add("0.0.0.0/0");
	add("::/0");
	ck_assert(!cidr_list_match(&list, NULL));
	ck_assert(!cidr_list_match(&list, (const struct sockaddr *)&sun));
}
END_TEST

START_TEST(test_list_grows)
{
	char s[32];

	for (int i = 0; i < 1000; i++) {
		snprintf(s, sizeof(s), "10.%d.%d.0/24", i / 256, i % 256);
		add(s);
	}
	ck_assert_uint_eq(list.n, 1000);
	ck_assert(matches("10.3.231.9"));       /* i = 999 */
	ck_assert(!matches("10.3.232.9"));
	ck_assert_uint_eq(list.v[999].addr[2], 231);
	cidr_list_done(&list);
	ck_assert_ptr_null(list.v);
	ck_assert_uint_eq(list.n, 0);
	cidr_list_done(&list);
}
END_TEST

static Suite *cidr_suite(void)
{
	Suite *s = suite_create("cidr");
	TCase *tc;

	tc = tcase_create("parse");
	tcase_add_test(tc, test_parse_ipv4);
	tcase_add_test(tc, test_parse_bare_is_full_prefix);
	tcase_add_test(tc, test_parse_clears_host_bits);
	tcase_add_loop_test(tc, test_parse_rejects, 0,
	                    (int)(sizeof(bad) / sizeof(bad[0])));
	suite_add_tcase(s, tc);

	tc = tcase_create("match");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_match_ipv4);
	tcase_add_test(tc, test_match_ipv6);
	tcase_add_test(tc, test_match_v4_mapped);
	tcase_add_test(tc, test_match_v6_entry_covers_v4);
	tcase_add_test(tc, test_match_dest_embedded);
	tcase_add_test(tc, test_match_dest_port);
	tcase_add_test(tc, test_match_prefix_zero);
	tcase_add_test(tc, test_match_empty_and_other_families);
	tcase_add_test(tc, test_list_grows);
	suite_add_tcase(s, tc);
	return s;
}

TESTLIB_MAIN(cidr_suite)

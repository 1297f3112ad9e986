/*
 * check_classify.c - request targets, authorities and destinations.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "classify.h"
#include "testlib.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Bigger than any URL the tests make. */
#define URL_MAX 1024

struct good_target {
	const char *raw;
	enum scheme scheme;
	const char *host;
	unsigned port;
	bool ipv6;
	const char *path;             /* the path_len bytes expected */
	const char *dest;             /* destination_format() */
	const char *url;              /* target_upstream_url() */
};

static const struct good_target good_targets[] = {
	{ "http://Host:8080/p?q", SCHEME_HTTP, "host", 8080, false,
	  "/p?q", "http://host:8080", "http://host:8080/p?q" },
	{ "HTTP://a.COM", SCHEME_HTTP, "a.com", 80, false,
	  "", "http://a.com:80", "http://a.com:80/" },
	{ "http://[::1]:9000/x", SCHEME_HTTP, "::1", 9000, true,
	  "/x", "http://[::1]:9000", "http://[::1]:9000/x" },
	{ "https://x.y", SCHEME_HTTPS, "x.y", 443, false,
	  "", "https://x.y:443", "https://x.y:443/" },
	{ "HtTpS://EXAMPLE.org:8443/A/B", SCHEME_HTTPS, "example.org", 8443,
	  false, "/A/B", "https://example.org:8443",
	  "https://example.org:8443/A/B" },
	{ "http://a.com:/", SCHEME_HTTP, "a.com", 80, false,
	  "/", "http://a.com:80", "http://a.com:80/" },
	{ "https://a.com:/x", SCHEME_HTTPS, "a.com", 443, false,
	  "/x", "https://a.com:443", "https://a.com:443/x" },
	{ "http://a.com?x=1", SCHEME_HTTP, "a.com", 80, false,
	  "?x=1", "http://a.com:80", "http://a.com:80/?x=1" },
	{ "http://a.com:81?x=1&y", SCHEME_HTTP, "a.com", 81, false,
	  "?x=1&y", "http://a.com:81", "http://a.com:81/?x=1&y" },
	{ "http://a.com/p#frag", SCHEME_HTTP, "a.com", 80, false,
	  "/p", "http://a.com:80", "http://a.com:80/p" },
	{ "http://a.com/p?q=1#frag?x", SCHEME_HTTP, "a.com", 80, false,
	  "/p?q=1", "http://a.com:80", "http://a.com:80/p?q=1" },
	{ "http://a.com#frag", SCHEME_HTTP, "a.com", 80, false,
	  "", "http://a.com:80", "http://a.com:80/" },
	{ "http://a.com:8080#f", SCHEME_HTTP, "a.com", 8080, false,
	  "", "http://a.com:8080", "http://a.com:8080/" },
	{ "http://[2001:DB8::1]", SCHEME_HTTP, "2001:db8::1", 80, true,
	  "", "http://[2001:db8::1]:80", "http://[2001:db8::1]:80/" },
	{ "https://[::FFFF:1.2.3.4]/", SCHEME_HTTPS, "::ffff:1.2.3.4", 443,
	  true, "/", "https://[::ffff:1.2.3.4]:443",
	  "https://[::ffff:1.2.3.4]:443/" },
	{ "http://[::1]:/", SCHEME_HTTP, "::1", 80, true,
	  "/", "http://[::1]:80", "http://[::1]:80/" },
	{ "http://[::1]?q", SCHEME_HTTP, "::1", 80, true,
	  "?q", "http://[::1]:80", "http://[::1]:80/?q" },
	{ "http://127.0.0.1:65535/", SCHEME_HTTP, "127.0.0.1", 65535, false,
	  "/", "http://127.0.0.1:65535", "http://127.0.0.1:65535/" },
	{ "http://a_b-c.D:1/", SCHEME_HTTP, "a_b-c.d", 1, false,
	  "/", "http://a_b-c.d:1", "http://a_b-c.d:1/" },
	{ "http://a.com:00080/", SCHEME_HTTP, "a.com", 80, false,
	  "/", "http://a.com:80", "http://a.com:80/" },
	{ "http://localhost/", SCHEME_HTTP, "localhost", 80, false,
	  "/", "http://localhost:80", "http://localhost:80/" },
	/* '@' after the authority is path, not userinfo. */
	{ "http://a.com/x@y?u=a@b", SCHEME_HTTP, "a.com", 80, false,
	  "/x@y?u=a@b", "http://a.com:80", "http://a.com:80/x@y?u=a@b" },
	/* ':' and '[' in the path are the path's business. */
	{ "http://a.com/a:b/[c]", SCHEME_HTTP, "a.com", 80, false,
	  "/a:b/[c]", "http://a.com:80", "http://a.com:80/a:b/[c]" },
	/* The path is never decoded, resolved or re-escaped. */
	{ "http://a.com/a%2Fb/../c//d/./e+f%20g?q=a+b&r=%2F&s=..#x",
	  SCHEME_HTTP, "a.com", 80, false,
	  "/a%2Fb/../c//d/./e+f%20g?q=a+b&r=%2F&s=..", "http://a.com:80",
	  "http://a.com:80/a%2Fb/../c//d/./e+f%20g?q=a+b&r=%2F&s=.." },
	{ "http://a.com//", SCHEME_HTTP, "a.com", 80, false,
	  "//", "http://a.com:80", "http://a.com:80//" },
	{ "http://a.com/%zz%%%41", SCHEME_HTTP, "a.com", 80, false,
	  "/%zz%%%41", "http://a.com:80", "http://a.com:80/%zz%%%41" },
	/* Bytes over 0x7f are not control characters. */
	{ "http://a.com/caf\xc3\xa9", SCHEME_HTTP, "a.com", 80, false,
	  "/caf\xc3\xa9", "http://a.com:80", "http://a.com:80/caf\xc3\xa9" },
};

struct bad_target {
	const char *raw;
	enum target_error err;
};

static const struct bad_target bad_targets[] = {
	{ "/", TARGET_ORIGIN_FORM },
	{ "/path?q", TARGET_ORIGIN_FORM },
	{ "//a.com/x", TARGET_ORIGIN_FORM },
	{ "*", TARGET_ORIGIN_FORM },
	{ "", TARGET_BAD_SCHEME },
	{ "h", TARGET_BAD_SCHEME },
	{ "http", TARGET_BAD_SCHEME },
	{ "http:", TARGET_BAD_SCHEME },
	{ "http:/", TARGET_BAD_SCHEME },
	{ "http:/a.com/", TARGET_BAD_SCHEME },
	{ "http//a.com/", TARGET_BAD_SCHEME },
	{ "https:/a.com/", TARGET_BAD_SCHEME },
	{ "ftp://a.com/", TARGET_BAD_SCHEME },
	{ "ws://a.com/", TARGET_BAD_SCHEME },
	{ "httpx://a.com/", TARGET_BAD_SCHEME },
	{ "httpss://a.com/", TARGET_BAD_SCHEME },
	{ "xhttp://a.com/", TARGET_BAD_SCHEME },
	{ "a.com/x", TARGET_BAD_SCHEME },
	{ "a.com:80", TARGET_BAD_SCHEME },
	{ "http://", TARGET_BAD_HOST },
	{ "https://", TARGET_BAD_HOST },
	{ "http:///x", TARGET_BAD_HOST },
	{ "http://?q", TARGET_BAD_HOST },
	{ "http://#f", TARGET_BAD_HOST },
	{ "http://:80/", TARGET_BAD_HOST },
	{ "http://a!b/", TARGET_BAD_HOST },
	{ "http://a%62.com/", TARGET_BAD_HOST },
	{ "http://a,b/", TARGET_BAD_HOST },
	{ "http://a;b/", TARGET_BAD_HOST },
	{ "http://a\\b/", TARGET_BAD_HOST },
	{ "http://a]b/", TARGET_BAD_HOST },
	{ "http://caf\xc3\xa9.com/", TARGET_BAD_HOST },
	{ "http://[::1/", TARGET_BAD_HOST },
	{ "http://[::1", TARGET_BAD_HOST },
	{ "http://[::1]x/", TARGET_BAD_HOST },
	{ "http://[::1]]/", TARGET_BAD_HOST },
	{ "http://[]/", TARGET_BAD_HOST },
	{ "http://[]:80/", TARGET_BAD_HOST },
	{ "http://[not-v6]/", TARGET_BAD_HOST },
	{ "http://[1.2.3.4]/", TARGET_BAD_HOST },
	{ "http://[::1::2]/", TARGET_BAD_HOST },
	{ "http://[fe80::1%25eth0]/", TARGET_BAD_HOST },
	{ "http://[v1.x]/", TARGET_BAD_HOST },
	{ "http://::1/", TARGET_BAD_HOST },
	{ "http://a.com:0/", TARGET_BAD_PORT },
	{ "http://a.com:00/", TARGET_BAD_PORT },
	{ "http://a.com:65536/", TARGET_BAD_PORT },
	{ "http://a.com:100000/", TARGET_BAD_PORT },
	{ "http://a.com:4294967377/", TARGET_BAD_PORT },
	{ "http://a.com:99999999999999999999999/", TARGET_BAD_PORT },
	{ "http://a.com:-1/", TARGET_BAD_PORT },
	{ "http://a.com:+80/", TARGET_BAD_PORT },
	{ "http://a.com:8a/", TARGET_BAD_PORT },
	{ "http://a.com:0x50/", TARGET_BAD_PORT },
	{ "http://a.com:80:80/", TARGET_BAD_PORT },
	{ "http://a:b:c/", TARGET_BAD_PORT },
	{ "http://[::1]:x/", TARGET_BAD_PORT },
	{ "http://[::1]:0", TARGET_BAD_PORT },
	{ "http://user@a.com/", TARGET_USERINFO },
	{ "http://user:pw@a.com/", TARGET_USERINFO },
	{ "http://@a.com/", TARGET_USERINFO },
	{ "http://a.com@evil.com/", TARGET_USERINFO },
	{ "https://u@[::1]:443/", TARGET_USERINFO },
	{ "http://a.com:80@b/", TARGET_USERINFO },
	{ "http://a.com/a b", TARGET_BAD_CHAR },
	{ "http://a.com/a\tb", TARGET_BAD_CHAR },
	{ "http://a.com/\r\nX-Injected: 1", TARGET_BAD_CHAR },
	{ "http://a.com/\x01", TARGET_BAD_CHAR },
	{ "http://a.com/\x1f", TARGET_BAD_CHAR },
	{ "http://a.com/\x7f", TARGET_BAD_CHAR },
	{ "http://a.com/x#frag ment", TARGET_BAD_CHAR },
	{ "http://a .com/", TARGET_BAD_CHAR },
	{ " http://a.com/", TARGET_BAD_CHAR },
	{ "http://a.com/ ", TARGET_BAD_CHAR },
	/* The character check comes before every other. */
	{ "/a b", TARGET_BAD_CHAR },
	{ "ftp://a b/", TARGET_BAD_CHAR },
	{ "http://u@a b/", TARGET_BAD_CHAR },
};

/* True when the n bytes at p lie inside the C string s. */
static bool points_into(const char *p, size_t n, const char *s)
{
	return p >= s && p + n <= s + strlen(s);
}

START_TEST(test_target_good)
{
	const struct good_target *g = &good_targets[_i];
	struct target t;
	char buf[URL_MAX];
	enum target_error err;
	int n;

	err = target_parse(g->raw, &t);
	ck_assert_msg(err == TARGET_OK, "'%s': got %s", g->raw,
	              target_error_str(err));
	ck_assert_int_eq(t.dest.scheme, g->scheme);
	ck_assert_str_eq(t.dest.host, g->host);
	ck_assert_uint_eq(t.dest.port, g->port);
	ck_assert_int_eq(t.dest.ipv6, g->ipv6);
	ck_assert_msg(t.path_len == strlen(g->path) &&
	              memcmp(t.path, g->path, t.path_len) == 0,
	              "'%s': path '%.*s', want '%s'", g->raw,
	              (int)t.path_len, t.path, g->path);
	ck_assert_msg(points_into(t.path, t.path_len, g->raw),
	              "'%s': path is not inside raw", g->raw);

	n = destination_format(&t.dest, buf, sizeof(buf));
	ck_assert_int_eq(n, (int)strlen(g->dest));
	ck_assert_str_eq(buf, g->dest);

	n = target_upstream_url(&t, buf, sizeof(buf));
	ck_assert_int_eq(n, (int)strlen(g->url));
	ck_assert_str_eq(buf, g->url);
}
END_TEST

START_TEST(test_target_bad)
{
	const struct bad_target *b = &bad_targets[_i];
	struct target t;
	enum target_error err;

	/* Outputs are written only on success. */
	memset(&t, 0xa5, sizeof(t));
	err = target_parse(b->raw, &t);
	ck_assert_msg(err == b->err, "'%s': got '%s', want '%s'", b->raw,
	              target_error_str(err), target_error_str(b->err));
	ck_assert_uint_eq((unsigned char)t.dest.host[0], 0xa5);
	ck_assert_uint_eq(t.path_len, ~(size_t)0 / 0xff * 0xa5);
}
END_TEST

/* "http://A.com:80/" and "http://a.com/" are one destination. */
START_TEST(test_default_port_normalised)
{
	static const char *const same[][2] = {
		{ "http://A.com:80/", "http://a.com/" },
		{ "http://a.com", "HTTP://A.COM:80/x" },
		{ "http://a.com:/", "http://a.com:80" },
		{ "https://a.com:443/", "https://A.Com" },
		{ "https://a.com:/", "HTTPS://a.com:00443/" },
		{ "http://[::1]:80/", "http://[::1]/" },
		{ "http://[::ABCD]/", "http://[::abcd]:80?q" },
	};
	static const char *const differ[][2] = {
		{ "http://a.com/", "https://a.com/" },
		{ "http://a.com:443/", "https://a.com/" },
		{ "https://a.com:80/", "http://a.com/" },
		{ "http://a.com:8080/", "http://a.com/" },
		{ "http://a.com/", "http://a.com./" },
		{ "http://a.com/", "http://b.com/" },
	};
	char d0[URL_MAX], d1[URL_MAX];
	struct target t0, t1;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(same); i++) {
		ck_assert_int_eq(target_parse(same[i][0], &t0), TARGET_OK);
		ck_assert_int_eq(target_parse(same[i][1], &t1), TARGET_OK);
		ck_assert_int_ge(destination_format(&t0.dest, d0, sizeof(d0)),
		                 0);
		ck_assert_int_ge(destination_format(&t1.dest, d1, sizeof(d1)),
		                 0);
		ck_assert_msg(strcmp(d0, d1) == 0, "'%s' -> '%s' but '%s' -> "
		              "'%s'", same[i][0], d0, same[i][1], d1);
	}
	for (i = 0; i < ARRAY_SIZE(differ); i++) {
		ck_assert_int_eq(target_parse(differ[i][0], &t0), TARGET_OK);
		ck_assert_int_eq(target_parse(differ[i][1], &t1), TARGET_OK);
		ck_assert_int_ge(destination_format(&t0.dest, d0, sizeof(d0)),
		                 0);
		ck_assert_int_ge(destination_format(&t1.dest, d1, sizeof(d1)),
		                 0);
		ck_assert_str_ne(d0, d1);
	}
}
END_TEST

/* Every byte of every printable-ASCII path goes upstream unchanged. */
START_TEST(test_path_byte_for_byte)
{
	static const char prefix[] = "http://a.com";
	char raw[URL_MAX], url[URL_MAX];
	struct target t;
	size_t n = sizeof(prefix) - 1;
	int c, len;

	memcpy(raw, prefix, n);
	raw[n++] = '/';
	for (c = 0x21; c < 0x7f; c++) {
		if (c != '#')
			raw[n++] = (char)c;
	}
	raw[n] = '\0';
	ck_assert_int_eq(target_parse(raw, &t), TARGET_OK);
	ck_assert_ptr_eq(t.path, raw + sizeof(prefix) - 1);
	ck_assert_uint_eq(t.path_len, n - (sizeof(prefix) - 1));
	len = target_upstream_url(&t, url, sizeof(url));
	ck_assert_int_eq(len, (int)(n + 3));
	ck_assert_str_eq(url + strlen("http://a.com:80"), t.path);
}
END_TEST

START_TEST(test_host_length)
{
	char raw[URL_MAX], host[DEST_HOST_MAX + 2];
	struct target t;

	memset(host, 'a', DEST_HOST_MAX);
	host[DEST_HOST_MAX] = '\0';
	snprintf(raw, sizeof(raw), "http://%s:81/x", host);
	ck_assert_int_eq(target_parse(raw, &t), TARGET_OK);
	ck_assert_str_eq(t.dest.host, host);
	ck_assert_uint_eq(t.dest.port, 81);

	host[DEST_HOST_MAX] = 'A';
	host[DEST_HOST_MAX + 1] = '\0';
	snprintf(raw, sizeof(raw), "http://%s:81/x", host);
	ck_assert_int_eq(target_parse(raw, &t), TARGET_BAD_HOST);
}
END_TEST

START_TEST(test_format_nospace)
{
	struct target t;
	char buf[URL_MAX];
	size_t want;
	int n;

	ck_assert_int_eq(target_parse("http://a.com/xy", &t), TARGET_OK);
	want = strlen("http://a.com:80");
	n = destination_format(&t.dest, buf, want + 1);
	ck_assert_int_eq(n, (int)want);
	ck_assert_str_eq(buf, "http://a.com:80");
	n = destination_format(&t.dest, buf, want);
	ck_assert_int_eq(n, -ENOSPC);
	ck_assert_str_eq(buf, "");
	n = destination_format(&t.dest, NULL, 0);
	ck_assert_int_eq(n, -ENOSPC);

	want = strlen("http://a.com:80/xy");
	n = target_upstream_url(&t, buf, want + 1);
	ck_assert_int_eq(n, (int)want);
	ck_assert_str_eq(buf, "http://a.com:80/xy");
	n = target_upstream_url(&t, buf, want);
	ck_assert_int_eq(n, -ENOSPC);
	ck_assert_str_eq(buf, "");
	n = target_upstream_url(&t, buf, 4);
	ck_assert_int_eq(n, -ENOSPC);

	/* The "/" added before a bare query counts too. */
	ck_assert_int_eq(target_parse("http://a.com?q", &t), TARGET_OK);
	want = strlen("http://a.com:80/?q");
	ck_assert_int_eq(target_upstream_url(&t, buf, want), -ENOSPC);
	ck_assert_int_eq(target_upstream_url(&t, buf, want + 1), (int)want);
	ck_assert_str_eq(buf, "http://a.com:80/?q");
}
END_TEST

struct good_authority {
	const char *s;
	size_t len;                   /* 0: strlen(s) */
	const char *host;
	unsigned port;
	bool ipv6;
	const char *dest;
};

static const struct good_authority good_authorities[] = {
	{ "a.com:443", 0, "a.com", 443, false, "https://a.com:443" },
	{ "A.Com:8443", 0, "a.com", 8443, false, "https://a.com:8443" },
	{ "10.0.0.1:1", 0, "10.0.0.1", 1, false, "https://10.0.0.1:1" },
	{ "[::1]:443", 0, "::1", 443, true, "https://[::1]:443" },
	{ "[2001:DB8::1]:65535", 0, "2001:db8::1", 65535, true,
	  "https://[2001:db8::1]:65535" },
	/* Only len bytes are looked at. */
	{ "a.com:443 HTTP/1.1", 9, "a.com", 443, false, "https://a.com:443" },
	{ "[::1]:80]", 8, "::1", 80, true, "https://[::1]:80" },
};

START_TEST(test_authority_good)
{
	const struct good_authority *g = &good_authorities[_i];
	size_t len = g->len ? g->len : strlen(g->s);
	struct destination d;
	char buf[URL_MAX];

	ck_assert_int_eq(authority_parse(g->s, len, &d), TARGET_OK);
	ck_assert_int_eq(d.scheme, SCHEME_HTTPS);
	ck_assert_str_eq(d.host, g->host);
	ck_assert_uint_eq(d.port, g->port);
	ck_assert_int_eq(d.ipv6, g->ipv6);
	ck_assert_int_eq(destination_format(&d, buf, sizeof(buf)),
	                 (int)strlen(g->dest));
	ck_assert_str_eq(buf, g->dest);
}
END_TEST

struct bad_authority {
	const char *s;
	size_t len;                   /* 0: strlen(s) */
	enum target_error err;
};

static const struct bad_authority bad_authorities[] = {
	{ "a.com", 0, TARGET_BAD_PORT },
	{ "a.com:", 0, TARGET_BAD_PORT },
	{ "[::1]", 0, TARGET_BAD_PORT },
	{ "[::1]:", 0, TARGET_BAD_PORT },
	{ "a.com:0", 0, TARGET_BAD_PORT },
	{ "a.com:65536", 0, TARGET_BAD_PORT },
	{ "a.com:443/x", 0, TARGET_BAD_PORT },
	{ "a.com:443:1", 0, TARGET_BAD_PORT },
	{ "a.com:443 HTTP/1.1", 5, TARGET_BAD_PORT },
	{ "a.com:443", 6, TARGET_BAD_PORT },
	{ "", 0, TARGET_BAD_HOST },
	{ ":443", 0, TARGET_BAD_HOST },
	{ "a/b:443", 0, TARGET_BAD_HOST },
	{ "[::1:443", 0, TARGET_BAD_HOST },
	{ "[x]:443", 0, TARGET_BAD_HOST },
	{ "http://a.com:443", 0, TARGET_BAD_PORT },
	{ "u@a.com:443", 0, TARGET_USERINFO },
	{ "u:p@a.com:443", 0, TARGET_USERINFO },
	{ "a com:443", 0, TARGET_BAD_CHAR },
	{ "a.com:443\r\n", 0, TARGET_BAD_CHAR },
	{ "a.com:4\x7f", 0, TARGET_BAD_CHAR },
};

START_TEST(test_authority_bad)
{
	const struct bad_authority *b = &bad_authorities[_i];
	size_t len = b->len ? b->len : strlen(b->s);
	struct destination d;
	enum target_error err;

	memset(&d, 0xa5, sizeof(d));
	err = authority_parse(b->s, len, &d);
	ck_assert_msg(err == b->err, "'%.*s': got '%s', want '%s'",
	              (int)len, b->s, target_error_str(err),
	              target_error_str(b->err));
	ck_assert_uint_eq((unsigned char)d.host[0], 0xa5);
}
END_TEST

struct connect_case {
	const char *s;
	enum connect_head want;
	size_t len;                   /* of the head, when OK */
	const char *dest;             /* when OK */
	enum target_error err;        /* when BAD */
};

#define CH "CONNECT api.example.com:443 HTTP/1.1\r\n"

static const struct connect_case connect_cases[] = {
	{ CH "\r\n", CONNECT_HEAD_OK, sizeof(CH "\r\n") - 1,
	  "https://api.example.com:443", TARGET_OK },
	{ CH "Host: api.example.com:443\r\nUser-Agent: c/1\r\n\r\nTLS",
	  CONNECT_HEAD_OK,
	  sizeof(CH "Host: api.example.com:443\r\nUser-Agent: c/1\r\n\r\n") - 1,
	  "https://api.example.com:443", TARGET_OK },
	{ "CONNECT [::1]:8443 HTTP/1.0\r\n\r\n", CONNECT_HEAD_OK, 31,
	  "https://[::1]:8443", TARGET_OK },
	{ "CONNECT 127.0.0.1:80 HTTP/1.1\r\nX: \t\r\n\r\n", CONNECT_HEAD_OK,
	  39, "https://127.0.0.1:80", TARGET_OK },
	/* Not yet whole. */
	{ CH, CONNECT_HEAD_MORE, 0, NULL, TARGET_OK },
	{ CH "Host: a\r\n\r", CONNECT_HEAD_MORE, 0, NULL, TARGET_OK },
	{ "CONN", CONNECT_HEAD_MORE, 0, NULL, TARGET_OK },
	/* The authority. */
	{ "CONNECT api.example.com HTTP/1.1\r\n\r\n", CONNECT_HEAD_BAD, 0,
	  NULL, TARGET_BAD_PORT },
	{ "CONNECT [::1] HTTP/1.1\r\n\r\n", CONNECT_HEAD_BAD, 0, NULL,
	  TARGET_BAD_PORT },
	{ "CONNECT a.com:0 HTTP/1.1\r\n\r\n", CONNECT_HEAD_BAD, 0, NULL,
	  TARGET_BAD_PORT },
	{ "CONNECT u@a.com:443 HTTP/1.1\r\n\r\n", CONNECT_HEAD_BAD, 0, NULL,
	  TARGET_USERINFO },
	{ "CONNECT a_$.com:443 HTTP/1.1\r\n\r\n", CONNECT_HEAD_BAD, 0, NULL,
	  TARGET_BAD_HOST },
	{ "CONNECT http://a.com:443/ HTTP/1.1\r\n\r\n", CONNECT_HEAD_BAD, 0,
	  NULL, TARGET_BAD_PORT },
	/* The line and the fields. */
	{ "CONNECT  a.com:443 HTTP/1.1\r\n\r\n", CONNECT_HEAD_BAD, 0, NULL,
	  TARGET_OK },
	{ "CONNECT a.com:443 HTTP/2.0\r\n\r\n", CONNECT_HEAD_BAD, 0, NULL,
	  TARGET_OK },
	{ "CONNECT a.com:443 HTTP/1.1 x\r\n\r\n", CONNECT_HEAD_BAD, 0, NULL,
	  TARGET_OK },
	{ "CONNECT a.com:443\r\n\r\n", CONNECT_HEAD_BAD, 0, NULL, TARGET_OK },
	{ "connect a.com:443 HTTP/1.1\r\n\r\n", CONNECT_HEAD_BAD, 0, NULL,
	  TARGET_OK },
	{ "\r\n\r\n", CONNECT_HEAD_BAD, 0, NULL, TARGET_OK },
	{ CH "Host a\r\n\r\n", CONNECT_HEAD_BAD, 0, NULL, TARGET_OK },
	{ CH "Ho st: a\r\n\r\n", CONNECT_HEAD_BAD, 0, NULL, TARGET_OK },
	{ CH ": a\r\n\r\n", CONNECT_HEAD_BAD, 0, NULL, TARGET_OK },
	{ CH "X: a\nY: b\r\n\r\n", CONNECT_HEAD_BAD, 0, NULL, TARGET_OK },
	{ CH " folded\r\n\r\n", CONNECT_HEAD_BAD, 0, NULL, TARGET_OK },
	{ "CONNECT a.com:443 HTTP/1.1\n\r\n\r\n", CONNECT_HEAD_BAD, 0, NULL,
	  TARGET_OK },
};

START_TEST(test_connect_head)
{
	const struct connect_case *c = &connect_cases[_i];
	struct destination d;
	enum target_error err = TARGET_BAD_CHAR;
	size_t len = 0;
	char buf[URL_MAX];
	enum connect_head got;

	got = connect_head_parse(c->s, strlen(c->s), 4096, &d, &len, &err);
	ck_assert_msg(got == c->want, "'%s': got %d, want %d", c->s, got,
	              c->want);
	if (got == CONNECT_HEAD_OK) {
		ck_assert_uint_eq(len, c->len);
		destination_format(&d, buf, sizeof(buf));
		ck_assert_str_eq(buf, c->dest);
	}
	if (got == CONNECT_HEAD_BAD)
		ck_assert_msg(err == c->err, "'%s': got '%s', want '%s'",
		              c->s, target_error_str(err),
		              target_error_str(c->err));
}
END_TEST

START_TEST(test_connect_head_max)
{
	static const char head[] = CH "Host: a\r\n\r\n";
	struct destination d;
	enum target_error err;
	size_t len;

	/* The end must fall within max bytes. */
	ck_assert_int_eq(connect_head_parse(head, sizeof(head) - 1,
	                                    sizeof(head) - 2, &d, &len, &err),
	                 CONNECT_HEAD_TOO_LARGE);
	ck_assert_int_eq(connect_head_parse(head, sizeof(head) - 1,
	                                    sizeof(head) - 1, &d, &len, &err),
	                 CONNECT_HEAD_OK);
	ck_assert_int_eq(connect_head_parse(head, 20, 20, &d, &len, &err),
	                 CONNECT_HEAD_TOO_LARGE);
	ck_assert_int_eq(connect_head_parse(head, 20, 4096, &d, &len, &err),
	                 CONNECT_HEAD_MORE);
}
END_TEST

START_TEST(test_error_str)
{
	static const enum target_error all[] = {
		TARGET_OK, TARGET_ORIGIN_FORM, TARGET_BAD_SCHEME,
		TARGET_BAD_HOST, TARGET_BAD_PORT, TARGET_USERINFO,
		TARGET_BAD_CHAR,
	};
	size_t i, j;

	for (i = 0; i < ARRAY_SIZE(all); i++) {
		const char *s = target_error_str(all[i]);

		ck_assert_ptr_nonnull(s);
		ck_assert_uint_gt(strlen(s), 0);
		for (j = 0; s[j]; j++)
			ck_assert_msg(!(s[j] >= 'A' && s[j] <= 'Z'),
			              "'%s' is not lower-case", s);
		for (j = 0; j < i; j++)
			ck_assert_str_ne(s, target_error_str(all[j]));
	}
	ck_assert_str_eq(target_error_str(TARGET_ORIGIN_FORM),
	                 "origin-form target");
	ck_assert_ptr_nonnull(target_error_str((enum target_error)99));
}
END_TEST

START_TEST(test_scheme)
{
	ck_assert_uint_eq(scheme_default_port(SCHEME_HTTP), 80);
	ck_assert_uint_eq(scheme_default_port(SCHEME_HTTPS), 443);
	ck_assert_str_eq(scheme_name(SCHEME_HTTP), "http");
	ck_assert_str_eq(scheme_name(SCHEME_HTTPS), "https");
}
END_TEST

static Suite *classify_suite(void)
{
	Suite *s = suite_create("classify");
	TCase *tc;

	tc = tcase_create("target");
	tcase_add_loop_test(tc, test_target_good, 0,
	                    (int)ARRAY_SIZE(good_targets));
	tcase_add_loop_test(tc, test_target_bad, 0,
	                    (int)ARRAY_SIZE(bad_targets));
	tcase_add_test(tc, test_default_port_normalised);
	tcase_add_test(tc, test_path_byte_for_byte);
	tcase_add_test(tc, test_host_length);
	suite_add_tcase(s, tc);

	tc = tcase_create("authority");
	tcase_add_loop_test(tc, test_authority_good, 0,
	                    (int)ARRAY_SIZE(good_authorities));
	tcase_add_loop_test(tc, test_authority_bad, 0,
	                    (int)ARRAY_SIZE(bad_authorities));
	suite_add_tcase(s, tc);

	tc = tcase_create("connect");
	tcase_add_loop_test(tc, test_connect_head, 0,
	                    (int)ARRAY_SIZE(connect_cases));
	tcase_add_test(tc, test_connect_head_max);
	suite_add_tcase(s, tc);

	tc = tcase_create("format");
	tcase_add_test(tc, test_format_nospace);
	tcase_add_test(tc, test_error_str);
	tcase_add_test(tc, test_scheme);
	suite_add_tcase(s, tc);
	return s;
}

TESTLIB_MAIN(classify_suite)

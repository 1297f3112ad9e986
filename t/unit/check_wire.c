/*
 * check_wire.c - the byte checks in front of libmicrohttpd: the RFC 9112
 * parser fed whole, byte by byte and in random pieces (the verdicts must
 * agree), and the recv(2) filter over a real socket pair.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "wire.h"
#include "testlib.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MAX_HEAD 7680

struct pcase {
	const char *in;
	size_t len;                  /* 0: strlen(in) */
	unsigned status;             /* 0: valid */
	const char *msg;             /* part of the message, or NULL */
};

#define OK(s) { s, sizeof(s) - 1, 0, NULL }
#define BAD(s, st, m) { s, sizeof(s) - 1, st, m }

static const struct pcase cases[] = {
	OK("GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n"),
	OK("GET http://a/ HTTP/1.0\r\n\r\n"),
	OK("\r\n\r\nGET / HTTP/1.1\r\n\r\n"),
	OK("\nGET / HTTP/1.1\nHost: a\n\n"),
	OK("GET / HTTP/1.1\r\nX-A:\r\nX-B: \t v \t\r\n\r\n"),
	OK("GET / HTTP/1.1\r\nX-L: caf\xe9 \x80\xff\r\n\r\n"),
	OK("GET /%00?\x80 HTTP/1.1\r\n\r\n"),
	OK("POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\n\r\n"),
	OK("POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n"),
	OK("POST / HTTP/1.1\r\ncontent-length: 3\r\nContent-Length: 3\r\n\r\nabc"),
	OK("POST / HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n"
	   "5\r\nhello\r\na;x=\"y z\"\r\n0123456789\r\n0\r\n\r\n"),
	OK("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
	   "1\nx\n0\nX-T: 1\nY: 2\n\n"),
	OK("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
	   "0\r\n\r\nGET / HTTP/1.1\r\n\r\n"),
	OK("PATCH / HTTP/1.9\r\n!#$%&'*+-.^_`|~09azAZ: x\r\n\r\n"),
	BAD("GET / HTTP/1.1\r\nTransfer-Encoding : chunked\r\n\r\n",
	    400, "colon"),
	BAD("GET / HTTP/1.1\r\nA\t: b\r\n\r\n", 400, "colon"),
	BAD("GET / HTTP/1.1\r\nFoo Bar: x\r\n\r\n", 400, "token"),
	BAD("GET / HTTP/1.1\r\nF\xc3\xb6: x\r\n\r\n", 400, "token"),
	BAD("GET / HTTP/1.1\r\n: x\r\n\r\n", 400, "token"),
	BAD("GET / HTTP/1.1\r\nX(: x\r\n\r\n", 400, "token"),
	BAD("GET / HTTP/1.1\r\nNoColon\r\n\r\n", 400, "token"),
	BAD("GET / HTTP/1.1\r\nX-A: y\rX-I: 1\r\n\r\n", 400, "bare CR"),
	BAD("GET / HTTP/1.1\r\nX-A: y\r\r\n\r\n", 400, "bare CR"),
	BAD("GET / HTTP/1.1\r\n\r\r\n", 400, "bare CR"),
	BAD("GET / HTTP/1.1\r\r\n\r\n", 400, "bare CR"),
	BAD("\rGET / HTTP/1.1\r\n\r\n", 400, "bare CR"),
	{ "GET / HTTP/1.1\r\nX-A: y\0z\r\n\r\n", 29, 400, "NUL" },
	{ "GET / HTTP/1.1\r\nX-A: \0\r\n\r\n", 27, 400, "NUL" },
	BAD("GET / HTTP/1.1\r\nX-A: y\x01\r\n\r\n", 400, "control"),
	BAD("GET / HTTP/1.1\r\nX-A: y\x7f\r\n\r\n", 400, "control"),
	BAD("GET / HTTP/1.1\r\nX-A: y\x1b[0m\r\n\r\n", 400, "control"),
	BAD("GET / HTTP/1.1\r\nX-A: a\r\n b\r\n\r\n", 400, "folding"),
	BAD("GET / HTTP/1.1\r\nX-A: a\r\n\tb\r\n\r\n", 400, "folding"),
	BAD("GET / HTTP/1.1\r\n Host: a\r\n\r\n", 400, "first field"),
	{ "G\0T / HTTP/1.1\r\n\r\n", 18, 400, "method" },
	BAD("G\x01T / HTTP/1.1\r\n\r\n", 400, "method"),
	BAD("GE(T / HTTP/1.1\r\n\r\n", 400, "method"),
	BAD("GET  / HTTP/1.1\r\n\r\n", 400, "request line"),
	BAD("GET / HTTP/1.1 \r\n\r\n", 400, "version"),
	BAD("GET /\r\n\r\n", 400, "request line"),
	BAD("GET\r\n\r\n", 400, "method"),
	BAD("GET /a\x01 HTTP/1.1\r\n\r\n", 400, "target"),
	{ "GET /a\0 HTTP/1.1\r\n\r\n", 19, 400, "target" },
	BAD("GET / HTTP/1.x\r\n\r\n", 400, "version"),
	BAD("GET / http/1.1\r\n\r\n", 400, "version"),
	BAD("GET / HTTP/0.9\r\n\r\n", 400, "version"),
	BAD("GET / HTTP/2.0\r\n\r\n", 505, NULL),
	BAD("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505, NULL),
	BAD("\x16\x03\x01\x02\x00\x01", 400, "request line"),
	BAD("GET / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\nhello", 400,
	    "not a number"),
	BAD("GET / HTTP/1.1\r\nContent-Length: 5 \r\n\r\nhello", 400,
	    "not a number"),
	BAD("GET / HTTP/1.1\r\nContent-Length: +5\r\n\r\nhello", 400,
	    "not a number"),
	BAD("GET / HTTP/1.1\r\nContent-Length:\r\n\r\n", 400, "not a number"),
	BAD("GET / HTTP/1.1\r\nContent-Length: 0x5\r\n\r\n", 400,
	    "not a number"),
	BAD("GET / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
	    400, "conflicting"),
	BAD("GET / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
	    413, NULL),
	BAD("GET / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 400,
	    "other than chunked"),
	BAD("GET / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 400,
	    "other than chunked"),
	BAD("GET / HTTP/1.1\r\nTransfer-Encoding: chunked \r\n\r\n", 400,
	    "other than chunked"),
	BAD("GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n", 400, "more than one"),
	BAD("GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
	    "Content-Length: 5\r\n\r\n", 400, "both"),
	BAD("GET / HTTP/1.1\r\nContent-Length: 5\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n", 400, "both"),
	BAD("GET / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400,
	    "HTTP/1.0"),
	BAD("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5 \r\n", 400,
	    "chunked"),
	BAD("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n;x\r\n", 400,
	    "chunked"),
	BAD("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\r\n", 400,
	    "chunked"),
	BAD("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n",
	    400, "chunked"),
	BAD("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "3\r\nhello\r\n", 400, "chunked"),
	BAD("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "3\r\nabc\rx", 400, "chunked"),
	BAD("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "1;a\x01\r\n", 400, "chunked"),
	BAD("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "1\r\r\n", 400, "chunked"),
	BAD("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "10000000000000000\r\n", 413, NULL),
	BAD("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "0\r\nX: a\r\n b\r\n\r\n", 400, "folding"),
	BAD("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "0\r\nX : a\r\n\r\n", 400, "colon"),
	/* A bad second request of a keep-alive connection. */
	BAD("GET / HTTP/1.1\r\n\r\nPOST / HTTP/1.1\r\nContent-Length: 5, 5\r\n"
	    "\r\nhello", 400, "not a number"),
	BAD("POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\nokGET / HTTP/1.1\r\n"
	    "X: a\r\n b\r\n\r\n", 400, "folding"),
};

/* Feeds c in pieces of at most step bytes (0: whole); the error or NULL. */
static const struct wire_error *feed(const struct pcase *c, size_t step,
                                     struct wire_parser *p)
{
	size_t len = c->len, off = 0;
	struct wire_scan sc;

	wire_parser_init(p, MAX_HEAD);
	while (off < len) {
		size_t n = step && len - off > step ? step : len - off;

		if (wire_parse(p, c->in + off, n, &sc) < 0)
			return p->err;
		off += n;
	}
	return NULL;
}

START_TEST(test_cases)
{
	const struct pcase *c = &cases[_i];
	static const size_t steps[] = { 0, 1, 2, 3, 7, 16 };
	struct wire_parser p;

	for (size_t k = 0; k < ARRAY_SIZE(steps); k++) {
		const struct wire_error *e = feed(c, steps[k], &p);

		if (!c->status) {
			ck_assert_msg(!e, "case %d step %zu: refused: %s",
			              _i, steps[k], e ? e->message : "");
			ck_assert_msg(p.st == W_START, "case %d: state %d",
			              _i, p.st);
			continue;
		}
		ck_assert_msg(e, "case %d step %zu: accepted", _i, steps[k]);
		ck_assert_uint_eq(e->status, c->status);
		if (c->msg)
			ck_assert_msg(strstr(e->message, c->msg),
			              "case %d: '%s' lacks '%s'", _i,
			              e->message, c->msg);
	}
}
END_TEST

/* Where the head still open at the end of a call began. */
START_TEST(test_head_at)
{
	struct wire_parser p;
	struct wire_scan sc;
	const char *a = "GET / HTTP/1.1\r\nHo";
	const char *b = "st: x\r\n\r\nGET";
	const char *c = " / HTTP/1.1\r\n\r\n";
	const char *d = "POST / HTTP/1.1\r\nContent-Length: 4\r\n\r\nab";

	wire_parser_init(&p, MAX_HEAD);
	ck_assert_int_eq(wire_parse(&p, a, strlen(a), &sc), 0);
	ck_assert_uint_eq(sc.head_at, 0);
	ck_assert_int_eq(wire_parse(&p, b, strlen(b), &sc), 0);
	ck_assert_uint_eq(sc.head_at, strlen(b) - 3);
	ck_assert_int_eq(wire_parse(&p, c, strlen(c), &sc), 0);
	ck_assert_uint_eq(sc.head_at, WIRE_NO_HEAD);
	/* A body open at the end is no head. */
	ck_assert_int_eq(wire_parse(&p, d, strlen(d), &sc), 0);
	ck_assert_uint_eq(sc.head_at, WIRE_NO_HEAD);
	ck_assert_int_eq(wire_parse(&p, "cdGE", 4, &sc), 0);
	ck_assert_uint_eq(sc.head_at, 2);
	ck_assert_int_eq(wire_parse(&p, "T", 1, &sc), 0);
	ck_assert_uint_eq(sc.head_at, WIRE_HEAD_BEFORE);
	/*
	 * Stray empty lines are held with the head they precede: passed
	 * on, they would restart libmicrohttpd's idle timer.
	 */
	wire_parser_init(&p, MAX_HEAD);
	ck_assert_int_eq(wire_parse(&p, "\n\n", 2, &sc), 0);
	ck_assert_uint_eq(sc.head_at, 0);
	ck_assert_int_eq(wire_parse(&p, "\r", 1, &sc), 0);
	ck_assert_uint_eq(sc.head_at, WIRE_HEAD_BEFORE);
	ck_assert_int_eq(wire_parse(&p, "\nGET / HTTP/1.1\r\n\r\n", 19, &sc), 0);
	ck_assert_uint_eq(sc.head_at, WIRE_NO_HEAD);
	/* ... and an endless run of them is a head too large. */
	wire_parser_init(&p, MAX_HEAD);
	for (int i = 0; i <= MAX_HEAD && p.st != W_FAILED; i++)
		wire_parse(&p, "\n", 1, &sc);
	ck_assert_int_eq(p.st, W_FAILED);
	ck_assert_uint_eq(p.err->status, 431);
	/* A failure in a head says where that head began... */
	wire_parser_init(&p, MAX_HEAD);
	ck_assert_int_eq(wire_parse(&p, "GET / HTTP/1.1\r\n\r\nGET / HTTP/1.1"
	                            "\r\nA B: c\r\n\r\n", 49, &sc), -EBADMSG);
	ck_assert(sc.err_in_head);
	ck_assert_uint_eq(sc.head_at, 18);
	ck_assert_uint_eq(sc.err_at, 35);
	/* ... and stays failed. */
	ck_assert_int_eq(wire_parse(&p, "GET", 3, &sc), -EBADMSG);
	/* A failure in a body is no head's; its message began at msg_at. */
	wire_parser_init(&p, MAX_HEAD);
	ck_assert_int_eq(wire_parse(&p, "GET / HTTP/1.1\r\n\r\n"
	                            "POST / HTTP/1.1\r\nTransfer-Encoding: "
	                            "chunked\r\n\r\nz\r\n", 68, &sc),
	                 -EBADMSG);
	ck_assert(!sc.err_in_head);
	ck_assert_uint_eq(sc.err_at, 65);
	ck_assert_uint_eq(sc.msg_at, 18);
	ck_assert_uint_eq(sc.head_at, WIRE_NO_HEAD);
	wire_parser_init(&p, MAX_HEAD);
	ck_assert_int_eq(wire_parse(&p, "POST / HTTP/1.1\r\nContent-Length: "
	                            "9\r\nTransfer-Encoding: chunked\r\n\r\n",
	                            66, &sc), -EBADMSG);
	ck_assert(sc.err_in_head);
	ck_assert_int_eq(wire_parse(&p, "z", 1, &sc), -EBADMSG);
	wire_parser_init(&p, MAX_HEAD);
	ck_assert_int_eq(wire_parse(&p, "POST / HTTP/1.1\r\nTransfer-Encoding: "
	                            "chunked\r\n\r\n", 47, &sc), 0);
	ck_assert_int_eq(wire_parse(&p, "5\r\nabcdefg", 10, &sc), -EBADMSG);
	ck_assert(!sc.err_in_head);
	ck_assert_uint_eq(sc.msg_at, WIRE_HEAD_BEFORE);
}
END_TEST

/* Heads over the limit: 431, or 414 while in the request line. */
START_TEST(test_head_size)
{
	struct wire_parser p;
	struct wire_scan sc;
	char *buf = malloc(MAX_HEAD + 100);
	size_t n;

	ck_assert_ptr_nonnull(buf);
	n = (size_t)snprintf(buf, MAX_HEAD, "GET / HTTP/1.1\r\nX: ");
	memset(buf + n, 'a', MAX_HEAD + 50 - n);
	wire_parser_init(&p, MAX_HEAD);
	ck_assert_int_eq(wire_parse(&p, buf, MAX_HEAD + 50, &sc), -EBADMSG);
	ck_assert_uint_eq(p.err->status, 431);
	memcpy(buf, "GET /", 5);
	memset(buf + 5, 'a', MAX_HEAD + 95);
	wire_parser_init(&p, MAX_HEAD);
	ck_assert_int_eq(wire_parse(&p, buf, MAX_HEAD + 100, &sc), -EBADMSG);
	ck_assert_uint_eq(p.err->status, 414);
	/* Fields cost their bytes and a pool entry each. */
	wire_parser_init(&p, MAX_HEAD);
	ck_assert_int_eq(wire_parse(&p, "GET / HTTP/1.1\r\n", 16, &sc), 0);
	for (int i = 0; i < 200; i++)
		if (wire_parse(&p, "A: b\r\n", 6, &sc) < 0)
			break;
	ck_assert_int_eq(p.st, W_FAILED);
	ck_assert_uint_eq(p.err->status, 431);
	/* Bodies do not count. */
	wire_parser_init(&p, MAX_HEAD);
	n = (size_t)snprintf(buf, 100, "POST / HTTP/1.1\r\nContent-Length: "
	                     "%d\r\n\r\n", MAX_HEAD * 4);
	ck_assert_int_eq(wire_parse(&p, buf, n, &sc), 0);
	memset(buf, 'x', MAX_HEAD);
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(wire_parse(&p, buf, MAX_HEAD, &sc), 0);
	ck_assert_int_eq(p.st, W_START);
	free(buf);
}
END_TEST

/* The verdict never depends on how the stream is cut. */
START_TEST(test_random_splits)
{
	unsigned seed = 12345;

	for (size_t c = 0; c < ARRAY_SIZE(cases); c++) {
		for (int round = 0; round < 50; round++) {
			struct wire_parser p;
			struct wire_scan sc;
			const struct wire_error *e = NULL;
			size_t off = 0, len = cases[c].len;

			wire_parser_init(&p, MAX_HEAD);
			while (off < len) {
				size_t n = (size_t)rand_r(&seed) % 9 + 1;

				if (n > len - off)
					n = len - off;
				if (wire_parse(&p, cases[c].in + off, n,
				               &sc) < 0) {
					e = p.err;
					break;
				}
				off += n;
			}
			ck_assert_uint_eq(e ? e->status : 0, cases[c].status);
		}
	}
}
END_TEST

/* --- the recv(2) filter over a socket pair --- */

static int sv[2];
static const struct wire_limits lim = {
	.max_head = MAX_HEAD, .min_body_rate = 0, .body_grace_ms = 1000,
};

static void pair_setup(void)
{
	ck_assert_int_eq(wire_init(4096), 0);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0,
	                            sv), 0);
	ck_assert_int_lt(sv[0], 4096);
	ck_assert_int_eq(wire_attach(sv[0], &lim), 0);
}

static void pair_teardown(void)
{
	wire_detach(sv[0]);
	close(sv[0]);
	close(sv[1]);
	wire_done();
}

static void put(const char *s)
{
	size_t n = strlen(s);

	ck_assert_int_eq(write(sv[1], s, n), (ssize_t)n);
}

/* Reads what the filter gives, into buf (NUL-terminated); the count. */
static ssize_t take(char *buf, size_t size)
{
	ssize_t n = recv(sv[0], buf, size - 1, 0);

	buf[n > 0 ? n : 0] = '\0';
	return n;
}

START_TEST(test_recv_whole)
{
	static const char req[] = "GET / HTTP/1.1\r\nHost: a\r\n\r\n"
	                          "POST / HTTP/1.1\r\nContent-Length: 3\r\n"
	                          "\r\nabc";
	char buf[256];

	ck_assert(wire_active());
	put(req);
	ck_assert_int_eq(take(buf, sizeof(buf)), (ssize_t)sizeof(req) - 1);
	ck_assert_str_eq(buf, req);
	errno = 0;
	ck_assert_int_eq(take(buf, sizeof(buf)), -1);
	ck_assert_int_eq(errno, EAGAIN);
	ck_assert_ptr_null(wire_rejection(sv[0]));
}
END_TEST

START_TEST(test_recv_holds_heads)
{
	char buf[256];

	/* The body and the complete head go; the open head waits. */
	put("GET / HTTP/1.1\r\n\r\nGET /two HT");
	ck_assert_int_eq(take(buf, sizeof(buf)), 18);
	ck_assert_str_eq(buf, "GET / HTTP/1.1\r\n\r\n");
	errno = 0;
	ck_assert_int_eq(take(buf, sizeof(buf)), -1);
	ck_assert_int_eq(errno, EAGAIN);
	put("TP/1.1\r\nA: b");
	ck_assert_int_eq(take(buf, sizeof(buf)), -1);
	put("\r\n\r\n");
	ck_assert_int_eq(take(buf, sizeof(buf)), 27);
	ck_assert_str_eq(buf, "GET /two HTTP/1.1\r\nA: b\r\n\r\n");
	/* A small reader gets a held head in pieces. */
	put("GET /three HTTP/1.1\r\n");
	ck_assert_int_eq(take(buf, sizeof(buf)), -1);
	put("\r\n");
	ck_assert_int_eq(recv(sv[0], buf, 10, 0), 10);
	ck_assert_int_eq(recv(sv[0], buf, 10, 0), 10);
	ck_assert_int_eq(recv(sv[0], buf, 10, 0), 3);
	/* End of stream with a head open: nothing of it goes. */
	put("GET /four");
	ck_assert_int_eq(take(buf, sizeof(buf)), -1);
	shutdown(sv[1], SHUT_WR);
	ck_assert_int_eq(take(buf, sizeof(buf)), 0);
}
END_TEST

START_TEST(test_recv_rejects)
{
	static const char good[] = "GET /ok HTTP/1.1\r\n\r\n";
	char buf[256];
	const struct wire_error *e;

	put(good);
	put("GET /bad HTTP/1.1\r\nX-A: y\rX-B: 1\r\n\r\nGET /after HTTP/1.1"
	    "\r\n\r\n");
	ck_assert_int_gt(take(buf, sizeof(buf)), 0);
	ck_assert_msg(strncmp(buf, good, sizeof(good) - 1) == 0, "%s", buf);
	ck_assert_str_eq(buf + sizeof(good) - 1, WIRE_REJECT_METHOD
	                 " / HTTP/1.1\r\nHost: sluice\r\n\r\n");
	e = wire_rejection(sv[0]);
	ck_assert_ptr_nonnull(e);
	ck_assert_uint_eq(e->status, 400);
	ck_assert_ptr_nonnull(strstr(e->message, "bare CR"));
	/* Nothing after the refused head is ever given. */
	put("GET / HTTP/1.1\r\n\r\n");
	ck_assert_int_eq(take(buf, sizeof(buf)), -1);
	ck_assert_int_eq(errno, EAGAIN);
}
END_TEST

/* A body gone wrong whose head was read in the same call: the sentinel. */
START_TEST(test_recv_bad_body_same_read)
{
	static const char good[] = "GET /first HTTP/1.1\r\n\r\n";
	char buf[512];
	const struct wire_error *e;

	put(good);
	put("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n");
	ck_assert_int_gt(take(buf, sizeof(buf)), 0);
	ck_assert_msg(strncmp(buf, good, sizeof(good) - 1) == 0, "%s", buf);
	ck_assert_str_eq(buf + sizeof(good) - 1, WIRE_REJECT_METHOD
	                 " / HTTP/1.1\r\nHost: sluice\r\n\r\n");
	e = wire_rejection(sv[0]);
	ck_assert_ptr_nonnull(e);
	ck_assert_ptr_nonnull(strstr(e->message, "chunked"));
}
END_TEST

/* A body gone wrong whose head libmicrohttpd has: answered on the socket. */
START_TEST(test_recv_bad_body)
{
	char buf[512];
	ssize_t n;

	put("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
	ck_assert_int_eq(take(buf, sizeof(buf)), 47);
	put("5 \r\n");
	errno = 0;
	ck_assert_int_eq(take(buf, sizeof(buf)), -1);
	ck_assert_int_eq(errno, ECONNRESET);
	/* The client was answered on the socket itself. */
	n = read(sv[1], buf, sizeof(buf) - 1);
	ck_assert_int_gt(n, 0);
	buf[n] = '\0';
	ck_assert_msg(strncmp(buf, "HTTP/1.1 400 ", 13) == 0, "%s", buf);
	ck_assert_ptr_nonnull(strstr(buf, "\"error\":\"bad_request\""));
	ck_assert_int_eq(take(buf, sizeof(buf)), -1);
	ck_assert_int_eq(errno, ECONNRESET);
}
END_TEST

/* Sockets nobody attached, and peeks, go straight to the kernel. */
START_TEST(test_recv_passthrough)
{
	char buf[64];
	int fd = sv[1];

	ck_assert_int_eq(write(sv[0], "G\0T\r\r", 5), 5);
	ck_assert_int_eq(recv(fd, buf, sizeof(buf), MSG_PEEK), 5);
	ck_assert_int_eq(recv(fd, buf, sizeof(buf), 0), 5);
	ck_assert_int_eq(memcmp(buf, "G\0T\r\r", 5), 0);
	ck_assert_int_eq(write(sv[1], "G\0T", 3), 3);
	ck_assert_int_eq(recv(sv[0], buf, sizeof(buf), MSG_PEEK), 3);
}
END_TEST

static Suite *wire_suite(void)
{
	Suite *s = suite_create("wire");
	TCase *tc = tcase_create("parser");
	TCase *tr = tcase_create("recv");

	tcase_add_loop_test(tc, test_cases, 0, (int)ARRAY_SIZE(cases));
	tcase_add_test(tc, test_head_at);
	tcase_add_test(tc, test_head_size);
	tcase_add_test(tc, test_random_splits);
	suite_add_tcase(s, tc);
	tcase_add_checked_fixture(tr, pair_setup, pair_teardown);
	tcase_add_test(tr, test_recv_whole);
	tcase_add_test(tr, test_recv_holds_heads);
	tcase_add_test(tr, test_recv_rejects);
	tcase_add_test(tr, test_recv_bad_body_same_read);
	tcase_add_test(tr, test_recv_bad_body);
	tcase_add_test(tr, test_recv_passthrough);
	suite_add_tcase(s, tr);
	return s;
}

TESTLIB_MAIN(wire_suite)

/*
 * wire.c - every byte a client sends, checked before libmicrohttpd parses
 * it: the process's recv(2), the table of attached connections, held
 * heads, sentinel requests, the body rate. The parser is wire_parse.c.
 * See wire.h for why; doc/ARCHITECTURE.md for the picture.
 */
#undef _FORTIFY_SOURCE /* recv() is defined here, not wrapped */
#include <dlfcn.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "clock.h"
#include "http.h"
#include "wire.h"

/* First and largest size of a connection's stage. */
#define STAGE_MIN 1024
#define STAGE_SLACK 4096

static const struct wire_error
	e_slow_body = { 408, "request_timeout", "the request body arrived "
	                "slower than min_body_rate" },
	e_nomem = { 503, "overloaded", "out of memory" };

enum conn_state {
	C_OPEN,
	C_REJECTED,                  /* the sentinel is queued; read no more */
	C_DEAD                       /* answered here; the connection ends */
};

struct wire_conn {
	struct wire_parser p;
	struct wire_limits lim;
	/*
	 * Bytes read from the socket and not yet given to libmicrohttpd:
	 * stage[0, ready) may go, the rest is a request head still open.
	 */
	char *stage;
	size_t stage_len, stage_cap, ready;
	enum conn_state state;
	bool eof;
	const struct wire_error *rejected;
	int64_t clock_ms;            /* body clock start, 0: stopped */
	uint64_t clock_bytes;        /* body bytes since */
};

/*
 * The connections by fd. recv(2) has no context argument, so this table
 * is the one process-wide state of the daemon besides the log level; it
 * is made once at start and each slot is owned by the thread that reads
 * that fd.
 */
static _Atomic(struct wire_conn *) *table;
static size_t table_len;

static const char sentinel[] =
	WIRE_REJECT_METHOD " / HTTP/1.1\r\nHost: sluice\r\n\r\n";

/*
 * What a connection that could not be attached reads: an error. Without
 * an entry its bytes would reach libmicrohttpd unchecked.
 */
static struct wire_conn dead = { .state = C_DEAD };

int wire_init(size_t max_fd)
{
	table = calloc(max_fd, sizeof(*table));
	if (!table)
		return -ENOMEM;
	table_len = max_fd;
	return 0;
}

void wire_done(void)
{
	free(table);
	table = NULL;
	table_len = 0;
}

bool wire_active(void)
{
	return dlsym(RTLD_DEFAULT, "recv") == (void *)recv;
}

static struct wire_conn *conn_get(int fd)
{
	if (fd < 0 || (size_t)fd >= table_len)
		return NULL;
	return atomic_load_explicit(&table[fd], memory_order_acquire);
}

static void conn_free(struct wire_conn *w)
{
	if (!w || w == &dead)
		return;
	free(w->stage);
	free(w);
}

int wire_attach(int fd, const struct wire_limits *lim)
{
	struct wire_conn *w;

	if (fd < 0 || (size_t)fd >= table_len)
		return -EBADF;
	w = calloc(1, sizeof(*w));
	if (!w) {
		conn_free(atomic_exchange(&table[fd], &dead));
		return -ENOMEM;
	}
	w->lim = *lim;
	wire_parser_init(&w->p, lim->max_head);
	conn_free(atomic_exchange(&table[fd], w));
	return 0;
}

void wire_detach(int fd)
{
	if (fd < 0 || (size_t)fd >= table_len)
		return;
	conn_free(atomic_exchange(&table[fd], NULL));
}

const struct wire_error *wire_rejection(int fd)
{
	struct wire_conn *w = conn_get(fd);

	return w ? w->rejected : NULL;
}

void wire_body_clock(int fd, bool on)
{
	struct wire_conn *w = conn_get(fd);

	if (!w || w == &dead)
		return;
	w->clock_ms = on ? clock_now_ms() : 0;
	w->clock_bytes = 0;
}

/* Answers on the socket itself, closes our side, and fails the read. */
static ssize_t die(struct wire_conn *w, int fd, const struct wire_error *e)
{
	char buf[1024], junk[4096];
	int n = http_error_raw(buf, sizeof(buf), e->status, e->code,
	                       e->message, NULL);

	/* A client already gone is not told. */
	if (n > 0)
		(void)send(fd, buf, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
	shutdown(fd, SHUT_WR);
	/* Unread input would turn the close into a reset: drop some. */
	for (int i = 0; i < 16; i++)
		if (recvfrom(fd, junk, sizeof(junk), MSG_DONTWAIT, NULL,
		             NULL) <= 0)
			break;
	free(w->stage);
	w->stage = NULL;
	w->stage_len = w->stage_cap = w->ready = 0;
	w->state = C_DEAD;
	errno = ECONNRESET;
	return -1;
}

static bool clock_expired(const struct wire_conn *w)
{
	int64_t due;

	if (!w->clock_ms || !w->lim.min_body_rate)
		return false;
	due = w->clock_ms + w->lim.body_grace_ms +
	      (int64_t)(w->clock_bytes * 1000 / w->lim.min_body_rate);
	return clock_now_ms() > due;
}

/* Room for at least one more byte in the stage; -ENOMEM. */
static int stage_grow(struct wire_conn *w, size_t need)
{
	size_t cap = w->stage_cap ? w->stage_cap : STAGE_MIN;
	char *s;

	if (w->stage_cap >= need)
		return 0;
	while (cap < need)
		cap *= 2;
	/* A head, what follows it in one read, and room for the sentinel. */
	if (cap > w->lim.max_head + STAGE_SLACK + sizeof(sentinel))
		cap = w->lim.max_head + STAGE_SLACK + sizeof(sentinel);
	if (cap < need)
		return -ENOMEM; /* not reached: the parser fails first */
	s = realloc(w->stage, cap);
	if (!s)
		return -ENOMEM;
	w->stage = s;
	w->stage_cap = cap;
	return 0;
}

/* Replaces everything from the refused head on with the sentinel. */
static int reject(struct wire_conn *w, size_t head_begin,
                  const struct wire_error *e)
{
	w->stage_len = head_begin;
	if (stage_grow(w, head_begin + sizeof(sentinel)) < 0)
		return -ENOMEM;
	memcpy(w->stage + head_begin, sentinel, sizeof(sentinel) - 1);
	w->stage_len = head_begin + sizeof(sentinel) - 1;
	w->ready = w->stage_len;
	w->rejected = e;
	w->state = C_REJECTED;
	return 0;
}

/* Keeps the open head [s, s + n) in the (empty) stage. */
static int hold(struct wire_conn *w, const char *s, size_t n)
{
	if (stage_grow(w, n + 1) < 0)
		return -ENOMEM;
	memcpy(w->stage, s, n);
	w->stage_len = n;
	w->ready = 0;
	return 0;
}

/* Gives up to max ready bytes to buf; returns how many. */
static size_t give(struct wire_conn *w, char *buf, size_t max)
{
	size_t k = w->ready < max ? w->ready : max;

	memcpy(buf, w->stage, k);
	memmove(w->stage, w->stage + k, w->stage_len - k);
	w->stage_len -= k;
	w->ready -= k;
	if (w->stage_len == 0) {
		free(w->stage);
		w->stage = NULL;
		w->stage_cap = 0;
	}
	return k;
}

static void count_body(struct wire_conn *w, uint64_t n)
{
	if (w->clock_ms)
		w->clock_bytes += n;
}

/*
 * Reads for libmicrohttpd. Returns a short count or EAGAIN only once the
 * socket has nothing more (libmicrohttpd, edge-triggered, then waits for
 * the next edge) and nothing that may go is left in the stage.
 */
static ssize_t conn_recv(struct wire_conn *w, int fd, char *buf, size_t len,
                         int flags)
{
	size_t total = 0;
	bool drained = false;

	if (w->state == C_DEAD) {
		errno = ECONNRESET;
		return -1;
	}
	if (clock_expired(w))
		return die(w, fd, &e_slow_body);
	while (total < len) {
		struct wire_scan sc;
		size_t old, want;
		ssize_t r;
		char *to;

		if (w->ready > 0) {
			total += give(w, buf + total, len - total);
			continue;
		}
		if (w->state != C_OPEN || w->eof || drained)
			break;
		old = w->stage_len;
		if (old == 0) {
			/* Nothing held: read straight into the caller's buffer. */
			to = buf + total;
			want = len - total;
		} else {
			/* A head is open: read the rest of it into the stage. */
			if (stage_grow(w, old + 1) < 0)
				return die(w, fd, &e_nomem);
			to = w->stage + old;
			want = w->stage_cap - old;
		}
		r = recvfrom(fd, to, want, flags, NULL, NULL);
		if (r < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK ||
			    errno == EINTR)
				break;
			if (total > 0)
				return (ssize_t)total; /* the error comes again */
			return -1;
		}
		if (r == 0) {
			w->eof = true;
			w->stage_len = 0; /* a head the client never finished */
			break;
		}
		drained = (size_t)r < want;
		if (wire_parse(&w->p, to, (size_t)r, &sc) < 0) {
			/* Where the failed message began: its head or body. */
			size_t at = sc.err_in_head ? sc.head_at : sc.msg_at;
			size_t begin;

			if (old == 0) {
				/*
				 * A body whose head libmicrohttpd already has:
				 * it is reading that body now, so every answer
				 * before it is written and this one may go
				 * on the socket.
				 */
				if (at >= WIRE_HEAD_BEFORE)
					return die(w, fd, w->p.err);
				total += at;
				begin = 0;
			} else {
				/* Before: the head held in the stage. */
				begin = at == WIRE_HEAD_BEFORE ? 0 : old + at;
			}
			if (reject(w, begin, w->p.err) < 0)
				return die(w, fd, w->p.err);
			continue;
		}
		count_body(w, (size_t)r);
		if (old == 0) {
			if (sc.head_at == WIRE_NO_HEAD) {
				total += (size_t)r;
			} else {
				if (hold(w, to + sc.head_at,
				         (size_t)r - sc.head_at) < 0)
					return die(w, fd, &e_nomem);
				total += sc.head_at;
			}
		} else {
			w->stage_len += (size_t)r;
			if (sc.head_at == WIRE_NO_HEAD)
				w->ready = w->stage_len;
			else if (sc.head_at != WIRE_HEAD_BEFORE)
				w->ready = old + sc.head_at;
		}
	}
	if (total > 0)
		return (ssize_t)total;
	if (w->eof)
		return 0;
	errno = EAGAIN;
	return -1;
}

/*
 * libmicrohttpd reads its sockets with recv(2); this definition takes
 * its place in the whole process. Sockets nobody attached (upstream
 * transfers, the listener's peeks) go straight to the kernel.
 */
ssize_t recv(int fd, void *buf, size_t len, int flags)
{
	struct wire_conn *w = NULL;

	if (!(flags & MSG_PEEK))
		w = conn_get(fd);
	if (!w || len == 0)
		return recvfrom(fd, buf, len, flags, NULL, NULL);
	return conn_recv(w, fd, buf, len, flags);
}

/*
 * tunnel_splice.c - an opaque tunnel: bytes both ways between the client
 * and the upstream, moved by splice(2) through a pipe each way, so they
 * are never copied through this process. An end that reaches EOF is
 * passed on as a half-close once its pipe is empty; the tunnel ends when
 * both ways are done, on an error, or after tls.tunnel_idle_timeout with
 * no byte either way.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "config.h"
#include "log.h"
#include "tunnel_int.h"

/* What a pipe takes before splice into it would block (Linux default). */
#define PIPE_CAP (64 * 1024)

enum move { MOVED, BLOCKED, END, BROKEN };

/* splice(from -> to) of at most len bytes, counted in *n. */
static enum move move(int from, int to, size_t len, size_t *moved)
{
	ssize_t n = splice(from, NULL, to, NULL, len,
	                   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);

	if (n > 0) {
		*moved = (size_t)n;
		return MOVED;
	}
	if (n == 0)
		return END;
	if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
		return BLOCKED;
	return BROKEN;
}

/*
 * One way: from the socket src into p, and from p into the socket dst.
 * *eof is set when src ends. False when the tunnel broke.
 */
static bool way(int src, struct tpipe *p, int dst, bool *eof, bool *progress)
{
	size_t n;

	if (!*eof && p->n < PIPE_CAP) {
		switch (move(src, p->wr, PIPE_CAP - p->n, &n)) {
		case MOVED:
			p->n += n;
			*progress = true;
			break;
		case END:
			*eof = true;
			*progress = true;
			break;
		case BLOCKED:
			break;
		case BROKEN:
			return false;
		}
	}
	if (p->n > 0) {
		switch (move(p->rd, dst, p->n, &n)) {
		case MOVED:
			p->n -= n;
			*progress = true;
			break;
		case BLOCKED:
			break;
		case END:
		case BROKEN:
			return false;
		}
	}
	return true;
}

/* Passes an EOF on once everything before it is through. */
static void half_close(int dst, const struct tpipe *p, bool eof, bool *shut)
{
	if (eof && p->n == 0 && !*shut) {
		shutdown(dst, SHUT_WR);
		*shut = true;
	}
}

/*
 * Both ways until nothing moves. Edge-triggered, as the TLS pump: each
 * way stops at a socket or pipe that would block, and a full pipe is
 * behind a socket that would, so an edge always comes.
 */
static void run(struct tconn *c)
{
	bool progress;
	int passes = 0;

	do {
		progress = false;
		if (!way(c->client.fd, &c->up, c->peer.fd, &c->client_eof,
		         &progress) ||
		    !way(c->peer.fd, &c->down, c->client.fd, &c->peer_eof,
		         &progress)) {
			tconn_close(c);
			return;
		}
		if (progress) {
			c->active = clock_now_ms();
			if (++passes == PUMP_PASSES) {
				tconn_again(c);
				return;
			}
		}
	} while (progress);
	half_close(c->peer.fd, &c->up, c->client_eof, &c->peer_shut);
	half_close(c->client.fd, &c->down, c->peer_eof, &c->client_shut);
	if (c->peer_shut && c->client_shut)
		tconn_close(c);
}

static int pipe_open(struct tpipe *p)
{
	int fds[2];

	if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0)
		return -errno;
	p->rd = fds[0];
	p->wr = fds[1];
	p->n = 0;
	return 0;
}

void tsplice_begin(struct tconn *c, int fd)
{
	c->peer.fd = fd;
	c->st = T_SPLICE;
	if (pipe_open(&c->up) < 0 || pipe_open(&c->down) < 0) {
		log_warn_errno("tunnel: no pipe for an opaque tunnel");
		tconn_close(c);
		return;
	}
	if (!tconn_established(c))
		return;
	atomic_fetch_add(&c->t->stats.opaque, 1);
	c->active = clock_now_ms();
	tconn_timer(c, c->active + c->t->cfg->tls.tunnel_idle_timeout);
	tend_watch(&c->client, TUNNEL_PUMP_EVENTS);
	tend_watch(&c->peer, TUNNEL_PUMP_EVENTS);
	run(c);
}

void tsplice_event(struct tconn *c)
{
	run(c);
}

bool tsplice_idle(struct tconn *c, int64_t now)
{
	int64_t due = c->active + c->t->cfg->tls.tunnel_idle_timeout;

	if (due > now) {
		tconn_timer(c, due);
		return true;
	}
	log_debug("tunnel: idle, closing client=%s dest=%s:%u", c->who,
	          c->dest.host, c->dest.port);
	tconn_close(c);
	return false;
}

static void pipe_close(struct tpipe *p)
{
	if (p->rd >= 0)
		close(p->rd);
	if (p->wr >= 0)
		close(p->wr);
	p->rd = p->wr = -1;
}

void tsplice_close(struct tconn *c)
{
	pipe_close(&c->up);
	pipe_close(&c->down);
}

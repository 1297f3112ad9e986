/*
 * listener.c - accept, allow check, CONNECT detection.
 *
 * libmicrohttpd cannot give up a socket after answering CONNECT, so the
 * daemon owns the listening socket and looks at each connection's first
 * bytes (MSG_PEEK, nothing consumed) before MHD sees it. Pending
 * connections wait in a FIFO; all share one timeout, so the head always
 * expires first and expiry costs O(1).
 *
 * Each engine worker runs a listener, a guest of its loop like the
 * front's shards (curlloop.h): the listening socket is in every worker's
 * epoll set with EPOLLEXCLUSIVE, so one worker wakes for a new
 * connection; its pending connections are in the listener's own epoll
 * set, one fd in the loop's; and a connection goes from accept to that
 * worker's libmicrohttpd shards without leaving the thread. The first
 * listener also runs the front's disconnect watch.
 */
#include <errno.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>
#include <utlist.h>

#include "clock.h"
#include "config.h"
#include "curlloop.h"
#include "front.h"
#include "http.h"
#include "listener.h"
#include "log.h"
#include "tunnel.h"

#define ACCEPT_RETRY_MS 100
/*
 * Connections taken per wake-up: the listening socket stays readable
 * while more wait, so the other workers, woken one at a time
 * (EPOLLEXCLUSIVE), take the rest rather than this one taking them all.
 */
#define ACCEPT_BATCH 4

struct pending {
	int fd;
	struct sockaddr_storage addr;
	socklen_t len;
	int64_t deadline;            /* monotonic ms */
	bool denied;                 /* outside allow: answer 403 */
	bool polled;                 /* in the epoll set */
	struct pending *prev, *next;
};

/* A header deadline of a connection handed to the front. */
struct hdr_deadline {
	int64_t when;                /* monotonic ms */
	int fd;
	uint32_t gen;
};

struct listener {
	const struct config *cfg;    /* the listener thread's; a reference */
	struct config_slot cfg_next; /* a reload's, taken after each wait */
	struct front *front;
	struct tunnels *tunnels;
	int lfd;                     /* its own (dup) of the listening socket */
	bool listening;              /* lfd in the loop's set */
	bool watches;                /* runs the front's disconnect watch */
	int ep;
	int wake_fd;
	struct curlloop *loop;       /* runs the listener; NULL: not yet */
	struct curlloop_watch w;     /* ep, in the loop's set */
	struct curlloop_watch lw;    /* lfd, in the loop's set */
	int64_t next_tick;           /* ms: expiry and the watch are due */
	atomic_bool stop_accepting;

	struct pending *head;        /* by deadline (utlist DL) */
	int64_t accept_retry;        /* 0, or when to accept again */

	/* Ring of header deadlines, oldest first (one timeout for all). */
	struct hdr_deadline *ring;
	size_t ring_head, ring_len, ring_cap;
};

static void ring_push(struct listener *l, int fd, uint32_t gen,
                      int64_t when)
{
	if (l->ring_len == l->ring_cap) {
		size_t cap = l->ring_cap ? l->ring_cap * 2 : 256;
		struct hdr_deadline *v = malloc(cap * sizeof(*v));

		if (!v)
			return; /* MHD's idle timeout still applies */
		for (size_t i = 0; i < l->ring_len; i++)
			v[i] = l->ring[(l->ring_head + i) % l->ring_cap];
		free(l->ring);
		l->ring = v;
		l->ring_cap = cap;
		l->ring_head = 0;
	}
	l->ring[(l->ring_head + l->ring_len) % l->ring_cap] =
		(struct hdr_deadline){ .when = when, .fd = fd, .gen = gen };
	l->ring_len++;
}

static void ring_expire(struct listener *l, int64_t now)
{
	while (l->ring_len > 0 && l->ring[l->ring_head].when <= now) {
		struct hdr_deadline *d = &l->ring[l->ring_head];

		front_header_expired(l->front, d->fd, d->gen);
		l->ring_head = (l->ring_head + 1) % l->ring_cap;
		l->ring_len--;
	}
}

/* Epoll tags for the fds that are not pending connections. */
static char tag_wake, tag_watch;

static void pending_close(struct listener *l, struct pending *p)
{
	DL_DELETE(l->head, p);
	close(p->fd); /* also leaves the epoll set */
	free(p);
}

/* Reads what the client sent, answers, closes: for refusals only. */
static void answer_and_close(struct listener *l, struct pending *p,
                             unsigned status, const char *code,
                             const char *msg)
{
	http_refuse(p->fd, status, code, msg, 16);
	pending_close(l, p);
}

static void to_front(struct listener *l, struct pending *p)
{
	int fd = p->fd;
	uint32_t gen;

	if (p->polled)
		epoll_ctl(l->ep, EPOLL_CTL_DEL, fd, NULL);
	DL_DELETE(l->head, p);
	/* The whole header block is due by the first bytes' deadline. */
	gen = front_header_deadline(l->front, fd);
	if (gen)
		ring_push(l, fd, gen, p->deadline);
	/* MHD owns fd from here, even when it fails. */
	if (front_add_connection(l->front, fd, (struct sockaddr *)&p->addr,
	                         p->len) < 0)
		log_warn("client connection refused by the http front");
	free(p);
}

enum listener_verdict listener_first_bytes(const char *buf, size_t n,
                                           bool denied)
{
	static const char connect[] = "CONNECT ";

	if (denied)
		return LISTENER_DENY;
	if (n < 8 && strncmp(buf, connect, n) == 0)
		return LISTENER_WAIT;
	if (n >= 8 && memcmp(buf, connect, 8) == 0)
		return LISTENER_CONNECT;
	return LISTENER_FRONT;
}

/*
 * Looks at the first bytes. Returns true when p is finished with (handed
 * on or closed), false when it must wait for more.
 */
static bool pending_ready(struct listener *l, struct pending *p)
{
	char buf[8];
	ssize_t n;

	n = recv(p->fd, buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return false;
	if (n <= 0) {
		pending_close(l, p);
		return true;
	}
	switch (listener_first_bytes(buf, (size_t)n, p->denied)) {
	case LISTENER_WAIT:
		return false;
	case LISTENER_DENY:
		answer_and_close(l, p, 403, "client_not_allowed",
		                 "this client address is not allowed to use "
		                 "the proxy");
		return true;
	case LISTENER_CONNECT:
		if (p->polled)
			epoll_ctl(l->ep, EPOLL_CTL_DEL, p->fd, NULL);
		DL_DELETE(l->head, p);
		tunnels_add(l->tunnels, p->fd, (struct sockaddr *)&p->addr,
		            p->len, p->deadline);
		free(p);
		return true;
	case LISTENER_FRONT:
		break;
	}
	/* Every byte from here on is checked by wire.c, request by request. */
	to_front(l, p);
	return true;
}

static void del_listen(struct listener *l)
{
	if (!l->listening)
		return;
	curlloop_watch_del(l->loop, l->lfd, &l->lw);
	l->listening = false;
}

static void accept_some(struct listener *l)
{
	for (int i = 0; i < ACCEPT_BATCH; i++) {
		struct pending *p;
		struct epoll_event ev;
		int fd;

		p = calloc(1, sizeof(*p));
		if (!p)
			return;
		p->len = sizeof(p->addr);
		fd = accept4(l->lfd, (struct sockaddr *)&p->addr, &p->len,
		             SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			int err = errno;

			free(p);
			if (err == EMFILE || err == ENFILE || err == ENOBUFS ||
			    err == ENOMEM) {
				log_warn("accept failed: %s, pausing %dms",
				         strerror(err), ACCEPT_RETRY_MS);
				del_listen(l);
				l->accept_retry =
					clock_now_ms() + ACCEPT_RETRY_MS;
			}
			return;
		}
		p->fd = fd;
		p->denied = !cidr_list_match(&l->cfg->allow,
		                             (struct sockaddr *)&p->addr);
		p->deadline = clock_now_ms() + l->cfg->client_timeout;
		DL_APPEND(l->head, p);
		/* Often the request is already there: no epoll round. */
		if (pending_ready(l, p))
			continue;
		/* Edge-triggered: a partial "CONN" must not spin. */
		ev.events = EPOLLIN | EPOLLRDHUP | EPOLLET;
		ev.data.ptr = p;
		if (epoll_ctl(l->ep, EPOLL_CTL_ADD, fd, &ev) < 0)
			pending_close(l, p);
		else
			p->polled = true;
	}
}

/*
 * On the loop's thread: the listening socket joins the loop's set. With
 * EPOLLEXCLUSIVE, a new connection wakes one of the workers waiting,
 * not all of them.
 */
static void add_listen(struct listener *l)
{
	if (l->lfd >= 0 && !l->listening &&
	    curlloop_watch_add(l->loop, l->lfd, EPOLLIN | EPOLLEXCLUSIVE,
	                       &l->lw) == 0)
		l->listening = true;
}

/* A new connection may be there. */
static void listen_ready(struct curlloop_watch *w, uint32_t events)
{
	(void)events;
	accept_some((struct listener *)(void *)
		((char *)w - offsetof(struct listener, lw)));
}

static void close_listen(struct listener *l)
{
	if (l->lfd < 0)
		return;
	del_listen(l);
	close(l->lfd);
	l->lfd = -1;
	l->accept_retry = 0;
}

/* The listener's own epoll set is ready: accept, peek, disconnects. */
static void listener_ready(struct curlloop_watch *w, uint32_t events)
{
	struct listener *l = (struct listener *)(void *)
		((char *)w - offsetof(struct listener, w));
	struct epoll_event ev[64];
	int n;

	(void)events;
	n = epoll_wait(l->ep, ev, 64, 0);
	config_slot_swap(&l->cfg_next, &l->cfg);
	for (int i = 0; i < n; i++) {
		void *tag = ev[i].data.ptr;

		if (tag == &tag_wake) {
			uint64_t v;

			if (read(l->wake_fd, &v, sizeof(v)) < 0)
				continue;
			if (atomic_load(&l->stop_accepting))
				close_listen(l);
		} else if (tag == &tag_watch) {
			front_watch_dispatch(l->front);
		} else {
			pending_ready(l, tag);
		}
	}
}

/*
 * After each of the loop's rounds: what is due (pending connections that
 * sent nothing, header deadlines, sleepers' disconnect watch, a paused
 * accept), at most every FRONT_WATCH_TICK_MS unless a deadline comes
 * sooner. Returns when it is due next (monotonic us).
 */
static int64_t listener_tail(void *arg)
{
	struct listener *l = arg;
	int64_t now = clock_now_ms(), next;

	if (now >= l->next_tick) {
		while (l->head && l->head->deadline <= now)
			pending_close(l, l->head);
		ring_expire(l, now);
		if (l->watches)
			front_watch_due(l->front);
		if (l->accept_retry && l->accept_retry <= now) {
			l->accept_retry = 0;
			add_listen(l);
		}
		next = now + FRONT_WATCH_TICK_MS;
		if (l->head && l->head->deadline < next)
			next = l->head->deadline;
		if (l->ring_len > 0 && l->ring[l->ring_head].when < next)
			next = l->ring[l->ring_head].when;
		if (l->accept_retry && l->accept_retry < next)
			next = l->accept_retry;
		l->next_tick = next;
	} else if (l->head && l->head->deadline < l->next_tick) {
		/* Accepted since: its deadline may be the nearest. */
		l->next_tick = l->head->deadline;
	}
	return l->next_tick * 1000;
}

/* On the loop's thread: the listener's set and tail join the loop. */
static int attach(void *arg)
{
	struct listener *l = arg;
	int err = curlloop_watch_add(l->loop, l->ep, EPOLLIN, &l->w);

	if (err == 0) {
		err = curlloop_add_tail(l->loop, listener_tail, l);
		if (err < 0)
			curlloop_watch_del(l->loop, l->ep, &l->w);
	}
	if (err == 0)
		add_listen(l);
	return err;
}

/* On the loop's thread: the listener leaves it. */
static int detach(void *arg)
{
	struct listener *l = arg;

	del_listen(l);
	curlloop_del_tail(l->loop, listener_tail, l);
	curlloop_watch_del(l->loop, l->ep, &l->w);
	return 0;
}

struct listener *listener_new(const struct config *cfg, int fd,
                              struct front *front, struct tunnels *tunnels,
                              bool watch)
{
	struct listener *l;
	struct epoll_event ev;

	l = calloc(1, sizeof(*l));
	if (l) {
		l->w.ready = listener_ready;
		l->lw.ready = listen_ready;
		l->watches = watch;
	}
	if (!l) {
		close(fd);
		return NULL;
	}
	l->cfg = config_ref(cfg);
	l->front = front;
	l->tunnels = tunnels;
	l->lfd = fd;
	l->wake_fd = -1;
	l->ep = epoll_create1(EPOLL_CLOEXEC);
	l->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (l->ep < 0 || l->wake_fd < 0)
		goto fail;
	ev.events = EPOLLIN;
	ev.data.ptr = &tag_wake;
	if (epoll_ctl(l->ep, EPOLL_CTL_ADD, l->wake_fd, &ev) < 0)
		goto fail;
	ev.data.ptr = &tag_watch;
	if (watch &&
	    epoll_ctl(l->ep, EPOLL_CTL_ADD, front_watch_fd(front), &ev) < 0)
		goto fail;
	return l;
fail:
	listener_free(l);
	return NULL;
}

int listener_start(struct listener *l, struct curlloop *loop)
{
	int err;

	l->loop = loop;
	l->next_tick = clock_now_ms();
	err = curlloop_call(loop, attach, l);
	if (err < 0)
		l->loop = NULL;
	return err;
}

static void wake(struct listener *l)
{
	uint64_t one = 1;

	if (write(l->wake_fd, &one, sizeof(one)) < 0)
		log_debug("listener wakeup failed, ignoring");
}

void listener_reconfigure(struct listener *l, const struct config *cfg)
{
	config_slot_offer(&l->cfg_next, config_ref(cfg));
	wake(l);
}

void listener_stop_accepting(struct listener *l)
{
	atomic_store(&l->stop_accepting, true);
	if (l->loop)
		wake(l);
	else
		close_listen(l);
}

void listener_free(struct listener *l)
{
	if (!l)
		return;
	if (l->loop) {
		curlloop_call(l->loop, detach, l);
		l->loop = NULL;
	}
	while (l->head)
		pending_close(l, l->head);
	close_listen(l);
	if (l->ep >= 0)
		close(l->ep);
	if (l->wake_fd >= 0)
		close(l->wake_fd);
	free(l->ring);
	config_slot_done(&l->cfg_next);
	config_free(l->cfg);
	free(l);
}

/*
 * tunnel.c - the tunnels thread: CONNECT heads, policy, the admission of
 * opaque tunnels, the first byte after 200, timers and teardown. TLS is in
 * tunnel_tls.c, splicing in tunnel_splice.c; see tunnel.h for the paths.
 *
 * The head is peeked, never read past: the bytes after it (a ClientHello,
 * a request) stay in the socket for whoever comes next. A peek consumes
 * nothing, so a connection in T_HEAD or T_FIRST is edge-triggered and
 * one waiting on another thread (T_ADMIT, T_MINT) listens for hangups
 * only; the pumps are edge-triggered with a fixed interest.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>
#include <utlist.h>

#include "thread_name.h"
#include "cidr.h"
#include "clock.h"
#include "config.h"
#include "config_value.h"
#include "engine.h"
#include "front.h"
#include "http.h"
#include "log.h"
#include "netaddr.h"
#include "retry.h"
#include "tls_ca.h"
#include "tunnel.h"
#include "tunnel_int.h"

#define TLS_RECORD_HANDSHAKE 0x16
#define FAIL_LOG_MS 1000             /* one handshake failure line a second */

static const char established[] = "HTTP/1.1 200 Connection established\r\n\r\n";

/* --- connections --- */

void tend_watch(struct tend *e, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = e };
	int op;

	if (e->fd < 0 || events == e->events)
		return;
	if (!events)
		op = EPOLL_CTL_DEL;
	else
		op = e->events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
	if (epoll_ctl(e->c->t->ep, op, e->fd, &ev) == 0)
		e->events = events;
	else if (op != EPOLL_CTL_DEL)
		log_warn_errno("tunnel: epoll_ctl");
}

void tconn_timer(struct tconn *c, int64_t when)
{
	if (heap_update(&c->t->timers, &c->timer, when) < 0)
		log_warn("tunnel: no memory for a timer; it waits for its "
		         "peer instead");
}

void tconn_again(struct tconn *c)
{
	if (!c->again) {
		c->again = true;
		DL_APPEND2(c->t->again, c, aprev, anext);
	}
}

/* Pumps that stopped at their share of a pass run again. */
static void run_again(struct tunnels *t)
{
	struct tconn *list = t->again, *c, *tmp;

	t->again = NULL;
	DL_FOREACH_SAFE2(list, c, tmp, anext) {
		c->again = false;
		c->aprev = c->anext = NULL;
		if (c->st == T_PUMP)
			ttls_event(c);
		else if (c->st == T_SPLICE)
			tsplice_event(c);
	}
}

void tconn_handshake_failed(struct tconn *c, const char *why)
{
	struct tunnels *t = c->t;
	int64_t now = clock_now_ms();

	atomic_fetch_add(&t->stats.handshake_failed, 1);
	/* A client that never trusts the CA must not flood the log. */
	if (now < t->fail_log_at) {
		t->fail_quiet++;
		return;
	}
	if (t->fail_quiet)
		log_info("tls: handshake failed client=%s host=%s: %s (and %u "
		         "more since the last line)", c->who, c->dest.host, why,
		         t->fail_quiet);
	else
		log_info("tls: handshake failed client=%s host=%s: %s", c->who,
		         c->dest.host, why);
	t->fail_quiet = 0;
	t->fail_log_at = now + FAIL_LOG_MS;
}

void tconn_handshake_over(struct tconn *c)
{
	if (c->handshaking) {
		c->handshaking = false;
		c->t->handshakes--;
	}
}

void tconn_close(struct tconn *c)
{
	struct tunnels *t = c->t;

	if (c->req) {
		/* Still queued: the engine lets it go. */
		c->req->c = NULL;
		engine_cancel(t->engine, &c->req->req);
		request_unref(&c->req->req);
		c->req = NULL;
	}
	tconn_handshake_over(c);
	ttls_close(c);
	tsplice_close(c);
	heap_remove(&t->timers, &c->timer);
	if (c->client.fd >= 0)
		close(c->client.fd); /* also leaves the epoll set */
	if (c->peer.fd >= 0)
		close(c->peer.fd);
	if (c->again) {
		DL_DELETE2(t->again, c, aprev, anext);
		c->again = false;
	}
	/* Events of this batch may still name c's ends: freed after it. */
	c->client.fd = c->peer.fd = -1;
	c->client.events = c->peer.events = 0;
	DL_DELETE(t->all, c);
	c->next = t->dead;
	t->dead = c;
	t->n_all--;
	atomic_fetch_sub(&t->stats.open, 1);
}

static void free_dead(struct tunnels *t)
{
	struct tconn *c;

	while ((c = t->dead)) {
		t->dead = c->next;
		free(c);
	}
}

/* Answers c with a proxy-made error before any 200, and closes it. */
static void refuse(struct tconn *c, unsigned status, const char *code,
                   const char *msg)
{
	atomic_fetch_add(&c->t->stats.refused, 1);
	http_refuse(c->client.fd, status, code, msg, 16);
	tconn_close(c);
}

/* Sends the 200; false (c closed) when the client cannot take it. */
bool tconn_established(struct tconn *c)
{
	ssize_t n = send(c->client.fd, established, sizeof(established) - 1,
	                 MSG_NOSIGNAL | MSG_DONTWAIT);

	/* 39 bytes into an empty socket buffer: all or nothing. */
	if (n == (ssize_t)sizeof(established) - 1)
		return true;
	tconn_close(c);
	return false;
}

/* --- opaque tunnels: admission through the destination's queue --- */

static void treq_wake(struct request *r)
{
	struct treq *q = (struct treq *)(void *)r;
	struct tunnels *t = q->t;
	bool post;

	/*
	 * Engine thread: q->c is the tunnels thread's and not read here.
	 * The tunnel set outlives the engine's calls (main frees it after
	 * the engine stops).
	 */
	pthread_mutex_lock(&t->lock);
	post = !q->posted;
	if (post) {
		q->posted = true;
		request_ref(r);
		q->inbox_next = t->inbox;
		t->inbox = q;
	}
	pthread_mutex_unlock(&t->lock);
	if (post)
		tunnels_wake(t);
}

static const struct req_owner tunnel_owner = {
	.wake = treq_wake,
};

/* Queues c's admission: one dispatch against its destination's limits. */
static void admit(struct tconn *c)
{
	struct tunnels *t = c->t;
	const struct config *cfg = t->cfg;
	struct treq *q = calloc(1, sizeof(*q));
	char base[DEST_HOST_MAX + 32];
	struct request *r;

	/*
	 * Its queue is the destination's: port 80 is most likely plain HTTP,
	 * whose requests are queued as http://host:80.
	 */
	if (c->dest.port == 80)
		c->dest.scheme = SCHEME_HTTP;
	if (!q || destination_format(&c->dest, base, sizeof(base) - 1) < 0 ||
	    request_init(&q->req, strcat(base, "/")) < 0) {
		free(q);
		refuse(c, 503, "overloaded", "out of memory");
		return;
	}
	r = &q->req;
	q->c = c;
	q->t = t;
	r->owner = &tunnel_owner;
	r->policy.connect_only = true;
	r->method = strdup("CONNECT");
	if (!r->method || target_parse(r->raw_target, &r->target) != TARGET_OK) {
		request_unref(r);
		refuse(c, 503, "overloaded", "out of memory");
		return;
	}
	destination_format(&c->dest, r->dest_key, sizeof(r->dest_key));
	r->t_arrival = clock_now_ms();
	r->deadline = r->t_arrival + cfg->sync_timeout;
	/* A connection refused or reset before a byte is tried again. */
	retry_rules_init(&r->rules, cfg->retry.max_retries, cfg->retry.on,
	                 cfg->retry.n_on, true);
	r->phase = REQ_WAITING;
	r->submitted = true;
	c->req = q;
	c->st = T_ADMIT;
	/* Until then only a hangup matters: the client may send early. */
	tend_watch(&c->client, EPOLLRDHUP);
	if (engine_submit(t->engine, r) < 0)
		refuse(c, 503, "shutting_down", "the proxy is shutting down");
}

/* The engine decided c's admission (tunnels thread). */
static void admitted(struct tconn *c)
{
	struct request *r = &c->req->req;
	int fd = -1;
	unsigned status;
	char msg[512];
	const char *code;

	pthread_mutex_lock(&r->lock);
	status = r->phase == REQ_FAILED ? r->err_status : 0;
	code = r->err_code;
	snprintf(msg, sizeof(msg), "%s", r->err_msg ? r->err_msg : "");
	if (r->phase == REQ_HEADERS) {
		fd = r->tunnel_fd;
		r->tunnel_fd = -1;
	} else if (r->phase != REQ_FAILED) {
		pthread_mutex_unlock(&r->lock);
		return; /* not yet */
	}
	pthread_mutex_unlock(&r->lock);
	c->req->c = NULL;
	request_unref(r);
	c->req = NULL;
	if (fd < 0) {
		refuse(c, status ? status : 502, code ? code : "upstream_error",
		       msg);
		return;
	}
	log_debug("tunnel: opaque client=%s dest=%s:%u", c->who, c->dest.host,
	          c->dest.port);
	tsplice_begin(c, fd);
}

/* --- the head and the first byte --- */

/* True when a tls.tunnel pattern names host:port: never intercepted. */
static bool tunneled(const struct config *cfg, const struct destination *d)
{
	for (size_t i = 0; i < cfg->tls.n_tunnel; i++)
		if (config_pattern_match(cfg->tls.tunnel[i], d->host, d->port))
			return true;
	return false;
}

static void on_first(struct tconn *c);

/* Reads c's CONNECT head if it is whole; decides what the tunnel is. */
static void on_head(struct tconn *c)
{
	struct tunnels *t = c->t;
	const struct config *cfg = t->cfg;
	enum connect_head h;
	enum target_error err;
	size_t len = 0;
	ssize_t n;
	char msg[DEST_HOST_MAX + 128];

	n = recv(c->client.fd, t->scratch, t->scratch_len,
	         MSG_PEEK | MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return;
	if (n <= 0) {
		tconn_close(c);
		return;
	}
	h = connect_head_parse(t->scratch, (size_t)n, t->scratch_len, &c->dest,
	                       &len, &err);
	switch (h) {
	case CONNECT_HEAD_MORE:
		return;
	case CONNECT_HEAD_TOO_LARGE:
		refuse(c, 431, "header_too_large",
		       "the CONNECT request head is over max_header");
		return;
	case CONNECT_HEAD_BAD:
		snprintf(msg, sizeof(msg), "malformed CONNECT request%s%s",
		         err != TARGET_OK ? ": " : "",
		         err != TARGET_OK ? target_error_str(err) : "");
		refuse(c, 400, "bad_request", msg);
		return;
	case CONNECT_HEAD_OK:
		break;
	}
	atomic_fetch_add(&t->stats.connects, 1);
	if (cidr_literal_denied(&cfg->deny_destinations, c->dest.host,
	                        c->dest.port)) {
		snprintf(msg, sizeof(msg), "destination '%s' is denied",
		         c->dest.host);
		refuse(c, 403, "destination_denied", msg);
		return;
	}
	/* The head is consumed exactly: what follows is the tunnel's. */
	if (recv(c->client.fd, t->scratch, len, MSG_DONTWAIT) != (ssize_t)len) {
		tconn_close(c);
		return;
	}
	if (!t->minter || !cfg->tls.intercept ||
	    tunneled(cfg, &c->dest)) {
		heap_remove(&t->timers, &c->timer);
		admit(c);
		return;
	}
	if (t->handshakes >= cfg->tls.max_handshakes) {
		refuse(c, 503, "overloaded",
		       "too many TLS handshakes are under way; try again");
		return;
	}
	if (!tconn_established(c))
		return;
	c->handshaking = true;
	t->handshakes++;
	c->st = T_FIRST;
	tconn_timer(c, clock_now_ms() + cfg->client_timeout);
	on_first(c);
}

/* After the 200: a TLS record, or plain HTTP for the front? */
static void on_first(struct tconn *c)
{
	struct tunnels *t = c->t;
	unsigned char b;
	ssize_t n;
	int fd;

	n = recv(c->client.fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return;
	if (n <= 0) {
		tconn_close(c);
		return;
	}
	if (b == TLS_RECORD_HANDSHAKE) {
		ttls_begin(c);
		return;
	}
	/* Plain HTTP to http://host:port: the socket goes to the front. */
	atomic_fetch_add(&t->stats.plain, 1);
	c->dest.scheme = SCHEME_HTTP;
	tend_watch(&c->client, 0);
	fd = c->client.fd;
	c->client.fd = -1;
	if (front_add_tunnel(t->front, fd, (struct sockaddr *)&c->addr,
	                     c->alen, &c->dest) < 0)
		log_warn("tunnel: client connection refused by the http "
		         "front");
	tconn_close(c);
}

/* --- the thread --- */

static void on_event(struct tend *e, uint32_t events)
{
	struct tconn *c = e->c;

	switch (c->st) {
	case T_HEAD:
		on_head(c);
		break;
	case T_FIRST:
		on_first(c);
		break;
	case T_ADMIT:
	case T_MINT:
		if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
			tconn_close(c);
		break;
	case T_PUMP:
		/*
		 * A client gone while its bytes wait behind a full buffer
		 * (the front is not reading: its request waits) would not
		 * be read to its end: its hangup ends the tunnel, as the
		 * disconnect watch ends a plain connection.
		 */
		if (e == &c->client &&
		    (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))) {
			tconn_close(c);
			break;
		}
		ttls_event(c);
		break;
	case T_HANDSHAKE:
		ttls_event(c);
		break;
	case T_SPLICE:
		tsplice_event(c);
		break;
	}
}

static void on_timer(struct tconn *c, int64_t now)
{
	switch (c->st) {
	case T_SPLICE:
		tsplice_idle(c, now);
		break;
	case T_HANDSHAKE:
	case T_MINT:
		tconn_handshake_failed(c, "timed out");
		tconn_close(c);
		break;
	default:
		log_debug("tunnel: client=%s too slow, closing", c->who);
		tconn_close(c);
		break;
	}
}

/* New connections, decided admissions, minted certificates. */
static void take_inbox(struct tunnels *t)
{
	struct tconn *arrived, *c, *next;
	struct treq *q, *qnext;
	struct mint_done *d, *dnext;

	pthread_mutex_lock(&t->lock);
	arrived = t->arrived;
	q = t->inbox;
	d = t->minted;
	t->arrived = NULL;
	t->inbox = NULL;
	t->minted = NULL;
	for (struct treq *i = q; i; i = i->inbox_next)
		i->posted = false;
	pthread_mutex_unlock(&t->lock);

	for (c = arrived; c; c = next) {
		next = c->next;
		DL_APPEND(t->all, c);
		t->n_all++;
		tconn_timer(c, c->timer.when);
		tend_watch(&c->client, EPOLLIN | EPOLLRDHUP | EPOLLET);
		on_head(c);
	}
	for (; q; q = qnext) {
		qnext = q->inbox_next;
		if (q->c)
			admitted(q->c);
		request_unref(&q->req);
	}
	for (; d; d = dnext) {
		dnext = d->next;
		ttls_minted(t, d);
		free(d);
	}
}

static void *tunnels_main(void *arg)
{
	struct tunnels *t = arg;
	struct epoll_event ev[64];

	thread_name("sluice-tunnels");
	while (!atomic_load(&t->exit)) {
		struct heap_node *top = heap_top(&t->timers);
		int64_t now = clock_now_ms();
		int timeout = -1, n;

		if (top)
			timeout = top->when <= now ? 0 : (int)(top->when - now);
		if (t->again)
			timeout = 0;
		n = epoll_wait(t->ep, ev, 64, timeout);
		config_slot_swap(&t->cfg_next, &t->cfg);
		if (t->minter)
			ttls_check_ca(t);
		for (int i = 0; i < n; i++) {
			struct tend *e = ev[i].data.ptr;

			if (!e) {
				uint64_t v;

				if (read(t->wake_fd, &v, sizeof(v)) < 0)
					continue;
				take_inbox(t);
				continue;
			}
			/* Closed by an earlier event of this batch? */
			if (e->fd < 0 || !e->events)
				continue;
			on_event(e, ev[i].events);
		}
		now = clock_now_ms();
		while ((top = heap_top(&t->timers)) && top->when <= now) {
			struct tconn *c = (struct tconn *)(void *)
				((char *)top - offsetof(struct tconn, timer));

			heap_pop(&t->timers);
			on_timer(c, now);
		}
		run_again(t);
		free_dead(t);
	}
	return NULL;
}

/* What waits in the inbox when the thread is gone: let it go. */
static void drop_inbox(struct tunnels *t)
{
	struct tconn *c;
	struct treq *q;
	struct mint_done *d;

	while ((c = t->arrived)) {
		t->arrived = c->next;
		close(c->client.fd);
		atomic_fetch_sub(&t->stats.open, 1);
		free(c);
	}
	while ((q = t->inbox)) {
		t->inbox = q->inbox_next;
		request_unref(&q->req);
	}
	while ((d = t->minted)) {
		t->minted = d->next;
		X509_free(d->x);
		free(d);
	}
}

/* --- lifecycle --- */

/*
 * tls.max_tunnels, within the process's fd limit: an opaque tunnel holds
 * six fds (two sockets, two pipes), an intercepted one three, and the
 * front and the engine need theirs. At most an eighth of the limit.
 */
static unsigned tunnels_fd_bound(const struct config *cfg)
{
	struct rlimit rl;
	unsigned max = cfg->tls.max_tunnels;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    rl.rlim_cur / 8 < max) {
		max = rl.rlim_cur / 8 > 16 ? (unsigned)(rl.rlim_cur / 8) : 16;
		log_info("tunnel: tls.max_tunnels %u is over what %llu open "
		         "files allow: %u", cfg->tls.max_tunnels,
		         (unsigned long long)rl.rlim_cur, max);
	}
	return max;
}

struct tunnels *tunnels_new(const struct config *cfg, struct engine *e,
                            struct front *f, struct tls_ca *ca)
{
	struct tunnels *t = calloc(1, sizeof(*t));
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };

	if (!t) {
		tls_ca_free(ca);
		return NULL;
	}
	t->cfg = config_ref(cfg);
	t->engine = e;
	t->front = f;
	t->ca = ca;
	t->wake_fd = -1;
	pthread_mutex_init(&t->lock, NULL);
	t->scratch_len = (size_t)cfg->max_header;
	t->max_open = tunnels_fd_bound(cfg);
	t->scratch = malloc(t->scratch_len);
	t->ep = epoll_create1(EPOLL_CLOEXEC);
	t->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (!t->scratch || t->ep < 0 || t->wake_fd < 0 ||
	    epoll_ctl(t->ep, EPOLL_CTL_ADD, t->wake_fd, &ev) < 0 ||
	    (ca && ttls_init(t) < 0)) {
		tunnels_free(t);
		return NULL;
	}
	return t;
}

int tunnels_set_ca(struct tunnels *t, struct tls_ca *ca)
{
	if (!t->minter) {
		tls_ca_free(ca);
		return -ENOTSUP;
	}
	ttls_set_ca(t, ca);
	return 0;
}

void tunnels_wake(struct tunnels *t)
{
	uint64_t one = 1;

	if (write(t->wake_fd, &one, sizeof(one)) < 0)
		log_debug("tunnel: wakeup failed, ignoring");
}

void tunnels_reconfigure(struct tunnels *t, const struct config *cfg)
{
	config_slot_offer(&t->cfg_next, config_ref(cfg));
	tunnels_wake(t);
}

int tunnels_start(struct tunnels *t)
{
	int r;

	if (t->minter && (r = ttls_start(t)) < 0)
		return r;
	r = pthread_create(&t->thread, NULL, tunnels_main, t);
	if (r)
		return -r;
	t->started = true;
	return 0;
}

void tunnels_add(struct tunnels *t, int fd, const struct sockaddr *sa,
                 socklen_t len, int64_t deadline)
{
	struct tconn *c;
	int one_i = 1;

	if (atomic_load(&t->stats.open) >= t->max_open ||
	    !(c = calloc(1, sizeof(*c)))) {
		/* Over the bound: refused here, on the caller's thread. */
		atomic_fetch_add(&t->stats.refused, 1);
		http_refuse(fd, 503, "overloaded", "too many CONNECT tunnels "
		            "are open; try again later", 4);
		close(fd);
		return;
	}
	atomic_fetch_add(&t->stats.open, 1);
	/*
	 * Responses go out in several writes (TLS records, splices): Nagle
	 * would hold the last short one for the client's delayed ACK.
	 */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one_i, sizeof(one_i));
	c->t = t;
	c->st = T_HEAD;
	c->client = (struct tend){ .fd = fd, .c = c };
	c->peer = (struct tend){ .fd = -1, .c = c };
	c->up.rd = c->up.wr = c->down.rd = c->down.wr = -1;
	if (len > sizeof(c->addr))
		len = sizeof(c->addr);
	memcpy(&c->addr, sa, len);
	c->alen = len;
	netaddr_format(sa, c->who, sizeof(c->who));
	heap_node_init(&c->timer);
	c->timer.when = deadline;
	pthread_mutex_lock(&t->lock);
	c->next = t->arrived;
	t->arrived = c;
	pthread_mutex_unlock(&t->lock);
	tunnels_wake(t);
}

void tunnels_stats(const struct tunnels *t, struct tunnels_stats *ret)
{
	const struct tunnels *m = t;

	ret->connects = atomic_load(&m->stats.connects);
	ret->refused = atomic_load(&m->stats.refused);
	ret->intercepted = atomic_load(&m->stats.intercepted);
	ret->handshake_failed = atomic_load(&m->stats.handshake_failed);
	ret->plain = atomic_load(&m->stats.plain);
	ret->opaque = atomic_load(&m->stats.opaque);
	ret->leaves_minted = atomic_load(&m->stats.leaves_minted);
	ret->open = atomic_load(&m->stats.open);
}

void tunnels_free(struct tunnels *t)
{
	struct tconn *c;

	if (!t)
		return;
	if (t->started) {
		atomic_store(&t->exit, true);
		tunnels_wake(t);
		pthread_join(t->thread, NULL);
	}
	ttls_stop(t);
	drop_inbox(t);
	while ((c = t->all))
		tconn_close(c);
	free_dead(t);
	ttls_done(t);
	heap_done(&t->timers);
	if (t->ep >= 0)
		close(t->ep);
	if (t->wake_fd >= 0)
		close(t->wake_fd);
	tls_ca_free(t->ca);
	config_slot_done(&t->cfg_next);
	config_free(t->cfg);
	free(t->scratch);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

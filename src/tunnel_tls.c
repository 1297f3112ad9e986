/*
 * tunnel_tls.c - interception: the client's TLS session, ended here with
 * a certificate for the CONNECT host, and the pump between it and the
 * socketpair the front serves.
 *
 * Certificates are made by a minter thread (a signature is cheap, but an
 * RSA CA or a loaded machine must not stall every other connection), one
 * mint per host however many connections wait for it, and kept in a
 * bounded LRU cache. Every leaf shares one key, made at start, so a mint
 * is one signature and no key generation.
 *
 * The certificate names the CONNECT host, not the SNI name: that is the
 * host the requests go to, and a client that connects to an IP address
 * sends no SNI at all.
 */
#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <uthash.h>
#include <unistd.h>
#include <utlist.h>

#include "thread_name.h"
#include "clock.h"
#include "config.h"
#include "front.h"
#include "log.h"
#include "tls_ca.h"
#include "tls_leaves.h"
#include "tunnel_int.h"

#define PUMP_BUF (16 * 1024)
#define LEAF_DAYS 7

/* The connections waiting for one host's certificate. */
struct mint_wait {
	char host[DEST_HOST_MAX + 1];
	struct tconn *waiters;       /* utlist DL by mprev/mnext */
	UT_hash_handle hh;
};

struct mint_job {
	struct mint_job *next;
	char host[DEST_HOST_MAX + 1];
};

struct minter {
	struct tunnels *t;
	pthread_t thread;
	bool started;
	struct tls_ca *ca;           /* the minter thread's */
	unsigned gen;                /* changes of ca */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct mint_job *head, *tail;
	struct tls_ca *next_ca;      /* a reload's, taken before a job */
	unsigned next_gen;           /* its generation (tunnels' ca_gen) */
	bool stop;
};

/* Hands d to the tunnels thread and wakes it. */
static void minted_post(struct tunnels *t, struct mint_done *d)
{
	pthread_mutex_lock(&t->lock);
	d->next = t->minted;
	t->minted = d;
	pthread_mutex_unlock(&t->lock);
	tunnels_wake(t);
}



/* --- the minter --- */

static void *minter_main(void *arg)
{
	struct minter *m = arg;
	struct tunnels *t = m->t;

	thread_name("sluice-minter");
	for (;;) {
		struct tls_ca *ca;
		struct mint_job *j;
		struct mint_done *d;

		pthread_mutex_lock(&m->lock);
		while (!m->head && !m->stop && !m->next_ca)
			pthread_cond_wait(&m->cond, &m->lock);
		if (m->stop) {
			pthread_mutex_unlock(&m->lock);
			return NULL;
		}
		/* A new CA first: every leaf from now on is its. */
		ca = m->next_ca;
		m->next_ca = NULL;
		if (ca) {
			m->gen = m->next_gen;
			pthread_mutex_unlock(&m->lock);
			tls_ca_free(m->ca);
			m->ca = ca;
			continue;
		}
		j = m->head;
		m->head = j->next;
		if (!m->head)
			m->tail = NULL;
		pthread_mutex_unlock(&m->lock);

		d = calloc(1, sizeof(*d));
		if (d) {
			memcpy(d->host, j->host, sizeof(d->host));
			d->gen = m->gen;
			d->x = tls_ca_mint(m->ca, t->leaf_key, j->host,
			                   clock_wall_ms() / 1000, LEAF_DAYS);
			minted_post(t, d);
		}
		free(j);
	}
}

/* Asks for host's certificate. 0 or -ENOMEM. */
static int minter_post(struct minter *m, const char *host)
{
	struct mint_job *j = calloc(1, sizeof(*j));

	if (!j)
		return -ENOMEM;
	snprintf(j->host, sizeof(j->host), "%s", host);
	pthread_mutex_lock(&m->lock);
	if (m->tail)
		m->tail->next = j;
	else
		m->head = j;
	m->tail = j;
	pthread_cond_signal(&m->cond);
	pthread_mutex_unlock(&m->lock);
	return 0;
}

/* --- handshake --- */

/* ALPN: http/1.1 or nothing; the front speaks HTTP/1.x only. */
static int alpn_select(SSL *s, const unsigned char **out,
                       unsigned char *outlen, const unsigned char *in,
                       unsigned int inlen, void *arg)
{
	static const unsigned char h11[] = "\x08http/1.1";
	unsigned char *sel = NULL;

	(void)s;
	(void)arg;
	if (SSL_select_next_proto(&sel, outlen, h11, sizeof(h11) - 1, in,
	                          inlen) != OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_NOACK;
	*out = sel;
	return SSL_TLSEXT_ERR_OK;
}

static void shake_failed(struct tconn *c, int err)
{
	unsigned long e = ERR_peek_last_error();
	const char *why = e ? ERR_reason_error_string(e) : NULL;

	if (!why)
		why = err == SSL_ERROR_SYSCALL || err == SSL_ERROR_ZERO_RETURN
		      ? "the client closed the connection"
		      : "handshake failed";
	tconn_handshake_failed(c, why);
	ERR_clear_error();
	tconn_close(c);
}

static void pump(struct tconn *c);

/* The session is up: the front gets the other end of a socketpair. */
static void established(struct tconn *c)
{
	struct tunnels *t = c->t;
	int sv[2];

	tconn_handshake_over(c);
	heap_remove(&t->timers, &c->timer);
	atomic_fetch_add(&t->stats.intercepted, 1);
	c->in.data = malloc(PUMP_BUF);
	c->out.data = malloc(PUMP_BUF);
	if (!c->in.data || !c->out.data ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
	               sv) < 0) {
		log_warn("tls: no memory or socket for an intercepted "
		         "connection");
		tconn_close(c);
		return;
	}
	c->peer.fd = sv[0];
	c->st = T_PUMP;
	tend_watch(&c->client, TUNNEL_PUMP_EVENTS);
	tend_watch(&c->peer, TUNNEL_PUMP_EVENTS);
	/* The front owns sv[1] from here, even when it fails. */
	if (front_add_tunnel(t->front, sv[1], (struct sockaddr *)&c->addr,
	                     c->alen, &c->dest) < 0) {
		log_warn("tls: client connection refused by the http front");
		tconn_close(c);
		return;
	}
	log_debug("tls: intercepting client=%s dest=%s:%u %s", c->who,
	          c->dest.host, c->dest.port, SSL_get_version(c->ssl));
	pump(c);
}

static void handshake(struct tconn *c)
{
	int r, err;

	ERR_clear_error();
	r = SSL_do_handshake(c->ssl);
	if (r == 1) {
		established(c);
		return;
	}
	err = SSL_get_error(c->ssl, r);
	if (err == SSL_ERROR_WANT_READ)
		tend_watch(&c->client, EPOLLIN);
	else if (err == SSL_ERROR_WANT_WRITE)
		tend_watch(&c->client, EPOLLOUT);
	else
		shake_failed(c, err);
}

/* Starts the handshake with leaf x (borrowed). */
static void shake(struct tconn *c, X509 *x)
{
	c->ssl = SSL_new(c->t->ssl_ctx);
	if (!c->ssl || SSL_use_certificate(c->ssl, x) != 1 ||
	    SSL_set_fd(c->ssl, c->client.fd) != 1) {
		log_warn("tls: cannot set up a session for host=%s",
		         c->dest.host);
		ERR_clear_error();
		tconn_close(c);
		return;
	}
	SSL_set_accept_state(c->ssl);
	c->st = T_HANDSHAKE;
	handshake(c);
}

void ttls_begin(struct tconn *c)
{
	struct tunnels *t = c->t;
	struct mint_wait *w;
	X509 *x;

	x = leaf_cache_get(t->leaves, c->dest.host, clock_wall_ms() / 1000);
	if (x) {
		shake(c, x);
		return;
	}
	c->st = T_MINT;
	/* The ClientHello waits in the socket; only a hangup matters. */
	tend_watch(&c->client, EPOLLRDHUP);
	HASH_FIND_STR(t->mints, c->dest.host, w);
	if (!w) {
		w = calloc(1, sizeof(*w));
		if (!w || minter_post(t->minter, c->dest.host) < 0) {
			free(w);
			tconn_close(c);
			return;
		}
		memcpy(w->host, c->dest.host, sizeof(w->host));
		HASH_ADD_STR(t->mints, host, w);
	}
	DL_APPEND2(w->waiters, c, mprev, mnext);
	c->mint = w;
}

void ttls_minted(struct tunnels *t, struct mint_done *d)
{
	struct mint_wait *w;
	struct tconn *c, *tmp;
	X509 *x = d->x;

	d->x = NULL;
	HASH_FIND_STR(t->mints, d->host, w);
	/* Made by the CA before: make it again for whoever waits. */
	if (d->gen < t->leaf_gen) {
		X509_free(x);
		if (!w || minter_post(t->minter, d->host) == 0)
			return;
		x = NULL;
	}
	if (x) {
		atomic_fetch_add(&t->stats.leaves_minted, 1);
		/* One reference for the cache, one until the waiters have it. */
		X509_up_ref(x);
		if (leaf_cache_put(t->leaves, d->host, x) < 0)
			log_warn("tls: no memory for the leaf cache");
	} else {
		log_warn("tls: cannot make a certificate for host=%s",
		         d->host);
	}
	if (w) {
		HASH_DEL(t->mints, w);
		DL_FOREACH_SAFE2(w->waiters, c, tmp, mnext) {
			DL_DELETE2(w->waiters, c, mprev, mnext);
			c->mint = NULL;
			if (x)
				shake(c, x);
			else
				tconn_close(c);
		}
		free(w);
	}
	X509_free(x);
}

/* --- the pump --- */

/*
 * After an SSL_read or SSL_write of c that returned n <= 0: true when it
 * would block (OpenSSL may want to write to read and the reverse), else
 * the session is over, closed cleanly or not, and so is c (false).
 */
static bool ssl_would_block(struct tconn *c, int n)
{
	int err = SSL_get_error(c->ssl, n);

	if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
		return true;
	/* The front sees its end close. */
	ERR_clear_error();
	tconn_close(c);
	return false;
}

/* Client -> front: decrypts into c->in. False when c was closed. */
static bool from_client(struct tconn *c, bool *progress)
{
	int n;

	if (c->in.off == c->in.len)
		c->in.off = c->in.len = 0;
	if (c->in.len == PUMP_BUF)
		return true;
	ERR_clear_error();
	n = SSL_read(c->ssl, c->in.data + c->in.len,
	             (int)(PUMP_BUF - c->in.len));
	if (n > 0) {
		c->in.len += (size_t)n;
		*progress = true;
		return true;
	}
	return ssl_would_block(c, n);
}

static bool to_front(struct tconn *c, bool *progress)
{
	ssize_t n;

	if (c->in.off == c->in.len)
		return true;
	n = send(c->peer.fd, c->in.data + c->in.off, c->in.len - c->in.off,
	         MSG_NOSIGNAL);
	if (n > 0) {
		c->in.off += (size_t)n;
		*progress = true;
		return true;
	}
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return true;
	tconn_close(c);
	return false;
}

static bool from_front(struct tconn *c, bool *progress)
{
	ssize_t n;

	if (c->out.off == c->out.len)
		c->out.off = c->out.len = 0;
	if (c->peer_eof || c->out.len == PUMP_BUF)
		return true;
	n = read(c->peer.fd, c->out.data + c->out.len, PUMP_BUF - c->out.len);
	if (n > 0) {
		c->out.len += (size_t)n;
		*progress = true;
	} else if (n == 0) {
		c->peer_eof = true;
		*progress = true;
	} else if (errno != EAGAIN && errno != EWOULDBLOCK) {
		tconn_close(c);
		return false;
	}
	return true;
}

static bool to_client(struct tconn *c, bool *progress)
{
	int n;

	if (c->out.off == c->out.len)
		return true;
	ERR_clear_error();
	n = SSL_write(c->ssl, c->out.data + c->out.off,
	              (int)(c->out.len - c->out.off));
	if (n > 0) {
		c->out.off += (size_t)n;
		*progress = true;
		return true;
	}
	return ssl_would_block(c, n);
}

/*
 * Moves what can move, both ways, until nothing does. The two fds are
 * edge-triggered (TUNNEL_PUMP_EVENTS): every way this stops is a socket
 * that would block (EAGAIN, or SSL's WANT_READ / WANT_WRITE, which come
 * from one) or a buffer full behind one, so an edge always comes to
 * start it again, and the interest never changes (no epoll_ctl).
 */
static void pump(struct tconn *c)
{
	bool progress;
	int passes = 0;

	do {
		progress = false;
		if (!from_client(c, &progress) || !to_front(c, &progress) ||
		    !from_front(c, &progress) || !to_client(c, &progress))
			return;
		if (progress && ++passes == PUMP_PASSES) {
			tconn_again(c);
			return;
		}
	} while (progress);
	if (c->peer_eof && c->out.off == c->out.len) {
		/* The front closed (Connection: close): so does the session. */
		ERR_clear_error();
		SSL_shutdown(c->ssl);
		ERR_clear_error();
		tconn_close(c);
		return;
	}
}

void ttls_event(struct tconn *c)
{
	if (c->st == T_HANDSHAKE)
		handshake(c);
	else
		pump(c);
}

/*
 * Takes host's mint out of the minter's queue if it has not begun: its
 * last waiter left. (A host made anyway is cached; nothing waits for it.)
 */
static void minter_cancel(struct minter *m, const char *host)
{
	struct mint_job *j, *prev = NULL;

	pthread_mutex_lock(&m->lock);
	for (j = m->head; j; prev = j, j = j->next) {
		if (strcmp(j->host, host) != 0)
			continue;
		if (prev)
			prev->next = j->next;
		else
			m->head = j->next;
		if (m->tail == j)
			m->tail = prev;
		free(j);
		break;
	}
	pthread_mutex_unlock(&m->lock);
}

void ttls_close(struct tconn *c)
{
	struct mint_wait *w = c->mint;

	if (w) {
		DL_DELETE2(w->waiters, c, mprev, mnext);
		c->mint = NULL;
		/* Queued mints stay as many as the hosts with a waiter. */
		if (!w->waiters) {
			minter_cancel(c->t->minter, w->host);
			HASH_DEL(c->t->mints, w);
			free(w);
		}
	}
	SSL_free(c->ssl);
	c->ssl = NULL;
	free(c->in.data);
	free(c->out.data);
	c->in.data = c->out.data = NULL;
}

/* --- lifecycle --- */

int ttls_init(struct tunnels *t)
{
	const struct config *cfg = t->cfg;
	struct minter *m;
	X509 *x;

	t->leaf_key = tls_key_new();
	t->ssl_ctx = SSL_CTX_new(TLS_server_method());
	t->leaves = leaf_cache_new(cfg->tls.leaf_cache);
	m = calloc(1, sizeof(*m));
	if (m) {
		m->t = t;
		pthread_mutex_init(&m->lock, NULL);
		pthread_cond_init(&m->cond, NULL);
	}
	t->minter = m;
	if (m) {
		/* The minter owns the CA from now on. */
		m->ca = t->ca;
		t->ca = NULL;
	}
	if (!t->leaf_key || !t->ssl_ctx || !t->leaves || !m) {
		log_error("tls: cannot set up interception (out of memory)");
		ERR_clear_error();
		return -ENOMEM;
	}
	SSL_CTX_set_min_proto_version(t->ssl_ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(t->ssl_ctx, SSL_OP_NO_RENEGOTIATION |
	                    SSL_OP_NO_COMPRESSION |
	                    SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_mode(t->ssl_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
	                 SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_session_id_context(t->ssl_ctx,
	                               (const unsigned char *)"sluice", 6);
	SSL_CTX_set_alpn_select_cb(t->ssl_ctx, alpn_select, NULL);
	if (SSL_CTX_use_PrivateKey(t->ssl_ctx, t->leaf_key) != 1) {
		log_error("tls: cannot use the leaf key");
		ERR_clear_error();
		return -EIO;
	}
	/*
	 * A CA that loads but cannot sign (a key type tls_ca_mint does not
	 * handle) would turn every interception into a closed connection:
	 * found now, the daemon refuses to start.
	 */
	x = tls_ca_mint(m->ca, t->leaf_key, "sluice.invalid",
	                clock_wall_ms() / 1000, 1);
	if (!x) {
		log_error("tls: the local CA in '%s' cannot sign certificates "
		          "(make one with 'sluicectl ca init --force')",
		          cfg->state_dir);
		ERR_clear_error();
		return -EINVAL;
	}
	X509_free(x);
	return 0;
}

int ttls_start(struct tunnels *t)
{
	int r = pthread_create(&t->minter->thread, NULL, minter_main,
	                       t->minter);

	if (r)
		return -r;
	t->minter->started = true;
	return 0;
}

/*
 * The generation counts CAs handed over: the minter signs with the newest
 * before its next job, and the tunnels thread, seeing it after its next
 * wait, drops the cached leaves and makes again those minted by the old
 * one (ttls_minted), so no client gets an old leaf once the reload that
 * brought the new CA has answered.
 */
void ttls_set_ca(struct tunnels *t, struct tls_ca *ca)
{
	struct minter *m = t->minter;

	pthread_mutex_lock(&m->lock);
	tls_ca_free(m->next_ca);
	m->next_ca = ca;
	m->next_gen = atomic_fetch_add(&t->ca_gen, 1) + 1;
	pthread_cond_signal(&m->cond);
	pthread_mutex_unlock(&m->lock);
}

void ttls_check_ca(struct tunnels *t)
{
	unsigned gen = atomic_load(&t->ca_gen);
	struct leaf_cache *lc;

	if (gen == t->leaf_gen)
		return;
	lc = leaf_cache_new(t->cfg->tls.leaf_cache);
	if (lc) {
		leaf_cache_free(t->leaves);
		t->leaves = lc;
	}
	t->leaf_gen = gen;
	log_info("tls: a new local CA signs the leaves from now on");
}

void ttls_stop(struct tunnels *t)
{
	struct minter *m = t->minter;

	if (!m || !m->started)
		return;
	pthread_mutex_lock(&m->lock);
	m->stop = true;
	pthread_cond_signal(&m->cond);
	pthread_mutex_unlock(&m->lock);
	pthread_join(m->thread, NULL);
	m->started = false;
}

void ttls_done(struct tunnels *t)
{
	struct minter *m = t->minter;
	struct mint_wait *w, *tmp;

	if (m) {
		while (m->head) {
			struct mint_job *j = m->head;

			m->head = j->next;
			free(j);
		}
		tls_ca_free(m->ca);
		tls_ca_free(m->next_ca);
		pthread_mutex_destroy(&m->lock);
		pthread_cond_destroy(&m->cond);
		free(m);
		t->minter = NULL;
	}
	HASH_ITER(hh, t->mints, w, tmp) {
		HASH_DEL(t->mints, w);
		free(w);
	}
	leaf_cache_free(t->leaves);
	SSL_CTX_free(t->ssl_ctx);
	EVP_PKEY_free(t->leaf_key);
}

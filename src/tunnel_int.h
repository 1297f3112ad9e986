/*
 * tunnel_int.h - private to tunnel*.c: a tunnel's connection and the
 * set of them. Every field is the tunnels thread's, except the inbox.
 */
#ifndef SLUICE_TUNNEL_INT_H
#define SLUICE_TUNNEL_INT_H

#include <openssl/ssl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "classify.h"
#include "heap.h"
#include "request.h"

struct leaf_cache;
struct minter;
struct mint_wait;

enum tstage {
	T_HEAD,                      /* reading the CONNECT head */
	T_ADMIT,                     /* opaque: waiting in its queue */
	T_FIRST,                     /* 200 sent: the client's first byte? */
	T_MINT,                      /* waiting for the host's certificate */
	T_HANDSHAKE,                 /* TLS with the client */
	T_PUMP,                      /* TLS <-> the front's socketpair */
	T_SPLICE,                    /* opaque: bytes both ways */
};

/* The interest of both fds of a pump (TLS or splice), set once. */
#define TUNNEL_PUMP_EVENTS (EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET)

/* One fd of a connection in the epoll set. */
struct tend {
	int fd;                      /* -1: none */
	uint32_t events;             /* interest registered; 0: none */
	struct tconn *c;
};

/* Bytes one way through a pump: data[off, len) is still to go. */
struct tbuf {
	char *data;
	size_t off, len;
};

/* A kernel pipe between two sockets (splice), and the bytes it holds. */
struct tpipe {
	int rd, wr;
	size_t n;
};

/* The admission request of an opaque tunnel. */
struct treq {
	struct request req;          /* first: request_unref frees the block */
	struct tunnels *t;
	struct tconn *c;             /* NULL once the connection is gone */
	struct treq *inbox_next;
	bool posted;                 /* in the inbox (under its lock) */
};

struct tconn {
	struct tunnels *t;
	enum tstage st;
	struct tend client;          /* the client's socket */
	struct tend peer;            /* socketpair end (pump), upstream */
	struct sockaddr_storage addr;
	socklen_t alen;
	struct destination dest;     /* from the CONNECT line */
	char who[64];                /* client address, for logs */
	struct heap_node timer;      /* stage deadline or idle check */
	int64_t active;              /* last byte moved, monotonic ms */
	bool client_eof, peer_eof;
	bool client_shut, peer_shut; /* SHUT_WR sent (splice) */
	bool handshaking;            /* counted in t->handshakes */

	/* TLS */
	SSL *ssl;
	struct tbuf in, out;         /* to the front, to the client */
	struct mint_wait *mint;      /* waiting for this leaf */
	struct tconn *mprev, *mnext;

	/* opaque */
	struct treq *req;
	struct tpipe up, down;       /* client -> upstream, and back */

	struct tconn *prev, *next;   /* every connection */
	struct tconn *aprev, *anext; /* in t->again */
	bool again;
};

struct tunnels {
	const struct config *cfg;    /* the tunnels thread's; a reference */
	struct config_slot cfg_next; /* a reload's, taken after each wait */
	struct engine *engine;
	struct front *front;
	struct tls_ca *ca;           /* until ttls_init() gives it to the
	                                minter, which owns it then */
	SSL_CTX *ssl_ctx;
	EVP_PKEY *leaf_key;          /* every leaf's key */
	struct leaf_cache *leaves;
	unsigned leaf_gen;           /* the CA the cached leaves are from */
	atomic_uint ca_gen;          /* the newest CA handed over */
	struct minter *minter;       /* NULL: no interception */
	struct mint_wait *mints;     /* uthash by host: mints under way */

	pthread_t thread;
	bool started;
	atomic_bool exit;
	int ep;
	int wake_fd;                 /* eventfd: inbox, new, exit */

	/* Any thread, under lock. */
	pthread_mutex_t lock;
	struct tconn *arrived;       /* from tunnels_add */
	struct treq *inbox;          /* admissions decided */
	struct mint_done *minted;    /* certificates made */

	struct tconn *all;           /* utlist DL */
	struct tconn *dead;          /* closed in this batch, by next */
	struct tconn *again;         /* pumps to run again (utlist DL) */
	unsigned max_open;           /* tls.max_tunnels, within the fds */
	unsigned n_all;              /* connections held */
	unsigned handshakes;         /* in T_FIRST..T_HANDSHAKE */
	struct heap timers;
	int64_t fail_log_at;         /* no failure line before (ms) */
	unsigned fail_quiet;         /* failures not logged since */
	char *scratch;               /* a head is peeked into it */
	size_t scratch_len;

	struct {
		atomic_uint_fast64_t connects, refused, intercepted,
			handshake_failed, plain, opaque, leaves_minted;
		atomic_uint open;
	} stats;
};

/* A certificate the minter made (x NULL: it failed). */
struct mint_done {
	struct mint_done *next;
	X509 *x;
	unsigned gen;                /* the minter's CA when it was made */
	char host[DEST_HOST_MAX + 1];
};

/* tunnel.c */

/* Sets c's interest in the epoll set for e (0: none). */
void tend_watch(struct tend *e, uint32_t events);

/* Arms c's timer for when (monotonic ms). */
void tconn_timer(struct tconn *c, int64_t when);

/* Closes c's sockets; it is freed after the current batch of events. */
void tconn_close(struct tconn *c);

/* Counts c's failed handshake and logs it, a line a second at most. */
void tconn_handshake_failed(struct tconn *c, const char *why);

/*
 * A pump stops after PUMP_PASSES passes that moved bytes, so one busy
 * tunnel cannot hold the thread: it runs again after the next batch of
 * events. Edge-triggered fds would not wake it.
 */
#define PUMP_PASSES 16
void tconn_again(struct tconn *c);

/* c is no longer counted against tls.max_handshakes. */
void tconn_handshake_over(struct tconn *c);

/* Sends "200 Connection established"; false (c closed) when it fails. */
bool tconn_established(struct tconn *c);

/* tunnel_tls.c */

/*
 * Sets up interception: the server context, the leaf key, the cache and
 * the minter (not started). 0 or -ENOMEM / -EIO, with a message logged.
 */
int ttls_init(struct tunnels *t);
int ttls_start(struct tunnels *t);
/* Stops the minter (its results wait in the inbox). */
void ttls_stop(struct tunnels *t);
/* Frees what ttls_init() made; no connection is left. */
void ttls_done(struct tunnels *t);

/* A new CA for the minter (taken over); any thread. */
void ttls_set_ca(struct tunnels *t, struct tls_ca *ca);

/* Wakes the tunnels thread (its eventfd). Any thread. */
void tunnels_wake(struct tunnels *t);

/* The tunnels thread, after each wait: drops the leaves of an old CA. */
void ttls_check_ca(struct tunnels *t);

/* The client's first byte was a TLS record: get a certificate, shake. */
void ttls_begin(struct tconn *c);

/* The minter made the certificate of d->host: its waiters shake. */
void ttls_minted(struct tunnels *t, struct mint_done *d);

/* An event on c's client or peer fd in T_HANDSHAKE or T_PUMP. */
void ttls_event(struct tconn *c);

/* c is closing: its TLS state and mint wait go. */
void ttls_close(struct tconn *c);

/* tunnel_splice.c */

/* c's upstream socket is connected (fd): answer 200 and splice. */
void tsplice_begin(struct tconn *c, int fd);

/* An event on c's client or upstream fd in T_SPLICE. */
void tsplice_event(struct tconn *c);

/* The idle check of c fired at now: false when c was closed. */
bool tsplice_idle(struct tconn *c, int64_t now);

/* c is closing: its pipes go. */
void tsplice_close(struct tconn *c);

#endif

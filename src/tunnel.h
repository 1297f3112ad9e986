/*
 * tunnel.h - CONNECT: TLS interception and opaque tunnels.
 *
 * The listener hands every connection that begins with "CONNECT " to this
 * module's thread, which reads the head (consuming exactly it), applies
 * policy and then, for host:port:
 *
 *   - intercepted (a local CA is loaded, tls.intercept is on and no
 *     tls.tunnel pattern names the host): answers 200 and looks at the
 *     client's first byte. A TLS handshake record is answered with a
 *     certificate for the host, minted from the CA off this thread and
 *     kept in a bounded cache; the decrypted stream is pumped through a
 *     socketpair whose other end the front serves like any client, its
 *     requests going to https://host:port. Anything else is plain HTTP
 *     and the client's socket itself goes to the front, its requests to
 *     http://host:port.
 *   - opaque: a request through the destination's queue (one dispatch
 *     against its limits) connects upstream; then 200, and the bytes are
 *     spliced both ways in the kernel until either side is done or the
 *     tunnel is idle for tls.tunnel_idle_timeout.
 *
 * Everything is bounded: tunnels (tls.max_tunnels), handshakes under way
 * (tls.max_handshakes), cached leaves (tls.leaf_cache).
 */
#ifndef SLUICE_TUNNEL_H
#define SLUICE_TUNNEL_H

#include <stdint.h>
#include <sys/socket.h>

struct config;
struct engine;
struct front;
struct tls_ca;

struct tunnels;

/* What the tunnels did so far; any thread. */
struct tunnels_stats {
	uint64_t connects;           /* CONNECT heads read */
	uint64_t refused;            /* answered with an error */
	uint64_t intercepted;        /* TLS handshakes completed */
	uint64_t handshake_failed;
	uint64_t plain;              /* plain HTTP inside CONNECT */
	uint64_t opaque;             /* opaque tunnels opened */
	uint64_t leaves_minted;
	unsigned open;               /* connections held now */
};

/*
 * A new set of tunnels, with a reference to cfg. e and f must outlive
 * it; ca (NULL: no interception) is taken over. NULL on error, with a
 * message logged.
 */
struct tunnels *tunnels_new(const struct config *cfg, struct engine *e,
                            struct front *f, struct tls_ca *ca);

/*
 * A reload: the tunnels thread takes cfg (a reference of its own) after
 * its next wait; tunnels already open keep their course. Any thread.
 */
void tunnels_reconfigure(struct tunnels *t, const struct config *cfg);

/*
 * A reload found a new local CA: the leaves made from now on are signed
 * by ca (taken over), and those of the old one are dropped. -ENOTSUP
 * (ca freed) when the daemon started without a CA: interception is set up
 * at start only. Any thread.
 */
int tunnels_set_ca(struct tunnels *t, struct tls_ca *ca);

/* Starts the thread (and the certificate minter). 0 or negative errno. */
int tunnels_start(struct tunnels *t);

/*
 * Takes a client connection that began with "CONNECT " (nothing read
 * yet), from address sa; its head is due by deadline (monotonic ms).
 * Any thread; fd is owned from here on, even on failure.
 */
void tunnels_add(struct tunnels *t, int fd, const struct sockaddr *sa,
                 socklen_t len, int64_t deadline);

/* Copies the counters. */
void tunnels_stats(const struct tunnels *t, struct tunnels_stats *ret);

/*
 * Stops the thread and closes every tunnel (requests inside intercepted
 * ones belong to the front and end with it). Takes NULL.
 */
void tunnels_free(struct tunnels *t);

#endif

/*
 * front.h - the client side: libmicrohttpd daemons (front_shards.h) that
 * parse requests, hand them to the engine, hold the client's connection
 * suspended while the request waits, and write the response, streaming it
 * as the engine receives it.
 *
 * The front also owns the disconnect watch (front_watch.h): while a
 * connection is suspended its fd is registered for EPOLLRDHUP in an epoll
 * set whose fd the listener polls; front_watch_dispatch() handles the
 * events.
 */
#ifndef SLUICE_FRONT_H
#define SLUICE_FRONT_H

#include <stdint.h>
#include <sys/socket.h>

struct config;
struct destination;
struct engine;
struct jobrun;
struct request;

struct front;

/*
 * A new front, with a reference to cfg. e and jr (the webhook job
 * runner, NULL: none) must outlive it; salt (CRED_SALT_LEN bytes) keys the credential hashes and
 * is copied. NULL on error.
 */
struct front *front_new(const struct config *cfg, struct engine *e,
                        struct jobrun *jr, const unsigned char *salt);

/*
 * A reload: the front takes cfg (a reference of its own) between two
 * rounds of its thread; requests admitted from then on follow it. Any
 * thread.
 */
void front_reconfigure(struct front *f, const struct config *cfg);

/*
 * The admin listener's bound "ADDR:PORT", for the Location of accepted
 * jobs (an absolute URL there). Before front_start().
 */
void front_set_admin(struct front *f, const char *addr);

/*
 * Starts the front's shards, a set on each engine worker's loop. 0 or
 * negative errno.
 */
int front_start(struct front *f);

/*
 * Gives MHD an accepted client socket. Ownership of fd passes to MHD even
 * on failure. 0 or -EIO.
 */
int front_add_connection(struct front *f, int fd, const struct sockaddr *sa,
                         socklen_t len);

/*
 * Gives MHD the client end of a CONNECT tunnel: the client's own socket
 * (plain HTTP inside the tunnel) or one end of a socketpair whose other
 * end carries the decrypted TLS stream. Requests on it are origin-form
 * and go to dest (scheme, host and port of the CONNECT). sa is the real
 * client's address. Any thread; ownership of fd passes as above.
 */
int front_add_tunnel(struct front *f, int fd, const struct sockaddr *sa,
                     socklen_t len, const struct destination *dest);

/*
 * Arms the header deadline of a new client fd, before it is handed to
 * MHD: returns a generation for front_header_expired() (0: not armed).
 */
uint32_t front_header_deadline(struct front *f, int fd);

/*
 * The deadline of (fd, gen) passed: if the connection has still not sent
 * a complete request header, it is shut down. Listener thread.
 */
void front_header_expired(struct front *f, int fd, uint32_t gen);

/* Requests begun and not yet completed. Any thread. */
unsigned front_busy(const struct front *f);

/* The epoll fd to poll for readability; then call front_watch_dispatch. */
int front_watch_fd(const struct front *f);

/*
 * Arms the disconnect watch of connections asleep for a while. Listener
 * thread, at least every FRONT_WATCH_TICK_MS.
 */
void front_watch_due(struct front *f);
#define FRONT_WATCH_TICK_MS 50

/* Handles pending disconnect events. Listener thread. */
void front_watch_dispatch(struct front *f);

/* Stops MHD (all connections closed). Resume everything first. */
void front_stop(struct front *f);

/* Stops if needed and frees. Takes NULL. */
void front_free(struct front *f);

#endif

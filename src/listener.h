/*
 * listener.h - the proxy's listening socket.
 *
 * It accepts connections, refuses clients outside allow (403), peeks at
 * the first bytes to tell CONNECT from plain HTTP, and hands plain HTTP
 * connections to the front, CONNECT ones to the tunnels. One of them
 * also polls the front's disconnect watch. Connections that send nothing
 * within client_timeout are closed. There is one on each engine worker's
 * loop, with the front (a guest, curlloop.h), each with its own copy of
 * the listening socket, so a new connection reaches that worker's
 * libmicrohttpd shards without a hand-off to another thread.
 */
#ifndef SLUICE_LISTENER_H
#define SLUICE_LISTENER_H

#include <stdbool.h>
#include <stddef.h>

struct config;
struct curlloop;
struct front;
struct tunnels;

struct listener;

/* What the first bytes of a connection decide. */
enum listener_verdict {
	LISTENER_WAIT,               /* a prefix of "CONNECT ": peek again */
	LISTENER_DENY,               /* outside allow: 403, then close */
	LISTENER_CONNECT,            /* "CONNECT ": to the tunnels */
	LISTENER_FRONT,              /* anything else: to the front */
};

/*
 * The verdict on (buf, n), the first n >= 1 bytes a client sent (peeked,
 * up to 8), denied when its address is outside allow. Pure.
 */
enum listener_verdict listener_first_bytes(const char *buf, size_t n,
                                           bool denied);

/*
 * Takes ownership of the listening socket fd (a dup(2) of it for each
 * listener after the first), and a reference to cfg; front and tunnels
 * must outlive it. watch: this one polls the front's disconnect watch
 * (one listener must). NULL on error.
 */
struct listener *listener_new(const struct config *cfg, int fd,
                              struct front *front, struct tunnels *tunnels,
                              bool watch);

/*
 * A reload: the listener takes cfg (a reference of its own; its allow
 * list) when its set is next ready. Any thread.
 */
void listener_reconfigure(struct listener *l, const struct config *cfg);

/*
 * Has loop's thread run the listener from then on (a guest); loop must
 * outlive listener_free(). 0 or negative errno.
 */
int listener_start(struct listener *l, struct curlloop *loop);

/* Closes the listening socket; pending connections are dropped. */
void listener_stop_accepting(struct listener *l);

/* Takes the listener off its loop and frees. Takes NULL. */
void listener_free(struct listener *l);

#endif

/*
 * listener.h - the proxy's listening socket.
 *
 * One thread accepts connections, refuses clients outside allow (403),
 * peeks at the first bytes to tell CONNECT from plain HTTP, and hands
 * plain HTTP connections to the front. It also polls the front's
 * disconnect watch. Connections that send nothing within client_timeout
 * are closed.
 */
#ifndef SLUICE_LISTENER_H
#define SLUICE_LISTENER_H

struct config;
struct front;

struct listener;

/* Takes ownership of the listening socket fd. NULL on error. */
struct listener *listener_new(const struct config *cfg, int fd,
                              struct front *front);

/* Starts the thread. 0 or negative errno. */
int listener_start(struct listener *l);

/* Closes the listening socket; pending connections are dropped. */
void listener_stop_accepting(struct listener *l);

/* Stops the thread and frees. Takes NULL. */
void listener_free(struct listener *l);

#endif

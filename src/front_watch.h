/*
 * front_watch.h - the front's watch over its client sockets: the
 * disconnect watch of suspended connections and the header deadline of
 * new ones. Neither knows MHD or the engine.
 *
 * A connection put to sleep (watch_sleep) gets its disconnect watch only
 * if it still sleeps WATCH_DELAY_MS later (watch_due): most requests are
 * answered well before, and arming and disarming the watch would cost
 * them two system calls each. An armed watch is an EPOLLRDHUP
 * registration in an epoll set whose fd the listener polls; when it
 * fires, watch_dispatch() calls the gone callback with the request.
 *
 * Both tables are indexed by fd, under one lock, so a header deadline is
 * ordered against the close of its connection (watch_conn_closed).
 */
#ifndef SLUICE_FRONT_WATCH_H
#define SLUICE_FRONT_WATCH_H

#include <stddef.h>
#include <stdint.h>

struct front_req;
struct watch;

/* r's client went away while its connection slept; a reference is held. */
typedef void watch_gone_fn(void *arg, struct front_req *r);

/*
 * A new watch over fds 0..n_slots-1 (fds beyond are never watched).
 * gone(arg, r) is called from watch_dispatch(). NULL on error.
 */
struct watch *watch_new(size_t n_slots, watch_gone_fn *gone, void *arg);

/* Frees w, dropping the sleepers' references. Takes NULL. */
void watch_free(struct watch *w);

/* The epoll fd to poll for readability; then call watch_dispatch. */
int watch_fd(const struct watch *w);

/*
 * Lists r as asleep (r->req.lock held; r->suspended set by the caller),
 * with a reference, for watch_due() to arm its watch later.
 */
void watch_sleep(struct watch *w, struct front_req *r);

/*
 * Arms the disconnect watch of requests asleep WATCH_DELAY_MS or more
 * and still suspended. Listener thread.
 */
void watch_due(struct watch *w);

/* Disarms r's disconnect watch, if armed. r->req.lock held. */
void watch_disarm(struct watch *w, struct front_req *r);

/* Handles pending disconnect events. Listener thread. */
void watch_dispatch(struct watch *w);

/*
 * Arms the header deadline of a new client fd: returns a generation for
 * watch_header_expired() (0: not armed).
 */
uint32_t watch_header_deadline(struct watch *w, int fd);

/*
 * The deadline of (fd, gen) passed: if the connection has still not sent
 * a complete request header, it is shut down. Listener thread.
 */
void watch_header_expired(struct watch *w, int fd, uint32_t gen);

/* fd's header block is complete: its deadline is met. */
void watch_header_met(struct watch *w, int fd);

/* fd's connection closes: its deadline no longer applies. */
void watch_conn_closed(struct watch *w, int fd);

#endif

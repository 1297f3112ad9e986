/*
 * curlloop.h - one thread around a libcurl multi handle: an inbox other
 * threads post to, timers to the microsecond, and the ends of transfers.
 * The engine and webhook delivery each run one (the model: redis ae.c).
 *
 * A round: wait for a socket, a message or the nearest timer; hand over
 * the inbox; fire the timers that are due; let curl work; report each
 * finished transfer; then call round(), which starts what may start and
 * says when it wants the next round at the latest. Everything but
 * curlloop_post(), curlloop_wake() and curlloop_call() is for the loop's
 * own thread.
 *
 * The loop's thread can also run another component (a guest: the
 * front's libmicrohttpd daemons run on the engine's loop): its fds sit in
 * the loop's epoll set (curlloop_watch_add) and its tail() runs after
 * every round. Work handed between the guest and the owner then stays on
 * one thread: a post or a wake from the loop's own thread writes no
 * eventfd and switches no context.
 */
#ifndef SLUICE_CURLLOOP_H
#define SLUICE_CURLLOOP_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stdint.h>

#include "heap.h"

/* A message, embedded in what is posted so posting never allocates. */
struct curlloop_msg {
	struct curlloop_msg *next;
};

/*
 * An fd of a guest in the loop's epoll set, embedded in the guest's
 * struct: ready() runs on the loop's thread after the wait that saw it.
 */
struct curlloop_watch {
	void (*ready)(struct curlloop_watch *w, uint32_t events);
};

struct curlloop_ops {
	/* The messages posted since the last round, oldest first. */
	void (*inbox)(void *arg, struct curlloop_msg *head);
	/* A timer is due; it is out of the heap already. */
	void (*timer)(void *arg, struct heap_node *n);
	/* easy's transfer ended with rc; it is still in the multi handle. */
	void (*done)(void *arg, CURL *easy, CURLcode rc);
	/*
	 * End of a round. Returns when (monotonic us) the next round must
	 * run at the latest: INT64_MAX for no such time.
	 */
	int64_t (*round)(void *arg);
	/*
	 * The loop stopped: the last messages have been handed to inbox().
	 * On the loop's thread, or the caller's if it never started.
	 */
	void (*stopped)(void *arg);
};

struct curlloop;

/*
 * A loop that is not running yet; ops and arg must outlive it. maxconnects
 * is CURLMOPT_MAXCONNECTS. NULL on error.
 */
struct curlloop *curlloop_new(const struct curlloop_ops *ops, void *arg,
                              long maxconnects);

/*
 * Makes the loop run round() on the microsecond of its deadline: it wakes
 * early and spins the rest, at most 5 % of a core. Before it starts.
 */
void curlloop_precise(struct curlloop *l);

/* The thread's name (at most 15 bytes kept); before it starts. */
void curlloop_set_name(struct curlloop *l, const char *name);

/* Microseconds a precise loop has spun in all. Any thread. */
int64_t curlloop_spun_us(struct curlloop *l);

/* Starts the thread. 0 or negative errno. */
int curlloop_start(struct curlloop *l);

/* The loop whose thread this is, or NULL. */
struct curlloop *curlloop_current(void);

/* True on the loop's own thread (false for NULL). */
bool curlloop_on_thread(const struct curlloop *l);

/*
 * Runs fn(arg) on the loop's thread, between two rounds, and returns what
 * it returned, once it has: at once on that thread, or on the caller's
 * if the thread does not run. Any thread. Not refused while stopping.
 */
int curlloop_call(struct curlloop *l, int (*fn)(void *arg), void *arg);

/*
 * The guests' side; on the loop's thread (through curlloop_call), or
 * before it starts. watch_add puts fd in the set for events (EPOLLIN...):
 * 0 or negative errno; watch_del takes it out, and w's events of the
 * current round are dropped. add_tail: tail(arg) runs after every round
 * and returns when (monotonic us) it wants the next at the latest
 * (INT64_MAX: no such time; now or earlier: at once); at most
 * CURLLOOP_TAILS of them, in the order added: 0 or -ENOSPC. del_tail
 * takes it off. A loop with a tail keeps its thread after curlloop_stop(),
 * for its guests, until the last tail is taken off or curlloop_free().
 */
#define CURLLOOP_TAILS 4
int curlloop_watch_add(struct curlloop *l, int fd, uint32_t events,
                       struct curlloop_watch *w);
void curlloop_watch_del(struct curlloop *l, int fd, struct curlloop_watch *w);
int curlloop_add_tail(struct curlloop *l, int64_t (*tail)(void *arg),
                      void *arg);
void curlloop_del_tail(struct curlloop *l, int64_t (*tail)(void *arg),
                       void *arg);

/*
 * Appends m to the inbox and wakes the loop. Any thread; on the loop's
 * own, the inbox is taken in this round or the next one, which does not
 * wait. -ESHUTDOWN once the loop is stopping: m was not taken.
 */
int curlloop_post(struct curlloop *l, struct curlloop_msg *m);

/* Makes the loop run a round soon. Any thread. */
void curlloop_wake(struct curlloop *l);

/*
 * Ends the loop after its current round, then hands over the last messages
 * and calls stopped(), and waits for that. The thread ends then, unless a
 * guest's tail is set (see curlloop_add_tail): it goes on running the
 * guest, and nothing of the owner's. Once; later calls do nothing.
 */
void curlloop_stop(struct curlloop *l);

/* Stops the loop if it runs, then frees it. Takes NULL. */
void curlloop_free(struct curlloop *l);

/* Transfers. 0 or -ENOMEM / -EINVAL. */
int curlloop_add(struct curlloop *l, CURL *easy);
void curlloop_remove(struct curlloop *l, CURL *easy);

/* Arms n for when (monotonic us). 0 or -ENOMEM. n must not be armed. */
int curlloop_timer_add(struct curlloop *l, struct heap_node *n, int64_t when);

/* Disarms n if armed. */
void curlloop_timer_del(struct curlloop *l, struct heap_node *n);

#endif

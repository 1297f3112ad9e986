/*
 * curlloop.h - one thread around a libcurl multi handle: an inbox other
 * threads post to, timers to the microsecond, and the ends of transfers.
 * The engine and webhook delivery each run one (the model: redis ae.c).
 *
 * A round: wait for a socket, a message or the nearest timer; hand over
 * the inbox; fire the timers that are due; let curl work; report each
 * finished transfer; then call round(), which starts what may start and
 * says when it wants the next round at the latest. Everything but
 * curlloop_post() and curlloop_wake() is for the loop's own thread.
 */
#ifndef SLUICE_CURLLOOP_H
#define SLUICE_CURLLOOP_H

#include <curl/curl.h>
#include <stdint.h>

#include "heap.h"

/* A message, embedded in what is posted so posting never allocates. */
struct curlloop_msg {
	struct curlloop_msg *next;
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

/*
 * Appends m to the inbox and wakes the loop. Any thread. -ESHUTDOWN once
 * the loop is stopping: m was not taken.
 */
int curlloop_post(struct curlloop *l, struct curlloop_msg *m);

/* Makes the loop run a round soon. Any thread. */
void curlloop_wake(struct curlloop *l);

/*
 * Ends the loop after its current round, then hands over the last messages
 * and calls stopped(). Waits for the thread. Once; later calls do nothing.
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

/*
 * front_shards.h - many small libmicrohttpd daemons, run by a curlloop's
 * thread (the engine's: front and engine hand requests to each other
 * without crossing threads).
 *
 * libmicrohttpd 0.9.75 walks a daemon's whole list of suspended
 * connections every time one of them is resumed, so with one daemon each
 * response costs time in proportion to the number of requests waiting.
 * Spreading connections over daemons of at most `per_shard` connections
 * bounds that walk: a shard is made when every existing one is full, and
 * a freed slot is reused first. All shards run in external-epoll mode
 * on the loop's thread; their epoll fds sit in the loop's epoll set.
 *
 * MHD_add_connection() is not thread-safe for a daemon without its own
 * thread, so shards_add() queues the socket and the loop's thread adds it.
 */
#ifndef SLUICE_FRONT_SHARDS_H
#define SLUICE_FRONT_SHARDS_H

#include <stdbool.h>
#include <sys/socket.h>

struct MHD_Connection;
struct MHD_Daemon;
struct curlloop;
struct shards;

/* Starts one daemon allowed max_conns connections; NULL on error. */
typedef struct MHD_Daemon *shards_make_fn(void *arg, unsigned max_conns);

/*
 * A new set: make() creates each daemon, per_shard connections at most in
 * one, limit connections in all. NULL on error.
 */
struct shards *shards_new(shards_make_fn *make, void *arg,
                          unsigned per_shard, unsigned limit);

/*
 * Makes the first shard and has loop's thread run the set from then on
 * (a guest of the loop, curlloop.h). loop must outlive shards_stop().
 * 0 or negative errno.
 */
int shards_start(struct shards *s, struct curlloop *loop);

/*
 * fn(arg) runs on the loop's thread after every round (set before
 * shards_start()); shards_kick() makes it run soon, from any thread.
 */
void shards_set_between(struct shards *s, void (*fn)(void *arg));
void shards_kick(struct shards *s);

/*
 * Hands an accepted socket to a shard. Any thread. Ownership of fd passes
 * to the set even on failure (closed). 0 or negative errno.
 */
int shards_add(struct shards *s, int fd, const struct sockaddr *sa,
               socklen_t len);

/*
 * MHD_resume_connection(c), and makes sure the loop's thread runs c's
 * daemon afterwards. Any thread. (libmicrohttpd resumes at the start of
 * its next run and wakes it through its own eventfd, but a resume that
 * lands while a run is under way has its wake-up consumed by that run;
 * with no thread of its own the daemon would then sleep on it.)
 */
void shards_resume(struct shards *s, struct MHD_Connection *c);

/*
 * From the daemons' MHD_OPTION_NOTIFY_CONNECTION callback: a connection
 * started (socket_ctx is set to its shard) or closed.
 */
void shards_conn_started(struct shards *s, void **socket_ctx);
void shards_conn_closed(struct shards *s, void **socket_ctx);

/* Number of shards made so far. */
unsigned shards_count(const struct shards *s);

/*
 * Takes the set off the loop's thread, then stops every daemon
 * (connections closed: resume all suspended connections first). Takes
 * NULL.
 */
void shards_stop(struct shards *s);

/* Stops if needed and frees. Takes NULL. */
void shards_free(struct shards *s);

#endif

/*
 * sched.h - queues, destinations, pacing, concurrency caps and fairness.
 *
 * A queue (destination x credential) holds waiting items in FIFO order and
 * has a rate (GCRA, virtual scheduling), a burst, a concurrency cap and a
 * pause-until time. A destination groups queues and may add aggregate
 * limits shared by all of them; the scheduler as a whole has a global cap
 * on items in flight.
 *
 * A queue is ready when it has an item it may dispatch now under its own
 * limits; ready queues of a destination take turns by deficit round robin
 * (quantum = weight), and destinations whose aggregate limits allow a
 * dispatch take turns the same way for the global cap. A queue or
 * destination waiting for time sits in a timer heap; one waiting for a
 * completion waits for sched_done(). Nothing polls: every operation is
 * O(1) plus O(log n) for a timer, in the number of queues and items.
 *
 * Time is passed in by the caller (monotonic microseconds), so the whole
 * module is testable without sleeping. Not thread-safe: one owner thread.
 */
#ifndef SLUICE_SCHED_H
#define SLUICE_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "heap.h"
#include "rate_ctl.h"

#define SCHED_KEY_MAX 64             /* bytes of a queue's key */
/*
 * An idle queue is looked at after this long (us): freed at once if its
 * state tells nothing a new queue would not (no learned value, no pause,
 * pacing in the past), else kept until idle_reset.
 */
#define SCHED_QUIET_US 1000000

struct sched;
struct sched_queue;
struct sched_dest;

/* Embedded in whatever is scheduled (a request). */
struct sched_item {
	struct sched_item *prev, *next; /* its queue (utlist DL) */
	struct sched_queue *q;       /* set by sched_enqueue */
	int64_t not_before;          /* us; 0 = at once (retries set it) */
};

/* Limits of a queue, as configured. */
struct sched_limits {
	double rps;                  /* > 0 */
	double max_rps;              /* learned rates above are cut; 0: none */
	enum rate_mode mode;         /* how much to trust silence */
	unsigned burst;              /* >= 1 */
	unsigned concurrency;        /* >= 1 */
	unsigned max_queued;         /* >= 1, waiting items */
	unsigned weight;             /* >= 1, DRR quantum */
};

/* Limits shared by all queues of a destination. */
struct sched_dest_limits {
	double aggregate_rps;        /* 0 = none */
	unsigned aggregate_burst;    /* >= 1 when aggregate_rps > 0 */
	unsigned aggregate_concurrency; /* 0 = none */
	unsigned weight;             /* >= 1, DRR quantum among dests */
};

/*
 * A new scheduler: at most max_in_flight items dispatched and not done,
 * at most max_queued items waiting in all queues together; learned limits
 * of a queue idle for idle_reset_us are forgotten. NULL on OOM.
 */
struct sched *sched_new(unsigned max_in_flight, unsigned max_queued,
                        int64_t idle_reset_us);

/* Frees everything. Items still queued are simply forgotten. NULL ok. */
void sched_free(struct sched *s);

/*
 * The destination named key (NUL-terminated), created with lim when new.
 * NULL on OOM. Valid until the destination has no queues and is collected
 * by sched_collect().
 */
struct sched_dest *sched_dest_get(struct sched *s, const char *key,
                                  const struct sched_dest_limits *lim);

/*
 * The queue of d with the given key (key_len <= SCHED_KEY_MAX bytes),
 * created with lim when new. NULL on OOM. A queue lives while it has
 * waiting or in-flight items, then until sched_collect() drops it.
 */
struct sched_queue *sched_queue_get(struct sched *s, struct sched_dest *d,
                                    const void *key, size_t key_len,
                                    const struct sched_limits *lim);

/* The destination named key, or NULL: nothing is created. */
struct sched_dest *sched_dest_find(const struct sched *s, const char *key);

/* The queue of d with that key, or NULL: nothing is created. */
struct sched_queue *sched_queue_find(const struct sched *s,
                                     struct sched_dest *d, const void *key,
                                     size_t key_len);

/*
 * Appends it to q. -ENOBUFS when q or the whole scheduler is full (the
 * item is not queued).
 */
int sched_enqueue(struct sched *s, struct sched_queue *q,
                  struct sched_item *it, int64_t now);

/*
 * Puts a dispatched item back at the head of its queue (a retry), not to
 * be dispatched before not_before. Its in-flight slot is released as by
 * sched_done(). Never refused: a retry was already admitted.
 */
void sched_requeue(struct sched *s, struct sched_item *it,
                   int64_t not_before, int64_t now);

/* Takes a waiting item out of its queue (client gone, deadline). */
void sched_remove(struct sched *s, struct sched_item *it, int64_t now);

/*
 * The next item to dispatch now, or NULL when nothing may go now. The
 * item leaves its queue and counts as in flight for its queue, its
 * destination and the scheduler until sched_done() or sched_requeue().
 */
struct sched_item *sched_next(struct sched *s, int64_t now);

/* A dispatched item of q finished: frees its in-flight slots. */
void sched_done(struct sched *s, struct sched_queue *q, int64_t now);

/*
 * When sched_next() may next return something that it would not return
 * now, if nothing else happens: the earliest timer, or INT64_MAX.
 */
int64_t sched_next_wakeup(const struct sched *s);

/* Pauses q until the given time (429 + Retry-After and friends). */
void sched_pause(struct sched *s, struct sched_queue *q, int64_t until,
                 int64_t now);

/* Where a queue's rate comes from, for /queues. */
enum sched_rate_source {
	SCHED_RATE_CONFIGURED,       /* the configuration */
	SCHED_RATE_EZTHROTTLE,       /* X-EZTHROTTLE-RPS */
	SCHED_RATE_QUOTA,            /* a quota the API stated */
	SCHED_RATE_PROBE,            /* found by probing (adaptive mode) */
	SCHED_RATE_BACKOFF,          /* cut after a pushback (adaptive) */
};
#define SCHED_RATE_SOURCES (SCHED_RATE_BACKOFF + 1)

/*
 * Changes of a queue's (or, with scope destination, a destination's)
 * learned rate, by the source of the new one, since the start.
 */
void sched_rate_changes(const struct sched *s,
                        uint64_t ret[SCHED_RATE_SOURCES]);

/* A pointer the owner keeps with a destination (NULL at first). */
void sched_dest_set_user(struct sched_dest *d, void *user);
void *sched_dest_user(const struct sched_dest *d);

/* "configured", "ezthrottle", "quota", "probe" or "backoff". */
const char *sched_rate_source_name(enum sched_rate_source src);

/*
 * Learned limits of a queue or of a destination (then they apply to all
 * its queues that learned nothing), from src. rps <= 0 or concurrency 0
 * leaves that value as it is; a rate above the queue's max_rps is cut to
 * it. Learned values are forgotten only by idle_reset. They take effect
 * for the next dispatch.
 */
void sched_learn_queue(struct sched *s, struct sched_queue *q, double rps,
                       enum sched_rate_source src, unsigned concurrency,
                       int64_t now);
void sched_learn_dest(struct sched *s, struct sched_dest *d, double rps,
                      enum sched_rate_source src, unsigned concurrency,
                      int64_t now);

/*
 * Frugal and adaptive mode (rate_ctl.h): the bounds of their rates, the
 * probe interval, and how long frugal stays paced without a pushback.
 * Times in us. Until set: 5 s, idle_reset, [0.1, 10000].
 */
void sched_set_rate_ctl(struct sched *s, const struct rate_ctl_cfg *cfg);

/*
 * Puts q in mode m (a request's X-EZTHROTTLE-MODE); its rate starts
 * over from the configured one when the mode changes.
 */
void sched_set_mode(struct sched *s, struct sched_queue *q, enum rate_mode m,
                    int64_t now);

/* q's API took one of its requests (a 2xx or 3xx answer) at now. */
void sched_took(struct sched_queue *q, int64_t now);

/*
 * q's API pushed back at now: a 429 or 503 (bare: with no usable
 * Retry-After nor quota). Frugal mode paces from any pushback, adaptive
 * mode cuts its rate on a bare one; paced mode ignores both (its pause
 * comes from sched_pause).
 */
void sched_pushback(struct sched *s, struct sched_queue *q, bool bare,
                    int64_t now);

/*
 * Time passes for the queues in frugal or adaptive mode: adaptive ones
 * that waited for their rate since the last tick (not for a pause or a
 * concurrency cap) probe up, frugal ones long without a
 * pushback go unpaced. About once a second; cost in those queues.
 */
void sched_modes_tick(struct sched *s, int64_t now);

/*
 * A quota an API stated in its answers, kept for /queues. Members -1
 * when not stated; reset_at in the scheduler's clock (us).
 */
struct sched_quota {
	int64_t limit, remaining, window_ms;
	int64_t reset_at;
};

/*
 * Keeps the request and token quotas q's last answer stated (NULL, or a
 * quota with neither limit nor remaining: the older one stays).
 */
void sched_note_quotas(struct sched_queue *q,
                       const struct sched_quota *requests,
                       const struct sched_quota *tokens);

/*
 * Takes the request quota of an answer that came at now, and says when
 * the quota's window ends at the latest: an answer that left limit - 1
 * opened it no later than it came, so it ends within window_us of that,
 * whether the API counts in fixed windows or a sliding log. Trusted only
 * while every answer since stepped remaining down by one, so answers
 * that crossed on the way, or another client on the same quota, fall
 * back to the reset the API stated. -1: not known.
 */
int64_t sched_quota_window_end(struct sched_queue *q, int64_t limit,
                               int64_t remaining, int64_t window_us,
                               int64_t now);

/*
 * How long an item enqueued on q now would wait, in us, by q's rate and
 * pause alone: the items ahead of it go one interval apart from when the
 * next may go. A prediction: concurrency caps, the destination's shares
 * and what is learned meanwhile are not counted. O(1).
 */
int64_t sched_predict_wait(const struct sched_queue *q, int64_t now);

/*
 * A configuration reload. sched_each() calls fn for every destination
 * (q NULL), then for each of its queues; fn may change their limits with
 * the functions below, which never drop nor reorder a waiting item.
 */
typedef void sched_each_fn(struct sched *s, struct sched_dest *d,
                           struct sched_queue *q, void *arg);
void sched_each(struct sched *s, sched_each_fn *fn, void *arg);

/* The key a destination was made with; a queue's key bytes and length. */
const char *sched_dest_key(const struct sched_dest *d);
const unsigned char *sched_queue_key(const struct sched_queue *q,
                                     size_t *len);

/* Replaces a destination's configured limits. */
void sched_dest_set_limits(struct sched *s, struct sched_dest *d,
                           const struct sched_dest_limits *lim, int64_t now);

/*
 * Forgets what q (and with dest_too its destination) learned: rates,
 * concurrency, what its mode found.
 */
void sched_forget(struct sched *s, struct sched_queue *q, bool dest_too,
                  int64_t now);

/* The daemon-wide cap on waiting items and idle_reset (us). */
void sched_set_caps(struct sched *s, unsigned max_queued, int64_t idle_reset);

/* Replaces the configured limits (configuration reload). */
void sched_queue_set_limits(struct sched *s, struct sched_queue *q,
                            const struct sched_limits *lim, int64_t now);

/*
 * Frees queues idle for SCHED_QUIET_US whose state is blank (nothing
 * learned, no pause, pacing in the past, nor their destination's if they
 * are its last queue), queues idle for idle_reset_us whatever they hold
 * (a pause is kept until it ends), and destinations left without queues.
 * Cost proportional to the idle queues it looks at, each once.
 */
void sched_collect(struct sched *s, int64_t now);

/* The destination q belongs to. */
struct sched_dest *sched_queue_dest(const struct sched_queue *q);

/* Counts. */
unsigned sched_in_flight(const struct sched *s);
unsigned sched_queued(const struct sched *s);
size_t sched_n_queues(const struct sched *s);

/* A read-only view of a queue, for /queues. */
struct sched_queue_info {
	uint64_t id;                 /* creation order, > 0, never reused */
	const char *dest;            /* the destination's key */
	void *dest_user;             /* sched_dest_set_user()'s */
	const unsigned char *key;
	size_t key_len;
	double rps, rps_learned;     /* configured; learned (0: none) */
	double rate;                 /* in force; 0: unpaced (frugal) */
	enum sched_rate_source rate_source; /* of rate */
	enum rate_mode mode;
	unsigned concurrency, concurrency_learned;
	unsigned burst, weight;
	unsigned waiting, in_flight;
	int64_t paused_until;        /* us, 0 = not paused */
	int64_t last_active;         /* us */
	struct sched_quota requests, tokens; /* stated by its answers */
};

/* Calls fn for every queue. */
void sched_foreach(const struct sched *s,
                   void (*fn)(const struct sched_queue_info *, void *),
                   void *arg);

/*
 * Calls fn for at most limit queues with an id above after, in id order.
 * True when more queues follow the last one given. O(log n + limit),
 * plus the freed slots not yet compacted that it steps over (at most a
 * quarter of them).
 */
bool sched_page(const struct sched *s, uint64_t after, size_t limit,
                void (*fn)(const struct sched_queue_info *, void *),
                void *arg);

#endif

/*
 * sched_int.h - private to the scheduler's files (sched*.c): its objects
 * and the steps one file takes for another. Nothing else includes it.
 * Include sched.h first: the objects embed its limits (this header does
 * not include it, so the family has no include cycle).
 */
#ifndef SLUICE_SCHED_INT_H
#define SLUICE_SCHED_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uthash.h>

#include "heap.h"
#include "rate_ctl.h"

enum state { S_IDLE, S_READY, S_TIMER, S_CAPPED };

/*
 * Idle queues: QUIET for their first SCHED_QUIET_US, then freed at once if
 * they carry nothing (queue_blank()), else KEPT until idle_reset.
 */
enum idle_list { I_NONE, I_QUIET, I_KEPT };

/* A queue in creation order; q NULL: freed (a hole until compaction). */
struct slot {
	uint64_t id;
	struct sched_queue *q;
};

struct timer {
	struct heap_node node;
	bool is_dest;
};

struct qkey {
	struct sched_dest *d;
	size_t len;
	unsigned char bytes[SCHED_KEY_MAX];
};

struct sched_queue {
	struct qkey key;             /* zero-padded: hashed whole */
	UT_hash_handle hh;
	struct sched_dest *d;
	struct sched_limits lim;
	double rps_learned;          /* 0 = none */
	enum sched_rate_source rps_source; /* of rps_learned */
	unsigned conc_learned;       /* 0 = none */
	struct sched_quota quota_req, quota_tok; /* for /queues */
	int64_t win_open;            /* us: an answer left limit - 1 */
	int64_t win_seen;            /* answers since, in step; 0: none */
	struct rate_ctl ctl;         /* its mode and the rate it found */
	bool rate_bound;             /* waited for its rate since the tick */
	struct sched_queue *mprev, *mnext; /* sched.moded: not paced */

	/*
	 * FIFO with an explicit tail (not utlist: its append reads the
	 * head to find the tail, one more cache miss per arrival when
	 * queues are many).
	 */
	struct sched_item *head, *tail;
	unsigned n_waiting;
	unsigned in_flight;
	int64_t tat;                 /* GCRA theoretical arrival, us */
	int64_t paused_until;        /* us */
	int64_t last_active;         /* us */

	enum state state;
	struct timer timer;
	unsigned deficit;
	struct sched_queue *rprev, *rnext; /* destination's ring */
	struct sched_queue *iprev, *inext; /* scheduler's idle lists */
	enum idle_list idle;         /* which one, if any */
	uint64_t id;                 /* creation order, for /queues pages */
	size_t slot;                 /* index in sched.slots */
	struct sched_queue *dprev, *dnext; /* all queues of the dest */
};

struct sched_dest {
	char *key;
	void *user;                  /* the owner's */
	UT_hash_handle hh;
	struct sched_dest_limits lim;
	double rps_learned;
	enum sched_rate_source rps_source;
	unsigned conc_learned;
	size_t n_queues;
	struct sched_queue *queues;  /* utlist DL on dprev, dnext */
	int64_t last_active;         /* us */

	unsigned agg_in_flight;
	int64_t agg_tat;             /* us */
	unsigned n_waiting;          /* items waiting in all its queues */

	enum state state;
	struct timer timer;
	unsigned deficit;
	struct sched_queue *ring;    /* ready queues; head has the turn */
	struct sched_dest *rprev, *rnext; /* global ring */
};

struct sched {
	unsigned max_in_flight;
	unsigned max_queued;
	int64_t idle_reset;          /* us */
	unsigned in_flight;
	unsigned n_waiting;
	size_t n_queues;

	struct sched_dest *dests;    /* hash by key */
	struct sched_queue *queues;  /* hash by qkey */
	struct sched_dest *ring;     /* ready destinations */
	struct heap timers;
	/* Idle queues, each list by last_active (head, tail: as items). */
	struct sched_queue *quiet_head, *quiet_tail;
	struct sched_queue *idle_head, *idle_tail; /* kept */
	struct sched_queue *moded;   /* queues not paced (utlist DL) */
	struct rate_ctl_cfg ctl_cfg;
	/* Every queue by id, ascending, for /queues pages. */
	struct slot *slots;
	size_t n_slots, cap_slots, n_holes;
	uint64_t next_id;
	uint64_t rate_changes[SCHED_RATE_SOURCES];
};

/* --- limits in force --- */

/* q's rate if its destination had learned d_rps (0: nothing). */
static inline double sched_q_rps_with(const struct sched_queue *q,
                                      double d_rps)
{
	if (q->rps_learned > 0)
		return q->rps_learned;
	if (d_rps > 0)
		return d_rps;
	/* What the API says beats what its mode finds; 0: unpaced. */
	if (q->ctl.mode != RATE_PACED)
		return q->ctl.rate;
	return q->lim.rps;
}

static inline double sched_q_rps(const struct sched_queue *q)
{
	return sched_q_rps_with(q, q->d->rps_learned);
}

/* Where q's rate comes from when it learned none: its mode's doing. */
static inline enum sched_rate_source sched_ctl_source(
	const struct sched_queue *q)
{
	if (q->ctl.mode == RATE_PACED || q->ctl.rate == 0)
		return SCHED_RATE_CONFIGURED;
	/* Frugal paces only after a pushback. */
	if (q->ctl.mode == RATE_FRUGAL)
		return SCHED_RATE_BACKOFF;
	if (q->ctl.rate == q->lim.rps)
		return SCHED_RATE_CONFIGURED;
	return q->ctl.rate > q->lim.rps ? SCHED_RATE_PROBE
	                                : SCHED_RATE_BACKOFF;
}

static inline unsigned sched_q_conc(const struct sched_queue *q)
{
	if (q->conc_learned)
		return q->conc_learned;
	if (q->d->conc_learned)
		return q->d->conc_learned;
	return q->lim.concurrency;
}

/* --- sched.c --- */

/*
 * Computes q's state from its numbers and moves it between ring, heap and
 * nowhere; then its destination, whose ring q may have left.
 */
void sched_q_eval(struct sched *s, struct sched_queue *q, int64_t now);

/* The same for a destination in the global ring. */
void sched_d_eval(struct sched *s, struct sched_dest *d, int64_t now);

/* Takes q out of its destination's ring or the heap, before it is freed. */
void sched_q_detach(struct sched *s, struct sched_queue *q);

/* Takes d out of the global ring or the heap, before it is freed. */
void sched_d_detach(struct sched *s, struct sched_dest *d);

/* q's rate went from old_rps to sched_q_rps(q): carries its debt over. */
void sched_gcra_rescale(struct sched_queue *q, double old_rps, int64_t now);

/* Forgets the learned limits of q (and its destination) idle too long. */
void sched_reset_idle(struct sched *s, struct sched_queue *q, int64_t now);

/* q has nothing waiting or in flight: puts it on the quiet list. */
void sched_idle_add(struct sched *s, struct sched_queue *q);

/* Puts q at the end of an idle list (it is on none). */
void sched_idle_append(struct sched *s, struct sched_queue *q,
                       enum idle_list which);

/* Takes q off whichever idle list it is on. */
void sched_idle_remove(struct sched *s, struct sched_queue *q);

/* --- sched_limits.c --- */

/* Invalid (zero) limits taken as the least valid ones. */
void sched_limits_fix(struct sched_limits *l);

#endif

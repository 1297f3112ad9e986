/*
 * sched.c - GCRA pacing, concurrency caps, deficit round robin.
 *
 * States. A queue is IDLE (nothing waiting), READY (in its destination's
 * ring: may dispatch now as far as its own limits go), TIMER (in the heap:
 * rate, pause or a retry's not-before time says later) or CAPPED (at its
 * concurrency cap: sched_done() re-evaluates it). A destination is IDLE
 * (no ready queue), READY (in the global ring), TIMER (its aggregate rate
 * says later) or CAPPED (aggregate concurrency). sched_q_eval() and
 * sched_d_eval() compute the state from scratch and move the object; every
 * event calls them for what it touched, so the structures never drift.
 *
 * DRR with unit cost: the head of a ring gets a fresh quantum (its weight)
 * when its deficit is 0, spends one per dispatch, and the ring turns when
 * the deficit is spent or the head leaves. A ready queue therefore waits
 * at most one round of the others' quanta.
 *
 * Calls go one way in the family: sched_table.c (the objects, their
 * tables and collection) and sched_limits.c (limits that change under a
 * live queue: learned, paused, reconfigured) call this file, which calls
 * neither. The idle lists and forgetting learned limits after idle_reset
 * are here, since dispatch is what makes a queue idle.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <utlist.h>

#include "heap.h"
#include "sched.h"
#include "sched_int.h"

#define CONTAINER(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))

/* --- pacing (GCRA) --- */

/* GCRA emission interval in us, rounded up so pacing never runs fast. */
static int64_t interval(double rps)
{
	double t;

	if (rps <= 0)
		return 0; /* unpaced (frugal mode) */
	t = ceil(1e6 / rps);

	return t < 1 ? 1 : t > 1e15 ? (int64_t)1e15 : (int64_t)t;
}

/* Earliest time a dispatch conforms: TAT minus the burst tolerance. */
static int64_t gcra_allow(int64_t tat, double rps, unsigned burst)
{
	int64_t t = interval(rps);

	return tat - t * (int64_t)(burst > 0 ? burst - 1 : 0);
}

/*
 * TAT after a dispatch at now. The max() keeps the promise that no window
 * of length W holds more than rps * W + burst dispatches, and no rule that
 * keeps it can make up more of a late dispatch's lateness.
 *
 * For dispatches t_1 <= ... <= t_n, burst b and I = 1e6 / rps <= T (the
 * interval), the promise is t_k - t_j >= (k - j + 1 - b) I for all j < k:
 * the fullest windows begin and end at dispatches. Unrolled, the max()
 * makes the TAT before dispatch k the largest of t_j + (k - j) T over
 * j < k (or a rescaled TAT advanced since), and gcra_allow() holds
 * dispatch k until that TAT minus (b - 1) T: the promise for every j at
 * once. A TAT kept below that largest term, to make up lateness, lets
 * dispatch k go before t_j + (k - j + 1 - b) T for the j that gave it:
 * one window too full (T - I, under 1 us an interval, is all the slack). At
 * 1000 req/s, burst 1: a dispatch due at 1000 and made at 1100, the next
 * allowed at 2000 instead of 2100 and made at 2010: two in 910 us.
 *
 * So lateness is made up within the burst's tolerance and lost beyond
 * it: a backlogged queue dispatches as soon as it has one token, and
 * lateness refills its bucket up to b, so (b - 1) T of it costs nothing.
 * With burst 1 every late us is lost and a backlog runs at 1 / (T + mean
 * lateness); only dispatching less late raises that. The max() also caps
 * what an idle queue banks at b dispatches. A destination's agg_tat is
 * the same GCRA at aggregate_rps and aggregate_burst.
 */
static int64_t gcra_advance(int64_t tat, double rps, int64_t now)
{
	return (tat > now ? tat : now) + interval(rps);
}

/*
 * q's rate went from old_rps to sched_q_rps(q). What q still owes (TAT
 * ahead of now) is counted in emission intervals and carried over at the
 * new interval, as a token bucket whose fill rate changes now; otherwise
 * the next dispatch would keep the old spacing and the new rate would
 * only apply to the one after.
 */
void sched_gcra_rescale(struct sched_queue *q, double old_rps, int64_t now)
{
	int64_t t_old = interval(old_rps), t_new = interval(sched_q_rps(q));
	double owed;

	if (t_old == t_new || q->tat <= now || t_old == 0)
		return;
	if (t_new == 0) {
		q->tat = now; /* unpaced: nothing is owed */
		return;
	}
	owed = ceil((double)(q->tat - now) / (double)t_old * (double)t_new);
	q->tat = now + (owed > 1e18 ? (int64_t)1e18 : (int64_t)owed);
}

/* --- rings --- */

/*
 * Moves x, a queue or a destination, from its state to want (!= its
 * state): out of ringp or the timer heap, into the other. One that only
 * waited for its own rate or cap keeps the rest of its quantum and, back
 * in the ring, takes the turn again; otherwise pacing would cost it its
 * turn every time and weights would flatten to 1:1. An emptied one starts
 * afresh (its caller zeroes the deficit), as in DRR. Rings are utlist
 * CDLs on rprev, rnext; the head has the turn.
 */
#define MOVE_STATE(s, ringp, x, want, when)                           \
	do {                                                          \
		if ((x)->state == S_READY)                            \
			CDL_DELETE2(*(ringp), x, rprev, rnext);       \
		else if ((x)->state == S_TIMER)                       \
			heap_remove(&(s)->timers, &(x)->timer.node);  \
		(x)->state = (want);                                  \
		if ((want) == S_READY && (x)->deficit > 0)            \
			CDL_PREPEND2(*(ringp), x, rprev, rnext);      \
		else if ((want) == S_READY)                           \
			CDL_APPEND2(*(ringp), x, rprev, rnext);       \
		else if ((want) == S_TIMER)                           \
			set_timer(s, &(x)->timer, when);              \
	} while (0)

/* --- state evaluation --- */

static void set_timer(struct sched *s, struct timer *t, int64_t when)
{
	if (heap_update(&s->timers, &t->node, when) < 0) {
		/* No memory for the heap: retry at the next event. */
		return;
	}
}

void sched_d_eval(struct sched *s, struct sched_dest *d, int64_t now)
{
	enum state want;
	int64_t when = 0;

	if (!d->ring) {
		want = S_IDLE;
	} else if (d->lim.aggregate_concurrency &&
	           d->agg_in_flight >= d->lim.aggregate_concurrency) {
		want = S_CAPPED;
	} else if (d->lim.aggregate_rps > 0 &&
	           (when = gcra_allow(d->agg_tat, d->lim.aggregate_rps,
	                              d->lim.aggregate_burst)) > now) {
		want = S_TIMER;
	} else {
		want = S_READY;
	}
	/*
	 * Only an emptied destination starts afresh: one whose queues all
	 * wait for their own timers or caps (after every dispatch, with
	 * burst 1) keeps the rest of its quantum, as a queue does.
	 */
	if (want == S_IDLE && d->n_waiting == 0)
		d->deficit = 0;
	if (want == d->state) {
		if (want == S_TIMER && d->timer.node.when != when)
			set_timer(s, &d->timer, when);
		return;
	}
	MOVE_STATE(s, &s->ring, d, want, when);
}

/* Re-evaluates q; then its destination, whose ring q may have left. */
void sched_q_eval(struct sched *s, struct sched_queue *q, int64_t now)
{
	struct sched_dest *d = q->d;
	enum state want;
	int64_t when = 0;

	if (!q->head) {
		want = S_IDLE;
	} else if (q->in_flight >= sched_q_conc(q)) {
		want = S_CAPPED;
	} else {
		when = gcra_allow(q->tat, sched_q_rps(q), q->lim.burst);
		if (q->paused_until > when)
			when = q->paused_until;
		if (q->head->not_before > when)
			when = q->head->not_before;
		want = when > now ? S_TIMER : S_READY;
		/* Held by its rate: what adaptive mode probes on. */
		if (want == S_TIMER && when > q->paused_until &&
		    when > q->head->not_before)
			q->rate_bound = true;
	}
	if (want == S_IDLE)
		q->deficit = 0;
	if (want == q->state) {
		if (want == S_TIMER && q->timer.node.when != when)
			set_timer(s, &q->timer, when);
		return;
	}
	MOVE_STATE(s, &d->ring, q, want, when);
	if (want == S_IDLE)
		sched_idle_add(s, q);
	sched_d_eval(s, d, now);
}

static void fire_timers(struct sched *s, int64_t now)
{
	struct heap_node *n;

	while ((n = heap_top(&s->timers)) && n->when <= now) {
		struct timer *t = CONTAINER(n, struct timer, node);

		heap_pop(&s->timers);
		if (t->is_dest) {
			struct sched_dest *d =
				CONTAINER(t, struct sched_dest, timer);

			d->state = S_IDLE; /* not in the heap any more */
			sched_d_eval(s, d, now);
		} else {
			struct sched_queue *q =
				CONTAINER(t, struct sched_queue, timer);

			q->state = S_IDLE;
			sched_q_eval(s, q, now);
		}
	}
}

/* --- idleness --- */

/* The head of an idle list (utlist DL on iprev, inext). */
void sched_idle_remove(struct sched *s, struct sched_queue *q)
{
	struct sched_queue **head, **tail;

	if (q->idle == I_NONE)
		return;
	head = q->idle == I_QUIET ? &s->quiet_head : &s->idle_head;
	tail = q->idle == I_QUIET ? &s->quiet_tail : &s->idle_tail;
	if (q->iprev)
		q->iprev->inext = q->inext;
	else
		*head = q->inext;
	if (q->inext)
		q->inext->iprev = q->iprev;
	else
		*tail = q->iprev;
	q->iprev = q->inext = NULL;
	q->idle = I_NONE;
}

void sched_idle_append(struct sched *s, struct sched_queue *q,
                       enum idle_list which)
{
	struct sched_queue **head, **tail;

	head = which == I_QUIET ? &s->quiet_head : &s->idle_head;
	tail = which == I_QUIET ? &s->quiet_tail : &s->idle_tail;
	q->iprev = *tail;
	q->inext = NULL;
	if (*tail)
		(*tail)->inext = q;
	else
		*head = q;
	*tail = q;
	q->idle = which;
}

/* q has nothing waiting or in flight: it may be collected later. */
void sched_idle_add(struct sched *s, struct sched_queue *q)
{
	if (q->idle != I_NONE || q->head || q->in_flight)
		return;
	sched_idle_append(s, q, I_QUIET);
}

/* Forget learned limits of a queue (and destination) idle too long. */
void sched_reset_idle(struct sched *s, struct sched_queue *q, int64_t now)
{
	double old_rps = sched_q_rps(q);

	if (q->head || q->in_flight || now - q->last_active < s->idle_reset)
		return;
	q->rps_learned = 0;
	q->rps_source = SCHED_RATE_CONFIGURED;
	q->conc_learned = 0;
	rate_ctl_init(&q->ctl, q->ctl.mode, q->lim.rps, now);
	if (q->d->agg_in_flight == 0 &&
	    now - q->d->last_active >= s->idle_reset) {
		q->d->rps_learned = 0;
		q->d->rps_source = SCHED_RATE_CONFIGURED;
		q->d->conc_learned = 0;
	}
	sched_gcra_rescale(q, old_rps, now);
}

void sched_q_detach(struct sched *s, struct sched_queue *q)
{
	if (q->state == S_READY)
		CDL_DELETE2(q->d->ring, q, rprev, rnext);
	else if (q->state == S_TIMER)
		heap_remove(&s->timers, &q->timer.node);
}

void sched_d_detach(struct sched *s, struct sched_dest *d)
{
	if (d->state == S_READY)
		CDL_DELETE2(s->ring, d, rprev, rnext);
	else if (d->state == S_TIMER)
		heap_remove(&s->timers, &d->timer.node);
}

/* --- items --- */

/* An item joined q (at either end): count it and re-evaluate q. */
static void item_added(struct sched *s, struct sched_queue *q, int64_t now)
{
	q->n_waiting++;
	q->d->n_waiting++;
	s->n_waiting++;
	q->last_active = now;
	sched_idle_remove(s, q);
	sched_q_eval(s, q, now);
}

int sched_enqueue(struct sched *s, struct sched_queue *q,
                  struct sched_item *it, int64_t now)
{
	if (q->n_waiting >= q->lim.max_queued || s->n_waiting >= s->max_queued)
		return -ENOBUFS;
	sched_reset_idle(s, q, now);
	it->q = q;
	it->not_before = 0; /* a new arrival; only retries wait */
	it->next = NULL;
	it->prev = q->tail;
	if (q->tail)
		q->tail->next = it;
	else
		q->head = it;
	q->tail = it;
	item_added(s, q, now);
	return 0;
}

static void unlink_item(struct sched *s, struct sched_queue *q,
                        struct sched_item *it)
{
	if (it->prev)
		it->prev->next = it->next;
	else
		q->head = it->next;
	if (it->next)
		it->next->prev = it->prev;
	else
		q->tail = it->prev;
	it->prev = it->next = NULL;
	q->n_waiting--;
	q->d->n_waiting--;
	s->n_waiting--;
}

void sched_remove(struct sched *s, struct sched_item *it, int64_t now)
{
	struct sched_queue *q = it->q;

	unlink_item(s, q, it);
	q->last_active = now; /* it was not idle until now */
	sched_q_eval(s, q, now);
}

/* Releases one in-flight slot of q at every level; no evaluation. */
static void release_slot(struct sched *s, struct sched_queue *q)
{
	if (q->in_flight)
		q->in_flight--;
	if (q->d->agg_in_flight)
		q->d->agg_in_flight--;
	if (s->in_flight)
		s->in_flight--;
}

void sched_done(struct sched *s, struct sched_queue *q, int64_t now)
{
	release_slot(s, q);
	q->last_active = now;
	q->d->last_active = now;
	sched_q_eval(s, q, now);
	sched_d_eval(s, q->d, now); /* q_eval may not have: q's state held */
	sched_idle_add(s, q);
}

void sched_requeue(struct sched *s, struct sched_item *it,
                   int64_t not_before, int64_t now)
{
	struct sched_queue *q = it->q;

	release_slot(s, q);
	it->not_before = not_before;
	it->prev = NULL;
	it->next = q->head;
	if (q->head)
		q->head->prev = it;
	else
		q->tail = it;
	q->head = it;
	item_added(s, q, now);
	sched_d_eval(s, q->d, now);
}

struct sched_item *sched_next(struct sched *s, int64_t now)
{
	struct sched_dest *d;
	struct sched_queue *q;
	struct sched_item *it;

	fire_timers(s, now);
	if (s->in_flight >= s->max_in_flight || !s->ring)
		return NULL;
	d = s->ring;
	q = d->ring;
	if (d->deficit == 0)
		d->deficit = d->lim.weight;
	if (q->deficit == 0)
		q->deficit = q->lim.weight;

	it = q->head;
	unlink_item(s, q, it);
	it->not_before = 0;
	q->in_flight++;
	d->agg_in_flight++;
	s->in_flight++;
	q->tat = gcra_advance(q->tat, sched_q_rps(q), now);
	if (d->lim.aggregate_rps > 0)
		d->agg_tat = gcra_advance(d->agg_tat, d->lim.aggregate_rps,
		                          now);
	q->last_active = now;
	d->last_active = now;
	q->deficit--;
	d->deficit--;

	/* The turn passes when the quantum is spent (or q left the ring). */
	sched_q_eval(s, q, now);
	if (q->state == S_READY && q->deficit == 0 && d->ring == q)
		d->ring = q->rnext;
	sched_d_eval(s, d, now);
	if (d->state == S_READY && d->deficit == 0 && s->ring == d)
		s->ring = d->rnext;
	return it;
}

int64_t sched_next_wakeup(const struct sched *s)
{
	struct heap_node *n = heap_top(&s->timers);

	return n ? n->when : INT64_MAX;
}

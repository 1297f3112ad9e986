/*
 * curlloop.c - one thread around a libcurl multi handle.
 *
 * curl_multi_poll() counts in milliseconds, which would make every paced
 * dispatch up to 1 ms late, and strict pacing cannot make up lost time; so
 * the nearest deadline also arms a timerfd, polled with curl's sockets,
 * that fires on the microsecond. curl_multi_wakeup() interrupts the poll
 * when a message arrives; a non-empty inbox already has one on its way.
 *
 * A timerfd still fires some tens of µs late (47 µs on average on a
 * 2-core VM), and at burst 1 every µs a dispatch is late is rate lost for
 * good: the next may only follow a whole interval later (bench/THROTTLE.md).
 * So a precise loop (the engine's) arms the timer for round()'s deadline
 * early by the lateness it has been seeing, and spins on the clock for the
 * rest, then runs round() first. Spinning is capped at SPIN_BUDGET_US per
 * second, so many fast queues cost at most that much of a core.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "clock.h"
#include "curlloop.h"
#include "thread_name.h"

#define POLL_MAX_MS 1000
#define SPIN_MAX_US 200          /* never arm earlier than this */
#define SPIN_BUDGET_US 50000     /* spinning per second: 5 % of a core */

struct curlloop {
	const struct curlloop_ops *ops;
	void *arg;
	CURLM *multi;
	pthread_t thread;
	bool started;
	bool stopped;                /* stopped() was called */

	pthread_mutex_t lock;        /* guards the inbox and stopping */
	struct curlloop_msg *head, *tail;
	atomic_bool stopping;

	/* The loop's thread only. */
	struct heap timers;
	int tfd;                     /* timerfd; -1: poll in milliseconds */
	int64_t tfd_when;            /* us it is armed for; 0: disarmed */
	bool precise;                /* spin to round()'s deadlines */
	char name[16];               /* the thread's */
	int64_t late_avg;            /* timerfd lateness, moving average, us */
	int64_t spin_since;          /* start of the budget's second */
	int64_t spin_used;           /* us spun since then */
	atomic_llong spun;           /* us spun since the start */
};

static void take_inbox(struct curlloop *l)
{
	struct curlloop_msg *m;

	pthread_mutex_lock(&l->lock);
	m = l->head;
	l->head = l->tail = NULL;
	pthread_mutex_unlock(&l->lock);
	if (m)
		l->ops->inbox(l->arg, m);
}

static void fire_timers(struct curlloop *l)
{
	int64_t now = clock_now_us();
	struct heap_node *n;

	while ((n = heap_top(&l->timers)) && n->when <= now) {
		heap_pop(&l->timers);
		l->ops->timer(l->arg, n);
	}
}

static void read_done(struct curlloop *l)
{
	CURLMsg *m;
	int left;

	while ((m = curl_multi_info_read(l->multi, &left)))
		if (m->msg == CURLMSG_DONE)
			l->ops->done(l->arg, m->easy_handle, m->data.result);
}

/* How early to arm for a deadline that is spun to; 0: not at all. */
static int64_t spin_margin(struct curlloop *l, int64_t now)
{
	int64_t m;

	if (now - l->spin_since >= 1000000) {
		l->spin_since = now;
		l->spin_used = 0;
	}
	if (l->spin_used >= SPIN_BUDGET_US)
		return 0;
	m = l->late_avg + l->late_avg / 2 + 5;
	return m < SPIN_MAX_US ? m : SPIN_MAX_US;
}

/*
 * Waits for a socket, a wakeup, or next (monotonic us): round()'s
 * deadline. True when the loop spun to that deadline: round() is due now.
 */
static bool poll_until(struct curlloop *l, int64_t next)
{
	struct curl_waitfd wfd = { .fd = l->tfd, .events = CURL_WAIT_POLLIN };
	struct heap_node *top = heap_top(&l->timers);
	int64_t now = clock_now_us();
	int64_t armed, wake;
	uint64_t expirations;
	int timeout = POLL_MAX_MS;
	bool spin = false;

	if (top && top->when < next) {
		next = top->when;
	} else if (l->precise && next != INT64_MAX && l->tfd >= 0 &&
	           next > now) {
		int64_t m = spin_margin(l, now);

		spin = m > 0;
		wake = next - m;
	}
	if (!spin)
		wake = next;
	if (wake <= now) {
		timeout = 0;
	} else if (wake != INT64_MAX && l->tfd >= 0) {
		/*
		 * Re-armed only to fire sooner. A deadline that moved later
		 * (the earliest request finished) leaves the timer early: one
		 * spare round then, instead of a timerfd_settime() on every
		 * round that changes the heap's top.
		 */
		if (l->tfd_when == 0 || wake < l->tfd_when) {
			struct itimerspec its = { 0 };

			its.it_value.tv_sec = wake / 1000000;
			its.it_value.tv_nsec = (wake % 1000000) * 1000;
			if (timerfd_settime(l->tfd, TFD_TIMER_ABSTIME, &its,
			                    NULL) == 0)
				l->tfd_when = wake;
		}
	} else if (wake - now < (int64_t)POLL_MAX_MS * 1000) {
		timeout = (int)((wake - now + 999) / 1000);
	}
	curl_multi_poll(l->multi, l->tfd >= 0 ? &wfd : NULL,
	                l->tfd >= 0 ? 1 : 0, timeout, NULL);
	now = clock_now_us();
	armed = l->tfd_when;
	if (l->tfd >= 0 && (wfd.revents & CURL_WAIT_POLLIN) &&
	    read(l->tfd, &expirations, sizeof(expirations)) > 0) {
		l->tfd_when = 0;
		if (armed && now >= armed)
			l->late_avg += (now - armed - l->late_avg) / 8;
	}
	if (!spin || now < wake || now >= next)
		return spin && now >= next;
	armed = now;
	while ((now = clock_now_us()) < next)
		;
	l->spin_used += now - armed;
	atomic_fetch_add(&l->spun, now - armed);
	return true;
}

/* The last messages, then the owner's stopped(). */
static void finish(struct curlloop *l)
{
	take_inbox(l);
	l->stopped = true;
	l->ops->stopped(l->arg);
}

static void *loop_main(void *arg)
{
	struct curlloop *l = arg;
	int64_t next = 0;
	int still;

	if (l->name[0])
		thread_name(l->name);
	for (;;) {
		if (poll_until(l, next))
			l->ops->round(l->arg);
		take_inbox(l);
		fire_timers(l);
		curl_multi_perform(l->multi, &still);
		read_done(l);
		next = l->ops->round(l->arg);
		if (atomic_load(&l->stopping))
			break;
	}
	finish(l);
	return NULL;
}

struct curlloop *curlloop_new(const struct curlloop_ops *ops, void *arg,
                              long maxconnects)
{
	struct curlloop *l = calloc(1, sizeof(*l));

	if (!l)
		return NULL;
	l->ops = ops;
	l->arg = arg;
	pthread_mutex_init(&l->lock, NULL);
	l->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	l->multi = curl_multi_init();
	if (!l->multi) {
		l->stopped = true; /* nothing to tell the owner */
		curlloop_free(l);
		return NULL;
	}
	curl_multi_setopt(l->multi, CURLMOPT_MAXCONNECTS, maxconnects);
	return l;
}

void curlloop_set_name(struct curlloop *l, const char *name)
{
	snprintf(l->name, sizeof(l->name), "%s", name);
}

void curlloop_precise(struct curlloop *l)
{
	l->precise = true;
}

int64_t curlloop_spun_us(struct curlloop *l)
{
	return atomic_load(&l->spun);
}

int curlloop_start(struct curlloop *l)
{
	int r = pthread_create(&l->thread, NULL, loop_main, l);

	if (r)
		return -r;
	l->started = true;
	return 0;
}

int curlloop_post(struct curlloop *l, struct curlloop_msg *m)
{
	bool wake;

	m->next = NULL;
	pthread_mutex_lock(&l->lock);
	if (atomic_load(&l->stopping)) {
		pthread_mutex_unlock(&l->lock);
		return -ESHUTDOWN;
	}
	wake = !l->head;
	if (l->tail)
		l->tail->next = m;
	else
		l->head = m;
	l->tail = m;
	pthread_mutex_unlock(&l->lock);
	if (wake)
		curl_multi_wakeup(l->multi);
	return 0;
}

void curlloop_wake(struct curlloop *l)
{
	curl_multi_wakeup(l->multi);
}

void curlloop_stop(struct curlloop *l)
{
	pthread_mutex_lock(&l->lock);
	atomic_store(&l->stopping, true);
	pthread_mutex_unlock(&l->lock);
	if (l->started) {
		curl_multi_wakeup(l->multi);
		pthread_join(l->thread, NULL);
		l->started = false;
	}
	if (!l->stopped)
		finish(l);
}

void curlloop_free(struct curlloop *l)
{
	if (!l)
		return;
	curlloop_stop(l);
	if (l->multi)
		curl_multi_cleanup(l->multi);
	heap_done(&l->timers);
	if (l->tfd >= 0)
		close(l->tfd);
	pthread_mutex_destroy(&l->lock);
	free(l);
}

int curlloop_add(struct curlloop *l, CURL *easy)
{
	CURLMcode rc = curl_multi_add_handle(l->multi, easy);

	if (rc == CURLM_OK)
		return 0;
	return rc == CURLM_OUT_OF_MEMORY ? -ENOMEM : -EINVAL;
}

void curlloop_remove(struct curlloop *l, CURL *easy)
{
	curl_multi_remove_handle(l->multi, easy);
}

int curlloop_timer_add(struct curlloop *l, struct heap_node *n, int64_t when)
{
	return heap_push(&l->timers, n, when);
}

void curlloop_timer_del(struct curlloop *l, struct heap_node *n)
{
	heap_remove(&l->timers, n);
}

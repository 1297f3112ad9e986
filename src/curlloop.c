/*
 * curlloop.c - one thread around a libcurl multi handle.
 *
 * curl's multi socket interface: curl says which of its sockets to watch
 * for what (CURLMOPT_SOCKETFUNCTION) and when to call it back
 * (CURLMOPT_TIMERFUNCTION); they sit in one epoll set with a timerfd and
 * an eventfd, so a round costs O(ready sockets), not O(transfers) as
 * curl_multi_poll()'s poll(2) over all of them did. The set counts in
 * milliseconds, which would make every paced dispatch up to 1 ms late,
 * and strict pacing cannot make up lost time; so the nearest deadline also
 * arms the timerfd, which fires on the microsecond. A message wakes the
 * loop through the eventfd; a non-empty inbox already has one on its way.
 *
 * A timerfd still fires some tens of µs late (47 µs on average on a
 * 2-core VM), and at burst 1 every µs a dispatch is late is rate lost for
 * good: the next may only follow a whole interval later (bench/THROTTLE.md).
 * So a precise loop (the engine's) arms the timer for round()'s deadline
 * early by the lateness it has been seeing, and spins on the clock for the
 * rest, then runs round() first. Spinning is capped at SPIN_BUDGET_US per
 * second, so many fast queues cost at most that much of a core.
 *
 * A guest's fds share the epoll set. An event's data says whose: a
 * guest's struct curlloop_watch pointer (aligned, so its low bit is 0), or
 * one of the loop's own fds (curl's sockets, the timerfd, the eventfd) as
 * fd << 1 | 1.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "clock.h"
#include "curlloop.h"
#include "thread_name.h"

#define POLL_MAX_MS 1000
#define EVENTS_MAX 64
#define SPIN_MAX_US 200          /* never arm earlier than this */
#define SPIN_BUDGET_US 50000     /* spinning per second: 5 % of a core */

struct curlloop {
	const struct curlloop_ops *ops;
	void *arg;
	CURLM *multi;
	pthread_t thread;
	bool started;
	bool stopped;                /* stopped() was called */

	pthread_mutex_t lock;        /* guards the inbox, calls, stopping */
	pthread_cond_t cond;         /* a call ran, stopped, thread ended */
	struct curlloop_msg *head, *tail;
	struct call *calls;          /* curlloop_call()s to run */
	atomic_bool stopping;
	atomic_bool exiting;         /* curlloop_free(): end, guest or not */
	bool running;                /* the thread runs; under lock */

	int efd;                     /* eventfd: a post or a wake */

	/* The loop's thread only. */
	int ep;                      /* epoll: curl's sockets, tfd, efd */
	int64_t curl_due;            /* us curl wants its timeout call; -1 */
	struct epoll_event ev[EVENTS_MAX]; /* the last wait's: curl's */
	int n_ev;
	struct epoll_event wev[EVENTS_MAX]; /* and the guest's */
	int n_wev;
	bool soon;                   /* posted from the loop: do not wait */
	struct {
		int64_t (*fn)(void *arg);
		void *arg;
	} tails[CURLLOOP_TAILS];     /* the guests' */
	unsigned n_tails;
	struct heap timers;
	int tfd;                     /* timerfd; -1: wait in milliseconds */
	int64_t tfd_when;            /* us it is armed for; 0: disarmed */
	bool precise;                /* spin to round()'s deadlines */
	char name[16];               /* the thread's */
	int64_t late_avg;            /* timerfd lateness, moving average, us */
	int64_t spin_since;          /* start of the budget's second */
	int64_t spin_used;           /* us spun since then */
	atomic_llong spun;           /* us spun since the start */
};

struct call {
	int (*fn)(void *arg);
	void *arg;
	int ret;
	bool done;
	struct call *next;
};

static __thread struct curlloop *current; /* the thread's loop */

static uint64_t own_fd(int fd)
{
	return (uint64_t)fd << 1 | 1;
}

static void take_inbox(struct curlloop *l)
{
	struct curlloop_msg *m;

	l->soon = false;
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

/* Arms the timerfd for when, unless it fires sooner already. */
static void arm(struct curlloop *l, int64_t when)
{
	struct itimerspec its = { 0 };

	/*
	 * Re-armed only to fire sooner. A deadline that moved later (the
	 * earliest request finished) leaves the timer early: one spare round
	 * then, instead of a timerfd_settime() on every round that changes
	 * the heap's top.
	 */
	if (l->tfd_when != 0 && when >= l->tfd_when)
		return;
	its.it_value.tv_sec = when / 1000000;
	its.it_value.tv_nsec = (when % 1000000) * 1000;
	if (timerfd_settime(l->tfd, TFD_TIMER_ABSTIME, &its, NULL) == 0)
		l->tfd_when = when;
}

/*
 * The ready fds of the last wait: ours read, curl's left in l->ev, the
 * guest's moved to l->wev.
 */
static void take_events(struct curlloop *l, int64_t now)
{
	uint64_t v;
	int i, kept = 0;

	l->n_wev = 0;
	for (i = 0; i < l->n_ev; i++) {
		int fd = (int)(l->ev[i].data.u64 >> 1);

		if (!(l->ev[i].data.u64 & 1)) {
			l->wev[l->n_wev++] = l->ev[i];
		} else if (fd == l->efd) {
			if (read(l->efd, &v, sizeof(v)) < 0)
				continue; /* EAGAIN: drained already */
		} else if (fd == l->tfd) {
			int64_t armed = l->tfd_when;

			if (read(l->tfd, &v, sizeof(v)) > 0) {
				l->tfd_when = 0;
				if (armed && now >= armed)
					l->late_avg += (now - armed -
					                l->late_avg) / 8;
			}
		} else {
			l->ev[kept++] = l->ev[i];
		}
	}
	l->n_ev = kept;
}

/*
 * Waits for a socket, a wakeup, next (monotonic us): round()'s deadline,
 * or other: the guest's (not spun to). True when the loop spun to next:
 * round() is due now.
 */
static bool poll_until(struct curlloop *l, int64_t next, int64_t other)
{
	struct heap_node *top = heap_top(&l->timers);
	int64_t now = clock_now_us();
	int64_t spun_from, wake, ms_wake = INT64_MAX;
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
	/* curl's own timeouts count in milliseconds, and so do the guest's. */
	if (l->curl_due >= 0 && l->curl_due < wake) {
		ms_wake = l->curl_due;
		spin = false;
	}
	if (other < wake && other < ms_wake) {
		ms_wake = other;
		spin = false;
	}
	if (wake <= now || ms_wake <= now) {
		timeout = 0;
	} else {
		if (wake != INT64_MAX && l->tfd >= 0)
			arm(l, wake);
		else if (wake < ms_wake)
			ms_wake = wake;
		if (ms_wake - now < (int64_t)POLL_MAX_MS * 1000)
			timeout = (int)((ms_wake - now + 999) / 1000);
	}
	l->n_ev = epoll_wait(l->ep, l->ev, EVENTS_MAX, timeout);
	if (l->n_ev < 0)
		l->n_ev = 0; /* EINTR */
	now = clock_now_us();
	take_events(l, now);
	if (!spin || now < wake || now >= next)
		return spin && now >= next;
	spun_from = now;
	while ((now = clock_now_us()) < next)
		;
	l->spin_used += now - spun_from;
	atomic_fetch_add(&l->spun, now - spun_from);
	return true;
}

/* curl's part of a round: its ready sockets, then its due timeout. */
static void run_curl(struct curlloop *l)
{
	int running;

	for (int i = 0; i < l->n_ev; i++) {
		uint32_t e = l->ev[i].events;
		int flags = ((e & EPOLLIN) ? CURL_CSELECT_IN : 0) |
		            ((e & EPOLLOUT) ? CURL_CSELECT_OUT : 0) |
		            ((e & (EPOLLERR | EPOLLHUP)) ? CURL_CSELECT_ERR
		                                         : 0);

		curl_multi_socket_action(l->multi, (int)(l->ev[i].data.u64 >> 1),
		                         flags, &running);
	}
	l->n_ev = 0;
	if (l->curl_due >= 0 && clock_now_us() >= l->curl_due) {
		l->curl_due = -1;
		curl_multi_socket_action(l->multi, CURL_SOCKET_TIMEOUT, 0,
		                         &running);
	}
}

/*
 * curl says which of its sockets to watch for what: one epoll_ctl per
 * change. socketp (curl_multi_assign) says whether the set has it.
 */
static int on_curl_socket(CURL *easy, curl_socket_t s, int what, void *userp,
                          void *socketp)
{
	struct curlloop *l = userp;
	struct epoll_event ev = { .data.u64 = own_fd(s) };

	(void)easy;
	if (what == CURL_POLL_REMOVE) {
		if (socketp) {
			epoll_ctl(l->ep, EPOLL_CTL_DEL, s, NULL);
			curl_multi_assign(l->multi, s, NULL);
		}
		return 0;
	}
	ev.events = ((what & CURL_POLL_IN) ? EPOLLIN : 0) |
	            ((what & CURL_POLL_OUT) ? EPOLLOUT : 0);
	if (epoll_ctl(l->ep, socketp ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, s,
	              &ev) < 0) {
		/* Closed and opened again under that number, or still there. */
		if (errno == ENOENT)
			epoll_ctl(l->ep, EPOLL_CTL_ADD, s, &ev);
		else if (errno == EEXIST)
			epoll_ctl(l->ep, EPOLL_CTL_MOD, s, &ev);
	}
	if (!socketp)
		curl_multi_assign(l->multi, s, l);
	return 0;
}

/* When curl wants curl_multi_socket_action(CURL_SOCKET_TIMEOUT). */
static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
	struct curlloop *l = userp;

	(void)multi;
	l->curl_due = timeout_ms < 0 ? -1
	              : clock_now_us() + (int64_t)timeout_ms * 1000;
	return 0;
}

/* Wakes the loop's wait. Any thread; on its own, the next wait is 0. */
static void wake_loop(struct curlloop *l)
{
	uint64_t one = 1;

	if (current == l) {
		l->soon = true;
		return;
	}
	/* EAGAIN: the counter is full, the loop is due to wake anyway. */
	if (write(l->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		return;
}

/* The last messages, then the owner's stopped(). */
static void finish(struct curlloop *l)
{
	take_inbox(l);
	l->ops->stopped(l->arg);
	pthread_mutex_lock(&l->lock);
	l->stopped = true;
	pthread_cond_broadcast(&l->cond);
	pthread_mutex_unlock(&l->lock);
}

/* Runs the calls posted so far; with last, marks the thread ended first. */
static void run_calls(struct curlloop *l, bool last)
{
	struct call *c, *next;

	pthread_mutex_lock(&l->lock);
	c = l->calls;
	l->calls = NULL;
	if (last)
		l->running = false;
	pthread_mutex_unlock(&l->lock);
	if (!c && !last)
		return;
	for (; c; c = next) {
		next = c->next;
		int ret = c->fn(c->arg);

		pthread_mutex_lock(&l->lock);
		c->ret = ret;
		c->done = true;
		pthread_mutex_unlock(&l->lock);
	}
	pthread_mutex_lock(&l->lock);
	pthread_cond_broadcast(&l->cond);
	pthread_mutex_unlock(&l->lock);
}

static void run_guest(struct curlloop *l)
{
	for (int i = 0; i < l->n_wev; i++) {
		struct curlloop_watch *w = l->wev[i].data.ptr;

		if (w)  /* NULL: taken out by an earlier one */
			w->ready(w, l->wev[i].events);
	}
	l->n_wev = 0;
}

/* The guests' tails; the earliest time they want the next round. */
static int64_t run_tails(struct curlloop *l)
{
	int64_t next = INT64_MAX;

	for (unsigned i = 0; i < l->n_tails; i++) {
		int64_t t = l->tails[i].fn(l->tails[i].arg);

		if (t < next)
			next = t;
	}
	return next;
}

static void *loop_main(void *arg)
{
	struct curlloop *l = arg;
	int64_t next = 0, other = INT64_MAX;

	current = l;
	if (l->name[0])
		thread_name(l->name);
	for (;;) {
		bool due = poll_until(l, next, other);

		if (due && !l->stopped)
			l->ops->round(l->arg);
		run_calls(l, false);
		run_guest(l);
		if (!l->stopped) {
			take_inbox(l);
			fire_timers(l);
			run_curl(l);
			read_done(l);
			next = l->ops->round(l->arg);
		} else {
			l->n_ev = 0;
			next = INT64_MAX;
		}
		other = run_tails(l);
		if (l->soon)
			other = 0;
		if (atomic_load(&l->stopping) && !l->stopped)
			finish(l);
		if (l->stopped && (!l->n_tails || atomic_load(&l->exiting)))
			break;
	}
	run_calls(l, true);
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
	pthread_cond_init(&l->cond, NULL);
	l->curl_due = -1;
	l->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	l->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	l->ep = epoll_create1(EPOLL_CLOEXEC);
	l->multi = curl_multi_init();
	if (!l->multi || l->efd < 0 || l->ep < 0 ||
	    epoll_ctl(l->ep, EPOLL_CTL_ADD, l->efd, &(struct epoll_event){
	              .events = EPOLLIN, .data.u64 = own_fd(l->efd) }) < 0 ||
	    (l->tfd >= 0 &&
	     epoll_ctl(l->ep, EPOLL_CTL_ADD, l->tfd, &(struct epoll_event){
	               .events = EPOLLIN, .data.u64 = own_fd(l->tfd) }) < 0)) {
		l->stopped = true; /* nothing to tell the owner */
		curlloop_free(l);
		return NULL;
	}
	curl_multi_setopt(l->multi, CURLMOPT_MAXCONNECTS, maxconnects);
	curl_multi_setopt(l->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
	curl_multi_setopt(l->multi, CURLMOPT_SOCKETDATA, l);
	curl_multi_setopt(l->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
	curl_multi_setopt(l->multi, CURLMOPT_TIMERDATA, l);
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
	int r;

	pthread_mutex_lock(&l->lock);
	l->running = true;
	pthread_mutex_unlock(&l->lock);
	r = pthread_create(&l->thread, NULL, loop_main, l);
	if (r) {
		l->running = false;
		return -r;
	}
	l->started = true;
	return 0;
}

struct curlloop *curlloop_current(void)
{
	return current;
}

bool curlloop_on_thread(const struct curlloop *l)
{
	return l && current == l;
}

int curlloop_call(struct curlloop *l, int (*fn)(void *arg), void *arg)
{
	struct call c = { .fn = fn, .arg = arg };

	if (current == l)
		return fn(arg);
	pthread_mutex_lock(&l->lock);
	if (!l->running) {
		pthread_mutex_unlock(&l->lock);
		return fn(arg);
	}
	c.next = l->calls;
	l->calls = &c;
	pthread_mutex_unlock(&l->lock);
	wake_loop(l);
	pthread_mutex_lock(&l->lock);
	while (!c.done)
		pthread_cond_wait(&l->cond, &l->lock);
	pthread_mutex_unlock(&l->lock);
	return c.ret;
}

int curlloop_watch_add(struct curlloop *l, int fd, uint32_t events,
                       struct curlloop_watch *w)
{
	struct epoll_event ev = { .events = events, .data.ptr = w };

	return epoll_ctl(l->ep, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

void curlloop_watch_del(struct curlloop *l, int fd, struct curlloop_watch *w)
{
	epoll_ctl(l->ep, EPOLL_CTL_DEL, fd, NULL);
	for (int i = 0; i < l->n_wev; i++)
		if (l->wev[i].data.ptr == w)
			l->wev[i].data.ptr = NULL;
}

int curlloop_add_tail(struct curlloop *l, int64_t (*tail)(void *arg),
                      void *arg)
{
	if (l->n_tails == CURLLOOP_TAILS)
		return -ENOSPC;
	l->tails[l->n_tails].fn = tail;
	l->tails[l->n_tails].arg = arg;
	l->n_tails++;
	return 0;
}

void curlloop_del_tail(struct curlloop *l, int64_t (*tail)(void *arg),
                       void *arg)
{
	for (unsigned i = 0; i < l->n_tails; i++) {
		if (l->tails[i].fn != tail || l->tails[i].arg != arg)
			continue;
		memmove(&l->tails[i], &l->tails[i + 1],
		        (l->n_tails - i - 1) * sizeof(l->tails[0]));
		l->n_tails--;
		return;
	}
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
		wake_loop(l);
	return 0;
}

void curlloop_wake(struct curlloop *l)
{
	wake_loop(l);
}

/* Ends the loop (exit: even with a guest); waits for stopped(). */
static void stop(struct curlloop *l, bool exit)
{
	pthread_mutex_lock(&l->lock);
	atomic_store(&l->stopping, true);
	if (exit)
		atomic_store(&l->exiting, true);
	pthread_mutex_unlock(&l->lock);
	if (l->started) {
		wake_loop(l);
		pthread_mutex_lock(&l->lock);
		while (l->running && !(l->stopped && !exit))
			pthread_cond_wait(&l->cond, &l->lock);
		exit = !l->running;
		pthread_mutex_unlock(&l->lock);
		if (exit) {
			pthread_join(l->thread, NULL);
			l->started = false;
		}
	}
	if (!l->stopped)
		finish(l);
}

void curlloop_stop(struct curlloop *l)
{
	stop(l, false);
}

void curlloop_free(struct curlloop *l)
{
	if (!l)
		return;
	stop(l, true);
	if (l->multi)
		curl_multi_cleanup(l->multi);
	heap_done(&l->timers);
	if (l->tfd >= 0)
		close(l->tfd);
	if (l->efd >= 0)
		close(l->efd);
	if (l->ep >= 0)
		close(l->ep);
	pthread_mutex_destroy(&l->lock);
	pthread_cond_destroy(&l->cond);
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

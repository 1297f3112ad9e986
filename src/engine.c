/*
 * engine.c - queues and upstream transfers on workers, each a curlloop.
 *
 * A request belongs to its home worker: the one it was submitted on,
 * then the one whose dispatch starts it (a paced request leaves at its
 * instant, from the worker that woke for it, with no hand-off); its
 * transfers and the wake-ups of its owner happen there, and a message
 * that finds it moved goes on. The scheduler and the deadlines are shared
 * under the engine's lock, held for decisions only. Worker 0 wakes for
 * their instants (pacing to the microsecond); another that moves the
 * next one earlier wakes it.
 *
 * A round: take the inbox (submit, cancel, unpause, deadline), fire expired
 * deadlines, let curl work, collect finished transfers, dispatch whatever
 * the scheduler allows now, then wake the owners of every request whose
 * state changed in this round. Waking once per round, not once per
 * callback, lets a small response arrive whole before its client is
 * resumed, so it is handed to MHD without a second copy.
 *
 * Every response's header block decides the attempt's fate
 * (engine_verdict.c): learned limits and pauses for its queue, then final
 * (its body streams to the client) or retried (its body is discarded and
 * the request goes back to the head of its queue, where it passes the
 * same limits again). Which queue a request joins, and the /queues page,
 * are in engine_queues.c.
 */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>
#include <utlist.h>

#include "clock.h"
#include "config.h"
#include "cred.h"
#include "curlloop.h"
#include "engine.h"
#include "engine_int.h"
#include "engine_verdict.h"
#include "heap.h"
#include "log.h"
#include "request.h"
#include "retry.h"
#include "sched.h"
#include "upstream.h"

static struct request *timer_req(struct heap_node *n)
{
	return (struct request *)((char *)n - offsetof(struct request, timer));
}

/* Remember to wake r's front at the end of this round. */
static void touch(struct eworker *w, struct request *r)
{
	if (r->touched)
		return;
	r->touched = true;
	request_ref(r);
	LL_PREPEND2(w->touched, r, touch_next);
}

static void flush_touched(struct eworker *w)
{
	struct request *r;

	while ((r = w->touched)) {
		w->touched = r->touch_next;
		r->touched = false;
		if (r->owner && r->owner->wake)
			r->owner->wake(r);
		request_unref(r);
	}
}

unsigned engine_worker_here(struct engine *e)
{
	struct curlloop *here = curlloop_current();

	if (here)
		for (unsigned i = 0; i < e->n_workers; i++)
			if (e->w[i].loop == here)
				return i;
	return atomic_fetch_add_explicit(&e->next_home, 1,
	                                 memory_order_relaxed) % e->n_workers;
}

/*
 * Queues a message to r's home worker (where a message that finds r gone
 * to another sends it on). -ESHUTDOWN when the engine takes no more. A
 * submission is counted before refusing is read, and engine_refuse() sets
 * refusing before its caller reads the count: a drain never misses one.
 */
static int post(struct engine *e, struct request *r, enum req_msg_type t)
{
	struct req_msg *m = &r->msg[t];
	bool submit = t == REQ_MSG_SUBMIT;
	struct eworker *home;

	if (submit)
		r->home = &e->w[engine_worker_here(e)];
	if (!(home = r->home))
		return 0; /* never submitted */
	if (atomic_exchange(&m->posted, true))
		return 0;
	if (submit) {
		atomic_fetch_add(&e->active, 1);
		if (r->policy.durable)
			atomic_fetch_add(&e->jobs_held, 1);
	}
	request_ref(r);
	if ((submit && atomic_load(&e->refusing)) ||
	    curlloop_post(home->loop, &m->link) < 0) {
		if (submit) {
			if (r->policy.durable)
				atomic_fetch_sub(&e->jobs_held, 1);
			atomic_fetch_sub(&e->active, 1);
		}
		request_unref(r);
		atomic_store(&m->posted, false);
		return -ESHUTDOWN;
	}
	return 0;
}

int engine_submit(struct engine *e, struct request *r)
{
	return post(e, r, REQ_MSG_SUBMIT);
}

void engine_refuse(struct engine *e)
{
	atomic_store(&e->refusing, true);
}

void engine_cancel(struct engine *e, struct request *r)
{
	post(e, r, REQ_MSG_CANCEL);
}

void engine_unpause(struct engine *e, struct request *r)
{
	post(e, r, REQ_MSG_UNPAUSE);
}

unsigned engine_active(const struct engine *e)
{
	return atomic_load(&e->active);
}

unsigned engine_jobs_held(const struct engine *e)
{
	return atomic_load(&e->jobs_held);
}

/* --- learning and retry decisions --- */


static uint64_t rng_next(struct eworker *w)
{
	/* xorshift64*: jitter needs spread, not secrecy. */
	w->rng ^= w->rng >> 12;
	w->rng ^= w->rng << 25;
	w->rng ^= w->rng >> 27;
	return w->rng * 0x2545F4914F6CDD1DULL;
}

/* A stated quota as /queues keeps it: its reset on the engine's clock. */
static struct sched_quota stated_quota(const struct learn_quota *l, int64_t now)
{
	return (struct sched_quota){
		.limit = l->limit,
		.remaining = l->remaining,
		.window_ms = l->window_ms,
		.reset_at = l->reset_ms >= 0 ? now + l->reset_ms * 1000 : -1,
	};
}

static void note_quotas(struct sched_queue *q, const struct verdict_learned *v,
                        int64_t now)
{
	struct sched_quota req = stated_quota(&v->requests, now);
	struct sched_quota tok = stated_quota(&v->tokens, now);

	sched_note_quotas(q, &req, &tok);
}

/*
 * r's answer's header block: learn, pause; its Retry-After, or -1. The
 * fields are read outside the lock, what they teach is applied under it.
 */
static int64_t learn_from(struct eworker *w, struct request *r)
{
	struct engine *e = w->e;
	struct sched_queue *q = r->item.q;
	struct verdict_learned v;
	int64_t now = clock_now_us();

	verdict_learn(w->cfg, r->resp_headers.data, r->n_resp_headers,
	              r->status, clock_wall_ms(), &v);
	pthread_mutex_lock(&e->lock);
	e->stats.learn_bad += v.bad;
	note_quotas(q, &v, now);
	if (v.rps > 0 || v.concurrency > 0) {
		if (w->cfg->learn.scope == LEARN_SCOPE_DESTINATION)
			sched_learn_dest(e->sched, sched_queue_dest(q), v.rps,
			                 v.rps_source, v.concurrency, now);
		else
			sched_learn_queue(e->sched, q, v.rps, v.rps_source,
			                  v.concurrency, now);
	}
	if (v.pause_ms > 0) {
		int64_t until = now + v.pause_ms * 1000;
		bool by_retry_after = v.retry_after_ms >= 0 &&
		                      (r->status == 429 || r->status == 503) &&
		                      v.pause_ms <= v.retry_after_ms;
		int64_t end = sched_quota_window_end(q, v.requests.limit,
		                                     v.requests.remaining,
		                                     v.requests.window_ms * 1000,
		                                     now);

		/*
		 * Nothing left until a reset in whole seconds (the IETF
		 * fields) may be most of a second early: the window's end
		 * as the answers show it is sooner. Not for a 429, nor
		 * when the tokens ran out.
		 */
		if (end >= 0 && end < until && r->status < 400 &&
		    v.requests.remaining == 0 && v.tokens.remaining != 0)
			until = end;
		if (until > now) {
			sched_pause(e->sched, q, until, now);
			if (by_retry_after)
				e->ms.pauses_retry_after++;
			else
				e->ms.pauses_quota++;
		}
	} else {
		sched_quota_window_end(q, v.requests.limit,
		                       v.requests.remaining,
		                       v.requests.window_ms * 1000, now);
	}
	/*
	 * Pushback, for frugal and adaptive mode: a 429 or 503, or a quota
	 * with nothing left. Bare: a 429 that states no quota (a
	 * Retry-After only says how long to wait, not how fast to go).
	 */
	if (r->status >= 200 && r->status < 400)
		sched_took(q, now);
	if (r->status == 429 || r->status == 503 || v.pause_ms > 0)
		sched_pushback(e->sched, q,
		               r->status == 429 && v.requests.limit < 0 &&
		               v.requests.remaining < 0 &&
		               v.rps_source != SCHED_RATE_QUOTA &&
		               v.rps_source != SCHED_RATE_EZTHROTTLE, now);
	pthread_mutex_unlock(&e->lock);
	return v.retry_after_ms;
}

/* Whether to try r again after status (0: no response at all). */
static bool want_retry(struct eworker *w, struct request *r, unsigned status,
                       int64_t retry_after_ms)
{
	int64_t delay = verdict_retry(w->cfg, &r->rules, r->attempts, status,
	                              retry_after_ms, clock_now_ms(),
	                              r->deadline, rng_next(w));

	if (delay < 0)
		return false;
	r->retry_delay_ms = delay;
	return true;
}

static void on_body(struct request *r)
{
	touch(r->home, r);
}

/* The header block of r's answer is complete: final, or retried? */
static void on_headers(struct request *r, unsigned status)
{
	struct eworker *w = r->home;
	int64_t retry_after;

	r->status = status;
	retry_after = learn_from(w, r);
	if (want_retry(w, r, status, retry_after)) {
		r->retrying = true;
		return;
	}
	pthread_mutex_lock(&r->lock);
	r->phase = REQ_HEADERS;
	pthread_mutex_unlock(&r->lock);
	touch(w, r);
}

/* What transfers tell the engine (upstream.c never names it). */
static const struct upstream_hooks upstream_hooks = {
	.on_headers = on_headers,
	.on_body = on_body,
};

/* --- transfers --- */

/*
 * A handle for r: from the pool (set up for an ordinary request with
 * this configuration: *fresh false) or new.
 */
static CURL *easy_get(struct eworker *w, const struct request *r, bool *fresh)
{
	*fresh = r->policy.connect_only || w->n_easy_pool == 0;
	if (!*fresh)
		return w->easy_pool[--w->n_easy_pool];
	return curl_easy_init();
}

/*
 * Back to the pool, unless it was an opaque tunnel's (CONNECT_ONLY) or was
 * set up before a reload.
 */
static void easy_put(struct eworker *w, const struct request *r, CURL *c)
{
	if (w->n_easy_pool < EASY_POOL_MAX && !r->policy.connect_only &&
	    r->easy_gen == w->cfg_gen)
		w->easy_pool[w->n_easy_pool++] = c;
	else
		curl_easy_cleanup(c);
}

/* Empties the pool: its handles hold the options of a configuration. */
static void easy_pool_drain(struct eworker *w)
{
	while (w->n_easy_pool > 0)
		curl_easy_cleanup(w->easy_pool[--w->n_easy_pool]);
}

/* Answer r with a proxy-made error, unless its response has begun. */
static void fail(struct eworker *w, struct request *r, unsigned status,
                 const char *code, const char *msg)
{
	pthread_mutex_lock(&r->lock);
	if (r->phase == REQ_WAITING)
		request_fail_locked(r, status, code, msg);
	else {
		r->body_error = true;
		r->body_done = true;
	}
	pthread_mutex_unlock(&r->lock);
	touch(w, r);
}

/* Takes r's transfer out of curl; its slot is the caller's to settle. */
static void stop_transfer(struct eworker *w, struct request *r)
{
	curlloop_remove(w->loop, r->easy);
	easy_put(w, r, r->easy);
	r->easy = NULL;
}

/*
 * Under the lock: takes r out of the scheduler and its deadline out of
 * the heap, and off w's held list; *st is the state it was in. False
 * when r is no longer at home on w (a dispatch on another worker started
 * it there): nothing done.
 */
static bool claim_locked(struct eworker *w, struct request *r, int *st)
{
	struct engine *e = w->e;

	if (r->home != w)
		return false;
	*st = r->eng_state;
	if (*st == ENG_DONE)
		return true;
	if (!(w->abandon && r->policy.durable))
		engine_metrics_end(e, r);
	if (*st == ENG_WAITING)
		sched_remove(e->sched, &r->item, clock_now_us());
	else if (*st == ENG_STARTING || *st == ENG_RUNNING)
		sched_done(e->sched, r->item.q, clock_now_us());
	heap_remove(&e->deadlines, &r->timer);
	if (*st != ENG_NONE)
		engine_unhold(w, r);
	r->eng_state = ENG_DONE;
	return true;
}

/* The rest of the end of r, claimed in state st. */
static void finish(struct eworker *w, struct request *r, int st)
{
	struct engine *e = w->e;
	/* A job kept for the next start has not ended. */
	bool kept = w->abandon && r->policy.durable;

	if (st == ENG_DONE)
		return;
	if (st == ENG_RUNNING)
		stop_transfer(w, r);
	/* Its owner hears of the end; on shutdown a durable one is kept. */
	if (r->owner && r->owner->finished && !kept)
		r->owner->finished(r);
	if (r->policy.durable)
		atomic_fetch_sub(&e->jobs_held, 1);
	atomic_fetch_sub(&e->active, 1);
	request_unref(r);
}

/*
 * The engine is done with r: drop it from every structure. On r's home,
 * in a state no other worker can change (not waiting in its queue), or
 * after a claim.
 */
static void release(struct eworker *w, struct request *r)
{
	int st = ENG_DONE;

	pthread_mutex_lock(&w->e->lock);
	claim_locked(w, r, &st);
	pthread_mutex_unlock(&w->e->lock);
	finish(w, r, st);
}

/* The transfer of r, dispatched here (ENG_STARTING). */
static void start(struct eworker *w, struct request *r)
{
	int64_t now = clock_now_us();
	bool fresh;
	CURL *c = easy_get(w, r, &fresh);

	r->attempts++;
	r->queue_us += now - r->enqueued_us;
	r->attempt_us = now;
	r->status = 0;
	r->retrying = false;
	r->denied = false;
	r->got_bytes = false;
	r->err_buf[0] = '\0';
	r->resp_headers.len = r->resp_headers.off = 0;
	r->n_resp_headers = 0;
	if (!c || upstream_setup(c, fresh, r, &w->cfg, &upstream_hooks) < 0 ||
	    curlloop_add(w->loop, c) < 0) {
		/* Its options are not known: not back to the pool. */
		if (c)
			curl_easy_cleanup(c);
		fail(w, r, 500, "internal_error",
		     "could not set up the upstream request");
		release(w, r);
		return;
	}
	r->easy = c;
	r->easy_gen = w->cfg_gen;
	r->eng_state = ENG_RUNNING;
	if (r->owner && r->owner->started)
		r->owner->started(r);
}

static void on_deadline(struct eworker *w, struct request *r);

/*
 * Starts everything the scheduler lets go now, on this worker: a request
 * submitted on another moves here (its home from then on), so a paced
 * dispatch leaves at its instant, with no hand-off. Then the deadlines
 * that are due: those at home here are answered, the others are sent
 * home. Under the lock only the decisions. Returns the next instant the
 * scheduler or a deadline wants (monotonic us, INT64_MAX: none); a
 * worker other than 0 that moves it earlier than worker 0 will wake
 * wakes it.
 */
static int64_t dispatch(struct eworker *w)
{
	struct engine *e = w->e;
	struct sched_item *it;
	struct heap_node *n;
	struct request *batch = NULL, **tail = &batch, *due = NULL, *away = NULL;
	struct request *r;
	int64_t now = clock_now_us(), next;
	bool wake0 = false;

	pthread_mutex_lock(&e->lock);
	while ((it = sched_next(e->sched, now))) {
		struct eworker *home;

		r = (struct request *)(void *)
			((char *)it - offsetof(struct request, item));
		e->stats.attempts++;
		engine_metrics_attempt(e, r, now - r->enqueued_us);
		r->eng_state = ENG_STARTING;
		home = r->home;
		if (home != w) {
			/* A stopping home's fail_all answers it. */
			if (home->abandon)
				continue;
			engine_unhold(home, r);
			r->home = w;
			engine_hold(w, r);
		}
		r->start_next = NULL;
		*tail = r;
		tail = &r->start_next;
	}
	while ((n = heap_top(&e->deadlines)) && n->when <= now) {
		heap_pop(&e->deadlines);
		r = timer_req(n);
		if (r->home == w) {
			r->due_next = due;
			due = r;
		} else {
			request_ref(r); /* for the message */
			r->due_next = away;
			away = r;
		}
	}
	next = sched_next_wakeup(e->sched);
	if ((n = heap_top(&e->deadlines)) && n->when < next)
		next = n->when;
	if (w->idx == 0) {
		e->wake_at = next;
	} else if (next < e->wake_at) {
		e->wake_at = next;
		wake0 = true;
	}
	pthread_mutex_unlock(&e->lock);

	if (wake0)
		curlloop_wake(e->w[0].loop);
	while ((r = batch)) {
		batch = r->start_next;
		start(w, r);
	}
	while ((r = due)) {
		due = r->due_next;
		on_deadline(w, r);
	}
	while ((r = away)) {
		away = r->due_next;
		post(e, r, REQ_MSG_DEADLINE);
		request_unref(r);
	}
	return next;
}

/* Sends r back to the head of its queue for another attempt. */
static void requeue(struct eworker *w, struct request *r, int64_t delay_ms)
{
	struct engine *e = w->e;
	int64_t now = clock_now_us();

	log_debug("retrying dest=%s status=%u attempt=%u in=%" PRId64 "ms",
	          r->dest_key, r->status, r->attempts, delay_ms);
	stop_transfer(w, r);
	r->retrying = false;
	r->enqueued_us = now;
	pthread_mutex_lock(&e->lock);
	engine_metrics_retry(e, r);
	e->stats.retries++;
	r->eng_state = ENG_WAITING;
	sched_requeue(e->sched, &r->item, now + delay_ms * 1000, now);
	pthread_mutex_unlock(&e->lock);
}

/*
 * A client's request whose predicted wait already passes its deadline is
 * answered now (503 and the prediction), not with a 504 when the deadline
 * comes. Jobs wait as long as they need: never. Under lock; the wait in
 * ms, or -1.
 */
static int64_t hopeless(struct engine *e, struct request *r,
                        struct sched_queue *q, int64_t now)
{
	int64_t wait;

	if (!e->cfg->reject_hopeless || r->policy.no_deadline ||
	    r->policy.durable)
		return -1;
	wait = sched_predict_wait(q, now);
	if (now + wait <= r->deadline * 1000)
		return -1;
	e->stats.hopeless++;
	return (wait + 999) / 1000;
}

static void fail_hopeless(struct eworker *w, struct request *r,
                          int64_t wait_ms)
{
	char msg[160];

	snprintf(msg, sizeof(msg), "the predicted wait in this queue, %" PRId64
	         " ms, is longer than the request's deadline allows", wait_ms);
	pthread_mutex_lock(&r->lock);
	r->err_wait_ms = wait_ms;
	pthread_mutex_unlock(&r->lock);
	fail(w, r, 503, "queue_wait_exceeds_deadline", msg);
}

static void on_submit(struct eworker *w, struct request *r)
{
	struct engine *e = w->e;
	struct sched_queue *q;
	bool cancelled, oom = false;
	int64_t now = clock_now_us(), wait_ms = -1;
	int rc = -1;

	request_ref(r); /* the engine's own reference */
	r->eng_state = ENG_NONE;
	pthread_mutex_lock(&r->lock);
	cancelled = r->cancelled;
	pthread_mutex_unlock(&r->lock);

	pthread_mutex_lock(&e->lock);
	e->stats.requests++;
	if (!cancelled && !r->policy.no_deadline &&
	    heap_push(&e->deadlines, &r->timer, r->deadline * 1000) < 0)
		oom = true;
	q = cancelled || oom ? NULL : engine_queue_for(e, r);
	if (q && r->mode >= 0)
		sched_set_mode(e->sched, q, (enum rate_mode)r->mode, now);
	if (q && (wait_ms = hopeless(e, r, q, now)) < 0) {
		r->enqueued_us = now;
		rc = sched_enqueue(e->sched, q, &r->item, now);
		if (rc == 0) {
			r->eng_state = ENG_WAITING;
			engine_hold(w, r);
		} else {
			e->stats.queue_full++;
		}
	}
	pthread_mutex_unlock(&e->lock);

	if (rc == 0)
		return;
	if (cancelled) {
		/* Gone before it was queued, or answered already. */
	} else if (!q) {
		fail(w, r, 503, "overloaded", "out of memory");
	} else if (wait_ms >= 0) {
		fail_hopeless(w, r, wait_ms);
	} else if (r->policy.wait_when_full) {
		/* Accepted already (a job): it waits for room. */
		engine_backlog_push(w, r);
		return;
	} else {
		fail(w, r, 503, "queue_full",
		     "too many requests are waiting for this destination; "
		     "try again later");
	}
	release(w, r);
}

/*
 * A message for r that found it at home on another worker (a dispatch
 * moved it there after the message was posted) goes on there.
 */
static bool moved(struct eworker *w, struct request *r, enum req_msg_type t)
{
	if (r->home == w)
		return false;
	post(w->e, r, t);
	return true;
}

static void on_cancel(struct eworker *w, struct request *r)
{
	int st = ENG_DONE;
	bool here;

	pthread_mutex_lock(&w->e->lock);
	here = r->eng_state == ENG_NONE || claim_locked(w, r, &st);
	pthread_mutex_unlock(&w->e->lock);
	if (!here)
		moved(w, r, REQ_MSG_CANCEL);
	else
		finish(w, r, st);
}

static void on_unpause(struct eworker *w, struct request *r)
{
	bool was;

	/* Only a running request reads a body: it does not move. */
	if (moved(w, r, REQ_MSG_UNPAUSE) || r->eng_state != ENG_RUNNING)
		return;
	pthread_mutex_lock(&r->lock);
	was = r->paused;
	r->paused = false;
	pthread_mutex_unlock(&r->lock);
	/* May call write_cb at once, which takes the lock itself. */
	if (was)
		curl_easy_pause(r->easy, CURLPAUSE_CONT);
}

/* --- the loop's callbacks --- */

static void engine_inbox(void *arg, struct curlloop_msg *head)
{
	struct eworker *w = arg;
	struct curlloop_msg *l, *next;

	for (l = head; l; l = next) {
		struct req_msg *m = (struct req_msg *)(void *)
			((char *)l - offsetof(struct req_msg, link));
		struct request *r = m->req;

		next = l->next;
		atomic_store(&m->posted, false);
		switch (m->type) {
		case REQ_MSG_SUBMIT:
			on_submit(w, r);
			/*
			 * Dispatch at once, so a request that may go now is
			 * never counted as waiting against max_queued by the
			 * next submission of the same batch.
			 */
			dispatch(w);
			break;
		case REQ_MSG_CANCEL:
			on_cancel(w, r);
			break;
		case REQ_MSG_UNPAUSE:
			on_unpause(w, r);
			break;
		case REQ_MSG_DEADLINE:
			on_deadline(w, r);
			break;
		default:
			break;
		}
		request_unref(r); /* the message's reference */
	}
}

/*
 * r's deadline passed (out of the heap already): a request still without
 * a response is answered 504; one whose response has begun is not cut
 * short.
 */
static void on_deadline(struct eworker *w, struct request *r)
{
	struct engine *e = w->e;
	bool waiting;
	int st = ENG_DONE;

	pthread_mutex_lock(&r->lock);
	waiting = r->phase == REQ_WAITING;
	pthread_mutex_unlock(&r->lock);
	if (!waiting)
		return;
	pthread_mutex_lock(&e->lock);
	if (!claim_locked(w, r, &st)) {
		pthread_mutex_unlock(&e->lock);
		moved(w, r, REQ_MSG_DEADLINE);
		return;
	}
	if (st != ENG_DONE)
		e->stats.timeouts++;
	pthread_mutex_unlock(&e->lock);
	if (st == ENG_DONE)
		return;
	if (st == ENG_WAITING)
		r->queue_us += clock_now_us() - r->enqueued_us;
	fail(w, r, 504, "timeout",
	     r->attempts ? "no final response from upstream before the "
	                   "deadline"
	                 : "the request waited in its queue until the "
	                   "deadline");
	finish(w, r, st);
}

/*
 * An opaque tunnel's connection is made: its owner gets a copy of the
 * socket (curl closes its own when the handle goes back to the pool).
 */
static void connected(struct eworker *w, struct request *r, CURL *easy)
{
	curl_socket_t s = CURL_SOCKET_BAD;
	int fd = -1;

	if (curl_easy_getinfo(easy, CURLINFO_ACTIVESOCKET, &s) == CURLE_OK &&
	    s != CURL_SOCKET_BAD)
		fd = fcntl(s, F_DUPFD_CLOEXEC, 0);
	if (fd < 0) {
		fail(w, r, 502, "upstream_connect",
		     "the upstream connection was lost");
		return;
	}
	pthread_mutex_lock(&r->lock);
	r->tunnel_fd = fd;
	r->status = 200;
	r->phase = REQ_HEADERS;
	r->body_done = true;
	pthread_mutex_unlock(&r->lock);
	touch(w, r);
}

static void engine_done(void *arg, CURL *easy, CURLcode rc)
{
	struct eworker *w = arg;
	struct request *r = NULL;
	bool no_answer;

	curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&r);
	pthread_mutex_lock(&r->lock);
	r->upstream_us += clock_now_us() - r->attempt_us;
	pthread_mutex_unlock(&r->lock);
	if (rc == CURLE_OK && r->policy.connect_only) {
		connected(w, r, easy);
		release(w, r);
		return;
	}

	if (r->retrying) {
		/* The answer was read for its status only; go again. */
		requeue(w, r, r->retry_delay_ms);
		return;
	}
	if (rc != CURLE_OK) {
		pthread_mutex_lock(&w->e->lock);
		engine_metrics_error(w->e, r, rc);
		pthread_mutex_unlock(&w->e->lock);
	}
	pthread_mutex_lock(&r->lock);
	no_answer = r->phase == REQ_WAITING;
	if (rc == CURLE_OK && !no_answer)
		r->body_done = true;
	pthread_mutex_unlock(&r->lock);

	if (rc == CURLE_OK && !no_answer) {
		touch(w, r);
	} else if (no_answer) {
		/* Nothing reached the client: a failure may be retried. */
		if (rc != CURLE_OK &&
		    upstream_failed_before_response(r, rc) &&
		    want_retry(w, r, 0, -1)) {
			requeue(w, r, r->retry_delay_ms);
			return;
		}
		if (rc == CURLE_OK) {
			fail(w, r, 502, "upstream_error",
			     "upstream sent no response");
		} else {
			char msg[DEST_HOST_MAX + CURL_ERROR_SIZE + 128];
			const char *code;
			unsigned st = upstream_failure(r, rc, &code, msg,
			                               sizeof(msg));

			fail(w, r, st, code, msg);
		}
	} else {
		/* The body broke off: the client sees the stream end badly. */
		pthread_mutex_lock(&r->lock);
		r->body_error = true;
		r->body_done = true;
		pthread_mutex_unlock(&r->lock);
		touch(w, r);
	}
	release(w, r);
}

static void fail_all(struct eworker *w)
{
	struct request *r;

	/*
	 * Unfinished jobs are not failed: they run again at next start.
	 * Set under the lock: no dispatch moves a request off this worker
	 * from now on.
	 */
	pthread_mutex_lock(&w->e->lock);
	w->abandon = true;
	pthread_mutex_unlock(&w->e->lock);
	while ((r = w->backlog)) {
		DL_DELETE2(w->backlog, r, eng_prev, eng_next);
		release(w, r);
	}
	for (;;) {
		pthread_mutex_lock(&w->e->lock);
		r = w->held;
		pthread_mutex_unlock(&w->e->lock);
		if (!r)
			break;
		fail(w, r, 503, "shutting_down", "the proxy is shutting down");
		release(w, r);
	}
}

/* The limits that follow the configuration, from e->cfg; under lock. */
static void set_sched_params(struct engine *e)
{
	const struct config *cfg = e->cfg;

	sched_set_caps(e->sched, cfg->max_queued, cfg->learn.idle_reset * 1000);
	sched_set_rate_ctl(e->sched, &(struct rate_ctl_cfg){
		.probe_interval = cfg->learn.probe_interval * 1000,
		.idle_reset = cfg->learn.idle_reset * 1000,
		.min_rps = cfg->learn.min_rps,
		.max_rps = cfg->learn.max_rps,
	});
}

/*
 * A reload: each worker takes the configuration for its transfers, and
 * worker 0 for the scheduler.
 */
static void take_config(struct eworker *w)
{
	struct engine *e = w->e;
	const struct config *old = w->cfg;
	const struct config *n = config_slot_take(&w->cfg_next);

	if (n) {
		w->cfg = n;
		w->cfg_gen++;
		easy_pool_drain(w);
		config_free(old);
	}
	if (w->idx != 0 || !(n = config_slot_take(&e->cfg_next)))
		return;
	pthread_mutex_lock(&e->lock);
	old = e->cfg;
	e->cfg = n;
	set_sched_params(e);
	engine_queues_reconfigure(e, old);
	pthread_mutex_unlock(&e->lock);
	config_free(old);
}

/*
 * The end of a round: dispatch what may go, wake the fronts of the
 * requests whose state changed, and once a second retry the backlog and
 * (worker 0) move the modes on and reclaim idle queues. Worker 0 wakes
 * for the scheduler's next instant; the others only for their own.
 */
static int64_t engine_round(void *arg)
{
	struct eworker *w = arg;
	struct engine *e = w->e;
	int64_t next, collect;

	atomic_store_explicit(&w->last_round, clock_now_ms(),
	                      memory_order_relaxed);
	take_config(w);
	next = dispatch(w);
	flush_touched(w);
	if (clock_now_ms() >= w->next_collect) {
		engine_backlog_retry(w);
		if (w->idx == 0) {
			pthread_mutex_lock(&e->lock);
			sched_modes_tick(e->sched, clock_now_us());
			sched_collect(e->sched, clock_now_us());
			pthread_mutex_unlock(&e->lock);
		}
		next = dispatch(w);
		flush_touched(w);
		w->next_collect = clock_now_ms() + 1000;
	}
	collect = w->next_collect * 1000;
	if (w->idx != 0)
		return collect;
	return next < collect ? next : collect;
}

static void engine_stopped(void *arg)
{
	struct eworker *w = arg;

	fail_all(w);
	flush_touched(w);
}

static const struct curlloop_ops engine_ops = {
	.inbox = engine_inbox,
	.done = engine_done,
	.round = engine_round,
	.stopped = engine_stopped,
};

/*
 * The number of workers cfg asks for: 0 is one per core the process may
 * run on (its affinity: taskset, systemd's CPUAffinity=).
 */
static unsigned workers_of(const struct config *cfg)
{
	long n = cfg->workers;
	cpu_set_t set;

	if (n <= 0 && sched_getaffinity(0, sizeof(set), &set) == 0)
		n = CPU_COUNT(&set);
	if (n <= 0)
		n = sysconf(_SC_NPROCESSORS_ONLN);
	if (n <= 0)
		n = 1;
	return n > CONFIG_WORKERS_MAX ? CONFIG_WORKERS_MAX : (unsigned)n;
}

static int worker_init(struct engine *e, unsigned i, const struct config *cfg)
{
	struct eworker *w = &e->w[i];
	char name[16];

	w->e = e;
	w->idx = i;
	w->cfg = config_ref(cfg);
	atomic_store(&w->last_round, clock_now_ms());
	if (getrandom(&w->rng, sizeof(w->rng), 0) != sizeof(w->rng) ||
	    w->rng == 0)
		w->rng = (uint64_t)clock_now_us() | 1;
	w->loop = curlloop_new(&engine_ops, w,
	                       cfg->max_in_flight > 64 ? cfg->max_in_flight
	                                               : 64);
	if (!w->loop)
		return -ENOMEM;
	/* Worker 0 paces to the microsecond; the others follow its lead. */
	if (i == 0) {
		curlloop_precise(w->loop);
		snprintf(name, sizeof(name), "sluice-engine");
	} else {
		snprintf(name, sizeof(name), "sluice-engine%u", i % 100);
	}
	curlloop_set_name(w->loop, name);
	return 0;
}

struct engine *engine_new(const struct config *cfg)
{
	struct engine *e;

	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->cfg = config_ref(cfg);
	pthread_mutex_init(&e->lock, NULL);
	e->wake_at = INT64_MAX;
	e->n_workers = workers_of(cfg);
	e->w = calloc(e->n_workers, sizeof(*e->w));
	e->sched = sched_new(cfg->max_in_flight, cfg->max_queued,
	                     cfg->learn.idle_reset * 1000);
	if (!e->w || !e->sched) {
		engine_free(e);
		return NULL;
	}
	set_sched_params(e);
	for (unsigned i = 0; i < e->n_workers; i++)
		if (worker_init(e, i, cfg) < 0) {
			engine_free(e);
			return NULL;
		}
	return e;
}

int engine_start(struct engine *e)
{
	log_info("engine: workers=%u", e->n_workers);
	for (unsigned i = 0; i < e->n_workers; i++) {
		int err = curlloop_start(e->w[i].loop);

		if (err < 0)
			return err;
	}
	return 0;
}

bool engine_alive(struct engine *e, int64_t within_ms)
{
	int64_t now = clock_now_ms();

	for (unsigned i = 0; i < e->n_workers; i++)
		if (now - atomic_load_explicit(&e->w[i].last_round,
		                               memory_order_relaxed) > within_ms)
			return false;
	return true;
}

unsigned engine_workers(const struct engine *e)
{
	return e->n_workers;
}

struct curlloop *engine_loop(struct engine *e, unsigned i)
{
	return e->w[i].loop;
}

void engine_stop(struct engine *e)
{
	for (unsigned i = 0; i < e->n_workers; i++)
		curlloop_stop(e->w[i].loop);
}

void engine_reconfigure(struct engine *e, const struct config *cfg)
{
	config_slot_offer(&e->cfg_next, config_ref(cfg));
	for (unsigned i = 0; i < e->n_workers; i++) {
		config_slot_offer(&e->w[i].cfg_next, config_ref(cfg));
		curlloop_wake(e->w[i].loop);
	}
}

void engine_free(struct engine *e)
{
	if (!e)
		return;
	/* Stops: the last messages, then every request held fails. */
	for (unsigned i = 0; e->w && i < e->n_workers; i++)
		curlloop_free(e->w[i].loop);
	for (unsigned i = 0; e->w && i < e->n_workers; i++) {
		struct eworker *w = &e->w[i];

		easy_pool_drain(w);
		config_slot_done(&w->cfg_next);
		config_free(w->cfg);
	}
	free(e->w);
	heap_done(&e->deadlines);
	sched_free(e->sched);
	engine_metrics_free(e);
	config_slot_done(&e->cfg_next);
	config_free(e->cfg);
	pthread_mutex_destroy(&e->lock);
	free(e);
}

/*
 * engine.c - queues and upstream transfers on one thread, a curlloop.
 *
 * A round: take the inbox (submit, cancel, unpause), fire expired
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
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
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
static void touch(struct engine *e, struct request *r)
{
	if (r->touched)
		return;
	r->touched = true;
	request_ref(r);
	LL_PREPEND2(e->touched, r, touch_next);
}

static void flush_touched(struct engine *e)
{
	struct request *r;

	while ((r = e->touched)) {
		e->touched = r->touch_next;
		r->touched = false;
		if (r->owner && r->owner->wake)
			r->owner->wake(r);
		request_unref(r);
	}
}

/*
 * Queues a message. -ESHUTDOWN when the engine takes no more. A submission
 * is counted before refusing is read, and engine_refuse() sets refusing
 * before its caller reads the count: a drain never misses one.
 */
static int post(struct engine *e, struct request *r, enum req_msg_type t)
{
	struct req_msg *m = &r->msg[t];
	bool submit = t == REQ_MSG_SUBMIT;

	if (atomic_exchange(&m->posted, true))
		return 0;
	if (submit) {
		atomic_fetch_add(&e->active, 1);
		if (r->policy.durable)
			atomic_fetch_add(&e->jobs_held, 1);
	}
	request_ref(r);
	if ((submit && atomic_load(&e->refusing)) ||
	    curlloop_post(e->loop, &m->link) < 0) {
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


static uint64_t rng_next(struct engine *e)
{
	/* xorshift64*: jitter needs spread, not secrecy. */
	e->rng ^= e->rng >> 12;
	e->rng ^= e->rng << 25;
	e->rng ^= e->rng >> 27;
	return e->rng * 0x2545F4914F6CDD1DULL;
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

/* r's answer's header block: learn, pause; its Retry-After, or -1. */
static int64_t learn_from(struct engine *e, struct request *r)
{
	struct sched_queue *q = r->item.q;
	struct verdict_learned v;
	int64_t now = clock_now_us();

	verdict_learn(e->cfg, r->resp_headers.data, r->n_resp_headers,
	              r->status, clock_wall_ms(), &v);
	e->stats.learn_bad += v.bad;
	note_quotas(q, &v, now);
	if (v.rps > 0 || v.concurrency > 0) {
		if (e->cfg->learn.scope == LEARN_SCOPE_DESTINATION)
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
	return v.retry_after_ms;
}

/* Whether to try r again after status (0: no response at all). */
static bool want_retry(struct engine *e, struct request *r, unsigned status,
                       int64_t retry_after_ms)
{
	int64_t delay = verdict_retry(e->cfg, &r->rules, r->attempts, status,
	                              retry_after_ms, clock_now_ms(),
	                              r->deadline, rng_next(e));

	if (delay < 0)
		return false;
	r->retry_delay_ms = delay;
	return true;
}

static void on_body(struct request *r)
{
	touch(r->engine, r);
}

/* The header block of r's answer is complete: final, or retried? */
static void on_headers(struct request *r, unsigned status)
{
	struct engine *e = r->engine;
	int64_t retry_after;

	r->status = status;
	retry_after = learn_from(e, r);
	if (want_retry(e, r, status, retry_after)) {
		r->retrying = true;
		return;
	}
	pthread_mutex_lock(&r->lock);
	r->phase = REQ_HEADERS;
	pthread_mutex_unlock(&r->lock);
	touch(e, r);
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
static CURL *easy_get(struct engine *e, const struct request *r, bool *fresh)
{
	*fresh = r->policy.connect_only || e->n_easy_pool == 0;
	if (!*fresh)
		return e->easy_pool[--e->n_easy_pool];
	return curl_easy_init();
}

/*
 * Back to the pool, unless it was an opaque tunnel's (CONNECT_ONLY) or was
 * set up before a reload.
 */
static void easy_put(struct engine *e, const struct request *r, CURL *c)
{
	if (e->n_easy_pool < EASY_POOL_MAX && !r->policy.connect_only &&
	    r->easy_gen == e->cfg_gen)
		e->easy_pool[e->n_easy_pool++] = c;
	else
		curl_easy_cleanup(c);
}

/* Empties the pool: its handles hold the options of a configuration. */
static void easy_pool_drain(struct engine *e)
{
	while (e->n_easy_pool > 0)
		curl_easy_cleanup(e->easy_pool[--e->n_easy_pool]);
}
/* Answer r with a proxy-made error, unless its response has begun. */
static void fail(struct engine *e, struct request *r, unsigned status,
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
	touch(e, r);
}

/* Takes r's transfer out of curl; its slot is the caller's to settle. */
static void stop_transfer(struct engine *e, struct request *r)
{
	curlloop_remove(e->loop, r->easy);
	easy_put(e, r, r->easy);
	r->easy = NULL;
	e->n_running--;
}

/* The engine is done with r: drop it from every structure. */
static void release(struct engine *e, struct request *r)
{
	int64_t now = clock_now_us();

	/* A job kept for the next start has not ended. */
	if (!(e->abandon && r->policy.durable))
		engine_metrics_end(e, r);
	curlloop_timer_del(e->loop, &r->timer);
	if (r->eng_state == ENG_WAITING) {
		sched_remove(e->sched, &r->item, now);
	} else if (r->eng_state == ENG_RUNNING) {
		stop_transfer(e, r);
		sched_done(e->sched, r->item.q, now);
	}
	if (r->eng_state != ENG_NONE)
		engine_unhold(e, r);
	r->eng_state = ENG_DONE;
	/* Its owner hears of the end; on shutdown a durable one is kept. */
	if (r->owner && r->owner->finished &&
	    !(e->abandon && r->policy.durable))
		r->owner->finished(r);
	if (r->policy.durable)
		atomic_fetch_sub(&e->jobs_held, 1);
	atomic_fetch_sub(&e->active, 1);
	request_unref(r);
}

static void start(struct engine *e, struct request *r)
{
	int64_t now = clock_now_us();
	bool fresh;
	CURL *c = easy_get(e, r, &fresh);

	r->attempts++;
	r->queue_us += now - r->enqueued_us;
	engine_metrics_attempt(e, r, now - r->enqueued_us);
	r->attempt_us = now;
	r->status = 0;
	r->retrying = false;
	r->denied = false;
	r->got_bytes = false;
	r->err_buf[0] = '\0';
	r->resp_headers.len = r->resp_headers.off = 0;
	r->n_resp_headers = 0;
	e->stats.attempts++;
	if (!c || upstream_setup(c, fresh, r, &e->cfg, &upstream_hooks) < 0 ||
	    curlloop_add(e->loop, c) < 0) {
		/* Its options are not known: not back to the pool. */
		if (c)
			curl_easy_cleanup(c);
		sched_done(e->sched, r->item.q, now);
		r->eng_state = ENG_NONE;
		engine_unhold(e, r);
		fail(e, r, 500, "internal_error",
		     "could not set up the upstream request");
		release(e, r);
		return;
	}
	r->easy = c;
	r->easy_gen = e->cfg_gen;
	r->eng_state = ENG_RUNNING;
	e->n_running++;
	if (r->owner && r->owner->started)
		r->owner->started(r);
}

/* Starts everything the scheduler lets go now. */
static void dispatch(struct engine *e)
{
	struct sched_item *it;
	int64_t now = clock_now_us();

	while ((it = sched_next(e->sched, now))) {
		struct request *r = (struct request *)(void *)
			((char *)it - offsetof(struct request, item));

		start(e, r);
	}
}

/* Sends r back to the head of its queue for another attempt. */
static void requeue(struct engine *e, struct request *r, int64_t delay_ms)
{
	int64_t now = clock_now_us();

	log_debug("retrying dest=%s status=%u attempt=%u in=%" PRId64 "ms",
	          r->dest_key, r->status, r->attempts, delay_ms);
	engine_metrics_retry(e, r);
	stop_transfer(e, r);
	r->eng_state = ENG_WAITING;
	r->retrying = false;
	r->enqueued_us = now;
	e->stats.retries++;
	sched_requeue(e->sched, &r->item, now + delay_ms * 1000, now);
}

/*
 * A client's request whose predicted wait already passes its deadline is
 * answered now (503 and the prediction), not with a 504 when the deadline
 * comes. Jobs wait as long as they need: never.
 */
static bool hopeless(struct engine *e, struct request *r,
                     struct sched_queue *q, int64_t now)
{
	int64_t wait;
	char msg[160];

	if (!e->cfg->reject_hopeless || r->policy.no_deadline ||
	    r->policy.durable)
		return false;
	wait = sched_predict_wait(q, now);
	if (now + wait <= r->deadline * 1000)
		return false;
	e->stats.hopeless++;
	snprintf(msg, sizeof(msg), "the predicted wait in this queue, %" PRId64
	         " ms, is longer than the request's deadline allows",
	         (wait + 999) / 1000);
	pthread_mutex_lock(&r->lock);
	r->err_wait_ms = (wait + 999) / 1000;
	pthread_mutex_unlock(&r->lock);
	fail(e, r, 503, "queue_wait_exceeds_deadline", msg);
	return true;
}

static void on_submit(struct engine *e, struct request *r)
{
	struct sched_queue *q;
	bool cancelled;
	int64_t now = clock_now_us();

	request_ref(r); /* the engine's own reference */
	r->engine = e;
	r->eng_state = ENG_NONE;
	e->stats.requests++;
	pthread_mutex_lock(&r->lock);
	cancelled = r->cancelled;
	pthread_mutex_unlock(&r->lock);
	if (cancelled) {
		release(e, r);
		return;
	}
	q = engine_queue_for(e, r);
	if (q && r->mode >= 0)
		sched_set_mode(e->sched, q, (enum rate_mode)r->mode, now);
	if (!q || (!r->policy.no_deadline &&
	           curlloop_timer_add(e->loop, &r->timer,
	                              r->deadline * 1000) < 0)) {
		fail(e, r, 503, "overloaded", "out of memory");
		release(e, r);
		return;
	}
	if (hopeless(e, r, q, now)) {
		release(e, r);
		return;
	}
	r->enqueued_us = now;
	if (sched_enqueue(e->sched, q, &r->item, now) < 0) {
		if (r->policy.wait_when_full) {
			/* Accepted already (a job): it waits for room. */
			e->stats.queue_full++;
			engine_backlog_push(e, r);
			return;
		}
		e->stats.queue_full++;
		fail(e, r, 503, "queue_full",
		     "too many requests are waiting for this destination; "
		     "try again later");
		release(e, r);
		return;
	}
	r->eng_state = ENG_WAITING;
	engine_hold(e, r);
}

static void on_unpause(struct engine *e, struct request *r)
{
	bool was;

	if (r->eng_state != ENG_RUNNING)
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
	struct engine *e = arg;
	struct curlloop_msg *l, *next;

	for (l = head; l; l = next) {
		struct req_msg *m = (struct req_msg *)(void *)
			((char *)l - offsetof(struct req_msg, link));
		struct request *r = m->req;

		next = l->next;
		atomic_store(&m->posted, false);
		switch (m->type) {
		case REQ_MSG_SUBMIT:
			on_submit(e, r);
			/*
			 * Dispatch at once, so a request that may go now is
			 * never counted as waiting against max_queued by the
			 * next submission of the same batch.
			 */
			dispatch(e);
			break;
		case REQ_MSG_CANCEL:
			if (r->eng_state == ENG_WAITING ||
			    r->eng_state == ENG_RUNNING)
				release(e, r);
			break;
		case REQ_MSG_UNPAUSE:
			on_unpause(e, r);
			break;
		default:
			break;
		}
		request_unref(r); /* the message's reference */
	}
}

/* A request's deadline. */
static void engine_timer(void *arg, struct heap_node *n)
{
	struct engine *e = arg;
	struct request *r = timer_req(n);
	bool waiting;

	pthread_mutex_lock(&r->lock);
	waiting = r->phase == REQ_WAITING;
	pthread_mutex_unlock(&r->lock);
	/* A response that has begun is not cut short. */
	if (!waiting)
		return;
	e->stats.timeouts++;
	if (r->eng_state == ENG_WAITING)
		r->queue_us += clock_now_us() - r->enqueued_us;
	fail(e, r, 504, "timeout",
	     r->attempts ? "no final response from upstream before the "
	                   "deadline"
	                 : "the request waited in its queue until the "
	                   "deadline");
	release(e, r);
}

/*
 * An opaque tunnel's connection is made: its owner gets a copy of the
 * socket (curl closes its own when the handle goes back to the pool).
 */
static void connected(struct engine *e, struct request *r, CURL *easy)
{
	curl_socket_t s = CURL_SOCKET_BAD;
	int fd = -1;

	if (curl_easy_getinfo(easy, CURLINFO_ACTIVESOCKET, &s) == CURLE_OK &&
	    s != CURL_SOCKET_BAD)
		fd = fcntl(s, F_DUPFD_CLOEXEC, 0);
	if (fd < 0) {
		fail(e, r, 502, "upstream_connect",
		     "the upstream connection was lost");
		return;
	}
	pthread_mutex_lock(&r->lock);
	r->tunnel_fd = fd;
	r->status = 200;
	r->phase = REQ_HEADERS;
	r->body_done = true;
	pthread_mutex_unlock(&r->lock);
	touch(e, r);
}

static void engine_done(void *arg, CURL *easy, CURLcode rc)
{
	struct engine *e = arg;
	struct request *r = NULL;
	bool no_answer;

	curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&r);
	pthread_mutex_lock(&r->lock);
	r->upstream_us += clock_now_us() - r->attempt_us;
	pthread_mutex_unlock(&r->lock);
	if (rc == CURLE_OK && r->policy.connect_only) {
		connected(e, r, easy);
		release(e, r);
		return;
	}

	if (r->retrying) {
		/* The answer was read for its status only; go again. */
		requeue(e, r, r->retry_delay_ms);
		return;
	}
	if (rc != CURLE_OK)
		engine_metrics_error(e, r, rc);
	pthread_mutex_lock(&r->lock);
	no_answer = r->phase == REQ_WAITING;
	if (rc == CURLE_OK && !no_answer)
		r->body_done = true;
	pthread_mutex_unlock(&r->lock);

	if (rc == CURLE_OK && !no_answer) {
		touch(e, r);
	} else if (no_answer) {
		/* Nothing reached the client: a failure may be retried. */
		if (rc != CURLE_OK &&
		    upstream_failed_before_response(r, rc) &&
		    want_retry(e, r, 0, -1)) {
			requeue(e, r, r->retry_delay_ms);
			return;
		}
		if (rc == CURLE_OK) {
			fail(e, r, 502, "upstream_error",
			     "upstream sent no response");
		} else {
			char msg[DEST_HOST_MAX + CURL_ERROR_SIZE + 128];
			const char *code;
			unsigned st = upstream_failure(r, rc, &code, msg,
			                               sizeof(msg));

			fail(e, r, st, code, msg);
		}
	} else {
		/* The body broke off: the client sees the stream end badly. */
		pthread_mutex_lock(&r->lock);
		r->body_error = true;
		r->body_done = true;
		pthread_mutex_unlock(&r->lock);
		touch(e, r);
	}
	release(e, r);
}

static void fail_all(struct engine *e)
{
	struct request *r;

	/* Unfinished jobs are not failed: they run again at next start. */
	e->abandon = true;
	while ((r = e->backlog)) {
		DL_DELETE2(e->backlog, r, eng_prev, eng_next);
		release(e, r);
	}
	while ((r = e->held)) {
		fail(e, r, 503, "shutting_down", "the proxy is shutting down");
		release(e, r);
	}
}

/*
 * The end of a round: dispatch what may go, wake the fronts of the
 * requests whose state changed, answer a /queues page, and once a second
 * retry the backlog and reclaim idle queues.
 */
/* The limits that follow the configuration, from e->cfg. */
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

static void take_config(struct engine *e)
{
	const struct config *old = e->cfg;
	const struct config *n = config_slot_take(&e->cfg_next);

	if (!n)
		return;
	e->cfg = n;
	e->cfg_gen++;
	easy_pool_drain(e);
	set_sched_params(e);
	engine_queues_reconfigure(e, old);
	config_free(old);
}

static int64_t engine_round(void *arg)
{
	struct engine *e = arg;
	int64_t next;

	take_config(e);
	dispatch(e);
	flush_touched(e);
	engine_answer_page(e);
	if (clock_now_ms() >= e->next_collect) {
		engine_backlog_retry(e);
		sched_modes_tick(e->sched, clock_now_us());
		dispatch(e);
		sched_collect(e->sched, clock_now_us());
		e->next_collect = clock_now_ms() + 1000;
	}
	next = sched_next_wakeup(e->sched);
	return next < e->next_collect * 1000 ? next : e->next_collect * 1000;
}

static void engine_stopped(void *arg)
{
	struct engine *e = arg;

	fail_all(e);
	flush_touched(e);
}

static const struct curlloop_ops engine_ops = {
	.inbox = engine_inbox,
	.timer = engine_timer,
	.done = engine_done,
	.round = engine_round,
	.stopped = engine_stopped,
};

struct engine *engine_new(const struct config *cfg)
{
	struct engine *e;

	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->cfg = config_ref(cfg);
	pthread_mutex_init(&e->snap_lock, NULL);
	pthread_cond_init(&e->snap_cond, NULL);
	if (getrandom(&e->rng, sizeof(e->rng), 0) != sizeof(e->rng) ||
	    e->rng == 0)
		e->rng = (uint64_t)clock_now_us() | 1;
	e->sched = sched_new(cfg->max_in_flight, cfg->max_queued,
	                     cfg->learn.idle_reset * 1000);
	e->loop = curlloop_new(&engine_ops, e,
	                       cfg->max_in_flight > 64 ? cfg->max_in_flight
	                                               : 64);
	if (e->sched)
		set_sched_params(e);
	if (e->loop) {
		curlloop_precise(e->loop); /* pacing to the microsecond */
		curlloop_set_name(e->loop, "sluice-engine");
	}
	if (!e->loop || !e->sched) {
		engine_free(e);
		return NULL;
	}
	return e;
}

int engine_start(struct engine *e)
{
	return curlloop_start(e->loop);
}

struct curlloop *engine_loop(struct engine *e)
{
	return e->loop;
}

void engine_stop(struct engine *e)
{
	curlloop_stop(e->loop);
}

void engine_reconfigure(struct engine *e, const struct config *cfg)
{
	config_slot_offer(&e->cfg_next, config_ref(cfg));
	curlloop_wake(e->loop);
}

void engine_free(struct engine *e)
{
	if (!e)
		return;
	/* Stops: the last messages, then every request held fails. */
	curlloop_free(e->loop);
	easy_pool_drain(e);
	sched_free(e->sched);
	engine_metrics_free(e);
	config_slot_done(&e->cfg_next);
	config_free(e->cfg);
	pthread_cond_destroy(&e->snap_cond);
	pthread_mutex_destroy(&e->snap_lock);
	free(e);
}

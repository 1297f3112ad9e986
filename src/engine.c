/*
 * engine.c - queues and upstream transfers on one thread.
 *
 * The loop: wait in curl_multi_poll() (woken by curl_multi_wakeup() when a
 * message arrives, or by the nearest timer), take the inbox, fire expired
 * deadlines, let curl work, collect finished transfers, dispatch whatever
 * the scheduler allows now, then wake the fronts of every request whose
 * state changed in this round. Waking once per round, not once per
 * callback, lets a small response arrive whole before its client is
 * resumed, so it is handed to MHD without a second copy.
 *
 * Every response's header block is read for rate-limit signals (learning,
 * pauses) and decides the attempt's fate: final (its body streams to the
 * client) or retried (its body is discarded and the request goes back to
 * the head of its queue, where it passes the same limits again).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "clock.h"
#include "config.h"
#include "cred.h"
#include "curlloop.h"
#include "engine.h"
#include "engine_verdict.h"
#include "heap.h"
#include "log.h"
#include "request.h"
#include "retry.h"
#include "sched.h"
#include "upstream.h"

#define EASY_POOL_MAX 256
/* The key of a destination's overflow queue: no credential hash is 1 byte. */
#define OVERFLOW_KEY "\xff"
#define OVERFLOW_KEY_LEN 1
#define OVERFLOW_LOG_MS 10000        /* one warning per this, at most */

enum eng_state { ENG_NONE, ENG_WAITING, ENG_RUNNING, ENG_DONE };

/* A doubly linked list of requests through eng_prev/eng_next. */
struct list {
	struct request *head, *tail;
};

static void list_push(struct list *l, struct request *r)
{
	r->eng_prev = l->tail;
	r->eng_next = NULL;
	if (l->tail)
		l->tail->eng_next = r;
	else
		l->head = r;
	l->tail = r;
}

static void list_unlink(struct list *l, struct request *r)
{
	if (r->eng_prev)
		r->eng_prev->eng_next = r->eng_next;
	else
		l->head = r->eng_next;
	if (r->eng_next)
		r->eng_next->eng_prev = r->eng_prev;
	else
		l->tail = r->eng_prev;
	r->eng_prev = r->eng_next = NULL;
}

struct engine {
	const struct config *cfg;
	struct curlloop *loop;       /* the thread, its transfers, deadlines */
	atomic_uint active;
	atomic_uint jobs_held;       /* of active: webhook jobs */
	atomic_bool refusing;        /* draining: no new submissions */

	/* Engine thread only. */
	struct sched *sched;         /* queues, limits, fairness */
	struct list held;            /* every request the engine holds */
	unsigned n_running;
	uint64_t rng;                /* xorshift64* state, for jitter */
	int64_t next_collect;        /* ms: sched_collect() is due */
	struct {
		uint64_t requests, attempts, retries, queue_full;
		uint64_t timeouts, learn_bad;
		uint64_t overflow;   /* requests sent to an overflow queue */
	} stats;
	int64_t overflow_logged;     /* ms, last overflow warning */

	/* /queues: another thread asks, the engine fills its page. */
	pthread_mutex_t snap_lock;
	pthread_cond_t snap_cond;
	atomic_bool snap_wanted;
	bool snap_busy, snap_ready;
	struct queues_page *snap_page; /* the asker's, while snap_busy */
	struct request *touched;     /* fronts to wake this round */
	struct jobrun *jobrun;       /* webhook jobs; NULL: none */
	/* Jobs refused by a full queue, tried again every second. */
	struct request *backlog_head, *backlog_tail;
	bool abandon;                /* stopping: jobs stay in the store */
	CURL *easy_pool[EASY_POOL_MAX];
	unsigned n_easy_pool;
};

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
	r->touch_next = e->touched;
	e->touched = r;
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

void engine_set_jobrun(struct engine *e, struct jobrun *jr)
{
	e->jobrun = jr;
}

struct jobrun *engine_jobrun(const struct engine *e)
{
	return e->jobrun;
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

/* r's answer's header block: learn, pause; its Retry-After, or -1. */
static int64_t learn_from(struct engine *e, struct request *r)
{
	struct sched_queue *q = r->item.q;
	struct verdict_learned v;
	int64_t now = clock_now_us();

	verdict_learn(e->cfg, r->resp_headers.data, r->n_resp_headers,
	              r->status, clock_wall_ms(), &v);
	e->stats.learn_bad += v.bad;
	if (v.rps > 0 || v.concurrency > 0) {
		if (e->cfg->learn.scope == LEARN_SCOPE_DESTINATION)
			sched_learn_dest(e->sched, sched_queue_dest(q), v.rps,
			                 v.concurrency, now);
		else
			sched_learn_queue(e->sched, q, v.rps, v.concurrency,
			                  now);
	}
	if (v.pause_ms > 0)
		sched_pause(e->sched, q, now + v.pause_ms * 1000, now);
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

static CURL *easy_get(struct engine *e)
{
	CURL *c;

	if (e->n_easy_pool > 0) {
		c = e->easy_pool[--e->n_easy_pool];
		curl_easy_reset(c);
		return c;
	}
	return curl_easy_init();
}

static void easy_put(struct engine *e, CURL *c)
{
	if (e->n_easy_pool < EASY_POOL_MAX)
		e->easy_pool[e->n_easy_pool++] = c;
	else
		curl_easy_cleanup(c);
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
	easy_put(e, r->easy);
	r->easy = NULL;
	e->n_running--;
}

/* The engine is done with r: drop it from every structure. */
static void release(struct engine *e, struct request *r)
{
	int64_t now = clock_now_us();

	curlloop_timer_del(e->loop, &r->timer);
	if (r->eng_state == ENG_WAITING) {
		sched_remove(e->sched, &r->item, now);
	} else if (r->eng_state == ENG_RUNNING) {
		stop_transfer(e, r);
		sched_done(e->sched, r->item.q, now);
	}
	if (r->eng_state != ENG_NONE)
		list_unlink(&e->held, r);
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
	CURL *c = easy_get(e);

	r->attempts++;
	r->queue_us += now - r->enqueued_us;
	r->status = 0;
	r->retrying = false;
	r->denied = false;
	r->got_bytes = false;
	r->err_buf[0] = '\0';
	r->resp_headers.len = r->resp_headers.off = 0;
	r->n_resp_headers = 0;
	e->stats.attempts++;
	if (!c || upstream_setup(c, r, e->cfg, &upstream_hooks) < 0 ||
	    curlloop_add(e->loop, c) < 0) {
		if (c)
			easy_put(e, c);
		sched_done(e->sched, r->item.q, now);
		r->eng_state = ENG_NONE;
		list_unlink(&e->held, r);
		fail(e, r, 500, "internal_error",
		     "could not set up the upstream request");
		release(e, r);
		return;
	}
	r->easy = c;
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
	stop_transfer(e, r);
	r->eng_state = ENG_WAITING;
	r->retrying = false;
	r->enqueued_us = now;
	e->stats.retries++;
	sched_requeue(e->sched, &r->item, now + delay_ms * 1000, now);
}

/*
 * max_queues is reached and r's credential has no queue: r joins its
 * destination's overflow queue. Counted; logged at most once every
 * OVERFLOW_LOG_MS, never with the credential.
 */
static void overflow(struct engine *e, const struct request *r)
{
	int64_t now = clock_now_ms();

	e->stats.overflow++;
	if (e->overflow_logged && now - e->overflow_logged < OVERFLOW_LOG_MS)
		return;
	e->overflow_logged = now;
	log_warn("queues full max_queues=%u, new credentials share their "
	         "destination's overflow queue dest='%s' overflowed=%" PRIu64,
	         e->cfg->max_queues, r->dest_key, e->stats.overflow);
}

static void queue_for(struct engine *e, struct request *r,
                      struct sched_queue **ret)
{
	const struct config *cfg = e->cfg;
	const struct destination *dst = &r->target.dest;
	struct sched_dest_limits dl;
	struct sched_limits ql;
	struct limits lim;
	struct sched_dest *d;
	bool by_cred;

	*ret = NULL;
	config_limits_for(cfg, dst->host, dst->port, &lim);
	dl = (struct sched_dest_limits){
		.aggregate_rps = lim.aggregate_rps,
		.aggregate_burst = lim.burst,
		.aggregate_concurrency = lim.aggregate_concurrency,
		.weight = lim.weight,
	};
	d = sched_dest_get(e->sched, r->dest_key, &dl);
	if (!d)
		return;
	ql = (struct sched_limits){
		.rps = lim.rps,
		.burst = lim.burst,
		.concurrency = lim.concurrency,
		.max_queued = lim.max_queued,
		.weight = lim.weight,
	};
	by_cred = r->has_cred && cfg->defaults.queue_by == QUEUE_BY_CREDENTIAL;
	if (by_cred && sched_n_queues(e->sched) >= cfg->max_queues &&
	    !sched_queue_find(e->sched, d, r->cred, CRED_HASH_LEN)) {
		overflow(e, r);
		*ret = sched_queue_get(e->sched, d, OVERFLOW_KEY,
		                       OVERFLOW_KEY_LEN, &ql);
		return;
	}
	if (by_cred && cfg->n_keys > 0) {
		char shown[CRED_DISPLAY_LEN + 1];

		cred_display(r->cred, shown);
		for (size_t i = 0; i < cfg->n_keys; i++)
			if (strcmp(cfg->keys[i].hash, shown) == 0)
				ql.weight = cfg->keys[i].weight;
	}
	*ret = sched_queue_get(e->sched, d, r->cred, by_cred ? CRED_HASH_LEN : 0,
	                       &ql);
}

static void backlog_push(struct engine *e, struct request *r)
{
	r->backlog_next = NULL;
	if (e->backlog_tail)
		e->backlog_tail->backlog_next = r;
	else
		e->backlog_head = r;
	e->backlog_tail = r;
}

/*
 * Jobs that found their queue full try again, in order, once a second (a
 * full queue drains slowly anyway). One still refused keeps its place and
 * does not hold back the jobs of other queues behind it.
 */
static void backlog_retry(struct engine *e)
{
	int64_t now = clock_now_us();
	struct request *r = e->backlog_head, *next;
	struct sched_queue *q;

	e->backlog_head = e->backlog_tail = NULL;
	for (; r; r = next) {
		next = r->backlog_next;
		queue_for(e, r, &q);
		if (!q || sched_enqueue(e->sched, q, &r->item, now) < 0) {
			backlog_push(e, r);
			continue;
		}
		r->enqueued_us = now;
		r->eng_state = ENG_WAITING;
		list_push(&e->held, r);
	}
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
	queue_for(e, r, &q);
	if (!q || (!r->policy.no_deadline &&
	           curlloop_timer_add(e->loop, &r->timer,
	                              r->deadline * 1000) < 0)) {
		fail(e, r, 503, "overloaded", "out of memory");
		release(e, r);
		return;
	}
	r->enqueued_us = now;
	if (sched_enqueue(e->sched, q, &r->item, now) < 0) {
		if (r->policy.wait_when_full) {
			/* Accepted already (a job): it waits for room. */
			e->stats.queue_full++;
			backlog_push(e, r);
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
	list_push(&e->held, r);
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

static void engine_done(void *arg, CURL *easy, CURLcode rc)
{
	struct engine *e = arg;
	struct request *r = NULL;
	bool no_answer;

	curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&r);

	if (r->retrying) {
		/* The answer was read for its status only; go again. */
		requeue(e, r, r->retry_delay_ms);
		return;
	}
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
	while ((r = e->backlog_head)) {
		e->backlog_head = r->backlog_next;
		release(e, r);
	}
	e->backlog_tail = NULL;
	while ((r = e->held.head)) {
		fail(e, r, 503, "shutting_down", "the proxy is shutting down");
		release(e, r);
	}
}

/* --- /queues --- */

static void snap_row(const struct sched_queue_info *qi, void *arg)
{
	struct queues_page *pg = arg;
	struct queue_row *row = &pg->rows[pg->n++];

	row->id = qi->id;
	snprintf(row->dest, sizeof(row->dest), "%s", qi->dest);
	if (qi->key_len == CRED_HASH_LEN)
		cred_display(qi->key, row->key);
	else if (qi->key_len == OVERFLOW_KEY_LEN)
		snprintf(row->key, sizeof(row->key), "overflow");
	else
		row->key[0] = '\0';
	row->rps = qi->rps;
	row->rps_learned = qi->rps_learned;
	row->concurrency = qi->concurrency;
	row->concurrency_learned = qi->concurrency_learned;
	row->burst = qi->burst;
	row->weight = qi->weight;
	row->waiting = qi->waiting;
	row->in_flight = qi->in_flight;
	row->paused_ms = qi->paused_until > pg->now
	                 ? (qi->paused_until - pg->now + 999) / 1000 : 0;
	row->idle_ms = pg->now > qi->last_active
	               ? (pg->now - qi->last_active) / 1000 : 0;
}

/* On the engine thread: O(log n + limit) copying, no JSON. */
static void snap_fill(struct engine *e, struct queues_page *pg)
{
	pg->now = clock_now_us();
	pg->n = 0;
	pg->more = sched_page(e->sched, pg->after, pg->limit, snap_row, pg);
	pg->queues = sched_n_queues(e->sched);
	pg->waiting = sched_queued(e->sched);
	pg->in_flight = sched_in_flight(e->sched);
	pg->requests = e->stats.requests;
	pg->attempts = e->stats.attempts;
	pg->retries = e->stats.retries;
	pg->queue_full = e->stats.queue_full;
	pg->learn_bad = e->stats.learn_bad;
	pg->overflow = e->stats.overflow;
	pg->engine_us = clock_now_us() - pg->now;
}

static void answer_snapshot(struct engine *e)
{
	if (!atomic_load(&e->snap_wanted))
		return;
	pthread_mutex_lock(&e->snap_lock);
	if (e->snap_page && !e->snap_ready) {
		snap_fill(e, e->snap_page);
		e->snap_ready = true;
	}
	atomic_store(&e->snap_wanted, false);
	pthread_cond_broadcast(&e->snap_cond);
	pthread_mutex_unlock(&e->snap_lock);
}

int engine_queues_page(struct engine *e, struct queues_page *pg)
{
	struct timespec until;
	bool ready = false;

	if (pg->limit == 0 || pg->limit > ENGINE_PAGE_MAX)
		return -EINVAL;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 2;
	pthread_mutex_lock(&e->snap_lock);
	/* One page at a time: wait for an earlier asker to finish. */
	while (e->snap_busy)
		if (pthread_cond_timedwait(&e->snap_cond, &e->snap_lock,
		                           &until) != 0)
			goto out;
	e->snap_busy = true;
	e->snap_ready = false;
	e->snap_page = pg;
	atomic_store(&e->snap_wanted, true);
	pthread_mutex_unlock(&e->snap_lock);
	curlloop_wake(e->loop);
	pthread_mutex_lock(&e->snap_lock);
	while (!e->snap_ready)
		if (pthread_cond_timedwait(&e->snap_cond, &e->snap_lock,
		                           &until) != 0)
			break;
	/* Filled under the lock or not at all: pg is ours again. */
	ready = e->snap_ready;
	e->snap_page = NULL;
	e->snap_ready = false;
	atomic_store(&e->snap_wanted, false);
	e->snap_busy = false;
	pthread_cond_broadcast(&e->snap_cond);
out:
	pthread_mutex_unlock(&e->snap_lock);
	return ready ? 0 : -ETIMEDOUT;
}

/*
 * The end of a round: dispatch what may go, wake the fronts of the
 * requests whose state changed, answer a /queues page, and once a second
 * retry the backlog and reclaim idle queues.
 */
static int64_t engine_round(void *arg)
{
	struct engine *e = arg;
	int64_t next;

	dispatch(e);
	flush_touched(e);
	answer_snapshot(e);
	if (clock_now_ms() >= e->next_collect) {
		backlog_retry(e);
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

static const struct curlloop_ops engine_loop = {
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
	e->cfg = cfg;
	pthread_mutex_init(&e->snap_lock, NULL);
	pthread_cond_init(&e->snap_cond, NULL);
	if (getrandom(&e->rng, sizeof(e->rng), 0) != sizeof(e->rng) ||
	    e->rng == 0)
		e->rng = (uint64_t)clock_now_us() | 1;
	e->sched = sched_new(cfg->max_in_flight, cfg->max_queued,
	                     cfg->learn.idle_reset * 1000);
	e->loop = curlloop_new(&engine_loop, e,
	                       cfg->max_in_flight > 64 ? cfg->max_in_flight
	                                               : 64);
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

void engine_stop(struct engine *e)
{
	curlloop_stop(e->loop);
}

void engine_free(struct engine *e)
{
	if (!e)
		return;
	/* Stops: the last messages, then every request held fails. */
	curlloop_free(e->loop);
	while (e->n_easy_pool > 0)
		curl_easy_cleanup(e->easy_pool[--e->n_easy_pool]);
	sched_free(e->sched);
	pthread_cond_destroy(&e->snap_cond);
	pthread_mutex_destroy(&e->snap_lock);
	free(e);
}

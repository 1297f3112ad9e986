/*
 * delivery.c - the webhook delivery thread.
 *
 * The thread is a curlloop. Every pending delivery (one job, one webhook
 * URL) is a struct target with a timer for its due time (the store keeps
 * next_at in unix ms; the timer runs on the monotonic clock). Due targets
 * move to a FIFO of ready ones and start while fewer than
 * DELIVERY_PARALLEL are in flight; nothing scans. Store updates are
 * asynchronous (jobs_delivery_result_async), so the thread never waits
 * for a commit.
 *
 * A job keeps only what scheduling needs (delivery_job.c). Its payload is
 * built when a try starts, from the store's row (jobs_get_result, one row
 * through a read connection of its own, just before the transfer) and
 * shared by its tries in flight; the last one to end frees it.
 * DELIVERY_PAYLOAD_BYTES bounds what payloads hold at once.
 */
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <utlist.h>

#include "clock.h"
#include "config.h"
#include "curlloop.h"
#include "delivery.h"
#include "delivery_int.h"
#include "headers.h"
#include "heap.h"
#include "log.h"
#include "upstream.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "unknown"
#endif

struct delivery {
	const struct config *cfg;     /* the thread's; a reference */
	struct config_slot cfg_next;  /* a reload's, taken at a round */
	struct jobs *store;
	struct webhook_secret secret; /* the thread's */
	bool sign;
	struct curlloop *loop;

	pthread_mutex_t lock;         /* stats, next_secret */
	struct delivery_stats stats;
	struct webhook_secret next_secret; /* a reload's, with cfg_next */

	/* Thread only. */
	struct target *ready;         /* FIFO of due targets (utlist DL) */
	unsigned running;
	size_t payload_bytes;         /* payloads in memory */
	struct delivery_job *live;    /* every job held (utlist DL) */
};

static struct target *timer_target(struct heap_node *n)
{
	return (struct target *)((char *)n - offsetof(struct target, timer));
}

int64_t delivery_due_us(int64_t due_ms, int64_t wall_ms, int64_t now_us)
{
	int64_t wait = due_ms - wall_ms;

	return wait > 0 ? now_us + wait * 1000 : now_us;
}

/* Arms t's timer for due (unix ms). 0 or -ENOMEM. */
static int arm(struct delivery *d, struct target *t, int64_t due)
{
	return curlloop_timer_add(d->loop, &t->timer,
	                          delivery_due_us(due, clock_wall_ms(),
	                                          clock_now_us()));
}

/* A target is done for good; the job goes when its last one is. */
static void settle(struct delivery *d, struct target *t)
{
	struct delivery_job *dj = t->job;

	t->settled = true;
	if (--dj->n_open > 0)
		return;
	DL_DELETE(d->live, dj);
	pthread_mutex_lock(&d->lock);
	d->stats.jobs_done++;
	pthread_mutex_unlock(&d->lock);
	delivery_job_free(dj);
}

/* --- transfers --- */

static size_t discard_cb(char *p, size_t size, size_t n, void *arg)
{
	return size * n;
}

static curl_socket_t opensocket_cb(void *arg, curlsocktype purpose,
                                   struct curl_sockaddr *a)
{
	const struct delivery *d = arg;

	(void)purpose;
	return upstream_socket(&d->cfg->deny_destinations, a, NULL);
}

/* The fields of one try: signed afresh, receivers check the time. */
static int try_headers(struct delivery *d, struct target *t)
{
	char sig[WEBHOOK_SIGNATURE_MAX];
	struct hlist l = { 0 };
	int r;

	r = header_list_add(&l, "Content-Type", "application/json");
	if (r == 0)
		r = header_list_add(&l, "User-Agent",
		                    "sluiced/" PACKAGE_VERSION);
	if (r == 0)
		r = header_list_add(&l, "Expect", NULL);
	if (r == 0)
		r = header_list_add(&l, "Accept", NULL);
	if (r == 0 && d->sign) {
		if (webhook_sign(d->secret.key, d->secret.len,
		                 clock_wall_ms() / 1000, t->job->payload,
		                 t->job->payload_len, sig, sizeof(sig)) < 0)
			r = -ENOMEM;
		else
			r = header_list_add(&l, WEBHOOK_SIGNATURE_HEADER, sig);
	}
	header_list_free(&t->hdrs);
	t->hdrs = l;
	return r;
}

static void record(struct delivery *d, struct target *t, bool ok,
                   int status, const char *err, int64_t next_at)
{
	int r = jobs_delivery_result_async(d->store, t->job->id, t->url, ok,
	                                   status, err, next_at, NULL, NULL);

	if (r < 0 && r != -ESHUTDOWN)
		log_warn("cannot record a webhook delivery job=%s: %s, "
		         "it may be repeated after a restart", t->job->id,
		         strerror(-r));
}

/* A try failed: due again later, or given up. */
static void try_failed(struct delivery *d, struct target *t, int status,
                       const char *why)
{
	const struct config *cfg = d->cfg;
	int64_t now = clock_wall_ms();
	int64_t next = webhook_next_attempt(cfg->webhooks.retry_schedule,
	                                    cfg->webhooks.n_retry_schedule,
	                                    t->attempts, t->job->finished_ms,
	                                    cfg->webhooks.give_up_after, now);

	pthread_mutex_lock(&d->lock);
	d->stats.failed_attempts++;
	d->stats.gave_up += next < 0;
	pthread_mutex_unlock(&d->lock);
	if (next < 0) {
		log_warn("webhook delivery gave up job=%s webhook=%zu "
		         "attempts=%u last='%s'", t->job->id, t->index + 1,
		         t->attempts, why);
		record(d, t, false, status, why, JOBS_GIVE_UP);
		settle(d, t);
		return;
	}
	log_debug("webhook delivery failed job=%s webhook=%zu attempt=%u "
	          "error='%s', next in %" PRId64 "ms", t->job->id,
	          t->index + 1, t->attempts, why, next - now);
	record(d, t, false, status, why, next);
	if (arm(d, t, next) < 0) {
		log_error("out of memory: webhook delivery dropped job=%s, "
		          "it resumes after a restart", t->job->id);
		settle(d, t);
	}
}

static void start(struct delivery *d, struct target *t)
{
	const struct config *cfg = d->cfg;
	struct delivery_job *dj = t->job;
	CURLcode rc = CURLE_OK;
	CURL *c;
	int r;

	r = delivery_payload_hold(dj, d->store, &d->payload_bytes);
	if (r == -EINVAL || r == -ENOENT) {
		log_error("cannot build the webhook payload job=%s: %s, "
		          "giving up", dj->id, strerror(-r));
		t->attempts++;
		record(d, t, false, 0, "cannot build the payload",
		       JOBS_GIVE_UP);
		settle(d, t);
		return;
	}
	if (r < 0) {
		/* Out of memory, or the store could not be read: later. */
		t->attempts++;
		try_failed(d, t, 0, r == -ENOMEM ? "out of memory" :
		           "cannot read the job's result");
		return;
	}
	c = curl_easy_init();
	if (!c || try_headers(d, t) < 0) {
		curl_easy_cleanup(c);
		delivery_payload_drop(dj, &d->payload_bytes);
		t->attempts++;
		try_failed(d, t, 0, "out of memory");
		return;
	}
	t->err[0] = '\0';
#define SET(opt, val) \
	do { if (rc == CURLE_OK) rc = curl_easy_setopt(c, opt, val); } while (0)
	SET(CURLOPT_URL, t->url);
	SET(CURLOPT_PROXY, "");
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_PRIVATE, t);
	SET(CURLOPT_HTTPHEADER, t->hdrs.head);
	SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)dj->payload_len);
	SET(CURLOPT_POSTFIELDS, dj->payload);
	SET(CURLOPT_WRITEFUNCTION, discard_cb);
	SET(CURLOPT_OPENSOCKETFUNCTION, opensocket_cb);
	SET(CURLOPT_OPENSOCKETDATA, d);
	SET(CURLOPT_ERRORBUFFER, t->err);
	SET(CURLOPT_TIMEOUT_MS, (long)cfg->webhooks.timeout);
	if (cfg->tls.upstream_ca_file)
		SET(CURLOPT_CAINFO, cfg->tls.upstream_ca_file);
#undef SET
	if (rc != CURLE_OK || curlloop_add(d->loop, c) < 0) {
		curl_easy_cleanup(c);
		delivery_payload_drop(dj, &d->payload_bytes);
		t->attempts++;
		try_failed(d, t, 0, "cannot set up the request");
		return;
	}
	t->easy = c;
	d->running++;
	pthread_mutex_lock(&d->lock);
	d->stats.attempts++;
	pthread_mutex_unlock(&d->lock);
}

static void on_done(struct delivery *d, struct target *t, CURLcode rc)
{
	struct delivery_job *dj = t->job;
	long status = 0;
	char why[CURL_ERROR_SIZE + 64];

	curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
	curlloop_remove(d->loop, t->easy);
	curl_easy_cleanup(t->easy);
	t->easy = NULL;
	delivery_payload_drop(dj, &d->payload_bytes);
	d->running--;
	t->attempts++;
	if (rc == CURLE_OK && status >= 200 && status <= 299) {
		pthread_mutex_lock(&d->lock);
		d->stats.delivered++;
		pthread_mutex_unlock(&d->lock);
		record(d, t, true, (int)status, NULL, 0);
		if (++dj->n_delivered == dj->quorum)
			log_debug("job delivered job=%s quorum=%u/%zu "
			         "attempts=%u", dj->id, dj->quorum, dj->n,
			         t->attempts);
		settle(d, t);
		return;
	}
	if (rc == CURLE_OK)
		snprintf(why, sizeof(why), "HTTP %ld", status);
	else
		snprintf(why, sizeof(why), "%s",
		         t->err[0] ? t->err : curl_easy_strerror(rc));
	try_failed(d, t, rc == CURLE_OK ? (int)status : 0, why);
}

/* --- the loop's callbacks --- */

static void delivery_done(void *arg, CURL *easy, CURLcode rc)
{
	struct target *t = NULL;

	curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&t);
	on_done(arg, t, rc);
}

/* Submitted jobs join the live list; their open targets are armed. */
static void delivery_inbox(void *arg, struct curlloop_msg *head)
{
	struct delivery *d = arg;
	struct curlloop_msg *m, *next;

	for (m = head; m; m = next) {
		struct delivery_job *dj = (struct delivery_job *)(void *)
			((char *)m - offsetof(struct delivery_job, msg));

		next = m->next;
		DL_PREPEND(d->live, dj);
		for (size_t i = 0, n = dj->n; i < n; i++) {
			struct target *t = &dj->t[i];
			bool last;

			if (t->settled)
				continue;
			if (arm(d, t, t->timer.when) < 0) {
				log_error("out of memory: webhook delivery "
				          "dropped job=%s, it resumes after a "
				          "restart", dj->id);
				/* The last open target's settle frees dj. */
				last = dj->n_open == 1;
				settle(d, t);
				if (last)
					break;
			}
		}
	}
}

/* A target is due: it joins the ready FIFO. */
static void delivery_timer(void *arg, struct heap_node *n)
{
	struct delivery *d = arg;
	struct target *t = timer_target(n);

	t->ready = true;
	DL_APPEND2(d->ready, t, ready_prev, ready_next);
}

bool delivery_may_start(unsigned running, size_t payload_bytes,
                        bool in_memory, size_t body_len)
{
	if (running >= DELIVERY_PARALLEL)
		return false;
	return in_memory || payload_bytes == 0 ||
	       (payload_bytes < DELIVERY_PAYLOAD_BYTES &&
	        body_len <= DELIVERY_PAYLOAD_BYTES - payload_bytes);
}

/* The first ready target may start (delivery_may_start). */
static bool can_start(const struct delivery *d)
{
	const struct delivery_job *dj;

	if (!d->ready)
		return false;
	dj = d->ready->job;
	return delivery_may_start(d->running, d->payload_bytes,
	                          dj->payload != NULL, dj->body_len);
}

/* A reload's configuration and secret, on the thread. */
static void take_config(struct delivery *d)
{
	if (!config_slot_swap(&d->cfg_next, &d->cfg))
		return;
	pthread_mutex_lock(&d->lock);
	d->secret = d->next_secret;
	pthread_mutex_unlock(&d->lock);
	d->sign = d->secret.len > 0;
}

void delivery_reconfigure(struct delivery *d, const struct config *cfg,
                          const struct webhook_secret *secret)
{
	pthread_mutex_lock(&d->lock);
	if (secret && secret->len)
		d->next_secret = *secret;
	else
		OPENSSL_cleanse(&d->next_secret, sizeof(d->next_secret));
	pthread_mutex_unlock(&d->lock);
	config_slot_offer(&d->cfg_next, config_ref(cfg));
	curlloop_wake(d->loop);
}

/* Starts the ready targets that may start. */
static int64_t delivery_round(void *arg)
{
	struct delivery *d = arg;

	take_config(d);
	while (can_start(d)) {
		struct target *t = d->ready;

		DL_DELETE2(d->ready, t, ready_prev, ready_next);
		t->ready = false;
		start(d, t);
	}
	return INT64_MAX;
}

static void delivery_stopped(void *arg)
{
	(void)arg; /* delivery_free() ends the live jobs */
}

static const struct curlloop_ops delivery_loop = {
	.inbox = delivery_inbox,
	.timer = delivery_timer,
	.done = delivery_done,
	.round = delivery_round,
	.stopped = delivery_stopped,
};

void delivery_submit(struct delivery *d, struct delivery_job *dj)
{
	if (dj && curlloop_post(d->loop, &dj->msg) < 0)
		delivery_job_free(dj);
}

void delivery_stats(struct delivery *d, struct delivery_stats *ret)
{
	pthread_mutex_lock(&d->lock);
	*ret = d->stats;
	pthread_mutex_unlock(&d->lock);
}

struct delivery *delivery_new(const struct config *cfg, struct jobs *store,
                              const struct webhook_secret *secret)
{
	struct delivery *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	d->cfg = config_ref(cfg);
	d->store = store;
	if (secret && secret->len) {
		d->secret = *secret;
		d->sign = true;
	}
	pthread_mutex_init(&d->lock, NULL);
	d->loop = curlloop_new(&delivery_loop, d, DELIVERY_PARALLEL);
	if (!d->loop) {
		delivery_free(d);
		return NULL;
	}
	curlloop_set_name(d->loop, "sluice-deliver");
	return d;
}

int delivery_start(struct delivery *d)
{
	return curlloop_start(d->loop);
}

void delivery_stop(struct delivery *d)
{
	if (d && d->loop)
		curlloop_stop(d->loop);
}

void delivery_free(struct delivery *d)
{
	struct delivery_job *dj, *next;

	if (!d)
		return;
	delivery_stop(d);
	DL_FOREACH_SAFE(d->live, dj, next) {
		for (size_t i = 0; i < dj->n; i++)
			if (dj->t[i].easy) {
				curlloop_remove(d->loop, dj->t[i].easy);
				curl_easy_cleanup(dj->t[i].easy);
			}
		delivery_job_free(dj);
	}
	curlloop_free(d->loop);
	OPENSSL_cleanse(&d->secret, sizeof(d->secret));
	OPENSSL_cleanse(&d->next_secret, sizeof(d->next_secret));
	config_slot_done(&d->cfg_next);
	config_free(d->cfg);
	pthread_mutex_destroy(&d->lock);
	free(d);
}

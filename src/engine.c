/*
 * engine.c - upstream transfers on one thread.
 *
 * The loop: wait in curl_multi_poll() (woken by curl_multi_wakeup() when a
 * message arrives, or by the nearest timer), take the inbox, fire expired
 * timers, let curl work, collect finished transfers, then wake the fronts
 * of every request whose state changed in this round. Waking once per
 * round, not once per callback, lets a small response arrive whole before
 * its client is resumed, so it is handed to MHD without a second copy.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "config.h"
#include "engine.h"
#include "front.h"
#include "heap.h"
#include "log.h"
#include "request.h"

/* Response bytes buffered per request before the transfer is paused. */
#define BODY_HIGH_WATER (256 * 1024)
#define CONNECT_TIMEOUT_MS 30000
#define EASY_POOL_MAX 256

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
	CURLM *multi;
	pthread_t thread;
	bool started;
	atomic_uint active;

	pthread_mutex_t inbox_lock;  /* guards inbox, refusing, stopping */
	struct req_msg *inbox_head, *inbox_tail;
	bool refusing;               /* draining: no new submissions */
	bool stopping;               /* thread told to end */

	/* Engine thread only. */
	struct heap timers;          /* request deadlines */
	struct list waiting;         /* over max_in_flight, FIFO */
	struct list running;         /* transfers in the multi handle */
	unsigned n_running;
	struct request *touched;     /* fronts to wake this round */
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
		front_wake(r);
		request_unref(r);
	}
}

/* Queues a message. -ESHUTDOWN when the engine takes no more. */
static int post(struct engine *e, struct request *r, enum req_msg_type t)
{
	struct req_msg *m = &r->msg[t];
	bool wake;

	if (atomic_exchange(&m->posted, true))
		return 0;
	m->next = NULL;
	pthread_mutex_lock(&e->inbox_lock);
	if (e->stopping || (t == REQ_MSG_SUBMIT && e->refusing)) {
		pthread_mutex_unlock(&e->inbox_lock);
		atomic_store(&m->posted, false);
		return -ESHUTDOWN;
	}
	if (t == REQ_MSG_SUBMIT)
		atomic_fetch_add(&e->active, 1);
	request_ref(r);
	wake = !e->inbox_head;
	if (e->inbox_tail)
		e->inbox_tail->next = m;
	else
		e->inbox_head = m;
	e->inbox_tail = m;
	pthread_mutex_unlock(&e->inbox_lock);
	/* A non-empty inbox already has a wakeup on its way. */
	if (wake)
		curl_multi_wakeup(e->multi);
	return 0;
}

int engine_submit(struct engine *e, struct request *r)
{
	return post(e, r, REQ_MSG_SUBMIT);
}

void engine_refuse(struct engine *e)
{
	pthread_mutex_lock(&e->inbox_lock);
	e->refusing = true;
	pthread_mutex_unlock(&e->inbox_lock);
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

/* --- upstream callbacks (engine thread, inside curl) --- */

static size_t header_cb(char *line, size_t size, size_t n, void *arg)
{
	struct request *r = arg;
	size_t len = size * n;
	const char *colon, *v, *end;
	struct buf *h = &r->resp_headers;

	if (r->status)
		return len; /* trailers, after the body: not forwarded */
	end = line + len;
	while (end > line && (end[-1] == '\n' || end[-1] == '\r'))
		end--;
	if (len >= 5 && memcmp(line, "HTTP/", 5) == 0) {
		/* A new status line: forget any 1xx block before it. */
		h->len = h->off = 0;
		r->n_resp_headers = 0;
		return len;
	}
	if (end == line) {
		long status = 0;

		curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
		if (status < 200)
			return len;
		pthread_mutex_lock(&r->lock);
		r->status = (unsigned)status;
		r->phase = REQ_HEADERS;
		pthread_mutex_unlock(&r->lock);
		touch(r->engine, r);
		return len;
	}
	if (*line == ' ' || *line == '\t') {
		/* obs-fold: continue the previous value after one space. */
		if (r->n_resp_headers == 0)
			return len;
		while (line < end && (*line == ' ' || *line == '\t'))
			line++;
		h->len--; /* drop the value's NUL */
		if (buf_append(h, " ", 1) < 0 ||
		    buf_append(h, line, (size_t)(end - line)) < 0 ||
		    buf_append(h, "", 1) < 0)
			return 0;
		return len;
	}
	colon = memchr(line, ':', (size_t)(end - line));
	if (!colon || colon == line)
		return len; /* not a field; ignore it */
	v = colon + 1;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	if (buf_append(h, line, (size_t)(colon - line)) < 0 ||
	    buf_append(h, "", 1) < 0 ||
	    buf_append(h, v, (size_t)(end - v)) < 0 ||
	    buf_append(h, "", 1) < 0)
		return 0;
	r->n_resp_headers++;
	return len;
}

static size_t write_cb(char *data, size_t size, size_t n, void *arg)
{
	struct request *r = arg;
	size_t len = size * n;
	int err = 0;

	pthread_mutex_lock(&r->lock);
	if (r->cancelled) {
		pthread_mutex_unlock(&r->lock);
		return 0;
	}
	if (buf_avail(&r->resp_body) >= BODY_HIGH_WATER) {
		r->paused = true;
		pthread_mutex_unlock(&r->lock);
		return CURL_WRITEFUNC_PAUSE;
	}
	err = buf_append(&r->resp_body, data, len);
	pthread_mutex_unlock(&r->lock);
	if (err < 0)
		return 0;
	touch(r->engine, r);
	return len;
}

static curl_socket_t opensocket_cb(void *arg, curlsocktype purpose,
                                   struct curl_sockaddr *a)
{
	struct request *r = arg;
	const struct config *cfg = r->engine->cfg;

	if (cidr_list_match(&cfg->deny_destinations, &a->addr)) {
		r->denied = true;
		return CURL_SOCKET_BAD;
	}
	return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

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

static int easy_setup(struct engine *e, struct request *r, CURL *c)
{
	const struct target *t = &r->target;
	char base[DEST_HOST_MAX + 32];
	const char *path = t->path;
	char *tmp = NULL;
	CURLcode rc = CURLE_OK;

	if (destination_format(&t->dest, base, sizeof(base) - 1) < 0)
		return -EINVAL;
	strcat(base, "/");
	if (t->path_len == 0) {
		path = "/";
	} else if (path[0] == '?') {
		if (asprintf(&tmp, "/%s", path) < 0)
			return -ENOMEM;
		path = tmp;
	}

#define SET(opt, val) \
	do { if (rc == CURLE_OK) rc = curl_easy_setopt(c, opt, val); } while (0)
	SET(CURLOPT_URL, base);
	SET(CURLOPT_REQUEST_TARGET, path);
	SET(CURLOPT_PROXY, "");
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_PATH_AS_IS, 1L);
	SET(CURLOPT_PRIVATE, r);
	SET(CURLOPT_HEADERFUNCTION, header_cb);
	SET(CURLOPT_HEADERDATA, r);
	SET(CURLOPT_WRITEFUNCTION, write_cb);
	SET(CURLOPT_WRITEDATA, r);
	SET(CURLOPT_OPENSOCKETFUNCTION, opensocket_cb);
	SET(CURLOPT_OPENSOCKETDATA, r);
	SET(CURLOPT_ERRORBUFFER, r->err_buf);
	SET(CURLOPT_CONNECTTIMEOUT_MS, (long)CONNECT_TIMEOUT_MS);
	SET(CURLOPT_HTTPHEADER, r->up_headers);
	if (e->cfg->tls.upstream_ca_file)
		SET(CURLOPT_CAINFO, e->cfg->tls.upstream_ca_file);
	if (r->is_head) {
		SET(CURLOPT_NOBODY, 1L);
	} else if (strcmp(r->method, "GET") == 0 && r->body.len == 0) {
		SET(CURLOPT_HTTPGET, 1L);
	} else {
		SET(CURLOPT_CUSTOMREQUEST, r->method);
		if (r->body.len > 0 || strcmp(r->method, "POST") == 0 ||
		    strcmp(r->method, "PUT") == 0 ||
		    strcmp(r->method, "PATCH") == 0) {
			SET(CURLOPT_POSTFIELDSIZE_LARGE,
			    (curl_off_t)r->body.len);
			SET(CURLOPT_POSTFIELDS,
			    r->body.data ? r->body.data : "");
		}
	}
#undef SET
	free(tmp);
	return rc == CURLE_OK ? 0 : -EINVAL;
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

/* The engine is done with r: drop it from every structure. */
static void release(struct engine *e, struct request *r)
{
	heap_remove(&e->timers, &r->timer);
	if (r->eng_state == ENG_WAITING) {
		list_unlink(&e->waiting, r);
	} else if (r->eng_state == ENG_RUNNING) {
		list_unlink(&e->running, r);
		curl_multi_remove_handle(e->multi, r->easy);
		easy_put(e, r->easy);
		r->easy = NULL;
		e->n_running--;
	}
	r->eng_state = ENG_DONE;
	atomic_fetch_sub(&e->active, 1);
	request_unref(r);
}

static void start(struct engine *e, struct request *r)
{
	CURL *c = easy_get(e);

	if (!c || easy_setup(e, r, c) < 0 ||
	    curl_multi_add_handle(e->multi, c) != CURLM_OK) {
		if (c)
			easy_put(e, c);
		r->eng_state = ENG_NONE;
		fail(e, r, 500, "internal_error",
		     "could not set up the upstream request");
		release(e, r);
		return;
	}
	r->easy = c;
	r->eng_state = ENG_RUNNING;
	list_push(&e->running, r);
	e->n_running++;
}

static void start_waiting(struct engine *e)
{
	struct request *r;

	while (e->waiting.head && e->n_running < e->cfg->max_in_flight) {
		r = e->waiting.head;
		list_unlink(&e->waiting, r);
		start(e, r);
	}
}

static void on_submit(struct engine *e, struct request *r)
{
	bool cancelled;

	request_ref(r); /* the engine's own reference */
	r->engine = e;
	r->eng_state = ENG_NONE;
	pthread_mutex_lock(&r->lock);
	cancelled = r->cancelled;
	pthread_mutex_unlock(&r->lock);
	if (cancelled) {
		release(e, r);
		return;
	}
	if (heap_push(&e->timers, &r->timer, r->deadline) < 0) {
		fail(e, r, 503, "overloaded", "out of memory");
		release(e, r);
		return;
	}
	if (e->n_running < e->cfg->max_in_flight) {
		start(e, r);
		return;
	}
	r->eng_state = ENG_WAITING;
	list_push(&e->waiting, r);
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

static void take_inbox(struct engine *e)
{
	struct req_msg *m, *next;

	pthread_mutex_lock(&e->inbox_lock);
	m = e->inbox_head;
	e->inbox_head = e->inbox_tail = NULL;
	pthread_mutex_unlock(&e->inbox_lock);

	for (; m; m = next) {
		struct request *r = m->req;

		next = m->next;
		atomic_store(&m->posted, false);
		switch (m->type) {
		case REQ_MSG_SUBMIT:
			on_submit(e, r);
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

static void fire_timers(struct engine *e, int64_t now)
{
	struct heap_node *n;

	while ((n = heap_top(&e->timers)) && n->when <= now) {
		struct request *r = timer_req(n);
		bool waiting;

		heap_pop(&e->timers);
		pthread_mutex_lock(&r->lock);
		waiting = r->phase == REQ_WAITING;
		pthread_mutex_unlock(&r->lock);
		/* A response that has begun is not cut short. */
		if (!waiting)
			continue;
		fail(e, r, 504, "timeout",
		     "no response from upstream before the deadline");
		release(e, r);
	}
}

static bool is_tls_error(CURLcode rc)
{
	switch (rc) {
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ENGINE_NOTFOUND:
	case CURLE_SSL_ENGINE_SETFAILED:
	case CURLE_SSL_ENGINE_INITFAILED:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
	case CURLE_SSL_CRL_BADFILE:
	case CURLE_SSL_SHUTDOWN_FAILED:
	case CURLE_USE_SSL_FAILED:
		return true;
	default:
		return false;
	}
}

static void on_done(struct engine *e, struct request *r, CURLcode rc)
{
	char msg[DEST_HOST_MAX + CURL_ERROR_SIZE + 128];
	const char *host = r->target.dest.host;

	if (rc == CURLE_OK) {
		pthread_mutex_lock(&r->lock);
		if (r->phase == REQ_WAITING)
			request_fail_locked(r, 502, "upstream_error",
			                    "upstream sent no response");
		else
			r->body_done = true;
		pthread_mutex_unlock(&r->lock);
		touch(e, r);
	} else if (r->denied && rc == CURLE_COULDNT_CONNECT) {
		snprintf(msg, sizeof(msg),
		         "destination '%s' resolves to a denied address",
		         host);
		fail(e, r, 403, "destination_denied", msg);
	} else if (rc == CURLE_COULDNT_RESOLVE_HOST) {
		snprintf(msg, sizeof(msg), "dns lookup of '%s' failed", host);
		fail(e, r, 502, "upstream_dns", msg);
	} else if (rc == CURLE_COULDNT_CONNECT) {
		snprintf(msg, sizeof(msg), "connect to '%s' port %u failed: %s",
		         host, r->target.dest.port, r->err_buf);
		fail(e, r, 502, "upstream_connect", msg);
	} else if (rc == CURLE_OPERATION_TIMEDOUT) {
		snprintf(msg, sizeof(msg), "upstream '%s' timed out: %s",
		         host, r->err_buf);
		fail(e, r, 502, "upstream_timeout", msg);
	} else if (is_tls_error(rc)) {
		snprintf(msg, sizeof(msg), "tls with '%s' failed: %s", host,
		         r->err_buf);
		fail(e, r, 502, "upstream_tls", msg);
	} else {
		snprintf(msg, sizeof(msg), "upstream '%s' failed: %s", host,
		         r->err_buf[0] ? r->err_buf : curl_easy_strerror(rc));
		fail(e, r, 502, "upstream_error", msg);
	}
	release(e, r);
}

static void read_done(struct engine *e)
{
	CURLMsg *m;
	int left;

	while ((m = curl_multi_info_read(e->multi, &left))) {
		struct request *r = NULL;

		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE,
		                  (char **)&r);
		on_done(e, r, m->data.result);
	}
}

static void fail_all(struct engine *e)
{
	struct list *lists[] = { &e->waiting, &e->running };

	for (size_t i = 0; i < 2; i++) {
		while (lists[i]->head) {
			struct request *r = lists[i]->head;

			fail(e, r, 503, "shutting_down",
			     "the proxy is shutting down");
			release(e, r);
		}
	}
}

static void *engine_main(void *arg)
{
	struct engine *e = arg;
	int still;

	for (;;) {
		struct heap_node *top = heap_top(&e->timers);
		int timeout = 1000;
		bool stop;

		if (top) {
			int64_t d = top->when - clock_now_ms();

			timeout = d < 0 ? 0 : d > 1000 ? 1000 : (int)d;
		}
		curl_multi_poll(e->multi, NULL, 0, timeout, NULL);
		take_inbox(e);
		fire_timers(e, clock_now_ms());
		curl_multi_perform(e->multi, &still);
		read_done(e);
		start_waiting(e);
		flush_touched(e);

		pthread_mutex_lock(&e->inbox_lock);
		stop = e->stopping;
		pthread_mutex_unlock(&e->inbox_lock);
		if (stop)
			break;
	}
	take_inbox(e);
	fail_all(e);
	flush_touched(e);
	return NULL;
}

struct engine *engine_new(const struct config *cfg)
{
	struct engine *e;

	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->cfg = cfg;
	pthread_mutex_init(&e->inbox_lock, NULL);
	e->multi = curl_multi_init();
	if (!e->multi) {
		pthread_mutex_destroy(&e->inbox_lock);
		free(e);
		return NULL;
	}
	curl_multi_setopt(e->multi, CURLMOPT_MAXCONNECTS,
	                  (long)(cfg->max_in_flight > 64 ? cfg->max_in_flight
	                                                 : 64));
	return e;
}

int engine_start(struct engine *e)
{
	int r = pthread_create(&e->thread, NULL, engine_main, e);

	if (r)
		return -r;
	e->started = true;
	return 0;
}

void engine_stop(struct engine *e)
{
	if (!e->started)
		return;
	pthread_mutex_lock(&e->inbox_lock);
	e->stopping = true;
	pthread_mutex_unlock(&e->inbox_lock);
	curl_multi_wakeup(e->multi);
	pthread_join(e->thread, NULL);
	e->started = false;
}

void engine_free(struct engine *e)
{
	if (!e)
		return;
	engine_stop(e);
	take_inbox(e); /* nothing arrives once stopping; be sure */
	while (e->n_easy_pool > 0)
		curl_easy_cleanup(e->easy_pool[--e->n_easy_pool]);
	curl_multi_cleanup(e->multi);
	heap_done(&e->timers);
	pthread_mutex_destroy(&e->inbox_lock);
	free(e);
}

/*
 * jobrun.c - webhook jobs through the daemon (see jobrun.h).
 *
 * A job's upstream request is rebuilt from what the store keeps (method,
 * absolute URL, [[name, value], ...] header list, body), both for a new
 * job and after a restart, so the two cannot differ.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "classify.h"
#include "clock.h"
#include "config.h"
#include "cred.h"
#include "delivery.h"
#include "engine.h"
#include "headers.h"
#include "http.h"
#include "jobrun.h"
#include "log.h"
#include "request.h"
#include "retry.h"

/* Stored jobs read per page, so that GET /jobs/<id> is not held long. */
#define PAGE_JOBS 1000

struct jobrun {
	const struct config *cfg;
	struct jobs *store;
	struct engine *engine;
	struct delivery *delivery;

	pthread_mutex_t lock;        /* guards what follows */
	pthread_cond_t wake;         /* the pager: room freed, or stopping */
	/* Accepted and not finished, stored or in memory: jobs.max_pending
	 * and jobs.max_pending_bytes (request bodies) cap these. */
	uint64_t pending, pending_bytes;
	/* Of those, the ones the engine holds (in memory): at most the caps,
	 * as new jobs are only accepted below them. */
	uint64_t held, held_bytes;
	/* Unfinished jobs found at start and not loaded yet: row numbers
	 * (page_after, page_last] of the store. */
	int64_t page_after, page_last;
	bool paging;
	bool stopping;
	pthread_t pager;
	bool pager_started;
};

/* What the engine's job request carries besides the request itself. */
struct job_run {
	struct jobrun *jr;
	size_t body_len;
	bool counted;                /* in jr->held and jr->pending */
	char id[JOB_ID_LEN + 1];
	char *idempotent_key;
	char *metadata_json;
	char **webhooks;
	size_t n_webhooks;
	unsigned quorum;
};

/* Everything a job's request is built from (the store's columns). */
struct job_spec {
	const char *method, *url, *headers_json;
	const void *body;
	size_t body_len;
	const unsigned char *cred;
	size_t cred_len;
	const char *idempotent_key, *metadata_json;
	const char *const *webhooks;
	size_t n_webhooks;
	unsigned quorum;
};

struct jobrun *jobrun_new(const struct config *cfg, struct jobs *store,
                          struct engine *e, struct delivery *d)
{
	struct jobrun *jr = calloc(1, sizeof(*jr));

	if (!jr)
		return NULL;
	jr->cfg = cfg;
	jr->store = store;
	jr->engine = e;
	jr->delivery = d;
	pthread_mutex_init(&jr->lock, NULL);
	pthread_cond_init(&jr->wake, NULL);
	return jr;
}

void jobrun_stop(struct jobrun *jr)
{
	if (!jr)
		return;
	pthread_mutex_lock(&jr->lock);
	jr->stopping = true;
	pthread_cond_broadcast(&jr->wake);
	pthread_mutex_unlock(&jr->lock);
	if (jr->pager_started)
		pthread_join(jr->pager, NULL);
	jr->pager_started = false;
}

void jobrun_free(struct jobrun *jr)
{
	if (!jr)
		return;
	jobrun_stop(jr);
	pthread_cond_destroy(&jr->wake);
	pthread_mutex_destroy(&jr->lock);
	free(jr);
}

void jobrun_pending(struct jobrun *jr, struct jobrun_pending *ret)
{
	pthread_mutex_lock(&jr->lock);
	ret->jobs = jr->pending;
	ret->bytes = jr->pending_bytes;
	ret->held = jr->held;
	ret->held_bytes = jr->held_bytes;
	ret->stored = jr->pending - jr->held;
	pthread_mutex_unlock(&jr->lock);
}

/*
 * Counts in one more accepted job of len body bytes, held in memory, or
 * answers why not: -EFBIG alone over jobs.max_pending_bytes, -EDQUOT at
 * jobs.max_pending, -ENOBUFS over jobs.max_pending_bytes.
 */
static int pending_reserve(struct jobrun *jr, size_t len)
{
	const struct config *cfg = jr->cfg;
	int err = 0;

	if (len > cfg->jobs.max_pending_bytes)
		return -EFBIG;
	pthread_mutex_lock(&jr->lock);
	if (jr->pending >= cfg->jobs.max_pending) {
		err = -EDQUOT;
	} else if (jr->pending_bytes > cfg->jobs.max_pending_bytes ||
	           len > cfg->jobs.max_pending_bytes - jr->pending_bytes) {
		err = -ENOBUFS;
	} else {
		jr->pending++;
		jr->pending_bytes += len;
		jr->held++;
		jr->held_bytes += len;
	}
	pthread_mutex_unlock(&jr->lock);
	return err;
}

/*
 * A job of len body bytes leaves memory (held) and, when it finished or
 * was never accepted, the pending count too; the pager may have room.
 */
static void pending_release(struct jobrun *jr, size_t len, bool finished)
{
	pthread_mutex_lock(&jr->lock);
	jr->held--;
	jr->held_bytes -= len;
	if (finished) {
		jr->pending--;
		jr->pending_bytes -= len;
	}
	if (jr->paging)
		pthread_cond_signal(&jr->wake);
	pthread_mutex_unlock(&jr->lock);
}

/* The job leaves the counts, once. */
static void job_run_release(struct job_run *jrun, bool finished)
{
	if (!jrun->counted)
		return;
	jrun->counted = false;
	pending_release(jrun->jr, jrun->body_len, finished);
}

struct jobs *jobrun_store(const struct jobrun *jr)
{
	return jr->store;
}

static int64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --- the job's request --- */

/* The request owner's free: the job's run state goes with the request. */
static void job_run_free(struct request *r)
{
	struct job_run *jrun = r->owner_arg;

	if (!jrun)
		return;
	/* Dropped unfinished (stopping): it stays stored. */
	job_run_release(jrun, false);
	free(jrun->idempotent_key);
	free(jrun->metadata_json);
	for (size_t i = 0; i < jrun->n_webhooks; i++)
		free(jrun->webhooks[i]);
	free(jrun->webhooks);
	free(jrun);
}

static void sink_started(struct request *r);
static void sink_finished(struct request *r);

static const struct req_owner job_owner = {
	.started = sink_started,
	.finished = sink_finished,
	.free = job_run_free,
};

static int slist_add(struct curl_slist **l, const char *line)
{
	struct curl_slist *n = curl_slist_append(*l, line);

	if (!n)
		return -ENOMEM;
	*l = n;
	return 0;
}

/*
 * The upstream header list and retry rules from the stored field list:
 * sluice's own fields (X-EZTHROTTLE-MAX-RETRIES, -RETRY-ON) set the rules
 * and are not sent, exactly as for a synchronous request.
 */
static int replay_headers(struct request *r, const struct config *cfg,
                          const char *headers_json, bool keyed)
{
	json_t *list = json_loads(headers_json ? headers_json : "[]",
	                          0, NULL);
	bool idempotent = keyed || retry_method_idempotent(r->method);
	bool accept = false, ctype = false;
	json_t *pair;
	size_t i;
	int err = 0;

	if (!json_is_array(list)) {
		json_decref(list);
		return -EINVAL;
	}
	json_array_foreach(list, i, pair) {
		const char *n = json_string_value(json_array_get(pair, 0));

		if (n && strcasecmp(n, "Idempotency-Key") == 0)
			idempotent = true;
	}
	retry_rules_init(&r->rules, cfg->retry.max_retries, cfg->retry.on,
	                 cfg->retry.n_on, idempotent);
	json_array_foreach(list, i, pair) {
		const char *n = json_string_value(json_array_get(pair, 0));
		const char *v = json_string_value(json_array_get(pair, 1));
		char *line;

		if (!n || !v)
			continue;
		if (header_is_sluice(n, strlen(n))) {
			if (strcasecmp(n, "X-EZTHROTTLE-MAX-RETRIES") == 0)
				retry_parse_max(v, &r->rules.max_retries);
			else if (strcasecmp(n, "X-EZTHROTTLE-RETRY-ON") == 0)
				retry_parse_on(v, &r->rules);
			continue;
		}
		accept = accept || strcasecmp(n, "Accept") == 0;
		ctype = ctype || strcasecmp(n, "Content-Type") == 0;
		/* "Name:" alone would tell curl to remove the field. */
		if (asprintf(&line, *v ? "%s: %s" : "%s;%s", n, v) < 0) {
			err = -ENOMEM;
			break;
		}
		err = slist_add(&r->up_headers, line);
		free(line);
		if (err < 0)
			break;
	}
	json_decref(list);
	/* Keep curl from adding fields the client did not send. */
	if (err == 0)
		err = slist_add(&r->up_headers, "Expect:");
	if (err == 0 && !accept)
		err = slist_add(&r->up_headers, "Accept:");
	if (err == 0 && !ctype)
		err = slist_add(&r->up_headers, "Content-Type:");
	return err;
}

static int job_run_fill(struct job_run *jrun, const struct job_spec *s)
{
	if (s->idempotent_key) {
		jrun->idempotent_key = strdup(s->idempotent_key);
		if (!jrun->idempotent_key)
			return -ENOMEM;
	}
	if (s->metadata_json) {
		jrun->metadata_json = strdup(s->metadata_json);
		if (!jrun->metadata_json)
			return -ENOMEM;
	}
	jrun->webhooks = calloc(s->n_webhooks, sizeof(char *));
	if (!jrun->webhooks)
		return -ENOMEM;
	for (size_t i = 0; i < s->n_webhooks; i++) {
		jrun->webhooks[i] = strdup(s->webhooks[i]);
		if (!jrun->webhooks[i])
			return -ENOMEM;
		jrun->n_webhooks = i + 1;
	}
	jrun->quorum = s->quorum;
	return 0;
}

/*
 * A request for the engine from a stored (or about to be stored) job,
 * with the job sink and no client. id may be NULL: set before submission.
 */
static int job_request_new(struct jobrun *jr, const struct job_spec *s,
                           const char *id, struct request **ret)
{
	struct request *r = request_new(NULL, s->url);
	struct job_run *jrun;
	int err;

	if (!r)
		return -ENOMEM;
	jrun = calloc(1, sizeof(*jrun));
	if (!jrun) {
		request_unref(r);
		return -ENOMEM;
	}
	jrun->jr = jr;
	jrun->body_len = s->body_len;
	if (id)
		snprintf(jrun->id, sizeof(jrun->id), "%s", id);
	r->owner = &job_owner;
	r->owner_arg = jrun;
	/*
	 * A job has no reader and no client deadline: its body is kept
	 * whole, each attempt is bounded instead, a full queue holds it,
	 * and the store keeps it across a stop.
	 */
	r->policy = (struct req_policy){
		.body_cap = JOB_RESPONSE_MAX,
		.attempt_timeout_ms = jr->cfg->sync_timeout,
		.no_deadline = true,
		.wait_when_full = true,
		.durable = true,
	};
	err = job_run_fill(jrun, s);
	r->method = strdup(s->method);
	if (err == 0 && !r->method)
		err = -ENOMEM;
	if (err == 0 && target_parse(r->raw_target, &r->target) != TARGET_OK)
		err = -EINVAL;
	if (err == 0) {
		/* Drop a fragment, as the front does. */
		r->raw_target[(size_t)(r->target.path - r->raw_target) +
		              r->target.path_len] = '\0';
		if (destination_format(&r->target.dest, r->dest_key,
		                       sizeof(r->dest_key)) < 0)
			err = -EINVAL;
	}
	if (err == 0)
		err = replay_headers(r, jr->cfg, s->headers_json,
		                     s->idempotent_key != NULL);
	if (err == 0 && s->body_len)
		err = buf_append(&r->body, s->body, s->body_len);
	if (err < 0) {
		request_unref(r);
		return err;
	}
	if (s->cred_len == CRED_HASH_LEN) {
		memcpy(r->cred, s->cred, CRED_HASH_LEN);
		r->has_cred = true;
	}
	r->is_head = strcmp(r->method, "HEAD") == 0;
	r->t_arrival = clock_now_ms();
	/* Jobs wait as long as they need: no deadline. */
	r->deadline = INT64_MAX / 4;
	r->phase = REQ_WAITING;
	r->submitted = true;
	*ret = r;
	return 0;
}

/* --- the sink (engine thread) --- */

static void sink_started(struct request *r)
{
	struct job_run *jrun = r->owner_arg;
	int err = jobs_mark_running_async(jrun->jr->store, jrun->id, NULL,
	                                  NULL);

	if (err < 0 && err != -ESHUTDOWN)
		log_warn("cannot mark job running job=%s: %s, ignoring",
		         jrun->id, strerror(-err));
}

/* The response fields, as a synchronous client would get them. */
/*
 * A response field as a JSON pair. Field values are octets (RFC 9110
 * 5.5); one that is not UTF-8 is read as ISO-8859-1, its historical
 * charset, rather than left out of the result.
 */
static json_t *field_pair(const char *name, const char *value)
{
	json_t *pair = json_pack("[ss]", name, value);
	char *u, *o;

	if (pair)
		return pair;
	u = malloc(2 * strlen(value) + 1);
	if (!u)
		return NULL;
	for (o = u; *value; value++) {
		unsigned char c = (unsigned char)*value;

		if (c < 0x80) {
			*o++ = (char)c;
		} else {
			*o++ = (char)(0xc0 | c >> 6);
			*o++ = (char)(0x80 | (c & 0x3f));
		}
	}
	*o = '\0';
	pair = json_pack("[ss]", name, u);
	free(u);
	return pair;
}

static char *resp_headers_json(const struct request *r)
{
	const char *p = r->resp_headers.data, *conn = NULL;
	json_t *list = json_array();
	char *s;

	if (!list)
		return NULL;
	for (size_t i = 0; i < r->n_resp_headers; i++) {
		const char *v = p + strlen(p) + 1;

		if (strcasecmp(p, "Connection") == 0)
			conn = v;
		p = v + strlen(v) + 1;
	}
	p = r->resp_headers.data;
	for (size_t i = 0; i < r->n_resp_headers; i++) {
		const char *v = p + strlen(p) + 1;

		if (!header_drop_response(p, strlen(p), conn))
			json_array_append_new(list, field_pair(p, v));
		p = v + strlen(v) + 1;
	}
	s = json_dumps(list, JSON_COMPACT);
	json_decref(list);
	return s;
}

/* Until jobs_finish is durable; then the deliveries start. */
struct finish_ctx {
	struct delivery *d;
	struct delivery_job *dj;
	char id[JOB_ID_LEN + 1];
};

static void finished_durable(void *arg, int err)
{
	struct finish_ctx *fc = arg;

	if (err == -ENOENT) {
		/* Done already (a finish raced a restart): delivered once. */
		delivery_job_free(fc->dj);
	} else {
		/* Stored: each try reads it back; not: the copy is used. */
		if (err == 0)
			delivery_job_stored(fc->dj);
		else
			log_warn("cannot store the end of job=%s: %s; "
			         "delivering anyway, it may run again after a "
			         "restart", fc->id, strerror(-err));
		delivery_submit(fc->d, fc->dj);
	}
	free(fc);
}

/* Whom a job's end is told to, and what of the job they are told. */
struct job_who {
	const char *id, *idempotent_key, *metadata_json;
	const char *const *webhooks;
	size_t n_webhooks;            /* 0: the end is stored, not delivered */
	unsigned quorum;
};

/*
 * Stores res as the end of the job (which scrubs its request fields)
 * and, once that is durable, hands its deliveries to the delivery
 * thread. 0, -ENOMEM (nothing queued), or jobs_finish_async()'s error.
 */
static int job_end(struct jobrun *jr, const struct job_who *w,
                   const struct job_result *res)
{
	struct delivery_spec ds = {
		.job_id = w->id, .idempotent_key = w->idempotent_key,
		.metadata_json = w->metadata_json, .failed = !res->success,
		.error_code = res->error_code,
		.error_message = res->error_message,
		.status_code = (unsigned)res->status_code,
		.headers_json = res->headers_json, .body = res->body,
		.body_len = res->body_len, .quorum = w->quorum,
		.finished_ms = wall_ms(),
		.urls = w->webhooks, .n_urls = w->n_webhooks,
	};
	struct finish_ctx *fc = NULL;
	int err;

	if (w->n_webhooks) {
		fc = calloc(1, sizeof(*fc));
		if (!fc)
			return -ENOMEM;
		fc->d = jr->delivery;
		fc->dj = delivery_job_new(&ds);
		snprintf(fc->id, sizeof(fc->id), "%s", w->id);
		if (!fc->dj) {
			free(fc);
			return -ENOMEM;
		}
	}
	err = jobs_finish_async(jr->store, w->id, res,
	                        fc ? finished_durable : NULL, fc);
	if (err < 0 && fc) {
		delivery_job_free(fc->dj);
		free(fc);
	}
	return err;
}

static void sink_finished(struct request *r)
{
	struct job_run *jrun = r->owner_arg;
	struct jobrun *jr = jrun->jr;
	struct job_result res = { 0 };
	struct job_who w = {
		.id = jrun->id, .idempotent_key = jrun->idempotent_key,
		.metadata_json = jrun->metadata_json,
		.webhooks = (const char *const *)jrun->webhooks,
		.n_webhooks = jrun->n_webhooks, .quorum = jrun->quorum,
	};
	char *hdrs = NULL, *ebody = NULL, msg[128];
	size_t elen = 0;
	int err = -ENOMEM;

	/* Finished: room for another pending job. */
	job_run_release(jrun, true);
	pthread_mutex_lock(&r->lock);
	if (r->phase == REQ_HEADERS) {
		hdrs = resp_headers_json(r);
		res.status_code = (int)r->status;
		res.body = r->resp_body.data + r->resp_body.off;
		res.body_len = buf_avail(&r->resp_body);
		res.success = r->status < 400 && !r->body_error;
		if (r->body_error && r->resp_too_large) {
			res.error_code = "response_too_large";
			snprintf(msg, sizeof(msg), "the upstream response is "
			         "over the job limit of %u bytes",
			         JOB_RESPONSE_MAX);
			res.error_message = msg;
		} else if (r->body_error) {
			res.error_code = "upstream_body";
			snprintf(msg, sizeof(msg), "the upstream response "
			         "broke off after %zu body bytes",
			         res.body_len);
			res.error_message = msg;
		} else if (!res.success) {
			res.error_code = "upstream_status";
			snprintf(msg, sizeof(msg), "upstream answered %u "
			         "after %u attempt(s)", r->status,
			         r->attempts);
			res.error_message = msg;
		}
	} else {
		/* No upstream answer: what a synchronous client would get. */
		res.status_code = (int)r->err_status;
		res.error_code = r->err_code ? r->err_code : "internal_error";
		res.error_message = r->err_msg ? r->err_msg : res.error_code;
		ebody = http_error_json(res.error_code, res.error_message,
		                        &elen);
		hdrs = strdup("[[\"content-type\",\"application/json\"]]");
		res.body = ebody;
		res.body_len = ebody ? elen : 0;
	}
	res.headers_json = hdrs;
	if (hdrs) {
		log_debug("job finished job=%s status=%d %s", jrun->id,
		          res.status_code, res.success ? "success" : "failed");
		err = job_end(jr, &w, &res);
	}
	if (err == -ENOMEM)
		log_error("out of memory finishing job=%s; it runs again "
		          "after a restart", jrun->id);
	else if (err < 0 && err != -ESHUTDOWN)
		log_error("cannot store the end of job=%s: %s", jrun->id,
		          strerror(-err));
	pthread_mutex_unlock(&r->lock);
	free(hdrs);
	free(ebody);
}

/* --- recovery --- */

/*
 * A stored job whose request cannot be rebuilt (its URL or header list
 * does not parse) would stay queued, credential and all, forever: it
 * ends failed instead, like any job (scrubbed, its webhooks told; with
 * no webhook to read, stored only), and leaves the pending count. 0 or
 * -ENOMEM (nothing changed: offered again later).
 */
static int end_unreplayable(struct jobrun *jr, struct job *jb,
                            const char **urls)
{
	static const char code[] = "not_replayable";
	static const char msg[] = "the stored request could not be rebuilt "
	                          "after a restart; it was not sent again";
	struct job_who w = {
		.id = jb->id, .idempotent_key = jb->idempotent_key,
		.metadata_json = jb->metadata_json, .webhooks = urls,
		.n_webhooks = jb->n_deliveries, .quorum = jb->quorum,
	};
	struct job_result res = {
		.status_code = 500, .success = false,
		.error_code = code, .error_message = msg,
		.headers_json = "[[\"content-type\",\"application/json\"]]",
	};
	char *ebody;
	size_t elen;
	int err;

	ebody = http_error_json(code, msg, &elen);
	if (!ebody)
		return -ENOMEM;
	res.body = ebody;
	res.body_len = elen;
	err = job_end(jr, &w, &res);
	free(ebody);
	if (err == -ENOMEM)
		return err;
	if (err == 0)
		log_warn("stored job cannot be replayed job=%s, failed "
		         "with not_replayable", jb->id);
	else if (err != -ESHUTDOWN)
		log_error("stored job cannot be replayed job=%s and its end "
		          "cannot be stored: %s, skipping", jb->id,
		          strerror(-err));
	pthread_mutex_lock(&jr->lock);
	jr->pending--;
	jr->pending_bytes -= jb->body_len;
	if (jr->paging)
		pthread_cond_signal(&jr->wake);
	pthread_mutex_unlock(&jr->lock);
	return 0;
}

/*
 * A stored unfinished job to the engine, counted as held (pending is
 * counted already); one that cannot be replayed ends failed. 0 or
 * -ENOMEM; *ret_run true when it was submitted.
 */
static int resubmit(struct jobrun *jr, struct job *jb, const char **urls,
                    bool *ret_run)
{
	struct job_spec s = {
		.method = jb->method, .url = jb->url,
		.headers_json = jb->headers_json, .body = jb->body,
		.body_len = jb->body_len, .cred = jb->cred,
		.cred_len = jb->cred_len,
		.idempotent_key = jb->idempotent_key,
		.metadata_json = jb->metadata_json,
		.webhooks = urls, .n_webhooks = jb->n_deliveries,
		.quorum = jb->quorum,
	};
	struct job_run *jrun;
	struct request *r;
	int err;

	*ret_run = false;
	err = job_request_new(jr, &s, jb->id, &r);
	if (err == -EINVAL)
		return end_unreplayable(jr, jb, urls);
	if (err < 0)
		return err;
	jrun = r->owner_arg;
	pthread_mutex_lock(&jr->lock);
	jr->held++;
	jr->held_bytes += jb->body_len;
	pthread_mutex_unlock(&jr->lock);
	jrun->counted = true;
	if (engine_submit(jr->engine, r) == 0)
		*ret_run = true;
	else
		job_run_release(jrun, false); /* stopping: stays stored */
	request_unref(r);
	return 0;
}

/* The deliveries of a job's webhooks as delivery URLs; NULL on OOM. */
static const char **delivery_urls(const struct job *jb)
{
	const char **urls = calloc(jb->n_deliveries + 1, sizeof(char *));

	for (size_t i = 0; urls && i < jb->n_deliveries; i++)
		urls[i] = jb->deliveries[i].url;
	return urls;
}

/*
 * A page of stored unfinished jobs: each goes to the engine. An error
 * (out of memory) leaves the counts as they were and the job in the
 * store, offered first by the next page.
 */
static int page_one(void *arg, struct job *jb)
{
	struct jobrun *jr = arg;
	const char **urls = delivery_urls(jb);
	bool run;
	int err = -ENOMEM;

	if (urls)
		err = resubmit(jr, jb, urls, &run);
	free(urls);
	job_free(jb);
	return err;
}

/* Room in memory for a page: jobs and bytes below the caps. */
static bool page_room(const struct jobrun *jr, size_t *ret_jobs,
                      uint64_t *ret_bytes)
{
	const struct config *cfg = jr->cfg;

	if (jr->held >= cfg->jobs.max_pending ||
	    jr->held_bytes >= cfg->jobs.max_pending_bytes)
		return false;
	*ret_jobs = cfg->jobs.max_pending - jr->held;
	if (*ret_jobs > PAGE_JOBS)
		*ret_jobs = PAGE_JOBS;
	*ret_bytes = cfg->jobs.max_pending_bytes - jr->held_bytes;
	/* Alone, a job bigger than the cap still runs, by itself. */
	if (jr->held == 0) {
		*ret_jobs = 1;
		*ret_bytes = UINT64_MAX;
	}
	return true;
}

/*
 * Loads stored jobs while there is room and some are left. Called with
 * jr->lock held, which it drops around the store's reads (they may
 * block). 0 or the store's error.
 */
static int page_in(struct jobrun *jr)
{
	int64_t after;
	uint64_t bytes;
	size_t n;
	bool done;
	int err = 0;

	while (jr->paging && !jr->stopping && page_room(jr, &n, &bytes)) {
		int64_t from = jr->page_after, last = jr->page_last;

		pthread_mutex_unlock(&jr->lock);
		err = jobs_load_unfinished(jr->store, from, last, n, bytes,
		                           page_one, jr, &after, &done);
		pthread_mutex_lock(&jr->lock);
		jr->page_after = after;
		if (err < 0)
			break;
		if (done)
			jr->paging = false;
		else if (after == from)
			break;  /* the next one does not fit yet: wait */
	}
	return err;
}

/*
 * The pager thread: pages stored jobs in as finished ones make room,
 * until none is left. The store's reads happen here, never on the
 * engine thread.
 */
static void *pager_main(void *arg)
{
	struct jobrun *jr = arg;
	struct timespec ts;
	int err;

	pthread_mutex_lock(&jr->lock);
	while (jr->paging && !jr->stopping) {
		err = page_in(jr);
		if (!jr->paging || jr->stopping)
			break;
		if (err < 0) {
			log_warn("cannot load stored jobs: %s, retrying in 1s",
			         strerror(-err));
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec++;
			pthread_cond_timedwait(&jr->wake, &jr->lock, &ts);
		} else {
			pthread_cond_wait(&jr->wake, &jr->lock);
		}
	}
	pthread_mutex_unlock(&jr->lock);
	if (!jr->stopping)
		log_info("every stored job is loaded again");
	return NULL;
}

struct recover_ctx {
	struct jobrun *jr;
	unsigned deliver;
};

static int recover_delivery(void *arg, struct job *jb)
{
	struct recover_ctx *rc = arg;
	const char **urls = delivery_urls(jb);
	struct delivery_spec ds;
	struct delivery_job *dj;

	if (!urls) {
		job_free(jb);
		return -ENOMEM;
	}
	/* Only what scheduling needs: each try reads the job's end. */
	ds = (struct delivery_spec){
		.job_id = jb->id, .stored = true,
		.body_len = jb->resp_body_len,
		.quorum = jb->quorum, .finished_ms = jb->finished_ms,
		.urls = urls, .n_urls = jb->n_deliveries,
		.states = jb->deliveries,
	};
	dj = delivery_job_new(&ds);
	if (dj) {
		delivery_submit(rc->jr->delivery, dj);
		rc->deliver++;
	}
	free(urls);
	job_free(jb);
	return 0;
}

int jobrun_recover(struct jobrun *jr, unsigned *ret_run,
                   unsigned *ret_deliver)
{
	struct recover_ctx rc = { .jr = jr };
	uint64_t n = 0, bytes = 0;
	int64_t last = 0;
	int err;

	*ret_run = 0;
	err = jobs_load_deliveries(jr->store, recover_delivery, &rc);
	*ret_deliver = rc.deliver;
	if (err == 0)
		err = jobs_unfinished(jr->store, &n, &bytes, &last);
	if (err < 0)
		return err;
	pthread_mutex_lock(&jr->lock);
	jr->pending += n;
	jr->pending_bytes += bytes;
	jr->page_after = 0;
	jr->page_last = last;
	jr->paging = n > 0;
	/* What fits now, before the listener starts; the rest as room
	 * frees, on the pager thread. */
	err = page_in(jr);
	/* Even after a failed read: the pager tries again every second. */
	if (jr->paging) {
		int perr = -pthread_create(&jr->pager, NULL, pager_main, jr);

		jr->pager_started = perr == 0;
		if (err == 0)
			err = perr;
		if (perr == 0)
			log_info("unfinished jobs over jobs.max_pending or "
			         "max_pending_bytes wait in the store count=%"
			         PRIu64 ", loaded as earlier jobs finish",
			         jr->pending - jr->held);
	}
	pthread_mutex_unlock(&jr->lock);
	*ret_run = n > UINT_MAX ? UINT_MAX : (unsigned)n;
	return err;
}

/* --- intake --- */

/* A literal webhook address (with its port) that is denied. */
static bool literal_denied(const struct config *cfg, const char *url)
{
	struct target t;

	if (target_parse(url, &t) != TARGET_OK)
		return false;
	return cidr_literal_denied(&cfg->deny_destinations, t.dest.host,
	                           t.dest.port);
}

static int dup_field(const char *s, char **ret)
{
	if (!s)
		return 0;
	*ret = strdup(s);
	return *ret ? 0 : -ENOMEM;
}

/*
 * An idempotent key is echoed in JSON (the 202, webhooks, /jobs): printable
 * ASCII, so it can never be an invalid JSON string.
 */
static bool key_ok(const char *s)
{
	for (; *s; s++)
		if (*s < 0x20 || *s > 0x7e)
			return false;
	return true;
}

int job_intake_new(const struct jobrun *jr, const struct job_fields *f,
                   struct job_intake **ret, const char **ret_code,
                   char *msg, size_t size)
{
	struct job_intake *ji = calloc(1, sizeof(*ji));
	json_t *meta = NULL;
	int r;

	if (!ji)
		return -ENOMEM;
	*ret_code = "invalid_webhook";
	r = webhook_parse_urls(f->webhooks, f->n_webhooks, &ji->urls, msg,
	                       size);
	for (size_t i = 0; r == 0 && i < ji->urls.n; i++) {
		if (literal_denied(jr->cfg, ji->urls.url[i])) {
			*ret_code = "webhook_denied";
			snprintf(msg, size, "webhook %zu: its address is in "
			         "deny_destinations", i + 1);
			r = -EINVAL;
		}
	}
	ji->quorum = 1;
	if (r == 0 && f->quorum) {
		r = webhook_parse_quorum(f->quorum, ji->urls.n, &ji->quorum);
		if (r == -EINVAL || r == -ERANGE) {
			*ret_code = "invalid_quorum";
			snprintf(msg, size, "X-EZTHROTTLE-WEBHOOK-QUORUM must be "
			         "an integer from 1 to %zu (the number of "
			         "webhooks)", ji->urls.n);
			r = -EINVAL;
		}
	}
	if (r == 0 && f->metadata) {
		*ret_code = "invalid_metadata";
		r = webhook_parse_metadata(f->metadata, strlen(f->metadata),
		                           &meta, msg, size);
		if (r == -E2BIG)
			r = -EINVAL;
		if (r == 0) {
			ji->metadata_json = json_dumps(meta, JSON_COMPACT);
			json_decref(meta);
			if (!ji->metadata_json)
				r = -ENOMEM;
		}
	}
	if (r == 0 && f->idempotent_key) {
		size_t n = strlen(f->idempotent_key);

		if (n == 0 || n > JOB_KEY_MAX || !key_ok(f->idempotent_key)) {
			*ret_code = "invalid_idempotent_key";
			snprintf(msg, size, "X-EZTHROTTLE-IDEMPOTENT-KEY must be "
			         "1 to %d printable ASCII characters",
			         JOB_KEY_MAX);
			r = -EINVAL;
		}
	}
	if (r == 0)
		r = dup_field(f->idempotent_key, &ji->idempotent_key);
	if (r == 0)
		r = dup_field(f->max_retries, &ji->max_retries);
	if (r == 0)
		r = dup_field(f->retry_on, &ji->retry_on);
	if (r < 0) {
		job_intake_free(ji);
		return r;
	}
	*ret = ji;
	return 0;
}

void job_intake_free(struct job_intake *ji)
{
	if (!ji)
		return;
	webhook_urls_done(&ji->urls);
	free(ji->metadata_json);
	free(ji->idempotent_key);
	free(ji->max_retries);
	free(ji->retry_on);
	free(ji->headers_json);
	request_unref(ji->job);
	free(ji);
}

/*
 * The stored field list: what goes upstream (the front's filtered list,
 * "Name: value" or "Name;" for an empty value; curl's "Name:" removal
 * entries skipped) and the replayed controls.
 */
static char *intake_headers_json(const struct request *r,
                                 const struct job_intake *ji, int *ret_err)
{
	json_t *list = json_array();
	char *s;

	*ret_err = -ENOMEM;
	if (!list)
		return NULL;
	for (const struct curl_slist *l = r->up_headers; l; l = l->next) {
		const char *line = l->data, *c = strpbrk(line, ":;");
		const char *v;
		json_t *pair;

		if (!c || (*c == ':' && c[1] == '\0'))
			continue;
		v = *c == ';' ? "" : c + 1 + strspn(c + 1, " \t");
		/* Stored as JSON strings: a field that is not UTF-8 would be
		 * dropped from the replay, so the job is refused instead. */
		pair = json_pack("[s#s]", line, (int)(c - line), v);
		if (!pair) {
			json_decref(list);
			*ret_err = -EILSEQ;
			return NULL;
		}
		json_array_append_new(list, pair);
	}
	if (ji->max_retries)
		json_array_append_new(list, json_pack("[ss]",
			"X-EZTHROTTLE-MAX-RETRIES", ji->max_retries));
	if (ji->retry_on)
		json_array_append_new(list, json_pack("[ss]",
			"X-EZTHROTTLE-RETRY-ON", ji->retry_on));
	s = json_dumps(list, JSON_COMPACT);
	json_decref(list);
	return s;
}

/* The store's answer, on its writer thread. */
static void intake_done(void *arg, int err, const char *id, bool duplicate)
{
	struct request *owner = arg;
	struct job_intake *ji = owner->intake;
	struct request *job = NULL;

	pthread_mutex_lock(&owner->lock);
	ji->err = err;
	ji->duplicate = duplicate;
	if (id)
		snprintf(ji->id, sizeof(ji->id), "%s", id);
	ji->done = true;
	if (err == 0 && !duplicate) {
		job = ji->job;
		ji->job = NULL;
	}
	pthread_mutex_unlock(&owner->lock);

	if (job) {
		struct job_run *jrun = job->owner_arg;

		snprintf(jrun->id, sizeof(jrun->id), "%s", id);
		/* The reservation goes with the job, until it finishes. */
		jrun->counted = true;
		/* Draining: the job stays queued and runs at next start. */
		if (engine_submit(ji->jr->engine, job) < 0)
			job_run_release(jrun, true);
		request_unref(job);
	} else {
		/* Refused, or the first job's: nothing more is pending. */
		pending_release(ji->jr, ji->jn.body_len, true);
	}
	ji->ready(owner);
	request_unref(owner);
}

int job_intake_submit(struct jobrun *jr, struct request *r,
                      void (*ready)(struct request *r))
{
	struct job_intake *ji = r->intake;
	struct job_spec s;
	int err;

	if (!jr) {
		err = -ENODEV;
		goto fail;
	}
	ji->jr = jr;
	ji->ready = ready;
	ji->headers_json = intake_headers_json(r, ji, &err);
	if (!ji->headers_json)
		goto fail;
	/* Refused beyond the caps, before anything is stored or copied. */
	err = pending_reserve(jr, r->body.len);
	if (err < 0) {
		ji->refused = err;
		goto fail;
	}
	s = (struct job_spec){
		.method = r->method, .url = r->raw_target,
		.headers_json = ji->headers_json, .body = r->body.data,
		.body_len = r->body.len,
		.cred = r->has_cred ? r->cred : NULL,
		.cred_len = r->has_cred ? CRED_HASH_LEN : 0,
		.idempotent_key = ji->idempotent_key,
		.metadata_json = ji->metadata_json,
		.webhooks = (const char *const *)ji->urls.url,
		.n_webhooks = ji->urls.n, .quorum = ji->quorum,
	};
	err = job_request_new(jr, &s, NULL, &ji->job);
	if (err < 0) {
		pending_release(jr, r->body.len, true);
		goto fail;
	}
	ji->jn = (struct job_new){
		.cred = s.cred, .cred_len = s.cred_len,
		.idempotent_key = s.idempotent_key,
		/* Scoped by (credential, destination); keyless clients
		 * share a scope only when configured to. */
		.dest = r->dest_key,
		.dedupe = r->has_cred || jr->cfg->jobs.dedupe_anonymous,
		.method = s.method,
		.url = s.url, .headers_json = s.headers_json,
		.body = s.body, .body_len = s.body_len,
		.metadata_json = s.metadata_json, .webhooks = s.webhooks,
		.n_webhooks = s.n_webhooks, .quorum = s.quorum,
	};
	request_ref(r); /* intake_done's */
	err = jobs_submit_async(jr->store, &ji->jn, intake_done, r);
	if (err == 0)
		return 0;
	pending_release(jr, r->body.len, true);
	request_unref(r);
fail:
	pthread_mutex_lock(&r->lock);
	ji->err = err;
	ji->done = true;
	pthread_mutex_unlock(&r->lock);
	return err;
}

char *job_intake_answer(const struct job_intake *ji, unsigned *ret_status,
                        bool *ret_location)
{
	json_t *o;
	char *s, msg[160];
	size_t len;

	*ret_location = false;
	if (ji->err == -ESHUTDOWN) {
		*ret_status = 503;
		return http_error_json("shutting_down",
		                       "the proxy is shutting down", &len);
	}
	if (ji->refused == -EDQUOT) {
		*ret_status = 503;
		snprintf(msg, sizeof(msg), "%u jobs are pending, the limit "
		         "(jobs.max_pending); try again later",
		         ji->jr->cfg->jobs.max_pending);
		return http_error_json("jobs_pending_full", msg, &len);
	}
	if (ji->refused == -ENOBUFS) {
		*ret_status = 503;
		snprintf(msg, sizeof(msg), "the pending jobs' bodies would "
		         "pass %" PRIu64 " bytes (jobs.max_pending_bytes); "
		         "try again later", ji->jr->cfg->jobs.max_pending_bytes);
		return http_error_json("jobs_pending_bytes_full", msg, &len);
	}
	if (ji->refused == -EFBIG) {
		*ret_status = 413;
		snprintf(msg, sizeof(msg), "a job's body may be at most %"
		         PRIu64 " bytes (jobs.max_pending_bytes)",
		         ji->jr->cfg->jobs.max_pending_bytes);
		return http_error_json("job_too_large", msg, &len);
	}
	if (ji->err == -EILSEQ) {
		*ret_status = 400;
		return http_error_json("invalid_header", "a job's request "
		                       "fields must be UTF-8 (the job store "
		                       "keeps them as JSON text)", &len);
	}
	if (ji->err < 0) {
		*ret_status = 503;
		snprintf(msg, sizeof(msg), "the job store cannot take new "
		         "jobs: %s", ji->err == -ENODEV ? "no job store"
		         : strerror(-ji->err));
		return http_error_json("job_store_unavailable", msg, &len);
	}
	*ret_location = true;
	if (ji->duplicate) {
		*ret_status = 200;
		o = json_pack("{s:s, s:s?, s:b}", "job_id", ji->id,
		              "idempotent_key", ji->idempotent_key,
		              "duplicate", 1);
	} else {
		*ret_status = 202;
		o = json_pack("{s:s, s:s?, s:s}", "job_id", ji->id,
		              "idempotent_key", ji->idempotent_key,
		              "status", "queued");
	}
	if (!o)
		return NULL;
	s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (s) {
		char *nl;

		if (asprintf(&nl, "%s\n", s) < 0)
			nl = NULL;
		free(s);
		s = nl;
	}
	return s;
}

/* --- admin --- */

bool job_id_valid(const char *id)
{
	if (!id || strlen(id) != JOB_ID_LEN || strncmp(id, "job_", 4) != 0)
		return false;
	return strspn(id + 4, "0123456789abcdef") == JOB_ID_LEN - 4;
}

static const char *job_state_str(enum job_state s)
{
	return s == JOB_DONE ? "done" : s == JOB_RUNNING ? "running"
	                                                 : "queued";
}

static const char *delivery_state_str(enum delivery_state s)
{
	return s == DELIVERY_DELIVERED ? "delivered"
	       : s == DELIVERY_GAVE_UP ? "gave_up" : "pending";
}

static json_t *ms_or_null(int64_t ms)
{
	return ms > 0 ? json_integer(ms) : json_null();
}

static json_t *deliveries_json(const struct job *jb, unsigned *ret_ok)
{
	json_t *list = json_array();

	*ret_ok = 0;
	for (size_t i = 0; list && i < jb->n_deliveries; i++) {
		const struct job_delivery *d = &jb->deliveries[i];

		*ret_ok += d->state == DELIVERY_DELIVERED;
		json_array_append_new(list, json_pack(
			"{s:s, s:s, s:i, s:o, s:s?, s:o, s:o}",
			"url", d->url,
			"state", delivery_state_str(d->state),
			"attempts", (json_int_t)d->attempts,
			"last_status", d->last_status ?
			               json_integer(d->last_status) :
			               json_null(),
			"last_error", d->last_error,
			"next_at", d->state == DELIVERY_PENDING ?
			           ms_or_null(d->next_at) : json_null(),
			"delivered_at", ms_or_null(d->delivered_at)));
	}
	return list;
}

char *job_to_json(const struct job *jb)
{
	json_t *o, *resp = NULL, *dl, *meta = NULL;
	char dest[DEST_HOST_MAX + 32] = "-";
	const char *path = "";
	struct target t;
	unsigned ok;
	int plen = 0;
	char *s;

	if (jb->state == JOB_DONE) {
		struct webhook_result res = {
			.status_code = (unsigned)jb->status_code,
			.headers_json = jb->resp_headers_json,
			.body = jb->resp_body, .body_len = jb->resp_body_len,
		};

		if (webhook_response_json(&res, &resp) < 0)
			return NULL;
	}
	if (jb->metadata_json)
		meta = json_loads(jb->metadata_json, 0, NULL);
	dl = deliveries_json(jb, &ok);
	/* The query may hold credentials: destination and path only. */
	if (jb->url && target_parse(jb->url, &t) == TARGET_OK) {
		const char *q = memchr(t.path, '?', t.path_len);

		destination_format(&t.dest, dest, sizeof(dest));
		plen = q ? (int)(q - t.path) : (int)t.path_len;
		path = t.path;
	}
	o = json_pack("{s:s, s:s?, s:s, s:o, s:i, s:I, s:I, s:o, s:s, s:s, "
	              "s:s#, s:o, s:o, s:o, s:i, s:b, s:o}",
	              "job_id", jb->id,
	              "idempotent_key", jb->idempotent_key,
	              "state", job_state_str(jb->state),
	              "status", jb->state != JOB_DONE ? json_null()
	                        : json_string(jb->success ? "success"
	                                                  : "failed"),
	              "attempts", (json_int_t)jb->attempts,
	              "created_at", (json_int_t)jb->created_ms,
	              "updated_at", (json_int_t)jb->updated_ms,
	              "finished_at", ms_or_null(jb->finished_ms),
	              "method", jb->method,
	              "destination", dest,
	              "path", path, plen,
	              "response", resp ? resp : json_null(),
	              "error", jb->error_code
	                       ? json_pack("{s:s, s:s?}", "code",
	                                   jb->error_code, "message",
	                                   jb->error_message)
	                       : json_null(),
	              "metadata", meta ? meta : json_object(),
	              "quorum", (json_int_t)jb->quorum,
	              "delivered", ok >= jb->quorum,
	              "deliveries", dl ? dl : json_array());
	if (!o)
		return NULL;
	s = json_dumps(o, JSON_INDENT(2));
	json_decref(o);
	return s;
}

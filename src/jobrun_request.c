/*
 * jobrun_request.c - a job's upstream request and its end (see
 * jobrun_request.h).
 *
 * A job's upstream request is rebuilt from what the store keeps (method,
 * absolute URL, [[name, value], ...] header list, body), both for a new
 * job and after a restart, so the two cannot differ.
 */
#include <errno.h>
#include <jansson.h>
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
#include "headers.h"
#include "http.h"
#include "jobrun.h"
#include "jobrun_int.h"
#include "jobrun_request.h"
#include "jobs.h"
#include "log.h"
#include "request.h"
#include "retry.h"

void job_run_release(struct job_run *jrun, bool finished)
{
	if (!jrun->counted)
		return;
	jrun->counted = false;
	jobrun_release(jrun->jr, jrun->body_len, finished);
}


/* The request owner's free: the job's run state goes with the request. */
static void job_run_free(struct request *r)
{
	struct job_run *jrun = r->owner_arg;

	if (!jrun)
		return;
	/* Dropped unfinished (stopping): it stays stored. */
	job_run_release(jrun, false);
	free(jrun->spec);
	free(jrun);
}

static void job_started(struct request *r);
static void job_finished(struct request *r);

static const struct req_owner job_owner = {
	.started = job_started,
	.finished = job_finished,
	.free = job_run_free,
};

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
		err = header_list_add(&r->up_headers, n, v);
		if (err < 0)
			break;
	}
	json_decref(list);
	if (err == 0)
		err = header_list_seal(&r->up_headers, accept, ctype);
	return err;
}

static int request_of(struct jobrun *jr, const struct config *cfg,
                      const struct job_spec *s, const char *id,
                      struct request **ret)
{
	struct request *r = request_new(s->url);
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
		.attempt_timeout_ms = cfg->sync_timeout,
		.no_deadline = true,
		.wait_when_full = true,
		.durable = true,
	};
	jrun->spec = job_spec_dup_webhooks(s);
	r->method = strdup(s->method);
	err = jrun->spec && r->method ? 0 : -ENOMEM;
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
		err = replay_headers(r, cfg, s->headers_json,
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

int job_request_new(struct jobrun *jr, const struct job_spec *s,
                    const char *id, struct request **ret)
{
	const struct config *cfg = jobrun_config(jr);
	int err = request_of(jr, cfg, s, id, ret);

	config_free(cfg);
	return err;
}

/* The owner's started and finished, on an engine worker's thread. */

static void job_started(struct request *r)
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

/* Until jobs_finish_async() is durable; then the deliveries start. */
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

int job_end(struct jobrun *jr, const char *id, const struct job_spec *s,
            const struct job_result *res)
{
	struct delivery_spec ds = {
		.job_id = id, .idempotent_key = s->idempotent_key,
		.metadata_json = s->metadata_json, .end = *res,
		.quorum = s->quorum, .finished_ms = clock_wall_ms(),
		.urls = s->webhooks, .n_urls = s->n_webhooks,
	};
	struct finish_ctx *fc = NULL;
	int err;

	if (s->n_webhooks) {
		fc = calloc(1, sizeof(*fc));
		if (!fc)
			return -ENOMEM;
		fc->d = jr->delivery;
		fc->dj = delivery_job_new(&ds);
		snprintf(fc->id, sizeof(fc->id), "%s", id);
		if (!fc->dj) {
			free(fc);
			return -ENOMEM;
		}
	}
	err = jobs_finish_async(jr->store, id, res,
	                        fc ? finished_durable : NULL, fc);
	if (err == 0)
		atomic_fetch_add(res->failed ? &jr->failed : &jr->succeeded, 1);
	if (err < 0 && fc) {
		delivery_job_free(fc->dj);
		free(fc);
	}
	return err;
}

static void job_finished(struct request *r)
{
	struct job_run *jrun = r->owner_arg;
	struct jobrun *jr = jrun->jr;
	struct job_result res = { 0 };
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
		res.failed = r->status >= 400 || r->body_error;
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
		} else if (res.failed) {
			res.error_code = "upstream_status";
			snprintf(msg, sizeof(msg), "upstream answered %u "
			         "after %u attempt(s)", r->status,
			         r->attempts);
			res.error_message = msg;
		}
	} else {
		/* No upstream answer: what a synchronous client would get. */
		res.status_code = (int)r->err_status;
		res.failed = true;
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
		          res.status_code, res.failed ? "failed" : "success");
		err = job_end(jr, jrun->id, jrun->spec, &res);
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

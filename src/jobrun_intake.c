/*
 * jobrun_intake.c - a job accepted from a client (see jobrun_intake.h):
 * its fields checked, the pending caps, the durable write, the answer.
 */
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "classify.h"
#include "config.h"
#include "cred.h"
#include "engine.h"
#include "http.h"
#include "jobrun_int.h"
#include "jobrun_intake.h"
#include "jobrun_request.h"
#include "jobs.h"
#include "request.h"
#include "webhook.h"

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

int job_intake_new(struct jobrun *jr, const struct job_fields *f,
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
	if (r == 0) {
		const struct config *cfg = jobrun_config(jr);

		for (size_t i = 0; r == 0 && i < ji->urls.n; i++) {
			if (literal_denied(cfg, ji->urls.url[i])) {
				*ret_code = "webhook_denied";
				snprintf(msg, size, "webhook %zu: its address "
				         "is in deny_destinations", i + 1);
				r = -EINVAL;
			}
		}
		config_free(cfg);
	}
	ji->quorum = 1;
	if (r == 0 && f->quorum) {
		r = webhook_parse_quorum(f->quorum, ji->urls.n, &ji->quorum);
		if (r == -EINVAL || r == -ERANGE) {
			*ret_code = "invalid_quorum";
			snprintf(msg, size, "X-EZTHROTTLE-WEBHOOK-QUORUM "
			         "must be an integer from 1 to %zu (the "
			         "number of webhooks)", ji->urls.n);
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
			snprintf(msg, size, "X-EZTHROTTLE-IDEMPOTENT-KEY "
			         "must be 1 to %d printable ASCII characters",
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
	for (const struct curl_slist *l = r->up_headers.head; l; l = l->next) {
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
	struct job_intake *ji = arg;
	struct request *owner = ji->owner;
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
		jobrun_release(ji->jr, ji->spec.body_len, true);
	}
	ji->owner = NULL;
	ji->ready(owner);
	request_unref(owner);
}

int job_intake_submit(struct jobrun *jr, struct job_intake *ji,
                      struct request *r, void (*ready)(struct request *r))
{
	const struct config *cfg;
	bool dedupe_anonymous;
	int err;

	if (!jr) {
		err = -ENODEV;
		goto fail;
	}
	cfg = jobrun_config(jr);
	ji->max_pending = cfg->jobs.max_pending;
	ji->max_pending_bytes = cfg->jobs.max_pending_bytes;
	dedupe_anonymous = cfg->jobs.dedupe_anonymous;
	config_free(cfg);
	ji->jr = jr;
	ji->ready = ready;
	ji->headers_json = intake_headers_json(r, ji, &err);
	if (!ji->headers_json)
		goto fail;
	/* Refused beyond the caps, before anything is stored or copied. */
	err = jobrun_reserve(jr, r->body.len);
	if (err < 0) {
		ji->refused = err;
		goto fail;
	}
	ji->spec = (struct job_spec){
		.method = r->method, .url = r->raw_target,
		.headers_json = ji->headers_json, .body = r->body.data,
		.body_len = r->body.len,
		.cred = r->has_cred ? r->cred : NULL,
		.cred_len = r->has_cred ? CRED_HASH_LEN : 0,
		.idempotent_key = ji->idempotent_key,
		/* Scoped by (credential, destination); keyless clients
		 * share a scope only when configured to. */
		.dest = r->dest_key,
		.dedupe = r->has_cred || dedupe_anonymous,
		.metadata_json = ji->metadata_json,
		.webhooks = (const char *const *)ji->urls.url,
		.n_webhooks = ji->urls.n, .quorum = ji->quorum,
	};
	err = job_request_new(jr, &ji->spec, NULL, &ji->job);
	if (err < 0) {
		jobrun_release(jr, r->body.len, true);
		goto fail;
	}
	request_ref(r); /* intake_done's */
	ji->owner = r;
	err = jobs_submit_async(jr->store, &ji->spec, intake_done, ji);
	if (err == 0)
		return 0;
	jobrun_release(jr, r->body.len, true);
	ji->owner = NULL;
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
		         ji->max_pending);
		return http_error_json("jobs_pending_full", msg, &len);
	}
	if (ji->refused == -ENOBUFS) {
		*ret_status = 503;
		snprintf(msg, sizeof(msg), "the pending jobs' bodies would "
		         "pass %" PRIu64 " bytes (jobs.max_pending_bytes); "
		         "try again later", ji->max_pending_bytes);
		return http_error_json("jobs_pending_bytes_full", msg, &len);
	}
	if (ji->refused == -EFBIG) {
		*ret_status = 413;
		snprintf(msg, sizeof(msg), "a job's body may be at most %"
		         PRIu64 " bytes (jobs.max_pending_bytes)",
		         ji->max_pending_bytes);
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

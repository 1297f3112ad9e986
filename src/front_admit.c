/*
 * front_admit.c - admission from a request's target and header fields:
 * the head's body size and Host, target checks, classification
 * (credential, deadline, retry rules, webhook jobs) and the upstream field
 * list. See front_admit.h.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cidr.h"
#include "classify.h"
#include "config.h"
#include "cred.h"
#include "front_admit.h"
#include "headers.h"
#include "rate_ctl.h"
#include "request.h"
#include "retry.h"

/* Oversized body bytes read and dropped so the client sees its 413. */
#define DISCARD_MAX (64ull * 1024 * 1024)

static const char *lookup(const struct admit_fields *hf, const char *name)
{
	return hf->lookup(hf->src, name);
}

void admit_head(const struct config *cfg, const struct admit_fields *hf,
                const char *version, struct admit_head *ret, char *msg,
                size_t size)
{
	const char *cl = lookup(hf, "Content-Length");

	*ret = (struct admit_head){ .status = 0 };
	if (cl) {
		unsigned long long v = strtoull(cl, NULL, 10);

		if (v > cfg->max_body) {
			const char *exp = lookup(hf, "Expect");

			snprintf(msg, size,
			         "request body of %llu bytes is over the "
			         "limit of %" PRIu64, v, cfg->max_body);
			/*
			 * A client waiting for 100-continue, or one about to
			 * send far too much, is answered now and the
			 * connection closed. Any other client is already
			 * sending: closing on it would reset the connection
			 * before it reads the answer, so its body is read and
			 * dropped, and the 413 comes at its end.
			 */
			if ((exp && strcasecmp(exp, "100-continue") == 0) ||
			    v - cfg->max_body > DISCARD_MAX) {
				ret->status = 413;
				ret->now = true;
				ret->code = "body_too_large";
				ret->msg = msg;
				return;
			}
			ret->body_too_large = true;
		}
	}
	ret->has_body = (cl && strcmp(cl, "0") != 0) ||
	                lookup(hf, "Transfer-Encoding");
	if (!lookup(hf, "Host") && strcmp(version, "HTTP/1.1") == 0) {
		/* RFC 9112 section 3.2: a 1.1 request without Host is bad. */
		ret->status = 400;
		ret->code = "bad_request";
		ret->msg = "HTTP/1.1 request without Host";
	}
}

unsigned admit_target(const struct config *cfg, struct request *r,
                      const char **ret_code, const char **ret_msg,
                      char *msg, size_t size)
{
	enum target_error te;
	size_t end;

	te = target_parse(r->raw_target, &r->target);
	if (te == TARGET_ORIGIN_FORM) {
		*ret_code = "not_a_proxy_request";
		*ret_msg = "this is a forward proxy: send requests in "
		           "absolute form (GET http://host/path), e.g. by "
		           "setting http_proxy to this address";
		return 400;
	}
	if (te != TARGET_OK) {
		snprintf(msg, size, "invalid request target: %s",
		         target_error_str(te));
		*ret_code = "bad_request";
		*ret_msg = msg;
		return 400;
	}
	/* The daemon's own listeners are in the list too, with their port. */
	if (cidr_literal_denied(&cfg->deny_destinations, r->target.dest.host,
	                        r->target.dest.port)) {
		snprintf(msg, size, "destination '%s' is denied",
		         r->target.dest.host);
		*ret_code = "destination_denied";
		*ret_msg = msg;
		return 403;
	}
	/* Drop a fragment so the path is a C string to its end. */
	end = (size_t)(r->target.path - r->raw_target) + r->target.path_len;
	r->raw_target[end] = '\0';
	return 0;
}

static bool collect_webhook(void *arg, const char *name, const char *value)
{
	struct admit_job *j = arg;

	if (strcasecmp(name, "X-EZTHROTTLE-WEBHOOK") == 0 &&
	    j->f.n_webhooks < WEBHOOK_MAX_URLS + 1)
		j->webhooks[j->f.n_webhooks++] = value ? value : "";
	return true;
}

void admit_job_fields(const struct admit_fields *hf, struct admit_job *ret)
{
	ret->f = (struct job_fields){ .webhooks = ret->webhooks };
	hf->each(hf->src, collect_webhook, ret);
	ret->f.quorum = lookup(hf, "X-EZTHROTTLE-WEBHOOK-QUORUM");
	ret->f.metadata = lookup(hf, "X-EZTHROTTLE-METADATA");
	ret->f.idempotent_key = lookup(hf, "X-EZTHROTTLE-IDEMPOTENT-KEY");
	ret->f.max_retries = lookup(hf, "X-EZTHROTTLE-MAX-RETRIES");
	ret->f.retry_on = lookup(hf, "X-EZTHROTTLE-RETRY-ON");
}

int admit_classify(const struct admit_ctx *ctx,
                   const struct admit_fields *hf, struct request *r,
                   struct job_intake **ret_intake, const char **ret_code,
                   char *msg, size_t size)
{
	const struct config *cfg = ctx->cfg;
	const char *v;
	bool idempotent;

	destination_format(&r->target.dest, r->dest_key, sizeof(r->dest_key));
	for (size_t i = 0; i < cfg->defaults.n_key_headers; i++) {
		v = lookup(hf, cfg->defaults.key_headers[i]);
		if (v) {
			cred_hash(ctx->salt, v, strlen(v), r->cred);
			r->has_cred = true;
			break;
		}
	}

	*ret_code = "bad_request";
	if (lookup(hf, "X-EZTHROTTLE-WEBHOOK")) {
		struct admit_job job;
		int err;

		admit_job_fields(hf, &job);
		err = job_intake_new(ctx->jobs, &job.f, ret_intake, ret_code,
		                     msg, size);
		if (err < 0)
			return err == -ENOMEM ? -ENOMEM : -EINVAL;
		*ret_code = "bad_request";
	}

	r->deadline = r->t_arrival + cfg->sync_timeout;
	v = lookup(hf, "X-EZTHROTTLE-TIMEOUT");
	if (v) {
		char *end;
		double secs;

		errno = 0;
		secs = strtod(v, &end);
		end += strspn(end, " \t");
		if (errno || end == v || *end || !(secs > 0) ||
		    secs > 86400 * 365) {
			snprintf(msg, size, "X-EZTHROTTLE-TIMEOUT must be a "
			         "number of seconds > 0");
			return -EINVAL;
		}
		r->deadline = r->t_arrival + (int64_t)(secs * 1000 + 0.5);
	}

	v = lookup(hf, "X-EZTHROTTLE-MODE");
	if (v) {
		enum rate_mode m;

		if (rate_mode_parse(v, &m) < 0) {
			snprintf(msg, size, "X-EZTHROTTLE-MODE must be paced, "
			         "frugal or adaptive");
			return -EINVAL;
		}
		r->mode = (int)m;
	}

	idempotent = retry_method_idempotent(r->method) ||
	             lookup(hf, "X-EZTHROTTLE-IDEMPOTENT-KEY") ||
	             lookup(hf, "Idempotency-Key");
	retry_rules_init(&r->rules, cfg->retry.max_retries, cfg->retry.on,
	                 cfg->retry.n_on, idempotent);
	v = lookup(hf, "X-EZTHROTTLE-MAX-RETRIES");
	if (v && retry_parse_max(v, &r->rules.max_retries) < 0) {
		snprintf(msg, size, "X-EZTHROTTLE-MAX-RETRIES must be an "
		         "integer from 0 to 1000");
		return -EINVAL;
	}
	v = lookup(hf, "X-EZTHROTTLE-RETRY-ON");
	if (v && retry_parse_on(v, &r->rules) < 0) {
		snprintf(msg, size, "X-EZTHROTTLE-RETRY-ON must be a list of "
		         "status codes such as '429,503'");
		return -EINVAL;
	}
	return 0;
}

/* The walk that builds the upstream list. */
struct hdr_walk {
	struct request *r;
	const char *conn;            /* joined Connection values */
	size_t fields, text;         /* walked so far */
	bool has_accept, has_ctype;
	bool oom, bad;
};

static bool join_connection(void *arg, const char *name, const char *value)
{
	char **joined = arg;
	char *s;

	if (strcasecmp(name, "Connection") != 0 || !value)
		return true;
	if (asprintf(&s, "%s%s%s", *joined ? *joined : "",
	             *joined ? "," : "", value) < 0)
		return false;
	free(*joined);
	*joined = s;
	return true;
}

static bool add_header(void *arg, const char *name, const char *value)
{
	struct hdr_walk *w = arg;
	size_t klen = strlen(name);

	w->fields++;
	w->text += klen + (value ? strlen(value) : 0);
	/*
	 * wire.c refused such fields already; this guards the one place
	 * where client fields become upstream lines.
	 */
	if (!header_name_ok(name, klen) ||
	    (value && !header_value_ok(value, strlen(value)))) {
		w->bad = true;
		return false;
	}
	if (header_drop_request(name, klen, w->conn))
		return true;
	if (header_name_eq(name, klen, "Accept"))
		w->has_accept = true;
	else if (header_name_eq(name, klen, "Content-Type"))
		w->has_ctype = true;
	if (header_list_add(&w->r->up_headers, name, value ? value : "") < 0) {
		w->oom = true;
		return false;
	}
	return true;
}

int admit_upstream_headers(const struct admit_fields *hf, struct request *r,
                           size_t *ret_fields, size_t *ret_text)
{
	struct hdr_walk w = { .r = r };
	char *conn = NULL;

	hf->each(hf->src, join_connection, &conn);
	w.conn = conn;
	hf->each(hf->src, add_header, &w);
	free(conn);
	*ret_fields += w.fields;
	*ret_text += w.text;
	if (w.bad)
		return -EINVAL;
	if (w.oom)
		return -ENOMEM;
	return header_list_seal(&r->up_headers, w.has_accept, w.has_ctype);
}

/*
 * delivery_job.c - a job held for delivery: the copy made from a struct
 * delivery_spec (delivery_job_new), the job's end dropped once the store
 * holds it (delivery_job_stored), and the payload its tries in flight
 * share, built from the copy or the store's row and freed by the last
 * try to end. The thread that schedules the tries is delivery.c.
 */
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "delivery.h"
#include "delivery_int.h"
#include "jobs.h"
#include "log.h"
#include "webhook.h"

static char *dup_or_null(const char *s, bool *oom)
{
	char *c;

	if (!s)
		return NULL;
	c = strdup(s);
	if (!c)
		*oom = true;
	return c;
}

static void result_free(struct delivery_result *c)
{
	if (!c)
		return;
	free(c->idempotent_key);
	free(c->metadata_json);
	free(c->end);
	free(c);
}

static struct delivery_result *result_copy(const struct delivery_spec *s)
{
	struct delivery_result *c = calloc(1, sizeof(*c));
	bool oom = false;

	if (!c)
		return NULL;
	c->idempotent_key = dup_or_null(s->idempotent_key, &oom);
	c->metadata_json = dup_or_null(s->metadata_json, &oom);
	c->end = job_result_dup(&s->end);
	if (oom || !c->end) {
		result_free(c);
		return NULL;
	}
	return c;
}

struct delivery_job *delivery_job_new(const struct delivery_spec *s)
{
	struct delivery_job *dj;
	bool oom = false;

	dj = calloc(1, sizeof(*dj) + s->n_urls * sizeof(dj->t[0]));
	if (!dj)
		return NULL;
	snprintf(dj->id, sizeof(dj->id), "%s", s->job_id);
	if (!s->stored) {
		dj->copy = result_copy(s);
		oom = !dj->copy;
	}
	dj->body_len = s->end.body_len;
	dj->quorum = s->quorum ? s->quorum : 1;
	dj->finished_ms = s->finished_ms;
	dj->n = s->n_urls;
	for (size_t i = 0; i < s->n_urls; i++) {
		struct target *t = &dj->t[i];
		const struct job_delivery *st = s->states ? &s->states[i] : NULL;

		t->job = dj;
		t->index = i;
		heap_node_init(&t->timer);
		t->url = dup_or_null(s->urls[i], &oom);
		t->timer.when = s->finished_ms;
		if (st) {
			t->attempts = st->attempts;
			t->timer.when = st->next_at;
			t->settled = st->state != DELIVERY_PENDING;
			dj->n_delivered += st->state == DELIVERY_DELIVERED;
		}
		dj->n_open += !t->settled;
	}
	if (oom || dj->n_open == 0) {
		delivery_job_free(dj);
		return NULL;
	}
	return dj;
}

void delivery_job_stored(struct delivery_job *dj)
{
	result_free(dj->copy);
	dj->copy = NULL;
}

void delivery_job_free(struct delivery_job *dj)
{
	if (!dj)
		return;
	for (size_t i = 0; i < dj->n; i++) {
		free(dj->t[i].url);
		header_list_free(&dj->t[i].hdrs);
	}
	result_free(dj->copy);
	free(dj->payload);
	free(dj);
}

/*
 * The payload, the same for every try (only its signature changes), from
 * the copy or the store: the same bytes either way. -EINVAL: metadata
 * that does not parse; -ENOENT: no such done job; else the store's error.
 * *ret_read_ms: how long the store read took (0: none).
 */
static int build_payload(struct delivery_job *dj, struct jobs *store,
                         int64_t *ret_read_ms)
{
	const struct delivery_result *c = dj->copy;
	struct webhook_result res = { .job_id = dj->id };
	const char *meta_json;
	struct job *jb = NULL;
	json_t *meta = NULL;
	int r;

	*ret_read_ms = 0;
	if (c) {
		res.idempotent_key = c->idempotent_key;
		res.end = *c->end;
		meta_json = c->metadata_json;
	} else {
		int64_t t0 = clock_now_ms();

		r = jobs_get_result(store, dj->id, &jb);
		*ret_read_ms = clock_now_ms() - t0;
		if (r < 0)
			return r;
		res.idempotent_key = jb->idempotent_key;
		job_result_of(jb, &res.end);
		meta_json = jb->metadata_json;
	}
	if (!res.end.error_code)
		res.end.error_code = "failed";
	if (!res.end.error_message)
		res.end.error_message = "the job failed";
	r = 0;
	if (meta_json) {
		meta = json_loads(meta_json, 0, NULL);
		if (!meta)
			r = -EINVAL;
	}
	res.metadata = meta;
	if (r == 0)
		r = webhook_payload(&res, &dj->payload, &dj->payload_len);
	json_decref(meta);
	job_free(jb);
	return r;
}

int delivery_payload_hold(struct delivery_job *dj, struct jobs *store,
                          size_t *payload_bytes)
{
	int r;

	if (!dj->payload) {
		int64_t t0 = clock_now_ms(), read_ms;

		r = build_payload(dj, store, &read_ms);
		if (r < 0)
			return r;
		*payload_bytes += dj->payload_len;
		log_debug("webhook payload built job=%s bytes=%zu ms=%" PRId64
		          " read_ms=%" PRId64 " from=%s", dj->id,
		          dj->payload_len, clock_now_ms() - t0, read_ms,
		          dj->copy ? "memory" : "store");
	}
	dj->payload_users++;
	return 0;
}

void delivery_payload_drop(struct delivery_job *dj, size_t *payload_bytes)
{
	if (--dj->payload_users > 0)
		return;
	*payload_bytes -= dj->payload_len;
	free(dj->payload);
	dj->payload = NULL;
	dj->payload_len = 0;
}

/*
 * jobrun_json.c - GET /jobs/<id>: a stored job as JSON (see jobrun_json.h).
 */
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "classify.h"
#include "jobrun_json.h"
#include "webhook.h"

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
		struct job_result end;

		job_result_of(jb, &end);
		if (webhook_response_json(&end, &resp) < 0)
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

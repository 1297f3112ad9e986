/*
 * job.c - the copies of a job's shapes, and a stored job seen in them
 * (see job.h).
 */
#include <stdlib.h>
#include <string.h>

#include "job.h"

size_t job_str_size(const char *s)
{
	return s ? strlen(s) + 1 : 0;
}

const char *job_room_str(char **room, const char *s)
{
	char *c = *room;
	size_t n;

	if (!s)
		return NULL;
	n = strlen(s) + 1;
	memcpy(c, s, n);
	*room += n;
	return c;
}

size_t job_result_room(const struct job_result *r)
{
	return job_str_size(r->headers_json) + job_str_size(r->error_code) +
	       job_str_size(r->error_message) + r->body_len + 1;
}

struct job_result job_result_copy(const struct job_result *r, void *room)
{
	struct job_result c = *r;
	char *p = room;

	c.headers_json = job_room_str(&p, r->headers_json);
	c.error_code = job_room_str(&p, r->error_code);
	c.error_message = job_room_str(&p, r->error_message);
	if (r->body_len)
		memcpy(p, r->body, r->body_len);
	p[r->body_len] = '\0';
	c.body = p;
	return c;
}

struct job_result *job_result_dup(const struct job_result *r)
{
	struct job_result *c = malloc(sizeof(*c) + job_result_room(r));

	if (!c)
		return NULL;
	*c = job_result_copy(r, c + 1);
	return c;
}

struct job_spec *job_spec_dup_webhooks(const struct job_spec *s)
{
	size_t n = job_str_size(s->idempotent_key) +
	           job_str_size(s->metadata_json);
	struct job_spec *c;
	const char **urls;
	char *room;

	for (size_t i = 0; i < s->n_webhooks; i++)
		n += job_str_size(s->webhooks[i]);
	c = malloc(sizeof(*c) + s->n_webhooks * sizeof(char *) + n);
	if (!c)
		return NULL;
	urls = (const char **)(c + 1);
	room = (char *)(urls + s->n_webhooks);
	*c = (struct job_spec){
		.idempotent_key = job_room_str(&room, s->idempotent_key),
		.metadata_json = job_room_str(&room, s->metadata_json),
		.webhooks = urls, .n_webhooks = s->n_webhooks,
		.quorum = s->quorum,
	};
	for (size_t i = 0; i < s->n_webhooks; i++)
		urls[i] = job_room_str(&room, s->webhooks[i]);
	return c;
}

const char **job_webhooks(const struct job *jb)
{
	const char **urls = calloc(jb->n_deliveries + 1, sizeof(char *));

	for (size_t i = 0; urls && i < jb->n_deliveries; i++)
		urls[i] = jb->deliveries[i].url;
	return urls;
}

void job_spec_of(const struct job *jb, const char *const *webhooks,
                 struct job_spec *ret)
{
	*ret = (struct job_spec){
		.method = jb->method, .url = jb->url,
		.headers_json = jb->headers_json,
		.body = jb->body, .body_len = jb->body_len,
		.cred = jb->cred, .cred_len = jb->cred_len,
		.idempotent_key = jb->idempotent_key,
		.metadata_json = jb->metadata_json,
		.webhooks = webhooks, .n_webhooks = jb->n_deliveries,
		.quorum = jb->quorum,
	};
}

void job_result_of(const struct job *jb, struct job_result *ret)
{
	*ret = (struct job_result){
		.status_code = jb->status_code,
		.headers_json = jb->resp_headers_json,
		.body = jb->resp_body, .body_len = jb->resp_body_len,
		.failed = !jb->success,
		.error_code = jb->error_code,
		.error_message = jb->error_message,
	};
}

void job_free(struct job *jb)
{
	if (!jb)
		return;
	for (size_t i = 0; i < jb->n_deliveries; i++) {
		free(jb->deliveries[i].url);
		free(jb->deliveries[i].last_error);
	}
	free(jb->deliveries);
	free(jb->cred);
	free(jb->idempotent_key);
	free(jb->method);
	free(jb->url);
	free(jb->headers_json);
	free(jb->body);
	free(jb->metadata_json);
	free(jb->resp_headers_json);
	free(jb->resp_body);
	free(jb->error_code);
	free(jb->error_message);
	free(jb);
}

/*
 * request.c - request lifetime.
 */
#include <curl/curl.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "request.h"

int buf_append(struct buf *b, const void *p, size_t n)
{
	if (b->off > 0 && b->off == b->len)
		b->off = b->len = 0;
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 1024;
		char *d;

		if (b->off > 0) {
			/* Reclaim the consumed front before growing. */
			memmove(b->data, b->data + b->off, b->len - b->off);
			b->len -= b->off;
			b->off = 0;
		}
		while (cap < b->len + n)
			cap *= 2;
		if (cap != b->cap) {
			d = realloc(b->data, cap);
			if (!d)
				return -ENOMEM;
			b->data = d;
			b->cap = cap;
		}
	}
	memcpy(b->data + b->len, p, n);
	b->len += n;
	return 0;
}

int buf_reserve(struct buf *b, size_t n)
{
	char *d;

	if (b->data || n <= b->cap)
		return 0;
	d = malloc(n);
	if (!d)
		return -ENOMEM;
	b->data = d;
	b->cap = n;
	return 0;
}

void buf_done(struct buf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

int request_init(struct request *r, const char *raw_target)
{
	r->raw_target = strdup(raw_target ? raw_target : "");
	if (!r->raw_target)
		return -ENOMEM;
	atomic_init(&r->refs, 1);
	r->content_length = -1;
	r->tunnel_fd = -1;
	r->err_wait_ms = -1;
	r->mode = -1;
	heap_node_init(&r->timer);
	pthread_mutex_init(&r->lock, NULL);
	for (int i = 0; i < REQ_MSG_COUNT; i++) {
		r->msg[i].req = r;
		r->msg[i].type = (enum req_msg_type)i;
	}
	return 0;
}

struct request *request_new(const char *raw_target)
{
	struct request *r = calloc(1, sizeof(*r));

	if (r && request_init(r, raw_target) < 0) {
		free(r);
		return NULL;
	}
	return r;
}

void request_ref(struct request *r)
{
	atomic_fetch_add_explicit(&r->refs, 1, memory_order_relaxed);
}

void request_unref(struct request *r)
{
	if (!r)
		return;
	if (atomic_fetch_sub_explicit(&r->refs, 1, memory_order_acq_rel) != 1)
		return;
	free(r->raw_target);
	free(r->method);
	header_list_free(&r->up_headers);
	buf_done(&r->body);
	buf_done(&r->resp_headers);
	buf_done(&r->resp_body);
	free(r->err_msg);
	if (r->tunnel_fd >= 0)
		close(r->tunnel_fd);
	if (r->owner && r->owner->free)
		r->owner->free(r);
	pthread_mutex_destroy(&r->lock);
	free(r);
}

void request_fail_locked(struct request *r, unsigned status,
                         const char *code, const char *message)
{
	r->phase = REQ_FAILED;
	r->err_status = status;
	r->err_code = code;
	free(r->err_msg);
	r->err_msg = strdup(message);
}

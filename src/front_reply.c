/*
 * front_reply.c - responses to the front's clients, and the access log
 * line of each. See front_reply.h.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "ascii.h"
#include "clock.h"
#include "cred.h"
#include "front_reply.h"
#include "front_req.h"
#include "headers.h"
#include "http.h"
#include "jobrun_intake.h"
#include "log.h"
#include "netaddr.h"
#include "request.h"

/* Reader block size. */
#define READER_BLOCK (32 * 1024)

/* X-EZTHROTTLE-Attempts and -Queue-Ms, on every response the engine saw. */
static void add_progress(struct MHD_Response *resp, const struct request *r)
{
	char v[ASCII_U64_MAX];

	if (!r->submitted)
		return;
	ascii_u64(r->attempts, v);
	MHD_add_response_header(resp, "X-EZTHROTTLE-Attempts", v);
	ascii_u64(r->queue_us > 0 ? (uint64_t)r->queue_us / 1000 : 0, v);
	MHD_add_response_header(resp, "X-EZTHROTTLE-Queue-Ms", v);
}

enum MHD_Result reply_error(struct front_req *fr, unsigned status,
                            const char *code, const char *msg)
{
	struct request *r = &fr->req;
	struct MHD_Response *resp;
	enum MHD_Result ret;
	char after[24] = "1";

	/* A hopeless request: the prediction, and when the queue is through. */
	if (r->err_wait_ms >= 0) {
		resp = http_error_response_n(code, msg ? msg : code,
		                             "predicted_wait_ms",
		                             r->err_wait_ms);
		snprintf(after, sizeof(after), "%lld",
		         (long long)(r->err_wait_ms + 999) / 1000);
	} else {
		resp = http_error_response(code, msg ? msg : code);
	}
	if (!resp)
		return MHD_NO;
	if (status == 503)
		MHD_add_response_header(resp, "Retry-After", after);
	add_progress(resp, r);
	ret = MHD_queue_response(fr->conn, status, resp);
	MHD_destroy_response(resp);
	fr->sent_status = status;
	return ret;
}

static void reader_free(void *cls)
{
	request_unref(cls);
}

/* The value of the first field named name in "name\0value\0" pairs. */
static const char *resp_header(const struct request *r, const char *name)
{
	const char *p = r->resp_headers.data;

	for (size_t i = 0; i < r->n_resp_headers; i++) {
		const char *v = p + strlen(p) + 1;

		if (strcasecmp(p, name) == 0)
			return v;
		p = v + strlen(v) + 1;
	}
	return NULL;
}

/*
 * Whether upstream's header block fits in what the client's connection
 * has left of max_header (MHD's pool, which still holds the request's
 * fields). When it does not, MHD would drop the connection without a
 * word; a 502 that says why is better.
 */
static bool response_head_fits(const struct front_req *fr,
                               uint64_t max_header)
{
	const struct request *r = &fr->req;
	const char *p = r->resp_headers.data;
	size_t need = fr->req_hdr_bytes + REPLY_HEAD_SLACK;

	for (size_t i = 0; i < r->n_resp_headers; i++) {
		size_t nlen = strlen(p), vlen = strlen(p + nlen + 1);

		need += nlen + vlen + 4;
		p += nlen + vlen + 2;
	}
	return need <= max_header;
}

enum MHD_Result reply_upstream(struct front_req *fr, uint64_t max_header,
                               MHD_ContentReaderCallback reader)
{
	struct request *r = &fr->req;
	struct MHD_Response *resp;
	const char *conn, *cl_s, *p;
	uint64_t size = MHD_SIZE_UNKNOWN;
	enum MHD_Result ret;
	char *data = NULL;
	size_t len = 0;
	bool whole;

	/* Response headers are final once the phase is REQ_HEADERS. */
	if (!response_head_fits(fr, max_header)) {
		char msg[128];

		snprintf(msg, sizeof(msg), "the upstream response's header "
		         "block and the request's exceed max_header (%" PRIu64
		         " bytes)", max_header);
		return reply_error(fr, 502, "upstream_headers_too_large", msg);
	}
	conn = resp_header(r, "Connection");
	cl_s = resp_header(r, "Content-Length");
	if (cl_s) {
		char *end;
		unsigned long long v;

		errno = 0;
		v = strtoull(cl_s, &end, 10);
		if (!errno && end != cl_s && !*end)
			size = v;
	}

	pthread_mutex_lock(&r->lock);
	whole = r->body_done && !r->body_error && !r->is_head;
	if (whole) {
		/* Hand the buffer to MHD: no second copy. */
		data = r->resp_body.data;
		len = r->resp_body.len;
		memset(&r->resp_body, 0, sizeof(r->resp_body));
	}
	pthread_mutex_unlock(&r->lock);

	if (whole) {
		if (data)
			resp = MHD_create_response_from_buffer_with_free_callback(
				len, data, free);
		else
			resp = MHD_create_response_from_buffer(
				0, NULL, MHD_RESPMEM_PERSISTENT);
		if (!resp)
			free(data);
		fr->sent_bytes = len;
	} else {
		if (r->is_head && size == MHD_SIZE_UNKNOWN)
			size = 0;
		request_ref(r);
		resp = MHD_create_response_from_callback(
			size, READER_BLOCK, reader, r, reader_free);
		if (!resp)
			request_unref(r);
	}
	if (!resp)
		return MHD_NO;

	p = r->resp_headers.data;
	for (size_t i = 0; i < r->n_resp_headers; i++) {
		const char *v = p + strlen(p) + 1;
		size_t nlen = strlen(p);

		/*
		 * MHD refuses an empty value; a lone space is the same
		 * field on the wire, since parsers strip whitespace.
		 */
		if (!header_drop_response(p, nlen, conn) &&
		    strcasecmp(p, "X-EZTHROTTLE-Attempts") != 0 &&
		    strcasecmp(p, "X-EZTHROTTLE-Queue-Ms") != 0 &&
		    MHD_add_response_header(resp, p, *v ? v : " ") != MHD_YES)
			log_debug("response field dropped name='%s'", p);
		p = v + strlen(v) + 1;
	}
	add_progress(resp, r);
	ret = MHD_queue_response(fr->conn, r->status, resp);
	MHD_destroy_response(resp);
	fr->sent_status = r->status;
	return ret;
}

enum MHD_Result reply_job(struct front_req *fr, const char *admin_base)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;
	unsigned status;
	bool location;
	char *body, loc[FRONT_ADMIN_BASE_MAX + JOB_ID_LEN + 8];

	body = job_intake_answer(fr->intake, &status, &location);
	if (!body)
		return MHD_NO;
	resp = MHD_create_response_from_buffer_with_free_callback(
		strlen(body), body, free);
	if (!resp) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type", "application/json");
	MHD_add_response_header(resp, "Cache-Control", "no-store");
	if (status == 503)
		MHD_add_response_header(resp, "Retry-After", "1");
	if (location) {
		/* On the admin listener, where GET /jobs/<id> is. */
		snprintf(loc, sizeof(loc), "%s/jobs/%s", admin_base,
		         fr->intake->id);
		MHD_add_response_header(resp, "Location", loc);
	}
	ret = MHD_queue_response(fr->conn, status, resp);
	MHD_destroy_response(resp);
	fr->sent_status = status;
	return ret;
}

/* s[0..n) as a logfmt value in double quotes, cut to fit out. */
static void logfmt_quote(const char *s, size_t n, char *out, size_t size)
{
	size_t o = 0;

	out[o++] = '"';
	for (size_t i = 0; i < n && o + 4 < size; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"' || c == '\\') {
			out[o++] = '\\';
			out[o++] = (char)c;
		} else if (c < 0x20 || c == 0x7f) {
			out[o++] = '?'; /* never reached: wire.c refuses them */
		} else {
			out[o++] = (char)c;
		}
	}
	out[o++] = '"';
	out[o] = '\0';
}

void reply_log(struct front_req *fr)
{
	struct request *r = &fr->req;
	char client[NETADDR_STRLEN], when[32];
	char dest[DEST_HOST_MAX + 32], path[512], key[CRED_DISPLAY_LEN + 1];
	int64_t wall = clock_wall_ms(), queue_us, upstream_us;
	unsigned attempts;
	const char *q;
	struct tm tm;
	time_t secs = (time_t)(wall / 1000);
	size_t plen;

	netaddr_format((const struct sockaddr *)&fr->client, client,
	               sizeof(client));
	if (r->target.dest.host[0] == '\0' ||
	    destination_format(&r->target.dest, dest, sizeof(dest)) < 0)
		snprintf(dest, sizeof(dest), "-");
	/* The query may hold credentials: log the path only. */
	q = r->target.path ? memchr(r->target.path, '?', r->target.path_len)
	                   : NULL;
	plen = q ? (size_t)(q - r->target.path) : r->target.path_len;
	logfmt_quote(r->target.path ? r->target.path : "", plen, path,
	             sizeof(path));
	/* The keyed hash /queues shows, never the credential. */
	if (r->has_cred)
		cred_display(r->cred, key);
	else
		snprintf(key, sizeof(key), "-");
	gmtime_r(&secs, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	pthread_mutex_lock(&r->lock);
	attempts = r->attempts;
	queue_us = r->queue_us;
	upstream_us = r->upstream_us;
	pthread_mutex_unlock(&r->lock);
	log_info("access time=%s.%03dZ client=%s method=%s dest=%s path=%s "
	         "status=%u attempts=%u queue_ms=%" PRId64 " upstream_ms=%"
	         PRId64 " bytes=%" PRIu64 " ms=%" PRId64 " key=%s",
	         when, (int)(wall % 1000), client,
	         r->method ? r->method : "-", dest, path, fr->sent_status,
	         attempts, queue_us / 1000, upstream_us / 1000,
	         fr->sent_bytes, clock_now_ms() - r->t_arrival, key);
}

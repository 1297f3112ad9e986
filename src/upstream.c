/*
 * upstream.c - the libcurl side of a transfer: easy handle options,
 * response header and body callbacks, and what a failed transfer means.
 */
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "config.h"
#include "request.h"
#include "upstream.h"

/* Response bytes buffered per request before the transfer is paused. */
#define BODY_HIGH_WATER (256 * 1024)
#define CONNECT_TIMEOUT_MS 30000
/*
 * curl's receive buffer (CURLOPT_BUFFERSIZE; its default is 16 KiB): each
 * fill costs a poll(2), a recv(2) and a write callback, so a 64 KiB body
 * takes one, not four (15 % more 64 KiB responses a second). A handle
 * keeps it while pooled: the pool is small (engine_int.h).
 */
#define RECV_BUFFER (64 * 1024)

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
	r->got_bytes = true;
	if (len >= 5 && memcmp(line, "HTTP/", 5) == 0) {
		/* A new status line: forget any 1xx block before it. */
		h->len = h->off = 0;
		r->n_resp_headers = 0;
		return len;
	}
	if (end == line) {
		long status = 0;

		curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
		if (status >= 200)
			r->up_hooks->on_headers(r, (unsigned)status);
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

	if (r->retrying)
		return len; /* this answer will not be used */
	pthread_mutex_lock(&r->lock);
	if (r->cancelled) {
		pthread_mutex_unlock(&r->lock);
		return 0;
	}
	if (r->policy.body_cap) {
		/* No reader: keep all of it, up to the cap. */
		if (r->resp_body.len + len > r->policy.body_cap) {
			r->resp_too_large = true;
			pthread_mutex_unlock(&r->lock);
			return 0;
		}
	} else if (buf_avail(&r->resp_body) >= BODY_HIGH_WATER) {
		r->paused = true;
		pthread_mutex_unlock(&r->lock);
		return CURL_WRITEFUNC_PAUSE;
	}
	if (!r->resp_body.data) {
		/*
		 * The first bytes: room for the whole body the answer
		 * announces (up to what the buffer holds before it pauses),
		 * so that it does not grow by doubling, a copy each time.
		 */
		curl_off_t cl = -1;

		curl_easy_getinfo(r->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T,
		                  &cl);
		if (cl > (curl_off_t)len)
			buf_reserve(&r->resp_body,
			            cl < BODY_HIGH_WATER + (curl_off_t)len ?
			            (size_t)cl : BODY_HIGH_WATER + len);
	}
	err = buf_append(&r->resp_body, data, len);
	pthread_mutex_unlock(&r->lock);
	if (err < 0)
		return 0;
	r->up_hooks->on_body(r);
	return len;
}

static curl_socket_t opensocket_cb(void *arg, curlsocktype purpose,
                                   struct curl_sockaddr *a)
{
	struct request *r = arg;

	return upstream_socket(&(*r->up_cfg)->deny_destinations, a,
	                       &r->denied);
}

curl_socket_t upstream_socket(const struct cidr_list *deny,
                              const struct curl_sockaddr *a, bool *ret_denied)
{
	if (cidr_list_match_dest(deny, &a->addr)) {
		if (ret_denied)
			*ret_denied = true;
		return CURL_SOCKET_BAD;
	}
	return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

/*
 * An opaque tunnel's connection: curl resolves the name (its threaded
 * resolver: nothing blocks), checks every address against the deny list
 * and connects; no byte is sent. Plain "http" so that curl speaks no TLS.
 */
static int setup_connect_only(CURL *c, struct request *r)
{
	struct destination d = r->target.dest;
	char url[DEST_HOST_MAX + 32];
	CURLcode rc = CURLE_OK;

	d.scheme = SCHEME_HTTP;
	if (destination_format(&d, url, sizeof(url)) < 0)
		return -EINVAL;
#define SET(opt, val) \
	do { if (rc == CURLE_OK) rc = curl_easy_setopt(c, opt, val); } while (0)
	SET(CURLOPT_URL, url);
	SET(CURLOPT_CONNECT_ONLY, 1L);
	SET(CURLOPT_PROXY, "");
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_PROTOCOLS_STR, "http");
	SET(CURLOPT_PRIVATE, r);
	SET(CURLOPT_OPENSOCKETFUNCTION, opensocket_cb);
	SET(CURLOPT_OPENSOCKETDATA, r);
	SET(CURLOPT_ERRORBUFFER, r->err_buf);
	SET(CURLOPT_CONNECTTIMEOUT_MS, (long)CONNECT_TIMEOUT_MS);
#undef SET
	return rc == CURLE_OK ? 0 : -EINVAL;
}

int upstream_setup(CURL *c, bool fresh, struct request *r,
                   const struct config *const *cfgp,
                   const struct upstream_hooks *hooks)
{
	const struct config *cfg = *cfgp;
	const struct target *t = &r->target;
	char base[DEST_HOST_MAX + 32];
	const char *path = t->path;
	char *tmp = NULL;
	CURLcode rc = CURLE_OK;

	r->up_hooks = hooks;
	r->up_cfg = cfgp;
	if (r->policy.connect_only)
		return setup_connect_only(c, r);
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
	if (fresh) {
		SET(CURLOPT_PROXY, "");
		SET(CURLOPT_NOSIGNAL, 1L);
		SET(CURLOPT_PROTOCOLS_STR, "http,https");
		SET(CURLOPT_PATH_AS_IS, 1L);
		SET(CURLOPT_HEADERFUNCTION, header_cb);
		SET(CURLOPT_WRITEFUNCTION, write_cb);
		SET(CURLOPT_OPENSOCKETFUNCTION, opensocket_cb);
		SET(CURLOPT_CONNECTTIMEOUT_MS, (long)CONNECT_TIMEOUT_MS);
		SET(CURLOPT_BUFFERSIZE, (long)RECV_BUFFER);
		if (cfg->tls.upstream_ca_file)
			SET(CURLOPT_CAINFO, cfg->tls.upstream_ca_file);
	} else {
		SET(CURLOPT_CUSTOMREQUEST, NULL); /* the last request's */
	}
	SET(CURLOPT_URL, base);
	SET(CURLOPT_REQUEST_TARGET, path);
	SET(CURLOPT_PRIVATE, r);
	SET(CURLOPT_HEADERDATA, r);
	SET(CURLOPT_WRITEDATA, r);
	SET(CURLOPT_OPENSOCKETDATA, r);
	SET(CURLOPT_ERRORBUFFER, r->err_buf);
	/*
	 * Without a deadline (a job), an upstream that never answers would
	 * hold the request, and its queue's slot, for ever. A timeout with
	 * no response yet is retried like a failed connection. 0: none.
	 */
	SET(CURLOPT_TIMEOUT_MS, (long)r->policy.attempt_timeout_ms);
	SET(CURLOPT_HTTPHEADER, r->up_headers.head);
	/* GET, no body, no upload: then what this request is. */
	SET(CURLOPT_HTTPGET, 1L);
	if (r->is_head) {
		SET(CURLOPT_NOBODY, 1L);
	} else if (strcmp(r->method, "GET") != 0 || r->body.len != 0) {
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

/*
 * curl refused the response's header block: libcurl 7.x fails a field
 * over CURL_MAX_HTTP_HEADER (100 KiB) with CURLE_OUT_OF_MEMORY, 8.x a
 * block over 300 KiB with "Too large response headers" (RECV_ERROR).
 */
static bool headers_too_large(const struct request *r, CURLcode rc)
{
	if (r->status)
		return false; /* the header block was complete */
	if (rc == CURLE_OUT_OF_MEMORY && r->got_bytes)
		return true;
	return (rc == CURLE_RECV_ERROR || rc == CURLE_WEIRD_SERVER_REPLY ||
	        rc == CURLE_FILESIZE_EXCEEDED) &&
	       (strstr(r->err_buf, "header") || strstr(r->err_buf, "Header"));
}

bool upstream_failed_before_response(const struct request *r, int result)
{
	if (r->got_bytes || r->denied)
		return false;
	switch ((CURLcode)result) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_GOT_NOTHING:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_OPERATION_TIMEDOUT:
		return true;
	default:
		return false;
	}
}

unsigned upstream_failure(const struct request *r, int result,
                          const char **ret_code, char *msg, size_t size)
{
	CURLcode rc = (CURLcode)result;
	const char *host = r->target.dest.host;
	const char *why = r->err_buf[0] ? r->err_buf : curl_easy_strerror(rc);

	if (r->denied && rc == CURLE_COULDNT_CONNECT) {
		snprintf(msg, size,
		         "destination '%s' resolves to a denied address",
		         host);
		*ret_code = "destination_denied";
		return 403;
	} else if (rc == CURLE_COULDNT_RESOLVE_HOST) {
		snprintf(msg, size, "dns lookup of '%s' failed", host);
		*ret_code = "upstream_dns";
		return 502;
	} else if (rc == CURLE_COULDNT_CONNECT) {
		snprintf(msg, size, "connect to '%s' port %u failed: %s",
		         host, r->target.dest.port, why);
		*ret_code = "upstream_connect";
		return 502;
	} else if (rc == CURLE_OPERATION_TIMEDOUT) {
		snprintf(msg, size, "upstream '%s' timed out: %s",
		         host, why);
		*ret_code = "upstream_timeout";
		return 502;
	} else if (headers_too_large(r, rc)) {
		snprintf(msg, size, "the response header block of '%s' is "
		         "over the limit: %s", host, why);
		*ret_code = "upstream_headers_too_large";
		return 502;
	} else if (rc == CURLE_PEER_FAILED_VERIFICATION) {
		snprintf(msg, size, "the certificate of '%s' did not verify: "
		         "%s", host, why);
		*ret_code = "upstream_tls_verify_failed";
		return 502;
	} else if (is_tls_error(rc)) {
		snprintf(msg, size, "tls with '%s' failed: %s", host,
		         why);
		*ret_code = "upstream_tls";
		return 502;
	} else {
		snprintf(msg, size, "upstream '%s' failed: %s", host,
		         why);
		*ret_code = "upstream_error";
		return 502;
	}
}


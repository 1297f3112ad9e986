/*
 * ctl_http.c - GET and POST to the admin listener, for sluicectl.
 */
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl_http.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "unknown"
#endif

#define CTL_CONNECT_TIMEOUT_S 5L
#define CTL_TIMEOUT_S 30L

/* The answer as it arrives. */
struct sink {
	char *buf;
	size_t len, cap;
	bool too_big;
};

static bool port_valid(const char *s)
{
	long v = 0;

	if (!*s || strlen(s) > 5)
		return false;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return false;
		v = v * 10 + (*s - '0');
	}
	return v >= 1 && v <= 65535;
}

static bool host_char(char c, bool bracketed)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_')
		return true;
	return bracketed && c == ':';
}

bool ctl_addr_valid(const char *addr)
{
	const char *colon = strrchr(addr, ':');
	const char *h = addr, *end = colon;
	bool bracketed = addr[0] == '[';

	if (!colon || !port_valid(colon + 1))
		return false;
	if (bracketed) {
		if (colon == addr || colon[-1] != ']')
			return false;
		h = addr + 1;
		end = colon - 1;
	}
	if (end == h || end - h > 253)
		return false;
	for (; h < end; h++)
		if (!host_char(*h, bracketed))
			return false;
	return true;
}

static size_t on_data(char *data, size_t size, size_t n, void *arg)
{
	struct sink *s = arg;
	size_t len = size * n;

	if (len > CTL_BODY_MAX - s->len) {
		s->too_big = true;
		return 0;
	}
	if (s->len + len + 1 > s->cap) {
		size_t cap = s->cap ? s->cap : 4096;
		char *p;

		while (cap < s->len + len + 1)
			cap *= 2;
		p = realloc(s->buf, cap);
		if (!p)
			return 0;
		s->buf = p;
		s->cap = cap;
	}
	memcpy(s->buf + s->len, data, len);
	s->len += len;
	s->buf[s->len] = '\0';
	return len;
}

static int set_options(CURL *h, const char *url, struct sink *s,
                       char *errbuf)
{
	/* Never a proxy: "" overrides http_proxy and friends. */
	if (curl_easy_setopt(h, CURLOPT_URL, url) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_PROXY, "") != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_NOPROXY, "*") != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http") != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT,
	                     CTL_CONNECT_TIMEOUT_S) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_TIMEOUT, CTL_TIMEOUT_S) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_USERAGENT,
	                     "sluicectl/" PACKAGE_VERSION) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_WRITEDATA, s) != CURLE_OK)
		return -ENOMEM;
	return 0;
}

/*
 * What a failed transfer means, as a negative errno and a short reason:
 * the people reading it want to know whether the daemon runs, not
 * libcurl's words for it.
 */
static int transport_error(CURL *h, CURLcode rc, const char *errbuf,
                           char err[CTL_ERR_LEN])
{
	long os_errno = 0;

	curl_easy_getinfo(h, CURLINFO_OS_ERRNO, &os_errno);
	switch (rc) {
	case CURLE_COULDNT_CONNECT:
		if (os_errno == ECONNREFUSED || os_errno == 0) {
			snprintf(err, CTL_ERR_LEN, "connection refused");
			return -ECONNREFUSED;
		}
		if (os_errno == ENETUNREACH || os_errno == EHOSTUNREACH) {
			snprintf(err, CTL_ERR_LEN, "%s",
			         strerror((int)os_errno));
			return -EHOSTUNREACH;
		}
		break;
	case CURLE_OPERATION_TIMEDOUT:
		snprintf(err, CTL_ERR_LEN, "timed out");
		return -ETIMEDOUT;
	case CURLE_COULDNT_RESOLVE_HOST:
		snprintf(err, CTL_ERR_LEN, "cannot resolve the host name");
		return -EHOSTUNREACH;
	case CURLE_GOT_NOTHING:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
		snprintf(err, CTL_ERR_LEN, "closed without an answer");
		return -ECONNRESET;
	case CURLE_WEIRD_SERVER_REPLY:
	case CURLE_UNSUPPORTED_PROTOCOL: /* an HTTP/0.9 answer: not HTTP */
		snprintf(err, CTL_ERR_LEN, "the answer is not HTTP");
		return -EPROTO;
	default:
		break;
	}
	snprintf(err, CTL_ERR_LEN, "%s",
	         errbuf[0] ? errbuf : curl_easy_strerror(rc));
	return -EIO;
}

/* Runs the transfer; 0, or the errno with a reason in err. */
static int perform(CURL *h, struct sink *s, const char *errbuf,
                   char err[CTL_ERR_LEN])
{
	CURLcode rc = curl_easy_perform(h);

	if (rc == CURLE_OK)
		return 0;
	if (s->too_big) {
		snprintf(err, CTL_ERR_LEN, "answer larger than %u bytes",
		         CTL_BODY_MAX);
		return -EFBIG;
	}
	if (rc == CURLE_WRITE_ERROR || rc == CURLE_OUT_OF_MEMORY) {
		snprintf(err, CTL_ERR_LEN, "out of memory");
		return -ENOMEM;
	}
	return transport_error(h, rc, errbuf, err);
}

/* An empty POST body, without the form Content-Type libcurl would add. */
static int set_post(CURL *h, struct curl_slist **hdrs)
{
	struct curl_slist *l = curl_slist_append(*hdrs, "Content-Type:");

	if (!l)
		return -ENOMEM;
	*hdrs = l;
	if (curl_easy_setopt(h, CURLOPT_POST, 1L) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_POSTFIELDS, "") != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, 0L) != CURLE_OK)
		return -ENOMEM;
	return 0;
}

static int request(const char *addr, bool post, const char *path,
                   const char *token, struct ctl_reply *ret,
                   char err[CTL_ERR_LEN])
{
	char errbuf[CURL_ERROR_SIZE] = "";
	struct sink s = { NULL, 0, 0, false };
	struct curl_slist *hdrs = NULL;
	char *url = NULL, *auth = NULL;
	CURL *h;
	int r = -ENOMEM;

	err[0] = '\0';
	h = curl_easy_init();
	if (!h || asprintf(&url, "http://%s%s", addr, path) < 0) {
		url = NULL;
		goto fail;
	}
	r = set_options(h, url, &s, errbuf);
	if (r == 0 && post)
		r = set_post(h, &hdrs);
	if (r < 0)
		goto fail;
	r = -ENOMEM;
	if (token) {
		struct curl_slist *l;

		if (asprintf(&auth, "Authorization: Bearer %s", token) < 0) {
			auth = NULL;
			goto fail;
		}
		l = curl_slist_append(hdrs, auth);
		if (!l)
			goto fail;
		hdrs = l;
	}
	if (hdrs && curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs) != CURLE_OK)
		goto fail;
	r = perform(h, &s, errbuf, err);
	if (r < 0)
		goto fail;
	if (!s.buf) {
		s.buf = strdup("");
		if (!s.buf) {
			r = -ENOMEM;
			goto fail;
		}
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &ret->status);
	ret->body = s.buf;
	ret->len = s.len;
	curl_easy_cleanup(h);
	curl_slist_free_all(hdrs);
	free(auth);
	free(url);
	return 0;
fail:
	if (r == -ENOMEM && !err[0])
		snprintf(err, CTL_ERR_LEN, "out of memory");
	free(s.buf);
	free(url);
	curl_easy_cleanup(h);
	curl_slist_free_all(hdrs);
	free(auth);
	return r;
}

int ctl_get(const char *addr, const char *path, const char *token,
            struct ctl_reply *ret, char err[CTL_ERR_LEN])
{
	return request(addr, false, path, token, ret, err);
}

int ctl_post(const char *addr, const char *path, const char *token,
             struct ctl_reply *ret, char err[CTL_ERR_LEN])
{
	return request(addr, true, path, token, ret, err);
}

void ctl_reply_done(struct ctl_reply *r)
{
	if (!r)
		return;
	free(r->body);
	r->body = NULL;
	r->len = 0;
}

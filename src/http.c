/*
 * http.c - proxy-made responses.
 */
#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "http.h"
#include "log.h"

char *http_error_json(const char *code, const char *message, size_t *ret_len)
{
	return http_error_json_n(code, message, NULL, 0, ret_len);
}

char *http_error_json_n(const char *code, const char *message,
                        const char *name, long long value, size_t *ret_len)
{
	json_t *o;
	char *s, *nl;
	size_t len;

	o = json_pack("{s:s, s:s}", "error", code, "message", message);
	if (o && name &&
	    json_object_set_new(o, name, json_integer(value)) < 0) {
		json_decref(o);
		return NULL;
	}
	if (!o)
		return NULL;
	s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (!s)
		return NULL;
	len = strlen(s);
	nl = realloc(s, len + 2);
	if (!nl) {
		free(s);
		return NULL;
	}
	nl[len] = '\n';
	nl[len + 1] = '\0';
	*ret_len = len + 1;
	return nl;
}

void http_refuse(int fd, unsigned status, const char *code,
                 const char *message, unsigned rounds)
{
	char buf[4096];
	int n;

	for (unsigned i = 0; i < rounds; i++)
		if (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) <= 0)
			break;
	n = http_error_raw(buf, sizeof(buf), status, code, message, NULL);
	if (n > 0 && send(fd, buf, (size_t)n, MSG_NOSIGNAL) < 0)
		log_debug("refusal not sent, ignoring");
	shutdown(fd, SHUT_WR);
}

void http_date(char buf[30])
{
	time_t t = time(NULL);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, 30, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

struct MHD_Response *http_error_response(const char *code,
                                         const char *message)
{
	return http_error_response_n(code, message, NULL, 0);
}

struct MHD_Response *http_error_response_n(const char *code,
                                           const char *message,
                                           const char *name,
                                           long long value)
{
	struct MHD_Response *r;
	char date[30];
	size_t len;
	char *body;

	body = http_error_json_n(code, message, name, value, &len);
	if (!body)
		return NULL;
	r = MHD_create_response_from_buffer_with_free_callback(len, body,
	                                                       free);
	if (!r) {
		free(body);
		return NULL;
	}
	http_date(date);
	MHD_add_response_header(r, "Content-Type", "application/json");
	MHD_add_response_header(r, "Cache-Control", "no-store");
	MHD_add_response_header(r, "Date", date);
	return r;
}

int http_error_raw(char *buf, size_t size, unsigned status, const char *code,
                   const char *message, const char *extra)
{
	const char *reason = MHD_get_reason_phrase_for(status);
	char date[30];
	size_t len;
	char *body;
	int n;

	body = http_error_json(code, message, &len);
	if (!body)
		return -ENOMEM;
	http_date(date);
	n = snprintf(buf, size,
	             "HTTP/1.1 %u %s\r\n"
	             "Content-Type: application/json\r\n"
	             "Cache-Control: no-store\r\n"
	             "Date: %s\r\n"
	             "Content-Length: %zu\r\n"
	             "Connection: close\r\n"
	             "%s\r\n%s",
	             status, reason, date, len, extra ? extra : "", body);
	free(body);
	if (n < 0 || (size_t)n >= size)
		return -ENOSPC;
	return n;
}

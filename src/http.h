/*
 * http.h - responses the proxy makes itself: a status and a JSON body
 * {"error": CODE, "message": TEXT}.
 */
#ifndef SLUICE_HTTP_H
#define SLUICE_HTTP_H

#include <stddef.h>

struct MHD_Response;

/*
 * The JSON body for an error: {"error":"<code>","message":"<message>"}
 * plus a newline, NUL-terminated. Malloc'd, caller frees; NULL on OOM.
 */
char *http_error_json(const char *code, const char *message, size_t *ret_len);

/*
 * The same with one more integer member name: value (name NULL: none),
 * e.g. "predicted_wait_ms".
 */
char *http_error_json_n(const char *code, const char *message,
                        const char *name, long long value, size_t *ret_len);

/*
 * An MHD response with that body, Content-Type: application/json,
 * Cache-Control: no-store and a Date field. NULL on OOM.
 */
struct MHD_Response *http_error_response(const char *code,
                                         const char *message);

/* The same with one more integer member, as http_error_json_n(). */
struct MHD_Response *http_error_response_n(const char *code,
                                           const char *message,
                                           const char *name,
                                           long long value);

/*
 * A complete HTTP/1.1 response with that body and "Connection: close",
 * for sockets MHD does not own. extra is more header lines, each ending in
 * "\r\n", or NULL. Returns the length written, or -ENOSPC.
 */
int http_error_raw(char *buf, size_t size, unsigned status, const char *code,
                   const char *message, const char *extra);

/*
 * Refuses a client on a socket MHD does not own: reads what has arrived
 * (at most rounds reads of 4 KiB, so a fast sender cannot hold the
 * caller: unread input would turn the close into a reset that loses the
 * answer), sends http_error_raw()'s response and shuts the write side.
 * The caller closes fd.
 */
void http_refuse(int fd, unsigned status, const char *code,
                 const char *message, unsigned rounds);

/* Writes an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") into buf[30]. */
void http_date(char buf[30]);

#endif

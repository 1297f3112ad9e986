/*
 * ctl_http.h - sluicectl's HTTP: GET and POST to the admin listener.
 *
 * Plain HTTP to ADDR:PORT with libcurl, never through a proxy (the
 * http_proxy of the environment is ignored), no redirects, bounded in
 * time. Call curl_global_init() first.
 */
#ifndef SLUICE_CTL_HTTP_H
#define SLUICE_CTL_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#define CTL_ERR_LEN 256              /* room for a transport error */
#define CTL_BODY_MAX (64u << 20)     /* bytes; larger answers are refused */

/* An answer. body is malloc'd, NUL-terminated, owned by the struct. */
struct ctl_reply {
	long status;                 /* HTTP status code */
	char *body;
	size_t len;                  /* bytes in body, without the NUL */
};

/*
 * Whether addr is an admin address sluicectl may put into a URL:
 * HOST:PORT or [IPV6]:PORT, port 1..65535, nothing that could change
 * the URL's meaning (no '/', '@', '?', '#', spaces).
 */
bool ctl_addr_valid(const char *addr);

/*
 * GET http://ADDR/PATH, with "Authorization: Bearer TOKEN" when token is
 * not NULL. path starts with '/' and is already escaped.
 * 0 with *ret filled (any status, even 404: the caller decides), or a
 * negative errno with a short reason in err (NUL-terminated, CTL_ERR_LEN
 * bytes, such as "connection refused"). The transport failures:
 *   -ECONNREFUSED  nothing listens at addr ("connection refused")
 *   -ETIMEDOUT     no connection or no answer in time ("timed out")
 *   -EHOSTUNREACH  the host name does not resolve, or no route to it
 *   -ECONNRESET    the connection was closed without an answer (what
 *                  sluiced does to a client outside admin_allow)
 *   -EPROTO        the answer is not HTTP
 *   -EIO           any other (err has libcurl's words)
 * and -EFBIG for an answer over CTL_BODY_MAX, -ENOMEM.
 */
int ctl_get(const char *addr, const char *path, const char *token,
            struct ctl_reply *ret, char err[CTL_ERR_LEN]);

/* The same as ctl_get, with POST and an empty body. */
int ctl_post(const char *addr, const char *path, const char *token,
             struct ctl_reply *ret, char err[CTL_ERR_LEN]);

/* Frees the contents of r; takes a zeroed struct. */
void ctl_reply_done(struct ctl_reply *r);

#endif

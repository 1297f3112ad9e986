/*
 * headers.h - which header fields cross the proxy.
 *
 * Requests: hop-by-hop fields (RFC 9110 section 7.6.1: Connection and every
 * field it names, Proxy-Connection, Keep-Alive, TE, Trailer,
 * Transfer-Encoding, Upgrade, Proxy-Authorization, Proxy-Authenticate) and
 * every X-EZTHROTTLE-* field are dropped; so are Host and Content-Length,
 * which the upstream client writes itself, and Expect.
 * Responses: hop-by-hop fields, Content-Length and Transfer-Encoding (the
 * front frames the body itself) are dropped. Also the lines of curl's
 * request header lists.
 */
#ifndef SLUICE_HEADERS_H
#define SLUICE_HEADERS_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>

struct hblock;

/*
 * A curl request header list (head, for CURLOPT_HTTPHEADER) whose nodes
 * and lines live in blocks the list owns: a request's usual fields cost
 * one allocation, not four each (a line, its copy, a node, the format).
 * All zero: empty. Freed with header_list_free(), never curl_slist_free_all().
 */
struct hlist {
	struct curl_slist *head, *tail;
	struct hblock *blocks;
};

/* Case-insensitive compare of a field name with a (name, len) pair. */
bool header_name_eq(const char *name, size_t len, const char *lit);

/* True for names starting "X-EZTHROTTLE-" (any case). */
bool header_is_sluice(const char *name, size_t len);

/*
 * True when the comma-separated token list conn (a Connection field value,
 * may be NULL) names the field name (case-insensitive, spaces trimmed).
 */
bool header_listed_in(const char *conn, const char *name, size_t len);

/*
 * True when a request field must not be forwarded upstream. conn is the
 * value of the request's Connection field (NULL when absent); several
 * Connection fields should be passed joined with ",".
 */
bool header_drop_request(const char *name, size_t len, const char *conn);

/*
 * True when an upstream response field must not be returned to the client.
 * conn as above, from the response.
 */
bool header_drop_response(const char *name, size_t len, const char *conn);

/* True when name is a token (RFC 9110 section 5.6.2), as a field name must be. */
bool header_name_ok(const char *name, size_t len);

/*
 * True when value is acceptable in a field value: no CR, LF, NUL or other
 * control byte but HTAB (RFC 9110 section 5.5).
 */
bool header_value_ok(const char *value, size_t len);

/*
 * Appends "name: value" to l; an empty value as "name;" ("name:" alone
 * would tell curl to remove the field), and value NULL as "name:", which
 * does remove a field curl adds itself. 0 or -ENOMEM (l unchanged).
 */
int header_list_add(struct hlist *l, const char *name, const char *value);

/*
 * Keeps curl from adding fields the client did not send: appends the
 * removal entries for Expect, and for Accept and Content-Type unless the
 * list has them (has_accept, has_ctype). 0 or -ENOMEM.
 */
int header_list_seal(struct hlist *l, bool has_accept, bool has_ctype);

/* Frees l's blocks and empties it. */
void header_list_free(struct hlist *l);

#endif

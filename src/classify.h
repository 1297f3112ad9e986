/*
 * classify.h - request targets and destinations.
 *
 * A proxy request carries an absolute-form target
 * ("http://Host:port/path?q"). target_parse() splits it without copying or
 * re-escaping anything: the path+query is forwarded upstream byte for byte.
 * The destination (scheme, lower-cased host, port with defaults filled in)
 * names the upstream and is the first half of a queue's identity.
 */
#ifndef SLUICE_CLASSIFY_H
#define SLUICE_CLASSIFY_H

#include <stdbool.h>
#include <stddef.h>

#define DEST_HOST_MAX 255

enum scheme { SCHEME_HTTP, SCHEME_HTTPS };

struct destination {
	enum scheme scheme;
	char host[DEST_HOST_MAX + 1]; /* lower-case; IPv6 without brackets */
	unsigned port;                /* 1..65535, default filled in */
	bool ipv6;                    /* host is an IPv6 literal */
};

struct target {
	struct destination dest;
	const char *path;             /* into the raw target: "/p?q", or "" */
	size_t path_len;              /* up to, not including, any '#' */
};

enum target_error {
	TARGET_OK = 0,
	TARGET_ORIGIN_FORM,           /* "/path": not a proxy request */
	TARGET_BAD_SCHEME,            /* not http:// or https:// */
	TARGET_BAD_HOST,              /* empty, too long, bad characters */
	TARGET_BAD_PORT,              /* not 1..65535 */
	TARGET_USERINFO,              /* "user@host" is refused */
	TARGET_BAD_CHAR,              /* control character or space */
};

/*
 * Parses an absolute-form target (scheme case-insensitive). ret->path
 * points into raw; an empty path means "/" upstream.
 */
enum target_error target_parse(const char *raw, struct target *ret);

/* A short lower-case description of err ("origin-form target", ...). */
const char *target_error_str(enum target_error err);

/*
 * Parses an authority "host:port" or "[v6]:port" as in a CONNECT line;
 * the port is required. The scheme is set to https.
 */
enum target_error authority_parse(const char *s, size_t len,
                                  struct destination *ret);

/* What connect_head_parse() made of the bytes it was given. */
enum connect_head {
	CONNECT_HEAD_MORE,            /* no end of the head yet */
	CONNECT_HEAD_OK,
	CONNECT_HEAD_BAD,             /* malformed: 400 */
	CONNECT_HEAD_TOO_LARGE,       /* no end within max bytes: 431 */
};

/*
 * Reads a CONNECT request head from buf[0..n): "CONNECT host:port
 * HTTP/1.x", fields, an empty line, each line ending in CRLF. On
 * CONNECT_HEAD_OK, *ret holds the authority (scheme https, the port
 * required) and *ret_len the length of the head, so the caller consumes
 * exactly that and not a byte of what follows. On CONNECT_HEAD_BAD,
 * *ret_err says why the authority was refused (TARGET_OK: the line or a
 * field was malformed). Pure.
 */
enum connect_head connect_head_parse(const char *buf, size_t n, size_t max,
                                     struct destination *ret,
                                     size_t *ret_len,
                                     enum target_error *ret_err);

/* Default port of the scheme: 80 or 443. */
unsigned scheme_default_port(enum scheme s);

/* "http" or "https". */
const char *scheme_name(enum scheme s);

/*
 * Writes the normalised "scheme://host:port" (IPv6 in brackets, port always
 * present) into buf. Returns the length, or -ENOSPC when it does not fit.
 */
int destination_format(const struct destination *d, char *buf, size_t size);

/*
 * Writes the URL libcurl gets, "scheme://host:port" + path (or "/"), into
 * buf. Returns the length or -ENOSPC.
 */
int target_upstream_url(const struct target *t, char *buf, size_t size);

#endif

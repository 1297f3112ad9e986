/*
 * classify.c - request targets and destinations.
 *
 * Nothing here copies or re-escapes the path: a proxy that "cleans up"
 * %2F, "//" or ".." forwards a different resource than the client named.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "ascii.h"
#include "classify.h"

/* Longest IPv6 literal inet_pton can take, with its NUL. */
#define V6_TEXT_MAX INET6_ADDRSTRLEN


static bool is_ctl_or_space(unsigned char c)
{
	return c <= 0x20 || c == 0x7f;
}

static bool is_reg_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_';
}

/*
 * Parses the digits at s[0..len) as a port in 1..65535. Stops counting
 * past 65535 so that a long run of digits cannot overflow.
 */
static enum target_error parse_port(const char *s, size_t len,
                                    unsigned *ret_port)
{
	unsigned v = 0;
	size_t i;

	if (len == 0)
		return TARGET_BAD_PORT;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return TARGET_BAD_PORT;
		v = v * 10 + (unsigned)(s[i] - '0');
		if (v > 65535)
			return TARGET_BAD_PORT;
	}
	if (v == 0)
		return TARGET_BAD_PORT;
	*ret_port = v;
	return TARGET_OK;
}

/* Stores the IPv6 literal s[0..len) (no brackets) if inet_pton takes it. */
static enum target_error parse_v6(const char *s, size_t len,
                                  struct destination *d)
{
	char text[V6_TEXT_MAX];
	struct in6_addr a;
	size_t i;

	if (len == 0 || len >= sizeof(text))
		return TARGET_BAD_HOST;
	for (i = 0; i < len; i++)
		text[i] = ascii_lower(s[i]);
	text[len] = '\0';
	if (inet_pton(AF_INET6, text, &a) != 1)
		return TARGET_BAD_HOST;
	memcpy(d->host, text, len + 1);
	d->ipv6 = true;
	return TARGET_OK;
}

static enum target_error parse_reg_name(const char *s, size_t len,
                                        struct destination *d)
{
	size_t i;

	if (len == 0 || len > DEST_HOST_MAX)
		return TARGET_BAD_HOST;
	for (i = 0; i < len; i++) {
		if (!is_reg_name_char(s[i]))
			return TARGET_BAD_HOST;
		d->host[i] = ascii_lower(s[i]);
	}
	d->host[len] = '\0';
	d->ipv6 = false;
	return TARGET_OK;
}

/*
 * Parses the authority s[0..len) into d->host, d->ipv6 and d->port. With
 * port_required false, an absent or empty port gives d->port unchanged
 * (the caller has put the scheme's default there). The caller has already
 * refused control characters and '@'.
 */
static enum target_error parse_host_port(const char *s, size_t len,
                                         bool port_required,
                                         struct destination *d)
{
	const char *port = NULL;
	size_t host_len, port_len = 0;
	enum target_error err;

	if (len > 0 && s[0] == '[') {
		const char *close = memchr(s, ']', len);

		if (!close)
			return TARGET_BAD_HOST;
		host_len = (size_t)(close - s) + 1;
		if (host_len < len && s[host_len] != ':')
			return TARGET_BAD_HOST;
		err = parse_v6(s + 1, host_len - 2, d);
	} else {
		const char *colon = memchr(s, ':', len);

		host_len = colon ? (size_t)(colon - s) : len;
		err = parse_reg_name(s, host_len, d);
	}
	if (err != TARGET_OK)
		return err;

	if (host_len < len) {
		/* s[host_len] is the ':' */
		port = s + host_len + 1;
		port_len = len - host_len - 1;
	}
	if (port_len == 0)
		return port_required ? TARGET_BAD_PORT : TARGET_OK;
	return parse_port(port, port_len, &d->port);
}

enum target_error target_parse(const char *raw, struct target *ret)
{
	struct target t;
	const char *p, *auth, *end;
	size_t auth_len;
	enum target_error err;

	for (p = raw; *p; p++) {
		if (is_ctl_or_space((unsigned char)*p))
			return TARGET_BAD_CHAR;
	}
	if (raw[0] == '/' || raw[0] == '*')
		return TARGET_ORIGIN_FORM;

	memset(&t, 0, sizeof(t));
	if (ascii_starts_with(raw, strlen(raw), "http://")) {
		t.dest.scheme = SCHEME_HTTP;
		auth = raw + 7;
	} else if (ascii_starts_with(raw, strlen(raw), "https://")) {
		t.dest.scheme = SCHEME_HTTPS;
		auth = raw + 8;
	} else {
		return TARGET_BAD_SCHEME;
	}
	t.dest.port = scheme_default_port(t.dest.scheme);

	auth_len = strcspn(auth, "/?#");
	if (memchr(auth, '@', auth_len))
		return TARGET_USERINFO;
	err = parse_host_port(auth, auth_len, false, &t.dest);
	if (err != TARGET_OK)
		return err;

	/* Empty path: points at the NUL or the '#', so path_len is 0. */
	t.path = auth + auth_len;
	end = strchr(t.path, '#');
	t.path_len = end ? (size_t)(end - t.path) : strlen(t.path);
	*ret = t;
	return TARGET_OK;
}

const char *target_error_str(enum target_error err)
{
	switch (err) {
	case TARGET_OK:
		return "ok";
	case TARGET_ORIGIN_FORM:
		return "origin-form target";
	case TARGET_BAD_SCHEME:
		return "scheme is not http or https";
	case TARGET_BAD_HOST:
		return "invalid host";
	case TARGET_BAD_PORT:
		return "invalid port";
	case TARGET_USERINFO:
		return "userinfo in target";
	case TARGET_BAD_CHAR:
		return "control character or space in target";
	}
	return "unknown target error";
}

enum target_error authority_parse(const char *s, size_t len,
                                  struct destination *ret)
{
	struct destination d;
	enum target_error err;
	size_t i;

	for (i = 0; i < len; i++) {
		if (is_ctl_or_space((unsigned char)s[i]))
			return TARGET_BAD_CHAR;
	}
	if (memchr(s, '@', len))
		return TARGET_USERINFO;
	memset(&d, 0, sizeof(d));
	d.scheme = SCHEME_HTTPS;
	err = parse_host_port(s, len, true, &d);
	if (err != TARGET_OK)
		return err;
	*ret = d;
	return TARGET_OK;
}

unsigned scheme_default_port(enum scheme s)
{
	return s == SCHEME_HTTPS ? 443 : 80;
}

const char *scheme_name(enum scheme s)
{
	return s == SCHEME_HTTPS ? "https" : "http";
}

/*
 * "scheme://host:port", "scheme://[v6]:port". By hand, not snprintf: it
 * runs two or three times for every request.
 */
int destination_format(const struct destination *d, char *buf, size_t size)
{
	const char *scheme = scheme_name(d->scheme);
	size_t ls = strlen(scheme), lh = strnlen(d->host, sizeof(d->host));
	char port[ASCII_U64_MAX];
	size_t lp = ascii_u64(d->port, port), n;

	n = ls + 3 + lh + (d->ipv6 ? 2 : 0) + 1 + lp;
	if (n >= size || lh == sizeof(d->host)) {
		if (size > 0)
			buf[0] = '\0';
		return -ENOSPC;
	}
	memcpy(buf, scheme, ls);
	memcpy(buf + ls, "://", 3);
	buf += ls + 3;
	if (d->ipv6)
		*buf++ = '[';
	memcpy(buf, d->host, lh);
	buf += lh;
	if (d->ipv6)
		*buf++ = ']';
	*buf++ = ':';
	memcpy(buf, port, lp + 1);
	return (int)n;
}

int target_upstream_url(const struct target *t, char *buf, size_t size)
{
	size_t n, need;
	bool slash;
	int r;

	r = destination_format(&t->dest, buf, size);
	if (r < 0)
		return r;
	n = (size_t)r;
	/* Upstream, "" is "/" and "?q" is "/?q". */
	slash = t->path_len == 0 || t->path[0] == '?';
	need = n + (slash ? 1 : 0) + t->path_len;
	if (need >= size || need > INT_MAX) {
		buf[0] = '\0';
		return -ENOSPC;
	}
	if (slash)
		buf[n++] = '/';
	memcpy(buf + n, t->path, t->path_len);
	buf[need] = '\0';
	return (int)need;
}

/* A field line "name: value" of a head: a token, a colon, no control. */
static bool field_line_ok(const char *s, size_t len)
{
	size_t i = 0;

	while (i < len && ascii_is_tchar(s[i]))
		i++;
	if (i == 0 || i == len || s[i] != ':')
		return false;
	for (i++; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return false;
	}
	return true;
}

enum connect_head connect_head_parse(const char *buf, size_t n, size_t max,
                                     struct destination *ret,
                                     size_t *ret_len,
                                     enum target_error *ret_err)
{
	static const char method[] = "CONNECT ";
	const char *end = NULL, *line, *eol, *sp;
	size_t scan = n < max ? n : max;

	*ret_err = TARGET_OK;
	for (size_t i = 3; i < scan; i++) {
		if (buf[i] == '\n' && buf[i - 1] == '\r' &&
		    buf[i - 2] == '\n' && buf[i - 3] == '\r') {
			end = buf + i + 1;
			break;
		}
	}
	if (!end)
		return n >= max ? CONNECT_HEAD_TOO_LARGE : CONNECT_HEAD_MORE;

	/* The request line. */
	eol = memchr(buf, '\r', (size_t)(end - buf));
	if (eol[1] != '\n' || (size_t)(eol - buf) < sizeof(method) - 1 ||
	    memcmp(buf, method, sizeof(method) - 1) != 0)
		return CONNECT_HEAD_BAD;
	line = buf + sizeof(method) - 1;
	sp = memchr(line, ' ', (size_t)(eol - line));
	if (!sp || eol - sp != 9 || memcmp(sp + 1, "HTTP/1.", 7) != 0 ||
	    (sp[8] != '0' && sp[8] != '1'))
		return CONNECT_HEAD_BAD;
	*ret_err = authority_parse(line, (size_t)(sp - line), ret);
	if (*ret_err != TARGET_OK)
		return CONNECT_HEAD_BAD;

	/* The fields: checked, not used. */
	for (line = eol + 2; line < end - 2; line = eol + 2) {
		eol = memchr(line, '\r', (size_t)(end - line));
		if (eol[1] != '\n' || !field_line_ok(line, (size_t)(eol - line)))
			return CONNECT_HEAD_BAD;
	}
	*ret_len = (size_t)(end - buf);
	return CONNECT_HEAD_OK;
}

/*
 * webhook_fields.c - a webhook job's X-EZTHROTTLE-WEBHOOK* fields: the
 * URLs, the quorum and the metadata (see webhook.h).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ascii.h"
#include "webhook.h"

#define STR_(x) #x
#define STR(x) STR_(x)
/* How much of a refused URL an error message quotes. */
#define URL_QUOTE_MAX 64

/* ---- X-EZTHROTTLE-WEBHOOK ---------------------------------------------- */

static bool is_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9');
}

static bool is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
	       (c >= 'A' && c <= 'F');
}

/* RFC 3986 pchar less pct-encoded, plus '/' and '?'. */
static bool is_path_char(char c)
{
	return is_alnum(c) || (c && strchr("-._~!$&'()*+,;=:@/?", c));
}

/* Host and port of the authority s[0..len); a reason, or NULL if fine. */
static const char *check_authority(const char *s, size_t len)
{
	char v6[INET6_ADDRSTRLEN];
	struct in6_addr a;
	size_t host_len, i;
	unsigned port = 0;

	if (memchr(s, '@', len))
		return "must not contain user info";
	if (len > 0 && s[0] == '[') {
		const char *close = memchr(s, ']', len);

		if (!close)
			return "has an invalid host";
		host_len = (size_t)(close - s) + 1;
		if (host_len - 2 >= sizeof(v6))
			return "has an invalid host";
		memcpy(v6, s + 1, host_len - 2);
		v6[host_len - 2] = '\0';
		if (inet_pton(AF_INET6, v6, &a) != 1)
			return "has an invalid host";
		if (host_len < len && s[host_len] != ':')
			return "has an invalid host";
	} else {
		const char *colon = memchr(s, ':', len);

		host_len = colon ? (size_t)(colon - s) : len;
		if (host_len == 0)
			return "has no host";
		if (host_len > 255)
			return "has an invalid host";
		for (i = 0; i < host_len; i++) {
			if (!is_alnum(s[i]) && s[i] != '-' && s[i] != '.' &&
			    s[i] != '_')
				return "has an invalid host";
		}
	}
	if (host_len == len || host_len + 1 == len)
		return NULL; /* no port, or an empty one (RFC 3986 allows) */
	for (i = host_len + 1; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return "has an invalid port";
		port = port * 10 + (unsigned)(s[i] - '0');
		if (port > 65535)
			return "has an invalid port";
	}
	return port == 0 ? "has an invalid port" : NULL;
}

/*
 * Checks one URL s[0..len); a reason, or NULL if fine. *ret_quote says
 * whether the message may quote the URL (not with user info in it).
 */
static const char *check_url(const char *s, size_t len, bool *ret_quote)
{
	const char *auth, *reason;
	size_t i, skip, auth_len;

	*ret_quote = true;
	if (len == 0)
		return "is empty";
	if (len > WEBHOOK_URL_MAX)
		return "is longer than " STR(WEBHOOK_URL_MAX) " bytes";
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c <= 0x20 || c >= 0x7f)
			return "has a space, control or non-ASCII character "
			       "(percent-encode it)";
	}
	if (ascii_starts_with(s, len, "http://"))
		skip = 7;
	else if (ascii_starts_with(s, len, "https://"))
		skip = 8;
	else if (memmem(s, len, "://", 3))
		return "must use http or https";
	else
		return "must be an absolute http or https URL";

	auth = s + skip;
	for (auth_len = 0; skip + auth_len < len; auth_len++) {
		if (strchr("/?#", auth[auth_len]))
			break;
	}
	reason = check_authority(auth, auth_len);
	if (reason) {
		*ret_quote = !memchr(auth, '@', auth_len);
		return reason;
	}
	for (i = skip + auth_len; i < len; i++) {
		if (s[i] == '#')
			return "must not contain a fragment";
		if (s[i] == '%') {
			if (i + 2 >= len || !is_hex(s[i + 1]) ||
			    !is_hex(s[i + 2]))
				return "has a bad percent-encoding";
			i += 2;
		} else if (!is_path_char(s[i])) {
			return "has a character that must be percent-encoded";
		}
	}
	return NULL;
}

/* Formats "webhook N <reason>: '<url>'", the URL clipped and printable. */
static void url_error(char *err, size_t err_size, size_t index,
                      const char *reason, const char *s, size_t len,
                      bool quote)
{
	char q[URL_QUOTE_MAX + 4];
	size_t i, n = len > URL_QUOTE_MAX ? URL_QUOTE_MAX : len;

	if (!quote) {
		snprintf(err, err_size, "webhook %zu %s", index, reason);
		return;
	}
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		q[i] = c < 0x20 || c >= 0x7f || c == '\'' ? '?' : (char)c;
	}
	if (n < len) {
		memcpy(q + n, "...", 3);
		n += 3;
	}
	q[n] = '\0';
	snprintf(err, err_size, "webhook %zu %s: '%s'", index, reason, q);
}

int webhook_parse_urls(const char *const *values, size_t n,
                       struct webhook_urls *ret, char *err, size_t err_size)
{
	struct webhook_urls u = { .n = 0 };
	size_t v, index = 0, i;

	for (v = 0; v < n; v++) {
		const char *p = values[v];

		for (;;) {
			const char *s = p, *end = p + strcspn(p, ",");
			const char *reason;
			bool quote, more = *end == ',';

			p = more ? end + 1 : end;
			while (s < end && (*s == ' ' || *s == '\t'))
				s++;
			while (end > s && (end[-1] == ' ' || end[-1] == '\t'))
				end--;
			index++;
			reason = check_url(s, (size_t)(end - s), &quote);
			for (i = 0; !reason && i < u.n; i++) {
				if (strlen(u.url[i]) == (size_t)(end - s) &&
				    memcmp(u.url[i], s, (size_t)(end - s)) == 0)
					reason = "is given twice";
			}
			if (reason) {
				url_error(err, err_size, index, reason, s,
				          (size_t)(end - s), quote);
				webhook_urls_done(&u);
				return -EINVAL;
			}
			if (u.n == WEBHOOK_MAX_URLS) {
				snprintf(err, err_size, "X-EZTHROTTLE-WEBHOOK "
				         "names more than %d webhooks",
				         WEBHOOK_MAX_URLS);
				webhook_urls_done(&u);
				return -EINVAL;
			}
			u.url[u.n] = strndup(s, (size_t)(end - s));
			if (!u.url[u.n]) {
				webhook_urls_done(&u);
				return -ENOMEM;
			}
			u.n++;
			if (!more)
				break;
		}
	}
	if (u.n == 0) {
		snprintf(err, err_size, "X-EZTHROTTLE-WEBHOOK names no webhook");
		return -EINVAL;
	}
	*ret = u;
	return 0;
}

void webhook_urls_done(struct webhook_urls *u)
{
	size_t i;

	for (i = 0; i < u->n; i++)
		free(u->url[i]);
	u->n = 0;
}

/* ---- quorum and metadata ----------------------------------------------- */

int webhook_parse_quorum(const char *s, size_t n_urls, unsigned *ret)
{
	unsigned long v = 0;
	bool digits = false;

	while (*s == ' ' || *s == '\t')
		s++;
	for (; *s >= '0' && *s <= '9'; s++) {
		digits = true;
		if (v <= WEBHOOK_MAX_URLS)
			v = v * 10 + (unsigned long)(*s - '0');
	}
	while (*s == ' ' || *s == '\t')
		s++;
	if (!digits || *s != '\0')
		return -EINVAL;
	if (v < 1 || v > n_urls)
		return -ERANGE;
	*ret = (unsigned)v;
	return 0;
}

static const char *json_type_name(const json_t *j)
{
	switch (json_typeof(j)) {
	case JSON_ARRAY:
		return "an array";
	case JSON_STRING:
		return "a string";
	case JSON_INTEGER:
	case JSON_REAL:
		return "a number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "a boolean";
	case JSON_NULL:
		return "null";
	default:
		return "an object";
	}
}

int webhook_parse_metadata(const char *s, size_t len, json_t **ret,
                           char *err, size_t err_size)
{
	json_error_t jerr;
	json_t *j;

	if (len > WEBHOOK_METADATA_MAX) {
		snprintf(err, err_size, "X-EZTHROTTLE-METADATA is over the "
		         "limit of %d bytes", WEBHOOK_METADATA_MAX);
		return -E2BIG;
	}
	j = json_loadb(s, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES,
	               &jerr);
	if (!j) {
		if (json_error_code(&jerr) == json_error_out_of_memory)
			return -ENOMEM;
		snprintf(err, err_size, "X-EZTHROTTLE-METADATA is not valid "
		         "JSON: %s at byte %d", jerr.text, jerr.position);
		return -EINVAL;
	}
	if (!json_is_object(j)) {
		snprintf(err, err_size, "X-EZTHROTTLE-METADATA must be a JSON "
		         "object, got %s", json_type_name(j));
		json_decref(j);
		return -EINVAL;
	}
	*ret = j;
	return 0;
}

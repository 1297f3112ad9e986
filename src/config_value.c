/*
 * config_value.c - the syntax of sluice.yaml's values: decimals,
 * durations, sizes, listen addresses, field names, destination patterns.
 * Pure functions of a string.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ascii.h"
#include "config_value.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Numbers, durations, sizes */

const char *config_decimal_parse(const char *s, struct decimal *ret)
{
	struct decimal d = { 0, 0, 1 };
	const char *last;

	if (*s < '0' || *s > '9')
		return NULL;
	for (; *s >= '0' && *s <= '9'; s++)
		if (__builtin_mul_overflow(d.whole, 10, &d.whole) ||
		    __builtin_add_overflow(d.whole, (uint64_t)(*s - '0'),
		                           &d.whole))
			return NULL;
	if (*s != '.') {
		*ret = d;
		return s;
	}
	s++;
	if (*s < '0' || *s > '9')
		return NULL;
	/* Trailing zeros change nothing: stop at the last non-zero digit. */
	for (last = s; *last >= '0' && *last <= '9'; last++)
		;
	while (last > s && last[-1] == '0')
		last--;
	for (; s < last; s++)
		if (__builtin_mul_overflow(d.den, 10, &d.den) ||
		    __builtin_mul_overflow(d.frac, 10, &d.frac) ||
		    __builtin_add_overflow(d.frac, (uint64_t)(*s - '0'),
		                           &d.frac))
			return NULL;
	while (*s >= '0' && *s <= '9')
		s++;
	*ret = d;
	return s;
}

struct unit {
	const char *name;
	uint64_t mult;
};

static const struct unit duration_units[] = {
	{ "", 1000 }, { "ms", 1 }, { "s", 1000 }, { "m", 60 * 1000 },
	{ "h", 3600 * 1000 }, { "d", 86400 * 1000 },
};

static const struct unit size_units[] = {
	{ "", 1 }, { "B", 1 },
	{ "KiB", 1ULL << 10 }, { "MiB", 1ULL << 20 }, { "GiB", 1ULL << 30 },
	{ "TiB", 1ULL << 40 },
	{ "KB", 1000 }, { "kB", 1000 }, { "MB", 1000 * 1000 },
	{ "GB", 1000 * 1000 * 1000 }, { "TB", 1000ULL * 1000 * 1000 * 1000 },
};

/* s as a whole number of units; fractions must come out whole. */
static int parse_units(const char *s, const struct unit *units, size_t n,
                       uint64_t *ret)
{
	struct decimal d;
	const char *end = config_decimal_parse(s, &d);
	uint64_t a, b;

	if (!end)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (strcmp(end, units[i].name) != 0)
			continue;
		if (__builtin_mul_overflow(d.whole, units[i].mult, &a) ||
		    __builtin_mul_overflow(d.frac, units[i].mult, &b) ||
		    b % d.den != 0 ||
		    __builtin_add_overflow(a, b / d.den, &a))
			return -EINVAL;
		*ret = a;
		return 0;
	}
	return -EINVAL;
}

int config_parse_duration(const char *s, int64_t *ret_ms)
{
	uint64_t v;

	if (parse_units(s, duration_units, ARRAY_SIZE(duration_units),
	                &v) < 0 || v > INT64_MAX)
		return -EINVAL;
	*ret_ms = (int64_t)v;
	return 0;
}

int config_parse_size(const char *s, uint64_t *ret_bytes)
{
	return parse_units(s, size_units, ARRAY_SIZE(size_units), ret_bytes);
}

/* Hosts, patterns, addresses */

/* "api.example.com": [A-Za-z0-9_-] labels, none empty. */
static bool host_valid(const char *h, size_t len)
{
	bool label = false;

	if (len == 0 || len > 253)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = h[i];

		if (c == '.') {
			if (!label)
				return false;
			label = false;
		} else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		           (c >= '0' && c <= '9') || c == '-' || c == '_') {
			label = true;
		} else {
			return false;
		}
	}
	return label;
}

/* A port: 1 to 5 digits, min..65535. */
static bool port_parse(const char *s, unsigned min, unsigned *ret)
{
	unsigned v = 0;
	size_t i;

	for (i = 0; s[i] >= '0' && s[i] <= '9' && i < 5; i++)
		v = v * 10 + (unsigned)(s[i] - '0');
	if (i == 0 || s[i] || v < min || v > 65535)
		return false;
	*ret = v;
	return true;
}

static bool ipv6_valid(const char *s, size_t len)
{
	char buf[INET6_ADDRSTRLEN];
	struct in6_addr a;

	if (len == 0 || len >= sizeof(buf))
		return false;
	memcpy(buf, s, len);
	buf[len] = '\0';
	return inet_pton(AF_INET6, buf, &a) == 1;
}

/* "ADDR:PORT" or "[v6]:PORT", port 0..65535 (0: ephemeral). */
bool config_listen_valid(const char *s)
{
	const char *sep;
	unsigned port;

	if (s[0] == '[') {
		sep = strchr(s, ']');
		return sep && sep[1] == ':' &&
		       ipv6_valid(s + 1, (size_t)(sep - s - 1)) &&
		       port_parse(sep + 2, 0, &port);
	}
	sep = strrchr(s, ':');
	return sep && host_valid(s, (size_t)(sep - s)) &&
	       port_parse(sep + 1, 0, &port);
}

/* A bare v6 address has no port: "::1:80" is an address. */
int config_pattern_parse(const char *s, struct dest_rule *ret)
{
	char *pat, *h, *sep;
	const char *port_s = NULL;
	size_t hlen;
	unsigned port = 0;
	bool wild = false;

	pat = strdup(s);
	if (!pat)
		return -ENOMEM;
	for (h = pat; *h; h++)
		if (*h >= 'A' && *h <= 'Z')
			*h = (char)(*h - 'A' + 'a');
	h = pat;
	sep = strchr(pat, ':');
	if (pat[0] == '[') {
		h = pat + 1;
		sep = strchr(h, ']');
		if (!sep || (sep[1] && sep[1] != ':'))
			goto invalid;
		hlen = (size_t)(sep - h);
		if (!ipv6_valid(h, hlen))
			goto invalid;
		if (sep[1])
			port_s = sep + 2;
	} else if (sep && strchr(sep + 1, ':')) {
		hlen = strlen(pat);
		if (!ipv6_valid(pat, hlen))
			goto invalid;
	} else {
		hlen = sep ? (size_t)(sep - pat) : strlen(pat);
		if (sep)
			port_s = sep + 1;
		wild = hlen > 2 && pat[0] == '*' && pat[1] == '.';
		if (!host_valid(pat + (wild ? 2 : 0), hlen - (wild ? 2 : 0)))
			goto invalid;
	}
	if (port_s && !port_parse(port_s, 1, &port))
		goto invalid;
	ret->host = strndup(h, hlen);
	if (!ret->host) {
		free(pat);
		return -ENOMEM;
	}
	ret->pattern = pat;
	ret->port = port;
	ret->wildcard = wild;
	return 0;
invalid:
	free(pat);
	return -EINVAL;
}

bool config_pattern_match(const char *pattern, const char *host,
                          unsigned port)
{
	const char *h = pattern, *sep = strchr(pattern, ':');
	size_t hlen, len = strlen(host);
	unsigned want = 0;

	if (pattern[0] == '[') {
		h = pattern + 1;
		sep = strchr(h, ']');
		hlen = (size_t)(sep - h);
		sep = sep[1] == ':' ? sep + 1 : NULL;
	} else if (sep && strchr(sep + 1, ':')) {
		hlen = strlen(pattern);      /* a bare v6 address */
		sep = NULL;
	} else {
		hlen = sep ? (size_t)(sep - pattern) : strlen(pattern);
	}
	if (sep && (!port_parse(sep + 1, 1, &want) || want != port))
		return false;
	if (hlen > 2 && h[0] == '*' && h[1] == '.')
		return len > hlen - 1 &&
		       memcmp(host + len - (hlen - 1), h + 1, hlen - 1) == 0;
	return len == hlen && memcmp(host, h, hlen) == 0;
}

bool config_header_valid(const char *s)
{
	for (const char *c = s; *c; c++)
		if (!ascii_is_tchar(*c))
			return false;
	return *s != '\0';
}

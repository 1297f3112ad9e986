/*
 * learn_sf.c - structured-field members (RFC 8941) for the RateLimit and
 * RateLimit-Policy fields. Item names are hashed (FNV-1a) so a RateLimit
 * item and a RateLimit-Policy item compare without copying.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "ascii.h"
#include "learn_sf.h"

#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL

/* A character of a structured-field token (RFC 8941: ":" and "/" too). */
static bool sf_tchar(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       ascii_is_digit(c) || (c != '\0' && strchr("!#$%&'*+-.^_`|~:/", c));
}

/* A character of base64 (RFC 4648), padding included. */
static bool sf_b64char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       ascii_is_digit(c) || c == '+' || c == '/' || c == '=';
}

/*
 * A bare item at *pp: a quoted string (hashed without its quotes and
 * escapes), a byte sequence ":base64:" (the drafts' pk parameter), or a
 * run of token characters (a token, number, ?1 boolean).
 */
static int sf_item(const char **pp, const char *end, struct sf_value *ret,
                   uint64_t *ret_hash)
{
	const char *p = *pp;
	uint64_t h = FNV_OFFSET;

	if (p < end && *p == '"') {
		for (p++; p < end && *p != '"'; p++) {
			if (*p == '\\') {
				p++;
				if (p == end || (*p != '"' && *p != '\\'))
					return -EINVAL;
			}
			h = (h ^ (unsigned char)*p) * FNV_PRIME;
		}
		if (p == end)
			return -EINVAL;
		p++;
	} else if (p < end && *p == ':') {
		for (p++; p < end && sf_b64char(*p); p++)
			h = (h ^ (unsigned char)*p) * FNV_PRIME;
		if (p == end || *p != ':')
			return -EINVAL;
		p++;
	} else {
		if (p < end && *p == '?')
			p++;
		while (p < end && sf_tchar(*p)) {
			h = (h ^ (unsigned char)*p) * FNV_PRIME;
			p++;
		}
		if (p == *pp)
			return -EINVAL;
	}
	ret->p = *pp;
	ret->len = (size_t)(p - *pp);
	if (ret_hash)
		*ret_hash = h;
	*pp = p;
	return 0;
}

/* Key characters: a letter or "*", then also digits and "_-.". */
static bool is_keychar(char c, bool first)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '*' ||
	       (!first && (ascii_is_digit(c) || c == '_' || c == '-' || c == '.'));
}

/* A parameter or dictionary key (either case, leniently). */
static int sf_key(const char **pp, const char *end, struct sf_value *ret)
{
	const char *p = *pp;

	while (p < end && is_keychar(*p, p == *pp))
		p++;
	if (p == *pp)
		return -EINVAL;
	ret->p = *pp;
	ret->len = (size_t)(p - *pp);
	*pp = p;
	return 0;
}

/* ";key[=value]" parameters; keeps r, t, q, w and qu. */
static int sf_params(const char **pp, const char *end, struct sf_member *m)
{
	const char *p = *pp;
	struct sf_value key, value;

	while (p < end && *p == ';') {
		p++;
		while (p < end && ascii_is_ows(*p))
			p++;
		if (sf_key(&p, end, &key) < 0)
			return -EINVAL;
		value.p = "?1";
		value.len = 2;
		if (p < end && *p == '=') {
			p++;
			if (sf_item(&p, end, &value, NULL) < 0)
				return -EINVAL;
		}
		if (ascii_eq_lit(key.p, key.len, "r"))
			m->r = value;
		else if (ascii_eq_lit(key.p, key.len, "t"))
			m->t = value;
		else if (ascii_eq_lit(key.p, key.len, "q"))
			m->q = value;
		else if (ascii_eq_lit(key.p, key.len, "w"))
			m->w = value;
		else if (ascii_eq_lit(key.p, key.len, "qu"))
			m->qu = value;
	}
	*pp = p;
	return 0;
}

int sf_member_parse(const char **pp, const char *end, struct sf_member *m)
{
	const char *p = *pp, *q;
	struct sf_value key;

	memset(m, 0, sizeof(*m));
	while (p < end && ascii_is_ows(*p))
		p++;
	q = p;
	if (sf_key(&q, end, &key) == 0 && q < end && *q == '=') {
		m->key = key;
		p = q + 1;
		if (sf_item(&p, end, &m->value, NULL) < 0)
			return -EINVAL;
	} else if (sf_item(&p, end, &m->item, &m->name) < 0) {
		return -EINVAL;
	}
	if (sf_params(&p, end, m) < 0)
		return -EINVAL;
	while (p < end && ascii_is_ows(*p))
		p++;
	if (p < end) {
		if (*p != ',')
			return -EINVAL;
		p++;
		while (p < end && ascii_is_ows(*p))
			p++;
		if (p == end)
			return -EINVAL;  /* trailing comma */
	}
	*pp = p;
	return 0;
}

/*
 * ascii.h - byte classes and case folding for protocol text: ASCII only,
 * never the locale (the answers of <ctype.h> depend on it). Header-only:
 * every function is small and on hot paths.
 */
#ifndef SLUICE_ASCII_H
#define SLUICE_ASCII_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline bool ascii_is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Optional whitespace of HTTP: a space or a tab. */
static inline bool ascii_is_ows(char c)
{
	return c == ' ' || c == '\t';
}

static inline char ascii_lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* A token character (RFC 9110 section 5.6.2). */
static inline bool ascii_is_tchar(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       ascii_is_digit(c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* The len bytes of a and b are equal, ignoring case. */
static inline bool ascii_eq_n(const char *a, const char *b, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (ascii_lower(a[i]) != ascii_lower(b[i]))
			return false;
	return true;
}

/* (s, len) is the lower-case literal lit, ignoring case. */
static inline bool ascii_eq_lit(const char *s, size_t len, const char *lit)
{
	size_t i;

	for (i = 0; i < len && lit[i]; i++)
		if (ascii_lower(s[i]) != lit[i])
			return false;
	return i == len && !lit[i];
}

/* (s, len) starts with the lower-case literal lit, ignoring case. */
static inline bool ascii_starts_with(const char *s, size_t len,
                                     const char *lit)
{
	for (size_t i = 0; lit[i]; i++)
		if (i >= len || ascii_lower(s[i]) != lit[i])
			return false;
	return true;
}

/*
 * Moves *pp past the lower-case literal lit when [*pp, end) starts with
 * it, ignoring case; false (and *pp unchanged) when it does not.
 */
static inline bool ascii_skip_lit(const char **pp, const char *end,
                                  const char *lit)
{
	if (!ascii_starts_with(*pp, (size_t)(end - *pp), lit))
		return false;
	*pp += strlen(lit);
	return true;
}

/*
 * v in decimal into buf (ASCII_U64_MAX bytes at least), NUL-terminated;
 * returns its length. For the hot path, where snprintf costs a thousand
 * instructions.
 */
#define ASCII_U64_MAX 21
static inline size_t ascii_u64(uint64_t v, char *buf)
{
	char tmp[ASCII_U64_MAX], *p = tmp + sizeof(tmp);
	size_t n;

	do {
		*--p = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	n = (size_t)(tmp + sizeof(tmp) - p);
	memcpy(buf, p, n);
	buf[n] = '\0';
	return n;
}

/* Narrows [*pp, *pend) to drop surrounding spaces and tabs. */
static inline void ascii_trim(const char **pp, const char **pend)
{
	while (*pp < *pend && ascii_is_ows(**pp))
		(*pp)++;
	while (*pend > *pp && ascii_is_ows((*pend)[-1]))
		(*pend)--;
}

#endif

/*
 * config_parse.h - internals of the config module, shared by config.c (the
 * public API, the syntax of values, reading the YAML stream) and
 * config_parse.c (the walk of the document with its key tables). Not for
 * other modules.
 */
#ifndef SLUICE_CONFIG_PARSE_H
#define SLUICE_CONFIG_PARSE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <yaml.h>

#include "config.h"

/* A number DIGITS [ "." DIGITS ], exactly: whole + frac / den. */
struct decimal {
	uint64_t whole, frac, den;
};

/*
 * Parses the number at the start of s (no sign, no exponent, no space).
 * Returns the end of the number in s, or NULL when there is none or it
 * does not fit.
 */
const char *config_decimal_parse(const char *s, struct decimal *ret);

/* True for "ADDR:PORT" or "[v6]:PORT" with a port 0..65535. */
bool config_listen_valid(const char *s);

/* True for an HTTP field name (an RFC 9110 token) such as "X-Api-Key". */
bool config_header_valid(const char *s);

/*
 * Parses a destination pattern: "host", "*.suffix", "[v6]" or a bare v6
 * address, each but the last with an optional ":port" (1..65535). Fills
 * ret's pattern (lower-cased copy of s), host (allocated), port and
 * wildcard; the caller owns both strings (config_rule_done). 0, -EINVAL
 * or -ENOMEM.
 */
int config_pattern_parse(const char *s, struct dest_rule *ret);

/* Frees the strings of a rule. */
void config_rule_done(struct dest_rule *r);

/* Frees n strings and the array. Takes NULL. */
void config_strv_free(char **v, size_t n);

/* Replaces *dst with a copy of s; NULL unsets it. 0 or -ENOMEM. */
int config_replace_str(char **dst, const char *s);

/*
 * Appends "path:line:column: " and the formatted text to errs; mark is
 * libyaml's, 0-based. 0 or -ENOMEM.
 */
int config_errors_vadd(struct config_errors *errs, const char *path,
                       yaml_mark_t mark, const char *fmt, va_list ap)
	__attribute__((format(printf, 4, 0)));

/*
 * Stores the keys of doc, a sluice.yaml document read from path, into cfg,
 * appending every error to errs. 0, -EINVAL when there were errors, or
 * -ENOMEM.
 */
int config_walk(struct config *cfg, const char *path, yaml_document_t *doc,
                struct config_errors *errs);

#endif

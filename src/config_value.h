/*
 * config_value.h - the syntax of sluice.yaml's values, as pure functions
 * of a string: decimals, durations, sizes, listen addresses, field names,
 * destination patterns.
 */
#ifndef SLUICE_CONFIG_VALUE_H
#define SLUICE_CONFIG_VALUE_H

#include <stdbool.h>
#include <stdint.h>

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

/*
 * Parses "1.5", "500ms", "30s", "5m", "24h", "7d" (a bare number is
 * seconds) into milliseconds. 0 or -EINVAL.
 */
int config_parse_duration(const char *s, int64_t *ret_ms);

/* Parses "1024", "10KiB", "10MiB", "1GiB", "10KB", "10MB" into bytes. */
int config_parse_size(const char *s, uint64_t *ret_bytes);

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

/*
 * True when host:port (host lower-case, IPv6 without brackets) matches
 * pattern, a lower-cased pattern that config_pattern_parse() took: the
 * same host, or a host under "*.suffix" (not the suffix itself), on the
 * pattern's port if it names one. Allocates nothing.
 */
bool config_pattern_match(const char *pattern, const char *host,
                          unsigned port);

#endif

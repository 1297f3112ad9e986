/*
 * learn_sf.h - the members of a structured field (RFC 8941), read
 * leniently enough for both shapes of the IETF RateLimit fields: a member
 * is either a dictionary member "key=value" or an item (string, token or
 * number) naming a policy; either may carry parameters. Only the
 * parameters r, t, q, w and qu are kept. Pure; no allocation: values
 * point into the field text.
 */
#ifndef SLUICE_LEARN_SF_H
#define SLUICE_LEARN_SF_H

#include <stddef.h>
#include <stdint.h>

struct sf_value {
	const char *p;               /* raw text; NULL when absent */
	size_t len;
};

struct sf_member {
	struct sf_value key;         /* dictionary key; p NULL for an item */
	struct sf_value value;       /* dictionary value */
	struct sf_value item;        /* the item's text, quotes and all */
	uint64_t name;               /* FNV-1a of the item's (unquoted) text */
	struct sf_value r, t, q, w, qu; /* parameters, as written */
};

/*
 * Reads the member at *pp, the optional whitespace around it and the comma
 * after it, and moves *pp past them. A trailing comma is an error.
 * 0 or -EINVAL (*pp unchanged).
 */
int sf_member_parse(const char **pp, const char *end, struct sf_member *m);

#endif

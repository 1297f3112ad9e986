/*
 * cidr.c - lists of IPv4/IPv6 networks.
 *
 * Addresses are compared as byte strings in network order. An IPv4 client
 * (native or IPv4-mapped IPv6) is matched against the IPv4 entries with its
 * 4 bytes and against the IPv6 entries as ::ffff:a.b.c.d, so
 * "127.0.0.0/8" and "::ffff:127.0.0.0/104" both cover it. A destination
 * is matched the same way, and its IPv4-compatible and NAT64 spellings
 * against the IPv4 entries too. Entries made by the daemon (its own
 * listeners) also have a port.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "cidr.h"

/* "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255/128" and a NUL. */
#define CIDR_STRLEN (INET6_ADDRSTRLEN + 4)

static const uint8_t v4_mapped_prefix[12] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
};

/* Clears the bits of addr (len bytes) beyond the first prefix bits. */
static void mask_host_bits(uint8_t *addr, size_t len, unsigned prefix)
{
	size_t i = prefix / 8;

	if (i >= len)
		return;
	if (prefix % 8)
		addr[i++] &= (uint8_t)(0xff << (8 - prefix % 8));
	memset(addr + i, 0, len - i);
}

int cidr_parse(const char *s, struct cidr *ret)
{
	char buf[CIDR_STRLEN];
	struct cidr c;
	char *slash;
	unsigned max;
	size_t len = strlen(s);

	if (len == 0 || len >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, len + 1);
	memset(&c, 0, sizeof(c));

	slash = strchr(buf, '/');
	if (slash)
		*slash = '\0';
	if (inet_pton(AF_INET, buf, c.addr) == 1) {
		c.family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, buf, c.addr) == 1) {
		c.family = AF_INET6;
		max = 128;
	} else {
		return -EINVAL;
	}

	c.prefix = max;
	if (slash) {
		const char *p = slash + 1;
		unsigned v = 0;

		/* Digits only: no sign, no space, no "0x". */
		if (*p == '\0' || strlen(p) > 3)
			return -EINVAL;
		for (; *p; p++) {
			if (*p < '0' || *p > '9')
				return -EINVAL;
			v = v * 10 + (unsigned)(*p - '0');
		}
		if (v > max)
			return -EINVAL;
		c.prefix = v;
	}
	mask_host_bits(c.addr, max / 8, c.prefix);
	*ret = c;
	return 0;
}

int cidr_list_add(struct cidr_list *l, const struct cidr *c)
{
	/* No capacity field: it is 4, then the next power of two. */
	if (l->n == 0 || (l->n >= 4 && (l->n & (l->n - 1)) == 0)) {
		size_t cap = l->n ? l->n * 2 : 4;
		struct cidr *v;

		if (cap > SIZE_MAX / sizeof(*v))
			return -ENOMEM;
		v = realloc(l->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		l->v = v;
	}
	l->v[l->n++] = *c;
	return 0;
}

void cidr_list_done(struct cidr_list *l)
{
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

/* True when the first prefix bits of a and b (network order) agree. */
static bool prefix_equal(const uint8_t *a, const uint8_t *b, unsigned prefix)
{
	size_t whole = prefix / 8;
	unsigned rest = prefix % 8;
	uint8_t mask;

	if (memcmp(a, b, whole) != 0)
		return false;
	if (rest == 0)
		return true;
	mask = (uint8_t)(0xff << (8 - rest));
	return (a[whole] & mask) == (b[whole] & mask);
}

/* The IPv4 address an IPv6 one embeds, as a destination: see cidr.h. */
static bool v4_embedded(const uint8_t v6[16])
{
	static const uint8_t zero[12] = { 0 };
	static const uint8_t nat64[12] = { 0, 0x64, 0xff, 0x9b };

	return memcmp(v6, zero, sizeof(zero)) == 0 ||
	       memcmp(v6, nat64, sizeof(nat64)) == 0;
}

static bool match(const struct cidr_list *l, const struct sockaddr *sa,
                  bool dest)
{
	uint8_t v6[16];
	const uint8_t *v4 = NULL;
	unsigned port;

	if (!sa)
		return false;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)
		                                (const void *)sa;

		memcpy(v6, v4_mapped_prefix, sizeof(v4_mapped_prefix));
		memcpy(v6 + 12, &sin->sin_addr, 4);
		v4 = v6 + 12;
		port = ntohs(sin->sin_port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)
		                                  (const void *)sa;

		memcpy(v6, &sin6->sin6_addr, 16);
		if (memcmp(v6, v4_mapped_prefix,
		           sizeof(v4_mapped_prefix)) == 0 ||
		    (dest && v4_embedded(v6)))
			v4 = v6 + 12;
		port = ntohs(sin6->sin6_port);
	} else {
		return false;
	}

	for (size_t i = 0; i < l->n; i++) {
		const struct cidr *c = &l->v[i];

		if (c->port && c->port != port)
			continue;
		if (c->family == AF_INET6 &&
		    prefix_equal(c->addr, v6, c->prefix))
			return true;
		if (c->family == AF_INET && v4 &&
		    prefix_equal(c->addr, v4, c->prefix))
			return true;
	}
	return false;
}

bool cidr_list_match(const struct cidr_list *l, const struct sockaddr *sa)
{
	return match(l, sa, false);
}

bool cidr_list_match_dest(const struct cidr_list *l,
                          const struct sockaddr *sa)
{
	return match(l, sa, true);
}

bool cidr_literal_denied(const struct cidr_list *l, const char *host,
                         unsigned port)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
		ss.ss_family = AF_INET;
		v4->sin_port = htons((uint16_t)port);
	} else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
		ss.ss_family = AF_INET6;
		v6->sin6_port = htons((uint16_t)port);
	} else {
		return false;
	}
	return cidr_list_match_dest(l, (struct sockaddr *)&ss);
}

/*
 * cidr.h - lists of IPv4/IPv6 networks (allow, deny_destinations).
 */
#ifndef SLUICE_CIDR_H
#define SLUICE_CIDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct cidr {
	int family;                  /* AF_INET or AF_INET6 */
	uint8_t addr[16];            /* network order, masked */
	unsigned prefix;             /* bits */
};

struct cidr_list {
	struct cidr *v;
	size_t n;
};

/*
 * Parses "10.0.0.0/8", "::1/128", or a bare address (full prefix). Host
 * bits beyond the prefix are cleared. 0 or -EINVAL.
 */
int cidr_parse(const char *s, struct cidr *ret);

/* Appends a copy of c. 0 or -ENOMEM. */
int cidr_list_add(struct cidr_list *l, const struct cidr *c);

/* Frees the array, leaves l empty. */
void cidr_list_done(struct cidr_list *l);

/*
 * True when sa is inside one of the networks. An IPv4-mapped IPv6 address
 * (::ffff:a.b.c.d) is matched as IPv4.
 */
bool cidr_list_match(const struct cidr_list *l, const struct sockaddr *sa);

#endif

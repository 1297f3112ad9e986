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
	unsigned port;               /* 0: any; else this port only */
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
 * True when sa is inside one of the networks (and has its port, for an
 * entry with a port). An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is
 * matched as IPv4. For client addresses (allow lists).
 */
bool cidr_list_match(const struct cidr_list *l, const struct sockaddr *sa);

/*
 * The same for a destination (deny lists): every IPv6 spelling of an IPv4
 * address is also matched as that IPv4 address, so that no form of a
 * denied address gets through: IPv4-mapped (::ffff:0:0/96),
 * IPv4-compatible (::/96) and NAT64 (64:ff9b::/96).
 */
bool cidr_list_match_dest(const struct cidr_list *l,
                          const struct sockaddr *sa);

/*
 * True when host is a literal IPv4 or IPv6 address that, with port, is
 * denied by l (cidr_list_match_dest). A name is never denied here: it is
 * checked once resolved, when the connection is made.
 */
bool cidr_literal_denied(const struct cidr_list *l, const char *host,
                         unsigned port);

#endif

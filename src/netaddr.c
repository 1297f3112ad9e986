/*
 * netaddr.c - listener addresses.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cidr.h"
#include "netaddr.h"

int netaddr_parse(const char *s, struct sockaddr_storage *ret,
                  socklen_t *ret_len)
{
	char host[256];
	const char *colon, *port_s;
	size_t hlen;
	char *end;
	long port;
	struct addrinfo hints, *res;

	if (s[0] == '[') {
		const char *close = strchr(s, ']');

		if (!close || close[1] != ':')
			return -EINVAL;
		hlen = (size_t)(close - s - 1);
		if (hlen == 0 || hlen >= sizeof(host))
			return -EINVAL;
		memcpy(host, s + 1, hlen);
		port_s = close + 2;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return -EINVAL;
		hlen = (size_t)(colon - s);
		if (hlen == 0 || hlen >= sizeof(host) ||
		    memchr(s, ':', hlen))
			return -EINVAL;
		memcpy(host, s, hlen);
		port_s = colon + 1;
	}
	host[hlen] = '\0';
	if (!*port_s)
		return -EINVAL;
	errno = 0;
	port = strtol(port_s, &end, 10);
	if (errno || *end || port < 0 || port > 65535)
		return -EINVAL;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV | AI_PASSIVE;
	if (getaddrinfo(host, port_s, &hints, &res) != 0)
		return -EINVAL;
	memset(ret, 0, sizeof(*ret));
	memcpy(ret, res->ai_addr, res->ai_addrlen);
	*ret_len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

int netaddr_listen(const char *s, int backlog)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, one = 1, r;

	r = netaddr_parse(s, &ss, &len);
	if (r < 0)
		return r;
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	            0);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
		goto fail;
	if (ss.ss_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)
		goto fail;
	if (bind(fd, (struct sockaddr *)&ss, len) < 0)
		goto fail;
	if (listen(fd, backlog) < 0)
		goto fail;
	return fd;
fail:
	r = -errno;
	close(fd);
	return r;
}

void netaddr_format(const struct sockaddr *sa, char *buf, size_t size)
{
	char ip[INET6_ADDRSTRLEN];

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

		inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
		snprintf(buf, size, "%s:%u", ip, ntohs(in->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 =
			(const struct sockaddr_in6 *)sa;

		inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
		snprintf(buf, size, "[%s]:%u", ip, ntohs(in6->sin6_port));
	} else {
		snprintf(buf, size, "unknown");
	}
}

int netaddr_local(int fd, char *buf, size_t size)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return -errno;
	netaddr_format((struct sockaddr *)&ss, buf, size);
	return 0;
}

/* Adds the whole address of sa (IPv4 or IPv6) with port. */
static int self_add_addr(struct cidr_list *l, const struct sockaddr *sa,
                         unsigned port)
{
	struct cidr c;

	memset(&c, 0, sizeof(c));
	if (sa->sa_family == AF_INET) {
		c.family = AF_INET;
		memcpy(c.addr, &((const struct sockaddr_in *)(const void *)sa)
		                ->sin_addr, 4);
		c.prefix = 32;
	} else if (sa->sa_family == AF_INET6) {
		c.family = AF_INET6;
		memcpy(c.addr, &((const struct sockaddr_in6 *)(const void *)sa)
		                ->sin6_addr, 16);
		c.prefix = 128;
	} else {
		return 0;
	}
	c.port = port;
	return cidr_list_add(l, &c);
}

int netaddr_self_add(int fd, struct cidr_list *l)
{
	static const char *const always[] = { "0.0.0.0/32", "::/128" };
	static const char *const loopback[] = { "127.0.0.0/8", "::1/128" };
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	struct ifaddrs *ifs, *i;
	bool wildcard;
	unsigned port;
	struct cidr c;
	int r;

	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return -errno;
	if (ss.ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const void *)&ss;

		port = ntohs(sin->sin_port);
		wildcard = sin->sin_addr.s_addr == htonl(INADDR_ANY);
	} else if (ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const void *)&ss;

		port = ntohs(sin6->sin6_port);
		wildcard = IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr);
	} else {
		return -EAFNOSUPPORT;
	}
	r = self_add_addr(l, (struct sockaddr *)&ss, port);
	for (size_t k = 0; r == 0 && k < 2; k++) {
		r = cidr_parse(always[k], &c);
		c.port = port;
		if (r == 0)
			r = cidr_list_add(l, &c);
	}
	if (r < 0 || !wildcard)
		return r;
	for (size_t k = 0; r == 0 && k < 2; k++) {
		r = cidr_parse(loopback[k], &c);
		c.port = port;
		if (r == 0)
			r = cidr_list_add(l, &c);
	}
	if (r < 0)
		return r;
	if (getifaddrs(&ifs) < 0)
		return -errno;
	for (i = ifs; r == 0 && i; i = i->ifa_next)
		if (i->ifa_addr)
			r = self_add_addr(l, i->ifa_addr, port);
	freeifaddrs(ifs);
	return r;
}

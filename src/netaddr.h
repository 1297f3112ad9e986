/*
 * netaddr.h - "ADDR:PORT" listener addresses and listening sockets.
 */
#ifndef SLUICE_NETADDR_H
#define SLUICE_NETADDR_H

#include <stddef.h>
#include <sys/socket.h>

#define NETADDR_STRLEN 64

/*
 * Parses "127.0.0.1:8080", "[::1]:8080", "localhost:8080" (resolved with
 * getaddrinfo, first answer). Port 0 is allowed. 0 or -EINVAL.
 */
int netaddr_parse(const char *s, struct sockaddr_storage *ret,
                  socklen_t *ret_len);

/*
 * Creates a non-blocking, close-on-exec listening TCP socket bound to s
 * (SO_REUSEADDR; IPV6_V6ONLY for IPv6). Returns the fd or a negative errno.
 */
int netaddr_listen(const char *s, int backlog);

/* Writes "ADDR:PORT" ("[v6]:PORT") of sa into buf (NETADDR_STRLEN). */
void netaddr_format(const struct sockaddr *sa, char *buf, size_t size);

/* The bound "ADDR:PORT" of a socket into buf. 0 or negative errno. */
int netaddr_local(int fd, char *buf, size_t size);

struct cidr_list;

/*
 * Appends to l every address at which the listening socket fd can be
 * reached, each with fd's port: its own address, 0.0.0.0 and :: (which
 * connect to the host), and for a wildcard address (0.0.0.0, ::) also
 * loopback and every address of the host's interfaces (getifaddrs).
 * 0 or negative errno.
 */
int netaddr_self_add(int fd, struct cidr_list *l);

#endif

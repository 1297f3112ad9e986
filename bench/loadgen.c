/*
 * loadgen.c - a closed-loop HTTP/1.1 load generator for a forward proxy,
 * for bench/throttle.sh. One thread, epoll, non-blocking sockets: it holds
 * tens of thousands of keep-alive connections, each with one request in
 * flight.
 *
 *     loadgen -x PROXY_ADDR:PORT -u URL [-U WARM_URL]
 *             -g NAME:CONNS[:THINK_MS] [-g ...]
 *             [-d SECONDS] [-o RECORDS] [-R CONNECTS_PER_S]
 *             [-H "Name: value"]...
 *
 * Each -g adds a group of CONNS connections to the proxy whose requests
 * carry "Authorization: Bearer NAME" (NAME "-": no Authorization, the
 * destination's anonymous queue). Every connection sends
 * "GET URL HTTP/1.1" (absolute form, as to a forward proxy), reads the
 * whole response (Content-Length, chunked or close-delimited), waits
 * THINK_MS (default 0) and sends the next one on the same connection; a
 * connection the proxy closes is opened again. With -U, the first request
 * of each connection goes to WARM_URL instead, so the connection has
 * served a response before its requests to URL wait (a reused keep-alive
 * connection). Each -H adds a header field to every request (for
 * bench/jobs.sh: X-EZTHROTTLE-WEBHOOK makes every request a job). New connections are opened at most CONNECTS_PER_S per
 * second (default 20000), so the proxy's accept queue does not overflow.
 *
 * It runs for SECONDS (default 0: until SIGINT or SIGTERM), then closes
 * every connection at once (requests still waiting are abandoned: the
 * proxy sees its clients disconnect) and exits. On stdout, each line
 * stamped with CLOCK_MONOTONIC microseconds:
 *
 *     start T
 *     ready T conns=N          every connection has sent its first request
 *     stop T                   closing everything
 *     group NAME conns=C done=N errors=E non200=M
 *
 * With -o, one line per completed response, in completion order:
 *
 *     NAME T_SEND_US T_DONE_US STATUS
 *
 * Not part of the autotools build: bench/throttle.sh compiles it with
 *     cc -O2 bench/loadgen.c -o loadgen
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_GROUPS 16
#define HEAD_MAX 8192                /* bytes of a response header block */

enum conn_state {
	C_CLOSED,                    /* waits for its turn to connect */
	C_CONNECTING,
	C_SENDING,                   /* request partly written */
	C_WAITING,                   /* request sent, response not complete */
	C_THINK,                     /* response read, next one later */
};

enum body_mode { B_NONE, B_LENGTH, B_CHUNKED, B_CLOSE };

enum chunk_state { K_SIZE, K_EXT, K_DATA, K_DATA_END, K_TRAILER };

struct group {
	char name[64];
	unsigned conns;
	int64_t think_us;
	char *req;                   /* the request, whole */
	size_t req_len;
	char *warm_req;              /* -U: first request of a connection */
	size_t warm_req_len;
	unsigned long done, errors, non200;
};

struct conn {
	int fd;
	unsigned short group;
	unsigned char state;
	bool first_sent;
	size_t wrote;                /* bytes of the request written */
	int64_t t_send;              /* us */
	int64_t wake_at;             /* us, C_THINK */

	/* The response being read. */
	char *head;                  /* header block so far, NULL in body */
	unsigned head_len;
	bool in_body;
	unsigned status;
	bool close_after;
	unsigned char body;          /* enum body_mode */
	unsigned char chunk;         /* enum chunk_state */
	unsigned trailer_line;       /* bytes in the current trailer line */
	uint64_t remaining;          /* body or chunk bytes left */
};

struct record {
	int64_t t_send, t_done;
	unsigned short group;
	unsigned short status;
};

struct lg {
	struct sockaddr_in proxy;
	struct group groups[MAX_GROUPS];
	unsigned n_groups;
	struct conn *conns;
	unsigned n_conns;
	int ep;
	int sfd;

	unsigned *closed;            /* stack of conns to (re)connect */
	unsigned n_closed;
	unsigned *think;             /* conns in C_THINK */
	unsigned n_think;
	double connect_rate;         /* per second */
	double connect_budget;
	int64_t budget_at;           /* us */
	unsigned n_first_sent;
	bool ready_said;

	struct record *recs;
	size_t n_recs, cap_recs;
	unsigned long rec_dropped;
};

static int64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void die(const char *msg)
{
	fprintf(stderr, "loadgen: %s\n", msg);
	exit(1);
}

static void add_record(struct lg *g, const struct conn *c, int64_t now)
{
	if (g->n_recs == g->cap_recs) {
		size_t cap = g->cap_recs ? g->cap_recs * 2 : 65536;
		struct record *v = realloc(g->recs, cap * sizeof(*v));

		if (!v) {
			g->rec_dropped++;
			return;
		}
		g->recs = v;
		g->cap_recs = cap;
	}
	g->recs[g->n_recs++] = (struct record){
		.t_send = c->t_send, .t_done = now,
		.group = c->group, .status = (unsigned short)c->status,
	};
}

static void conn_reset_response(struct conn *c)
{
	free(c->head);
	c->head = NULL;
	c->head_len = 0;
	c->in_body = false;
	c->status = 0;
	c->close_after = false;
	c->body = B_NONE;
	c->chunk = K_SIZE;
	c->remaining = 0;
	c->trailer_line = 0;
}

/* Drops c's socket; it will be opened again unless stopping. */
static void conn_close(struct lg *g, struct conn *c, bool again)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	conn_reset_response(c);
	c->state = C_CLOSED;
	if (again)
		g->closed[g->n_closed++] = (unsigned)(c - g->conns);
}

static void conn_send(struct lg *g, struct conn *c, int64_t now)
{
	const struct group *gr = &g->groups[c->group];
	const char *req = gr->req;
	size_t len = gr->req_len;
	ssize_t n;

	if (!c->first_sent && gr->warm_req) {
		req = gr->warm_req;
		len = gr->warm_req_len;
	}
	if (c->state != C_SENDING) {
		c->state = C_SENDING;
		c->wrote = 0;
		c->t_send = now;
	}
	while (c->wrote < len) {
		n = send(c->fd, req + c->wrote, len - c->wrote, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				struct epoll_event ev = {
					.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP,
					.data.u32 = (uint32_t)(c - g->conns),
				};
				epoll_ctl(g->ep, EPOLL_CTL_MOD, c->fd, &ev);
				return;
			}
			g->groups[c->group].errors++;
			conn_close(g, c, true);
			return;
		}
		c->wrote += (size_t)n;
	}
	if (!c->first_sent) {
		c->first_sent = true;
		g->n_first_sent++;
	}
	c->state = C_WAITING;
}

static void conn_open(struct lg *g, struct conn *c)
{
	struct epoll_event ev;
	int one = 1;

	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		perror("loadgen: socket");
		exit(1);
	}
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	ev.events = EPOLLOUT;
	ev.data.u32 = (uint32_t)(c - g->conns);
	if (epoll_ctl(g->ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
		perror("loadgen: epoll_ctl");
		exit(1);
	}
	c->state = C_CONNECTING;
	if (connect(c->fd, (struct sockaddr *)&g->proxy, sizeof(g->proxy)) < 0 &&
	    errno != EINPROGRESS) {
		g->groups[c->group].errors++;
		conn_close(g, c, true);
	}
}

static void connected(struct lg *g, struct conn *c, int64_t now)
{
	struct epoll_event ev = {
		.events = EPOLLIN | EPOLLRDHUP,
		.data.u32 = (uint32_t)(c - g->conns),
	};
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err) {
		g->groups[c->group].errors++;
		conn_close(g, c, true);
		return;
	}
	epoll_ctl(g->ep, EPOLL_CTL_MOD, c->fd, &ev);
	conn_send(g, c, now);
}

/* Parses the complete header block in c->head; 0 or -1 (malformed). */
static int parse_head(struct conn *c)
{
	char *p = c->head, *end = c->head + c->head_len, *nl;
	bool chunked = false, have_len = false;
	uint64_t len = 0;

	if (c->head_len < 12 || strncmp(p, "HTTP/1.", 7) != 0)
		return -1;
	c->status = (unsigned)strtoul(p + 9, NULL, 10);
	if (strncmp(p, "HTTP/1.0", 8) == 0)
		c->close_after = true;
	nl = memchr(p, '\n', (size_t)(end - p));
	while (nl && nl + 1 < end) {
		char *line = nl + 1, *colon, *v;

		nl = memchr(line, '\n', (size_t)(end - line));
		if (!nl)
			break;
		colon = memchr(line, ':', (size_t)(nl - line));
		if (!colon)
			continue;
		v = colon + 1;
		while (*v == ' ' || *v == '\t')
			v++;
		if (colon - line == 14 &&
		    strncasecmp(line, "Content-Length", 14) == 0) {
			len = strtoull(v, NULL, 10);
			have_len = true;
		} else if (colon - line == 17 &&
		           strncasecmp(line, "Transfer-Encoding", 17) == 0) {
			if (strncasecmp(v, "chunked", 7) == 0)
				chunked = true;
		} else if (colon - line == 10 &&
		           strncasecmp(line, "Connection", 10) == 0) {
			if (strncasecmp(v, "close", 5) == 0)
				c->close_after = true;
			else if (strncasecmp(v, "keep-alive", 10) == 0)
				c->close_after = false;
		}
	}
	if (c->status < 200 || c->status == 204 || c->status == 304) {
		c->body = B_NONE;
	} else if (chunked) {
		c->body = B_CHUNKED;
		c->chunk = K_SIZE;
		c->remaining = 0;
	} else if (have_len) {
		c->body = len ? B_LENGTH : B_NONE;
		c->remaining = len;
	} else {
		c->body = B_CLOSE;
		c->close_after = true;
	}
	return 0;
}

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/*
 * Consumes body bytes; returns how many were used, and sets *done when
 * the body is complete.
 */
static size_t eat_body(struct conn *c, const char *p, size_t n, bool *done)
{
	size_t i = 0;

	*done = false;
	switch (c->body) {
	case B_NONE:
		*done = true;
		return 0;
	case B_CLOSE:
		return n; /* ends when the peer closes */
	case B_LENGTH:
		i = n < c->remaining ? n : (size_t)c->remaining;
		c->remaining -= i;
		*done = c->remaining == 0;
		return i;
	default:
		break;
	}
	while (i < n) {
		char ch = p[i];

		switch (c->chunk) {
		case K_SIZE:
			if (hexval(ch) >= 0) {
				c->remaining = c->remaining * 16 +
				               (uint64_t)hexval(ch);
				i++;
				break;
			}
			c->chunk = K_EXT;
			/* fall through */
		case K_EXT:
			i++;
			if (ch == '\n') {
				if (c->remaining == 0) {
					c->chunk = K_TRAILER;
					c->trailer_line = 0;
				} else {
					c->chunk = K_DATA;
				}
			}
			break;
		case K_DATA: {
			size_t k = n - i < c->remaining ? n - i
			                                : (size_t)c->remaining;

			i += k;
			c->remaining -= k;
			if (c->remaining == 0)
				c->chunk = K_DATA_END;
			break;
		}
		case K_DATA_END:
			i++;
			if (ch == '\n') {
				c->chunk = K_SIZE;
				c->remaining = 0;
			}
			break;
		case K_TRAILER:
			i++;
			if (ch == '\n') {
				if (c->trailer_line == 0) {
					*done = true;
					return i;
				}
				c->trailer_line = 0;
			} else if (ch != '\r') {
				c->trailer_line++;
			}
			break;
		}
	}
	return i;
}

static void response_done(struct lg *g, struct conn *c, int64_t now)
{
	struct group *gr = &g->groups[c->group];
	bool close_after = c->close_after;

	gr->done++;
	if (c->status != 200)
		gr->non200++;
	add_record(g, c, now);
	conn_reset_response(c);
	if (close_after) {
		conn_close(g, c, true);
		return;
	}
	if (gr->think_us > 0) {
		c->state = C_THINK;
		c->wake_at = now + gr->think_us;
		g->think[g->n_think++] = (unsigned)(c - g->conns);
		return;
	}
	conn_send(g, c, now);
}

static void readable(struct lg *g, struct conn *c, int64_t now)
{
	char buf[16384];

	for (;;) {
		ssize_t n = recv(c->fd, buf, sizeof(buf), 0);
		size_t off = 0;

		if (n == 0 || (n < 0 && errno != EAGAIN &&
		               errno != EWOULDBLOCK && errno != EINTR)) {
			/* Closed by the proxy. */
			if (c->state == C_WAITING && c->in_body &&
			    c->body == B_CLOSE) {
				response_done(g, c, now);
				if (c->state != C_CLOSED)
					conn_close(g, c, true);
				return;
			}
			if (c->state == C_WAITING || c->state == C_SENDING)
				g->groups[c->group].errors++;
			conn_close(g, c, true);
			return;
		}
		if (n < 0)
			return;
		while (off < (size_t)n) {
			if (c->state != C_WAITING) {
				/* Unasked-for bytes: the stream is lost. */
				g->groups[c->group].errors++;
				conn_close(g, c, true);
				return;
			}
			if (!c->in_body) {
				char *e;
				size_t take = (size_t)n - off;

				if (!c->head) {
					c->head = malloc(HEAD_MAX);
					if (!c->head)
						die("out of memory");
				}
				if (take > HEAD_MAX - c->head_len)
					take = HEAD_MAX - c->head_len;
				memcpy(c->head + c->head_len, buf + off, take);
				e = memmem(c->head, c->head_len + take,
				           "\r\n\r\n", 4);
				if (!e) {
					c->head_len += (unsigned)take;
					off += take;
					if (c->head_len == HEAD_MAX) {
						g->groups[c->group].errors++;
						conn_close(g, c, true);
						return;
					}
					continue;
				}
				/* Bytes of this read that belong to the head. */
				take = (size_t)(e + 4 - c->head) - c->head_len;
				c->head_len += (unsigned)take;
				off += take;
				if (parse_head(c) < 0) {
					g->groups[c->group].errors++;
					conn_close(g, c, true);
					return;
				}
				free(c->head);
				c->head = NULL;
				c->in_body = true;
				if (c->status >= 100 && c->status < 200) {
					/* Interim: another head follows. */
					conn_reset_response(c);
					continue;
				}
			}
			{
				bool done;

				off += eat_body(c, buf + off, (size_t)n - off,
				                &done);
				if (done)
					response_done(g, c, now);
				if (c->state == C_CLOSED)
					return;
			}
		}
		if ((size_t)n < sizeof(buf))
			return;
	}
}

static void usage(FILE *out)
{
	fprintf(out,
"usage: loadgen -x PROXY_ADDR:PORT -u URL [-U WARM_URL]\n"
"               -g NAME:CONNS[:THINK_MS] [-g ...]\n"
"               [-d SECONDS] [-o RECORDS] [-R CONNECTS_PER_S]\n"
"               [-H \"Name: value\"]...\n");
}

/* -H fields, each "Name: value\r\n"; a tool's only global. */
static char extra_fields[4096];

/* "GET URL HTTP/1.1" with Host from URL and name's Authorization. */
static char *make_request(const char *url, const char *name, size_t *ret_len)
{
	const char *host, *hend;
	char hostbuf[256];
	char *req;
	int n;

	if (strncmp(url, "http://", 7) != 0)
		die("-u/-U: want http://HOST[:PORT]/PATH");
	host = url + 7;
	hend = strchr(host, '/');
	if (!hend)
		hend = host + strlen(host);
	if ((size_t)(hend - host) >= sizeof(hostbuf))
		die("-u/-U: host too long");
	memcpy(hostbuf, host, (size_t)(hend - host));
	hostbuf[hend - host] = '\0';
	if (strcmp(name, "-") == 0)
		n = asprintf(&req, "GET %s%s HTTP/1.1\r\nHost: %s\r\n"
		             "User-Agent: sluice-loadgen\r\n%s\r\n",
		             url, *hend ? "" : "/", hostbuf, extra_fields);
	else
		n = asprintf(&req, "GET %s%s HTTP/1.1\r\nHost: %s\r\n"
		             "User-Agent: sluice-loadgen\r\n"
		             "Authorization: Bearer %s\r\n%s\r\n",
		             url, *hend ? "" : "/", hostbuf, name,
		             extra_fields);
	if (n < 0)
		die("out of memory");
	*ret_len = (size_t)n;
	return req;
}

static void add_group(struct lg *g, const char *spec, const char *url,
                      const char *warm_url)
{
	struct group *gr;
	const char *c1 = strchr(spec, ':');
	char *end;

	if (g->n_groups == MAX_GROUPS)
		die("too many groups");
	if (!c1 || c1 == spec || (size_t)(c1 - spec) >= sizeof(gr->name))
		die("bad -g: want NAME:CONNS[:THINK_MS]");
	gr = &g->groups[g->n_groups++];
	memcpy(gr->name, spec, (size_t)(c1 - spec));
	gr->name[c1 - spec] = '\0';
	gr->conns = (unsigned)strtoul(c1 + 1, &end, 10);
	if (end == c1 + 1 || gr->conns == 0)
		die("bad -g: CONNS must be >= 1");
	if (*end == ':')
		gr->think_us = (int64_t)(strtod(end + 1, &end) * 1000);
	if (*end)
		die("bad -g: want NAME:CONNS[:THINK_MS]");
	gr->req = make_request(url, gr->name, &gr->req_len);
	if (warm_url)
		gr->warm_req = make_request(warm_url, gr->name,
		                            &gr->warm_req_len);
}

static void parse_proxy(struct lg *g, const char *s)
{
	char host[64];
	const char *colon = strrchr(s, ':');

	if (!colon || (size_t)(colon - s) >= sizeof(host))
		die("-x: want ADDR:PORT");
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = '\0';
	memset(&g->proxy, 0, sizeof(g->proxy));
	g->proxy.sin_family = AF_INET;
	g->proxy.sin_port = htons((unsigned short)atoi(colon + 1));
	if (inet_pton(AF_INET, host, &g->proxy.sin_addr) != 1)
		die("-x: want an IPv4 address");
}

/* Opens as many closed connections as the connect budget allows. */
static void open_some(struct lg *g, int64_t now)
{
	g->connect_budget += (double)(now - g->budget_at) * g->connect_rate / 1e6;
	g->budget_at = now;
	if (g->connect_budget > g->connect_rate / 100 + 1)
		g->connect_budget = g->connect_rate / 100 + 1; /* 10 ms' worth */
	while (g->n_closed > 0 && g->connect_budget >= 1) {
		struct conn *c = &g->conns[g->closed[--g->n_closed]];

		g->connect_budget -= 1;
		conn_open(g, c);
	}
}

static void wake_thinkers(struct lg *g, int64_t now)
{
	unsigned i = 0;

	while (i < g->n_think) {
		struct conn *c = &g->conns[g->think[i]];

		if (c->state != C_THINK) {
			g->think[i] = g->think[--g->n_think];
			continue;
		}
		if (c->wake_at <= now) {
			g->think[i] = g->think[--g->n_think];
			conn_send(g, c, now);
			continue;
		}
		i++;
	}
}

static int next_timeout_ms(const struct lg *g, int64_t now, int64_t deadline)
{
	int64_t next = deadline ? deadline : now + 1000000;

	if (g->n_closed > 0)
		next = now + 1000; /* 1 ms: the connect budget refills */
	for (unsigned i = 0; i < g->n_think; i++)
		if (g->conns[g->think[i]].wake_at < next)
			next = g->conns[g->think[i]].wake_at;
	if (next <= now)
		return 0;
	return (int)((next - now + 999) / 1000);
}

int main(int argc, char **argv)
{
	struct lg g = { .ep = -1, .sfd = -1, .connect_rate = 20000 };
	const char *proxy = NULL, *url = NULL, *records = NULL;
	const char *warm_url = NULL;
	const char *specs[MAX_GROUPS];
	unsigned n_specs = 0;
	double secs = 0;
	int64_t start, deadline = 0, now;
	struct epoll_event ev, evs[512];
	sigset_t set;
	unsigned i, k;
	int opt;

	while ((opt = getopt(argc, argv, "x:u:U:g:d:o:R:H:h")) != -1) {
		switch (opt) {
		case 'x':
			proxy = optarg;
			break;
		case 'u':
			url = optarg;
			break;
		case 'U':
			warm_url = optarg;
			break;
		case 'g':
			if (n_specs == MAX_GROUPS)
				die("too many groups");
			specs[n_specs++] = optarg;
			break;
		case 'd':
			secs = strtod(optarg, NULL);
			break;
		case 'o':
			records = optarg;
			break;
		case 'R':
			g.connect_rate = strtod(optarg, NULL);
			if (!(g.connect_rate >= 1))
				die("-R must be >= 1");
			break;
		case 'H':
			if (strlen(extra_fields) + strlen(optarg) + 3 >
			    sizeof(extra_fields))
				die("-H: too many fields");
			strcat(extra_fields, optarg);
			strcat(extra_fields, "\r\n");
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 1;
		}
	}
	if (!proxy || !url || n_specs == 0 || optind != argc) {
		usage(stderr);
		return 1;
	}
	parse_proxy(&g, proxy);
	for (i = 0; i < n_specs; i++)
		add_group(&g, specs[i], url, warm_url);
	for (i = 0; i < g.n_groups; i++)
		g.n_conns += g.groups[i].conns;

	g.conns = calloc(g.n_conns, sizeof(*g.conns));
	g.closed = calloc(g.n_conns, sizeof(*g.closed));
	g.think = calloc(g.n_conns, sizeof(*g.think));
	if (!g.conns || !g.closed || !g.think)
		die("out of memory");
	/* Interleave the groups, so each starts at once. */
	k = 0;
	for (unsigned round = 0; k < g.n_conns; round++)
		for (i = 0; i < g.n_groups; i++)
			if (round < g.groups[i].conns) {
				g.conns[k].fd = -1;
				g.conns[k].group = (unsigned short)i;
				k++;
			}
	for (i = g.n_conns; i-- > 0;)
		g.closed[g.n_closed++] = i;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	g.sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	g.ep = epoll_create1(EPOLL_CLOEXEC);
	if (g.sfd < 0 || g.ep < 0)
		die("cannot create the signalfd or epoll");
	ev.events = EPOLLIN;
	ev.data.u32 = UINT32_MAX;
	epoll_ctl(g.ep, EPOLL_CTL_ADD, g.sfd, &ev);

	start = mono_us();
	g.budget_at = start;
	g.connect_budget = 1;
	if (secs > 0)
		deadline = start + (int64_t)(secs * 1e6);
	printf("start %lld\n", (long long)start);
	fflush(stdout);

	for (;;) {
		int n;
		bool stop = false;

		now = mono_us();
		open_some(&g, now);
		wake_thinkers(&g, now);
		if (!g.ready_said && g.n_first_sent == g.n_conns) {
			g.ready_said = true;
			printf("ready %lld conns=%u\n", (long long)now, g.n_conns);
			fflush(stdout);
		}
		if (deadline && now >= deadline)
			break;
		n = epoll_wait(g.ep, evs, 512, next_timeout_ms(&g, now, deadline));
		if (n < 0 && errno != EINTR)
			die("epoll_wait failed");
		now = mono_us();
		for (int j = 0; j < n; j++) {
			struct conn *c;
			uint32_t id = evs[j].data.u32;

			if (id == UINT32_MAX) {
				stop = true;
				continue;
			}
			c = &g.conns[id];
			if (c->fd < 0)
				continue;
			if (c->state == C_CONNECTING) {
				connected(&g, c, now);
				continue;
			}
			if (c->state == C_SENDING &&
			    (evs[j].events & EPOLLOUT)) {
				struct epoll_event e2 = {
					.events = EPOLLIN | EPOLLRDHUP,
					.data.u32 = id,
				};
				epoll_ctl(g.ep, EPOLL_CTL_MOD, c->fd, &e2);
				conn_send(&g, c, now);
			}
			if (c->fd >= 0 && (evs[j].events &
			                   (EPOLLIN | EPOLLRDHUP | EPOLLHUP |
			                    EPOLLERR)))
				readable(&g, c, now);
		}
		if (stop)
			break;
	}

	now = mono_us();
	printf("stop %lld\n", (long long)now);
	fflush(stdout);
	for (i = 0; i < g.n_conns; i++)
		if (g.conns[i].fd >= 0) {
			close(g.conns[i].fd);
			g.conns[i].fd = -1;
		}

	for (i = 0; i < g.n_groups; i++)
		printf("group %s conns=%u done=%lu errors=%lu non200=%lu\n",
		       g.groups[i].name, g.groups[i].conns, g.groups[i].done,
		       g.groups[i].errors, g.groups[i].non200);
	if (records) {
		FILE *f = fopen(records, "w");

		if (!f)
			die("cannot write the records");
		for (size_t r = 0; r < g.n_recs; r++)
			fprintf(f, "%s %lld %lld %u\n",
			        g.groups[g.recs[r].group].name,
			        (long long)g.recs[r].t_send,
			        (long long)g.recs[r].t_done, g.recs[r].status);
		if (fclose(f) != 0)
			die("cannot write the records");
	}
	if (g.rec_dropped)
		fprintf(stderr, "loadgen: %lu records dropped (out of memory)\n",
		        g.rec_dropped);
	return 0;
}

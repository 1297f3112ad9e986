/*
 * arrivals_origin.c - an HTTP/1.1 origin that records when each request
 * arrives, for bench/throttle.sh.
 *
 *     arrivals_origin -o OUT_FILE [-p PORT_FILE] [-c CONNECTIONS]
 *
 * Listens on 127.0.0.1, port 0 (ephemeral), answers every request with
 * 200 and a 3-byte body ("ok\n"), keep-alive. For each request it notes
 * CLOCK_MONOTONIC in microseconds when its header block has been parsed
 * (the first call of the access handler) and the request's Authorization
 * value (its first 31 bytes, "-" when absent). On SIGINT or SIGTERM it
 * writes one line per request to OUT_FILE, in arrival order:
 *
 *     <monotonic us> <authorization or ->
 *
 * CLOCK_MONOTONIC is shared by every process of the machine, so the load
 * generator's clock (bench/loadgen.c) and this one can be compared.
 * Prints "port N" on stdout once it accepts connections (and writes N to
 * PORT_FILE, through a temporary file and a rename).
 *
 * One MHD thread (epoll): the arrival array is touched by that thread
 * only, until MHD_stop_daemon() has joined it.
 *
 * Not part of the autotools build: bench/throttle.sh compiles it with
 *     cc -O2 bench/arrivals_origin.c \
 *         $(pkg-config --cflags --libs libmicrohttpd)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#if MHD_VERSION < 0x00097002
typedef int MHD_RESULT;
#else
typedef enum MHD_Result MHD_RESULT;
#endif

#define KEY_MAX 32                   /* bytes kept of Authorization, NUL */

struct arrival {
	int64_t t_us;                /* CLOCK_MONOTONIC */
	char key[KEY_MAX];
};

struct rec {
	struct MHD_Response *resp;
	struct arrival *v;           /* MHD thread only */
	size_t n, cap;
	unsigned long dropped;       /* no memory to note them */
};

static int seen_first_call;

static int64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void note(struct rec *r, struct MHD_Connection *conn, int64_t t)
{
	const char *auth;
	struct arrival *a;

	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 65536;
		struct arrival *v = realloc(r->v, cap * sizeof(*v));

		if (!v) {
			r->dropped++;
			return;
		}
		r->v = v;
		r->cap = cap;
	}
	a = &r->v[r->n++];
	a->t_us = t;
	auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	                                   MHD_HTTP_HEADER_AUTHORIZATION);
	if (!auth || !*auth)
		auth = "-";
	snprintf(a->key, sizeof(a->key), "%s", auth);
	/* One token per line: spaces would split the field. */
	for (char *p = a->key; *p; p++)
		if (*p == ' ' || *p == '\t')
			*p = '_';
}

static MHD_RESULT answer(void *cls, struct MHD_Connection *conn,
                         const char *url, const char *method,
                         const char *version, const char *upload_data,
                         size_t *upload_data_size, void **req_cls)
{
	struct rec *r = cls;

	(void)url;
	(void)method;
	(void)version;
	(void)upload_data;
	/*
	 * The first call comes once the header block is parsed: that is the
	 * arrival. Answer on a later call, so keep-alive survives
	 * (shared/notes/libmicrohttpd.md, Q8.1).
	 */
	if (*req_cls == NULL) {
		note(r, conn, mono_us());
		*req_cls = &seen_first_call;
		return MHD_YES;
	}
	if (*upload_data_size != 0) {
		*upload_data_size = 0;
		return MHD_YES;
	}
	return MHD_queue_response(conn, MHD_HTTP_OK, r->resp);
}

static int write_port_file(const char *path, unsigned port)
{
	char tmp[4096];
	FILE *f;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	f = fopen(tmp, "w");
	if (!f)
		return -errno;
	fprintf(f, "%u\n", port);
	if (fclose(f) != 0)
		return -errno;
	if (rename(tmp, path) != 0)
		return -errno;
	return 0;
}

static int write_arrivals(const struct rec *r, const char *path)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return -errno;
	for (size_t i = 0; i < r->n; i++)
		fprintf(f, "%lld %s\n", (long long)r->v[i].t_us, r->v[i].key);
	if (fclose(f) != 0)
		return -errno;
	return 0;
}

static void usage(FILE *out)
{
	fprintf(out,
"usage: arrivals_origin -o OUT_FILE [-p PORT_FILE] [-c CONNECTIONS]\n"
"  -o OUT_FILE     arrival log, written at SIGINT/SIGTERM\n"
"  -p PORT_FILE    also write the bound port to PORT_FILE\n"
"  -c CONNECTIONS  connection limit (default 10000)\n");
}

int main(int argc, char **argv)
{
	static char body[] = "ok\n";
	const char *port_file = NULL, *out = NULL;
	unsigned long conn_limit = 10000;
	const union MHD_DaemonInfo *info;
	struct rec rec = { 0 };
	struct sockaddr_in sa;
	struct MHD_Daemon *d;
	sigset_t set;
	int c, sig, r;

	while ((c = getopt(argc, argv, "o:p:c:h")) != -1) {
		switch (c) {
		case 'o':
			out = optarg;
			break;
		case 'p':
			port_file = optarg;
			break;
		case 'c':
			conn_limit = strtoul(optarg, NULL, 10);
			if (conn_limit == 0 || conn_limit > 1000000) {
				fprintf(stderr, "arrivals_origin: bad -c\n");
				return 1;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 1;
		}
	}
	if (optind != argc || !out) {
		usage(stderr);
		return 1;
	}

	rec.resp = MHD_create_response_from_buffer(sizeof(body) - 1, body,
	                                           MHD_RESPMEM_PERSISTENT);
	if (!rec.resp) {
		fprintf(stderr, "arrivals_origin: cannot create the response\n");
		return 1;
	}
	MHD_add_response_header(rec.resp, MHD_HTTP_HEADER_CONTENT_TYPE,
	                        "text/plain");

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
	                     MHD_USE_ERROR_LOG,
	                     0, NULL, NULL, answer, &rec,
	                     MHD_OPTION_SOCK_ADDR, &sa,
	                     MHD_OPTION_CONNECTION_LIMIT,
	                     (unsigned)conn_limit,
	                     MHD_OPTION_LISTEN_BACKLOG_SIZE, 4096u,
	                     MHD_OPTION_CONNECTION_TIMEOUT, 300u,
	                     MHD_OPTION_END);
	if (!d) {
		fprintf(stderr, "arrivals_origin: cannot start the daemon\n");
		return 1;
	}
	info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	if (!info || info->port == 0) {
		fprintf(stderr, "arrivals_origin: cannot read the bound port\n");
		MHD_stop_daemon(d);
		return 1;
	}
	if (port_file) {
		r = write_port_file(port_file, info->port);
		if (r < 0) {
			fprintf(stderr, "arrivals_origin: cannot write '%s': %s\n",
			        port_file, strerror(-r));
			MHD_stop_daemon(d);
			return 1;
		}
	}
	printf("port %u\n", (unsigned)info->port);
	fflush(stdout);

	do {
		sig = 0;
		if (sigwait(&set, &sig) != 0)
			break;
	} while (sig != SIGINT && sig != SIGTERM);

	/* Joins the MHD thread: rec is ours alone from here. */
	MHD_stop_daemon(d);
	r = write_arrivals(&rec, out);
	if (r < 0)
		fprintf(stderr, "arrivals_origin: cannot write '%s': %s\n", out,
		        strerror(-r));
	if (rec.dropped)
		fprintf(stderr, "arrivals_origin: %lu arrivals not recorded "
		        "(out of memory)\n", rec.dropped);
	MHD_destroy_response(rec.resp);
	free(rec.v);
	return r < 0 ? 1 : 0;
}

/*
 * origin.c - a small, fast HTTP/1.1 origin for sluice's benchmarks.
 *
 *     origin [-t THREADS] [-s BYTES] [-p PORT_FILE] [-c CONNECTIONS]
 *
 * Listens on 127.0.0.1, port 0 (ephemeral), and answers every request,
 * whatever its method and target, with 200 and the same fixed body of
 * BYTES bytes (default 1024), keep-alive. Prints "port N" on stdout once
 * it accepts connections (and writes N to PORT_FILE, through a temporary
 * file and a rename, when -p is given). Runs until SIGINT or SIGTERM.
 *
 * libmicrohttpd with its internal polling thread in epoll mode; -t sets
 * the thread pool size (default 1: one thread, as in the DESIGN's
 * measurement setup where origin and proxy share one core).
 *
 * Not part of the autotools build: the bench scripts (bench/ops.sh,
 * bench/jobs.sh) compile it with
 *     cc -O2 bench/origin.c $(pkg-config --cflags --libs libmicrohttpd)
 */

#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <microhttpd.h>

#if MHD_VERSION < 0x00097002
typedef int MHD_RESULT;
#else
typedef enum MHD_Result MHD_RESULT;
#endif

/* Marks a request whose first handler call has been seen. */
static int seen_first_call;

static MHD_RESULT answer(void *cls, struct MHD_Connection *conn,
                         const char *url, const char *method,
                         const char *version, const char *upload_data,
                         size_t *upload_data_size, void **req_cls)
{
	struct MHD_Response *resp = cls;

	(void)url;
	(void)method;
	(void)version;
	(void)upload_data;
	/*
	 * Queueing in the first call makes MHD close the connection and drop
	 * pipelined requests (shared/notes/libmicrohttpd.md, Q8.1): answer
	 * on the second call, once the request (and any body) is read.
	 */
	if (*req_cls == NULL) {
		*req_cls = &seen_first_call;
		return MHD_YES;
	}
	if (*upload_data_size != 0) {
		*upload_data_size = 0; /* discard request bodies */
		return MHD_YES;
	}
	return MHD_queue_response(conn, MHD_HTTP_OK, resp);
}

static void usage(FILE *out)
{
	fprintf(out,
"usage: origin [-t THREADS] [-s BYTES] [-p PORT_FILE] [-c CONNECTIONS]\n"
"  -t THREADS      MHD thread pool size (default 1)\n"
"  -s BYTES        response body size in bytes (default 1024)\n"
"  -p PORT_FILE    also write the bound port to PORT_FILE\n"
"  -c CONNECTIONS  connection limit (default 10000)\n");
}

static int parse_uint(const char *s, unsigned long max, unsigned long *ret)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v > max)
		return -EINVAL;
	*ret = v;
	return 0;
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

int main(int argc, char **argv)
{
	unsigned long threads = 1, size = 1024, conn_limit = 10000;
	const char *port_file = NULL;
	struct sockaddr_in sa;
	struct MHD_Response *resp;
	struct MHD_Daemon *d;
	const union MHD_DaemonInfo *info;
	unsigned int flags;
	char *body;
	sigset_t set;
	int c, sig;

	while ((c = getopt(argc, argv, "t:s:p:c:h")) != -1) {
		switch (c) {
		case 't':
			if (parse_uint(optarg, 1024, &threads) < 0 ||
			    threads == 0) {
				fprintf(stderr, "origin: bad -t '%s'\n", optarg);
				return 1;
			}
			break;
		case 's':
			if (parse_uint(optarg, 1UL << 30, &size) < 0) {
				fprintf(stderr, "origin: bad -s '%s'\n", optarg);
				return 1;
			}
			break;
		case 'c':
			if (parse_uint(optarg, 1000000, &conn_limit) < 0 ||
			    conn_limit == 0) {
				fprintf(stderr, "origin: bad -c '%s'\n", optarg);
				return 1;
			}
			break;
		case 'p':
			port_file = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 1;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 1;
	}

	/* One body, one response object, shared by every request. */
	body = malloc(size ? size : 1);
	if (!body) {
		fprintf(stderr, "origin: out of memory\n");
		return 1;
	}
	for (unsigned long i = 0; i < size; i++)
		body[i] = (char)('a' + i % 26);
	if (size > 0)
		body[size - 1] = '\n';
	resp = MHD_create_response_from_buffer(size, body,
	                                       MHD_RESPMEM_PERSISTENT);
	if (!resp) {
		fprintf(stderr, "origin: cannot create the response\n");
		return 1;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
	                        "text/plain");

	/* Handle the stop signals synchronously in main, not in MHD. */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = 0;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

	flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
	        MHD_USE_ERROR_LOG;
	/* A pool size of 1 draws a warning: pass it only when > 1. */
	struct MHD_OptionItem opts[] = {
		{ MHD_OPTION_SOCK_ADDR, 0, &sa },
		{ MHD_OPTION_CONNECTION_LIMIT, (intptr_t)conn_limit, NULL },
		{ MHD_OPTION_LISTEN_BACKLOG_SIZE, 4096, NULL },
		{ MHD_OPTION_CONNECTION_TIMEOUT, 120, NULL },
		{ threads > 1 ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_END,
		  (intptr_t)threads, NULL },
		{ MHD_OPTION_END, 0, NULL },
	};
	d = MHD_start_daemon(flags, 0, NULL, NULL, answer, resp,
	                     MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
	if (!d) {
		fprintf(stderr, "origin: cannot start the daemon\n");
		return 1;
	}
	info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	if (!info || info->port == 0) {
		fprintf(stderr, "origin: cannot read the bound port\n");
		MHD_stop_daemon(d);
		return 1;
	}
	if (port_file) {
		int r = write_port_file(port_file, info->port);

		if (r < 0) {
			fprintf(stderr, "origin: cannot write '%s': %s\n",
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

	MHD_stop_daemon(d);
	MHD_destroy_response(resp);
	free(body);
	return 0;
}

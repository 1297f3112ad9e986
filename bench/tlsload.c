/*
 * tlsload.c - an HTTPS load generator, direct or through a forward proxy's
 * CONNECT, for bench/https.sh. One thread per connection, blocking
 * sockets: simple, and the same client for every path it compares.
 *
 *     tlsload [-x PROXY_HOST:PORT] -c CONNS -d SECONDS -m MODE
 *             -A CAFILE [-n SNI] [-H CONNECT_HOST] HOST PORT PATH
 *
 * MODE:
 *   ka     one TLS connection per thread, GET PATH again and again on it
 *   new    a new connection (CONNECT, TLS handshake) for every request
 *   shake  connect, CONNECT, TLS handshake, close: handshakes only; with
 *          -H "unique", every handshake names a new host
 *          ("hT-N.bench.invalid:PORT"), so the proxy's certificate cache
 *          never helps
 *
 * The certificate is verified against CAFILE for the name -n (default
 * HOST). Prints one line:
 *
 *     requests=N handshakes=H errors=E bytes=B secs=S rps=R hps=X mbps=M
 *
 * Not part of the autotools build: bench/https.sh compiles it with
 *     cc -O2 bench/tlsload.c -o tlsload -lssl -lcrypto -lpthread
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum mode { M_KA, M_NEW, M_SHAKE };

static struct {
	const char *proxy_host, *host, *path, *sni, *connect_host;
	int proxy_port, port, conns;
	double secs;
	enum mode mode;
	SSL_CTX *ctx;
} opt;

static atomic_bool stop;
static atomic_uint_fast64_t n_req, n_shake, n_err, n_bytes;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int tcp_connect(const char *host, int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	int fd, one = 1;
	struct timeval tv = { 10, 0 };

	sa.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
		return -1;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* CONNECT target through the proxy on fd: 0 when it answered 200. */
static int proxy_connect(int fd, const char *target)
{
	char buf[1024];
	size_t len = 0;
	int n;

	n = snprintf(buf, sizeof(buf), "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n",
	             target, target);
	if (send(fd, buf, (size_t)n, MSG_NOSIGNAL) != n)
		return -1;
	/* Byte by byte: nothing after the head may be eaten. */
	while (len < sizeof(buf) - 1) {
		if (recv(fd, buf + len, 1, 0) != 1)
			return -1;
		len++;
		if (len >= 4 && memcmp(buf + len - 4, "\r\n\r\n", 4) == 0)
			break;
	}
	buf[len] = '\0';
	return strncmp(buf, "HTTP/1.1 200", 12) == 0 ? 0 : -1;
}

/* A TLS session to the origin (through the proxy when -x). */
static SSL *open_session(int *ret_fd, const char *connect_target)
{
	int fd;
	SSL *s;

	if (opt.proxy_host) {
		fd = tcp_connect(opt.proxy_host, opt.proxy_port);
		if (fd >= 0 && proxy_connect(fd, connect_target) < 0) {
			close(fd);
			fd = -1;
		}
	} else {
		fd = tcp_connect(opt.host, opt.port);
	}
	if (fd < 0)
		return NULL;
	s = SSL_new(opt.ctx);
	SSL_set_fd(s, fd);
	SSL_set_tlsext_host_name(s, opt.sni);
	SSL_set1_host(s, opt.sni);
	if (SSL_connect(s) != 1) {
		SSL_free(s);
		close(fd);
		ERR_clear_error();
		return NULL;
	}
	atomic_fetch_add(&n_shake, 1);
	*ret_fd = fd;
	return s;
}

static void close_session(SSL *s, int fd)
{
	SSL_free(s);
	close(fd);
}

/* Reads exactly n bytes (into buf, or dropped when buf is NULL). */
static int read_n(SSL *s, char *buf, size_t n)
{
	char tmp[16384];

	while (n > 0) {
		size_t want = n < sizeof(tmp) ? n : sizeof(tmp);
		int r = SSL_read(s, buf ? buf : tmp, (int)want);

		if (r <= 0)
			return -1;
		if (buf)
			buf += r;
		n -= (size_t)r;
		atomic_fetch_add(&n_bytes, (uint64_t)r);
	}
	return 0;
}

/* Reads a line ending in \n into buf (NUL-terminated). */
static int read_line(SSL *s, char *buf, size_t size)
{
	size_t len = 0;

	while (len < size - 1) {
		if (SSL_read(s, buf + len, 1) != 1)
			return -1;
		if (buf[len++] == '\n')
			break;
	}
	buf[len] = '\0';
	return 0;
}

/* One GET on s; 0 when a whole 200 response was read. */
static int get(SSL *s)
{
	char req[512], line[1024];
	long long cl = -1;
	bool chunked = false, ok;
	int n;

	n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: %s:%d\r\n\r\n",
	             opt.path, opt.sni, opt.port);
	if (SSL_write(s, req, n) != n)
		return -1;
	if (read_line(s, line, sizeof(line)) < 0)
		return -1;
	ok = strncmp(line, "HTTP/1.1 200", 12) == 0;
	for (;;) {
		if (read_line(s, line, sizeof(line)) < 0)
			return -1;
		if (line[0] == '\r' || line[0] == '\n')
			break;
		if (strncasecmp(line, "content-length:", 15) == 0)
			cl = atoll(line + 15);
		else if (strncasecmp(line, "transfer-encoding:", 18) == 0 &&
		         strstr(line, "chunked"))
			chunked = true;
	}
	if (chunked) {
		for (;;) {
			long long sz;

			if (read_line(s, line, sizeof(line)) < 0)
				return -1;
			sz = strtoll(line, NULL, 16);
			if (read_n(s, NULL, (size_t)sz) < 0 ||
			    read_line(s, line, sizeof(line)) < 0)
				return -1;
			if (sz == 0)
				break;
		}
	} else if (cl > 0 && read_n(s, NULL, (size_t)cl) < 0) {
		return -1;
	}
	return ok ? 0 : -1;
}

static void *worker(void *arg)
{
	long id = (long)arg;
	char target[300];
	SSL *s = NULL;
	int fd = -1;
	unsigned long i = 0;

	snprintf(target, sizeof(target), "%s:%d",
	         opt.connect_host ? opt.connect_host : opt.host, opt.port);
	while (!atomic_load(&stop)) {
		if (opt.mode == M_SHAKE) {
			if (opt.connect_host &&
			    strcmp(opt.connect_host, "unique") == 0) {
				snprintf(target, sizeof(target),
				         "h%ld-%lu.bench.invalid:%d", id, i++,
				         opt.port);
			}
			s = open_session(&fd, target);
			if (!s) {
				atomic_fetch_add(&n_err, 1);
				continue;
			}
			close_session(s, fd);
			s = NULL;
			continue;
		}
		if (!s && !(s = open_session(&fd, target))) {
			atomic_fetch_add(&n_err, 1);
			usleep(1000);
			continue;
		}
		if (get(s) == 0) {
			atomic_fetch_add(&n_req, 1);
		} else {
			atomic_fetch_add(&n_err, 1);
			close_session(s, fd);
			s = NULL;
			continue;
		}
		if (opt.mode == M_NEW) {
			close_session(s, fd);
			s = NULL;
		}
	}
	if (s)
		close_session(s, fd);
	return NULL;
}

static void usage(void)
{
	fprintf(stderr, "usage: tlsload [-x PROXY_HOST:PORT] -c CONNS -d SECS "
	        "-m ka|new|shake -A CAFILE [-n SNI] [-H CONNECT_HOST] "
	        "HOST PORT PATH\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *ca = NULL;
	pthread_t *th;
	double t0, t;
	int c;

	opt.conns = 16;
	opt.secs = 5;
	while ((c = getopt(argc, argv, "x:c:d:m:A:n:H:")) != -1) {
		switch (c) {
		case 'x': {
			char *colon = strrchr(optarg, ':');

			if (!colon)
				usage();
			*colon = '\0';
			opt.proxy_host = optarg;
			opt.proxy_port = atoi(colon + 1);
			break;
		}
		case 'c': opt.conns = atoi(optarg); break;
		case 'd': opt.secs = atof(optarg); break;
		case 'm':
			opt.mode = !strcmp(optarg, "ka") ? M_KA
			         : !strcmp(optarg, "new") ? M_NEW
			         : !strcmp(optarg, "shake") ? M_SHAKE
			         : (usage(), M_KA);
			break;
		case 'A': ca = optarg; break;
		case 'n': opt.sni = optarg; break;
		case 'H': opt.connect_host = optarg; break;
		default: usage();
		}
	}
	if (argc - optind != 3 || !ca || opt.conns < 1)
		usage();
	opt.host = argv[optind];
	opt.port = atoi(argv[optind + 1]);
	opt.path = argv[optind + 2];
	if (!opt.sni)
		opt.sni = opt.host;
	signal(SIGPIPE, SIG_IGN);
	opt.ctx = SSL_CTX_new(TLS_client_method());
	SSL_CTX_set_verify(opt.ctx, SSL_VERIFY_PEER, NULL);
	/* Every handshake is a full one, as a new client's would be. */
	SSL_CTX_set_session_cache_mode(opt.ctx, SSL_SESS_CACHE_OFF);
	if (SSL_CTX_load_verify_locations(opt.ctx, ca, NULL) != 1) {
		fprintf(stderr, "tlsload: cannot load %s\n", ca);
		return 2;
	}
	/* The unique host names of -H unique are not in the certificate. */
	if (opt.mode == M_SHAKE && opt.connect_host &&
	    strcmp(opt.connect_host, "unique") == 0)
		SSL_CTX_set_verify(opt.ctx, SSL_VERIFY_NONE, NULL);
	th = calloc((size_t)opt.conns, sizeof(*th));
	t0 = now_s();
	for (long i = 0; i < opt.conns; i++)
		pthread_create(&th[i], NULL, worker, (void *)i);
	while ((t = now_s()) - t0 < opt.secs)
		usleep(20000);
	atomic_store(&stop, true);
	t = now_s() - t0;
	for (int i = 0; i < opt.conns; i++)
		pthread_join(th[i], NULL);
	printf("requests=%lu handshakes=%lu errors=%lu bytes=%lu secs=%.2f "
	       "rps=%.0f hps=%.0f mbps=%.1f\n",
	       (unsigned long)n_req, (unsigned long)n_shake,
	       (unsigned long)n_err, (unsigned long)n_bytes, t,
	       (double)n_req / t, (double)n_shake / t,
	       (double)n_bytes / t / 1e6);
	return 0;
}

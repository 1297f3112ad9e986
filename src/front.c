/*
 * front.c - client connections through libmicrohttpd: its callbacks, the
 * suspend/resume of a waiting connection, and the front's lifecycle. What
 * the fields decide is in front_admit.c, the responses in front_reply.c,
 * the disconnect watch and header deadlines in front_watch.c.
 *
 * A request goes through the access handler in three steps: the first
 * call (headers parsed: validate the target, refuse an oversized
 * Content-Length at once), body calls (buffer up to max_body), and the
 * final call, where the request is handed to the engine and the connection
 * suspended. The engine resumes it through the owner's wake (front_wake);
 * the handler is called again and queues the response: the whole body at
 * once when it has already arrived, otherwise a reader that streams it and
 * suspends the connection while the engine has nothing new. The front's
 * own fields of a request are in struct front_req (front_req.h).
 *
 * Responses are queued only from the final call or later, never the
 * first, so the connection stays alive (see doc/ARCHITECTURE.md), except
 * the early 413.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "classify.h"
#include "clock.h"
#include "config.h"
#include "cred.h"
#include "engine.h"
#include "front.h"
#include "front_admit.h"
#include "front_reply.h"
#include "front_req.h"
#include "front_shards.h"
#include "front_watch.h"
#include "jobrun_intake.h"
#include "log.h"
#include "netaddr.h"
#include "request.h"
#include "wire.h"

/*
 * What fields cost in MHD's per-connection pool (the text, each one's
 * line end, and libmicrohttpd 0.9.75's list node for a request field).
 */
#define POOL_FIELDS_COST(n, text) ((text) + (n) * (4 + 56))

/* Connections per MHD daemon: bounds MHD's walk on each resume. */
#define SHARD_CONNS 256
/* The response body left unread below which a paused transfer resumes. */
#define BODY_LOW_WATER (64 * 1024)

/*
 * The front's share of one engine worker: the shards its thread runs,
 * and what those read without a lock.
 */
struct front_part {
	struct front *f;
	const struct config *cfg;    /* this thread's; a reference */
	struct config_slot cfg_next; /* a reload's, taken between rounds */
	struct shards *shards;
	struct wire_limits wire;     /* its client connections' checks */
};

struct front {
	const struct config *cfg;    /* the one it started with */
	struct engine *engine;
	struct jobrun *jobrun;       /* webhook jobs; NULL: none */
	struct front_part *parts;    /* one per engine worker, by index */
	unsigned n_parts;
	unsigned char salt[CRED_SALT_LEN];

	struct watch *watch;         /* disconnect watch, header deadlines */
	size_t n_slots;              /* client fds the watch covers */
	/*
	 * By fd: where a tunnel's connection goes (front_add_tunnel), NULL
	 * for a plain one. Set before the fd reaches MHD, freed when MHD
	 * closes it or when a plain connection takes the fd number.
	 */
	_Atomic(struct destination *) *via;

	atomic_uint busy;            /* requests begun, not completed */

	char admin[NETADDR_STRLEN];  /* the admin listener, "" unknown */
	bool admin_wild;             /* bound to 0.0.0.0 or :: */
	unsigned admin_port;
};

/* --- sleep and wake --- */

/*
 * Suspends fr's connection; its lock held. Its disconnect watch is armed
 * later, if it still sleeps then (front_watch.h).
 */
static void sleep_locked(struct front *f, struct front_req *fr)
{
	fr->suspended = true;
	MHD_suspend_connection(fr->conn);
	watch_sleep(f->watch, fr);
}

/* Resumes fr's connection if it sleeps; its lock held. */
static void wake_locked(struct front *f, struct front_req *fr)
{
	if (!fr->suspended)
		return;
	fr->suspended = false;
	watch_disarm(f->watch, fr);
	shards_resume(fr->part->shards, fr->conn);
}

/* The owner's wake: r's state changed, its handler runs again. */
static void front_wake(struct request *r)
{
	struct front_req *fr = front_req_of(r);

	pthread_mutex_lock(&r->lock);
	wake_locked(fr->front, fr);
	pthread_mutex_unlock(&r->lock);
}

/* The disconnect watch fired for fr (listener thread). */
static void client_gone(void *arg, struct front_req *fr)
{
	struct front *f = arg;
	struct request *r = &fr->req;
	bool cancel = false;

	pthread_mutex_lock(&r->lock);
	if (fr->suspended) {
		r->cancelled = true;
		cancel = r->submitted;
		wake_locked(f, fr);
	}
	pthread_mutex_unlock(&r->lock);
	if (cancel) {
		log_debug("client gone, request dropped dest=%s:%u",
		          r->target.dest.host, r->target.dest.port);
		engine_cancel(f->engine, r);
	}
}

uint32_t front_header_deadline(struct front *f, int fd)
{
	return watch_header_deadline(f->watch, fd);
}

void front_header_expired(struct front *f, int fd, uint32_t gen)
{
	watch_header_expired(f->watch, fd, gen);
}

int front_watch_fd(const struct front *f)
{
	return watch_fd(f->watch);
}

void front_watch_due(struct front *f)
{
	watch_due(f->watch);
}

void front_watch_dispatch(struct front *f)
{
	watch_dispatch(f->watch);
}

/* Sets (or clears, dest NULL) what fd's connection is a tunnel to. */
static void via_set(struct front *f, int fd, struct destination *dest)
{
	if (fd >= 0 && (size_t)fd < f->n_slots)
		free(atomic_exchange(&f->via[fd], dest));
	else
		free(dest);
}

/*
 * Inside a tunnel a request names a path on the tunnel's destination
 * (origin form); it becomes the absolute target a proxy request has. An
 * absolute target must name the tunnel's own destination. 0, or -EINVAL
 * with a message, or -ENOMEM.
 */
static int tunnel_target(struct front *f, struct front_req *fr,
                         const char **ret_msg)
{
	struct request *r = &fr->req;
	struct destination *via;
	struct target t;
	char base[DEST_HOST_MAX + 32];
	char *raw;

	if (fr->fd < 0 || (size_t)fr->fd >= f->n_slots)
		return 0;
	via = atomic_load(&f->via[fr->fd]);
	if (!via)
		return 0;
	if (r->raw_target[0] != '/') {
		*ret_msg = "a request inside a CONNECT tunnel must be for the "
		           "tunnel's host";
		if (target_parse(r->raw_target, &t) != TARGET_OK ||
		    t.dest.scheme != via->scheme || t.dest.port != via->port ||
		    strcmp(t.dest.host, via->host) != 0)
			return -EINVAL;
		return 0;
	}
	destination_format(via, base, sizeof(base));
	if (asprintf(&raw, "%s%s", base, r->raw_target) < 0)
		return -ENOMEM;
	free(r->raw_target);
	r->raw_target = raw;
	return 0;
}

static void on_connection(void *cls, struct MHD_Connection *c,
                          void **socket_ctx,
                          enum MHD_ConnectionNotificationCode code)
{
	struct front_part *p = cls;
	struct front *f = p->f;
	const union MHD_ConnectionInfo *ci;

	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		shards_conn_started(p->shards, socket_ctx);
		/*
		 * Unchecked bytes must never reach MHD's parser: a
		 * connection that cannot be checked is closed at once.
		 */
		if (ci && wire_attach(ci->connect_fd, &p->wire) < 0) {
			log_warn("client connection not checked (out of "
			         "memory), closing");
			shutdown(ci->connect_fd, SHUT_RDWR);
		}
		return;
	}
	shards_conn_closed(p->shards, socket_ctx);
	if (!ci)
		return;
	via_set(f, ci->connect_fd, NULL);
	wire_detach(ci->connect_fd);
	watch_conn_closed(f->watch, ci->connect_fd);
}

unsigned front_busy(const struct front *f)
{
	return atomic_load(&f->busy);
}

/* --- streaming --- */

/*
 * The reader of an upstream response still arriving (reply_upstream):
 * copies what the engine has, and sleeps while it has nothing new.
 */
static ssize_t body_reader(void *cls, uint64_t pos, char *out, size_t max)
{
	struct front_req *fr = cls;
	struct request *r = &fr->req;
	struct front *f = fr->front;
	size_t n;
	bool unpause = false;

	pthread_mutex_lock(&r->lock);
	if (r->cancelled) {
		pthread_mutex_unlock(&r->lock);
		return MHD_CONTENT_READER_END_WITH_ERROR;
	}
	n = buf_avail(&r->resp_body);
	if (n > 0) {
		if (n > max)
			n = max;
		memcpy(out, r->resp_body.data + r->resp_body.off, n);
		r->resp_body.off += n;
		if (r->paused && buf_avail(&r->resp_body) < BODY_LOW_WATER)
			unpause = true;
		fr->sent_bytes += n;
		pthread_mutex_unlock(&r->lock);
		if (unpause)
			engine_unpause(f->engine, r);
		return (ssize_t)n;
	}
	if (r->body_done) {
		bool err = r->body_error;

		pthread_mutex_unlock(&r->lock);
		return err ? MHD_CONTENT_READER_END_WITH_ERROR
		           : MHD_CONTENT_READER_END_OF_STREAM;
	}
	if (r->paused)
		unpause = true;
	sleep_locked(f, fr);
	pthread_mutex_unlock(&r->lock);
	if (unpause)
		engine_unpause(f->engine, r);
	return 0;
}

/* --- requests --- */

/* A job being accepted goes with its client's request. */
static void front_request_free(struct request *r)
{
	job_intake_free(front_req_of(r)->intake);
}

/* The front owns the requests of its client connections. */
static const struct req_owner front_owner = {
	.wake = front_wake,
	.free = front_request_free,
};

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
	struct front_part *p = cls;
	struct front *f = p->f;
	struct front_req *fr = calloc(1, sizeof(*fr));

	if (!fr)
		return NULL;
	if (request_init(&fr->req, uri) < 0) {
		free(fr);
		return NULL;
	}
	fr->req.owner = &front_owner;
	fr->front = f;
	fr->part = p;
	fr->fd = -1;
	fr->req_hdr_bytes = strlen(uri) + 32; /* request line */
	atomic_fetch_add(&f->busy, 1);
	return fr;
}

static void fail_front(struct request *r, unsigned status, const char *code,
                       const char *msg)
{
	pthread_mutex_lock(&r->lock);
	request_fail_locked(r, status, code, msg);
	pthread_mutex_unlock(&r->lock);
}

/* MHD's request fields as admission reads them (front_admit.h). */
struct fields_walk {
	admit_field_fn *fn;
	void *arg;
};

static enum MHD_Result fields_one(void *cls, enum MHD_ValueKind kind,
                                  const char *key, const char *value)
{
	struct fields_walk *w = cls;

	return w->fn(w->arg, key, value) ? MHD_YES : MHD_NO;
}

static void fields_each(void *src, admit_field_fn *fn, void *arg)
{
	struct fields_walk w = { .fn = fn, .arg = arg };

	MHD_get_connection_values(src, MHD_HEADER_KIND, fields_one, &w);
}

static const char *fields_lookup(void *src, const char *name)
{
	return MHD_lookup_connection_value(src, MHD_HEADER_KIND, name);
}

static struct admit_fields fields_of(struct front_req *fr)
{
	return (struct admit_fields){
		.src = fr->conn, .lookup = fields_lookup, .each = fields_each,
	};
}

static enum MHD_Result on_first(struct front *f, struct front_req *fr,
                                struct MHD_Connection *c, const char *method,
                                const char *version)
{
	struct request *r = &fr->req;
	const union MHD_ConnectionInfo *ci;
	const struct wire_error *we;
	struct admit_fields hf;
	struct admit_head head;
	const char *code, *why;
	unsigned status;
	char msg[DEST_HOST_MAX + 64];

	fr->started = true;
	fr->conn = c;
	r->t_arrival = clock_now_ms();
	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
	if (ci)
		fr->fd = ci->connect_fd;
	/* The header block is complete: its deadline is met. */
	watch_header_met(f->watch, fr->fd);
	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci && ci->client_addr) {
		size_t sl = ci->client_addr->sa_family == AF_INET6
		            ? sizeof(struct sockaddr_in6)
		            : sizeof(struct sockaddr_in);

		memcpy(&fr->client, ci->client_addr, sl);
	}
	r->method = strdup(method);
	if (!r->method)
		return MHD_NO;
	r->is_head = strcmp(method, "HEAD") == 0;

	/*
	 * A request head the byte checks refused (wire.c) arrives as the
	 * sentinel request: answer why, and close (answering now forces
	 * that). Every other head passed them: its framing is unambiguous
	 * (RFC 9112 section 6.3), its field names are tokens, its values
	 * hold no CR, LF, NUL or control byte.
	 */
	if (strcmp(method, WIRE_REJECT_METHOD) == 0 &&
	    (we = wire_rejection(fr->fd))) {
		fail_front(r, we->status, we->code, we->message);
		return reply_error(fr, we->status, we->code, we->message);
	}
	hf = fields_of(fr);
	admit_head(fr->part->cfg, &hf, version, &head, msg, sizeof(msg));
	if (head.now) {
		fail_front(r, head.status, head.code, head.msg);
		return reply_error(fr, head.status, head.code, head.msg);
	}
	fr->body_too_large = head.body_too_large;
	/* A body is read from now on, at no less than min_body_rate. */
	if (head.has_body)
		wire_body_clock(fr->fd, true);
	if (head.status) {
		fail_front(r, head.status, head.code, head.msg);
		return MHD_YES;
	}

	switch (tunnel_target(f, fr, &why)) {
	case 0:
		break;
	case -ENOMEM:
		fail_front(r, 503, "overloaded", "out of memory");
		return MHD_YES;
	default:
		fail_front(r, 400, "bad_request", why);
		return MHD_YES;
	}
	status = admit_target(fr->part->cfg, r, &code, &why, msg, sizeof(msg));
	if (status)
		fail_front(r, status, code, why);
	return MHD_YES;
}

static void on_body(struct front *f, struct front_req *fr, const char *data,
                    size_t n)
{
	struct request *r = &fr->req;

	if (r->phase != REQ_RECEIVING || fr->body_too_large)
		return;
	if (r->body.len + n > fr->part->cfg->max_body) {
		fr->body_too_large = true;
		buf_done(&r->body);
		return;
	}
	if (buf_append(&r->body, data, n) < 0)
		fail_front(r, 503, "overloaded", "out of memory");
}

/* --- webhook jobs --- */

/* The store answered (writer thread): let the handler answer. */
static void job_ready(struct request *r)
{
	front_wake(r);
}

/*
 * Suspends the connection while the job is written; the store's answer
 * resumes it (job_ready) and reply_job() replies.
 */
static enum MHD_Result submit_job(struct front *f, struct front_req *fr)
{
	struct request *r = &fr->req;

	pthread_mutex_lock(&r->lock);
	r->phase = REQ_WAITING;
	sleep_locked(f, fr);
	pthread_mutex_unlock(&r->lock);
	if (job_intake_submit(f->jobrun, fr->intake, r, job_ready) < 0) {
		pthread_mutex_lock(&r->lock);
		wake_locked(f, fr);
		pthread_mutex_unlock(&r->lock);
	}
	return MHD_YES;
}

static enum MHD_Result on_final(struct front *f, struct front_req *fr)
{
	struct request *r = &fr->req;
	struct admit_fields hf = fields_of(fr);
	struct admit_ctx ctx = {
		.cfg = fr->part->cfg, .salt = f->salt,
		.jobs = f->jobrun,
	};
	const char *code = "bad_request";
	char msg[WEBHOOK_URL_MAX + 128];
	size_t n_fields = 0, text = 0;
	int err;

	if (fr->body_too_large) {
		snprintf(msg, sizeof(msg),
		         "request body is over the limit of %" PRIu64 " bytes",
		         fr->part->cfg->max_body);
		return reply_error(fr, 413, "body_too_large", msg);
	}
	switch (admit_classify(&ctx, &hf, r, &fr->intake, &code, msg,
	                       sizeof(msg))) {
	case 0:
		break;
	case -ENOMEM:
		return reply_error(fr, 503, "overloaded", "out of memory");
	default:
		return reply_error(fr, 400, code, msg);
	}
	err = admit_upstream_headers(&hf, r, &n_fields, &text);
	/* What the fields take in MHD's pool, for response_head_fits. */
	fr->req_hdr_bytes += POOL_FIELDS_COST(n_fields, text);
	switch (err) {
	case 0:
		break;
	case -EINVAL:
		return reply_error(fr, 400, "bad_request",
		                   "a field name or value is malformed");
	default:
		return reply_error(fr, 503, "overloaded", "out of memory");
	}
	if (fr->intake)
		return submit_job(f, fr);

	pthread_mutex_lock(&r->lock);
	r->phase = REQ_WAITING;
	r->submitted = true;
	sleep_locked(f, fr);
	pthread_mutex_unlock(&r->lock);
	if (engine_submit(f->engine, r) < 0) {
		pthread_mutex_lock(&r->lock);
		r->submitted = false;
		request_fail_locked(r, 503, "shutting_down",
		                    "the proxy is shutting down");
		wake_locked(f, fr);
		pthread_mutex_unlock(&r->lock);
	}
	return MHD_YES;
}

/*
 * "http://ADDR:PORT" of the admin listener for a client on fd: its bound
 * address, or, bound to a wildcard, the address the client reached the
 * proxy at (loopback for an intercepted tunnel's socketpair).
 */
static void admin_base(const struct front *f, int fd, char *buf, size_t size)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char addr[NETADDR_STRLEN];

	if (!f->admin_wild) {
		snprintf(buf, size, "http://%s", f->admin[0] ? f->admin
		                                             : "127.0.0.1:8081");
		return;
	}
	if (fd >= 0 && getsockname(fd, (struct sockaddr *)&ss, &len) == 0 &&
	    (ss.ss_family == AF_INET || ss.ss_family == AF_INET6)) {
		if (ss.ss_family == AF_INET)
			((struct sockaddr_in *)&ss)->sin_port =
				htons((uint16_t)f->admin_port);
		else
			((struct sockaddr_in6 *)&ss)->sin6_port =
				htons((uint16_t)f->admin_port);
		netaddr_format((const struct sockaddr *)&ss, addr,
		               sizeof(addr));
	} else {
		snprintf(addr, sizeof(addr), "127.0.0.1:%u", f->admin_port);
	}
	snprintf(buf, size, "http://%s", addr);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c,
                                  const char *url, const char *method,
                                  const char *version,
                                  const char *upload_data,
                                  size_t *upload_data_size, void **ctx)
{
	struct front *f = ((struct front_part *)cls)->f;
	struct front_req *fr = *ctx;
	struct request *r = &fr->req;
	char base[FRONT_ADMIN_BASE_MAX];
	enum req_phase phase;

	if (!fr)
		return MHD_NO;
	if (!fr->started)
		return on_first(f, fr, c, method, version);
	if (*upload_data_size) {
		on_body(f, fr, upload_data, *upload_data_size);
		*upload_data_size = 0;
		return MHD_YES;
	}
	wire_body_clock(fr->fd, false); /* the body is whole */

	pthread_mutex_lock(&r->lock);
	if (r->cancelled) {
		pthread_mutex_unlock(&r->lock);
		return MHD_NO;
	}
	phase = r->phase;
	if (phase == REQ_WAITING && fr->intake && fr->intake->done) {
		pthread_mutex_unlock(&r->lock);
		admin_base(f, fr->fd, base, sizeof(base));
		return reply_job(fr, base);
	}
	if (phase == REQ_WAITING) {
		/* Woken with nothing to send: sleep again. */
		sleep_locked(f, fr);
		pthread_mutex_unlock(&r->lock);
		return MHD_YES;
	}
	pthread_mutex_unlock(&r->lock);

	switch (phase) {
	case REQ_RECEIVING:
		return on_final(f, fr);
	case REQ_HEADERS:
		return reply_upstream(fr, fr->part->cfg->max_header, body_reader);
	case REQ_FAILED:
		return reply_error(fr, r->err_status, r->err_code, r->err_msg);
	default:
		return MHD_NO;
	}
}

static void on_completed(void *cls, struct MHD_Connection *c, void **ctx,
                         enum MHD_RequestTerminationCode toe)
{
	struct front *f = ((struct front_part *)cls)->f;
	struct front_req *fr = *ctx;
	struct request *r = &fr->req;
	bool cancel;

	if (!fr)
		return;
	*ctx = NULL;
	pthread_mutex_lock(&r->lock);
	cancel = r->submitted && !r->body_done && r->phase != REQ_FAILED;
	if (cancel)
		r->cancelled = true;
	pthread_mutex_unlock(&r->lock);
	if (cancel)
		engine_cancel(f->engine, r);
	if (fr->started && fr->part->cfg->access_log)
		reply_log(fr);
	request_unref(r);
	atomic_fetch_sub(&f->busy, 1);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char buf[512];
	size_t n;

	vsnprintf(buf, sizeof(buf), fmt, ap);
	/*
	 * Harmless on the socketpairs of intercepted connections, where TCP
	 * options do not apply; see doc/ARCHITECTURE.md.
	 */
	if (strstr(buf, "TCP_NODELAY") || strstr(buf, "TCP_CORK") ||
	    strstr(buf, "Failed to push the data"))
		return;
	n = strlen(buf);
	while (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
	log_debug("http: %s", buf);
}

void front_set_admin(struct front *f, const char *addr)
{
	const char *colon = strrchr(addr, ':');

	snprintf(f->admin, sizeof(f->admin), "%s", addr);
	f->admin_port = colon ? (unsigned)strtoul(colon + 1, NULL, 10) : 0;
	f->admin_wild = strncmp(addr, "0.0.0.0:", 8) == 0 ||
	                strncmp(addr, "[::]:", 5) == 0;
}

/* --- lifecycle --- */

struct front *front_new(const struct config *cfg, struct engine *e,
                        struct jobrun *jr, const unsigned char *salt)
{
	struct front *f;
	struct rlimit rl;

	f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	memcpy(f->salt, salt, CRED_SALT_LEN);
	f->cfg = config_ref(cfg);
	f->engine = e;
	f->jobrun = jr;
	f->n_parts = engine_workers(e);
	f->parts = calloc(f->n_parts, sizeof(*f->parts));
	if (!f->parts) {
		front_free(f);
		return NULL;
	}
	for (unsigned i = 0; i < f->n_parts; i++) {
		struct front_part *p = &f->parts[i];

		p->f = f;
		p->cfg = config_ref(cfg);
		/* Leave room in MHD's pool for the response's head. */
		p->wire.max_head = (size_t)cfg->max_header - REPLY_HEAD_SLACK;
		p->wire.min_body_rate = cfg->min_body_rate;
		p->wire.body_grace_ms = cfg->client_timeout;
	}
	f->n_slots = 65536;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		f->n_slots = rl.rlim_cur;
	f->watch = watch_new(f->n_slots, client_gone, f);
	f->via = calloc(f->n_slots, sizeof(*f->via));
	if (!f->watch || !f->via || wire_init(f->n_slots) < 0) {
		front_free(f);
		return NULL;
	}
	return f;
}

static struct MHD_Daemon *make_daemon(void *arg, unsigned max_conns)
{
	struct front_part *p = arg;
	unsigned flags = MHD_USE_EPOLL | MHD_USE_NO_LISTEN_SOCKET |
	                 MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ITC |
	                 MHD_USE_ERROR_LOG | MHD_USE_SUPPRESS_DATE_NO_CLOCK;
	unsigned timeout = (unsigned)((p->cfg->client_timeout + 999) / 1000);

	if (timeout == 0)
		timeout = 1;
	return MHD_start_daemon(
		flags, 0, NULL, NULL, on_request, p,
		MHD_OPTION_EXTERNAL_LOGGER, mhd_log, p,
		MHD_OPTION_CONNECTION_LIMIT, max_conns,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)p->cfg->max_header,
		MHD_OPTION_CONNECTION_TIMEOUT, timeout,
		MHD_OPTION_URI_LOG_CALLBACK, on_uri, p,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, p,
		MHD_OPTION_NOTIFY_CONNECTION, on_connection, p,
		MHD_OPTION_END);
}

/* Between a part's rounds, on its thread: a reload's configuration. */
static void take_config(void *arg)
{
	struct front_part *p = arg;

	if (config_slot_swap(&p->cfg_next, &p->cfg))
		p->wire.min_body_rate = p->cfg->min_body_rate;
}

void front_reconfigure(struct front *f, const struct config *cfg)
{
	for (unsigned i = 0; i < f->n_parts; i++) {
		struct front_part *p = &f->parts[i];

		config_slot_offer(&p->cfg_next, config_ref(cfg));
		if (p->shards)
			shards_kick(p->shards);
	}
}

int front_start(struct front *f)
{
	/* fds for upstream work, and two (epoll, eventfd) per shard. */
	size_t reserve = f->cfg->max_in_flight + 64;
	size_t limit = 64;

	if (f->n_slots > reserve + 64) {
		limit = f->n_slots - reserve;
		limit -= 2 * (limit / SHARD_CONNS + 1);
	}
	/* Each part takes its share of the connections. */
	limit = limit / f->n_parts > 16 ? limit / f->n_parts : 16;
	for (unsigned i = 0; i < f->n_parts; i++) {
		struct front_part *p = &f->parts[i];
		int err;

		p->shards = shards_new(make_daemon, p, SHARD_CONNS,
		                       (unsigned)limit);
		if (!p->shards)
			return -ENOMEM;
		shards_set_between(p->shards, take_config);
		err = shards_start(p->shards, engine_loop(f->engine, i));
		if (err < 0)
			return err;
	}
	return 0;
}

/*
 * The part a new connection goes to: the calling worker's (each worker's
 * listener accepts for it, so the connection stays on the thread that
 * accepted it), or, from another thread (the tunnels), the next in turn.
 */
static struct shards *next_shards(struct front *f)
{
	return f->parts[engine_worker_here(f->engine)].shards;
}

int front_add_connection(struct front *f, int fd, const struct sockaddr *sa,
                         socklen_t len)
{
	via_set(f, fd, NULL);
	return shards_add(next_shards(f), fd, sa, len);
}

int front_add_tunnel(struct front *f, int fd, const struct sockaddr *sa,
                     socklen_t len, const struct destination *dest)
{
	struct destination *d = malloc(sizeof(*d));

	if (!d) {
		close(fd);
		return -ENOMEM;
	}
	*d = *dest;
	via_set(f, fd, d);
	return shards_add(next_shards(f), fd, sa, len);
}

void front_stop(struct front *f)
{
	if (!f)
		return;
	for (unsigned i = 0; f->parts && i < f->n_parts; i++)
		shards_stop(f->parts[i].shards);
}

void front_free(struct front *f)
{
	if (!f)
		return;
	for (unsigned i = 0; f->parts && i < f->n_parts; i++) {
		struct front_part *p = &f->parts[i];

		shards_free(p->shards);
		config_slot_done(&p->cfg_next);
		config_free(p->cfg);
	}
	free(f->parts);
	watch_free(f->watch);
	if (f->via)
		for (size_t i = 0; i < f->n_slots; i++)
			free(atomic_load(&f->via[i]));
	free(f->via);
	wire_done();
	config_free(f->cfg);
	free(f);
}

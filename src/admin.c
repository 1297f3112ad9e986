/*
 * admin.c - the admin listener.
 */
#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <microhttpd.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "admin.h"
#include "admin_metrics.h"
#include "clock.h"
#include "config.h"
#include "engine.h"
#include "http.h"
#include "jobrun.h"
#include "jobrun_json.h"
#include "jobs.h"
#include "tunnel.h"
#include "wire.h"

struct admin {
	const struct config *cfg;    /* the admin thread's; a reference */
	struct config_slot cfg_next; /* a reload's, taken at a callback */
	struct engine *engine;
	const struct tunnels *tunnels; /* NULL: none */
	struct jobs *store;          /* NULL: no jobs */
	struct admin_token token;    /* the admin thread's */
	struct wire_limits wire;     /* byte checks of every connection */
	struct MHD_Daemon *mhd;

	pthread_mutex_t lock;        /* guards what follows */
	struct admin_token next_token; /* a reload's, with cfg_next */
	admin_reload_fn *reload;
	void *reload_arg;
	struct admin_sources src;
};

/* Before each callback, on the admin thread: a reload's settings. */
static void take_config(struct admin *a)
{
	if (!config_slot_swap(&a->cfg_next, &a->cfg))
		return;
	pthread_mutex_lock(&a->lock);
	a->token = a->next_token;
	pthread_mutex_unlock(&a->lock);
}

void admin_reconfigure(struct admin *a, const struct config *cfg,
                       const struct admin_token *token)
{
	pthread_mutex_lock(&a->lock);
	if (token)
		a->next_token = *token;
	else
		OPENSSL_cleanse(&a->next_token, sizeof(a->next_token));
	pthread_mutex_unlock(&a->lock);
	config_slot_offer(&a->cfg_next, config_ref(cfg));
}

void admin_set_sources(struct admin *a, const struct admin_sources *src)
{
	pthread_mutex_lock(&a->lock);
	a->src = *src;
	pthread_mutex_unlock(&a->lock);
}

void admin_set_reload(struct admin *a, admin_reload_fn *fn, void *arg)
{
	pthread_mutex_lock(&a->lock);
	a->reload = fn;
	a->reload_arg = arg;
	pthread_mutex_unlock(&a->lock);
}

int admin_token_load(const char *path, struct admin_token *ret)
{
	char buf[ADMIN_TOKEN_MAX + 3];
	FILE *f = fopen(path, "re");
	size_t n;
	int r = 0;

	if (!f)
		return -errno;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	if (ferror(f))
		r = -EIO;
	fclose(f);
	if (r < 0)
		return r;
	if (n > 0 && buf[n - 1] == '\n')
		n--;
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	if (n == 0 || n > ADMIN_TOKEN_MAX)
		r = -EINVAL;
	for (size_t i = 0; r == 0 && i < n; i++)
		if (buf[i] <= ' ' || buf[i] > '~')
			r = -EINVAL;
	if (r == 0) {
		SHA256((const unsigned char *)buf, n, ret->digest);
		ret->set = true;
	}
	OPENSSL_cleanse(buf, sizeof(buf));
	return r;
}

/*
 * Whether c's Authorization is "Bearer <the token>": the SHA-256 of what
 * was sent is compared with the token's in constant time, so neither the
 * bytes nor the length of the token leak through timing.
 */
static bool token_ok(const struct admin *a, struct MHD_Connection *c)
{
	const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
	                                            "Authorization");
	unsigned char got[ADMIN_TOKEN_DIGEST_LEN];
	bool ok;

	if (!a->token.set)
		return true;
	if (!v || strncasecmp(v, "Bearer ", 7) != 0)
		return false;
	v += 7;
	while (*v == ' ')
		v++;
	SHA256((const unsigned char *)v, strlen(v), got);
	ok = CRYPTO_memcmp(got, a->token.digest, sizeof(got)) == 0;
	OPENSSL_cleanse(got, sizeof(got));
	return ok;
}

static enum MHD_Result reply_unauthorized(struct MHD_Connection *c)
{
	struct MHD_Response *r = http_error_response(
		"unauthorized", "this endpoint wants the admin bearer token");
	enum MHD_Result ret;

	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, "WWW-Authenticate", "Bearer");
	ret = MHD_queue_response(c, 401, r);
	MHD_destroy_response(r);
	return ret;
}

/* Whether the client is in admin_allow. */
/*
 * Clients outside admin_allow are closed at accept, before they take one
 * of the listener's few connection slots.
 */
static enum MHD_Result accept_policy(void *cls, const struct sockaddr *sa,
                                     socklen_t len)
{
	struct admin *a = cls;

	(void)len;
	take_config(a);
	return cidr_list_match(&a->cfg->admin_allow, sa) ? MHD_YES : MHD_NO;
}

static int conn_fd(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(
		c, MHD_CONNECTION_INFO_CONNECTION_FD);

	return ci ? ci->connect_fd : -1;
}

static enum MHD_Result reply_error(struct MHD_Connection *c,
                                   unsigned status, const char *code,
                                   const char *msg)
{
	struct MHD_Response *r = http_error_response(code, msg);
	enum MHD_Result ret;

	if (!r)
		return MHD_NO;
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result reply_text(struct MHD_Connection *c, unsigned status,
                                  const char *text)
{
	struct MHD_Response *r;
	enum MHD_Result ret;
	char *copy = strdup(text);

	if (!copy)
		return MHD_NO;
	r = MHD_create_response_from_buffer_with_free_callback(strlen(copy),
	                                                       copy, free);
	if (!r) {
		free(copy);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", "text/plain");
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result reply_json(struct MHD_Connection *c, char *json)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer_with_free_callback(strlen(json),
	                                                       json, free);
	if (!r) {
		free(json);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", "application/json");
	MHD_add_response_header(r, "Cache-Control", "no-store");
	ret = MHD_queue_response(c, 200, r);
	MHD_destroy_response(r);
	return ret;
}

/* A decimal number, digits only, at most max. */
static bool parse_decimal(const char *v, uint64_t max, uint64_t *ret)
{
	uint64_t n = 0;

	if (!v || !*v || strlen(v) > 20)
		return false;
	for (; *v; v++) {
		if (*v < '0' || *v > '9' ||
		    __builtin_mul_overflow(n, 10, &n) ||
		    __builtin_add_overflow(n, (uint64_t)(*v - '0'), &n))
			return false;
	}
	if (n > max)
		return false;
	*ret = n;
	return true;
}

/* A quota's {limit, remaining, window_ms, reset_ms}, or null. */
static json_t *quota_json(const struct quota_row *q)
{
	if (q->limit < 0 && q->remaining < 0)
		return json_null();
#define N(v) ((v) >= 0 ? json_integer(v) : json_null())
	return json_pack("{s:o, s:o, s:o, s:o}", "limit", N(q->limit),
	                 "remaining", N(q->remaining),
	                 "window_ms", N(q->window_ms),
	                 "reset_ms", N(q->reset_ms));
#undef N
}

static json_t *row_json_base(const struct queue_row *row, int64_t wall)
{
	return json_pack("{s:s, s:s?, s:f, s:f, s:s, s:s, s:i, s:i, s:i, s:o, "
	                 "s:o, s:i, s:i, s:I, s:o, s:I}",
	                 "destination", row->dest,
	                 "key", row->key[0] ? row->key : NULL,
	                 "rps", row->rps,
	                 "rate", row->rate,
	                 "rate_source", row->rate_source,
	                 "mode", row->mode,
	                 "concurrency", (json_int_t)row->concurrency,
	                 "burst", (json_int_t)row->burst,
	                 "weight", (json_int_t)row->weight,
	                 "learned_rps", row->rps_learned > 0
	                                ? json_real(row->rps_learned)
	                                : json_null(),
	                 "learned_concurrency", row->concurrency_learned
	                        ? json_integer(row->concurrency_learned)
	                        : json_null(),
	                 "waiting", (json_int_t)row->waiting,
	                 "in_flight", (json_int_t)row->in_flight,
	                 "paused_ms", (json_int_t)row->paused_ms,
	                 "paused_until", row->paused_ms
	                                 ? json_integer(wall + row->paused_ms)
	                                 : json_null(),
	                 "idle_ms", (json_int_t)row->idle_ms);
}

static json_t *row_json(const struct queue_row *row, int64_t wall)
{
	json_t *o = row_json_base(row, wall);

	if (o && (json_object_set_new(o, "quota_requests",
	                              quota_json(&row->requests)) < 0 ||
	          json_object_set_new(o, "quota_tokens",
	                              quota_json(&row->tokens)) < 0)) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* What CONNECT did: tunnels, interceptions, handshake failures. */
static json_t *tls_json(const struct admin *a)
{
	struct tunnels_stats st;

	tunnels_stats(a->tunnels, &st);
	return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
	                 "connects", (json_int_t)st.connects,
	                 "refused", (json_int_t)st.refused,
	                 "intercepted", (json_int_t)st.intercepted,
	                 "handshake_failed", (json_int_t)st.handshake_failed,
	                 "plain", (json_int_t)st.plain,
	                 "opaque", (json_int_t)st.opaque,
	                 "leaves_minted", (json_int_t)st.leaves_minted,
	                 "open", (json_int_t)st.open);
}

static char *page_json(const struct admin *a, const struct queues_page *pg)
{
	json_t *list = json_array(), *root;
	int64_t wall = clock_wall_ms();
	char *s;

	if (!list)
		return NULL;
	for (unsigned i = 0; i < pg->n; i++) {
		json_t *o = row_json(&pg->rows[i], wall);

		if (!o || json_array_append_new(list, o) < 0) {
			json_decref(list);
			return NULL;
		}
	}
	root = json_pack("{s:I, s:i, s:i, s:I, s:I, s:I, s:I, s:I, s:I, s:I, "
	                 "s:I, s:I, s:o}",
	                 "queues", (json_int_t)pg->c.queues,
	                 "waiting", (json_int_t)pg->c.waiting,
	                 "in_flight", (json_int_t)pg->c.in_flight,
	                 "requests", (json_int_t)pg->c.requests,
	                 "attempts", (json_int_t)pg->c.attempts,
	                 "retries", (json_int_t)pg->c.retries,
	                 "queue_full", (json_int_t)pg->c.queue_full,
	                 "hopeless", (json_int_t)pg->c.hopeless,
	                 "learn_bad_values", (json_int_t)pg->c.learn_bad,
	                 "overflow", (json_int_t)pg->c.overflow,
	                 "max_queues", (json_int_t)a->cfg->max_queues,
	                 "engine_us", (json_int_t)pg->engine_us,
	                 "list", list);
	if (!root || (a->tunnels &&
	              json_object_set_new(root, "tls", tls_json(a)) < 0)) {
		json_decref(root);
		return NULL;
	}
	if (pg->more && pg->n > 0) {
		char next[24];

		snprintf(next, sizeof(next), "%" PRIu64,
		         pg->rows[pg->n - 1].id);
		if (json_object_set_new(root, "next", json_string(next)) < 0) {
			json_decref(root);
			return NULL;
		}
	}
	s = json_dumps(root, JSON_INDENT(2));
	json_decref(root);
	return s;
}

/* GET /queues?limit=N&after=CURSOR: one page, see engine_queues_page. */
static enum MHD_Result reply_queues(struct admin *a, struct MHD_Connection *c)
{
	const char *lv = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND,
	                                             "limit");
	const char *av = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND,
	                                             "after");
	uint64_t limit = ENGINE_PAGE_DEFAULT, after = 0;
	struct queues_page pg = { .after = 0 };
	char *json;
	int r;

	if (lv && !parse_decimal(lv, ENGINE_PAGE_MAX, &limit))
		return reply_error(c, 400, "invalid_limit",
		                   "limit must be an integer from 1 to 10000");
	if (limit == 0)
		return reply_error(c, 400, "invalid_limit",
		                   "limit must be an integer from 1 to 10000");
	if (av && !parse_decimal(av, UINT64_MAX, &after))
		return reply_error(c, 400, "invalid_cursor",
		                   "after must be the 'next' of an earlier "
		                   "page");
	pg.after = after;
	pg.limit = (unsigned)limit;
	pg.rows = calloc(pg.limit, sizeof(*pg.rows));
	if (!pg.rows)
		return reply_error(c, 503, "overloaded", "out of memory");
	r = engine_queues_page(a->engine, &pg);
	json = r == 0 ? page_json(a, &pg) : NULL;
	free(pg.rows);
	if (r == -ETIMEDOUT)
		return reply_error(c, 503, "busy",
		                   "the engine did not answer in time");
	if (!json)
		return reply_error(c, 503, "overloaded", "out of memory");
	return reply_json(c, json);
}

/*
 * GET /metrics: the engine copies its counters between two rounds, in
 * O(queues); the rest is read here and formatted as Prometheus text.
 */
static enum MHD_Result reply_metrics(struct admin *a, struct MHD_Connection *c)
{
	const struct config *cfg = a->cfg;
	struct metrics_input in = { .version = PACKAGE_VERSION };
	struct engine_metrics m = { 0 };
	struct admin_sources src;
	struct MHD_Response *r;
	enum MHD_Result ret;
	size_t len;
	char *text;
	int err;

	pthread_mutex_lock(&a->lock);
	src = a->src;
	pthread_mutex_unlock(&a->lock);
	m.cap_dests = cfg->metrics.max_destinations + 1;
	m.dests = calloc(m.cap_dests, sizeof(*m.dests));
	if (cfg->metrics.per_key) {
		m.cap_keys = cfg->metrics.max_keys;
		m.keys = calloc(m.cap_keys, sizeof(*m.keys));
	}
	if (!m.dests || (cfg->metrics.per_key && !m.keys)) {
		free(m.dests);
		free(m.keys);
		return reply_error(c, 503, "overloaded", "out of memory");
	}
	err = engine_metrics(a->engine, &m);
	if (err < 0) {
		free(m.dests);
		free(m.keys);
		return reply_error(c, 503, "busy",
		                   "the engine did not answer in time");
	}
	in.eng = &m;
	in.per_key = cfg->metrics.per_key;
	if (src.jobrun && a->store) {
		in.have_jobs = true;
		jobrun_pending(src.jobrun, &in.jobs);
		jobs_stats(a->store, &in.store);
	}
	if (src.delivery) {
		in.have_delivery = true;
		delivery_stats(src.delivery, &in.delivery);
	}
	if (a->tunnels) {
		in.have_tls = true;
		tunnels_stats(a->tunnels, &in.tls);
	}
	if (src.reloads)
		in.reloads = atomic_load(src.reloads);
	if (src.reload_failures)
		in.reload_failures = atomic_load(src.reload_failures);
	text = metrics_text(&in, &len);
	free(m.dests);
	free(m.keys);
	if (!text)
		return reply_error(c, 503, "overloaded", "out of memory");
	r = MHD_create_response_from_buffer_with_free_callback(len, text, free);
	if (!r) {
		free(text);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type",
	                        "text/plain; version=0.0.4; charset=utf-8");
	MHD_add_response_header(r, "Cache-Control", "no-store");
	ret = MHD_queue_response(c, 200, r);
	MHD_destroy_response(r);
	return ret;
}

/* POST /reload: main reloads; the answer says how it went. */
static enum MHD_Result reply_reload(struct admin *a, struct MHD_Connection *c)
{
	char msg[1024], restart[512];
	admin_reload_fn *fn;
	json_t *o, *names;
	void *arg;
	char *json;
	int r;

	pthread_mutex_lock(&a->lock);
	fn = a->reload;
	arg = a->reload_arg;
	pthread_mutex_unlock(&a->lock);
	if (!fn)
		return reply_error(c, 404, "not_found",
		                   "no such admin endpoint");
	msg[0] = restart[0] = '\0';
	r = fn(arg, msg, sizeof(msg), restart, sizeof(restart));
	if (r == -EBUSY)
		return reply_error(c, 503, "reload_in_progress",
		                   "a reload is under way; try again");
	if (r == -EINVAL)
		return reply_error(c, 400, "invalid_configuration", msg);
	if (r < 0)
		return reply_error(c, 503, "reload_failed",
		                   msg[0] ? msg : "the reload failed");
	names = json_array();
	for (char *p = restart, *end; names && *p; p = end) {
		end = strchr(p, ',');
		if (!end)
			end = p + strlen(p);
		json_array_append_new(names, json_stringn(p, (size_t)(end - p)));
		while (*end == ',' || *end == ' ')
			end++;
	}
	o = json_pack("{s:b, s:o*}", "reloaded", 1, "restart_needed", names);
	json = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (!json)
		return reply_error(c, 503, "overloaded", "out of memory");
	return reply_json(c, json);
}

/* GET /jobs/<id>: never the request's fields or body (credentials). */
static enum MHD_Result reply_job(struct admin *a, struct MHD_Connection *c,
                                 const char *id)
{
	struct job *jb = NULL;
	char *json;
	int r;

	if (!job_id_valid(id))
		return reply_error(c, 400, "invalid_job_id",
		                   "a job id is 'job_' and 44 lower-case hex "
		                   "digits");
	if (!a->store)
		return reply_error(c, 404, "job_not_found", "no such job");
	r = jobs_get(a->store, id, &jb);
	if (r == -ENOENT)
		return reply_error(c, 404, "job_not_found", "no such job");
	if (r < 0)
		return reply_error(c, 503, "job_store_unavailable",
		                   "the job store cannot be read");
	json = job_to_json(jb);
	job_free(jb);
	if (!json)
		return reply_error(c, 503, "overloaded", "out of memory");
	return reply_json(c, json);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c,
                                  const char *url, const char *method,
                                  const char *version,
                                  const char *upload_data,
                                  size_t *upload_data_size, void **ctx)
{
	struct admin *a = cls;
	static int started;
	bool get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;

	take_config(a);
	/* A head the byte checks refused (wire.c): say why, and close. */
	if (!*ctx && strcmp(method, WIRE_REJECT_METHOD) == 0) {
		const struct wire_error *we = wire_rejection(conn_fd(c));

		if (we)
			return reply_error(c, we->status, we->code,
			                   we->message);
	}
	/* Answer on the second call, so keep-alive survives. */
	if (!*ctx) {
		const char *cl = MHD_lookup_connection_value(
			c, MHD_HEADER_KIND, "Content-Length");

		/* A body comes at no less than min_body_rate. */
		if ((cl && strcmp(cl, "0") != 0) ||
		    MHD_lookup_connection_value(c, MHD_HEADER_KIND,
		                                "Transfer-Encoding"))
			wire_body_clock(conn_fd(c), true);
		*ctx = &started;
		return MHD_YES;
	}
	if (*upload_data_size) {
		*upload_data_size = 0;
		return MHD_YES;
	}
	wire_body_clock(conn_fd(c), false); /* the body is whole */
	if ((strcmp(url, "/queues") == 0 || strncmp(url, "/jobs/", 6) == 0 ||
	     strcmp(url, "/jobs") == 0 || strcmp(url, "/reload") == 0 ||
	     strcmp(url, "/metrics") == 0) && !token_ok(a, c))
		return reply_unauthorized(c);
	if (strcmp(url, "/metrics") == 0) {
		if (!get)
			return reply_error(c, 405, "method_not_allowed",
			                   "use GET");
		return reply_metrics(a, c);
	}
	if (strcmp(url, "/reload") == 0) {
		if (strcmp(method, "POST") != 0)
			return reply_error(c, 405, "method_not_allowed",
			                   "use POST");
		return reply_reload(a, c);
	}
	if (strcmp(url, "/healthz") == 0) {
		if (!get)
			return reply_error(c, 405, "method_not_allowed",
			                   "use GET");
		return reply_text(c, 200, "ok\n");
	}
	if (strcmp(url, "/queues") == 0) {
		if (!get)
			return reply_error(c, 405, "method_not_allowed",
			                   "use GET");
		return reply_queues(a, c);
	}
	if (strncmp(url, "/jobs/", 6) == 0) {
		if (!get)
			return reply_error(c, 405, "method_not_allowed",
			                   "use GET");
		return reply_job(a, c, url + 6);
	}
	return reply_error(c, 404, "not_found", "no such admin endpoint");
}

/*
 * Admin connections get the proxy's byte checks too: a head is parsed
 * only once whole, so admin_timeout is a header deadline per request.
 */
static void on_connection(void *cls, struct MHD_Connection *c,
                          void **socket_ctx,
                          enum MHD_ConnectionNotificationCode code)
{
	struct admin *a = cls;
	const union MHD_ConnectionInfo *ci;

	(void)socket_ctx;
	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
	if (!ci)
		return;
	if (code == MHD_CONNECTION_NOTIFY_CLOSED)
		wire_detach(ci->connect_fd);
	else if (wire_attach(ci->connect_fd, &a->wire) < 0)
		shutdown(ci->connect_fd, SHUT_RDWR); /* never unchecked */
}

struct admin *admin_start(const struct config *cfg, int fd,
                          struct engine *e, struct jobs *store,
                          const struct tunnels *tunnels,
                          const struct admin_token *token)
{
	unsigned timeout_s = (unsigned)((cfg->admin_timeout + 999) / 1000);

	struct admin *a;

	a = calloc(1, sizeof(*a));
	if (!a) {
		close(fd);
		return NULL;
	}
	a->cfg = config_ref(cfg);
	pthread_mutex_init(&a->lock, NULL);
	a->wire = (struct wire_limits){
		.max_head = ADMIN_POOL - 512,
		.min_body_rate = cfg->min_body_rate,
		.body_grace_ms = cfg->admin_timeout,
	};
	a->engine = e;
	a->tunnels = tunnels;
	a->store = store;
	if (token)
		a->token = *token;
	/*
	 * Its own budget, apart from the proxy's: a client that opens idle
	 * connections holds at most ADMIN_PER_IP_LIMIT, for admin_timeout.
	 * Clients outside admin_allow are answered 403 (not dropped), so
	 * they see why.
	 */
	a->mhd = MHD_start_daemon(
		MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC,
		0, accept_policy, a, on_request, a,
		MHD_OPTION_LISTEN_SOCKET, fd,
		MHD_OPTION_CONNECTION_LIMIT, ADMIN_CONNECTION_LIMIT,
		MHD_OPTION_PER_IP_CONNECTION_LIMIT, ADMIN_PER_IP_LIMIT,
		MHD_OPTION_CONNECTION_TIMEOUT, timeout_s ? timeout_s : 1u,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)ADMIN_POOL,
		MHD_OPTION_NOTIFY_CONNECTION, on_connection, a,
		MHD_OPTION_END);
	if (!a->mhd) {
		close(fd);
		admin_free(a);
		return NULL;
	}
	return a;
}

void admin_free(struct admin *a)
{
	if (!a)
		return;
	if (a->mhd)
		MHD_stop_daemon(a->mhd);
	OPENSSL_cleanse(&a->token, sizeof(a->token));
	OPENSSL_cleanse(&a->next_token, sizeof(a->next_token));
	config_slot_done(&a->cfg_next);
	config_free(a->cfg);
	pthread_mutex_destroy(&a->lock);
	free(a);
}

/*
 * config.c - sluice.yaml: built-in defaults, the syntax of values
 * (durations, sizes, hosts, patterns), reading the YAML stream, and the
 * lookups the daemon makes. The walk of the document, with its key tables,
 * is in config_parse.c.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "config.h"
#include "config_parse.h"

#define RANK_EXACT 1000           /* above 2 * any host suffix length + 1 */

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Numbers, durations, sizes */

const char *config_decimal_parse(const char *s, struct decimal *ret)
{
	struct decimal d = { 0, 0, 1 };
	const char *last;

	if (*s < '0' || *s > '9')
		return NULL;
	for (; *s >= '0' && *s <= '9'; s++)
		if (__builtin_mul_overflow(d.whole, 10, &d.whole) ||
		    __builtin_add_overflow(d.whole, (uint64_t)(*s - '0'),
		                           &d.whole))
			return NULL;
	if (*s != '.') {
		*ret = d;
		return s;
	}
	s++;
	if (*s < '0' || *s > '9')
		return NULL;
	/* Trailing zeros change nothing: stop at the last non-zero digit. */
	for (last = s; *last >= '0' && *last <= '9'; last++)
		;
	while (last > s && last[-1] == '0')
		last--;
	for (; s < last; s++)
		if (__builtin_mul_overflow(d.den, 10, &d.den) ||
		    __builtin_mul_overflow(d.frac, 10, &d.frac) ||
		    __builtin_add_overflow(d.frac, (uint64_t)(*s - '0'),
		                           &d.frac))
			return NULL;
	while (*s >= '0' && *s <= '9')
		s++;
	*ret = d;
	return s;
}

struct unit {
	const char *name;
	uint64_t mult;
};

static const struct unit duration_units[] = {
	{ "", 1000 }, { "ms", 1 }, { "s", 1000 }, { "m", 60 * 1000 },
	{ "h", 3600 * 1000 }, { "d", 86400 * 1000 },
};

static const struct unit size_units[] = {
	{ "", 1 }, { "B", 1 },
	{ "KiB", 1ULL << 10 }, { "MiB", 1ULL << 20 }, { "GiB", 1ULL << 30 },
	{ "TiB", 1ULL << 40 },
	{ "KB", 1000 }, { "kB", 1000 }, { "MB", 1000 * 1000 },
	{ "GB", 1000 * 1000 * 1000 }, { "TB", 1000ULL * 1000 * 1000 * 1000 },
};

/* s as a whole number of units; fractions must come out whole. */
static int parse_units(const char *s, const struct unit *units, size_t n,
                       uint64_t *ret)
{
	struct decimal d;
	const char *end = config_decimal_parse(s, &d);
	uint64_t a, b;

	if (!end)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (strcmp(end, units[i].name) != 0)
			continue;
		if (__builtin_mul_overflow(d.whole, units[i].mult, &a) ||
		    __builtin_mul_overflow(d.frac, units[i].mult, &b) ||
		    b % d.den != 0 ||
		    __builtin_add_overflow(a, b / d.den, &a))
			return -EINVAL;
		*ret = a;
		return 0;
	}
	return -EINVAL;
}

int config_parse_duration(const char *s, int64_t *ret_ms)
{
	uint64_t v;

	if (parse_units(s, duration_units, ARRAY_SIZE(duration_units),
	                &v) < 0 || v > INT64_MAX)
		return -EINVAL;
	*ret_ms = (int64_t)v;
	return 0;
}

int config_parse_size(const char *s, uint64_t *ret_bytes)
{
	return parse_units(s, size_units, ARRAY_SIZE(size_units), ret_bytes);
}

/* Hosts, patterns, addresses */

/* "api.example.com": [A-Za-z0-9_-] labels, none empty. */
static bool host_valid(const char *h, size_t len)
{
	bool label = false;

	if (len == 0 || len > 253)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = h[i];

		if (c == '.') {
			if (!label)
				return false;
			label = false;
		} else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		           (c >= '0' && c <= '9') || c == '-' || c == '_') {
			label = true;
		} else {
			return false;
		}
	}
	return label;
}

/* A port: 1 to 5 digits, min..65535. */
static bool port_parse(const char *s, unsigned min, unsigned *ret)
{
	unsigned v = 0;
	size_t i;

	for (i = 0; s[i] >= '0' && s[i] <= '9' && i < 5; i++)
		v = v * 10 + (unsigned)(s[i] - '0');
	if (i == 0 || s[i] || v < min || v > 65535)
		return false;
	*ret = v;
	return true;
}

static bool ipv6_valid(const char *s, size_t len)
{
	char buf[INET6_ADDRSTRLEN];
	struct in6_addr a;

	if (len == 0 || len >= sizeof(buf))
		return false;
	memcpy(buf, s, len);
	buf[len] = '\0';
	return inet_pton(AF_INET6, buf, &a) == 1;
}

/* "ADDR:PORT" or "[v6]:PORT", port 0..65535 (0: ephemeral). */
bool config_listen_valid(const char *s)
{
	const char *sep;
	unsigned port;

	if (s[0] == '[') {
		sep = strchr(s, ']');
		return sep && sep[1] == ':' &&
		       ipv6_valid(s + 1, (size_t)(sep - s - 1)) &&
		       port_parse(sep + 2, 0, &port);
	}
	sep = strrchr(s, ':');
	return sep && host_valid(s, (size_t)(sep - s)) &&
	       port_parse(sep + 1, 0, &port);
}

/* A bare v6 address has no port: "::1:80" is an address. */
int config_pattern_parse(const char *s, struct dest_rule *ret)
{
	char *pat, *h, *sep;
	const char *port_s = NULL;
	size_t hlen;
	unsigned port = 0;
	bool wild = false;

	pat = strdup(s);
	if (!pat)
		return -ENOMEM;
	for (h = pat; *h; h++)
		if (*h >= 'A' && *h <= 'Z')
			*h = (char)(*h - 'A' + 'a');
	h = pat;
	sep = strchr(pat, ':');
	if (pat[0] == '[') {
		h = pat + 1;
		sep = strchr(h, ']');
		if (!sep || (sep[1] && sep[1] != ':'))
			goto invalid;
		hlen = (size_t)(sep - h);
		if (!ipv6_valid(h, hlen))
			goto invalid;
		if (sep[1])
			port_s = sep + 2;
	} else if (sep && strchr(sep + 1, ':')) {
		hlen = strlen(pat);
		if (!ipv6_valid(pat, hlen))
			goto invalid;
	} else {
		hlen = sep ? (size_t)(sep - pat) : strlen(pat);
		if (sep)
			port_s = sep + 1;
		wild = hlen > 2 && pat[0] == '*' && pat[1] == '.';
		if (!host_valid(pat + (wild ? 2 : 0), hlen - (wild ? 2 : 0)))
			goto invalid;
	}
	if (port_s && !port_parse(port_s, 1, &port))
		goto invalid;
	ret->host = strndup(h, hlen);
	if (!ret->host) {
		free(pat);
		return -ENOMEM;
	}
	ret->pattern = pat;
	ret->port = port;
	ret->wildcard = wild;
	return 0;
invalid:
	free(pat);
	return -EINVAL;
}

bool config_header_valid(const char *s)
{
	static const char tchar[] = "!#$%&'*+-.^_`|~";

	for (const char *c = s; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		      (*c >= '0' && *c <= '9') || strchr(tchar, *c)))
			return false;
	return *s != '\0';
}

void config_rule_done(struct dest_rule *r)
{
	free(r->pattern);
	free(r->host);
}

void config_strv_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

int config_replace_str(char **dst, const char *s)
{
	char *v = NULL;

	if (s) {
		v = strdup(s);
		if (!v)
			return -ENOMEM;
	}
	free(*dst);
	*dst = v;
	return 0;
}

/* Defaults */

static int cidrs_set(struct cidr_list *l, const char *const *v, size_t n)
{
	struct cidr c;

	for (size_t i = 0; i < n; i++)
		if (cidr_parse(v[i], &c) < 0 || cidr_list_add(l, &c) < 0)
			return -ENOMEM;
	return 0;
}

static int strv_set(char ***ret, size_t *ret_n, const char *const *v,
                    size_t n)
{
	*ret = calloc(n, sizeof(**ret));
	if (!*ret)
		return -ENOMEM;
	for (*ret_n = 0; *ret_n < n; (*ret_n)++) {
		(*ret)[*ret_n] = strdup(v[*ret_n]);
		if (!(*ret)[*ret_n])
			return -ENOMEM;
	}
	return 0;
}

struct config *config_new(void)
{
	static const char *const allow[] = { "127.0.0.0/8", "::1/128" };
	static const char *const deny[] = {
		"169.254.169.254/32",   /* AWS, GCP, Azure, OpenStack... */
		"fd00:ec2::254/128",    /* AWS over IPv6 */
		"100.100.100.200/32",   /* Alibaba Cloud */
		"169.254.170.2/32",     /* AWS ECS task metadata */
		/* 169.254.169.254 in IPv6: IPv4-compatible, NAT64 */
		"::a9fe:a9fe/128",
		"64:ff9b::a9fe:a9fe/128",
	};
	static const char *const headers[] = {
		"Authorization", "X-Api-Key", "Api-Key"
	};
	static const unsigned on[] = { 429, 502, 503, 504 };
	static const int64_t schedule[] = {
		0, 60 * 1000, 5 * 60 * 1000, 15 * 60 * 1000, 3600 * 1000
	};
	struct config *cfg = calloc(1, sizeof(*cfg));

	if (!cfg)
		return NULL;
	cfg->max_in_flight = 512;
	cfg->max_queued = 100000;
	cfg->max_queues = 100000;
	cfg->max_body = 10 << 20;
	cfg->max_header = 8 << 10;
	cfg->sync_timeout = 300 * 1000;
	cfg->drain_timeout = 30 * 1000;
	cfg->client_timeout = 60 * 1000;
	cfg->min_body_rate = 1024;
	cfg->admin_timeout = 10 * 1000;
	cfg->log_level = LOG_LEVEL_INFO;
	cfg->defaults.limits = (struct limits){
		.rps = 2, .concurrency = 2, .burst = 1, .max_queued = 10000,
		.aggregate_rps = 0, .aggregate_concurrency = 0, .weight = 1,
	};
	cfg->defaults.queue_by = QUEUE_BY_CREDENTIAL;
	cfg->learn.ezthrottle_headers = true;
	cfg->learn.retry_after = true;
	cfg->learn.ratelimit_headers = true;
	cfg->learn.scope = LEARN_SCOPE_QUEUE;
	cfg->learn.min_rps = 0.1;
	cfg->learn.max_rps = 10000;
	cfg->learn.max_concurrency = 1024;
	cfg->learn.idle_reset = 300 * 1000;
	cfg->retry.max_retries = 5;
	cfg->retry.backoff_base = 500;
	cfg->retry.backoff_cap = 30 * 1000;
	cfg->retry.max_retry_after = 300 * 1000;
	cfg->webhooks.timeout = 10 * 1000;
	cfg->webhooks.give_up_after = 24 * 3600 * 1000;
	cfg->jobs.retain = 7 * 86400 * 1000LL;
	cfg->jobs.dedupe_anonymous = false;
	cfg->jobs.max_pending = 100000;
	cfg->jobs.max_pending_bytes = 1ULL << 30;
	cfg->tls.intercept = true;

	cfg->retry.on = malloc(sizeof(on));
	cfg->webhooks.retry_schedule = malloc(sizeof(schedule));
	if (!cfg->retry.on || !cfg->webhooks.retry_schedule)
		goto fail;
	memcpy(cfg->retry.on, on, sizeof(on));
	cfg->retry.n_on = ARRAY_SIZE(on);
	memcpy(cfg->webhooks.retry_schedule, schedule, sizeof(schedule));
	cfg->webhooks.n_retry_schedule = ARRAY_SIZE(schedule);
	if (config_replace_str(&cfg->listen, "127.0.0.1:8080") < 0 ||
	    config_replace_str(&cfg->admin_listen, "127.0.0.1:8081") < 0 ||
	    config_replace_str(&cfg->state_dir, "/var/lib/sluice") < 0 ||
	    cidrs_set(&cfg->allow, allow, ARRAY_SIZE(allow)) < 0 ||
	    cidrs_set(&cfg->admin_allow, allow, ARRAY_SIZE(allow)) < 0 ||
	    cidrs_set(&cfg->deny_destinations, deny, ARRAY_SIZE(deny)) < 0 ||
	    strv_set(&cfg->defaults.key_headers, &cfg->defaults.n_key_headers,
	             headers, ARRAY_SIZE(headers)) < 0)
		goto fail;
	return cfg;
fail:
	config_free(cfg);
	return NULL;
}

void config_free(struct config *cfg)
{
	if (!cfg)
		return;
	free(cfg->path);
	free(cfg->listen);
	free(cfg->admin_listen);
	free(cfg->state_dir);
	cidr_list_done(&cfg->allow);
	cidr_list_done(&cfg->deny_destinations);
	cidr_list_done(&cfg->admin_allow);
	free(cfg->admin_token_file);
	config_strv_free(cfg->defaults.key_headers,
	                 cfg->defaults.n_key_headers);
	free(cfg->retry.on);
	for (size_t i = 0; i < cfg->n_destinations; i++)
		config_rule_done(&cfg->destinations[i]);
	free(cfg->destinations);
	free(cfg->keys);
	free(cfg->webhooks.secret_file);
	free(cfg->webhooks.secondary_secret_file);
	free(cfg->webhooks.retry_schedule);
	config_strv_free(cfg->tls.tunnel, cfg->tls.n_tunnel);
	free(cfg->tls.upstream_ca_file);
	free(cfg->redis.url);
	free(cfg);
}

void config_errors_done(struct config_errors *errs)
{
	for (size_t i = 0; i < errs->n; i++)
		free(errs->msgs[i]);
	free(errs->msgs);
	errs->msgs = NULL;
	errs->n = 0;
}

/* Loading */

static int open_file(const char *path, FILE **ret)
{
	struct stat st;
	FILE *f;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		int e = errno;

		close(fd);
		return -e;
	}
	if (S_ISDIR(st.st_mode)) {
		close(fd);
		return -EISDIR;
	}
	f = fdopen(fd, "r");
	if (!f) {
		int e = errno;

		close(fd);
		return -e;
	}
	*ret = f;
	return 0;
}

static int errors_push(struct config_errors *errs, char *msg)
{
	char **v = realloc(errs->msgs, (errs->n + 1) * sizeof(*v));

	if (!v) {
		free(msg);
		return -ENOMEM;
	}
	errs->msgs = v;
	errs->msgs[errs->n++] = msg;
	return 0;
}

int config_errors_vadd(struct config_errors *errs, const char *path,
                       yaml_mark_t mark, const char *fmt, va_list ap)
{
	char *msg, *full;
	int r = vasprintf(&msg, fmt, ap);

	if (r < 0)
		return -ENOMEM;
	r = asprintf(&full, "%s:%zu:%zu: %s", path, mark.line + 1,
	             mark.column + 1, msg);
	free(msg);
	if (r < 0)
		return -ENOMEM;
	return errors_push(errs, full);
}

__attribute__((format(printf, 4, 5)))
static int error_at(struct config_errors *errs, const char *path,
                    yaml_mark_t mark, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = config_errors_vadd(errs, path, mark, fmt, ap);
	va_end(ap);
	return r;
}

/* The line and column of byte offset of f (reader errors have no mark). */
static yaml_mark_t offset_mark(FILE *f, size_t offset)
{
	yaml_mark_t m = { 0 };

	rewind(f);
	for (; m.index < offset; m.index++) {
		int c = getc(f);

		if (c == EOF)
			break;
		m.column++;
		if (c == '\n') {
			m.line++;
			m.column = 0;
		}
	}
	return m;
}

/* Reports the parser's error. -EINVAL, or -ENOMEM. */
static int syntax_error(const yaml_parser_t *parser, FILE *f,
                        const char *path, struct config_errors *errs)
{
	const char *problem = parser->problem ? parser->problem : "error";
	int r;

	if (parser->error == YAML_MEMORY_ERROR)
		return -ENOMEM;
	if (parser->error == YAML_READER_ERROR)
		r = error_at(errs, path, offset_mark(f, parser->problem_offset),
		             "%s", problem);
	else if (parser->context)
		r = error_at(errs, path, parser->problem_mark, "%s (%s started "
		             "at line %zu, column %zu)", problem, parser->context,
		             parser->context_mark.line + 1,
		             parser->context_mark.column + 1);
	else
		r = error_at(errs, path, parser->problem_mark, "%s", problem);
	return r < 0 ? r : -EINVAL;
}

/* Reads f, one YAML document or none, into cfg. As config_load(). */
static int load_stream(struct config *cfg, const char *path, FILE *f,
                       struct config_errors *errs)
{
	yaml_parser_t parser;
	yaml_document_t doc;
	yaml_node_t *root;
	bool empty;
	int r, r2 = 0;

	if (!yaml_parser_initialize(&parser))
		return -ENOMEM;
	yaml_parser_set_input_file(&parser, f);
	if (!yaml_parser_load(&parser, &doc)) {
		r = syntax_error(&parser, f, path, errs);
		goto out;
	}
	empty = !yaml_document_get_root_node(&doc);
	r = config_walk(cfg, path, &doc, errs);
	yaml_document_delete(&doc);
	if (empty || r == -ENOMEM)
		goto out;
	/* What follows the document must be the end of the stream. */
	if (!yaml_parser_load(&parser, &doc)) {
		r2 = syntax_error(&parser, f, path, errs);
	} else {
		root = yaml_document_get_root_node(&doc);
		if (root && error_at(errs, path, root->start_mark, "only one "
		                     "YAML document is allowed") < 0)
			r2 = -ENOMEM;
		else if (root)
			r2 = -EINVAL;
		yaml_document_delete(&doc);
	}
	if (r == 0 || r2 == -ENOMEM)
		r = r2;
out:
	yaml_parser_delete(&parser);
	return r;
}

int config_load(struct config *cfg, const char *path,
                struct config_errors *errs)
{
	FILE *f = NULL;
	int r = open_file(path, &f);

	if (r < 0) {
		char *msg;

		if (asprintf(&msg, "%s: %s", path, strerror(-r)) < 0 ||
		    errors_push(errs, msg) < 0)
			return -ENOMEM;
		return r;
	}
	r = config_replace_str(&cfg->path, path);
	if (r == 0)
		r = load_stream(cfg, path, f, errs);
	fclose(f);
	return r;
}

/* Lookups */

const struct dest_rule *config_match_destination(const struct config *cfg,
                                                 const char *host,
                                                 unsigned port)
{
	const struct dest_rule *best = NULL;
	size_t hlen = strlen(host), best_rank = 0;

	for (size_t i = 0; i < cfg->n_destinations; i++) {
		const struct dest_rule *r = &cfg->destinations[i];
		const char *suffix = r->host + 1;   /* ".stripe.com" */
		size_t rank, slen = strlen(suffix);

		if (r->port && r->port != port)
			continue;
		/*
		 * Rank: exact host above every wildcard, a longer suffix
		 * above a shorter one, then a rule with the port above one
		 * without.
		 */
		if (!r->wildcard && !strcmp(r->host, host))
			rank = 2 * RANK_EXACT + (r->port != 0);
		else if (r->wildcard && hlen > slen &&
		         !strcmp(host + hlen - slen, suffix))
			rank = 2 * slen + (r->port != 0);
		else
			continue;
		if (rank > best_rank) {
			best = r;
			best_rank = rank;
		}
	}
	return best;
}

void config_limits_for(const struct config *cfg, const char *host,
                       unsigned port, struct limits *ret)
{
	const struct dest_rule *r = config_match_destination(cfg, host, port);
	struct limits l = cfg->defaults.limits;

	if (r) {
		if (r->set & LIMIT_RPS)
			l.rps = r->limits.rps;
		if (r->set & LIMIT_CONCURRENCY)
			l.concurrency = r->limits.concurrency;
		if (r->set & LIMIT_BURST)
			l.burst = r->limits.burst;
		if (r->set & LIMIT_MAX_QUEUED)
			l.max_queued = r->limits.max_queued;
		if (r->set & LIMIT_AGGREGATE_RPS)
			l.aggregate_rps = r->limits.aggregate_rps;
		if (r->set & LIMIT_AGGREGATE_CONCURRENCY)
			l.aggregate_concurrency =
				r->limits.aggregate_concurrency;
		if (r->set & LIMIT_WEIGHT)
			l.weight = r->limits.weight;
	}
	*ret = l;
}

/*
 * config_keys.c - the keys of sluice.yaml: one table per map, a row per
 * key (config_parse.h), the value checks with their messages, and the
 * sections that are more than a table (learn, destinations, keys).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "config.h"
#include "config_parse.h"
#include "config_value.h"

/*
 * Values. A value function checks the text v of a scalar node and stores
 * it in slot: the field of a key or an entry of a list.
 */

/* A required, non-empty string. */
static int v_path(struct parse *p, const struct key_def *k,
                  yaml_node_t *node, const char *v, void *slot)
{
	if (!*v || parse_is_null(node))
		return parse_bad_value(p, node, "'%s' must be a path", k->name);
	return config_replace_str(slot, v);
}

/* An optional string: null or "" unsets it. */
static int v_opt_path(struct parse *p, const struct key_def *k,
                      yaml_node_t *node, const char *v, void *slot)
{
	return config_replace_str(slot, parse_is_null(node) || !*v ? NULL : v);
}

static int v_redis_url(struct parse *p, const struct key_def *k,
                       yaml_node_t *node, const char *v, void *slot)
{
	if (!parse_is_null(node) && *v && strncmp(v, "redis://", 8) != 0 &&
	    strncmp(v, "rediss://", 9) != 0 && strncmp(v, "unix://", 7) != 0)
		return parse_bad_value(p, node,
		                       "'%s' must be a redis://, rediss:// "
		                       "or unix:// URL", k->name);
	return v_opt_path(p, k, node, v, slot);
}

static int v_listen(struct parse *p, const struct key_def *k,
                    yaml_node_t *node, const char *v, void *slot)
{
	if (!config_listen_valid(v))
		return parse_bad_value(p, node, "'%s' must be ADDR:PORT or "
		                       "[ADDR]:PORT with a port 0..65535",
		                       k->name);
	return config_replace_str(slot, v);
}

static int v_bool(struct parse *p, const struct key_def *k,
                  yaml_node_t *node, const char *v, void *slot)
{
	if (strcmp(v, "true") != 0 && strcmp(v, "false") != 0)
		return parse_bad_value(p, node, "'%s' must be true or false",
		                       k->name);
	*(bool *)slot = !strcmp(v, "true");
	return 0;
}

/* An integer in k->min..k->max. */
static int v_uint(struct parse *p, const struct key_def *k,
                  yaml_node_t *node, const char *v, void *slot)
{
	struct decimal d;
	const char *end = config_decimal_parse(v, &d);

	if (!end || *end || d.frac || (double)d.whole < k->min)
		return parse_bad_value(p, node,
		                       "'%s' must be an integer >= %.0f",
		                       k->name, k->min);
	if ((double)d.whole > k->max)
		return parse_bad_value(p, node, "'%s' must be at most %.0f",
		                       k->name, k->max);
	*(unsigned *)slot = (unsigned)d.whole;
	return 0;
}

/* A number > 0 and <= k->max, fractions allowed. */
static int v_rate(struct parse *p, const struct key_def *k,
                  yaml_node_t *node, const char *v, void *slot)
{
	struct decimal d;
	const char *end = config_decimal_parse(v, &d);
	double x = 0;

	if (end)
		x = (double)d.whole + (double)d.frac / (double)d.den;
	if (!end || *end || !(x > 0))
		return parse_bad_value(p, node, "'%s' must be a number > 0",
		                       k->name);
	if (x > k->max)
		return parse_bad_value(p, node, "'%s' must be at most %.0f",
		                       k->name, k->max);
	*(double *)slot = x;
	return 0;
}

/* A duration of at least k->min ms (0 or 1). */
static int v_duration(struct parse *p, const struct key_def *k,
                      yaml_node_t *node, const char *v, void *slot)
{
	int64_t ms;

	if (config_parse_duration(v, &ms) < 0)
		return parse_bad_value(p, node,
		                       "'%s'%s must be a duration such as "
		                       "500ms, 30s, 5m or 24h", k->name,
		                       ENTRY(k));
	if ((double)ms < k->min)
		return parse_bad_value(p, node, "'%s' must be a duration > 0",
		                       k->name);
	memcpy(slot, &ms, sizeof(ms));
	return 0;
}

/* A size bound as people write it: 0, 4KiB, 1MiB, 1GiB. */
static void size_text(double v, char *buf, size_t len)
{
	static const char *const unit[] = { "", "KiB", "MiB", "GiB", "TiB" };
	unsigned u = 0;

	while (u < 4 && v >= 1024 && v / 1024 == (double)(uint64_t)(v / 1024)) {
		v /= 1024;
		u++;
	}
	snprintf(buf, len, "%.0f%s", v, unit[u]);
}

static int v_size(struct parse *p, const struct key_def *k,
                  yaml_node_t *node, const char *v, void *slot)
{
	char lo[24], hi[24];
	uint64_t n;

	if (config_parse_size(v, &n) < 0)
		return parse_bad_value(p, node,
		                       "'%s' must be a size such as 65536, "
		                       "64KiB or 10MiB", k->name);
	/* Bounded sizes have k->max > 0. */
	if (k->max > 0 && ((double)n < k->min || (double)n > k->max)) {
		size_text(k->min, lo, sizeof(lo));
		size_text(k->max, hi, sizeof(hi));
		return parse_bad_value(p, node,
		                       "'%s' must be between %s and %s",
		                       k->name, lo, hi);
	}
	*(uint64_t *)slot = n;
	return 0;
}

/*
 * One of k->names, stored as its index. The enums of config.h have no
 * negative values, so GCC and Clang give them unsigned int, which an int
 * lvalue may access.
 */
_Static_assert(sizeof(enum log_level) == sizeof(int) &&
               sizeof(enum queue_by) == sizeof(int) &&
               sizeof(enum learn_scope) == sizeof(int), "enums are ints");

static int v_enum(struct parse *p, const struct key_def *k,
                  yaml_node_t *node, const char *v, void *slot)
{
	char list[128] = "";
	size_t i;

	for (i = 0; k->names[i]; i++) {
		if (!strcmp(v, k->names[i])) {
			*(int *)slot = (int)i;
			return 0;
		}
	}
	for (i = 0; k->names[i]; i++) {
		strncat(list, k->names[i], sizeof(list) - strlen(list) - 1);
		if (k->names[i + 1])
			strncat(list, k->names[i + 2] ? ", " : " or ",
			        sizeof(list) - strlen(list) - 1);
	}
	return parse_bad_value(p, node, "'%s' must be %s", k->name, list);
}

static int v_cidr(struct parse *p, const struct key_def *k,
                  yaml_node_t *node, const char *v, void *slot)
{
	if (cidr_parse(v, slot) < 0)
		return parse_bad_value(p, node,
		                       "'%s' entry must be a network such "
		                       "as 10.0.0.0/8 or ::1/128", k->name);
	return 0;
}

static int v_header(struct parse *p, const struct key_def *k,
                    yaml_node_t *node, const char *v, void *slot)
{
	if (!config_header_valid(v))
		return parse_bad_value(p, node,
		                       "'%s' entry must be a header name "
		                       "such as X-Api-Key", k->name);
	return config_replace_str(slot, v);
}

/* A destination pattern, stored lower-cased. */
static int v_pattern(struct parse *p, const struct key_def *k,
                     yaml_node_t *node, const char *v, void *slot)
{
	struct dest_rule rule;
	int r = config_pattern_parse(v, &rule);

	if (r == -EINVAL)
		return parse_bad_value(p, node,
		                       "'%s' entry must be a pattern such "
		                       "as api.example.com, *.example.com or "
		                       "host:port", k->name);
	if (r < 0)
		return r;
	free(rule.host);
	memcpy(slot, &rule.pattern, sizeof(rule.pattern));
	return 0;
}

static int v_status(struct parse *p, const struct key_def *k,
                    yaml_node_t *node, const char *v, void *slot)
{
	struct decimal d;
	const char *end = config_decimal_parse(v, &d);

	if (!end || *end || d.frac || d.whole < 100 || d.whole > 599)
		return parse_bad_value(p, node,
		                       "'%s' entry must be an HTTP status "
		                       "code 100..599", k->name);
	*(unsigned *)slot = (unsigned)d.whole;
	return 0;
}

/* The learn: section, then min_rps <= max_rps. */
static int parse_learn(struct parse *p, const struct key_def *k,
                       yaml_node_t *node, void *base)
{
	struct config *cfg = base;
	yaml_node_t *found[MAX_ROWS] = { 0 }, *min, *max;
	int r = parse_map(p, node, k->name, k->sub, base, NULL, found);

	if (r < 0 || cfg->learn.min_rps <= cfg->learn.max_rps)
		return r;
	min = parse_found_scalar(k->sub, found, "min_rps");
	max = parse_found_scalar(k->sub, found, "max_rps");
	if (min)
		return parse_bad_value(p, min,
		                       "'min_rps' must be <= max_rps (%g)",
		                       cfg->learn.max_rps);
	if (max)
		return parse_bad_value(p, max,
		                       "'max_rps' must be >= min_rps (%g)",
		                       cfg->learn.min_rps);
	return 0;
}

/*
 * The pairs of a map value (null: none) and a zeroed row of size bytes
 * for each (free() them). -EINVAL (reported) or -ENOMEM.
 */
static int map_rows(struct parse *p, const struct key_def *k,
                    yaml_node_t *node, size_t size,
                    yaml_node_pair_t **ret_pairs, size_t *ret_n,
                    void **ret_rows)
{
	yaml_node_pair_t *pr = NULL;
	size_t n = 0;
	void *rows;

	if (node->type == YAML_MAPPING_NODE) {
		pr = node->data.mapping.pairs.start;
		n = (size_t)(node->data.mapping.pairs.top - pr);
	} else if (!parse_is_null(node)) {
		parse_error_at(p, AT(node),
		               "'%s' must be a map, got %s", k->name,
		               parse_kind(node));
		return -EINVAL;
	}
	rows = calloc(n ? n : 1, size);
	if (!rows)
		return -ENOMEM;
	*ret_pairs = pr;
	*ret_n = n;
	*ret_rows = rows;
	return 0;
}

/*
 * The text of the key kn of a row of section (NULL: not text, reported)
 * and the row's context, "section.key", in ctx (CTX_MAX bytes).
 */
static const char *row_key(struct parse *p, const char *section,
                           yaml_node_t *kn, char *ctx)
{
	char in[32], buf[SHOW_MAX + 4];
	const char *s;

	snprintf(in, sizeof(in), " in '%s'", section);
	s = parse_key_text(p, in, kn);
	snprintf(ctx, CTX_MAX, "%s.%s", section, s ? parse_show(s, buf) : "?");
	return s;
}

/* True when one of v[0..n) has the host, port and kind of r. */
static bool rule_dup(const struct dest_rule *v, size_t n,
                     const struct dest_rule *r)
{
	for (size_t i = 0; i < n; i++)
		if (v[i].wildcard == r->wildcard && v[i].port == r->port &&
		    !strcmp(v[i].host, r->host))
			return true;
	return false;
}

/* destinations: pattern -> limits. The whole map replaces the rules. */
static int parse_destinations(struct parse *p, const struct key_def *k,
                              yaml_node_t *node, void *base)
{
	struct config *cfg = base;
	struct dest_rule *v;
	yaml_node_pair_t *pr;
	size_t n = 0, n_pairs;
	char buf[SHOW_MAX + 4], ctx[CTX_MAX];
	void *rows;
	int err = map_rows(p, k, node, sizeof(*v), &pr, &n_pairs, &rows);

	if (err < 0)
		return err;
	v = rows;
	for (size_t i = 0; i < n_pairs; i++) {
		yaml_node_t *kn = NODE(p, pr[i].key);
		const char *s = row_key(p, "destinations", kn, ctx);
		struct dest_rule *r = &v[n];
		int e = s ? config_pattern_parse(s, r) : -EINVAL;
		bool keep = e == 0;

		if (e == -ENOMEM)
			goto oom;
		if (s && e < 0)
			parse_error_at(p, AT(kn),
			               "'%s' is not a destination pattern "
			               "such as api.example.com, *.stripe.com "
			               "or host:port", parse_show(s, buf));
		if (keep && rule_dup(v, n, r)) {
			parse_error_at(p, AT(kn), "duplicate destination '%s'",
			               parse_show(s, buf));
			keep = false;
		}
		/* A bad pattern's limits are checked too, for their errors. */
		e = parse_map(p, NODE(p, pr[i].value), ctx, k->sub, r,
		              &r->set, NULL);
		if (keep) {
			n++;
		} else {
			config_rule_done(r);
			memset(r, 0, sizeof(*r));
		}
		if (e < 0)
			goto oom;
	}
	for (size_t i = 0; i < cfg->n_destinations; i++)
		config_rule_done(&cfg->destinations[i]);
	free(cfg->destinations);
	cfg->destinations = v;
	cfg->n_destinations = n;
	return 0;
oom:
	while (n > 0)
		config_rule_done(&v[--n]);
	free(v);
	return -ENOMEM;
}

/* 12 lower-case hex digits. */
static bool hash_valid(const char *s)
{
	size_t i;

	for (i = 0; s[i]; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' &&
		      s[i] <= 'f')))
			return false;
	return i == 12;
}

/* keys: key hash -> { weight }. The whole map replaces the rules. */
static int parse_keys(struct parse *p, const struct key_def *k,
                      yaml_node_t *node, void *base)
{
	struct config *cfg = base;
	struct key_rule *v;
	yaml_node_pair_t *pr;
	size_t n = 0, n_pairs;
	char buf[SHOW_MAX + 4], ctx[CTX_MAX];
	void *rows;
	int err = map_rows(p, k, node, sizeof(*v), &pr, &n_pairs, &rows);

	if (err < 0)
		return err;
	v = rows;
	for (size_t i = 0; i < n_pairs; i++) {
		yaml_node_t *kn = NODE(p, pr[i].key);
		yaml_node_t *vn = NODE(p, pr[i].value);
		const char *s = row_key(p, "keys", kn, ctx);
		yaml_node_t *found[MAX_ROWS] = { 0 };
		bool keep = s && hash_valid(s), dup = false;

		for (size_t j = 0; keep && j < n; j++)
			dup = dup || !strcmp(v[j].hash, s);
		if (s && !keep)
			parse_error_at(p, AT(kn), "'%s' is not a key hash (12 "
			               "lower-case hex digits)",
			               parse_show(s, buf));
		if (dup)
			parse_error_at(p, AT(kn), "duplicate key hash '%s'", s);
		keep = keep && !dup;
		v[n].weight = 0;
		if (parse_map(p, vn, ctx, k->sub, &v[n], NULL, found) < 0) {
			free(v);
			return -ENOMEM;
		}
		if (vn->type == YAML_MAPPING_NODE && !found[0])
			parse_error_at(p, AT(vn),
			               "missing key 'weight' in '%s'",
			               ctx);
		if (keep && v[n].weight) {
			memcpy(v[n].hash, s, sizeof(v[n].hash));
			n++;
		}
	}
	free(cfg->keys);
	cfg->keys = v;
	cfg->n_keys = n;
	return 0;
}

/* Tables */

#define C(f) offsetof(struct config, f)
#define END { .name = NULL }
#define MAP(n, fn, off, rows) { .name = n, .parse = fn, .offset = off, \
                                .sub = rows }
#define VAL(n, fn, off, lo, hi) { .name = n, .parse = parse_scalar, \
	.value = fn, .offset = off, .min = lo, .max = hi }
#define ENUM(n, off, v) { .name = n, .parse = parse_scalar, \
	.value = v_enum, .offset = off, .names = v }
#define LIST(n, f, n_f, fn, type, lo_n, strs) { .name = n, \
	.parse = parse_list, .value = fn, .offset = C(f), .n_offset = C(n_f), \
	.entry_size = sizeof(type), .min_n = lo_n, .strings = strs }
#define LIMIT(n, fn, base, f, lo, hi, b) { .name = n, \
	.parse = parse_scalar, .value = fn, \
	.offset = (base) + offsetof(struct limits, f), \
	.min = lo, .max = hi, .bit = b }
#define LIMIT_ROWS(base) \
	LIMIT("rps", v_rate, base, rps, 0, 1e9, LIMIT_RPS), \
	LIMIT("concurrency", v_uint, base, concurrency, 1, 1e6, \
	      LIMIT_CONCURRENCY), \
	LIMIT("burst", v_uint, base, burst, 1, 1e6, LIMIT_BURST), \
	LIMIT("max_queued", v_uint, base, max_queued, 1, 1e9, \
	      LIMIT_MAX_QUEUED), \
	LIMIT("aggregate_rps", v_rate, base, aggregate_rps, 0, 1e9, \
	      LIMIT_AGGREGATE_RPS), \
	LIMIT("aggregate_concurrency", v_uint, base, \
	      aggregate_concurrency, 1, 1e6, LIMIT_AGGREGATE_CONCURRENCY), \
	LIMIT("weight", v_uint, base, weight, 1, 1e6, LIMIT_WEIGHT), \
	LIMIT("max_rps", v_rate, base, max_rps, 0, 1e9, LIMIT_MAX_RPS), \
	{ .name = "mode", .parse = parse_scalar, .value = v_enum, \
	  .offset = (base) + offsetof(struct limits, mode), \
	  .names = mode_names, .bit = LIMIT_MODE }

static const char *const mode_names[] = {
	[RATE_PACED] = "paced", [RATE_FRUGAL] = "frugal",
	[RATE_ADAPTIVE] = "adaptive", NULL
};
static const char *const log_level_names[] = {
	[LOG_LEVEL_ERROR] = "error", [LOG_LEVEL_WARN] = "warn",
	[LOG_LEVEL_INFO] = "info", [LOG_LEVEL_DEBUG] = "debug", NULL
};
static const char *const queue_by_names[] = {
	[QUEUE_BY_CREDENTIAL] = "credential",
	[QUEUE_BY_DESTINATION] = "destination", NULL
};
static const char *const scope_names[] = {
	[LEARN_SCOPE_QUEUE] = "queue",
	[LEARN_SCOPE_DESTINATION] = "destination", NULL
};

/* A destinations: entry; offsets in struct dest_rule. */
static const struct key_def rule_keys[] = {
	LIMIT_ROWS(offsetof(struct dest_rule, limits)),
	END
};

/* A keys: entry; offsets in struct key_rule. */
static const struct key_def key_rule_keys[] = {
	VAL("weight", v_uint, offsetof(struct key_rule, weight), 1, 1e6),
	END
};

/* The rest: offsets in struct config. */
static const struct key_def defaults_keys[] = {
	LIMIT_ROWS(C(defaults.limits)),
	ENUM("queue_by", C(defaults.queue_by), queue_by_names),
	LIST("key_headers", defaults.key_headers, defaults.n_key_headers,
	     v_header, char *, 0, true),
	END
};

static const struct key_def learn_keys[] = {
	VAL("ezthrottle_headers", v_bool, C(learn.ezthrottle_headers), 0, 0),
	VAL("retry_after", v_bool, C(learn.retry_after), 0, 0),
	VAL("ratelimit_headers", v_bool, C(learn.ratelimit_headers), 0, 0),
	ENUM("scope", C(learn.scope), scope_names),
	VAL("min_rps", v_rate, C(learn.min_rps), 0, 1e9),
	VAL("max_rps", v_rate, C(learn.max_rps), 0, 1e9),
	VAL("max_concurrency", v_uint, C(learn.max_concurrency), 1, 1e6),
	VAL("idle_reset", v_duration, C(learn.idle_reset), 1, 0),
	VAL("probe_interval", v_duration, C(learn.probe_interval), 1, 0),
	END
};

static const struct key_def retry_keys[] = {
	VAL("max_retries", v_uint, C(retry.max_retries), 0, 1000),
	LIST("on", retry.on, retry.n_on, v_status, unsigned, 0, false),
	VAL("backoff_base", v_duration, C(retry.backoff_base), 0, 0),
	VAL("backoff_cap", v_duration, C(retry.backoff_cap), 1, 0),
	VAL("max_retry_after", v_duration, C(retry.max_retry_after), 0, 0),
	END
};

static const struct key_def webhooks_keys[] = {
	VAL("secret_file", v_opt_path, C(webhooks.secret_file), 0, 0),
	VAL("secondary_secret_file", v_opt_path,
	    C(webhooks.secondary_secret_file), 0, 0),
	VAL("timeout", v_duration, C(webhooks.timeout), 1, 0),
	LIST("retry_schedule", webhooks.retry_schedule,
	     webhooks.n_retry_schedule, v_duration, int64_t, 1, false),
	VAL("give_up_after", v_duration, C(webhooks.give_up_after), 0, 0),
	END
};

static const struct key_def jobs_keys[] = {
	VAL("retain", v_duration, C(jobs.retain), 0, 0),
	VAL("dedupe_anonymous", v_bool, C(jobs.dedupe_anonymous), 0, 0),
	VAL("max_pending", v_uint, C(jobs.max_pending), 1, 100000000),
	VAL("max_pending_bytes", v_size, C(jobs.max_pending_bytes),
	    64 << 10, 1024.0 * 1024 * 1024 * 1024),
	END
};

static const struct key_def metrics_keys[] = {
	VAL("max_destinations", v_uint, C(metrics.max_destinations), 1, 100000),
	VAL("per_key", v_bool, C(metrics.per_key), 0, 0),
	VAL("max_keys", v_uint, C(metrics.max_keys), 1, 100000),
	END
};

static const struct key_def tls_keys[] = {
	VAL("intercept", v_bool, C(tls.intercept), 0, 0),
	LIST("tunnel", tls.tunnel, tls.n_tunnel, v_pattern, char *, 0, true),
	VAL("upstream_ca_file", v_opt_path, C(tls.upstream_ca_file), 0, 0),
	VAL("max_tunnels", v_uint, C(tls.max_tunnels), 1, 1000000),
	VAL("max_handshakes", v_uint, C(tls.max_handshakes), 1, 100000),
	VAL("leaf_cache", v_uint, C(tls.leaf_cache), 1, 1000000),
	VAL("tunnel_idle_timeout", v_duration, C(tls.tunnel_idle_timeout), 1,
	    0),
	END
};

static const struct key_def redis_keys[] = {
	VAL("url", v_redis_url, C(redis.url), 0, 0),
	END
};

const struct key_def config_top_keys[] = {
	VAL("listen", v_listen, C(listen), 0, 0),
	VAL("admin_listen", v_listen, C(admin_listen), 0, 0),
	VAL("state_dir", v_path, C(state_dir), 0, 0),
	LIST("allow", allow.v, allow.n, v_cidr, struct cidr, 0, false),
	LIST("deny_destinations", deny_destinations.v, deny_destinations.n,
	     v_cidr, struct cidr, 0, false),
	LIST("admin_allow", admin_allow.v, admin_allow.n, v_cidr, struct cidr,
	     0, false),
	VAL("admin_token_file", v_opt_path, C(admin_token_file), 0, 0),
	VAL("admin_timeout", v_duration, C(admin_timeout), 1, 0),
	VAL("max_in_flight", v_uint, C(max_in_flight), 1, 1e6),
	VAL("workers", v_uint, C(workers), 0, CONFIG_WORKERS_MAX),
	VAL("max_queued", v_uint, C(max_queued), 1, 1e9),
	VAL("max_queues", v_uint, C(max_queues), 1, 1e9),
	VAL("max_body", v_size, C(max_body), 0, 0),
	VAL("max_header", v_size, C(max_header), 4096, 1 << 20),
	VAL("sync_timeout", v_duration, C(sync_timeout), 1, 0),
	VAL("drain_timeout", v_duration, C(drain_timeout), 0, 0),
	VAL("client_timeout", v_duration, C(client_timeout), 1, 0),
	VAL("min_body_rate", v_size, C(min_body_rate), 0, 1 << 30),
	ENUM("log_level", C(log_level), log_level_names),
	VAL("access_log", v_bool, C(access_log), 0, 0),
	VAL("reject_hopeless", v_bool, C(reject_hopeless), 0, 0),
	MAP("defaults", parse_section, 0, defaults_keys),
	MAP("learn", parse_learn, 0, learn_keys),
	MAP("retry", parse_section, 0, retry_keys),
	MAP("destinations", parse_destinations, 0, rule_keys),
	MAP("keys", parse_keys, 0, key_rule_keys),
	MAP("webhooks", parse_section, 0, webhooks_keys),
	MAP("jobs", parse_section, 0, jobs_keys),
	MAP("metrics", parse_section, 0, metrics_keys),
	MAP("tls", parse_section, 0, tls_keys),
	MAP("redis", parse_section, 0, redis_keys),
	END
};

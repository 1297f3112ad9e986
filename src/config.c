/*
 * config.c - the configuration model: built-in defaults, freeing, and the
 * lookups the daemon makes. Reading sluice.yaml is config_parse.c's; the
 * syntax of values is config_value.c's.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

#define RANK_EXACT 1000           /* above 2 * any host suffix length + 1 */

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

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
	atomic_init(&cfg->refs, 1);
	cfg->max_in_flight = 512;
	cfg->workers = 0;
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
	cfg->learn.probe_interval = 5 * 1000;
	cfg->retry.max_retries = 5;
	cfg->retry.backoff_base = 500;
	cfg->retry.backoff_cap = 30 * 1000;
	cfg->retry.max_retry_after = 300 * 1000;
	cfg->webhooks.timeout = 10 * 1000;
	cfg->webhooks.give_up_after = 24 * 3600 * 1000;
	cfg->jobs.retain = 7 * 86400 * 1000LL;
	cfg->metrics.max_destinations = 100;
	cfg->metrics.max_keys = 100;
	cfg->jobs.dedupe_anonymous = false;
	cfg->jobs.max_pending = 100000;
	cfg->jobs.max_pending_bytes = 1ULL << 30;
	cfg->reject_hopeless = true;
	cfg->tls.intercept = true;
	cfg->tls.max_tunnels = 10000;
	cfg->tls.max_handshakes = 256;
	cfg->tls.leaf_cache = 1000;
	cfg->tls.tunnel_idle_timeout = 300000;

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

const struct config *config_ref(const struct config *cfg)
{
	/* Shared configurations are read-only but for their count. */
	struct config *c = (struct config *)(uintptr_t)cfg;

	if (c)
		atomic_fetch_add(&c->refs, 1);
	return cfg;
}

void config_slot_offer(struct config_slot *s, const struct config *cfg)
{
	config_free(atomic_exchange(&s->next, cfg));
}

const struct config *config_slot_take(struct config_slot *s)
{
	if (!atomic_load_explicit(&s->next, memory_order_relaxed))
		return NULL;
	return atomic_exchange(&s->next, NULL);
}

bool config_slot_swap(struct config_slot *s, const struct config **cur)
{
	const struct config *n = config_slot_take(s);

	if (!n)
		return false;
	config_free(*cur);
	*cur = n;
	return true;
}

void config_slot_done(struct config_slot *s)
{
	config_free(atomic_exchange(&s->next, NULL));
}

/* Keeps old's string in *next's place; true when they differed. */
static bool keep_str(char *const *old, char **next)
{
	char *copy;

	if ((!*old && !*next) || (*old && *next && strcmp(*old, *next) == 0))
		return false;
	copy = *old ? strdup(*old) : NULL;
	if (*old && !copy)
		return true; /* reported, next keeps its own: never reached */
	free(*next);
	*next = copy;
	return true;
}

unsigned config_restart_only(const struct config *old, struct config *next,
                             char *names, size_t size)
{
	unsigned n = 0;
	size_t len = 0;

	if (size)
		names[0] = '\0';
#define NAME(s) \
	do { \
		int w = snprintf(names + len, size - len, "%s%s", \
		                 n ? ", " : "", (s)); \
		n++; \
		if (w > 0 && (size_t)w < size - len) \
			len += (size_t)w; \
	} while (0)
#define KEEP_STR(f, s) \
	do { if (keep_str(&old->f, &next->f)) NAME(s); } while (0)
#define KEEP(f, s) \
	do { if (old->f != next->f) { next->f = old->f; NAME(s); } } while (0)
	KEEP_STR(listen, "listen");
	KEEP_STR(admin_listen, "admin_listen");
	KEEP_STR(state_dir, "state_dir");
	KEEP_STR(redis.url, "redis.url");
	KEEP(max_in_flight, "max_in_flight");
	KEEP(workers, "workers");
	KEEP(max_header, "max_header");
	KEEP(client_timeout, "client_timeout");
	KEEP(admin_timeout, "admin_timeout");
	KEEP(tls.max_tunnels, "tls.max_tunnels");
	KEEP(tls.max_handshakes, "tls.max_handshakes");
	KEEP(tls.leaf_cache, "tls.leaf_cache");
#undef KEEP
#undef KEEP_STR
#undef NAME
	return n;
}

void config_free(const struct config *cfg_const)
{
	struct config *cfg = (struct config *)(uintptr_t)cfg_const;

	if (!cfg || atomic_fetch_sub(&cfg->refs, 1) != 1)
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

	/* The fields the rule gives replace the defaults'. */
#define OVERLAY(bit, f) \
	do { if (r && (r->set & (bit))) l.f = r->limits.f; } while (0)
	OVERLAY(LIMIT_RPS, rps);
	OVERLAY(LIMIT_CONCURRENCY, concurrency);
	OVERLAY(LIMIT_BURST, burst);
	OVERLAY(LIMIT_MAX_QUEUED, max_queued);
	OVERLAY(LIMIT_AGGREGATE_RPS, aggregate_rps);
	OVERLAY(LIMIT_AGGREGATE_CONCURRENCY, aggregate_concurrency);
	OVERLAY(LIMIT_MAX_RPS, max_rps);
	OVERLAY(LIMIT_MODE, mode);
	OVERLAY(LIMIT_WEIGHT, weight);
#undef OVERLAY
	*ret = l;
}

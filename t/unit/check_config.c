/*
 * check_config.c - sluice.yaml: defaults, every key, every kind of error
 * with its exact position, durations and sizes, destination patterns.
 */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "config_value.h"
#include "testlib.h"

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

static struct config *cfg;
static struct config_errors errs;
static char *tmp_path;

static void setup(void)
{
	cfg = config_new();
	ck_assert_ptr_nonnull(cfg);
	memset(&errs, 0, sizeof(errs));
	tmp_path = NULL;
}

static void teardown(void)
{
	config_free(cfg);
	cfg = NULL;
	config_errors_done(&errs);
	if (tmp_path) {
		unlink(tmp_path);
		free(tmp_path);
		tmp_path = NULL;
	}
}

/* Writes text to a new temporary file, named in tmp_path. */
static const char *write_tmp(const char *text)
{
	const char *dir = getenv("TMPDIR");
	size_t len = strlen(text);
	FILE *f;
	int fd;

	if (tmp_path) {
		unlink(tmp_path);
		free(tmp_path);
	}
	ck_assert_int_ge(asprintf(&tmp_path, "%s/check_config.XXXXXX",
	                          dir ? dir : "/tmp"), 0);
	fd = mkstemp(tmp_path);
	ck_assert_int_ge(fd, 0);
	f = fdopen(fd, "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(text, 1, len, f), len);
	ck_assert_int_eq(fclose(f), 0);
	return tmp_path;
}

static int load(const char *text)
{
	return config_load(cfg, write_tmp(text), &errs);
}

/* Loads text, which must be valid. */
static void load_ok(const char *text)
{
	int r = load(text);

	ck_assert_msg(r == 0, "load failed (%d): %s", r,
	              errs.n ? errs.msgs[0] : "no message");
	ck_assert_uint_eq(errs.n, 0);
}

/* errs is exactly want[], each "LINE:COL: message" after "PATH:". */
static void expect_errors(const char *const *want, size_t n)
{
	for (size_t i = 0; i < n && i < errs.n; i++) {
		char *full;
		int r = asprintf(&full, "%s:%s", tmp_path, want[i]);

		ck_assert_int_ge(r, 0);
		ck_assert_str_eq(errs.msgs[i], full);
		free(full);
	}
	ck_assert_uint_eq(errs.n, n);
}

static void assert_strv(char **v, size_t n, const char *const *want,
                        size_t n_want)
{
	ck_assert_uint_eq(n, n_want);
	for (size_t i = 0; i < n; i++)
		ck_assert_str_eq(v[i], want[i]);
}

static void assert_cidrs_equal(const struct cidr_list *a,
                               const struct cidr_list *b)
{
	ck_assert_uint_eq(a->n, b->n);
	for (size_t i = 0; i < a->n; i++) {
		ck_assert_int_eq(a->v[i].family, b->v[i].family);
		ck_assert_uint_eq(a->v[i].prefix, b->v[i].prefix);
		ck_assert_mem_eq(a->v[i].addr, b->v[i].addr, 16);
	}
}

static void assert_opt_str_eq(const char *a, const char *b)
{
	if (!a || !b)
		ck_assert_ptr_eq(a, b);
	else
		ck_assert_str_eq(a, b);
}

/* Every key of a equals that of b (but path). */
static void assert_config_equal(const struct config *a,
                                const struct config *b)
{
	const struct limits *la = &a->defaults.limits;
	const struct limits *lb = &b->defaults.limits;

	ck_assert_str_eq(a->listen, b->listen);
	ck_assert_str_eq(a->admin_listen, b->admin_listen);
	ck_assert_str_eq(a->state_dir, b->state_dir);
	assert_cidrs_equal(&a->allow, &b->allow);
	assert_cidrs_equal(&a->deny_destinations, &b->deny_destinations);
	assert_cidrs_equal(&a->admin_allow, &b->admin_allow);
	assert_opt_str_eq(a->admin_token_file, b->admin_token_file);
	ck_assert_int_eq(a->admin_timeout, b->admin_timeout);
	ck_assert_uint_eq(a->max_in_flight, b->max_in_flight);
	ck_assert_uint_eq(a->max_queued, b->max_queued);
	ck_assert_uint_eq(a->max_queues, b->max_queues);
	ck_assert_uint_eq(a->max_body, b->max_body);
	ck_assert_uint_eq(a->max_header, b->max_header);
	ck_assert_int_eq(a->sync_timeout, b->sync_timeout);
	ck_assert_int_eq(a->drain_timeout, b->drain_timeout);
	ck_assert_int_eq(a->client_timeout, b->client_timeout);
	ck_assert_uint_eq(a->min_body_rate, b->min_body_rate);
	ck_assert_int_eq(a->log_level, b->log_level);
	ck_assert_int_eq(a->access_log, b->access_log);
	ck_assert_int_eq(a->reject_hopeless, b->reject_hopeless);

	ck_assert_double_eq(la->rps, lb->rps);
	ck_assert_uint_eq(la->concurrency, lb->concurrency);
	ck_assert_uint_eq(la->burst, lb->burst);
	ck_assert_uint_eq(la->max_queued, lb->max_queued);
	ck_assert_double_eq(la->aggregate_rps, lb->aggregate_rps);
	ck_assert_uint_eq(la->aggregate_concurrency, lb->aggregate_concurrency);
	ck_assert_uint_eq(la->weight, lb->weight);
	ck_assert_double_eq(la->max_rps, lb->max_rps);
	ck_assert_int_eq(la->mode, lb->mode);
	ck_assert_int_eq(a->defaults.queue_by, b->defaults.queue_by);
	assert_strv(a->defaults.key_headers, a->defaults.n_key_headers,
	            (const char *const *)b->defaults.key_headers,
	            b->defaults.n_key_headers);

	ck_assert_int_eq(a->learn.ezthrottle_headers,
	                 b->learn.ezthrottle_headers);
	ck_assert_int_eq(a->learn.retry_after, b->learn.retry_after);
	ck_assert_int_eq(a->learn.ratelimit_headers,
	                 b->learn.ratelimit_headers);
	ck_assert_int_eq(a->learn.scope, b->learn.scope);
	ck_assert_double_eq(a->learn.min_rps, b->learn.min_rps);
	ck_assert_double_eq(a->learn.max_rps, b->learn.max_rps);
	ck_assert_uint_eq(a->learn.max_concurrency, b->learn.max_concurrency);
	ck_assert_int_eq(a->learn.idle_reset, b->learn.idle_reset);
	ck_assert_int_eq(a->learn.probe_interval, b->learn.probe_interval);

	ck_assert_uint_eq(a->retry.max_retries, b->retry.max_retries);
	ck_assert_uint_eq(a->retry.n_on, b->retry.n_on);
	for (size_t i = 0; i < a->retry.n_on; i++)
		ck_assert_uint_eq(a->retry.on[i], b->retry.on[i]);
	ck_assert_int_eq(a->retry.backoff_base, b->retry.backoff_base);
	ck_assert_int_eq(a->retry.backoff_cap, b->retry.backoff_cap);
	ck_assert_int_eq(a->retry.max_retry_after, b->retry.max_retry_after);

	ck_assert_uint_eq(a->n_destinations, b->n_destinations);
	ck_assert_uint_eq(a->n_keys, b->n_keys);

	assert_opt_str_eq(a->webhooks.secret_file, b->webhooks.secret_file);
	assert_opt_str_eq(a->webhooks.secondary_secret_file,
	                  b->webhooks.secondary_secret_file);
	ck_assert_int_eq(a->webhooks.timeout, b->webhooks.timeout);
	ck_assert_uint_eq(a->webhooks.n_retry_schedule,
	                  b->webhooks.n_retry_schedule);
	for (size_t i = 0; i < a->webhooks.n_retry_schedule; i++)
		ck_assert_int_eq(a->webhooks.retry_schedule[i],
		                 b->webhooks.retry_schedule[i]);
	ck_assert_int_eq(a->webhooks.give_up_after, b->webhooks.give_up_after);
	ck_assert_int_eq(a->jobs.retain, b->jobs.retain);
	ck_assert_int_eq(a->jobs.dedupe_anonymous, b->jobs.dedupe_anonymous);
	ck_assert_uint_eq(a->jobs.max_pending, b->jobs.max_pending);
	ck_assert_uint_eq(a->jobs.max_pending_bytes, b->jobs.max_pending_bytes);
	ck_assert_uint_eq(a->metrics.max_destinations,
	                  b->metrics.max_destinations);
	ck_assert_int_eq(a->metrics.per_key, b->metrics.per_key);
	ck_assert_uint_eq(a->metrics.max_keys, b->metrics.max_keys);
	ck_assert_int_eq(a->tls.intercept, b->tls.intercept);
	assert_strv(a->tls.tunnel, a->tls.n_tunnel,
	            (const char *const *)b->tls.tunnel, b->tls.n_tunnel);
	assert_opt_str_eq(a->tls.upstream_ca_file, b->tls.upstream_ca_file);
	ck_assert_uint_eq(a->tls.max_tunnels, b->tls.max_tunnels);
	ck_assert_uint_eq(a->tls.max_handshakes, b->tls.max_handshakes);
	ck_assert_uint_eq(a->tls.leaf_cache, b->tls.leaf_cache);
	ck_assert_int_eq(a->tls.tunnel_idle_timeout, b->tls.tunnel_idle_timeout);
	assert_opt_str_eq(a->redis.url, b->redis.url);
}

/* Defaults */

/* True when l holds exactly the network s. */
static bool has_net(const struct cidr_list *l, const char *s)
{
	struct cidr c;

	ck_assert_int_eq(cidr_parse(s, &c), 0);
	for (size_t i = 0; i < l->n; i++)
		if (l->v[i].family == c.family && l->v[i].prefix == c.prefix &&
		    !memcmp(l->v[i].addr, c.addr, sizeof(c.addr)))
			return true;
	return false;
}

START_TEST(test_defaults)
{
	static const char *const headers[] = {
		"Authorization", "X-Api-Key", "Api-Key"
	};
	static const int64_t schedule[] = {
		0, 60000, 300000, 900000, 3600000
	};

	ck_assert_ptr_null(cfg->path);
	ck_assert_str_eq(cfg->listen, "127.0.0.1:8080");
	ck_assert_str_eq(cfg->admin_listen, "127.0.0.1:8081");
	ck_assert_str_eq(cfg->state_dir, "/var/lib/sluice");
	ck_assert_uint_eq(cfg->allow.n, 2);
	ck_assert(has_net(&cfg->allow, "127.0.0.0/8"));
	ck_assert(has_net(&cfg->allow, "::1/128"));
	ck_assert_uint_eq(cfg->admin_allow.n, 2);
	ck_assert(has_net(&cfg->admin_allow, "127.0.0.0/8"));
	ck_assert(has_net(&cfg->admin_allow, "::1/128"));
	ck_assert_ptr_null(cfg->admin_token_file);
	ck_assert_int_eq(cfg->admin_timeout, 10000);
	ck_assert_uint_eq(cfg->deny_destinations.n, 6);
	ck_assert(has_net(&cfg->deny_destinations, "169.254.169.254/32"));
	ck_assert(has_net(&cfg->deny_destinations, "fd00:ec2::254/128"));
	ck_assert(has_net(&cfg->deny_destinations, "100.100.100.200/32"));
	ck_assert(has_net(&cfg->deny_destinations, "169.254.170.2/32"));
	ck_assert(has_net(&cfg->deny_destinations, "::a9fe:a9fe/128"));
	ck_assert(has_net(&cfg->deny_destinations, "64:ff9b::a9fe:a9fe/128"));
	ck_assert_uint_eq(cfg->max_in_flight, 512);
	ck_assert_uint_eq(cfg->max_queued, 100000);
	ck_assert_uint_eq(cfg->max_queues, 100000);
	ck_assert_uint_eq(cfg->max_body, 10 * 1024 * 1024);
	ck_assert_uint_eq(cfg->max_header, 8 * 1024);
	ck_assert_int_eq(cfg->sync_timeout, 300000);
	ck_assert_int_eq(cfg->drain_timeout, 30000);
	ck_assert_int_eq(cfg->client_timeout, 60000);
	ck_assert_uint_eq(cfg->min_body_rate, 1024);
	ck_assert_int_eq(cfg->log_level, LOG_LEVEL_INFO);
	ck_assert(!cfg->access_log);
	ck_assert(cfg->reject_hopeless);

	ck_assert_double_eq(cfg->defaults.limits.rps, 2);
	ck_assert_uint_eq(cfg->defaults.limits.concurrency, 2);
	ck_assert_uint_eq(cfg->defaults.limits.burst, 1);
	ck_assert_uint_eq(cfg->defaults.limits.max_queued, 10000);
	ck_assert_double_eq(cfg->defaults.limits.aggregate_rps, 0);
	ck_assert_uint_eq(cfg->defaults.limits.aggregate_concurrency, 0);
	ck_assert_uint_eq(cfg->defaults.limits.weight, 1);
	ck_assert_double_eq(cfg->defaults.limits.max_rps, 0);
	ck_assert_int_eq(cfg->defaults.queue_by, QUEUE_BY_CREDENTIAL);
	assert_strv(cfg->defaults.key_headers, cfg->defaults.n_key_headers,
	            headers, N(headers));

	ck_assert(cfg->learn.ezthrottle_headers);
	ck_assert(cfg->learn.retry_after);
	ck_assert(cfg->learn.ratelimit_headers);
	ck_assert_int_eq(cfg->learn.scope, LEARN_SCOPE_QUEUE);
	ck_assert_double_eq(cfg->learn.min_rps, 0.1);
	ck_assert_double_eq(cfg->learn.max_rps, 10000);
	ck_assert_uint_eq(cfg->learn.max_concurrency, 1024);
	ck_assert_int_eq(cfg->learn.idle_reset, 300000);
	ck_assert_int_eq(cfg->learn.probe_interval, 5000);
	ck_assert_int_eq(cfg->defaults.limits.mode, RATE_PACED);

	ck_assert_uint_eq(cfg->retry.max_retries, 5);
	ck_assert_uint_eq(cfg->retry.n_on, 4);
	ck_assert_uint_eq(cfg->retry.on[0], 429);
	ck_assert_uint_eq(cfg->retry.on[1], 502);
	ck_assert_uint_eq(cfg->retry.on[2], 503);
	ck_assert_uint_eq(cfg->retry.on[3], 504);
	ck_assert_int_eq(cfg->retry.backoff_base, 500);
	ck_assert_int_eq(cfg->retry.backoff_cap, 30000);
	ck_assert_int_eq(cfg->retry.max_retry_after, 300000);

	ck_assert_uint_eq(cfg->n_destinations, 0);
	ck_assert_uint_eq(cfg->n_keys, 0);

	ck_assert_ptr_null(cfg->webhooks.secret_file);
	ck_assert_ptr_null(cfg->webhooks.secondary_secret_file);
	ck_assert_int_eq(cfg->webhooks.timeout, 10000);
	ck_assert_uint_eq(cfg->webhooks.n_retry_schedule, N(schedule));
	for (int i = 0; i < N(schedule); i++)
		ck_assert_int_eq(cfg->webhooks.retry_schedule[i], schedule[i]);
	ck_assert_int_eq(cfg->webhooks.give_up_after, 86400000);
	ck_assert_int_eq(cfg->jobs.retain, 7 * 86400000LL);
	ck_assert(!cfg->jobs.dedupe_anonymous);
	ck_assert_uint_eq(cfg->jobs.max_pending, 100000);
	ck_assert_uint_eq(cfg->jobs.max_pending_bytes, 1ULL << 30);
	ck_assert_uint_eq(cfg->metrics.max_destinations, 100);
	ck_assert(!cfg->metrics.per_key);
	ck_assert_uint_eq(cfg->metrics.max_keys, 100);
	ck_assert(cfg->tls.intercept);
	ck_assert_uint_eq(cfg->tls.n_tunnel, 0);
	ck_assert_ptr_null(cfg->tls.upstream_ca_file);
	ck_assert_uint_eq(cfg->tls.max_tunnels, 10000);
	ck_assert_uint_eq(cfg->tls.max_handshakes, 256);
	ck_assert_uint_eq(cfg->tls.leaf_cache, 1000);
	ck_assert_int_eq(cfg->tls.tunnel_idle_timeout, 300000);
	ck_assert_ptr_null(cfg->redis.url);
}
END_TEST

START_TEST(test_free_null)
{
	struct config_errors none = { 0 };

	config_free(NULL);
	config_errors_done(&none);
	ck_assert_uint_eq(none.n, 0);
}
END_TEST

/* Empty documents */

static const char *const empty_files[] = {
	"", "\n\n", "# only a comment\n", "---\n", "--- ~\n", "---\n...\n",
	"{}\n", "null\n",
};

START_TEST(test_empty_file_is_defaults)
{
	struct config *def = config_new();

	ck_assert_ptr_nonnull(def);
	load_ok(empty_files[_i]);
	ck_assert_str_eq(cfg->path, tmp_path);
	assert_config_equal(cfg, def);
	config_free(def);
}
END_TEST

START_TEST(test_missing_file)
{
	const char *path = "/nonexistent-sluice-dir/sluice.yaml";

	ck_assert_int_eq(config_load(cfg, path, &errs), -ENOENT);
	ck_assert_uint_eq(errs.n, 1);
	ck_assert_str_eq(errs.msgs[0], "/nonexistent-sluice-dir/sluice.yaml: "
	                 "No such file or directory");
}
END_TEST

START_TEST(test_directory)
{
	ck_assert_int_eq(config_load(cfg, "/", &errs), -EISDIR);
	ck_assert_uint_eq(errs.n, 1);
	ck_assert_str_eq(errs.msgs[0], "/: Is a directory");
}
END_TEST

/* A file with every key */

#include "config_full.h"

START_TEST(test_every_key)
{
	static const char *const tunnel[] = {
		"*.internal.example", "vault.local:8200"
	};
	static const char *const headers[] = { "X-Token" };
	const struct dest_rule *d;
	const struct limits *l = &cfg->defaults.limits;

	load_ok(full_file);
	ck_assert_str_eq(cfg->path, tmp_path);
	ck_assert_str_eq(cfg->listen, "[::1]:9090");
	ck_assert_str_eq(cfg->admin_listen, "0.0.0.0:0");
	ck_assert_str_eq(cfg->state_dir, "/tmp/sluice-state");
	ck_assert_uint_eq(cfg->allow.n, 3);
	ck_assert_uint_eq(cfg->allow.v[0].prefix, 8);
	ck_assert_uint_eq(cfg->allow.v[1].prefix, 16);
	ck_assert_uint_eq(cfg->allow.v[1].addr[2], 0);   /* host bits */
	ck_assert_int_eq(cfg->allow.v[2].family, AF_INET6);
	ck_assert_uint_eq(cfg->allow.v[2].prefix, 128);
	ck_assert_uint_eq(cfg->deny_destinations.n, 1);
	ck_assert_uint_eq(cfg->admin_allow.n, 1);
	ck_assert_uint_eq(cfg->admin_allow.v[0].prefix, 16);
	ck_assert_str_eq(cfg->admin_token_file, "/etc/sluice/admin-token");
	ck_assert_int_eq(cfg->admin_timeout, 3000);
	ck_assert_uint_eq(cfg->max_in_flight, 64);
	ck_assert_uint_eq(cfg->max_queued, 5000);
	ck_assert_uint_eq(cfg->max_queues, 300);
	ck_assert_uint_eq(cfg->max_body, 1048576);
	ck_assert_uint_eq(cfg->max_header, 16384);
	ck_assert_int_eq(cfg->sync_timeout, 1500);
	ck_assert_int_eq(cfg->drain_timeout, 0);
	ck_assert_int_eq(cfg->client_timeout, 120000);
	ck_assert_uint_eq(cfg->min_body_rate, 2048);
	ck_assert_int_eq(cfg->log_level, LOG_LEVEL_DEBUG);
	ck_assert(cfg->access_log);
	ck_assert(!cfg->reject_hopeless);

	ck_assert_double_eq(l->rps, 0.5);
	ck_assert_uint_eq(l->concurrency, 3);
	ck_assert_uint_eq(l->burst, 4);
	ck_assert_uint_eq(l->max_queued, 50);
	ck_assert_double_eq(l->aggregate_rps, 7.25);
	ck_assert_uint_eq(l->aggregate_concurrency, 9);
	ck_assert_uint_eq(l->weight, 2);
	ck_assert_int_eq(cfg->defaults.queue_by, QUEUE_BY_DESTINATION);
	assert_strv(cfg->defaults.key_headers, cfg->defaults.n_key_headers,
	            headers, N(headers));

	ck_assert(!cfg->learn.ezthrottle_headers);
	ck_assert(!cfg->learn.retry_after);
	ck_assert(!cfg->learn.ratelimit_headers);
	ck_assert_int_eq(cfg->learn.scope, LEARN_SCOPE_DESTINATION);
	ck_assert_double_eq(cfg->learn.min_rps, 0.25);
	ck_assert_double_eq(cfg->learn.max_rps, 100);
	ck_assert_uint_eq(cfg->learn.max_concurrency, 16);
	ck_assert_int_eq(cfg->learn.idle_reset, 3600000);
	ck_assert_int_eq(cfg->learn.probe_interval, 2000);

	ck_assert_uint_eq(cfg->retry.max_retries, 0);
	ck_assert_uint_eq(cfg->retry.n_on, 2);
	ck_assert_uint_eq(cfg->retry.on[0], 429);
	ck_assert_uint_eq(cfg->retry.on[1], 500);
	ck_assert_int_eq(cfg->retry.backoff_base, 250);
	ck_assert_int_eq(cfg->retry.backoff_cap, 10000);
	ck_assert_int_eq(cfg->retry.max_retry_after, 86400000);

	ck_assert_uint_eq(cfg->n_destinations, 3);
	d = &cfg->destinations[0];
	ck_assert_str_eq(d->pattern, "api.example.com");
	ck_assert_str_eq(d->host, "api.example.com");
	ck_assert_uint_eq(d->port, 0);
	ck_assert(!d->wildcard);
	ck_assert_uint_eq(d->set, LIMIT_RPS | LIMIT_CONCURRENCY |
	                  LIMIT_AGGREGATE_RPS | LIMIT_AGGREGATE_CONCURRENCY |
	                  LIMIT_WEIGHT | LIMIT_MAX_RPS | LIMIT_MODE);
	ck_assert_double_eq(d->limits.max_rps, 40);
	ck_assert_int_eq(d->limits.mode, RATE_ADAPTIVE);
	ck_assert_double_eq(d->limits.rps, 10);
	ck_assert_uint_eq(d->limits.concurrency, 4);
	ck_assert_double_eq(d->limits.aggregate_rps, 20);
	ck_assert_uint_eq(d->limits.aggregate_concurrency, 8);
	ck_assert_uint_eq(d->limits.weight, 3);
	d = &cfg->destinations[1];
	ck_assert_str_eq(d->pattern, "*.stripe.com");
	ck_assert_str_eq(d->host, "*.stripe.com");
	ck_assert(d->wildcard);
	ck_assert_uint_eq(d->set, LIMIT_RPS);
	ck_assert_double_eq(d->limits.rps, 25);
	d = &cfg->destinations[2];
	ck_assert_str_eq(d->pattern, "127.0.0.1:9000");
	ck_assert_str_eq(d->host, "127.0.0.1");
	ck_assert_uint_eq(d->port, 9000);
	ck_assert_uint_eq(d->set, LIMIT_BURST | LIMIT_MAX_QUEUED);
	ck_assert_uint_eq(d->limits.burst, 2);
	ck_assert_uint_eq(d->limits.max_queued, 7);

	ck_assert_uint_eq(cfg->n_keys, 2);
	ck_assert_str_eq(cfg->keys[0].hash, "3fa9c1d2e0b4");
	ck_assert_uint_eq(cfg->keys[0].weight, 4);
	ck_assert_str_eq(cfg->keys[1].hash, "0123456789ab");
	ck_assert_uint_eq(cfg->keys[1].weight, 1);

	ck_assert_str_eq(cfg->webhooks.secret_file,
	                 "/etc/sluice/webhook-secret");
	ck_assert_str_eq(cfg->webhooks.secondary_secret_file,
	                 "/etc/sluice/webhook-secret.old");
	ck_assert_int_eq(cfg->webhooks.timeout, 3000);
	ck_assert_uint_eq(cfg->webhooks.n_retry_schedule, 3);
	ck_assert_int_eq(cfg->webhooks.retry_schedule[0], 0);
	ck_assert_int_eq(cfg->webhooks.retry_schedule[1], 30000);
	ck_assert_int_eq(cfg->webhooks.retry_schedule[2], 120000);
	ck_assert_int_eq(cfg->webhooks.give_up_after, 7200000);
	ck_assert_int_eq(cfg->jobs.retain, 43200000);
	ck_assert(cfg->jobs.dedupe_anonymous);
	ck_assert_uint_eq(cfg->jobs.max_pending, 500);
	ck_assert_uint_eq(cfg->jobs.max_pending_bytes, 64 << 20);
	ck_assert_uint_eq(cfg->metrics.max_destinations, 7);
	ck_assert(cfg->metrics.per_key);
	ck_assert_uint_eq(cfg->metrics.max_keys, 9);
	ck_assert(!cfg->tls.intercept);
	assert_strv(cfg->tls.tunnel, cfg->tls.n_tunnel, tunnel, N(tunnel));
	ck_assert_str_eq(cfg->tls.upstream_ca_file, "/etc/ssl/ca.pem");
	ck_assert_uint_eq(cfg->tls.max_tunnels, 77);
	ck_assert_uint_eq(cfg->tls.max_handshakes, 9);
	ck_assert_uint_eq(cfg->tls.leaf_cache, 33);
	ck_assert_int_eq(cfg->tls.tunnel_idle_timeout, 90000);
	ck_assert_str_eq(cfg->redis.url, "redis://127.0.0.1:6379/0");
}
END_TEST

START_TEST(test_reload_replaces)
{
	load_ok(full_file);
	/* A second load on the same config: rules replaced, not added. */
	load_ok("destinations:\n  a.com: {rps: 1}\nkeys: {}\n"
	        "webhooks:\n  secret_file:\n  secondary_secret_file: \"\"\n"
	        "tls:\n  upstream_ca_file: ~\nredis:\n  url: null\n");
	ck_assert_uint_eq(cfg->n_destinations, 1);
	ck_assert_str_eq(cfg->destinations[0].pattern, "a.com");
	ck_assert_uint_eq(cfg->n_keys, 0);
	ck_assert_ptr_null(cfg->webhooks.secret_file);
	ck_assert_ptr_null(cfg->webhooks.secondary_secret_file);
	ck_assert_ptr_null(cfg->tls.upstream_ca_file);
	ck_assert_ptr_null(cfg->redis.url);
	/* Untouched keys keep the first file's values. */
	ck_assert_uint_eq(cfg->max_in_flight, 64);
}
END_TEST

START_TEST(test_lists_replace_defaults)
{
	static const char *const headers[] = { "X-Token", "Proxy-Key" };

	load_ok("allow: [10.1.0.0/16]\n"
	        "deny_destinations: []\n"
	        "defaults:\n  key_headers: [X-Token, Proxy-Key]\n"
	        "retry:\n  on: [503]\n"
	        "webhooks:\n  retry_schedule: [5s]\n"
	        "tls:\n  tunnel: [a.example]\n");
	ck_assert_uint_eq(cfg->allow.n, 1);
	ck_assert_uint_eq(cfg->allow.v[0].addr[1], 1);
	ck_assert_uint_eq(cfg->deny_destinations.n, 0);
	assert_strv(cfg->defaults.key_headers, cfg->defaults.n_key_headers,
	            headers, N(headers));
	ck_assert_uint_eq(cfg->retry.n_on, 1);
	ck_assert_uint_eq(cfg->retry.on[0], 503);
	ck_assert_uint_eq(cfg->webhooks.n_retry_schedule, 1);
	ck_assert_int_eq(cfg->webhooks.retry_schedule[0], 5000);
	ck_assert_uint_eq(cfg->tls.n_tunnel, 1);
}
END_TEST

START_TEST(test_bad_list_keeps_old)
{
	static const char *const want[] = {
		"1:21: 'allow' entry must be a network such as 10.0.0.0/8 or "
		"::1/128, got 'nope'",
	};

	ck_assert_int_eq(load("allow: [10.0.0.0/8, nope]\n"), -EINVAL);
	expect_errors(want, N(want));
	ck_assert_uint_eq(cfg->allow.n, 2);    /* the defaults */
}
END_TEST

START_TEST(test_null_lists_are_empty)
{
	load_ok("allow:\ntls:\n  tunnel: ~\n");
	ck_assert_uint_eq(cfg->allow.n, 0);
	ck_assert_uint_eq(cfg->tls.n_tunnel, 0);
}
END_TEST

START_TEST(test_listen_forms)
{
	load_ok("listen: \"[::]:0\"\nadmin_listen: localhost:65535\n");
	ck_assert_str_eq(cfg->listen, "[::]:0");
	ck_assert_str_eq(cfg->admin_listen, "localhost:65535");
}
END_TEST

/* Errors, one per file, with exact positions */

struct bad_case {
	const char *text;
	const char *want;       /* "LINE:COL: message" */
};

static const struct bad_case bad_cases[] = {
	{ "defaults:\n  concurrency: 0\n",
	  "2:16: 'concurrency' must be an integer >= 1, got '0'" },
	{ "defaults:\n  rpss: 3\n",
	  "2:3: unknown key 'rpss' in 'defaults'" },
	{ "listn: 1.2.3.4:5\n", "1:1: unknown key 'listn'" },
	{ "listen: 127.0.0.1\n",
	  "1:9: 'listen' must be ADDR:PORT or [ADDR]:PORT with a port "
	  "0..65535, got '127.0.0.1'" },
	{ "admin_listen: 127.0.0.1:65536\n",
	  "1:15: 'admin_listen' must be ADDR:PORT or [ADDR]:PORT with a port "
	  "0..65535, got '127.0.0.1:65536'" },
	{ "listen: ':8080'\n",
	  "1:9: 'listen' must be ADDR:PORT or [ADDR]:PORT with a port "
	  "0..65535, got ':8080'" },
	{ "listen: \"[::g]:80\"\n",
	  "1:9: 'listen' must be ADDR:PORT or [ADDR]:PORT with a port "
	  "0..65535, got '[::g]:80'" },
	{ "listen: [a, b]\n", "1:9: 'listen' must be a scalar, got a list" },
	{ "state_dir: ''\n", "1:12: 'state_dir' must be a path, got ''" },
	{ "state_dir:\n", "1:11: 'state_dir' must be a path, got ''" },
	{ "state_dir: \"a\\0b\"\n",
	  "1:12: 'state_dir' must not contain NUL bytes" },
	{ "allow: [10.0.0.0/8, 10.0.0.0/33]\n",
	  "1:21: 'allow' entry must be a network such as 10.0.0.0/8 or "
	  "::1/128, got '10.0.0.0/33'" },
	{ "allow: 10.0.0.0/8\n", "1:8: 'allow' must be a list, got a scalar" },
	{ "deny_destinations:\n  - [1]\n",
	  "2:5: 'deny_destinations' entry must be a scalar, got a list" },
	{ "max_in_flight: 1000001\n",
	  "1:16: 'max_in_flight' must be at most 1000000, got '1000001'" },
	{ "max_queued: 1.5\n",
	  "1:13: 'max_queued' must be an integer >= 1, got '1.5'" },
	{ "max_queued: -5\n",
	  "1:13: 'max_queued' must be an integer >= 1, got '-5'" },
	{ "admin_allow: [10.0.0.0/33]\n",
	  "1:15: 'admin_allow' entry must be a network such as 10.0.0.0/8 "
	  "or ::1/128, got '10.0.0.0/33'" },
	{ "admin_timeout: 0\n",
	  "1:16: 'admin_timeout' must be a duration > 0, got '0'" },
	{ "max_queues: 0\n",
	  "1:13: 'max_queues' must be an integer >= 1, got '0'" },
	{ "max_queues: 1000000001\n",
	  "1:13: 'max_queues' must be at most 1000000000, got '1000000001'" },
	{ "max_body: 10 MiB\n",
	  "1:11: 'max_body' must be a size such as 65536, 64KiB or 10MiB, "
	  "got '10 MiB'" },
	{ "max_body: 18446744073709551616\n",
	  "1:11: 'max_body' must be a size such as 65536, 64KiB or 10MiB, "
	  "got '18446744073709551616'" },
	{ "max_header: 1KiB\n",
	  "1:13: 'max_header' must be between 4KiB and 1MiB, got '1KiB'" },
	{ "max_header: 2MiB\n",
	  "1:13: 'max_header' must be between 4KiB and 1MiB, got '2MiB'" },
	{ "min_body_rate: 2GiB\n",
	  "1:16: 'min_body_rate' must be between 0 and 1GiB, got '2GiB'" },
	{ "min_body_rate: fast\n",
	  "1:16: 'min_body_rate' must be a size such as 65536, 64KiB or "
	  "10MiB, got 'fast'" },
	{ "sync_timeout: -1\n",
	  "1:15: 'sync_timeout' must be a duration such as 500ms, 30s, 5m or "
	  "24h, got '-1'" },
	{ "client_timeout: 0s\n",
	  "1:17: 'client_timeout' must be a duration > 0, got '0s'" },
	{ "log_level: verbose\n",
	  "1:12: 'log_level' must be error, warn, info or debug, "
	  "got 'verbose'" },
	{ "log_level: \"de\\tbug\"\n",
	  "1:12: 'log_level' must be error, warn, info or debug, "
	  "got 'de?bug'" },
	{ "access_log: yes\n",
	  "1:13: 'access_log' must be true or false, got 'yes'" },
	{ "defaults:\n  rps: 0\n", "2:8: 'rps' must be a number > 0, got '0'" },
	{ "defaults:\n  rps: 1e3\n",
	  "2:8: 'rps' must be a number > 0, got '1e3'" },
	{ "defaults:\n  rps: 1000000001\n",
	  "2:8: 'rps' must be at most 1000000000, got '1000000001'" },
	{ "defaults:\n  aggregate_rps: 0\n",
	  "2:18: 'aggregate_rps' must be a number > 0, got '0'" },
	{ "destinations:\n  a.example:\n    max_rps: -1\n",
	  "3:14: 'max_rps' must be a number > 0, got '-1'" },
	{ "defaults:\n  mode: fast\n",
	  "2:9: 'mode' must be paced, frugal or adaptive, got 'fast'" },
	{ "defaults:\n  aggregate_concurrency: 0\n",
	  "2:26: 'aggregate_concurrency' must be an integer >= 1, got '0'" },
	{ "defaults:\n  queue_by: user\n",
	  "2:13: 'queue_by' must be credential or destination, got 'user'" },
	{ "defaults:\n  key_headers: [X-Api-Key, \"X Token\"]\n",
	  "2:28: 'key_headers' entry must be a header name such as X-Api-Key, "
	  "got 'X Token'" },
	{ "defaults: 3\n", "1:11: 'defaults' must be a map, got a scalar" },
	{ "defaults:\n  [a]: 1\n",
	  "2:3: keys must be scalars in 'defaults', got a list" },
	{ "learn:\n  scope: global\n",
	  "2:10: 'scope' must be queue or destination, got 'global'" },
	{ "learn:\n  min_rps: 20\n  max_rps: 10\n",
	  "2:12: 'min_rps' must be <= max_rps (10), got '20'" },
	{ "learn:\n  max_rps: 0.05\n",
	  "2:12: 'max_rps' must be >= min_rps (0.1), got '0.05'" },
	{ "learn:\n  idle_reset: 5x\n",
	  "2:15: 'idle_reset' must be a duration such as 500ms, 30s, 5m or "
	  "24h, got '5x'" },
	{ "retry:\n  on: [429, 600]\n",
	  "2:13: 'on' entry must be an HTTP status code 100..599, got '600'" },
	{ "retry:\n  max_retries: -1\n",
	  "2:16: 'max_retries' must be an integer >= 0, got '-1'" },
	{ "webhooks:\n  retry_schedule: []\n",
	  "2:19: 'retry_schedule' must have at least 1 entry" },
	{ "webhooks:\n  retry_schedule: [1m, soon]\n",
	  "2:24: 'retry_schedule' entry must be a duration such as 500ms, "
	  "30s, 5m or 24h, got 'soon'" },
	{ "webhooks:\n  timeout: 0\n",
	  "2:12: 'timeout' must be a duration > 0, got '0'" },
	{ "tls:\n  tunnel: [\"*\"]\n",
	  "2:12: 'tunnel' entry must be a pattern such as api.example.com, "
	  "*.example.com or host:port, got '*'" },
	{ "tls:\n  intercept: 1\n",
	  "2:14: 'intercept' must be true or false, got '1'" },
	{ "redis:\n  url: http://x\n",
	  "2:8: 'url' must be a redis://, rediss:// or unix:// URL, "
	  "got 'http://x'" },
	{ "jobs: [1]\n", "1:7: 'jobs' must be a map, got a list" },
	{ "jobs:\n  dedupe_anonymous: yes\n",
	  "2:21: 'dedupe_anonymous' must be true or false, got 'yes'" },
	{ "jobs:\n  max_pending: 0\n",
	  "2:16: 'max_pending' must be an integer >= 1, got '0'" },
	{ "jobs:\n  max_pending: 100000001\n",
	  "2:16: 'max_pending' must be at most 100000000, got '100000001'" },
	{ "jobs:\n  max_pending: 1.5\n",
	  "2:16: 'max_pending' must be an integer >= 1, got '1.5'" },
	{ "jobs:\n  max_pending_bytes: 32KiB\n",
	  "2:22: 'max_pending_bytes' must be between 64KiB and "
	  "1TiB, got '32KiB'" },
	{ "jobs:\n  max_pending_bytes: 2TiB\n",
	  "2:22: 'max_pending_bytes' must be between 64KiB and "
	  "1TiB, got '2TiB'" },
	{ "jobs:\n  max_pending_bytes: lots\n",
	  "2:22: 'max_pending_bytes' must be a size such as 65536, 64KiB or "
	  "10MiB, got 'lots'" },
	{ "destinations:\n  \"api.*.com\": {}\n",
	  "2:3: 'api.*.com' is not a destination pattern such as "
	  "api.example.com, *.stripe.com or host:port" },
	{ "destinations:\n  \"a.com:0\": {}\n",
	  "2:3: 'a.com:0' is not a destination pattern such as "
	  "api.example.com, *.stripe.com or host:port" },
	{ "destinations:\n  \"a.com:65536\": {}\n",
	  "2:3: 'a.com:65536' is not a destination pattern such as "
	  "api.example.com, *.stripe.com or host:port" },
	{ "destinations:\n  \"*.\": {}\n",
	  "2:3: '*.' is not a destination pattern such as "
	  "api.example.com, *.stripe.com or host:port" },
	{ "destinations:\n  a..com: {}\n",
	  "2:3: 'a..com' is not a destination pattern such as "
	  "api.example.com, *.stripe.com or host:port" },
	{ "destinations:\n  \":443\": {}\n",
	  "2:3: ':443' is not a destination pattern such as "
	  "api.example.com, *.stripe.com or host:port" },
	{ "destinations:\n  \"*.a.com:\": {}\n",
	  "2:3: '*.a.com:' is not a destination pattern such as "
	  "api.example.com, *.stripe.com or host:port" },
	{ "destinations:\n  a.com:\n    rpss: 1\n",
	  "3:5: unknown key 'rpss' in 'destinations.a.com'" },
	{ "destinations:\n  a.com:\n    weight: 0\n",
	  "3:13: 'weight' must be an integer >= 1, got '0'" },
	{ "destinations:\n  a.com: [1]\n",
	  "2:10: 'destinations.a.com' must be a map, got a list" },
	{ "destinations:\n  a.com: {}\n  A.COM: {}\n",
	  "3:3: duplicate destination 'A.COM'" },
	{ "destinations: [a.com]\n",
	  "1:15: 'destinations' must be a map, got a list" },
	{ "keys:\n  ABCDEF012345: {weight: 2}\n",
	  "2:3: 'ABCDEF012345' is not a key hash (12 lower-case hex digits)" },
	{ "keys:\n  3fa9c1d2e0b4: {}\n",
	  "2:17: missing key 'weight' in 'keys.3fa9c1d2e0b4'" },
	{ "keys:\n  3fa9c1d2e0b4: {weight: 0}\n",
	  "2:26: 'weight' must be an integer >= 1, got '0'" },
	{ "keys:\n  3fa9c1d2e0b4: {weight: 1, rps: 2}\n",
	  "2:29: unknown key 'rps' in 'keys.3fa9c1d2e0b4'" },
	{ "listen: 1.2.3.4:1\nlisten: 1.2.3.4:2\n",
	  "2:1: duplicate key 'listen'" },
	{ "- a\n", "1:1: the top level must be a map, got a list" },
	{ "plain words\n", "1:1: the top level must be a map, got a scalar" },
	{ "{a: 1}: 2\n", "1:1: keys must be scalars, got a map" },
	{ "a: [1, 2\n",
	  "2:1: did not find expected ',' or ']' (while parsing a flow "
	  "sequence started at line 1, column 4)" },
	{ "listen: 1.2.3.4:5\n  bad: indent\n",
	  "2:6: mapping values are not allowed in this context" },
	{ "listen: *nowhere\n", "1:9: found undefined alias" },
	{ "log_level: info\nlisten: \"\xc3\x28\"\n",
	  "2:11: invalid trailing UTF-8 octet" },
	{ "listen: 1.2.3.4:5\n---\nlisten: 1.2.3.4:6\n",
	  "3:1: only one YAML document is allowed" },
	{ "listen: 1.2.3.4:5\n---\n[\n",
	  "4:1: did not find expected node content (while parsing a flow "
	  "node started at line 4, column 1)" },
	{ "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"
	  "kkkk: 1\n",
	  "1:1: unknown key "
	  "'kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk...'" },
};

START_TEST(test_bad_value)
{
	const struct bad_case *c = &bad_cases[_i];

	ck_assert_int_eq(load(c->text), -EINVAL);
	expect_errors(&c->want, 1);
}
END_TEST

START_TEST(test_all_errors_reported)
{
	static const char *const want[] = {
		"2:3: unknown key 'rpss' in 'defaults'",
		"3:16: 'concurrency' must be an integer >= 1, got '0'",
		"6:10: 'scope' must be queue or destination, got 'everywhere'",
		"7:12: 'log_level' must be error, warn, info or debug, "
		"got 'loud'",
		"9:3: 'x.*' is not a destination pattern such as "
		"api.example.com, *.stripe.com or host:port",
		"9:16: 'rps' must be a number > 0, got 'fast'",
		"10:1: duplicate key 'log_level'",
	};

	ck_assert_int_eq(load("defaults:\n"
	                      "  rpss: 3\n"
	                      "  concurrency: 0\n"
	                      "  burst: 5\n"
	                      "learn:\n"
	                      "  scope: everywhere\n"
	                      "log_level: loud\n"
	                      "destinations:\n"
	                      "  \"x.*\": {rps: fast}\n"
	                      "log_level: warn\n"
	                      "max_in_flight: 7\n"), -EINVAL);
	expect_errors(want, N(want));
	/* Bad values leave the defaults; good ones around them count. */
	ck_assert_uint_eq(cfg->defaults.limits.concurrency, 2);
	ck_assert_uint_eq(cfg->defaults.limits.burst, 5);
	ck_assert_int_eq(cfg->learn.scope, LEARN_SCOPE_QUEUE);
	ck_assert_int_eq(cfg->log_level, LOG_LEVEL_INFO);
	ck_assert_uint_eq(cfg->max_in_flight, 7);
	ck_assert_uint_eq(cfg->n_destinations, 0);
}
END_TEST

START_TEST(test_errors_append)
{
	/* errs keeps what it had; each load adds its own. */
	ck_assert_int_eq(load("max_queued: 0\n"), -EINVAL);
	ck_assert_int_eq(load("max_queued: 0\n"), -EINVAL);
	ck_assert_uint_eq(errs.n, 2);
	ck_assert_int_eq(load("max_queued: 1\n"), 0);
	ck_assert_uint_eq(errs.n, 2);
	ck_assert_uint_eq(cfg->max_queued, 1);
}
END_TEST

/* Durations and sizes */

struct duration_case {
	const char *s;
	int64_t ms;
};

static const struct duration_case good_durations[] = {
	{ "0", 0 }, { "1", 1000 }, { "1.5", 1500 }, { "0.001", 1 },
	{ "10.000", 10000 }, { "500ms", 500 }, { "0ms", 0 }, { "30s", 30000 },
	{ "2.50s", 2500 }, { "5m", 300000 }, { "1.5h", 5400000 },
	{ "24h", 86400000 }, { "7d", 604800000 }, { "0.5d", 43200000 },
	{ "9223372036854775807ms", INT64_MAX },
	{ "9223372036854775.807", INT64_MAX },
};

static const char *const bad_durations[] = {
	"", "-1", "+1", "1e3", "1 s", " 1s", "1s ", "1.", ".5", "1S",
	"1sec", "ms", "s", "1.5.5", "1,5", "0x10", "inf", "nan", "1ms2",
	"0.5ms", "0.0001", "9223372036854775808ms", "106751991168d",
	"99999999999999999999", "1.00000000000000000001",
};

START_TEST(test_duration_good)
{
	const struct duration_case *c = &good_durations[_i];
	int64_t ms = -1;

	ck_assert_msg(config_parse_duration(c->s, &ms) == 0, "rejected '%s'",
	              c->s);
	ck_assert_int_eq(ms, c->ms);
}
END_TEST

START_TEST(test_duration_bad)
{
	int64_t ms = -7;

	ck_assert_msg(config_parse_duration(bad_durations[_i], &ms) == -EINVAL,
	              "accepted '%s'", bad_durations[_i]);
	ck_assert_int_eq(ms, -7);
}
END_TEST

struct size_case {
	const char *s;
	uint64_t bytes;
};

static const struct size_case good_sizes[] = {
	{ "0", 0 }, { "1024", 1024 }, { "1B", 1 }, { "10KiB", 10240 },
	{ "10MiB", 10485760 }, { "1GiB", 1073741824 },
	{ "2TiB", 2199023255552ULL }, { "10KB", 10000 }, { "10kB", 10000 },
	{ "10MB", 10000000 }, { "1GB", 1000000000 },
	{ "3TB", 3000000000000ULL }, { "1.5KiB", 1536 },
	{ "0.5MiB", 524288 }, { "2.5MB", 2500000 },
	{ "18446744073709551615", UINT64_MAX },
};

static const char *const bad_sizes[] = {
	"", "-1", "+1", "1.5", "10 MiB", "10mib", "10Mi", "10MiBs", "MiB",
	"18446744073709551616", "16777216TiB", "1e6", "0.1KiB", "0x10",
	"10M", "1.5B",
};

START_TEST(test_size_good)
{
	const struct size_case *c = &good_sizes[_i];
	uint64_t n = 7;

	ck_assert_msg(config_parse_size(c->s, &n) == 0, "rejected '%s'", c->s);
	ck_assert_uint_eq(n, c->bytes);
}
END_TEST

START_TEST(test_size_bad)
{
	uint64_t n = 7;

	ck_assert_msg(config_parse_size(bad_sizes[_i], &n) == -EINVAL,
	              "accepted '%s'", bad_sizes[_i]);
	ck_assert_uint_eq(n, 7);
}
END_TEST

/* Destination patterns */

static const char patterns_file[] =
	"destinations:\n"
	"  \"*.stripe.com\": {rps: 1}\n"
	"  \"*.api.stripe.com\": {rps: 2}\n"
	"  \"*.stripe.com:8443\": {rps: 3}\n"
	"  \"api.stripe.com\": {rps: 4}\n"
	"  \"api.stripe.com:443\": {rps: 5, concurrency: 9}\n"
	"  \"127.0.0.1:9000\": {rps: 6}\n"
	"  \"[::1]:9000\": {rps: 7}\n"
	"  \"::1\": {rps: 8}\n"
	"  \"[2001:DB8::1]\": {weight: 5, max_rps: 0.5}\n";

struct match_case {
	const char *host;
	unsigned port;
	double rps;             /* 0: no rule */
};

static const struct match_case match_cases[] = {
	{ "api.stripe.com", 443, 5 },   /* exact host:port */
	{ "api.stripe.com", 80, 4 },    /* exact host */
	{ "x.api.stripe.com", 443, 2 }, /* longest suffix */
	{ "x.api.stripe.com", 8443, 2 },/* ... even over a port */
	{ "pay.stripe.com", 8443, 3 },  /* same suffix: with port first */
	{ "pay.stripe.com", 443, 1 },
	{ "a.b.stripe.com", 443, 1 },
	{ "stripe.com", 443, 0 },       /* "*." needs a label */
	{ "xstripe.com", 443, 0 },
	{ "api.stripe.co", 443, 0 },
	{ "127.0.0.1", 9000, 6 },
	{ "127.0.0.1", 9001, 0 },
	{ "::1", 9000, 7 },
	{ "::1", 80, 8 },
	{ "2001:db8::1", 443, 0 },      /* weight only: defaults' rps */
	{ "other.example", 80, 0 },
};

START_TEST(test_match_destination)
{
	const struct match_case *c = &match_cases[_i];
	const struct dest_rule *r;
	struct limits l;

	load_ok(patterns_file);
	r = config_match_destination(cfg, c->host, c->port);
	config_limits_for(cfg, c->host, c->port, &l);
	if (c->rps > 0) {
		ck_assert_msg(r != NULL, "%s:%u: no rule", c->host, c->port);
		ck_assert_double_eq(r->limits.rps, c->rps);
		ck_assert_double_eq(l.rps, c->rps);
	} else {
		ck_assert_double_eq(l.rps, 2);
	}
	if (c->rps == 0 && strcmp(c->host, "2001:db8::1") != 0)
		ck_assert_ptr_null(r);
}
END_TEST

START_TEST(test_limits_overlay)
{
	const struct dest_rule *r;
	struct limits l;

	load_ok(patterns_file);
	config_limits_for(cfg, "api.stripe.com", 443, &l);
	ck_assert_double_eq(l.rps, 5);
	ck_assert_uint_eq(l.concurrency, 9);
	ck_assert_uint_eq(l.burst, 1);
	ck_assert_uint_eq(l.max_queued, 10000);
	ck_assert_double_eq(l.aggregate_rps, 0);
	ck_assert_uint_eq(l.aggregate_concurrency, 0);
	ck_assert_uint_eq(l.weight, 1);
	ck_assert_double_eq(l.max_rps, 0);

	r = config_match_destination(cfg, "2001:db8::1", 443);
	ck_assert_ptr_nonnull(r);
	ck_assert_str_eq(r->pattern, "[2001:db8::1]");
	ck_assert_str_eq(r->host, "2001:db8::1");
	ck_assert_uint_eq(r->port, 0);
	config_limits_for(cfg, "2001:db8::1", 443, &l);
	ck_assert_uint_eq(l.weight, 5);
	ck_assert_double_eq(l.rps, 2);
	ck_assert_double_eq(l.max_rps, 0.5);
}
END_TEST

/* The shipped example */

START_TEST(test_example_file_is_defaults)
{
	const char *t_src = getenv("T_SRC");
	struct config *def = config_new();
	char *path;
	int r;

	ck_assert_ptr_nonnull(def);
	ck_assert_int_ge(asprintf(&path, "%s/../etc/sluice.yaml",
	                          t_src ? t_src : "t"), 0);
	r = config_load(cfg, path, &errs);
	ck_assert_msg(r == 0, "%s: %d: %s", path, r,
	              errs.n ? errs.msgs[0] : "no message");
	ck_assert_uint_eq(errs.n, 0);
	ck_assert_str_eq(cfg->path, path);
	assert_config_equal(cfg, def);
	free(path);
	config_free(def);
}
END_TEST

struct tunnel_case {
	const char *pattern;
	const char *host;
	unsigned port;
	bool want;
};

static const struct tunnel_case tunnel_cases[] = {
	{ "api.example.com", "api.example.com", 443, true },
	{ "API.Example.com", "api.example.com", 8443, true },
	{ "api.example.com", "x.api.example.com", 443, false },
	{ "api.example.com", "api.example.co", 443, false },
	{ "*.internal.example", "a.internal.example", 443, true },
	{ "*.internal.example", "a.b.internal.example", 443, true },
	{ "*.internal.example", "internal.example", 443, false },
	{ "*.internal.example", "xinternal.example", 443, false },
	{ "api.example.com:8443", "api.example.com", 8443, true },
	{ "api.example.com:8443", "api.example.com", 443, false },
	{ "*.example.com:443", "a.example.com", 443, true },
	{ "*.example.com:443", "a.example.com", 444, false },
	{ "[::1]:443", "::1", 443, true },
	{ "[::1]:443", "::1", 80, false },
	{ "[::1]", "::1", 80, true },
	{ "2001:db8::1", "2001:db8::1", 443, true },
	{ "2001:db8::1", "2001:db8::2", 443, false },
	{ "127.0.0.1", "127.0.0.1", 1, true },
};

/* tls.tunnel patterns against a CONNECT host and port. */
START_TEST(test_tunnel_match)
{
	const struct tunnel_case *c = &tunnel_cases[_i];
	struct dest_rule r;

	/* Patterns are stored as config_pattern_parse() makes them. */
	ck_assert_int_eq(config_pattern_parse(c->pattern, &r), 0);
	ck_assert_msg(config_pattern_match(r.pattern, c->host, c->port) ==
	              c->want, "'%s' vs %s port %u", c->pattern, c->host,
	              c->port);
	free(r.host);
	free(r.pattern);
}
END_TEST

/*
 * Shared by reference: the last config_free() frees (ASan sees a leak or a
 * double free otherwise); a slot holds one offer, a newer one replaces it.
 */
START_TEST(test_refs_and_slot)
{
	struct config *a = config_new(), *b = config_new(), *c = config_new();
	const struct config *cur = a, *n;
	struct config_slot slot = { NULL };

	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_nonnull(b);
	ck_assert_ptr_nonnull(c);
	ck_assert_ptr_eq(config_ref(a), a);     /* cur's own reference */
	ck_assert_ptr_null(config_slot_take(&slot));
	ck_assert(!config_slot_swap(&slot, &cur));
	config_slot_offer(&slot, config_ref(b));
	config_slot_offer(&slot, config_ref(c)); /* b's offer dropped */
	ck_assert(config_slot_swap(&slot, &cur)); /* a's reference dropped */
	ck_assert_ptr_eq(cur, c);
	ck_assert_ptr_null(config_slot_take(&slot));
	config_slot_offer(&slot, config_ref(b));
	n = config_slot_take(&slot);
	ck_assert_ptr_eq(n, b);
	config_free(n);
	config_slot_offer(&slot, config_ref(a));
	config_slot_done(&slot);                 /* an offer never taken */
	config_free(cur);
	config_free(a);
	config_free(b);
	config_free(c);
}
END_TEST

/* A reload keeps what only a restart applies, and names it. */
START_TEST(test_restart_only)
{
	struct config *old = config_new(), *next = config_new();
	char names[256];

	ck_assert_uint_eq(config_restart_only(old, next, names, sizeof(names)),
	                  0);
	ck_assert_str_eq(names, "");
	ck_assert_int_eq(config_replace_str(&next->listen, "127.0.0.1:9"), 0);
	ck_assert_int_eq(config_replace_str(&next->redis.url,
	                                    "redis://127.0.0.1/"), 0);
	next->max_in_flight = 7;
	next->defaults.limits.rps = 99;          /* reloadable */
	ck_assert_uint_eq(config_restart_only(old, next, names, sizeof(names)),
	                  3);
	ck_assert_str_eq(names, "listen, redis.url, max_in_flight");
	ck_assert_str_eq(next->listen, old->listen);
	ck_assert_ptr_null(next->redis.url);
	ck_assert_uint_eq(next->max_in_flight, old->max_in_flight);
	ck_assert(next->defaults.limits.rps == 99);
	/* A small buffer: cut, still terminated, still counted. */
	next->max_header = 1;
	ck_assert_uint_eq(config_restart_only(old, next, names, 4), 1);
	ck_assert_uint_lt(strlen(names), 4);
	config_free(old);
	config_free(next);
}
END_TEST

static Suite *config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc;

	tc = tcase_create("load");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_defaults);
	tcase_add_test(tc, test_free_null);
	tcase_add_loop_test(tc, test_empty_file_is_defaults, 0,
	                    N(empty_files));
	tcase_add_test(tc, test_missing_file);
	tcase_add_test(tc, test_directory);
	tcase_add_test(tc, test_every_key);
	tcase_add_test(tc, test_reload_replaces);
	tcase_add_test(tc, test_lists_replace_defaults);
	tcase_add_test(tc, test_bad_list_keeps_old);
	tcase_add_test(tc, test_null_lists_are_empty);
	tcase_add_test(tc, test_listen_forms);
	tcase_add_test(tc, test_example_file_is_defaults);
	tcase_add_test(tc, test_refs_and_slot);
	tcase_add_test(tc, test_restart_only);
	suite_add_tcase(s, tc);

	tc = tcase_create("errors");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_loop_test(tc, test_bad_value, 0, N(bad_cases));
	tcase_add_test(tc, test_all_errors_reported);
	tcase_add_test(tc, test_errors_append);
	suite_add_tcase(s, tc);

	tc = tcase_create("values");
	tcase_add_loop_test(tc, test_duration_good, 0, N(good_durations));
	tcase_add_loop_test(tc, test_duration_bad, 0, N(bad_durations));
	tcase_add_loop_test(tc, test_size_good, 0, N(good_sizes));
	tcase_add_loop_test(tc, test_size_bad, 0, N(bad_sizes));
	suite_add_tcase(s, tc);

	tc = tcase_create("destinations");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_loop_test(tc, test_match_destination, 0, N(match_cases));
	tcase_add_test(tc, test_limits_overlay);
	tcase_add_loop_test(tc, test_tunnel_match, 0, N(tunnel_cases));
	suite_add_tcase(s, tc);
	return s;
}

TESTLIB_MAIN(config_suite)

/*
 * config.h - sluice.yaml and command-line configuration.
 *
 * One struct config holds every key of sluice.yaml(5). config_load() fills
 * it from a file on top of the built-in defaults; errors carry the file,
 * line and column of the offending node. Durations are milliseconds, sizes
 * are bytes.
 */
#ifndef SLUICE_CONFIG_H
#define SLUICE_CONFIG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cidr.h"
#include "rate_ctl.h"

#define CONFIG_DEFAULT_PATH "/etc/sluice/sluice.yaml"
#define CONFIG_WORKERS_MAX 64       /* engine loops */

enum log_level { LOG_LEVEL_ERROR, LOG_LEVEL_WARN, LOG_LEVEL_INFO,
                 LOG_LEVEL_DEBUG };
enum queue_by { QUEUE_BY_CREDENTIAL, QUEUE_BY_DESTINATION };
enum learn_scope { LEARN_SCOPE_QUEUE, LEARN_SCOPE_DESTINATION };

/* Limits of a queue; also the per-destination overrides. */
struct limits {
	double rps;                  /* requests per second, > 0 */
	unsigned concurrency;        /* requests in flight, >= 1 */
	unsigned burst;              /* GCRA burst, >= 1 */
	unsigned max_queued;         /* waiting requests per queue, >= 1 */
	double aggregate_rps;        /* destination-wide; 0 = unlimited */
	unsigned aggregate_concurrency; /* destination-wide; 0 = unlimited */
	unsigned weight;             /* DRR quantum, >= 1 */
	double max_rps;              /* learned rates above are cut; 0: none */
	enum rate_mode mode;         /* paced, frugal, adaptive */
};

/* Bits of struct dest_rule.set: which fields the rule gives. */
enum {
	LIMIT_RPS = 1 << 0,
	LIMIT_CONCURRENCY = 1 << 1,
	LIMIT_BURST = 1 << 2,
	LIMIT_MAX_QUEUED = 1 << 3,
	LIMIT_AGGREGATE_RPS = 1 << 4,
	LIMIT_AGGREGATE_CONCURRENCY = 1 << 5,
	LIMIT_WEIGHT = 1 << 6,
	LIMIT_MAX_RPS = 1 << 7,
	LIMIT_MODE = 1 << 8,
};

/*
 * A destinations: entry. pattern is lower-cased; host is the host part
 * ("*.stripe.com" keeps the "*." prefix), port 0 = any port.
 */
struct dest_rule {
	char *pattern;
	char *host;
	unsigned port;
	bool wildcard;               /* pattern was "*.suffix" */
	unsigned set;                /* LIMIT_* bits */
	struct limits limits;
};

/* A keys: entry, by displayed key hash (12 lower-case hex digits). */
struct key_rule {
	char hash[13];
	unsigned weight;
};

struct config {
	atomic_uint refs;            /* config_ref / config_free */
	char *path;                  /* file loaded, or NULL for defaults */

	char *listen;                /* "ADDR:PORT", "[::1]:PORT" */
	char *admin_listen;
	char *state_dir;
	struct cidr_list allow;
	struct cidr_list deny_destinations; /* + own listeners, at start */
	struct cidr_list admin_allow;
	char *admin_token_file;      /* NULL: no token asked for */
	int64_t admin_timeout;       /* ms, idle admin connection */
	unsigned max_in_flight;
	unsigned workers;            /* engine loops; 0: one per online core */
	unsigned max_queued;         /* whole daemon */
	unsigned max_queues;         /* credential queues, whole daemon */
	uint64_t max_body;           /* bytes */
	uint64_t max_header;         /* bytes: request header block */
	int64_t sync_timeout;        /* ms */
	int64_t drain_timeout;       /* ms */
	int64_t client_timeout;      /* ms, idle or slow client */
	uint64_t min_body_rate;      /* bytes/s after client_timeout; 0: off */
	enum log_level log_level;
	bool access_log;
	bool reject_hopeless;        /* 503 when the wait would pass the deadline */

	struct {
		struct limits limits;
		enum queue_by queue_by;
		char **key_headers;
		size_t n_key_headers;
	} defaults;

	struct {
		bool ezthrottle_headers;
		bool retry_after;
		bool ratelimit_headers;
		enum learn_scope scope;
		double min_rps;
		double max_rps;
		unsigned max_concurrency;
		int64_t idle_reset;  /* ms */
		int64_t probe_interval; /* ms, adaptive mode */
	} learn;

	struct {
		unsigned max_retries;
		unsigned *on;        /* status codes */
		size_t n_on;
		int64_t backoff_base;    /* ms */
		int64_t backoff_cap;     /* ms */
		int64_t max_retry_after; /* ms */
	} retry;

	struct dest_rule *destinations;
	size_t n_destinations;

	struct key_rule *keys;
	size_t n_keys;

	struct {
		char *secret_file;
		char *secondary_secret_file;
		int64_t timeout;         /* ms */
		int64_t *retry_schedule; /* ms each */
		size_t n_retry_schedule;
		int64_t give_up_after;   /* ms */
	} webhooks;

	struct {
		int64_t retain;          /* ms */
		bool dedupe_anonymous;   /* keys of keyless clients dedupe */
		unsigned max_pending;    /* jobs accepted, not finished */
		uint64_t max_pending_bytes; /* their request bodies */
	} jobs;

	struct {
		unsigned max_destinations; /* labelled apart; the rest "other" */
		bool per_key;            /* series per key hash */
		unsigned max_keys;       /* at most this many keys' series */
	} metrics;

	struct {
		bool intercept;
		char **tunnel;
		size_t n_tunnel;
		char *upstream_ca_file;
		unsigned max_tunnels;        /* CONNECT connections held */
		unsigned max_handshakes;     /* TLS handshakes under way */
		unsigned leaf_cache;         /* certificates kept */
		int64_t tunnel_idle_timeout; /* ms, opaque tunnels */
	} tls;

	struct {
		char *url;
	} redis;
};

/* One error, formatted "file:line:column: message". */
struct config_errors {
	char **msgs;
	size_t n;
};

/* Allocates a config holding the built-in defaults. NULL on OOM. */
struct config *config_new(void);

/*
 * Reads path on top of the defaults already in cfg. Every error in the file
 * is appended to errs (not just the first). Returns 0, -EINVAL when the file
 * has errors, or another negative errno (file unreadable: one message in
 * errs too). On failure cfg is still valid but may be partly updated.
 */
int config_load(struct config *cfg, const char *path,
                struct config_errors *errs);

/*
 * A configuration is shared by reference: each thread that reads one
 * holds a reference to the one it reads, and a reload hands each a new
 * one (a config_slot) that it takes between two pieces of work, so no
 * thread ever sees a configuration change under it. config_new() gives
 * the first reference. Both any thread.
 */
const struct config *config_ref(const struct config *cfg);

/* Drops a reference; the last frees cfg and everything it owns. Takes NULL. */
void config_free(const struct config *cfg);

/*
 * A configuration offered to a thread, to take when it is between two
 * pieces of work. One at most: a newer offer replaces one not taken.
 */
struct config_slot {
	_Atomic(const struct config *) next;
};

/* Any thread: offers a reference to cfg (taken from the caller). */
void config_slot_offer(struct config_slot *s, const struct config *cfg);

/*
 * The owner's thread: the offer waiting (the reference is the caller's
 * now), or NULL. Cheap when there is none: one relaxed load.
 */
const struct config *config_slot_take(struct config_slot *s);

/* The owner's thread: takes an offer into *cur, dropping *cur. True if one. */
bool config_slot_swap(struct config_slot *s, const struct config **cur);

/* Drops an offer not taken (at teardown). */
void config_slot_done(struct config_slot *s);

/*
 * A reload: the settings of next that only a restart applies (listeners,
 * state directory, sizes fixed at start) are set back to old's, and their
 * names written to names as "listen, state_dir" ("" when none). The
 * number of such settings.
 */
unsigned config_restart_only(const struct config *old, struct config *next,
                             char *names, size_t size);

/* Frees the messages, leaves errs empty. */
void config_errors_done(struct config_errors *errs);

/* Frees the strings of a rule. */
void config_rule_done(struct dest_rule *r);

/* Frees n strings and the array. Takes NULL. */
void config_strv_free(char **v, size_t n);

/* Replaces *dst with a copy of s; NULL unsets it. 0 or -ENOMEM. */
int config_replace_str(char **dst, const char *s);

/*
 * The rule for host:port (host lower-case): exact host:port beats exact
 * host beats the longest matching "*.suffix". NULL when none matches.
 */
const struct dest_rule *config_match_destination(const struct config *cfg,
                                                 const char *host,
                                                 unsigned port);

/*
 * The limits for host:port: defaults overlaid with the matching rule's
 * fields. Written to *ret.
 */
void config_limits_for(const struct config *cfg, const char *host,
                       unsigned port, struct limits *ret);

#endif

/*
 * metrics_types.h - what the engine hands the admin listener for
 * /metrics (engine_metrics() in engine.h); plain data.
 */
#ifndef SLUICE_METRICS_TYPES_H
#define SLUICE_METRICS_TYPES_H

#include <stdbool.h>
#include <stdint.h>

#include "classify.h"
#include "cred.h"

/* The daemon-wide counts that /queues and /metrics both show. */
struct engine_counts {
	size_t queues;
	unsigned waiting, in_flight;
	uint64_t requests, attempts, retries, queue_full, hopeless, timeouts;
	uint64_t learn_bad, overflow;
};

/* Buckets of the queue wait histogram (engine_wait_le), +Inf apart. */
#define ENGINE_WAIT_BUCKETS 14

/* Why an upstream attempt got no answer. */
enum upstream_error {
	UPERR_DNS, UPERR_CONNECT, UPERR_TIMEOUT, UPERR_TLS, UPERR_RESET,
	UPERR_DENIED, UPERR_TOO_LARGE, UPERR_OTHER, UPERR_KINDS
};

/* A request's final status: 2xx to 5xx, or none (the client left). */
enum { CLASS_2XX, CLASS_3XX, CLASS_4XX, CLASS_5XX, CLASS_NONE, CLASSES };

/* The metrics of one destination, or "other" for all past the cap. */
struct dest_metrics {
	char dest[DEST_HOST_MAX + 32];
	uint64_t requests[CLASSES];  /* ended, by final status */
	uint64_t attempts, retries;
	uint64_t errors[UPERR_KINDS];
	double rate;                 /* its queues' rates in force, summed */
	unsigned queues, waiting, in_flight;
	unsigned unpaced;            /* its queues with no rate (frugal) */
};

/* A queue's gauges, labelled by its key hash (metrics.per_key). */
struct key_metrics {
	char dest[DEST_HOST_MAX + 32];
	char key[CRED_DISPLAY_LEN + 1];
	double rate;
	unsigned waiting, in_flight;
};

#define ENGINE_RATE_SOURCES 5        /* configured .. backoff */

struct engine_metrics {
	/* The caller's arrays and their room; the engine fills n_. */
	struct dest_metrics *dests;  /* room: metrics.max_destinations + 1 */
	unsigned cap_dests, n_dests;
	struct key_metrics *keys;    /* room: metrics.max_keys, or none */
	unsigned cap_keys, n_keys;
	bool keys_cut;               /* more keys than cap_keys */

	uint64_t wait[ENGINE_WAIT_BUCKETS + 1]; /* per bucket, +Inf last */
	uint64_t wait_count;
	double wait_sum;             /* seconds */
	uint64_t rate_changes[ENGINE_RATE_SOURCES];
	uint64_t pauses_retry_after, pauses_quota;
	struct engine_counts c;
	int64_t engine_us;           /* time the engine spent on it */
};

#endif

/*
 * admin_metrics.h - the text of GET /metrics (Prometheus exposition
 * format 0.0.4) from snapshots of the daemon's parts.
 */
#ifndef SLUICE_ADMIN_METRICS_H
#define SLUICE_ADMIN_METRICS_H

#include <stdbool.h>
#include <stddef.h>

#include "delivery.h"
#include "engine.h"
#include "jobrun.h"
#include "jobs_types.h"
#include "tunnel.h"

struct metrics_input {
	const char *version;
	const struct engine_metrics *eng; /* NULL: left out */
	bool per_key;                /* the key_* families */
	bool have_jobs;
	struct jobrun_pending jobs;
	struct jobs_stats store;
	bool have_delivery;
	struct delivery_stats delivery;
	bool have_tls;
	struct tunnels_stats tls;
	unsigned reloads, reload_failures;
};

/* The text (malloc'd, *ret_len bytes, NUL-terminated), or NULL on OOM. */
char *metrics_text(const struct metrics_input *in, size_t *ret_len);

#endif

/*
 * admin_metrics.c - GET /metrics: the daemon's counters as Prometheus text
 * (exposition format 0.0.4), every name prefixed sluice_, each family
 * with its # HELP and # TYPE. Pure formatting of snapshots the callers
 * took; no credential is in any of them (keys appear only as the keyed
 * hashes /queues shows, and only with metrics.per_key).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_metrics.h"

/* A label value: \, " and newline escaped. */
static void label(FILE *f, const char *v)
{
	for (; *v; v++) {
		if (*v == '\n') {
			fputs("\\n", f);
			continue;
		}
		if (*v == '\\' || *v == '"')
			fputc('\\', f);
		fputc(*v, f);
	}
}

static void family(FILE *f, const char *name, const char *type,
                   const char *help)
{
	fprintf(f, "# HELP sluice_%s %s\n# TYPE sluice_%s %s\n", name, help,
	        name, type);
}

/* sluice_NAME{destination="D"[,L2="V2"]} followed by a space. */
static void dest_series(FILE *f, const char *name, const char *dest,
                        const char *l2, const char *v2)
{
	fprintf(f, "sluice_%s{destination=\"", name);
	label(f, dest);
	if (l2) {
		fprintf(f, "\",%s=\"", l2);
		label(f, v2);
	}
	fputs("\"} ", f);
}

static void dest_u64(FILE *f, const char *name, const char *dest,
                     const char *l2, const char *v2, unsigned long long v)
{
	dest_series(f, name, dest, l2, v2);
	fprintf(f, "%llu\n", v);
}

static void dest_double(FILE *f, const char *name, const char *dest,
                        const char *l2, const char *v2, double v)
{
	dest_series(f, name, dest, l2, v2);
	fprintf(f, "%.17g\n", v);
}

static void one(FILE *f, const char *name, const char *type,
                const char *help, unsigned long long v)
{
	family(f, name, type, help);
	fprintf(f, "sluice_%s %llu\n", name, v);
}

/* A family with one label and a value per label value. */
static void by(FILE *f, const char *name, const char *type, const char *help,
               const char *lname, const char *const *lvals,
               const unsigned long long *v, unsigned n)
{
	family(f, name, type, help);
	for (unsigned i = 0; i < n; i++)
		fprintf(f, "sluice_%s{%s=\"%s\"} %llu\n", name, lname, lvals[i],
		        v[i]);
}

/* The members of a destination's row that make a family of their own. */
enum dest_field { DF_ATTEMPTS, DF_RETRIES, DF_QUEUES, DF_WAITING,
                  DF_IN_FLIGHT };

static unsigned long long dest_field(const struct dest_metrics *d,
                                     enum dest_field which)
{
	switch (which) {
	case DF_ATTEMPTS:
		return d->attempts;
	case DF_RETRIES:
		return d->retries;
	case DF_QUEUES:
		return d->queues;
	case DF_WAITING:
		return d->waiting;
	case DF_IN_FLIGHT:
		return d->in_flight;
	}
	return 0;
}

/* A family with one series per destination: that member of its row. */
static void per_dest(FILE *f, const struct engine_metrics *m,
                     const char *name, const char *type, const char *help,
                     enum dest_field which)
{
	family(f, name, type, help);
	for (unsigned i = 0; i < m->n_dests; i++)
		dest_u64(f, name, m->dests[i].dest, NULL, NULL,
		         dest_field(&m->dests[i], which));
}

static void requests_part(FILE *f, const struct engine_metrics *m)
{
	unsigned i, c;

	family(f, "requests_total", "counter",
	       "Requests ended, by destination and the class of the final "
	       "status the client got (none: the client left first). "
	       "Destinations past metrics.max_destinations are \"other\".");
	for (i = 0; i < m->n_dests; i++)
		for (c = 0; c < CLASSES; c++)
			dest_u64(f, "requests_total", m->dests[i].dest, "class",
			         engine_class_name(c),
			         m->dests[i].requests[c]);
	per_dest(f, m, "upstream_attempts_total", "counter",
	         "Attempts sent upstream, by destination.", DF_ATTEMPTS);
	per_dest(f, m, "retries_total", "counter",
	         "Attempts tried again (after a 429, a 5xx or no answer), by "
	         "destination.", DF_RETRIES);
	family(f, "upstream_errors_total", "counter",
	       "Attempts that got no usable answer, by destination and kind "
	       "(dns, connect, timeout, tls, reset, denied, too_large, "
	       "other); kinds not seen are left out.");
	for (i = 0; i < m->n_dests; i++)
		for (c = 0; c < UPERR_KINDS; c++)
			if (m->dests[i].errors[c])
				dest_u64(f, "upstream_errors_total",
				         m->dests[i].dest, "kind",
				         engine_error_name(c),
				         m->dests[i].errors[c]);
}

static void gauges_part(FILE *f, const struct engine_metrics *m)
{
	unsigned i;

	family(f, "destination_rate", "gauge",
	       "Requests per second the destination's queues may send now, "
	       "summed (learned or configured; unpaced queues not counted).");
	for (i = 0; i < m->n_dests; i++)
		dest_double(f, "destination_rate", m->dests[i].dest, NULL, NULL,
		            m->dests[i].rate);
	per_dest(f, m, "destination_queues", "gauge",
	         "Queues of the destination (one per credential).", DF_QUEUES);
	per_dest(f, m, "destination_waiting", "gauge",
	         "Requests waiting in the destination's queues.", DF_WAITING);
	per_dest(f, m, "destination_in_flight", "gauge",
	         "Requests of the destination upstream now.", DF_IN_FLIGHT);
	one(f, "queues", "gauge", "Queues the daemon holds.", m->c.queues);
	one(f, "waiting_requests", "gauge", "Requests waiting in all queues.",
	    m->c.waiting);
	one(f, "in_flight_requests", "gauge", "Requests upstream now.",
	    m->c.in_flight);
}

static void wait_part(FILE *f, const struct engine_metrics *m)
{
	unsigned long long cum = 0;
	unsigned b;

	family(f, "queue_wait_seconds", "histogram",
	       "Time each attempt waited in its queue before it was sent.");
	for (b = 0; b < ENGINE_WAIT_BUCKETS; b++) {
		cum += m->wait[b];
		fprintf(f, "sluice_queue_wait_seconds_bucket{le=\"%g\"} %llu\n",
		        engine_wait_le[b], cum);
	}
	cum += m->wait[ENGINE_WAIT_BUCKETS];
	fprintf(f, "sluice_queue_wait_seconds_bucket{le=\"+Inf\"} %llu\n",
	        cum);
	fprintf(f, "sluice_queue_wait_seconds_sum %.17g\n", m->wait_sum);
	fprintf(f, "sluice_queue_wait_seconds_count %llu\n",
	        (unsigned long long)m->wait_count);
}

static void learning_part(FILE *f, const struct engine_metrics *m)
{
	static const char *const sources[ENGINE_RATE_SOURCES] = {
		"configured", "ezthrottle", "quota", "probe", "backoff",
	};
	static const char *const pause_sources[] = { "retry_after", "quota" };
	static const char *const refusals[] = {
		"queue_full", "queue_wait_exceeds_deadline", "timeout",
	};
	unsigned long long v[ENGINE_RATE_SOURCES];

	for (unsigned i = 0; i < ENGINE_RATE_SOURCES; i++)
		v[i] = m->rate_changes[i];
	by(f, "rate_changes_total", "counter",
	   "Changes of a queue's rate, by the source of the new rate.",
	   "source", sources, v, ENGINE_RATE_SOURCES);
	v[0] = m->pauses_retry_after;
	v[1] = m->pauses_quota;
	by(f, "pauses_total", "counter",
	   "Queues paused by an answer: its Retry-After on a 429 or 503, or "
	   "a quota with nothing left.", "source", pause_sources, v, 2);
	v[0] = m->c.queue_full;
	v[1] = m->c.hopeless;
	v[2] = m->c.timeouts;
	by(f, "refused_total", "counter",
	   "Requests answered by the daemon itself: queue full (503), "
	   "predicted wait past the deadline (503), deadline passed (504).",
	   "reason", refusals, v, 3);
	one(f, "learn_bad_values_total", "counter",
	    "Rate-limit header values that could not be parsed (ignored).",
	    m->c.learn_bad);
	one(f, "overflow_requests_total", "counter",
	    "Requests sent to a destination's overflow queue (max_queues).",
	    m->c.overflow);
}

static void keys_part(FILE *f, const struct engine_metrics *m)
{
	static const char *const names[] = {
		"key_rate", "key_waiting", "key_in_flight",
	};
	static const char *const helps[] = {
		"A queue's rate in force, by destination and key hash.",
		"Requests waiting in a queue, by destination and key hash.",
		"Requests of a queue upstream now, by destination and key hash.",
	};

	for (unsigned k = 0; k < 3; k++) {
		family(f, names[k], "gauge", helps[k]);
		for (unsigned i = 0; i < m->n_keys; i++) {
			const struct key_metrics *km = &m->keys[i];

			if (k == 0)
				dest_double(f, names[k], km->dest, "key",
				            km->key, km->rate);
			else
				dest_u64(f, names[k], km->dest, "key", km->key,
				         k == 1 ? km->waiting : km->in_flight);
		}
	}
	one(f, "key_series_cut", "gauge",
	    "1 when more queues have a key than metrics.max_keys shows.",
	    m->keys_cut);
}

static void jobs_part(FILE *f, const struct metrics_input *in)
{
	static const char *const states[] = { "in_memory", "stored" };
	static const char *const results[] = { "succeeded", "failed" };
	unsigned long long v[2];

	v[0] = in->jobs.held;
	v[1] = in->jobs.stored;
	by(f, "jobs", "gauge",
	   "Webhook jobs accepted and not ended: held by the engine, or "
	   "waiting in the job store for room.", "state", states, v, 2);
	one(f, "jobs_accepted_total", "counter",
	    "Webhook jobs stored (202).", in->store.jobs);
	one(f, "jobs_duplicates_total", "counter",
	    "Webhook jobs answered with an existing job (idempotent key).",
	    in->store.duplicates);
	v[0] = in->jobs.succeeded;
	v[1] = in->jobs.failed;
	by(f, "jobs_ended_total", "counter",
	   "Webhook jobs ended since the start, by result.", "result",
	   results, v, 2);
}

static void deliveries_part(FILE *f, const struct delivery_stats *d)
{
	static const char *const outcomes[] = {
		"delivered", "failed", "gave_up",
	};
	unsigned long long v[3] = { d->delivered, d->failed_attempts,
	                            d->gave_up };

	by(f, "webhook_deliveries_total", "counter",
	   "Webhook delivery attempts by outcome (gave_up: a target given up "
	   "after webhooks.give_up_after).", "outcome", outcomes, v, 3);
}

static void tls_part(FILE *f, const struct tunnels_stats *t)
{
	static const char *const results[] = { "ok", "failed" };
	unsigned long long v[2] = { t->intercepted, t->handshake_failed };

	by(f, "tls_handshakes_total", "counter",
	   "TLS handshakes with clients of intercepted CONNECT tunnels.",
	   "result", results, v, 2);
	one(f, "connects_total", "counter", "CONNECT requests read.",
	    t->connects);
	one(f, "connects_refused_total", "counter",
	    "CONNECT requests answered with an error.", t->refused);
	one(f, "tunnels_opaque_total", "counter",
	    "Opaque tunnels opened.", t->opaque);
	one(f, "tunnels_open", "gauge", "CONNECT connections held now.",
	    t->open);
	one(f, "tls_leaves_minted_total", "counter",
	    "Certificates made for intercepted hosts.", t->leaves_minted);
}

char *metrics_text(const struct metrics_input *in, size_t *ret_len)
{
	static const char *const results[] = { "ok", "failed" };
	unsigned long long v[2] = { in->reloads, in->reload_failures };
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return NULL;
	family(f, "build_info", "gauge", "The running sluiced: always 1.");
	fputs("sluice_build_info{version=\"", f);
	label(f, in->version ? in->version : "unknown");
	fputs("\"} 1\n", f);
	if (in->eng) {
		requests_part(f, in->eng);
		gauges_part(f, in->eng);
		wait_part(f, in->eng);
		learning_part(f, in->eng);
		if (in->per_key)
			keys_part(f, in->eng);
	}
	if (in->have_jobs)
		jobs_part(f, in);
	if (in->have_delivery)
		deliveries_part(f, &in->delivery);
	if (in->have_tls)
		tls_part(f, &in->tls);
	by(f, "reloads_total", "counter",
	   "Configuration reloads (SIGHUP, POST /reload), by result.",
	   "result", results, v, 2);
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	*ret_len = len;
	return buf;
}

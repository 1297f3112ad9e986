/*
 * engine_metrics.c - what /metrics counts, under the engine's lock: each
 * destination's requests by final status class, attempts, retries and
 * upstream errors by kind, the queue wait histogram, pauses by source;
 * and at a scrape, the gauges read from the scheduler.
 *
 * Destinations get their own counters in the order they are first seen,
 * up to metrics.max_destinations; the rest share "other". Counters never
 * move from one label to another, so every series only grows (a "top N"
 * that re-ranked would make them jump). The stats outlive the scheduler's
 * destination, which is freed when idle; it keeps a pointer to them so a
 * request's finds them without a hash lookup.
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "config.h"
#include "cred.h"
#include "engine.h"
#include "engine_int.h"
#include "request.h"
#include "sched.h"

const double engine_wait_le[ENGINE_WAIT_BUCKETS] = {
	0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
	60,
};

const char *engine_error_name(enum upstream_error k)
{
	static const char *const names[] = {
		[UPERR_DNS] = "dns", [UPERR_CONNECT] = "connect",
		[UPERR_TIMEOUT] = "timeout", [UPERR_TLS] = "tls",
		[UPERR_RESET] = "reset", [UPERR_DENIED] = "denied",
		[UPERR_TOO_LARGE] = "too_large", [UPERR_OTHER] = "other",
	};

	return (unsigned)k < UPERR_KINDS ? names[k] : "other";
}

const char *engine_class_name(unsigned c)
{
	static const char *const names[] = {
		[CLASS_2XX] = "2xx", [CLASS_3XX] = "3xx", [CLASS_4XX] = "4xx",
		[CLASS_5XX] = "5xx", [CLASS_NONE] = "none",
	};

	return c < CLASSES ? names[c] : "none";
}

struct dest_stats *engine_dest_stats(struct engine *e, const char *dest)
{
	struct engine_mstate *ms = &e->ms;
	struct dest_stats *ds;
	size_t len = strlen(dest);

	HASH_FIND(hh, ms->by_dest, dest, len, ds);
	if (ds)
		return ds;
	if (ms->n_dests >= e->cfg->metrics.max_destinations ||
	    len >= sizeof(ds->m.dest) || !(ds = calloc(1, sizeof(*ds))))
		return &ms->other;
	memcpy(ds->m.dest, dest, len + 1);
	ds->idx = ms->n_dests++;
	HASH_ADD(hh, ms->by_dest, m.dest, len, ds);
	return ds;
}

/* r's: through its queue's destination while it is in one. */
static struct dest_stats *stats_of(struct engine *e, struct request *r)
{
	struct dest_stats *ds = NULL;

	if ((r->eng_state == ENG_WAITING || r->eng_state == ENG_STARTING ||
	     r->eng_state == ENG_RUNNING) &&
	    r->item.q) {
		struct sched_dest *d = sched_queue_dest(r->item.q);

		ds = sched_dest_user(d);
		if (!ds) {
			ds = engine_dest_stats(e, r->dest_key);
			sched_dest_set_user(d, ds);
		}
	}
	return ds ? ds : engine_dest_stats(e, r->dest_key);
}

void engine_metrics_attempt(struct engine *e, struct request *r,
                            int64_t waited_us)
{
	struct engine_mstate *ms = &e->ms;
	double secs = (double)waited_us / 1e6;
	unsigned b = 0;

	stats_of(e, r)->m.attempts++;
	while (b < ENGINE_WAIT_BUCKETS && secs > engine_wait_le[b])
		b++;
	ms->wait[b]++;
	ms->wait_count++;
	ms->wait_sum += secs;
}

void engine_metrics_retry(struct engine *e, struct request *r)
{
	stats_of(e, r)->m.retries++;
}

void engine_metrics_error(struct engine *e, struct request *r, int rc)
{
	enum upstream_error k;

	switch ((CURLcode)rc) {
	case CURLE_COULDNT_RESOLVE_HOST:
		k = UPERR_DNS;
		break;
	case CURLE_COULDNT_CONNECT:
		k = r->denied ? UPERR_DENIED : UPERR_CONNECT;
		break;
	case CURLE_OPERATION_TIMEDOUT:
		k = UPERR_TIMEOUT;
		break;
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
		k = UPERR_TLS;
		break;
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_WEIRD_SERVER_REPLY:
		k = UPERR_RESET;
		break;
	case CURLE_WRITE_ERROR:
		k = r->resp_too_large ? UPERR_TOO_LARGE : UPERR_OTHER;
		break;
	default:
		k = r->denied ? UPERR_DENIED : UPERR_OTHER;
		break;
	}
	stats_of(e, r)->m.errors[k]++;
}

void engine_metrics_end(struct engine *e, struct request *r)
{
	unsigned status, c;

	pthread_mutex_lock(&r->lock);
	status = r->phase == REQ_FAILED ? r->err_status
	         : r->cancelled ? 0 : r->status;
	pthread_mutex_unlock(&r->lock);
	c = status >= 200 && status < 600 ? status / 100 - 2 : CLASS_NONE;
	stats_of(e, r)->m.requests[c]++;
}

struct fill {
	struct engine_metrics *m;
	bool per_key;
};

/* A queue's gauges into its destination's row, and its own with keys. */
static void fill_queue(const struct sched_queue_info *qi, void *arg)
{
	struct fill *f = arg;
	struct engine_metrics *m = f->m;
	const struct dest_stats *ds = qi->dest_user;
	struct dest_metrics *dm;
	struct key_metrics *km;

	if (!ds || ds->idx >= m->n_dests)
		dm = &m->dests[m->n_dests - 1];  /* other */
	else
		dm = &m->dests[ds->idx];
	dm->queues++;
	dm->waiting += qi->waiting;
	dm->in_flight += qi->in_flight;
	if (qi->rate > 0)
		dm->rate += qi->rate;
	else
		dm->unpaced++;
	if (!f->per_key || qi->key_len != CRED_HASH_LEN)
		return;
	if (m->n_keys >= m->cap_keys) {
		m->keys_cut = true;
		return;
	}
	km = &m->keys[m->n_keys++];

	snprintf(km->dest, sizeof(km->dest), "%s", qi->dest);
	cred_display(qi->key, km->key);
	km->rate = qi->rate;
	km->waiting = qi->waiting;
	km->in_flight = qi->in_flight;
}

void engine_metrics_fill(struct engine *e, struct engine_metrics *m)
{
	struct engine_mstate *ms = &e->ms;
	struct fill f = { .m = m, .per_key = e->cfg->metrics.per_key };
	struct dest_stats *ds, *tmp;
	int64_t t0 = clock_now_us();
	uint64_t changes[SCHED_RATE_SOURCES];

	/* Its own rows in creation order, then "other", which is last. */
	m->n_dests = 0;
	m->n_keys = 0;
	m->keys_cut = false;
	if (m->cap_dests == 0)
		return;
	HASH_ITER(hh, ms->by_dest, ds, tmp) {
		if (ds->idx + 1 < m->cap_dests) {
			m->dests[ds->idx] = ds->m;
			if (ds->idx + 1 > m->n_dests)
				m->n_dests = ds->idx + 1;
		}
	}
	m->dests[m->n_dests] = ms->other.m;
	snprintf(m->dests[m->n_dests].dest, sizeof(m->dests[0].dest), "other");
	m->n_dests++;
	if (!f.per_key)
		m->cap_keys = 0;
	sched_foreach(e->sched, fill_queue, &f);
	memcpy(m->wait, ms->wait, sizeof(m->wait));
	m->wait_count = ms->wait_count;
	m->wait_sum = ms->wait_sum;
	sched_rate_changes(e->sched, changes);
	for (unsigned i = 0; i < ENGINE_RATE_SOURCES && i < SCHED_RATE_SOURCES;
	     i++)
		m->rate_changes[i] = changes[i];
	m->pauses_retry_after = ms->pauses_retry_after;
	m->pauses_quota = ms->pauses_quota;
	engine_counts_fill(e, &m->c);
	m->engine_us = clock_now_us() - t0;
}

void engine_metrics_free(struct engine *e)
{
	struct dest_stats *ds, *tmp;

	HASH_ITER(hh, e->ms.by_dest, ds, tmp) {
		HASH_DEL(e->ms.by_dest, ds);
		free(ds);
	}
}

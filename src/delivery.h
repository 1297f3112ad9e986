/*
 * delivery.h - webhook deliveries: one thread with its own curl multi
 * handle and a timer heap. Each finished job's result is POSTed, signed,
 * to each of its webhooks; a failure (non-2xx, no answer within
 * webhooks.timeout) is tried again on webhooks.retry_schedule until
 * webhooks.give_up_after from the job's end. Every try is recorded in the
 * store (asynchronously). Deliveries are not throttled through the
 * destination queues: they go to the job owner's own receivers.
 *
 * A job counts as delivered once quorum of its webhooks answered 2xx; the
 * others are still tried until they succeed or give up.
 */
#ifndef SLUICE_DELIVERY_H
#define SLUICE_DELIVERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "jobs.h"
#include "webhook.h"

struct config;

/* At most this many deliveries in flight at once; the rest wait due. */
#define DELIVERY_PARALLEL 256

/*
 * Payloads in memory, in bytes: a try whose payload is not in memory yet
 * waits due while those of the tries in flight total this or more (with
 * its response body counted), unless none is in memory. So at most this
 * plus one payload (a response body of up to JOB_RESPONSE_MAX, encoded).
 */
#define DELIVERY_PAYLOAD_BYTES (16u << 20)

/*
 * What to deliver: a job's end, and where its deliveries stand. A job
 * waiting for its deliveries keeps in memory only what scheduling needs
 * (id, URLs, due times, attempts, quorum); its payload is built from the
 * store (jobs_get_result) when a try starts and dropped when the last
 * try in flight on it ends.
 */
struct delivery_spec {
	const char *job_id;
	/*
	 * The store holds the job's end (it is done there): the fields
	 * below up to end are not used, end only for end.body_len, the
	 * payload's size. Otherwise they are copied, until
	 * delivery_job_stored().
	 */
	bool stored;
	const char *idempotent_key;     /* NULL: none */
	const char *metadata_json;      /* NULL: {} */
	struct job_result end;
	unsigned quorum;
	int64_t finished_ms;            /* unix ms: the give-up clock starts */
	const char *const *urls;
	size_t n_urls;
	/*
	 * Per URL, from the store (recovery); NULL: all pending, untried,
	 * due now.
	 */
	const struct job_delivery *states;
};

struct delivery_job;
struct delivery;

/*
 * A copy of spec, ready for delivery_submit(). NULL on OOM or when
 * nothing is pending.
 */
struct delivery_job *delivery_job_new(const struct delivery_spec *spec);

/*
 * The job's end is durable in the store now: its copy is dropped, each
 * try reads it from the store. Before delivery_submit() only.
 */
void delivery_job_stored(struct delivery_job *dj);

/* Takes NULL. */
void delivery_job_free(struct delivery_job *dj);

/*
 * The thread, with a reference to cfg; store must outlive it; secret
 * (NULL: unsigned) is copied. NULL on error.
 */
struct delivery *delivery_new(const struct config *cfg, struct jobs *store,
                              const struct webhook_secret *secret);

/*
 * A reload: the thread signs with secret (copied; NULL: unsigned) and
 * follows cfg (a reference of its own) from its next round. Deliveries
 * already under way finish as they began. Any thread.
 */
void delivery_reconfigure(struct delivery *d, const struct config *cfg,
                          const struct webhook_secret *secret);

/* Starts the thread. 0 or negative errno. */
int delivery_start(struct delivery *d);

/*
 * Hands dj over (always: freed at once when the thread has stopped). Any
 * thread, never blocks on a delivery.
 */
void delivery_submit(struct delivery *d, struct delivery_job *dj);

/* Counters, any thread. */
struct delivery_stats {
	uint64_t attempts, delivered, failed_attempts, gave_up, jobs_done;
};
void delivery_stats(struct delivery *d, struct delivery_stats *ret);

/*
 * Stops the thread; deliveries in flight are abandoned (still pending in
 * the store: they resume at the next start). Later submissions are freed.
 */
void delivery_stop(struct delivery *d);

/* Stops if needed and frees. Takes NULL. */
void delivery_free(struct delivery *d);

#endif

/*
 * delivery_int.h - private to delivery*.c (and t/unit/check_delivery.c):
 * a job held for delivery and its targets, the payload a job's tries
 * share (delivery_job.c), and the rules the thread schedules by
 * (delivery.c), pure.
 */
#ifndef SLUICE_DELIVERY_INT_H
#define SLUICE_DELIVERY_INT_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "curlloop.h"
#include "headers.h"
#include "heap.h"
#include "job.h"

struct jobs;

/* One webhook of one job. */
struct target {
	struct delivery_job *job;
	size_t index;                 /* for logs: never the URL (tokens) */
	char *url;
	unsigned attempts;            /* tries so far, stored ones included */
	bool settled;                 /* delivered or given up */
	struct heap_node timer;       /* due: unix ms until armed */
	struct target *ready_prev, *ready_next; /* the ready FIFO */
	bool ready;
	CURL *easy;                   /* while in flight */
	struct hlist hdrs;
	char err[CURL_ERROR_SIZE];
};

/* A job's end, copied while the store does not hold it. */
struct delivery_result {
	char *idempotent_key, *metadata_json;
	struct job_result *end;       /* job_result_dup() */
};

struct delivery_job {
	struct curlloop_msg msg;      /* delivery_submit() */
	struct delivery_job *prev, *next; /* the live list */
	char id[JOB_ID_LEN + 1];
	struct delivery_result *copy; /* NULL: in the store */
	size_t body_len;              /* response body bytes, for the bound */
	char *payload;                /* while tries are in flight on it */
	size_t payload_len;
	unsigned payload_users;       /* those tries */
	unsigned quorum, n_delivered;
	size_t n_open;                /* targets not settled */
	int64_t finished_ms;
	size_t n;
	struct target t[];
};

/*
 * A try in flight uses dj's payload: built if it is not in memory, from
 * the copy or else from store (the same bytes either way), and then
 * counted in *payload_bytes (the thread's payloads in memory). 0;
 * -EINVAL: metadata that does not parse; -ENOENT: no such done job; else
 * the store's error or -ENOMEM.
 */
int delivery_payload_hold(struct delivery_job *dj, struct jobs *store,
                          size_t *payload_bytes);

/*
 * A try on dj ended: the last one frees the payload and takes it out of
 * *payload_bytes.
 */
void delivery_payload_drop(struct delivery_job *dj, size_t *payload_bytes);

/*
 * Whether the first ready target may start, with running tries in flight
 * and payload_bytes in memory: a slot is free (DELIVERY_PARALLEL), and its
 * job's payload is in memory already (in_memory), or none is, or its
 * response body (body_len) fits under DELIVERY_PAYLOAD_BYTES. Pure.
 */
bool delivery_may_start(unsigned running, size_t payload_bytes,
                        bool in_memory, size_t body_len);

/*
 * The monotonic time (µs) a target due at due_ms (unix ms) fires, when
 * the wall clock reads wall_ms and the monotonic one now_us: now_us when
 * it is due already. Pure.
 */
int64_t delivery_due_us(int64_t due_ms, int64_t wall_ms, int64_t now_us);

#endif

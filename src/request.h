/*
 * request.h - one proxied request, shared by its owner (the front for a
 * client's request, the job runner for a job) and the engine worker that
 * runs it (its home).
 *
 * Ownership: a request is reference counted. Its owner holds one while it
 * needs it; the engine holds one from engine_submit() until it has
 * finished with the transfer; every message posted to the engine holds one
 * until handled. The fields above "shared" are written by the owner before
 * engine_submit() and are read-only afterwards. The fields under "shared"
 * are guarded by lock. Engine-private fields are touched only by its home
 * worker's thread, but for the dispatch under the engine's lock (item,
 * eng_state, start_next). An owner keeps what only it touches in a larger struct that
 * begins with the request (the front's struct front_req).
 */
#ifndef SLUICE_REQUEST_H
#define SLUICE_REQUEST_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "classify.h"
#include "cred.h"
#include "curlloop.h"
#include "headers.h"
#include "heap.h"
#include "retry.h"
#include "sched.h"

struct engine;
struct eworker;
struct request;
struct upstream_hooks;
struct config;

/*
 * Who made a request and hears about it: the front (a client connection)
 * or the job runner (a webhook job). The layers below call these and
 * never name the owner. Called on the thread of the engine worker that
 * runs the request (free: any thread); none may block; any may be NULL.
 */
struct req_owner {
	/* r's state changed (response headers, body bytes, failure). */
	void (*wake)(struct request *r);
	/* An attempt was dispatched. */
	void (*started)(struct request *r);
	/*
	 * The engine is done with r: phase REQ_HEADERS with the whole body
	 * (or body_error), or REQ_FAILED. Not called for a durable request
	 * when the engine stops with it unfinished: its owner keeps it.
	 */
	void (*finished)(struct request *r);
	/* r is being freed: free what the owner hung on it. */
	void (*free)(struct request *r);
};

/* How the engine and the transfer treat a request; set by its owner. */
struct req_policy {
	/*
	 * 0: the body streams to a reader, with backpressure. Else it is
	 * kept whole up to this many bytes (beyond: resp_too_large).
	 */
	uint64_t body_cap;
	int64_t attempt_timeout_ms;  /* 0: the deadline bounds attempts */
	bool no_deadline;            /* waits as long as it needs */
	bool wait_when_full;         /* a full queue holds it, no 503 */
	bool durable;                /* its owner keeps it across a stop */
	/*
	 * Admission and a TCP connection only (an opaque CONNECT tunnel):
	 * the dispatch counts against the queue's limits like any other,
	 * and the connected socket is handed to the owner (tunnel_fd).
	 */
	bool connect_only;
};

/* A growable byte buffer; data[off..len) is unread. */
struct buf {
	char *data;
	size_t len, off, cap;
};

int buf_append(struct buf *b, const void *p, size_t n);
/* Room for n bytes in all, allocated at once (an empty buffer). */
int buf_reserve(struct buf *b, size_t n);
void buf_done(struct buf *b);
static inline size_t buf_avail(const struct buf *b)
{
	return b->len - b->off;
}

enum req_phase {
	REQ_RECEIVING,       /* front is reading the request */
	REQ_WAITING,         /* with the engine; no response yet */
	REQ_HEADERS,         /* response headers ready, body may follow */
	REQ_FAILED,          /* the proxy answers with err_* */
};

/* Messages to the engine, embedded so posting never allocates. */
enum req_msg_type { REQ_MSG_SUBMIT, REQ_MSG_CANCEL, REQ_MSG_UNPAUSE,
                    REQ_MSG_DEADLINE, REQ_MSG_COUNT };

struct req_msg {
	struct curlloop_msg link;    /* in the engine's loop's inbox */
	struct request *req;
	enum req_msg_type type;
	atomic_bool posted;          /* in the engine's inbox */
};

struct request {
	atomic_int refs;

	/* Set by the owner before submission, then read-only. */
	const struct req_owner *owner;
	void *owner_arg;
	struct req_policy policy;

	/* Written by the owner before submission, then read-only. */
	char *raw_target;
	char *method;
	struct target target;
	struct hlist up_headers;     /* the fields that go upstream */
	struct buf body;
	bool is_head;
	bool submitted;              /* handed to the engine */
	int64_t t_arrival;           /* monotonic ms */
	int64_t deadline;            /* monotonic ms */
	char dest_key[DEST_HOST_MAX + 32]; /* "scheme://host:port" */
	unsigned char cred[CRED_HASH_LEN]; /* keyed hash of the credential */
	bool has_cred;
	int mode;                    /* X-EZTHROTTLE-MODE (enum rate_mode), -1 */
	struct retry_rules rules;

	/* Engine-private. */
	/*
	 * The engine worker that holds it: the one it was submitted on,
	 * then the one whose dispatch started it (under the engine's lock).
	 */
	_Atomic(struct eworker *) home;
	struct sched_item item;      /* place in its queue */
	void *easy;                  /* CURL * while running */
	int64_t enqueued_us;         /* when it last entered its queue */
	int64_t attempt_us;          /* when the last attempt started */
	bool retrying;               /* this attempt's answer is discarded */
	int64_t retry_delay_ms;
	struct heap_node timer;      /* its deadline, in the engine's heap */
	struct request *eng_prev, *eng_next; /* engine: held or backlog */
	struct request *touch_next;  /* engine: fronts to wake */
	struct request *start_next;  /* engine: dispatched in one batch */
	struct request *due_next;    /* engine: deadlines due in one batch */
	atomic_int eng_state;        /* enum eng_state */
	unsigned easy_gen;           /* engine: the config its handle has */
	bool touched;
	bool denied;                 /* connect refused by deny list */
	bool got_bytes;              /* this attempt saw a response byte */
	bool resp_too_large;         /* the response passed policy.body_cap */
	const struct upstream_hooks *up_hooks; /* set by upstream_setup */
	const struct config *const *up_cfg; /* its worker's cfg */
	char err_buf[256];           /* CURLOPT_ERRORBUFFER */

	struct req_msg msg[REQ_MSG_COUNT];

	/* Shared, under lock. */
	pthread_mutex_t lock;
	enum req_phase phase;
	bool cancelled;              /* client gone; never send */
	unsigned status;
	struct buf resp_headers;     /* "name\0value\0" pairs */
	size_t n_resp_headers;
	int64_t content_length;      /* -1 unknown */
	struct buf resp_body;
	bool body_done;
	bool body_error;             /* transfer broke after headers */
	bool paused;                 /* transfer paused: buffer full */
	unsigned attempts;           /* upstream attempts so far */
	int64_t queue_us;            /* time spent queued, all attempts */
	int64_t upstream_us;         /* time attempts took, all but a
	                                running one */
	unsigned err_status;
	const char *err_code;
	char *err_msg;
	int tunnel_fd;               /* connect_only: the socket, or -1 */
	int64_t err_wait_ms;         /* queue_wait_exceeds_deadline: the
	                                predicted wait; else -1 */
};

/*
 * Sets up r (zeroed by the caller, first member of an owner's struct or
 * alone) with one reference. request_unref() frees the block r begins.
 * 0 or -ENOMEM.
 */
int request_init(struct request *r, const char *raw_target);

/* A new request alone, with one reference. NULL on OOM. */
struct request *request_new(const char *raw_target);

void request_ref(struct request *r);

/* Drops a reference; frees the request with the last one. Takes NULL. */
void request_unref(struct request *r);

/*
 * Sets the proxy-made answer (status, error code, message; message is
 * copied). Called with lock held.
 */
void request_fail_locked(struct request *r, unsigned status,
                         const char *code, const char *message);

#endif

/*
 * front_req.h - a client's request as the front holds it: the shared
 * request first (so the pointer the engine and the owner's callbacks see
 * is this struct's), then what only the front's files touch. A request
 * the front did not make is never one of these.
 */
#ifndef SLUICE_FRONT_REQ_H
#define SLUICE_FRONT_REQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "request.h"

struct front;
struct front_part;
struct job_intake;
struct MHD_Connection;

struct front_req {
	struct request req;          /* first */
	struct front *front;
	struct front_part *part;     /* the shards its connection is on */
	struct MHD_Connection *conn;
	int fd;                      /* client socket; -1 until known */
	struct sockaddr_storage client;
	struct job_intake *intake;   /* a job being accepted; NULL: none */
	bool started;                /* first handler call seen */
	bool body_too_large;         /* read the body, drop it, 413 */
	unsigned sent_status;        /* status queued to the client */
	size_t req_hdr_bytes;        /* request head in MHD's pool */
	uint64_t sent_bytes;         /* body bytes given to MHD */

	/* Under req.lock. */
	bool suspended;              /* connection suspended by us */

	/* The disconnect watch's (front_watch.c), under its sleep_lock. */
	uint32_t watch_gen;          /* the watch table's generation */
	struct front_req *sleep_next; /* sleeper list */
	int64_t sleep_at;            /* monotonic ms it went to sleep */
	bool sleeping_listed;        /* in that list */
};

/* The front's request that r is (the front's callbacks only). */
static inline struct front_req *front_req_of(struct request *r)
{
	return (struct front_req *)(void *)r;
}

#endif

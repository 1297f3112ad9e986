/*
 * front_reply.h - the responses the front queues on a client connection:
 * the proxy's own errors, upstream's response (whole, or streamed by the
 * front's reader) and a webhook job's answer. Each returns what the MHD
 * access handler returns, and records the status in fr->sent_status;
 * reply_log() reports it once the request is complete.
 */
#ifndef SLUICE_FRONT_REPLY_H
#define SLUICE_FRONT_REPLY_H

#include <microhttpd.h>
#include <stdint.h>

struct front_req;

/*
 * Room the response's head needs in MHD's per-connection pool beyond
 * upstream's fields: the status line, proxy-made fields and MHD's own
 * bookkeeping. Bytes.
 */
#define REPLY_HEAD_SLACK 512

/* A JSON error (http.h); 503 adds Retry-After: 1. */
enum MHD_Result reply_error(struct front_req *fr, unsigned status,
                            const char *code, const char *msg);

/*
 * Upstream's response (phase REQ_HEADERS): the body buffer handed to MHD
 * when it is whole, else streamed by reader(&fr->req) (a reference is
 * taken for it). A 502 instead when the head would not fit in max_header
 * with the request's (fr->req_hdr_bytes).
 */
enum MHD_Result reply_upstream(struct front_req *fr, uint64_t max_header,
                               MHD_ContentReaderCallback reader);

/* "http://" and the admin listener's address: room for both. */
#define FRONT_ADMIN_BASE_MAX 80

/*
 * The answer of a job whose intake is done: 202, 200 duplicate, 503...
 * A Location under admin_base ("http://127.0.0.1:8081").
 */
enum MHD_Result reply_job(struct front_req *fr, const char *admin_base);

/*
 * The access log line of a finished request: client, method, destination,
 * path without the query (it may hold credentials), status, body bytes
 * sent, milliseconds since arrival.
 */
void reply_log(struct front_req *fr);

#endif

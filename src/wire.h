/*
 * wire.h - every byte a client sends, checked before libmicrohttpd
 * parses it (RFC 9112 message syntax and framing).
 *
 * libmicrohttpd 0.9.75 is a lenient parser with no hook between the
 * socket and its parser: it accepts "Name : v" as a field named "Name ",
 * merges an obs-fold line into the field *name*, cuts values and methods
 * at a NUL, and keeps a bare CR inside a value. Any of these would let a
 * client's request mean one thing to the proxy and another to an origin.
 * So the daemon defines recv(2) itself (the dynamic linker binds
 * libmicrohttpd's recv to the executable's definition): for a connection
 * attached here, the bytes pass this parser first. A request head is
 * given to libmicrohttpd only once it is complete and valid; a bad head
 * is replaced by a sentinel request that the front answers with the
 * parser's 400; a bad body framing or a body slower than the minimum
 * rate is answered here and the connection closed.
 *
 * Because a head is held until complete, libmicrohttpd sees no activity
 * while a client trickles one, so its idle timeout is a header deadline
 * for every request of a connection.
 */
#ifndef SLUICE_WIRE_H
#define SLUICE_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The method of the sentinel request; a client's method cannot hold '/'. */
#define WIRE_REJECT_METHOD "SLUICE/REJECT"

/* Why a request was refused: a status, a JSON error code, a message. */
struct wire_error {
	unsigned status;
	const char *code;
	const char *message;
};

/* --- the parser: pure, allocation-free, fed in pieces of any size --- */

enum wire_state {
	W_START,                         /* before a message: no byte yet */
	W_LEAD, W_START_CR,              /* empty lines before a request line */
	W_METHOD, W_TARGET, W_VERSION, W_RL_CR,
	W_LINE, W_NAME, W_OWS, W_VALUE, W_VALUE_CR, W_END_CR,
	W_BODY,                          /* Content-Length bytes */
	W_CHUNK_SIZE, W_CHUNK_EXT, W_CHUNK_SIZE_CR,
	W_CHUNK_DATA, W_CHUNK_END, W_CHUNK_END_CR,
	W_FAILED
};

struct wire_parser {
	enum wire_state st;
	bool trailer;                /* fields are the chunked trailer */
	size_t max_head;             /* estimate of libmicrohttpd's pool use */
	size_t head_cost;            /* ... of the head so far */
	unsigned tok;                /* bytes of the token being read */
	unsigned field;              /* framing field being read: see .c */
	char name[20];               /* lower-cased start of the field name */
	char val[24];                /* start of a framing field's value */
	unsigned val_len;
	char version[9];
	bool http10;
	bool have_cl, have_te, te_chunked;
	uint64_t cl;
	uint64_t left;               /* body or chunk bytes still to come */
	unsigned digits;             /* of the chunk size */
	const struct wire_error *err;
};

/* Where the head open at the end of a wire_parse() call began. */
#define WIRE_NO_HEAD ((size_t)-1)
#define WIRE_HEAD_BEFORE ((size_t)-2)

struct wire_scan {
	/*
	 * Offset in the bytes given of the request head still open when the
	 * call returned (or that failed): WIRE_NO_HEAD when none is open,
	 * WIRE_HEAD_BEFORE when it began in an earlier call.
	 */
	size_t head_at;
	/*
	 * The same for the message being read when the call failed: where
	 * its head began (its body may have failed).
	 */
	size_t msg_at;
	size_t err_at;               /* offset of the byte that failed */
	bool err_in_head;            /* a request head failed (else a body) */
};

/* A parser at the start of a connection; max_head bounds a head's cost. */
void wire_parser_init(struct wire_parser *p, size_t max_head);

/*
 * Reads n bytes of the stream. 0 when they are valid so far; -EBADMSG
 * when they are not: p->err says why, ret->err_at where. After a failure
 * the parser stays failed.
 */
int wire_parse(struct wire_parser *p, const char *s, size_t n,
               struct wire_scan *ret);

/* --- connections --- */

struct wire_limits {
	size_t max_head;             /* see wire_parser_init() */
	uint64_t min_body_rate;      /* bytes/s; 0: no minimum */
	int64_t body_grace_ms;       /* before the minimum rate applies */
};

/*
 * Makes the table of connections for fds below max_fd. Once, before any
 * wire_attach(). 0 or -ENOMEM.
 */
int wire_init(size_t max_fd);

/* Frees the table; every connection must be detached. */
void wire_done(void);

/*
 * True when libmicrohttpd's recv(2) is this module's: false means the
 * executable does not export it and the checks would not run.
 */
bool wire_active(void);

/*
 * Checks the bytes of fd from now on (the thread that reads fd only).
 * lim is copied. 0, or -ENOMEM / -EBADF (fd out of range).
 */
int wire_attach(int fd, const struct wire_limits *lim);

/* Stops checking fd and frees its state, before fd is closed. */
void wire_detach(int fd);

/*
 * Why fd's last request head was refused, for the sentinel request;
 * NULL when nothing was refused.
 */
const struct wire_error *wire_rejection(int fd);

/*
 * Starts (on) or stops the minimum body rate clock of fd's current
 * request: the front starts it when it begins reading a body and stops
 * it when the body is whole.
 */
void wire_body_clock(int fd, bool on);

#endif

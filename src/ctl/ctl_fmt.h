/*
 * ctl_fmt.h - sluicectl's readable views of the admin listener's JSON,
 * and what its answers to POST /reload mean.
 *
 * Everything printed comes from the daemon: control characters in it are
 * shown as '?', so a hostile host name cannot drive the terminal, and the
 * user name, password and query of a URL are never shown.
 */
#ifndef SLUICE_CTL_FMT_H
#define SLUICE_CTL_FMT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define CTL_JOB_ID_HEX 44            /* hex digits after "job_" */
#define CTL_TIME_LEN 40              /* room for ctl_fmt_time() */
#define CTL_DURATION_LEN 32          /* room for ctl_fmt_duration() */

/* Control characters in s become '?', in place. Returns s. */
char *ctl_defang(char *s);

/* Whether id is "job_" followed by 44 lowercase hex digits. */
bool ctl_job_id_valid(const char *id);

/*
 * Unix milliseconds as ISO 8601 UTC, "2026-11-23T10:00:00.123Z";
 * "-" for ms < 0.
 */
void ctl_fmt_time(int64_t ms, char buf[CTL_TIME_LEN]);

/* Milliseconds as "850ms", "4.2s", "3m07s" or "2h05m"; "-" for ms < 0. */
void ctl_fmt_duration(int64_t ms, char buf[CTL_DURATION_LEN]);

/*
 * The answer of GET /queues (parsed) as totals, counters and an aligned
 * table, one row per queue, sorted by destination, then key: mode, the
 * rate in force and its source ("10 quota"), the concurrency cap in force,
 * waiting, in flight, the time left of a pause and since the queue was
 * last active. 0; -EINVAL when q does not look like that answer; -ENOMEM.
 */
int ctl_print_queues(FILE *out, json_t *q);

/*
 * The answer of GET /jobs/<id> (parsed) as a summary: request (method,
 * destination, path), state, attempts, times, final status, error, the
 * deliveries and their quorum, one line per delivery. 0; -EINVAL when job
 * is not an object.
 */
int ctl_print_job(FILE *out, const json_t *job);

/* What an answer to POST /reload says. */
enum ctl_reload_outcome {
	CTL_RELOADED,                /* 200 {"reloaded": true, ...} */
	CTL_RELOAD_INVALID,          /* 400 invalid_configuration */
	CTL_RELOAD_BUSY,             /* 503 reload_in_progress */
	CTL_RELOAD_UNEXPECTED,       /* anything else */
};

struct ctl_reload {
	enum ctl_reload_outcome outcome;
	/*
	 * CTL_RELOADED: the keys that wait for a restart, "listen,
	 * state_dir"; NULL when none. malloc'd.
	 */
	char *restart;
	/*
	 * CTL_RELOAD_INVALID: the daemon's "FILE:LINE:COL: message", one
	 * error a line, without a final newline. malloc'd.
	 */
	char *message;
};

/*
 * Reads the answer to POST /reload: its status and body (len bytes, not
 * necessarily JSON). Control characters of the daemon's text are shown as
 * '?' (but the newlines between errors). 0 with *ret filled, to be freed
 * with ctl_reload_done(); -ENOMEM.
 */
int ctl_reload_parse(long status, const char *body, size_t len,
                     struct ctl_reload *ret);

/* Frees the contents of r. */
void ctl_reload_done(struct ctl_reload *r);

#endif

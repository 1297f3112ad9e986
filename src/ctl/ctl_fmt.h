/*
 * ctl_fmt.h - sluicectl's readable views of the admin listener's JSON.
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
 * table, one row per queue. 0; -EINVAL when q does not look like that
 * answer; -ENOMEM.
 */
int ctl_print_queues(FILE *out, json_t *q);

/*
 * The answer of GET /jobs/<id> (parsed) as a summary: state, attempts,
 * times, final status, one line per delivery. 0; -EINVAL when job is not
 * an object.
 */
int ctl_print_job(FILE *out, const json_t *job);

#endif

/*
 * rate_ctl.h - how much to trust silence (SPEC section 3a): the rate of
 * a queue in frugal and adaptive mode, as a pure function of what
 * happened (dispatches, pushbacks, time passing with requests waiting).
 *
 * paced     the configured or learned rate; nothing here changes it.
 * frugal    unpaced (rate 0: only the concurrency cap) until the API
 *           pushes back; then paced at the rate it was seen to sustain
 *           (answers it took in the last second before the pushback);
 *           unpaced again after idle_reset without a pushback.
 * adaptive  paced from the base rate, and the rate is discovered: until
 *           the first pushback (as a TCP slow start) it grows as fast as
 *           allowed, doubling per probe_interval, a little at each tick
 *           in which requests waited; after it, each probe_interval in
 *           which requests waited and nothing pushed back adds step; a
 *           pushback goes back to
 *           the last rate that worked, or to what the API took in the
 *           last second when that is more (at most halving, never below
 *           min_rps), halves the step and doubles the wait before the
 *           next probe (up to 16 intervals; a probe that holds brings it
 *           back), so the probes close in on the API's limit instead of
 *           overrunning it again and again.
 *
 * Times are the scheduler's, in us. No allocation, no clock, no lock.
 */
#ifndef SLUICE_RATE_CTL_H
#define SLUICE_RATE_CTL_H

#include <stdbool.h>
#include <stdint.h>

enum rate_mode { RATE_PACED, RATE_FRUGAL, RATE_ADAPTIVE };

/* "paced", "frugal", "adaptive"; and back (case-insensitive). -1: none. */
const char *rate_mode_name(enum rate_mode m);
int rate_mode_parse(const char *s, enum rate_mode *ret);

struct rate_ctl_cfg {
	int64_t probe_interval;      /* us */
	int64_t idle_reset;          /* us: frugal unpaced again after */
	double min_rps, max_rps;
};

struct rate_ctl {
	enum rate_mode mode;
	double base;                 /* the configured rate */
	double rate;                 /* in force; 0: unpaced (frugal) */
	double good;                 /* adaptive: the last rate that worked */
	double step;                 /* adaptive: the next increase */
	int64_t next_probe;          /* adaptive: no increase before */
	int64_t ticked;              /* adaptive: the last tick; 0: none */
	int64_t wait;                /* adaptive: between probes, us; 0 at
	                                first: probe_interval */
	bool probing;                /* adaptive: the last move was up */
	int64_t pushback_at;         /* the last pushback; 0: none */
	/* Answers taken per whole second, for the rate sustained (frugal). */
	int64_t sec;                 /* the second counted now (us / 1e6) */
	unsigned n_sec, n_prev;      /* answers in it, in the one before */
};

/* Starts in mode at the base rate (frugal: unpaced). */
void rate_ctl_init(struct rate_ctl *c, enum rate_mode mode, double base,
                   int64_t now);

/* The queue's rate as c would have it: > 0, or 0 for unpaced. */
static inline double rate_ctl_rate(const struct rate_ctl *c)
{
	return c->rate;
}

/* The API took a request of the queue (a 2xx or 3xx answer) at now. */
void rate_ctl_success(struct rate_ctl *c, int64_t now);

/*
 * The API pushed back at now (a 429 or 503 without a usable Retry-After
 * or quota). True when the rate changed.
 */
bool rate_ctl_pushback(struct rate_ctl *c, const struct rate_ctl_cfg *cfg,
                       int64_t now);

/*
 * Time passed (call at least once per probe_interval; waiting: the
 * queue had requests waiting since the last call). True when the rate
 * changed: adaptive probes up, frugal goes unpaced again.
 */
bool rate_ctl_tick(struct rate_ctl *c, const struct rate_ctl_cfg *cfg,
                   bool waiting, int64_t now);

#endif

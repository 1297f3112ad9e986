/*
 * rate_ctl.c - the rate of a queue in frugal and adaptive mode; see
 * rate_ctl.h.
 */
#include <math.h>
#include <strings.h>

#include "rate_ctl.h"

#define US_PER_S 1000000
/*
 * Pushbacks this close to the one before come from requests sent at the
 * old rate: one cut is enough.
 */
#define QUIET_US 1000000
#define WAIT_MAX 16                  /* probe intervals between probes */

static const char *const names[] = {
	[RATE_PACED] = "paced",
	[RATE_FRUGAL] = "frugal",
	[RATE_ADAPTIVE] = "adaptive",
};

const char *rate_mode_name(enum rate_mode m)
{
	if ((unsigned)m < sizeof(names) / sizeof(*names))
		return names[m];
	return "paced";
}

int rate_mode_parse(const char *s, enum rate_mode *ret)
{
	for (unsigned i = 0; i < sizeof(names) / sizeof(*names); i++) {
		if (strcasecmp(s, names[i]) == 0) {
			*ret = (enum rate_mode)i;
			return 0;
		}
	}
	return -1;
}

static double clamp(double v, const struct rate_ctl_cfg *cfg)
{
	if (v < cfg->min_rps)
		v = cfg->min_rps;
	if (cfg->max_rps > 0 && v > cfg->max_rps)
		v = cfg->max_rps;
	return v;
}

void rate_ctl_init(struct rate_ctl *c, enum rate_mode mode, double base,
                   int64_t now)
{
	*c = (struct rate_ctl){
		.mode = mode,
		.base = base,
		.rate = mode == RATE_FRUGAL ? 0 : base,
		.good = base,
		.step = base,
		.sec = now / US_PER_S,
	};
}

/* Moves the per-second counts up to now's second. */
static void count_to(struct rate_ctl *c, int64_t now)
{
	int64_t sec = now / US_PER_S;

	if (sec == c->sec)
		return;
	c->n_prev = sec == c->sec + 1 ? c->n_sec : 0;
	c->n_sec = 0;
	c->sec = sec;
}

void rate_ctl_success(struct rate_ctl *c, int64_t now)
{
	count_to(c, now);
	c->n_sec++;
}

/*
 * What the queue sustained up to now: the answers the API took in the
 * last second (this second's, and the share of the one before that the
 * last second still covers). Not extrapolated: an API that took 10 in
 * the first 200 ms of its window has a limit of 10, not 50.
 */
static double sustained(struct rate_ctl *c, int64_t now)
{
	double frac;

	count_to(c, now);
	frac = (double)(now % US_PER_S) / US_PER_S;
	return c->n_sec + c->n_prev * (1 - frac);
}

bool rate_ctl_pushback(struct rate_ctl *c, const struct rate_ctl_cfg *cfg,
                       int64_t now)
{
	double old = c->rate, r, s;

	if (c->mode == RATE_PACED)
		return false;
	if (c->pushback_at && now - c->pushback_at < QUIET_US)
		return false;
	c->pushback_at = now ? now : 1;
	switch (c->mode) {
	case RATE_PACED:
		return false;
	case RATE_FRUGAL:
		/* A later pushback while paced cuts like adaptive's. */
		r = c->rate > 0 ? c->rate * 0.5 : sustained(c, now);
		c->rate = clamp(r > 0 ? r : c->base, cfg);
		break;
	case RATE_ADAPTIVE:
		/*
		 * Back to what worked, or to what the API was seen to take
		 * in the last second if that is more (a probe that doubled
		 * past the limit shows where the limit is); at most halving;
		 * probe finer.
		 */
		r = c->good < c->rate ? c->good : c->rate * 0.5;
		s = sustained(c, now);
		if (s > r && s < c->rate)
			r = s;
		if (r < c->rate * 0.5)
			r = c->rate * 0.5;
		c->rate = clamp(r, cfg);
		c->good = c->rate;
		c->step *= 0.5;
		if (c->step < c->base * 0.05)
			c->step = c->base * 0.05;
		if (!c->wait)
			c->wait = cfg->probe_interval;
		c->wait = c->wait * 2 > WAIT_MAX * cfg->probe_interval
		          ? WAIT_MAX * cfg->probe_interval : c->wait * 2;
		c->probing = false;
		c->next_probe = now + c->wait;
		break;
	}
	return c->rate != old;
}

/*
 * Before the first pushback: up by 2^(dt / probe_interval) for the dt
 * since the last tick, when requests waited. Growing a little each tick
 * instead of doubling once an interval, the rate nears the limit sooner
 * (in 12 s from 2 to 10 req/s, not 15) and passes it by a step of a few
 * percent, not by up to twice.
 */
static void slow_start(struct rate_ctl *c, const struct rate_ctl_cfg *cfg,
                       bool waiting, int64_t now)
{
	int64_t dt = c->ticked ? now - c->ticked : 0;

	c->ticked = now;
	if (!waiting || dt <= 0 || cfg->probe_interval <= 0)
		return;
	if (dt > cfg->probe_interval)
		dt = cfg->probe_interval;
	c->good = c->rate;
	c->probing = true;
	c->rate = clamp(c->rate * exp2((double)dt /
	                               (double)cfg->probe_interval), cfg);
}

bool rate_ctl_tick(struct rate_ctl *c, const struct rate_ctl_cfg *cfg,
                   bool waiting, int64_t now)
{
	double old = c->rate, up;

	switch (c->mode) {
	case RATE_PACED:
		return false;
	case RATE_FRUGAL:
		if (c->rate > 0 && c->pushback_at &&
		    now - c->pushback_at >= cfg->idle_reset) {
			c->rate = 0;
			c->pushback_at = 0;
		}
		break;
	case RATE_ADAPTIVE:
		if (!c->pushback_at) {
			slow_start(c, cfg, waiting, now);
			break;
		}
		if (now < c->next_probe)
			break;
		/* The last probe held: probe at the full pace again. */
		if (c->probing || !c->wait)
			c->wait = cfg->probe_interval;
		c->next_probe = now + c->wait;
		/* Nothing waited: the rate is not what holds it back. */
		if (!waiting)
			break;
		c->probing = true;
		c->good = c->rate;
		up = c->rate + c->step;
		if (up > 2 * c->rate)
			up = 2 * c->rate;
		c->rate = clamp(up, cfg);
		break;
	}
	return c->rate != old;
}

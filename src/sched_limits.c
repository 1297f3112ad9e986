/*
 * sched_limits.c - limits that change under a live queue: what the
 * upstream taught (a queue's or a whole destination's), a pause, new
 * configured limits. Each carries over what the queue still owes at the
 * new rate (sched_gcra_rescale()), so the new rate governs the very next
 * dispatch.
 */
#include <stdint.h>
#include <utlist.h>

#include "log.h"
#include "sched.h"
#include "sched_int.h"

/* Invalid (zero) limits taken as the least valid ones. */
void sched_limits_fix(struct sched_limits *l)
{
	if (l->burst == 0)
		l->burst = 1;
	if (l->concurrency == 0)
		l->concurrency = 1;
	if (l->weight == 0)
		l->weight = 1;
	if (!(l->rps > 0))
		l->rps = 1;
}

void sched_pause(struct sched *s, struct sched_queue *q, int64_t until,
                 int64_t now)
{
	if (until > q->paused_until)
		q->paused_until = until;
	sched_q_eval(s, q, now);
}

void sched_set_rate_ctl(struct sched *s, const struct rate_ctl_cfg *cfg)
{
	s->ctl_cfg = *cfg;
}

/* q's mode changed its rate from old_rps: the schedule follows. */
static void ctl_moved(struct sched *s, struct sched_queue *q, double old_rps,
                      int64_t now)
{
	double rps = sched_q_rps(q);

	if (rps == old_rps)
		return;
	s->rate_changes[sched_ctl_source(q)]++;
	log_debug("rate dest=%s rps=%g source=%s mode=%s (was %g)",
	          q->d->key, rps, sched_rate_source_name(sched_ctl_source(q)),
	          rate_mode_name(q->ctl.mode), old_rps);
	sched_gcra_rescale(q, old_rps, now);
	sched_q_eval(s, q, now);
}

void sched_set_mode(struct sched *s, struct sched_queue *q, enum rate_mode m,
                    int64_t now)
{
	double old_rps = sched_q_rps(q);

	if (q->ctl.mode == m)
		return;
	if (q->ctl.mode != RATE_PACED)
		DL_DELETE2(s->moded, q, mprev, mnext);
	rate_ctl_init(&q->ctl, m, q->lim.rps, now);
	if (m != RATE_PACED)
		DL_APPEND2(s->moded, q, mprev, mnext);
	ctl_moved(s, q, old_rps, now);
}

void sched_took(struct sched_queue *q, int64_t now)
{
	if (q->ctl.mode != RATE_PACED)
		rate_ctl_success(&q->ctl, now);
}

void sched_pushback(struct sched *s, struct sched_queue *q, bool bare,
                    int64_t now)
{
	double old_rps = sched_q_rps(q);

	if (q->ctl.mode == RATE_PACED ||
	    (q->ctl.mode == RATE_ADAPTIVE && !bare))
		return;
	if (rate_ctl_pushback(&q->ctl, &s->ctl_cfg, now))
		ctl_moved(s, q, old_rps, now);
}

void sched_modes_tick(struct sched *s, int64_t now)
{
	struct sched_queue *q, *tmp;

	DL_FOREACH_SAFE2(s->moded, q, tmp, mnext) {
		double old_rps = sched_q_rps(q);
		bool waited = q->rate_bound;

		q->rate_bound = false;
		if (rate_ctl_tick(&q->ctl, &s->ctl_cfg, waited, now))
			ctl_moved(s, q, old_rps, now);
	}
}

void sched_note_quotas(struct sched_queue *q,
                       const struct sched_quota *requests,
                       const struct sched_quota *tokens)
{
	if (requests && (requests->limit >= 0 || requests->remaining >= 0))
		q->quota_req = *requests;
	if (tokens && (tokens->limit >= 0 || tokens->remaining >= 0))
		q->quota_tok = *tokens;
}

int64_t sched_quota_window_end(struct sched_queue *q, int64_t limit,
                               int64_t remaining, int64_t window_us,
                               int64_t now)
{
	if (limit <= 0 || remaining < 0 || remaining >= limit ||
	    window_us <= 0)
		return -1;
	if (remaining == limit - 1) {
		q->win_open = now;
		q->win_seen = 1;
	} else if (q->win_seen > 0 && remaining == limit - q->win_seen - 1) {
		q->win_seen++;
	} else {
		q->win_seen = 0;
	}
	return q->win_seen > 0 ? q->win_open + window_us : -1;
}

int64_t sched_predict_wait(const struct sched_queue *q, int64_t now)
{
	double rps = sched_q_rps(q);
	double t = rps > 0 ? 1e6 / rps : 0;
	double burst = q->lim.burst > 0 ? q->lim.burst - 1 : 0;
	double first = (double)q->tat - t * burst;
	double at;

	if (first < (double)now)
		first = (double)now;
	if ((double)q->paused_until > first)
		first = (double)q->paused_until;
	at = first + t * (double)q->n_waiting;
	if (at - (double)now > 1e15)
		return (int64_t)1e15;
	return (int64_t)(at - (double)now);
}

const char *sched_rate_source_name(enum sched_rate_source src)
{
	static const char *const names[] = {
		[SCHED_RATE_CONFIGURED] = "configured",
		[SCHED_RATE_EZTHROTTLE] = "ezthrottle",
		[SCHED_RATE_QUOTA] = "quota",
		[SCHED_RATE_PROBE] = "probe",
		[SCHED_RATE_BACKOFF] = "backoff",
	};

	if ((unsigned)src < sizeof(names) / sizeof(*names) && names[src])
		return names[src];
	return "configured";
}

/* rps cut to max (0: no cap). */
static double capped(double rps, double max)
{
	return max > 0 && rps > max ? max : rps;
}

void sched_learn_queue(struct sched *s, struct sched_queue *q, double rps,
                       enum sched_rate_source src, unsigned concurrency,
                       int64_t now)
{
	double old_rps = sched_q_rps(q);

	if (rps <= 0) {
		rps = q->rps_learned;
		src = q->rps_source;
	}
	rps = capped(rps, q->lim.max_rps);
	if (concurrency == 0)
		concurrency = q->conc_learned;
	if (q->rps_learned == rps && q->rps_source == src &&
	    q->conc_learned == concurrency)
		return; /* upstreams repeat themselves on every response */
	if (q->rps_learned != rps) {
		s->rate_changes[src]++;
		log_debug("rate dest=%s rps=%g source=%s (was %g)", q->d->key,
		          rps, sched_rate_source_name(src), old_rps);
	}
	q->rps_learned = rps;
	q->rps_source = src;
	q->conc_learned = concurrency;
	sched_gcra_rescale(q, old_rps, now);
	sched_q_eval(s, q, now);
}

void sched_learn_dest(struct sched *s, struct sched_dest *d, double rps,
                      enum sched_rate_source src, unsigned concurrency,
                      int64_t now)
{
	struct sched_queue *q;
	double old_rps;

	if (rps <= 0) {
		rps = d->rps_learned;
		src = d->rps_source;
	}
	/* The destination's queues share one rule: its max_rps. */
	if (d->queues)
		rps = capped(rps, d->queues->lim.max_rps);
	if (concurrency == 0)
		concurrency = d->conc_learned;
	if (d->rps_learned == rps && d->rps_source == src &&
	    d->conc_learned == concurrency)
		return;
	if (d->rps_learned != rps) {
		s->rate_changes[src]++;
		log_debug("rate dest=%s rps=%g source=%s (was %g, every queue)",
		          d->key, rps, sched_rate_source_name(src),
		          d->rps_learned);
	}
	old_rps = d->rps_learned;
	d->rps_learned = rps;
	d->rps_source = src;
	d->conc_learned = concurrency;
	/* Every queue of d may now be due sooner or later. */
	for (q = d->queues; q; q = q->dnext) {
		sched_gcra_rescale(q, sched_q_rps_with(q, old_rps), now);
		sched_q_eval(s, q, now);
	}
	sched_d_eval(s, d, now);
}

void sched_each(struct sched *s, sched_each_fn *fn, void *arg)
{
	struct sched_dest *d, *dtmp;
	struct sched_queue *q, *qtmp;

	HASH_ITER(hh, s->dests, d, dtmp) {
		fn(s, d, NULL, arg);
		DL_FOREACH_SAFE2(d->queues, q, qtmp, dnext)
			fn(s, d, q, arg);
	}
}

void sched_rate_changes(const struct sched *s,
                        uint64_t ret[SCHED_RATE_SOURCES])
{
	for (unsigned i = 0; i < SCHED_RATE_SOURCES; i++)
		ret[i] = s->rate_changes[i];
}

void sched_dest_set_user(struct sched_dest *d, void *user)
{
	d->user = user;
}

void *sched_dest_user(const struct sched_dest *d)
{
	return d->user;
}

const char *sched_dest_key(const struct sched_dest *d)
{
	return d->key;
}

const unsigned char *sched_queue_key(const struct sched_queue *q,
                                     size_t *len)
{
	*len = q->key.len;
	return q->key.bytes;
}

void sched_dest_set_limits(struct sched *s, struct sched_dest *d,
                           const struct sched_dest_limits *lim, int64_t now)
{
	d->lim = *lim;
	if (d->lim.weight == 0)
		d->lim.weight = 1;
	if (d->lim.aggregate_burst == 0)
		d->lim.aggregate_burst = 1;
	sched_d_eval(s, d, now);
}

void sched_forget(struct sched *s, struct sched_queue *q, bool dest_too,
                  int64_t now)
{
	double old_rps = sched_q_rps(q);

	q->rps_learned = 0;
	q->rps_source = SCHED_RATE_CONFIGURED;
	q->conc_learned = 0;
	rate_ctl_init(&q->ctl, q->ctl.mode, q->lim.rps, now);
	if (dest_too) {
		q->d->rps_learned = 0;
		q->d->rps_source = SCHED_RATE_CONFIGURED;
		q->d->conc_learned = 0;
	}
	sched_gcra_rescale(q, old_rps, now);
	sched_q_eval(s, q, now);
}

void sched_set_caps(struct sched *s, unsigned max_queued, int64_t idle_reset)
{
	s->max_queued = max_queued;
	s->idle_reset = idle_reset;
}

void sched_queue_set_limits(struct sched *s, struct sched_queue *q,
                            const struct sched_limits *lim, int64_t now)
{
	double old_rps = sched_q_rps(q);

	q->lim = *lim;
	sched_limits_fix(&q->lim);
	sched_gcra_rescale(q, old_rps, now);
	sched_q_eval(s, q, now);
}

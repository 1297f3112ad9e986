/*
 * engine_verdict.c - learned limits, pauses and retries from one answer.
 */
#include <string.h>

#include "config.h"
#include "engine_verdict.h"
#include "learn.h"
#include "retry.h"

void verdict_learn(const struct config *cfg, const char *block, size_t n,
                   unsigned status, int64_t wall_ms,
                   struct verdict_learned *ret)
{
	struct learn_signals ls;
	const char *p = block;

	learn_init(&ls);
	for (size_t i = 0; i < n; i++) {
		size_t nlen = strlen(p);
		const char *v = p + nlen + 1;

		learn_field(&ls, p, nlen, v, wall_ms);
		p = v + strlen(v) + 1;
	}
	learn_finish(&ls, wall_ms);

	*ret = (struct verdict_learned){
		.retry_after_ms = ls.retry_after_ms,
		.bad = ls.bad,
		.requests = ls.requests,
		.tokens = ls.tokens,
	};
	/*
	 * A quota the API states is its limit. With its window known, the
	 * limit over the window: evenly spaced, that never puts more than
	 * the limit in a window, wherever the windows start (a reset in
	 * whole seconds, as the IETF fields give it, would only understate
	 * the time left). Without, what remains spread evenly until the
	 * reset, one more for the next window's first at the reset: paced
	 * at R/T the answers keep saying R-1 over a shrinking T, and the
	 * rate would settle one request a window short.
	 */
	if (cfg->learn.ratelimit_headers) {
		double q = ls.quota_rps;

		if (q <= 0 && ls.spread_rps > 0)
			q = ls.spread_rps + 1000.0 / (double)ls.spread_ms;
		if (q > 0) {
			ret->rps = learn_clamp_rps(q, cfg->learn.min_rps,
			                           cfg->learn.max_rps);
			ret->rps_source = SCHED_RATE_QUOTA;
		}
	}
	if (cfg->learn.ezthrottle_headers) {
		/* Said for this proxy: over any quota. */
		if (ls.rps > 0) {
			ret->rps = learn_clamp_rps(ls.rps, cfg->learn.min_rps,
			                           cfg->learn.max_rps);
			ret->rps_source = SCHED_RATE_EZTHROTTLE;
		}
		if (ls.concurrency > 0)
			ret->concurrency = learn_clamp_concurrency(
				ls.concurrency, cfg->learn.max_concurrency);
	}
	/* Both sources may pause; the longer wins, capped alike. */
	if (cfg->learn.retry_after && ls.retry_after_ms >= 0 &&
	    (status == 429 || status == 503))
		ret->pause_ms = ls.retry_after_ms;
	if (cfg->learn.ratelimit_headers && ls.pause_ms > ret->pause_ms)
		ret->pause_ms = ls.pause_ms;
	if (ret->pause_ms > cfg->retry.max_retry_after)
		ret->pause_ms = cfg->retry.max_retry_after;
}

int64_t verdict_retry(const struct config *cfg,
                      const struct retry_rules *rules,
                      unsigned attempts_done, unsigned status,
                      int64_t retry_after_ms, int64_t now_ms,
                      int64_t deadline_ms, uint64_t random)
{
	struct retry_decision d;

	if (now_ms >= deadline_ms)
		return -1;
	d = retry_decide(rules, attempts_done, status, retry_after_ms,
	                 cfg->retry.backoff_base, cfg->retry.backoff_cap,
	                 cfg->retry.max_retry_after, random);
	if (d.verdict != RETRY_YES)
		return -1;
	/* No point waiting past the client's deadline. */
	if (now_ms + d.delay_ms >= deadline_ms)
		return -1;
	return d.delay_ms;
}

/*
 * learn_quota.c - learn_finish(): what the rate-limit fields gathered by
 * learn_field() add up to. Every exhausted quota may pause, and the
 * longest pause wins; the request quota is taken whole from one dialect,
 * by precedence (learn.h), so its limit, remaining, reset and window
 * belong together, and gives the two rates the scheduler uses: limit /
 * window and remaining / reset.
 */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>

#include "learn.h"

/* Anthropic's and OpenAI's request and token limits are per minute. */
#define MINUTE_MS 60000

static const struct learn_quota absent = { -1, -1, -1, -1 };

static int64_t max64(int64_t a, int64_t b)
{
	return a > b ? a : b;
}

static bool quota_present(const struct learn_quota *q)
{
	return q->limit >= 0 || q->remaining >= 0 || q->reset_ms >= 0 ||
	       q->window_ms >= 0;
}

/* The pause a quota asks for, or -1. */
static int64_t quota_pause(const struct learn_quota *q)
{
	return q->remaining == 0 ? q->reset_ms : -1;
}

/*
 * The same for a request bucket (OpenAI's and Anthropic's request
 * quotas): its reset is when it is full again, but the next request may
 * go once one request is back, a window / limit later.
 */
static int64_t bucket_pause(const struct learn_quota *q)
{
	/* Their limits are per minute unless a window was stated. */
	int64_t w = q->window_ms > 0 ? q->window_ms : 60000, one;

	if (q->remaining != 0)
		return -1;
	if (q->limit <= 0)
		return q->reset_ms;
	one = (w + q->limit - 1) / q->limit;
	return q->reset_ms >= 0 && q->reset_ms < one ? q->reset_ms : one;
}

/*
 * The rate a quota allows, in requests per second, to rank quotas: 0 when
 * nothing remains, INFINITY when nothing is known.
 */
static double quota_rate(const struct learn_quota *q)
{
	double rate = INFINITY;

	if (q->remaining == 0)
		return 0;
	if (q->remaining > 0 && q->reset_ms > 0)
		rate = (double)q->remaining * 1000 / (double)q->reset_ms;
	if (q->limit > 0 && q->window_ms > 0)
		rate = fmin(rate, (double)q->limit * 1000 /
		                  (double)q->window_ms);
	return rate;
}

/* A per-minute dialect: its limit's window is a minute. */
static struct learn_quota per_minute(struct learn_quota q)
{
	if (q.limit >= 0)
		q.window_ms = MINUTE_MS;
	return q;
}

static struct learn_quota policy_quota(const struct learn_policy *pol)
{
	return (struct learn_quota){
		.limit = pol->q, .remaining = -1, .reset_ms = -1,
		.window_ms = pol->w_ms,
	};
}

/* The request policy of the lowest rate (the first of equals), or NULL. */
static const struct learn_policy *tightest_policy(
	const struct learn_signals *ls)
{
	const struct learn_policy *best = NULL;
	struct learn_quota q;
	double best_rate = INFINITY, rate;
	unsigned j;

	for (j = 0; j < ls->n_policy; j++) {
		if (!ls->policy[j].requests)
			continue;
		q = policy_quota(&ls->policy[j]);
		rate = quota_rate(&q);
		if (!best || rate < best_rate) {
			best = &ls->policy[j];
			best_rate = rate;
		}
	}
	return best;
}

/* The policy a RateLimit item names; an unnamed item's is the only one. */
static const struct learn_policy *item_policy(const struct learn_signals *ls,
                                              const struct learn_item *it)
{
	unsigned j;

	if (!it->named)
		return ls->n_policy == 1 ? &ls->policy[0] : NULL;
	for (j = 0; j < ls->n_policy; j++)
		if (ls->policy[j].name == it->name)
			return &ls->policy[j];
	return NULL;
}

/*
 * An older-draft quota (limit, remaining, reset) without a window takes
 * that of the request policy of the same quota; without a limit, the
 * limit and window of the tightest request policy.
 */
static void complete(const struct learn_signals *ls, struct learn_quota *q)
{
	const struct learn_policy *pol;
	unsigned j;

	if (q->window_ms >= 0)
		return;
	if (q->limit >= 0) {
		for (j = 0; j < ls->n_policy; j++) {
			pol = &ls->policy[j];
			if (pol->requests && pol->q == q->limit &&
			    pol->w_ms > 0) {
				q->window_ms = pol->w_ms;
				return;
			}
		}
		return;
	}
	pol = tightest_policy(ls);
	if (pol) {
		q->limit = pol->q;
		q->window_ms = pol->w_ms;
	}
}

/*
 * The IETF request quota, from the newest form present: RateLimit items
 * (the tightest of those naming a request policy, or none), the RateLimit
 * dictionary, RateLimit-Limit/-Remaining/-Reset, RateLimit-Policy alone.
 * *ret_structured: RateLimit or RateLimit-Policy took part.
 */
static bool ietf_quota(const struct learn_signals *ls,
                       struct learn_quota *ret, bool *ret_structured)
{
	const struct learn_policy *pol;
	struct learn_quota q, best = absent;
	double rate, best_rate = INFINITY;
	bool found = false;
	unsigned i;

	*ret_structured = true;
	if (ls->n_item > 0) {
		for (i = 0; i < ls->n_item; i++) {
			pol = item_policy(ls, &ls->item[i]);
			if (pol && !pol->requests)
				continue;
			q = (struct learn_quota){
				.limit = pol ? pol->q : -1,
				.remaining = ls->item[i].r,
				.reset_ms = ls->item[i].t_ms,
				.window_ms = pol ? pol->w_ms : -1,
			};
			rate = quota_rate(&q);
			if (!found || rate < best_rate) {
				best = q;
				best_rate = rate;
				found = true;
			}
		}
		*ret = best;
		return found;
	}
	if (quota_present(&ls->dict)) {
		q = ls->dict;
	} else if (quota_present(&ls->ietf)) {
		q = ls->ietf;
		*ret_structured = ls->n_policy > 0;
	} else {
		pol = tightest_policy(ls);
		if (!pol)
			return false;
		*ret = policy_quota(pol);
		return true;
	}
	complete(ls, &q);
	*ret = q;
	return true;
}

/* The request quota: the first dialect present, in learn.h's order. */
static struct learn_quota requests_quota(const struct learn_signals *ls)
{
	struct learn_quota ietf;
	bool structured, have_ietf = ietf_quota(ls, &ietf, &structured);

	if (have_ietf && structured)
		return ietf;
	if (quota_present(&ls->an_req))
		return per_minute(ls->an_req);
	if (quota_present(&ls->x_req))
		return per_minute(ls->x_req);
	if (have_ietf)
		return ietf;
	if (quota_present(&ls->x))
		return ls->x;
	return absent;
}

/* Anthropic's tokens-* is already its tightest token limit. */
static struct learn_quota tokens_quota(const struct learn_signals *ls)
{
	if (quota_present(&ls->an_tok))
		return per_minute(ls->an_tok);
	if (quota_present(&ls->x_tok))
		return per_minute(ls->x_tok);
	return absent;
}

/* The longest pause any exhausted quota asks for, or -1. */
static int64_t pause_of(const struct learn_signals *ls)
{
	/*
	 * Token quotas wait for their reset: a request takes many tokens,
	 * one back is not enough for it.
	 */
	const struct learn_quota *const quotas[] = {
		&ls->x, &ls->ietf, &ls->dict, &ls->x_tok, &ls->an_tok,
		&ls->an_in, &ls->an_out,
	};
	const struct learn_quota *const buckets[] = {
		&ls->x_req, &ls->an_req,
	};
	const struct learn_policy *pol;
	int64_t pause = ls->list_pause_ms;
	unsigned i, j;

	for (i = 0; i < sizeof(quotas) / sizeof(quotas[0]); i++)
		pause = max64(pause, quota_pause(quotas[i]));
	for (i = 0; i < sizeof(buckets) / sizeof(buckets[0]); i++)
		pause = max64(pause, bucket_pause(buckets[i]));
	/* r=0 without t: wait out the named policy's window. */
	for (i = 0; i < ls->n_want; i++)
		for (j = 0; j < ls->n_policy; j++)
			if (ls->want[i] == ls->policy[j].name)
				pause = max64(pause, ls->policy[j].w_ms);
	/* ... and "r=0" with no name, the only policy's. */
	for (i = 0; i < ls->n_item; i++) {
		if (ls->item[i].named || ls->item[i].r != 0 ||
		    ls->item[i].t_ms >= 0)
			continue;
		pol = item_policy(ls, &ls->item[i]);
		if (pol)
			pause = max64(pause, pol->w_ms);
	}
	return pause;
}

void learn_finish(struct learn_signals *ls, int64_t now_unix_ms)
{
	const struct learn_quota *r = &ls->requests;

	(void)now_unix_ms;   /* resets were made delays as they came */
	ls->pause_ms = pause_of(ls);
	ls->requests = requests_quota(ls);
	ls->tokens = tokens_quota(ls);
	ls->quota_rps = 0;
	if (r->limit > 0 && r->window_ms > 0)
		ls->quota_rps = (double)r->limit * 1000 / (double)r->window_ms;
	ls->spread_rps = 0;
	ls->spread_ms = -1;
	if (r->remaining > 0 && r->reset_ms > 0) {
		ls->spread_rps = (double)r->remaining * 1000 /
		                 (double)r->reset_ms;
		ls->spread_ms = r->reset_ms;
	}
}

/*
 * learn.c - rate-limit signals from response header fields.
 *
 * Every number is scanned by hand: strtod() would take hex, inf, nan,
 * exponents and the locale's decimal point, none of which an upstream
 * means. Delays are kept in milliseconds, rounded up, because pausing a
 * millisecond too long is harmless and a millisecond too short is a 429.
 * HTTP-dates are read in learn_date.c, the members of the structured
 * RateLimit fields in learn_sf.c.
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "ascii.h"
#include "learn.h"
#include "learn_sf.h"

/* Scanned numbers saturate here: above every limit callers check. */
#define NUM_MAX 1000000000000000000ULL              /* 10^18 */

/* Reset values are told apart by size (see learn_parse_reset). */
#define RESET_EPOCH_MS_MIN 1000000000000ULL         /* 10^12, 2001 */
#define RESET_EPOCH_S_MIN 1000000000ULL             /* 10^9, 2001 */
#define UNIX_MS_MAX 253402300799999LL               /* 9999-12-31 */

/* RFC 9111 section 1.2.2: a larger delta-seconds counts as 2^31. */
#define DELTA_SECONDS_MAX 2147483648LL

enum field {
	F_NONE,
	F_RPS,
	F_CONCURRENCY,
	F_RETRY_AFTER,
	F_RETRY_AFTER_MS,
	F_X_REMAINING,
	F_X_RESET,
	F_X_REQ_REMAINING,
	F_X_REQ_RESET,
	F_X_TOK_REMAINING,
	F_X_TOK_RESET,
	F_IETF_REMAINING,
	F_IETF_RESET,
	F_RATELIMIT,
	F_POLICY,
};

static const struct {
	const char *name;            /* lower case */
	enum field field;
} fields[] = {
	{ "x-ezthrottle-rps", F_RPS },
	{ "x-ezthrottle-max-concurrent", F_CONCURRENCY },
	{ "retry-after", F_RETRY_AFTER },
	{ "retry-after-ms", F_RETRY_AFTER_MS },
	{ "x-ratelimit-remaining", F_X_REMAINING },
	{ "x-ratelimit-reset", F_X_RESET },
	{ "x-rate-limit-remaining", F_X_REMAINING },
	{ "x-rate-limit-reset", F_X_RESET },
	{ "x-ratelimit-remaining-requests", F_X_REQ_REMAINING },
	{ "x-ratelimit-reset-requests", F_X_REQ_RESET },
	{ "x-ratelimit-remaining-tokens", F_X_TOK_REMAINING },
	{ "x-ratelimit-reset-tokens", F_X_TOK_RESET },
	{ "ratelimit-remaining", F_IETF_REMAINING },
	{ "ratelimit-reset", F_IETF_RESET },
	{ "ratelimit", F_RATELIMIT },
	{ "ratelimit-policy", F_POLICY },
};

/* Scans 1*DIGIT at *pp, saturating at NUM_MAX. 0 or -EINVAL. */
static int scan_uint(const char **pp, const char *end, uint64_t *ret)
{
	const char *p = *pp;
	uint64_t v = 0;

	if (p == end || !ascii_is_digit(*p))
		return -EINVAL;
	for (; p < end && ascii_is_digit(*p); p++) {
		v = v * 10 + (uint64_t)(*p - '0');
		if (v > NUM_MAX)
			v = NUM_MAX;
	}
	*pp = p;
	*ret = v;
	return 0;
}

/*
 * Scans 1*DIGIT ["." 1*DIGIT] at *pp into thousandths, rounded up,
 * saturating at NUM_MAX. 0 or -EINVAL.
 */
static int scan_milli(const char **pp, const char *end, uint64_t *ret)
{
	const char *p = *pp;
	uint64_t ip, frac = 0;
	unsigned n = 0;
	bool rest = false;

	if (scan_uint(&p, end, &ip) < 0)
		return -EINVAL;
	if (p < end && *p == '.') {
		p++;
		if (p == end || !ascii_is_digit(*p))
			return -EINVAL;
		for (; p < end && ascii_is_digit(*p); p++) {
			if (n < 3) {
				frac = frac * 10 + (uint64_t)(*p - '0');
				n++;
			} else if (*p != '0') {
				rest = true;
			}
		}
	}
	for (; n < 3; n++)
		frac *= 10;
	*pp = p;
	if (ip >= NUM_MAX / 1000)
		*ret = NUM_MAX;
	else
		*ret = ip * 1000 + frac + (rest ? 1 : 0);
	return 0;
}

/* The whole of (s, len), trimmed, as one integer. 0 or -EINVAL. */
static int parse_uint(const char *s, size_t len, uint64_t *ret)
{
	const char *p = s, *end = s + len;
	uint64_t v;

	ascii_trim(&p, &end);
	if (scan_uint(&p, end, &v) < 0 || p != end)
		return -EINVAL;
	*ret = v;
	return 0;
}

/* The whole of (s, len), trimmed, as a decimal in thousandths. */
static int parse_milli(const char *s, size_t len, uint64_t *ret)
{
	const char *p = s, *end = s + len;
	uint64_t v;

	ascii_trim(&p, &end);
	if (scan_milli(&p, end, &v) < 0 || p != end)
		return -EINVAL;
	*ret = v;
	return 0;
}

int learn_parse_rps(const char *s, double *ret)
{
	const char *p = s, *end = s + strlen(s);
	uint64_t mant = 0;
	int exp10 = 0;
	unsigned sig = 0;            /* significant digits in mant */
	double v;

	ascii_trim(&p, &end);
	if (p == end || !ascii_is_digit(*p))
		return -EINVAL;
	/* Past 18 significant digits the rest only scales the value. */
	for (; p < end && ascii_is_digit(*p); p++) {
		if (sig < 18) {
			mant = mant * 10 + (uint64_t)(*p - '0');
			if (mant)
				sig++;
		} else {
			exp10++;
		}
	}
	if (p < end && *p == '.') {
		p++;
		if (p == end || !ascii_is_digit(*p))
			return -EINVAL;
		for (; p < end && ascii_is_digit(*p); p++) {
			if (sig < 18) {
				mant = mant * 10 + (uint64_t)(*p - '0');
				exp10--;
				if (mant)
					sig++;
			}
		}
	}
	if (p != end)
		return -EINVAL;
	if (exp10 < 0)
		v = (double)mant / pow(10, -exp10);
	else
		v = (double)mant * pow(10, exp10);
	if (!isfinite(v))
		return -ERANGE;
	if (v <= 0)
		return -EINVAL;
	*ret = v;
	return 0;
}

int learn_parse_concurrency(const char *s, unsigned *ret)
{
	uint64_t v;

	if (parse_uint(s, strlen(s), &v) < 0)
		return -EINVAL;
	if (v == 0)
		return -EINVAL;
	if (v > LEARN_MAX_CONCURRENCY)
		return -ERANGE;
	*ret = (unsigned)v;
	return 0;
}

/* Delta-seconds in thousandths, saturated, as ms. */
static int64_t delta_ms(uint64_t milli, uint64_t max_ms)
{
	return (int64_t)(milli > max_ms ? max_ms : milli);
}

int learn_parse_retry_after(const char *s, int64_t now_unix_ms,
                            int64_t *ret_ms)
{
	const char *p = s, *end = s + strlen(s);
	uint64_t milli;
	int64_t when;

	ascii_trim(&p, &end);
	if (p < end && ascii_is_digit(*p)) {
		if (parse_milli(p, (size_t)(end - p), &milli) < 0)
			return -EINVAL;
		*ret_ms = delta_ms(milli, DELTA_SECONDS_MAX * 1000);
		return 0;
	}
	if (learn_parse_http_date(s, now_unix_ms, &when) < 0)
		return -EINVAL;
	*ret_ms = when > now_unix_ms ? when - now_unix_ms : 0;
	return 0;
}

/*
 * retry-after-ms (OpenAI, Azure): milliseconds, a fraction rounded up,
 * saturated as delta-seconds are. 0 or -EINVAL.
 */
static int parse_retry_after_ms(const char *s, int64_t *ret_ms)
{
	uint64_t micro;              /* thousandths of a millisecond */

	if (parse_milli(s, strlen(s), &micro) < 0)
		return -EINVAL;
	*ret_ms = delta_ms((micro + 999) / 1000, DELTA_SECONDS_MAX * 1000);
	return 0;
}

/*
 * A Go duration ("1h2m3.5s", "6m0s", "250ms") into ms, rounded up.
 * Units h, m, s, ms. 0, -EINVAL or -ERANGE (10^9 s or more).
 */
static int parse_go_duration(const char *p, const char *end, int64_t *ret_ms)
{
	uint64_t total = 0, milli, scale;

	if (p == end)
		return -EINVAL;
	while (p < end) {
		if (scan_milli(&p, end, &milli) < 0)
			return -EINVAL;
		if (ascii_skip_lit(&p, end, "ms"))
			scale = 0;       /* milli is ms x 1000 */
		else if (ascii_skip_lit(&p, end, "h"))
			scale = 3600;
		else if (ascii_skip_lit(&p, end, "m"))
			scale = 60;
		else if (ascii_skip_lit(&p, end, "s"))
			scale = 1;
		else
			return -EINVAL;
		if (milli >= NUM_MAX / 3600)
			return -ERANGE;
		if (scale)
			total += milli * scale;
		else
			total += (milli + 999) / 1000;
		if (total >= RESET_EPOCH_S_MIN * 1000)
			return -ERANGE;
	}
	*ret_ms = (int64_t)total;
	return 0;
}

/* learn_parse_reset() on (s, len). */
static int parse_reset(const char *s, size_t len, int64_t now_unix_ms,
                       int64_t *ret_ms)
{
	const char *p = s, *end = s + len;
	uint64_t milli;
	int64_t when;

	ascii_trim(&p, &end);
	if (parse_milli(p, (size_t)(end - p), &milli) < 0)
		return parse_go_duration(p, end, ret_ms);
	if (milli >= RESET_EPOCH_MS_MIN * 1000) {
		if (milli >= NUM_MAX)
			return -ERANGE;
		when = (int64_t)((milli + 999) / 1000);
	} else if (milli >= RESET_EPOCH_S_MIN * 1000) {
		when = (int64_t)milli;
	} else {
		*ret_ms = (int64_t)milli;
		return 0;
	}
	if (when > UNIX_MS_MAX)
		return -ERANGE;
	*ret_ms = when > now_unix_ms ? when - now_unix_ms : 0;
	return 0;
}

int learn_parse_reset(const char *s, int64_t now_unix_ms, int64_t *ret_ms)
{
	return parse_reset(s, strlen(s), now_unix_ms, ret_ms);
}

double learn_clamp_rps(double v, double min, double max)
{
	if (isnan(v) || v < min)
		return min;
	if (v > max)
		return max;
	return v;
}

unsigned learn_clamp_concurrency(unsigned v, unsigned max)
{
	if (max < 1)
		max = 1;
	if (v < 1)
		return 1;
	return v > max ? max : v;
}

static int64_t max64(int64_t a, int64_t b)
{
	return a > b ? a : b;
}

/* Delta seconds of a parameter in ms. */
static int param_ms(const struct sf_value *v, int64_t *ret_ms)
{
	uint64_t milli;

	if (parse_milli(v->p, v->len, &milli) < 0)
		return -EINVAL;
	*ret_ms = delta_ms(milli, DELTA_SECONDS_MAX * 1000);
	return 0;
}

/* One RateLimit member, either shape. */
static int ratelimit_member(struct learn_signals *ls,
                            const struct sf_member *m, int64_t now_unix_ms)
{
	uint64_t r;
	int64_t ms;

	if (m->key.p) {
		if (ascii_eq_lit(m->key.p, m->key.len, "remaining")) {
			if (parse_uint(m->value.p, m->value.len, &r) < 0)
				return -EINVAL;
			ls->dict.remaining = (int64_t)r;
		} else if (ascii_eq_lit(m->key.p, m->key.len, "reset")) {
			if (parse_reset(m->value.p, m->value.len, now_unix_ms,
			                &ms) < 0)
				return -EINVAL;
			ls->dict.reset_ms = ms;
		}
		return 0;
	}
	if (!m->r.p)
		return 0;
	if (parse_uint(m->r.p, m->r.len, &r) < 0)
		return -EINVAL;
	if (m->t.p) {
		if (param_ms(&m->t, &ms) < 0)
			return -EINVAL;
		if (r == 0)
			ls->list_pause_ms = max64(ls->list_pause_ms, ms);
	} else if (r == 0 && ls->n_want < LEARN_MAX_POLICIES) {
		ls->want[ls->n_want++] = m->name;
	}
	return 0;
}

/* One RateLimit-Policy member: remember its window. */
static int policy_member(struct learn_signals *ls, const struct sf_member *m)
{
	int64_t ms;

	if (m->key.p || !m->w.p)
		return 0;
	if (param_ms(&m->w, &ms) < 0)
		return -EINVAL;
	if (ls->n_policy < LEARN_MAX_POLICIES) {
		ls->policy[ls->n_policy] = m->name;
		ls->policy_w_ms[ls->n_policy] = ms;
		ls->n_policy++;
	}
	return 0;
}

/* A RateLimit or RateLimit-Policy field; stops at the first error. */
static int structured(struct learn_signals *ls, enum field f,
                      const char *value, int64_t now_unix_ms)
{
	const char *p = value, *end = value + strlen(value);
	struct sf_member m;
	int r;

	ascii_trim(&p, &end);
	if (p == end)
		return -EINVAL;
	while (p < end) {
		if (sf_member_parse(&p, end, &m) < 0)
			return -EINVAL;
		if (f == F_RATELIMIT)
			r = ratelimit_member(ls, &m, now_unix_ms);
		else
			r = policy_member(ls, &m);
		if (r < 0)
			return r;
	}
	return 0;
}

static void pair_init(struct learn_pair *pair)
{
	pair->remaining = -1;
	pair->reset_ms = -1;
}

void learn_init(struct learn_signals *ls)
{
	memset(ls, 0, sizeof(*ls));
	ls->retry_after_ms = -1;
	ls->pause_ms = -1;
	pair_init(&ls->x);
	pair_init(&ls->x_req);
	pair_init(&ls->x_tok);
	pair_init(&ls->ietf);
	pair_init(&ls->dict);
	ls->list_pause_ms = -1;
}

static enum field field_of(const char *name, size_t name_len)
{
	size_t i;

	for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		if (ascii_eq_lit(name, name_len, fields[i].name))
			return fields[i].field;
	return F_NONE;
}

static int set_remaining(struct learn_pair *pair, const char *value)
{
	uint64_t v;

	if (parse_uint(value, strlen(value), &v) < 0)
		return -EINVAL;
	pair->remaining = (int64_t)v;
	return 0;
}

static int set_reset(struct learn_pair *pair, const char *value,
                     int64_t now_unix_ms)
{
	int64_t ms;

	if (learn_parse_reset(value, now_unix_ms, &ms) < 0)
		return -EINVAL;
	pair->reset_ms = ms;
	return 0;
}

void learn_field(struct learn_signals *ls, const char *name, size_t name_len,
                 const char *value, int64_t now_unix_ms)
{
	enum field f = field_of(name, name_len);
	double rps;
	unsigned conc;
	int64_t ms;
	int r = 0;

	switch (f) {
	case F_NONE:
		return;
	case F_RPS:
		r = learn_parse_rps(value, &rps);
		if (r == 0)
			ls->rps = rps;
		break;
	case F_CONCURRENCY:
		r = learn_parse_concurrency(value, &conc);
		if (r == 0)
			ls->concurrency = conc;
		break;
	case F_RETRY_AFTER:
		r = learn_parse_retry_after(value, now_unix_ms, &ms);
		if (r == 0 && !ls->retry_after_exact)
			ls->retry_after_ms = ms;
		break;
	case F_RETRY_AFTER_MS:
		/* Finer than Retry-After: it wins, in either order. */
		r = parse_retry_after_ms(value, &ms);
		if (r == 0) {
			ls->retry_after_ms = ms;
			ls->retry_after_exact = true;
		}
		break;
	case F_X_REMAINING:
		r = set_remaining(&ls->x, value);
		break;
	case F_X_RESET:
		r = set_reset(&ls->x, value, now_unix_ms);
		break;
	case F_X_REQ_REMAINING:
		r = set_remaining(&ls->x_req, value);
		break;
	case F_X_REQ_RESET:
		r = set_reset(&ls->x_req, value, now_unix_ms);
		break;
	case F_X_TOK_REMAINING:
		r = set_remaining(&ls->x_tok, value);
		break;
	case F_X_TOK_RESET:
		r = set_reset(&ls->x_tok, value, now_unix_ms);
		break;
	case F_IETF_REMAINING:
		r = set_remaining(&ls->ietf, value);
		break;
	case F_IETF_RESET:
		r = set_reset(&ls->ietf, value, now_unix_ms);
		break;
	case F_RATELIMIT:
	case F_POLICY:
		r = structured(ls, f, value, now_unix_ms);
		break;
	}
	if (r < 0)
		ls->bad++;
}

/* The pause a pair asks for, or -1. */
static int64_t pair_pause(const struct learn_pair *pair)
{
	return pair->remaining == 0 ? pair->reset_ms : -1;
}

void learn_finish(struct learn_signals *ls, int64_t now_unix_ms)
{
	int64_t pause = ls->list_pause_ms;
	unsigned i, j;

	pause = max64(pause, pair_pause(&ls->x));
	pause = max64(pause, pair_pause(&ls->x_req));
	pause = max64(pause, pair_pause(&ls->x_tok));
	pause = max64(pause, pair_pause(&ls->ietf));
	pause = max64(pause, pair_pause(&ls->dict));
	/* r=0 without t: wait out the named policy's window. */
	for (i = 0; i < ls->n_want; i++)
		for (j = 0; j < ls->n_policy; j++)
			if (ls->want[i] == ls->policy[j])
				pause = max64(pause, ls->policy_w_ms[j]);
	ls->pause_ms = pause;
}

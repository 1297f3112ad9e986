/*
 * learn.c - rate-limit signals from response header fields.
 *
 * Every number is scanned by hand: strtod() would take hex, inf, nan,
 * exponents and the locale's decimal point, none of which an upstream
 * means. Delays are kept in milliseconds, rounded up, because pausing a
 * millisecond too long is harmless and a millisecond too short is a 429.
 * HTTP-dates and RFC 3339 times are read in learn_date.c, the members of
 * the structured RateLimit fields in learn_sf.c; learn_quota.c combines
 * what learn_field() gathered.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
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

enum kind {
	K_RPS,
	K_CONCURRENCY,
	K_RETRY_AFTER,
	K_RETRY_AFTER_MS,
	K_LIMIT,                     /* an integer */
	K_LIMIT_LIST,                /* an integer, maybe "10, 10;w=1" */
	K_REMAINING,
	K_RESET,                     /* learn_parse_reset() */
	K_RESET_RFC3339,
	K_RATELIMIT,
	K_POLICY,
};

#define Q(member) offsetof(struct learn_signals, member)

static const struct {
	const char *name;            /* lower case */
	enum kind kind;
	size_t quota;                /* offset of its struct learn_quota */
} fields[] = {
	{ "x-ezthrottle-rps", K_RPS, 0 },
	{ "x-ezthrottle-max-concurrent", K_CONCURRENCY, 0 },
	{ "retry-after", K_RETRY_AFTER, 0 },
	{ "retry-after-ms", K_RETRY_AFTER_MS, 0 },
	{ "x-ratelimit-limit", K_LIMIT_LIST, Q(x) },
	{ "x-ratelimit-remaining", K_REMAINING, Q(x) },
	{ "x-ratelimit-reset", K_RESET, Q(x) },
	{ "x-rate-limit-limit", K_LIMIT_LIST, Q(x) },
	{ "x-rate-limit-remaining", K_REMAINING, Q(x) },
	{ "x-rate-limit-reset", K_RESET, Q(x) },
	{ "x-ratelimit-limit-requests", K_LIMIT, Q(x_req) },
	{ "x-ratelimit-remaining-requests", K_REMAINING, Q(x_req) },
	{ "x-ratelimit-reset-requests", K_RESET, Q(x_req) },
	{ "x-ratelimit-limit-tokens", K_LIMIT, Q(x_tok) },
	{ "x-ratelimit-remaining-tokens", K_REMAINING, Q(x_tok) },
	{ "x-ratelimit-reset-tokens", K_RESET, Q(x_tok) },
	{ "anthropic-ratelimit-requests-limit", K_LIMIT, Q(an_req) },
	{ "anthropic-ratelimit-requests-remaining", K_REMAINING, Q(an_req) },
	{ "anthropic-ratelimit-requests-reset", K_RESET_RFC3339, Q(an_req) },
	{ "anthropic-ratelimit-tokens-limit", K_LIMIT, Q(an_tok) },
	{ "anthropic-ratelimit-tokens-remaining", K_REMAINING, Q(an_tok) },
	{ "anthropic-ratelimit-tokens-reset", K_RESET_RFC3339, Q(an_tok) },
	{ "anthropic-ratelimit-input-tokens-limit", K_LIMIT, Q(an_in) },
	{ "anthropic-ratelimit-input-tokens-remaining", K_REMAINING,
	  Q(an_in) },
	{ "anthropic-ratelimit-input-tokens-reset", K_RESET_RFC3339,
	  Q(an_in) },
	{ "anthropic-ratelimit-output-tokens-limit", K_LIMIT, Q(an_out) },
	{ "anthropic-ratelimit-output-tokens-remaining", K_REMAINING,
	  Q(an_out) },
	{ "anthropic-ratelimit-output-tokens-reset", K_RESET_RFC3339,
	  Q(an_out) },
	{ "ratelimit-limit", K_LIMIT_LIST, Q(ietf) },
	{ "ratelimit-remaining", K_REMAINING, Q(ietf) },
	{ "ratelimit-reset", K_RESET, Q(ietf) },
	{ "ratelimit", K_RATELIMIT, 0 },
	{ "ratelimit-policy", K_POLICY, 0 },
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

/* A limit, quota or remaining count: 0..LEARN_MAX_COUNT. */
static int parse_count(const char *s, size_t len, int64_t *ret)
{
	uint64_t v;

	if (parse_uint(s, len, &v) < 0)
		return -EINVAL;
	if (v > (uint64_t)LEARN_MAX_COUNT)
		return -ERANGE;
	*ret = (int64_t)v;
	return 0;
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

/* A window w: delta seconds, 1 ms..LEARN_MAX_WINDOW_MS. */
static int param_window(const struct sf_value *v, int64_t *ret_ms)
{
	int64_t ms;

	if (param_ms(v, &ms) < 0)
		return -EINVAL;
	if (ms < 1 || ms > LEARN_MAX_WINDOW_MS)
		return -ERANGE;
	*ret_ms = ms;
	return 0;
}

/*
 * X-RateLimit-Limit / RateLimit-Limit: an integer, maybe followed (early
 * IETF drafts) by its policies, "10, 10;w=1, 50;w=60". The window is that
 * of the first policy whose quota is the limit; -1 when none is.
 */
static int parse_limit_list(const char *value, struct learn_quota *ret)
{
	const char *p = value, *end = value + strlen(value);
	struct sf_member m;
	int64_t limit = -1, window = -1, q, w;

	ascii_trim(&p, &end);
	if (p == end)
		return -EINVAL;
	while (p < end) {
		if (sf_member_parse(&p, end, &m) < 0 || m.key.p ||
		    parse_count(m.item.p, m.item.len, &q) < 0)
			return -EINVAL;
		if (limit < 0)
			limit = q;
		if (m.w.p) {
			if (param_window(&m.w, &w) < 0)
				return -EINVAL;
			if (q == limit && window < 0)
				window = w;
		}
	}
	ret->limit = limit;
	ret->window_ms = window;
	return 0;
}

/* RateLimit: limit=, remaining=, reset= (drafts 5-6); other keys ignored. */
static int dict_member(struct learn_signals *ls, const struct sf_member *m,
                       int64_t now_unix_ms)
{
	const struct sf_value *v = &m->value;
	int64_t n;

	if (ascii_eq_lit(m->key.p, m->key.len, "limit")) {
		if (parse_count(v->p, v->len, &n) < 0)
			return -EINVAL;
		ls->dict.limit = n;
	} else if (ascii_eq_lit(m->key.p, m->key.len, "remaining")) {
		if (parse_count(v->p, v->len, &n) < 0)
			return -EINVAL;
		ls->dict.remaining = n;
	} else if (ascii_eq_lit(m->key.p, m->key.len, "reset")) {
		if (parse_reset(v->p, v->len, now_unix_ms, &n) < 0)
			return -EINVAL;
		ls->dict.reset_ms = n;
	}
	return 0;
}

/*
 * One RateLimit member: a dictionary member, a list item "name";r=;t=
 * (drafts 7 on), or "r=3;t=1" with no name.
 */
static int ratelimit_member(struct learn_signals *ls,
                            const struct sf_member *m, int64_t now_unix_ms)
{
	bool named = !m->key.p;
	const struct sf_value *rv = named ? &m->r : &m->value;
	int64_t r, t_ms = -1;

	if (!named && !ascii_eq_lit(m->key.p, m->key.len, "r"))
		return dict_member(ls, m, now_unix_ms);
	if (!rv->p)
		return 0;
	if (parse_count(rv->p, rv->len, &r) < 0)
		return -EINVAL;
	if (m->t.p && param_ms(&m->t, &t_ms) < 0)
		return -EINVAL;
	if (r == 0 && t_ms >= 0)
		ls->list_pause_ms = max64(ls->list_pause_ms, t_ms);
	else if (r == 0 && named && ls->n_want < LEARN_MAX_POLICIES)
		ls->want[ls->n_want++] = m->name;
	if (ls->n_item < LEARN_MAX_POLICIES)
		ls->item[ls->n_item++] = (struct learn_item){
			.name = named ? m->name : 0,
			.r = r,
			.t_ms = t_ms,
			.named = named,
		};
	return 0;
}

/* A qu parameter: "requests", quoted or not. */
static bool unit_is_requests(const struct sf_value *v)
{
	const char *p = v->p;
	size_t len = v->len;

	if (len >= 2 && p[0] == '"' && p[len - 1] == '"') {
		p++;
		len -= 2;
	}
	return ascii_eq_lit(p, len, "requests");
}

/*
 * One RateLimit-Policy member: its quota (q, or the item when it is a
 * number: "10;w=1"), window and unit. Dictionary members are ignored.
 */
static int policy_member(struct learn_signals *ls, const struct sf_member *m)
{
	struct learn_policy pol = {
		.name = m->name, .q = -1, .w_ms = -1, .requests = true,
	};

	if (m->key.p)
		return 0;
	if (m->q.p) {
		if (parse_count(m->q.p, m->q.len, &pol.q) < 0)
			return -EINVAL;
	} else if (parse_count(m->item.p, m->item.len, &pol.q) < 0) {
		pol.q = -1;      /* a name, not a number */
	}
	if (m->w.p && param_window(&m->w, &pol.w_ms) < 0)
		return -EINVAL;
	if (m->qu.p)
		pol.requests = unit_is_requests(&m->qu);
	if (pol.q < 0 && pol.w_ms < 0)
		return 0;
	if (ls->n_policy < LEARN_MAX_POLICIES)
		ls->policy[ls->n_policy++] = pol;
	return 0;
}

/* A RateLimit or RateLimit-Policy field; stops at the first error. */
static int structured(struct learn_signals *ls, enum kind k,
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
		if (k == K_RATELIMIT)
			r = ratelimit_member(ls, &m, now_unix_ms);
		else
			r = policy_member(ls, &m);
		if (r < 0)
			return r;
	}
	return 0;
}

static void quota_init(struct learn_quota *q)
{
	q->limit = -1;
	q->remaining = -1;
	q->reset_ms = -1;
	q->window_ms = -1;
}

void learn_init(struct learn_signals *ls)
{
	memset(ls, 0, sizeof(*ls));
	ls->retry_after_ms = -1;
	ls->pause_ms = -1;
	ls->spread_ms = -1;
	quota_init(&ls->requests);
	quota_init(&ls->tokens);
	quota_init(&ls->x);
	quota_init(&ls->x_req);
	quota_init(&ls->x_tok);
	quota_init(&ls->an_req);
	quota_init(&ls->an_tok);
	quota_init(&ls->an_in);
	quota_init(&ls->an_out);
	quota_init(&ls->ietf);
	quota_init(&ls->dict);
	ls->list_pause_ms = -1;
}

/* The row of fields[] for a name, or -1. */
/*
 * What the names of fields[] have in common, taken from the table once:
 * the first letters they start with (a bit per letter) and the shortest
 * length. Most fields of most answers (Date, Content-Type, Server) fail
 * one of the two and cost no walk of the table.
 */
static uint32_t field_firsts;
static size_t field_min_len;
static pthread_once_t field_once = PTHREAD_ONCE_INIT;

static void field_summary(void)
{
	field_min_len = SIZE_MAX;
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		size_t len = strlen(fields[i].name);

		field_firsts |= 1u << (fields[i].name[0] - 'a');
		if (len < field_min_len)
			field_min_len = len;
	}
}

static int field_of(const char *name, size_t name_len)
{
	unsigned c;
	size_t i;

	pthread_once(&field_once, field_summary);
	if (name_len < field_min_len)
		return -1;
	c = (unsigned char)(name[0] | 0x20) - 'a';
	if (c >= 26 || !(field_firsts >> c & 1))
		return -1;

	for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		if (ascii_eq_lit(name, name_len, fields[i].name))
			return (int)i;
	return -1;
}

/* The struct learn_quota that row of fields[] fills. */
static struct learn_quota *quota_at(struct learn_signals *ls, size_t row)
{
	return (struct learn_quota *)(void *)((char *)ls + fields[row].quota);
}

/* The value of a quota field into its member of *q. */
static int quota_field(struct learn_quota *q, enum kind k, const char *value,
                       int64_t now_unix_ms)
{
	struct learn_quota list;
	int64_t v;

	switch (k) {
	case K_LIMIT:
		if (parse_count(value, strlen(value), &v) < 0)
			return -EINVAL;
		q->limit = v;
		return 0;
	case K_LIMIT_LIST:
		if (parse_limit_list(value, &list) < 0)
			return -EINVAL;
		q->limit = list.limit;
		q->window_ms = list.window_ms;
		return 0;
	case K_REMAINING:
		if (parse_count(value, strlen(value), &v) < 0)
			return -EINVAL;
		q->remaining = v;
		return 0;
	case K_RESET:
		if (learn_parse_reset(value, now_unix_ms, &v) < 0)
			return -EINVAL;
		q->reset_ms = v;
		return 0;
	case K_RESET_RFC3339:
		if (learn_parse_rfc3339(value, &v) < 0)
			return -EINVAL;
		q->reset_ms = v > now_unix_ms ? v - now_unix_ms : 0;
		return 0;
	default:
		return -EINVAL;
	}
}

void learn_field(struct learn_signals *ls, const char *name, size_t name_len,
                 const char *value, int64_t now_unix_ms)
{
	int row = field_of(name, name_len);
	enum kind k;
	double rps;
	unsigned conc;
	int64_t ms;
	int r = 0;

	if (row < 0)
		return;
	k = fields[row].kind;
	switch (k) {
	case K_RPS:
		r = learn_parse_rps(value, &rps);
		if (r == 0)
			ls->rps = rps;
		break;
	case K_CONCURRENCY:
		r = learn_parse_concurrency(value, &conc);
		if (r == 0)
			ls->concurrency = conc;
		break;
	case K_RETRY_AFTER:
		r = learn_parse_retry_after(value, now_unix_ms, &ms);
		if (r == 0 && !ls->retry_after_exact)
			ls->retry_after_ms = ms;
		break;
	case K_RETRY_AFTER_MS:
		/* Finer than Retry-After: it wins, in either order. */
		r = parse_retry_after_ms(value, &ms);
		if (r == 0) {
			ls->retry_after_ms = ms;
			ls->retry_after_exact = true;
		}
		break;
	case K_RATELIMIT:
	case K_POLICY:
		r = structured(ls, k, value, now_unix_ms);
		break;
	default:
		r = quota_field(quota_at(ls, (size_t)row), k, value,
		                now_unix_ms);
		break;
	}
	if (r < 0)
		ls->bad++;
}

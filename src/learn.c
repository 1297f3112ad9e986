/*
 * learn.c - rate-limit signals from response header fields.
 *
 * Every number is scanned by hand: strtod() would take hex, inf, nan,
 * exponents and the locale's decimal point, none of which an upstream
 * means. Delays are kept in milliseconds, rounded up, because pausing a
 * millisecond too long is harmless and a millisecond too short is a 429.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "ascii.h"
#include "learn.h"

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

static const char *const month_names[12] = {
	"jan", "feb", "mar", "apr", "may", "jun",
	"jul", "aug", "sep", "oct", "nov", "dec",
};

static const char *const day_names[7] = {
	"monday", "tuesday", "wednesday", "thursday", "friday", "saturday",
	"sunday",
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

/* Days since 1970-01-01 of a proleptic Gregorian date (Hinnant). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* The year of Unix day z (Hinnant's civil_from_days, year only). */
static int64_t year_from_days(int64_t z)
{
	int64_t era, doe, yoe, doy, mp, y;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	y = yoe + era * 400;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	return mp >= 10 ? y + 1 : y;
}

static unsigned days_in_month(int64_t y, unsigned m)
{
	static const unsigned days[12] = {
		31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31,
	};
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	return m == 2 && leap ? 29 : days[m - 1];
}

/* Exactly n digits at *pp. */
static int scan_fixed(const char **pp, const char *end, unsigned n,
                      unsigned *ret)
{
	const char *p = *pp;
	unsigned v = 0, i;

	if ((size_t)(end - p) < n)
		return -EINVAL;
	for (i = 0; i < n; i++) {
		if (!ascii_is_digit(p[i]))
			return -EINVAL;
		v = v * 10 + (unsigned)(p[i] - '0');
	}
	*pp = p + n;
	*ret = v;
	return 0;
}

/* The literal lit (case-insensitive) at *pp. */
static int scan_lit(const char **pp, const char *end, const char *lit)
{
	size_t n = strlen(lit);

	if ((size_t)(end - *pp) < n || !ascii_eq_lit(*pp, n, lit))
		return -EINVAL;
	*pp += n;
	return 0;
}

/* A three-letter month name; writes 1..12. */
static int scan_month(const char **pp, const char *end, unsigned *ret)
{
	unsigned i;

	for (i = 0; i < 12; i++) {
		if (scan_lit(pp, end, month_names[i]) == 0) {
			*ret = i + 1;
			return 0;
		}
	}
	return -EINVAL;
}

/* A day name, full or three letters. */
static int scan_day_name(const char **pp, const char *end)
{
	const char *p = *pp;
	size_t n = 0;
	unsigned i;

	while (p + n < end && ((p[n] >= 'a' && p[n] <= 'z') ||
	                       (p[n] >= 'A' && p[n] <= 'Z')))
		n++;
	for (i = 0; i < 7; i++) {
		if (ascii_eq_lit(p, n, day_names[i]) ||
		    (n == 3 && ascii_lower(p[0]) == day_names[i][0] &&
		     ascii_lower(p[1]) == day_names[i][1] &&
		     ascii_lower(p[2]) == day_names[i][2])) {
			*pp = p + n;
			return 0;
		}
	}
	return -EINVAL;
}

/* "HH:MM:SS" into seconds of the day. */
static int scan_time(const char **pp, const char *end, unsigned *ret)
{
	unsigned h, m, s;

	if (scan_fixed(pp, end, 2, &h) < 0 || scan_lit(pp, end, ":") < 0 ||
	    scan_fixed(pp, end, 2, &m) < 0 || scan_lit(pp, end, ":") < 0 ||
	    scan_fixed(pp, end, 2, &s) < 0)
		return -EINVAL;
	if (h > 23 || m > 59 || s > 60)
		return -EINVAL;
	*ret = h * 3600 + m * 60 + s;
	return 0;
}

int learn_parse_http_date(const char *s, int64_t now_unix_ms,
                          int64_t *ret_unix_ms)
{
	const char *p = s, *end = s + strlen(s);
	unsigned day, mon, year, secs;
	int64_t y;

	ascii_trim(&p, &end);
	if (scan_day_name(&p, end) < 0)
		return -EINVAL;
	if (scan_lit(&p, end, ", ") == 0) {
		/* IMF-fixdate "06 Nov 1994" or rfc850 "06-Nov-94". */
		if (scan_fixed(&p, end, 2, &day) < 0)
			return -EINVAL;
		if (scan_lit(&p, end, " ") == 0) {
			if (scan_month(&p, end, &mon) < 0 ||
			    scan_lit(&p, end, " ") < 0 ||
			    scan_fixed(&p, end, 4, &year) < 0)
				return -EINVAL;
			y = year;
		} else {
			int64_t now_year = year_from_days(
				now_unix_ms / 86400000);

			if (scan_lit(&p, end, "-") < 0 ||
			    scan_month(&p, end, &mon) < 0 ||
			    scan_lit(&p, end, "-") < 0 ||
			    scan_fixed(&p, end, 2, &year) < 0)
				return -EINVAL;
			/* The year ending so within 50 years of now. */
			y = now_year - now_year % 100 + year;
			if (y > now_year + 50)
				y -= 100;
			else if (y <= now_year - 50)
				y += 100;
		}
		if (scan_lit(&p, end, " ") < 0 ||
		    scan_time(&p, end, &secs) < 0 ||
		    scan_lit(&p, end, " gmt") < 0)
			return -EINVAL;
	} else {
		/* asctime "Nov  6 08:49:37 1994". */
		if (scan_lit(&p, end, " ") < 0 ||
		    scan_month(&p, end, &mon) < 0 ||
		    scan_lit(&p, end, " ") < 0)
			return -EINVAL;
		if (scan_lit(&p, end, " ") == 0) {
			if (scan_fixed(&p, end, 1, &day) < 0)
				return -EINVAL;
		} else if (scan_fixed(&p, end, 2, &day) < 0) {
			return -EINVAL;
		}
		if (scan_lit(&p, end, " ") < 0 ||
		    scan_time(&p, end, &secs) < 0 ||
		    scan_lit(&p, end, " ") < 0 ||
		    scan_fixed(&p, end, 4, &year) < 0)
			return -EINVAL;
		y = year;
	}
	if (p != end || day < 1 || day > days_in_month(y, mon))
		return -EINVAL;
	*ret_unix_ms = (days_from_civil(y, mon, day) * 86400 + secs) * 1000;
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
		if (scan_lit(&p, end, "ms") == 0)
			scale = 0;       /* milli is ms x 1000 */
		else if (scan_lit(&p, end, "h") == 0)
			scale = 3600;
		else if (scan_lit(&p, end, "m") == 0)
			scale = 60;
		else if (scan_lit(&p, end, "s") == 0)
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

/*
 * Structured fields (RFC 8941), read leniently enough for both RateLimit
 * shapes: a member is either a dictionary member "key=value" or an item
 * (string, token or number) naming a policy; either may carry parameters.
 * Only the parameters r, t and w are kept.
 */
struct sf_value {
	const char *p;               /* raw text; NULL when absent */
	size_t len;
};

struct sf_member {
	struct sf_value key;         /* dictionary key; p NULL for an item */
	struct sf_value value;       /* dictionary value */
	uint64_t name;               /* FNV-1a of the item's (unquoted) text */
	struct sf_value r, t, w;     /* parameters */
};

#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL

/* A character of a structured-field token (RFC 8941: ":" and "/" too). */
static bool sf_tchar(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       ascii_is_digit(c) || (c != '\0' && strchr("!#$%&'*+-.^_`|~:/", c));
}

/*
 * A bare item at *pp: a quoted string (hashed without its quotes and
 * escapes), or a run of token characters (a token, number, ?1 boolean).
 */
static int sf_item(const char **pp, const char *end, struct sf_value *ret,
                   uint64_t *ret_hash)
{
	const char *p = *pp;
	uint64_t h = FNV_OFFSET;

	if (p < end && *p == '"') {
		for (p++; p < end && *p != '"'; p++) {
			if (*p == '\\') {
				p++;
				if (p == end || (*p != '"' && *p != '\\'))
					return -EINVAL;
			}
			h = (h ^ (unsigned char)*p) * FNV_PRIME;
		}
		if (p == end)
			return -EINVAL;
		p++;
	} else {
		if (p < end && *p == '?')
			p++;
		while (p < end && sf_tchar(*p)) {
			h = (h ^ (unsigned char)*p) * FNV_PRIME;
			p++;
		}
		if (p == *pp)
			return -EINVAL;
	}
	ret->p = *pp;
	ret->len = (size_t)(p - *pp);
	if (ret_hash)
		*ret_hash = h;
	*pp = p;
	return 0;
}

/* Key characters: a letter or "*", then also digits and "_-.". */
static bool is_keychar(char c, bool first)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '*' ||
	       (!first && (ascii_is_digit(c) || c == '_' || c == '-' || c == '.'));
}

/* A parameter or dictionary key (either case, leniently). */
static int sf_key(const char **pp, const char *end, struct sf_value *ret)
{
	const char *p = *pp;

	while (p < end && is_keychar(*p, p == *pp))
		p++;
	if (p == *pp)
		return -EINVAL;
	ret->p = *pp;
	ret->len = (size_t)(p - *pp);
	*pp = p;
	return 0;
}

/* ";key[=value]" parameters; keeps r, t and w. */
static int sf_params(const char **pp, const char *end, struct sf_member *m)
{
	const char *p = *pp;
	struct sf_value key, value;

	while (p < end && *p == ';') {
		p++;
		while (p < end && ascii_is_ows(*p))
			p++;
		if (sf_key(&p, end, &key) < 0)
			return -EINVAL;
		value.p = "?1";
		value.len = 2;
		if (p < end && *p == '=') {
			p++;
			if (sf_item(&p, end, &value, NULL) < 0)
				return -EINVAL;
		}
		if (ascii_eq_lit(key.p, key.len, "r"))
			m->r = value;
		else if (ascii_eq_lit(key.p, key.len, "t"))
			m->t = value;
		else if (ascii_eq_lit(key.p, key.len, "w"))
			m->w = value;
	}
	*pp = p;
	return 0;
}

/* One member and the comma after it. */
static int sf_member(const char **pp, const char *end, struct sf_member *m)
{
	const char *p = *pp, *q;
	struct sf_value key;

	memset(m, 0, sizeof(*m));
	while (p < end && ascii_is_ows(*p))
		p++;
	q = p;
	if (sf_key(&q, end, &key) == 0 && q < end && *q == '=') {
		m->key = key;
		p = q + 1;
		if (sf_item(&p, end, &m->value, NULL) < 0)
			return -EINVAL;
	} else if (sf_item(&p, end, &key, &m->name) < 0) {
		return -EINVAL;
	}
	if (sf_params(&p, end, m) < 0)
		return -EINVAL;
	while (p < end && ascii_is_ows(*p))
		p++;
	if (p < end) {
		if (*p != ',')
			return -EINVAL;
		p++;
		while (p < end && ascii_is_ows(*p))
			p++;
		if (p == end)
			return -EINVAL;  /* trailing comma */
	}
	*pp = p;
	return 0;
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
		if (sf_member(&p, end, &m) < 0)
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
		if (r == 0)
			ls->retry_after_ms = ms;
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

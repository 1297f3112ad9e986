/*
 * learn_date.c - HTTP-dates (RFC 9110 section 5.6.7) in their three forms,
 * for Retry-After, and RFC 3339 times, for Anthropic's resets:
 * learn_parse_http_date() and learn_parse_rfc3339() of learn.h. Pure: the
 * caller passes the wall clock, which only the two-digit years of
 * rfc850-date need; RFC 3339 carries its own offset, so no time zone
 * database is read.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "ascii.h"
#include "learn.h"

static const char *const month_names[12] = {
	"jan", "feb", "mar", "apr", "may", "jun",
	"jul", "aug", "sep", "oct", "nov", "dec",
};

static const char *const day_names[7] = {
	"monday", "tuesday", "wednesday", "thursday", "friday", "saturday",
	"sunday",
};

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

/* A three-letter month name; writes 1..12. */
static int scan_month(const char **pp, const char *end, unsigned *ret)
{
	unsigned i;

	for (i = 0; i < 12; i++) {
		if (ascii_skip_lit(pp, end, month_names[i])) {
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

	if (scan_fixed(pp, end, 2, &h) < 0 || !ascii_skip_lit(pp, end, ":") ||
	    scan_fixed(pp, end, 2, &m) < 0 || !ascii_skip_lit(pp, end, ":") ||
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
	if (ascii_skip_lit(&p, end, ", ")) {
		/* IMF-fixdate "06 Nov 1994" or rfc850 "06-Nov-94". */
		if (scan_fixed(&p, end, 2, &day) < 0)
			return -EINVAL;
		if (ascii_skip_lit(&p, end, " ")) {
			if (scan_month(&p, end, &mon) < 0 ||
			    !ascii_skip_lit(&p, end, " ") ||
			    scan_fixed(&p, end, 4, &year) < 0)
				return -EINVAL;
			y = year;
		} else {
			int64_t now_year = year_from_days(
				now_unix_ms / 86400000);

			if (!ascii_skip_lit(&p, end, "-") ||
			    scan_month(&p, end, &mon) < 0 ||
			    !ascii_skip_lit(&p, end, "-") ||
			    scan_fixed(&p, end, 2, &year) < 0)
				return -EINVAL;
			/* The year ending so within 50 years of now. */
			y = now_year - now_year % 100 + year;
			if (y > now_year + 50)
				y -= 100;
			else if (y <= now_year - 50)
				y += 100;
		}
		if (!ascii_skip_lit(&p, end, " ") ||
		    scan_time(&p, end, &secs) < 0 ||
		    !ascii_skip_lit(&p, end, " gmt"))
			return -EINVAL;
	} else {
		/* asctime "Nov  6 08:49:37 1994". */
		if (!ascii_skip_lit(&p, end, " ") ||
		    scan_month(&p, end, &mon) < 0 ||
		    !ascii_skip_lit(&p, end, " "))
			return -EINVAL;
		if (ascii_skip_lit(&p, end, " ")) {
			if (scan_fixed(&p, end, 1, &day) < 0)
				return -EINVAL;
		} else if (scan_fixed(&p, end, 2, &day) < 0) {
			return -EINVAL;
		}
		if (!ascii_skip_lit(&p, end, " ") ||
		    scan_time(&p, end, &secs) < 0 ||
		    !ascii_skip_lit(&p, end, " ") ||
		    scan_fixed(&p, end, 4, &year) < 0)
			return -EINVAL;
		y = year;
	}
	if (p != end || day < 1 || day > days_in_month(y, mon))
		return -EINVAL;
	*ret_unix_ms = (days_from_civil(y, mon, day) * 86400 + secs) * 1000;
	return 0;
}

/*
 * time-secfrac ("." 1*DIGIT) at *pp, if any, in ms rounded up: a
 * "1999.9999" reset is better read a little late than early. Writes 1000
 * for ".9999", which the caller adds as a whole second.
 */
static int scan_secfrac(const char **pp, const char *end, unsigned *ret_ms)
{
	const char *p = *pp;
	unsigned ms = 0, n = 0;
	bool rest = false;

	if (p == end || *p != '.') {
		*ret_ms = 0;
		return 0;
	}
	p++;
	if (p == end || !ascii_is_digit(*p))
		return -EINVAL;
	for (; p < end && ascii_is_digit(*p); p++) {
		if (n < 3) {
			ms = ms * 10 + (unsigned)(*p - '0');
			n++;
		} else if (*p != '0') {
			rest = true;
		}
	}
	for (; n < 3; n++)
		ms *= 10;
	*pp = p;
	*ret_ms = ms + (rest ? 1 : 0);
	return 0;
}

/* time-offset: "Z" or ("+" / "-") HH ":" MM; writes seconds east of UTC. */
static int scan_offset(const char **pp, const char *end, int *ret_s)
{
	unsigned h, m;
	int sign;

	if (ascii_skip_lit(pp, end, "z")) {
		*ret_s = 0;
		return 0;
	}
	if (ascii_skip_lit(pp, end, "+"))
		sign = 1;
	else if (ascii_skip_lit(pp, end, "-"))
		sign = -1;
	else
		return -EINVAL;
	if (scan_fixed(pp, end, 2, &h) < 0 || !ascii_skip_lit(pp, end, ":") ||
	    scan_fixed(pp, end, 2, &m) < 0 || h > 23 || m > 59)
		return -EINVAL;
	*ret_s = sign * (int)(h * 3600 + m * 60);
	return 0;
}

int learn_parse_rfc3339(const char *s, int64_t *ret_unix_ms)
{
	const char *p = s, *end = s + strlen(s);
	unsigned year, mon, day, secs, ms;
	int offset;

	ascii_trim(&p, &end);
	if (scan_fixed(&p, end, 4, &year) < 0 ||
	    !ascii_skip_lit(&p, end, "-") ||
	    scan_fixed(&p, end, 2, &mon) < 0 ||
	    !ascii_skip_lit(&p, end, "-") ||
	    scan_fixed(&p, end, 2, &day) < 0)
		return -EINVAL;
	if (mon < 1 || mon > 12 || day < 1 || day > days_in_month(year, mon))
		return -EINVAL;
	/* "T", "t" (section 5.6 note) or, for readability, a space. */
	if (!ascii_skip_lit(&p, end, "t") && !ascii_skip_lit(&p, end, " "))
		return -EINVAL;
	if (scan_time(&p, end, &secs) < 0 || scan_secfrac(&p, end, &ms) < 0 ||
	    scan_offset(&p, end, &offset) < 0 || p != end)
		return -EINVAL;
	*ret_unix_ms = ((days_from_civil(year, mon, day) * 86400 + secs) -
	                offset) * 1000 + ms;
	return 0;
}

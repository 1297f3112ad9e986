/*
 * retry.c - the retry policy (SPEC section 4).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "ascii.h"
#include "retry.h"


static void rules_add(struct retry_rules *r, unsigned status)
{
	if (status < RETRY_STATUS_LIMIT)
		r->on[status / 64] |= UINT64_C(1) << (status % 64);
}

bool retry_rules_has(const struct retry_rules *r, unsigned status)
{
	if (status >= RETRY_STATUS_LIMIT)
		return false;
	return (r->on[status / 64] >> (status % 64)) & 1;
}

void retry_rules_init(struct retry_rules *r, unsigned max_retries,
                      const unsigned *on, size_t n_on, bool idempotent)
{
	size_t i;

	memset(r, 0, sizeof(*r));
	r->max_retries = max_retries;
	r->idempotent = idempotent;
	for (i = 0; i < n_on; i++)
		rules_add(r, on[i]);
	if (idempotent)
		rules_add(r, 500);
}

/*
 * 1*DIGIT at *pp, with optional whitespace either side; values above
 * limit saturate at limit + 1. 0 or -EINVAL.
 */
static int scan_number(const char **pp, unsigned limit, unsigned *ret)
{
	const char *p = *pp;
	unsigned v = 0;

	while (ascii_is_ows(*p))
		p++;
	if (!ascii_is_digit(*p))
		return -EINVAL;
	for (; ascii_is_digit(*p); p++) {
		v = v * 10 + (unsigned)(*p - '0');
		if (v > limit)
			v = limit + 1;
	}
	while (ascii_is_ows(*p))
		p++;
	*pp = p;
	*ret = v;
	return 0;
}

int retry_parse_max(const char *s, unsigned *ret)
{
	const char *p = s;
	unsigned v;

	if (scan_number(&p, RETRY_MAX_RETRIES, &v) < 0 || *p != '\0')
		return -EINVAL;
	if (v > RETRY_MAX_RETRIES)
		return -ERANGE;
	*ret = v;
	return 0;
}

int retry_parse_on(const char *s, struct retry_rules *r)
{
	uint64_t on[RETRY_STATUS_LIMIT / 64] = { 0 };
	const char *p = s;
	unsigned code;

	for (;;) {
		if (scan_number(&p, 599, &code) < 0)
			return -EINVAL;
		if (code < 100 || code > 599)
			return -EINVAL;
		on[code / 64] |= UINT64_C(1) << (code % 64);
		if (*p == '\0')
			break;
		if (*p != ',')
			return -EINVAL;
		p++;
	}
	memcpy(r->on, on, sizeof(on));
	return 0;
}

bool retry_method_idempotent(const char *method)
{
	static const char *const methods[] = {
		"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE",
	};
	size_t i;

	for (i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		if (strcmp(method, methods[i]) == 0)
			return true;
	return false;
}

int64_t retry_backoff_ms(unsigned attempt, int64_t base_ms, int64_t cap_ms,
                         uint64_t random)
{
	unsigned shift = attempt > 1 ? attempt - 1 : 0;
	uint64_t bound;

	if (base_ms <= 0 || cap_ms <= 0)
		return 0;
	/* base << shift > cap exactly when base > cap >> shift. */
	if (shift >= 63 || base_ms > cap_ms >> shift)
		bound = (uint64_t)cap_ms;
	else
		bound = (uint64_t)base_ms << shift;
	/* bound + 1 <= 2^63: no wrap. The modulo bias is under
	 * bound / 2^64, nothing for delays in milliseconds. */
	return (int64_t)(random % (bound + 1));
}

struct retry_decision retry_decide(const struct retry_rules *r,
                                   unsigned attempts_done, unsigned status,
                                   int64_t retry_after_ms,
                                   int64_t backoff_base_ms,
                                   int64_t backoff_cap_ms,
                                   int64_t max_retry_after_ms,
                                   uint64_t random)
{
	struct retry_decision d = { RETRY_NO, 0, "status not retryable" };

	/* Nothing judged before an attempt: 0 would retry with max 0. */
	if (attempts_done < 1)
		attempts_done = 1;
	if (status != 0 && !retry_rules_has(r, status))
		return d;
	if (attempts_done > r->max_retries) {
		d.reason = "retries exhausted";
		return d;
	}
	if (retry_after_ms >= 0) {
		if (retry_after_ms > max_retry_after_ms) {
			d.verdict = RETRY_GIVE_UP;
			d.reason = "retry-after too long";
			return d;
		}
		d.verdict = RETRY_YES;
		d.delay_ms = retry_after_ms;
		d.reason = "retry-after";
		return d;
	}
	d.verdict = RETRY_YES;
	d.delay_ms = retry_backoff_ms(attempts_done, backoff_base_ms,
	                              backoff_cap_ms, random);
	d.reason = status == 0 ? "connection failed" : "backoff";
	return d;
}

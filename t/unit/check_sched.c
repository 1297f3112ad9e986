/*
 * check_sched.c - the scheduler: GCRA pacing against a reference shaper
 * and with late dispatches, concurrency caps against a model, DRR
 * fairness, learning, pauses, retries, removal, bounds and collection.
 *
 * Every test drives the scheduler as the engine's event loop does: it
 * enqueues at an arrival time, calls sched_next() until it returns NULL,
 * and then sleeps (in simulated time) until the next arrival or
 * sched_next_wakeup(), whichever is first. Time is in microseconds.
 */
#include <check.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sched.h"
#include "testlib.h"

#define SEC 1000000LL                /* us */
#define IDLE_RESET (300 * SEC)

/*
 * Check's ck_assert_*() records a mark point on every success, which would
 * dominate the millions of checks below; these check silently and fail the
 * same way.
 */
#define CHECK(cond) \
	do { \
		if (!(cond)) \
			ck_abort_msg("%s:%d: %s", __FILE__, __LINE__, #cond); \
	} while (0)
#define CHECKF(cond, ...) \
	do { \
		if (!(cond)) \
			ck_abort_msg(__VA_ARGS__); \
	} while (0)

/* --- random numbers: fixed-seed xorshift64*, same on every libc --- */

static uint64_t rng_state;

static void rng_seed(uint64_t seed)
{
	rng_state = seed * 0x9e3779b97f4a7c15ULL + 0x5eed5c4edULL;
	if (!rng_state)
		rng_state = 1;
}

static uint64_t rng_next(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dULL;
}

static uint64_t rng_below(uint64_t n)
{
	return rng_next() % n;
}

/* Uniform in [0, 1). */
static double rng_unit(void)
{
	return (double)(rng_next() >> 11) * (1.0 / 9007199254740992.0);
}

/* Log-uniform in [lo, hi). */
static double rng_logu(double lo, double hi)
{
	return exp(log(lo) + rng_unit() * (log(hi) - log(lo)));
}

/* Exponential with the given mean. */
static double rng_exp(double mean)
{
	return -log(1.0 - rng_unit()) * mean;
}

/* --- what the tests schedule --- */

struct titem {
	struct sched_item si;
	unsigned id;                 /* order of arrival */
	unsigned qi;                 /* index of its queue in the test */
	int64_t arrival;             /* us */
	int64_t dispatched;          /* us */
	struct titem *mprev, *mnext; /* the model's FIFO */
	size_t pos;                  /* index in the test's waiting/flying */
	int where;                   /* W_FREE, W_WAITING, W_FLYING */
};

enum { W_FREE, W_WAITING, W_FLYING };

static struct titem *titem_of(struct sched_item *it)
{
	return (struct titem *)(void *)((char *)it -
	                                offsetof(struct titem, si));
}

static const struct sched_dest_limits no_agg = { 0, 1, 0, 1 };

/* A queue's limits; UINT_MAX means "none" for counts. */
static struct sched_limits qlim(double rps, unsigned burst, unsigned conc,
                                unsigned weight)
{
	struct sched_limits l = {
		.rps = rps,
		.burst = burst,
		.concurrency = conc,
		.max_queued = UINT_MAX,
		.weight = weight,
	};

	return l;
}

/* Limits that never hold anything back: 1 per us, a huge burst. */
static struct sched_limits unlimited(unsigned weight)
{
	return qlim(1e9, 1000000, UINT_MAX, weight);
}

static struct sched_queue *queue_n(struct sched *s, struct sched_dest *d,
                                   unsigned n,
                                   const struct sched_limits *lim)
{
	struct sched_queue *q = sched_queue_get(s, d, &n, sizeof(n), lim);

	ck_assert_ptr_nonnull(q);
	return q;
}

/*
 * The greedy GCRA shaper, in exact arithmetic: item k (FIFO) goes at the
 * first time >= its arrival and >= the previous dispatch at which a
 * virtual-scheduling GCRA with emission interval I and burst b conforms.
 * A shaper with a larger interval is never earlier, so this bounds the
 * scheduler from both sides.
 */
static void ref_gcra(const int64_t *arr, size_t n, long double I,
                     unsigned burst, long double *out)
{
	long double tat = -1e30L, prev = -1e30L, t, allow;
	size_t k;

	for (k = 0; k < n; k++) {
		t = (long double)arr[k];
		if (t < prev)
			t = prev;
		allow = tat - (long double)(burst - 1) * I;
		if (allow > t)
			t = allow;
		out[k] = t;
		tat = (tat > t ? tat : t) + I;
		prev = t;
	}
}

/*
 * No window [t_i, t_i + W] opened at a dispatch holds more than
 * rps * W + burst dispatches, for window lengths around and between
 * multiples of the interval I = 1e6 / rps. t is sorted.
 */
static void check_windows(const int64_t *t, size_t n, double rps,
                          unsigned burst, const char *what)
{
	static const double f[] = { 0.0, 0.37, 1.0, 1.5, 2.718281828,
	                            10.3, 33.333333, 257.1, 1000.7 };
	double I = 1e6 / rps;
	size_t i, j, w;

	for (w = 0; w < sizeof(f) / sizeof(f[0]); w++) {
		double W = f[w] * I;
		double bound = rps * W / 1e6 + burst + 1e-9;

		for (i = 0, j = 0; i < n; i++) {
			if (j < i)
				j = i;
			while (j < n && (double)(t[j] - t[i]) <= W)
				j++;
			CHECKF((double)(j - i) <= bound,
			       "%s: %zu dispatches in [%lld, %lld + %.1f us], "
			       "rps %g burst %u allows %.3f", what, j - i,
			       (long long)t[i], (long long)t[i], W, rps,
			       burst, bound);
		}
	}
}

/*
 * No window of any length W holds more than rps * W + burst of the sorted
 * times t. The fullest windows begin and end at dispatches, so this is
 * t[k] - t[j] >= (k - j + 1 - burst) * I for all j < k, with I = 1e6 /
 * rps exactly; a GCRA at I checks every j at once, since its TAT before
 * k is the largest t[j] + (k - j) * I.
 */
static void check_every_window(const int64_t *t, size_t n, double rps,
                               unsigned burst, const char *what)
{
	long double I = 1e6L / (long double)rps, tat = -1e30L;
	size_t k;

	for (k = 0; k < n; k++) {
		long double allow = tat - (long double)(burst - 1) * I;

		CHECKF((long double)t[k] >= allow - 1e-6L,
		       "%s: dispatch %zu at %lld, %.3Lf us before rps %g "
		       "burst %u allows it: a window holds one too many",
		       what, k, (long long)t[k], allow - (long double)t[k],
		       rps, burst);
		tat = (tat > (long double)t[k] ? tat : (long double)t[k]) + I;
	}
}

/*
 * n arrival times, non-decreasing, in one of several shapes relative to
 * the interval I: Poisson, clumps at one instant, on/off, and periodic on
 * and around the (rounded) interval.
 */
static void gen_arrivals(int64_t *arr, size_t n, double I, unsigned burst)
{
	double f = rng_logu(0.05, 20);
	double t = (double)rng_below(1000000000);
	int mode = (int)rng_below(4);
	size_t k = 0, c;
	int64_t period;

	switch (mode) {
	case 0: /* Poisson, from 20 x faster to 20 x slower than rps */
		while (k < n) {
			arr[k++] = (int64_t)t;
			t += rng_exp(I * f);
		}
		break;
	case 1: /* clumps arriving at one instant */
		while (k < n) {
			c = 1 + rng_below(2 * burst + 5);
			while (c-- && k < n)
				arr[k++] = (int64_t)t;
			t += rng_exp(I * f * (double)(burst + 2));
		}
		break;
	case 2: /* busy spells and long silences */
		while (k < n) {
			c = 1 + rng_below(50);
			while (c-- && k < n) {
				arr[k++] = (int64_t)t;
				t += rng_exp(I * 0.2);
			}
			t += I * rng_logu(1, 200);
		}
		break;
	default: /* periodic, exactly on or next to the interval */
		switch (rng_below(4)) {
		case 0:
			period = (int64_t)floor(I);
			break;
		case 1:
			period = (int64_t)ceil(I);
			break;
		case 2:
			period = (int64_t)ceil(I) + 1;
			break;
		default:
			period = (int64_t)(I * rng_logu(0.5, 2));
			break;
		}
		if (period < 1)
			period = 1;
		for (k = 0; k < n; k++)
			arr[k] = (int64_t)t + (int64_t)k * period;
		break;
	}
}

/* ------------------------------------------------------------------ */
/* GCRA: one queue, random arrivals                                    */
/* ------------------------------------------------------------------ */

#define GCRA_RUNS 2000               /* in all, over the loop test */
#define GCRA_LOOPS 10
#define GCRA_N 500                   /* arrivals per run */

static void gcra_run(uint64_t seed)
{
	static struct titem items[GCRA_N];
	static int64_t arr[GCRA_N], disp[GCRA_N];
	static long double lo[GCRA_N], hi[GCRA_N];
	struct sched *s;
	struct sched_dest *d;
	struct sched_queue *q;
	struct sched_limits l;
	struct sched_item *it;
	double rps, I;
	unsigned burst;
	size_t ai = 0, nd = 0, k;
	int64_t now, next, wake;

	rng_seed(seed);
	rps = rng_logu(0.1, 10000);
	burst = 1 + (unsigned)rng_below(5);
	I = 1e6 / rps;
	gen_arrivals(arr, GCRA_N, I, burst);

	s = sched_new(UINT_MAX, UINT_MAX, IDLE_RESET);
	CHECK(s != NULL);
	d = sched_dest_get(s, "http://a.example:80", &no_agg);
	CHECK(d != NULL);
	l = qlim(rps, burst, UINT_MAX, 1);
	q = sched_queue_get(s, d, "k", 1, &l);
	CHECK(q != NULL);
	for (k = 0; k < GCRA_N; k++) {
		memset(&items[k], 0, sizeof(items[k]));
		items[k].id = (unsigned)k;
		items[k].arrival = arr[k];
	}

	now = arr[0];
	while (nd < GCRA_N) {
		wake = sched_next_wakeup(s);
		next = ai < GCRA_N && arr[ai] < wake ? arr[ai] : wake;
		CHECKF(next != INT64_MAX, "seed %llu: stalled with %u waiting",
		       (unsigned long long)seed, sched_queued(s));
		CHECK(next >= now);
		/* A look between events finds nothing: the wakeup is exact. */
		if (next - now > 1 && rng_below(4) == 0) {
			uint64_t gap = (uint64_t)(next - now - 1);

			now += 1 + (int64_t)rng_below(gap);
			CHECKF(sched_next(s, now) == NULL,
			       "seed %llu: dispatch at %lld before wakeup %lld",
			       (unsigned long long)seed, (long long)now,
			       (long long)next);
		}
		now = next;
		if (ai < GCRA_N && arr[ai] == now) {
			CHECK(sched_enqueue(s, q, &items[ai].si, now) == 0);
			ai++;
		}
		while ((it = sched_next(s, now)) != NULL) {
			CHECK(it->q == q);
			CHECK(titem_of(it)->id == nd); /* FIFO */
			disp[nd++] = now;
			sched_done(s, q, now);
		}
		/* Work-conserving: what waits, waits for a later time. */
		if (sched_queued(s) > 0)
			CHECK(sched_next_wakeup(s) > now);
		CHECK(sched_queued(s) == ai - nd);
	}
	sched_free(s);

	/*
	 * Never earlier than the exact shaper at rps (strict), never later
	 * than the exact shaper at 0.99 x rps (not lazy).
	 */
	ref_gcra(arr, GCRA_N, (long double)1e6 / rps, burst, lo);
	ref_gcra(arr, GCRA_N, (long double)1e6 / rps * 1.01L, burst, hi);
	for (k = 0; k < GCRA_N; k++) {
		CHECKF((long double)disp[k] >= lo[k] - 1e-4L,
		       "seed %llu rps %.6g burst %u: item %zu at %lld, "
		       "too early (>= %.3Lf)", (unsigned long long)seed, rps,
		       burst, k, (long long)disp[k], lo[k]);
		CHECKF((long double)disp[k] <= hi[k] + 1e-4L,
		       "seed %llu rps %.6g burst %u: item %zu at %lld, "
		       "too late (<= %.3Lf)", (unsigned long long)seed, rps,
		       burst, k, (long long)disp[k], hi[k]);
	}
	check_windows(disp, GCRA_N, rps, burst, "queue");
	check_every_window(disp, GCRA_N, rps, burst, "queue");
}

START_TEST(test_gcra_random)
{
	unsigned r, per = GCRA_RUNS / GCRA_LOOPS;

	for (r = 0; r < per; r++)
		gcra_run((uint64_t)_i * per + r);
}
END_TEST

/* A backlogged queue runs at rps, within 1%, for rates 0.1 .. 10,000/s. */
START_TEST(test_gcra_backlog_rate)
{
	static const double rates[] = { 0.1, 0.3, 0.5, 1, 2, 3, 7, 9.7,
	                                33.3, 100, 333.33, 999, 1234.5,
	                                3000, 7777, 9901, 9950, 9999.9,
	                                10000 };
	enum { N = 3000 };
	static struct titem items[N];
	static int64_t disp[N];
	size_t r, k, nd;
	unsigned burst;

	for (r = 0; r < sizeof(rates) / sizeof(rates[0]); r++) {
		for (burst = 1; burst <= 5; burst += 2) {
			struct sched *s = sched_new(UINT_MAX, UINT_MAX,
			                            IDLE_RESET);
			struct sched_dest *d = sched_dest_get(s, "d", &no_agg);
			struct sched_limits l = qlim(rates[r], burst,
			                             UINT_MAX, 1);
			struct sched_queue *q = queue_n(s, d, 0, &l);
			struct sched_item *it;
			int64_t now = 12345, t0 = now, wake;
			double measured;

			for (k = 0; k < N; k++)
				CHECK(sched_enqueue(s, q, &items[k].si, now) ==
				      0);
			nd = 0;
			while (nd < N) {
				while ((it = sched_next(s, now)) != NULL) {
					disp[nd++] = now;
					sched_done(s, q, now);
				}
				if (nd == N)
					break;
				wake = sched_next_wakeup(s);
				CHECK(wake > now && wake != INT64_MAX);
				now = wake;
			}
			/* The burst goes at once, then one per interval. */
			for (k = 0; k < burst; k++)
				CHECK(disp[k] == t0);
			CHECK(disp[burst] > t0);
			measured = (double)(N - burst) * 1e6 /
			           (double)(disp[N - 1] - t0);
			CHECKF(measured <= rates[r] * (1 + 1e-12) &&
			       measured >= rates[r] * 0.99,
			       "rps %g burst %u: measured %.6g/s", rates[r],
			       burst, measured);
			check_windows(disp, N, rates[r], burst, "backlog");
			check_every_window(disp, N, rates[r], burst, "backlog");
			sched_free(s);
		}
	}
}
END_TEST

/* ------------------------------------------------------------------ */
/* GCRA: dispatches that come late                                     */
/* ------------------------------------------------------------------ */

/*
 * The engine dispatches some time after the wakeup it asked for: the
 * timer fires late, the thread is busy. Here every round comes a random
 * 0 .. late us after sched_next_wakeup(). The scheduler must let through,
 * at each round, exactly what the recurrence TAT = max(TAT, t) + T run
 * on the actual dispatch times allows, and wake exactly when it next
 * allows: then it loses no lateness the window bound does not force it
 * to lose (src/sched.c, gcra_advance()).
 */
#define LATE_N 2000                  /* dispatches per run */

struct late_run {
	double rps;
	unsigned burst;
	int64_t late;                /* us, the most a round is late */
	bool agg;                    /* the rate is the destination's */
	int64_t idle;                /* us idle halfway through; 0: none */
	int64_t disp[LATE_N];        /* out: dispatch times */
	double lost;                 /* out: us of lateness lost, in all */
};

static void late_run(struct late_run *r)
{
	static struct titem items[LATE_N];
	struct sched_dest_limits dl = no_agg;
	struct sched_limits l = qlim(r->rps, r->burst, UINT_MAX, 1);
	struct sched_queue *qs[3];
	struct sched *s;
	struct sched_dest *d;
	struct sched_item *it;
	int64_t T = (int64_t)ceil(1e6 / r->rps);
	int64_t tol = (int64_t)(r->burst - 1) * T;
	int64_t now = 1000 * SEC, tat = 0;
	size_t nd = 0, queued, k;
	unsigned nq = 1, want, got;

	if (r->agg) {
		dl.aggregate_rps = r->rps;
		dl.aggregate_burst = r->burst;
		l = unlimited(1);
		nq = 3;
	}
	s = sched_new(UINT_MAX, UINT_MAX, IDLE_RESET);
	CHECK(s != NULL);
	d = sched_dest_get(s, "http://late:80", &dl);
	CHECK(d != NULL);
	for (k = 0; k < nq; k++)
		qs[k] = queue_n(s, d, (unsigned)k, &l);
	queued = r->idle ? LATE_N / 2 : LATE_N;
	for (k = 0; k < queued; k++)
		CHECK(sched_enqueue(s, qs[k % nq], &items[k].si, now) == 0);
	r->lost = 0;
	for (;;) {
		/* What the recurrence lets through now, one by one. */
		for (want = 0; nd + want < queued && tat - tol <= now; want++) {
			if (now > tat)
				r->lost += (double)(now - tat);
			tat = (tat > now ? tat : now) + T;
		}
		for (got = 0; (it = sched_next(s, now)) != NULL; got++) {
			r->disp[nd++] = now;
			sched_done(s, it->q, now);
		}
		CHECKF(got == want, "rps %g burst %u late %lld: %u at %lld, "
		       "the recurrence allows %u", r->rps, r->burst,
		       (long long)r->late, got, (long long)now, want);
		if (nd == LATE_N)
			break;
		if (nd < queued) {
			CHECKF(sched_next_wakeup(s) == tat - tol,
			       "rps %g burst %u: wakeup %lld, the recurrence "
			       "allows %lld", r->rps, r->burst,
			       (long long)sched_next_wakeup(s),
			       (long long)(tat - tol));
			now = sched_next_wakeup(s) +
			      (int64_t)rng_below((uint64_t)r->late + 1);
			continue;
		}
		/* Emptied: the rest arrive after the idle time, at once. */
		now += r->idle;
		for (k = queued; k < LATE_N; k++)
			CHECK(sched_enqueue(s, qs[k % nq], &items[k].si, now) ==
			      0);
		queued = LATE_N;
	}
	sched_free(s);
}

/* The most dispatches at one instant. */
static unsigned most_at_once(const int64_t *t, size_t n)
{
	unsigned most = 0, run = 0;
	size_t k;

	for (k = 0; k < n; k++) {
		run = k > 0 && t[k] == t[k - 1] ? run + 1 : 1;
		if (run > most)
			most = run;
	}
	return most;
}

static const double late_rates[] = { 1, 10, 100, 1000 };
static const unsigned late_bursts[] = { 1, 2, 5 };
#define LATE_LOOPS 8                 /* 4 rates x queue or aggregate */

/*
 * Backlogged at rps with burst, every round late by up to late_t
 * intervals: never a window over rps * W + burst; lateness up to the
 * burst's tolerance, (burst - 1) intervals, costs no rate at all, and
 * beyond it the rate is what the lost lateness leaves, 1 / (T + lost).
 */
static void late_backlog(double rps, unsigned burst, double late_t, bool agg)
{
	static struct late_run r;
	const char *what = agg ? "late, aggregate" : "late, queue";
	double T = ceil(1e6 / rps), measured, left;

	r.rps = rps;
	r.burst = burst;
	r.late = (int64_t)(late_t * T);
	r.agg = agg;
	r.idle = 0;
	late_run(&r);
	check_every_window(r.disp, LATE_N, rps, burst, what);
	check_windows(r.disp, LATE_N, rps, burst, what);
	CHECK(most_at_once(r.disp, LATE_N) <= burst);
	/* Past the first burst, one per interval at most. */
	measured = (double)(LATE_N - burst) * 1e6 /
	           (double)(r.disp[LATE_N - 1] - r.disp[0]);
	left = 1e6 / (T + r.lost / (double)(LATE_N - burst));
	CHECKF(measured <= rps * (1 + 1e-12) && measured >= left * 0.995 &&
	       (r.late > (int64_t)(burst - 1) * (int64_t)T ||
	        measured >= rps * 0.995),
	       "%s: rps %g burst %u late <= %lld us: %.6g/s, lost %.1f us "
	       "per dispatch", what, rps, burst, (long long)r.late, measured,
	       r.lost / (double)(LATE_N - burst));
}

/* Late by up to 1 % of an interval to 3 intervals. */
START_TEST(test_gcra_late)
{
	static const double late_t[] = { 0.01, 0.5, 0.99, 1.5, 3 };
	size_t bi, li;

	rng_seed(4242 + (uint64_t)_i);
	for (bi = 0; bi < sizeof(late_bursts) / sizeof(late_bursts[0]); bi++)
		for (li = 0; li < sizeof(late_t) / sizeof(late_t[0]); li++)
			late_backlog(late_rates[_i / 2], late_bursts[bi],
			             late_t[li], _i % 2);
}
END_TEST

/*
 * Busy, then idle for idle_t intervals (less than one to very long), then
 * busy again, every busy round late by up to 1.5 intervals: idleness
 * banks no more than the burst, not even across the gap.
 */
START_TEST(test_gcra_late_idle)
{
	static const double idle_t[] = { 0.5, 1, 1.5, 7, 1000 };
	static struct late_run r;
	const char *what = _i % 2 ? "idle, aggregate" : "idle, queue";
	size_t bi, ii;

	rng_seed(2424 + (uint64_t)_i);
	r.rps = late_rates[_i / 2];
	r.late = (int64_t)(1.5 * ceil(1e6 / r.rps));
	r.agg = _i % 2;
	for (bi = 0; bi < sizeof(late_bursts) / sizeof(late_bursts[0]); bi++) {
		for (ii = 0; ii < sizeof(idle_t) / sizeof(idle_t[0]); ii++) {
			r.burst = late_bursts[bi];
			r.idle = (int64_t)(idle_t[ii] * ceil(1e6 / r.rps));
			late_run(&r);
			check_every_window(r.disp, LATE_N, r.rps, r.burst,
			                   what);
			check_windows(r.disp, LATE_N, r.rps, r.burst, what);
			CHECK(most_at_once(r.disp, LATE_N) <= r.burst);
		}
	}
}
END_TEST

/* ------------------------------------------------------------------ */
/* Aggregate rate of a destination across its queues                   */
/* ------------------------------------------------------------------ */

#define AGG_RUNS 300
#define AGG_N 400
#define AGG_Q 10

static void agg_run(uint64_t seed)
{
	static struct titem items[AGG_N];
	static int64_t arr[AGG_N], disp[AGG_N], qdisp[AGG_Q][AGG_N];
	static long double lo[AGG_N], hi[AGG_N];
	struct sched_queue *qs[AGG_Q];
	double qrps[AGG_Q];
	unsigned qburst[AGG_Q], qnext[AGG_Q] = { 0 }, qn[AGG_Q] = { 0 };
	struct sched_dest_limits dl = { 0, 1, 0, 1 };
	bool limited;
	struct sched *s;
	struct sched_dest *d;
	struct sched_item *it;
	size_t ai = 0, nd = 0, k;
	unsigned nq, i;
	int64_t now, next, wake;

	rng_seed(seed ^ 0xa99a99ULL);
	dl.aggregate_rps = rng_logu(0.5, 5000);
	dl.aggregate_burst = 1 + (unsigned)rng_below(4);
	nq = 1 + (unsigned)rng_below(AGG_Q);
	limited = rng_below(2);
	gen_arrivals(arr, AGG_N, 1e6 / dl.aggregate_rps, dl.aggregate_burst);

	s = sched_new(UINT_MAX, UINT_MAX, IDLE_RESET);
	d = sched_dest_get(s, "http://agg:80", &dl);
	CHECK(s && d);
	for (i = 0; i < nq; i++) {
		struct sched_limits l = unlimited(1 + (unsigned)rng_below(3));

		if (limited) {
			/* Some queues slower than the aggregate, some not. */
			l.rps = dl.aggregate_rps * rng_logu(0.1, 3);
			l.burst = 1 + (unsigned)rng_below(3);
		}
		qrps[i] = l.rps;
		qburst[i] = l.burst;
		qs[i] = queue_n(s, d, i, &l);
	}
	for (k = 0; k < AGG_N; k++) {
		memset(&items[k], 0, sizeof(items[k]));
		items[k].qi = (unsigned)rng_below(nq);
		items[k].id = qn[items[k].qi]++;
	}

	now = arr[0];
	while (nd < AGG_N) {
		wake = sched_next_wakeup(s);
		next = ai < AGG_N && arr[ai] < wake ? arr[ai] : wake;
		CHECKF(next != INT64_MAX, "seed %llu: stalled",
		       (unsigned long long)seed);
		CHECK(next >= now);
		now = next;
		if (ai < AGG_N && arr[ai] == now) {
			CHECK(sched_enqueue(s, qs[items[ai].qi], &items[ai].si,
			                    now) == 0);
			ai++;
		}
		while ((it = sched_next(s, now)) != NULL) {
			struct titem *ti = titem_of(it);

			CHECK(it->q == qs[ti->qi]);
			CHECK(ti->id == qnext[ti->qi]); /* FIFO per queue */
			qdisp[ti->qi][qnext[ti->qi]++] = now;
			disp[nd++] = now;
			sched_done(s, it->q, now);
		}
		if (sched_queued(s) > 0)
			CHECK(sched_next_wakeup(s) > now);
	}
	sched_free(s);

	check_windows(disp, AGG_N, dl.aggregate_rps, dl.aggregate_burst,
	              "aggregate");
	check_every_window(disp, AGG_N, dl.aggregate_rps, dl.aggregate_burst,
	                   "aggregate");
	if (limited) {
		for (i = 0; i < nq; i++) {
			check_windows(qdisp[i], qn[i], qrps[i], qburst[i],
			              "queue of an aggregate");
			check_every_window(qdisp[i], qn[i], qrps[i],
			                   qburst[i], "queue of an aggregate");
		}
		return;
	}
	/* Queues without limits of their own: the aggregate is the shaper. */
	ref_gcra(arr, AGG_N, (long double)1e6 / dl.aggregate_rps,
	         dl.aggregate_burst, lo);
	ref_gcra(arr, AGG_N, (long double)1e6 / dl.aggregate_rps * 1.01L,
	         dl.aggregate_burst, hi);
	for (k = 0; k < AGG_N; k++)
		CHECKF((long double)disp[k] >= lo[k] - 1e-4L &&
		       (long double)disp[k] <= hi[k] + 1e-4L,
		       "seed %llu agg %g: dispatch %zu at %lld, not in "
		       "[%.3Lf, %.3Lf]", (unsigned long long)seed,
		       dl.aggregate_rps, k, (long long)disp[k], lo[k], hi[k]);
}

START_TEST(test_aggregate_rps)
{
	unsigned r;

	for (r = 0; r < AGG_RUNS; r++)
		agg_run(r);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Concurrency caps: queue, destination, global, against a model       */
/* ------------------------------------------------------------------ */

#define CAP_Q 40
#define CAP_D 5
#define CAP_ITEMS 1000
#define CAP_STEPS 3000

struct cap_model {
	struct sched *s;
	struct sched_queue *q[CAP_Q];
	unsigned qd[CAP_Q], qconc[CAP_Q], dconc[CAP_D], max;
	unsigned qwait[CAP_Q], qfly[CAP_Q], dfly[CAP_D], fly, wait;
	struct titem *head[CAP_Q], *tail[CAP_Q]; /* FIFO per queue */
	struct titem items[CAP_ITEMS];
	struct titem *waiting[CAP_ITEMS], *flying[CAP_ITEMS];
	struct titem *free[CAP_ITEMS];
	size_t n_waiting, n_flying, n_free;
};

static void set_add(struct titem **set, size_t *n, struct titem *ti,
                    int where)
{
	ti->pos = (*n)++;
	set[ti->pos] = ti;
	ti->where = where;
}

static void set_del(struct titem **set, size_t *n, struct titem *ti)
{
	set[ti->pos] = set[--*n];
	set[ti->pos]->pos = ti->pos;
	ti->where = W_FREE;
}

static void model_unlink(struct cap_model *m, struct titem *ti)
{
	if (ti->mprev)
		ti->mprev->mnext = ti->mnext;
	else
		m->head[ti->qi] = ti->mnext;
	if (ti->mnext)
		ti->mnext->mprev = ti->mprev;
	else
		m->tail[ti->qi] = ti->mprev;
	ti->mprev = ti->mnext = NULL;
}

static void model_push(struct cap_model *m, struct titem *ti, bool at_head)
{
	unsigned qi = ti->qi;

	if (at_head) {
		ti->mprev = NULL;
		ti->mnext = m->head[qi];
		if (m->head[qi])
			m->head[qi]->mprev = ti;
		else
			m->tail[qi] = ti;
		m->head[qi] = ti;
	} else {
		ti->mnext = NULL;
		ti->mprev = m->tail[qi];
		if (m->tail[qi])
			m->tail[qi]->mnext = ti;
		else
			m->head[qi] = ti;
		m->tail[qi] = ti;
	}
}

static bool q_blocked(const struct cap_model *m, unsigned qi)
{
	unsigned di = m->qd[qi];

	return m->qfly[qi] >= m->qconc[qi] ||
	       (m->dconc[di] && m->dfly[di] >= m->dconc[di]) ||
	       m->fly >= m->max;
}

static void cap_info(const struct sched_queue_info *qi, void *arg)
{
	const struct cap_model *m = arg;
	unsigned n;

	CHECK(qi->key_len == sizeof(n));
	memcpy(&n, qi->key, sizeof(n));
	CHECK(n < CAP_Q);
	CHECK(qi->waiting == m->qwait[n]);
	CHECK(qi->in_flight == m->qfly[n]);
	CHECK(qi->concurrency == m->qconc[n]);
}

static void cap_run(uint64_t seed)
{
	static struct cap_model mm;
	struct cap_model *m = &mm;
	struct sched_dest *ds[CAP_D];
	struct sched_item *it;
	struct titem *ti;
	int64_t now = 1000;
	unsigned i, step, k, n;
	char key[16];

	memset(m, 0, sizeof(*m));
	for (i = 0; i < CAP_ITEMS; i++)
		m->free[m->n_free++] = &m->items[i];
	rng_seed(seed ^ 0xcafeULL);
	m->max = 1 + (unsigned)rng_below(25);
	m->s = sched_new(m->max, UINT_MAX, IDLE_RESET);
	CHECK(m->s != NULL);
	for (i = 0; i < CAP_D; i++) {
		struct sched_dest_limits dl = { 0, 1, 0, 1 };

		dl.aggregate_concurrency = rng_below(3) == 0 ? 0 :
		                           1 + (unsigned)rng_below(8);
		dl.weight = 1 + (unsigned)rng_below(3);
		m->dconc[i] = dl.aggregate_concurrency;
		snprintf(key, sizeof(key), "d%u", i);
		ds[i] = sched_dest_get(m->s, key, &dl);
		CHECK(ds[i] != NULL);
	}
	for (i = 0; i < CAP_Q; i++) {
		struct sched_limits l = unlimited(1 + (unsigned)rng_below(3));

		l.concurrency = 1 + (unsigned)rng_below(4);
		m->qconc[i] = l.concurrency;
		m->qd[i] = (unsigned)rng_below(CAP_D);
		m->q[i] = queue_n(m->s, ds[m->qd[i]], i, &l);
	}

	for (step = 0; step < CAP_STEPS; step++) {
		now += 1 + (int64_t)rng_below(1000);
		/* Arrivals. */
		n = (unsigned)rng_below(6);
		for (k = 0; k < n && m->n_free; k++) {
			ti = m->free[--m->n_free];
			ti->qi = (unsigned)rng_below(CAP_Q);
			CHECK(sched_enqueue(m->s, m->q[ti->qi], &ti->si, now) ==
			      0);
			model_push(m, ti, false);
			set_add(m->waiting, &m->n_waiting, ti, W_WAITING);
			m->qwait[ti->qi]++;
			m->wait++;
		}
		/* Completions, retries (at once) and removals. */
		n = (unsigned)rng_below(6);
		for (k = 0; k < n && m->n_flying; k++) {
			ti = m->flying[rng_below(m->n_flying)];
			set_del(m->flying, &m->n_flying, ti);
			m->qfly[ti->qi]--;
			m->dfly[m->qd[ti->qi]]--;
			m->fly--;
			if (rng_below(5) == 0) {
				sched_requeue(m->s, &ti->si, now, now);
				model_push(m, ti, true);
				set_add(m->waiting, &m->n_waiting, ti,
				        W_WAITING);
				m->qwait[ti->qi]++;
				m->wait++;
			} else {
				sched_done(m->s, m->q[ti->qi], now);
				m->free[m->n_free++] = ti;
			}
		}
		if (m->n_waiting && rng_below(4) == 0) {
			ti = m->waiting[rng_below(m->n_waiting)];
			sched_remove(m->s, &ti->si, now);
			model_unlink(m, ti);
			set_del(m->waiting, &m->n_waiting, ti);
			m->qwait[ti->qi]--;
			m->wait--;
		}
		/* Dispatch all that may go. */
		while ((it = sched_next(m->s, now)) != NULL) {
			unsigned di;

			ti = titem_of(it);
			di = m->qd[ti->qi];
			CHECK(ti->where == W_WAITING);
			CHECK(it->q == m->q[ti->qi]);
			CHECKF(m->head[ti->qi] == ti,
			       "seed %llu step %u: queue %u not FIFO",
			       (unsigned long long)seed, step, ti->qi);
			model_unlink(m, ti);
			set_del(m->waiting, &m->n_waiting, ti);
			set_add(m->flying, &m->n_flying, ti, W_FLYING);
			m->qwait[ti->qi]--;
			m->wait--;
			m->qfly[ti->qi]++;
			m->dfly[di]++;
			m->fly++;
			CHECKF(m->qfly[ti->qi] <= m->qconc[ti->qi],
			       "queue %u: %u in flight, cap %u", ti->qi,
			       m->qfly[ti->qi], m->qconc[ti->qi]);
			CHECKF(!m->dconc[di] || m->dfly[di] <= m->dconc[di],
			       "dest %u: %u in flight, cap %u", di, m->dfly[di],
			       m->dconc[di]);
			CHECKF(m->fly <= m->max, "%u in flight, cap %u", m->fly,
			       m->max);
		}
		/* Nothing that could go was held back, and nothing polls. */
		for (i = 0; i < CAP_Q; i++)
			CHECKF(!m->qwait[i] || q_blocked(m, i),
			       "seed %llu step %u: queue %u idle with %u "
			       "waiting", (unsigned long long)seed, step, i,
			       m->qwait[i]);
		CHECK(sched_next_wakeup(m->s) == INT64_MAX);
		CHECK(sched_in_flight(m->s) == m->fly);
		CHECK(sched_queued(m->s) == m->wait);
		if (step % 64 == 0)
			sched_foreach(m->s, cap_info, m);
	}
	sched_free(m->s);
}

START_TEST(test_caps_random)
{
	cap_run((uint64_t)_i);
}
END_TEST

/* A queue's cap, its release by sched_done(), in plain steps. */
START_TEST(test_queue_concurrency)
{
	struct sched *s = sched_new(100, 100, IDLE_RESET);
	struct sched_dest *d = sched_dest_get(s, "d", &no_agg);
	struct sched_limits l = qlim(1e6, 100, 3, 1);
	struct sched_queue *q = queue_n(s, d, 1, &l);
	struct titem it[10];
	int i;

	memset(it, 0, sizeof(it));
	for (i = 0; i < 10; i++)
		ck_assert_int_eq(sched_enqueue(s, q, &it[i].si, 0), 0);
	for (i = 0; i < 3; i++)
		ck_assert_ptr_eq(sched_next(s, 0), &it[i].si);
	ck_assert_ptr_null(sched_next(s, 0));
	ck_assert_ptr_null(sched_next(s, 10 * SEC));
	/* At its cap a queue waits for a completion, not for a timer. */
	ck_assert_int_eq(sched_next_wakeup(s), INT64_MAX);
	ck_assert_uint_eq(sched_in_flight(s), 3);
	sched_done(s, q, 10 * SEC);
	ck_assert_uint_eq(sched_in_flight(s), 2);
	ck_assert_ptr_eq(sched_next(s, 10 * SEC), &it[3].si);
	ck_assert_ptr_null(sched_next(s, 10 * SEC));
	sched_done(s, q, 10 * SEC);
	sched_done(s, q, 10 * SEC);
	ck_assert_ptr_eq(sched_next(s, 10 * SEC), &it[4].si);
	ck_assert_ptr_eq(sched_next(s, 10 * SEC), &it[5].si);
	ck_assert_ptr_null(sched_next(s, 10 * SEC));
	ck_assert_uint_eq(sched_in_flight(s), 3);
	ck_assert_uint_eq(sched_queued(s), 4);
	sched_free(s);
}
END_TEST

/* Aggregate concurrency and max_in_flight, in plain steps. */
START_TEST(test_aggregate_and_global_caps)
{
	struct sched *s = sched_new(5, 100, IDLE_RESET);
	struct sched_dest_limits dl = { 0, 1, 2, 1 };
	struct sched_dest *d1 = sched_dest_get(s, "d1", &dl);
	struct sched_dest *d2 = sched_dest_get(s, "d2", &no_agg);
	struct sched_limits l = qlim(1e6, 100, 10, 1);
	struct sched_limits lc = qlim(1e6, 100, 3, 1);
	struct sched_queue *a = queue_n(s, d1, 1, &l);
	struct sched_queue *b = queue_n(s, d1, 2, &l);
	struct sched_queue *c = queue_n(s, d2, 3, &lc);
	struct titem it[30];
	struct sched_item *x;
	int i, na = 0, nc = 0;

	memset(it, 0, sizeof(it));
	for (i = 0; i < 10; i++) {
		ck_assert_int_eq(sched_enqueue(s, a, &it[i].si, 0), 0);
		ck_assert_int_eq(sched_enqueue(s, b, &it[10 + i].si, 0), 0);
		ck_assert_int_eq(sched_enqueue(s, c, &it[20 + i].si, 0), 0);
	}
	/* d1 gets 2 (its aggregate), d2 3 (c's cap): the global 5. */
	while ((x = sched_next(s, 0)) != NULL) {
		if (x->q == c)
			nc++;
		else
			na++;
	}
	ck_assert_int_eq(na, 2);
	ck_assert_int_eq(nc, 3);
	ck_assert_uint_eq(sched_in_flight(s), 5);
	ck_assert_int_eq(sched_next_wakeup(s), INT64_MAX);
	/* A slot of c freed: d1 is still at its aggregate, c goes. */
	sched_done(s, c, 1);
	x = sched_next(s, 1);
	ck_assert_ptr_nonnull(x);
	ck_assert_ptr_eq(x->q, c);
	ck_assert_ptr_null(sched_next(s, 1));
	/* A slot of d1 freed: one of d1's queues goes, and only one. */
	sched_done(s, a, 2);
	x = sched_next(s, 2);
	ck_assert_ptr_nonnull(x);
	ck_assert(x->q == a || x->q == b);
	ck_assert_ptr_null(sched_next(s, 2));
	ck_assert_uint_eq(sched_in_flight(s), 5);
	/* c under its cap again, but the global cap holds it. */
	sched_learn_queue(s, c, 0, SCHED_RATE_EZTHROTTLE, 5, 3);
	ck_assert_ptr_null(sched_next(s, 3));
	/* A global slot freed by d1: d1 is under its aggregate again and
	 * c under its cap; either may take it, only one does. */
	sched_done(s, b, 4);
	x = sched_next(s, 4);
	ck_assert_ptr_nonnull(x);
	ck_assert_ptr_null(sched_next(s, 4));
	ck_assert_uint_eq(sched_in_flight(s), 5);
	ck_assert_uint_eq(sched_queued(s), 30 - 8);
	sched_free(s);
}
END_TEST

/* ------------------------------------------------------------------ */
/* DRR fairness                                                        */
/* ------------------------------------------------------------------ */

enum bottleneck { B_AGG_CONC, B_GLOBAL, B_AGG_RPS };

#define DRR_MAXQ 100

/*
 * n backlogged queues of one destination; the bottleneck is the
 * destination's aggregate concurrency, the global cap, or the aggregate
 * rate. Each completion puts its item back at the tail of its queue, so
 * every queue stays backlogged. counts[i] = dispatches of queue i.
 */
static void drr_run(unsigned n, const unsigned *weights, enum bottleneck b,
                    double qrps, unsigned total, unsigned *counts)
{
	enum { PER_Q = 6, SLOTS = 3 };
	static struct titem items[DRR_MAXQ * PER_Q];
	static struct titem *fly[DRR_MAXQ * PER_Q];
	struct sched_queue *qs[DRR_MAXQ];
	struct sched_dest_limits dl = { 0, 1, 0, 1 };
	struct sched *s;
	struct sched_dest *d;
	struct sched_item *it;
	unsigned i, k, nd = 0;
	size_t nfly = 0, j;
	int64_t now = 0;

	ck_assert_uint_le(n, DRR_MAXQ);
	if (b == B_AGG_CONC)
		dl.aggregate_concurrency = SLOTS;
	if (b == B_AGG_RPS)
		dl.aggregate_rps = 1000;
	s = sched_new(b == B_GLOBAL ? SLOTS : UINT_MAX, UINT_MAX, IDLE_RESET);
	d = sched_dest_get(s, "http://drr:80", &dl);
	for (i = 0; i < n; i++) {
		struct sched_limits l = unlimited(weights ? weights[i] : 1);

		if (qrps > 0) {
			l.rps = qrps;
			l.burst = 1;
		}
		qs[i] = queue_n(s, d, i, &l);
		counts[i] = 0;
		for (k = 0; k < PER_Q; k++) {
			struct titem *ti = &items[i * PER_Q + k];

			ti->qi = i;
			CHECK(sched_enqueue(s, qs[i], &ti->si, now) == 0);
		}
	}
	while (nd < total) {
		while (nd < total && (it = sched_next(s, now)) != NULL) {
			struct titem *ti = titem_of(it);

			counts[ti->qi]++;
			nd++;
			if (b == B_AGG_RPS) {
				sched_done(s, it->q, now);
				CHECK(sched_enqueue(s, it->q, it, now) == 0);
			} else {
				fly[nfly++] = ti;
			}
		}
		if (b == B_AGG_RPS) {
			CHECK(sched_next_wakeup(s) > now);
			now = sched_next_wakeup(s);
			continue;
		}
		CHECK(nfly == SLOTS);
		/* The oldest completes, and its item queues again. */
		now += 100;
		sched_done(s, qs[fly[0]->qi], now);
		CHECK(sched_enqueue(s, qs[fly[0]->qi], &fly[0]->si, now) == 0);
		for (j = 1; j < nfly; j++)
			fly[j - 1] = fly[j];
		nfly--;
	}
	sched_free(s);
}

static double jain(const unsigned *x, unsigned n)
{
	double sum = 0, sq = 0;
	unsigned i;

	for (i = 0; i < n; i++) {
		sum += x[i];
		sq += (double)x[i] * x[i];
	}
	return sum * sum / (n * sq);
}

START_TEST(test_drr_equal)
{
	static const unsigned ns[] = { 2, 10, 100 };
	static const enum bottleneck bs[] = { B_AGG_CONC, B_GLOBAL,
	                                      B_AGG_RPS };
	unsigned counts[DRR_MAXQ], n = ns[_i % 3], lo = UINT_MAX, hi = 0, i;
	enum bottleneck b = bs[_i / 3];
	double j;

	drr_run(n, NULL, b, 0, n * 1000 + 7, counts);
	for (i = 0; i < n; i++) {
		lo = counts[i] < lo ? counts[i] : lo;
		hi = counts[i] > hi ? counts[i] : hi;
	}
	j = jain(counts, n);
	ck_assert_msg(j >= 0.99, "n %u bottleneck %d: Jain %.5f", n, b, j);
	/* Round robin: equal shares to one dispatch, whatever the tail. */
	ck_assert_msg(hi - lo <= 1, "n %u bottleneck %d: %u .. %u", n, b, lo,
	              hi);
}
END_TEST

START_TEST(test_drr_weighted)
{
	static const unsigned w[] = { 1, 2, 4 };
	static const enum bottleneck bs[] = { B_AGG_CONC, B_GLOBAL,
	                                      B_AGG_RPS };
	unsigned counts[3], total = 70000, i;

	/*
	 * The last case paces each queue at 20 x the aggregate rate, burst
	 * 1: after each dispatch a queue waits for its own timer (and is
	 * back before the next aggregate slot). Such waits must not cost it
	 * the rest of its quantum, or weights flatten to 1:1.
	 */
	drr_run(3, w, _i < 3 ? bs[_i] : B_AGG_RPS, _i < 3 ? 0 : 20000, total,
	        counts);
	for (i = 0; i < 3; i++) {
		double share = (double)counts[i] / total, want = w[i] / 7.0;

		ck_assert_msg(fabs(share / want - 1) <= 0.01,
		              "case %d, weight %u: share %.5f, want %.5f", _i,
		              w[i], share, want);
	}
}
END_TEST

/*
 * Destinations take turns by their weights under the global cap; in the
 * second run each queue is paced (burst 1, 2 us apart, one dispatch per
 * us), so destinations keep finding all their queues on timers between
 * dispatches: that must not cost them the rest of their quantum.
 */
START_TEST(test_drr_destinations)
{
	static const unsigned w[] = { 1, 2, 4 };
	struct titem items[3 * 2 * 4];
	struct sched_queue *qs[6];
	unsigned counts[3] = { 0 }, total = 70000, nd = 0, i, k;
	struct sched *s = sched_new(1, UINT_MAX, IDLE_RESET);
	struct sched_item *it;
	char key[8];

	memset(items, 0, sizeof(items));
	/* Each destination has two queues, so queue DRR runs inside. */
	for (i = 0; i < 3; i++) {
		struct sched_dest_limits dl = { 0, 1, 0, w[i] };
		struct sched_dest *d;
		struct sched_limits l = unlimited(1 + i);

		if (_i == 1) {
			l.rps = 500000;
			l.burst = 1;
		}
		snprintf(key, sizeof(key), "d%u", i);
		d = sched_dest_get(s, key, &dl);
		qs[2 * i] = queue_n(s, d, 0, &l);
		qs[2 * i + 1] = queue_n(s, d, 1, &l);
	}
	for (i = 0; i < 6; i++) {
		for (k = 0; k < 4; k++) {
			items[i * 4 + k].qi = i;
			ck_assert_int_eq(sched_enqueue(s, qs[i],
			                 &items[i * 4 + k].si, 0), 0);
		}
	}
	while (nd < total) {
		it = sched_next(s, nd);
		CHECK(it != NULL);
		CHECK(sched_next(s, nd) == NULL); /* the global cap is 1 */
		counts[titem_of(it)->qi / 2]++;
		nd++;
		sched_done(s, it->q, nd);
		CHECK(sched_enqueue(s, it->q, it, nd) == 0);
	}
	for (i = 0; i < 3; i++) {
		double share = (double)counts[i] / total, want = w[i] / 7.0;

		ck_assert_msg(fabs(share / want - 1) <= 0.01,
		              "dest weight %u: share %.5f, want %.5f", w[i],
		              share, want);
	}
	sched_free(s);
}
END_TEST

/*
 * A light queue's one item, arriving at a random moment while a heavy
 * queue has 10,000 waiting and others are backlogged, goes after at most
 * one round: the sum of the other contenders' weights. Within one
 * destination (aggregate concurrency 1) and across destinations (global
 * cap 1); and with the others paced, so that they leave the ring after
 * each dispatch and come back with quantum left.
 */
static void light_run(bool across, bool paced)
{
	enum { HEAVY = 10000, TRIALS = 2000 };
	static struct titem heavy[HEAVY], other[2][4];
	static const unsigned w_other[3] = { 5, 1, 3 }; /* heavy first */
	struct sched_dest_limits dl = { 0, 1, 1, 1 };
	struct sched *s = sched_new(across ? 1 : UINT_MAX, UINT_MAX,
	                            IDLE_RESET);
	struct sched_dest *ds[4];
	struct sched_queue *qs[3], *ql;
	struct titem light;
	struct sched_item *it, *inflight = NULL;
	unsigned i, k, trials = 0, since = 0, worst = 0, bound = 0;
	bool light_waiting = false;
	int64_t now = 0;
	char key[8];

	memset(&light, 0, sizeof(light));
	for (i = 0; i < 4; i++) {
		if (across) {
			dl.aggregate_concurrency = 0;
			dl.weight = i < 3 ? w_other[i] : 1;
		}
		snprintf(key, sizeof(key), "d%u", across ? i : 0);
		ds[i] = sched_dest_get(s, key, &dl);
	}
	for (i = 0; i < 3; i++) {
		struct sched_limits l = unlimited(across ? 1 : w_other[i]);

		if (paced) {
			/* Back from its timer before the next step. */
			l.rps = 200000;
			l.burst = 1;
		}
		qs[i] = queue_n(s, ds[i], i, &l);
		bound += w_other[i];
	}
	{
		struct sched_limits l = unlimited(1);

		ql = queue_n(s, ds[3], 3, &l);
	}
	for (k = 0; k < HEAVY; k++)
		CHECK(sched_enqueue(s, qs[0], &heavy[k].si, now) == 0);
	for (i = 0; i < 2; i++)
		for (k = 0; k < 4; k++)
			CHECK(sched_enqueue(s, qs[1 + i], &other[i][k].si,
			                    now) == 0);

	while (trials < TRIALS) {
		now += 10;
		if (inflight) {
			/* The only slot completes; others stay backlogged. */
			sched_done(s, inflight->q, now);
			if (inflight->q != ql)
				CHECK(sched_enqueue(s, inflight->q, inflight,
				                    now) == 0);
			inflight = NULL;
		}
		if (!light_waiting && rng_below(7) == 0) {
			CHECK(sched_enqueue(s, ql, &light.si, now) == 0);
			light_waiting = true;
			since = 0;
		}
		it = sched_next(s, now);
		CHECK(it != NULL);
		CHECK(sched_next(s, now) == NULL);
		inflight = it;
		if (it->q == ql) {
			CHECK(light_waiting);
			CHECKF(since <= bound, "light queue waited %u "
			       "dispatches, one round is %u", since, bound);
			worst = since > worst ? since : worst;
			light_waiting = false;
			trials++;
		} else if (light_waiting) {
			since++;
		}
	}
	/* The bound was approached, so the test could fail. */
	if (!paced)
		ck_assert_uint_ge(worst, bound - 3);
	sched_free(s);
}

START_TEST(test_drr_light_queue)
{
	rng_seed(77 + (uint64_t)_i);
	light_run(false, _i == 1);
}
END_TEST

START_TEST(test_drr_light_destination)
{
	rng_seed(78 + (uint64_t)_i);
	light_run(true, _i == 1);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Learning                                                            */
/* ------------------------------------------------------------------ */

/* The time of the next dispatch of a single-queue scheduler, from now. */
static int64_t next_dispatch(struct sched *s, int64_t now,
                             struct sched_item **ret)
{
	struct sched_item *it;

	for (;;) {
		it = sched_next(s, now);
		if (it) {
			*ret = it;
			return now;
		}
		ck_assert_int_gt(sched_next_wakeup(s), now);
		ck_assert_int_ne(sched_next_wakeup(s), INT64_MAX);
		now = sched_next_wakeup(s);
	}
}

START_TEST(test_learn_queue_rate)
{
	struct sched *s = sched_new(100, 100, IDLE_RESET);
	struct sched_dest *d = sched_dest_get(s, "d", &no_agg);
	struct sched_limits l = qlim(1, 1, 100, 1);
	struct sched_queue *q = queue_n(s, d, 1, &l);
	struct titem it[8];
	struct sched_item *x;
	int64_t t0, t;
	int i;

	memset(it, 0, sizeof(it));
	for (i = 0; i < 8; i++)
		ck_assert_int_eq(sched_enqueue(s, q, &it[i].si, 0), 0);
	t0 = next_dispatch(s, 0, &x);
	ck_assert_int_eq(t0, 0);
	/* At 1/s the next would go at 1 s; learned 10/s, at 100 ms. */
	sched_learn_queue(s, q, 10, SCHED_RATE_EZTHROTTLE, 0, t0);
	ck_assert_int_le(sched_next_wakeup(s), t0 + 100001);
	ck_assert_ptr_null(sched_next(s, t0 + 99999));
	t = next_dispatch(s, t0 + 99999, &x);
	ck_assert_int_ge(t, t0 + 100000);
	ck_assert_int_le(t, t0 + 100001);
	/* Slower, learned at the dispatch: 0.5/s, the next at +2 s. */
	t0 = t;
	sched_learn_queue(s, q, 0.5, SCHED_RATE_EZTHROTTLE, 0, t0);
	ck_assert_ptr_null(sched_next(s, t0 + 2 * SEC - 1));
	t = next_dispatch(s, t0 + 2 * SEC - 1, &x);
	ck_assert_int_le(t, t0 + 2 * SEC + 1);
	/*
	 * Learned later, half-way through the interval (a response comes
	 * some time after its dispatch): faster goes no later than one new
	 * interval after the learning, slower is no longer held to the old
	 * interval.
	 */
	t0 = t;
	sched_learn_queue(s, q, 1000, SCHED_RATE_EZTHROTTLE, 0, t0 + SEC);
	t = next_dispatch(s, t0 + SEC, &x);
	ck_assert_int_le(t, t0 + SEC + 1000 + 1);
	t0 = t;
	sched_learn_queue(s, q, 0.01, SCHED_RATE_EZTHROTTLE, 0, t0 + 500);
	/* The old schedule (+1 ms) is gone... */
	ck_assert_ptr_null(sched_next(s, t0 + 2000));
	ck_assert_ptr_null(sched_next(s, t0 + 10 * SEC));
	/* ...and the new one (100 s) holds within one new interval. */
	t = next_dispatch(s, t0 + 10 * SEC, &x);
	ck_assert_int_le(t, t0 + 500 + 100 * SEC + 1);
	/* Repeating the same value changes nothing. */
	t0 = t;
	sched_learn_queue(s, q, 0.01, SCHED_RATE_EZTHROTTLE, 0, t0 + 10);
	sched_learn_queue(s, q, 0.01, SCHED_RATE_EZTHROTTLE, 0, t0 + 20);
	t = next_dispatch(s, t0 + 20, &x);
	ck_assert_int_ge(t, t0 + 100 * SEC);
	ck_assert_int_le(t, t0 + 100 * SEC + 1);
	sched_free(s);
}
END_TEST

/* Under random learning, every stretch between changes keeps its rate. */
START_TEST(test_learn_queue_random)
{
	enum { N = 4000 };
	static struct titem items[N];
	static int64_t disp[N];
	struct sched *s = sched_new(UINT_MAX, UINT_MAX, IDLE_RESET);
	struct sched_dest *d = sched_dest_get(s, "d", &no_agg);
	struct sched_limits l = qlim(5, 2, UINT_MAX, 1);
	struct sched_queue *q = queue_n(s, d, 1, &l);
	struct sched_item *x;
	double rps = l.rps;
	size_t k, start = 0, nd = 0;
	int64_t now = 0, learned_at = 0;

	rng_seed(4242);
	for (k = 0; k < N; k++)
		ck_assert_int_eq(sched_enqueue(s, q, &items[k].si, 0), 0);
	while (nd < N) {
		now = next_dispatch(s, now, &x);
		disp[nd++] = now;
		sched_done(s, q, now);
		if (rng_below(50) == 0 || nd == N) {
			/* Dispatches since the last change: window-checked
			 * from the first one at or after the change. */
			while (start < nd && disp[start] < learned_at)
				start++;
			check_windows(disp + start, nd - start, rps, l.burst,
			              "between learnings");
			rps = rng_logu(0.5, 5000);
			learned_at = now + (int64_t)rng_below(1000);
			sched_learn_queue(s, q, rps, SCHED_RATE_EZTHROTTLE, 0, learned_at);
			now = learned_at;
			start = nd;
		}
	}
	sched_free(s);
}
END_TEST

START_TEST(test_learn_dest)
{
	struct sched *s = sched_new(100, 100, IDLE_RESET);
	struct sched_dest *d = sched_dest_get(s, "d", &no_agg);
	struct sched_limits l = qlim(1, 1, 1, 1);
	struct sched_queue *a = queue_n(s, d, 1, &l);
	struct sched_queue *b = queue_n(s, d, 2, &l);
	struct titem ia[6], ib[6];
	struct sched_item *x;
	int i, n;

	memset(ia, 0, sizeof(ia));
	memset(ib, 0, sizeof(ib));
	ck_assert_ptr_eq(sched_queue_dest(a), d);
	for (i = 0; i < 6; i++) {
		ck_assert_int_eq(sched_enqueue(s, a, &ia[i].si, 0), 0);
		ck_assert_int_eq(sched_enqueue(s, b, &ib[i].si, 0), 0);
	}
	/* b learned its own values; the destination's apply to a only. */
	sched_learn_queue(s, b, 1, SCHED_RATE_EZTHROTTLE, 1, 0);
	sched_learn_dest(s, d, 10, SCHED_RATE_EZTHROTTLE, 3, 0);
	for (n = 0; (x = sched_next(s, 0)) != NULL; n++)
		;
	ck_assert_int_eq(n, 2); /* one each: bursts of 1 */
	sched_done(s, a, 0);
	sched_done(s, b, 0);
	/* Within 1 s: a goes every 100 ms and up to 3 in flight; b once. */
	n = 0;
	for (i = 1; i <= 9; i++) {
		while ((x = sched_next(s, i * 100000)) != NULL) {
			ck_assert_ptr_eq(x->q, a);
			n++;
		}
	}
	ck_assert_int_eq(n, 3); /* its learned concurrency */
	ck_assert_uint_eq(sched_in_flight(s), 3);
	sched_done(s, a, 950000);
	x = sched_next(s, 950000);
	ck_assert_ptr_nonnull(x);
	ck_assert_ptr_eq(x->q, a);
	x = sched_next(s, SEC);
	ck_assert_ptr_nonnull(x);
	ck_assert_ptr_eq(x->q, b);
	/* Learning the destination again leaves b alone. */
	sched_learn_dest(s, d, 1000, SCHED_RATE_EZTHROTTLE, 0, SEC);
	ck_assert_ptr_null(sched_next(s, SEC + 500000));
	sched_free(s);
}
END_TEST

START_TEST(test_learn_concurrency)
{
	struct sched *s = sched_new(100, 100, IDLE_RESET);
	struct sched_dest *d = sched_dest_get(s, "d", &no_agg);
	struct sched_limits l = qlim(1e6, 100, 1, 1);
	struct sched_queue *q = queue_n(s, d, 1, &l);
	struct titem it[10];
	int i, n;

	memset(it, 0, sizeof(it));
	for (i = 0; i < 10; i++)
		ck_assert_int_eq(sched_enqueue(s, q, &it[i].si, 0), 0);
	ck_assert_ptr_nonnull(sched_next(s, 0));
	ck_assert_ptr_null(sched_next(s, 0));
	/* Up: the queue is no longer capped, at once. */
	sched_learn_queue(s, q, 0, SCHED_RATE_EZTHROTTLE, 4, 1);
	for (n = 0; sched_next(s, 1); n++)
		;
	ck_assert_int_eq(n, 3);
	ck_assert_uint_eq(sched_in_flight(s), 4);
	/* Down below what is in flight: nothing until it drains to 1. */
	sched_learn_queue(s, q, 0, SCHED_RATE_EZTHROTTLE, 2, 2);
	sched_done(s, q, 3);
	ck_assert_ptr_null(sched_next(s, 3));
	sched_done(s, q, 4);
	ck_assert_ptr_null(sched_next(s, 4));
	sched_done(s, q, 5);
	ck_assert_ptr_nonnull(sched_next(s, 5));
	ck_assert_ptr_null(sched_next(s, 5));
	/* Rate 0 leaves the rate, concurrency 0 leaves the cap. */
	sched_learn_queue(s, q, 0, SCHED_RATE_EZTHROTTLE, 0, 6);
	ck_assert_ptr_null(sched_next(s, 6));
	ck_assert_uint_eq(sched_in_flight(s), 2);
	sched_free(s);
}
END_TEST

struct learned_view {
	double rps;
	unsigned conc;
};

static void learned_info(const struct sched_queue_info *qi, void *arg)
{
	struct learned_view *v = arg;

	v->rps = qi->rps_learned;
	v->conc = qi->concurrency_learned;
}

struct rate_view {
	double rate;
	enum sched_rate_source src;
};

static void rate_info(const struct sched_queue_info *qi, void *arg)
{
	struct rate_view *v = arg;

	v->rate = qi->rate;
	v->src = qi->rate_source;
}

/* max_rps cuts what a queue or its destination learns; rate_source says why. */
START_TEST(test_learn_max_rps)
{
	struct sched *s = sched_new(100, 100, IDLE_RESET);
	struct sched_dest *d = sched_dest_get(s, "d", &no_agg);
	struct sched_limits l = qlim(2, 1, 100, 1);
	struct sched_queue *q;
	struct rate_view v;

	l.max_rps = 20;
	q = queue_n(s, d, 1, &l);
	sched_foreach(s, rate_info, &v);
	ck_assert(v.rate == 2);
	ck_assert_str_eq(sched_rate_source_name(v.src), "configured");
	sched_learn_queue(s, q, 50, SCHED_RATE_QUOTA, 0, 0);
	sched_foreach(s, rate_info, &v);
	ck_assert(v.rate == 20);
	ck_assert_str_eq(sched_rate_source_name(v.src), "quota");
	sched_learn_queue(s, q, 5, SCHED_RATE_EZTHROTTLE, 0, 1);
	sched_foreach(s, rate_info, &v);
	ck_assert(v.rate == 5);
	ck_assert_str_eq(sched_rate_source_name(v.src), "ezthrottle");
	/* A concurrency alone keeps the rate and its source. */
	sched_learn_queue(s, q, 0, SCHED_RATE_QUOTA, 3, 2);
	sched_foreach(s, rate_info, &v);
	ck_assert(v.rate == 5);
	ck_assert_str_eq(sched_rate_source_name(v.src), "ezthrottle");
	sched_free(s);

	/* The destination's learned rate is cut by its queues' rule too. */
	s = sched_new(100, 100, IDLE_RESET);
	d = sched_dest_get(s, "d", &no_agg);
	q = queue_n(s, d, 1, &l);
	sched_learn_dest(s, d, 1000, SCHED_RATE_EZTHROTTLE, 0, 0);
	sched_foreach(s, rate_info, &v);
	ck_assert(v.rate == 20);
	ck_assert_str_eq(sched_rate_source_name(v.src), "ezthrottle");
	ck_assert_str_eq(sched_rate_source_name((enum sched_rate_source)99),
	                 "configured");
	sched_free(s);
}
END_TEST

/* The predicted wait: the queue's next slot, its pause, one interval an item. */
START_TEST(test_predict_wait)
{
	struct sched *s = sched_new(100, 100, IDLE_RESET);
	struct sched_dest *d = sched_dest_get(s, "d", &no_agg);
	struct sched_limits l = qlim(2, 1, 100, 1);
	struct sched_queue *q = queue_n(s, d, 1, &l);
	struct titem it[4];
	struct sched_item *x;

	memset(it, 0, sizeof(it));
	/* Empty and never used: now. */
	ck_assert_int_eq(sched_predict_wait(q, 0), 0);
	ck_assert_int_eq(sched_enqueue(s, q, &it[0].si, 0), 0);
	ck_assert_int_eq(next_dispatch(s, 0, &x), 0);
	/* One sent at 0: the next at 500 ms. */
	ck_assert_int_eq(sched_predict_wait(q, 0), 500000);
	ck_assert_int_eq(sched_predict_wait(q, 100000), 400000);
	/* Two waiting: behind them, two intervals more. */
	ck_assert_int_eq(sched_enqueue(s, q, &it[1].si, 0), 0);
	ck_assert_int_eq(sched_enqueue(s, q, &it[2].si, 0), 0);
	ck_assert_int_eq(sched_predict_wait(q, 0), 1500000);
	/* A faster learned rate shortens it. */
	sched_learn_queue(s, q, 4, SCHED_RATE_EZTHROTTLE, 0, 0);
	ck_assert_int_le(sched_predict_wait(q, 0), 750000);
	/* A pause pushes the start: two items at 4/s after it. */
	sched_pause(s, q, 5 * SEC, 0);
	ck_assert_int_eq(sched_predict_wait(q, 0), 5 * SEC + 500000);
	sched_free(s);
}
END_TEST

/*
 * The end of a quota window by the answers: from the one that left
 * limit - 1, while each later one steps remaining down by one.
 */
START_TEST(test_quota_window_end)
{
	struct sched *s = sched_new(100, 100, IDLE_RESET);
	struct sched_dest *d = sched_dest_get(s, "d", &no_agg);
	struct sched_limits l = qlim(2, 1, 100, 1);
	struct sched_queue *q = queue_n(s, d, 1, &l);

	/* Nothing stated, no window, or nonsense: unknown. */
	ck_assert_int_eq(sched_quota_window_end(q, -1, -1, SEC, 0), -1);
	ck_assert_int_eq(sched_quota_window_end(q, 3, 1, -1000, 0), -1);
	ck_assert_int_eq(sched_quota_window_end(q, 3, 3, SEC, 0), -1);
	/* Mid-window first: when it opened is not known. */
	ck_assert_int_eq(sched_quota_window_end(q, 3, 1, SEC, 0), -1);
	/* 2, 1, 0 of 3: one window from the answer that left 2. */
	ck_assert_int_eq(sched_quota_window_end(q, 3, 2, SEC, 100), 100 + SEC);
	ck_assert_int_eq(sched_quota_window_end(q, 3, 1, SEC, 400), 100 + SEC);
	ck_assert_int_eq(sched_quota_window_end(q, 3, 0, SEC, 700), 100 + SEC);
	/* A new window. */
	ck_assert_int_eq(sched_quota_window_end(q, 3, 2, SEC, SEC + 200),
	                 2 * SEC + 200);
	/* Answers that crossed (or another client): not trusted... */
	ck_assert_int_eq(sched_quota_window_end(q, 3, 0, SEC, SEC + 300), -1);
	ck_assert_int_eq(sched_quota_window_end(q, 3, 1, SEC, SEC + 400), -1);
	/* ... until a window opens again. */
	ck_assert_int_eq(sched_quota_window_end(q, 3, 2, SEC, 3 * SEC),
	                 4 * SEC);
	/* A limit of 1: each answer opens its window. */
	ck_assert_int_eq(sched_quota_window_end(q, 1, 0, SEC, 5 * SEC),
	                 6 * SEC);
	sched_free(s);
}
END_TEST

struct mode_view {
	double rate;
	enum sched_rate_source src;
	enum rate_mode mode;
};

static void mode_info(const struct sched_queue_info *qi, void *arg)
{
	struct mode_view *v = arg;

	v->rate = qi->rate;
	v->src = qi->rate_source;
	v->mode = qi->mode;
}

/* Frugal: unpaced until a pushback, then the pace it sustained. */
START_TEST(test_mode_frugal)
{
	struct sched *s = sched_new(100, 1000, IDLE_RESET);
	struct sched_dest *d = sched_dest_get(s, "d", &no_agg);
	struct sched_limits l = qlim(1, 1, 1000, 1);
	struct sched_queue *q;
	struct titem it[50];
	struct sched_item *x;
	struct mode_view v;
	int i;

	l.mode = RATE_FRUGAL;
	q = queue_n(s, d, 1, &l);
	memset(it, 0, sizeof(it));
	for (i = 0; i < 50; i++)
		ck_assert_int_eq(sched_enqueue(s, q, &it[i].si, 0), 0);
	/* At 1 req/s paced; frugal sends all 20 it has room for now. */
	for (i = 0; i < 20; i++) {
		ck_assert_ptr_nonnull(x = sched_next(s, 0));
		sched_done(s, q, 0);
		sched_took(q, 0);
	}
	sched_foreach(s, mode_info, &v);
	ck_assert(v.rate == 0);
	ck_assert_int_eq(v.mode, RATE_FRUGAL);
	/* Pushed back in the first second: paced at the 20 it took. */
	sched_pushback(s, q, false, 500000);
	sched_foreach(s, mode_info, &v);
	ck_assert_double_eq_tol(v.rate, 20, 1e-9);
	ck_assert_str_eq(sched_rate_source_name(v.src), "backoff");
	ck_assert_ptr_nonnull(sched_next(s, 500000));
	sched_done(s, q, 500000);
	ck_assert_ptr_null(sched_next(s, 500001));
	ck_assert_ptr_nonnull(sched_next(s, 550000));
	sched_free(s);
}
END_TEST

/* Adaptive: probes up while its rate holds requests back; a bare 429 cuts. */
START_TEST(test_mode_adaptive)
{
	struct sched *s = sched_new(100, 1000, IDLE_RESET);
	struct sched_dest *d = sched_dest_get(s, "d", &no_agg);
	struct sched_limits l = qlim(2, 1, 1000, 1);
	struct sched_queue *q;
	struct titem it[200];
	struct mode_view v;
	int64_t t = 0;
	int i, n = 0;

	l.mode = RATE_ADAPTIVE;
	q = queue_n(s, d, 1, &l);
	memset(it, 0, sizeof(it));
	for (i = 0; i < 200; i++)
		ck_assert_int_eq(sched_enqueue(s, q, &it[i].si, 0), 0);
	/* 12 s of dispatching at whatever the rate is, ticking each second. */
	for (int64_t sec = 0; sec < 12; sec++) {
		for (; t < (sec + 1) * SEC; t += 1000) {
			while (sched_next(s, t)) {
				sched_done(s, q, t);
				n++;
			}
		}
		sched_modes_tick(s, t);
	}
	sched_foreach(s, mode_info, &v);
	/*
	 * The first tick at 1 s starts the clock; each later one (11 of
	 * them) multiplies by 2^(1/5): 2 * 2^2.2 req/s; about 50 sent.
	 */
	ck_assert_double_eq_tol(v.rate, 2 * exp2(2.2), 1e-9);
	ck_assert_str_eq(sched_rate_source_name(v.src), "probe");
	ck_assert_int_ge(n, 50 - 3);
	/* A pushback that states a quota does not cut; a bare one does. */
	sched_pushback(s, q, false, t);
	sched_foreach(s, mode_info, &v);
	ck_assert_double_eq_tol(v.rate, 2 * exp2(2.2), 1e-9);
	sched_pushback(s, q, true, t);
	sched_foreach(s, mode_info, &v);
	ck_assert_double_eq_tol(v.rate, 2 * exp2(2.0), 1e-9);  /* the tick before */
	/* A learned rate wins over what the mode found. */
	sched_learn_queue(s, q, 3, SCHED_RATE_QUOTA, 0, t);
	sched_foreach(s, mode_info, &v);
	ck_assert_double_eq_tol(v.rate, 3, 1e-9);
	ck_assert_str_eq(sched_rate_source_name(v.src), "quota");
	/* Back to paced: the configured rate. */
	sched_set_mode(s, q, RATE_PACED, t);
	sched_foreach(s, mode_info, &v);
	ck_assert_int_eq(v.mode, RATE_PACED);
	sched_free(s);
}
END_TEST

/* idle_reset: a queue idle that long starts again from its configuration. */
START_TEST(test_idle_reset)
{
	const int64_t reset = 10 * SEC;
	struct sched *s = sched_new(100, 100, reset);
	struct sched_dest *d = sched_dest_get(s, "d", &no_agg);
	struct sched_limits l = qlim(1, 1, 1, 1);
	struct sched_queue *q = queue_n(s, d, 1, &l);
	struct titem it[4];
	struct sched_item *x;
	struct learned_view v;
	int64_t t;
	int i;

	memset(it, 0, sizeof(it));
	sched_learn_queue(s, q, 100, SCHED_RATE_EZTHROTTLE, 2, 0);
	/* Busy: learned values hold (10 ms apart, 2 in flight). */
	for (i = 0; i < 3; i++)
		ck_assert_int_eq(sched_enqueue(s, q, &it[i].si, 0), 0);
	ck_assert_int_eq(next_dispatch(s, 0, &x), 0);
	ck_assert_int_eq(next_dispatch(s, 1, &x), 10000);
	ck_assert_ptr_null(sched_next(s, 30000)); /* 2 in flight */
	sched_done(s, q, 30000);
	ck_assert_int_eq(next_dispatch(s, 30000, &x), 30000);
	sched_done(s, q, 40000);
	sched_done(s, q, 40000);
	/* Idle for less than idle_reset: still learned. */
	t = 40000 + reset - 1;
	for (i = 0; i < 2; i++)
		ck_assert_int_eq(sched_enqueue(s, q, &it[i].si, t), 0);
	ck_assert_int_eq(next_dispatch(s, t, &x), t);
	ck_assert_int_eq(next_dispatch(s, t, &x), t + 10000);
	sched_done(s, q, t + 10000);
	sched_done(s, q, t + 10000);
	/* Idle for longer: configured again (1/s, 1 in flight). */
	t += 10000 + reset + 1;
	for (i = 0; i < 3; i++)
		ck_assert_int_eq(sched_enqueue(s, q, &it[i].si, t), 0);
	sched_foreach(s, learned_info, &v);
	ck_assert(v.rps == 0);
	ck_assert_uint_eq(v.conc, 0);
	ck_assert_int_eq(next_dispatch(s, t, &x), t);
	ck_assert_ptr_null(sched_next(s, t + SEC)); /* cap 1 */
	sched_done(s, q, t + 1);
	ck_assert_ptr_null(sched_next(s, t + SEC - 1));
	ck_assert_int_eq(next_dispatch(s, t + 1, &x), t + SEC);

	/* The destination's learned values reset the same way. */
	sched_done(s, q, t + SEC);
	ck_assert_int_eq(next_dispatch(s, t + SEC, &x), t + 2 * SEC);
	sched_done(s, q, t + 2 * SEC);
	t += 2 * SEC;
	sched_learn_dest(s, d, 100, SCHED_RATE_EZTHROTTLE, 0, t);
	ck_assert_int_eq(sched_enqueue(s, q, &it[0].si, t + SEC), 0);
	ck_assert_int_eq(sched_enqueue(s, q, &it[1].si, t + SEC), 0);
	ck_assert_int_eq(next_dispatch(s, t + SEC, &x), t + SEC);
	sched_done(s, q, t + SEC);
	ck_assert_int_eq(next_dispatch(s, t + SEC, &x), t + SEC + 10000);
	sched_done(s, q, t + SEC + 10000);
	t += SEC + 10000 + reset;
	ck_assert_int_eq(sched_enqueue(s, q, &it[0].si, t), 0);
	ck_assert_int_eq(sched_enqueue(s, q, &it[1].si, t), 0);
	ck_assert_int_eq(next_dispatch(s, t, &x), t);
	sched_done(s, q, t);
	ck_assert_int_eq(next_dispatch(s, t, &x), t + SEC);
	sched_done(s, q, t + SEC);
	sched_free(s);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Pause, retry, removal, bounds                                       */
/* ------------------------------------------------------------------ */

START_TEST(test_pause)
{
	struct sched *s = sched_new(100, 100, IDLE_RESET);
	struct sched_dest *d = sched_dest_get(s, "d", &no_agg);
	struct sched_limits l = qlim(1000, 1, 100, 1);
	struct sched_queue *a = queue_n(s, d, 1, &l);
	struct sched_queue *b = queue_n(s, d, 2, &l);
	struct titem ia[5], ib[5];
	struct sched_item *x;
	int64_t t;
	int i, nb = 0;

	memset(ia, 0, sizeof(ia));
	memset(ib, 0, sizeof(ib));
	for (i = 0; i < 5; i++) {
		ck_assert_int_eq(sched_enqueue(s, a, &ia[i].si, 0), 0);
		ck_assert_int_eq(sched_enqueue(s, b, &ib[i].si, 0), 0);
	}
	ck_assert_ptr_nonnull(sched_next(s, 0));
	sched_pause(s, a, 5 * SEC, 0);
	/* A shorter pause does not shorten it. */
	sched_pause(s, a, 2 * SEC, 1);
	/* b keeps its pace; a sends nothing before 5 s. */
	for (t = 0; t < 5 * SEC; t = sched_next_wakeup(s)) {
		while ((x = sched_next(s, t)) != NULL) {
			ck_assert_ptr_eq(x->q, b);
			nb++;
		}
		ck_assert_int_ne(sched_next_wakeup(s), INT64_MAX);
	}
	ck_assert_int_ge(nb, 4);
	ck_assert_int_eq(t, 5 * SEC);
	x = sched_next(s, 5 * SEC);
	ck_assert_ptr_nonnull(x);
	ck_assert_ptr_eq(x->q, a);
	/* A pause in the past changes nothing. */
	sched_pause(s, a, 5 * SEC, 5 * SEC + 1000);
	x = sched_next(s, 5 * SEC + 1000);
	ck_assert_ptr_nonnull(x);
	ck_assert_ptr_eq(x->q, a);
	/* A paused idle queue: its next item waits for the pause. */
	sched_pause(s, b, 20 * SEC, 6 * SEC);
	ck_assert_int_eq(sched_enqueue(s, b, &ib[0].si, 6 * SEC), 0);
	for (t = 6 * SEC; t < 20 * SEC; t = sched_next_wakeup(s)) {
		while ((x = sched_next(s, t)) != NULL)
			ck_assert_ptr_eq(x->q, a);
	}
	ck_assert_int_eq(t, 20 * SEC);
	x = sched_next(s, 20 * SEC);
	ck_assert_ptr_nonnull(x);
	ck_assert_ptr_eq(x, &ib[0].si);
	sched_free(s);
}
END_TEST

START_TEST(test_requeue)
{
	struct sched *s = sched_new(100, 3, IDLE_RESET);
	struct sched_dest *d = sched_dest_get(s, "d", &no_agg);
	struct sched_limits l = qlim(10, 1, 1, 1);
	struct sched_queue *q = queue_n(s, d, 1, &l);
	struct titem it[3];
	struct sched_item *x;
	int i;

	memset(it, 0, sizeof(it));
	for (i = 0; i < 3; i++)
		ck_assert_int_eq(sched_enqueue(s, q, &it[i].si, 0), 0);
	x = sched_next(s, 0);
	ck_assert_ptr_eq(x, &it[0].si);
	ck_assert_uint_eq(sched_queued(s), 2);
	ck_assert_uint_eq(sched_in_flight(s), 1);
	/* A retry, even over max_queued; its slot is free again. */
	sched_requeue(s, x, 3 * SEC, SEC);
	ck_assert_uint_eq(sched_queued(s), 3);
	ck_assert_uint_eq(sched_in_flight(s), 0);
	/* Nothing of q goes before the retry's time: it is the head. */
	ck_assert_ptr_null(sched_next(s, SEC));
	ck_assert_ptr_null(sched_next(s, 3 * SEC - 1));
	ck_assert_int_eq(sched_next_wakeup(s), 3 * SEC);
	ck_assert_ptr_eq(sched_next(s, 3 * SEC), &it[0].si);
	sched_done(s, q, 3 * SEC);
	/* The retry counted against the rate: the next is 100 ms later. */
	ck_assert_ptr_null(sched_next(s, 3 * SEC + 99999));
	ck_assert_ptr_eq(sched_next(s, 3 * SEC + 100000), &it[1].si);
	/* A retry due at once still keeps the pace: 100 ms after. */
	sched_requeue(s, &it[1].si, 0, 3 * SEC + 100000);
	ck_assert_ptr_null(sched_next(s, 3 * SEC + 199999));
	ck_assert_ptr_eq(sched_next(s, 3 * SEC + 200000), &it[1].si);
	sched_done(s, q, 3 * SEC + 200000);
	ck_assert_ptr_eq(sched_next(s, 4 * SEC), &it[2].si);
	sched_done(s, q, 4 * SEC);
	ck_assert_uint_eq(sched_queued(s), 0);
	ck_assert_uint_eq(sched_in_flight(s), 0);
	sched_free(s);
}
END_TEST

START_TEST(test_remove)
{
	struct sched *s = sched_new(100, 100, IDLE_RESET);
	struct sched_dest *d = sched_dest_get(s, "d", &no_agg);
	struct sched_limits l = qlim(1, 1, 10, 1);
	struct sched_queue *q = queue_n(s, d, 1, &l);
	struct titem it[6];
	int i;

	memset(it, 0, sizeof(it));
	for (i = 0; i < 6; i++)
		ck_assert_int_eq(sched_enqueue(s, q, &it[i].si, 0), 0);
	ck_assert_ptr_eq(sched_next(s, 0), &it[0].si);
	/* Middle, head (while the queue waits for its timer), tail. */
	sched_remove(s, &it[3].si, 1);
	sched_remove(s, &it[1].si, 2);
	sched_remove(s, &it[5].si, 3);
	ck_assert_uint_eq(sched_queued(s), 2);
	ck_assert_ptr_eq(sched_next(s, SEC), &it[2].si);
	ck_assert_ptr_eq(sched_next(s, 2 * SEC), &it[4].si);
	ck_assert_ptr_null(sched_next(s, 10 * SEC));
	/* The last waiting item of a queue waiting for its timer. */
	ck_assert_int_eq(sched_enqueue(s, q, &it[1].si, 10 * SEC), 0);
	ck_assert_int_eq(sched_enqueue(s, q, &it[3].si, 10 * SEC), 0);
	ck_assert_ptr_eq(sched_next(s, 10 * SEC), &it[1].si);
	ck_assert_int_eq(sched_next_wakeup(s), 11 * SEC);
	sched_remove(s, &it[3].si, 10 * SEC);
	ck_assert_int_eq(sched_next_wakeup(s), INT64_MAX);
	ck_assert_uint_eq(sched_queued(s), 0);
	ck_assert_ptr_null(sched_next(s, 20 * SEC));
	/* A ready queue, head of its destination's ring, emptied. */
	ck_assert_int_eq(sched_enqueue(s, q, &it[5].si, 30 * SEC), 0);
	sched_remove(s, &it[5].si, 30 * SEC);
	ck_assert_ptr_null(sched_next(s, 30 * SEC));
	ck_assert_int_eq(sched_enqueue(s, q, &it[5].si, 30 * SEC), 0);
	ck_assert_ptr_eq(sched_next(s, 30 * SEC), &it[5].si);
	sched_free(s);
}
END_TEST

START_TEST(test_max_queued)
{
	struct sched *s = sched_new(100, 5, IDLE_RESET);
	struct sched_dest *d = sched_dest_get(s, "d", &no_agg);
	struct sched_limits l = qlim(1, 1, 10, 1);
	struct sched_queue *a, *b;
	struct titem it[8], saved;
	int i;

	memset(it, 0, sizeof(it));
	memset(&saved, 0, sizeof(saved));
	l.max_queued = 3;
	a = queue_n(s, d, 1, &l);
	b = queue_n(s, d, 2, &l);
	for (i = 0; i < 3; i++)
		ck_assert_int_eq(sched_enqueue(s, a, &it[i].si, 0), 0);
	/* The queue is full: refused, and nothing moves. */
	memset(&it[3], 0x5a, sizeof(it[3]));
	saved = it[3];
	ck_assert_int_eq(sched_enqueue(s, a, &it[3].si, 0), -ENOBUFS);
	ck_assert(memcmp(&saved, &it[3], sizeof(saved)) == 0);
	ck_assert_uint_eq(sched_queued(s), 3);
	/* The scheduler is full at 5 in all. */
	ck_assert_int_eq(sched_enqueue(s, b, &it[4].si, 0), 0);
	ck_assert_int_eq(sched_enqueue(s, b, &it[5].si, 0), 0);
	memset(&it[6], 0x5a, sizeof(it[6]));
	saved = it[6];
	ck_assert_int_eq(sched_enqueue(s, b, &it[6].si, 0), -ENOBUFS);
	ck_assert(memcmp(&saved, &it[6], sizeof(saved)) == 0);
	ck_assert_uint_eq(sched_queued(s), 5);
	/* What was queued still goes, in order. */
	ck_assert_ptr_eq(sched_next(s, 0), &it[0].si);
	ck_assert_ptr_eq(sched_next(s, 0), &it[4].si);
	ck_assert_ptr_null(sched_next(s, 0));
	/* Room again. */
	ck_assert_int_eq(sched_enqueue(s, b, &it[6].si, 1), 0);
	ck_assert_int_eq(sched_enqueue(s, a, &it[7].si, 1), 0);
	ck_assert_uint_eq(sched_queued(s), 5);
	ck_assert_int_eq(sched_enqueue(s, a, &it[3].si, 1), -ENOBUFS);
	sched_free(s);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Collection and the /queues view                                     */
/* ------------------------------------------------------------------ */

struct view {
	unsigned n;
	unsigned waiting[8], in_flight[8];
	int64_t paused[8];
	bool seen[8];
	char dest[8][8];
};

static void view_info(const struct sched_queue_info *qi, void *arg)
{
	struct view *v = arg;
	unsigned k;

	ck_assert_uint_eq(qi->key_len, sizeof(k));
	memcpy(&k, qi->key, sizeof(k));
	ck_assert_uint_lt(k, 8);
	ck_assert(!v->seen[k]);
	v->seen[k] = true;
	v->n++;
	v->waiting[k] = qi->waiting;
	v->in_flight[k] = qi->in_flight;
	v->paused[k] = qi->paused_until;
	snprintf(v->dest[k], sizeof(v->dest[k]), "%s", qi->dest);
}

static struct view view_of(struct sched *s)
{
	struct view v;

	memset(&v, 0, sizeof(v));
	sched_foreach(s, view_info, &v);
	return v;
}

START_TEST(test_collect_and_foreach)
{
	const int64_t reset = 10 * SEC;
	struct sched *s = sched_new(100, 100, reset);
	struct sched_dest *d1 = sched_dest_get(s, "d1", &no_agg);
	struct sched_dest *d2 = sched_dest_get(s, "d2", &no_agg);
	struct sched_limits l = qlim(1, 1, 10, 1);
	struct sched_queue *a = queue_n(s, d1, 0, &l); /* idle */
	struct sched_queue *b = queue_n(s, d1, 1, &l); /* waiting */
	struct sched_queue *c = queue_n(s, d1, 2, &l); /* in flight */
	struct sched_queue *p = queue_n(s, d1, 3, &l); /* paused, idle */
	struct sched_queue *e = queue_n(s, d2, 4, &l); /* idle, own dest */
	struct titem it[8];
	struct view v;

	memset(it, 0, sizeof(it));
	ck_assert_uint_eq(sched_n_queues(s), 5);
	/* Same key, same queue. */
	ck_assert_ptr_eq(queue_n(s, d1, 0, &l), a);
	ck_assert_uint_eq(sched_n_queues(s), 5);

	ck_assert_int_eq(sched_enqueue(s, a, &it[0].si, 0), 0);
	ck_assert_int_eq(sched_enqueue(s, c, &it[1].si, 0), 0);
	ck_assert_int_eq(sched_enqueue(s, p, &it[2].si, 0), 0);
	ck_assert_int_eq(sched_enqueue(s, e, &it[3].si, 0), 0);
	while (sched_next(s, 0))
		;
	sched_done(s, a, 0);
	sched_done(s, p, 0);
	sched_done(s, e, 0);
	/* Learned values: kept until idle_reset, not freed when quiet. */
	sched_learn_queue(s, a, 1, SCHED_RATE_EZTHROTTLE, 0, 0);
	sched_learn_queue(s, e, 1, SCHED_RATE_EZTHROTTLE, 0, 0);
	sched_pause(s, p, 100 * SEC, 0);
	/* b waits: paused far away. */
	sched_pause(s, b, 1000 * SEC, 0);
	ck_assert_int_eq(sched_enqueue(s, b, &it[4].si, 0), 0);

	v = view_of(s);
	ck_assert_uint_eq(v.n, 5);
	ck_assert_uint_eq(v.waiting[1], 1);
	ck_assert_uint_eq(v.in_flight[2], 1);
	ck_assert_uint_eq(v.waiting[2] + v.in_flight[0], 0);
	ck_assert_int_eq(v.paused[3], 100 * SEC);
	ck_assert_int_eq(v.paused[1], 1000 * SEC);
	ck_assert_str_eq(v.dest[4], "d2");
	ck_assert_str_eq(v.dest[0], "d1");

	/* Not idle long enough: nothing goes. */
	sched_collect(s, reset - 1);
	ck_assert_uint_eq(sched_n_queues(s), 5);
	/* Idle queues go; waiting, in-flight and paused ones stay. */
	sched_collect(s, reset);
	ck_assert_uint_eq(sched_n_queues(s), 3);
	v = view_of(s);
	ck_assert(!v.seen[0] && v.seen[1] && v.seen[2] && v.seen[3] &&
	          !v.seen[4]);
	sched_collect(s, 100 * SEC - 1);
	ck_assert_uint_eq(sched_n_queues(s), 3);
	sched_collect(s, 100 * SEC);
	ck_assert_uint_eq(sched_n_queues(s), 2);
	v = view_of(s);
	ck_assert(v.seen[1] && v.seen[2] && !v.seen[3]);
	/* Far later: still there while they have work. */
	sched_collect(s, 500 * SEC);
	ck_assert_uint_eq(sched_n_queues(s), 2);
	/*
	 * c's item completes, b's is removed: c, blank, goes once quiet; b,
	 * paused, when its pause ends.
	 */
	sched_done(s, c, 500 * SEC);
	sched_remove(s, &it[4].si, 501 * SEC);
	sched_collect(s, 500 * SEC + reset - 1);
	ck_assert_uint_eq(sched_n_queues(s), 1);
	sched_collect(s, 1001 * SEC);
	ck_assert_uint_eq(sched_n_queues(s), 0);
	/* The destinations went with their last queue: new ones work. */
	d1 = sched_dest_get(s, "d1", &no_agg);
	a = queue_n(s, d1, 0, &l);
	ck_assert_int_eq(sched_enqueue(s, a, &it[0].si, 1002 * SEC), 0);
	ck_assert_ptr_eq(sched_next(s, 1002 * SEC), &it[0].si);
	sched_free(s);
}
END_TEST

/*
 * A queue idle for SCHED_QUIET_US whose state is blank goes at once; one
 * with learned values, a pause, pacing ahead, or the last queue of a
 * destination that learned, waits for idle_reset. 200000 credentials
 * leave nothing behind a second after they are done.
 */
START_TEST(test_collect_quiet)
{
	const int64_t reset = 300 * SEC, Q = SCHED_QUIET_US;
	struct sched *s = sched_new(UINT_MAX, UINT_MAX, reset);
	struct sched_dest *d1 = sched_dest_get(s, "d1", &no_agg);
	struct sched_dest *d2 = sched_dest_get(s, "d2", &no_agg);
	struct sched_limits fast = qlim(1000, 1, 10, 1);
	struct sched_limits slow = qlim(0.1, 1, 10, 1);
	struct sched_queue *blank = queue_n(s, d1, 0, &fast);
	struct sched_queue *learned = queue_n(s, d1, 1, &fast);
	struct sched_queue *paused = queue_n(s, d1, 2, &fast);
	struct sched_queue *paced = queue_n(s, d1, 3, &slow);
	struct sched_queue *last = queue_n(s, d2, 4, &fast);
	struct sched_queue *never = queue_n(s, d1, 5, &fast);
	struct sched_queue *qs[5] = { blank, learned, paused, paced, last };
	struct titem it[5];
	struct sched_item *x;
	struct view v;

	memset(it, 0, sizeof(it));
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(sched_enqueue(s, qs[i], &it[i].si, 0), 0);
	while ((x = sched_next(s, 0)))
		sched_done(s, x->q, 0);
	sched_learn_queue(s, learned, 5, SCHED_RATE_EZTHROTTLE, 0, 0);
	sched_pause(s, paused, 60 * SEC, 0);
	sched_learn_dest(s, d2, 5, SCHED_RATE_EZTHROTTLE, 0, 0);
	(void)never; /* made, never given an item */
	ck_assert_uint_eq(sched_n_queues(s), 6);
	sched_collect(s, Q - 1);
	ck_assert_uint_eq(sched_n_queues(s), 6);
	sched_collect(s, Q);
	v = view_of(s);
	ck_assert_uint_eq(v.n, 4);
	ck_assert(!v.seen[0] && v.seen[1] && v.seen[2] && v.seen[3] &&
	          v.seen[4] && !v.seen[5]);
	/* The rest follow idle_reset (the pause: its end). */
	sched_collect(s, reset);
	ck_assert_uint_eq(sched_n_queues(s), 0);

	/* Many credentials, one request each: none left after a second. */
	d1 = sched_dest_get(s, "d1", &no_agg); /* the old one went */
	for (unsigned k = 0; k < 200000; k++) {
		struct sched_queue *q = queue_n(s, d1, 100 + k, &fast);
		struct titem one;

		memset(&one, 0, sizeof(one));
		ck_assert_int_eq(sched_enqueue(s, q, &one.si, reset + k), 0);
		x = sched_next(s, reset + k);
		ck_assert_ptr_eq(x, &one.si);
		sched_done(s, q, reset + k);
		if (k % 1000 == 0)
			sched_collect(s, reset + k);
	}
	ck_assert_uint_le(sched_n_queues(s), 200000);
	sched_collect(s, reset + 200000 + Q);
	ck_assert_uint_eq(sched_n_queues(s), 0);
	sched_free(s);
}
END_TEST

struct page_view {
	uint64_t ids[16];
	unsigned keys[16];
	size_t n;
};

static void page_info(const struct sched_queue_info *qi, void *arg)
{
	struct page_view *pv = arg;

	ck_assert_uint_lt(pv->n, 16);
	pv->ids[pv->n] = qi->id;
	memcpy(&pv->keys[pv->n], qi->key, sizeof(unsigned));
	pv->n++;
}

/* Pages: id order, resumable after a freed queue, holes skipped. */
START_TEST(test_page)
{
	struct sched *s = sched_new(UINT_MAX, UINT_MAX, 10 * SEC);
	struct sched_dest *d = sched_dest_get(s, "d", &no_agg);
	struct sched_limits l = qlim(1000, 1, 10, 1);
	struct sched_queue *q[10];
	struct page_view pv;
	struct titem it[10];
	bool more;

	memset(it, 0, sizeof(it));
	for (unsigned k = 0; k < 10; k++) {
		q[k] = queue_n(s, d, k, &l);
		ck_assert_int_eq(sched_enqueue(s, q[k], &it[k].si, 0), 0);
	}
	memset(&pv, 0, sizeof(pv));
	more = sched_page(s, 0, 4, page_info, &pv);
	ck_assert(more);
	ck_assert_uint_eq(pv.n, 4);
	for (unsigned k = 0; k < 4; k++)
		ck_assert_uint_eq(pv.keys[k], k);
	/* The cursor's queue and the next two go away. */
	for (unsigned k = 3; k < 6; k++)
		sched_remove(s, &it[k].si, 0);
	sched_collect(s, SCHED_QUIET_US);
	ck_assert_uint_eq(sched_n_queues(s), 7);
	more = sched_page(s, pv.ids[3], 4, page_info, &pv);
	ck_assert(!more);
	ck_assert_uint_eq(pv.n, 8);
	for (unsigned k = 4; k < 8; k++)
		ck_assert_uint_eq(pv.keys[k], k + 2);
	/* Exactly the rest: no more. */
	memset(&pv, 0, sizeof(pv));
	ck_assert(!sched_page(s, 0, 7, page_info, &pv));
	ck_assert_uint_eq(pv.n, 7);
	ck_assert(sched_page(s, 0, 6, page_info, &pv));
	/* Past the end: nothing. */
	memset(&pv, 0, sizeof(pv));
	ck_assert(!sched_page(s, UINT64_MAX, 4, page_info, &pv));
	ck_assert_uint_eq(pv.n, 0);
	sched_free(s);
}
END_TEST

/*
 * A queue whose last item is removed after a long wait (paused by a
 * Retry-After, the client gave up) was not idle while it waited: it keeps
 * its learned values and is not collected before idle_reset from then.
 */
START_TEST(test_remove_is_activity)
{
	const int64_t reset = 10 * SEC;
	struct sched *s = sched_new(100, 100, reset);
	struct sched_dest *d = sched_dest_get(s, "d", &no_agg);
	struct sched_limits l = qlim(1, 1, 1, 1);
	struct sched_queue *q = queue_n(s, d, 1, &l);
	struct titem it[2];
	struct sched_item *x;
	struct learned_view v;

	memset(it, 0, sizeof(it));
	sched_learn_queue(s, q, 100, SCHED_RATE_EZTHROTTLE, 0, 0);
	sched_pause(s, q, 30 * SEC, 0);
	ck_assert_int_eq(sched_enqueue(s, q, &it[0].si, 0), 0);
	sched_remove(s, &it[0].si, 29 * SEC);
	sched_collect(s, 30 * SEC);
	ck_assert_uint_eq(sched_n_queues(s), 1);
	ck_assert_int_eq(sched_enqueue(s, q, &it[0].si, 30 * SEC), 0);
	ck_assert_int_eq(sched_enqueue(s, q, &it[1].si, 30 * SEC), 0);
	sched_foreach(s, learned_info, &v);
	ck_assert(v.rps == 100);
	ck_assert_int_eq(next_dispatch(s, 30 * SEC, &x), 30 * SEC);
	sched_done(s, q, 30 * SEC);
	ck_assert_int_eq(next_dispatch(s, 30 * SEC, &x), 30 * SEC + 10000);
	sched_done(s, q, 30 * SEC + 10000);
	sched_collect(s, 30 * SEC + 10000 + reset - 1);
	ck_assert_uint_eq(sched_n_queues(s), 1);
	sched_collect(s, 30 * SEC + 10000 + reset);
	ck_assert_uint_eq(sched_n_queues(s), 0);
	sched_free(s);
}
END_TEST

/* A queue collected and made again starts afresh; many of them. */
START_TEST(test_collect_churn)
{
	enum { N = 2000 };
	static struct titem items[N];
	struct sched *s = sched_new(UINT_MAX, UINT_MAX, SEC);
	struct sched_limits l = qlim(1, 1, 1, 1);
	struct sched_item *x;
	int64_t now = 0;
	unsigned i, round;
	char key[16];

	for (round = 0; round < 5; round++) {
		for (i = 0; i < N; i++) {
			struct sched_dest *d;
			struct sched_queue *q;

			snprintf(key, sizeof(key), "d%u", i % 37);
			d = sched_dest_get(s, key, &no_agg);
			q = queue_n(s, d, i, &l);
			CHECK(sched_enqueue(s, q, &items[i].si, now) == 0);
		}
		CHECK(sched_n_queues(s) == N);
		for (i = 0; i < N; i++) {
			x = sched_next(s, now);
			CHECK(x != NULL);
			sched_done(s, x->q, now);
		}
		CHECK(sched_next(s, now) == NULL);
		now += SEC;
		sched_collect(s, now);
		CHECK(sched_n_queues(s) == 0);
		CHECK(sched_next_wakeup(s) == INT64_MAX);
	}
	sched_free(s);
}
END_TEST

/* sched_free() with items waiting, in flight, paused and on timers. */
START_TEST(test_free_busy)
{
	struct sched *s = sched_new(100, 100, IDLE_RESET);
	struct sched_dest_limits dl = { 1, 1, 0, 1 };
	struct sched_dest *d = sched_dest_get(s, "d", &dl);
	struct sched_limits l = qlim(1, 1, 10, 1);
	struct sched_queue *a = queue_n(s, d, 1, &l);
	struct sched_queue *b = queue_n(s, d, 2, &l);
	struct titem it[4];

	memset(it, 0, sizeof(it));
	ck_assert_int_eq(sched_enqueue(s, a, &it[0].si, 0), 0);
	ck_assert_int_eq(sched_enqueue(s, a, &it[1].si, 0), 0);
	ck_assert_int_eq(sched_enqueue(s, b, &it[2].si, 0), 0);
	ck_assert_int_eq(sched_enqueue(s, b, &it[3].si, 0), 0);
	ck_assert_ptr_nonnull(sched_next(s, 0));
	sched_pause(s, b, 50 * SEC, 0);
	ck_assert_int_ne(sched_next_wakeup(s), INT64_MAX);
	sched_free(s);
	sched_free(NULL);
}
END_TEST

/* A reload's limits apply to the next dispatch and are kept sane. */
START_TEST(test_set_limits)
{
	struct sched *s = sched_new(100, 100, IDLE_RESET);
	struct sched_dest *d = sched_dest_get(s, "d", &no_agg);
	struct sched_limits l = qlim(1, 1, 1, 1);
	struct sched_queue *a = queue_n(s, d, 1, &l);
	struct sched_queue *b = queue_n(s, d, 2, &l);
	struct titem ia[4], ib[4];
	struct sched_item *x;
	int i, na = 0, nb = 0;

	memset(ia, 0, sizeof(ia));
	memset(ib, 0, sizeof(ib));
	for (i = 0; i < 4; i++) {
		ck_assert_int_eq(sched_enqueue(s, a, &ia[i].si, 0), 0);
		ck_assert_int_eq(sched_enqueue(s, b, &ib[i].si, 0), 0);
	}
	ck_assert_ptr_nonnull(sched_next(s, 0));
	ck_assert_ptr_nonnull(sched_next(s, 0));
	sched_done(s, a, 0);
	sched_done(s, b, 0);
	/* Faster at once. */
	l.rps = 10;
	sched_queue_set_limits(s, a, &l, 0);
	ck_assert_int_le(sched_next_wakeup(s), 100001);
	x = sched_next(s, 100001);
	ck_assert_ptr_nonnull(x);
	ck_assert_ptr_eq(x->q, a);
	sched_done(s, a, 100001);
	/* Zeros (not valid limits) are taken as the minimum, as at
	 * creation: a weight of 0 must not let a queue take every turn. */
	memset(&l, 0, sizeof(l));
	l.rps = 1e6;
	l.max_queued = 10;
	sched_queue_set_limits(s, a, &l, 2 * SEC);
	l.weight = 1;
	l.burst = 100;
	l.concurrency = 100;
	sched_queue_set_limits(s, b, &l, 2 * SEC);
	for (i = 0; i < 4 && (x = sched_next(s, 2 * SEC)) != NULL; i++) {
		if (x->q == a)
			na++;
		else
			nb++;
	}
	ck_assert_int_eq(na, 1); /* burst 1 and concurrency 1 */
	ck_assert_int_eq(nb, 3);
	sched_free(s);
}
END_TEST

static Suite *sched_suite(void)
{
	Suite *s = suite_create("sched");
	TCase *tc;

	tc = tcase_create("gcra");
	tcase_set_timeout(tc, 120);
	tcase_add_loop_test(tc, test_gcra_random, 0, GCRA_LOOPS);
	tcase_add_test(tc, test_gcra_backlog_rate);
	tcase_add_loop_test(tc, test_gcra_late, 0, LATE_LOOPS);
	tcase_add_loop_test(tc, test_gcra_late_idle, 0, LATE_LOOPS);
	tcase_add_test(tc, test_aggregate_rps);
	suite_add_tcase(s, tc);

	tc = tcase_create("caps");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_queue_concurrency);
	tcase_add_test(tc, test_aggregate_and_global_caps);
	tcase_add_loop_test(tc, test_caps_random, 0, 8);
	suite_add_tcase(s, tc);

	tc = tcase_create("drr");
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, test_drr_equal, 0, 9);
	tcase_add_loop_test(tc, test_drr_weighted, 0, 4);
	tcase_add_loop_test(tc, test_drr_destinations, 0, 2);
	tcase_add_loop_test(tc, test_drr_light_queue, 0, 2);
	tcase_add_loop_test(tc, test_drr_light_destination, 0, 2);
	suite_add_tcase(s, tc);

	tc = tcase_create("learn");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_learn_queue_rate);
	tcase_add_test(tc, test_learn_queue_random);
	tcase_add_test(tc, test_learn_dest);
	tcase_add_test(tc, test_learn_max_rps);
	tcase_add_test(tc, test_predict_wait);
	tcase_add_test(tc, test_quota_window_end);
	tcase_add_test(tc, test_mode_frugal);
	tcase_add_test(tc, test_mode_adaptive);
	tcase_add_test(tc, test_learn_concurrency);
	tcase_add_test(tc, test_idle_reset);
	suite_add_tcase(s, tc);

	tc = tcase_create("ops");
	tcase_add_test(tc, test_pause);
	tcase_add_test(tc, test_requeue);
	tcase_add_test(tc, test_remove);
	tcase_add_test(tc, test_max_queued);
	tcase_add_test(tc, test_collect_and_foreach);
	tcase_add_test(tc, test_collect_quiet);
	tcase_add_test(tc, test_page);
	tcase_add_test(tc, test_remove_is_activity);
	tcase_add_test(tc, test_collect_churn);
	tcase_add_test(tc, test_free_busy);
	tcase_add_test(tc, test_set_limits);
	suite_add_tcase(s, tc);
	return s;
}

TESTLIB_MAIN(sched_suite)

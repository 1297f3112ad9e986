/*
 * sched_bench.c - what one enqueue + dispatch + done cycle of the scheduler
 * costs as the number of queues grows, with 10^6 items waiting in all.
 *
 *   cc -O2 -D_GNU_SOURCE -iquote src src/sched.c src/sched_limits.c \
 *     src/sched_table.c src/heap.c bench/sched_bench.c -lm -o sched_bench
 *   ./sched_bench [cycles]      (default 4,000,000 measured cycles per row)
 *
 * Two workloads, each in steady state (every completed item is enqueued
 * again at the tail of its queue, so the waiting count stays at 10^6):
 *
 *   open   limits out of the way (rps 1e9, burst and concurrency large):
 *          every queue is always ready; DRR turns the rings; 1,024 items
 *          are in flight and the oldest completes each cycle.
 *   paced  each queue paced at about 10^6 / Q per second of simulated time
 *          (0.5 to 1.5 times that, so the timers do not fire in lockstep),
 *          burst 1: after each dispatch the queue waits in the timer heap
 *          (up to Q timers), and the clock jumps to sched_next_wakeup()
 *          whenever nothing may go, as the engine's loop does.
 *
 * Time is simulated (the scheduler never reads a clock); the figure is
 * wall time per dispatched item, from CLOCK_MONOTONIC around the loop.
 * The cost should stay flat (open) or grow like log Q (paced); beyond
 * that, what grows is cache misses: with 10^5 queues the working set no
 * longer fits in the caches.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sched.h"

#define N_ITEMS 1000000u             /* waiting, in all */
#define N_DESTS 100u
#define IN_FLIGHT 1024u              /* open: items held in flight */
#define ROUNDS 3                     /* best of */

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

struct bench {
	struct sched *s;
	struct sched_item *items;
	struct sched_item *fly[IN_FLIGHT]; /* open: FIFO of in-flight */
	unsigned fly_head, fly_n;
	int64_t now;                 /* simulated us */
	unsigned long empty;         /* sched_next() calls that gave NULL */
};

/* A scheduler with q queues over min(q, 100) destinations, 10^6 waiting. */
static int bench_setup(struct bench *b, unsigned q, int paced)
{
	struct sched_dest_limits dl = { 0, 1, 0, 1 };
	struct sched_limits l = {
		.rps = paced ? 1e6 / q : 1e9,
		.burst = paced ? 1 : 1000000,
		.concurrency = UINT_MAX,
		.max_queued = UINT_MAX,
		.weight = 1,
	};
	unsigned n_dests = q < N_DESTS ? q : N_DESTS;
	struct sched_dest **dests;
	struct sched_queue **queues;
	unsigned i;
	char key[32];

	memset(b, 0, sizeof(*b));
	b->s = sched_new(UINT_MAX, UINT_MAX, 300 * 1000000LL);
	b->items = calloc(N_ITEMS, sizeof(*b->items));
	dests = calloc(n_dests, sizeof(*dests));
	queues = calloc(q, sizeof(*queues));
	if (!b->s || !b->items || !dests || !queues)
		goto fail;
	for (i = 0; i < n_dests; i++) {
		snprintf(key, sizeof(key), "https://api%u.example:443", i);
		dests[i] = sched_dest_get(b->s, key, &dl);
		if (!dests[i])
			goto fail;
	}
	for (i = 0; i < q; i++) {
		if (paced) /* fixed spread: 0.5 .. 1.5 x 10^6 / q per s */
			l.rps = 1e6 / q * (0.5 + (double)((i * 2654435761u) %
			                                  1000) / 1000);
		queues[i] = sched_queue_get(b->s, dests[i % n_dests], &i,
		                            sizeof(i), &l);
		if (!queues[i])
			goto fail;
	}
	/* Round robin over the queues, so each holds 10^6 / q. */
	for (i = 0; i < N_ITEMS; i++) {
		if (sched_enqueue(b->s, queues[i % q], &b->items[i], 0) < 0)
			goto fail;
	}
	b->now = 1;
	free(dests);
	free(queues);
	return 0;
fail:
	free(dests);
	free(queues);
	return -1;
}

static void bench_done(struct bench *b)
{
	sched_free(b->s);
	free(b->items);
}

/* One open cycle: dispatch, complete the oldest in flight, enqueue it. */
static void cycle_open(struct bench *b)
{
	struct sched_item *it, *old;

	b->now++;
	it = sched_next(b->s, b->now);
	if (!it) {
		b->empty++;
		return;
	}
	if (b->fly_n < IN_FLIGHT) {
		b->fly[(b->fly_head + b->fly_n++) % IN_FLIGHT] = it;
		return;
	}
	old = b->fly[b->fly_head];
	b->fly[b->fly_head] = it;
	b->fly_head = (b->fly_head + 1) % IN_FLIGHT;
	sched_done(b->s, old->q, b->now);
	sched_enqueue(b->s, old->q, old, b->now);
}

/* One paced cycle: the next dispatch, waiting for the timer if needed. */
static void cycle_paced(struct bench *b)
{
	struct sched_item *it;

	while (!(it = sched_next(b->s, b->now))) {
		b->empty++; /* then the clock jumps, as the engine sleeps */
		b->now = sched_next_wakeup(b->s);
	}
	sched_done(b->s, it->q, b->now);
	sched_enqueue(b->s, it->q, it, b->now);
}

/* ns per cycle over n cycles, after n / 4 to warm up; best of ROUNDS. */
static double run(unsigned q, int paced, unsigned long n,
                  double *ret_empty)
{
	double best = 0;
	int r;

	for (r = 0; r < ROUNDS; r++) {
		struct bench b;
		unsigned long i;
		int64_t t0, t1;
		double ns;

		if (bench_setup(&b, q, paced) < 0) {
			fprintf(stderr, "sched_bench: out of memory\n");
			exit(1);
		}
		for (i = 0; i < n / 4; i++)
			paced ? cycle_paced(&b) : cycle_open(&b);
		b.empty = 0;
		t0 = now_ns();
		for (i = 0; i < n; i++)
			paced ? cycle_paced(&b) : cycle_open(&b);
		t1 = now_ns();
		ns = (double)(t1 - t0) / (double)n;
		if (r == 0 || ns < best)
			best = ns;
		*ret_empty = (double)b.empty / (double)n;
		if (sched_queued(b.s) + sched_in_flight(b.s) != N_ITEMS) {
			fprintf(stderr, "sched_bench: lost items\n");
			exit(1);
		}
		bench_done(&b);
	}
	return best;
}

int main(int argc, char **argv)
{
	static const unsigned qs[] = { 10, 100, 1000, 10000, 100000 };
	unsigned long n = argc > 1 ? strtoul(argv[1], NULL, 10) : 4000000;
	size_t i;

	printf("sched_bench: %u items waiting, %u destinations at most, "
	       "%lu cycles per row, best of %d\n\n", N_ITEMS, N_DESTS, n,
	       ROUNDS);
	printf("%8s %6s %10s | %10s | %11s %12s\n", "queues", "dests",
	       "waiting/q", "open ns/op", "paced ns/op", "wakeups/op");
	for (i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
		double open_empty, paced_empty;
		double open = run(qs[i], 0, n, &open_empty);
		double paced = run(qs[i], 1, n, &paced_empty);

		printf("%8u %6u %10u | %10.1f | %11.1f %12.3f\n", qs[i],
		       qs[i] < N_DESTS ? qs[i] : N_DESTS, N_ITEMS / qs[i],
		       open, paced, paced_empty);
		if (open_empty > 0) /* the open limits held something back */
			printf("  (open: %.3f empty sched_next() per op)\n",
			       open_empty);
		fflush(stdout);
	}
	return 0;
}

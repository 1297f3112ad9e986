/*
 * engine_verdict.h - what one upstream answer means, decided from its
 * status and header block alone: limits learned, a pause for its queue,
 * and whether its request goes again. Pure: the engine passes the clocks
 * and the randomness in and applies the verdict to its scheduler.
 */
#ifndef SLUICE_ENGINE_VERDICT_H
#define SLUICE_ENGINE_VERDICT_H

#include <stddef.h>
#include <stdint.h>

#include "learn.h"
#include "sched.h"

struct config;
struct retry_rules;

/* What an answer's header block tells its queue, as configured. */
struct verdict_learned {
	double rps;                  /* > 0: learned, clamped; else none */
	enum sched_rate_source rps_source; /* where rps comes from */
	unsigned concurrency;        /* > 0: learned, clamped; else none */
	int64_t pause_ms;            /* > 0: pause the queue this long */
	int64_t retry_after_ms;      /* Retry-After as a delay; -1 absent */
	unsigned bad;                /* unparsable signals, ignored */
	/* The quotas the answer stated, for /queues (learn.h); -1 absent. */
	struct learn_quota requests, tokens;
};

/*
 * Reads the n fields of block ("name\0value\0" pairs) of an answer with
 * this status. wall_ms: Unix milliseconds, for HTTP-dates and resets.
 */
void verdict_learn(const struct config *cfg, const char *block, size_t n,
                   unsigned status, int64_t wall_ms,
                   struct verdict_learned *ret);

/*
 * Whether a request goes again after an attempt answered with status (0:
 * no answer at all) and retry_after_ms (-1: none), attempts_done made so
 * far under rules: the delay in ms, or -1 for no. Never past deadline_ms
 * (same clock as now_ms). random: 64 uniform bits, for the jitter.
 */
int64_t verdict_retry(const struct config *cfg,
                      const struct retry_rules *rules,
                      unsigned attempts_done, unsigned status,
                      int64_t retry_after_ms, int64_t now_ms,
                      int64_t deadline_ms, uint64_t random);

#endif

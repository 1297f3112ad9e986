/*
 * jobrun_int.h - private to the job runner's files (jobrun*.c): its
 * state, and the pending counts every part changes. Nothing else
 * includes it.
 */
#ifndef SLUICE_JOBRUN_INT_H
#define SLUICE_JOBRUN_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct config;
struct delivery;
struct engine;
struct jobs;

struct jobrun {
	/*
	 * Used from several threads (the front's, the store's, the
	 * pager's): read it with jobrun_config(), which holds a reference.
	 */
	const struct config *cfg;
	pthread_mutex_t cfg_lock;
	struct jobs *store;
	struct engine *engine;
	struct delivery *delivery;

	pthread_mutex_t lock;        /* guards what follows */
	pthread_cond_t wake;         /* the pager: room freed, or stopping */
	/* Accepted and not finished, stored or in memory: jobs.max_pending
	 * and jobs.max_pending_bytes (request bodies) cap these. */
	uint64_t pending, pending_bytes;
	/* Of those, the ones the engine holds (in memory): at most the caps,
	 * as new jobs are only accepted below them. */
	uint64_t held, held_bytes;
	/* Unfinished jobs found at start and not loaded yet: row numbers
	 * (page_after, page_last] of the store. */
	int64_t page_after, page_last;
	bool paging;
	bool stopping;
	pthread_t pager;
	bool pager_started;
	atomic_uint_fast64_t succeeded, failed; /* jobs ended */
};

/* The configuration in force, a reference: config_free() it. */
const struct config *jobrun_config(struct jobrun *jr);

/*
 * Counts in one more accepted job of len body bytes, held in memory, or
 * answers why not: -EFBIG alone over jobs.max_pending_bytes, -EDQUOT at
 * jobs.max_pending, -ENOBUFS over jobs.max_pending_bytes.
 */
int jobrun_reserve(struct jobrun *jr, size_t len);

/*
 * A job of len body bytes leaves memory (held) and, when it finished or
 * was never accepted, the pending count too; the pager may have room.
 */
void jobrun_release(struct jobrun *jr, size_t len, bool finished);

#endif

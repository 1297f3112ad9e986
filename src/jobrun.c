/*
 * jobrun.c - the job runner (see jobrun.h): its life, and the counts of
 * pending jobs that jobs.max_pending and max_pending_bytes cap. The
 * rest is by family: the intake in jobrun_intake.c, a job's request and
 * its end in jobrun_request.c, recovery and the pager in
 * jobrun_recover.c, the JSON of GET /jobs/<id> in jobrun_json.c.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "config.h"
#include "jobrun.h"
#include "jobrun_int.h"

struct jobrun *jobrun_new(const struct config *cfg, struct jobs *store,
                          struct engine *e, struct delivery *d)
{
	struct jobrun *jr = calloc(1, sizeof(*jr));

	if (!jr)
		return NULL;
	jr->cfg = config_ref(cfg);
	pthread_mutex_init(&jr->cfg_lock, NULL);
	jr->store = store;
	jr->engine = e;
	jr->delivery = d;
	pthread_mutex_init(&jr->lock, NULL);
	pthread_cond_init(&jr->wake, NULL);
	return jr;
}

const struct config *jobrun_config(struct jobrun *jr)
{
	const struct config *cfg;

	pthread_mutex_lock(&jr->cfg_lock);
	cfg = config_ref(jr->cfg);
	pthread_mutex_unlock(&jr->cfg_lock);
	return cfg;
}

void jobrun_reconfigure(struct jobrun *jr, const struct config *cfg)
{
	const struct config *old;

	config_ref(cfg);
	pthread_mutex_lock(&jr->cfg_lock);
	old = jr->cfg;
	jr->cfg = cfg;
	pthread_mutex_unlock(&jr->cfg_lock);
	config_free(old);
}

void jobrun_stop(struct jobrun *jr)
{
	if (!jr)
		return;
	pthread_mutex_lock(&jr->lock);
	jr->stopping = true;
	pthread_cond_broadcast(&jr->wake);
	pthread_mutex_unlock(&jr->lock);
	if (jr->pager_started)
		pthread_join(jr->pager, NULL);
	jr->pager_started = false;
}

void jobrun_free(struct jobrun *jr)
{
	if (!jr)
		return;
	jobrun_stop(jr);
	pthread_cond_destroy(&jr->wake);
	pthread_mutex_destroy(&jr->lock);
	pthread_mutex_destroy(&jr->cfg_lock);
	config_free(jr->cfg);
	free(jr);
}

void jobrun_pending(struct jobrun *jr, struct jobrun_pending *ret)
{
	pthread_mutex_lock(&jr->lock);
	ret->jobs = jr->pending;
	ret->bytes = jr->pending_bytes;
	ret->held = jr->held;
	ret->held_bytes = jr->held_bytes;
	ret->stored = jr->pending - jr->held;
	ret->succeeded = atomic_load(&jr->succeeded);
	ret->failed = atomic_load(&jr->failed);
	pthread_mutex_unlock(&jr->lock);
}

int jobrun_reserve(struct jobrun *jr, size_t len)
{
	const struct config *cfg = jobrun_config(jr);
	int err = 0;

	if (len > cfg->jobs.max_pending_bytes) {
		config_free(cfg);
		return -EFBIG;
	}
	pthread_mutex_lock(&jr->lock);
	if (jr->pending >= cfg->jobs.max_pending) {
		err = -EDQUOT;
	} else if (jr->pending_bytes > cfg->jobs.max_pending_bytes ||
	           len > cfg->jobs.max_pending_bytes - jr->pending_bytes) {
		err = -ENOBUFS;
	} else {
		jr->pending++;
		jr->pending_bytes += len;
		jr->held++;
		jr->held_bytes += len;
	}
	pthread_mutex_unlock(&jr->lock);
	config_free(cfg);
	return err;
}

void jobrun_release(struct jobrun *jr, size_t len, bool finished)
{
	pthread_mutex_lock(&jr->lock);
	jr->held--;
	jr->held_bytes -= len;
	if (finished) {
		jr->pending--;
		jr->pending_bytes -= len;
	}
	if (jr->paging)
		pthread_cond_signal(&jr->wake);
	pthread_mutex_unlock(&jr->lock);
}

struct jobs *jobrun_store(const struct jobrun *jr)
{
	return jr->store;
}

/*
 * jobrun_recover.c - restart recovery (jobrun_recover() in jobrun.h): the
 * done jobs with deliveries pending go to the delivery thread, the
 * unfinished ones to the engine, a page at a time while they fit in the
 * pending caps; the pager thread loads the rest as earlier jobs finish.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "thread_name.h"
#include "config.h"
#include "delivery.h"
#include "engine.h"
#include "http.h"
#include "jobrun.h"
#include "jobrun_int.h"
#include "jobrun_request.h"
#include "jobs.h"
#include "log.h"
#include "request.h"

/* Stored jobs read per page, so that GET /jobs/<id> is not held long. */
#define PAGE_JOBS 1000

/*
 * A stored job whose request cannot be rebuilt (its URL or header list
 * does not parse) would stay queued, credential and all, forever: it
 * ends failed instead, like any job (scrubbed, its webhooks told; with
 * no webhook to read, stored only), and leaves the pending count. 0 or
 * -ENOMEM (nothing changed: offered again later).
 */
static int end_unreplayable(struct jobrun *jr, struct job *jb,
                            const struct job_spec *s)
{
	static const char code[] = "not_replayable";
	static const char msg[] = "the stored request could not be rebuilt "
	                          "after a restart; it was not sent again";
	struct job_result res = {
		.status_code = 500, .failed = true,
		.error_code = code, .error_message = msg,
		.headers_json = "[[\"content-type\",\"application/json\"]]",
	};
	char *ebody;
	size_t elen;
	int err;

	ebody = http_error_json(code, msg, &elen);
	if (!ebody)
		return -ENOMEM;
	res.body = ebody;
	res.body_len = elen;
	err = job_end(jr, jb->id, s, &res);
	free(ebody);
	if (err == -ENOMEM)
		return err;
	if (err == 0)
		log_warn("stored job cannot be replayed job=%s, failed "
		         "with not_replayable", jb->id);
	else if (err != -ESHUTDOWN)
		log_error("stored job cannot be replayed job=%s and its end "
		          "cannot be stored: %s, skipping", jb->id,
		          strerror(-err));
	pthread_mutex_lock(&jr->lock);
	jr->pending--;
	jr->pending_bytes -= jb->body_len;
	if (jr->paging)
		pthread_cond_signal(&jr->wake);
	pthread_mutex_unlock(&jr->lock);
	return 0;
}

/*
 * A stored unfinished job to the engine, counted as held (pending is
 * counted already); one that cannot be replayed ends failed. 0 or
 * -ENOMEM; *ret_run true when it was submitted.
 */
static int resubmit(struct jobrun *jr, struct job *jb, const char **urls,
                    bool *ret_run)
{
	struct job_spec s;
	struct job_run *jrun;
	struct request *r;
	int err;

	*ret_run = false;
	job_spec_of(jb, urls, &s);
	err = job_request_new(jr, &s, jb->id, &r);
	if (err == -EINVAL)
		return end_unreplayable(jr, jb, &s);
	if (err < 0)
		return err;
	jrun = r->owner_arg;
	pthread_mutex_lock(&jr->lock);
	jr->held++;
	jr->held_bytes += jb->body_len;
	pthread_mutex_unlock(&jr->lock);
	jrun->counted = true;
	if (engine_submit(jr->engine, r) == 0)
		*ret_run = true;
	else
		job_run_release(jrun, false); /* stopping: stays stored */
	request_unref(r);
	return 0;
}

/*
 * A page of stored unfinished jobs: each goes to the engine. An error
 * (out of memory) leaves the counts as they were and the job in the
 * store, offered first by the next page.
 */
static int page_one(void *arg, struct job *jb)
{
	struct jobrun *jr = arg;
	const char **urls = job_webhooks(jb);
	bool run;
	int err = -ENOMEM;

	if (urls)
		err = resubmit(jr, jb, urls, &run);
	free(urls);
	job_free(jb);
	return err;
}

/* Room in memory for a page: jobs and bytes below the caps. */
static bool page_room(struct jobrun *jr, size_t *ret_jobs,
                      uint64_t *ret_bytes)
{
	const struct config *cfg = jobrun_config(jr);
	uint64_t max_jobs = cfg->jobs.max_pending;
	uint64_t max_bytes = cfg->jobs.max_pending_bytes;

	config_free(cfg);
	if (jr->held >= max_jobs || jr->held_bytes >= max_bytes)
		return false;
	*ret_jobs = max_jobs - jr->held;
	if (*ret_jobs > PAGE_JOBS)
		*ret_jobs = PAGE_JOBS;
	*ret_bytes = max_bytes - jr->held_bytes;
	/* Alone, a job bigger than the cap still runs, by itself. */
	if (jr->held == 0) {
		*ret_jobs = 1;
		*ret_bytes = UINT64_MAX;
	}
	return true;
}

/*
 * Loads stored jobs while there is room and some are left. Called with
 * jr->lock held, which it drops around the store's reads (they may
 * block). 0 or the store's error.
 */
static int page_in(struct jobrun *jr)
{
	int64_t after;
	uint64_t bytes;
	size_t n;
	bool done;
	int err = 0;

	while (jr->paging && !jr->stopping && page_room(jr, &n, &bytes)) {
		int64_t from = jr->page_after, last = jr->page_last;

		pthread_mutex_unlock(&jr->lock);
		err = jobs_load_unfinished(jr->store, from, last, n, bytes,
		                           page_one, jr, &after, &done);
		pthread_mutex_lock(&jr->lock);
		jr->page_after = after;
		if (err < 0)
			break;
		if (done)
			jr->paging = false;
		else if (after == from)
			break;  /* the next one does not fit yet: wait */
	}
	return err;
}

/*
 * The pager thread: pages stored jobs in as finished ones make room,
 * until none is left. The store's reads happen here, never on an
 * engine worker's thread.
 */
static void *pager_main(void *arg)
{
	struct jobrun *jr = arg;
	struct timespec ts;
	int err;

	thread_name("sluice-pager");
	pthread_mutex_lock(&jr->lock);
	while (jr->paging && !jr->stopping) {
		err = page_in(jr);
		if (!jr->paging || jr->stopping)
			break;
		if (err < 0) {
			log_warn("cannot load stored jobs: %s, retrying in 1s",
			         strerror(-err));
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec++;
			pthread_cond_timedwait(&jr->wake, &jr->lock, &ts);
		} else {
			pthread_cond_wait(&jr->wake, &jr->lock);
		}
	}
	pthread_mutex_unlock(&jr->lock);
	if (!jr->stopping)
		log_info("every stored job is loaded again");
	return NULL;
}

struct recover_ctx {
	struct jobrun *jr;
	unsigned deliver;
};

static int recover_delivery(void *arg, struct job *jb)
{
	struct recover_ctx *rc = arg;
	const char **urls = job_webhooks(jb);
	struct delivery_spec ds;
	struct delivery_job *dj;

	if (!urls) {
		job_free(jb);
		return -ENOMEM;
	}
	/* Only what scheduling needs: each try reads the job's end. */
	ds = (struct delivery_spec){
		.job_id = jb->id, .stored = true,
		.end.body_len = jb->resp_body_len,
		.quorum = jb->quorum, .finished_ms = jb->finished_ms,
		.urls = urls, .n_urls = jb->n_deliveries,
		.states = jb->deliveries,
	};
	dj = delivery_job_new(&ds);
	if (dj) {
		delivery_submit(rc->jr->delivery, dj);
		rc->deliver++;
	}
	free(urls);
	job_free(jb);
	return 0;
}

int jobrun_recover(struct jobrun *jr, unsigned *ret_run,
                   unsigned *ret_deliver)
{
	struct recover_ctx rc = { .jr = jr };
	uint64_t n = 0, bytes = 0;
	int64_t last = 0;
	int err;

	*ret_run = 0;
	err = jobs_load_deliveries(jr->store, recover_delivery, &rc);
	*ret_deliver = rc.deliver;
	if (err == 0)
		err = jobs_unfinished(jr->store, &n, &bytes, &last);
	if (err < 0)
		return err;
	pthread_mutex_lock(&jr->lock);
	jr->pending += n;
	jr->pending_bytes += bytes;
	jr->page_after = 0;
	jr->page_last = last;
	jr->paging = n > 0;
	/* What fits now, before the listener starts; the rest as room
	 * frees, on the pager thread. */
	err = page_in(jr);
	/* Even after a failed read: the pager tries again every second. */
	if (jr->paging) {
		int perr = -pthread_create(&jr->pager, NULL, pager_main, jr);

		jr->pager_started = perr == 0;
		if (err == 0)
			err = perr;
		if (perr == 0)
			log_info("unfinished jobs over jobs.max_pending or "
			         "max_pending_bytes wait in the store count=%"
			         PRIu64 ", loaded as earlier jobs finish",
			         jr->pending - jr->held);
	}
	pthread_mutex_unlock(&jr->lock);
	*ret_run = n > UINT_MAX ? UINT_MAX : (unsigned)n;
	return err;
}

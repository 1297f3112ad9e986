/*
 * jobs_writer.c - the job store's writer thread (see jobs_writer.h): group
 * commit of queued changes over the write connection, and the checkpoint
 * that truncates the WAL after a scrub.
 */
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "thread_name.h"
#include "clock.h"
#include "jobs_sql.h"
#include "jobs_writer.h"

/*
 * A finished job's request fields are overwritten (secure_delete), but
 * their old bytes stay in the WAL until a checkpoint truncates it: at
 * most one such checkpoint (two fsyncs) per this many ms.
 */
#define SCRUB_CHECKPOINT_MS 1000

struct jobs_writer {
	sqlite3 *wdb;                 /* writer thread only, once started */
	sqlite3_stmt *st[W_COUNT];
	int64_t (*now_ms)(void *arg);
	void *clock_arg;

	pthread_t thread;
	bool started;
	/* Writer thread only: a commit scrubbed request fields whose old
	 * bytes are still in the WAL; when the last checkpoint ran. */
	bool scrub_due;
	int64_t last_checkpoint;      /* monotonic ms */
	pthread_mutex_t lock;         /* guards everything below */
	pthread_cond_t wake;          /* writer: work queued or stopping */
	pthread_cond_t done;          /* callers: a batch finished */
	struct jop *head, **tail;
	bool stopping;
	struct jobs_stats stats;
};

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t wall_now_ms(void *arg)
{
	(void)arg;
	return clock_wall_ms();
}

/* Adds the job unless its key is taken; fatal store errors only. */
static int do_submit(struct jobs_writer *w, struct jop *op, int64_t now)
{
	const struct job_spec *spec = op->spec;
	const unsigned char *id;
	sqlite3_stmt *st;
	int rc, r;

	if (spec->idempotent_key && spec->dedupe) {
		st = w->st[W_FIND_IDEM];
		jobs_sql_bind_bytes(st, 1, spec->cred, spec->cred_len);
		jobs_sql_bind_text(st, 2, spec->dest);
		jobs_sql_bind_text(st, 3, spec->idempotent_key);
		rc = sqlite3_step(st);
		id = rc == SQLITE_ROW ? sqlite3_column_text(st, 0) : NULL;
		if (id) {
			snprintf(op->id, sizeof(op->id), "%s",
			         (const char *)id);
			op->duplicate = true;
		}
		sqlite3_reset(st);
		if (rc == SQLITE_ROW && !id)
			return -ENOMEM;
		if (rc != SQLITE_ROW && rc != SQLITE_DONE)
			return jobs_sql_errno(w->wdb, rc);
		if (op->duplicate)
			return 0;
	}
	st = w->st[W_ADD_JOB];
	jobs_sql_bind_text(st, 1, op->id);
	jobs_sql_bind_bytes(st, 2, spec->cred, spec->cred_len);
	jobs_sql_bind_text(st, 3, spec->idempotent_key);
	sqlite3_bind_int64(st, 4, now);
	jobs_sql_bind_text(st, 5, spec->method);
	jobs_sql_bind_text(st, 6, spec->url);
	jobs_sql_bind_text(st, 7,
	                   spec->headers_json ? spec->headers_json : "[]");
	jobs_sql_bind_bytes(st, 8, spec->body, spec->body_len);
	jobs_sql_bind_text(st, 9, spec->metadata_json);
	sqlite3_bind_int64(st, 10, spec->quorum);
	jobs_sql_bind_text(st, 11, spec->idempotent_key && spec->dedupe ?
	                           spec->dest : NULL);
	r = jobs_sql_step(w->wdb, st);
	st = w->st[W_ADD_DELIVERY];
	for (size_t i = 0; r == 0 && i < spec->n_webhooks; i++) {
		jobs_sql_bind_text(st, 1, op->id);
		jobs_sql_bind_text(st, 2, spec->webhooks[i]);
		sqlite3_bind_int64(st, 3, now);
		r = jobs_sql_step(w->wdb, st);
	}
	return r;
}

/*
 * Applies one change inside the batch's transaction. Returns a fatal
 * store error (the batch fails); the op's own outcome goes to op->err.
 */
static int run_op(struct jobs_writer *w, struct jop *op, int64_t now)
{
	sqlite3_stmt *st = NULL;
	char sql[64];
	int r, rc;

	switch (op->type) {
	case JOP_SUBMIT:
		return do_submit(w, op, now);
	case JOP_RUNNING:
		st = w->st[W_RUNNING];
		jobs_sql_bind_text(st, 1, op->id);
		sqlite3_bind_int64(st, 2, now);
		break;
	case JOP_FINISH:
		st = w->st[W_FINISH_DELIVERIES];
		jobs_sql_bind_text(st, 1, op->id);
		sqlite3_bind_int64(st, 2, now);
		r = jobs_sql_step(w->wdb, st);
		if (r < 0)
			return r;
		st = w->st[W_FINISH];
		jobs_sql_bind_text(st, 1, op->id);
		jobs_sql_bind_text(st, 2,
		                   op->res.failed ? "failed" : "success");
		sqlite3_bind_int(st, 3, op->res.status_code);
		jobs_sql_bind_text(st, 4, op->res.headers_json ?
		                          op->res.headers_json : "[]");
		jobs_sql_bind_bytes(st, 5, op->res.body, op->res.body_len);
		sqlite3_bind_int64(st, 6, now);
		jobs_sql_bind_text(st, 7, op->res.error_code);
		jobs_sql_bind_text(st, 8, op->res.error_message);
		break;
	case JOP_DELIVERY:
		st = w->st[W_DELIVERY];
		jobs_sql_bind_text(st, 1, op->id);
		jobs_sql_bind_text(st, 2, op->url);
		jobs_sql_bind_text(st, 3, op->ok ? "delivered" :
		          op->when == JOBS_GIVE_UP ? "gave_up" : "pending");
		sqlite3_bind_int(st, 4, op->status);
		jobs_sql_bind_text(st, 5, op->ok ? NULL : op->text);
		if (op->ok) {
			sqlite3_bind_null(st, 6);        /* next_at unchanged */
			sqlite3_bind_int64(st, 7, now);
		} else {
			sqlite3_bind_int64(st, 6, op->when);
			sqlite3_bind_null(st, 7);
		}
		break;
	case JOP_PRUNE:
		st = w->st[W_PRUNE];
		sqlite3_bind_int64(st, 1, op->when);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)op->count);
		break;
	case JOP_MAX_PAGES:
		snprintf(sql, sizeof(sql), "PRAGMA max_page_count = %lu",
		         op->count ? op->count : 0xfffffffeUL);
		rc = sqlite3_exec(w->wdb, sql, NULL, NULL, NULL);
		return jobs_sql_errno(w->wdb, rc);
	case JOP_CHECKPOINT:
		w->scrub_due = true;    /* after the commit, at once */
		w->last_checkpoint = INT64_MIN / 2;
		return 0;
	}
	r = jobs_sql_step(w->wdb, st);
	if (r < 0)
		return r;
	op->count = (unsigned long)sqlite3_changes(w->wdb);
	if (op->count == 0 && op->type != JOP_PRUNE)
		op->err = -ENOENT;
	return 0;
}

/* One transaction for the whole batch; on failure everyone gets the error. */
static void run_batch(struct jobs_writer *w, struct jop *batch)
{
	int64_t now = w->now_ms(w->clock_arg);
	uint64_t n = 0, added = 0, dups = 0;
	bool scrubbed = false;
	struct jop *op;
	int r;

	r = jobs_sql_step(w->wdb, w->st[W_BEGIN]);
	for (op = batch; r == 0 && op; op = op->next) {
		r = run_op(w, op, now);
		scrubbed = scrubbed || op->type == JOP_FINISH;
		n++;
		added += op->type == JOP_SUBMIT && !op->duplicate;
		dups += op->duplicate;
	}
	if (r == 0)
		r = jobs_sql_step(w->wdb, w->st[W_COMMIT]);
	if (r < 0) {
		/* SQLite may have rolled back already (FULL, IOERR, ...). */
		if (!sqlite3_get_autocommit(w->wdb))
			jobs_sql_step(w->wdb, w->st[W_ROLLBACK]);
		for (op = batch; op; op = op->next)
			op->err = r;
	}
	if (r == 0 && scrubbed)
		w->scrub_due = true;
	pthread_mutex_lock(&w->lock);
	if (r < 0) {
		w->stats.failed_batches++;
	} else {
		w->stats.transactions++;
		w->stats.ops += n;
		w->stats.jobs += added;
		w->stats.duplicates += dups;
		if (n > w->stats.max_batch)
			w->stats.max_batch = n;
	}
	pthread_mutex_unlock(&w->lock);
}

/* Wakes the batch's blocked callers, then runs its callbacks unlocked. */
static void finish_batch(struct jobs_writer *w, struct jop *batch)
{
	struct jop *op, *next, *async = NULL, **tail = &async;

	pthread_mutex_lock(&w->lock);
	for (op = batch; op; op = next) {
		next = op->next;        /* a woken caller's op is gone */
		if (op->heap) {
			*tail = op;
			tail = &op->next;
		} else {
			op->done = true;
		}
	}
	*tail = NULL;
	pthread_cond_broadcast(&w->done);
	pthread_mutex_unlock(&w->lock);
	for (op = async; op; op = next) {
		next = op->next;
		if (op->cb)
			op->cb(op->cb_arg, op->err, op->err < 0 ? NULL : op->id,
			       op->duplicate);
		else if (op->op_cb)
			op->op_cb(op->cb_arg, op->err);
		free(op);
	}
}

/*
 * Truncates the WAL when scrubbed bytes may be in it and the last try is
 * SCRUB_CHECKPOINT_MS old. A reader in the way (busy) is not waited for:
 * the next try comes a period later. Writer thread, unlocked.
 */
static void scrub_checkpoint(struct jobs_writer *w)
{
	int64_t now = mono_ms();
	int rc;

	if (!w->scrub_due || now - w->last_checkpoint < SCRUB_CHECKPOINT_MS)
		return;
	w->last_checkpoint = now;
	sqlite3_busy_timeout(w->wdb, 0);
	rc = sqlite3_wal_checkpoint_v2(w->wdb, NULL,
	                               SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
	sqlite3_busy_timeout(w->wdb, JOBS_BUSY_TIMEOUT_MS);
	pthread_mutex_lock(&w->lock);
	if (rc == SQLITE_OK) {
		w->scrub_due = false;
		w->stats.checkpoints++;
	} else {
		w->stats.checkpoints_busy++;
	}
	pthread_mutex_unlock(&w->lock);
}

/* Sleeps until work is queued, or a due checkpoint's time comes. */
static void writer_wait(struct jobs_writer *w)
{
	struct timespec ts;
	int64_t at;

	if (!w->scrub_due) {
		pthread_cond_wait(&w->wake, &w->lock);
		return;
	}
	at = w->last_checkpoint + SCRUB_CHECKPOINT_MS;
	if (at <= mono_ms()) {
		pthread_mutex_unlock(&w->lock);
		scrub_checkpoint(w);
		pthread_mutex_lock(&w->lock);
		return;
	}
	ts.tv_sec = at / 1000;
	ts.tv_nsec = at % 1000 * 1000000;
	pthread_cond_timedwait(&w->wake, &w->lock, &ts);
}

static void *writer_main(void *arg)
{
	struct jobs_writer *w = arg;
	struct jop *batch;

	thread_name("sluice-jobs");
	pthread_mutex_lock(&w->lock);
	for (;;) {
		while (!w->head && !w->stopping)
			writer_wait(w);
		if (!w->head)
			break;
		batch = w->head;
		w->head = NULL;
		w->tail = &w->head;
		pthread_mutex_unlock(&w->lock);
		run_batch(w, batch);
		scrub_checkpoint(w);
		finish_batch(w, batch);
		pthread_mutex_lock(&w->lock);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

int jobs_writer_enqueue(struct jobs_writer *w, struct jop *op)
{
	op->next = NULL;
	pthread_mutex_lock(&w->lock);
	if (w->stopping) {
		pthread_mutex_unlock(&w->lock);
		return -ESHUTDOWN;
	}
	*w->tail = op;
	w->tail = &op->next;
	pthread_cond_signal(&w->wake);
	pthread_mutex_unlock(&w->lock);
	return 0;
}

int jobs_writer_run(struct jobs_writer *w, struct jop *op)
{
	/* The writer waiting for itself would never wake. */
	assert(!w->started || !pthread_equal(pthread_self(), w->thread));
	if (jobs_writer_enqueue(w, op) < 0)
		return -ESHUTDOWN;
	pthread_mutex_lock(&w->lock);
	while (!op->done)
		pthread_cond_wait(&w->done, &w->lock);
	pthread_mutex_unlock(&w->lock);
	return op->err;
}

int jobs_writer_open(const char *path, struct jobs_writer **ret_writer)
{
	struct jobs_writer *w = calloc(1, sizeof(*w));
	pthread_condattr_t ca;
	int r;

	if (!w)
		return -ENOMEM;
	w->now_ms = wall_now_ms;
	w->tail = &w->head;
	pthread_mutex_init(&w->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w->wake, &ca);
	pthread_condattr_destroy(&ca);
	pthread_cond_init(&w->done, NULL);
	r = jobs_sql_open_writer(path, &w->wdb);
	if (r == 0)
		r = jobs_sql_prepare(w->wdb, jobs_wsql, W_COUNT, w->st);
	if (r < 0) {
		jobs_writer_free(w);
		return r;
	}
	*ret_writer = w;
	return 0;
}

int jobs_writer_start(struct jobs_writer *w)
{
	int r;

	/*
	 * The WAL may hold request fields scrubbed at open, or frames a
	 * crash left before a finish's checkpoint: truncated at once.
	 */
	w->scrub_due = true;
	w->last_checkpoint = INT64_MIN / 2;
	r = -pthread_create(&w->thread, NULL, writer_main, w);
	if (r == 0)
		w->started = true;
	return r;
}

void jobs_writer_stop(struct jobs_writer *w)
{
	if (!w || !w->started)
		return;
	pthread_mutex_lock(&w->lock);
	w->stopping = true;
	pthread_cond_signal(&w->wake);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL);
	w->started = false;
}

void jobs_writer_free(struct jobs_writer *w)
{
	if (!w)
		return;
	jobs_writer_stop(w);
	for (size_t i = 0; i < W_COUNT; i++)
		sqlite3_finalize(w->st[i]);
	sqlite3_close(w->wdb);
	pthread_cond_destroy(&w->wake);
	pthread_cond_destroy(&w->done);
	pthread_mutex_destroy(&w->lock);
	free(w);
}

int64_t jobs_writer_now(struct jobs_writer *w)
{
	return w->now_ms(w->clock_arg);
}

void jobs_writer_set_clock(struct jobs_writer *w,
                           int64_t (*now_ms)(void *arg), void *arg)
{
	w->now_ms = now_ms;
	w->clock_arg = arg;
}

void jobs_writer_stats(struct jobs_writer *w, struct jobs_stats *ret_stats)
{
	pthread_mutex_lock(&w->lock);
	*ret_stats = w->stats;
	pthread_mutex_unlock(&w->lock);
}

/*
 * jobs_read.c - the job store's reads (see jobs_read.h): a read-only
 * connection for jobs, pages and recovery, and one of its own for a done
 * job's end.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobs_read.h"
#include "jobs_sql.h"

struct jobs_reader {
	sqlite3 *rdb;
	sqlite3_stmt *r[R_COUNT];
	pthread_mutex_t read_lock;    /* guards rdb and r[] */
	/*
	 * A read connection of its own for jobs_get_result(): the delivery
	 * thread reads one row there and never waits behind a page of
	 * recovery on rdb.
	 */
	sqlite3 *res_db;
	sqlite3_stmt *res_st;
	pthread_mutex_t result_lock;  /* guards res_db and res_st */
};

/* Column i as a malloc'd copy with a NUL after it; NULL for SQL NULL. */
static char *col_dup(sqlite3_stmt *st, int i, size_t *ret_len, bool *oom)
{
	const void *p = sqlite3_column_blob(st, i);
	size_t n = (size_t)sqlite3_column_bytes(st, i);
	char *c;

	if (ret_len)
		*ret_len = 0;
	if (sqlite3_column_type(st, i) == SQLITE_NULL)
		return NULL;
	c = malloc(n + 1);
	if (!c) {
		*oom = true;
		return NULL;
	}
	if (n)
		memcpy(c, p, n);
	c[n] = '\0';
	if (ret_len)
		*ret_len = n;
	return c;
}

/*
 * The job at st's current row (JOB_COLUMNS), without its deliveries.
 * NULL on OOM.
 */
static struct job *job_columns(sqlite3_stmt *st)
{
	struct job *jb = calloc(1, sizeof(*jb));
	const char *id, *state, *status;
	bool oom = false;

	if (!jb)
		return NULL;
	/* column_text is NULL only on OOM: every one read is NOT NULL. */
	id = (const char *)sqlite3_column_text(st, 0);
	state = (const char *)sqlite3_column_text(st, 3);
	if (!id || !state) {
		free(jb);
		return NULL;
	}
	snprintf(jb->id, sizeof(jb->id), "%s", id);
	jb->cred = (unsigned char *)col_dup(st, 1, &jb->cred_len, &oom);
	if (jb->cred_len == 0) {
		free(jb->cred);
		jb->cred = NULL;
	}
	jb->idempotent_key = col_dup(st, 2, NULL, &oom);
	jb->state = state[0] == 'd' ? JOB_DONE :
	            state[0] == 'r' ? JOB_RUNNING : JOB_QUEUED;
	status = (const char *)sqlite3_column_text(st, 4);
	jb->success = status && strcmp(status, "success") == 0;
	jb->created_ms = sqlite3_column_int64(st, 5);
	jb->updated_ms = sqlite3_column_int64(st, 6);
	jb->finished_ms = sqlite3_column_int64(st, 7);
	jb->attempts = (unsigned)sqlite3_column_int(st, 8);
	jb->method = col_dup(st, 9, NULL, &oom);
	jb->url = col_dup(st, 10, NULL, &oom);
	jb->headers_json = col_dup(st, 11, NULL, &oom);
	jb->body = col_dup(st, 12, &jb->body_len, &oom);
	jb->metadata_json = col_dup(st, 13, NULL, &oom);
	jb->quorum = (unsigned)sqlite3_column_int(st, 14);
	jb->status_code = sqlite3_column_int(st, 15);
	jb->resp_headers_json = col_dup(st, 16, NULL, &oom);
	jb->resp_body = col_dup(st, 17, &jb->resp_body_len, &oom);
	jb->error_code = col_dup(st, 18, NULL, &oom);
	jb->error_message = col_dup(st, 19, NULL, &oom);
	if (oom) {
		job_free(jb);
		return NULL;
	}
	return jb;
}

/* Appends jb's deliveries, under read_lock. */
static int job_deliveries(struct jobs_reader *rd, struct job *jb)
{
	sqlite3_stmt *ds = rd->r[R_DELIVERIES];
	const char *state;
	bool oom = false;
	size_t n = 0;
	int rc = SQLITE_DONE;

	jobs_sql_bind_text(ds, 1, jb->id);
	while (!oom && (rc = sqlite3_step(ds)) == SQLITE_ROW) {
		struct job_delivery *d;

		d = realloc(jb->deliveries, (n + 1) * sizeof(*d));
		if (!d) {
			oom = true;
			break;
		}
		jb->deliveries = d;
		d = &d[n++];
		jb->n_deliveries = n;
		memset(d, 0, sizeof(*d));
		d->url = col_dup(ds, 0, NULL, &oom);
		state = (const char *)sqlite3_column_text(ds, 1);
		oom = oom || !d->url || !state;
		d->state = !state || state[0] == 'p' ? DELIVERY_PENDING :
		           state[0] == 'd' ? DELIVERY_DELIVERED :
		           DELIVERY_GAVE_UP;
		d->attempts = (unsigned)sqlite3_column_int(ds, 2);
		d->next_at = sqlite3_column_int64(ds, 3);
		d->last_status = sqlite3_column_int(ds, 4);
		d->last_error = col_dup(ds, 5, NULL, &oom);
		d->delivered_at = sqlite3_column_int64(ds, 6);
	}
	sqlite3_reset(ds);
	if (oom || (rc != SQLITE_DONE && rc != SQLITE_ROW))
		return oom ? -ENOMEM : jobs_sql_errno(rd->rdb, rc);
	return 0;
}

/* The job at st's current row (JOB_COLUMNS), with its deliveries. */
static int job_read(struct jobs_reader *rd, sqlite3_stmt *st,
                    struct job **ret_job)
{
	struct job *jb = job_columns(st);
	int r;

	if (!jb)
		return -ENOMEM;
	r = job_deliveries(rd, jb);
	if (r < 0) {
		job_free(jb);
		return r;
	}
	*ret_job = jb;
	return 0;
}

int jobs_reader_get(struct jobs_reader *rd, const char *id,
                    struct job **ret_job)
{
	sqlite3_stmt *st = rd->r[R_JOB];
	struct job *jb = NULL;
	int rc, r;

	if (!id)
		return -ENOENT;
	pthread_mutex_lock(&rd->read_lock);
	r = jobs_sql_step(rd->rdb, rd->r[R_BEGIN]);
	if (r == 0) {
		jobs_sql_bind_text(st, 1, id);
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW)
			r = job_read(rd, st, &jb);
		else
			r = rc == SQLITE_DONE ? -ENOENT :
			    jobs_sql_errno(rd->rdb, rc);
		sqlite3_reset(st);
		jobs_sql_step(rd->rdb, rd->r[R_END]);
	}
	pthread_mutex_unlock(&rd->read_lock);
	if (r == 0)
		*ret_job = jb;
	return r;
}

/* Reads the current row of st into a new job. */
typedef int row_reader_fn(struct jobs_reader *rd, sqlite3_stmt *st,
                          struct job **ret_job);

/*
 * Every row of st, read in one transaction by read, each handed to cb.
 */
static int load_rows(struct jobs_reader *rd, sqlite3_stmt *st,
                     row_reader_fn *read,
                     int (*cb)(void *arg, struct job *jb), void *arg)
{
	struct job *jb;
	int rc = SQLITE_DONE, r;

	pthread_mutex_lock(&rd->read_lock);
	r = jobs_sql_step(rd->rdb, rd->r[R_BEGIN]);
	while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		r = read(rd, st, &jb);
		if (r == 0)
			r = cb(arg, jb);
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = jobs_sql_errno(rd->rdb, rc);
	sqlite3_reset(st);
	jobs_sql_step(rd->rdb, rd->r[R_END]);
	pthread_mutex_unlock(&rd->read_lock);
	return r;
}

int jobs_reader_load_pending(struct jobs_reader *rd,
                             int (*cb)(void *arg, struct job *jb),
                             void *arg)
{
	return load_rows(rd, rd->r[R_PENDING], job_read, cb, arg);
}

int jobs_reader_unfinished(struct jobs_reader *rd, uint64_t *ret_jobs,
                           uint64_t *ret_bytes, int64_t *ret_last)
{
	sqlite3_stmt *st = rd->r[R_UNFINISHED];
	int rc, r;

	pthread_mutex_lock(&rd->read_lock);
	rc = sqlite3_step(st);
	r = rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -EIO
	                             : jobs_sql_errno(rd->rdb, rc);
	if (r == 0) {
		*ret_jobs = (uint64_t)sqlite3_column_int64(st, 0);
		*ret_bytes = (uint64_t)sqlite3_column_double(st, 1);
		*ret_last = sqlite3_column_int64(st, 2);
	}
	sqlite3_reset(st);
	pthread_mutex_unlock(&rd->read_lock);
	return r;
}

int jobs_reader_load_unfinished(struct jobs_reader *rd, int64_t after,
                                int64_t last, size_t max_jobs,
                                uint64_t max_bytes,
                                int (*cb)(void *arg, struct job *jb),
                                void *arg, int64_t *ret_after,
                                bool *ret_done)
{
	sqlite3_stmt *st = rd->r[R_UNFINISHED_PAGE];
	uint64_t bytes = 0, len;
	bool done = false;
	int64_t rowid;
	struct job *jb;
	size_t n = 0;
	int rc, r;

	pthread_mutex_lock(&rd->read_lock);
	r = jobs_sql_step(rd->rdb, rd->r[R_BEGIN]);
	sqlite3_bind_int64(st, 1, after);
	sqlite3_bind_int64(st, 2, last);
	while (r == 0 && n < max_jobs) {
		rc = sqlite3_step(st);
		if (rc != SQLITE_ROW) {
			done = rc == SQLITE_DONE;
			r = jobs_sql_errno(rd->rdb, rc);
			break;
		}
		/* Checked before the body is read. */
		len = (uint64_t)sqlite3_column_int64(st, COL_BODY_LEN);
		if (len > max_bytes - bytes)
			break;
		r = job_read(rd, st, &jb);
		if (r < 0)
			break;
		rowid = sqlite3_column_int64(st, COL_ROWID);
		r = cb(arg, jb);
		/* Past a row only once cb took it: a refused one (out of
		 * memory) comes first in the next page. */
		if (r < 0)
			break;
		after = rowid;
		bytes += len;
		n++;
	}
	sqlite3_reset(st);
	jobs_sql_step(rd->rdb, rd->r[R_END]);
	pthread_mutex_unlock(&rd->read_lock);
	*ret_after = after;
	*ret_done = done;
	return r;
}

/* A row of R_TO_DELIVER, with its deliveries. */
static int delivery_row(struct jobs_reader *rd, sqlite3_stmt *st,
                        struct job **ret_job)
{
	struct job *jb = calloc(1, sizeof(*jb));
	const char *id = (const char *)sqlite3_column_text(st, COL_TD_ID);
	int r;

	if (!jb || !id) {
		free(jb);
		return -ENOMEM;
	}
	snprintf(jb->id, sizeof(jb->id), "%s", id);
	jb->state = JOB_DONE;
	jb->quorum = (unsigned)sqlite3_column_int(st, COL_TD_QUORUM);
	jb->finished_ms = sqlite3_column_int64(st, COL_TD_FINISHED);
	jb->resp_body_len =
		(size_t)sqlite3_column_int64(st, COL_TD_RESP_LEN);
	r = job_deliveries(rd, jb);
	if (r < 0) {
		job_free(jb);
		return r;
	}
	*ret_job = jb;
	return 0;
}

int jobs_reader_load_deliveries(struct jobs_reader *rd,
                                int (*cb)(void *arg, struct job *jb),
                                void *arg)
{
	return load_rows(rd, rd->r[R_TO_DELIVER], delivery_row, cb, arg);
}

int jobs_reader_get_result(struct jobs_reader *rd, const char *id,
                           struct job **ret_job)
{
	sqlite3_stmt *st = rd->res_st;
	struct job *jb = NULL;
	int rc, r;

	if (!id)
		return -ENOENT;
	pthread_mutex_lock(&rd->result_lock);
	jobs_sql_bind_text(st, 1, id);
	/* One statement: its own read transaction. */
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		jb = job_columns(st);
		r = jb ? 0 : -ENOMEM;
	} else {
		r = rc == SQLITE_DONE ? -ENOENT :
		    jobs_sql_errno(rd->res_db, rc);
	}
	sqlite3_reset(st);
	pthread_mutex_unlock(&rd->result_lock);
	if (r == 0)
		*ret_job = jb;
	return r;
}

int jobs_reader_open(const char *path, struct jobs_reader **ret_reader)
{
	struct jobs_reader *rd = calloc(1, sizeof(*rd));
	int r;

	if (!rd)
		return -ENOMEM;
	pthread_mutex_init(&rd->read_lock, NULL);
	pthread_mutex_init(&rd->result_lock, NULL);
	r = jobs_sql_open(path, SQLITE_OPEN_READONLY, &rd->rdb);
	if (r == 0)
		r = jobs_sql_prepare(rd->rdb, jobs_rsql, R_COUNT, rd->r);
	if (r == 0)
		r = jobs_sql_open(path, SQLITE_OPEN_READONLY, &rd->res_db);
	if (r == 0)
		r = jobs_sql_prepare(rd->res_db, &jobs_result_sql, 1,
		                     &rd->res_st);
	if (r < 0) {
		jobs_reader_free(rd);
		return r;
	}
	*ret_reader = rd;
	return 0;
}

void jobs_reader_free(struct jobs_reader *rd)
{
	if (!rd)
		return;
	for (size_t i = 0; i < R_COUNT; i++)
		sqlite3_finalize(rd->r[i]);
	sqlite3_finalize(rd->res_st);
	sqlite3_close(rd->res_db);
	sqlite3_close(rd->rdb);
	pthread_mutex_destroy(&rd->read_lock);
	pthread_mutex_destroy(&rd->result_lock);
	free(rd);
}

/*
 * jobs.c - the durable job store (group commit over SQLite WAL).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "classify.h"
#include "jobs.h"

#define SCHEMA_VERSION 3
#define BUSY_TIMEOUT_MS 5000
/*
 * A finished job's request fields are overwritten (secure_delete), but
 * their old bytes stay in the WAL until a checkpoint truncates it: at
 * most one such checkpoint (two fsyncs) per this many ms.
 */
#define SCRUB_CHECKPOINT_MS 1000

/* An idempotent key is unique within (credential, destination). */
#define IDEM_INDEX_SQL \
	"CREATE UNIQUE INDEX jobs_idem_scope ON jobs (cred_key, idem_dest," \
	" idempotent_key) WHERE idem_dest IS NOT NULL;"

static const char *const schema_sql =
	"CREATE TABLE schema_version (version INTEGER NOT NULL);"
	"CREATE TABLE jobs ("
	" id TEXT PRIMARY KEY,"
	" cred_key BLOB NOT NULL,"           /* x'' without a credential */
	" idempotent_key TEXT,"
	" state TEXT NOT NULL CHECK (state IN ('queued','running','done')),"
	" status TEXT CHECK (status IN ('success','failed')),"
	" created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL,"
	" finished_ms INTEGER,"
	" attempts INTEGER NOT NULL DEFAULT 0,"
	" method TEXT NOT NULL, url TEXT NOT NULL, headers TEXT NOT NULL,"
	" body BLOB NOT NULL, metadata TEXT, quorum INTEGER NOT NULL,"
	" resp_status INTEGER, resp_headers TEXT, resp_body BLOB,"
	" error_code TEXT, error_message TEXT,"
	" idem_dest TEXT);"                  /* NULL: the key dedupes nothing */
	IDEM_INDEX_SQL
	"CREATE INDEX jobs_state ON jobs (state, finished_ms);"
	"CREATE TABLE deliveries ("
	" job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,"
	" url TEXT NOT NULL,"
	" state TEXT NOT NULL DEFAULT 'pending'"
	"  CHECK (state IN ('pending','delivered','gave_up')),"
	" attempts INTEGER NOT NULL DEFAULT 0,"
	" next_at INTEGER NOT NULL,"
	" last_status INTEGER, last_error TEXT, delivered_at INTEGER,"
	" PRIMARY KEY (job_id, url));"
	"CREATE INDEX deliveries_pending ON deliveries (job_id)"
	" WHERE state = 'pending';"
	"INSERT INTO schema_version VALUES (3);";

/* Version 1 to 2: why a failed job failed. */
static const char *const migrate_v2_sql =
	"ALTER TABLE jobs ADD COLUMN error_code TEXT;"
	"ALTER TABLE jobs ADD COLUMN error_message TEXT;"
	"UPDATE schema_version SET version = 2;";

/*
 * Version 2 to 3: keys scoped by (credential, destination), not by
 * credential alone; idem_dest of the keyed jobs is filled in by
 * migrate_v3_dests().
 */
static const char *const migrate_v3_sql =
	"ALTER TABLE jobs ADD COLUMN idem_dest TEXT;"
	"DROP INDEX IF EXISTS jobs_idempotent;"
	IDEM_INDEX_SQL
	"UPDATE schema_version SET version = 3;";

/*
 * What a finished job no longer needs: its request credential and body,
 * and the URL's query, which may hold a key. Set by every finish, and at
 * open on any done job still holding them (stored before the scrub, or
 * by a version 1 or 2 store).
 */
#define SCRUB_SET "headers = '[]', body = x''," \
	" url = CASE WHEN instr(url, '?') > 0" \
	" THEN substr(url, 1, instr(url, '?') - 1) ELSE url END"

/* Through jobs_state: only done jobs are read, only stale ones written. */
static const char *const scrub_done_sql =
	"UPDATE jobs SET " SCRUB_SET " WHERE state = 'done'"
	" AND (headers <> '[]' OR length(body) > 0 OR instr(url, '?') > 0);";

/* Statements of the writer connection, used by the writer thread only. */
enum wstmt { W_BEGIN, W_COMMIT, W_ROLLBACK, W_FIND_IDEM, W_ADD_JOB,
             W_ADD_DELIVERY, W_RUNNING, W_FINISH, W_FINISH_DELIVERIES,
             W_DELIVERY, W_PRUNE, W_COUNT };

static const char *const wsql[W_COUNT] = {
	[W_BEGIN] = "BEGIN IMMEDIATE",
	[W_COMMIT] = "COMMIT",
	[W_ROLLBACK] = "ROLLBACK",
	[W_FIND_IDEM] = "SELECT id FROM jobs WHERE cred_key = ?1"
		" AND idem_dest = ?2 AND idempotent_key = ?3",
	[W_ADD_JOB] = "INSERT INTO jobs (id, cred_key, idempotent_key, state,"
		" created_ms, updated_ms, method, url, headers, body, metadata,"
		" quorum, idem_dest) VALUES (?1, ?2, ?3, 'queued', ?4, ?4, ?5,"
		" ?6, ?7, ?8, ?9, ?10, ?11)",
	[W_ADD_DELIVERY] = "INSERT INTO deliveries (job_id, url, next_at)"
		" VALUES (?1, ?2, ?3)",
	[W_RUNNING] = "UPDATE jobs SET state = 'running', attempts ="
		" attempts + 1, updated_ms = ?2"
		" WHERE id = ?1 AND state <> 'done'",
	/* A finished job never runs again: SCRUB_SET. */
	[W_FINISH] = "UPDATE jobs SET state = 'done', status = ?2,"
		" resp_status = ?3, resp_headers = ?4, resp_body = ?5,"
		" finished_ms = ?6, updated_ms = ?6, error_code = ?7,"
		" error_message = ?8, " SCRUB_SET
		" WHERE id = ?1 AND state <> 'done'",
	[W_FINISH_DELIVERIES] = "UPDATE deliveries SET next_at = ?2"
		" WHERE job_id = ?1 AND state = 'pending' AND attempts = 0",
	[W_DELIVERY] = "UPDATE deliveries SET state = ?3, attempts ="
		" attempts + 1, last_status = ?4, last_error = ?5, next_at ="
		" coalesce(?6, next_at), delivered_at = ?7"
		" WHERE job_id = ?1 AND url = ?2 AND state = 'pending'",
	[W_PRUNE] = "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs"
		" WHERE state = 'done' AND finished_ms < ?1 AND NOT EXISTS"
		" (SELECT 1 FROM deliveries d WHERE d.job_id = jobs.id"
		" AND d.state = 'pending') LIMIT ?2)",
};

#define JOB_COLUMNS "id, cred_key, idempotent_key, state, status," \
	" created_ms, updated_ms, finished_ms, attempts, method, url," \
	" headers, body, metadata, quorum, resp_status, resp_headers," \
	" resp_body, error_code, error_message"

/* Statements of the read connection, under read_lock. */
enum rstmt { R_BEGIN, R_END, R_JOB, R_DELIVERIES, R_PENDING, R_UNFINISHED,
             R_UNFINISHED_PAGE, R_TO_DELIVER, R_COUNT };

/* Columns of R_TO_DELIVER. */
enum { COL_TD_ID, COL_TD_QUORUM, COL_TD_FINISHED, COL_TD_RESP_LEN };

/* Columns of R_UNFINISHED_PAGE after JOB_COLUMNS. */
#define COL_ROWID 20
#define COL_BODY_LEN 21

static const char *const rsql[R_COUNT] = {
	[R_BEGIN] = "BEGIN",
	[R_END] = "COMMIT",
	[R_JOB] = "SELECT " JOB_COLUMNS " FROM jobs WHERE id = ?1",
	[R_DELIVERIES] = "SELECT url, state, attempts, next_at, last_status,"
		" last_error, delivered_at FROM deliveries WHERE job_id = ?1"
		" ORDER BY rowid",
	/* Done jobs are found from their pending deliveries (CROSS JOIN
	 * fixes that order): done jobs kept for days are never scanned. */
	[R_PENDING] = "SELECT " JOB_COLUMNS " FROM jobs"
		" WHERE state IN ('queued', 'running') UNION ALL"
		" SELECT " JOB_COLUMNS " FROM (SELECT DISTINCT job_id FROM"
		" deliveries WHERE state = 'pending') CROSS JOIN jobs"
		" ON id = job_id WHERE state = 'done' ORDER BY created_ms, id",
	/* length() of a BLOB reads no overflow page: no body is loaded. */
	[R_UNFINISHED] = "SELECT count(*), total(length(body)),"
		" coalesce(max(rowid), 0) FROM jobs"
		" WHERE state IN ('queued', 'running')",
	/* A walk of the rowid range: through jobs_state, SQLite sorted the
	 * rows, bodies and all, in a temporary B-tree (all in memory) before
	 * the first one came out. A done row is skipped on its leaf page;
	 * its body (in overflow pages) is not read. */
	[R_UNFINISHED_PAGE] = "SELECT " JOB_COLUMNS ", rowid, length(body)"
		" FROM jobs NOT INDEXED WHERE rowid > ?1 AND rowid <= ?2"
		" AND state IN ('queued', 'running') ORDER BY rowid",
	/* No ORDER BY, for the same reason: each delivery has its own due
	 * time anyway. Only what scheduling needs: columns before the
	 * response body, and its length (from the record header: the body's
	 * overflow pages are not read). */
	[R_TO_DELIVER] = "SELECT id, quorum, finished_ms, length(resp_body)"
		" FROM (SELECT DISTINCT job_id FROM deliveries"
		" WHERE state = 'pending') CROSS JOIN jobs ON id = job_id"
		" WHERE state = 'done'",
};

/*
 * The result connection's one statement, under result_lock: a done job's
 * end, for its webhook payload (JOB_COLUMNS, the request fields scrubbed).
 */
static const char *const result_sql =
	"SELECT " JOB_COLUMNS " FROM jobs WHERE id = ?1 AND state = 'done'";

enum jop_type { JOP_SUBMIT, JOP_RUNNING, JOP_FINISH, JOP_DELIVERY,
                JOP_PRUNE, JOP_MAX_PAGES, JOP_CHECKPOINT };

/*
 * One queued change: on a blocked caller's stack, or malloc'd (heap) for
 * the asynchronous verbs, which copy what they are given behind the op.
 */
struct jop {
	struct jop *next;
	enum jop_type type;
	const struct job_new *jn;
	char id[JOB_ID_LEN + 1];      /* job addressed, or the new job's */
	const char *url, *text;       /* delivery url, error / headers */
	const char *err_code, *err_msg; /* finish of a failed job */
	const void *body;
	size_t len;
	int status;
	bool ok;
	int64_t when;                 /* next_at, prune cut-off */
	unsigned long count;          /* prune limit / pruned; max pages */
	bool heap;                    /* malloc'd: freed after its callback */
	jobs_submit_done *cb;         /* submit's completion, or NULL */
	jobs_op_done *op_cb;          /* other verbs' completion, or NULL */
	void *cb_arg;
	/* Results, written by the writer thread. */
	int err;
	bool duplicate;
	bool done;                    /* under lock; blocking callers */
};

struct jobs {
	int lock_fd;                  /* flock()ed jobs.lock: one daemon */
	sqlite3 *wdb;                 /* writer thread only, once started */
	sqlite3_stmt *w[W_COUNT];
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
	int64_t (*now_ms)(void *arg);
	void *clock_arg;

	pthread_t writer;
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
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A SQLite result code as a negative errno; 0 for OK, ROW and DONE. */
static int sqlite_errno(sqlite3 *db, int rc)
{
	static const int err[] = {
		[SQLITE_PERM] = EACCES, [SQLITE_BUSY] = EBUSY,
		[SQLITE_LOCKED] = EBUSY, [SQLITE_NOMEM] = ENOMEM,
		[SQLITE_READONLY] = EROFS, [SQLITE_FULL] = ENOSPC,
		[SQLITE_TOOBIG] = E2BIG, [SQLITE_CONSTRAINT] = EEXIST,
		[SQLITE_AUTH] = EACCES,
	};
	int e;

	rc &= 0xff;
	if (rc == SQLITE_OK || rc == SQLITE_ROW || rc == SQLITE_DONE)
		return 0;
	if (rc == SQLITE_IOERR || rc == SQLITE_CANTOPEN) {
		e = db ? sqlite3_system_errno(db) : 0;
		return e > 0 ? -e : -EIO;
	}
	return rc < (int)(sizeof(err) / sizeof(err[0])) && err[rc] ?
	       -err[rc] : -EIO;
}

/* Runs a statement that returns no rows (or ignores them), then resets it. */
static int step_reset(sqlite3 *db, sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	return rc == SQLITE_ROW ? 0 : sqlite_errno(db, rc);
}

/* Binds a blob; a NULL pointer would bind SQL NULL, so use "" instead. */
static int bind_bytes(sqlite3_stmt *st, int i, const void *p, size_t n)
{
	return sqlite3_bind_blob64(st, i, n ? p : "", n, SQLITE_STATIC);
}

static int bind_text(sqlite3_stmt *st, int i, const char *s)
{
	return sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
}

/* Adds the job unless its key is taken; fatal store errors only. */
static int do_submit(struct jobs *j, struct jop *op, int64_t now)
{
	const struct job_new *jn = op->jn;
	const unsigned char *id;
	sqlite3_stmt *st;
	int rc, r;

	if (jn->idempotent_key && jn->dedupe) {
		st = j->w[W_FIND_IDEM];
		bind_bytes(st, 1, jn->cred, jn->cred_len);
		bind_text(st, 2, jn->dest);
		bind_text(st, 3, jn->idempotent_key);
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
			return sqlite_errno(j->wdb, rc);
		if (op->duplicate)
			return 0;
	}
	st = j->w[W_ADD_JOB];
	bind_text(st, 1, op->id);
	bind_bytes(st, 2, jn->cred, jn->cred_len);
	bind_text(st, 3, jn->idempotent_key);
	sqlite3_bind_int64(st, 4, now);
	bind_text(st, 5, jn->method);
	bind_text(st, 6, jn->url);
	bind_text(st, 7, jn->headers_json ? jn->headers_json : "[]");
	bind_bytes(st, 8, jn->body, jn->body_len);
	bind_text(st, 9, jn->metadata_json);
	sqlite3_bind_int64(st, 10, jn->quorum);
	bind_text(st, 11, jn->idempotent_key && jn->dedupe ? jn->dest : NULL);
	r = step_reset(j->wdb, st);
	st = j->w[W_ADD_DELIVERY];
	for (size_t i = 0; r == 0 && i < jn->n_webhooks; i++) {
		bind_text(st, 1, op->id);
		bind_text(st, 2, jn->webhooks[i]);
		sqlite3_bind_int64(st, 3, now);
		r = step_reset(j->wdb, st);
	}
	return r;
}

/*
 * Applies one change inside the batch's transaction. Returns a fatal
 * store error (the batch fails); the op's own outcome goes to op->err.
 */
static int run_op(struct jobs *j, struct jop *op, int64_t now)
{
	sqlite3_stmt *st = NULL;
	char sql[64];
	int r, rc;

	switch (op->type) {
	case JOP_SUBMIT:
		return do_submit(j, op, now);
	case JOP_RUNNING:
		st = j->w[W_RUNNING];
		bind_text(st, 1, op->id);
		sqlite3_bind_int64(st, 2, now);
		break;
	case JOP_FINISH:
		st = j->w[W_FINISH_DELIVERIES];
		bind_text(st, 1, op->id);
		sqlite3_bind_int64(st, 2, now);
		r = step_reset(j->wdb, st);
		if (r < 0)
			return r;
		st = j->w[W_FINISH];
		bind_text(st, 1, op->id);
		bind_text(st, 2, op->ok ? "success" : "failed");
		sqlite3_bind_int(st, 3, op->status);
		bind_text(st, 4, op->text ? op->text : "[]");
		bind_bytes(st, 5, op->body, op->len);
		sqlite3_bind_int64(st, 6, now);
		bind_text(st, 7, op->err_code);
		bind_text(st, 8, op->err_msg);
		break;
	case JOP_DELIVERY:
		st = j->w[W_DELIVERY];
		bind_text(st, 1, op->id);
		bind_text(st, 2, op->url);
		bind_text(st, 3, op->ok ? "delivered" :
		          op->when == JOBS_GIVE_UP ? "gave_up" : "pending");
		sqlite3_bind_int(st, 4, op->status);
		bind_text(st, 5, op->ok ? NULL : op->text);
		if (op->ok) {
			sqlite3_bind_null(st, 6);        /* next_at unchanged */
			sqlite3_bind_int64(st, 7, now);
		} else {
			sqlite3_bind_int64(st, 6, op->when);
			sqlite3_bind_null(st, 7);
		}
		break;
	case JOP_PRUNE:
		st = j->w[W_PRUNE];
		sqlite3_bind_int64(st, 1, op->when);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)op->count);
		break;
	case JOP_MAX_PAGES:
		snprintf(sql, sizeof(sql), "PRAGMA max_page_count = %lu",
		         op->count ? op->count : 0xfffffffeUL);
		rc = sqlite3_exec(j->wdb, sql, NULL, NULL, NULL);
		return sqlite_errno(j->wdb, rc);
	case JOP_CHECKPOINT:
		j->scrub_due = true;    /* after the commit, at once */
		j->last_checkpoint = INT64_MIN / 2;
		return 0;
	}
	r = step_reset(j->wdb, st);
	if (r < 0)
		return r;
	op->count = (unsigned long)sqlite3_changes(j->wdb);
	if (op->count == 0 && op->type != JOP_PRUNE)
		op->err = -ENOENT;
	return 0;
}

/* One transaction for the whole batch; on failure everyone gets the error. */
static void run_batch(struct jobs *j, struct jop *batch)
{
	int64_t now = j->now_ms(j->clock_arg);
	uint64_t n = 0, added = 0, dups = 0;
	bool scrubbed = false;
	struct jop *op;
	int r;

	r = step_reset(j->wdb, j->w[W_BEGIN]);
	for (op = batch; r == 0 && op; op = op->next) {
		r = run_op(j, op, now);
		scrubbed = scrubbed || op->type == JOP_FINISH;
		n++;
		added += op->type == JOP_SUBMIT && !op->duplicate;
		dups += op->duplicate;
	}
	if (r == 0)
		r = step_reset(j->wdb, j->w[W_COMMIT]);
	if (r < 0) {
		/* SQLite may have rolled back already (FULL, IOERR, ...). */
		if (!sqlite3_get_autocommit(j->wdb))
			step_reset(j->wdb, j->w[W_ROLLBACK]);
		for (op = batch; op; op = op->next)
			op->err = r;
	}
	if (r == 0 && scrubbed)
		j->scrub_due = true;
	pthread_mutex_lock(&j->lock);
	if (r < 0) {
		j->stats.failed_batches++;
	} else {
		j->stats.transactions++;
		j->stats.ops += n;
		j->stats.jobs += added;
		j->stats.duplicates += dups;
		if (n > j->stats.max_batch)
			j->stats.max_batch = n;
	}
	pthread_mutex_unlock(&j->lock);
}

/* Wakes the batch's blocked callers, then runs its callbacks unlocked. */
static void finish_batch(struct jobs *j, struct jop *batch)
{
	struct jop *op, *next, *async = NULL, **tail = &async;

	pthread_mutex_lock(&j->lock);
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
	pthread_cond_broadcast(&j->done);
	pthread_mutex_unlock(&j->lock);
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
static void scrub_checkpoint(struct jobs *j)
{
	int64_t now = mono_ms();
	int rc;

	if (!j->scrub_due || now - j->last_checkpoint < SCRUB_CHECKPOINT_MS)
		return;
	j->last_checkpoint = now;
	sqlite3_busy_timeout(j->wdb, 0);
	rc = sqlite3_wal_checkpoint_v2(j->wdb, NULL,
	                               SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
	sqlite3_busy_timeout(j->wdb, BUSY_TIMEOUT_MS);
	pthread_mutex_lock(&j->lock);
	if (rc == SQLITE_OK) {
		j->scrub_due = false;
		j->stats.checkpoints++;
	} else {
		j->stats.checkpoints_busy++;
	}
	pthread_mutex_unlock(&j->lock);
}

/* Sleeps until work is queued, or a due checkpoint's time comes. */
static void writer_wait(struct jobs *j)
{
	struct timespec ts;
	int64_t at;

	if (!j->scrub_due) {
		pthread_cond_wait(&j->wake, &j->lock);
		return;
	}
	at = j->last_checkpoint + SCRUB_CHECKPOINT_MS;
	if (at <= mono_ms()) {
		pthread_mutex_unlock(&j->lock);
		scrub_checkpoint(j);
		pthread_mutex_lock(&j->lock);
		return;
	}
	ts.tv_sec = at / 1000;
	ts.tv_nsec = at % 1000 * 1000000;
	pthread_cond_timedwait(&j->wake, &j->lock, &ts);
}

static void *writer_main(void *arg)
{
	struct jobs *j = arg;
	struct jop *batch;

	pthread_mutex_lock(&j->lock);
	for (;;) {
		while (!j->head && !j->stopping)
			writer_wait(j);
		if (!j->head)
			break;
		batch = j->head;
		j->head = NULL;
		j->tail = &j->head;
		pthread_mutex_unlock(&j->lock);
		run_batch(j, batch);
		scrub_checkpoint(j);
		finish_batch(j, batch);
		pthread_mutex_lock(&j->lock);
	}
	pthread_mutex_unlock(&j->lock);
	return NULL;
}

/* Hands op to the writer. */
static int enqueue(struct jobs *j, struct jop *op)
{
	op->next = NULL;
	pthread_mutex_lock(&j->lock);
	if (j->stopping) {
		pthread_mutex_unlock(&j->lock);
		return -ESHUTDOWN;
	}
	*j->tail = op;
	j->tail = &op->next;
	pthread_cond_signal(&j->wake);
	pthread_mutex_unlock(&j->lock);
	return 0;
}

/* Queues op and sleeps until its batch is committed or failed. */
static int run_and_wait(struct jobs *j, struct jop *op)
{
	/* The writer waiting for itself would never wake. */
	assert(!j->started || !pthread_equal(pthread_self(), j->writer));
	if (enqueue(j, op) < 0)
		return -ESHUTDOWN;
	pthread_mutex_lock(&j->lock);
	while (!op->done)
		pthread_cond_wait(&j->done, &j->lock);
	pthread_mutex_unlock(&j->lock);
	return op->err;
}

/* Copies a job id, refusing anything that could not be one. */
static int set_id(struct jop *op, const char *id)
{
	if (!id || strlen(id) != JOB_ID_LEN)
		return -ENOENT;
	memcpy(op->id, id, JOB_ID_LEN + 1);
	return 0;
}

/*
 * "job_", 12 hex digits of unix ms, 32 of random bits. The time prefix
 * keeps new ids at the end of the B-tree indexes: random ids dirtied a
 * page of each index per job and took a batch's WAL from ~40 to ~300 KiB.
 */
static int new_id(int64_t now, char id[JOB_ID_LEN + 1])
{
	unsigned char rnd[16];

	/* Up to 256 bytes: never short, never interrupted (getrandom(2)). */
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		return errno ? -errno : -EIO;
	snprintf(id, 17, "job_%012llx",
	         (unsigned long long)now & 0xffffffffffffULL);
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(id + 16 + 2 * i, 3, "%02x", rnd[i]);
	return 0;
}

/* What the store relies on; the JSON texts are the caller's to check. */
static bool job_new_valid(const struct job_new *jn)
{
	if (!jn->method || !jn->url || jn->n_webhooks == 0 ||
	    (jn->dedupe && !jn->dest) ||
	    jn->quorum < 1 || jn->quorum > jn->n_webhooks ||
	    (jn->body_len && !jn->body) || (jn->cred_len && !jn->cred))
		return false;
	for (size_t i = 0; i < jn->n_webhooks; i++) {
		if (!jn->webhooks[i])
			return false;
		for (size_t k = 0; k < i; k++)
			if (strcmp(jn->webhooks[i], jn->webhooks[k]) == 0)
				return false;
	}
	return true;
}

/* Checks jn and readies op to add it under a fresh id. */
static int submit_init(struct jobs *j, const struct job_new *jn,
                       struct jop *op)
{
	if (!job_new_valid(jn))
		return -EINVAL;
	op->type = JOP_SUBMIT;
	op->jn = jn;
	return new_id(j->now_ms(j->clock_arg), op->id);
}

int jobs_submit_async(struct jobs *j, const struct job_new *jn,
                      jobs_submit_done *done, void *arg)
{
	struct jop *op = calloc(1, sizeof(*op));
	int r;

	if (!op)
		return -ENOMEM;
	op->heap = true;
	op->cb = done;
	op->cb_arg = arg;
	r = submit_init(j, jn, op);
	if (r == 0)
		r = enqueue(j, op);
	if (r < 0)
		free(op);
	return r;
}

int jobs_submit(struct jobs *j, const struct job_new *jn,
                char ret_id[JOB_ID_LEN + 1], bool *ret_duplicate)
{
	struct jop op = { 0 };
	int r = submit_init(j, jn, &op);

	if (r == 0)
		r = run_and_wait(j, &op);
	if (r < 0)
		return r;
	memcpy(ret_id, op.id, JOB_ID_LEN + 1);
	if (ret_duplicate)
		*ret_duplicate = op.duplicate;
	return 0;
}

int jobs_mark_running(struct jobs *j, const char *id)
{
	struct jop op = { .type = JOP_RUNNING };

	return set_id(&op, id) < 0 ? -ENOENT : run_and_wait(j, &op);
}

int jobs_finish(struct jobs *j, const char *id, int status_code,
                const char *headers_json, const void *body, size_t len,
                bool success)
{
	struct jop op = { .type = JOP_FINISH, .status = status_code,
	                  .text = headers_json, .body = body, .len = len,
	                  .ok = success };

	if (len && !body)
		return -EINVAL;
	return set_id(&op, id) < 0 ? -ENOENT : run_and_wait(j, &op);
}

int jobs_delivery_result(struct jobs *j, const char *id, const char *url,
                         bool ok, int status, const char *error,
                         int64_t next_at)
{
	struct jop op = { .type = JOP_DELIVERY, .url = url, .ok = ok,
	                  .status = status, .text = error, .when = next_at };

	if (!url || set_id(&op, id) < 0)
		return -ENOENT;
	return run_and_wait(j, &op);
}

/*
 * A heap op with room for n bytes of copies behind it; *ret_room points
 * there. NULL on OOM.
 */
static struct jop *async_op(enum jop_type type, const char *id, size_t n,
                            jobs_op_done *done, void *arg, char **ret_room)
{
	struct jop *op;

	if (!id || strlen(id) != JOB_ID_LEN)
		return NULL;
	op = calloc(1, sizeof(*op) + n);
	if (!op)
		return NULL;
	op->type = type;
	op->heap = true;
	op->op_cb = done;
	op->cb_arg = arg;
	memcpy(op->id, id, JOB_ID_LEN + 1);
	*ret_room = (char *)(op + 1);
	return op;
}

/* Copies s (may be NULL) to *room, advancing it; returns the copy. */
static const char *room_str(char **room, const char *s)
{
	char *c = *room;
	size_t n;

	if (!s)
		return NULL;
	n = strlen(s) + 1;
	memcpy(c, s, n);
	*room += n;
	return c;
}

static size_t str_size(const char *s)
{
	return s ? strlen(s) + 1 : 0;
}

/* Queues op; frees it when the store takes no more. */
static int enqueue_async(struct jobs *j, struct jop *op)
{
	int r = enqueue(j, op);

	if (r < 0)
		free(op);
	return r;
}

int jobs_mark_running_async(struct jobs *j, const char *id,
                            jobs_op_done *done, void *arg)
{
	char *room;
	struct jop *op = async_op(JOP_RUNNING, id, 0, done, arg, &room);

	if (!op)
		return id && strlen(id) == JOB_ID_LEN ? -ENOMEM : -ENOENT;
	return enqueue_async(j, op);
}

int jobs_finish_async(struct jobs *j, const char *id,
                      const struct job_result *res, jobs_op_done *done,
                      void *arg)
{
	size_t n = str_size(res->headers_json) + str_size(res->error_code) +
	           str_size(res->error_message) + res->body_len;
	char *room;
	struct jop *op;

	if (res->body_len && !res->body)
		return -EINVAL;
	op = async_op(JOP_FINISH, id, n, done, arg, &room);
	if (!op)
		return id && strlen(id) == JOB_ID_LEN ? -ENOMEM : -ENOENT;
	op->status = res->status_code;
	op->ok = res->success;
	op->text = room_str(&room, res->headers_json);
	op->err_code = room_str(&room, res->error_code);
	op->err_msg = room_str(&room, res->error_message);
	if (res->body_len)
		memcpy(room, res->body, res->body_len);
	op->body = room;
	op->len = res->body_len;
	return enqueue_async(j, op);
}

int jobs_delivery_result_async(struct jobs *j, const char *id,
                               const char *url, bool ok, int status,
                               const char *error, int64_t next_at,
                               jobs_op_done *done, void *arg)
{
	char *room;
	struct jop *op;

	if (!url)
		return -ENOENT;
	op = async_op(JOP_DELIVERY, id, str_size(url) + str_size(error),
	              done, arg, &room);
	if (!op)
		return id && strlen(id) == JOB_ID_LEN ? -ENOMEM : -ENOENT;
	op->url = room_str(&room, url);
	op->text = room_str(&room, error);
	op->ok = ok;
	op->status = status;
	op->when = next_at;
	return enqueue_async(j, op);
}

int jobs_prune(struct jobs *j, int64_t now_ms, int64_t retain_ms,
               unsigned *ret_pruned)
{
	struct jop op = { .type = JOP_PRUNE, .when = now_ms - retain_ms,
	                  .count = JOBS_PRUNE_MAX };
	int r = run_and_wait(j, &op);

	if (r < 0)
		return r;
	if (ret_pruned)
		*ret_pruned = (unsigned)op.count;
	return 0;
}

int jobs_checkpoint(struct jobs *j)
{
	struct jop op = { .type = JOP_CHECKPOINT };

	return run_and_wait(j, &op);
}

int jobs_set_max_pages(struct jobs *j, unsigned long pages)
{
	struct jop op = { .type = JOP_MAX_PAGES, .count = pages };

	return run_and_wait(j, &op);
}

void jobs_stats(struct jobs *j, struct jobs_stats *ret_stats)
{
	pthread_mutex_lock(&j->lock);
	*ret_stats = j->stats;
	pthread_mutex_unlock(&j->lock);
}

void jobs_set_clock(struct jobs *j, int64_t (*now_ms)(void *arg), void *arg)
{
	j->now_ms = now_ms;
	j->clock_arg = arg;
}

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
static int job_deliveries(struct jobs *j, struct job *jb)
{
	sqlite3_stmt *ds = j->r[R_DELIVERIES];
	const char *state;
	bool oom = false;
	size_t n = 0;
	int rc = SQLITE_DONE;

	bind_text(ds, 1, jb->id);
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
		return oom ? -ENOMEM : sqlite_errno(j->rdb, rc);
	return 0;
}

/* The job at st's current row (JOB_COLUMNS), with its deliveries. */
static int job_read(struct jobs *j, sqlite3_stmt *st, struct job **ret_job)
{
	struct job *jb = job_columns(st);
	int r;

	if (!jb)
		return -ENOMEM;
	r = job_deliveries(j, jb);
	if (r < 0) {
		job_free(jb);
		return r;
	}
	*ret_job = jb;
	return 0;
}

int jobs_get(struct jobs *j, const char *id, struct job **ret_job)
{
	sqlite3_stmt *st = j->r[R_JOB];
	struct job *jb = NULL;
	int rc, r;

	if (!id)
		return -ENOENT;
	pthread_mutex_lock(&j->read_lock);
	r = step_reset(j->rdb, j->r[R_BEGIN]);
	if (r == 0) {
		bind_text(st, 1, id);
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW)
			r = job_read(j, st, &jb);
		else
			r = rc == SQLITE_DONE ? -ENOENT :
			    sqlite_errno(j->rdb, rc);
		sqlite3_reset(st);
		step_reset(j->rdb, j->r[R_END]);
	}
	pthread_mutex_unlock(&j->read_lock);
	if (r == 0)
		*ret_job = jb;
	return r;
}

/* Reads the current row of st into a new job. */
typedef int row_reader_fn(struct jobs *j, sqlite3_stmt *st,
                          struct job **ret_job);

/*
 * Every row of st, read in one transaction by read, each handed to cb.
 */
static int load_rows(struct jobs *j, sqlite3_stmt *st, row_reader_fn *read,
                     int (*cb)(void *arg, struct job *jb), void *arg)
{
	struct job *jb;
	int rc = SQLITE_DONE, r;

	pthread_mutex_lock(&j->read_lock);
	r = step_reset(j->rdb, j->r[R_BEGIN]);
	while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		r = read(j, st, &jb);
		if (r == 0)
			r = cb(arg, jb);
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = sqlite_errno(j->rdb, rc);
	sqlite3_reset(st);
	step_reset(j->rdb, j->r[R_END]);
	pthread_mutex_unlock(&j->read_lock);
	return r;
}

int jobs_load_pending(struct jobs *j, int (*cb)(void *arg, struct job *jb),
                      void *arg)
{
	return load_rows(j, j->r[R_PENDING], job_read, cb, arg);
}

/*
 * The destination ("scheme://host:port", as the front's queues name it)
 * of every keyed job of a version 2 store: its key then dedupes within
 * (credential, destination) as a new job's does. A URL that does not
 * parse keeps NULL: its key dedupes nothing.
 */
static int migrate_v3_dests(sqlite3 *db)
{
	sqlite3_stmt *sel = NULL, *upd = NULL;
	char dest[DEST_HOST_MAX + 32];
	struct target t;
	int rc, r;

	rc = sqlite3_prepare_v2(db, "SELECT rowid, url FROM jobs"
	                        " WHERE idempotent_key IS NOT NULL", -1,
	                        &sel, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(db, "UPDATE jobs SET idem_dest = ?2"
		                        " WHERE rowid = ?1", -1, &upd, NULL);
	r = sqlite_errno(db, rc);
	while (r == 0 && (rc = sqlite3_step(sel)) == SQLITE_ROW) {
		const char *url = (const char *)sqlite3_column_text(sel, 1);

		if (!url || target_parse(url, &t) != TARGET_OK ||
		    destination_format(&t.dest, dest, sizeof(dest)) < 0)
			continue;
		sqlite3_bind_int64(upd, 1, sqlite3_column_int64(sel, 0));
		bind_text(upd, 2, dest);
		r = step_reset(db, upd);
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = sqlite_errno(db, rc);
	sqlite3_finalize(upd);
	sqlite3_finalize(sel);
	return r;
}

int jobs_unfinished(struct jobs *j, uint64_t *ret_jobs, uint64_t *ret_bytes,
                    int64_t *ret_last)
{
	sqlite3_stmt *st = j->r[R_UNFINISHED];
	int rc, r;

	pthread_mutex_lock(&j->read_lock);
	rc = sqlite3_step(st);
	r = rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -EIO
	                             : sqlite_errno(j->rdb, rc);
	if (r == 0) {
		*ret_jobs = (uint64_t)sqlite3_column_int64(st, 0);
		*ret_bytes = (uint64_t)sqlite3_column_double(st, 1);
		*ret_last = sqlite3_column_int64(st, 2);
	}
	sqlite3_reset(st);
	pthread_mutex_unlock(&j->read_lock);
	return r;
}

int jobs_load_unfinished(struct jobs *j, int64_t after, int64_t last,
                         size_t max_jobs, uint64_t max_bytes,
                         int (*cb)(void *arg, struct job *jb), void *arg,
                         int64_t *ret_after, bool *ret_done)
{
	sqlite3_stmt *st = j->r[R_UNFINISHED_PAGE];
	uint64_t bytes = 0, len;
	bool done = false;
	int64_t rowid;
	struct job *jb;
	size_t n = 0;
	int rc, r;

	pthread_mutex_lock(&j->read_lock);
	r = step_reset(j->rdb, j->r[R_BEGIN]);
	sqlite3_bind_int64(st, 1, after);
	sqlite3_bind_int64(st, 2, last);
	while (r == 0 && n < max_jobs) {
		rc = sqlite3_step(st);
		if (rc != SQLITE_ROW) {
			done = rc == SQLITE_DONE;
			r = sqlite_errno(j->rdb, rc);
			break;
		}
		/* Checked before the body is read. */
		len = (uint64_t)sqlite3_column_int64(st, COL_BODY_LEN);
		if (len > max_bytes - bytes)
			break;
		r = job_read(j, st, &jb);
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
	step_reset(j->rdb, j->r[R_END]);
	pthread_mutex_unlock(&j->read_lock);
	*ret_after = after;
	*ret_done = done;
	return r;
}

/* A row of R_TO_DELIVER, with its deliveries. */
static int delivery_row(struct jobs *j, sqlite3_stmt *st,
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
	r = job_deliveries(j, jb);
	if (r < 0) {
		job_free(jb);
		return r;
	}
	*ret_job = jb;
	return 0;
}

int jobs_load_deliveries(struct jobs *j, int (*cb)(void *arg, struct job *jb),
                         void *arg)
{
	return load_rows(j, j->r[R_TO_DELIVER], delivery_row, cb, arg);
}

int jobs_get_result(struct jobs *j, const char *id, struct job **ret_job)
{
	sqlite3_stmt *st = j->res_st;
	struct job *jb = NULL;
	int rc, r;

	if (!id)
		return -ENOENT;
	pthread_mutex_lock(&j->result_lock);
	bind_text(st, 1, id);
	/* One statement: its own read transaction. */
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		jb = job_columns(st);
		r = jb ? 0 : -ENOMEM;
	} else {
		r = rc == SQLITE_DONE ? -ENOENT : sqlite_errno(j->res_db, rc);
	}
	sqlite3_reset(st);
	pthread_mutex_unlock(&j->result_lock);
	if (r == 0)
		*ret_job = jb;
	return r;
}

/*
 * Creates the schema in a new store, or checks an existing one's version,
 * migrates it, and scrubs its done jobs (secure_delete is on).
 */
static int schema_init(sqlite3 *db)
{
	sqlite3_stmt *st;
	int rc, r, version = 0;

	r = sqlite_errno(db, sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL,
	                                  NULL));
	if (r < 0)
		return r;
	rc = sqlite3_prepare_v2(db, "SELECT version FROM schema_version", -1,
	                        &st, NULL);
	if (rc == SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW)
			version = sqlite3_column_int(st, 0);
		sqlite3_finalize(st);
		/* Later versions migrate here, one step per version. */
		r = version >= 1 && version <= SCHEMA_VERSION ? 0 : -EPROTO;
		if (r == 0 && version < 2)
			r = sqlite_errno(db, sqlite3_exec(db, migrate_v2_sql,
			                                  NULL, NULL, NULL));
		if (r == 0 && version < 3)
			r = sqlite_errno(db, sqlite3_exec(db, migrate_v3_sql,
			                                  NULL, NULL, NULL));
		if (r == 0 && version < 3)
			r = migrate_v3_dests(db);
		if (r == 0)
			r = sqlite_errno(db, sqlite3_exec(db, scrub_done_sql,
			                                  NULL, NULL, NULL));
	} else {
		r = sqlite_errno(db, sqlite3_exec(db, schema_sql, NULL, NULL,
		                                  NULL));
	}
	if (r == 0)
		r = sqlite_errno(db, sqlite3_exec(db, "COMMIT", NULL, NULL,
		                                  NULL));
	if (r < 0)
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return r;
}

static int open_db(const char *path, int flags, sqlite3 **ret_db)
{
	sqlite3 *db = NULL;
	int rc = sqlite3_open_v2(path, &db, flags | SQLITE_OPEN_NOMUTEX, NULL);
	int r = sqlite_errno(db, rc);

	if (r == 0)
		r = sqlite_errno(db, sqlite3_busy_timeout(db, BUSY_TIMEOUT_MS));
	if (r < 0) {
		sqlite3_close(db);
		return r;
	}
	*ret_db = db;
	return 0;
}

/* The writer connection: WAL, synchronous=FULL, schema. */
static int open_writer(struct jobs *j, const char *path)
{
	sqlite3_stmt *st;
	bool wal = false;
	int r;

	r = open_db(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, &j->wdb);
	if (r < 0)
		return r;
	r = sqlite_errno(j->wdb, sqlite3_prepare_v2(j->wdb,
		"PRAGMA journal_mode = WAL", -1, &st, NULL));
	if (r < 0)
		return r;
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
		wal = strcmp((const char *)sqlite3_column_text(st, 0),
		             "wal") == 0;
	r = sqlite_errno(j->wdb, sqlite3_finalize(st));
	if (r == 0 && !wal)
		r = -EIO;
	if (r == 0)
		r = sqlite_errno(j->wdb, sqlite3_exec(j->wdb,
			"PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;"
			/* Freed bytes (a scrubbed job, a pruned one) are
			 * zeroed, not left in free space. */
			" PRAGMA secure_delete = ON",
			NULL, NULL, NULL));
	return r < 0 ? r : schema_init(j->wdb);
}

static int prepare_all(sqlite3 *db, const char *const *sql, size_t n,
                       sqlite3_stmt **st)
{
	for (size_t i = 0; i < n; i++) {
		int rc = sqlite3_prepare_v3(db, sql[i], -1,
		                            SQLITE_PREPARE_PERSISTENT, &st[i],
		                            NULL);
		if (rc != SQLITE_OK)
			return sqlite_errno(db, rc);
	}
	return 0;
}

/* Creates path mode 0600 (or makes it so): it holds credentials. */
static int create_private(const char *state_dir, const char *path)
{
	int fd;

	if (mkdir(state_dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	if (fchmod(fd, 0600) < 0) {
		int e = errno;

		close(fd);
		return -e;
	}
	close(fd);
	return 0;
}

/*
 * One daemon per store: two would both resume every unfinished job and
 * deliver it twice. flock() goes with the process, so a crash or kill -9
 * never leaves the lock held.
 */
static int lock_store(struct jobs *j, const char *state_dir)
{
	char path[4096];

	if (snprintf(path, sizeof(path), "%s/jobs.lock", state_dir) >=
	    (int)sizeof(path))
		return -ENAMETOOLONG;
	j->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (j->lock_fd < 0)
		return -errno;
	if (flock(j->lock_fd, LOCK_EX | LOCK_NB) < 0)
		return errno == EWOULDBLOCK ? -EBUSY : -errno;
	return 0;
}

struct jobs *jobs_open(const char *state_dir, int *ret_err)
{
	pthread_condattr_t ca;
	struct jobs *j;
	char path[4096];
	int r;

	j = calloc(1, sizeof(*j));
	if (!j) {
		*ret_err = -ENOMEM;
		return NULL;
	}
	j->lock_fd = -1;
	j->now_ms = wall_now_ms;
	j->tail = &j->head;
	pthread_mutex_init(&j->lock, NULL);
	pthread_mutex_init(&j->read_lock, NULL);
	pthread_mutex_init(&j->result_lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&j->wake, &ca);
	pthread_condattr_destroy(&ca);
	pthread_cond_init(&j->done, NULL);
	r = snprintf(path, sizeof(path), "%s/jobs.db", state_dir) <
	    (int)sizeof(path) ? 0 : -ENAMETOOLONG;
	if (r == 0)
		r = create_private(state_dir, path);
	if (r == 0)
		r = lock_store(j, state_dir);
	if (r == 0)
		r = open_writer(j, path);
	if (r == 0)
		r = open_db(path, SQLITE_OPEN_READONLY, &j->rdb);
	if (r == 0)
		r = prepare_all(j->wdb, wsql, W_COUNT, j->w);
	if (r == 0)
		r = prepare_all(j->rdb, rsql, R_COUNT, j->r);
	if (r == 0)
		r = open_db(path, SQLITE_OPEN_READONLY, &j->res_db);
	if (r == 0)
		r = prepare_all(j->res_db, &result_sql, 1, &j->res_st);
	/*
	 * The WAL may hold request fields scrubbed at open, or frames a
	 * crash left before a finish's checkpoint: truncated at once.
	 */
	j->scrub_due = true;
	j->last_checkpoint = INT64_MIN / 2;
	if (r == 0)
		r = -pthread_create(&j->writer, NULL, writer_main, j);
	if (r < 0) {
		jobs_free(j);
		*ret_err = r;
		return NULL;
	}
	j->started = true;
	return j;
}

void jobs_shutdown(struct jobs *j)
{
	if (!j || !j->started)
		return;
	pthread_mutex_lock(&j->lock);
	j->stopping = true;
	pthread_cond_signal(&j->wake);
	pthread_mutex_unlock(&j->lock);
	pthread_join(j->writer, NULL);
	j->started = false;
}

void jobs_free(struct jobs *j)
{
	if (!j)
		return;
	jobs_shutdown(j);
	for (size_t i = 0; i < R_COUNT; i++)
		sqlite3_finalize(j->r[i]);
	for (size_t i = 0; i < W_COUNT; i++)
		sqlite3_finalize(j->w[i]);
	sqlite3_finalize(j->res_st);
	/* The last connection closed checkpoints and removes the WAL. */
	sqlite3_close(j->res_db);
	sqlite3_close(j->rdb);
	sqlite3_close(j->wdb);
	pthread_cond_destroy(&j->wake);
	pthread_cond_destroy(&j->done);
	pthread_mutex_destroy(&j->read_lock);
	pthread_mutex_destroy(&j->result_lock);
	pthread_mutex_destroy(&j->lock);
	if (j->lock_fd >= 0)
		close(j->lock_fd);
	free(j);
}

void job_free(struct job *jb)
{
	if (!jb)
		return;
	for (size_t i = 0; i < jb->n_deliveries; i++) {
		free(jb->deliveries[i].url);
		free(jb->deliveries[i].last_error);
	}
	free(jb->deliveries);
	free(jb->cred);
	free(jb->idempotent_key);
	free(jb->method);
	free(jb->url);
	free(jb->headers_json);
	free(jb->body);
	free(jb->metadata_json);
	free(jb->resp_headers_json);
	free(jb->resp_body);
	free(jb->error_code);
	free(jb->error_message);
	free(jb);
}

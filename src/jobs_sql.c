/*
 * jobs_sql.c - the job store's SQL: schema, migrations, the scrub of done
 * jobs, every statement's text, and the connections' setup.
 */
#include <errno.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <string.h>

#include "classify.h"
#include "jobs_sql.h"

#define SCHEMA_VERSION 3

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

const char *const jobs_wsql[W_COUNT] = {
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

const char *const jobs_rsql[R_COUNT] = {
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

const char *const jobs_result_sql =
	"SELECT " JOB_COLUMNS " FROM jobs WHERE id = ?1 AND state = 'done'";

/* A SQLite result code as a negative errno; 0 for OK, ROW and DONE. */
int jobs_sql_errno(sqlite3 *db, int rc)
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
int jobs_sql_step(sqlite3 *db, sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	return rc == SQLITE_ROW ? 0 : jobs_sql_errno(db, rc);
}

/* Binds a blob; a NULL pointer would bind SQL NULL, so use "" instead. */
int jobs_sql_bind_bytes(sqlite3_stmt *st, int i, const void *p,
                        size_t n)
{
	return sqlite3_bind_blob64(st, i, n ? p : "", n, SQLITE_STATIC);
}

int jobs_sql_bind_text(sqlite3_stmt *st, int i, const char *s)
{
	return sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
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
	r = jobs_sql_errno(db, rc);
	while (r == 0 && (rc = sqlite3_step(sel)) == SQLITE_ROW) {
		const char *url = (const char *)sqlite3_column_text(sel, 1);

		if (!url || target_parse(url, &t) != TARGET_OK ||
		    destination_format(&t.dest, dest, sizeof(dest)) < 0)
			continue;
		sqlite3_bind_int64(upd, 1, sqlite3_column_int64(sel, 0));
		jobs_sql_bind_text(upd, 2, dest);
		r = jobs_sql_step(db, upd);
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = jobs_sql_errno(db, rc);
	sqlite3_finalize(upd);
	sqlite3_finalize(sel);
	return r;
}

/* Runs sql (any number of statements) on db; 0 or a negative errno. */
static int exec_sql(sqlite3 *db, const char *sql)
{
	return jobs_sql_errno(db, sqlite3_exec(db, sql, NULL, NULL, NULL));
}

/*
 * Creates the schema in a new store, or checks an existing one's version,
 * migrates it, and scrubs its done jobs (secure_delete is on).
 */
static int schema_init(sqlite3 *db)
{
	sqlite3_stmt *st;
	int rc, r, version = 0;

	r = exec_sql(db, "BEGIN IMMEDIATE");
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
			r = exec_sql(db, migrate_v2_sql);
		if (r == 0 && version < 3)
			r = exec_sql(db, migrate_v3_sql);
		if (r == 0 && version < 3)
			r = migrate_v3_dests(db);
		if (r == 0)
			r = exec_sql(db, scrub_done_sql);
	} else {
		r = exec_sql(db, schema_sql);
	}
	if (r == 0)
		r = exec_sql(db, "COMMIT");
	if (r < 0)
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return r;
}

int jobs_sql_open(const char *path, int flags, sqlite3 **ret_db)
{
	sqlite3 *db = NULL;
	int rc = sqlite3_open_v2(path, &db, flags | SQLITE_OPEN_NOMUTEX, NULL);
	int r = jobs_sql_errno(db, rc);

	if (r == 0)
		r = jobs_sql_errno(db, sqlite3_busy_timeout(
			db, JOBS_BUSY_TIMEOUT_MS));
	if (r < 0) {
		sqlite3_close(db);
		return r;
	}
	*ret_db = db;
	return 0;
}

/* The writer connection: WAL, synchronous=FULL, schema. */
static int writer_setup(sqlite3 *db)
{
	sqlite3_stmt *st;
	bool wal = false;
	int r;

	r = jobs_sql_errno(db, sqlite3_prepare_v2(db,
		"PRAGMA journal_mode = WAL", -1, &st, NULL));
	if (r < 0)
		return r;
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
		wal = strcmp((const char *)sqlite3_column_text(st, 0),
		             "wal") == 0;
	r = jobs_sql_errno(db, sqlite3_finalize(st));
	if (r == 0 && !wal)
		r = -EIO;
	if (r == 0)
		r = jobs_sql_errno(db, sqlite3_exec(db,
			"PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;"
			/* Freed bytes (a scrubbed job, a pruned one) are
			 * zeroed, not left in free space. */
			" PRAGMA secure_delete = ON",
			NULL, NULL, NULL));
	return r < 0 ? r : schema_init(db);
}

int jobs_sql_open_writer(const char *path, sqlite3 **ret_db)
{
	sqlite3 *db;
	int r;

	r = jobs_sql_open(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
	                  &db);
	if (r < 0)
		return r;
	r = writer_setup(db);
	if (r < 0) {
		sqlite3_close(db);
		return r;
	}
	*ret_db = db;
	return 0;
}

int jobs_sql_prepare(sqlite3 *db, const char *const *sql, size_t n,
                     sqlite3_stmt **st)
{
	for (size_t i = 0; i < n; i++) {
		int rc = sqlite3_prepare_v3(db, sql[i], -1,
		                            SQLITE_PREPARE_PERSISTENT, &st[i],
		                            NULL);
		if (rc != SQLITE_OK)
			return jobs_sql_errno(db, rc);
	}
	return 0;
}

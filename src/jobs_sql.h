/*
 * jobs_sql.h - the job store's SQL (see jobs.h): the text of every
 * statement, the schema with its migrations and the scrub of done jobs,
 * and small SQLite helpers. Shared by the writer (jobs_writer.c) and the
 * reads (jobs_read.c); nothing outside the store includes it.
 */
#ifndef SLUICE_JOBS_SQL_H
#define SLUICE_JOBS_SQL_H

#include <sqlite3.h>
#include <stddef.h>

#define JOBS_BUSY_TIMEOUT_MS 5000

/* Statements of the writer connection, used by the writer thread only. */
enum wstmt { W_BEGIN, W_COMMIT, W_ROLLBACK, W_FIND_IDEM, W_ADD_JOB,
             W_ADD_DELIVERY, W_RUNNING, W_FINISH, W_FINISH_DELIVERIES,
             W_DELIVERY, W_PRUNE, W_COUNT };
extern const char *const jobs_wsql[W_COUNT];

/* Statements of the read connection. */
enum rstmt { R_BEGIN, R_END, R_JOB, R_DELIVERIES, R_PENDING, R_UNFINISHED,
             R_UNFINISHED_PAGE, R_TO_DELIVER, R_COUNT };
extern const char *const jobs_rsql[R_COUNT];

/*
 * R_JOB, R_PENDING, R_UNFINISHED_PAGE and jobs_result_sql read a job's
 * columns in this order (jobs_read.c reads them by these numbers).
 */
#define JOB_COLUMNS "id, cred_key, idempotent_key, state, status," \
	" created_ms, updated_ms, finished_ms, attempts, method, url," \
	" headers, body, metadata, quorum, resp_status, resp_headers," \
	" resp_body, error_code, error_message"

/* Columns of R_TO_DELIVER. */
enum { COL_TD_ID, COL_TD_QUORUM, COL_TD_FINISHED, COL_TD_RESP_LEN };

/* Columns of R_UNFINISHED_PAGE after JOB_COLUMNS. */
#define COL_ROWID 20
#define COL_BODY_LEN 21

/*
 * The result connection's one statement: a done job's end, for its
 * webhook payload (JOB_COLUMNS, the request fields scrubbed).
 */
extern const char *const jobs_result_sql;

/* A SQLite result code as a negative errno; 0 for OK, ROW and DONE. */
int jobs_sql_errno(sqlite3 *db, int rc);

/* Runs a statement that returns no rows (or ignores them), then resets it. */
int jobs_sql_step(sqlite3 *db, sqlite3_stmt *st);

/* Binds a blob (SQLITE_STATIC); a NULL p with n 0 binds x'', not NULL. */
int jobs_sql_bind_bytes(sqlite3_stmt *st, int i, const void *p, size_t n);

/* Binds a NUL-terminated text (SQLITE_STATIC); NULL binds SQL NULL. */
int jobs_sql_bind_text(sqlite3_stmt *st, int i, const char *s);

/*
 * Opens a connection to path (flags as sqlite3_open_v2(), no mutex: the
 * caller serialises) with the store's busy timeout. 0 or a negative errno.
 */
int jobs_sql_open(const char *path, int flags, sqlite3 **ret_db);

/*
 * Opens the write connection: WAL, synchronous=FULL, secure_delete; then
 * creates the schema in a new store, or checks an existing one's version,
 * migrates it and scrubs its done jobs. 0 or a negative errno (-EPROTO:
 * a version this build does not know).
 */
int jobs_sql_open_writer(const char *path, sqlite3 **ret_db);

/*
 * Prepares the n statements of sql into st (persistent). On error the
 * ones prepared are left for the caller to finalize.
 */
int jobs_sql_prepare(sqlite3 *db, const char *const *sql, size_t n,
                     sqlite3_stmt **st);

#endif

/*
 * check_jobs.c - the durable job store: round trips, idempotency, group
 * commit, durability across close and kill -9, a full disk, pruning.
 */
#include <check.h>
#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "jobs.h"
#include "jobs_test.h"
#include "testlib.h"

/* The tables of a version 2 store, as an older daemon made them. */
#define V2_SCHEMA \
	"CREATE TABLE schema_version (version INTEGER NOT NULL);" \
	"CREATE TABLE jobs (id TEXT PRIMARY KEY, cred_key BLOB NOT NULL," \
	" idempotent_key TEXT, state TEXT NOT NULL, status TEXT," \
	" created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL," \
	" finished_ms INTEGER, attempts INTEGER NOT NULL DEFAULT 0," \
	" method TEXT NOT NULL, url TEXT NOT NULL, headers TEXT NOT NULL," \
	" body BLOB NOT NULL, metadata TEXT, quorum INTEGER NOT NULL," \
	" resp_status INTEGER, resp_headers TEXT, resp_body BLOB," \
	" error_code TEXT, error_message TEXT);" \
	"CREATE UNIQUE INDEX jobs_idempotent ON jobs (cred_key," \
	" idempotent_key) WHERE idempotent_key IS NOT NULL;" \
	"CREATE INDEX jobs_state ON jobs (state, finished_ms);" \
	"CREATE TABLE deliveries (job_id TEXT NOT NULL REFERENCES jobs (id)" \
	" ON DELETE CASCADE, url TEXT NOT NULL," \
	" state TEXT NOT NULL DEFAULT 'pending', attempts INTEGER NOT NULL" \
	" DEFAULT 0, next_at INTEGER NOT NULL, last_status INTEGER," \
	" last_error TEXT, delivered_at INTEGER," \
	" PRIMARY KEY (job_id, url));"

#define THREADS 32
#define PER_THREAD 100
#define NO_SUCH_ID "job_000000000000" "00000000000000000000000000000000"

static char dir[] = "/tmp/check_jobs.XXXXXX";
static char mnt[sizeof(dir) + 8];
static bool mounted;

static int rm_one(const char *path, const struct stat *sb, int flag,
                  struct FTW *ftw)
{
	return remove(path);
}

static void setup(void)
{
	ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void)
{
	if (mounted)
		umount2(mnt, MNT_DETACH);
	mounted = false;
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	strcpy(dir, "/tmp/check_jobs.XXXXXX");
}

static struct jobs *open_ok(const char *path)
{
	int err = 0;
	struct jobs *j = jobs_open(path, &err);

	ck_assert_msg(j != NULL, "jobs_open: %s", strerror(-err));
	return j;
}

static const char *const hooks2[] = { "http://127.0.0.1:9/a",
                                      "http://127.0.0.1:9/b" };

/* A small valid job; key may be NULL. */
static struct job_spec job_of(const char *key, const unsigned char *cred,
                             size_t cred_len)
{
	struct job_spec jn = {
		.cred = cred, .cred_len = cred_len, .idempotent_key = key,
		.dest = "http://api.example.com:80", .dedupe = true,
		.method = "POST", .url = "http://api.example.com/v1/x",
		.headers_json = "[[\"Authorization\",\"Bearer t\"]]",
		.body = "{}", .body_len = 2, .webhooks = hooks2,
		.n_webhooks = 1, .quorum = 1,
	};

	return jn;
}

static void submit_ok(struct jobs *j, const struct job_spec *jn,
                      char id[JOB_ID_LEN + 1], bool *dup)
{
	int r = jobs_submit(j, jn, id, dup);

	ck_assert_msg(r == 0, "jobs_submit: %s", strerror(-r));
}

static struct job *get_ok(struct jobs *j, const char *id)
{
	struct job *jb = NULL;

	ck_assert_int_eq(jobs_get(j, id, &jb), 0);
	ck_assert_ptr_nonnull(jb);
	return jb;
}

START_TEST(test_round_trip)
{
	static const char body[] = "a\0b\0\xff\xfe\0z";
	static const unsigned char cred[] = { 0, 1, 2, 0xff, 0 };
	int64_t now = 1700000000123;
	struct job_spec jn = {
		.cred = cred, .cred_len = sizeof(cred), .idempotent_key = "k-1",
		.method = "PUT", .url = "https://api.example.com/v1/x?y=1",
		.headers_json = "[[\"Content-Type\",\"application/octet\"]]",
		.body = body, .body_len = sizeof(body) - 1,
		.metadata_json = "{\"order\":42}",
		.webhooks = hooks2, .n_webhooks = 2, .quorum = 2,
	};
	char id[JOB_ID_LEN + 1], path[300];
	struct jobs *j = open_ok(dir);
	struct job *jb;
	struct stat sb;
	bool dup = true;

	jobs_set_clock(j, fake_clock_ms, &now);
	submit_ok(j, &jn, id, &dup);
	ck_assert(!dup);
	ck_assert_uint_eq(strlen(id), JOB_ID_LEN);
	ck_assert_int_eq(strncmp(id, "job_", 4), 0);
	ck_assert_uint_eq(strspn(id + 4, "0123456789abcdef"), JOB_ID_LEN - 4);
	snprintf(path, sizeof(path), "job_%012llx", (unsigned long long)now);
	ck_assert_int_eq(strncmp(id, path, 16), 0);

	/* The WAL holds the same secrets: same mode. */
	snprintf(path, sizeof(path), "%s/jobs.db-wal", dir);
	ck_assert_int_eq(stat(path, &sb), 0);
	ck_assert_int_eq(sb.st_mode & 0777, 0600);

	jb = get_ok(j, id);
	ck_assert_str_eq(jb->id, id);
	ck_assert_uint_eq(jb->cred_len, sizeof(cred));
	ck_assert_mem_eq(jb->cred, cred, sizeof(cred));
	ck_assert_str_eq(jb->idempotent_key, "k-1");
	ck_assert_int_eq(jb->state, JOB_QUEUED);
	ck_assert_int_eq(jb->created_ms, now);
	ck_assert_int_eq(jb->updated_ms, now);
	ck_assert_int_eq(jb->finished_ms, 0);
	ck_assert_uint_eq(jb->attempts, 0);
	ck_assert_str_eq(jb->method, "PUT");
	ck_assert_str_eq(jb->url, jn.url);
	ck_assert_str_eq(jb->headers_json, jn.headers_json);
	ck_assert_uint_eq(jb->body_len, sizeof(body) - 1);
	ck_assert_mem_eq(jb->body, body, sizeof(body) - 1);
	ck_assert_str_eq(jb->metadata_json, jn.metadata_json);
	ck_assert_uint_eq(jb->quorum, 2);
	ck_assert_uint_eq(jb->n_deliveries, 2);
	for (size_t i = 0; i < 2; i++) {
		ck_assert_str_eq(jb->deliveries[i].url, hooks2[i]);
		ck_assert_int_eq(jb->deliveries[i].state, DELIVERY_PENDING);
		ck_assert_uint_eq(jb->deliveries[i].attempts, 0);
		ck_assert_ptr_null(jb->deliveries[i].last_error);
	}
	job_free(jb);

	ck_assert_int_eq(jobs_get(j, NO_SUCH_ID,
	                          &jb), -ENOENT);
	ck_assert_int_eq(jobs_get(j, "nonsense", &jb), -ENOENT);
	jobs_free(j);

	snprintf(path, sizeof(path), "%s/jobs.db", dir);
	ck_assert_int_eq(stat(path, &sb), 0);
	ck_assert_int_eq(sb.st_mode & 0777, 0600);
}
END_TEST

/* One daemon per store: a second open of the same directory is refused. */
START_TEST(test_one_owner)
{
	struct jobs *j = open_ok(dir), *k;
	int err = 0;

	k = jobs_open(dir, &err);
	ck_assert_ptr_null(k);
	ck_assert_int_eq(err, -EBUSY);
	jobs_free(j);
	j = open_ok(dir);
	jobs_free(j);
}
END_TEST

START_TEST(test_empty_body_no_cred)
{
	struct job_spec jn = job_of(NULL, NULL, 0);
	char id[JOB_ID_LEN + 1];
	struct jobs *j = open_ok(dir);
	struct job *jb;

	jn.body = NULL;
	jn.body_len = 0;
	jn.headers_json = NULL;
	submit_ok(j, &jn, id, NULL);
	jb = get_ok(j, id);
	ck_assert_uint_eq(jb->body_len, 0);
	ck_assert_ptr_nonnull(jb->body);
	ck_assert_ptr_null(jb->cred);
	ck_assert_ptr_null(jb->idempotent_key);
	ck_assert_ptr_null(jb->metadata_json);
	ck_assert_str_eq(jb->headers_json, "[]");
	job_free(jb);
	jobs_free(j);
}
END_TEST

START_TEST(test_invalid_refused)
{
	static const char *const same[] = { "http://h/a", "http://h/a" };
	struct job_spec jn = job_of(NULL, NULL, 0);
	char id[JOB_ID_LEN + 1];
	struct jobs *j = open_ok(dir);
	struct jobs_stats st;

	jn.quorum = 2;
	ck_assert_int_eq(jobs_submit(j, &jn, id, NULL), -EINVAL);
	jn.quorum = 0;
	ck_assert_int_eq(jobs_submit(j, &jn, id, NULL), -EINVAL);
	jn.quorum = 1;
	jn.n_webhooks = 0;
	ck_assert_int_eq(jobs_submit(j, &jn, id, NULL), -EINVAL);
	jn.webhooks = same;
	jn.n_webhooks = 2;
	ck_assert_int_eq(jobs_submit(j, &jn, id, NULL), -EINVAL);
	jobs_stats(j, &st);
	ck_assert_uint_eq(st.transactions, 0);
	jobs_free(j);
}
END_TEST

START_TEST(test_idempotency)
{
	static const unsigned char cred_a[] = { 0xaa, 0x01 };
	static const unsigned char cred_b[] = { 0xbb, 0x02 };
	struct job_spec jn = job_of("order-7", cred_a, sizeof(cred_a));
	char first[JOB_ID_LEN + 1], id[JOB_ID_LEN + 1];
	char other[JOB_ID_LEN + 1];
	struct jobs *j = open_ok(dir);
	struct jobs_stats st;
	struct job *jb;
	bool dup = true;

	submit_ok(j, &jn, first, &dup);
	ck_assert(!dup);
	submit_ok(j, &jn, id, &dup);
	ck_assert(dup);
	ck_assert_str_eq(id, first);

	/* Another credential, same key: another job. */
	jn = job_of("order-7", cred_b, sizeof(cred_b));
	submit_ok(j, &jn, id, &dup);
	ck_assert(!dup);
	ck_assert_str_ne(id, first);

	/* Same credential and key, another destination: another job. */
	jn = job_of("order-7", cred_a, sizeof(cred_a));
	jn.dest = "https://other.example.com:443";
	jn.url = "https://other.example.com/v1/x";
	submit_ok(j, &jn, id, &dup);
	ck_assert(!dup);
	ck_assert_str_ne(id, first);
	strcpy(other, id);
	submit_ok(j, &jn, id, &dup);
	ck_assert(dup);
	ck_assert_str_eq(id, other);

	/* Without dedupe (anonymous clients): the key is only echoed. */
	jn = job_of("order-7", NULL, 0);
	jn.dedupe = false;
	submit_ok(j, &jn, id, &dup);
	ck_assert(!dup);
	strcpy(other, id);
	submit_ok(j, &jn, id, &dup);
	ck_assert(!dup);
	ck_assert_str_ne(id, other);
	jb = get_ok(j, id);
	ck_assert_str_eq(jb->idempotent_key, "order-7");
	job_free(jb);

	/* With it, no credential is a scope of its own. */
	jn.dedupe = true;
	submit_ok(j, &jn, id, &dup);
	ck_assert(!dup);
	ck_assert_str_ne(id, first);
	strcpy(first, id);
	submit_ok(j, &jn, id, &dup);
	ck_assert(dup);
	ck_assert_str_eq(id, first);

	/* Without a key, a fresh job every time. */
	jn = job_of(NULL, cred_a, sizeof(cred_a));
	submit_ok(j, &jn, first, &dup);
	ck_assert(!dup);
	submit_ok(j, &jn, id, &dup);
	ck_assert(!dup);
	ck_assert_str_ne(id, first);

	jobs_stats(j, &st);
	ck_assert_uint_eq(st.jobs, 8);
	ck_assert_uint_eq(st.duplicates, 3);
	jobs_free(j);
}
END_TEST

struct submitter {
	struct jobs *j;
	pthread_barrier_t *start;
	int failures;
	char ids[PER_THREAD][JOB_ID_LEN + 1];
};

static void *submit_many(void *arg)
{
	struct submitter *s = arg;
	struct job_spec jn = job_of(NULL, NULL, 0);

	pthread_barrier_wait(s->start);
	for (int i = 0; i < PER_THREAD; i++)
		if (jobs_submit(s->j, &jn, s->ids[i], NULL) != 0)
			s->failures++;
	return NULL;
}

static int count_cb(void *arg, struct job *jb)
{
	(*(unsigned *)arg)++;
	job_free(jb);
	return 0;
}

START_TEST(test_group_commit)
{
	struct submitter *s = calloc(THREADS, sizeof(*s));
	pthread_t th[THREADS];
	pthread_barrier_t start;
	struct jobs *j = open_ok(dir);
	struct jobs_stats st;
	unsigned n = 0;

	ck_assert_ptr_nonnull(s);
	pthread_barrier_init(&start, NULL, THREADS);
	for (int i = 0; i < THREADS; i++) {
		s[i].j = j;
		s[i].start = &start;
		ck_assert_int_eq(pthread_create(&th[i], NULL, submit_many,
		                                &s[i]), 0);
	}
	for (int i = 0; i < THREADS; i++) {
		pthread_join(th[i], NULL);
		ck_assert_int_eq(s[i].failures, 0);
	}
	pthread_barrier_destroy(&start);

	jobs_stats(j, &st);
	ck_assert_uint_eq(st.jobs, THREADS * PER_THREAD);
	ck_assert_uint_eq(st.failed_batches, 0);
	/* Far fewer commits than jobs: they were batched. */
	ck_assert_msg(st.transactions <= THREADS * PER_THREAD / 4,
	              "%llu transactions for %d jobs",
	              (unsigned long long)st.transactions,
	              THREADS * PER_THREAD);
	ck_assert_uint_gt(st.max_batch, 1);
	fprintf(stderr, "group commit: %d jobs in %llu transactions,"
	        " largest batch %llu\n", THREADS * PER_THREAD,
	        (unsigned long long)st.transactions,
	        (unsigned long long)st.max_batch);

	ck_assert_int_eq(jobs_load_pending(j, count_cb, &n), 0);
	ck_assert_uint_eq(n, THREADS * PER_THREAD);
	for (int i = 0; i < THREADS; i += 7) {
		struct job *jb = get_ok(j, s[i].ids[PER_THREAD - 1]);

		job_free(jb);
	}
	jobs_free(j);
	free(s);
}
END_TEST

#define ASYNC_JOBS 500

struct async_state;

struct async_slot {
	struct async_state *a;
	int i;
};

struct async_state {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned done, failed, duplicates;
	char ids[ASYNC_JOBS][JOB_ID_LEN + 1];
	struct async_slot slot[ASYNC_JOBS];
};

static void async_done(void *arg, int err, const char *id, bool duplicate)
{
	struct async_slot *sl = arg;
	struct async_state *a = sl->a;

	pthread_mutex_lock(&a->lock);
	if (err == 0 && id && strlen(id) == JOB_ID_LEN)
		strcpy(a->ids[sl->i], id);
	else
		a->failed++;
	a->duplicates += duplicate;
	a->done++;
	pthread_cond_signal(&a->cond);
	pthread_mutex_unlock(&a->lock);
}

/* One thread, many jobs in flight: the way the MHD front submits. */
START_TEST(test_async_submit)
{
	struct async_state *a = calloc(1, sizeof(*a));
	struct job_spec plain = job_of(NULL, NULL, 0);
	struct job_spec keyed = job_of("same", NULL, 0);
	struct jobs *j = open_ok(dir);
	struct jobs_stats st;

	ck_assert_ptr_nonnull(a);
	pthread_mutex_init(&a->lock, NULL);
	pthread_cond_init(&a->cond, NULL);
	plain.quorum = 2;
	ck_assert_int_eq(jobs_submit_async(j, &plain, async_done, a->slot),
	                 -EINVAL);
	plain.quorum = 1;
	for (int i = 0; i < ASYNC_JOBS; i++) {
		a->slot[i].a = a;
		a->slot[i].i = i;
		ck_assert_int_eq(jobs_submit_async(j, i % 100 ? &plain : &keyed,
		                                   async_done, &a->slot[i]), 0);
	}
	pthread_mutex_lock(&a->lock);
	while (a->done < ASYNC_JOBS)
		pthread_cond_wait(&a->cond, &a->lock);
	pthread_mutex_unlock(&a->lock);
	ck_assert_uint_eq(a->failed, 0);
	ck_assert_uint_eq(a->duplicates, ASYNC_JOBS / 100 - 1);
	jobs_stats(j, &st);
	ck_assert_uint_eq(st.jobs, ASYNC_JOBS - (ASYNC_JOBS / 100 - 1));
	ck_assert_uint_lt(st.transactions, ASYNC_JOBS / 4);
	for (int i = 0; i < ASYNC_JOBS; i += 49)
		job_free(get_ok(j, a->ids[i]));

	/* Closing runs what is still queued, callbacks included. */
	a->done = 0;
	for (int i = 0; i < 50; i++)
		ck_assert_int_eq(jobs_submit_async(j, &plain, async_done,
		                                   &a->slot[i]), 0);
	jobs_free(j);
	ck_assert_uint_eq(a->done, 50);
	ck_assert_uint_eq(a->failed, 0);
	pthread_cond_destroy(&a->cond);
	pthread_mutex_destroy(&a->lock);
	free(a);
}
END_TEST

struct collected {
	unsigned n;
	char ids[8][JOB_ID_LEN + 1];
	enum job_state states[8];
	size_t pending[8];
};

static int collect_cb(void *arg, struct job *jb)
{
	struct collected *c = arg;

	if (c->n < 8) {
		strcpy(c->ids[c->n], jb->id);
		c->states[c->n] = jb->state;
		c->pending[c->n] = 0;
		for (size_t i = 0; i < jb->n_deliveries; i++)
			c->pending[c->n] +=
				jb->deliveries[i].state == DELIVERY_PENDING;
	}
	c->n++;
	job_free(jb);
	return 0;
}

static int stop_cb(void *arg, struct job *jb)
{
	job_free(jb);
	return 7;
}

/* Queued, running, done with a delivery due, done and delivered. */
START_TEST(test_reopen_load_pending)
{
	struct job_spec jn = job_of(NULL, NULL, 0);
	char id[4][JOB_ID_LEN + 1];
	struct collected c = { 0 };
	int64_t now = 1000;
	struct jobs *j = open_ok(dir);

	jobs_set_clock(j, fake_clock_ms, &now);
	for (int i = 0; i < 4; i++) {
		now += 10;
		submit_ok(j, &jn, id[i], NULL);
	}
	ck_assert_int_eq(jobs_mark_running(j, id[1]), 0);
	ck_assert_int_eq(jobs_finish(j, id[2], 200, NULL, "ok", 2, true), 0);
	ck_assert_int_eq(jobs_finish(j, id[3], 200, NULL, "ok", 2, true), 0);
	ck_assert_int_eq(jobs_delivery_result(j, id[3], hooks2[0], true, 204,
	                                      NULL, 0), 0);
	jobs_free(j);

	j = open_ok(dir);
	ck_assert_int_eq(jobs_load_pending(j, collect_cb, &c), 0);
	ck_assert_uint_eq(c.n, 3);
	for (int i = 0; i < 3; i++)
		ck_assert_str_eq(c.ids[i], id[i]);
	ck_assert_int_eq(c.states[0], JOB_QUEUED);
	ck_assert_int_eq(c.states[1], JOB_RUNNING);
	ck_assert_int_eq(c.states[2], JOB_DONE);
	ck_assert_uint_eq(c.pending[2], 1);
	ck_assert_int_eq(jobs_load_pending(j, stop_cb, NULL), 7);
	jobs_free(j);
}
END_TEST

START_TEST(test_finish_and_deliveries)
{
	static const char resp[] = "\x89PNG\0\x01";
	struct job_spec jn = job_of("f", NULL, 0);
	const char *hdrs = "[[\"Content-Type\",\"image/png\"]]";
	char id[JOB_ID_LEN + 1];
	int64_t now = 5000;
	struct jobs *j = open_ok(dir);
	struct job *jb;

	jn.n_webhooks = 2;
	jobs_set_clock(j, fake_clock_ms, &now);
	submit_ok(j, &jn, id, NULL);
	now = 6000;
	ck_assert_int_eq(jobs_mark_running(j, id), 0);
	ck_assert_int_eq(jobs_mark_running(j, id), 0);
	jb = get_ok(j, id);
	ck_assert_int_eq(jb->state, JOB_RUNNING);
	ck_assert_uint_eq(jb->attempts, 2);
	ck_assert_int_eq(jb->updated_ms, 6000);
	job_free(jb);

	now = 7000;
	ck_assert_int_eq(jobs_finish(j, id, 502, hdrs, resp, sizeof(resp) - 1,
	                             false), 0);
	ck_assert_int_eq(jobs_mark_running(j, id), -ENOENT);
	jb = get_ok(j, id);
	ck_assert_int_eq(jb->state, JOB_DONE);
	ck_assert(!jb->success);
	ck_assert_int_eq(jb->status_code, 502);
	ck_assert_str_eq(jb->resp_headers_json, hdrs);
	ck_assert_uint_eq(jb->resp_body_len, sizeof(resp) - 1);
	ck_assert_mem_eq(jb->resp_body, resp, sizeof(resp) - 1);
	ck_assert_int_eq(jb->finished_ms, 7000);
	ck_assert_int_eq(jb->deliveries[0].next_at, 7000);
	job_free(jb);

	now = 8000;
	ck_assert_int_eq(jobs_delivery_result(j, id, hooks2[0], false, 500,
	                                      "HTTP 500", 68000), 0);
	ck_assert_int_eq(jobs_delivery_result(j, id, hooks2[1], false, 0,
	                                      "connection refused",
	                                      JOBS_GIVE_UP), 0);
	jb = get_ok(j, id);
	ck_assert_int_eq(jb->deliveries[0].state, DELIVERY_PENDING);
	ck_assert_uint_eq(jb->deliveries[0].attempts, 1);
	ck_assert_int_eq(jb->deliveries[0].last_status, 500);
	ck_assert_str_eq(jb->deliveries[0].last_error, "HTTP 500");
	ck_assert_int_eq(jb->deliveries[0].next_at, 68000);
	ck_assert_int_eq(jb->deliveries[1].state, DELIVERY_GAVE_UP);
	ck_assert_int_eq(jb->deliveries[1].last_status, 0);
	ck_assert_str_eq(jb->deliveries[1].last_error, "connection refused");
	job_free(jb);

	now = 9000;
	ck_assert_int_eq(jobs_delivery_result(j, id, hooks2[0], true, 200,
	                                      NULL, 0), 0);
	jb = get_ok(j, id);
	ck_assert_int_eq(jb->deliveries[0].state, DELIVERY_DELIVERED);
	ck_assert_uint_eq(jb->deliveries[0].attempts, 2);
	ck_assert_int_eq(jb->deliveries[0].delivered_at, 9000);
	ck_assert_int_eq(jb->deliveries[0].last_status, 200);
	ck_assert_ptr_null(jb->deliveries[0].last_error);
	job_free(jb);

	ck_assert_int_eq(jobs_delivery_result(j, id, "http://other/", true,
	                                      200, NULL, 0), -ENOENT);
	/* A late failure report does not unsettle a delivery. */
	ck_assert_int_eq(jobs_delivery_result(j, id, hooks2[0], false, 500,
	                                      "late", 99000), -ENOENT);
	jb = get_ok(j, id);
	ck_assert_int_eq(jb->deliveries[0].state, DELIVERY_DELIVERED);
	job_free(jb);
	ck_assert_int_eq(jobs_finish(j, NO_SUCH_ID,
	                             200, NULL, NULL, 0, true), -ENOENT);
	jobs_free(j);
}
END_TEST

/* Collects what jobs_load_deliveries() hands over. */
struct light {
	unsigned n;
	struct job *jb[4];
};

static int light_cb(void *arg, struct job *jb)
{
	struct light *l = arg;

	ck_assert_uint_lt(l->n, 4);
	l->jb[l->n++] = jb;
	return 0;
}

START_TEST(test_result_and_light_deliveries)
{
	const size_t big = 3u << 20;
	struct job_spec jn = job_of("r", NULL, 0);
	char id[JOB_ID_LEN + 1], queued[JOB_ID_LEN + 1];
	const char *hdrs = "[[\"content-type\",\"x/y\"]]";
	struct light l = { 0 };
	int64_t now = 5000;
	struct jobs *j = open_ok(dir);
	struct job *jb = NULL;
	char *body = malloc(big);

	ck_assert_ptr_nonnull(body);
	for (size_t i = 0; i < big; i++)
		body[i] = (char)(i * 7);
	jn.metadata_json = "{\"k\":\"v\"}";
	jn.n_webhooks = 2;
	jn.quorum = 2;
	jobs_set_clock(j, fake_clock_ms, &now);
	submit_ok(j, &jn, id, NULL);
	jn = job_of("q", NULL, 0);
	submit_ok(j, &jn, queued, NULL);

	/* Not done: nothing to deliver yet. */
	ck_assert_int_eq(jobs_get_result(j, id, &jb), -ENOENT);
	ck_assert_int_eq(jobs_get_result(j, "job_nope", &jb), -ENOENT);
	ck_assert_int_eq(jobs_get_result(j, NULL, &jb), -ENOENT);
	ck_assert_ptr_null(jb);

	now = 7000;
	ck_assert_int_eq(jobs_finish(j, id, 201, hdrs, body, big, true), 0);
	ck_assert_int_eq(jobs_delivery_result(j, id, hooks2[1], false, 500,
	                                      "HTTP 500", 9000), 0);

	ck_assert_int_eq(jobs_get_result(j, id, &jb), 0);
	ck_assert_str_eq(jb->id, id);
	ck_assert_int_eq(jb->state, JOB_DONE);
	ck_assert(jb->success);
	ck_assert_str_eq(jb->idempotent_key, "r");
	ck_assert_str_eq(jb->metadata_json, "{\"k\":\"v\"}");
	ck_assert_int_eq(jb->status_code, 201);
	ck_assert_str_eq(jb->resp_headers_json, hdrs);
	ck_assert_uint_eq(jb->resp_body_len, big);
	ck_assert_mem_eq(jb->resp_body, body, big);
	ck_assert_ptr_null(jb->error_code);
	ck_assert_uint_eq(jb->n_deliveries, 0);
	/* The request fields are scrubbed. */
	ck_assert_uint_eq(jb->body_len, 0);
	job_free(jb);

	/* Recovery: scheduling state only, no response bytes. */
	ck_assert_int_eq(jobs_load_deliveries(j, light_cb, &l), 0);
	ck_assert_uint_eq(l.n, 1);
	jb = l.jb[0];
	ck_assert_str_eq(jb->id, id);
	ck_assert_int_eq(jb->state, JOB_DONE);
	ck_assert_uint_eq(jb->quorum, 2);
	ck_assert_int_eq(jb->finished_ms, 7000);
	ck_assert_uint_eq(jb->resp_body_len, big);
	ck_assert_ptr_null(jb->resp_body);
	ck_assert_ptr_null(jb->resp_headers_json);
	ck_assert_ptr_null(jb->metadata_json);
	ck_assert_uint_eq(jb->n_deliveries, 2);
	ck_assert_str_eq(jb->deliveries[0].url, hooks2[0]);
	ck_assert_int_eq(jb->deliveries[0].state, DELIVERY_PENDING);
	ck_assert_int_eq(jb->deliveries[0].next_at, 7000);
	ck_assert_uint_eq(jb->deliveries[1].attempts, 1);
	ck_assert_int_eq(jb->deliveries[1].next_at, 9000);
	job_free(jb);

	/* Still readable while the writer is stopped. */
	jobs_shutdown(j);
	ck_assert_int_eq(jobs_get_result(j, id, &jb), 0);
	ck_assert_uint_eq(jb->resp_body_len, big);
	job_free(jb);
	jobs_free(j);
	free(body);
}
END_TEST

START_TEST(test_prune)
{
	const int64_t day = 86400000, retain = 7 * day;
	struct job_spec jn = job_of(NULL, NULL, 0);
	char old_done[JOB_ID_LEN + 1], old_pending[JOB_ID_LEN + 1];
	char new_done[JOB_ID_LEN + 1], old_queued[JOB_ID_LEN + 1];
	int64_t now = 100 * day;
	struct jobs *j = open_ok(dir);
	struct job *jb;
	unsigned pruned = 99;

	jn.n_webhooks = 2;
	jobs_set_clock(j, fake_clock_ms, &now);
	submit_ok(j, &jn, old_done, NULL);
	submit_ok(j, &jn, old_pending, NULL);
	submit_ok(j, &jn, old_queued, NULL);
	submit_ok(j, &jn, new_done, NULL);
	jobs_finish(j, old_done, 200, NULL, "x", 1, true);
	jobs_finish(j, old_pending, 200, NULL, "x", 1, true);
	jobs_delivery_result(j, old_done, hooks2[0], true, 200, NULL, 0);
	jobs_delivery_result(j, old_done, hooks2[1], false, 503, "HTTP 503",
	                     JOBS_GIVE_UP);
	jobs_delivery_result(j, old_pending, hooks2[0], true, 200, NULL, 0);
	now = 106 * day;
	jobs_finish(j, new_done, 200, NULL, "x", 1, true);
	jobs_delivery_result(j, new_done, hooks2[0], true, 200, NULL, 0);
	jobs_delivery_result(j, new_done, hooks2[1], true, 200, NULL, 0);

	/* Just inside the retention: nothing goes. */
	ck_assert_int_eq(jobs_prune(j, 107 * day, retain, &pruned), 0);
	ck_assert_uint_eq(pruned, 0);
	ck_assert_int_eq(jobs_prune(j, 107 * day + 1, retain, &pruned), 0);
	ck_assert_uint_eq(pruned, 1);
	ck_assert_int_eq(jobs_get(j, old_done, &jb), -ENOENT);
	job_free(get_ok(j, old_pending));
	job_free(get_ok(j, old_queued));
	job_free(get_ok(j, new_done));

	ck_assert_int_eq(jobs_prune(j, 200 * day, retain, &pruned), 0);
	ck_assert_uint_eq(pruned, 1);
	ck_assert_int_eq(jobs_get(j, new_done, &jb), -ENOENT);
	job_free(get_ok(j, old_pending));
	job_free(get_ok(j, old_queued));
	jobs_free(j);
}
END_TEST

/*
 * The child acknowledges each durable id on the pipe; the parent kills it
 * mid-stream. Every id it saw must be in the store.
 */
#define CRASH_THREADS 8
#define CRASH_ACKS 1000

struct crasher {
	struct jobs *j;
	int fd;
};

static void *crash_submitter(void *arg)
{
	struct crasher *c = arg;
	struct job_spec jn = job_of(NULL, NULL, 0);
	char line[JOB_ID_LEN + 2];

	for (;;) {
		if (jobs_submit(c->j, &jn, line, NULL) != 0)
			_exit(3);
		line[JOB_ID_LEN] = '\n';
		if (write(c->fd, line, JOB_ID_LEN + 1) != JOB_ID_LEN + 1)
			_exit(4);
	}
	return NULL;
}

static void crash_child(int fd)
{
	struct crasher c = { .fd = fd };
	pthread_t th;
	int err;

	alarm(60);
	c.j = jobs_open(dir, &err);
	if (!c.j)
		_exit(2);
	for (int i = 0; i < CRASH_THREADS; i++)
		if (pthread_create(&th, NULL, crash_submitter, &c) != 0)
			_exit(2);
	pause();
	_exit(0);
}

START_TEST(test_kill9_loses_nothing)
{
	size_t cap = 1 << 20, len = 0, lines;
	char *buf = malloc(cap);
	struct jobs *j;
	unsigned n = 0;
	int fds[2], status;
	bool killed = false;
	pid_t pid;

	ck_assert_ptr_nonnull(buf);
	ck_assert_int_eq(pipe(fds), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(fds[0]);
		crash_child(fds[1]);
	}
	close(fds[1]);
	for (;;) {
		ssize_t r = read(fds[0], buf + len, cap - len);

		if (r <= 0)
			break;
		len += (size_t)r;
		if (!killed && len / (JOB_ID_LEN + 1) >= CRASH_ACKS) {
			kill(pid, SIGKILL);
			killed = true;
		}
		ck_assert_uint_lt(len, cap);
	}
	close(fds[0]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
	              "child status %d", status);
	ck_assert_uint_eq(len % (JOB_ID_LEN + 1), 0);
	lines = len / (JOB_ID_LEN + 1);
	ck_assert_uint_ge(lines, CRASH_ACKS);

	j = open_ok(dir);
	for (size_t i = 0; i < lines; i++) {
		char *id = buf + i * (JOB_ID_LEN + 1);
		struct job *jb = NULL;

		id[JOB_ID_LEN] = '\0';
		ck_assert_msg(jobs_get(j, id, &jb) == 0, "lost %s", id);
		job_free(jb);
	}
	ck_assert_int_eq(jobs_load_pending(j, count_cb, &n), 0);
	ck_assert_uint_ge(n, lines);
	fprintf(stderr, "kill -9: %zu acknowledged, %u in the store\n",
	        lines, n);
	jobs_free(j);
	free(buf);
}
END_TEST

/* A job whose body cannot fit into the pages already allocated. */
static struct job_spec big_job(void)
{
	static char body[64 * 1024];
	struct job_spec jn = job_of(NULL, NULL, 0);

	memset(body, 'b', sizeof(body));
	jn.body = body;
	jn.body_len = sizeof(body);
	return jn;
}

START_TEST(test_full_max_pages)
{
	struct job_spec small = job_of(NULL, NULL, 0), big = big_job();
	char before[JOB_ID_LEN + 1], id[JOB_ID_LEN + 1];
	struct jobs *j = open_ok(dir);
	struct jobs_stats st;

	submit_ok(j, &small, before, NULL);
	ck_assert_int_eq(jobs_set_max_pages(j, 1), 0);
	ck_assert_int_eq(jobs_submit(j, &big, id, NULL), -ENOSPC);
	ck_assert_int_eq(jobs_submit(j, &big, id, NULL), -ENOSPC);
	job_free(get_ok(j, before));
	jobs_stats(j, &st);
	ck_assert_uint_eq(st.failed_batches, 2);

	ck_assert_int_eq(jobs_set_max_pages(j, 0), 0);
	submit_ok(j, &big, id, NULL);
	job_free(get_ok(j, id));
	job_free(get_ok(j, before));
	jobs_free(j);
}
END_TEST

/* A real full file system, when this process may mount a tmpfs. */
START_TEST(test_full_tmpfs)
{
	struct job_spec small = job_of(NULL, NULL, 0), big = big_job();
	char before[JOB_ID_LEN + 1], id[JOB_ID_LEN + 1], fill[300];
	static char chunk[4096];
	struct jobs *j;
	FILE *f;
	unsigned n = 0;
	int r;

	snprintf(mnt, sizeof(mnt), "%s/mnt", dir);
	ck_assert_int_eq(mkdir(mnt, 0700), 0);
	/* A mount namespace of our own: a failed test leaves no mount. */
	if (unshare(CLONE_NEWNS) < 0 ||
	    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mount("tmpfs", mnt, "tmpfs", 0, "size=1m") < 0) {
		fprintf(stderr, "tmpfs not mountable (%s), skipped\n",
		        strerror(errno));
		return;
	}
	mounted = true;
	j = open_ok(mnt);
	submit_ok(j, &small, before, NULL);

	snprintf(fill, sizeof(fill), "%s/fill", mnt);
	f = fopen(fill, "w");
	ck_assert_ptr_nonnull(f);
	while (fwrite(chunk, sizeof(chunk), 1, f) == 1 && fflush(f) == 0)
		;
	fclose(f);

	r = jobs_submit(j, &big, id, NULL);
	ck_assert_msg(r == -ENOSPC, "submit on a full disk: %d", r);
	job_free(get_ok(j, before));

	ck_assert_int_eq(unlink(fill), 0);
	submit_ok(j, &big, id, NULL);
	jobs_free(j);

	j = open_ok(mnt);
	job_free(get_ok(j, before));
	job_free(get_ok(j, id));
	ck_assert_int_eq(jobs_load_pending(j, count_cb, &n), 0);
	ck_assert_uint_eq(n, 2);
	jobs_free(j);
}
END_TEST

struct op_counter {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned done, failed;
	int last_err;
};

static void op_done(void *arg, int err)
{
	struct op_counter *c = arg;

	pthread_mutex_lock(&c->lock);
	c->done++;
	if (err < 0) {
		c->failed++;
		c->last_err = err;
	}
	pthread_cond_signal(&c->cond);
	pthread_mutex_unlock(&c->lock);
}

static void op_wait(struct op_counter *c, unsigned n)
{
	pthread_mutex_lock(&c->lock);
	while (c->done < n)
		pthread_cond_wait(&c->cond, &c->lock);
	pthread_mutex_unlock(&c->lock);
}

/* The engine's and the delivery thread's verbs: copied, ordered, async. */
START_TEST(test_async_verbs)
{
	static const char resp[] = "\x00\xff" "bin";
	struct op_counter c = { .lock = PTHREAD_MUTEX_INITIALIZER,
	                        .cond = PTHREAD_COND_INITIALIZER };
	struct job_spec jn = job_of(NULL, NULL, 0);
	/* Zeroed: the scribbles below keep a terminating NUL. */
	char id[JOB_ID_LEN + 1], hdrs[64] = "", code[32] = "", msg[64] = "";
	char url[64] = "";
	struct job_result res = { 0 };
	int64_t now = 5000;
	struct jobs *j = open_ok(dir);
	struct job *jb;

	jn.n_webhooks = 2;
	jobs_set_clock(j, fake_clock_ms, &now);
	submit_ok(j, &jn, id, NULL);
	ck_assert_int_eq(jobs_mark_running_async(j, id, op_done, &c), 0);
	ck_assert_int_eq(jobs_mark_running_async(j, "short", op_done, &c),
	                 -ENOENT);
	/* Copied: the caller's buffers are scribbled on at once. */
	strcpy(hdrs, "[[\"content-type\",\"x/y\"]]");
	strcpy(code, "upstream_connect");
	strcpy(msg, "connect to 'h' port 1 failed");
	res = (struct job_result){ .status_code = 502, .headers_json = hdrs,
	                           .body = resp, .body_len = sizeof(resp) - 1,
	                           .failed = true, .error_code = code,
	                           .error_message = msg };
	ck_assert_int_eq(jobs_finish_async(j, id, &res, op_done, &c), 0);
	memset(hdrs, 'x', sizeof(hdrs) - 1);
	memset(code, 'x', sizeof(code) - 1);
	memset(msg, 'x', sizeof(msg) - 1);
	strcpy(url, hooks2[0]);
	ck_assert_int_eq(jobs_delivery_result_async(j, id, url, false, 500,
	                                            "HTTP 500", 9000, op_done,
	                                            &c), 0);
	memset(url, 'x', sizeof(url) - 1);
	ck_assert_int_eq(jobs_delivery_result_async(j, id, hooks2[1], true,
	                                            204, NULL, 0, NULL, NULL),
	                 0);
	/* A second finish of a done job is refused. */
	ck_assert_int_eq(jobs_finish_async(j, id, &res, op_done, &c), 0);
	op_wait(&c, 4);
	ck_assert_uint_eq(c.failed, 1);
	ck_assert_int_eq(c.last_err, -ENOENT);

	jb = get_ok(j, id);
	ck_assert_int_eq(jb->state, JOB_DONE);
	ck_assert(!jb->success);
	ck_assert_uint_eq(jb->attempts, 1);
	ck_assert_int_eq(jb->status_code, 502);
	ck_assert_str_eq(jb->resp_headers_json,
	                 "[[\"content-type\",\"x/y\"]]");
	ck_assert_uint_eq(jb->resp_body_len, sizeof(resp) - 1);
	ck_assert_mem_eq(jb->resp_body, resp, sizeof(resp) - 1);
	ck_assert_str_eq(jb->error_code, "upstream_connect");
	ck_assert_str_eq(jb->error_message, "connect to 'h' port 1 failed");
	ck_assert_int_eq(jb->deliveries[0].state, DELIVERY_PENDING);
	ck_assert_int_eq(jb->deliveries[0].next_at, 9000);
	ck_assert_str_eq(jb->deliveries[0].last_error, "HTTP 500");
	ck_assert_int_eq(jb->deliveries[1].state, DELIVERY_DELIVERED);
	ck_assert_int_eq(jb->deliveries[1].last_status, 204);
	job_free(jb);

	/* After shutdown: refused at once, reads still work. */
	jobs_shutdown(j);
	ck_assert_int_eq(jobs_mark_running_async(j, id, op_done, &c),
	                 -ESHUTDOWN);
	ck_assert_int_eq(jobs_submit(j, &jn, id, NULL), -ESHUTDOWN);
	job_free(get_ok(j, id));
	jobs_free(j);
	ck_assert_uint_eq(c.done, 4);
}
END_TEST

/* A store written by schema version 1 opens and gains the new columns. */
/* Collects the ids and body bytes cb saw. */
struct seen {
	unsigned n;
	size_t bytes;
	char ids[8][JOB_ID_LEN + 1];
};

static int seen_cb(void *arg, struct job *jb)
{
	struct seen *s = arg;

	ck_assert_uint_lt(s->n, 8);
	ck_assert_int_ne(jb->state, JOB_DONE);
	ck_assert_ptr_nonnull(jb->body);
	strcpy(s->ids[s->n++], jb->id);
	s->bytes += jb->body_len;
	job_free(jb);
	return 0;
}

/*
 * Paged recovery: counts without bodies, pages by job and byte budget in
 * order, never a done job, never one added after the count.
 */
START_TEST(test_load_unfinished_pages)
{
	char ids[6][JOB_ID_LEN + 1], late[JOB_ID_LEN + 1];
	struct job_spec jn = job_of(NULL, NULL, 0);
	struct seen s = { 0 };
	struct jobs *j = open_ok(dir);
	uint64_t n, bytes;
	int64_t last, after, same;
	bool done;

	jn.body = "0123456789";
	jn.body_len = 10;
	for (int i = 0; i < 6; i++)
		submit_ok(j, &jn, ids[i], NULL);
	ck_assert_int_eq(jobs_finish(j, ids[1], 200, NULL, NULL, 0, true), 0);
	ck_assert_int_eq(jobs_mark_running(j, ids[2]), 0);
	ck_assert_int_eq(jobs_unfinished(j, &n, &bytes, &last), 0);
	ck_assert_uint_eq(n, 5);
	ck_assert_uint_eq(bytes, 50);
	ck_assert_int_gt(last, 0);
	/* Added later: past last, never paged. */
	submit_ok(j, &jn, late, NULL);

	/* Two jobs at most. */
	ck_assert_int_eq(jobs_load_unfinished(j, 0, last, 2, UINT64_MAX,
	                                      seen_cb, &s, &after, &done), 0);
	ck_assert_uint_eq(s.n, 2);
	ck_assert_str_eq(s.ids[0], ids[0]);
	ck_assert_str_eq(s.ids[1], ids[2]);   /* ids[1] is done */
	ck_assert(!done);
	/* 15 bytes: one job of 10; the next is not read. */
	ck_assert_int_eq(jobs_load_unfinished(j, after, last, 100, 15,
	                                      seen_cb, &s, &after, &done), 0);
	ck_assert_uint_eq(s.n, 3);
	ck_assert_str_eq(s.ids[2], ids[3]);
	ck_assert(!done);
	/* 9 bytes: nothing fits, nothing moves. */
	ck_assert_int_eq(jobs_load_unfinished(j, after, last, 100, 9,
	                                      seen_cb, &s, &same, &done), 0);
	ck_assert_uint_eq(s.n, 3);
	ck_assert_int_eq(same, after);
	ck_assert(!done);
	/* The rest, up to last: the later job is not among them. */
	ck_assert_int_eq(jobs_load_unfinished(j, after, last, 100, UINT64_MAX,
	                                      seen_cb, &s, &after, &done), 0);
	ck_assert(done);
	ck_assert_uint_eq(s.n, 5);
	ck_assert_str_eq(s.ids[3], ids[4]);
	ck_assert_str_eq(s.ids[4], ids[5]);
	ck_assert_int_eq(after, last);
	ck_assert_uint_eq(s.bytes, 50);
	jobs_free(j);
}
END_TEST

/* seen_cb, but refuses refuse_id once, as a failed allocation would. */
struct refusing {
	struct seen s;
	const char *refuse_id;
	unsigned offered, refused;
};

static int refuse_once_cb(void *arg, struct job *jb)
{
	struct refusing *rf = arg;

	rf->offered++;
	if (rf->refuse_id && strcmp(jb->id, rf->refuse_id) == 0) {
		rf->refuse_id = NULL;
		rf->refused++;
		job_free(jb);
		return -ENOMEM;
	}
	return seen_cb(&rf->s, jb);
}

/*
 * A job the callback refuses (out of memory) is not skipped: the page
 * stops before it, and the next page offers it again, first.
 */
START_TEST(test_load_unfinished_refused)
{
	char ids[3][JOB_ID_LEN + 1];
	struct job_spec jn = job_of(NULL, NULL, 0);
	struct refusing rf = { .refuse_id = NULL };
	struct jobs *j = open_ok(dir);
	uint64_t n, bytes;
	int64_t last, after, first;
	bool done = true;

	jn.body = "0123456789";
	jn.body_len = 10;
	for (int i = 0; i < 3; i++)
		submit_ok(j, &jn, ids[i], NULL);
	ck_assert_int_eq(jobs_unfinished(j, &n, &bytes, &last), 0);
	ck_assert_uint_eq(n, 3);
	rf.refuse_id = ids[1];
	ck_assert_int_eq(jobs_load_unfinished(j, 0, last, 100, UINT64_MAX,
	                                      refuse_once_cb, &rf, &first,
	                                      &done), -ENOMEM);
	ck_assert_uint_eq(rf.refused, 1);
	ck_assert_uint_eq(rf.s.n, 1);
	ck_assert_str_eq(rf.s.ids[0], ids[0]);
	ck_assert(!done);
	ck_assert_int_gt(first, 0);
	ck_assert_int_lt(first, last);
	/* Tried again from where it stopped: the refused job first. */
	ck_assert_int_eq(jobs_load_unfinished(j, first, last, 1, UINT64_MAX,
	                                      refuse_once_cb, &rf, &after,
	                                      &done), 0);
	ck_assert_uint_eq(rf.s.n, 2);
	ck_assert_str_eq(rf.s.ids[1], ids[1]);
	ck_assert_int_gt(after, first);
	ck_assert_int_eq(jobs_load_unfinished(j, after, last, 100, UINT64_MAX,
	                                      refuse_once_cb, &rf, &after,
	                                      &done), 0);
	ck_assert(done);
	ck_assert_int_eq(after, last);
	/* Every job taken once, every byte counted once. */
	ck_assert_uint_eq(rf.s.n, 3);
	ck_assert_str_eq(rf.s.ids[2], ids[2]);
	ck_assert_uint_eq(rf.s.bytes, bytes);
	ck_assert_uint_eq(rf.offered, 4);
	jobs_free(j);
}
END_TEST

/* Set by file_has_secret() when a file of the store holds `secret`. */
static const char *secret;
static char secret_file[300];

static int file_has_secret(const char *path, const struct stat *sb,
                           int flag, struct FTW *ftw)
{
	FILE *f;
	char *buf;
	size_t n;
	int found = 0;

	if (flag != FTW_F || sb->st_size == 0)
		return 0;
	f = fopen(path, "rb");
	ck_assert_ptr_nonnull(f);
	buf = malloc((size_t)sb->st_size);
	ck_assert_ptr_nonnull(buf);
	n = fread(buf, 1, (size_t)sb->st_size, f);
	fclose(f);
	if (memmem(buf, n, secret, strlen(secret))) {
		snprintf(secret_file, sizeof(secret_file), "%s", path);
		found = 1;
	}
	free(buf);
	return found;
}

/* The first file under dir holding s, or NULL. */
static const char *store_has(const char *s)
{
	secret = s;
	return nftw(dir, file_has_secret, 16, FTW_PHYS) == 1 ? secret_file
	                                                      : NULL;
}

START_TEST(test_finish_scrubs_request)
{
	struct job_spec jn = job_of("scrub", NULL, 0);
	char id[JOB_ID_LEN + 1];
	struct jobs *j = open_ok(dir);
	struct jobs_stats st;
	struct job *jb;
	const char *where;

	jn.headers_json = "[[\"Authorization\",\"Bearer SECRET-HDR-9f3\"]]";
	jn.body = "{\"card\":\"SECRET-BODY-77a\"}";
	jn.body_len = strlen(jn.body);
	jn.url = "http://api.example.com/v1/x?api_key=SECRET-QUERY-1c";
	submit_ok(j, &jn, id, NULL);
	ck_assert_ptr_nonnull(store_has("SECRET-HDR-9f3"));
	ck_assert_int_eq(jobs_finish(j, id, 200, NULL, "ok", 2, true), 0);
	ck_assert_int_eq(jobs_checkpoint(j), 0);
	jb = get_ok(j, id);
	ck_assert_str_eq(jb->headers_json, "[]");
	ck_assert_uint_eq(jb->body_len, 0);
	ck_assert_str_eq(jb->url, "http://api.example.com/v1/x");
	ck_assert_str_eq(jb->method, "POST");
	/* What the deliveries need stays. */
	ck_assert_uint_eq(jb->resp_body_len, 2);
	ck_assert_int_eq(jb->deliveries[0].state, DELIVERY_PENDING);
	job_free(jb);
	/* Not in the database, its free space, the WAL or anywhere. */
	where = store_has("SECRET-HDR-9f3");
	ck_assert_msg(!where, "header secret in %s", where);
	where = store_has("SECRET-BODY-77a");
	ck_assert_msg(!where, "body secret in %s", where);
	where = store_has("SECRET-QUERY-1c");
	ck_assert_msg(!where, "query secret in %s", where);
	jobs_stats(j, &st);
	ck_assert_uint_ge(st.checkpoints, 1);
	jobs_free(j);
}
END_TEST

START_TEST(test_migrate_v1)
{
	char path[300], id[JOB_ID_LEN + 1];
	struct job_result res = { .status_code = 504, .failed = true,
	                          .error_code = "timeout",
	                          .error_message = "m" };
	struct op_counter c = { .lock = PTHREAD_MUTEX_INITIALIZER,
	                        .cond = PTHREAD_COND_INITIALIZER };
	struct job_spec jn = job_of(NULL, NULL, 0);
	struct jobs *j;
	struct job *jb;
	sqlite3 *db;

	snprintf(path, sizeof(path), "%s/jobs.db", dir);
	ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(db,
		"CREATE TABLE schema_version (version INTEGER NOT NULL);"
		"CREATE TABLE jobs (id TEXT PRIMARY KEY, cred_key BLOB NOT NULL,"
		" idempotent_key TEXT, state TEXT NOT NULL, status TEXT,"
		" created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL,"
		" finished_ms INTEGER, attempts INTEGER NOT NULL DEFAULT 0,"
		" method TEXT NOT NULL, url TEXT NOT NULL, headers TEXT NOT NULL,"
		" body BLOB NOT NULL, metadata TEXT, quorum INTEGER NOT NULL,"
		" resp_status INTEGER, resp_headers TEXT, resp_body BLOB);"
		"CREATE TABLE deliveries (job_id TEXT NOT NULL, url TEXT NOT NULL,"
		" state TEXT NOT NULL DEFAULT 'pending', attempts INTEGER NOT NULL"
		" DEFAULT 0, next_at INTEGER NOT NULL, last_status INTEGER,"
		" last_error TEXT, delivered_at INTEGER,"
		" PRIMARY KEY (job_id, url));"
		"INSERT INTO schema_version VALUES (1);", NULL, NULL, NULL),
		SQLITE_OK);
	sqlite3_close(db);

	j = open_ok(dir);
	submit_ok(j, &jn, id, NULL);
	ck_assert_int_eq(jobs_finish_async(j, id, &res, op_done, &c), 0);
	op_wait(&c, 1);
	ck_assert_uint_eq(c.failed, 0);
	jb = get_ok(j, id);
	ck_assert_str_eq(jb->error_code, "timeout");
	job_free(jb);
	jobs_free(j);
	/* Opened again: now version 3, no second migration. */
	j = open_ok(dir);
	job_free(get_ok(j, id));
	jobs_free(j);
}
END_TEST

/*
 * A version 2 store (keys scoped by credential only): opened, its keyed
 * jobs are scoped by their destination, and they still dedupe.
 */
START_TEST(test_migrate_v2)
{
	static const unsigned char cred[] = { 0xaa, 0x01 };
	char path[300], id[JOB_ID_LEN + 1];
	struct job_spec jn = job_of("k2", cred, sizeof(cred));
	const char *old = "job_000000000001" "0123456789abcdef0123456789abcdef";
	struct jobs *j;
	struct job *jb;
	sqlite3 *db;
	bool dup;

	snprintf(path, sizeof(path), "%s/jobs.db", dir);
	ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(db,
		V2_SCHEMA
		"INSERT INTO jobs (id, cred_key, idempotent_key, state,"
		" created_ms, updated_ms, method, url, headers, body, quorum)"
		" VALUES ('job_0000000000010123456789abcdef0123456789abcdef',"
		" x'aa01', 'k2', 'queued', 1, 1, 'POST',"
		" 'http://API.example.com/v1/x', '[]', x'', 1);"
		"INSERT INTO deliveries (job_id, url, next_at) VALUES"
		" ('job_0000000000010123456789abcdef0123456789abcdef',"
		" 'http://127.0.0.1:9/a', 1);"
		"INSERT INTO schema_version VALUES (2);", NULL, NULL, NULL),
		SQLITE_OK);
	sqlite3_close(db);

	j = open_ok(dir);
	jb = get_ok(j, old);
	ck_assert_int_eq(jb->state, JOB_QUEUED);
	job_free(jb);
	/* Same credential, key and destination: the old job. */
	submit_ok(j, &jn, id, &dup);
	ck_assert(dup);
	ck_assert_str_eq(id, old);
	/* Another destination: a new job. */
	jn.dest = "http://api.example.com:8080";
	submit_ok(j, &jn, id, &dup);
	ck_assert(!dup);
	jobs_free(j);

	/* Opened again: version 3, no second migration. */
	ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
	{
		sqlite3_stmt *st;

		ck_assert_int_eq(sqlite3_prepare_v2(db, "SELECT version FROM"
		                 " schema_version", -1, &st, NULL), SQLITE_OK);
		ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
		ck_assert_int_eq(sqlite3_column_int(st, 0), 3);
		sqlite3_finalize(st);
	}
	sqlite3_close(db);
	j = open_ok(dir);
	submit_ok(j, &jn, id, &dup);
	ck_assert(dup);
	jobs_free(j);
}
END_TEST

/*
 * Waits up to 5 s for the writer's checkpoint count to reach n; the
 * files tell the rest.
 */
static void checkpoints_wait(struct jobs *j, uint64_t n)
{
	struct jobs_stats st;

	for (int i = 0; i < 500; i++) {
		jobs_stats(j, &st);
		if (st.checkpoints >= n)
			return;
		usleep(10000);
	}
}

/* None of the three secrets in any file of the store. */
static void assert_scrubbed(const char *when)
{
	static const char *const secrets[] = { "HEADERSECRET", "BODYSECRET",
	                                       "QUERYSECRET" };
	const char *where;

	for (size_t i = 0; i < 3; i++) {
		where = store_has(secrets[i]);
		ck_assert_msg(!where, "%s %s in %s", when, secrets[i], where);
	}
}

/*
 * A finished job stored before the scrub (a version 2 store) keeps no
 * credential once the store is opened: scrubbed at migration, the WAL
 * truncated at start; and a done job left unscrubbed in a version 3
 * store is scrubbed at the next open.
 */
START_TEST(test_migrate_scrubs_done)
{
	const char *id = "job_000000000001" "0123456789abcdef0123456789abcdef";
	char path[300], sql[20000], big[8001];
	struct jobs *j;
	struct job *jb;
	sqlite3 *db;

	/* Large enough for overflow pages. */
	for (size_t i = 0; i < 8000; i += 10)
		memcpy(big + i, "BODYSECRET", 10);
	big[8000] = '\0';
	snprintf(path, sizeof(path), "%s/jobs.db", dir);
	snprintf(sql, sizeof(sql),
		V2_SCHEMA
		"INSERT INTO jobs (id, cred_key, idempotent_key, state, status,"
		" created_ms, updated_ms, finished_ms, method, url, headers,"
		" body, quorum, resp_status, resp_headers, resp_body)"
		" VALUES ('%s', x'', NULL, 'done', 'success', 1, 2, 2, 'POST',"
		" 'http://api.example.com/v1/x?api_key=QUERYSECRET',"
		" '[[\"Authorization\",\"Bearer HEADERSECRET\"]]', CAST('%s' AS"
		" BLOB), 1, 200, '[]', x'6f6b');"
		"INSERT INTO deliveries (job_id, url, state, next_at) VALUES"
		" ('%s', 'http://127.0.0.1:9/a', 'delivered', 2);"
		"INSERT INTO schema_version VALUES (2);", id, big, id);
	ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	ck_assert_ptr_nonnull(store_has("HEADERSECRET"));

	j = open_ok(dir);
	/* While open: the WAL is truncated once at start. */
	checkpoints_wait(j, 1);
	assert_scrubbed("open");
	jb = get_ok(j, id);
	ck_assert_str_eq(jb->headers_json, "[]");
	ck_assert_uint_eq(jb->body_len, 0);
	ck_assert_str_eq(jb->url, "http://api.example.com/v1/x");
	ck_assert_uint_eq(jb->resp_body_len, 2);
	job_free(jb);
	jobs_free(j);
	assert_scrubbed("closed");

	/* A version 3 store with a done job left unscrubbed. */
	ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(db, "UPDATE jobs SET"
		" url = 'http://api.example.com/v1/x?api_key=QUERYSECRET',"
		" headers = '[[\"Authorization\",\"Bearer HEADERSECRET\"]]',"
		" body = CAST('BODYSECRET' AS BLOB)", NULL, NULL, NULL),
		SQLITE_OK);
	sqlite3_close(db);
	ck_assert_ptr_nonnull(store_has("HEADERSECRET"));
	j = open_ok(dir);
	checkpoints_wait(j, 1);
	assert_scrubbed("reopened");
	jobs_free(j);
	assert_scrubbed("closed again");
}
END_TEST

START_TEST(test_open_errors)
{
	char path[300];
	FILE *f;
	int err = 0;

	snprintf(path, sizeof(path), "%s/file", dir);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fclose(f);
	ck_assert_ptr_null(jobs_open(path, &err));
	ck_assert_int_lt(err, 0);

	/* Not a database: refused, not overwritten. */
	err = 0;
	snprintf(path, sizeof(path), "%s/jobs.db", dir);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs("this is not an SQLite database, it is a text file....", f);
	fclose(f);
	ck_assert_ptr_null(jobs_open(dir, &err));
	ck_assert_int_lt(err, 0);
	jobs_free(NULL);
	job_free(NULL);
}
END_TEST

static Suite *jobs_suite(void)
{
	Suite *s = suite_create("jobs");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_round_trip);
	tcase_add_test(tc, test_one_owner);
	tcase_add_test(tc, test_empty_body_no_cred);
	tcase_add_test(tc, test_invalid_refused);
	tcase_add_test(tc, test_idempotency);
	tcase_add_test(tc, test_group_commit);
	tcase_add_test(tc, test_async_submit);
	tcase_add_test(tc, test_reopen_load_pending);
	tcase_add_test(tc, test_finish_and_deliveries);
	tcase_add_test(tc, test_result_and_light_deliveries);
	tcase_add_test(tc, test_prune);
	tcase_add_test(tc, test_kill9_loses_nothing);
	tcase_add_test(tc, test_full_max_pages);
	tcase_add_test(tc, test_full_tmpfs);
	tcase_add_test(tc, test_open_errors);
	tcase_add_test(tc, test_async_verbs);
	tcase_add_test(tc, test_migrate_v1);
	tcase_add_test(tc, test_migrate_v2);
	tcase_add_test(tc, test_load_unfinished_pages);
	tcase_add_test(tc, test_load_unfinished_refused);
	tcase_add_test(tc, test_finish_scrubs_request);
	tcase_add_test(tc, test_migrate_scrubs_done);
	suite_add_tcase(s, tc);
	return s;
}

TESTLIB_MAIN(jobs_suite)

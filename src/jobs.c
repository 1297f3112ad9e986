/*
 * jobs.c - the durable job store (see jobs.h): open and close, and the
 * verbs, which queue their change for the writer thread (jobs_writer.c)
 * or read through the read connections (jobs_read.c). The SQL is in
 * jobs_sql.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jobs.h"
#include "jobs_read.h"
#include "jobs_test.h"
#include "jobs_writer.h"

struct jobs {
	int lock_fd;                  /* flock()ed jobs.lock: one daemon */
	struct jobs_writer *w;
	struct jobs_reader *rd;
};

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
static bool job_spec_valid(const struct job_spec *spec)
{
	if (!spec->method || !spec->url || spec->n_webhooks == 0 ||
	    (spec->dedupe && !spec->dest) ||
	    spec->quorum < 1 || spec->quorum > spec->n_webhooks ||
	    (spec->body_len && !spec->body) || (spec->cred_len && !spec->cred))
		return false;
	for (size_t i = 0; i < spec->n_webhooks; i++) {
		if (!spec->webhooks[i])
			return false;
		for (size_t k = 0; k < i; k++)
			if (strcmp(spec->webhooks[i], spec->webhooks[k]) == 0)
				return false;
	}
	return true;
}

/* Checks spec and readies op to add it under a fresh id. */
static int submit_init(struct jobs *j, const struct job_spec *spec,
                       struct jop *op)
{
	if (!job_spec_valid(spec))
		return -EINVAL;
	op->type = JOP_SUBMIT;
	op->spec = spec;
	return new_id(jobs_writer_now(j->w), op->id);
}

int jobs_submit_async(struct jobs *j, const struct job_spec *spec,
                      jobs_submit_done *done, void *arg)
{
	struct jop *op = calloc(1, sizeof(*op));
	int r;

	if (!op)
		return -ENOMEM;
	op->heap = true;
	op->cb = done;
	op->cb_arg = arg;
	r = submit_init(j, spec, op);
	if (r == 0)
		r = jobs_writer_enqueue(j->w, op);
	if (r < 0)
		free(op);
	return r;
}

int jobs_submit(struct jobs *j, const struct job_spec *spec,
                char ret_id[JOB_ID_LEN + 1], bool *ret_duplicate)
{
	struct jop op = { 0 };
	int r = submit_init(j, spec, &op);

	if (r == 0)
		r = jobs_writer_run(j->w, &op);
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

	return set_id(&op, id) < 0 ? -ENOENT : jobs_writer_run(j->w, &op);
}

int jobs_finish(struct jobs *j, const char *id, int status_code,
                const char *headers_json, const void *body, size_t len,
                bool success)
{
	struct jop op = { .type = JOP_FINISH, .res = {
		.status_code = status_code, .headers_json = headers_json,
		.body = body, .body_len = len, .failed = !success } };

	if (len && !body)
		return -EINVAL;
	return set_id(&op, id) < 0 ? -ENOENT : jobs_writer_run(j->w, &op);
}

int jobs_delivery_result(struct jobs *j, const char *id, const char *url,
                         bool ok, int status, const char *error,
                         int64_t next_at)
{
	struct jop op = { .type = JOP_DELIVERY, .url = url, .ok = ok,
	                  .status = status, .text = error, .when = next_at };

	if (!url || set_id(&op, id) < 0)
		return -ENOENT;
	return jobs_writer_run(j->w, &op);
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

/* Queues op; frees it when the store takes no more. */
static int enqueue_async(struct jobs *j, struct jop *op)
{
	int r = jobs_writer_enqueue(j->w, op);

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
	char *room;
	struct jop *op;

	if (res->body_len && !res->body)
		return -EINVAL;
	op = async_op(JOP_FINISH, id, job_result_room(res), done, arg, &room);
	if (!op)
		return id && strlen(id) == JOB_ID_LEN ? -ENOMEM : -ENOENT;
	op->res = job_result_copy(res, room);
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
	op = async_op(JOP_DELIVERY, id,
	              job_str_size(url) + job_str_size(error), done, arg,
	              &room);
	if (!op)
		return id && strlen(id) == JOB_ID_LEN ? -ENOMEM : -ENOENT;
	op->url = job_room_str(&room, url);
	op->text = job_room_str(&room, error);
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
	int r = jobs_writer_run(j->w, &op);

	if (r < 0)
		return r;
	if (ret_pruned)
		*ret_pruned = (unsigned)op.count;
	return 0;
}

int jobs_checkpoint(struct jobs *j)
{
	struct jop op = { .type = JOP_CHECKPOINT };

	return jobs_writer_run(j->w, &op);
}

int jobs_set_max_pages(struct jobs *j, unsigned long pages)
{
	struct jop op = { .type = JOP_MAX_PAGES, .count = pages };

	return jobs_writer_run(j->w, &op);
}

void jobs_stats(struct jobs *j, struct jobs_stats *ret_stats)
{
	jobs_writer_stats(j->w, ret_stats);
}

void jobs_set_clock(struct jobs *j, int64_t (*now_ms)(void *arg), void *arg)
{
	jobs_writer_set_clock(j->w, now_ms, arg);
}

int jobs_get(struct jobs *j, const char *id, struct job **ret_job)
{
	return jobs_reader_get(j->rd, id, ret_job);
}

int jobs_get_result(struct jobs *j, const char *id, struct job **ret_job)
{
	return jobs_reader_get_result(j->rd, id, ret_job);
}

int jobs_load_pending(struct jobs *j, int (*cb)(void *arg, struct job *jb),
                      void *arg)
{
	return jobs_reader_load_pending(j->rd, cb, arg);
}

int jobs_unfinished(struct jobs *j, uint64_t *ret_jobs, uint64_t *ret_bytes,
                    int64_t *ret_last)
{
	return jobs_reader_unfinished(j->rd, ret_jobs, ret_bytes, ret_last);
}

int jobs_load_unfinished(struct jobs *j, int64_t after, int64_t last,
                         size_t max_jobs, uint64_t max_bytes,
                         int (*cb)(void *arg, struct job *jb), void *arg,
                         int64_t *ret_after, bool *ret_done)
{
	return jobs_reader_load_unfinished(j->rd, after, last, max_jobs,
	                                   max_bytes, cb, arg, ret_after,
	                                   ret_done);
}

int jobs_load_deliveries(struct jobs *j, int (*cb)(void *arg, struct job *jb),
                         void *arg)
{
	return jobs_reader_load_deliveries(j->rd, cb, arg);
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
	struct jobs *j;
	char path[4096];
	int r;

	j = calloc(1, sizeof(*j));
	if (!j) {
		*ret_err = -ENOMEM;
		return NULL;
	}
	j->lock_fd = -1;
	r = snprintf(path, sizeof(path), "%s/jobs.db", state_dir) <
	    (int)sizeof(path) ? 0 : -ENAMETOOLONG;
	if (r == 0)
		r = create_private(state_dir, path);
	if (r == 0)
		r = lock_store(j, state_dir);
	if (r == 0)
		r = jobs_writer_open(path, &j->w);
	if (r == 0)
		r = jobs_reader_open(path, &j->rd);
	if (r == 0)
		r = jobs_writer_start(j->w);
	if (r < 0) {
		jobs_free(j);
		*ret_err = r;
		return NULL;
	}
	return j;
}

void jobs_shutdown(struct jobs *j)
{
	if (j)
		jobs_writer_stop(j->w);
}

void jobs_free(struct jobs *j)
{
	if (!j)
		return;
	jobs_shutdown(j);
	jobs_reader_free(j->rd);
	/* The last connection closed checkpoints and removes the WAL. */
	jobs_writer_free(j->w);
	if (j->lock_fd >= 0)
		close(j->lock_fd);
	free(j);
}

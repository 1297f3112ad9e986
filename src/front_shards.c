/*
 * front_shards.c - many small libmicrohttpd daemons, run by a curlloop's
 * thread (the engine's).
 *
 * Each shard is an external-epoll daemon whose epoll fd sits in the loop's
 * epoll set, with an eventfd for sockets and resumes from other threads.
 * A shard runs when its fd is readable, when libmicrohttpd says it has
 * work left (timeout 0: the "hot" list, run in the loop's tail after the
 * engine's round has woken whom it answered), or when its earliest
 * connection timeout is due (a sweep of all shards, at most once a second
 * unless a shard asks sooner).
 */
#include <errno.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <utlist.h>

#include "clock.h"
#include "curlloop.h"
#include "log.h"
#include "front_shards.h"

#define SWEEP_MS 1000

struct shard {
	struct curlloop_watch w;      /* its epoll fd; first: the pointer */
	struct shards *set;
	int fd;                       /* MHD's epoll fd */
	struct MHD_Daemon *mhd;
	unsigned n_conns;
	bool in_room, hot;
	bool resumed;                 /* in the resumed list; under lock */
	struct shard *room_next;      /* shards with a free slot */
	struct shard *hot_next;       /* shards to run again at once */
	struct shard *resumed_next;
};

struct pending_add {
	int fd;
	socklen_t len;
	struct sockaddr_storage sa;
};

struct shards {
	shards_make_fn *make;
	void *arg;
	unsigned per_shard, limit, total;

	struct shard **v;
	unsigned n, cap;
	struct shard *room, *hot;     /* stacks (utlist LL) */
	struct shard *adding;         /* shard in MHD_add_connection() */
	int64_t next_sweep;

	int efd;
	struct curlloop_watch efd_w;
	struct curlloop *loop;        /* runs the shards; NULL: not attached */
	void (*between)(void *arg);

	pthread_mutex_t lock;         /* guards adds and resumed */
	struct shard *resumed;        /* shards with a resume to run */
	struct pending_add *adds;
	size_t n_adds, cap_adds;
};

static void shard_ready(struct curlloop_watch *w, uint32_t events);

static struct shard *shard_make(struct shards *s)
{
	const union MHD_DaemonInfo *di;
	struct shard *sh, **v;

	if (s->n == s->cap) {
		unsigned cap = s->cap ? s->cap * 2 : 8;

		v = realloc(s->v, cap * sizeof(*v));
		if (!v)
			return NULL;
		s->v = v;
		s->cap = cap;
	}
	sh = calloc(1, sizeof(*sh));
	if (!sh)
		return NULL;
	sh->mhd = s->make(s->arg, s->per_shard + 16);
	if (!sh->mhd)
		goto fail;
	di = MHD_get_daemon_info(sh->mhd, MHD_DAEMON_INFO_EPOLL_FD);
	sh->w.ready = shard_ready;
	sh->set = s;
	sh->fd = di ? di->epoll_fd : -1;
	if (!di || curlloop_watch_add(s->loop, sh->fd, EPOLLIN, &sh->w) < 0)
		goto fail;
	s->v[s->n++] = sh;
	sh->in_room = true;
	LL_PREPEND2(s->room, sh, room_next);
	if (s->n > 1)
		log_debug("http front: shard %u made", s->n);
	return sh;
fail:
	if (sh->mhd)
		MHD_stop_daemon(sh->mhd);
	free(sh);
	return NULL;
}

/* A shard with a free slot: the most recently freed one, or a new one. */
static struct shard *shard_pick(struct shards *s)
{
	while (s->room && s->room->n_conns >= s->per_shard) {
		struct shard *full = s->room;

		s->room = full->room_next;
		full->in_room = false;
	}
	return s->room ? s->room : shard_make(s);
}

static void hot_push(struct shards *s, struct shard *sh)
{
	if (sh->hot)
		return;
	sh->hot = true;
	LL_PREPEND2(s->hot, sh, hot_next);
}

static void shard_run(struct shards *s, struct shard *sh, int64_t now)
{
	MHD_UNSIGNED_LONG_LONG t;

	MHD_run(sh->mhd);
	if (MHD_get_timeout(sh->mhd, &t) != MHD_YES)
		return;
	if (t == 0)
		hot_push(s, sh);
	else if (now + (int64_t)t < s->next_sweep)
		s->next_sweep = now + (int64_t)t;
}

static void shard_ready(struct curlloop_watch *w, uint32_t events)
{
	struct shard *sh = (struct shard *)w;

	(void)events;
	shard_run(sh->set, sh, clock_now_ms());
}

static void run_hot(struct shards *s, int64_t now)
{
	struct shard *list = s->hot;

	s->hot = NULL;
	while (list) {
		struct shard *sh = list;

		list = sh->hot_next;
		sh->hot = false;
		shard_run(s, sh, now);
	}
}

static void add_one(struct shards *s, struct pending_add *a)
{
	struct shard *sh;

	if (s->total >= s->limit) {
		log_warn("client connection refused: %u connections open",
		         s->total);
		close(a->fd);
		return;
	}
	sh = shard_pick(s);
	if (!sh) {
		log_warn("client connection refused: cannot start a shard");
		close(a->fd);
		return;
	}
	s->adding = sh;
	if (MHD_add_connection(sh->mhd, a->fd, (struct sockaddr *)&a->sa,
	                       a->len) != MHD_YES)
		log_warn("client connection refused by the http front");
	s->adding = NULL;
	/* The request line is already in the socket: run it at once. */
	hot_push(s, sh);
}

/* New sockets and resumed shards, signalled through the eventfd. */
static void take_signalled(struct curlloop_watch *w, uint32_t events)
{
	struct shards *s = (struct shards *)((char *)w -
	                                     offsetof(struct shards, efd_w));
	struct pending_add *adds;
	struct shard *resumed;
	uint64_t v;
	size_t n;

	(void)events;
	if (read(s->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		log_debug("shards: eventfd read: %s", strerror(errno));
	pthread_mutex_lock(&s->lock);
	adds = s->adds;
	n = s->n_adds;
	s->adds = NULL;
	s->n_adds = s->cap_adds = 0;
	resumed = s->resumed;
	s->resumed = NULL;
	/*
	 * Their next MHD_run() starts by resuming: run them now. Walked
	 * under the lock: once its flag is clear a shard may be resumed
	 * again, and shards_resume() rewrites its resumed_next.
	 */
	for (struct shard *sh = resumed; sh; sh = sh->resumed_next) {
		sh->resumed = false;
		hot_push(s, sh);
	}
	pthread_mutex_unlock(&s->lock);
	for (size_t i = 0; i < n; i++)
		add_one(s, &adds[i]);
	free(adds);
}

/*
 * After each of the loop's rounds: the shards that have work left (those
 * the engine's wakes resumed among them), and the sweep when it is due.
 * Returns when the loop must come back at the latest (monotonic us).
 */
static int64_t shards_tail(void *arg)
{
	struct shards *s = arg;
	int64_t now = clock_now_ms();

	if (s->between)
		s->between(s->arg);
	run_hot(s, now);
	if (now >= s->next_sweep) {
		s->next_sweep = now + SWEEP_MS;
		for (unsigned i = 0; i < s->n; i++)
			shard_run(s, s->v[i], now);
	}
	return s->hot ? 0 : s->next_sweep * 1000;
}

/* Wakes the loop for the shards (new sockets, resumes). Any thread. */
static void wake_thread(struct shards *s)
{
	uint64_t one = 1;

	/* EAGAIN: the counter is full, so the thread is due to wake anyway. */
	if (write(s->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_debug("shards: eventfd write: %s", strerror(errno));
}

void shards_set_between(struct shards *s, void (*fn)(void *arg))
{
	s->between = fn;
}

void shards_kick(struct shards *s)
{
	wake_thread(s);
}

struct shards *shards_new(shards_make_fn *make, void *arg,
                          unsigned per_shard, unsigned limit)
{
	struct shards *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->make = make;
	s->arg = arg;
	s->per_shard = per_shard ? per_shard : 1;
	s->limit = limit;
	s->efd = -1;
	pthread_mutex_init(&s->lock, NULL);
	s->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	s->efd_w.ready = take_signalled;
	if (s->efd < 0) {
		shards_free(s);
		return NULL;
	}
	return s;
}

/* On the loop's thread: the loop lets go of every shard. */
static int detach(void *arg)
{
	struct shards *s = arg;

	curlloop_del_tail(s->loop, shards_tail, s);
	curlloop_watch_del(s->loop, s->efd, &s->efd_w);
	for (unsigned i = 0; i < s->n; i++)
		curlloop_watch_del(s->loop, s->v[i]->fd, &s->v[i]->w);
	return 0;
}

/* On the loop's thread: the first shard, the eventfd, the tail. */
static int attach(void *arg)
{
	struct shards *s = arg;
	int err = curlloop_watch_add(s->loop, s->efd, EPOLLIN, &s->efd_w);

	if (err < 0)
		return err;
	s->next_sweep = clock_now_ms() + SWEEP_MS;
	if (!shard_make(s))
		err = -EIO;
	else
		err = curlloop_add_tail(s->loop, shards_tail, s);
	if (err < 0)
		detach(s);
	return err;
}

int shards_start(struct shards *s, struct curlloop *loop)
{
	int err;

	s->loop = loop;
	err = curlloop_call(loop, attach, s);
	if (err < 0)
		s->loop = NULL;
	return err;
}

int shards_add(struct shards *s, int fd, const struct sockaddr *sa,
               socklen_t len)
{
	int err = 0;

	if (len > sizeof(struct sockaddr_storage)) {
		close(fd);
		return -EINVAL;
	}
	if (curlloop_on_thread(s->loop)) {
		/* The listener runs on the loop too: no queue, no wakeup. */
		struct pending_add a = { .fd = fd, .len = len };

		memcpy(&a.sa, sa, len);
		add_one(s, &a);
		return 0;
	}
	pthread_mutex_lock(&s->lock);
	if (s->n_adds == s->cap_adds) {
		size_t cap = s->cap_adds ? s->cap_adds * 2 : 16;
		struct pending_add *a = realloc(s->adds, cap * sizeof(*a));

		if (!a) {
			err = -ENOMEM;
			goto out;
		}
		s->adds = a;
		s->cap_adds = cap;
	}
	s->adds[s->n_adds].fd = fd;
	s->adds[s->n_adds].len = len;
	memcpy(&s->adds[s->n_adds].sa, sa, len);
	s->n_adds++;
out:
	pthread_mutex_unlock(&s->lock);
	if (err) {
		close(fd);
		return err;
	}
	wake_thread(s);
	return 0;
}

void shards_resume(struct shards *s, struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci;
	struct shard *sh;
	bool signal = false;

	MHD_resume_connection(c);
	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	sh = ci ? ci->socket_context : NULL;
	if (!sh)
		return;
	if (curlloop_on_thread(s->loop)) {
		hot_push(s, sh); /* the loop's tail runs it */
		return;
	}
	pthread_mutex_lock(&s->lock);
	if (!sh->resumed) {
		sh->resumed = true;
		signal = !s->resumed;
		LL_PREPEND2(s->resumed, sh, resumed_next);
	}
	pthread_mutex_unlock(&s->lock);
	if (signal)
		wake_thread(s);
}

void shards_conn_started(struct shards *s, void **socket_ctx)
{
	struct shard *sh = s->adding;

	*socket_ctx = sh;
	if (!sh)
		return;
	sh->n_conns++;
	s->total++;
}

void shards_conn_closed(struct shards *s, void **socket_ctx)
{
	struct shard *sh = *socket_ctx;

	if (!sh)
		return;
	*socket_ctx = NULL;
	sh->n_conns--;
	s->total--;
	if (!sh->in_room && sh->n_conns < s->per_shard) {
		sh->in_room = true;
		LL_PREPEND2(s->room, sh, room_next);
	}
}

unsigned shards_count(const struct shards *s)
{
	return s->n;
}

void shards_stop(struct shards *s)
{
	if (!s)
		return;
	if (s->loop) {
		curlloop_call(s->loop, detach, s);
		s->loop = NULL;
	}
	for (unsigned i = 0; i < s->n; i++) {
		if (s->v[i]->mhd) {
			MHD_stop_daemon(s->v[i]->mhd);
			s->v[i]->mhd = NULL;
		}
	}
	for (size_t i = 0; i < s->n_adds; i++)
		close(s->adds[i].fd);
	s->n_adds = 0;
}

void shards_free(struct shards *s)
{
	if (!s)
		return;
	shards_stop(s);
	for (unsigned i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	free(s->adds);
	if (s->efd >= 0)
		close(s->efd);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

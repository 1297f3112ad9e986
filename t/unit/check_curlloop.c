/*
 * check_curlloop.c - the loop without network: messages posted from
 * other threads arrive in order and once; timers fire in time order, not
 * before their time, and a disarmed one never; round() asks for the next
 * round at a time of its choosing, and a precise loop keeps each such time
 * within its spinning budget; a stop hands over the last messages
 * before stopped(), once, also for a loop that never ran; a post after
 * the stop is refused. A transfer to a file:// URL shows done(). A guest's
 * fd and tail run on the loop's thread; what it posts there is handed
 * over in the same round, or the next without a wait; the thread goes on
 * for it after a stop until it leaves.
 */
#include <check.h>
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "clock.h"
#include "curlloop.h"
#include "heap.h"
#include "testlib.h"

#define N_MSGS 1000
#define N_THREADS 4

struct msg {
	struct curlloop_msg link;
	int from, seq;
};

struct ltimer {
	struct heap_node node;
	int id;
	int64_t due;
};

/* What the loop saw; written on its thread, read after the stop. */
struct seen {
	int last_seq[N_THREADS];
	int n_msgs;
	bool out_of_order;
	int fired[16];
	int64_t fired_late[16];
	int n_fired;
	bool early;
	int n_rounds;
	int64_t want;               /* round(): the time to ask for */
	int64_t every;              /* then ask again this much later */
	int n_want;                 /* that many times */
	atomic_int n_round_at;      /* rounds at or after want */
	int stopped;
	int msgs_at_stop;           /* messages handed over before stopped() */
	int n_done;
	CURLcode done_rc;
	pthread_mutex_t lock;
	pthread_cond_t cond;
};

static struct seen sn;

static void on_inbox(void *arg, struct curlloop_msg *head)
{
	(void)arg;
	for (struct curlloop_msg *l = head; l; l = l->next) {
		struct msg *m = (struct msg *)(void *)l;

		if (m->seq != sn.last_seq[m->from] + 1)
			sn.out_of_order = true;
		sn.last_seq[m->from] = m->seq;
		sn.n_msgs++;
	}
}

static void on_timer(void *arg, struct heap_node *n)
{
	struct ltimer *t = (struct ltimer *)(void *)n;
	int64_t now = clock_now_us();

	(void)arg;
	if (now < t->due)
		sn.early = true;
	if (sn.n_fired < 16) {
		sn.fired_late[sn.n_fired] = now - t->due;
		sn.fired[sn.n_fired++] = t->id;
	}
}

static struct curlloop *loop;

static void on_done(void *arg, CURL *easy, CURLcode rc)
{
	(void)arg;
	curlloop_remove(loop, easy);
	curl_easy_cleanup(easy);
	pthread_mutex_lock(&sn.lock);
	sn.n_done++;
	sn.done_rc = rc;
	pthread_cond_broadcast(&sn.cond);
	pthread_mutex_unlock(&sn.lock);
}

static int64_t on_round(void *arg)
{
	(void)arg;
	sn.n_rounds++;
	if (sn.want && clock_now_us() >= sn.want) {
		atomic_fetch_add(&sn.n_round_at, 1);
		sn.want = atomic_load(&sn.n_round_at) < sn.n_want ?
		          sn.want + sn.every : 0;
	}
	return sn.want ? sn.want : INT64_MAX;
}

static void on_stopped(void *arg)
{
	(void)arg;
	sn.stopped++;
	sn.msgs_at_stop = sn.n_msgs;
}

static const struct curlloop_ops ops = {
	.inbox = on_inbox,
	.timer = on_timer,
	.done = on_done,
	.round = on_round,
	.stopped = on_stopped,
};

/* Waits up to 5 s for *v to reach n (written by the loop's thread). */
static void wait_int(const volatile int *v, int n)
{
	for (int i = 0; i < 500 && *v < n; i++)
		usleep(10 * 1000);
}

static size_t discard(char *p, size_t size, size_t n, void *arg)
{
	(void)p;
	(void)arg;
	return size * n;
}

static void setup(void)
{
	memset(&sn, 0, sizeof(sn));
	for (int i = 0; i < N_THREADS; i++)
		sn.last_seq[i] = -1;
	pthread_mutex_init(&sn.lock, NULL);
	pthread_cond_init(&sn.cond, NULL);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	loop = NULL;
}

static void teardown(void)
{
	curlloop_free(loop);
	pthread_cond_destroy(&sn.cond);
	pthread_mutex_destroy(&sn.lock);
	curl_global_cleanup();
}

struct poster {
	int id;
	struct msg m[N_MSGS];
};

static void *post_all(void *arg)
{
	struct poster *p = arg;

	for (int i = 0; i < N_MSGS; i++) {
		p->m[i] = (struct msg){ .from = p->id, .seq = i };
		ck_assert_int_eq(curlloop_post(loop, &p->m[i].link), 0);
	}
	return NULL;
}

START_TEST(messages_in_order_from_threads)
{
	static struct poster p[N_THREADS];
	pthread_t th[N_THREADS];

	loop = curlloop_new(&ops, NULL, 8);
	ck_assert_ptr_nonnull(loop);
	ck_assert_int_eq(curlloop_start(loop), 0);
	for (int i = 0; i < N_THREADS; i++) {
		p[i].id = i;
		ck_assert_int_eq(pthread_create(&th[i], NULL, post_all, &p[i]),
		                 0);
	}
	for (int i = 0; i < N_THREADS; i++)
		pthread_join(th[i], NULL);
	curlloop_stop(loop);
	/* Every message, each once, in each poster's order, before stop. */
	ck_assert_int_eq(sn.n_msgs, N_THREADS * N_MSGS);
	ck_assert(!sn.out_of_order);
	ck_assert_int_eq(sn.stopped, 1);
	ck_assert_int_eq(sn.msgs_at_stop, N_THREADS * N_MSGS);
	/* Stopped: refused, and a second stop changes nothing. */
	{
		struct msg late = { .from = 0, .seq = N_MSGS };

		ck_assert_int_eq(curlloop_post(loop, &late.link),
		                 -ESHUTDOWN);
	}
	curlloop_stop(loop);
	ck_assert_int_eq(sn.stopped, 1);
	ck_assert_int_eq(sn.n_msgs, N_THREADS * N_MSGS);
}
END_TEST

START_TEST(never_started)
{
	struct msg m = { .from = 0, .seq = 0 };

	loop = curlloop_new(&ops, NULL, 8);
	ck_assert_ptr_nonnull(loop);
	ck_assert_int_eq(curlloop_post(loop, &m.link), 0);
	curlloop_free(loop);
	loop = NULL;
	/* The message still reached the owner, then stopped(), once. */
	ck_assert_int_eq(sn.n_msgs, 1);
	ck_assert_int_eq(sn.stopped, 1);
	ck_assert_int_eq(sn.msgs_at_stop, 1);
}
END_TEST

START_TEST(timers_in_order_never_early)
{
	static struct ltimer t[5];
	int64_t now = clock_now_us();
	/* Armed out of order; t[2] disarmed before its time. */
	static const int64_t at_ms[5] = { 60, 20, 40, 80, 10 };

	loop = curlloop_new(&ops, NULL, 8);
	ck_assert_ptr_nonnull(loop);
	for (int i = 0; i < 5; i++) {
		t[i].id = i;
		t[i].due = now + at_ms[i] * 1000;
		heap_node_init(&t[i].node);
		ck_assert_int_eq(curlloop_timer_add(loop, &t[i].node,
		                                    t[i].due), 0);
	}
	curlloop_timer_del(loop, &t[2].node);
	ck_assert_int_eq(curlloop_start(loop), 0);
	wait_int(&sn.n_fired, 4);
	usleep(50 * 1000); /* time for the disarmed one, were it armed */
	curlloop_stop(loop);
	ck_assert_int_eq(sn.n_fired, 4);
	ck_assert_int_eq(sn.fired[0], 4);
	ck_assert_int_eq(sn.fired[1], 1);
	ck_assert_int_eq(sn.fired[2], 0);
	ck_assert_int_eq(sn.fired[3], 3);
	ck_assert(!sn.early);
	/*
	 * Not a speed test: the timerfd wakes the poll, so no timer waits
	 * for the poll's one-second cap.
	 */
	for (int i = 0; i < 4; i++)
		ck_assert_int_lt(sn.fired_late[i], 500 * 1000);
}
END_TEST

START_TEST(round_asks_for_a_time)
{
	loop = curlloop_new(&ops, NULL, 8);
	ck_assert_ptr_nonnull(loop);
	/* No timer, no message, no transfer: only round()'s own time. */
	sn.want = clock_now_us() + 30 * 1000;
	ck_assert_int_eq(curlloop_start(loop), 0);
	for (int i = 0; i < 500 && atomic_load(&sn.n_round_at) == 0; i++)
		usleep(10 * 1000);
	usleep(100 * 1000);
	curlloop_stop(loop);
	ck_assert_int_eq(atomic_load(&sn.n_round_at), 1);
	/* An idle loop sleeps: a handful of rounds, not a spin. */
	ck_assert_int_lt(sn.n_rounds, 20);
}
END_TEST

/*
 * A precise loop keeps every deadline of round(), and however many come
 * (here one every 100 us, 0.6 s long), spins at most its budget: 50 ms in
 * each second, so under 100 ms here.
 */
START_TEST(precise_within_budget)
{
	loop = curlloop_new(&ops, NULL, 8);
	ck_assert_ptr_nonnull(loop);
	curlloop_precise(loop);
	sn.every = 100;
	sn.n_want = 6000;
	sn.want = clock_now_us() + 10 * 1000;
	ck_assert_int_eq(curlloop_start(loop), 0);
	for (int i = 0; i < 1000 && atomic_load(&sn.n_round_at) < 6000; i++)
		usleep(10 * 1000);
	curlloop_stop(loop);
	ck_assert_int_eq(atomic_load(&sn.n_round_at), 6000);
	ck_assert_int_le(curlloop_spun_us(loop), 100 * 1000);
}
END_TEST

START_TEST(transfer_done)
{
	char path[] = "/tmp/check_curlloop.XXXXXX", url[64];
	int fd = mkstemp(path);
	CURL *c;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "hello", 5), 5);
	close(fd);
	snprintf(url, sizeof(url), "file://%s", path);
	loop = curlloop_new(&ops, NULL, 8);
	ck_assert_ptr_nonnull(loop);
	c = curl_easy_init();
	ck_assert_ptr_nonnull(c);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	ck_assert_int_eq(curlloop_add(loop, c), 0);
	ck_assert_int_eq(curlloop_start(loop), 0);
	pthread_mutex_lock(&sn.lock);
	while (sn.n_done == 0)
		pthread_cond_wait(&sn.cond, &sn.lock);
	pthread_mutex_unlock(&sn.lock);
	curlloop_stop(loop);
	unlink(path);
	ck_assert_int_eq(sn.n_done, 1);
	ck_assert_int_eq(sn.done_rc, CURLE_OK);
}
END_TEST

/* The guest: an eventfd it watches, and its tail. */
static struct {
	struct curlloop_watch w;
	int efd;
	atomic_int n_ready, n_tail, n_tail_after_stop;
	bool off_thread;            /* something of the guest's ran elsewhere */
	int msgs_seen_in_tail;      /* sn.n_msgs at the first tail after ready */
	struct msg from_ready, from_tail;
	int64_t tail_posted;        /* us the tail posted; 0: not yet */
	int64_t tail_msg_took;      /* us until the inbox had it */
	atomic_bool took;           /* tail_msg_took is set */
} g;

static void guest_ready(struct curlloop_watch *w, uint32_t events)
{
	uint64_t v;

	(void)w;
	(void)events;
	if (!curlloop_on_thread(loop))
		g.off_thread = true;
	if (read(g.efd, &v, sizeof(v)) < 0)
		return;
	if (atomic_fetch_add(&g.n_ready, 1) == 0) {
		g.from_ready = (struct msg){ .from = 0, .seq = 0 };
		curlloop_post(loop, &g.from_ready.link);
	}
}

static int64_t guest_tail(void *arg)
{
	(void)arg;
	if (!curlloop_on_thread(loop))
		g.off_thread = true;
	atomic_fetch_add(&g.n_tail, 1);
	if (sn.stopped)
		atomic_fetch_add(&g.n_tail_after_stop, 1);
	if (atomic_load(&g.n_ready) == 1 && g.msgs_seen_in_tail < 0) {
		g.msgs_seen_in_tail = sn.n_msgs;
		/* After the round: handed over next round, without a wait. */
		g.from_tail = (struct msg){ .from = 0, .seq = 1 };
		g.tail_posted = clock_now_us();
		curlloop_post(loop, &g.from_tail.link);
	} else if (g.tail_posted && !atomic_load(&g.took) && sn.n_msgs >= 2) {
		g.tail_msg_took = clock_now_us() - g.tail_posted;
		atomic_store(&g.took, true);
	}
	return INT64_MAX;
}

static int guest_attach(void *arg)
{
	(void)arg;
	if (!curlloop_on_thread(loop))
		g.off_thread = true;
	ck_assert_int_eq(curlloop_watch_add(loop, g.efd, EPOLLIN, &g.w), 0);
	ck_assert_int_eq(curlloop_add_tail(loop, guest_tail, NULL), 0);
	return 7;
}

static int guest_detach(void *arg)
{
	(void)arg;
	curlloop_del_tail(loop, guest_tail, NULL);
	curlloop_watch_del(loop, g.efd, &g.w);
	return 0;
}

START_TEST(guest_on_the_loop)
{
	uint64_t one = 1;
	struct msg late = { .from = 0, .seq = 2 };
	int n;

	memset(&g, 0, sizeof(g));
	g.w.ready = guest_ready;
	g.msgs_seen_in_tail = -1;
	g.efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	ck_assert_int_ge(g.efd, 0);
	loop = curlloop_new(&ops, NULL, 8);
	ck_assert_ptr_nonnull(loop);
	ck_assert(!curlloop_on_thread(loop));
	ck_assert_int_eq(curlloop_start(loop), 0);
	/* What fn returned comes back. */
	ck_assert_int_eq(curlloop_call(loop, guest_attach, NULL), 7);
	ck_assert_int_eq(write(g.efd, &one, sizeof(one)), sizeof(one));
	for (int i = 0; i < 500 && !atomic_load(&g.took); i++)
		usleep(10 * 1000);
	ck_assert_int_eq(atomic_load(&g.n_ready), 1);
	/* Posted from ready(): in the inbox before the round's tail. */
	ck_assert_int_eq(g.msgs_seen_in_tail, 1);
	/* Posted from the tail: the next round, not a second later. */
	ck_assert(atomic_load(&g.took));
	ck_assert_int_lt(g.tail_msg_took, 500 * 1000);

	/* Stopped: the owner is done, the guest still runs. */
	curlloop_stop(loop);
	ck_assert_int_eq(sn.stopped, 1);
	ck_assert_int_eq(curlloop_post(loop, &late.link), -ESHUTDOWN);
	ck_assert_int_eq(write(g.efd, &one, sizeof(one)), sizeof(one));
	for (int i = 0; i < 500 && atomic_load(&g.n_ready) < 2; i++)
		usleep(10 * 1000);
	ck_assert_int_eq(atomic_load(&g.n_ready), 2);
	ck_assert_int_gt(atomic_load(&g.n_tail_after_stop), 0);

	/* The guest leaves: the thread ends, nothing of it runs again. */
	curlloop_call(loop, guest_detach, NULL);
	curlloop_free(loop);
	loop = NULL;
	n = atomic_load(&g.n_tail);
	ck_assert_int_eq(write(g.efd, &one, sizeof(one)), sizeof(one));
	usleep(20 * 1000);
	ck_assert_int_eq(atomic_load(&g.n_tail), n);
	ck_assert_int_eq(atomic_load(&g.n_ready), 2);
	ck_assert(!g.off_thread);
	ck_assert_int_eq(sn.stopped, 1);
	ck_assert_int_eq(sn.n_msgs, 2);
	close(g.efd);
}
END_TEST

static Suite *curlloop_suite(void)
{
	Suite *s = suite_create("curlloop");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, messages_in_order_from_threads);
	tcase_add_test(tc, never_started);
	tcase_add_test(tc, timers_in_order_never_early);
	tcase_add_test(tc, round_asks_for_a_time);
	tcase_add_test(tc, precise_within_budget);
	tcase_add_test(tc, transfer_done);
	tcase_add_test(tc, guest_on_the_loop);
	suite_add_tcase(s, tc);
	return s;
}

TESTLIB_MAIN(curlloop_suite)

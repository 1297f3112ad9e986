/*
 * front_watch.c - the disconnect watch and the header deadlines of the
 * front's client sockets. See front_watch.h.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "front_watch.h"
#include "log.h"
#include "front_req.h"

/* A connection asleep this long gets its disconnect watch. */
#define WATCH_DELAY_MS 50

/*
 * Per client fd: the request whose suspended connection is watched, and
 * the generation of a pending header deadline (0: none).
 */
struct watch_slot {
	struct front_req *r;
	uint32_t gen;
	_Atomic uint32_t hdr_gen;
};

struct watch {
	/* Disconnect watch: fd -> request while its connection sleeps. */
	int ep;
	pthread_mutex_t lock;
	struct watch_slot *slots;
	size_t n_slots;
	uint32_t gen;

	/* Sleepers whose watch is not armed yet, oldest first. */
	pthread_mutex_t sleep_lock;
	struct front_req *sleep_head, *sleep_tail;

	watch_gone_fn *gone;
	void *gone_arg;
};

struct watch *watch_new(size_t n_slots, watch_gone_fn *gone, void *arg)
{
	struct watch *w;

	w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	w->ep = -1;
	pthread_mutex_init(&w->lock, NULL);
	pthread_mutex_init(&w->sleep_lock, NULL);
	w->n_slots = n_slots;
	w->gone = gone;
	w->gone_arg = arg;
	w->slots = calloc(n_slots, sizeof(*w->slots));
	w->ep = epoll_create1(EPOLL_CLOEXEC);
	if (!w->slots || w->ep < 0) {
		watch_free(w);
		return NULL;
	}
	return w;
}

void watch_free(struct watch *w)
{
	if (!w)
		return;
	if (w->ep >= 0)
		close(w->ep);
	free(w->slots);
	while (w->sleep_head) {
		struct front_req *r = w->sleep_head;

		w->sleep_head = r->sleep_next;
		request_unref(&r->req);
	}
	pthread_mutex_destroy(&w->sleep_lock);
	pthread_mutex_destroy(&w->lock);
	free(w);
}

int watch_fd(const struct watch *w)
{
	return w->ep;
}

static void arm(struct watch *w, struct front_req *r)
{
	struct epoll_event ev;

	if (r->fd < 0 || (size_t)r->fd >= w->n_slots)
		return;
	pthread_mutex_lock(&w->lock);
	r->watch_gen = ++w->gen;
	w->slots[r->fd].r = r;
	w->slots[r->fd].gen = r->watch_gen;
	ev.events = EPOLLRDHUP | EPOLLET;
	ev.data.u64 = ((uint64_t)(uint32_t)r->fd << 32) | r->watch_gen;
	if (epoll_ctl(w->ep, EPOLL_CTL_ADD, r->fd, &ev) < 0)
		w->slots[r->fd].r = NULL;
	pthread_mutex_unlock(&w->lock);
}

void watch_disarm(struct watch *w, struct front_req *r)
{
	if (r->fd < 0 || (size_t)r->fd >= w->n_slots)
		return;
	pthread_mutex_lock(&w->lock);
	if (w->slots[r->fd].r == r) {
		w->slots[r->fd].r = NULL;
		epoll_ctl(w->ep, EPOLL_CTL_DEL, r->fd, NULL);
	}
	pthread_mutex_unlock(&w->lock);
}

void watch_sleep(struct watch *w, struct front_req *r)
{
	pthread_mutex_lock(&w->sleep_lock);
	if (!r->sleeping_listed) {
		r->sleeping_listed = true;
		r->sleep_at = clock_now_ms();
		r->sleep_next = NULL;
		request_ref(&r->req);
		if (w->sleep_tail)
			w->sleep_tail->sleep_next = r;
		else
			w->sleep_head = r;
		w->sleep_tail = r;
	}
	pthread_mutex_unlock(&w->sleep_lock);
}

void watch_due(struct watch *w)
{
	int64_t due = clock_now_ms() - WATCH_DELAY_MS;
	struct front_req *list, *r, *next;

	pthread_mutex_lock(&w->sleep_lock);
	list = w->sleep_head;
	for (r = NULL; w->sleep_head && w->sleep_head->sleep_at <= due;
	     w->sleep_head = w->sleep_head->sleep_next) {
		r = w->sleep_head;
		r->sleeping_listed = false;
	}
	if (r) {
		r->sleep_next = NULL; /* ends the detached list */
		if (!w->sleep_head)
			w->sleep_tail = NULL;
	} else {
		list = NULL;
	}
	pthread_mutex_unlock(&w->sleep_lock);

	for (r = list; r; r = next) {
		next = r->sleep_next;
		pthread_mutex_lock(&r->req.lock);
		if (r->suspended)
			arm(w, r);
		pthread_mutex_unlock(&r->req.lock);
		request_unref(&r->req);
	}
}

void watch_dispatch(struct watch *w)
{
	struct epoll_event ev[64];
	int n;

	n = epoll_wait(w->ep, ev, 64, 0);
	for (int i = 0; i < n; i++) {
		int fd = (int)(ev[i].data.u64 >> 32);
		uint32_t gen = (uint32_t)ev[i].data.u64;
		struct front_req *r = NULL;

		pthread_mutex_lock(&w->lock);
		if ((size_t)fd < w->n_slots && w->slots[fd].r &&
		    w->slots[fd].gen == gen) {
			r = w->slots[fd].r;
			request_ref(&r->req);
		}
		pthread_mutex_unlock(&w->lock);
		if (r) {
			w->gone(w->gone_arg, r);
			request_unref(&r->req);
		}
	}
}

uint32_t watch_header_deadline(struct watch *w, int fd)
{
	uint32_t gen;

	if (fd < 0 || (size_t)fd >= w->n_slots)
		return 0;
	pthread_mutex_lock(&w->lock);
	gen = ++w->gen;
	if (gen == 0)
		gen = ++w->gen;
	atomic_store(&w->slots[fd].hdr_gen, gen);
	pthread_mutex_unlock(&w->lock);
	return gen;
}

void watch_header_expired(struct watch *w, int fd, uint32_t gen)
{
	if (gen == 0 || fd < 0 || (size_t)fd >= w->n_slots)
		return;
	/*
	 * The lock orders this against watch_conn_closed(), called before
	 * MHD closes the fd: a matching generation means fd is still that
	 * connection.
	 */
	pthread_mutex_lock(&w->lock);
	if (atomic_load(&w->slots[fd].hdr_gen) == gen) {
		atomic_store(&w->slots[fd].hdr_gen, 0);
		log_debug("client sent no complete request in time, closing");
		shutdown(fd, SHUT_RDWR);
	}
	pthread_mutex_unlock(&w->lock);
}

void watch_header_met(struct watch *w, int fd)
{
	if (fd >= 0 && (size_t)fd < w->n_slots)
		atomic_store(&w->slots[fd].hdr_gen, 0);
}

void watch_conn_closed(struct watch *w, int fd)
{
	if (fd < 0 || (size_t)fd >= w->n_slots)
		return;
	pthread_mutex_lock(&w->lock);
	atomic_store(&w->slots[fd].hdr_gen, 0);
	pthread_mutex_unlock(&w->lock);
}

/*
 * heap.c - indexed binary min-heap.
 *
 * Invariant: for every i < n, v[i]->index == i, and v[(i - 1) / 2]->when
 * <= v[i]->when. Every move of a node goes through heap_set(), which keeps
 * the first half true.
 */
#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "heap.h"

#define HEAP_MIN_CAP 16

void heap_node_init(struct heap_node *node)
{
	node->index = HEAP_NONE;
}

void heap_done(struct heap *h)
{
	free(h->v);
	h->v = NULL;
	h->n = 0;
	h->cap = 0;
}

static void heap_set(struct heap *h, size_t i, struct heap_node *node)
{
	h->v[i] = node;
	node->index = i;
}

/* Moves the node at i towards the root until its parent is not larger. */
static void sift_up(struct heap *h, size_t i)
{
	struct heap_node *node = h->v[i];

	while (i > 0) {
		size_t parent = (i - 1) / 2;

		if (h->v[parent]->when <= node->when)
			break;
		heap_set(h, i, h->v[parent]);
		i = parent;
	}
	heap_set(h, i, node);
}

/* Moves the node at i towards the leaves until no child is smaller. */
static void sift_down(struct heap *h, size_t i)
{
	struct heap_node *node = h->v[i];

	for (;;) {
		size_t child = 2 * i + 1;

		if (child >= h->n)
			break;
		if (child + 1 < h->n &&
		    h->v[child + 1]->when < h->v[child]->when)
			child++;
		if (node->when <= h->v[child]->when)
			break;
		heap_set(h, i, h->v[child]);
		i = child;
	}
	heap_set(h, i, node);
}

static int heap_grow(struct heap *h)
{
	struct heap_node **v;
	size_t cap;

	if (h->cap == 0) {
		cap = HEAP_MIN_CAP;
	} else {
		if (h->cap > SIZE_MAX / 2 / sizeof(*v))
			return -ENOMEM;
		cap = h->cap * 2;
	}
	v = realloc(h->v, cap * sizeof(*v));
	if (!v)
		return -ENOMEM;
	h->v = v;
	h->cap = cap;
	return 0;
}

int heap_push(struct heap *h, struct heap_node *node, int64_t when)
{
	int r;

	assert(node->index == HEAP_NONE);
	if (h->n == h->cap) {
		r = heap_grow(h);
		if (r < 0)
			return r;
	}
	node->when = when;
	h->v[h->n] = node;
	h->n++;
	sift_up(h, h->n - 1);
	return 0;
}

struct heap_node *heap_top(const struct heap *h)
{
	return h->n > 0 ? h->v[0] : NULL;
}

struct heap_node *heap_pop(struct heap *h)
{
	struct heap_node *top = heap_top(h);

	if (top)
		heap_remove(h, top);
	return top;
}

void heap_remove(struct heap *h, struct heap_node *node)
{
	size_t i = node->index;
	struct heap_node *last;

	if (i == HEAP_NONE)
		return;
	assert(i < h->n && h->v[i] == node);
	node->index = HEAP_NONE;
	h->n--;
	if (i == h->n)
		return;
	/* The last node fills the hole; it may belong above or below it. */
	last = h->v[h->n];
	heap_set(h, i, last);
	if (i > 0 && h->v[(i - 1) / 2]->when > last->when)
		sift_up(h, i);
	else
		sift_down(h, i);
}

int heap_update(struct heap *h, struct heap_node *node, int64_t when)
{
	int64_t old;

	if (node->index == HEAP_NONE)
		return heap_push(h, node, when);
	old = node->when;
	assert(node->index < h->n && h->v[node->index] == node);
	node->when = when;
	if (when < old)
		sift_up(h, node->index);
	else if (when > old)
		sift_down(h, node->index);
	return 0;
}

/*
 * heap.h - a binary min-heap of timers keyed by time, with O(log n) insert,
 * remove and update. Each element embeds a struct heap_node that remembers
 * its index, so any element can be removed without a search.
 */
#ifndef SLUICE_HEAP_H
#define SLUICE_HEAP_H

#include <stddef.h>
#include <stdint.h>

#define HEAP_NONE ((size_t)-1)

struct heap_node {
	int64_t when;                /* key; smaller pops first */
	size_t index;                /* HEAP_NONE when not in a heap */
};

struct heap {
	struct heap_node **v;
	size_t n, cap;
};

/* Sets node->index to HEAP_NONE. */
void heap_node_init(struct heap_node *node);

/* Frees the array (not the elements). */
void heap_done(struct heap *h);

/* Inserts node with key when. 0 or -ENOMEM. node must not be in a heap. */
int heap_push(struct heap *h, struct heap_node *node, int64_t when);

/* The smallest element, or NULL. */
struct heap_node *heap_top(const struct heap *h);

/* Removes and returns the smallest element, or NULL. */
struct heap_node *heap_pop(struct heap *h);

/* Removes node if it is in the heap; no-op otherwise. */
void heap_remove(struct heap *h, struct heap_node *node);

/* Changes node's key (inserting it if absent). 0 or -ENOMEM. */
int heap_update(struct heap *h, struct heap_node *node, int64_t when);

static inline int heap_contains(const struct heap_node *node)
{
	return node->index != HEAP_NONE;
}

#endif

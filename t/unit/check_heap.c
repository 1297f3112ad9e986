/*
 * check_heap.c - the indexed min-heap, against a plain reference model.
 */
#include <check.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "heap.h"
#include "testlib.h"

#define N_NODES 512
#define N_OPS 200000
#define SEED 0x5eed5111ceULL

/*
 * Check's ck_assert_*() records a mark point (a write to a pipe) on every
 * success, which would dominate the millions of checks below; this checks
 * silently and fails the same way.
 */
#define CHECK(cond) \
	do { \
		if (!(cond)) \
			ck_abort_msg("%s:%d: %s", __FILE__, __LINE__, #cond); \
	} while (0)

static struct heap h;
static struct heap_node nodes[N_NODES];

/* The model: which nodes are in, with which key. */
static bool ref_in[N_NODES];
static int64_t ref_key[N_NODES];
static size_t ref_n;

/* Fixed-seed xorshift64*, so every run and every libc sees the same ops. */
static uint64_t rng_state;

static uint64_t rng_next(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dULL;
}

static size_t rng_below(size_t n)
{
	return (size_t)(rng_next() % n);
}

static void setup(void)
{
	size_t i;

	memset(&h, 0, sizeof(h));
	for (i = 0; i < N_NODES; i++) {
		nodes[i].when = 0;
		heap_node_init(&nodes[i]);
		ref_in[i] = false;
	}
	ref_n = 0;
	rng_state = SEED;
}

static void teardown(void)
{
	heap_done(&h);
}

/* Every index is right and every parent is no larger than its children. */
static void check_invariant(void)
{
	size_t i;

	CHECK(h.n <= h.cap);
	for (i = 0; i < h.n; i++) {
		CHECK(h.v[i] != NULL);
		CHECK(h.v[i]->index == i);
		if (i > 0)
			CHECK(h.v[(i - 1) / 2]->when <= h.v[i]->when);
	}
}

/* The heap holds exactly the model's nodes with the model's keys. */
static void check_against_model(void)
{
	size_t i;

	check_invariant();
	CHECK(h.n == ref_n);
	for (i = 0; i < N_NODES; i++) {
		CHECK(heap_contains(&nodes[i]) == ref_in[i]);
		if (ref_in[i]) {
			CHECK(nodes[i].index < h.n);
			CHECK(h.v[nodes[i].index] == &nodes[i]);
			CHECK(nodes[i].when == ref_key[i]);
		} else {
			CHECK(nodes[i].index == HEAP_NONE);
		}
	}
}

/* The model's smallest key; only when ref_n > 0. */
static int64_t model_min(void)
{
	int64_t min = INT64_MAX;
	size_t i;

	for (i = 0; i < N_NODES; i++) {
		if (ref_in[i] && ref_key[i] < min)
			min = ref_key[i];
	}
	return min;
}

/* A narrow range gives many ties; both ranges include the extremes. */
static int64_t random_key(bool narrow)
{
	switch (rng_below(64)) {
	case 1:
		return INT64_MIN;
	case 2:
		return INT64_MAX;
	default:
		break;
	}
	if (narrow)
		return (int64_t)rng_below(16) - 8;
	return (int64_t)rng_next();
}

static void model_check_top(void)
{
	struct heap_node *top = heap_top(&h);

	if (ref_n == 0) {
		CHECK(top == NULL);
		return;
	}
	CHECK(top != NULL);
	CHECK(top->when == model_min());
}

static void random_ops(bool narrow)
{
	long op;

	for (op = 0; op < N_OPS; op++) {
		size_t i = rng_below(N_NODES);
		struct heap_node *n;
		int64_t key = random_key(narrow);
		size_t kind = rng_below(10);

		if (kind < 3) {
			/* push: only nodes not in the heap may be pushed */
			if (!ref_in[i]) {
				CHECK(heap_push(&h, &nodes[i], key) == 0);
				ref_in[i] = true;
				ref_key[i] = key;
				ref_n++;
			}
		} else if (kind < 5) {
			/* update: inserts when absent */
			CHECK(heap_update(&h, &nodes[i], key) == 0);
			if (!ref_in[i])
				ref_n++;
			ref_in[i] = true;
			ref_key[i] = key;
		} else if (kind < 7) {
			/* remove: a no-op when absent */
			heap_remove(&h, &nodes[i]);
			if (ref_in[i])
				ref_n--;
			ref_in[i] = false;
		} else if (kind < 9) {
			int64_t min = ref_n ? model_min() : 0;

			n = heap_pop(&h);
			if (ref_n == 0) {
				CHECK(n == NULL);
				continue;
			}
			CHECK(n != NULL);
			i = (size_t)(n - nodes);
			CHECK(i < N_NODES);
			CHECK(ref_in[i]);
			CHECK(ref_key[i] == min);
			CHECK(n->index == HEAP_NONE);
			ref_in[i] = false;
			ref_n--;
		} else {
			model_check_top();
		}
		CHECK(h.n == ref_n);
		if (op % 101 == 0)
			check_against_model();
	}
	check_against_model();
	model_check_top();
}

START_TEST(test_random_wide)
{
	random_ops(false);
}
END_TEST

START_TEST(test_random_ties)
{
	random_ops(true);
}
END_TEST

START_TEST(test_empty)
{
	struct heap_node n;

	heap_node_init(&n);
	ck_assert(!heap_contains(&n));
	ck_assert_ptr_null(heap_top(&h));
	ck_assert_ptr_null(heap_pop(&h));
	heap_remove(&h, &n);
	ck_assert_uint_eq(h.n, 0);
	ck_assert_uint_eq(n.index, HEAP_NONE);
}
END_TEST

/* Pushed in random order, popped in key order, each exactly once. */
START_TEST(test_pops_sorted)
{
	int64_t prev = INT64_MIN;
	size_t i, count = 0;
	struct heap_node *n;

	for (i = 0; i < N_NODES; i++) {
		ck_assert_int_eq(heap_push(&h, &nodes[i],
		                           random_key(i % 2 == 0)), 0);
		ck_assert(heap_contains(&nodes[i]));
	}
	check_invariant();
	while ((n = heap_pop(&h)) != NULL) {
		ck_assert_int_ge(n->when, prev);
		ck_assert(!heap_contains(n));
		prev = n->when;
		count++;
	}
	ck_assert_uint_eq(count, N_NODES);
	for (i = 0; i < N_NODES; i++)
		ck_assert(!heap_contains(&nodes[i]));
}
END_TEST

/* Removing any node leaves exactly the others, still in order. */
START_TEST(test_remove_arbitrary)
{
	bool removed[N_NODES] = { false };
	int64_t prev = INT64_MIN;
	size_t i, count = 0, left = N_NODES;
	struct heap_node *n;

	for (i = 0; i < N_NODES; i++)
		ck_assert_int_eq(heap_push(&h, &nodes[i],
		                           (int64_t)(i * 7919 % N_NODES)), 0);
	/* The root, a last leaf, and random ones in between. */
	heap_remove(&h, h.v[0]);
	heap_remove(&h, h.v[h.n - 1]);
	left -= 2;
	for (i = 0; i < N_NODES / 3; i++) {
		size_t k = rng_below(N_NODES);

		if (heap_contains(&nodes[k])) {
			heap_remove(&h, &nodes[k]);
			left--;
		}
		/* A second remove is a no-op. */
		heap_remove(&h, &nodes[k]);
		ck_assert(!heap_contains(&nodes[k]));
		ck_assert_uint_eq(h.n, left);
		check_invariant();
	}
	for (i = 0; i < N_NODES; i++)
		removed[i] = !heap_contains(&nodes[i]);
	while ((n = heap_pop(&h)) != NULL) {
		i = (size_t)(n - nodes);
		ck_assert(!removed[i]);
		ck_assert_int_ge(n->when, prev);
		prev = n->when;
		count++;
	}
	ck_assert_uint_eq(count, left);
}
END_TEST

START_TEST(test_update)
{
	size_t i;

	for (i = 0; i < 100; i++)
		ck_assert_int_eq(heap_push(&h, &nodes[i],
		                           (int64_t)i * 10), 0);
	/* Down to the top. */
	ck_assert_int_eq(heap_update(&h, &nodes[99], -1), 0);
	ck_assert_ptr_eq(heap_top(&h), &nodes[99]);
	check_invariant();
	/* The top goes down to the leaves. */
	ck_assert_int_eq(heap_update(&h, &nodes[99], 10000), 0);
	ck_assert_ptr_eq(heap_top(&h), &nodes[0]);
	check_invariant();
	/* Same key: nothing moves. */
	i = nodes[50].index;
	ck_assert_int_eq(heap_update(&h, &nodes[50], 500), 0);
	ck_assert_uint_eq(nodes[50].index, i);
	check_invariant();
	/* A node not in the heap is inserted. */
	ck_assert(!heap_contains(&nodes[200]));
	ck_assert_int_eq(heap_update(&h, &nodes[200], -5), 0);
	ck_assert(heap_contains(&nodes[200]));
	ck_assert_uint_eq(h.n, 101);
	ck_assert_ptr_eq(heap_top(&h), &nodes[200]);
	check_invariant();
	/* Moves in the middle, both ways. */
	ck_assert_int_eq(heap_update(&h, &nodes[60], 5), 0);
	ck_assert_int_eq(heap_update(&h, &nodes[3], 9999), 0);
	check_invariant();
	ck_assert_ptr_eq(heap_pop(&h), &nodes[200]);
	ck_assert_ptr_eq(heap_pop(&h), &nodes[0]);
	ck_assert_ptr_eq(heap_pop(&h), &nodes[60]);
	ck_assert_ptr_eq(heap_pop(&h), &nodes[1]);
}
END_TEST

/* The array doubles, so n pushes cost O(log n) reallocations. */
START_TEST(test_growth)
{
	static struct heap_node many[100000];
	size_t i, cap = 0, grows = 0;
	struct heap_node *n;
	int64_t prev = INT64_MIN;

	for (i = 0; i < 100000; i++) {
		heap_node_init(&many[i]);
		CHECK(heap_push(&h, &many[i], (int64_t)(rng_next() % 1000)) ==
		      0);
		if (h.cap != cap) {
			CHECK(cap == 0 || h.cap == cap * 2);
			cap = h.cap;
			grows++;
		}
	}
	ck_assert_uint_eq(h.n, 100000);
	ck_assert_uint_le(grows, 20);
	check_invariant();
	for (i = 0; i < 100000; i++) {
		n = heap_pop(&h);
		CHECK(n != NULL);
		CHECK(n->when >= prev);
		prev = n->when;
	}
	ck_assert_ptr_null(heap_pop(&h));
	/* heap_done frees the array only; it may be used again after. */
	heap_done(&h);
	ck_assert_ptr_null(h.v);
	ck_assert_uint_eq(h.n, 0);
	ck_assert_int_eq(heap_push(&h, &many[0], 1), 0);
	ck_assert_ptr_eq(heap_top(&h), &many[0]);
}
END_TEST

static Suite *heap_suite(void)
{
	Suite *s = suite_create("heap");
	TCase *tc;

	tc = tcase_create("basic");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_empty);
	tcase_add_test(tc, test_pops_sorted);
	tcase_add_test(tc, test_remove_arbitrary);
	tcase_add_test(tc, test_update);
	tcase_add_test(tc, test_growth);
	suite_add_tcase(s, tc);

	tc = tcase_create("random");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_random_wide);
	tcase_add_test(tc, test_random_ties);
	suite_add_tcase(s, tc);
	return s;
}

TESTLIB_MAIN(heap_suite)

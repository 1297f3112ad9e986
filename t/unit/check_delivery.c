/*
 * check_delivery.c - what the delivery thread schedules by, without a
 * network: a job's copy from a struct delivery_spec (stored states,
 * quorum, nothing pending), the payload its tries share, the admission
 * rule for payload bytes and the due time on the monotonic clock. The
 * retry schedule itself (webhook_next_attempt) is in check_webhook.
 */
#include <check.h>
#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "delivery.h"
#include "delivery_int.h"
#include "webhook.h"
#include "testlib.h"

static const char *const urls[] = {
	"http://127.0.0.1:1/a", "http://127.0.0.1:1/b",
	"http://127.0.0.1:1/c", "http://127.0.0.1:1/d",
};

static struct delivery_spec spec(size_t n_urls)
{
	return (struct delivery_spec){
		.job_id = "job_1", .idempotent_key = "key-1",
		.metadata_json = "{\"order\":7}",
		.end = { .status_code = 200, .body = "hello", .body_len = 5 },
		.finished_ms = 1700000000000LL,
		.urls = urls, .n_urls = n_urls,
	};
}

/* A new job: every target pending and due at the job's end. */
START_TEST(test_new_fresh)
{
	struct delivery_spec s = spec(3);
	struct delivery_job *dj = delivery_job_new(&s);

	ck_assert_ptr_nonnull(dj);
	ck_assert_str_eq(dj->id, "job_1");
	ck_assert_uint_eq(dj->quorum, 1);       /* 0: one is enough */
	ck_assert_uint_eq(dj->n, 3);
	ck_assert_uint_eq(dj->n_open, 3);
	ck_assert_uint_eq(dj->n_delivered, 0);
	ck_assert_uint_eq(dj->body_len, 5);
	ck_assert_int_eq(dj->finished_ms, s.finished_ms);
	ck_assert_ptr_null(dj->payload);
	for (size_t i = 0; i < 3; i++) {
		const struct target *t = &dj->t[i];

		ck_assert_ptr_eq(t->job, dj);
		ck_assert_uint_eq(t->index, i);
		ck_assert_str_eq(t->url, urls[i]);
		ck_assert_ptr_ne(t->url, urls[i]);
		ck_assert_uint_eq(t->attempts, 0);
		ck_assert(!t->settled);
		ck_assert_int_eq(t->timer.when, s.finished_ms);
	}
	/* The end is copied until the store holds it. */
	ck_assert_ptr_nonnull(dj->copy);
	ck_assert_str_eq(dj->copy->idempotent_key, "key-1");
	ck_assert_str_eq(dj->copy->metadata_json, "{\"order\":7}");
	ck_assert_int_eq(dj->copy->end->status_code, 200);
	ck_assert_uint_eq(dj->copy->end->body_len, 5);
	ck_assert_ptr_ne(dj->copy->end->body, s.end.body);
	ck_assert_mem_eq(dj->copy->end->body, "hello", 5);
	delivery_job_stored(dj);
	ck_assert_ptr_null(dj->copy);
	delivery_job_free(dj);
}
END_TEST

/* Recovery: the stored states decide what is open, tried and due. */
START_TEST(test_new_states)
{
	struct job_delivery st[4] = {
		{ .state = DELIVERY_PENDING, .attempts = 2, .next_at = 5000 },
		{ .state = DELIVERY_DELIVERED, .attempts = 1 },
		{ .state = DELIVERY_GAVE_UP, .attempts = 9,
		  .next_at = JOBS_GIVE_UP },
		{ .state = DELIVERY_PENDING, .next_at = 7000 },
	};
	struct delivery_spec s = spec(4);
	struct delivery_job *dj;

	s.stored = true;
	s.quorum = 2;
	s.states = st;
	dj = delivery_job_new(&s);
	ck_assert_ptr_nonnull(dj);
	ck_assert_ptr_null(dj->copy);
	ck_assert_uint_eq(dj->body_len, 5);     /* the payload's size still */
	ck_assert_uint_eq(dj->quorum, 2);
	ck_assert_uint_eq(dj->n_open, 2);
	ck_assert_uint_eq(dj->n_delivered, 1);
	ck_assert(!dj->t[0].settled);
	ck_assert(dj->t[1].settled);
	ck_assert(dj->t[2].settled);
	ck_assert(!dj->t[3].settled);
	ck_assert_uint_eq(dj->t[0].attempts, 2);
	ck_assert_uint_eq(dj->t[2].attempts, 9);
	ck_assert_int_eq(dj->t[0].timer.when, 5000);
	ck_assert_int_eq(dj->t[3].timer.when, 7000);
	delivery_job_free(dj);
}
END_TEST

/* Nothing pending: no job. */
START_TEST(test_new_nothing_pending)
{
	struct job_delivery st[2] = {
		{ .state = DELIVERY_DELIVERED, .attempts = 1 },
		{ .state = DELIVERY_GAVE_UP, .next_at = JOBS_GIVE_UP },
	};
	struct delivery_spec s = spec(2);

	s.states = st;
	ck_assert_ptr_null(delivery_job_new(&s));
	s = spec(0);
	ck_assert_ptr_null(delivery_job_new(&s));
	delivery_job_free(NULL);
}
END_TEST

/* The copy's payload: the bytes webhook_payload() makes of the same end. */
START_TEST(test_payload_shared)
{
	struct delivery_spec s = spec(2);
	struct delivery_job *dj = delivery_job_new(&s);
	struct webhook_result res = {
		.job_id = "job_1", .idempotent_key = "key-1", .end = s.end,
	};
	size_t bytes = 100, want_len;
	char *want, *first;

	ck_assert_ptr_nonnull(dj);
	res.end.error_code = "failed";
	res.end.error_message = "the job failed";
	res.metadata = json_loads(s.metadata_json, 0, NULL);
	ck_assert_ptr_nonnull(res.metadata);
	ck_assert_int_eq(webhook_payload(&res, &want, &want_len), 0);
	json_decref(res.metadata);

	/* No store: the copy is enough. */
	ck_assert_int_eq(delivery_payload_hold(dj, NULL, &bytes), 0);
	ck_assert_uint_eq(dj->payload_len, want_len);
	ck_assert_mem_eq(dj->payload, want, want_len);
	ck_assert_uint_eq(bytes, 100 + want_len);
	ck_assert_uint_eq(dj->payload_users, 1);
	/* A second try shares it. */
	first = dj->payload;
	ck_assert_int_eq(delivery_payload_hold(dj, NULL, &bytes), 0);
	ck_assert_ptr_eq(dj->payload, first);
	ck_assert_uint_eq(bytes, 100 + want_len);
	ck_assert_uint_eq(dj->payload_users, 2);
	/* The last to end frees it. */
	delivery_payload_drop(dj, &bytes);
	ck_assert_ptr_eq(dj->payload, first);
	ck_assert_uint_eq(bytes, 100 + want_len);
	delivery_payload_drop(dj, &bytes);
	ck_assert_ptr_null(dj->payload);
	ck_assert_uint_eq(dj->payload_len, 0);
	ck_assert_uint_eq(bytes, 100);
	/* Held again at job free: freed with it. */
	ck_assert_int_eq(delivery_payload_hold(dj, NULL, &bytes), 0);
	free(want);
	delivery_job_free(dj);
}
END_TEST

/* Metadata that does not parse: -EINVAL, nothing held. */
START_TEST(test_payload_bad_metadata)
{
	struct delivery_spec s = spec(1);
	struct delivery_job *dj;
	size_t bytes = 0;

	s.metadata_json = "{\"order\":";
	dj = delivery_job_new(&s);
	ck_assert_ptr_nonnull(dj);
	ck_assert_int_eq(delivery_payload_hold(dj, NULL, &bytes), -EINVAL);
	ck_assert_ptr_null(dj->payload);
	ck_assert_uint_eq(dj->payload_users, 0);
	ck_assert_uint_eq(bytes, 0);
	delivery_job_free(dj);
}
END_TEST

START_TEST(test_may_start)
{
	const size_t cap = DELIVERY_PAYLOAD_BYTES, big = 3 * cap;

	/* No free slot: nothing starts, in memory or not. */
	ck_assert(!delivery_may_start(DELIVERY_PARALLEL, 0, true, 0));
	ck_assert(!delivery_may_start(DELIVERY_PARALLEL, 0, false, 1));
	ck_assert(delivery_may_start(DELIVERY_PARALLEL - 1, 0, false, 1));
	/* The only payload in memory starts, however big. */
	ck_assert(delivery_may_start(0, 0, false, big));
	ck_assert(delivery_may_start(5, 0, false, big));
	/* In memory already: costs nothing more. */
	ck_assert(delivery_may_start(1, big, true, big));
	/* Fits under the bound, exactly or not at all. */
	ck_assert(delivery_may_start(1, cap - 10, false, 10));
	ck_assert(!delivery_may_start(1, cap - 10, false, 11));
	ck_assert(delivery_may_start(1, 1, false, 0));
	/* At or over the bound: only what is in memory. */
	ck_assert(!delivery_may_start(1, cap, false, 0));
	ck_assert(!delivery_may_start(1, big, false, 0));
}
END_TEST

START_TEST(test_due)
{
	const int64_t wall = 1700000000000LL, now = 5000000;

	ck_assert_int_eq(delivery_due_us(wall - 1, wall, now), now);
	ck_assert_int_eq(delivery_due_us(0, wall, now), now);
	ck_assert_int_eq(delivery_due_us(wall, wall, now), now);
	ck_assert_int_eq(delivery_due_us(wall + 1, wall, now), now + 1000);
	ck_assert_int_eq(delivery_due_us(wall + 1500, wall, now),
	                 now + 1500000);
}
END_TEST

static Suite *delivery_suite(void)
{
	Suite *s = suite_create("delivery");
	TCase *tc;

	tc = tcase_create("job");
	tcase_add_test(tc, test_new_fresh);
	tcase_add_test(tc, test_new_states);
	tcase_add_test(tc, test_new_nothing_pending);
	suite_add_tcase(s, tc);

	tc = tcase_create("payload");
	tcase_add_test(tc, test_payload_shared);
	tcase_add_test(tc, test_payload_bad_metadata);
	suite_add_tcase(s, tc);

	tc = tcase_create("schedule");
	tcase_add_test(tc, test_may_start);
	tcase_add_test(tc, test_due);
	suite_add_tcase(s, tc);
	return s;
}

TESTLIB_MAIN(delivery_suite)

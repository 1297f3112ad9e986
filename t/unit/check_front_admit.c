/*
 * check_front_admit.c - admission without MHD: the head's body size and
 * Host, the credential of the first configured key header,
 * X-EZTHROTTLE-TIMEOUT / -MAX-RETRIES / -RETRY-ON, webhook job fields,
 * target checks and the upstream field list (hop-by-hop dropping, the
 * empty-value trick, the last guard).
 */
#include <check.h>
#include <curl/curl.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "cred.h"
#include "front_admit.h"
#include "jobrun_intake.h"
#include "request.h"
#include "retry.h"
#include "testlib.h"

#define MAX_FIELDS 16
#define T_ARRIVAL 1000000

/* A request's fields as a plain list, in order. */
struct fake {
	const char *name[MAX_FIELDS];
	const char *value[MAX_FIELDS];
	size_t n;
	size_t walks;                /* each() calls */
};

static const char *fake_lookup(void *src, const char *name)
{
	struct fake *fk = src;

	for (size_t i = 0; i < fk->n; i++)
		if (strcasecmp(fk->name[i], name) == 0)
			return fk->value[i];
	return NULL;
}

static void fake_each(void *src, admit_field_fn *fn, void *arg)
{
	struct fake *fk = src;

	fk->walks++;
	for (size_t i = 0; i < fk->n; i++)
		if (!fn(arg, fk->name[i], fk->value[i]))
			return;
}

static struct fake fk;
static struct admit_fields hf;
static struct config *cfg;
static struct request *req;
static struct job_intake *intake; /* a webhook job's, when admitted */
static const unsigned char salt[CRED_SALT_LEN] = "0123456789abcdef";
static struct admit_ctx ctx;
static char msg[256];
static const char *code;

static void add(const char *name, const char *value)
{
	ck_assert_uint_lt(fk.n, MAX_FIELDS);
	fk.name[fk.n] = name;
	fk.value[fk.n] = value;
	fk.n++;
}

static void setup(void)
{
	memset(&fk, 0, sizeof(fk));
	hf = (struct admit_fields){
		.src = &fk, .lookup = fake_lookup, .each = fake_each,
	};
	cfg = config_new();
	ck_assert_ptr_nonnull(cfg);
	cfg->max_body = 1000;
	ctx = (struct admit_ctx){ .cfg = cfg, .salt = salt, .jobs = NULL };
	req = request_new("http://api.example.com/v1/x?q=1#frag");
	ck_assert_ptr_nonnull(req);
	req->method = strdup("POST");
	ck_assert_ptr_nonnull(req->method);
	req->t_arrival = T_ARRIVAL;
	ck_assert_uint_eq(admit_target(cfg, req, &code, &(const char *){0},
	                               msg, sizeof(msg)), 0);
	msg[0] = '\0';
	code = NULL;
}

static void teardown(void)
{
	job_intake_free(intake);
	intake = NULL;
	request_unref(req);
	config_free(cfg);
}

static int classify(void)
{
	return admit_classify(&ctx, &hf, req, &intake, &code, msg,
	                      sizeof(msg));
}

/* The upstream list as one string, lines joined with '|'. */
static char *upstream(int *ret_err)
{
	size_t n = 0, text = 0, len = 0;
	char *s = calloc(1, 1024);

	ck_assert_ptr_nonnull(s);
	*ret_err = admit_upstream_headers(&hf, req, &n, &text);
	for (struct curl_slist *l = req->up_headers.head; l; l = l->next) {
		size_t k = strlen(l->data);

		ck_assert_uint_lt(len + k + 2, 1024);
		memcpy(s + len, l->data, k);
		len += k;
		s[len++] = '|';
	}
	return s;
}

/* --- the credential --- */

START_TEST(test_key_config_order)
{
	unsigned char want[CRED_HASH_LEN];

	/* Config order (Authorization, X-Api-Key, Api-Key) wins. */
	add("Api-Key", "third");
	add("x-api-key", "second");
	add("AUTHORIZATION", "Bearer first");
	ck_assert_int_eq(classify(), 0);
	ck_assert(req->has_cred);
	cred_hash(salt, "Bearer first", strlen("Bearer first"), want);
	ck_assert_mem_eq(req->cred, want, CRED_HASH_LEN);
	ck_assert_str_eq(req->dest_key, "http://api.example.com:80");
}
END_TEST

START_TEST(test_key_second)
{
	unsigned char want[CRED_HASH_LEN];

	add("Api-Key", "third");
	add("X-Api-Key", "second");
	ck_assert_int_eq(classify(), 0);
	cred_hash(salt, "second", strlen("second"), want);
	ck_assert_mem_eq(req->cred, want, CRED_HASH_LEN);
}
END_TEST

START_TEST(test_key_none)
{
	static const unsigned char zero[CRED_HASH_LEN];

	add("Cookie", "a=b");
	add("X-Api-Keys", "near miss");
	ck_assert_int_eq(classify(), 0);
	ck_assert(!req->has_cred);
	ck_assert_mem_eq(req->cred, zero, CRED_HASH_LEN);
}
END_TEST

START_TEST(test_key_empty_value)
{
	unsigned char want[CRED_HASH_LEN];

	/* Present but empty is still a credential: the empty one. */
	add("Authorization", "");
	ck_assert_int_eq(classify(), 0);
	ck_assert(req->has_cred);
	cred_hash(salt, "", 0, want);
	ck_assert_mem_eq(req->cred, want, CRED_HASH_LEN);
}
END_TEST

/* --- X-EZTHROTTLE-TIMEOUT --- */

START_TEST(test_timeout_default)
{
	ck_assert_int_eq(classify(), 0);
	ck_assert_int_eq(req->deadline, T_ARRIVAL + cfg->sync_timeout);
}
END_TEST

START_TEST(test_timeout_good)
{
	static const struct {
		const char *v;
		int64_t ms;
	} cases[] = {
		{ "2", 2000 }, { "2.5", 2500 }, { "0.0004", 0 },
		{ "0.0005", 1 }, { "1 ", 1000 }, { "1\t \t", 1000 },
		{ "1e1", 10000 }, { "31536000", 31536000000LL },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		fk.n = 0;
		add("X-EZTHROTTLE-TIMEOUT", cases[i].v);
		ck_assert_msg(classify() == 0, "'%s'", cases[i].v);
		ck_assert_int_eq(req->deadline, T_ARRIVAL + cases[i].ms);
	}
}
END_TEST

START_TEST(test_timeout_bad)
{
	static const char *const bad[] = {
		"", "0", "-1", "0.0", "abc", "1x", "1 2", " ", "nan",
		"inf", "31536000.5", "1e400", "-0",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		fk.n = 0;
		msg[0] = '\0';
		add("x-ezthrottle-timeout", bad[i]);
		ck_assert_msg(classify() == -EINVAL, "'%s'", bad[i]);
		ck_assert_str_eq(code, "bad_request");
		ck_assert_str_eq(msg, "X-EZTHROTTLE-TIMEOUT must be a number "
		                 "of seconds > 0");
	}
}
END_TEST

/* --- retry rules --- */

START_TEST(test_retry_defaults)
{
	ck_assert_int_eq(classify(), 0);
	ck_assert_uint_eq(req->rules.max_retries, cfg->retry.max_retries);
	ck_assert(!req->rules.idempotent);          /* POST, no key */
	ck_assert(retry_rules_has(&req->rules, 429));
	ck_assert(!retry_rules_has(&req->rules, 500));
}
END_TEST

START_TEST(test_retry_idempotent)
{
	add("Idempotency-Key", "k1");
	ck_assert_int_eq(classify(), 0);
	ck_assert(req->rules.idempotent);
	ck_assert(retry_rules_has(&req->rules, 500));

	fk.n = 0;
	free(req->method);
	req->method = strdup("GET");
	ck_assert_ptr_nonnull(req->method);
	ck_assert_int_eq(classify(), 0);
	ck_assert(req->rules.idempotent);
}
END_TEST

START_TEST(test_retry_overrides)
{
	add("X-EZTHROTTLE-MAX-RETRIES", "7");
	add("X-EZTHROTTLE-RETRY-ON", "418, 500");
	ck_assert_int_eq(classify(), 0);
	ck_assert_uint_eq(req->rules.max_retries, 7);
	ck_assert(retry_rules_has(&req->rules, 418));
	ck_assert(retry_rules_has(&req->rules, 500));
	ck_assert(!retry_rules_has(&req->rules, 429));
}
END_TEST

START_TEST(test_max_retries_bad)
{
	static const char *const bad[] = { "1001", "-1", "x", "", "1.5" };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		fk.n = 0;
		add("X-EZTHROTTLE-MAX-RETRIES", bad[i]);
		ck_assert_msg(classify() == -EINVAL, "'%s'", bad[i]);
		ck_assert_str_eq(code, "bad_request");
		ck_assert_str_eq(msg, "X-EZTHROTTLE-MAX-RETRIES must be an "
		                 "integer from 0 to 1000");
	}
	fk.n = 0;
	add("X-EZTHROTTLE-MAX-RETRIES", "1000");
	ck_assert_int_eq(classify(), 0);
	ck_assert_uint_eq(req->rules.max_retries, 1000);
}
END_TEST

START_TEST(test_retry_on_bad)
{
	static const char *const bad[] = { "abc", "429,", "429;503", "" };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		fk.n = 0;
		add("X-EZTHROTTLE-RETRY-ON", bad[i]);
		ck_assert_msg(classify() == -EINVAL, "'%s'", bad[i]);
		ck_assert_str_eq(msg, "X-EZTHROTTLE-RETRY-ON must be a list "
		                 "of status codes such as '429,503'");
	}
}
END_TEST

START_TEST(test_error_order)
{
	/* The timeout is judged before the retry controls. */
	add("X-EZTHROTTLE-RETRY-ON", "abc");
	add("X-EZTHROTTLE-MAX-RETRIES", "x");
	add("X-EZTHROTTLE-TIMEOUT", "0");
	ck_assert_int_eq(classify(), -EINVAL);
	ck_assert(strstr(msg, "X-EZTHROTTLE-TIMEOUT") == msg);
	fk.n = 2;
	ck_assert_int_eq(classify(), -EINVAL);
	ck_assert(strstr(msg, "X-EZTHROTTLE-MAX-RETRIES") == msg);
}
END_TEST

/* --- job fields --- */

START_TEST(test_job_fields)
{
	struct admit_job job;

	add("X-EZTHROTTLE-WEBHOOK", "https://a.example/1");
	add("Accept", "*/*");
	add("x-ezthrottle-webhook", "https://b.example/2");
	add("X-EZTHROTTLE-WEBHOOK", NULL);
	add("X-EZTHROTTLE-WEBHOOK-QUORUM", "2");
	add("X-EZTHROTTLE-METADATA", "{\"a\":1}");
	add("X-EZTHROTTLE-IDEMPOTENT-KEY", "k");
	add("X-EZTHROTTLE-RETRY-ON", "503");
	admit_job_fields(&hf, &job);
	ck_assert_uint_eq(job.f.n_webhooks, 3);
	ck_assert_ptr_eq(job.f.webhooks, job.webhooks);
	ck_assert_str_eq(job.webhooks[0], "https://a.example/1");
	ck_assert_str_eq(job.webhooks[1], "https://b.example/2");
	ck_assert_str_eq(job.webhooks[2], "");      /* no value: empty */
	ck_assert_str_eq(job.f.quorum, "2");
	ck_assert_str_eq(job.f.metadata, "{\"a\":1}");
	ck_assert_str_eq(job.f.idempotent_key, "k");
	ck_assert_ptr_null(job.f.max_retries);
	ck_assert_str_eq(job.f.retry_on, "503");
}
END_TEST

START_TEST(test_job_fields_cap)
{
	struct admit_job job;

	/* One more than the limit is kept, for the intake to refuse. */
	for (size_t i = 0; i < WEBHOOK_MAX_URLS + 3; i++)
		add("X-EZTHROTTLE-WEBHOOK", "https://a.example/");
	admit_job_fields(&hf, &job);
	ck_assert_uint_eq(job.f.n_webhooks, WEBHOOK_MAX_URLS + 1);
}
END_TEST

/* --- the head --- */

static struct admit_head head_of(const char *version)
{
	struct admit_head h;

	memset(&h, 0xa5, sizeof(h));
	admit_head(cfg, &hf, version, &h, msg, sizeof(msg));
	return h;
}

START_TEST(test_head_plain)
{
	struct admit_head h;

	add("Host", "api.example.com");
	h = head_of("HTTP/1.1");
	ck_assert_uint_eq(h.status, 0);
	ck_assert(!h.now && !h.body_too_large && !h.has_body);

	add("Content-Length", "0");
	h = head_of("HTTP/1.1");
	ck_assert(!h.has_body);                 /* "0": no body clock */

	fk.n = 1;
	add("Transfer-Encoding", "chunked");
	h = head_of("HTTP/1.1");
	ck_assert_uint_eq(h.status, 0);
	ck_assert(h.has_body);

	fk.n = 1;
	add("content-length", "1000");          /* max_body exactly */
	h = head_of("HTTP/1.1");
	ck_assert_uint_eq(h.status, 0);
	ck_assert(h.has_body && !h.body_too_large);
}
END_TEST

START_TEST(test_head_too_large)
{
	struct admit_head h;

	/* Over max_body: read, dropped, answered at the end. */
	add("Host", "h");
	add("Content-Length", "1001");
	h = head_of("HTTP/1.1");
	ck_assert_uint_eq(h.status, 0);
	ck_assert(!h.now && h.body_too_large && h.has_body);

	/* A client waiting for 100-continue is answered now. */
	add("Expect", "100-Continue");
	h = head_of("HTTP/1.1");
	ck_assert_uint_eq(h.status, 413);
	ck_assert(h.now);
	ck_assert_str_eq(h.code, "body_too_large");
	ck_assert_str_eq(h.msg, "request body of 1001 bytes is over the "
	                 "limit of 1000");
	ck_assert_ptr_eq(h.msg, msg);

	/* So is one about to send more than 64 MiB too much. */
	fk.n = 1;
	add("Content-Length", "67109865");      /* 1000 + 64 MiB + 1 */
	h = head_of("HTTP/1.1");
	ck_assert_uint_eq(h.status, 413);
	ck_assert(h.now);
	fk.n = 1;
	add("Content-Length", "67109864");      /* 1000 + 64 MiB */
	h = head_of("HTTP/1.1");
	ck_assert_uint_eq(h.status, 0);
	ck_assert(h.body_too_large);
}
END_TEST

START_TEST(test_head_host)
{
	struct admit_head h;

	h = head_of("HTTP/1.1");
	ck_assert_uint_eq(h.status, 400);
	ck_assert(!h.now);
	ck_assert_str_eq(h.code, "bad_request");
	ck_assert_str_eq(h.msg, "HTTP/1.1 request without Host");
	h = head_of("HTTP/1.0");
	ck_assert_uint_eq(h.status, 0);

	/* Both: the body is still read and dropped, then the 400. */
	add("Content-Length", "5000");
	h = head_of("HTTP/1.1");
	ck_assert_uint_eq(h.status, 400);
	ck_assert(h.body_too_large && h.has_body && !h.now);
}
END_TEST

/* --- the target --- */

START_TEST(test_target)
{
	const char *why;

	/* setup() cut the fragment off the raw target. */
	ck_assert_str_eq(req->raw_target, "http://api.example.com/v1/x?q=1");
	request_unref(req);

	req = request_new("/just/a/path");
	ck_assert_ptr_nonnull(req);
	ck_assert_uint_eq(admit_target(cfg, req, &code, &why, msg,
	                               sizeof(msg)), 400);
	ck_assert_str_eq(code, "not_a_proxy_request");
	ck_assert(strstr(why, "forward proxy") != NULL);
	request_unref(req);

	req = request_new("http://169.254.169.254/latest");
	ck_assert_ptr_nonnull(req);
	ck_assert_uint_eq(admit_target(cfg, req, &code, &why, msg,
	                               sizeof(msg)), 403);
	ck_assert_str_eq(code, "destination_denied");
	ck_assert_str_eq(why, "destination '169.254.169.254' is denied");
	request_unref(req);

	req = request_new("ftp://example.com/");
	ck_assert_ptr_nonnull(req);
	ck_assert_uint_eq(admit_target(cfg, req, &code, &why, msg,
	                               sizeof(msg)), 400);
	ck_assert_str_eq(code, "bad_request");
	ck_assert(strncmp(why, "invalid request target: ", 24) == 0);
}
END_TEST

/* --- the upstream field list --- */

START_TEST(test_upstream_plain)
{
	char *s;
	int err;

	add("Host", "api.example.com");
	add("User-Agent", "t/1");
	add("Content-Length", "3");
	add("Expect", "100-continue");
	add("X-EZTHROTTLE-TIMEOUT", "5");
	add("Proxy-Authorization", "Basic x");
	s = upstream(&err);
	ck_assert_int_eq(err, 0);
	/* Empty Expect, Accept, Content-Type: curl adds none of its own. */
	ck_assert_str_eq(s, "User-Agent: t/1|Expect:|Accept:|Content-Type:|");
	free(s);
}
END_TEST

START_TEST(test_upstream_accept_ctype)
{
	char *s;
	int err;

	add("accept", "text/plain");
	add("Content-Type", "application/json");
	s = upstream(&err);
	ck_assert_int_eq(err, 0);
	ck_assert_str_eq(s, "accept: text/plain|"
	                 "Content-Type: application/json|Expect:|");
	free(s);
}
END_TEST

START_TEST(test_upstream_connection)
{
	char *s;
	int err;

	/* Both Connection fields count, joined. */
	add("Connection", "keep-alive, X-Hop");
	add("X-Hop", "1");
	add("X-Other", "2");
	add("X-Keep", "3");
	add("connection", " x-other ");
	add("Keep-Alive", "timeout=5");
	add("TE", "trailers");
	add("Upgrade", "h2c");
	s = upstream(&err);
	ck_assert_int_eq(err, 0);
	ck_assert_str_eq(s, "X-Keep: 3|Expect:|Accept:|Content-Type:|");
	free(s);
}
END_TEST

START_TEST(test_upstream_empty_value)
{
	char *s;
	int err;

	/* "Name:" would make curl remove the field; "Name;" sends it empty. */
	add("X-Empty", "");
	add("X-Null", NULL);
	s = upstream(&err);
	ck_assert_int_eq(err, 0);
	ck_assert_str_eq(s, "X-Empty;|X-Null;|Expect:|Accept:|"
	                 "Content-Type:|");
	free(s);
}
END_TEST

START_TEST(test_upstream_sizes)
{
	size_t n = 1, text = 10;

	add("Host", "ab");            /* dropped, still counted */
	add("X-A", "xyz");
	ck_assert_int_eq(admit_upstream_headers(&hf, req, &n, &text), 0);
	ck_assert_uint_eq(n, 3);
	ck_assert_uint_eq(text, 10 + 4 + 2 + 3 + 3);
}
END_TEST

START_TEST(test_upstream_last_guard)
{
	static const struct {
		const char *name, *value;
	} bad[] = {
		{ "Bad Name", "v" }, { "Bad:Name", "v" }, { "", "v" },
		{ "X-A\r", "v" }, { "X-A", "a\r\nX-Injected: 1" },
		{ "X-A", "a\nb" }, { "X-A", "nul\x01" }, { "X-A", "del\x7f" },
		{ "N\xc3\xa9", "v" },
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *s;
		int err;

		header_list_free(&req->up_headers);
		fk.n = 0;
		add("X-Before", "1");
		add(bad[i].name, bad[i].value);
		add("X-After", "2");
		s = upstream(&err);
		ck_assert_msg(err == -EINVAL, "case %zu", i);
		/* The walk stopped there and no trailer was added. */
		ck_assert_str_eq(s, "X-Before: 1|");
		free(s);
	}
	/* A tab inside a value is fine. */
	header_list_free(&req->up_headers);
	fk.n = 0;
	add("X-Tab", "a\tb");
	{
		char *s;
		int err;

		s = upstream(&err);
		ck_assert_int_eq(err, 0);
		ck_assert_str_eq(s, "X-Tab: a\tb|Expect:|Accept:|"
		                 "Content-Type:|");
		free(s);
	}
}
END_TEST

static Suite *front_admit_suite(void)
{
	Suite *s = suite_create("front_admit");
	TCase *tc;

	tc = tcase_create("credential");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_key_config_order);
	tcase_add_test(tc, test_key_second);
	tcase_add_test(tc, test_key_none);
	tcase_add_test(tc, test_key_empty_value);
	suite_add_tcase(s, tc);

	tc = tcase_create("controls");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_timeout_default);
	tcase_add_test(tc, test_timeout_good);
	tcase_add_test(tc, test_timeout_bad);
	tcase_add_test(tc, test_retry_defaults);
	tcase_add_test(tc, test_retry_idempotent);
	tcase_add_test(tc, test_retry_overrides);
	tcase_add_test(tc, test_max_retries_bad);
	tcase_add_test(tc, test_retry_on_bad);
	tcase_add_test(tc, test_error_order);
	suite_add_tcase(s, tc);

	tc = tcase_create("head");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_head_plain);
	tcase_add_test(tc, test_head_too_large);
	tcase_add_test(tc, test_head_host);
	suite_add_tcase(s, tc);

	tc = tcase_create("jobs and target");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_job_fields);
	tcase_add_test(tc, test_job_fields_cap);
	tcase_add_test(tc, test_target);
	suite_add_tcase(s, tc);

	tc = tcase_create("upstream");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_upstream_plain);
	tcase_add_test(tc, test_upstream_accept_ctype);
	tcase_add_test(tc, test_upstream_connection);
	tcase_add_test(tc, test_upstream_empty_value);
	tcase_add_test(tc, test_upstream_sizes);
	tcase_add_test(tc, test_upstream_last_guard);
	suite_add_tcase(s, tc);
	return s;
}

TESTLIB_MAIN(front_admit_suite)

/*
 * check_ctl.c - sluicectl's checks and views: job ids, admin addresses,
 * times, durations, the /queues table, the job summary, what an answer
 * to POST /reload means and what a closed port is called.
 */
#include <check.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>
#include <curl/curl.h>

#include "ctl/ctl_fmt.h"
#include "ctl/ctl_http.h"
#include "testlib.h"

#define HEX44 "0193a5b2c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5"

static char *out_buf;
static size_t out_len;
static FILE *out;

static void setup(void)
{
	out_buf = NULL;
	out_len = 0;
	out = open_memstream(&out_buf, &out_len);
	ck_assert_ptr_nonnull(out);
}

static void teardown(void)
{
	if (out)
		fclose(out);
	free(out_buf);
}

/* Closes the stream; out_buf then holds everything printed. */
static const char *printed(void)
{
	fclose(out);
	out = NULL;
	return out_buf;
}

static json_t *load(const char *text)
{
	json_error_t e;
	json_t *j = json_loads(text, 0, &e);

	ck_assert_msg(j != NULL, "bad test JSON: %s", e.text);
	return j;
}

START_TEST(test_job_id)
{
	ck_assert(ctl_job_id_valid("job_" HEX44));
	ck_assert(!ctl_job_id_valid("job_" HEX44 "0"));
	ck_assert(!ctl_job_id_valid("job_" "0193a5b2c4d5"));
	ck_assert(!ctl_job_id_valid("JOB_" HEX44));
	ck_assert(!ctl_job_id_valid(""));
	ck_assert(!ctl_job_id_valid("job_"));
	/* Upper case, a path, an escape: never. */
	ck_assert(!ctl_job_id_valid(
		"job_0193A5B2C4D5E6F708192A3B4C5D6E7F8091A2B3C4D5"));
	ck_assert(!ctl_job_id_valid(
		"job_../../queues/0000000000000000000000000000000"));
	ck_assert(!ctl_job_id_valid(
		"job_%2e%2e00000000000000000000000000000000000000"));
}
END_TEST

START_TEST(test_addr)
{
	ck_assert(ctl_addr_valid("127.0.0.1:8081"));
	ck_assert(ctl_addr_valid("localhost:1"));
	ck_assert(ctl_addr_valid("[::1]:65535"));
	ck_assert(ctl_addr_valid("admin-1.example.com:8081"));
	ck_assert(!ctl_addr_valid("127.0.0.1"));
	ck_assert(!ctl_addr_valid("127.0.0.1:"));
	ck_assert(!ctl_addr_valid("127.0.0.1:0"));
	ck_assert(!ctl_addr_valid("127.0.0.1:65536"));
	ck_assert(!ctl_addr_valid("127.0.0.1:80a"));
	ck_assert(!ctl_addr_valid(":8081"));
	ck_assert(!ctl_addr_valid("::1:8081"));
	ck_assert(!ctl_addr_valid("[]:8081"));
	ck_assert(!ctl_addr_valid("user@host:8081"));
	ck_assert(!ctl_addr_valid("host/x:8081"));
	ck_assert(!ctl_addr_valid("http://host:8081"));
	ck_assert(!ctl_addr_valid("ho st:8081"));
}
END_TEST

START_TEST(test_time)
{
	char buf[CTL_TIME_LEN];

	ctl_fmt_time(0, buf);
	ck_assert_str_eq(buf, "1970-01-01T00:00:00.000Z");
	ctl_fmt_time(1795428000123LL, buf);
	ck_assert_str_eq(buf, "2026-11-23T10:00:00.123Z");
	ctl_fmt_time(-1, buf);
	ck_assert_str_eq(buf, "-");
}
END_TEST

START_TEST(test_duration)
{
	char buf[CTL_DURATION_LEN];

	ctl_fmt_duration(33, buf);
	ck_assert_str_eq(buf, "33ms");
	ctl_fmt_duration(4250, buf);
	ck_assert_str_eq(buf, "4.2s");
	ctl_fmt_duration(187000, buf);
	ck_assert_str_eq(buf, "3m07s");
	ctl_fmt_duration(7500000, buf);
	ck_assert_str_eq(buf, "2h05m");
	ctl_fmt_duration(-1, buf);
	ck_assert_str_eq(buf, "-");
}
END_TEST

/* In the daemon's order, which is not the table's. */
static const char queues_json[] =
	"{\"queues\": 2, \"waiting\": 3, \"in_flight\": 1, \"requests\": 9,"
	" \"attempts\": 10, \"queue_full\": 0, \"list\": ["
	"{\"destination\": \"https://api.example.com:443\","
	" \"key\": \"3fa9c1d2e0b4\", \"rps\": 10.0, \"concurrency\": 4,"
	" \"learned_rps\": 0.5, \"learned_concurrency\": 1, \"waiting\": 0,"
	" \"in_flight\": 0, \"paused_ms\": 12000, \"idle_ms\": 187000},"
	"{\"destination\": \"http://127.0.0.1:9000\", \"key\": null,"
	" \"rps\": 1.0, \"concurrency\": 2, \"learned_rps\": null,"
	" \"learned_concurrency\": null, \"waiting\": 3, \"in_flight\": 1,"
	" \"paused_ms\": 0, \"idle_ms\": 33}]}";

START_TEST(test_queues)
{
	json_t *j = load(queues_json);
	const char *s;

	ck_assert_int_eq(ctl_print_queues(out, j), 0);
	s = printed();
	ck_assert_msg(strstr(s, "queues 2, waiting 3, in flight 1\n"), "%s", s);
	ck_assert_msg(strstr(s, "requests 9, attempts 10, queue full 0\n"),
	              "%s", s);
	ck_assert_msg(strstr(s, "\n\nDESTINATION                  KEY  "
	                        "         MODE  RATE          CONCURRENCY  "
	                        "WAITING  IN FLIGHT  PAUSED   IDLE\n"
	                        "http://127.0.0.1:9000        -             "
	                        "-     1 configured  2                  3  "
	                        "        1       -   33ms\n"
	                        "https://api.example.com:443  3fa9c1d2e0b4  "
	                        "-     0.5 learned   1 learned          0  "
	                        "        0   12.0s  3m07s\n"), "%s", s);
	json_decref(j);
}
END_TEST

/* The rate in force and its source, as a daemon that names them says. */
START_TEST(test_queues_rate_source)
{
	json_t *j = load(
		"{\"queues\": 3, \"list\": ["
		"{\"destination\": \"https://a.example:443\", \"key\": null,"
		" \"rps\": 2.0, \"rate\": 10.0, \"rate_source\": \"quota\","
		" \"mode\": \"paced\", \"concurrency\": 2, \"waiting\": 0,"
		" \"in_flight\": 0, \"paused_ms\": 4250, \"idle_ms\": 5},"
		"{\"destination\": \"https://b.example:443\", \"key\": null,"
		" \"rps\": 2.0, \"rate\": 0.0, \"rate_source\": \"configured\","
		" \"mode\": \"frugal\", \"concurrency\": 2, \"waiting\": 0,"
		" \"in_flight\": 0, \"paused_ms\": 0, \"idle_ms\": 5},"
		"{\"destination\": \"https://c.example:443\", \"key\": null,"
		" \"rps\": 2.0, \"rate\": 2.0, \"rate_source\": \"configured\","
		" \"mode\": \"adaptive\", \"concurrency\": 2, \"waiting\": 0,"
		" \"in_flight\": 0, \"paused_ms\": 0, \"idle_ms\": 5}]}");
	const char *s;

	ck_assert_int_eq(ctl_print_queues(out, j), 0);
	s = printed();
	ck_assert_msg(strstr(s, "https://a.example:443  -    paced     "
	                        "10 quota      2"), "%s", s);
	ck_assert_msg(strstr(s, "    4.2s   5ms\n"), "%s", s);
	ck_assert_msg(strstr(s, "https://b.example:443  -    frugal    "
	                        "unpaced       2"), "%s", s);
	ck_assert_msg(strstr(s, "https://c.example:443  -    adaptive  "
	                        "2 configured  2"), "%s", s);
	json_decref(j);
}
END_TEST

/*
 * Rows by destination, then key (the anonymous queue first), whatever
 * order the pages came in.
 */
START_TEST(test_queues_order)
{
	json_t *j = load(
		"{\"list\": ["
		"{\"destination\": \"http://b:80\", \"key\": \"overflow\"},"
		"{\"destination\": \"http://b:80\", \"key\": \"00000000000f\"},"
		"{\"destination\": \"http://a:80\", \"key\": \"aaaaaaaaaaaa\"},"
		"{\"destination\": \"http://b:80\", \"key\": null},"
		"{\"destination\": \"http://a:80\", \"key\": \"000000000000\"}"
		"]}");
	const char *s, *p[5];

	ck_assert_int_eq(ctl_print_queues(out, j), 0);
	s = printed();
	p[0] = strstr(s, "http://a:80  000000000000");
	p[1] = strstr(s, "http://a:80  aaaaaaaaaaaa");
	p[2] = strstr(s, "http://b:80  -  ");
	p[3] = strstr(s, "http://b:80  00000000000f");
	p[4] = strstr(s, "http://b:80  overflow");
	for (int i = 0; i < 5; i++) {
		ck_assert_msg(p[i] != NULL, "row %d: %s", i, s);
		ck_assert_msg(i == 0 || p[i - 1] < p[i], "row %d: %s", i, s);
	}
	json_decref(j);
}
END_TEST

START_TEST(test_queues_empty_and_bad)
{
	json_t *j = load("{\"queues\": 0, \"list\": []}");
	json_t *bad = load("{\"queues\": 0}");

	ck_assert_int_eq(ctl_print_queues(out, bad), -EINVAL);
	ck_assert_int_eq(ctl_print_queues(out, j), 0);
	ck_assert_msg(strstr(printed(), "\nno queues\n"), "%s", out_buf);
	json_decref(j);
	json_decref(bad);
}
END_TEST

START_TEST(test_control_chars)
{
	json_t *j = load("{\"list\": [{\"destination\": \"http://a\\u001b[2J\","
	                 " \"key\": null}]}");

	ck_assert_int_eq(ctl_print_queues(out, j), 0);
	ck_assert_msg(!strchr(printed(), '\033'), "%s", out_buf);
	ck_assert_msg(strstr(out_buf, "http://a?[2J"), "%s", out_buf);
	json_decref(j);
}
END_TEST

static const char job_json[] =
	"{\"job_id\": \"job_" HEX44 "\", \"state\": \"running\","
	" \"method\": \"POST\", \"destination\": \"http://api.example:80\","
	" \"path\": \"/v1/items\", \"quorum\": 1, \"delivered\": true,"
	" \"error\": {\"code\": \"upstream_connect\","
	" \"message\": \"refused\"},"
	" \"attempts\": 2, \"created_at\": 1795428000123,"
	" \"finished_at\": null,"
	" \"response\": {\"status_code\": 200, \"headers\": [],"
	"  \"body\": \"secret-body\"},"
	" \"deliveries\": ["
	"  {\"url\": \"https://u:pw-SECRET@hooks.example/a?token=TOKSECRET\","
	"   \"state\": \"delivered\", \"attempts\": 1, \"last_status\": 200,"
	"   \"last_error\": null, \"next_at\": null,"
	"   \"delivered_at\": 1795428001000},"
	"  {\"url\": \"https://hooks.example/b\", \"state\": \"pending\","
	"   \"attempts\": 3, \"last_status\": 503, \"last_error\": \"HTTP 503\","
	"   \"next_at\": 1795428060000, \"delivered_at\": null}]}";

START_TEST(test_job)
{
	json_t *j = load(job_json);
	const char *s;

	ck_assert_int_eq(ctl_print_job(out, j), 0);
	s = printed();
	ck_assert_msg(strstr(s, "job        job_" HEX44 "\n"
	                        "request    POST "
	                        "http://api.example:80/v1/items\n"
	                        "state      running\n"), "%s", s);
	ck_assert_msg(strstr(s, "attempts   2\n"), "%s", s);
	ck_assert_msg(strstr(s, "created    2026-11-23T10:00:00.123Z\n"), "%s",
	              s);
	ck_assert_msg(strstr(s, "finished   -\n"), "%s", s);
	ck_assert_msg(strstr(s, "status     200\n"
	                        "error      upstream_connect: refused\n"
	                        "deliveries 1 of 2 delivered, quorum 1 met\n"),
	              "%s", s);
	ck_assert_msg(strstr(s, "delivered  https://***@hooks.example/a?***\n"),
	              "%s", s);
	ck_assert_msg(strstr(s, "attempts 1, last status 200, delivered "
	                        "2026-11-23T10:00:01.000Z\n"), "%s", s);
	ck_assert_msg(strstr(s, "pending    https://hooks.example/b\n"), "%s",
	              s);
	ck_assert_msg(strstr(s, "attempts 3, last status 503, next try "
	                        "2026-11-23T10:01:00.000Z\n"), "%s", s);
	ck_assert_msg(strstr(s, "last error: HTTP 503\n"), "%s", s);
	ck_assert_msg(!strstr(s, "SECRET"), "%s", s);
	ck_assert_msg(!strstr(s, "secret-body"), "%s", s);
	json_decref(j);
}
END_TEST

START_TEST(test_job_other_shapes)
{
	/* Times in a "timestamps" object, in seconds; outcome as success. */
	json_t *j = load("{\"job_id\": \"x\", \"state\": \"done\","
	                 " \"success\": false, \"attempts\": 1,"
	                 " \"timestamps\": {\"created\": 1795428000,"
	                 " \"finished\": \"2026-11-23T09:21:00Z\"}}");
	const char *s;

	ck_assert_int_eq(ctl_print_job(out, j), 0);
	s = printed();
	ck_assert_msg(strstr(s, "state      done (failed)\n"), "%s", s);
	ck_assert_msg(strstr(s, "created    2026-11-23T10:00:00.000Z\n"), "%s",
	              s);
	ck_assert_msg(strstr(s, "finished   2026-11-23T09:21:00Z\n"), "%s", s);
	ck_assert_msg(strstr(s, "status     -\n"), "%s", s);
	ck_assert_msg(strstr(s, "deliveries -\n"), "%s", s);
	ck_assert_msg(!strstr(s, "request"), "%s", s);
	ck_assert_msg(!strstr(s, "error"), "%s", s);
	json_decref(j);
}
END_TEST

/* The quorum: met, not met while deliveries are pending, missed. */
START_TEST(test_job_quorum)
{
	json_t *pending = load("{\"state\": \"done\", \"quorum\": 2,"
	                       " \"delivered\": false, \"deliveries\": ["
	                       "{\"state\": \"delivered\"},"
	                       "{\"state\": \"pending\"}]}");
	json_t *missed = load("{\"state\": \"done\", \"quorum\": 1,"
	                      " \"delivered\": false, \"deliveries\": ["
	                      "{\"state\": \"gave_up\"}]}");

	ck_assert_int_eq(ctl_print_job(out, pending), 0);
	ck_assert_int_eq(ctl_print_job(out, missed), 0);
	printed();
	ck_assert_msg(strstr(out_buf, "deliveries 1 of 2 delivered, quorum 2 "
	                              "not met yet\n"), "%s", out_buf);
	ck_assert_msg(strstr(out_buf, "deliveries 0 of 1 delivered, quorum 1 "
	                              "missed\n"), "%s", out_buf);
	ck_assert_msg(strstr(out_buf, "  gave_up    -\n"), "%s", out_buf);
	json_decref(pending);
	json_decref(missed);
}
END_TEST

/* reload_parse S BODY: what ctl_reload_parse makes of it. */
static struct ctl_reload reload_parse(long status, const char *body)
{
	struct ctl_reload r;

	ck_assert_int_eq(ctl_reload_parse(status, body, strlen(body), &r), 0);
	return r;
}

START_TEST(test_reload)
{
	struct ctl_reload r;

	r = reload_parse(200, "{\"reloaded\":true,\"restart_needed\":[]}");
	ck_assert_int_eq(r.outcome, CTL_RELOADED);
	ck_assert_ptr_null(r.restart);
	ctl_reload_done(&r);

	r = reload_parse(200, "{\"reloaded\": true}");
	ck_assert_int_eq(r.outcome, CTL_RELOADED);
	ck_assert_ptr_null(r.restart);
	ctl_reload_done(&r);

	r = reload_parse(200, "{\"reloaded\":true,\"restart_needed\":"
	                      "[\"listen\", 7, \"\", \"state\\u001b_dir\"]}");
	ck_assert_int_eq(r.outcome, CTL_RELOADED);
	ck_assert_str_eq(r.restart, "listen, state?_dir");
	ctl_reload_done(&r);

	r = reload_parse(400, "{\"error\":\"invalid_configuration\","
	                      "\"message\":\"/etc/sluice/sluice.yaml:12:7: "
	                      "unknown key 'rpss'\\n/etc/sluice/sluice.yaml:"
	                      "14:3: bad\\u001b\\n\"}");
	ck_assert_int_eq(r.outcome, CTL_RELOAD_INVALID);
	ck_assert_str_eq(r.message, "/etc/sluice/sluice.yaml:12:7: unknown "
	                 "key 'rpss'\n/etc/sluice/sluice.yaml:14:3: bad?");
	ctl_reload_done(&r);

	r = reload_parse(503, "{\"error\":\"reload_in_progress\"}");
	ck_assert_int_eq(r.outcome, CTL_RELOAD_BUSY);
	ctl_reload_done(&r);

	/* Not the contract: the caller says what came. */
	r = reload_parse(200, "{\"reloaded\": false}");
	ck_assert_int_eq(r.outcome, CTL_RELOAD_UNEXPECTED);
	ctl_reload_done(&r);
	r = reload_parse(200, "ok");
	ck_assert_int_eq(r.outcome, CTL_RELOAD_UNEXPECTED);
	ctl_reload_done(&r);
	r = reload_parse(400, "{\"error\":\"invalid_configuration\"}");
	ck_assert_int_eq(r.outcome, CTL_RELOAD_UNEXPECTED);
	ctl_reload_done(&r);
	r = reload_parse(404, "{\"error\":\"not_found\"}");
	ck_assert_int_eq(r.outcome, CTL_RELOAD_UNEXPECTED);
	ctl_reload_done(&r);
	r = reload_parse(503, "{\"error\":\"busy\"}");
	ck_assert_int_eq(r.outcome, CTL_RELOAD_UNEXPECTED);
	ctl_reload_done(&r);
}
END_TEST

/* A port nothing listens on: -ECONNREFUSED, "connection refused". */
START_TEST(test_refused)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	struct ctl_reply r = { 0, NULL, 0 };
	char addr[32], err[CTL_ERR_LEN];
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	ck_assert_int_ge(fd, 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", ntohs(sa.sin_port));
	close(fd);               /* bound, never listened: refused */
	ck_assert_int_eq(curl_global_init(CURL_GLOBAL_DEFAULT), CURLE_OK);
	ck_assert_int_eq(ctl_get(addr, "/healthz", NULL, &r, err),
	                 -ECONNREFUSED);
	ck_assert_str_eq(err, "connection refused");
	ck_assert_int_eq(ctl_post(addr, "/reload", "t0ken", &r, err),
	                 -ECONNREFUSED);
	ck_assert_ptr_null(r.body);
	curl_global_cleanup();
}
END_TEST

static Suite *ctl_suite(void)
{
	Suite *s = suite_create("ctl");
	TCase *tc;

	tc = tcase_create("checks");
	tcase_add_test(tc, test_job_id);
	tcase_add_test(tc, test_addr);
	tcase_add_test(tc, test_time);
	tcase_add_test(tc, test_duration);
	tcase_add_test(tc, test_reload);
	tcase_add_test(tc, test_refused);
	suite_add_tcase(s, tc);

	tc = tcase_create("views");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_queues);
	tcase_add_test(tc, test_queues_rate_source);
	tcase_add_test(tc, test_queues_order);
	tcase_add_test(tc, test_queues_empty_and_bad);
	tcase_add_test(tc, test_control_chars);
	tcase_add_test(tc, test_job);
	tcase_add_test(tc, test_job_other_shapes);
	tcase_add_test(tc, test_job_quorum);
	suite_add_tcase(s, tc);
	return s;
}

TESTLIB_MAIN(ctl_suite)

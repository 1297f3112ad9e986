/*
 * check_args.c - sluiced's command line without the daemon: flags read
 * into struct args, --help and --version, unknown flags and stray
 * arguments, and the configuration the file and the flags make together
 * (args_load_config), with every bad flag reported.
 */
#include <check.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "args.h"
#include "config.h"
#include "testlib.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "unknown"
#endif

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

static char *tmp_path;
static char **argv_copy;         /* args_parse() keeps pointers into it */

static void argv_free(void)
{
	for (size_t i = 0; argv_copy && argv_copy[i]; i++)
		free(argv_copy[i]);
	free(argv_copy);
	argv_copy = NULL;
}

static void teardown(void)
{
	argv_free();
	if (tmp_path) {
		unlink(tmp_path);
		free(tmp_path);
		tmp_path = NULL;
	}
}

/* Writes text to a new temporary file, named in tmp_path. */
static const char *write_tmp(const char *text)
{
	const char *dir = getenv("TMPDIR");
	size_t len = strlen(text);
	FILE *f;
	int fd;

	ck_assert_ptr_null(tmp_path);
	ck_assert_int_ge(asprintf(&tmp_path, "%s/check_args.XXXXXX",
	                          dir ? dir : "/tmp"), 0);
	fd = mkstemp(tmp_path);
	ck_assert_int_ge(fd, 0);
	f = fdopen(fd, "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(text, 1, len, f), len);
	ck_assert_int_eq(fclose(f), 0);
	return tmp_path;
}

/*
 * What args_parse() returns for v (NULL-terminated, "sluiced" first),
 * with what it printed on fd (1 or 2) in out (at most size - 1 bytes,
 * NUL-terminated). *fl must be zeroed; it points into a copy of v that
 * lives until the next call.
 */
static int parse_capture(const char *const *v, struct args *fl, int fd,
                         char *out, size_t size)
{
	FILE *tmp = tmpfile();
	int argc = 0, saved, r;
	size_t n;

	ck_assert_ptr_nonnull(tmp);
	argv_free();
	while (v[argc])
		argc++;
	argv_copy = calloc((size_t)argc + 1, sizeof(*argv_copy));
	ck_assert_ptr_nonnull(argv_copy);
	for (int i = 0; i < argc; i++) {
		argv_copy[i] = strdup(v[i]);
		ck_assert_ptr_nonnull(argv_copy[i]);
	}
	fflush(stdout);
	fflush(stderr);
	saved = dup(fd);
	ck_assert_int_ge(saved, 0);
	ck_assert_int_ge(dup2(fileno(tmp), fd), 0);
	optind = 0;                  /* getopt_long starts afresh */
	r = args_parse(argc, argv_copy, fl);
	fflush(stdout);
	fflush(stderr);
	ck_assert_int_ge(dup2(saved, fd), 0);
	close(saved);
	rewind(tmp);
	n = fread(out, 1, size - 1, tmp);
	out[n] = '\0';
	fclose(tmp);
	return r;
}

START_TEST(test_parse_flags)
{
	const char *const argv[] = {
		"sluiced", "-c", "/etc/x.yaml", "--listen", "127.0.0.1:0",
		"-a", "[::1]:0", "-s", "/tmp/state", "--rps", "5",
		"--concurrency", "3", "--allow", "10.0.0.0/8",
		"--allow", "::1/128", "--webhook-secret-file", "/s",
		"--log-level", "debug", "--access-log", "-t", NULL,
	};
	struct args fl = { 0 };
	char out[256];

	ck_assert_int_eq(parse_capture(argv, &fl, 1, out, sizeof(out)), 0);
	ck_assert_str_eq(out, "");
	ck_assert_str_eq(fl.config, "/etc/x.yaml");
	ck_assert_str_eq(fl.listen, "127.0.0.1:0");
	ck_assert_str_eq(fl.admin_listen, "[::1]:0");
	ck_assert_str_eq(fl.state_dir, "/tmp/state");
	ck_assert_str_eq(fl.rps, "5");
	ck_assert_str_eq(fl.concurrency, "3");
	ck_assert_uint_eq(fl.n_allow, 2);
	ck_assert_str_eq(fl.allow[0], "10.0.0.0/8");
	ck_assert_str_eq(fl.allow[1], "::1/128");
	ck_assert_str_eq(fl.webhook_secret_file, "/s");
	ck_assert_str_eq(fl.log_level, "debug");
	ck_assert(fl.access_log);
	ck_assert(fl.check_config);
	free(fl.allow);
}
END_TEST

/* No flags: nothing set, go on. */
START_TEST(test_parse_none)
{
	const char *const argv[] = { "sluiced", NULL };
	struct args fl = { 0 };
	char out[64];

	ck_assert_int_eq(parse_capture(argv, &fl, 2, out, sizeof(out)), 0);
	ck_assert_str_eq(out, "");
	ck_assert_ptr_null(fl.config);
	ck_assert_ptr_null(fl.allow);
	ck_assert(!fl.check_config);
}
END_TEST

/* --help and --version print on stdout and stop with status 0. */
START_TEST(test_parse_help_version)
{
	const char *const help[] = { "sluiced", "--help", NULL };
	const char *const h[] = { "sluiced", "-h", NULL };
	const char *const version[] = { "sluiced", "--version", NULL };
	const char *const v[] = { "sluiced", "-V", NULL };
	struct args fl = { 0 };
	char out[4096];

	ck_assert_int_eq(parse_capture(help, &fl, 1, out, sizeof(out)),
	                 0 + 1);
	ck_assert_ptr_eq(strstr(out, "usage: sluiced [options]\n"), out);
	ck_assert_ptr_nonnull(strstr(out, "--check-config"));
	ck_assert_ptr_nonnull(strstr(out, CONFIG_DEFAULT_PATH));
	ck_assert_int_eq(parse_capture(h, &fl, 1, out, sizeof(out)),
	                 0 + 1);
	ck_assert_ptr_eq(strstr(out, "usage: sluiced"), out);
	ck_assert_int_eq(parse_capture(version, &fl, 1, out, sizeof(out)),
	                 0 + 1);
	ck_assert_str_eq(out, "sluiced " PACKAGE_VERSION "\n");
	ck_assert_int_eq(parse_capture(v, &fl, 1, out, sizeof(out)),
	                 0 + 1);
	ck_assert_str_eq(out, "sluiced " PACKAGE_VERSION "\n");
}
END_TEST

/* An unknown flag, a missing value, a stray argument: status 1. */
START_TEST(test_parse_bad)
{
	const char *const unknown[] = { "sluiced", "--rpss", "5", NULL };
	const char *const missing[] = { "sluiced", "--rps", NULL };
	const char *const stray[] = { "sluiced", "-t", "extra", NULL };
	struct args fl = { 0 };
	char out[512];

	ck_assert_int_eq(parse_capture(unknown, &fl, 2, out, sizeof(out)),
	                 1 + 1);
	ck_assert_ptr_nonnull(strstr(out, "rpss"));
	ck_assert_ptr_nonnull(strstr(out, "Try 'sluiced --help'.\n"));
	ck_assert_int_eq(parse_capture(missing, &fl, 2, out, sizeof(out)),
	                 1 + 1);
	ck_assert_ptr_nonnull(strstr(out, "Try 'sluiced --help'.\n"));
	ck_assert_int_eq(parse_capture(stray, &fl, 2, out, sizeof(out)),
	                 1 + 1);
	ck_assert_str_eq(out, "sluiced: unexpected argument 'extra'\n");
}
END_TEST

/* The flags over the file. */
START_TEST(test_load_flags_over_file)
{
	const char *allow[] = { "10.0.0.0/8", "192.168.0.0/16" };
	struct args fl = {
		.listen = "127.0.0.1:0", .admin_listen = "127.0.0.1:1",
		.state_dir = "/tmp/st", .rps = "7.5", .concurrency = "4",
		.allow = allow, .n_allow = 2, .webhook_secret_file = "/s",
		.log_level = "debug", .access_log = true,
	};
	struct config *cfg = NULL;

	fl.config = write_tmp("listen: 127.0.0.1:9\n"
	                      "admin_listen: 127.0.0.1:10\n");
	ck_assert_int_eq(args_load_config(&fl, &cfg), 0);
	ck_assert_ptr_nonnull(cfg);
	ck_assert_str_eq(cfg->listen, "127.0.0.1:0");
	ck_assert_str_eq(cfg->admin_listen, "127.0.0.1:1");
	ck_assert_str_eq(cfg->state_dir, "/tmp/st");
	ck_assert_double_eq(cfg->defaults.limits.rps, 7.5);
	ck_assert_uint_eq(cfg->defaults.limits.concurrency, 4);
	ck_assert_uint_eq(cfg->allow.n, 2);
	ck_assert_str_eq(cfg->webhooks.secret_file, "/s");
	ck_assert_int_eq(cfg->log_level, LOG_LEVEL_DEBUG);
	ck_assert(cfg->access_log);
	config_free(cfg);
}
END_TEST

/* No flags: the file as it is. */
START_TEST(test_load_file_alone)
{
	struct args fl = { 0 };
	struct config *cfg = NULL;

	fl.config = write_tmp("listen: 127.0.0.1:9\n");
	ck_assert_int_eq(args_load_config(&fl, &cfg), 0);
	ck_assert_str_eq(cfg->listen, "127.0.0.1:9");
	ck_assert(!cfg->access_log);
	config_free(cfg);
}
END_TEST

/* Bad flag values: status 1, nothing returned. */
START_TEST(test_load_bad_flags)
{
	static const char *const bad[][2] = {
		{ "rps", "0" }, { "rps", "fast" }, { "rps", "1e10" },
		{ "concurrency", "0" }, { "concurrency", "2x" },
		{ "allow", "10.0.0.0/33" }, { "log_level", "loud" },
		{ "listen", "nowhere" }, { "admin_listen", "1.2.3.4" },
	};
	struct config *cfg = NULL;
	const char *path = write_tmp("listen: 127.0.0.1:9\n");

	for (int i = 0; i < N(bad); i++) {
		const char *allow[1] = { bad[i][1] };
		struct args fl = { .config = path };
		const char *k = bad[i][0];

		if (strcmp(k, "rps") == 0)
			fl.rps = bad[i][1];
		else if (strcmp(k, "concurrency") == 0)
			fl.concurrency = bad[i][1];
		else if (strcmp(k, "allow") == 0)
			fl.allow = allow, fl.n_allow = 1;
		else if (strcmp(k, "log_level") == 0)
			fl.log_level = bad[i][1];
		else if (strcmp(k, "listen") == 0)
			fl.listen = bad[i][1];
		else
			fl.admin_listen = bad[i][1];
		if (args_load_config(&fl, &cfg) != 1 + 1)
			ck_abort_msg("--%s %s accepted", k, bad[i][1]);
		ck_assert_ptr_null(cfg);
	}
}
END_TEST

/* A file named but absent, or wrong: status 1. */
START_TEST(test_load_bad_file)
{
	struct args fl = { .config = "/nonexistent/sluice.yaml" };
	struct config *cfg = NULL;

	ck_assert_int_eq(args_load_config(&fl, &cfg), 1 + 1);
	ck_assert_ptr_null(cfg);
	fl.config = write_tmp("rpss: 5\n");
	ck_assert_int_eq(args_load_config(&fl, &cfg), 1 + 1);
	ck_assert_ptr_null(cfg);
}
END_TEST

static Suite *args_suite(void)
{
	Suite *s = suite_create("args");
	TCase *tc;

	tc = tcase_create("parse");
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_add_test(tc, test_parse_flags);
	tcase_add_test(tc, test_parse_none);
	tcase_add_test(tc, test_parse_help_version);
	tcase_add_test(tc, test_parse_bad);
	suite_add_tcase(s, tc);

	tc = tcase_create("load");
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_add_test(tc, test_load_flags_over_file);
	tcase_add_test(tc, test_load_file_alone);
	tcase_add_test(tc, test_load_bad_flags);
	tcase_add_test(tc, test_load_bad_file);
	suite_add_tcase(s, tc);
	return s;
}

TESTLIB_MAIN(args_suite)

/*
 * sluicectl.c - the control tool: asks sluiced's admin listener for its
 * state and to reload, and makes and shows the local CA in the state
 * directory (without the daemon).
 *
 * Exit status (sluicectl(1)): 0 done; 1 the daemon answered with an
 * error or a refusal (no such job, an invalid configuration, a wrong
 * token, ...) or the CA command failed; 2 usage error; 3 the admin
 * listener cannot be reached.
 */
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl_fmt.h"
#include "ctl_http.h"
#include "tls_ca.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "unknown"
#endif

#define ADMIN_DEFAULT "127.0.0.1:8081"
#define STATE_DIR_DEFAULT "/var/lib/sluice" /* sluiced's (config.c) */
#define EXIT_FAILED 1                /* the daemon said no; a CA failure */
#define EXIT_USAGE 2
#define EXIT_UNREACHABLE 3
#define SHOWN_MAX 200                /* bytes of a server message shown */
#define TOKEN_MAX 4096               /* bytes of an admin token file */
#define PAGE "10000"                 /* queues asked for per /queues page */
#define PAGES_MAX 100000             /* pages followed, at most */
#define CA_ERR_LEN 1024              /* bytes of a CA error message */
#define CA_DESC_LEN 8192             /* bytes of tls_ca_describe()'s text */

enum { OPT_FORCE = 256 };

/* What the flags ask for. */
struct ctl {
	const char *addr;            /* admin listener, ADDR:PORT */
	bool json;                   /* print the daemon's JSON as is */
	char *token;                 /* admin bearer token; NULL: none */
	const char *token_file;      /* where it was read; NULL: none */
	const char *state_dir;       /* for ca; never NULL after the flags */
	bool state_dir_flag;         /* -s given */
	bool force;                  /* ca init --force */
};

struct command {
	const char *name;
	int (*run)(const struct ctl *c, int argc, char **argv);
};

static void usage_short(FILE *out)
{
	fprintf(out,
"usage: sluicectl [-a ADDR:PORT] [-T FILE] [-j] status\n"
"       sluicectl [-a ADDR:PORT] [-T FILE] [-j] job ID\n"
"       sluicectl [-a ADDR:PORT] [-T FILE] [-j] reload\n"
"       sluicectl ca init [-s DIR] [--force]\n"
"       sluicectl ca show [-s DIR]\n"
"Try 'sluicectl --help'.\n");
}

static void usage(FILE *out)
{
	fprintf(out,
"usage: sluicectl [options] command\n"
"\n"
"Shows the state of a running sluiced through its admin listener, asks\n"
"it to reload its configuration, and makes the local CA for HTTPS\n"
"interception.\n"
"\n"
"commands:\n"
"  status                     health, totals and one line per queue:\n"
"                             destination, key, mode, rate and its\n"
"                             source, concurrency, waiting, in flight,\n"
"                             pause left, idle time\n"
"  job ID                     request, state, attempts, times, final\n"
"                             status and deliveries of a webhook job\n"
"  reload                     make sluiced read its configuration file\n"
"                             again (as SIGHUP does); an invalid file is\n"
"                             reported as FILE:LINE:COL and not applied\n"
"  ca init                    create the CA that sluiced signs the\n"
"                             certificates of intercepted hosts with\n"
"                             (DIR/ca.pem, mode 0644, and DIR/ca-key.pem,\n"
"                             mode 0600), and say how to trust it\n"
"  ca show                    subject, SHA-256 fingerprint, expiry and\n"
"                             path of the CA certificate\n"
"\n"
"options:\n"
"  -a, --admin ADDR:PORT      admin listener (default $SLUICE_ADMIN,\n"
"                             else " ADMIN_DEFAULT "); also\n"
"                             --admin-listen, as for sluiced\n"
"  -T, --token-file FILE      send the admin token in FILE (sluiced's\n"
"                             admin_token_file) as a bearer token\n"
"  -j, --json                 print the daemon's JSON answer instead\n"
"                             (status: the pages of /queues joined, 2-space\n"
"                             indented; job, reload: as the daemon sent it)\n"
"  -s, --state-dir DIR        for ca: sluiced's state directory (default\n"
"                             $SLUICE_STATE_DIR, else " STATE_DIR_DEFAULT ")\n"
"      --force                for ca init: replace an existing CA\n"
"  -h, --help                 show this help and exit\n"
"  -V, --version              show the version and exit\n"
"\n"
"The ca commands do not ask the daemon; sluiced loads a new CA when it\n"
"restarts.\n"
"\n"
"Exit status: 0 done; 1 the daemon answered with an error or refused\n"
"(no such job, an invalid configuration, a wrong token), or a ca command\n"
"failed; 2 usage error; 3 the admin listener cannot be reached.\n"
"See sluicectl(1).\n");
}

static const struct option long_options[] = {
	{ "admin", required_argument, NULL, 'a' },
	/* sluiced's name for the same address */
	{ "admin-listen", required_argument, NULL, 'a' },
	{ "token-file", required_argument, NULL, 'T' },
	{ "json", no_argument, NULL, 'j' },
	{ "state-dir", required_argument, NULL, 's' },
	{ "force", no_argument, NULL, OPT_FORCE },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

/*
 * The token in path: its bytes up to a final newline, printable ASCII,
 * not empty. malloc'd, or NULL after saying why.
 */
static char *read_token(const char *path)
{
	char buf[TOKEN_MAX + 2];
	FILE *f = fopen(path, "r");
	size_t n;

	if (!f) {
		fprintf(stderr, "sluicectl: cannot read token file '%s': %s\n",
		        path, strerror(errno));
		return NULL;
	}
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	if (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
	if (n > 0 && buf[n - 1] == '\r')
		buf[--n] = '\0';
	for (size_t i = 0; i < n; i++)
		if (buf[i] <= ' ' || buf[i] > '~')
			n = 0;
	if (n == 0 || n > TOKEN_MAX) {
		fprintf(stderr, "sluicectl: token file '%s' must hold one "
		        "line of printable characters, at most %d\n", path,
		        TOKEN_MAX);
		return NULL;
	}
	return strdup(buf);
}

/* Returns 0 to go on, or exit status + 1 to stop with. */
static int parse_flags(int argc, char **argv, struct ctl *c)
{
	const char *env = getenv("SLUICE_ADMIN");
	const char *from = "SLUICE_ADMIN";
	const char *state = getenv("SLUICE_STATE_DIR");
	int o;

	c->addr = env && *env ? env : ADMIN_DEFAULT;
	c->state_dir = state && *state ? state : STATE_DIR_DEFAULT;
	while ((o = getopt_long(argc, argv, "a:T:js:hV", long_options,
	                        NULL)) != -1) {
		switch (o) {
		case 'a': c->addr = optarg; from = "-a"; break;
		case 'T':
			free(c->token);
			c->token = read_token(optarg);
			c->token_file = optarg;
			if (!c->token)
				return EXIT_USAGE + 1;
			break;
		case 'j': c->json = true; break;
		case 's':
			c->state_dir = optarg;
			c->state_dir_flag = true;
			break;
		case OPT_FORCE: c->force = true; break;
		case 'h':
			usage(stdout);
			return 0 + 1;
		case 'V':
			printf("sluicectl %s\n", PACKAGE_VERSION);
			return 0 + 1;
		default:
			usage_short(stderr);
			return EXIT_USAGE + 1;
		}
	}
	if (!*c->state_dir) {
		fprintf(stderr, "sluicectl: -s needs a directory\n");
		return EXIT_USAGE + 1;
	}
	if (!ctl_addr_valid(c->addr)) {
		char *shown = strndup(c->addr, SHOWN_MAX);

		fprintf(stderr, "sluicectl: %s must be ADDR:PORT, got '%s'\n",
		        from, shown ? ctl_defang(shown) : "?");
		free(shown);
		return EXIT_USAGE + 1;
	}
	return 0;
}

/* --- talking to the daemon --- */

/* What to try when the admin listener cannot be reached with error r. */
static const char *unreachable_hint(int r)
{
	switch (r) {
	case -ECONNRESET:
		return "is this host in sluiced's admin_allow?";
	case -EPROTO:
		return "is it sluiced's admin listener? (-a ADDR:PORT to use "
		       "another)";
	case -EHOSTUNREACH:
		return "check the address (-a ADDR:PORT)";
	default:
		return "is sluiced running? (-a ADDR:PORT to use another)";
	}
}

/*
 * GET path, or POST it (empty) when post; *ret is filled only on
 * success. On a failure says why and returns the exit status: 3 when
 * the listener cannot be reached.
 */
static int ask(const struct ctl *c, bool post, const char *path,
               struct ctl_reply *ret)
{
	char err[CTL_ERR_LEN];
	int r = post ? ctl_post(c->addr, path, c->token, ret, err)
	             : ctl_get(c->addr, path, c->token, ret, err);

	if (r == 0)
		return 0;
	if (r == -ENOMEM || r == -EFBIG) {
		fprintf(stderr, "sluicectl: %s %s from %s: %s\n",
		        post ? "POST" : "GET", path, c->addr, ctl_defang(err));
		return EXIT_FAILED;
	}
	fprintf(stderr, "sluicectl: cannot reach sluiced's admin listener at "
	        "%s (%s): %s\n", c->addr, ctl_defang(err),
	        unreachable_hint(r));
	return EXIT_UNREACHABLE;
}

/* The "error" code of a JSON error body; "" when there is none. */
static const char *reply_code(const json_t *j)
{
	const char *v = json_string_value(json_object_get(j, "error"));

	return v ? v : "";
}

/*
 * What the daemon said: the "message" of a JSON error body, else the
 * first line of the body, at most SHOWN_MAX bytes. malloc'd; NULL on OOM.
 */
static char *reply_message(const struct ctl_reply *r)
{
	json_t *j = json_loadb(r->body, r->len, 0, NULL);
	const json_t *m = json_object_get(j, "message");
	char *s;

	if (json_is_string(m))
		s = strndup(json_string_value(m), SHOWN_MAX);
	else
		s = strndup(r->body, strcspn(r->body, "\r\n") < SHOWN_MAX
		                     ? strcspn(r->body, "\r\n") : SHOWN_MAX);
	json_decref(j);
	return s ? ctl_defang(s) : NULL;
}

/*
 * An answer other than the one hoped for, said in words: a 401 asks for
 * the token, a 404 "not_found" means an older daemon. Returns 1.
 */
static int say_refused(const struct ctl *c, const char *what,
                       const struct ctl_reply *r)
{
	json_t *j = json_loadb(r->body, r->len, 0, NULL);
	char *m = reply_message(r);

	if (r->status == 401 && c->token_file)
		fprintf(stderr, "sluicectl: sluiced's admin listener at %s "
		        "answered 401 to %s: it refused the token in '%s'; "
		        "give the file of its admin_token_file\n", c->addr,
		        what, c->token_file);
	else if (r->status == 401)
		fprintf(stderr, "sluicectl: sluiced's admin listener at %s "
		        "answered 401 to %s: it wants the admin token of its "
		        "admin_token_file; give that file with -T FILE\n",
		        c->addr, what);
	else if ((r->status == 404 &&
	          strcmp(reply_code(j), "not_found") == 0) ||
	         r->status == 405)
		fprintf(stderr, "sluicectl: sluiced at %s does not serve %s "
		        "(an older version?)\n", c->addr, what);
	else
		fprintf(stderr, "sluicectl: sluiced's admin listener at %s "
		        "answered %ld to %s: %s\n", c->addr, r->status, what,
		        m ? m : "");
	free(m);
	json_decref(j);
	return EXIT_FAILED;
}

/* The body as is, with a final newline. */
static void print_raw(const struct ctl_reply *r)
{
	fwrite(r->body, 1, r->len, stdout);
	if (r->len == 0 || r->body[r->len - 1] != '\n')
		putchar('\n');
}

/* Parses a 200 answer; on failure says so and returns NULL. */
static json_t *parse(const struct ctl *c, const char *path,
                     const struct ctl_reply *r)
{
	json_error_t e;
	json_t *j = json_loadb(r->body, r->len, 0, &e);

	if (!j)
		fprintf(stderr, "sluicectl: %s from %s is not JSON: %s\n",
		        path, c->addr, ctl_defang(e.text));
	return j;
}

/* --- commands --- */

/* Says what is wrong with argv (the arguments after the command). */
static int bad_args(const char *cmd, int argc, char **argv, int want)
{
	if (argc < want)
		fprintf(stderr, "sluicectl: %s: missing %s\n", cmd,
		        strcmp(cmd, "job") == 0 ? "job id" : "argument");
	else
		fprintf(stderr, "sluicectl: %s: unexpected argument '%.*s'\n",
		        cmd, SHOWN_MAX, ctl_defang(argv[want]));
	usage_short(stderr);
	return EXIT_USAGE;
}

/* GET /healthz; 0 when it answers 200, else an exit status. */
static int check_health(const struct ctl *c)
{
	struct ctl_reply r = { 0, NULL, 0 };
	int status = ask(c, false, "/healthz", &r);

	if (status)
		return status;
	if (r.status == 404) {
		/* sluiced always serves it: something else listens there. */
		fprintf(stderr, "sluicectl: %s answered 404 to /healthz: is it "
		        "sluiced's admin listener? (-a ADDR:PORT to use "
		        "another)\n", c->addr);
		status = EXIT_FAILED;
	} else if (r.status != 200) {
		status = say_refused(c, "/healthz", &r);
	}
	ctl_reply_done(&r);
	return status;
}

static int show_queues(const struct ctl *c, json_t *j)
{
	int err;

	printf("admin %s: ok\n", c->addr);
	err = ctl_print_queues(stdout, j);
	if (err < 0) {
		fprintf(stderr, "sluicectl: /queues from %s: %s\n", c->addr,
		        err == -ENOMEM ? "out of memory"
		                       : "not the expected JSON");
		return EXIT_FAILED;
	}
	return 0;
}

/* A "next" cursor: digits only, or NULL. */
static const char *cursor_of(const json_t *page)
{
	const char *v = json_string_value(json_object_get(page, "next"));

	if (!v || !*v || strlen(v) > 20 || strspn(v, "0123456789") != strlen(v))
		return NULL;
	return v;
}

/*
 * Every page of /queues, the lists joined into the first page's (whose
 * counters are shown). NULL after saying why; *ret_status the exit status.
 */
static json_t *fetch_queues(const struct ctl *c, int *ret_status)
{
	json_t *all = NULL;
	char path[64] = "/queues?limit=" PAGE;

	*ret_status = EXIT_FAILED;
	for (unsigned n = 0; n < PAGES_MAX; n++) {
		struct ctl_reply r = { 0, NULL, 0 };
		json_t *page, *list;
		const char *next;
		int st = ask(c, false, path, &r);

		if (st) {
			*ret_status = st;
			goto fail;
		}
		if (r.status != 200) {
			say_refused(c, "/queues", &r);
			ctl_reply_done(&r);
			goto fail;
		}
		page = parse(c, "/queues", &r);
		ctl_reply_done(&r);
		if (!page)
			goto fail;
		list = json_object_get(page, "list");
		next = cursor_of(page);
		if (!all) {
			all = page;
		} else {
			if (json_is_array(list))
				json_array_extend(json_object_get(all, "list"),
				                  list);
			/* The counters of the last page are the newest. */
			json_object_del(page, "list");
			json_object_update(all, page);
		}
		if (next)
			snprintf(path, sizeof(path),
			         "/queues?limit=" PAGE "&after=%s", next);
		if (page != all)
			json_decref(page);
		if (!next)
			break;
	}
	json_object_del(all, "next");
	*ret_status = 0;
	return all;
fail:
	json_decref(all);
	return NULL;
}

static int cmd_status(const struct ctl *c, int argc, char **argv)
{
	json_t *j;
	int status;

	if (argc > 0)
		return bad_args("status", argc, argv, 0);
	status = check_health(c);
	if (status)
		return status;
	j = fetch_queues(c, &status);
	if (!j)
		return status;
	if (c->json) {
		char *s = json_dumps(j, JSON_INDENT(2));

		if (s)
			puts(s);
		else
			status = EXIT_FAILED;
		free(s);
	} else {
		status = show_queues(c, j);
	}
	json_decref(j);
	return status;
}

static int show_job(const struct ctl *c, const char *path,
                    const struct ctl_reply *r)
{
	json_t *j = parse(c, path, r);
	int err;

	if (!j)
		return EXIT_FAILED;
	err = ctl_print_job(stdout, j);
	json_decref(j);
	if (err < 0) {
		fprintf(stderr, "sluicectl: %s from %s: not the expected "
		        "JSON\n", path, c->addr);
		return EXIT_FAILED;
	}
	return 0;
}

/* A job the daemon does not have: 404 job_not_found. */
static bool no_such_job(const struct ctl_reply *r)
{
	json_t *j = json_loadb(r->body, r->len, 0, NULL);
	bool v = r->status == 404 &&
	         strcmp(reply_code(j), "job_not_found") == 0;

	json_decref(j);
	return v;
}

static int cmd_job(const struct ctl *c, int argc, char **argv)
{
	struct ctl_reply r = { 0, NULL, 0 };
	char path[sizeof("/jobs/") + 4 + CTL_JOB_ID_HEX];
	int status;

	if (argc != 1)
		return bad_args("job", argc, argv, 1);
	/* Checked here, so that nothing else ever reaches the URL. */
	if (!ctl_job_id_valid(argv[0])) {
		fprintf(stderr, "sluicectl: malformed job id '%.*s': expected "
		        "job_ and %d lowercase hex digits\n", SHOWN_MAX,
		        ctl_defang(argv[0]), CTL_JOB_ID_HEX);
		return EXIT_USAGE;
	}
	snprintf(path, sizeof(path), "/jobs/%s", argv[0]);
	status = ask(c, false, path, &r);
	if (status)
		return status;
	if (no_such_job(&r)) {
		fprintf(stderr, "sluicectl: no job %s at %s (no such job, or "
		        "it finished longer ago than jobs.retain)\n", argv[0],
		        c->addr);
		status = EXIT_FAILED;
	} else if (r.status != 200) {
		status = say_refused(c, "/jobs", &r);
	} else if (c->json) {
		print_raw(&r);
	} else {
		status = show_job(c, path, &r);
	}
	ctl_reply_done(&r);
	return status;
}

/* Prints what a 200, 400 or 503 to POST /reload says; the exit status. */
static int reload_result(const struct ctl *c, const struct ctl_reply *r,
                         const struct ctl_reload *rl)
{
	switch (rl->outcome) {
	case CTL_RELOADED:
		if (c->json)
			print_raw(r);
		else
			printf("sluiced at %s: configuration reloaded\n",
			       c->addr);
		if (rl->restart)
			fprintf(stderr, "sluicectl: warning: changes to %s "
			        "take effect only when sluiced restarts\n",
			        rl->restart);
		return 0;
	case CTL_RELOAD_INVALID:
		fprintf(stderr, "sluicectl: configuration not reloaded, "
		        "sluiced goes on with the one it has: %s\n",
		        rl->message);
		return EXIT_FAILED;
	case CTL_RELOAD_BUSY:
		fprintf(stderr, "sluicectl: sluiced at %s is already "
		        "reloading; try again in a moment\n", c->addr);
		return EXIT_FAILED;
	default:
		if (r->status == 200) {
			fprintf(stderr, "sluicectl: sluiced's admin listener "
			        "at %s answered 200 to POST /reload without "
			        "\"reloaded\": true\n", c->addr);
			return EXIT_FAILED;
		}
		return say_refused(c, "POST /reload", r);
	}
}

static int cmd_reload(const struct ctl *c, int argc, char **argv)
{
	struct ctl_reply r = { 0, NULL, 0 };
	struct ctl_reload rl;
	int status;

	if (argc > 0)
		return bad_args("reload", argc, argv, 0);
	status = ask(c, true, "/reload", &r);
	if (status)
		return status;
	if (ctl_reload_parse(r.status, r.body, r.len, &rl) < 0) {
		fprintf(stderr, "sluicectl: out of memory\n");
		status = EXIT_FAILED;
	} else {
		status = reload_result(c, &r, &rl);
		ctl_reload_done(&rl);
	}
	ctl_reply_done(&r);
	return status;
}

/* --- the CA, in the state directory; no daemon --- */

/* How to make the clients trust the CA certificate at cert. */
static void print_trust(const char *cert)
{
	printf(
"\n"
"sluiced signs the certificates of the hosts it intercepts with this CA.\n"
"Make the clients trust %s, for example:\n"
"  system store (Debian, Ubuntu), as root:\n"
"    cp %s /usr/local/share/ca-certificates/sluice.crt && "
"update-ca-certificates\n"
"  curl:\n"
"    curl --cacert %s ...\n"
"  Python requests:\n"
"    REQUESTS_CA_BUNDLE=%s\n"
"  Python urllib and other OpenSSL programs:\n"
"    SSL_CERT_FILE=%s\n"
"  Node.js:\n"
"    NODE_EXTRA_CA_CERTS=%s\n"
"--cacert, REQUESTS_CA_BUNDLE and SSL_CERT_FILE replace the usual CAs;\n"
"the system store and NODE_EXTRA_CA_CERTS add to them.\n"
"A running sluiced uses the new CA when it restarts.\n",
	       cert, cert, cert, cert, cert, cert);
}

static int ca_init(const struct ctl *c)
{
	char err[CA_ERR_LEN], desc[CA_DESC_LEN], cert[CA_ERR_LEN];
	int r = tls_ca_create(c->state_dir, c->force, err, sizeof(err));

	if (r == -EEXIST) {
		fprintf(stderr, "sluicectl: ca init: %s; 'sluicectl ca init "
		        "--force' replaces the CA (clients must then trust "
		        "the new one)\n", err);
		return EXIT_FAILED;
	}
	if (r < 0) {
		fprintf(stderr, "sluicectl: ca init: %s\n", err);
		return EXIT_FAILED;
	}
	snprintf(cert, sizeof(cert), "%s/%s", c->state_dir, TLS_CA_CERT_FILE);
	printf("created a CA in %s\n", c->state_dir);
	if (tls_ca_describe(c->state_dir, desc, sizeof(desc), err,
	                    sizeof(err)) == 0)
		fputs(desc, stdout);
	else
		printf("path: %s\n", cert);
	printf("key: %s/%s (mode 0600; keep it secret)\n", c->state_dir,
	       TLS_CA_KEY_FILE);
	print_trust(cert);
	return 0;
}

static int ca_show(const struct ctl *c)
{
	char err[CA_ERR_LEN], desc[CA_DESC_LEN];
	int r = tls_ca_describe(c->state_dir, desc, sizeof(desc), err,
	                        sizeof(err));

	if (r == -ENOENT) {
		fprintf(stderr, "sluicectl: no CA in %s; run 'sluicectl ca "
		        "init'\n", c->state_dir);
		return EXIT_FAILED;
	}
	if (r < 0) {
		fprintf(stderr, "sluicectl: ca show: %s\n", err);
		return EXIT_FAILED;
	}
	fputs(desc, stdout);
	return 0;
}

static int cmd_ca(const struct ctl *c, int argc, char **argv)
{
	bool init = argc > 0 && strcmp(argv[0], "init") == 0;
	bool show = argc > 0 && strcmp(argv[0], "show") == 0;

	if (!init && !show) {
		if (argc == 0)
			fprintf(stderr, "sluicectl: ca: missing command (init "
			        "or show)\n");
		else
			fprintf(stderr, "sluicectl: ca: unknown command "
			        "'%.*s'\n", SHOWN_MAX, ctl_defang(argv[0]));
		usage_short(stderr);
		return EXIT_USAGE;
	}
	if (argc > 1 || (show && c->force)) {
		if (argc > 1)
			fprintf(stderr, "sluicectl: ca %s: unexpected argument "
			        "'%.*s'\n", argv[0], SHOWN_MAX,
			        ctl_defang(argv[1]));
		else
			fprintf(stderr, "sluicectl: ca show: --force is for "
			        "'ca init'\n");
		usage_short(stderr);
		return EXIT_USAGE;
	}
	return init ? ca_init(c) : ca_show(c);
}

static const struct command commands[] = {
	{ "status", cmd_status },
	{ "job", cmd_job },
	{ "reload", cmd_reload },
	{ "ca", cmd_ca },
};

static int run(const struct ctl *c, int argc, char **argv)
{
	if (argc == 0) {
		fprintf(stderr, "sluicectl: missing command\n");
		usage_short(stderr);
		return EXIT_USAGE;
	}
	if ((c->state_dir_flag || c->force) && strcmp(argv[0], "ca") != 0) {
		fprintf(stderr, "sluicectl: %s is for the ca commands\n",
		        c->force ? "--force" : "-s");
		usage_short(stderr);
		return EXIT_USAGE;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(argv[0], commands[i].name) == 0)
			return commands[i].run(c, argc - 1, argv + 1);
	fprintf(stderr, "sluicectl: unknown command '%.*s'\n", SHOWN_MAX,
	        ctl_defang(argv[0]));
	usage_short(stderr);
	return EXIT_USAGE;
}

int main(int argc, char **argv)
{
	struct ctl c = { NULL, false, NULL, NULL, NULL, false, false };
	int status = parse_flags(argc, argv, &c);

	if (status) {
		free(c.token);
		return status - 1;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "sluicectl: cannot initialise libcurl\n");
		free(c.token);
		return EXIT_FAILED;
	}
	status = run(&c, argc - optind, argv + optind);
	curl_global_cleanup();
	free(c.token);
	fflush(stdout);
	return ferror(stdout) ? EXIT_FAILED : status;
}

/*
 * args.c - sluiced's command line: flags, --help, --version, and the
 * configuration: the file, then the flags over it.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "args.h"
#include "cidr.h"
#include "config.h"
#include "log.h"
#include "netaddr.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "unknown"
#endif

static void usage(FILE *out)
{
	fprintf(out,
"usage: sluiced [options]\n"
"\n"
"A forward HTTP proxy that queues, paces and retries requests to\n"
"rate-limited APIs.\n"
"\n"
"options:\n"
"  -c, --config FILE          configuration file (default %s)\n"
"  -l, --listen ADDR:PORT     proxy listener (default 127.0.0.1:8080)\n"
"  -a, --admin-listen ADDR:PORT\n"
"                             admin listener (default 127.0.0.1:8081)\n"
"  -s, --state-dir DIR        state directory (default /var/lib/sluice)\n"
"      --rps N                default rate of a queue, requests/s (2)\n"
"      --concurrency N        default in-flight cap of a queue (2)\n"
"      --workers N            event loops, one per core by default (0)\n"
"      --allow CIDR           allowed client network; repeatable,\n"
"                             replaces the default (loopback)\n"
"      --webhook-secret-file FILE\n"
"                             secret for signing webhook deliveries\n"
"      --log-level LEVEL      error, warn, info or debug (info)\n"
"      --access-log           one line per completed request on stderr\n"
"  -t, --check-config         validate the configuration and exit\n"
"  -h, --help                 show this help and exit\n"
"  -V, --version              show the version and exit\n"
"\n"
"Port 0 binds an ephemeral port; the bound addresses are logged.\n"
"See sluiced(8) and sluice.yaml(5).\n",
	        CONFIG_DEFAULT_PATH);
}

enum {
	OPT_RPS = 256,
	OPT_CONCURRENCY,
	OPT_ALLOW,
	OPT_WEBHOOK_SECRET_FILE,
	OPT_LOG_LEVEL,
	OPT_ACCESS_LOG,
	OPT_WORKERS,
};

static const struct option long_options[] = {
	{ "config", required_argument, NULL, 'c' },
	{ "listen", required_argument, NULL, 'l' },
	{ "admin-listen", required_argument, NULL, 'a' },
	{ "state-dir", required_argument, NULL, 's' },
	{ "rps", required_argument, NULL, OPT_RPS },
	{ "concurrency", required_argument, NULL, OPT_CONCURRENCY },
	{ "allow", required_argument, NULL, OPT_ALLOW },
	{ "webhook-secret-file", required_argument, NULL,
	  OPT_WEBHOOK_SECRET_FILE },
	{ "log-level", required_argument, NULL, OPT_LOG_LEVEL },
	{ "access-log", no_argument, NULL, OPT_ACCESS_LOG },
	{ "workers", required_argument, NULL, OPT_WORKERS },
	{ "check-config", no_argument, NULL, 't' },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

/* Returns 0 to go on, or exit status + 1 to stop with. */
int args_parse(int argc, char **argv, struct args *fl)
{
	int c;

	while ((c = getopt_long(argc, argv, "c:l:a:s:thV", long_options,
	                        NULL)) != -1) {
		switch (c) {
		case 'c': fl->config = optarg; break;
		case 'l': fl->listen = optarg; break;
		case 'a': fl->admin_listen = optarg; break;
		case 's': fl->state_dir = optarg; break;
		case OPT_RPS: fl->rps = optarg; break;
		case OPT_CONCURRENCY: fl->concurrency = optarg; break;
		case OPT_WORKERS: fl->workers = optarg; break;
		case OPT_ALLOW: {
			const char **v = realloc(fl->allow, (fl->n_allow + 1) *
			                                    sizeof(*v));
			if (!v)
				return 2 + 1;
			v[fl->n_allow++] = optarg;
			fl->allow = v;
			break;
		}
		case OPT_WEBHOOK_SECRET_FILE:
			fl->webhook_secret_file = optarg;
			break;
		case OPT_LOG_LEVEL: fl->log_level = optarg; break;
		case OPT_ACCESS_LOG: fl->access_log = true; break;
		case 't': fl->check_config = true; break;
		case 'h':
			usage(stdout);
			return 0 + 1;
		case 'V':
			printf("sluiced %s\n", PACKAGE_VERSION);
			return 0 + 1;
		default:
			fprintf(stderr, "Try 'sluiced --help'.\n");
			return 1 + 1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "sluiced: unexpected argument '%s'\n",
		        argv[optind]);
		return 1 + 1;
	}
	return 0;
}

/* Flags override the file. Prints what is wrong; 0 or -EINVAL. */
/* A flag's decimal integer in [lo, hi] into *out: 0, or -EINVAL. */
static int flag_uint(const char *s, long lo, long hi, unsigned *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		return -EINVAL;
	*out = (unsigned)v;
	return 0;
}

static int apply_flags(struct config *cfg, const struct args *fl)
{
	int bad = 0;

	if (fl->listen && config_replace_str(&cfg->listen, fl->listen) < 0)
		return -ENOMEM;
	if (fl->admin_listen &&
	    config_replace_str(&cfg->admin_listen, fl->admin_listen) < 0)
		return -ENOMEM;
	if (fl->state_dir && config_replace_str(&cfg->state_dir, fl->state_dir) < 0)
		return -ENOMEM;
	if (fl->webhook_secret_file &&
	    config_replace_str(&cfg->webhooks.secret_file,
	                fl->webhook_secret_file) < 0)
		return -ENOMEM;
	if (fl->rps) {
		char *end;
		double v;

		errno = 0;
		v = strtod(fl->rps, &end);
		if (errno || end == fl->rps || *end || !(v > 0) ||
		    v > 1e9) {
			fprintf(stderr, "sluiced: --rps must be a number > 0, "
			        "got '%s'\n", fl->rps);
			bad = 1;
		} else {
			cfg->defaults.limits.rps = v;
		}
	}
	if (fl->concurrency &&
	    flag_uint(fl->concurrency, 1, 1000000,
	              &cfg->defaults.limits.concurrency) < 0) {
		fprintf(stderr, "sluiced: --concurrency must be an "
		        "integer >= 1, got '%s'\n", fl->concurrency);
		bad = 1;
	}
	if (fl->workers &&
	    flag_uint(fl->workers, 0, CONFIG_WORKERS_MAX, &cfg->workers) < 0) {
		fprintf(stderr, "sluiced: --workers must be an integer "
		        "from 0 to %d, got '%s'\n", CONFIG_WORKERS_MAX,
		        fl->workers);
		bad = 1;
	}
	if (fl->n_allow > 0) {
		cidr_list_done(&cfg->allow);
		for (size_t i = 0; i < fl->n_allow; i++) {
			struct cidr c;

			if (cidr_parse(fl->allow[i], &c) < 0) {
				fprintf(stderr, "sluiced: --allow must be a "
				        "network such as 10.0.0.0/8, got "
				        "'%s'\n", fl->allow[i]);
				bad = 1;
			} else if (cidr_list_add(&cfg->allow, &c) < 0) {
				return -ENOMEM;
			}
		}
	}
	if (fl->log_level &&
	    log_level_parse(fl->log_level, &cfg->log_level) < 0) {
		fprintf(stderr, "sluiced: --log-level must be error, warn, "
		        "info or debug, got '%s'\n", fl->log_level);
		bad = 1;
	}
	if (fl->access_log)
		cfg->access_log = true;
	return bad ? -EINVAL : 0;
}

/*
 * What is wrong: to stderr, or with msg (size > 0) appended there, "; "
 * between two.
 */
static void say(char *msg, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void say(char *msg, size_t size, const char *fmt, ...)
{
	va_list ap;
	size_t len;

	va_start(ap, fmt);
	if (!size) {
		vfprintf(stderr, fmt, ap);
		fputc('\n', stderr);
	} else {
		len = strlen(msg);
		if (len && len + 2 < size) {
			memcpy(msg + len, "; ", 3);
			len += 2;
		}
		if (len + 1 < size)
			vsnprintf(msg + len, size - len, fmt, ap);
	}
	va_end(ap);
}

/* Loads the file (if any) and the flags. Exit status + 1, or 0. */
static int load_config(const struct args *fl, struct config **ret,
                       char *msg, size_t size)
{
	const char *path = fl->config ? fl->config : CONFIG_DEFAULT_PATH;
	struct config_errors errs = { 0 };
	struct sockaddr_storage ss;
	socklen_t len;
	struct config *cfg;
	int r, status = 0;

	cfg = config_new();
	if (!cfg) {
		say(msg, size, "sluiced: out of memory");
		return 2 + 1;
	}
	r = config_load(cfg, path, &errs);
	if (r == -ENOENT && !fl->config) {
		/* No default file: built-in defaults. */
		r = 0;
	}
	if (r < 0) {
		for (size_t i = 0; i < errs.n; i++)
			say(msg, size, "%s", errs.msgs[i]);
		if (errs.n == 0)
			say(msg, size, "%s: %s", path, strerror(-r));
		status = 1 + 1;
	}
	config_errors_done(&errs);
	if (!status && apply_flags(cfg, fl) < 0)
		status = 1 + 1;
	if (!status && netaddr_parse(cfg->listen, &ss, &len) < 0) {
		say(msg, size, "sluiced: listen address '%s' is not "
		    "ADDR:PORT", cfg->listen);
		status = 1 + 1;
	}
	if (!status && netaddr_parse(cfg->admin_listen, &ss, &len) < 0) {
		say(msg, size, "sluiced: admin listen address '%s' is not "
		    "ADDR:PORT", cfg->admin_listen);
		status = 1 + 1;
	}
	if (status) {
		config_free(cfg);
		return status;
	}
	*ret = cfg;
	return 0;
}

int args_load_config(const struct args *fl, struct config **ret)
{
	return load_config(fl, ret, NULL, 0);
}

int args_reload_config(const struct args *fl, struct config **ret,
                       char *msg, size_t size)
{
	if (size)
		msg[0] = '\0';
	return load_config(fl, ret, msg, size) ? -EINVAL : 0;
}

/*
 * args.h - sluiced's command line: the flags, --help and --version, and
 * the configuration they select (the file, then the flags over it).
 * Apart from the daemon, so t/unit can run it.
 */
#ifndef SLUICE_ARGS_H
#define SLUICE_ARGS_H

#include <stdbool.h>
#include <stddef.h>

struct config;

/* Command-line values; NULL or unset means "as the file says". */
struct args {
	const char *config;
	const char *listen;
	const char *admin_listen;
	const char *state_dir;
	const char *rps;
	const char *concurrency;
	const char *workers;         /* --workers */
	const char **allow;
	size_t n_allow;
	const char *webhook_secret_file;
	const char *log_level;
	bool access_log;
	bool check_config;
};

/*
 * Reads argv into fl (getopt_long: optind as it finds it). Prints --help
 * and --version to stdout and what is wrong to stderr. 0 to go on, or the
 * exit status + 1 to stop with. fl->allow is allocated: free() it.
 */
int args_parse(int argc, char **argv, struct args *fl);

/*
 * Loads the file fl names (else CONFIG_DEFAULT_PATH, which may be absent)
 * and applies the flags over it; prints what is wrong to stderr. 0 and
 * *ret (config_free() it), or the exit status + 1.
 */
int args_load_config(const struct args *fl, struct config **ret);

/*
 * The same for a reload: 0 and *ret, or -EINVAL with what is wrong in
 * msg ("file:line:column: message", "; " between two).
 */
int args_reload_config(const struct args *fl, struct config **ret,
                       char *msg, size_t size);

#endif

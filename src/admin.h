/*
 * admin.h - the admin listener: /healthz, /queues, /jobs/<id> (and, as
 * they arrive, /metrics, /reload). A libmicrohttpd daemon with its own
 * thread; it never touches engine state directly.
 */
#ifndef SLUICE_ADMIN_H
#define SLUICE_ADMIN_H

#include <stdbool.h>

#define ADMIN_TOKEN_DIGEST_LEN 32    /* SHA-256 */
#define ADMIN_TOKEN_MAX 4096         /* bytes of a token */
#define ADMIN_CONNECTION_LIMIT 64u   /* connections at once */
#define ADMIN_PER_IP_LIMIT 8u        /* of them, from one address */
#define ADMIN_POOL (16u * 1024)      /* bytes per connection: heads */

struct config;
struct admin;
struct engine;
struct jobs;
struct tunnels;

/* The token asked for on /jobs and /queues, kept as its SHA-256 only. */
struct admin_token {
	bool set;
	unsigned char digest[ADMIN_TOKEN_DIGEST_LEN];
};

/*
 * Reads the bearer token in path: one line of printable ASCII without
 * spaces, at most ADMIN_TOKEN_MAX bytes, its final newline (LF or CRLF)
 * stripped. 0; -EINVAL when the content is not such a token; another
 * negative errno when the file cannot be read.
 */
int admin_token_load(const char *path, struct admin_token *ret);

/*
 * Starts serving on the listening socket fd (ownership passes, even on
 * failure): clients outside cfg->admin_allow get 403, and with a token
 * (NULL or unset: none) /jobs and /queues want it as a bearer token. At
 * most ADMIN_CONNECTION_LIMIT connections, ADMIN_PER_IP_LIMIT per client
 * address, each closed after cfg->admin_timeout idle. cfg, e, store
 * (NULL: no jobs) and tunnels (NULL: none) must outlive it. NULL on
 * error.
 */
struct admin *admin_start(const struct config *cfg, int fd,
                          struct engine *e, struct jobs *store,
                          const struct tunnels *tunnels,
                          const struct admin_token *token);

/* Stops and frees. Takes NULL. */
void admin_free(struct admin *a);

#endif

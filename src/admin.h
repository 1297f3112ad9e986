/*
 * admin.h - the admin listener: /healthz, /queues, /jobs/<id> (and, as
 * they arrive, /metrics, /reload). A libmicrohttpd daemon with its own
 * thread; it never touches engine state directly.
 */
#ifndef SLUICE_ADMIN_H
#define SLUICE_ADMIN_H

#include <stdatomic.h>
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
 * address, each closed after cfg->admin_timeout idle. It holds a
 * reference to cfg; e, store (NULL: no jobs) and tunnels (NULL: none)
 * must outlive it. NULL on error.
 */
struct admin *admin_start(const struct config *cfg, int fd,
                          struct engine *e, struct jobs *store,
                          const struct tunnels *tunnels,
                          const struct admin_token *token);

/*
 * POST /reload: reload the configuration (main does it, on its thread)
 * and say how it went: 0 when applied, the settings only a restart
 * applies named in restart ("listen, state_dir", "" for none); -EINVAL
 * when invalid, why in msg ("file:line:column: message"); -EBUSY when a
 * reload is under way.
 */
typedef int admin_reload_fn(void *arg, char *msg, size_t msg_size,
                            char *restart, size_t restart_size);

/* Serves POST /reload with fn (NULL: 404). Any thread. */
void admin_set_reload(struct admin *a, admin_reload_fn *fn, void *arg);

/* What /metrics reads besides the engine, the store and the tunnels. */
struct admin_sources {
	struct delivery *delivery;   /* NULL: none */
	struct jobrun *jobrun;       /* NULL: none */
	const atomic_uint *reloads, *reload_failures; /* NULL: none */
};

/* Before serving: *src is copied; what it points to must outlive a. */
void admin_set_sources(struct admin *a, const struct admin_sources *src);

/*
 * A reload: admin_allow and the rest of cfg (a reference of its own) and
 * the token (copied; NULL: none asked for) hold from the next request.
 * Any thread.
 */
void admin_reconfigure(struct admin *a, const struct config *cfg,
                       const struct admin_token *token);

/* Stops and frees. Takes NULL. */
void admin_free(struct admin *a);

#endif

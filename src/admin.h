/*
 * admin.h - the admin listener: /healthz, /queues, /jobs/<id> (and, as
 * they arrive, /metrics, /reload). A libmicrohttpd daemon with its own
 * thread; it never touches engine state directly.
 */
#ifndef SLUICE_ADMIN_H
#define SLUICE_ADMIN_H

struct config;
struct engine;
struct jobs;
struct admin;

/*
 * Starts serving on the listening socket fd (ownership passes, even on
 * failure). cfg, e and store (NULL: no jobs) must outlive it. NULL on
 * error.
 */
struct admin *admin_start(const struct config *cfg, int fd,
                          struct engine *e, struct jobs *store);

/* Stops and frees. Takes NULL. */
void admin_free(struct admin *a);

#endif

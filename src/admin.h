/*
 * admin.h - the admin listener: /healthz, /queues (and, as they arrive,
 * /metrics, /jobs/<id>, /reload). A libmicrohttpd daemon with its own
 * thread; it never touches engine state directly.
 */
#ifndef SLUICE_ADMIN_H
#define SLUICE_ADMIN_H

struct config;
struct engine;
struct admin;

/*
 * Starts serving on the listening socket fd (ownership passes, even on
 * failure). cfg and e must outlive it. NULL on error.
 */
struct admin *admin_start(const struct config *cfg, int fd,
                          struct engine *e);

/* Stops and frees. Takes NULL. */
void admin_free(struct admin *a);

#endif

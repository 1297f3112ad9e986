/*
 * main.c - sluiced: configuration, secrets, threads, signals. The command
 * line is read in args.c.
 */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <malloc.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "admin.h"
#include "args.h"
#include "cidr.h"
#include "clock.h"
#include "config.h"
#include "cred.h"
#include "delivery.h"
#include "engine.h"
#include "front.h"
#include "jobrun.h"
#include "jobs.h"
#include "listener.h"
#include "log.h"
#include "netaddr.h"
#include "tls_ca.h"
#include "tunnel.h"
#include "webhook.h"
#include "wire.h"

#define LISTEN_BACKLOG 4096
#define PRUNE_EVERY_MS 60000         /* finished jobs past jobs.retain */
#define STATUS_EVERY_MS 5000         /* systemd STATUS= */

/*
 * POST /reload asks main, which reloads on its own thread (as for
 * SIGHUP), and waits for the outcome.
 */
struct reload_ask {
	pthread_mutex_t lock;
	pthread_cond_t done;
	pthread_t main_thread;
	bool asked;                  /* an answer is awaited */
	bool stopping;               /* main reloads no more */
	int result;
	char msg[1024], restart[512];
};

/* The daemon: everything main() builds and tears down. */
struct sluiced {
	struct config *cfg;          /* main's; each thread holds its own */
	const struct args *flags;    /* the command line, again at reload */
	int pfd, afd;                /* the listeners (theirs), for deny */
	struct reload_ask ask;
	atomic_uint reloads, reload_failures; /* for /metrics */
	struct engine *engine;
	struct front *front;
	struct tunnels *tunnels;
	struct listener **listeners; /* one per engine worker */
	unsigned n_listeners;
	struct admin *admin;
	struct jobs *jobs;
	struct delivery *delivery;
	struct jobrun *jobrun;
	struct webhook_secret secret;    /* len 0: deliveries unsigned */
	X509 *ca_cert;                   /* the local CA's in use; NULL: none */
	struct admin_token admin_token;  /* unset: no token asked for */
};

static void environment_setup(void)
{
	static const char *const proxy_vars[] = {
		"http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY",
		"all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY",
	};
	struct rlimit rl;

	/* libcurl must never send our upstream traffic to a proxy. */
	for (size_t i = 0; i < sizeof(proxy_vars) / sizeof(*proxy_vars); i++)
		unsetenv(proxy_vars[i]);
	signal(SIGPIPE, SIG_IGN);
	/*
	 * Request and response buffers come and go at a high rate; glibc
	 * giving freed heap back to the kernel each time (madvise, TLB
	 * flushes) costs more than keeping a few MiB.
	 */
	mallopt(M_TRIM_THRESHOLD, 64 * 1024 * 1024);
	/* Every waiting client holds a socket. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (rl.rlim_cur > 1048576)
			rl.rlim_cur = 1048576;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static void notify(const char *state)
{
#ifdef HAVE_LIBSYSTEMD
	sd_notify(0, state);
#else
	(void)state;
#endif
}

/*
 * The webhook secrets: the primary signs; the secondary (rotation) is
 * only checked here, receivers are the ones that accept either. What is
 * wrong goes to msg; 0 or -EINVAL.
 */
static int load_secrets(const struct config *cfg, struct webhook_secret *ret,
                        char *msg, size_t size)
{
	const char *paths[2] = { cfg->webhooks.secret_file,
	                         cfg->webhooks.secondary_secret_file };
	struct webhook_secret tmp;

	for (int i = 0; i < 2; i++) {
		bool exposed = false;
		int r;

		if (!paths[i])
			continue;
		r = webhook_secret_load(paths[i], i == 0 ? ret : &tmp,
		                        &exposed);
		if (r < 0) {
			snprintf(msg, size, "webhook secret file '%s' %s",
			         paths[i], webhook_secret_error_str(r));
			webhook_secret_done(ret);
			return -EINVAL;
		}
		if (i == 1)
			webhook_secret_done(&tmp);
		if (exposed)
			log_warn("webhook secret file '%s' may be read or "
			         "written by others, carrying on", paths[i]);
	}
	return 0;
}

/* admin_token_file, if set. What is wrong goes to msg; 0 or -EINVAL. */
static int load_admin_token(const struct config *cfg,
                            struct admin_token *ret, char *msg, size_t size)
{
	int r;

	memset(ret, 0, sizeof(*ret));
	if (!cfg->admin_token_file)
		return 0;
	r = admin_token_load(cfg->admin_token_file, ret);
	if (r == -EINVAL)
		snprintf(msg, size, "admin token file '%s' must hold one line "
		         "of printable characters without spaces, at most %d "
		         "bytes", cfg->admin_token_file, ADMIN_TOKEN_MAX);
	else if (r < 0)
		snprintf(msg, size, "cannot read admin token file '%s': %s",
		         cfg->admin_token_file, strerror(-r));
	return r < 0 ? -EINVAL : 0;
}

/* Opens the job store, the delivery thread and the glue. */
static int jobs_setup(struct sluiced *d)
{
	const struct config *cfg = d->cfg;
	int err = 0;

	d->jobs = jobs_open(cfg->state_dir, &err);
	if (!d->jobs && err == -EBUSY) {
		log_error("another sluiced is using the job store in '%s'",
		          cfg->state_dir);
		return -1;
	}
	if (!d->jobs) {
		errno = -err;
		log_error_errno("cannot open the job store in '%s'",
		                cfg->state_dir);
		return -1;
	}
	d->delivery = delivery_new(cfg, d->jobs,
	                           d->secret.len ? &d->secret : NULL);
	d->jobrun = d->delivery ? jobrun_new(cfg, d->jobs, d->engine,
	                                     d->delivery) : NULL;
	if (!d->jobrun) {
		log_error("cannot set up webhook jobs");
		return -1;
	}
	return 0;
}

/* Unfinished jobs continue; pending deliveries are due again. */
static void jobs_resume(struct sluiced *d)
{
	unsigned run = 0, deliver = 0;
	int r = jobrun_recover(d->jobrun, &run, &deliver);

	if (r < 0) {
		errno = -r;
		log_error_errno("cannot read the unfinished jobs now, "
		                "trying again every second");
	}
	if (run || deliver)
		log_info("jobs resumed run=%u deliver=%u", run, deliver);
}

/* Removes finished, settled jobs older than jobs.retain. */
static void jobs_prune_old(struct sluiced *d)
{
	unsigned pruned = JOBS_PRUNE_MAX, total = 0;
	int64_t now = clock_wall_ms();
	while (pruned == JOBS_PRUNE_MAX) {
		int r = jobs_prune(d->jobs, now, d->cfg->jobs.retain, &pruned);

		if (r < 0) {
			errno = -r;
			log_warn_errno("cannot prune old jobs, trying again "
			               "later");
			return;
		}
		total += pruned;
	}
	if (total)
		log_info("jobs pruned count=%u", total);
}

/*
 * The daemon's own listeners are never destinations: deny_destinations
 * gets their addresses, with their ports. A copy, since a parsed list has
 * no room to grow. 0 or negative errno.
 */
static int deny_self(struct config *cfg, int pfd, int afd)
{
	struct cidr_list l = { NULL, 0 };
	int r = 0;

	for (size_t i = 0; r == 0 && i < cfg->deny_destinations.n; i++)
		r = cidr_list_add(&l, &cfg->deny_destinations.v[i]);
	if (r == 0)
		r = netaddr_self_add(pfd, &l);
	if (r == 0)
		r = netaddr_self_add(afd, &l);
	if (r < 0) {
		cidr_list_done(&l);
		return r;
	}
	cidr_list_done(&cfg->deny_destinations);
	cfg->deny_destinations = l;
	return 0;
}

/*
 * The local CA of the state directory, for interception; NULL when there
 * is none (CONNECT then makes opaque tunnels). -1 when it is unusable:
 * the operator made one, so running without it would be a surprise.
 */
static int ca_setup(const struct config *cfg, struct tls_ca **ret)
{
	char msg[512];
	int err = 0;

	*ret = tls_ca_load(cfg->state_dir, &err, msg, sizeof(msg));
	if (*ret) {
		log_info("tls: interception with the local CA in '%s'%s",
		         cfg->state_dir, cfg->tls.intercept ? ""
		         : " (off: tls.intercept is false)");
		return 0;
	}
	if (err == ENOENT) {
		log_info("tls: no local CA in '%s', CONNECT makes opaque "
		         "tunnels ('sluicectl ca init' makes one)",
		         cfg->state_dir);
		return 0;
	}
	log_error("tls: %s", msg);
	return -1;
}

/*
 * A reload reads the local CA again (sluicectl ca init --force rotates
 * it): a new one signs the leaves from now on. *ret is the new CA to hand
 * to the tunnels (NULL: none, or the same as before). An unusable one
 * fails the reload (-EINVAL, why in msg), as it fails a start. One made
 * after a start without a CA, or removed, needs a restart: named in
 * restart.
 */
static int ca_reload(struct sluiced *d, const struct config *n,
                     struct tls_ca **ret, char *msg, size_t size,
                     char *restart, size_t restart_size)
{
	char why[512];
	int err = 0;
	struct tls_ca *ca = tls_ca_load(n->state_dir, &err, why, sizeof(why));
	size_t len = strlen(restart);

	*ret = NULL;
	if (!ca && err != ENOENT) {
		snprintf(msg, size, "tls: %s", why);
		return -EINVAL;
	}
	if (!ca && !d->ca_cert)
		return 0;
	if (ca && d->ca_cert && X509_cmp(tls_ca_cert(ca), d->ca_cert) == 0) {
		tls_ca_free(ca);
		return 0;
	}
	if (!ca || !d->ca_cert) {
		tls_ca_free(ca);
		snprintf(restart + len, restart_size - len, "%slocal CA",
		         len ? ", " : "");
		return 0;
	}
	*ret = ca;
	return 0;
}

/*
 * Reloads the configuration: the file and the flags are read and checked
 * whole first, with the secrets they name, so an invalid one changes
 * nothing; then each thread takes the new one between two pieces of work,
 * and nothing waiting is dropped or reordered. Settings only a restart
 * applies keep their old values and are named in restart. 0, or -EINVAL
 * with why in msg.
 */
static int reload(struct sluiced *d, char *msg, size_t size, char *restart,
                  size_t restart_size)
{
	struct webhook_secret secret = { 0 };
	struct admin_token token = { 0 };
	struct config *n = NULL;
	struct tls_ca *ca = NULL;
	char state[64];
	int r;

	restart[0] = '\0';
	snprintf(state, sizeof(state), "RELOADING=1\nMONOTONIC_USEC=%" PRId64,
	         clock_now_us());
	notify(state);
	r = args_reload_config(d->flags, &n, msg, size);
	if (r == 0 && (load_secrets(n, &secret, msg, size) < 0 ||
	               load_admin_token(n, &token, msg, size) < 0))
		r = -EINVAL;
	if (r == 0 && deny_self(n, d->pfd, d->afd) < 0) {
		snprintf(msg, size, "out of memory");
		r = -ENOMEM;
	}
	if (r == 0) {
		config_restart_only(d->cfg, n, restart, restart_size);
		r = ca_reload(d, n, &ca, msg, size, restart, restart_size);
	}
	if (r < 0) {
		atomic_fetch_add(&d->reload_failures, 1);
		log_error("reload: %s; the configuration in force stays", msg);
		config_free(n);
		webhook_secret_done(&secret);
		OPENSSL_cleanse(&token, sizeof(token));
		notify("READY=1");
		return r;
	}
	if (ca) {
		X509_free(d->ca_cert);
		d->ca_cert = tls_ca_cert(ca);
		X509_up_ref(d->ca_cert);
		if (tunnels_set_ca(d->tunnels, ca) == 0)
			log_info("tls: reload: a new local CA in '%s'",
			         n->state_dir);
	}
	log_set_level(n->log_level);
	engine_reconfigure(d->engine, n);
	jobrun_reconfigure(d->jobrun, n);
	front_reconfigure(d->front, n);
	tunnels_reconfigure(d->tunnels, n);
	for (unsigned i = 0; i < d->n_listeners; i++)
		listener_reconfigure(d->listeners[i], n);
	delivery_reconfigure(d->delivery, n, secret.len ? &secret : NULL);
	admin_reconfigure(d->admin, n, token.set ? &token : NULL);
	webhook_secret_done(&secret);
	OPENSSL_cleanse(&token, sizeof(token));
	config_free(d->cfg);
	d->cfg = n;
	atomic_fetch_add(&d->reloads, 1);
	log_info("reload: configuration from '%s' in force",
	         n->path ? n->path : "built-in defaults");
	if (restart[0])
		log_warn("reload: changed settings that only a restart applies, "
		         "kept as they were: %s", restart);
	notify("READY=1");
	return 0;
}

/*
 * How often systemd wants WATCHDOG=1 (half its WatchdogSec=), in ms; 0
 * when it does not.
 */
static int64_t watchdog_every_ms(void)
{
#ifdef HAVE_LIBSYSTEMD
	uint64_t usec = 0;

	if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0)
		return (int64_t)(usec / 2000) > 0 ? (int64_t)(usec / 2000) : 1;
#endif
	return 0;
}

/*
 * systemd's STATUS= line with live counts, and WATCHDOG=1 only when every
 * engine worker ran lately: a wedged worker, not just a live main thread,
 * is what the watchdog must catch.
 */
static void heartbeat(struct sluiced *d, bool watchdog)
{
	struct queue_row row;
	struct queues_page pg = { .limit = 1, .rows = &row };
	char status[256];

	if (!engine_alive(d->engine, 2000)) {
		log_warn("an engine worker has not run for 2 s");
		return;
	}
	if (engine_queues_page(d->engine, &pg) < 0)
		return;
	snprintf(status, sizeof(status),
	         "STATUS=queues=%zu waiting=%u in_flight=%u requests=%" PRIu64
	         " retries=%" PRIu64 " reloads=%u", pg.c.queues, pg.c.waiting,
	         pg.c.in_flight, pg.c.requests, pg.c.retries,
	         atomic_load(&d->reloads));
	notify(status);
	if (watchdog)
		notify("WATCHDOG=1");
}

/* SIGHUP: reload, and answer a POST /reload that asked for it. */
static void reload_signalled(struct sluiced *d)
{
	struct reload_ask *ask = &d->ask;
	char msg[sizeof(ask->msg)], restart[sizeof(ask->restart)];
	int r = reload(d, msg, sizeof(msg), restart, sizeof(restart));

	pthread_mutex_lock(&ask->lock);
	if (ask->asked) {
		ask->result = r;
		memcpy(ask->msg, msg, sizeof(msg));
		memcpy(ask->restart, restart, sizeof(restart));
		ask->asked = false;
		pthread_cond_broadcast(&ask->done);
	}
	pthread_mutex_unlock(&ask->lock);
}

/* POST /reload, on the admin thread: main reloads, this waits (10 s). */
static int reload_asked(void *arg, char *msg, size_t size, char *restart,
                        size_t restart_size)
{
	struct reload_ask *ask = arg;
	struct timespec until;
	int r = 0;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 10;
	pthread_mutex_lock(&ask->lock);
	if (ask->asked || ask->stopping) {
		pthread_mutex_unlock(&ask->lock);
		return -EBUSY;
	}
	ask->asked = true;
	pthread_kill(ask->main_thread, SIGHUP);
	while (ask->asked && r == 0)
		r = pthread_cond_timedwait(&ask->done, &ask->lock, &until);
	if (ask->asked) {
		ask->asked = false;
		pthread_mutex_unlock(&ask->lock);
		snprintf(msg, size, "the reload did not finish in time");
		return -ETIMEDOUT;
	}
	snprintf(msg, size, "%s", ask->msg);
	snprintf(restart, restart_size, "%s", ask->restart);
	r = ask->result;
	pthread_mutex_unlock(&ask->lock);
	return r;
}

/*
 * One listener per engine worker, each with its own copy of the
 * listening socket pfd (taken); the first polls the front's disconnect
 * watch. 0 or -1.
 */
static int listeners_new(struct sluiced *d, const struct config *cfg, int pfd)
{
	unsigned n = engine_workers(d->engine);

	d->listeners = calloc(n, sizeof(*d->listeners));
	if (!d->listeners) {
		close(pfd);
		return -1;
	}
	for (unsigned i = 0; i < n; i++) {
		int fd = i == n - 1 ? pfd : fcntl(pfd, F_DUPFD_CLOEXEC, 0);

		if (fd < 0) {
			close(pfd);
			return -1;
		}
		d->listeners[i] = listener_new(cfg, fd, d->front, d->tunnels,
		                               i == 0);
		if (!d->listeners[i]) {
			if (i < n - 1)
				close(pfd);
			return -1;
		}
		d->n_listeners++;
	}
	return 0;
}

static int listeners_start(struct sluiced *d)
{
	for (unsigned i = 0; i < d->n_listeners; i++)
		if (listener_start(d->listeners[i],
		                   engine_loop(d->engine, i)) < 0)
			return -1;
	return 0;
}

static void listeners_stop_accepting(struct sluiced *d)
{
	for (unsigned i = 0; i < d->n_listeners; i++)
		listener_stop_accepting(d->listeners[i]);
}

static int start(struct sluiced *d)
{
	const struct config *cfg = d->cfg;
	char proxy_addr[NETADDR_STRLEN], admin_addr[NETADDR_STRLEN];
	unsigned char salt[CRED_SALT_LEN];
	struct tls_ca *ca;
	int pfd, afd, r;

	pfd = netaddr_listen(cfg->listen, LISTEN_BACKLOG);
	if (pfd < 0) {
		errno = -pfd;
		log_error_errno("cannot listen on '%s'", cfg->listen);
		return -1;
	}
	afd = netaddr_listen(cfg->admin_listen, 128);
	if (afd < 0) {
		close(pfd);
		errno = -afd;
		log_error_errno("cannot listen on '%s'", cfg->admin_listen);
		return -1;
	}
	netaddr_local(pfd, proxy_addr, sizeof(proxy_addr));
	netaddr_local(afd, admin_addr, sizeof(admin_addr));
	d->pfd = pfd;
	d->afd = afd;
	r = deny_self(d->cfg, pfd, afd);
	if (r < 0) {
		close(pfd);
		close(afd);
		errno = -r;
		log_error_errno("cannot list the listeners' addresses");
		return -1;
	}

	r = cred_salt_load(cfg->state_dir, salt);
	if (r < 0) {
		close(pfd);
		close(afd);
		errno = -r;
		log_error_errno("cannot read or create the salt in '%s'",
		                cfg->state_dir);
		return -1;
	}
	/*
	 * Without the byte checks (wire.c), libmicrohttpd's lenient parser
	 * would forward what origins read differently: refuse to run.
	 */
	if (!wire_active()) {
		close(pfd);
		close(afd);
		OPENSSL_cleanse(salt, sizeof(salt));
		log_error("request checks are not active: libmicrohttpd does "
		          "not read through sluiced's recv()");
		return -1;
	}
	/* Built bottom up: the engine, the job runner on it, the front. */
	d->engine = engine_new(cfg);
	if (d->engine && jobs_setup(d) < 0) {
		close(pfd);
		close(afd);
		OPENSSL_cleanse(salt, sizeof(salt));
		return -1;
	}
	d->front = d->engine ? front_new(cfg, d->engine, d->jobrun, salt)
	                     : NULL;
	OPENSSL_cleanse(salt, sizeof(salt));
	if (!d->front) {
		close(pfd);
		close(afd);
		log_error("cannot set up the proxy");
		return -1;
	}
	front_set_admin(d->front, admin_addr);
	if (ca_setup(cfg, &ca) < 0) {
		close(pfd);
		close(afd);
		return -1;
	}
	if (ca) {
		d->ca_cert = tls_ca_cert(ca);
		X509_up_ref(d->ca_cert);
	}
	d->tunnels = tunnels_new(cfg, d->engine, d->front, ca);
	if (!d->tunnels) {
		close(pfd);
		close(afd);
		log_error("cannot set up CONNECT tunnels");
		return -1;
	}
	d->admin = admin_start(cfg, afd, d->engine, d->jobs, d->tunnels,
	                       &d->admin_token);
	if (listeners_new(d, cfg, pfd) < 0 || !d->admin) {
		log_error("cannot set up the listeners");
		return -1;
	}
	admin_set_reload(d->admin, reload_asked, &d->ask);
	admin_set_sources(d->admin, &(struct admin_sources){
		.delivery = d->delivery, .jobrun = d->jobrun,
		.reloads = &d->reloads,
		.reload_failures = &d->reload_failures,
	});
	if (engine_start(d->engine) < 0 || delivery_start(d->delivery) < 0) {
		log_error("cannot start the proxy threads");
		return -1;
	}
	jobs_resume(d);
	if (front_start(d->front) < 0 || tunnels_start(d->tunnels) < 0 ||
	    listeners_start(d) < 0) {
		log_error("cannot start the proxy threads");
		return -1;
	}
	log_info("listening proxy=%s admin=%s", proxy_addr, admin_addr);
	return 0;
}

/* SIGTERM: stop accepting, let held requests finish for drain_timeout. */
static void drain(struct sluiced *d, const sigset_t *set, bool watchdog)
{
	int64_t until = clock_now_ms() + d->cfg->drain_timeout;
	struct timespec ts = { 0, 50 * 1000000 };
	unsigned left;

	listeners_stop_accepting(d);
	engine_refuse(d->engine);
	/* Jobs need no client and stay stored: only clients are waited for. */
	while ((left = engine_active(d->engine) -
	               engine_jobs_held(d->engine)) > 0 &&
	       clock_now_ms() < until) {
		int sig = sigtimedwait(set, NULL, &ts);

		if (sig == SIGINT || sig == SIGTERM)
			break; /* asked twice: stop now */
		/* systemd keeps the watchdog while stopping: a drain is work. */
		if (watchdog)
			notify("WATCHDOG=1");
	}
	if (left > 0)
		log_warn("stopping with requests in flight count=%u", left);
}

static void teardown(struct sluiced *d)
{
	int64_t until = clock_now_ms() + 2000;

	/* Order: no new input, answer the held, let the front write it. */
	listeners_stop_accepting(d);
	/* No stored job is paged in to a stopping engine. */
	jobrun_stop(d->jobrun);
	if (d->engine) {
		engine_refuse(d->engine);
		engine_stop(d->engine);
	}
	while (d->front && front_busy(d->front) > 0 && clock_now_ms() < until)
		usleep(10 * 1000);
	/* The listeners hand fds to the front: take them off first. */
	for (unsigned i = 0; i < d->n_listeners; i++)
		listener_free(d->listeners[i]);
	free(d->listeners);
	d->listeners = NULL;
	d->n_listeners = 0;
	admin_free(d->admin);
	/*
	 * Deliveries in flight stay pending; then the store commits what is
	 * queued, whose callbacks may still resume connections: before the
	 * front stops.
	 */
	delivery_stop(d->delivery);
	jobs_shutdown(d->jobs);
	/* Let the front write the answers (202s) those callbacks woke. */
	until = clock_now_ms() + 1000;
	while (d->front && front_busy(d->front) > 0 && clock_now_ms() < until)
		usleep(10 * 1000);
	/* Tunnels hand connections to the front: closed before it stops. */
	tunnels_free(d->tunnels);
	front_stop(d->front);
	front_free(d->front);
	engine_free(d->engine);
	jobrun_free(d->jobrun);
	delivery_free(d->delivery);
	jobs_free(d->jobs);
	webhook_secret_done(&d->secret);
	X509_free(d->ca_cert);
	config_free(d->cfg);
}

/* Stopping: no more reloads; one awaited is told so. */
static void reload_stop(struct reload_ask *ask)
{
	pthread_mutex_lock(&ask->lock);
	ask->stopping = true;
	if (ask->asked) {
		ask->asked = false;
		ask->result = -ESHUTDOWN;
		snprintf(ask->msg, sizeof(ask->msg), "sluiced is stopping");
		ask->restart[0] = '\0';
		pthread_cond_broadcast(&ask->done);
	}
	pthread_mutex_unlock(&ask->lock);
}

int main(int argc, char **argv)
{
	struct sluiced d = { 0 };
	struct args fl = { 0 };
	int64_t watchdog_ms, beat_ms, next_prune, next_beat;
	char msg[1024];
	sigset_t set;
	int status, sig;

	status = args_parse(argc, argv, &fl);
	if (status) {
		free(fl.allow);
		return status - 1;
	}
	status = args_load_config(&fl, &d.cfg);
	if (status) {
		free(fl.allow);
		return status - 1;
	}
	if (fl.check_config) {
		printf("%s: configuration ok\n",
		       d.cfg->path ? d.cfg->path : "built-in defaults");
		config_free(d.cfg);
		free(fl.allow);
		return 0;
	}
	log_set_level(d.cfg->log_level);
	if (load_secrets(d.cfg, &d.secret, msg, sizeof(msg)) < 0 ||
	    load_admin_token(d.cfg, &d.admin_token, msg, sizeof(msg)) < 0) {
		fprintf(stderr, "sluiced: %s\n", msg);
		webhook_secret_done(&d.secret);
		config_free(d.cfg);
		free(fl.allow);
		return 1;
	}
	d.flags = &fl;
	pthread_mutex_init(&d.ask.lock, NULL);
	pthread_cond_init(&d.ask.done, NULL);
	d.ask.main_thread = pthread_self();
	environment_setup();

	/* Signals are taken by sigwait here, never by the other threads. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	if (curl_global_init(CURL_GLOBAL_ALL) != CURLE_OK) {
		log_error("cannot initialise libcurl");
		config_free(d.cfg);
		free(fl.allow);
		return 2;
	}
	if (start(&d) < 0) {
		reload_stop(&d.ask);
		teardown(&d);
		curl_global_cleanup();
		free(fl.allow);
		return 2;
	}
	notify("READY=1");

	watchdog_ms = watchdog_every_ms();
	beat_ms = watchdog_ms && watchdog_ms < STATUS_EVERY_MS
	          ? watchdog_ms : STATUS_EVERY_MS;
	next_prune = clock_now_ms() + PRUNE_EVERY_MS;
	next_beat = clock_now_ms();
	for (;;) {
		int64_t now = clock_now_ms(), wait;
		struct timespec tick;

		if (now >= next_beat) {
			heartbeat(&d, watchdog_ms > 0);
			next_beat = now + beat_ms;
		}
		if (now >= next_prune) {
			jobs_prune_old(&d);
			next_prune = now + PRUNE_EVERY_MS;
		}
		wait = (next_beat < next_prune ? next_beat : next_prune) - now;
		if (wait < 1)
			wait = 1;
		tick.tv_sec = wait / 1000;
		tick.tv_nsec = (wait % 1000) * 1000000;
		sig = sigtimedwait(&set, NULL, &tick);
		if (sig < 0)
			continue;
		if (sig == SIGHUP) {
			reload_signalled(&d);
			continue;
		}
		break;
	}
	log_info("stopping signal=%s", sig == SIGINT ? "INT" : "TERM");
	notify("STOPPING=1");
	reload_stop(&d.ask);
	drain(&d, &set, watchdog_ms > 0);
	if (watchdog_ms > 0)
		notify("WATCHDOG=1");
	teardown(&d);
	curl_global_cleanup();
	free(fl.allow);
	log_info("stopped");
	return 0;
}

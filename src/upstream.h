/*
 * upstream.h - the libcurl side of one transfer.
 *
 * upstream_setup() arms an easy handle for a request: the exact request
 * target, the filtered header list, the body, no proxy, deny-list checks
 * at connect time. Its callbacks collect the response header block into
 * the request and append body bytes to it (pausing the transfer when the
 * client reads slower than the upstream writes), and report to the engine
 * through the two hooks below. All of it runs on the thread of the engine
 * worker that runs the request.
 */
#ifndef SLUICE_UPSTREAM_H
#define SLUICE_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>

#include <curl/curl.h>

struct cidr_list;
struct config;
struct request;

/*
 * The socket of every upstream connection the daemon makes (transfers and
 * webhook deliveries), for CURLOPT_OPENSOCKETFUNCTION: an address in deny
 * is refused (every address a name resolves to is checked here, after
 * DNS), else a close-on-exec socket is opened. *ret_denied (may be NULL)
 * is set on a refusal.
 */
curl_socket_t upstream_socket(const struct cidr_list *deny,
                              const struct curl_sockaddr *a, bool *ret_denied);

/* What a transfer tells the layer that runs it, on that layer's thread. */
struct upstream_hooks {
	/* r's final (>= 200) response header block is complete. */
	void (*on_headers)(struct request *r, unsigned status);
	/* Body bytes for r's reader were buffered. */
	void (*on_body)(struct request *r);
};

/*
 * Sets the options of c for r, whose transfer reports to hooks, with the
 * configuration *cfgp: the caller's own pointer, read again when curl
 * opens the connection (a reload may have replaced it since, and freed
 * the old one). cfgp and hooks must outlive the transfer; curl calls back
 * on the caller's thread only. fresh: c is new (or reset); else it was
 * set up by this function for an ordinary request (not connect_only)
 * with the same configuration, and only what differs between requests
 * is set again (curl copies every string option it is given: a reset
 * and the same options again cost a tenth of a request). 0 or negative
 * errno.
 */
int upstream_setup(CURL *c, bool fresh, struct request *r,
                   const struct config *const *cfgp,
                   const struct upstream_hooks *hooks);

/*
 * Why a transfer that got no usable response failed: returns the status
 * for the client (403 or 502), sets *ret_code (static string) and writes a
 * message for people into msg. result is the CURLcode.
 */
unsigned upstream_failure(const struct request *r, int result,
                          const char **ret_code, char *msg, size_t size);

/*
 * True when a failed transfer never reached the upstream application: the
 * connection could not be made, or it closed or broke before a single
 * response byte. Such a failure is safe to retry; DNS, TLS and deny-list
 * failures are not retried, they would fail the same way again.
 */
bool upstream_failed_before_response(const struct request *r, int result);

#endif

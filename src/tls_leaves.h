/*
 * tls_leaves.h - a bounded LRU cache of leaf certificates by host name,
 * so that a host's certificate is signed once and not on every CONNECT.
 * Lookups and stores are O(1). Not thread-safe: one thread owns a cache.
 */
#ifndef SLUICE_TLS_LEAVES_H
#define SLUICE_TLS_LEAVES_H

#include <openssl/x509.h>
#include <stddef.h>
#include <stdint.h>

/* Owns its certificates: it frees them when it drops them. */
struct leaf_cache;

/* An empty cache of at most cap (>= 1) leaves; NULL on OOM. */
struct leaf_cache *leaf_cache_new(size_t cap);

/* Frees lc and every leaf in it; takes NULL. */
void leaf_cache_free(struct leaf_cache *lc);

/*
 * The leaf of host (compared without case), made the most recently used.
 * Borrowed: valid until the next put or free, or a get that drops it.
 * NULL when there is none, or when it expires within an hour of now_s
 * (seconds since the epoch); such a leaf is dropped.
 */
X509 *leaf_cache_get(struct leaf_cache *lc, const char *host, int64_t now_s);

/*
 * Stores x as host's leaf, the most recently used, replacing an older one,
 * and drops the least recently used beyond the cap. Takes x: 0, or
 * -ENOMEM after freeing it.
 */
int leaf_cache_put(struct leaf_cache *lc, const char *host, X509 *x);

/* The number of leaves in lc. */
size_t leaf_cache_len(const struct leaf_cache *lc);

#endif

/*
 * tls_leaves.c - the LRU cache of leaf certificates: a hash by lower-cased
 * host for the lookups and a doubly linked list in the order of use, the
 * most recent first, for the evictions.
 */
#include <errno.h>
#include <openssl/asn1.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/*
 * An allocation that fails in HASH_ADD sets the flag of the put that made
 * it (add_oom, a local of leaf_cache_put) instead of ending the process.
 */
#define HASH_NONFATAL_OOM 1
#define uthash_nonfatal_oom(obj) (add_oom = true)
#include <uthash.h>
#include <utlist.h>

#include "ascii.h"
#include "tls_leaves.h"

#define EXPIRY_MARGIN_S 3600         /* leaves this close to expiry go */
#define HOST_BUF 256                 /* a DNS name fits, with its NUL */

struct leaf {
	UT_hash_handle hh;           /* keyed by host */
	struct leaf *prev, *next;    /* utlist DL, most recently used first */
	X509 *x;                     /* owned */
	int64_t not_after;           /* seconds since the epoch */
	char host[];                 /* lower-cased */
};

struct leaf_cache {
	struct leaf *by_host;        /* uthash head */
	struct leaf *lru;            /* list head; lru->prev is the oldest */
	size_t len, cap;
};

struct leaf_cache *leaf_cache_new(size_t cap)
{
	struct leaf_cache *lc;

	if (cap < 1)
		return NULL;
	lc = calloc(1, sizeof(*lc));
	if (!lc)
		return NULL;
	lc->cap = cap;
	return lc;
}

static void leaf_drop(struct leaf_cache *lc, struct leaf *l)
{
	HASH_DELETE(hh, lc->by_host, l);
	DL_DELETE(lc->lru, l);
	lc->len--;
	X509_free(l->x);
	free(l);
}

void leaf_cache_free(struct leaf_cache *lc)
{
	if (!lc)
		return;
	while (lc->lru)
		leaf_drop(lc, lc->lru);
	free(lc);
}

/* host lower-cased into buf (len + 1 bytes). */
static void lower(char *buf, const char *host, size_t len)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = ascii_lower(host[i]);
	buf[len] = '\0';
}

static struct leaf *find(const struct leaf_cache *lc, const char *host,
                         size_t len)
{
	char stack[HOST_BUF], *key = stack;
	struct leaf *l = NULL;

	/* Longer than a DNS name: rare, so not worth a stack this size. */
	if (len >= sizeof(stack)) {
		key = malloc(len + 1);
		if (!key)
			return NULL;
	}
	lower(key, host, len);
	HASH_FIND(hh, lc->by_host, key, len, l);
	if (key != stack)
		free(key);
	return l;
}

/* notAfter in seconds since the epoch; 0 (long expired) if unreadable. */
static int64_t not_after_of(const X509 *x)
{
	struct tm tm;

	if (!ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm))
		return 0;
	return (int64_t)timegm(&tm);
}

static void touch(struct leaf_cache *lc, struct leaf *l)
{
	if (lc->lru == l)
		return;
	DL_DELETE(lc->lru, l);
	DL_PREPEND(lc->lru, l);
}

X509 *leaf_cache_get(struct leaf_cache *lc, const char *host, int64_t now_s)
{
	struct leaf *l = find(lc, host, strlen(host));

	if (!l)
		return NULL;
	if (l->not_after - EXPIRY_MARGIN_S <= now_s) {
		leaf_drop(lc, l);
		return NULL;
	}
	touch(lc, l);
	return l->x;
}

/* l, new, into the hash and at the head of the list. Takes l. */
static int leaf_add(struct leaf_cache *lc, struct leaf *l, size_t len)
{
	bool add_oom = false;

	HASH_ADD_KEYPTR(hh, lc->by_host, l->host, len, l);
	if (add_oom) {
		free(l);
		return -ENOMEM;
	}
	DL_PREPEND(lc->lru, l);
	lc->len++;
	return 0;
}

int leaf_cache_put(struct leaf_cache *lc, const char *host, X509 *x)
{
	size_t len = strlen(host);
	struct leaf *l = calloc(1, sizeof(*l) + len + 1), *old = NULL;

	if (!l) {
		X509_free(x);
		return -ENOMEM;
	}
	/* The key is made in the new entry: no other allocation to fail. */
	lower(l->host, host, len);
	HASH_FIND(hh, lc->by_host, l->host, len, old);
	if (old) {
		free(l);
		X509_free(old->x);
		old->x = x;
		old->not_after = not_after_of(x);
		touch(lc, old);
		return 0;
	}
	l->x = x;
	l->not_after = not_after_of(x);
	if (leaf_add(lc, l, len) < 0) {
		X509_free(x);
		return -ENOMEM;
	}
	while (lc->len > lc->cap)
		leaf_drop(lc, lc->lru->prev);
	return 0;
}

size_t leaf_cache_len(const struct leaf_cache *lc)
{
	return lc->len;
}

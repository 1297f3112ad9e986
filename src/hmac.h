/*
 * hmac.h - HMAC-SHA-256, the one keyed hash of the daemon: credential
 * keys (cred.c) and webhook signatures (webhook.c).
 */
#ifndef SLUICE_HMAC_H
#define SLUICE_HMAC_H

#include <stddef.h>

#define HMAC_SHA256_LEN 32

/* One piece of the message. */
struct hmac_part {
	const void *p;
	size_t len;
};

/*
 * out = HMAC-SHA-256(key, parts[0] || ... || parts[n - 1]); key_len > 0,
 * a part's len may be 0. 0, or -ENOMEM when OpenSSL fails (out is then
 * unchanged).
 */
int hmac_sha256(const void *key, size_t key_len,
                const struct hmac_part *parts, size_t n,
                unsigned char out[HMAC_SHA256_LEN]);

#endif

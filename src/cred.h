/*
 * cred.h - credential keys: a keyed hash of the caller's credential.
 *
 * The credential (first present key header, e.g. Authorization) is hashed
 * with HMAC-SHA-256 under a random per-install salt kept in the state
 * directory, so the same credential maps to the same queue across
 * restarts while the hash reveals nothing without the salt. People see
 * the first 12 hex digits. The credential itself is never stored.
 */
#ifndef SLUICE_CRED_H
#define SLUICE_CRED_H

#include <stddef.h>

#define CRED_SALT_LEN 32
#define CRED_HASH_LEN 32
#define CRED_DISPLAY_LEN 12

/*
 * Reads DIR/salt, creating DIR (mode 0700) and the salt (32 random bytes,
 * mode 0600) when missing. 0 or negative errno.
 */
int cred_salt_load(const char *state_dir, unsigned char salt[CRED_SALT_LEN]);

/* out = HMAC-SHA-256(salt, value). */
void cred_hash(const unsigned char salt[CRED_SALT_LEN], const char *value,
               size_t len, unsigned char out[CRED_HASH_LEN]);

/* The first 12 lower-case hex digits of h, NUL-terminated. */
void cred_display(const unsigned char *h, char out[CRED_DISPLAY_LEN + 1]);

#endif

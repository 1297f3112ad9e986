/*
 * tls_ca.h - the local certificate authority for HTTPS interception.
 *
 * sluicectl creates the CA once in the state directory; sluiced loads it
 * at start and signs a leaf certificate for each host it intercepts.
 * Clients trust the CA's certificate; the key never leaves the directory.
 * Keys are ECDSA P-256, signatures SHA-256.
 */
#ifndef SLUICE_TLS_CA_H
#define SLUICE_TLS_CA_H

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TLS_CA_CERT_FILE "ca.pem"      /* in the state directory, 0644 */
#define TLS_CA_KEY_FILE "ca-key.pem"   /* 0600 */

/* A loaded CA: its certificate and private key. */
struct tls_ca;

/*
 * Creates a new CA in dir (created 0700 if missing): a P-256 key in
 * TLS_CA_KEY_FILE, written first (0600), and a self-signed certificate
 * valid 10 years from an hour ago in TLS_CA_CERT_FILE (0644), subject
 * "CN=sluice local CA <8 random hex digits>, O=sluice", CA:TRUE with
 * pathlen 0, keyCertSign and cRLSign. Each file goes through a temporary
 * file in dir, fsync and rename, so a crash leaves the old file or the new
 * one. When root writes into a directory owned by another user (sluiced's),
 * the files are given to that user, so that the daemon can read its key.
 * Refuses with -EEXIST when either file exists, unless force. 0 or a
 * negative errno, with a message for people naming the path in err.
 */
int tls_ca_create(const char *dir, bool force, char *err, size_t size);

/*
 * Loads dir's CA. The caller owns it: tls_ca_free(). NULL with *ret_errno
 * ENOENT when dir holds neither file (interception is off), or another
 * errno with a message in err: EACCES for an unreadable file, EPERM for a
 * key file whose mode is wider than 0600, EINVAL for one file without the
 * other, for what is not a PEM certificate or key, a key that does not
 * match the certificate or a certificate that is not a CA, EKEYEXPIRED for
 * an expired one.
 */
struct tls_ca *tls_ca_load(const char *dir, int *ret_errno, char *err,
                           size_t size);

/* Frees ca; takes NULL. */
void tls_ca_free(struct tls_ca *ca);

/* The CA's certificate, borrowed from ca. */
X509 *tls_ca_cert(const struct tls_ca *ca);

/*
 * A new P-256 key, owned by the caller (EVP_PKEY_free). The daemon makes
 * one at start and uses it for every leaf. NULL on error.
 */
EVP_PKEY *tls_key_new(void);

/*
 * A leaf certificate for host, owned by the caller (X509_free): host is a
 * DNS name (bytes [A-Za-z0-9.-_*], at most 253) or an IPv4 or IPv6
 * literal without brackets. Subject CN=host (its first 64 bytes; the
 * subjectAltName, DNS:host or IP:host, is what clients check), CA:FALSE,
 * digitalSignature, serverAuth, the CA's key identifier and a random
 * positive 128-bit serial number; valid from now_s - 1 h to now_s + days
 * (seconds since the epoch; days >= 1), but never after the CA. Carries
 * key's public key and the CA's SHA-256 signature. NULL for a bad host or
 * on error. Thread-safe: ca and key are only read.
 */
X509 *tls_ca_mint(const struct tls_ca *ca, EVP_PKEY *key, const char *host,
                  int64_t now_s, int days);

/*
 * Writes a description of dir's CA certificate for people into buf:
 *   subject: CN=sluice local CA 1f2e3d4c, O=sluice
 *   sha256: AA:BB:...
 *   not after: 2036-12-06 02:00:00 UTC
 *   path: DIR/ca.pem
 * Reads only the certificate, so any user who can read it may call this.
 * 0 or a negative errno (-ENOENT: no certificate; -ENOSPC: buf is too
 * small) with a message in err.
 */
int tls_ca_describe(const char *dir, char *buf, size_t size, char *err,
                    size_t errsize);

#endif

/*
 * tls_ca.c - the local certificate authority: creating it, loading it,
 * describing it and signing leaf certificates with it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fileio.h"
#include "tls_ca.h"

#define PATH_LEN 4096
#define CA_DAYS (10 * 365 + 3)       /* 10 years and their leap days */
#define BACKDATE_S 3600              /* notBefore this far back: skew */
#define SERIAL_LEN 16                /* bytes */
#define CN_MAX 64                    /* bytes; ub-common-name */
#define HOST_MAX 253                 /* bytes of a DNS name */

struct tls_ca {
	X509 *cert;
	EVP_PKEY *key;
};

__attribute__((format(printf, 3, 4)))
static void say(char *err, size_t size, const char *fmt, ...)
{
	va_list ap;

	if (!err || size == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, size, fmt, ap);
	va_end(ap);
}

/*
 * dir/name in buf; -EINVAL or -ENAMETOOLONG with a message for an empty
 * dir (not "/") or a path that does not fit.
 */
static int path_of(char buf[PATH_LEN], const char *dir, const char *name,
                   char *err, size_t size)
{
	if (!*dir) {
		say(err, size, "empty directory name");
		return -EINVAL;
	}
	if (snprintf(buf, PATH_LEN, "%s/%s", dir, name) >= PATH_LEN) {
		say(err, size, "'%s': path too long", dir);
		return -ENAMETOOLONG;
	}
	return 0;
}

/*
 * The last OpenSSL error's reason, for messages; clears the thread's
 * queue, so that a later TLS call does not find stale errors there.
 */
static const char *ssl_reason(void)
{
	const char *r = ERR_reason_error_string(ERR_peek_last_error());

	ERR_clear_error();
	return r ? r : "unknown error";
}

/* A random positive serial number of SERIAL_LEN bytes into x. */
static int set_serial(X509 *x)
{
	unsigned char b[SERIAL_LEN];
	BIGNUM *bn;
	int ok;

	if (RAND_bytes(b, sizeof(b)) != 1)
		return -EIO;
	/* Positive and never shorter than SERIAL_LEN bytes in DER. */
	b[0] = (unsigned char)((b[0] & 0x7f) | 0x40);
	bn = BN_bin2bn(b, sizeof(b), NULL);
	ok = bn && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
	BN_free(bn);
	return ok ? 0 : -ENOMEM;
}

/* Adds the extension nid = value (openssl x509v3_config syntax). */
static int add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
	X509_EXTENSION *e = X509V3_EXT_nconf_nid(NULL, ctx, nid, value);
	int ok;

	if (!e)
		return -EINVAL;
	ok = X509_add_ext(x, e, -1);
	X509_EXTENSION_free(e);
	return ok ? 0 : -ENOMEM;
}

EVP_PKEY *tls_key_new(void)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	EVP_PKEY *key = NULL;

	if (!ctx || EVP_PKEY_keygen_init(ctx) <= 0 ||
	    EVP_PKEY_CTX_set_group_name(ctx, "P-256") <= 0 ||
	    EVP_PKEY_generate(ctx, &key) <= 0) {
		EVP_PKEY_free(key);
		key = NULL;
		ERR_clear_error();
	}
	EVP_PKEY_CTX_free(ctx);
	return key;
}

/* --- creating a CA --- */

/* O=sluice, CN=sluice local CA <8 random hex digits> into x. */
static int ca_name(X509 *x)
{
	static const char hex[] = "0123456789abcdef";
	char cn[sizeof("sluice local CA ") + 8];
	unsigned char r[4];
	X509_NAME *n = X509_get_subject_name(x);
	size_t len = strlen("sluice local CA ");

	if (RAND_bytes(r, sizeof(r)) != 1)
		return -EIO;
	memcpy(cn, "sluice local CA ", len);
	for (size_t i = 0; i < sizeof(r); i++) {
		cn[len++] = hex[r[i] >> 4];
		cn[len++] = hex[r[i] & 15];
	}
	cn[len] = '\0';
	if (!X509_NAME_add_entry_by_txt(n, "O", MBSTRING_ASC,
	                                (const unsigned char *)"sluice", -1,
	                                -1, 0) ||
	    !X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
	                                (const unsigned char *)cn, -1, -1, 0) ||
	    !X509_set_issuer_name(x, n))
		return -ENOMEM;
	return 0;
}

/* The self-signed CA certificate of key; NULL on error. */
static X509 *ca_cert_new(EVP_PKEY *key)
{
	X509 *x = X509_new();
	time_t now = time(NULL);
	X509V3_CTX ctx;

	if (!x || !X509_set_version(x, X509_VERSION_3) || set_serial(x) < 0 ||
	    ca_name(x) < 0 ||
	    !ASN1_TIME_set(X509_getm_notBefore(x), now - BACKDATE_S) ||
	    !ASN1_TIME_adj(X509_getm_notAfter(x), now, CA_DAYS, 0) ||
	    !X509_set_pubkey(x, key))
		goto fail;
	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	/* The subject key identifier first: the authority's refers to it. */
	if (add_ext(x, &ctx, NID_basic_constraints,
	            "critical,CA:TRUE,pathlen:0") < 0 ||
	    add_ext(x, &ctx, NID_key_usage,
	            "critical,keyCertSign,cRLSign") < 0 ||
	    add_ext(x, &ctx, NID_subject_key_identifier, "hash") < 0 ||
	    add_ext(x, &ctx, NID_authority_key_identifier,
	            "keyid:always") < 0 ||
	    X509_sign(x, key, EVP_sha256()) <= 0)
		goto fail;
	return x;
fail:
	X509_free(x);
	return NULL;
}

/* -EEXIST with a message when path exists; 0 when it does not. */
static int refuse_existing(const char *path, char *err, size_t size)
{
	struct stat st;

	if (lstat(path, &st) == 0) {
		say(err, size, "'%s' already exists", path);
		return -EEXIST;
	}
	if (errno != ENOENT) {
		int r = -errno;

		say(err, size, "cannot check '%s': %s", path, strerror(-r));
		return r;
	}
	return 0;
}

/* dir, made 0700 if missing; its owner in *st. */
static int ca_dir(const char *dir, struct stat *st, char *err, size_t size)
{
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		int r = -errno;

		say(err, size, "cannot create '%s': %s", dir, strerror(-r));
		return r;
	}
	if (stat(dir, st) < 0) {
		int r = -errno;

		say(err, size, "'%s': %s", dir, strerror(-r));
		return r;
	}
	if (!S_ISDIR(st->st_mode)) {
		say(err, size, "'%s': %s", dir, strerror(ENOTDIR));
		return -ENOTDIR;
	}
	return 0;
}

/* Writes key (PEM, PKCS #8) to path; the copy in memory is wiped. */
static int write_key(const char *path, const struct stat *dir_st,
                     EVP_PKEY *key)
{
	BIO *b = BIO_new(BIO_s_secmem());
	char *data;
	long len;
	int r = -ENOMEM;

	if (b && PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL)) {
		len = BIO_get_mem_data(b, &data);
		r = file_write_atomic(path, data, (size_t)len, 0600, dir_st);
	}
	BIO_free(b);
	return r;
}

static int write_cert(const char *path, const struct stat *dir_st, X509 *x)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *data;
	long len;
	int r = -ENOMEM;

	if (b && PEM_write_bio_X509(b, x)) {
		len = BIO_get_mem_data(b, &data);
		r = file_write_atomic(path, data, (size_t)len, 0644, dir_st);
	}
	BIO_free(b);
	return r;
}

/* The key and the certificate of a new CA into their files. */
static int ca_write(const char *dir, const char *key_path,
                    const char *cert_path, char *err, size_t size)
{
	EVP_PKEY *key = tls_key_new();
	X509 *x = key ? ca_cert_new(key) : NULL;
	struct stat st;
	int r;

	if (!x) {
		say(err, size, "cannot make a CA: %s", ssl_reason());
		EVP_PKEY_free(key);
		return -ENOMEM;
	}
	r = ca_dir(dir, &st, err, size);
	if (r == 0) {
		/* The key first: a certificate is never without its key. */
		r = write_key(key_path, &st, key);
		if (r < 0)
			say(err, size, "cannot write '%s': %s", key_path,
			    strerror(-r));
	}
	if (r == 0) {
		r = write_cert(cert_path, &st, x);
		if (r < 0)
			say(err, size, "cannot write '%s': %s", cert_path,
			    strerror(-r));
	}
	if (r == 0) {
		r = file_sync_dir(dir);
		if (r < 0)
			say(err, size, "cannot sync '%s': %s", dir,
			    strerror(-r));
	}
	X509_free(x);
	EVP_PKEY_free(key);
	ERR_clear_error();
	return r;
}

int tls_ca_create(const char *dir, bool force, char *err, size_t size)
{
	char cert_path[PATH_LEN], key_path[PATH_LEN];
	int r;

	r = path_of(cert_path, dir, TLS_CA_CERT_FILE, err, size);
	if (r == 0)
		r = path_of(key_path, dir, TLS_CA_KEY_FILE, err, size);
	if (r == 0 && !force)
		r = refuse_existing(key_path, err, size);
	if (r == 0 && !force)
		r = refuse_existing(cert_path, err, size);
	if (r == 0)
		r = ca_write(dir, key_path, cert_path, err, size);
	return r;
}

/* --- loading a CA --- */

/* A PEM passphrase callback that gives none: no prompt on a terminal. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
	return -1;
}

/* The certificate in path, or NULL with *ret_errno and a message. */
static X509 *cert_read(const char *path, int *ret_errno, char *err,
                       size_t size)
{
	FILE *f = fopen(path, "re");
	X509 *x;

	if (!f) {
		*ret_errno = errno;
		say(err, size, "cannot read '%s': %s", path, strerror(errno));
		return NULL;
	}
	x = PEM_read_X509(f, NULL, no_passphrase, NULL);
	fclose(f);
	if (!x) {
		*ret_errno = EINVAL;
		say(err, size, "'%s' is not a PEM certificate: %s", path,
		    ssl_reason());
	}
	return x;
}

/*
 * The key in path, or NULL with *ret_errno and a message. The file must
 * be a regular file with no permission beyond 0600: anyone who reads the
 * key can impersonate every host to the clients that trust the CA.
 */
static EVP_PKEY *key_read(const char *path, int *ret_errno, char *err,
                          size_t size)
{
	FILE *f = fopen(path, "re");
	EVP_PKEY *key;
	struct stat st;

	if (!f) {
		*ret_errno = errno;
		say(err, size, "cannot read '%s': %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fileno(f), &st) < 0) {
		*ret_errno = errno;
		say(err, size, "cannot read '%s': %s", path, strerror(errno));
		fclose(f);
		return NULL;
	}
	if (!S_ISREG(st.st_mode) || (st.st_mode & 07777 & ~0600)) {
		*ret_errno = EPERM;
		say(err, size, "refusing the CA key '%s': mode %04o, it must "
		    "be a file of mode 0600 (chmod 600 '%s')", path,
		    (unsigned)(st.st_mode & 07777), path);
		fclose(f);
		return NULL;
	}
	key = PEM_read_PrivateKey(f, NULL, no_passphrase, NULL);
	fclose(f);
	if (!key) {
		*ret_errno = EINVAL;
		say(err, size, "'%s' is not an unencrypted PEM private key: %s",
		    path, ssl_reason());
	}
	return key;
}

/* 0 when ca's certificate is a CA in force whose key ca holds. */
static int ca_check(const struct tls_ca *ca, const char *cert_path,
                    const char *key_path, char *err, size_t size)
{
	if (X509_check_private_key(ca->cert, ca->key) != 1) {
		say(err, size, "the key '%s' does not match the certificate "
		    "'%s'", key_path, cert_path);
		ERR_clear_error();
		return -EINVAL;
	}
	if (X509_check_ca(ca->cert) != 1) {
		say(err, size, "'%s' is not a CA certificate", cert_path);
		ERR_clear_error();
		return -EINVAL;
	}
	if (X509_cmp_current_time(X509_get0_notAfter(ca->cert)) <= 0) {
		say(err, size, "the CA certificate '%s' has expired",
		    cert_path);
		return -EKEYEXPIRED;
	}
	return 0;
}

/*
 * -ENOENT when dir holds neither file, -EINVAL when it holds only one of
 * them, 0 when it holds both (or stat fails otherwise: open says why).
 */
static int ca_present(const char *cert_path, const char *key_path,
                      char *err, size_t size)
{
	struct stat st;
	bool cert = stat(cert_path, &st) == 0 || errno != ENOENT;
	bool key = stat(key_path, &st) == 0 || errno != ENOENT;

	if (!cert && !key) {
		say(err, size, "no CA: '%s' does not exist", cert_path);
		return -ENOENT;
	}
	if (!cert || !key) {
		say(err, size, "'%s' exists without '%s'",
		    cert ? cert_path : key_path, cert ? key_path : cert_path);
		return -EINVAL;
	}
	return 0;
}

struct tls_ca *tls_ca_load(const char *dir, int *ret_errno, char *err,
                           size_t size)
{
	char cert_path[PATH_LEN], key_path[PATH_LEN];
	struct tls_ca *ca;
	int r;

	r = path_of(cert_path, dir, TLS_CA_CERT_FILE, err, size);
	if (r == 0)
		r = path_of(key_path, dir, TLS_CA_KEY_FILE, err, size);
	if (r == 0)
		r = ca_present(cert_path, key_path, err, size);
	if (r < 0) {
		*ret_errno = -r;
		return NULL;
	}
	ca = calloc(1, sizeof(*ca));
	if (!ca) {
		*ret_errno = ENOMEM;
		say(err, size, "out of memory");
		return NULL;
	}
	ca->cert = cert_read(cert_path, ret_errno, err, size);
	if (ca->cert)
		ca->key = key_read(key_path, ret_errno, err, size);
	if (ca->key) {
		r = ca_check(ca, cert_path, key_path, err, size);
		if (r == 0)
			return ca;
		*ret_errno = -r;
	}
	tls_ca_free(ca);
	return NULL;
}

void tls_ca_free(struct tls_ca *ca)
{
	if (!ca)
		return;
	X509_free(ca->cert);
	EVP_PKEY_free(ca->key);
	free(ca);
}

X509 *tls_ca_cert(const struct tls_ca *ca)
{
	return ca->cert;
}

/* --- leaves --- */

/*
 * host as an IP address in b (4 or 16 bytes, the length returned), 0 for
 * a DNS name, -1 for neither.
 */
static int host_kind(const char *host, unsigned char b[16])
{
	size_t len = strlen(host);

	if (len == 0 || len > HOST_MAX)
		return -1;
	if (inet_pton(AF_INET, host, b) == 1)
		return 4;
	if (inet_pton(AF_INET6, host, b) == 1)
		return 16;
	for (const char *p = host; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || strchr(".-_*", *p)))
			return -1;
	return 0;
}

/* subjectAltName: DNS:host, or IP:host when ip_len is 4 or 16. */
static int add_san(X509 *x, const char *host, const unsigned char *ip,
                   int ip_len)
{
	GENERAL_NAMES *names = sk_GENERAL_NAME_new_null();
	GENERAL_NAME *gn = GENERAL_NAME_new();
	ASN1_STRING *s = ip_len ? ASN1_OCTET_STRING_new()
	                        : ASN1_IA5STRING_new();
	int ok = 0;

	if (!names || !gn || !s)
		goto done;
	if (ip_len)
		ok = ASN1_OCTET_STRING_set(s, ip, ip_len);
	else
		ok = ASN1_STRING_set(s, host, -1);
	if (!ok)
		goto done;
	GENERAL_NAME_set0_value(gn, ip_len ? GEN_IPADD : GEN_DNS, s);
	s = NULL;
	ok = sk_GENERAL_NAME_push(names, gn) > 0;
	if (ok)
		gn = NULL;
	ok = ok && X509_add1_ext_i2d(x, NID_subject_alt_name, names, 0,
	                             X509V3_ADD_DEFAULT) == 1;
done:
	ASN1_STRING_free(s);
	GENERAL_NAME_free(gn);
	GENERAL_NAMES_free(names);
	return ok ? 0 : -ENOMEM;
}

/* notBefore now_s - 1 h, notAfter now_s + days, capped at the CA's. */
static int leaf_validity(X509 *x, const X509 *ca, int64_t now_s, int days)
{
	const ASN1_TIME *ca_end = X509_get0_notAfter(ca);
	time_t end = (time_t)(now_s + (int64_t)days * 86400);

	if (!ASN1_TIME_set(X509_getm_notBefore(x), (time_t)now_s - BACKDATE_S))
		return -ENOMEM;
	if (ASN1_TIME_cmp_time_t(ca_end, end) < 0)
		return X509_set1_notAfter(x, ca_end) ? 0 : -ENOMEM;
	return ASN1_TIME_set(X509_getm_notAfter(x), end) ? 0 : -ENOMEM;
}

/* Subject CN=host, at most CN_MAX bytes of it; issuer the CA's subject. */
static int leaf_names(X509 *x, const X509 *ca, const char *host)
{
	X509_NAME *n = X509_get_subject_name(x);
	size_t len = strlen(host);

	if (!X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
	                                (const unsigned char *)host,
	                                (int)(len > CN_MAX ? CN_MAX : len),
	                                -1, 0) ||
	    !X509_set_issuer_name(x, X509_get_subject_name(ca)))
		return -ENOMEM;
	return 0;
}

X509 *tls_ca_mint(const struct tls_ca *ca, EVP_PKEY *key, const char *host,
                  int64_t now_s, int days)
{
	unsigned char ip[16];
	int kind = host_kind(host, ip);
	X509 *x;
	X509V3_CTX ctx;

	if (kind < 0 || days < 1 || !key)
		return NULL;
	x = X509_new();
	if (!x || !X509_set_version(x, X509_VERSION_3) || set_serial(x) < 0 ||
	    leaf_names(x, ca->cert, host) < 0 ||
	    leaf_validity(x, ca->cert, now_s, days) < 0 ||
	    !X509_set_pubkey(x, key) || add_san(x, host, ip, kind) < 0)
		goto fail;
	X509V3_set_ctx(&ctx, ca->cert, x, NULL, NULL, 0);
	if (add_ext(x, &ctx, NID_basic_constraints, "CA:FALSE") < 0 ||
	    add_ext(x, &ctx, NID_key_usage, "critical,digitalSignature") < 0 ||
	    add_ext(x, &ctx, NID_ext_key_usage, "serverAuth") < 0 ||
	    add_ext(x, &ctx, NID_authority_key_identifier,
	            "keyid:always") < 0 ||
	    X509_sign(x, ca->key, EVP_sha256()) <= 0)
		goto fail;
	return x;
fail:
	X509_free(x);
	ERR_clear_error();
	return NULL;
}

/* --- describing a CA --- */

/* The subject as "CN=..., O=...", control characters escaped. */
static int subject_text(const X509 *x, char *out, size_t size)
{
	unsigned long flags = (XN_FLAG_RFC2253 & ~XN_FLAG_SEP_MASK) |
	                      XN_FLAG_SEP_CPLUS_SPC;
	BIO *b = BIO_new(BIO_s_mem());
	char *data;
	long len;
	int r = -ENOMEM;

	if (b &&
	    X509_NAME_print_ex(b, X509_get_subject_name(x), 0, flags) >= 0) {
		len = BIO_get_mem_data(b, &data);
		snprintf(out, size, "%.*s", (int)len, data);
		r = 0;
	}
	BIO_free(b);
	return r;
}

/* SHA-256 of the DER certificate as "AA:BB:...", as openssl x509 shows. */
static int fingerprint(const X509 *x, char *out, size_t size)
{
	static const char hex[] = "0123456789ABCDEF";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	if (!X509_digest(x, EVP_sha256(), md, &n) || size < 3 * (size_t)n)
		return -ENOMEM;
	for (unsigned int i = 0; i < n; i++) {
		out[3 * i] = hex[md[i] >> 4];
		out[3 * i + 1] = hex[md[i] & 15];
		out[3 * i + 2] = i + 1 < n ? ':' : '\0';
	}
	return 0;
}

/* An ASN.1 time as "2036-12-06 02:00:00 UTC". */
static int time_text(const ASN1_TIME *t, char *out, size_t size)
{
	struct tm tm;

	if (!ASN1_TIME_to_tm(t, &tm) ||
	    strftime(out, size, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
		return -EINVAL;
	return 0;
}

int tls_ca_describe(const char *dir, char *buf, size_t size, char *err,
                    size_t errsize)
{
	char path[PATH_LEN], subject[1024], sha[3 * EVP_MAX_MD_SIZE];
	char end[64];
	X509 *x;
	int r, e = 0;

	r = path_of(path, dir, TLS_CA_CERT_FILE, err, errsize);
	if (r < 0)
		return r;
	x = cert_read(path, &e, err, errsize);
	if (!x)
		return -e;
	r = subject_text(x, subject, sizeof(subject));
	if (r == 0)
		r = fingerprint(x, sha, sizeof(sha));
	if (r == 0)
		r = time_text(X509_get0_notAfter(x), end, sizeof(end));
	X509_free(x);
	ERR_clear_error();
	if (r < 0) {
		say(err, errsize, "cannot describe '%s': %s", path,
		    strerror(-r));
		return r;
	}
	if ((size_t)snprintf(buf, size, "subject: %s\nsha256: %s\n"
	                     "not after: %s\npath: %s\n", subject, sha, end,
	                     path) >= size) {
		say(err, errsize, "description of '%s' too long", path);
		return -ENOSPC;
	}
	return 0;
}

/*
 * check_tls.c - the local CA and its leaves: creating a CA (file modes,
 * refusal to overwrite, --force), loading it (round trip, a key others may
 * read, a missing CA, a key of another CA), describing it, minting leaves
 * for DNS names and IP literals that verify against the CA alone, and the
 * LRU cache of leaves.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "testlib.h"
#include "tls_ca.h"
#include "tls_leaves.h"

#define DAYS 30

static char dir[256];            /* a fresh directory per test */
static char other[300];          /* dir/other, for a second CA */
static char err[512];

static void path_in(char *buf, size_t size, const char *d, const char *name)
{
	ck_assert_int_lt(snprintf(buf, size, "%s/%s", d, name), (int)size);
}

static void setup(void)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(dir, sizeof(dir), "%s/check_tls.XXXXXX", tmp ? tmp : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	path_in(other, sizeof(other), dir, "other");
	err[0] = '\0';
}

/* Removes d's CA files and d itself, if there. */
static void remove_ca(const char *d)
{
	char p[512];

	path_in(p, sizeof(p), d, TLS_CA_CERT_FILE);
	unlink(p);
	path_in(p, sizeof(p), d, TLS_CA_KEY_FILE);
	unlink(p);
	rmdir(d);
}

static void teardown(void)
{
	remove_ca(other);
	remove_ca(dir);
}

static mode_t mode_of(const char *d, const char *name)
{
	char p[512];
	struct stat st;

	path_in(p, sizeof(p), d, name);
	ck_assert_int_eq(stat(p, &st), 0);
	ck_assert(S_ISREG(st.st_mode));
	return st.st_mode & 07777;
}

/* The number of entries in d, but . and .. */
static int entries(const char *d)
{
	DIR *dh = opendir(d);
	const struct dirent *e;
	int n = 0;

	ck_assert_ptr_nonnull(dh);
	while ((e = readdir(dh)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			n++;
	closedir(dh);
	return n;
}

/* The contents of d/name, malloc'd and NUL-terminated. */
static char *slurp(const char *d, const char *name)
{
	char p[512], *buf = calloc(1, 65536);
	FILE *f;

	path_in(p, sizeof(p), d, name);
	f = fopen(p, "r");
	ck_assert_ptr_nonnull(f);
	ck_assert_ptr_nonnull(buf);
	fread(buf, 1, 65535, f);
	fclose(f);
	return buf;
}

static struct tls_ca *load_ok(const char *d)
{
	int e = 0;
	struct tls_ca *ca = tls_ca_load(d, &e, err, sizeof(err));

	ck_assert_msg(ca != NULL, "load %s: errno %d: %s", d, e, err);
	return ca;
}

/* --- the CA --- */

START_TEST(test_create_modes)
{
	struct stat st;
	char *cert, *key, *cert2, *key2;

	ck_assert_int_eq(tls_ca_create(dir, false, err, sizeof(err)), 0);
	ck_assert_uint_eq(mode_of(dir, TLS_CA_KEY_FILE), 0600);
	ck_assert_uint_eq(mode_of(dir, TLS_CA_CERT_FILE), 0644);
	cert = slurp(dir, TLS_CA_CERT_FILE);
	key = slurp(dir, TLS_CA_KEY_FILE);
	ck_assert_ptr_nonnull(strstr(cert, "-----BEGIN CERTIFICATE-----"));
	ck_assert_ptr_nonnull(strstr(key, "-----BEGIN PRIVATE KEY-----"));

	/* A second create refuses and names the file; nothing changes. */
	ck_assert_int_eq(tls_ca_create(dir, false, err, sizeof(err)), -EEXIST);
	ck_assert_msg(strstr(err, dir) && strstr(err, TLS_CA_KEY_FILE), "%s",
	              err);
	cert2 = slurp(dir, TLS_CA_CERT_FILE);
	ck_assert_str_eq(cert, cert2);
	free(cert2);

	/* The certificate alone is enough to refuse. */
	path_in(err, sizeof(err), dir, TLS_CA_KEY_FILE);
	ck_assert_int_eq(unlink(err), 0);
	ck_assert_int_eq(tls_ca_create(dir, false, err, sizeof(err)), -EEXIST);
	ck_assert_msg(strstr(err, TLS_CA_CERT_FILE), "%s", err);

	/* --force makes a new CA over the old one, with the same modes. */
	ck_assert_int_eq(tls_ca_create(dir, true, err, sizeof(err)), 0);
	ck_assert_uint_eq(mode_of(dir, TLS_CA_KEY_FILE), 0600);
	ck_assert_uint_eq(mode_of(dir, TLS_CA_CERT_FILE), 0644);
	cert2 = slurp(dir, TLS_CA_CERT_FILE);
	key2 = slurp(dir, TLS_CA_KEY_FILE);
	ck_assert_str_ne(cert, cert2);
	ck_assert_str_ne(key, key2);
	free(cert);
	free(key);
	free(cert2);
	free(key2);

	/* No temporary file is left behind. */
	ck_assert_int_eq(entries(dir), 2);

	/* A missing directory is made, private. */
	ck_assert_int_eq(tls_ca_create(other, false, err, sizeof(err)), 0);
	ck_assert_int_eq(stat(other, &st), 0);
	ck_assert(S_ISDIR(st.st_mode));
	ck_assert_uint_eq(st.st_mode & 07777, 0700);
	ck_assert_int_eq(entries(other), 2);
}
END_TEST

START_TEST(test_create_bad_dir)
{
	char p[512];

	path_in(p, sizeof(p), dir, "a/b");
	ck_assert_int_eq(tls_ca_create(p, false, err, sizeof(err)), -ENOENT);
	ck_assert_msg(strstr(err, p), "%s", err);
	/* Not "/ca.pem". */
	ck_assert_int_eq(tls_ca_create("", false, err, sizeof(err)), -EINVAL);
}
END_TEST

START_TEST(test_load_round_trip)
{
	struct tls_ca *ca;
	X509 *x;
	const X509_NAME *n;
	char cn[128];
	BASIC_CONSTRAINTS *bc;
	time_t now = time(NULL);
	EVP_PKEY *pub;
	char group[32];
	size_t glen = 0;

	ck_assert_int_eq(tls_ca_create(dir, false, err, sizeof(err)), 0);
	ca = load_ok(dir);
	x = tls_ca_cert(ca);
	ck_assert_int_eq(X509_get_version(x), X509_VERSION_3);
	n = X509_get_subject_name(x);
	ck_assert_int_eq(X509_NAME_cmp(n, X509_get_issuer_name(x)), 0);
	ck_assert_int_gt(X509_NAME_get_text_by_NID(n, NID_commonName, cn,
	                                           sizeof(cn)), 0);
	ck_assert_int_eq(strncmp(cn, "sluice local CA ", 16), 0);
	ck_assert_uint_eq(strlen(cn), 16 + 8);
	ck_assert_int_gt(X509_NAME_get_text_by_NID(n, NID_organizationName, cn,
	                                           sizeof(cn)), 0);
	ck_assert_str_eq(cn, "sluice");

	ck_assert_int_eq(X509_check_ca(x), 1);
	bc = X509_get_ext_d2i(x, NID_basic_constraints, NULL, NULL);
	ck_assert_ptr_nonnull(bc);
	ck_assert(bc->ca);
	ck_assert_int_eq(ASN1_INTEGER_get(bc->pathlen), 0);
	BASIC_CONSTRAINTS_free(bc);
	ck_assert_int_eq(X509_EXTENSION_get_critical(X509_get_ext(x,
	        X509_get_ext_by_NID(x, NID_basic_constraints, -1))), 1);
	ck_assert_uint_eq(X509_get_key_usage(x),
	                  KU_KEY_CERT_SIGN | KU_CRL_SIGN);
	ck_assert_ptr_nonnull(X509_get0_subject_key_id(x));

	/* Valid from an hour ago for 10 years. */
	ck_assert_int_eq(ASN1_TIME_cmp_time_t(X509_get0_notBefore(x),
	                                      now - 3590), -1);
	ck_assert_int_eq(ASN1_TIME_cmp_time_t(X509_get0_notBefore(x),
	                                      now - 3610), 1);
	ck_assert_int_eq(ASN1_TIME_cmp_time_t(X509_get0_notAfter(x),
	                                      now + 3650LL * 86400), 1);
	ck_assert_int_eq(ASN1_TIME_cmp_time_t(X509_get0_notAfter(x),
	                                      now + 3660LL * 86400), -1);

	pub = X509_get0_pubkey(x);
	ck_assert(EVP_PKEY_is_a(pub, "EC"));
	ck_assert_int_eq(EVP_PKEY_get_group_name(pub, group, sizeof(group),
	                                         &glen), 1);
	ck_assert_str_eq(group, "prime256v1");
	ck_assert_int_eq(X509_get_signature_nid(x), NID_ecdsa_with_SHA256);
	ck_assert_int_eq(X509_verify(x, pub), 1);
	tls_ca_free(ca);
	tls_ca_free(NULL);
}
END_TEST

START_TEST(test_load_key_mode)
{
	char p[512];
	int e = 0;

	ck_assert_int_eq(tls_ca_create(dir, false, err, sizeof(err)), 0);
	path_in(p, sizeof(p), dir, TLS_CA_KEY_FILE);
	ck_assert_int_eq(chmod(p, 0644), 0);
	ck_assert_ptr_null(tls_ca_load(dir, &e, err, sizeof(err)));
	ck_assert_int_eq(e, EPERM);
	ck_assert_msg(strstr(err, p) && strstr(err, "0644") &&
	              strstr(err, "0600"), "%s", err);
	ck_assert_int_eq(chmod(p, 0640), 0);
	ck_assert_ptr_null(tls_ca_load(dir, &e, err, sizeof(err)));
	ck_assert_int_eq(e, EPERM);
	/* Narrower is fine. */
	ck_assert_int_eq(chmod(p, 0400), 0);
	tls_ca_free(load_ok(dir));
}
END_TEST

START_TEST(test_load_missing)
{
	char p[512];
	int e = 0;

	/* No directory, an empty one: no CA, not an error. */
	ck_assert_ptr_null(tls_ca_load(other, &e, err, sizeof(err)));
	ck_assert_int_eq(e, ENOENT);
	ck_assert_ptr_null(tls_ca_load(dir, &e, err, sizeof(err)));
	ck_assert_int_eq(e, ENOENT);

	/* Half a CA is an error. */
	ck_assert_int_eq(tls_ca_create(dir, false, err, sizeof(err)), 0);
	path_in(p, sizeof(p), dir, TLS_CA_KEY_FILE);
	ck_assert_int_eq(unlink(p), 0);
	ck_assert_ptr_null(tls_ca_load(dir, &e, err, sizeof(err)));
	ck_assert_int_eq(e, EINVAL);
	ck_assert_msg(strstr(err, p), "%s", err);
}
END_TEST

START_TEST(test_load_bad)
{
	char from[512], to[512];
	int e = 0;
	FILE *f;

	/* The key of another CA. */
	ck_assert_int_eq(tls_ca_create(dir, false, err, sizeof(err)), 0);
	ck_assert_int_eq(tls_ca_create(other, false, err, sizeof(err)), 0);
	path_in(from, sizeof(from), other, TLS_CA_KEY_FILE);
	path_in(to, sizeof(to), dir, TLS_CA_KEY_FILE);
	ck_assert_int_eq(rename(from, to), 0);
	ck_assert_ptr_null(tls_ca_load(dir, &e, err, sizeof(err)));
	ck_assert_int_eq(e, EINVAL);
	ck_assert_msg(strstr(err, "does not match"), "%s", err);
	ck_assert_uint_eq(ERR_peek_error(), 0);

	/* Not PEM. */
	path_in(to, sizeof(to), dir, TLS_CA_CERT_FILE);
	f = fopen(to, "w");
	ck_assert_ptr_nonnull(f);
	fputs("not a certificate\n", f);
	fclose(f);
	ck_assert_ptr_null(tls_ca_load(dir, &e, err, sizeof(err)));
	ck_assert_int_eq(e, EINVAL);
	ck_assert_msg(strstr(err, to), "%s", err);
	ck_assert_uint_eq(ERR_peek_error(), 0);
}
END_TEST

START_TEST(test_describe)
{
	char buf[1024], want[512], sha[3 * EVP_MAX_MD_SIZE];
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	struct tls_ca *ca;

	ck_assert_int_eq(tls_ca_describe(dir, buf, sizeof(buf), err,
	                                 sizeof(err)), -ENOENT);
	ck_assert_int_eq(tls_ca_create(dir, false, err, sizeof(err)), 0);
	ck_assert_int_eq(tls_ca_describe(dir, buf, sizeof(buf), err,
	                                 sizeof(err)), 0);
	ca = load_ok(dir);
	ck_assert_int_eq(X509_digest(tls_ca_cert(ca), EVP_sha256(), md, &n), 1);
	tls_ca_free(ca);
	for (unsigned i = 0; i < n; i++)
		sprintf(sha + 3 * i, "%02X%s", md[i], i + 1 < n ? ":" : "");
	ck_assert_msg(strncmp(buf, "subject: CN=sluice local CA ", 28) == 0,
	              "%s", buf);
	ck_assert_msg(strstr(buf, ", O=sluice\nsha256: "), "%s", buf);
	snprintf(want, sizeof(want), "\nsha256: %s\nnot after: 20", sha);
	ck_assert_msg(strstr(buf, want), "%s", buf);
	ck_assert_msg(strstr(buf, " UTC\npath: "), "%s", buf);
	snprintf(want, sizeof(want), "path: %s/%s\n", dir, TLS_CA_CERT_FILE);
	ck_assert_msg(strstr(buf, want), "%s", buf);
	ck_assert_uint_eq(buf[strlen(buf) - 1], '\n');

	ck_assert_int_eq(tls_ca_describe(dir, buf, 20, err, sizeof(err)),
	                 -ENOSPC);
}
END_TEST

/* --- leaves --- */

static struct tls_ca *ca;
static EVP_PKEY *leaf_key;

static void mint_setup(void)
{
	setup();
	ck_assert_int_eq(tls_ca_create(dir, false, err, sizeof(err)), 0);
	ca = load_ok(dir);
	leaf_key = tls_key_new();
	ck_assert_ptr_nonnull(leaf_key);
}

static void mint_teardown(void)
{
	tls_ca_free(ca);
	ca = NULL;
	EVP_PKEY_free(leaf_key);
	leaf_key = NULL;
	teardown();
}

/*
 * X509_verify_cert of leaf at a time, strict, for a TLS server, with only
 * the CA trusted: X509_V_OK or why not.
 */
static int verify(X509 *leaf, time_t at)
{
	X509_STORE *store = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	int r;

	ck_assert_ptr_nonnull(store);
	ck_assert_ptr_nonnull(ctx);
	ck_assert_int_eq(X509_STORE_add_cert(store, tls_ca_cert(ca)), 1);
	ck_assert_int_eq(X509_STORE_CTX_init(ctx, store, leaf, NULL), 1);
	X509_STORE_CTX_set_time(ctx, 0, at);
	X509_STORE_CTX_set_flags(ctx, X509_V_FLAG_X509_STRICT);
	ck_assert_int_eq(X509_STORE_CTX_set_purpose(ctx,
	                 X509_PURPOSE_SSL_SERVER), 1);
	r = X509_verify_cert(ctx) == 1 ? X509_V_OK
	                                : X509_STORE_CTX_get_error(ctx);
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	ERR_clear_error();
	return r;
}

/* Checks what every leaf has; the SAN is checked by the callers. */
static void check_leaf(X509 *x, time_t now, int days)
{
	const ASN1_INTEGER *serial = X509_get0_serialNumber(x);
	const ASN1_OCTET_STRING *akid = X509_get0_authority_key_id(x);

	ck_assert_int_eq(X509_get_version(x), X509_VERSION_3);
	ck_assert_int_eq(X509_check_ca(x), 0);
	ck_assert_int_eq(X509_check_issued(tls_ca_cert(ca), x), X509_V_OK);
	ck_assert_uint_eq(X509_get_key_usage(x), KU_DIGITAL_SIGNATURE);
	ck_assert_uint_eq(X509_get_extended_key_usage(x), XKU_SSL_SERVER);
	ck_assert_ptr_nonnull(akid);
	ck_assert_int_eq(ASN1_OCTET_STRING_cmp(akid,
	                 X509_get0_subject_key_id(tls_ca_cert(ca))), 0);
	ck_assert_int_eq(ASN1_STRING_type(serial), V_ASN1_INTEGER);
	ck_assert_int_eq(ASN1_STRING_length(serial), 16);
	ck_assert_int_eq(EVP_PKEY_eq(X509_get0_pubkey(x), leaf_key), 1);
	ck_assert_int_eq(X509_get_signature_nid(x), NID_ecdsa_with_SHA256);
	ck_assert_int_eq(ASN1_TIME_cmp_time_t(X509_get0_notBefore(x),
	                                      now - 3600), 0);
	ck_assert_int_eq(ASN1_TIME_cmp_time_t(X509_get0_notAfter(x),
	                                      now + (time_t)days * 86400), 0);
	ck_assert_int_eq(verify(x, now), X509_V_OK);
	ck_assert_int_eq(verify(x, now + (time_t)days * 86400 + 1),
	                 X509_V_ERR_CERT_HAS_EXPIRED);
	ck_assert_int_eq(verify(x, now - 3601), X509_V_ERR_CERT_NOT_YET_VALID);
}

/* The only subjectAltName of x, of the given type; a copy to free. */
static GENERAL_NAME *only_san(X509 *x, int type)
{
	GENERAL_NAMES *names = X509_get_ext_d2i(x, NID_subject_alt_name, NULL,
	                                        NULL);
	GENERAL_NAME *gn;

	ck_assert_ptr_nonnull(names);
	ck_assert_int_eq(sk_GENERAL_NAME_num(names), 1);
	gn = sk_GENERAL_NAME_pop(names);
	GENERAL_NAMES_free(names);
	ck_assert_int_eq(gn->type, type);
	return gn;
}

START_TEST(test_mint_dns)
{
	time_t now = time(NULL);
	X509 *x = tls_ca_mint(ca, leaf_key, "api.example.com", now, DAYS);
	X509 *y;
	GENERAL_NAME *gn;
	char cn[128];

	ck_assert_ptr_nonnull(x);
	check_leaf(x, now, DAYS);
	gn = only_san(x, GEN_DNS);
	ck_assert_int_eq(ASN1_STRING_length(gn->d.dNSName), 15);
	ck_assert_mem_eq(ASN1_STRING_get0_data(gn->d.dNSName),
	                 "api.example.com", 15);
	GENERAL_NAME_free(gn);
	ck_assert_int_gt(X509_NAME_get_text_by_NID(X509_get_subject_name(x),
	                 NID_commonName, cn, sizeof(cn)), 0);
	ck_assert_str_eq(cn, "api.example.com");
	ck_assert_int_eq(X509_check_host(x, "api.example.com", 0, 0, NULL), 1);
	ck_assert_int_eq(X509_check_host(x, "API.example.com", 0, 0, NULL), 1);
	ck_assert_int_eq(X509_check_host(x, "example.com", 0, 0, NULL), 0);
	ck_assert_int_eq(X509_check_ip_asc(x, "127.0.0.1", 0), 0);
	X509_free(x);

	/* Two leaves of one host differ in serial number. */
	x = tls_ca_mint(ca, leaf_key, "api.example.com", now, DAYS);
	y = tls_ca_mint(ca, leaf_key, "api.example.com", now, DAYS);
	ck_assert_ptr_nonnull(x);
	ck_assert_ptr_nonnull(y);
	ck_assert_int_ne(ASN1_INTEGER_cmp(X509_get0_serialNumber(x),
	                                  X509_get0_serialNumber(y)), 0);
	X509_free(y);
	X509_free(x);

	/* Underscores and wildcards are allowed as is. */
	x = tls_ca_mint(ca, leaf_key, "*.my_host.example", now, DAYS);
	ck_assert_ptr_nonnull(x);
	X509_free(x);
}
END_TEST

static void check_ip(const char *host, const unsigned char *want, int len)
{
	time_t now = time(NULL);
	X509 *x = tls_ca_mint(ca, leaf_key, host, now, DAYS);
	GENERAL_NAME *gn;

	ck_assert_ptr_nonnull(x);
	check_leaf(x, now, DAYS);
	gn = only_san(x, GEN_IPADD);
	ck_assert_int_eq(ASN1_STRING_length(gn->d.iPAddress), len);
	ck_assert_mem_eq(ASN1_STRING_get0_data(gn->d.iPAddress), want,
	                 (size_t)len);
	GENERAL_NAME_free(gn);
	ck_assert_int_eq(X509_check_ip_asc(x, host, 0), 1);
	ck_assert_int_eq(X509_check_ip_asc(x, "10.0.0.1", 0), 0);
	/* No DNS name: only the CN, for clients that still read it. */
	ck_assert_int_eq(X509_check_host(x, host, 0,
	                 X509_CHECK_FLAG_NEVER_CHECK_SUBJECT, NULL), 0);
	X509_free(x);
}

START_TEST(test_mint_ip)
{
	static const unsigned char v4[4] = { 127, 0, 0, 1 };
	static const unsigned char v6[16] = { [15] = 1 };
	static const unsigned char doc6[16] = { 0x20, 0x01, 0x0d, 0xb8,
	                                        [15] = 0x2a };

	check_ip("127.0.0.1", v4, 4);
	check_ip("::1", v6, 16);
	check_ip("2001:db8::2a", doc6, 16);
}
END_TEST

START_TEST(test_mint_long_host)
{
	char host[254];
	time_t now = time(NULL);
	X509 *x;
	char cn[128];
	GENERAL_NAME *gn;

	/* 253 bytes: labels of 49 a's and dots. */
	for (int i = 0; i < 253; i++)
		host[i] = i % 50 == 49 ? '.' : 'a';
	host[253] = '\0';
	x = tls_ca_mint(ca, leaf_key, host, now, DAYS);
	ck_assert_ptr_nonnull(x);
	ck_assert_int_eq(X509_NAME_get_text_by_NID(X509_get_subject_name(x),
	                 NID_commonName, cn, sizeof(cn)), 64);
	ck_assert_int_eq(strncmp(cn, host, 64), 0);
	gn = only_san(x, GEN_DNS);
	ck_assert_int_eq(ASN1_STRING_length(gn->d.dNSName), 253);
	GENERAL_NAME_free(gn);
	ck_assert_int_eq(verify(x, now), X509_V_OK);
	X509_free(x);
}
END_TEST

START_TEST(test_mint_bad)
{
	static const char *const bad[] = {
		"", "a b", "a/b", "host:443", "[::1]", "ex%41mple.com",
		"fe80::1%eth0", "caf\xc3\xa9.example", "a\nb", "a,DNS:b",
	};
	char host[256];
	time_t now = time(NULL);

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(tls_ca_mint(ca, leaf_key, bad[i], now, DAYS) ==
		              NULL, "'%s'", bad[i]);
	memset(host, 'a', 254);
	host[254] = '\0';
	ck_assert_ptr_null(tls_ca_mint(ca, leaf_key, host, now, DAYS));
	ck_assert_ptr_null(tls_ca_mint(ca, leaf_key, "a.example", now, 0));
	ck_assert_uint_eq(ERR_peek_error(), 0);
}
END_TEST

START_TEST(test_mint_capped)
{
	time_t now = time(NULL);
	X509 *x = tls_ca_mint(ca, leaf_key, "a.example", now, 20 * 366);

	/* Never valid after the CA. */
	ck_assert_ptr_nonnull(x);
	ck_assert_int_eq(ASN1_TIME_compare(X509_get0_notAfter(x),
	                 X509_get0_notAfter(tls_ca_cert(ca))), 0);
	ck_assert_int_eq(verify(x, now), X509_V_OK);
	X509_free(x);
}
END_TEST

/* --- the cache of leaves --- */

/* A bare certificate that expires at not_after (seconds). */
static X509 *leaf_until(int64_t not_after)
{
	X509 *x = X509_new();

	ck_assert_ptr_nonnull(x);
	ck_assert_ptr_nonnull(ASN1_TIME_set(X509_getm_notAfter(x),
	                                    (time_t)not_after));
	return x;
}

#define NOW 1800000000LL             /* 2027-01-15 */
#define LATER (NOW + 30 * 86400)

START_TEST(test_cache_lru)
{
	struct leaf_cache *lc = leaf_cache_new(3);
	X509 *a = leaf_until(LATER), *b = leaf_until(LATER);
	X509 *c = leaf_until(LATER), *d = leaf_until(LATER);

	ck_assert_ptr_nonnull(lc);
	ck_assert_uint_eq(leaf_cache_len(lc), 0);
	ck_assert_ptr_null(leaf_cache_get(lc, "a.example", NOW));
	ck_assert_int_eq(leaf_cache_put(lc, "a.example", a), 0);
	ck_assert_int_eq(leaf_cache_put(lc, "b.example", b), 0);
	ck_assert_int_eq(leaf_cache_put(lc, "c.example", c), 0);
	ck_assert_uint_eq(leaf_cache_len(lc), 3);

	/* a is used, so b is now the least recently used. */
	ck_assert_ptr_eq(leaf_cache_get(lc, "a.example", NOW), a);
	ck_assert_int_eq(leaf_cache_put(lc, "d.example", d), 0);
	ck_assert_uint_eq(leaf_cache_len(lc), 3);
	ck_assert_ptr_null(leaf_cache_get(lc, "b.example", NOW));
	ck_assert_ptr_eq(leaf_cache_get(lc, "c.example", NOW), c);
	ck_assert_ptr_eq(leaf_cache_get(lc, "d.example", NOW), d);
	ck_assert_ptr_eq(leaf_cache_get(lc, "a.example", NOW), a);

	/* Order now c, d, a: a new one drops c. */
	ck_assert_int_eq(leaf_cache_put(lc, "e.example", leaf_until(LATER)),
	                 0);
	ck_assert_ptr_null(leaf_cache_get(lc, "c.example", NOW));
	ck_assert_ptr_eq(leaf_cache_get(lc, "d.example", NOW), d);
	ck_assert_uint_eq(leaf_cache_len(lc), 3);
	leaf_cache_free(lc);
	leaf_cache_free(NULL);
}
END_TEST

START_TEST(test_cache_replace)
{
	struct leaf_cache *lc = leaf_cache_new(2);
	X509 *a2 = leaf_until(LATER);

	ck_assert_int_eq(leaf_cache_put(lc, "a.example", leaf_until(LATER)), 0);
	ck_assert_int_eq(leaf_cache_put(lc, "b.example", leaf_until(LATER)), 0);
	/* Replacing a keeps the length and makes a the most recent. */
	ck_assert_int_eq(leaf_cache_put(lc, "A.Example", a2), 0);
	ck_assert_uint_eq(leaf_cache_len(lc), 2);
	ck_assert_ptr_eq(leaf_cache_get(lc, "a.example", NOW), a2);
	ck_assert_int_eq(leaf_cache_put(lc, "c.example", leaf_until(LATER)), 0);
	ck_assert_ptr_null(leaf_cache_get(lc, "b.example", NOW));
	ck_assert_ptr_eq(leaf_cache_get(lc, "A.EXAMPLE", NOW), a2);
	leaf_cache_free(lc);
}
END_TEST

START_TEST(test_cache_expiry)
{
	struct leaf_cache *lc = leaf_cache_new(4);
	X509 *soon = leaf_until(NOW + 3601);

	ck_assert_int_eq(leaf_cache_put(lc, "old.example",
	                                leaf_until(NOW + 1800)), 0);
	ck_assert_int_eq(leaf_cache_put(lc, "soon.example", soon), 0);
	ck_assert_uint_eq(leaf_cache_len(lc), 2);

	/* Expiring within the hour: dropped. */
	ck_assert_ptr_null(leaf_cache_get(lc, "old.example", NOW));
	ck_assert_uint_eq(leaf_cache_len(lc), 1);
	ck_assert_ptr_eq(leaf_cache_get(lc, "soon.example", NOW), soon);
	ck_assert_ptr_null(leaf_cache_get(lc, "soon.example", NOW + 1));
	ck_assert_uint_eq(leaf_cache_len(lc), 0);

	/* Cap 1 and a host longer than a DNS name. */
	leaf_cache_free(lc);
	lc = leaf_cache_new(1);
	{
		char host[400];

		memset(host, 'x', sizeof(host) - 1);
		host[sizeof(host) - 1] = '\0';
		ck_assert_int_eq(leaf_cache_put(lc, host, leaf_until(LATER)),
		                 0);
		ck_assert_ptr_nonnull(leaf_cache_get(lc, host, NOW));
		ck_assert_int_eq(leaf_cache_put(lc, "y", leaf_until(LATER)),
		                 0);
		ck_assert_ptr_null(leaf_cache_get(lc, host, NOW));
		ck_assert_uint_eq(leaf_cache_len(lc), 1);
	}
	leaf_cache_free(lc);
	ck_assert_ptr_null(leaf_cache_new(0));
}
END_TEST

static Suite *tls_suite(void)
{
	Suite *s = suite_create("tls");
	TCase *tc;

	tc = tcase_create("ca");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_create_modes);
	tcase_add_test(tc, test_create_bad_dir);
	tcase_add_test(tc, test_load_round_trip);
	tcase_add_test(tc, test_load_key_mode);
	tcase_add_test(tc, test_load_missing);
	tcase_add_test(tc, test_load_bad);
	tcase_add_test(tc, test_describe);
	suite_add_tcase(s, tc);

	tc = tcase_create("mint");
	tcase_add_checked_fixture(tc, mint_setup, mint_teardown);
	tcase_add_test(tc, test_mint_dns);
	tcase_add_test(tc, test_mint_ip);
	tcase_add_test(tc, test_mint_long_host);
	tcase_add_test(tc, test_mint_bad);
	tcase_add_test(tc, test_mint_capped);
	suite_add_tcase(s, tc);

	tc = tcase_create("cache");
	tcase_add_test(tc, test_cache_lru);
	tcase_add_test(tc, test_cache_replace);
	tcase_add_test(tc, test_cache_expiry);
	suite_add_tcase(s, tc);
	return s;
}

TESTLIB_MAIN(tls_suite)

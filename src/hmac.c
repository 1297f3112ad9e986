/*
 * hmac.c - HMAC-SHA-256 through OpenSSL's EVP_MAC.
 */
#include <errno.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <string.h>

#include "hmac.h"

int hmac_sha256(const void *key, size_t key_len,
                const struct hmac_part *parts, size_t n,
                unsigned char out[HMAC_SHA256_LEN])
{
	char digest[] = "SHA256";
	unsigned char mac[HMAC_SHA256_LEN];
	size_t mac_len = 0;
	OSSL_PARAM params[2];
	EVP_MAC_CTX *ctx = NULL;
	EVP_MAC *m;
	int r = -ENOMEM;

	m = EVP_MAC_fetch(NULL, "HMAC", NULL);
	if (m)
		ctx = EVP_MAC_CTX_new(m);
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
	                                             digest, 0);
	params[1] = OSSL_PARAM_construct_end();
	if (!ctx || EVP_MAC_init(ctx, key, key_len, params) != 1)
		goto out;
	for (size_t i = 0; i < n; i++)
		if (parts[i].len > 0 &&
		    EVP_MAC_update(ctx, parts[i].p, parts[i].len) != 1)
			goto out;
	if (EVP_MAC_final(ctx, mac, &mac_len, sizeof(mac)) != 1 ||
	    mac_len != HMAC_SHA256_LEN)
		goto out;
	memcpy(out, mac, HMAC_SHA256_LEN);
	r = 0;
out:
	OPENSSL_cleanse(mac, sizeof(mac));
	EVP_MAC_CTX_free(ctx);
	EVP_MAC_free(m);
	return r;
}

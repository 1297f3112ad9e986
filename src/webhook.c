/*
 * webhook.c - webhook payload, signature, secret file and schedule (see
 * webhook.h; the request's fields are parsed in webhook_fields.c).
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ascii.h"
#include "hmac.h"
#include "webhook.h"

#define STR_(x) #x
#define STR(x) STR_(x)

/* ---- text -------------------------------------------------------------- */

/*
 * A JSON string of s (NULL: JSON null): as is when it is UTF-8, else read
 * as ISO-8859-1, which maps every byte and loses none.
 */
static json_t *json_text(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n, i, o = 0;
	json_t *j;
	char *t;

	if (!s)
		return json_null();
	n = strlen(s);
	/* jansson refuses what is not well-formed UTF-8. */
	j = json_stringn(s, n);
	if (j)
		return j;
	t = malloc(2 * n);
	if (!t)
		return NULL;
	for (i = 0; i < n; i++) {
		if (p[i] < 0x80) {
			t[o++] = (char)p[i];
		} else {
			t[o++] = (char)(0xc0 | (p[i] >> 6));
			t[o++] = (char)(0x80 | (p[i] & 0x3f));
		}
	}
	j = json_stringn(t, o);
	free(t);
	return j;
}


/* ---- signature --------------------------------------------------------- */

int webhook_sign(const unsigned char *secret, size_t secret_len,
                 int64_t t_unix, const char *body, size_t len, char *out,
                 size_t size)
{
	static const char hex[] = "0123456789abcdef";
	char prefix[24];
	unsigned char mac[HMAC_SHA256_LEN];
	struct hmac_part msg[2];
	size_t need, o, i;
	int plen;

	assert(secret_len > 0);
	plen = snprintf(prefix, sizeof(prefix), "%" PRId64 ".", t_unix);
	/* "t=" digits ",v1=" hex NUL; the prefix's '.' pays for the NUL */
	need = 2 + (size_t)plen + 4 + 2 * HMAC_SHA256_LEN;
	if (size < need)
		return -ENOSPC;
	msg[0] = (struct hmac_part){ prefix, (size_t)plen };
	msg[1] = (struct hmac_part){ body, len };
	if (hmac_sha256(secret, secret_len, msg, 2, mac) < 0)
		return -ENOMEM;

	o = (size_t)snprintf(out, size, "t=%.*s,v1=", plen - 1, prefix);
	for (i = 0; i < HMAC_SHA256_LEN; i++) {
		out[o++] = hex[mac[i] >> 4];
		out[o++] = hex[mac[i] & 15];
	}
	out[o] = '\0';
	return (int)o;
}

/* ---- secret file ------------------------------------------------------- */

/*
 * A secret is checked here rather than by jansson (as payload strings
 * are), which would leave a copy of it in freed memory.
 *
 * Length of the well-formed UTF-8 sequence at s[0..n), or 0. Follows
 * Unicode table 3-7: no overlongs (C0, C1, E0 80..9F, F0 80..8F), no
 * surrogates (ED A0..BF), nothing past U+10FFFF (F4 90.., F5..FF).
 */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	unsigned char c = s[0], lo = 0x80, hi = 0xbf;
	size_t len, i;

	if (c < 0x80)
		return 1;
	if (c < 0xc2)
		return 0;
	if (c < 0xe0) {
		len = 2;
	} else if (c < 0xf0) {
		len = 3;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;
	} else if (c < 0xf5) {
		len = 4;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
	} else {
		return 0;
	}
	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i < len; i++) {
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	}
	return len;
}

/* True when s[0..n) is well-formed UTF-8; *ret_chars counts characters. */
static bool utf8_valid(const char *s, size_t n, size_t *ret_chars)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, chars = 0, k;

	while (i < n) {
		k = utf8_seq(p + i, n - i);
		if (k == 0)
			return false;
		i += k;
		chars++;
	}
	if (ret_chars)
		*ret_chars = chars;
	return true;
}

int webhook_secret_load(const char *path, struct webhook_secret *ret,
                        bool *ret_exposed)
{
	/* Room for the line end after a longest secret, and one byte more. */
	unsigned char buf[WEBHOOK_SECRET_MAX + 8];
	size_t len = 0, chars;
	struct stat st;
	bool exposed;
	int fd, r = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	exposed = S_ISREG(st.st_mode) &&
	          (st.st_mode & (S_IROTH | S_IWGRP | S_IWOTH));
	while (len < sizeof(buf)) {
		ssize_t n = read(fd, buf + len, sizeof(buf) - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			break;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);

	if (r == 0 && len == sizeof(buf))
		r = -EFBIG;
	while (r == 0 && len > 0 && (buf[len - 1] == '\n' ||
	                             buf[len - 1] == '\r'))
		len--;
	if (r == 0 && len > WEBHOOK_SECRET_MAX)
		r = -EFBIG;
	else if (r == 0 && len == 0)
		r = -ENODATA;
	else if (r == 0 && (memchr(buf, '\0', len) ||
	                    !utf8_valid((const char *)buf, len, &chars)))
		r = -EILSEQ;
	else if (r == 0 && chars < WEBHOOK_SECRET_MIN)
		r = -ERANGE;
	if (r == 0) {
		memcpy(ret->key, buf, len);
		ret->len = len;
		*ret_exposed = exposed;
	}
	OPENSSL_cleanse(buf, sizeof(buf));
	return r;
}

void webhook_secret_done(struct webhook_secret *s)
{
	OPENSSL_cleanse(s->key, sizeof(s->key));
	s->len = 0;
}

const char *webhook_secret_error_str(int err)
{
	switch (err) {
	case -ENODATA:
		return "is empty";
	case -EFBIG:
		return "is longer than " STR(WEBHOOK_SECRET_MAX) " bytes";
	case -EILSEQ:
		return "is not UTF-8 text";
	case -ERANGE:
		return "is shorter than " STR(WEBHOOK_SECRET_MIN) " characters";
	default:
		return strerror(-err);
	}
}

/* ---- payload ----------------------------------------------------------- */

/* RFC 4648 base64 with padding, NUL-terminated; NULL on OOM. */
static char *base64(const unsigned char *p, size_t n, size_t *ret_len)
{
	size_t groups = n / 3 + (n % 3 != 0);
	char *out;
	int o;

	if (n > INT_MAX || groups > (SIZE_MAX - 1) / 4)
		return NULL;
	out = malloc(4 * groups + 1);
	if (!out)
		return NULL;
	o = EVP_EncodeBlock((unsigned char *)out, p, (int)n);
	*ret_len = (size_t)o;
	return out;
}

/*
 * Adds one field to the headers object: name lower-cased, a repeat joined
 * to the value already there. 0 or -ENOMEM.
 */
static int header_add(json_t *h, const char *name, const char *val,
                      size_t vlen)
{
	char *key, *joined;
	const char *sep;
	size_t klen, olen, slen, i;
	json_t *old;
	int r = -ENOMEM;

	klen = strlen(name);
	key = strdup(name);
	if (!key)
		return -ENOMEM;
	for (i = 0; i < klen; i++)
		key[i] = ascii_lower(key[i]);

	old = json_object_get(h, key);
	if (!old) {
		if (json_object_set_new(h, key, json_stringn(val, vlen)) == 0)
			r = 0;
		goto out;
	}
	sep = strcmp(key, "set-cookie") == 0 ? "\n" : ", ";
	slen = strlen(sep);
	olen = json_string_length(old);
	joined = malloc(olen + slen + vlen + 1);
	if (!joined)
		goto out;
	memcpy(joined, json_string_value(old), olen);
	memcpy(joined + olen, sep, slen);
	memcpy(joined + olen + slen, val, vlen);
	joined[olen + slen + vlen] = '\0';
	if (json_object_set_new(h, key,
	                        json_stringn(joined, olen + slen + vlen)) == 0)
		r = 0;
	free(joined);
out:
	free(key);
	return r;
}

/* The headers object from [["name", "value"], ...]. 0, -EINVAL, -ENOMEM. */
static int headers_fold(const char *text, json_t **ret)
{
	json_error_t jerr;
	json_t *list, *h, *pair, *name, *val;
	size_t i;
	int r = 0;

	h = json_object();
	if (!h)
		return -ENOMEM;
	if (!text) {
		*ret = h;
		return 0;
	}
	list = json_loads(text, JSON_ALLOW_NUL, &jerr);
	if (!list) {
		json_decref(h);
		return json_error_code(&jerr) == json_error_out_of_memory ?
		       -ENOMEM : -EINVAL;
	}
	if (!json_is_array(list))
		r = -EINVAL;
	json_array_foreach(list, i, pair) {
		if (r < 0)
			break;
		name = json_array_get(pair, 0);
		val = json_array_get(pair, 1);
		if (json_array_size(pair) != 2 || !json_is_string(name) ||
		    !json_is_string(val) ||
		    strlen(json_string_value(name)) != json_string_length(name))
			r = -EINVAL;
		else
			r = header_add(h, json_string_value(name),
			               json_string_value(val),
			               json_string_length(val));
	}
	json_decref(list);
	if (r < 0) {
		json_decref(h);
		return r;
	}
	*ret = h;
	return 0;
}

int webhook_response_json(const struct job_result *end, json_t **ret)
{
	json_t *resp, *h = NULL, *body;
	char *b64;
	size_t b64_len;
	int r;

	r = headers_fold(end->headers_json, &h);
	if (r < 0)
		return r;
	resp = json_object();
	if (!resp || json_object_set_new(resp, "status_code",
	                                 json_integer(end->status_code)) < 0) {
		json_decref(h);
		goto fail;
	}
	if (json_object_set_new(resp, "headers", h) < 0)
		goto fail; /* set_new has released h */
	/* A JSON string when jansson takes it: well-formed UTF-8. */
	body = json_stringn(end->body ? end->body : "", end->body_len);
	if (body) {
		if (json_object_set_new(resp, "body", body) < 0)
			goto fail;
		*ret = resp;
		return 0;
	}
	b64 = base64(end->body, end->body_len, &b64_len);
	if (!b64)
		goto fail;
	if (json_object_set_new(resp, "body",
	                        json_stringn(b64, b64_len)) < 0 ||
	    json_object_set_new(resp, "body_encoding",
	                        json_string("base64")) < 0) {
		free(b64);
		goto fail;
	}
	free(b64);
	*ret = resp;
	return 0;
fail:
	json_decref(resp);
	return -ENOMEM;
}

int webhook_payload(const struct webhook_result *res, char **ret,
                    size_t *ret_len)
{
	json_t *root, *err, *resp;
	char *s;
	int r;

	assert(res->job_id);
	assert(!res->end.failed ||
	       (res->end.error_code && res->end.error_message));
	r = webhook_response_json(&res->end, &resp);
	if (r < 0)
		return r;
	root = json_object();
	if (!root) {
		json_decref(resp);
		return -ENOMEM;
	}
	if (json_object_set_new(root, "job_id", json_text(res->job_id)) < 0 ||
	    json_object_set_new(root, "idempotent_key",
	                        json_text(res->idempotent_key)) < 0 ||
	    json_object_set_new(root, "status",
	                        json_string(res->end.failed ? "failed" :
	                                    "success")) < 0) {
		json_decref(resp);
		goto fail;
	}
	if (json_object_set_new(root, "response", resp) < 0)
		goto fail;
	if (res->end.failed) {
		const struct job_result *end = &res->end;

		err = json_object();
		if (json_object_set_new(err, "code",
		                        json_text(end->error_code)) < 0 ||
		    json_object_set_new(err, "message",
		                        json_text(end->error_message)) < 0) {
			json_decref(err);
			goto fail;
		}
		if (json_object_set_new(root, "error", err) < 0)
			goto fail;
	}
	if (res->metadata) {
		if (json_object_set(root, "metadata", res->metadata) < 0)
			goto fail;
	} else if (json_object_set_new(root, "metadata", json_object()) < 0) {
		goto fail;
	}
	s = json_dumps(root, JSON_COMPACT);
	json_decref(root);
	if (!s)
		return -ENOMEM;
	*ret = s;
	*ret_len = strlen(s);
	return 0;
fail:
	json_decref(root);
	return -ENOMEM;
}

/* ---- schedule ---------------------------------------------------------- */

int64_t webhook_next_attempt(const int64_t *schedule_ms, size_t n,
                             unsigned attempt, int64_t first_try_ms,
                             int64_t give_up_after_ms, int64_t now_ms)
{
	int64_t step, due, deadline;

	assert(n >= 1);
	step = schedule_ms[attempt < n ? attempt : n - 1];
	if (step < 0)
		step = 0;
	due = now_ms > INT64_MAX - step ? INT64_MAX : now_ms + step;
	if (attempt == 0)
		return due;
	if (give_up_after_ms < 0)
		give_up_after_ms = 0;
	deadline = first_try_ms > INT64_MAX - give_up_after_ms ?
	           INT64_MAX : first_try_ms + give_up_after_ms;
	if (now_ms >= deadline)
		return -1;
	return due < deadline ? due : deadline;
}

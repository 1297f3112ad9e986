/*
 * check_webhook.c - webhook jobs: the signature against the openssl
 * command line, secret files, the delivery payload (UTF-8, base64,
 * header folding), the X-EZTHROTTLE-WEBHOOK* fields and the delivery
 * schedule.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "webhook.h"
#include "testlib.h"

/* Check's ck_assert_*() costs a pipe write per success; loops use this. */
#define CHECK(cond) \
	do { \
		if (!(cond)) \
			ck_abort_msg("%s:%d: %s", __FILE__, __LINE__, #cond); \
	} while (0)

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

#define MIN_MS (60 * 1000LL)
#define HOUR_MS (60 * MIN_MS)

/* A scratch directory per test, made by the fixture. */
static char tmpdir[64];

static void tmp_setup(void)
{
	strcpy(tmpdir, "/tmp/check_webhook.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void tmp_teardown(void)
{
	DIR *d = opendir(tmpdir);
	struct dirent *e;
	char path[512];

	if (!d)
		return;
	while ((e = readdir(d))) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", tmpdir, e->d_name);
		if (unlink(path) < 0)
			rmdir(path);
	}
	closedir(d);
	rmdir(tmpdir);
}

/* Writes data[0..len) to tmpdir/name with mode; returns the path. */
static const char *write_file(const char *name, const void *data, size_t len,
                              mode_t mode)
{
	static char path[256];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, data, len), (ssize_t)len);
	ck_assert_int_eq(fchmod(fd, mode), 0);
	close(fd);
	return path;
}

/* ---- signature --------------------------------------------------------- */

/* Runs cmd and returns the hex after "= " in its output, in out[65]. */
static void openssl_hex(const char *cmd, char out[65])
{
	char line[512], *eq;
	FILE *f = popen(cmd, "r");

	ck_assert_msg(f != NULL, "popen(%s)", cmd);
	line[0] = '\0';
	if (!fgets(line, sizeof(line), f))
		line[0] = '\0';
	ck_assert_int_eq(pclose(f), 0);
	eq = strstr(line, "= ");
	ck_assert_msg(eq != NULL, "unexpected openssl output '%s'", line);
	ck_assert_uint_ge(strlen(eq + 2), 64);
	memcpy(out, eq + 2, 64);
	out[64] = '\0';
}

/*
 * Splits a signature header as the EZThrottle SDK verifiers do: on ',',
 * then at the first '=', into a map where a repeated key keeps the last
 * value. Returns the number of parts.
 */
static int sdk_parse(const char *h, char t[32], char v1[128])
{
	char copy[WEBHOOK_SIGNATURE_MAX], *part, *save = NULL;
	int n = 0;

	t[0] = v1[0] = '\0';
	snprintf(copy, sizeof(copy), "%s", h);
	for (part = strtok_r(copy, ",", &save); part;
	     part = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(part, '=');

		n++;
		if (!eq)
			continue;
		*eq = '\0';
		if (strcmp(part, "t") == 0)
			snprintf(t, 32, "%s", eq + 1);
		else if (strcmp(part, "v1") == 0)
			snprintf(v1, 128, "%s", eq + 1);
	}
	return n;
}

START_TEST(test_sign_openssl)
{
	static const struct {
		const char *secret;
		int64_t t;
		const char *body;
	} v[] = {
		{ "whsec_0123456789abcdef", 1700000000,
		  "{\"job_id\":\"job_1\",\"status\":\"success\","
		  "\"response\":{\"body\":\"caf\xc3\xa9 'quoted' %s\\n\"}}" },
		{ "0123456789abcdef", 0, "" },
		{ "a secret, with = and , inside", 1234567890,
		  "line one\nline two\r\n\x01\x7f" },
		{ "\xc3\xa9t\xc3\xa9-secret-unicode-16", 4102444800LL, "x" },
	};
	char sig[WEBHOOK_SIGNATURE_MAX], t[32], v1[128], hex[65];
	char cmd[1024], msg[256], keyhex[256];
	size_t i, k;

	for (i = 0; i < N_ELEMS(v); i++) {
		size_t slen = strlen(v[i].secret), blen = strlen(v[i].body);
		const char *msgpath;
		int r, mlen;

		r = webhook_sign((const unsigned char *)v[i].secret, slen,
		                 v[i].t, v[i].body, blen, sig, sizeof(sig));
		ck_assert_int_eq(r, (int)strlen(sig));
		ck_assert_int_eq(sdk_parse(sig, t, v1), 2);
		ck_assert_int_eq(strtoll(t, NULL, 10), v[i].t);

		/* The signed message "<t>.<body>", hashed by openssl. */
		mlen = snprintf(msg, sizeof(msg), "%" PRId64 ".%s", v[i].t,
		                v[i].body);
		msgpath = write_file("msg", msg, (size_t)mlen, 0600);
		for (k = 0; k < slen; k++)
			sprintf(keyhex + 2 * k, "%02x",
			        (unsigned char)v[i].secret[k]);
		snprintf(cmd, sizeof(cmd), "openssl dgst -sha256 -mac HMAC "
		         "-macopt hexkey:%s '%s'", keyhex, msgpath);
		openssl_hex(cmd, hex);
		ck_assert_str_eq(v1, hex);
	}

	/* The form from the issue, for a shell-safe secret and body. */
	ck_assert_int_gt(webhook_sign((const unsigned char *)"0123456789abcdef",
	                              16, 1700000000, "{\"a\":1}", 7, sig,
	                              sizeof(sig)), 0);
	openssl_hex("printf '%s' '1700000000.{\"a\":1}' | "
	            "openssl dgst -sha256 -hmac '0123456789abcdef'", hex);
	sdk_parse(sig, t, v1);
	ck_assert_str_eq(v1, hex);
}
END_TEST

START_TEST(test_sign_format)
{
	static const unsigned char key[] = "0123456789abcdef";
	char sig[WEBHOOK_SIGNATURE_MAX], small[WEBHOOK_SIGNATURE_MAX];
	const char *p;
	int r, r2;

	r = webhook_sign(key, 16, 1700000000, "{}", 2, sig, sizeof(sig));
	ck_assert_int_eq(r, 2 + 10 + 4 + 64);
	ck_assert_int_eq(strncmp(sig, "t=1700000000,v1=", 16), 0);
	for (p = sig + 16; *p; p++)
		CHECK((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'));
	ck_assert_int_eq(p - sig, r);
	/* One v1 only: the SDKs would check just the last of several. */
	ck_assert_ptr_eq(strstr(sig, "v1="), sig + 13);
	ck_assert_ptr_null(strstr(sig + 14, "v1="));

	/* Exactly enough room, and one byte short. */
	r2 = webhook_sign(key, 16, 1700000000, "{}", 2, small, (size_t)r + 1);
	ck_assert_int_eq(r2, r);
	ck_assert_str_eq(small, sig);
	ck_assert_int_eq(webhook_sign(key, 16, 1700000000, "{}", 2, small,
	                              (size_t)r), -ENOSPC);

	/* The longest timestamp fits the documented maximum. */
	r = webhook_sign(key, 16, INT64_MIN, "", 0, sig, sizeof(sig));
	ck_assert_int_eq(r, 2 + 20 + 4 + 64);
	ck_assert_int_lt(r, WEBHOOK_SIGNATURE_MAX);

	/* Secret, time and body each change the signature. */
	webhook_sign(key, 16, 1, "{}", 2, sig, sizeof(sig));
	webhook_sign(key, 16, 2, "{}", 2, small, sizeof(small));
	ck_assert_str_ne(sig + 4, small + 4);
	webhook_sign(key, 16, 1, "{ }", 3, small, sizeof(small));
	ck_assert_str_ne(sig, small);
	webhook_sign((const unsigned char *)"0123456789abcdeF", 16, 1, "{}",
	             2, small, sizeof(small));
	ck_assert_str_ne(sig, small);
}
END_TEST

/* ---- secret file ------------------------------------------------------- */

START_TEST(test_secret_contents)
{
	static const struct {
		const char *data;
		size_t len;
		int want;
		const char *key;         /* expected key when want == 0 */
	} v[] = {
		{ "0123456789abcdef", 16, 0, "0123456789abcdef" },
		{ "0123456789abcdef\n", 17, 0, "0123456789abcdef" },
		{ "0123456789abcdef\r\n", 18, 0, "0123456789abcdef" },
		{ "0123456789abcdef\n\n", 18, 0, "0123456789abcdef" },
		{ " 0123456789abcdef \n", 19, 0, " 0123456789abcdef " },
		{ "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
		  "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
		  "\xc3\xa9\xc3\xa9", 32, 0,
		  "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
		  "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
		  "\xc3\xa9\xc3\xa9" },
		{ "", 0, -ENODATA, NULL },
		{ "\n", 1, -ENODATA, NULL },
		{ "\r\n\r\n", 4, -ENODATA, NULL },
		{ "0123456789abcde", 15, -ERANGE, NULL },
		{ "0123456789abcde\n", 16, -ERANGE, NULL },
		/* 16 bytes, 8 characters */
		{ "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
		  "\xc3\xa9", 16, -ERANGE, NULL },
		{ "0123456789abcdef\xff", 17, -EILSEQ, NULL },
		{ "01234567\0" "89abcdef", 17, -EILSEQ, NULL },
		{ "0123456789abcde\xc0\x80", 17, -EILSEQ, NULL },
	};
	struct webhook_secret s;
	bool exposed;
	size_t i;

	for (i = 0; i < N_ELEMS(v); i++) {
		const char *path = write_file("secret", v[i].data, v[i].len,
		                              0600);
		int r;

		memset(&s, 0x55, sizeof(s));
		exposed = true;
		r = webhook_secret_load(path, &s, &exposed);
		ck_assert_msg(r == v[i].want, "case %zu: got %d, want %d", i,
		              r, v[i].want);
		if (r == 0) {
			ck_assert_uint_eq(s.len, strlen(v[i].key));
			CHECK(memcmp(s.key, v[i].key, s.len) == 0);
			CHECK(!exposed);
			webhook_secret_done(&s);
			ck_assert_uint_eq(s.len, 0);
		} else {
			/* Outputs untouched on failure. */
			ck_assert_uint_eq(s.len, (size_t)0x5555555555555555ULL);
			CHECK(exposed);
		}
	}
}
END_TEST

START_TEST(test_secret_limits)
{
	char big[WEBHOOK_SECRET_MAX + 64];
	struct webhook_secret s;
	bool exposed;
	const char *path;

	memset(big, 'k', sizeof(big));
	path = write_file("max", big, WEBHOOK_SECRET_MAX, 0600);
	ck_assert_int_eq(webhook_secret_load(path, &s, &exposed), 0);
	ck_assert_uint_eq(s.len, WEBHOOK_SECRET_MAX);
	webhook_secret_done(&s);

	memcpy(big + WEBHOOK_SECRET_MAX, "\r\n", 2);
	path = write_file("max_nl", big, WEBHOOK_SECRET_MAX + 2, 0600);
	ck_assert_int_eq(webhook_secret_load(path, &s, &exposed), 0);
	ck_assert_uint_eq(s.len, WEBHOOK_SECRET_MAX);
	webhook_secret_done(&s);

	memset(big, 'k', sizeof(big));
	path = write_file("over", big, WEBHOOK_SECRET_MAX + 1, 0600);
	ck_assert_int_eq(webhook_secret_load(path, &s, &exposed), -EFBIG);
	path = write_file("huge", big, sizeof(big), 0600);
	ck_assert_int_eq(webhook_secret_load(path, &s, &exposed), -EFBIG);

	ck_assert_int_eq(webhook_secret_load("/nonexistent/secret", &s,
	                                     &exposed), -ENOENT);
	ck_assert_int_eq(webhook_secret_load(tmpdir, &s, &exposed), -EISDIR);

	ck_assert_str_eq(webhook_secret_error_str(-ENODATA), "is empty");
	ck_assert_str_eq(webhook_secret_error_str(-ERANGE),
	                 "is shorter than 16 characters");
	ck_assert_str_eq(webhook_secret_error_str(-EFBIG),
	                 "is longer than 1024 bytes");
	ck_assert_str_eq(webhook_secret_error_str(-EILSEQ),
	                 "is not UTF-8 text");
	ck_assert_str_eq(webhook_secret_error_str(-ENOENT),
	                 strerror(ENOENT));
}
END_TEST

START_TEST(test_secret_modes)
{
	static const struct {
		mode_t mode;
		bool exposed;
	} v[] = {
		{ 0400, false }, { 0600, false }, { 0640, false },
		{ 0440, false }, { 0644, true }, { 0604, true },
		{ 0620, true }, { 0602, true }, { 0666, true },
	};
	struct webhook_secret s;
	size_t i;

	for (i = 0; i < N_ELEMS(v); i++) {
		const char *path = write_file("secret", "0123456789abcdef\n",
		                              17, v[i].mode);
		bool exposed = !v[i].exposed;

		ck_assert_int_eq(webhook_secret_load(path, &s, &exposed), 0);
		ck_assert_msg(exposed == v[i].exposed, "mode %04o",
		              (unsigned)v[i].mode);
		webhook_secret_done(&s);
	}
}
END_TEST

/* ---- payload ----------------------------------------------------------- */

/* Builds the payload of res and parses it back; checks it is compact. */
static json_t *payload_json(const struct webhook_result *res)
{
	json_error_t jerr;
	char *s;
	size_t len;
	json_t *j;

	ck_assert_int_eq(webhook_payload(res, &s, &len), 0);
	ck_assert_uint_eq(len, strlen(s));
	CHECK(!strchr(s, '\n'));
	j = json_loadb(s, len, JSON_ALLOW_NUL, &jerr);
	ck_assert_msg(j != NULL, "payload is not JSON: %s", jerr.text);
	free(s);
	return j;
}

static json_t *resp_of(json_t *j)
{
	json_t *r = json_object_get(j, "response");

	ck_assert(json_is_object(r));
	return r;
}

/* The exact bytes of the seed's example: a regression on key order. */
START_TEST(test_payload_exact)
{
	struct webhook_result res = {
		.job_id = "job_1763674210055_853341",
		.idempotent_key = "custom_key_or_generated_hash",
		.end = {
			.status_code = 200,
			.headers_json =
				"[[\"Content-Type\", \"application/json\"]]",
			.body = "{\"result\": \"data\"}", .body_len = 18,
		},
	};
	char *s;
	size_t len;

	ck_assert_int_eq(webhook_payload(&res, &s, &len), 0);
	ck_assert_str_eq(s,
		"{\"job_id\":\"job_1763674210055_853341\","
		"\"idempotent_key\":\"custom_key_or_generated_hash\","
		"\"status\":\"success\","
		"\"response\":{\"status_code\":200,"
		"\"headers\":{\"content-type\":\"application/json\"},"
		"\"body\":\"{\\\"result\\\": \\\"data\\\"}\"},"
		"\"metadata\":{}}");
	ck_assert_uint_eq(len, strlen(s));
	free(s);
}
END_TEST

START_TEST(test_payload_utf8)
{
	/* ASCII, 2-, 3- and 4-byte characters, and a NUL. */
	static const char body[] = "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"
	                           " nul:\0end";
	struct webhook_result res = {
		.job_id = "j", .idempotent_key = "k", .end.status_code = 200,
		.end.body = body, .end.body_len = sizeof(body) - 1,
	};
	json_t *j = payload_json(&res), *r = resp_of(j), *b;

	b = json_object_get(r, "body");
	ck_assert(json_is_string(b));
	ck_assert_uint_eq(json_string_length(b), sizeof(body) - 1);
	CHECK(memcmp(json_string_value(b), body, sizeof(body) - 1) == 0);
	ck_assert_ptr_null(json_object_get(r, "body_encoding"));
	ck_assert_str_eq(json_string_value(json_object_get(j, "status")),
	                 "success");
	ck_assert_ptr_null(json_object_get(j, "error"));
	ck_assert_int_eq(json_object_size(json_object_get(r, "headers")), 0);
	json_decref(j);
}
END_TEST

START_TEST(test_payload_empty)
{
	struct webhook_result res = {
		.job_id = "j", .idempotent_key = "k", .end.status_code = 204,
		.end.body = NULL, .end.body_len = 0,
	};
	json_t *j, *r;

	j = payload_json(&res);
	r = resp_of(j);
	ck_assert_str_eq(json_string_value(json_object_get(r, "body")), "");
	ck_assert_ptr_null(json_object_get(r, "body_encoding"));
	ck_assert_int_eq(json_integer_value(json_object_get(r, "status_code")),
	                 204);
	json_decref(j);

	res.end.body = "";
	j = payload_json(&res);
	ck_assert_str_eq(json_string_value(json_object_get(resp_of(j),
	                                                   "body")), "");
	json_decref(j);
}
END_TEST

/* Decodes base64 with OpenSSL, not with the encoder under test. */
static size_t b64_decode(const char *s, unsigned char *out)
{
	size_t len = strlen(s), pad = 0;
	int n;

	if (len == 0)
		return 0;
	n = EVP_DecodeBlock(out, (const unsigned char *)s, (int)len);
	ck_assert_int_ge(n, 0);
	while (pad < 2 && len > pad && s[len - 1 - pad] == '=')
		pad++;
	return (size_t)n - pad;
}

START_TEST(test_payload_binary)
{
	unsigned char body[300], out[512];
	size_t len, n;

	for (n = 0; n < sizeof(body); n++)
		body[n] = (unsigned char)(255 - n);
	/* Every length mod 3, and the whole 0..255 byte range. */
	for (len = 1; len <= sizeof(body); len += (len < 8 ? 1 : 97)) {
		struct webhook_result res = {
			.job_id = "j", .idempotent_key = "k",
			.end.status_code = 200,
			.end.body = (const char *)body, .end.body_len = len,
		};
		json_t *j = payload_json(&res), *r = resp_of(j);
		const char *b64 = json_string_value(json_object_get(r, "body"));

		ck_assert_ptr_nonnull(b64);
		ck_assert_str_eq(json_string_value(json_object_get(
			r, "body_encoding")), "base64");
		ck_assert_uint_eq(strlen(b64), 4 * ((len + 2) / 3));
		n = b64_decode(b64, out);
		ck_assert_uint_eq(n, len);
		CHECK(memcmp(out, body, len) == 0);
		json_decref(j);
	}
}
END_TEST

START_TEST(test_payload_utf8_table)
{
	static const struct {
		const char *seq;
		bool valid;
	} v[] = {
		{ "\x7f", true },
		{ "\xc2\x80", true },                 /* U+0080 */
		{ "\xdf\xbf", true },                 /* U+07FF */
		{ "\xe0\xa0\x80", true },             /* U+0800 */
		{ "\xed\x9f\xbf", true },             /* U+D7FF */
		{ "\xee\x80\x80", true },             /* U+E000 */
		{ "\xef\xbf\xbf", true },             /* U+FFFF */
		{ "\xf0\x90\x80\x80", true },         /* U+10000 */
		{ "\xf4\x8f\xbf\xbf", true },         /* U+10FFFF */
		{ "\x80", false },                    /* lone continuation */
		{ "\xbf", false },
		{ "\xc0\x80", false },                /* overlong NUL */
		{ "\xc0\xaf", false },                /* overlong '/' */
		{ "\xc1\xbf", false },                /* overlong U+007F */
		{ "\xe0\x80\x80", false },            /* overlong */
		{ "\xe0\x9f\xbf", false },            /* overlong U+07FF */
		{ "\xed\xa0\x80", false },            /* surrogate U+D800 */
		{ "\xed\xbf\xbf", false },            /* surrogate U+DFFF */
		{ "\xed\xa0\xbd\xed\xb8\x80", false }, /* CESU-8 pair */
		{ "\xf0\x80\x80\x80", false },        /* overlong */
		{ "\xf0\x8f\xbf\xbf", false },        /* overlong U+FFFF */
		{ "\xf4\x90\x80\x80", false },        /* U+110000 */
		{ "\xf5\x80\x80\x80", false },
		{ "\xf8\x88\x80\x80\x80", false },    /* 5-byte form */
		{ "\xfe", false },
		{ "\xff", false },
		{ "\xc2", false },                    /* truncated */
		{ "\xe2\x82", false },
		{ "\xf0\x9f\x98", false },
		{ "\xc2\x41", false },                /* bad continuation */
		{ "\xe2\x28\xa1", false },
		{ "\xf0\x9f\x98\x41", false },
	};
	char body[32];
	size_t i, len;

	for (i = 0; i < N_ELEMS(v); i++) {
		struct webhook_result res = {
			.job_id = "j", .idempotent_key = "k",
			.end.status_code = 200, .end.body = body,
		};
		json_t *j, *r;
		bool base64;

		/* In the middle, and at the very end (truncation). */
		for (int at_end = 0; at_end < 2; at_end++) {
			len = (size_t)snprintf(body, sizeof(body),
			                       at_end ? "ab%s" : "a%sb",
			                       v[i].seq);
			res.end.body_len = len;
			j = payload_json(&res);
			r = resp_of(j);
			base64 = json_object_get(r, "body_encoding") != NULL;
			ck_assert_msg(base64 == !v[i].valid,
			              "case %zu at_end %d: base64=%d", i,
			              at_end, base64);
			json_decref(j);
		}
	}
}
END_TEST

START_TEST(test_payload_headers)
{
	static const char hdrs[] =
		"[[\"Content-Type\", \"application/json\"],"
		" [\"X-Multi\", \"one\"],"
		" [\"Set-Cookie\", \"a=1; Expires=Wed, 21 Oct 2026 07:28:00 GMT\"],"
		" [\"x-multi\", \"two\"],"
		" [\"Set-Cookie\", \"b=2\"],"
		" [\"X-MULTI\", \"\"],"
		" [\"X-Utf8\", \"caf\\u00e9\"],"
		" [\"X-Nul\", \"a\\u0000b\"],"
		" [\"Vary\", \"Accept\"]]";
	static const char *const order[] = {
		"content-type", "x-multi", "set-cookie", "x-utf8", "x-nul",
		"vary",
	};
	struct webhook_result res = {
		.job_id = "j", .idempotent_key = "k", .end.status_code = 200,
		.end.headers_json = hdrs, .end.body = "", .end.body_len = 0,
	};
	json_t *j = payload_json(&res), *h, *val;
	const char *key;
	size_t i = 0;

	h = json_object_get(resp_of(j), "headers");
	ck_assert_int_eq(json_object_size(h), N_ELEMS(order));
	json_object_foreach(h, key, val) {
		ck_assert(json_is_string(val));
		ck_assert_str_eq(key, order[i++]);
	}
	ck_assert_str_eq(json_string_value(json_object_get(h, "x-multi")),
	                 "one, two, ");
	ck_assert_str_eq(json_string_value(json_object_get(h, "set-cookie")),
	                 "a=1; Expires=Wed, 21 Oct 2026 07:28:00 GMT\nb=2");
	ck_assert_str_eq(json_string_value(json_object_get(h, "x-utf8")),
	                 "caf\xc3\xa9");
	ck_assert_uint_eq(json_string_length(json_object_get(h, "x-nul")), 3);
	ck_assert_str_eq(json_string_value(json_object_get(h, "vary")),
	                 "Accept");
	json_decref(j);
}
END_TEST

START_TEST(test_payload_bad_headers)
{
	static const char *const bad[] = {
		"", "not json", "{}", "[\"a\"]", "[[\"a\"]]",
		"[[\"a\", \"b\", \"c\"]]", "[[\"a\", 1]]", "[[null, \"v\"]]",
		"[[\"a\", \"v\"], 3]", "[[\"a\\u0000b\", \"v\"]]",
	};
	struct webhook_result res = {
		.job_id = "j", .idempotent_key = "k", .end.status_code = 200,
		.end.body = "", .end.body_len = 0,
	};
	char *s = NULL;
	size_t i, len = 7;

	for (i = 0; i < N_ELEMS(bad); i++) {
		res.end.headers_json = bad[i];
		ck_assert_msg(webhook_payload(&res, &s, &len) == -EINVAL,
		              "'%s' accepted", bad[i]);
		ck_assert_ptr_null(s);
		ck_assert_uint_eq(len, 7);
	}
	/* None and an empty list are the same. */
	res.end.headers_json = "[]";
	ck_assert_int_eq(webhook_payload(&res, &s, &len), 0);
	ck_assert_ptr_nonnull(strstr(s, "\"headers\":{}"));
	free(s);
}
END_TEST

/* Ids, key and error that are not UTF-8 are read as ISO-8859-1. */
START_TEST(test_payload_latin1)
{
	struct webhook_result res = {
		.job_id = "job_\xe9", .idempotent_key = "cl\xe9-\xff",
		.end = { .failed = true, .error_code = "x",
		         .error_message = "m\xe0", .status_code = 502,
		         .body = "", .body_len = 0 },
	};
	json_t *j = payload_json(&res);

	ck_assert_str_eq(json_string_value(json_object_get(j, "job_id")),
	                 "job_\xc3\xa9");
	ck_assert_str_eq(json_string_value(json_object_get(j,
	                                                   "idempotent_key")),
	                 "cl\xc3\xa9-\xc3\xbf");
	ck_assert_str_eq(json_string_value(json_object_get(
		json_object_get(j, "error"), "message")), "m\xc3\xa0");
	json_decref(j);
}
END_TEST

START_TEST(test_payload_failed)
{
	static const char err_body[] =
		"{\"error\":\"upstream_unreachable\","
		"\"message\":\"connection refused\"}\n";
	json_t *meta = json_pack("{s:s, s:i}", "order_id", "o-1", "n", 3);
	struct webhook_result res = {
		.job_id = "job_2", .idempotent_key = NULL,
		.end.failed = true, .end.error_code = "upstream_unreachable",
		.end.error_message = "connection refused after 6 attempts",
		.end.status_code = 502,
		.end.headers_json = "[[\"Content-Type\",\"application/json\"]]",
		.end.body = err_body, .end.body_len = sizeof(err_body) - 1,
		.metadata = meta,
	};
	json_t *j, *e, *r;

	ck_assert_ptr_nonnull(meta);
	j = payload_json(&res);
	ck_assert_str_eq(json_string_value(json_object_get(j, "status")),
	                 "failed");
	ck_assert(json_is_null(json_object_get(j, "idempotent_key")));
	e = json_object_get(j, "error");
	ck_assert_str_eq(json_string_value(json_object_get(e, "code")),
	                 "upstream_unreachable");
	ck_assert_str_eq(json_string_value(json_object_get(e, "message")),
	                 "connection refused after 6 attempts");
	r = resp_of(j);
	ck_assert_int_eq(json_integer_value(json_object_get(r, "status_code")),
	                 502);
	ck_assert_str_eq(json_string_value(json_object_get(r, "body")),
	                 err_body);
	ck_assert(json_equal(json_object_get(j, "metadata"), meta));
	json_decref(j);
	/* Borrowed, not stolen. */
	ck_assert_int_eq(meta->refcount, 1);
	json_decref(meta);
}
END_TEST

/* ---- X-EZTHROTTLE-WEBHOOK ---------------------------------------------- */

START_TEST(test_urls_good)
{
	static const char *const good[] = {
		"http://a.example/hook",
		"https://a.example",
		"HTTPS://A.Example:8443/p/q?x=1&y=%2C",
		"http://127.0.0.1:1/",
		"http://[::1]:65535/h",
		"https://[2001:db8::1]/",
		"http://host_name.local./x;y=z/@at/~t/!$&'()*+=:",
		"http://h:/empty-port",
		"http://h?only-query",
	};
	struct webhook_urls u;
	char err[256];
	size_t i;

	for (i = 0; i < N_ELEMS(good); i++) {
		const char *one[] = { good[i] };

		err[0] = '\0';
		ck_assert_msg(webhook_parse_urls(one, 1, &u, err,
		                                 sizeof(err)) == 0,
		              "'%s' refused: %s", good[i], err);
		ck_assert_uint_eq(u.n, 1);
		ck_assert_str_eq(u.url[0], good[i]);
		webhook_urls_done(&u);
	}
}
END_TEST

START_TEST(test_urls_bad)
{
	static const struct {
		const char *value;
		const char *msg;
	} bad[] = {
		{ "", "webhook 1 is empty: ''" },
		{ "  ", "webhook 1 is empty: ''" },
		{ "ftp://a.example/x", "webhook 1 must use http or https: "
		  "'ftp://a.example/x'" },
		{ "a.example/hook", "webhook 1 must be an absolute http or "
		  "https URL: 'a.example/hook'" },
		{ "/hook", "webhook 1 must be an absolute http or https URL: "
		  "'/hook'" },
		{ "http:/a.example", "webhook 1 must be an absolute http or "
		  "https URL: 'http:/a.example'" },
		{ "http://", "webhook 1 has no host: 'http://'" },
		{ "http:///x", "webhook 1 has no host: 'http:///x'" },
		{ "http://:80/x", "webhook 1 has no host: 'http://:80/x'" },
		{ "http://user:hunter2@a.example/",
		  "webhook 1 must not contain user info" },
		{ "http://@a.example/", "webhook 1 must not contain user info" },
		{ "http://a.example:0/", "webhook 1 has an invalid port: "
		  "'http://a.example:0/'" },
		{ "http://a.example:65536/", "webhook 1 has an invalid port: "
		  "'http://a.example:65536/'" },
		{ "http://a.example:8o/", "webhook 1 has an invalid port: "
		  "'http://a.example:8o/'" },
		{ "http://a.example:99999999999999999999/",
		  "webhook 1 has an invalid port: "
		  "'http://a.example:99999999999999999999/'" },
		{ "http://a!b/", "webhook 1 has an invalid host: 'http://a!b/'" },
		{ "http://[::1/", "webhook 1 has an invalid host: 'http://[::1/'" },
		{ "http://[zz::1]/", "webhook 1 has an invalid host: "
		  "'http://[zz::1]/'" },
		{ "http://[::1]x/", "webhook 1 has an invalid host: "
		  "'http://[::1]x/'" },
		{ "http://a.example/x#frag", "webhook 1 must not contain a "
		  "fragment: 'http://a.example/x#frag'" },
		{ "http://a.example/\"x\"", "webhook 1 has a character that "
		  "must be percent-encoded: 'http://a.example/\"x\"'" },
		{ "http://a.example/{x}", "webhook 1 has a character that "
		  "must be percent-encoded: 'http://a.example/{x}'" },
		{ "http://a.example/%zz", "webhook 1 has a bad "
		  "percent-encoding: 'http://a.example/%zz'" },
		{ "http://a.example/%2", "webhook 1 has a bad "
		  "percent-encoding: 'http://a.example/%2'" },
		{ "http://a.example/a b", "webhook 1 has a space, control or "
		  "non-ASCII character (percent-encode it): "
		  "'http://a.example/a b'" },
		{ "http://a.example/\x01", "webhook 1 has a space, control or "
		  "non-ASCII character (percent-encode it): "
		  "'http://a.example/?'" },
		{ "http://caf\xc3\xa9.example/", "webhook 1 has a space, "
		  "control or non-ASCII character (percent-encode it): "
		  "'http://caf??.example/'" },
		{ "http://a.example/x,", "webhook 2 is empty: ''" },
		{ "http://a.example/x,,http://b.example/",
		  "webhook 2 is empty: ''" },
		{ "http://a.example/x, http://a.example/x",
		  "webhook 2 is given twice: 'http://a.example/x'" },
	};
	struct webhook_urls u = { .n = 0 };
	char err[256];
	size_t i;

	for (i = 0; i < N_ELEMS(bad); i++) {
		const char *one[] = { bad[i].value };

		ck_assert_int_eq(webhook_parse_urls(one, 1, &u, err,
		                                    sizeof(err)), -EINVAL);
		ck_assert_str_eq(err, bad[i].msg);
		ck_assert_uint_eq(u.n, 0);
	}
}
END_TEST

START_TEST(test_urls_lists)
{
	static const char *const values[] = {
		"http://a.example/1, https://b.example/2",
		"\thttp://c.example/3\t",
		"http://d.example/4,http://e.example/5 , http://f.example/6",
	};
	static const char *const want[] = {
		"http://a.example/1", "https://b.example/2",
		"http://c.example/3", "http://d.example/4",
		"http://e.example/5", "http://f.example/6",
	};
	char long_url[WEBHOOK_URL_MAX + 2], err[256], many[1024];
	const char *one[1];
	struct webhook_urls u;
	size_t i, n;

	ck_assert_int_eq(webhook_parse_urls(values, 3, &u, err, sizeof(err)),
	                 0);
	ck_assert_uint_eq(u.n, N_ELEMS(want));
	for (i = 0; i < u.n; i++)
		ck_assert_str_eq(u.url[i], want[i]);
	webhook_urls_done(&u);
	ck_assert_uint_eq(u.n, 0);

	/* Numbering runs across field values. */
	one[0] = "ftp://x/";
	{
		const char *two[] = { "http://a.example/, http://b.example/",
		                      "ftp://x/" };

		ck_assert_int_eq(webhook_parse_urls(two, 2, &u, err,
		                                    sizeof(err)), -EINVAL);
		ck_assert_str_eq(err, "webhook 3 must use http or https: "
		                 "'ftp://x/'");
	}

	/* No value at all. */
	ck_assert_int_eq(webhook_parse_urls(one, 0, &u, err, sizeof(err)),
	                 -EINVAL);
	ck_assert_str_eq(err, "X-EZTHROTTLE-WEBHOOK names no webhook");

	/* Ten is the most. */
	for (n = 10; n <= 11; n++) {
		size_t o = 0;

		for (i = 0; i < n; i++)
			o += (size_t)snprintf(many + o, sizeof(many) - o,
			                      "%shttp://h%zu.example/",
			                      i ? "," : "", i);
		one[0] = many;
		if (n == WEBHOOK_MAX_URLS) {
			ck_assert_int_eq(webhook_parse_urls(one, 1, &u, err,
			                                    sizeof(err)), 0);
			ck_assert_uint_eq(u.n, WEBHOOK_MAX_URLS);
			webhook_urls_done(&u);
		} else {
			ck_assert_int_eq(webhook_parse_urls(one, 1, &u, err,
			                                    sizeof(err)),
			                 -EINVAL);
			ck_assert_str_eq(err, "X-EZTHROTTLE-WEBHOOK names more "
			                 "than 10 webhooks");
		}
	}

	/* Length: the longest accepted, one more refused and clipped. */
	memcpy(long_url, "http://a.example/", 17);
	memset(long_url + 17, 'x', WEBHOOK_URL_MAX - 17);
	long_url[WEBHOOK_URL_MAX] = '\0';
	one[0] = long_url;
	ck_assert_int_eq(webhook_parse_urls(one, 1, &u, err, sizeof(err)), 0);
	webhook_urls_done(&u);
	long_url[WEBHOOK_URL_MAX] = 'x';
	long_url[WEBHOOK_URL_MAX + 1] = '\0';
	ck_assert_int_eq(webhook_parse_urls(one, 1, &u, err, sizeof(err)),
	                 -EINVAL);
	ck_assert_str_eq(err, "webhook 1 is longer than 2048 bytes: "
	                 "'http://a.example/xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	                 "xxxxxxxxxxxxxx...'");

	/* A small message buffer keeps the reason, loses the URL. */
	one[0] = "ftp://a.example/a-long-path";
	ck_assert_int_eq(webhook_parse_urls(one, 1, &u, err, 32), -EINVAL);
	ck_assert_str_eq(err, "webhook 1 must use http or http");
}
END_TEST

START_TEST(test_quorum)
{
	static const struct {
		const char *s;
		size_t n;
		int want;
		unsigned v;
	} v[] = {
		{ "1", 1, 0, 1 }, { "2", 3, 0, 2 }, { "3", 3, 0, 3 },
		{ " 2\t", 3, 0, 2 }, { "02", 3, 0, 2 },
		{ "10", 10, 0, 10 },
		{ "0", 3, -ERANGE, 0 }, { "4", 3, -ERANGE, 0 },
		{ "11", 10, -ERANGE, 0 },
		{ "99999999999999999999999", 10, -ERANGE, 0 },
		{ "1", 0, -ERANGE, 0 },
		{ "", 3, -EINVAL, 0 }, { " ", 3, -EINVAL, 0 },
		{ "-1", 3, -EINVAL, 0 }, { "+1", 3, -EINVAL, 0 },
		{ "1.0", 3, -EINVAL, 0 }, { "1 2", 3, -EINVAL, 0 },
		{ "two", 3, -EINVAL, 0 }, { "0x1", 3, -EINVAL, 0 },
	};
	size_t i;

	for (i = 0; i < N_ELEMS(v); i++) {
		unsigned q = 777;
		int r = webhook_parse_quorum(v[i].s, v[i].n, &q);

		ck_assert_msg(r == v[i].want, "'%s' of %zu: %d", v[i].s,
		              v[i].n, r);
		ck_assert_uint_eq(q, r == 0 ? v[i].v : 777);
	}
}
END_TEST

#define JSON_PREFIX "X-EZTHROTTLE-METADATA is not valid JSON: "

START_TEST(test_metadata)
{
	static const struct {
		const char *s;
		int want;
		const char *msg;
	} v[] = {
		{ "{}", 0, NULL },
		{ " {\"order_id\": \"o-1\", \"n\": [1, {\"x\": null}]} ", 0,
		  NULL },
		{ "{\"k\":\"caf\xc3\xa9\"}", 0, NULL },
		{ "[1,2]", -EINVAL,
		  "X-EZTHROTTLE-METADATA must be a JSON object, got an array" },
		{ "\"s\"", -EINVAL,
		  "X-EZTHROTTLE-METADATA must be a JSON object, got a string" },
		{ "42", -EINVAL,
		  "X-EZTHROTTLE-METADATA must be a JSON object, got a number" },
		{ "1.5", -EINVAL,
		  "X-EZTHROTTLE-METADATA must be a JSON object, got a number" },
		{ "true", -EINVAL,
		  "X-EZTHROTTLE-METADATA must be a JSON object, got a boolean" },
		{ "null", -EINVAL,
		  "X-EZTHROTTLE-METADATA must be a JSON object, got null" },
		{ "", -EINVAL, NULL },
		{ "{", -EINVAL, NULL },
		{ "{\"a\":1} x", -EINVAL, NULL },
		{ "{\"a\":1}{}", -EINVAL, NULL },
		{ "{'a':1}", -EINVAL, NULL },
		{ "{\"a\":1,\"a\":2}", -EINVAL, NULL },
		{ "{\"a\":\"\xff\"}", -EINVAL, NULL },
		{ "{\"a\":\"\\u0000\"}", -EINVAL, NULL },
	};
	char err[256], *big;
	json_t *j;
	size_t i, n;

	for (i = 0; i < N_ELEMS(v); i++) {
		int r;

		j = NULL;
		err[0] = '\0';
		r = webhook_parse_metadata(v[i].s, strlen(v[i].s), &j, err,
		                           sizeof(err));
		ck_assert_msg(r == v[i].want, "'%s': %d %s", v[i].s, r, err);
		if (r == 0) {
			ck_assert(json_is_object(j));
			json_decref(j);
			continue;
		}
		ck_assert_ptr_null(j);
		if (v[i].msg)
			ck_assert_str_eq(err, v[i].msg);
		else
			ck_assert_msg(strncmp(err, JSON_PREFIX,
			                      strlen(JSON_PREFIX)) == 0,
			              "'%s': %s", v[i].s, err);
	}

	/* The size limit counts bytes of text, exactly. */
	big = malloc(WEBHOOK_METADATA_MAX + 2);
	ck_assert_ptr_nonnull(big);
	n = WEBHOOK_METADATA_MAX;
	memset(big, ' ', n);
	memcpy(big, "{\"k\":\"", 6);
	memset(big + 6, 'v', n - 8);
	memcpy(big + n - 2, "\"}", 2);
	ck_assert_int_eq(webhook_parse_metadata(big, n, &j, err, sizeof(err)),
	                 0);
	json_decref(j);
	big[n] = ' ';
	j = NULL;
	ck_assert_int_eq(webhook_parse_metadata(big, n + 1, &j, err,
	                                        sizeof(err)), -E2BIG);
	ck_assert_ptr_null(j);
	ck_assert_str_eq(err, "X-EZTHROTTLE-METADATA is over the limit of "
	                 "65536 bytes");
	free(big);
}
END_TEST

/* ---- schedule ---------------------------------------------------------- */

START_TEST(test_schedule_table)
{
	/* The configuration's default: [0s, 1m, 5m, 15m, 1h], 24h. */
	static const int64_t sched[] = {
		0, MIN_MS, 5 * MIN_MS, 15 * MIN_MS, HOUR_MS
	};
	static const int64_t T = 1000000;  /* first attempt */
	static const int64_t GIVE_UP = 24 * HOUR_MS;
	static const struct {
		unsigned attempt;
		int64_t now, want;
	} v[] = {
		/* attempt 0: the first delivery, at once */
		{ 0, T, T },
		/* after each failure, the next step from the failure */
		{ 1, T + 200, T + 200 + MIN_MS },
		{ 2, T + MIN_MS, T + MIN_MS + 5 * MIN_MS },
		{ 3, T + 7 * MIN_MS, T + 7 * MIN_MS + 15 * MIN_MS },
		{ 4, T + 22 * MIN_MS, T + 22 * MIN_MS + HOUR_MS },
		/* then the last step repeats */
		{ 5, T + 82 * MIN_MS, T + 142 * MIN_MS },
		{ 6, T + 142 * MIN_MS, T + 202 * MIN_MS },
		{ 1000, T + 20 * HOUR_MS, T + 21 * HOUR_MS },
		{ UINT32_MAX, T + 20 * HOUR_MS, T + 21 * HOUR_MS },
		/* a step that would pass the deadline ends on it */
		{ 25, T + 23 * HOUR_MS, T + 24 * HOUR_MS },
		{ 25, T + 23 * HOUR_MS + 1, T + GIVE_UP },
		{ 25, T + GIVE_UP - 1, T + GIVE_UP },
		{ 1, T + GIVE_UP - 1, T + GIVE_UP },
		/* at or past the deadline: give up */
		{ 26, T + GIVE_UP, -1 },
		{ 26, T + GIVE_UP + 1, -1 },
		{ 1, T + 48 * HOUR_MS, -1 },
	};
	size_t i;

	for (i = 0; i < N_ELEMS(v); i++) {
		int64_t got = webhook_next_attempt(sched, N_ELEMS(sched),
		                                   v[i].attempt, T, GIVE_UP,
		                                   v[i].now);

		ck_assert_msg(got == v[i].want, "case %zu: got %" PRId64
		              ", want %" PRId64, i, got, v[i].want);
	}
}
END_TEST

START_TEST(test_schedule_edges)
{
	static const int64_t one[] = { 30 * 1000 };
	static const int64_t neg[] = { -5, 10 };
	static const int64_t huge[] = { INT64_MAX };

	/* A one-step schedule repeats from the start. */
	ck_assert_int_eq(webhook_next_attempt(one, 1, 0, 0, HOUR_MS, 500),
	                 30500);
	ck_assert_int_eq(webhook_next_attempt(one, 1, 7, 0, HOUR_MS, 500),
	                 30500);
	/* attempt 0 ignores the give-up clock: nothing was tried yet. */
	ck_assert_int_eq(webhook_next_attempt(one, 1, 0, 0, 0, HOUR_MS),
	                 HOUR_MS + 30000);
	/* give_up_after 0: one attempt, then stop. */
	ck_assert_int_eq(webhook_next_attempt(one, 1, 1, 100, 0, 100), -1);
	/* Negative steps count as 0. */
	ck_assert_int_eq(webhook_next_attempt(neg, 2, 0, 0, HOUR_MS, 7), 7);
	ck_assert_int_eq(webhook_next_attempt(neg, 2, 1, 0, HOUR_MS, 7), 17);
	/* No overflow with absurd values. */
	ck_assert_int_eq(webhook_next_attempt(huge, 1, 0, 0, HOUR_MS, 5),
	                 INT64_MAX);
	ck_assert_int_eq(webhook_next_attempt(huge, 1, 1, 0, HOUR_MS, 5),
	                 HOUR_MS);
	ck_assert_int_eq(webhook_next_attempt(huge, 1, 1, INT64_MAX - 10,
	                                      INT64_MAX, INT64_MAX - 10),
	                 INT64_MAX);
}
END_TEST

static Suite *webhook_suite(void)
{
	Suite *s = suite_create("webhook");
	TCase *tc;

	tc = tcase_create("sign");
	tcase_add_checked_fixture(tc, tmp_setup, tmp_teardown);
	tcase_add_test(tc, test_sign_openssl);
	tcase_add_test(tc, test_sign_format);
	suite_add_tcase(s, tc);

	tc = tcase_create("secret");
	tcase_add_checked_fixture(tc, tmp_setup, tmp_teardown);
	tcase_add_test(tc, test_secret_contents);
	tcase_add_test(tc, test_secret_limits);
	tcase_add_test(tc, test_secret_modes);
	suite_add_tcase(s, tc);

	tc = tcase_create("payload");
	tcase_add_test(tc, test_payload_exact);
	tcase_add_test(tc, test_payload_utf8);
	tcase_add_test(tc, test_payload_empty);
	tcase_add_test(tc, test_payload_binary);
	tcase_add_test(tc, test_payload_utf8_table);
	tcase_add_test(tc, test_payload_headers);
	tcase_add_test(tc, test_payload_bad_headers);
	tcase_add_test(tc, test_payload_latin1);
	tcase_add_test(tc, test_payload_failed);
	suite_add_tcase(s, tc);

	tc = tcase_create("fields");
	tcase_add_test(tc, test_urls_good);
	tcase_add_test(tc, test_urls_bad);
	tcase_add_test(tc, test_urls_lists);
	tcase_add_test(tc, test_quorum);
	tcase_add_test(tc, test_metadata);
	suite_add_tcase(s, tc);

	tc = tcase_create("schedule");
	tcase_add_test(tc, test_schedule_table);
	tcase_add_test(tc, test_schedule_edges);
	suite_add_tcase(s, tc);
	return s;
}

TESTLIB_MAIN(webhook_suite)

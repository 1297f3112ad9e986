/*
 * check_cred.c - credential hashing and the salt file.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cred.h"
#include "testlib.h"

static char dir[] = "/tmp/check_cred.XXXXXX";

static void setup(void)
{
	ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void)
{
	char p[256];

	snprintf(p, sizeof(p), "%s/state/salt", dir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/state", dir);
	rmdir(p);
	rmdir(dir);
	strcpy(dir, "/tmp/check_cred.XXXXXX");
}

/* Expected value from Python: hmac.new(bytes(range(32)), msg, sha256). */
START_TEST(test_hmac_vector)
{
	unsigned char salt[CRED_SALT_LEN], h[CRED_HASH_LEN];
	const char *msg = "Bearer sk_test_123";
	static const char want[] =
		"f783019618dda36c73f72c73f3d4cae152bc3b8802da94230bde97b012e5283f";
	char hex[2 * CRED_HASH_LEN + 1];
	char shown[CRED_DISPLAY_LEN + 1];

	for (int i = 0; i < CRED_SALT_LEN; i++)
		salt[i] = (unsigned char)i;
	cred_hash(salt, msg, strlen(msg), h);
	for (int i = 0; i < CRED_HASH_LEN; i++)
		sprintf(hex + 2 * i, "%02x", h[i]);
	ck_assert_str_eq(hex, want);
	cred_display(h, shown);
	ck_assert_str_eq(shown, "f783019618dd");
}
END_TEST

START_TEST(test_different_keys_differ)
{
	unsigned char salt[CRED_SALT_LEN] = { 1 }, a[CRED_HASH_LEN],
		b[CRED_HASH_LEN];

	cred_hash(salt, "key-a", 5, a);
	cred_hash(salt, "key-b", 5, b);
	ck_assert(memcmp(a, b, CRED_HASH_LEN) != 0);
	salt[0] = 2;
	cred_hash(salt, "key-a", 5, b);
	ck_assert(memcmp(a, b, CRED_HASH_LEN) != 0);
}
END_TEST

START_TEST(test_salt_created_private_and_kept)
{
	unsigned char s1[CRED_SALT_LEN], s2[CRED_SALT_LEN],
		zero[CRED_SALT_LEN] = { 0 };
	char state[256], path[300];
	struct stat st;

	snprintf(state, sizeof(state), "%s/state", dir);
	ck_assert_int_eq(cred_salt_load(state, s1), 0);
	ck_assert(memcmp(s1, zero, CRED_SALT_LEN) != 0);
	snprintf(path, sizeof(path), "%s/salt", state);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0600);
	ck_assert_int_eq(st.st_size, CRED_SALT_LEN);
	ck_assert_int_eq(stat(state, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0700);
	/* A restart reads the same salt: queues keep their identity. */
	ck_assert_int_eq(cred_salt_load(state, s2), 0);
	ck_assert(memcmp(s1, s2, CRED_SALT_LEN) == 0);
}
END_TEST

START_TEST(test_salt_short_file_refused)
{
	unsigned char s[CRED_SALT_LEN];
	char state[256], path[300];
	FILE *f;

	snprintf(state, sizeof(state), "%s/state", dir);
	ck_assert_int_eq(mkdir(state, 0700), 0);
	snprintf(path, sizeof(path), "%s/salt", state);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs("short", f);
	fclose(f);
	ck_assert_int_lt(cred_salt_load(state, s), 0);
}
END_TEST

static Suite *cred_suite(void)
{
	Suite *s = suite_create("cred");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_hmac_vector);
	tcase_add_test(tc, test_different_keys_differ);
	tcase_add_test(tc, test_salt_created_private_and_kept);
	tcase_add_test(tc, test_salt_short_file_refused);
	suite_add_tcase(s, tc);
	return s;
}

TESTLIB_MAIN(cred_suite)

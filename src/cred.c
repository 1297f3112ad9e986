/*
 * cred.c - credential keys.
 */
#include <errno.h>
#include <fcntl.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cred.h"
#include "fileio.h"
#include "hmac.h"

static int read_all(int fd, unsigned char *p, size_t n)
{
	while (n > 0) {
		ssize_t r = read(fd, p, n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? -errno : -EINVAL;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

/* Creates the salt file atomically: a crash never leaves half a salt. */
static int salt_create(const char *path, unsigned char salt[CRED_SALT_LEN])
{
	if (RAND_bytes(salt, CRED_SALT_LEN) != 1)
		return -EIO;
	return file_write_atomic(path, salt, CRED_SALT_LEN, 0600, NULL);
}

int cred_salt_load(const char *state_dir, unsigned char salt[CRED_SALT_LEN])
{
	char path[4096];
	int fd, r;

	if (mkdir(state_dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	if (snprintf(path, sizeof(path), "%s/salt", state_dir) >=
	    (int)sizeof(path))
		return -ENAMETOOLONG;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno != ENOENT)
			return -errno;
		return salt_create(path, salt);
	}
	r = read_all(fd, salt, CRED_SALT_LEN);
	close(fd);
	return r;
}

void cred_hash(const unsigned char salt[CRED_SALT_LEN], const char *value,
               size_t len, unsigned char out[CRED_HASH_LEN])
{
	struct hmac_part msg = { value, len };

	/* As before with HMAC(): out is left as it was if OpenSSL fails. */
	(void)hmac_sha256(salt, CRED_SALT_LEN, &msg, 1, out);
}

void cred_display(const unsigned char *h, char out[CRED_DISPLAY_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";

	for (int i = 0; i < CRED_DISPLAY_LEN / 2; i++) {
		out[2 * i] = hex[h[i] >> 4];
		out[2 * i + 1] = hex[h[i] & 15];
	}
	out[CRED_DISPLAY_LEN] = '\0';
}

/*
 * fileio.h - small files written whole: a crash leaves the old file or
 * the new one, never half of one. For the salt and the local CA.
 */
#ifndef SLUICE_FILEIO_H
#define SLUICE_FILEIO_H

#include <stddef.h>
#include <sys/stat.h>

/* write(2) until all n bytes are written. 0 or negative errno. */
int file_write_all(int fd, const void *p, size_t n);

/*
 * Writes data to a new file beside path and renames it to path: mkstemp
 * makes it 0600 with O_EXCL before a byte is written, then it gets mode
 * and, when the process runs as root and owner (may be NULL) is not
 * root's, owner's user and group; it is fsynced before the rename. 0 or
 * negative errno (the new file removed).
 */
int file_write_atomic(const char *path, const void *data, size_t len,
                      mode_t mode, const struct stat *owner);

/* fsync(2) of the directory dir: its renames are durable. */
int file_sync_dir(const char *dir);

#endif

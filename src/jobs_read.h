/*
 * jobs_read.h - the job store's reads (see jobs.h, whose read verbs call
 * these). Two read-only connections that never wait for the writer: one
 * for jobs, pages and recovery, one of its own for a done job's end, so
 * the delivery thread never waits behind a page of recovery. Any thread.
 */
#ifndef SLUICE_JOBS_READ_H
#define SLUICE_JOBS_READ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "jobs_types.h"

struct jobs_reader;

/*
 * Opens both connections to the store at path (the writer created it).
 * 0 or a negative errno.
 */
int jobs_reader_open(const char *path, struct jobs_reader **ret_reader);

/* Closes and frees. Takes NULL. */
void jobs_reader_free(struct jobs_reader *rd);

/* The verbs of jobs.h of the same names, without "reader_". */
int jobs_reader_get(struct jobs_reader *rd, const char *id,
                    struct job **ret_job);
int jobs_reader_get_result(struct jobs_reader *rd, const char *id,
                           struct job **ret_job);
int jobs_reader_load_pending(struct jobs_reader *rd,
                             int (*cb)(void *arg, struct job *jb),
                             void *arg);
int jobs_reader_unfinished(struct jobs_reader *rd, uint64_t *ret_jobs,
                           uint64_t *ret_bytes, int64_t *ret_last);
int jobs_reader_load_unfinished(struct jobs_reader *rd, int64_t after,
                                int64_t last, size_t max_jobs,
                                uint64_t max_bytes,
                                int (*cb)(void *arg, struct job *jb),
                                void *arg, int64_t *ret_after,
                                bool *ret_done);
int jobs_reader_load_deliveries(struct jobs_reader *rd,
                                int (*cb)(void *arg, struct job *jb),
                                void *arg);

#endif

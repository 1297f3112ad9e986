/*
 * jobrun_json.h - a stored job as the admin listener shows it
 * (GET /jobs/<id>).
 */
#ifndef SLUICE_JOBRUN_JSON_H
#define SLUICE_JOBRUN_JSON_H

#include <stdbool.h>

#include "job.h"

/* True when id looks like a job id ("job_" and 44 lower-case hex). */
bool job_id_valid(const char *id);

/*
 * GET /jobs/<id>: the job as a malloc'd JSON document, without its
 * request headers or body. NULL on OOM.
 */
char *job_to_json(const struct job *jb);

#endif

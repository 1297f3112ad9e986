/*
 * log.h - one line per event on stderr: "level: text key=value".
 * journald adds the timestamp. The level is the one global of the daemon.
 */
#ifndef SLUICE_LOG_H
#define SLUICE_LOG_H

#include "config.h"

#define LOG_FMT(a, b) __attribute__((format(printf, a, b)))

void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Parses "error", "warn", "info", "debug". 0 or -EINVAL. */
int log_level_parse(const char *s, enum log_level *ret);

void log_error(const char *fmt, ...) LOG_FMT(1, 2);
void log_warn(const char *fmt, ...) LOG_FMT(1, 2);
void log_info(const char *fmt, ...) LOG_FMT(1, 2);
void log_debug(const char *fmt, ...) LOG_FMT(1, 2);
/* As above, with ": strerror(errno)" appended. */
void log_error_errno(const char *fmt, ...) LOG_FMT(1, 2);
void log_warn_errno(const char *fmt, ...) LOG_FMT(1, 2);

#endif

/*
 * log.c - stderr logging. Each line is written with a single write(2) so
 * lines from different threads never interleave.
 */

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

/* Set again by a reload while other threads log: relaxed atomics. */
static _Atomic int current_level = LOG_LEVEL_INFO;

static const char *const level_names[] = {
	[LOG_LEVEL_ERROR] = "error",
	[LOG_LEVEL_WARN] = "warn",
	[LOG_LEVEL_INFO] = "info",
	[LOG_LEVEL_DEBUG] = "debug",
};

void log_set_level(enum log_level level)
{
	atomic_store_explicit(&current_level, (int)level, memory_order_relaxed);
}

enum log_level log_get_level(void)
{
	return (enum log_level)atomic_load_explicit(&current_level,
	                                            memory_order_relaxed);
}

int log_level_parse(const char *s, enum log_level *ret)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]);
	     i++) {
		if (strcmp(s, level_names[i]) == 0) {
			*ret = (enum log_level)i;
			return 0;
		}
	}
	return -EINVAL;
}

static void log_line(enum log_level level, int errnum, const char *fmt,
                     va_list ap)
{
	char buf[2048];
	int n, m;

	if ((int)level > atomic_load_explicit(&current_level,
	                                      memory_order_relaxed))
		return;
	n = snprintf(buf, sizeof(buf), "%s: ", level_names[level]);
	m = vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
	if (m < 0)
		return;
	n += m;
	if (n > (int)sizeof(buf) - 2)
		n = (int)sizeof(buf) - 2;
	if (errnum) {
		m = snprintf(buf + n, sizeof(buf) - (size_t)n, ": %s",
		             strerror(errnum));
		n += m;
		if (n > (int)sizeof(buf) - 2)
			n = (int)sizeof(buf) - 2;
	}
	buf[n++] = '\n';
	/* Nothing useful to do when stderr is gone. */
	if (write(STDERR_FILENO, buf, (size_t)n) < 0)
		return;
}

#define LOG_FN(name, level, with_errno)                        \
	void name(const char *fmt, ...)                        \
	{                                                      \
		int saved = errno;                             \
		va_list ap;                                    \
		va_start(ap, fmt);                             \
		log_line(level, with_errno ? saved : 0, fmt, ap); \
		va_end(ap);                                    \
		errno = saved;                                 \
	}

LOG_FN(log_error, LOG_LEVEL_ERROR, 0)
LOG_FN(log_warn, LOG_LEVEL_WARN, 0)
LOG_FN(log_info, LOG_LEVEL_INFO, 0)
LOG_FN(log_debug, LOG_LEVEL_DEBUG, 0)
LOG_FN(log_error_errno, LOG_LEVEL_ERROR, 1)
LOG_FN(log_warn_errno, LOG_LEVEL_WARN, 1)

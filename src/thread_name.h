/*
 * thread_name.h - names the calling thread (at most 15 bytes), so that
 * top -H, ps -L and /proc/PID/task show which of sluiced's threads works.
 */
#ifndef SLUICE_THREAD_NAME_H
#define SLUICE_THREAD_NAME_H

#include <pthread.h>

static inline void thread_name(const char *name)
{
	pthread_setname_np(pthread_self(), name);
}

#endif

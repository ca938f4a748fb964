/* SPDX-License-Identifier: MIT */
/*
 * Scope-bound cleanup, in the spirit of systemd's: a variable declared with
 * _cleanup_free_ / _cleanup_close_ / ... is released when it goes out of
 * scope; TAKE_FD()/TAKE_PTR() hand ownership on and leave -1/NULL behind.
 */
#pragma once

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))

static inline void freep(void *p)
{
	free(*(void **)p);
}

/* Closes fd if it is valid, keeps errno. Returns -1 for "fd = closep(fd)". */
static inline int safe_close(int fd)
{
	if (fd >= 0) {
		int saved = errno;
		close(fd);
		errno = saved;
	}
	return -1;
}

static inline void closep(int *fd)
{
	safe_close(*fd);
}

#define _cleanup_free_ _cleanup_(freep)
#define _cleanup_close_ _cleanup_(closep)

#define TAKE_FD(fd) __extension__({ int fd_ = (fd); (fd) = -1; fd_; })
#define TAKE_PTR(p) __extension__({ __typeof__(p) p_ = (p); (p) = NULL; p_; })

#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func)			\
	static inline void func##p(type *p)			\
	{							\
		if (*p)						\
			func(*p);				\
	}

#define ELEMENTSOF(a) (sizeof(a) / sizeof((a)[0]))

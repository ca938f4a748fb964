/* SPDX-License-Identifier: MIT */
/* Helpers for tests and fuzz targets that count their own fds and make memfds. */
#pragma once

#include <dirent.h>
#include <stddef.h>
#include <sys/mman.h>
#include <unistd.h>

/* The fds this process has open (/proc/self/fd, less the DIR's own). */
static inline int self_fd_count(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	while (d && (e = readdir(d)))
		n += e->d_name[0] != '.';
	if (d)
		closedir(d);
	return n - 1;
}

/* A memfd of size bytes (the caller closes it), or -1. */
static inline int memfd_of_size(size_t size)
{
	int fd = memfd_create("test", MFD_CLOEXEC);

	if (fd >= 0 && ftruncate(fd, (off_t)size) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

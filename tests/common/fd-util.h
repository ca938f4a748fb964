/* SPDX-License-Identifier: MIT */
/* Helpers for tests and fuzz targets that count their own fds, make memfds and send fds. */
#pragma once

#include <dirent.h>
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
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

/*
 * Sends len bytes of data with fds[0..n) in one SCM_RIGHTS (n at most 2; 0:
 * none), with flags (MSG_NOSIGNAL, MSG_DONTWAIT) on a socket of any type:
 * what sendmsg() returns. Unlike common/fdmsg.c's fdmsg_send(), it sends
 * more fds than a protocol takes, and it may block.
 */
static inline ssize_t send_fds(int sock, const void *data, size_t len, const int *fds, unsigned n, int flags)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(2 * sizeof(int))];
	} u;
	struct iovec iov = { .iov_base = (void *)data, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (n > 2) {
		errno = EINVAL;
		return -1;
	}
	if (n) {
		struct cmsghdr *cm;
		memset(&u, 0, sizeof(u));
		mh.msg_control = u.buf;
		mh.msg_controllen = CMSG_SPACE(n * sizeof(int));
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(n * sizeof(int));
		memcpy(CMSG_DATA(cm), fds, n * sizeof(int));
	}
	return sendmsg(sock, &mh, flags);
}

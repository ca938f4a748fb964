/* SPDX-License-Identifier: MIT */
/*
 * What the libFuzzer targets share: check(), the input read a byte at a
 * time, fds of several kinds, and the frame of LLVMFuzzerTestOneInput (set
 * up once; every input run with the process's fds the same before and
 * after). fd-util.h's send_fds() sends a message with fds. Define FUZZ_NAME
 * ("fuzz-access") before including it; include it once, in the target's
 * own file.
 */
#pragma once

#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fd-util.h"

#ifndef FUZZ_NAME
#error "define FUZZ_NAME before including fuzz-util.h"
#endif

/* Aborts, saying where, when x is false: the fuzzer keeps the input. */
#define check(x) do {								\
	if (!(x)) {								\
		fprintf(stderr, FUZZ_NAME ": %s:%d: %s\n", __FILE__, __LINE__, #x);	\
		abort();							\
	}									\
} while (0)

/* The fuzz data not yet read. */
struct input {
	const uint8_t *p;
	size_t left;
};

/* The next byte; 0 once the input is used up. */
static inline uint8_t byte(struct input *in)
{
	if (!in->left)
		return 0;
	in->left--;
	return *in->p++;
}

/* The next n bytes (at most 8), big-endian. */
static inline uint64_t bytes(struct input *in, unsigned n)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < n; i++)
		v = v << 8 | byte(in);
	return v;
}

/* What a client or peer may send where an fd of another kind, or none, is expected. */
enum fuzz_fd_kind {
	FUZZ_FD_MEMFD,
	FUZZ_FD_PIPE,
	FUZZ_FD_NULL,                   /* /dev/null */
	FUZZ_FD_SOCKET,
};

/*
 * A new fd of this kind (the caller closes it), or -1: a memfd of 64 times
 * the next size_bytes bytes of the input (0: empty), the read end of a pipe,
 * /dev/null, or one end of a stream socket pair.
 */
static inline int fuzz_new_fd(struct input *in, enum fuzz_fd_kind kind, unsigned size_bytes)
{
	int fd = -1, pair[2];

	switch (kind) {
	case FUZZ_FD_MEMFD:
		fd = memfd_create("fuzz", MFD_CLOEXEC);
		if (fd >= 0 && size_bytes && ftruncate(fd, (off_t)(bytes(in, size_bytes) * 64)) < 0) {
			close(fd);
			fd = -1;
		}
		break;
	case FUZZ_FD_PIPE:
		if (pipe2(pair, O_CLOEXEC) == 0) {
			close(pair[1]);
			fd = pair[0];
		}
		break;
	case FUZZ_FD_NULL:
		fd = open("/dev/null", O_RDWR | O_CLOEXEC);
		break;
	case FUZZ_FD_SOCKET:
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) == 0) {
			close(pair[1]);
			fd = pair[0];
		}
		break;
	}
	return fd;
}

/*
 * The body of LLVMFuzzerTestOneInput: setup() the first time, and run(warm)
 * then when warm is not NULL (what sd-event opens once, a clock's timerfd,
 * is not a leak); then run(data). The process must have the fds after the
 * input that it had before.
 */
static inline int fuzz_one_input(const uint8_t *data, size_t size, void (*setup)(void),
				 void (*run)(struct input *in), const struct input *warm)
{
	static bool ready;
	struct input in = { data, size };
	int fds;

	if (!ready) {
		setup();
		if (warm) {
			struct input w = *warm;
			run(&w);
		}
		ready = true;
	}
	fds = self_fd_count();
	check(fds > 0);
	run(&in);
	if (self_fd_count() != fds) {
		fprintf(stderr, FUZZ_NAME ": %d fds open before the input, %d after\n", fds, self_fd_count());
		abort();
	}
	return 0;
}

/* SPDX-License-Identifier: MIT */
/* Buffers (buffers.c). */
#pragma once

#include <stdbool.h>

#include <systemd/sd-bus.h>

#include "internal.h"

/*
 * Whether this client can map a buffer of size bytes (mmap takes a size_t,
 * lseek answers an off_t): a 32-bit client cannot map one above 4 GiB - 1.
 * Such a buffer is refused, never truncated.
 */
bool size_fits(uint64_t size);
/* Sets *e to TooLarge for size ("at least" size with least), and returns -EFBIG. */
int size_refused(uint64_t size, bool least, sd_bus_error *e);
/* The same as b's error (set_error()): -EFBIG. */
int refuse_size(struct dmabroker *b, uint64_t size, bool least);
/*
 * 0 when this client can map buf, a buffer just made or opened and not yet
 * linked; otherwise gives it back to the daemon, frees it and records
 * TooLarge: -EFBIG.
 */
int buffer_refused(struct dmabroker_buffer *buf);
struct dmabroker_buffer *buffer_new(struct dmabroker *b);
/* Makes buf one of b's buffers (dmabroker_disconnect() frees it, a restart reclaims it). */
void buffer_link(struct dmabroker_buffer *buf);
void buffer_free(struct dmabroker_buffer *buf);
/* An allocated buffer (id, fd, size, modifier and planes set) takes the rest from its descriptor, and is ours. */
void allocated(struct dmabroker_buffer *buf, const struct dmabroker_alloc_desc *d, const char *backend,
	       bool dmabuf, struct dmabroker_buffer **ret);
int read_planes(sd_bus_message *m, struct dmabroker_buffer *buf);
/* A CLOEXEC duplicate of fd (borrowed from a message) in *ret. */
int take_fd(int fd, int *ret);
/* The Moved signal, on the bus or the direct connection. */
int buffer_on_moved(sd_bus_message *m, void *userdata, sd_bus_error *ret_error);

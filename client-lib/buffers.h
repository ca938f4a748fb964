/* SPDX-License-Identifier: MIT */
/* Buffers (buffers.c). */
#pragma once

#include <stdbool.h>

#include <systemd/sd-bus.h>

#include "internal.h"

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

/* SPDX-License-Identifier: MIT */
/*
 * How the calls that have more than one encoding reach the daemon:
 * Allocate, BeginAccess, the one-way EndAccess and Release. Three
 * transports implement them: the bus, the direct connection (both D-Bus,
 * bus.c) and the access channel (binary, channel.c). The connection's
 * state names one, b->transport, set where the state changes
 * (transport_update()): the bus after dmabroker_connect(), the channel
 * after dmabroker_open_direct() (the direct connection when the channel is
 * off or broke), the bus again while a restarted daemon is awaited. A
 * public call goes through b->transport; every other call is D-Bus only,
 * on the connection calls() names, through call() (connection.c).
 *
 * Order: D-Bus calls are answered in order, so whatever the channel sends
 * after one is seen after it. The other way round, the channel's one-way
 * END and RELEASE are on another socket than the D-Bus call that follows:
 * call() runs the transport's sync first, which waits until the daemon
 * has read them (a Release, then an OpenToken that the released bytes make
 * room for).
 */
#pragma once

#include <stdint.h>

#include "internal.h"

/*
 * A transport's answer besides 0 and a negative errno (recorded as the
 * last error): it broke, said so, and the connection's state moved on;
 * the call goes again through the transport the state now names.
 */
#define TRANSPORT_MOVED 1

struct transport {
	const char *name;
	int (*allocate)(struct dmabroker *b, const struct dmabroker_alloc_desc *d, struct dmabroker_buffer **ret);
	int (*begin)(struct dmabroker_buffer *buf, uint32_t mode, uint32_t flags, uint64_t *ret_grant,
		     int *ret_fence);
	/* release_fence: a sync_file (checked) or -1 */
	int (*end_oneway)(struct dmabroker *b, uint64_t grant, int release_fence);
	/* Tells the daemon; buf stays the caller's to free. */
	int (*release)(struct dmabroker_buffer *buf);
	/* Until the daemon read what this transport sent one-way: 0 or <0. NULL: in order already. */
	int (*sync)(struct dmabroker *b);
};

extern const struct transport bus_transport, direct_transport, channel_transport;

/* Names b's transport after its state: the channel if open, else the direct connection if open, else the bus. */
void transport_update(struct dmabroker *b);
/* Before a D-Bus call: what b->transport sent one-way reaches the daemon first. */
void transport_sync(struct dmabroker *b);

/* The D-Bus encodings (bus.c), for the asynchronous forms too. */
/* A descriptor the library can send: 0 or -EINVAL, before any call. */
int check_alloc_desc(const struct dmabroker_alloc_desc *d);
int new_allocate_call(struct dmabroker *b, const struct dmabroker_alloc_desc *d, sd_bus_message **ret);
/* Parses an Allocate reply into a new buffer; a failure is recorded (set_error()). */
int parse_allocate_reply(struct dmabroker *b, const struct dmabroker_alloc_desc *d, sd_bus_message *m,
			 struct dmabroker_buffer **ret);
int new_begin_call(struct dmabroker_buffer *buf, uint32_t mode, uint32_t flags, sd_bus_message **ret);
/* EndAccess of grant with release_fence (borrowed; -1 = none). */
int new_end_call(struct dmabroker *b, uint64_t grant, int release_fence, sd_bus_message **ret);

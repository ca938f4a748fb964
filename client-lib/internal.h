/* SPDX-License-Identifier: MIT */
/*
 * libdmabroker's insides: the connection and buffer structs every module
 * shares. Each concept has its own header for its functions:
 * connection.h (connection.c), channel.h (channel.c), buffers.h
 * (buffers.c), access.h (access.c), stream.h (stream.c); fences.c has none.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "dmabroker.h"
#include "dmabroker-protocol.h"

#define EXPORT __attribute__((visibility("default")))

#define MAX_PLANES 4

struct dmabroker {
	struct dmabroker_stream *streams; /* stream.c */
	sd_event *event;             /* ours, or the caller's after attach_event */
	sd_bus *bus;
	sd_bus *direct;              /* NULL until dmabroker_open_direct() */
	const struct transport *transport; /* how Allocate, BeginAccess, EndAccess and Release go (transport.h) */
	int access_channel;          /* opened with direct (protocol/access-wire.h), or -1 */
	uint32_t access_cookie;      /* the last BEGIN's */
	sd_event_source *channel_source; /* the channel in b->event */
	int channel_timeout_ms;      /* how long a BEGIN waits for its answer (the D-Bus call timeout); -1: forever */
	bool channel_unsynced;       /* one-way messages sent on the channel since its last answer */
	/* dmabroker_get_channel_stats(): the per-frame calls on each path, and the channel's failures */
	uint64_t channel_calls, dbus_calls;
	unsigned channel_fallbacks;
	int channel_error;
	bool channel_warned;         /* said so on stderr (once) */
	struct dmabroker_buffer *buffers;
	sd_bus_error error;          /* the last failure */
	struct dmabroker_listener listener; /* every event (dmabroker_set_listener()); version 0: none */
	void *listener_userdata;
	dmabroker_move_callback on_move; /* dmabroker_set_move_handler(): when the listener has no moved */
	void *move_userdata;
	char daemon_owner[64];       /* the daemon's unique name, to notice a restart */
	bool down;                   /* the daemon went away and is not back (connection.c: reconnect()) */
	bool had_direct;             /* when it went: a direct connection to open again */
	bool reconnecting;
	unsigned reconnects;         /* daemon restarts reconnected to */
};

struct dmabroker_buffer {
	struct dmabroker *b;
	uint64_t id;
	int fd;
	uint32_t width, height, fourcc, usage;
	uint64_t modifier, size;
	bool dmabuf;
	char backend[64];
	unsigned n_planes;
	struct dmabroker_plane planes[MAX_PLANES];
	uint64_t cpu_grant;          /* the grant of cpu_begin, for cpu_end */
	uint32_t cpu_mode;
	struct dmabroker_buffer *next, **prevp;
};


/* SPDX-License-Identifier: MIT */
/* libdmabroker's insides, shared by its modules (dmabroker.c, stream.c). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "dmabroker.h"

#define EXPORT __attribute__((visibility("default")))

#define BUS_NAME "org.dmabroker.Broker1"
#define BROKER_PATH "/org/dmabroker/Broker1"
#define BROKER_INTERFACE "org.dmabroker.Broker1"
#define MAX_PLANES 4

struct dmabroker {
	struct dmabroker_stream *streams; /* stream.c */
	sd_event *event;             /* ours, or the caller's after attach_event */
	sd_bus *bus;
	sd_bus *direct;              /* NULL until dmabroker_open_direct() */
	int access_channel;          /* opened with direct (protocol/access-wire.h), or -1 */
	uint32_t access_cookie;      /* the last BEGIN's */
	/* dmabroker_get_channel_stats(): the per-frame calls on each path, and the channel's failures */
	uint64_t channel_calls, dbus_calls;
	unsigned channel_fallbacks;
	int channel_error;
	bool channel_warned;         /* said so on stderr (once) */
	struct dmabroker_buffer *buffers;
	sd_bus_error error;          /* the last failure */
	dmabroker_move_callback on_move;
	void *move_userdata;
	char daemon_owner[64];       /* the daemon's unique name, to notice a restart */
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


sd_bus *calls(const struct dmabroker *b);
const char *destination(const struct dmabroker *b);
/* Records the failure (e, or r alone) as the last error; returns r. */
int set_error(struct dmabroker *b, const sd_bus_error *e, int r);
void clear_error(struct dmabroker *b);
struct dmabroker_buffer *buffer_new(struct dmabroker *b);
void buffer_free(struct dmabroker_buffer *buf);
int read_planes(sd_bus_message *m, struct dmabroker_buffer *buf);
/* A CLOEXEC duplicate of fd (borrowed from a message) in *ret. */
int take_fd(int fd, int *ret);
/* Sends m (taken) and waits; records the error. */
int call(struct dmabroker *b, sd_bus_message *m, sd_bus_message **reply);
int new_call(struct dmabroker *b, const char *method, sd_bus_message **ret);
/* Reads "ah" holding zero or one fd into *ret (a duplicate the caller owns, or -1). */
int read_fence_array(sd_bus_message *m, int *ret);
/* stream.c: the signals of streams, on the direct connection. */
int stream_on_signal(sd_bus_message *m, void *userdata, sd_bus_error *ret_error);
void streams_free_all(struct dmabroker *b);
/* Moves the streams' peer channels to b->event (after dmabroker_attach_event). */
void streams_attach_event(struct dmabroker *b);
/*
 * r came from a send on a connection that may be gone: if so (and not
 * already reconnecting), reconnect to a restarted daemon. 1 when it did,
 * 0 when r is no such error, -1 when the daemon did not come back.
 */
int daemon_lost(struct dmabroker *b, int r);
/* The daemon restarted: its streams are gone (StreamEnded for consumers, an error for producers). */
void streams_daemon_lost(struct dmabroker *b);

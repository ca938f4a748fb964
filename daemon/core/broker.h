/* SPDX-License-Identifier: MIT */
/*
 * The broker: the core's state, which holds the clients (client.h),
 * buffers (buffer.h), tokens (token.h), grants (access.h), streams
 * (stream.h), the pool and the fd store. Each of those headers is owned by
 * its module; this one only ties them together. The core knows no
 * transport: the D-Bus front end (bus/) and the access channel (channel/)
 * decode calls, call the core's operations, and encode the answers; what
 * the core answers later goes through core/transport.h.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <systemd/sd-event.h>

#include "access.h"
#include "allocate.h"
#include "backend.h"
#include "buffer.h"
#include "client.h"
#include "config.h"
#include "dmabroker-protocol.h"
#include "error.h"
#include "fdstore.h"
#include "format.h"
#include "hashmap.h"
#include "import.h"
#include "token.h"
#include "transport.h"

struct broker {
	sd_event *event;
	const struct broker_events *events; /* how clients are told what happened (the bus's signals) */
	struct bus_front *bus;          /* the D-Bus front end's state (bus/), or NULL */
	struct config config;
	struct backends backends;
	struct client *clients;
	unsigned n_clients;
	struct hashmap buffers;         /* id -> struct buffer */
	struct hashmap tokens;          /* key -> struct token */
	struct hashmap grants;          /* id -> struct grant */
	struct request *pending;        /* BeginAccess calls waiting, in order */
	struct stream *streams;         /* stream.c */
	uint64_t next_buffer_id, next_client_id, next_grant_id, next_stream_id;
	uint64_t bytes;
	uint64_t fds;                   /* fds held for clients, against [limits] max-fds (quota.c) */
	uint64_t fence_timeouts, grant_timeouts;
	struct client self;             /* holds the daemon's own grants (moves) */
	struct client restored;         /* holds buffers restored from the fd store until reclaimed */
	bool fd_store;                  /* keep buffers in the service manager's fd store */
	struct notify *notify;          /* messages to the service manager (notify.c), or NULL */
	sd_event_source *restore_timer; /* the end of restore-grace */
	sd_event_source *trim_timer;    /* malloc_trim() soon (broker_trim_later) */
	struct pool_entry *pool, *pool_tail; /* freed buffers kept for reuse, newest first (pool.c) */
	uint64_t pool_bytes;
	unsigned pool_count;
	uid_t uid;                      /* the daemon's own */
	struct workers *workers;        /* allocations and copies off the loop (worker.c); NULL: inline */
};

int broker_init(struct broker *b, sd_event *event, const struct config *c);
void broker_finish(struct broker *b);
uint64_t now_usec(void);
void broker_trim_later(struct broker *b);

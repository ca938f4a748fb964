/* SPDX-License-Identifier: MIT */
/*
 * The broker's state, the core's: clients (client.c), buffers with their
 * holds, attachments and sharing tokens (buffer.c, token.c), and the
 * operations on them (allocate.c, import.c, access.c, migrate.c, stream.c,
 * fdstore.c, pool.c, quota.c). The core knows no transport: the D-Bus
 * front end (bus/) and the access channel (channel/) decode calls, call
 * these, and encode the answers; what the core answers later goes through
 * core/transport.h.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <systemd/sd-event.h>

#include "error.h"
#include "access.h"
#include "allocate.h"
#include "backend.h"
#include "config.h"
#include "dmabroker-protocol.h"
#include "fdstore.h"
#include "format.h"
#include "hashmap.h"
#include "transport.h"


struct broker;
struct client;
struct buffer;
struct migration;
struct stream;

struct hold {                           /* a client holds a buffer */
	struct client *client;
	struct buffer *buffer;
	struct hold *next_in_client, *next_in_buffer;
};

struct attachment {
	uint32_t id;
	struct client *client;
	uint32_t usage;
	uint32_t flags;                 /* DMABROKER_ATTACH_STATIC: pins the buffer */
	char device[128];
	struct attachment *next;
};


struct token {
	char value[33];                 /* 128 random bits, hex */
	uint64_t key;
	struct buffer *buffer;
	struct client *creator;
	bool single_use, used;
	uint64_t expires_usec;          /* CLOCK_MONOTONIC */
	struct token *next_in_buffer;
};


struct buffer {
	struct broker *broker;
	uint64_t id;
	int fd;                         /* the daemon's own reference */
	struct backend *backend;        /* NULL when imported */
	bool dmabuf, imported;
	uint32_t width, height, fourcc, usage;
	uint64_t modifier, size;
	struct layout layout;
	uid_t owner_uid;
	pid_t owner_pid;
	uint64_t owner_id;              /* the client that allocated or imported it */
	struct hold *holders;
	unsigned n_holders;
	struct attachment *attachments;
	unsigned n_attachments;
	uint32_t next_attachment_id;
	struct token *tokens;
	struct migration *migration;    /* a move in progress (migrate.c) */
	struct stream *stream;          /* the stream that cycles it; keeps it alive */
	char fdname[FDSTORE_NAME_MAX + 1]; /* its name in the fd store, "" if not there */
	bool no_pool;                   /* another uid held it: never reused (pool.c); kept in the fd store */
	uid_t reclaim_uids[FDSTORE_MAX_UIDS]; /* restored: the uids that held it before the restart */
	uint8_t n_reclaim_uids;
	struct resv resv;               /* access grants and kept fences (access.c) */
	uint64_t created_usec;
};

struct client {
	struct broker *broker;
	uint64_t id;
	char *bus_name;                 /* unique name; NULL once it left the bus */
	uid_t uid;
	gid_t gid;                      /* (gid_t)-1: the bus does not report a primary group */
	gid_t groups[32];               /* the groups the bus reports (creds.c) */
	unsigned n_groups;
	pid_t pid;
	char comm[32];                  /* for logs and lists only, read at creation */
	struct hold *holds;
	unsigned n_holds, n_tokens, n_directs, n_streams;
	uint64_t bytes;                 /* size of every buffer it holds */
	unsigned n_reserved;            /* allocations in flight, charged before they are taken (allocate.c) */
	uint64_t bytes_reserved;
	struct client_link *links;      /* its transports' state: freed with it */
	struct bus_client *bus;         /* the bus's (bus/), while it is reachable there */
	struct grant *grants;
	unsigned n_grants, n_pending;
	struct kept_fence *fences;      /* release fences it handed over, still kept (access.c) */
	unsigned n_fences;
	unsigned n_pending_grants;      /* grants its waiting requests ask for: charged at queue time */
	struct access_channel *access_channel; /* its access channel (channel/), or NULL */
	uint32_t fence_timeouts;        /* its fences that missed their deadline */
	uint32_t grant_timeouts;        /* its grants held past hold-timeout */
	uint64_t created_usec;
	struct client *next;
};

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


/* client.c */
struct client *client_find_by_name(struct broker *b, const char *name);
/* What the bus vouches for about a peer (GetConnectionCredentials). */
struct client_creds {
	uid_t uid;
	pid_t pid;
	gid_t groups[32];
	unsigned n_groups;
};
/* A client for bus peer bus_name, with the credentials the bus vouched for. */
int client_new(struct broker *b, const char *bus_name, const struct client_creds *creds, struct client **ret,
	       struct error *error);
void client_free(struct client *c);
bool client_is_admin(const struct client *c);
/* allocate.c: Allocate, for every transport. */
struct alloc_args {
	uint32_t width, height, fourcc, usage;
	const uint64_t *mods;
	size_t n_mods;
	const char *backend, *device; /* hints, or NULL */
	bool fresh;
};
/*
 * Checks a, charges c and starts the allocation: 0 (done_fn is called when
 * it ends, see allocate.h) or < 0 with error set (refused at once).
 */
int broker_allocate(struct client *c, const struct alloc_args *a, allocation_done_fn done_fn,
		    const struct completion *to, struct error *error);
/* What a client's new buffer needs before it is handed out (the fd store). */
void broker_allocated(struct client *c, struct buffer *buf);

/* import.c: Import of a client's dma-buf (fd borrowed), held by c on success. */
struct import_args {
	int fd;
	uint32_t width, height, fourcc, usage;
	uint64_t modifier;
	struct layout layout;           /* the planes' offsets and strides, as described */
};
int broker_import(struct client *c, const struct import_args *a, struct buffer **ret, struct error *error);
/* Release's: c lets go of buffer id. */
int client_release_buffer(struct client *c, uint64_t id, struct error *error);
/* The buffer `id`, which c must hold (*ret_hold: its hold; may be NULL). 0 or <0 with error. */
int client_held_buffer(struct client *c, uint64_t id, struct buffer **ret_buffer, struct hold **ret_hold,
		       struct error *error);

/* buffer.c */
/* What Allocate and Import check of their arguments: UnsupportedFormat, InvalidArgument, InvalidDimensions. */
int buffer_check_format(uint32_t fourcc, const struct format_info **ret, struct error *error);
int buffer_check_usage(uint32_t usage, struct error *error);
int buffer_check_dimensions(struct broker *b, uint32_t w, uint32_t h, struct error *error);
/* All three, in that order. */
int buffer_check_image(struct broker *b, uint32_t width, uint32_t height, uint32_t fourcc, uint32_t usage,
		       const struct format_info **ret, struct error *error);
struct buffer *buffer_find(struct broker *b, uint64_t id);
struct hold *buffer_held_by(struct buffer *buf, struct client *c);
int buffer_register(struct broker *b, struct client *owner, int fd, struct buffer **ret, struct error *error);
int buffer_hold(struct buffer *buf, struct client *c, struct error *error);
void buffer_release(struct hold *h);
int buffer_attach(struct buffer *buf, struct client *c, uint32_t usage, const char *device, uint32_t flags,
		  uint32_t *ret_id, struct error *error);
int buffer_detach(struct buffer *buf, struct client *c, uint32_t id, struct error *error);
void buffer_detach_client(struct buffer *buf, struct client *c);
int buffer_dup_fd(const struct buffer *buf);
/* The stream let go of buf: freed now if nobody holds it. */
void buffer_unset_stream(struct buffer *buf);
/* Names the dma-buf "dmabroker:<id>" (DMA_BUF_SET_NAME), for bufinfo. */
void buffer_set_name(const struct buffer *buf);
/* What buf holds: its image and layout (Allocate, Import, a restore from the fd store). */
void buffer_describe(struct buffer *buf, uint32_t width, uint32_t height, uint32_t fourcc, uint64_t modifier,
		     uint32_t usage, const struct layout *layout);

/* token.c */
int token_create(struct buffer *buf, struct client *c, uint32_t flags, uint32_t ttl_sec,
		 const char **ret_value, struct error *error);
int token_revoke(struct broker *b, struct client *c, const char *value, struct error *error);
/* OpenToken: c holds the token's buffer (*ret) from now on. */
int token_open(struct client *c, const char *value, struct buffer **ret, struct error *error);
/* Finds a usable token; call token_consumed() once the buffer was opened. */
int token_redeem(struct broker *b, const char *value, struct token **ret, struct error *error);
void token_consumed(struct token *t);
void token_free(struct token *t);
void tokens_drop_for_client(struct broker *b, struct client *c);

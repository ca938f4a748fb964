/* SPDX-License-Identifier: MIT */
/*
 * Buffers (buffer.c): what the broker holds for its clients, who holds each
 * one, who attached it to which device, and the checks Allocate and Import
 * make of an image.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "access.h"
#include "error.h"
#include "fdstore.h"
#include "format.h"

struct backend;
struct broker;
struct client;
struct migration;
struct stream;
struct token;

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

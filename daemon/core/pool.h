/* SPDX-License-Identifier: MIT */
/* Freed buffers kept for reuse by the same user (pool.c). */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct backend;
struct broker;
struct buffer;

struct pool_entry {
	int fd;
	struct backend *backend;
	uint64_t size;
	uid_t uid;
	struct pool_entry *prev, *next; /* newest first */
};

/* Takes buf's fd into the pool if it may be reused: true then (buf->fd is -1). */
bool pool_put(struct broker *b, struct buffer *buf);
struct alloc_request;
struct layout;

/*
 * A pooled fd for req on backend, for uid, with its layout: -1 when there
 * is none, or req asks for fresh memory. The caller owns the fd.
 */
int pool_take(struct broker *b, struct backend *backend, const struct alloc_request *req, uid_t uid,
	      struct layout *layout);
/* Closes everything pooled. */
void pool_clear(struct broker *b);

/* SPDX-License-Identifier: MIT */
/*
 * The buffer pool: with [pool] max-bytes > 0, a buffer whose last holder
 * lets go is kept instead of closed, and the next Allocate of the same
 * size on the same backend by the same user gets it back without asking
 * the kernel for memory (for a heap, the kernel's page allocation and
 * zeroing is most of what an allocation costs).
 *
 * Reuse never crosses users: a pooled buffer is not cleared, so it goes
 * back only to its owner's uid, and a buffer any other uid ever held (by
 * token, or as a stream's consumer) is never pooled, since that user may
 * still have its fd. Imported buffers (someone else's memory) and DRM dumb
 * buffers (their layout comes from the driver) are not pooled either.
 * The pool is bounded by bytes and by count; the oldest go first.
 * Pending fences stay with the dma-buf, and the next grant's acquire
 * fence includes them (DMA_BUF_IOCTL_EXPORT_SYNC_FILE), so the order of
 * accesses holds across the reuse.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "broker.h"
#include "cleanup.h"
#include "log.h"
#include "pool.h"

/* DRM dumb buffers get their layout from the driver, not from backend_layout(). */
static bool poolable_backend(const struct backend *be)
{
	return strcmp(be->ops->kind, "drm") != 0;
}

static void unlink_entry(struct broker *b, struct pool_entry *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		b->pool = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		b->pool_tail = e->prev;
	b->pool_bytes -= e->size;
	b->pool_count--;
}

static void drop(struct broker *b, struct pool_entry *e)
{
	unlink_entry(b, e);
	safe_close(e->fd);
	free(e);
}

bool pool_put(struct broker *b, struct buffer *buf)
{
	const struct config *c = &b->config;
	struct pool_entry *e;

	if (!c->pool_max_bytes || !c->pool_max_buffers || buf->fd < 0 || !buf->backend || buf->imported ||
	    buf->no_pool || buf->migration || !poolable_backend(buf->backend) ||
	    buf->size > c->pool_max_bytes)
		return false;
	e = calloc(1, sizeof(*e));
	if (!e)
		return false;
	e->fd = buf->fd;
	e->backend = buf->backend;
	e->size = buf->size;
	e->uid = buf->owner_uid;
	e->next = b->pool;
	if (b->pool)
		b->pool->prev = e;
	else
		b->pool_tail = e;
	b->pool = e;
	b->pool_bytes += e->size;
	b->pool_count++;
	buf->fd = -1;
	while (b->pool_tail && (b->pool_bytes > c->pool_max_bytes || b->pool_count > c->pool_max_buffers))
		drop(b, b->pool_tail);
	log_debug("buffer %llu pooled (%llu bytes on %s); the pool holds %u buffers, %llu bytes",
		  (unsigned long long)buf->id, (unsigned long long)buf->size, buf->backend->name, b->pool_count,
		  (unsigned long long)b->pool_bytes);
	return true;
}

int pool_take(struct broker *b, struct backend *backend, const struct alloc_request *req, uid_t uid,
	      struct layout *layout)
{
	if (!b->pool || req->fresh || !poolable_backend(backend) || backend_layout(backend, req, layout) < 0)
		return -1;
	for (struct pool_entry *e = b->pool; e; e = e->next)
		if (e->backend == backend && e->size == layout->size && e->uid == uid) {
			int fd = e->fd;
			unlink_entry(b, e);
			free(e);
			return fd;
		}
	return -1;
}

void pool_clear(struct broker *b)
{
	while (b->pool)
		drop(b, b->pool);
}

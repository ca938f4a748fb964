/* SPDX-License-Identifier: MIT */
/*
 * An allocation in flight: charged first, then taken. The client's quota
 * is reserved for the buffer before any memory is (a pooled buffer is
 * handed out at once); the kernel allocation, which zeroes up to
 * max-buffer-size, runs on a worker thread (worker.c) while the loop goes
 * on; its end registers the buffer on the loop's thread and hands it to the
 * caller's callback. A client that left meanwhile gets nothing: the memory
 * is closed, no buffer is registered.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <drm_fourcc.h>

#include "allocate.h"
#include "broker.h"
#include "cleanup.h"
#include "error.h"
#include "log.h"
#include "pool.h"
#include "quota.h"
#include "worker.h"

struct allocation {
	struct work work;
	struct broker *broker;
	uint64_t client_id;
	uint64_t reserved;              /* bytes reserved on the client (one buffer with them) */
	struct alloc_request req;
	struct backend *candidates[16]; /* backends live until the workers are stopped */
	unsigned n;
	allocation_done_fn done;
	struct completion to;           /* passed to done */
	/* set by run(): */
	int fd;                         /* the new buffer's fd, or a negative errno */
	unsigned chosen;
	struct layout layout;
};

static void allocation_free(struct allocation *a)
{
	safe_close(a->fd);
	completion_drop(&a->to);
	free(a);
}

/* On a worker: the first candidate that can. */
static void run(struct work *w)
{
	struct allocation *a = (struct allocation *)w;

	a->fd = -ENODEV;
	for (unsigned i = 0; i < a->n; i++) {
		struct backend *be = a->candidates[i];
		a->fd = be->ops->alloc(be, &a->req, &a->layout);
		if (a->fd >= 0 || a->fd == -E2BIG) {
			a->chosen = i;
			return;
		}
		log_info("backend %s failed to allocate %ux%u %s: %s", be->name, a->req.width, a->req.height,
			 a->req.format->name, strerror(-a->fd));
		a->chosen = i;
	}
}

static struct client *client_by_id(struct broker *b, uint64_t id)
{
	for (struct client *c = b->clients; c; c = c->next)
		if (c->id == id)
			return c;
	return NULL;
}

/* On the loop: the result becomes a buffer of c's (or an error), handed to the callback. */
static void complete(struct allocation *a, struct client *c)
{
	struct error error = ERROR_NULL;
	const struct alloc_request *req = &a->req;
	struct backend *chosen = a->n ? a->candidates[a->chosen] : NULL;
	struct buffer *buf = NULL;
	int r;

	if (a->fd < 0)
		fd_budget_uncharge(a->broker, 1); /* no fd after all */
	if (a->fd == -E2BIG)
		r = error_setf(&error, DMABROKER_E_TOO_LARGE, "%ux%u %s needs more than %llu bytes (max-buffer-size)",
				      req->width, req->height, req->format->name, (unsigned long long)req->max_size);
	else if (a->fd < 0)
		r = error_setf(&error, DMABROKER_E_ALLOCATION_FAILED, "%s could not allocate %ux%u %s: %s",
				      chosen ? chosen->name : "no backend", req->width, req->height,
				      req->format->name, strerror(-a->fd));
	else
		r = buffer_register(a->broker, c, TAKE_FD(a->fd), &buf, &error);
	if (r >= 0) {
		buf->backend = chosen;
		buf->dmabuf = chosen->dmabuf;
		buffer_describe(buf, req->width, req->height, req->format->fourcc, DRM_FORMAT_MOD_LINEAR, req->usage,
				&a->layout);
		buffer_set_name(buf);
	}
	a->done(c, r < 0 ? NULL : buf, r, &error, &a->to);
}

static void done(struct work *w, bool cancelled)
{
	struct allocation *a = (struct allocation *)w;
	struct client *c = cancelled ? NULL : client_by_id(a->broker, a->client_id);

	if (c) {
		/* the reservation becomes the buffer's charge */
		c->n_reserved--;
		c->bytes_reserved -= a->reserved;
		complete(a, c);
	} else {
		fd_budget_uncharge(a->broker, 1); /* its fd, if any, is closed below */
		if (!cancelled)
			log_debug("client %llu left before its allocation ended: nothing kept",
				  (unsigned long long)a->client_id);
	}
	allocation_free(a);
}

static const struct work_ops allocation_ops = { .run = run, .done = done };

int allocation_start(struct client *c, const struct alloc_request *req, struct backend *const *candidates,
		     unsigned n, allocation_done_fn done_fn, const struct completion *to, struct error *error)
{
	struct broker *b = c->broker;
	struct allocation *a;
	uint64_t size = 0;
	int r;

	if (n > ELEMENTSOF(a->candidates))
		n = ELEMENTSOF(a->candidates);
	/* The most it can take, under every candidate's layout rules. */
	for (unsigned i = 0; i < n; i++) {
		struct layout l;
		r = backend_layout(candidates[i], req, &l);
		if (r == -E2BIG)
			return error_setf(error, DMABROKER_E_TOO_LARGE,
						 "%ux%u %s needs more than %llu bytes (max-buffer-size)", req->width,
						 req->height, req->format->name, (unsigned long long)req->max_size);
		if (r >= 0 && l.size > size)
			size = l.size;
	}
	/* Charge first, then take. */
	r = quota_check(c, Q_BUFFERS, 1, error);
	if (r >= 0)
		r = quota_check(c, Q_BYTES, size, error);
	if (r >= 0)
		r = fd_budget_charge(b, 1, error); /* the buffer's fd: kept by buffer_register() */
	if (r < 0)
		return r;

	a = calloc(1, sizeof(*a));
	if (!a) {
		fd_budget_uncharge(b, 1);
		return -ENOMEM;
	}
	a->work.ops = &allocation_ops;
	a->broker = b;
	a->client_id = c->id;
	a->req = *req;
	memcpy(a->candidates, candidates, n * sizeof(*candidates));
	a->n = n;
	a->done = done_fn;
	a->to = *to;
	completion_keep(&a->to);
	a->fd = -1;
	/* A pooled buffer of this size, on a candidate, of this user: at once. */
	for (unsigned i = 0; i < n; i++) {
		a->fd = pool_take(b, candidates[i], req, c->uid, &a->layout);
		if (a->fd >= 0) {
			a->chosen = i;
			complete(a, c);
			allocation_free(a);
			return 0;
		}
	}
	a->reserved = size;
	c->n_reserved++;
	c->bytes_reserved += size;
	workers_submit(b->workers, &a->work);
	return 0;
}

#define MAX_MODIFIERS 64

int broker_allocate(struct client *c, const struct alloc_args *a, allocation_done_fn done_fn,
		    const struct completion *to, struct error *error)
{
	struct broker *b = c->broker;
	const struct format_info *f;
	struct backend *candidates[16];
	struct alloc_request req;
	bool linear_ok;
	char why[256];
	unsigned n;
	int r = buffer_check_image(b, a->width, a->height, a->fourcc, a->usage, &f, error);

	if (r < 0)
		return r;
	if (a->n_mods > MAX_MODIFIERS)
		return error_setf(error, DMABROKER_E_INVALID_ARGUMENT, "%zu modifiers; at most %d", a->n_mods,
					 MAX_MODIFIERS);
	linear_ok = a->n_mods == 0;
	for (size_t i = 0; i < a->n_mods; i++)
		linear_ok |= a->mods[i] == DRM_FORMAT_MOD_LINEAR || a->mods[i] == DRM_FORMAT_MOD_INVALID;
	if (!linear_ok)
		return error_setf(error, DMABROKER_E_UNSUPPORTED_MODIFIER,
					 "none of the %zu modifiers (first 0x%llx) can be allocated: dmabroker "
					 "allocates linear buffers (DRM_FORMAT_MOD_LINEAR)",
					 a->n_mods, (unsigned long long)a->mods[0]);

	n = backends_choose(&b->backends, a->usage, a->backend, a->device, candidates, ELEMENTSOF(candidates), why,
			    sizeof(why));
	if (n == 0)
		return error_setf(error, DMABROKER_E_NO_BACKEND, "%s", why);
	r = filter_allowed(c, candidates, &n, error);
	if (r < 0)
		return r;

	req = (struct alloc_request){ .format = f, .width = a->width, .height = a->height, .usage = a->usage,
				      .max_size = b->config.max_buffer_size, .max_dimension = b->config.max_dimension,
				      .fresh = a->fresh };
	return allocation_start(c, &req, candidates, n, done_fn, to, error);
}

/* A client's new buffer: kept across a restart (a stream's are not). */
void broker_allocated(struct client *c, struct buffer *buf)
{
	fdstore_add(buf);
	log_debug("client %llu allocated buffer %llu: %ux%u, %llu bytes on %s", (unsigned long long)c->id,
		  (unsigned long long)buf->id, buf->width, buf->height, (unsigned long long)buf->size,
		  buf->backend->name);
}

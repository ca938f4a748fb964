/* SPDX-License-Identifier: MIT */
/* An allocation in flight (allocate.c): reserved on the client, taken on a worker thread. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "transport.h"

struct alloc_request;
struct backend;
struct buffer;
struct client;

/*
 * The end of an allocation, on the loop thread: buf, registered and held
 * by c, or r < 0 with error set (TooLarge, AllocationFailed, QuotaExceeded,
 * or none for a bare errno). Not called when c left meanwhile.
 */
typedef void (*allocation_done_fn)(struct client *c, struct buffer *buf, int r, const struct error *error,
				   const struct completion *to);

/*
 * Allocates for c from the first of candidates that can: checks and
 * reserves c's quota (one buffer, the largest layout of the candidates)
 * first, takes a pooled buffer at once, or else runs the kernel allocation
 * on a worker. 0: done_fn is called (maybe already), with to (kept
 * meanwhile); < 0 with error set: refused, done_fn is not called.
 */
int allocation_start(struct client *c, const struct alloc_request *req, struct backend *const *candidates,
		     unsigned n, allocation_done_fn done_fn, const struct completion *to, struct error *error);

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

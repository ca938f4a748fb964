/* SPDX-License-Identifier: MIT */
/* An allocation in flight (allocate.c): reserved on the client, taken on a worker thread. */
#pragma once

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

/* SPDX-License-Identifier: MIT */
/*
 * sync_file helpers shared by the daemon and the client library. Only
 * fence_wait() ever waits; the daemon never calls it.
 */
#pragma once

#include <stdbool.h>

/* Whether fd is a sync_file (not merely something poll() accepts). */
bool fence_is_sync_file(int fd);
/* 1 when fence has signalled, 0 while pending, negative errno on error. */
int fence_status(int fence);
/* Waits up to timeout_ms (-1: forever): 1 signalled, 0 timed out, <0 error. */
int fence_wait(int fence, int timeout_ms);
/* A new sync_file (O_CLOEXEC) that signals when both have; a and b are borrowed. */
int fence_merge(int a, int b);
/*
 * Merges `add` (taken over; may be -1) into *acc (owned, -1 = none): at the
 * end *acc is the merge of both, or whichever existed. 0 or negative errno.
 */
int fence_accumulate(int *acc, int add);
/* The fences a reader (write=false) or a writer must wait for; a new fd. */
int dmabuf_export_fence(int dmabuf, bool write);
/* Adds fence to the dma-buf's reservation as a write or a read fence. */
int dmabuf_import_fence(int dmabuf, int fence, bool write);

/* SPDX-License-Identifier: MIT */
/* Moving a buffer to memory a new attachment can use (see migrate.c). */
#pragma once

#include <stdint.h>

#include "error.h"
#include "transport.h"

struct buffer;
struct client;

/*
 * Attach: c attaches buffer id, which it holds, for usage on device. If the
 * buffer must move to memory that device can use, the move starts and `to`
 * is answered when it ends (its attached() with the attachment and the new
 * fd, or its fail()): returns 1. Otherwise attached at once: 0 with
 * *ret_attachment and *ret_fd (the buffer's, borrowed) set. Or a negative errno with error set (Pinned, Busy,
 * AllocationFailed, NotPermitted for a stream's buffer, ...).
 */
int broker_attach(struct client *c, uint64_t id, uint32_t usage, const char *device, uint32_t flags,
		  const struct completion *to, uint32_t *ret_attachment, int *ret_fd, struct error *error);
/* c let go of buf (released it, or went away): a move it asked for goes on
 * for the other holders, without an attachment or a reply for c. */
void migration_forget_client(struct buffer *buf, struct client *c);
/* buf is being freed: a move in progress ends with an error to its caller. */
void migration_cancel(struct buffer *buf);

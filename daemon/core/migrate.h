/* SPDX-License-Identifier: MIT */
/* Moving a buffer to memory a new attachment can use (see migrate.c). */
#pragma once

#include <stdint.h>

#include <systemd/sd-bus.h>

#include "error.h"

struct buffer;
struct client;

/*
 * Checks whether an attachment of c to buf for usage on device needs the
 * buffer elsewhere, and if so starts moving it. Returns 0 when no move is
 * needed (attach as usual), 1 when a move started (m, the Attach call, is
 * answered when it is done), or a negative errno with error set (Pinned,
 * Busy, AllocationFailed).
 */
int migrate_for_attach(struct buffer *buf, struct client *c, sd_bus_message *m, uint32_t usage, const char *device,
		       uint32_t flags, struct error *error);
/* c let go of buf (released it, or went away): a move it asked for goes on
 * for the other holders, without an attachment or a reply for c. */
void migration_forget_client(struct buffer *buf, struct client *c);
/* buf is being freed: a move in progress ends with an error to its caller. */
void migration_cancel(struct buffer *buf);

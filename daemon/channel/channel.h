/* SPDX-License-Identifier: MIT */
/*
 * The access channel (protocol/access-wire.h): a client's own binary socket
 * for BeginAccess, EndAccess, Allocate and Release, the per-frame path. It
 * decodes each message, calls the core, and encodes the answer.
 */
#pragma once

#include "error.h"

struct client;

/* OpenAccessChannel: c's channel; the client's end in *ret_fd. */
int access_channel_open(struct client *c, int *ret_fd, struct error *error);
/* c's channel ends (c is going away): its BEGINs still queued are dropped, unanswered. */
void access_channel_close(struct client *c);

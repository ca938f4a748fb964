/* SPDX-License-Identifier: MIT */
/* The access channel (channel.c): BEGIN, END, ALLOCATE and RELEASE in binary (protocol/access-wire.h). */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "access-wire.h"
#include "internal.h"

/* What the daemon answers on the access channel. */
union wire_answer {
	struct {
		uint32_t op, cookie;
	} head;
	struct access_wire_reply reply;
	struct access_wire_buffer buffer;
};

/* Opens the channel on the direct connection (or says why not, once). */
void open_access_channel(struct dmabroker *b);
/* Watches the channel in b->event (again, after dmabroker_attach_event()): 0 or <0. */
int channel_watch(struct dmabroker *b);
/*
 * The channel is gone (why: r) or could not be opened: counted for
 * dmabroker_get_channel_stats() and said once on stderr.
 */
void channel_lost(struct dmabroker *b, int r, const char *what);
/* The channel broke (the daemon went away, or spoke nonsense): D-Bus from here, reconnecting if need be. */
void channel_broke(struct dmabroker *b, int r);
/*
 * Sends a request (len bytes, its cookie set) on the access channel and
 * waits for the answer with that cookie: 0 with *ans and *ret_fd (ours, or
 * -1); 1 when the daemon refused it (*refusal: its errno, recorded as the
 * last error); or a negative errno when the channel failed.
 */
int channel_call(struct dmabroker *b, const void *req, size_t len, uint32_t cookie, union wire_answer *ans,
		 int *ret_fd, int *refusal);
/* BEGIN on the access channel: as channel_call(). */
int channel_begin(struct dmabroker_buffer *buf, uint32_t mode, uint32_t flags, uint64_t *ret_grant,
		  int *ret_fence, int *refusal);
/*
 * ALLOCATE on the access channel: 0 with *ret, 1 refused (*refusal), a
 * negative errno when the channel failed, or -E2BIG when the descriptor
 * does not fit the channel's message (then D-Bus takes it).
 */
int channel_allocate(struct dmabroker *b, const struct dmabroker_alloc_desc *d, struct dmabroker_buffer **ret,
		     int *refusal);

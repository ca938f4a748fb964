/* SPDX-License-Identifier: MIT */
/*
 * What the core needs of a transport, and nothing more: how to answer a
 * call it could not answer at once (a grant that waits, an allocation, a
 * move, a stream's buffers), and how to tell a client what happened to it
 * (the events D-Bus carries as signals). The transports (bus/, channel/)
 * fill these in; the core never knows which one a call came through, and
 * includes no transport's header.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "error.h"

struct buffer;
struct client;
struct completion;
struct frame_meta;
struct grant;
struct stream;

/*
 * A transport's answers to one kind of call. Each may be NULL where that
 * kind of call never needs it. An answer returns 0, or < 0 when it could
 * not be sent: the core then takes back what it gave (grants).
 */
struct completion_ops {
	/* The core keeps the call past its handler's return (it waits): take a reference. */
	void (*keep)(struct completion *c);
	/* The core lets go of the call: answered, or nobody left to answer. */
	void (*drop)(struct completion *c);
	/* The call failed: r (< 0) and e (set, or not for a bare errno). */
	void (*fail)(const struct completion *c, int r, const struct error *e);
	/* BeginAccess, BeginAccessMulti: n grants and their acquire fence (borrowed, -1: none). */
	int (*granted)(const struct completion *c, struct grant *const *grants, unsigned n, int fence);
	/* Attach after a move: the attachment and the buffer's (new) fd (borrowed). */
	int (*attached)(const struct completion *c, uint32_t attachment, int fd);
	/* StreamBuffers: the stream's buffers, now held by `to` (stream_describe()). */
	int (*stream_buffers)(const struct completion *c, struct stream *s, struct client *to);
};

/* A call to answer later, as its transport filled it in; copied by value. */
struct completion {
	const struct completion_ops *ops; /* NULL: nobody to answer */
	void *call;                     /* the transport's (D-Bus: the call message) */
	uint64_t cookie;                /* the transport's (the access channel: the request's cookie) */
	struct client *client;          /* who is answered */
};

static inline void completion_keep(struct completion *c)
{
	if (c->ops && c->ops->keep)
		c->ops->keep(c);
}

static inline void completion_drop(struct completion *c)
{
	if (c->ops && c->ops->drop)
		c->ops->drop(c);
	c->ops = NULL;
}

static inline void completion_fail(const struct completion *c, int r, const struct error *e)
{
	if (c->ops && c->ops->fail)
		c->ops->fail(c, r, e);
}

/*
 * What happened to a client's buffers and streams, told to that client
 * alone. Each returns 0, -ENOTCONN when the client cannot be reached (it
 * has no transport left), or another < 0 when it could not be sent.
 */
struct broker_events {
	/* A fence of `client` on buffer passed its deadline; a grant was held past hold-timeout. */
	int (*fence_timed_out)(struct client *to, uint64_t buffer, uint64_t client, bool write);
	int (*grant_timed_out)(struct client *to, uint64_t buffer, uint64_t client, bool write);
	/* buf moved to new memory (its fd, size and layout are new); fence: when the copy is done (-1: now). */
	int (*moved)(struct client *to, const struct buffer *buf, int fence);
	/* Streams: a frame, a buffer back to its producer, a new consumer's channel, the end. */
	int (*frame_ready)(struct client *to, uint64_t stream, uint32_t index, const struct frame_meta *meta,
			   int fence);
	int (*buffer_released)(struct client *to, uint64_t stream, uint32_t index, int fence);
	int (*consumer_joined)(struct client *to, uint64_t stream, uint32_t consumer, int channel);
	int (*stream_ended)(struct client *to, uint64_t stream, const char *reason);
};

/*
 * A transport's own state on a client (the bus's name watch and direct
 * connections, the access channel): the client keeps a list of them and
 * frees each when it goes (client_free()).
 */
struct client_link {
	void (*free)(struct client_link *l);
	struct client_link *next;
};
void client_link_add(struct client *c, struct client_link *l);
void client_link_remove(struct client *c, struct client_link *l);

/* Calls event `ev` of broker b's transport, -ENOTCONN when there is none. */
#define broker_emit(b, ev, ...) \
	((b)->events && (b)->events->ev ? (b)->events->ev(__VA_ARGS__) : -ENOTCONN)

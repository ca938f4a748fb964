/* SPDX-License-Identifier: MIT */
/*
 * Streams: a set of buffers cycled between one producer and consumers
 * (stream.c). The D-Bus front end (bus/bus-streams.c) decodes and encodes the calls; this is the state.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "error.h"
#include "transport.h"
#include "dmabroker-protocol.h"

struct broker;
struct client;
struct buffer;


enum stream_mode { STREAM_FIFO, STREAM_MAILBOX };
enum stream_state { STREAM_NEGOTIATING, STREAM_RUNNING, STREAM_FAILED, STREAM_ENDED };

/* What a party declared at CreateStream / JoinStream. */
struct stream_params {
	char label[32];
	char name[64];
	enum stream_mode mode;
	uint32_t buffers, width, height, consumers, max_acquired, usage;
	uint32_t formats[DMABROKER_STREAM_MAX_FORMATS];
	unsigned n_formats;
	uint64_t modifiers[DMABROKER_STREAM_MAX_MODIFIERS];
	unsigned n_modifiers;
	char devices[DMABROKER_STREAM_MAX_DEVICES][128];
	unsigned n_devices;
	bool native;                    /* its devices read only buffers allocated on them */
	/* the producer's: who else may join (its own uid and admins always may) */
	uint32_t allow_uids[DMABROKER_STREAM_MAX_ALLOW], allow_gids[DMABROKER_STREAM_MAX_ALLOW];
	unsigned n_allow_uids, n_allow_gids;
	/* a consumer's: join only a stream whose producer runs as this uid */
	bool has_producer_uid;
	uint32_t producer_uid;
};

struct frame_meta {
	uint64_t sequence, timestamp_ns;
	int32_t damage[DMABROKER_STREAM_MAX_DAMAGE][4];
	unsigned n_damage;
};

struct stream_consumer;
struct stream;

/* What StreamBuffers hands a party, for its transport to encode (stream_describe()). */
struct stream_buffers_info {
	uint32_t width, height, fourcc;
	uint64_t modifier;
	const char *backend, *mode;
	unsigned n_buffers;
	const struct buffer *buffers[DMABROKER_STREAM_MAX_BUFFERS];
	uint32_t max_acquired;          /* a consumer's; 0 for the producer */
	int counters;                   /* the party's counters memfd (borrowed), or -1 */
	unsigned n_channels;            /* peer channels (FIFO): the producer's ends, or the consumer's own */
	struct {
		uint32_t consumer;
		int fd;                 /* borrowed */
	} channels[DMABROKER_STREAM_MAX_CONSUMERS];
};

/* One line of ListStreams. */
struct stream_info {
	uint64_t id;
	const char *name, *mode, *state, *backend;
	uint32_t fourcc, width, height, n_buffers;
	uint64_t producer;              /* its client id, 0 when it left */
	uint32_t n_consumers;
	uint64_t produced, consumed, dropped;
};

struct stream *stream_find(struct broker *b, uint64_t id);
/*
 * UnknownStream for stream id: what a call naming an id no stream has
 * gets, and, word for word, a client that is not in stream id (so that a
 * reply tells nothing of other users' streams). Returns <0.
 */
int stream_unknown(uint64_t id, struct error *error);
uint64_t stream_id(const struct stream *s);
struct stream *stream_next(const struct stream *s);
int stream_create(struct client *c, const struct stream_params *p, struct stream **ret, struct error *error);
int stream_join(struct client *c, const struct stream_params *p, struct stream **ret, uint32_t *ret_consumer,
		struct error *error);
/*
 * StreamBuffers: answered through `to` (its stream_buffers(), or fail())
 * now, or once the stream is negotiated (to is kept meanwhile). 1 or <0
 * with error.
 */
int stream_buffers(struct stream *s, struct client *c, const struct completion *to, struct error *error);
/* What StreamBuffers gives c, a party of s. */
void stream_describe(const struct stream *s, const struct client *c, struct stream_buffers_info *out);
/* QueueFrame: ready_fence is borrowed (-1: none). */
int stream_queue(struct stream *s, struct client *c, uint32_t index, const struct frame_meta *meta, int ready_fence,
		 struct error *error);
/* ReleaseFrame: release_fence is borrowed (-1: none). */
int stream_release(struct stream *s, struct client *c, uint32_t index, int release_fence, struct error *error);
int stream_leave(struct stream *s, struct client *c, struct error *error);
/* c is going away: leave every stream it is in. */
void stream_drop_client(struct broker *b, struct client *c);
void streams_free(struct broker *b);
/* ListStreams: fn for each stream c may see (its own, or all for an admin), until fn returns < 0. */
int stream_list(struct broker *b, struct client *c, int (*fn)(const struct stream_info *info, void *userdata),
		void *userdata);
/* Why buf may not be used by BeginAccess/Attach/Release/CreateToken: 0 or <0 with error. */
int stream_check_direct_use(const struct buffer *buf, struct error *error);

/* SPDX-License-Identifier: MIT */
/*
 * The peer channel of a FIFO stream: what the producer and a consumer send
 * each other directly, without the daemon in between.
 *
 * At negotiation the daemon makes one SOCK_SEQPACKET socketpair per
 * consumer and hands its ends out with StreamBuffers: the producer gets one
 * per consumer, each consumer its own. A frame is then one message from the
 * producer to the consumer (one hop, as a hand-written handoff would be),
 * and a release one message back. Each message is one struct stream_wire,
 * cut after its damage rectangles, with zero or one sync_file in
 * SCM_RIGHTS. The daemon keeps a copy of both ends: when a party leaves or
 * dies it shuts the channel down, so the other side sees the end at once
 * (a consumer's frames come back to the producer; the producer's end ends
 * the stream for the consumer).
 *
 * Counters: each party also gets a small sealed memfd it counts its frames
 * in (struct stream_wire_counters); the daemon reads them for ListStreams.
 * Nothing per frame reaches the daemon.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define STREAM_WIRE_MAX_DAMAGE 16

enum stream_wire_type {
	STREAM_WIRE_FRAME = 1,   /* producer -> consumer: buffer index holds a frame */
	STREAM_WIRE_RELEASE = 2, /* consumer -> producer: done with buffer index */
};

struct stream_wire {
	uint32_t type, index;
	uint64_t sequence, timestamp_ns;
	uint32_t n_damage, reserved;
	int32_t damage[STREAM_WIRE_MAX_DAMAGE][4];
};

#define STREAM_WIRE_HEADER_SIZE offsetof(struct stream_wire, damage)
#define STREAM_WIRE_SIZE(n_damage) (STREAM_WIRE_HEADER_SIZE + (size_t)(n_damage) * sizeof(int32_t[4]))

/* In each party's counters memfd, written by that party only. */
struct stream_wire_counters {
	uint64_t frames;  /* producer: frames queued; consumer: frames released */
	uint64_t dropped; /* producer: frames no consumer was there to take */
};

/*
 * The same bytes on every ABI (i386 aligns a uint64_t to 4 bytes, x86-64
 * and arm to 8): the 64-bit fields at multiples of 8, the structs multiples
 * of 8 long. A change that moves a field fails the build on every ABI.
 */
_Static_assert(offsetof(struct stream_wire, sequence) == 8, "stream_wire.sequence: the wire layout");
_Static_assert(offsetof(struct stream_wire, timestamp_ns) == 16, "stream_wire.timestamp_ns: the wire layout");
_Static_assert(STREAM_WIRE_HEADER_SIZE == 32, "stream_wire: the header's wire size");
_Static_assert(sizeof(struct stream_wire) == 288, "stream_wire: the wire size");
_Static_assert(offsetof(struct stream_wire_counters, dropped) == 8 && sizeof(struct stream_wire_counters) == 16,
	       "stream_wire_counters: the layout");

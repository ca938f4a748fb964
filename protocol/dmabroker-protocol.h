/* SPDX-License-Identifier: MIT */
/*
 * The names, flags and limits of org.dmabroker.Broker1 that the daemon,
 * the client library and the tools share: one definition of each.
 * org.dmabroker.Broker1.xml describes what they mean; this header is
 * installed with dmabroker.h, which builds its public names on these.
 */
#ifndef DMABROKER_PROTOCOL_H
#define DMABROKER_PROTOCOL_H

/* Where the daemon is found. */
#define DMABROKER_BUS_NAME "org.dmabroker.Broker1"
#define DMABROKER_OBJECT_PATH "/org/dmabroker/Broker1"
#define DMABROKER_INTERFACE "org.dmabroker.Broker1"

/* Usage flags of Allocate, Import, Attach and streams (the protocol's "usage" u). */
enum dmabroker_usage {
	DMABROKER_USAGE_CPU_READ   = 1u << 0, /* mmap and read */
	DMABROKER_USAGE_CPU_WRITE  = 1u << 1, /* mmap and write */
	DMABROKER_USAGE_SCANOUT    = 1u << 2, /* a KMS framebuffer */
	DMABROKER_USAGE_CAPTURE    = 1u << 3, /* written by a V4L2 device */
	DMABROKER_USAGE_GPU        = 1u << 4, /* read or written by a GPU */
	DMABROKER_USAGE_CONTIGUOUS = 1u << 5, /* physically contiguous memory (CMA) */
};
#define DMABROKER_USAGE_ALL 0x3fu
#define DMABROKER_USAGE_DEVICE (DMABROKER_USAGE_SCANOUT | DMABROKER_USAGE_CAPTURE | DMABROKER_USAGE_GPU)

/* BeginAccess modes and flags. */
#define DMABROKER_ACCESS_READ 1u
#define DMABROKER_ACCESS_WRITE 2u
#define DMABROKER_ACCESS_NONBLOCK 1u     /* Busy instead of waiting */
#define DMABROKER_ACCESS_MAX_MULTI 16    /* buffers in one BeginAccessMulti */

/* CreateToken and Attach flags. */
#define DMABROKER_TOKEN_SINGLE_USE 1u
#define DMABROKER_ATTACH_STATIC 1u       /* pins the buffer: no moves */

/* Streams. */
#define DMABROKER_STREAM_MAX_BUFFERS 16
#define DMABROKER_STREAM_MAX_CONSUMERS 8
#define DMABROKER_STREAM_MAX_FORMATS 32
#define DMABROKER_STREAM_MAX_MODIFIERS 16
#define DMABROKER_STREAM_MAX_DEVICES 4
#define DMABROKER_STREAM_MAX_DAMAGE 16   /* rectangles per frame; more is the whole frame */
#define DMABROKER_STREAM_MAX_ALLOW 16    /* uids and gids a producer lets join */

#endif

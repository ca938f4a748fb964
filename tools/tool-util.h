/* SPDX-License-Identifier: MIT */
/* Small helpers shared by the clients in tools/ (camera, display, process, wayland, gl). */
#pragma once

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dmabroker.h"

static const char *tool_name = "dmabroker";

static inline void set_tool_name(const char *name)
{
	tool_name = name;
}

/* Prints "NAME: error: ..." to stderr; returns -1. */
static inline int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline int fail(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "%s: error: ", tool_name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return -1;
}

/* Bad usage: a message (or none) and a hint; returns 2, the exit status. */
static inline int usage_error(const char *prog, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline int usage_error(const char *prog, const char *fmt, ...)
{
	if (fmt) {
		va_list ap;
		fprintf(stderr, "%s: ", prog);
		va_start(ap, fmt);
		vfprintf(stderr, fmt, ap);
		va_end(ap);
		fputc('\n', stderr);
	}
	fprintf(stderr, "Try '%s --help'.\n", prog);
	return 2;
}

static inline bool parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *ret)
{
	char *end;
	unsigned long long v;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max || *s == '-')
		return false;
	*ret = (uint32_t)v;
	return true;
}

/* "YUYV", "XR24": four characters, padded with spaces if shorter. */
static inline bool parse_fourcc(const char *s, uint32_t *ret)
{
	size_t n = strlen(s);
	char c[4] = { ' ', ' ', ' ', ' ' };
	if (n == 0 || n > 4)
		return false;
	memcpy(c, s, n);
	*ret = (uint32_t)c[0] | (uint32_t)c[1] << 8 | (uint32_t)c[2] << 16 | (uint32_t)c[3] << 24;
	return true;
}

static inline const char *fourcc_name(uint32_t f, char out[static 5])
{
	for (int i = 0; i < 4; i++) {
		char c = (char)(f >> (8 * i));
		out[i] = c >= 32 && c < 127 ? c : '?';
	}
	out[4] = 0;
	return out;
}

static inline uint64_t monotonic_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* qsort() order of doubles, for the latency percentiles the clients print. */
static inline int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/*
 * Whether DRM card N's device also has a render node. One without (vkms) is
 * rendered by Mesa's kms_swrast, which reads and writes only dumb buffers
 * allocated on that device: a client on it asks for native buffers.
 */
static inline bool card_has_render_node(int card)
{
	char path[96];
	for (int k = 128; k < 192; k++) {
		snprintf(path, sizeof(path), "/sys/class/drm/card%d/device/drm/renderD%d", card, k);
		if (access(path, F_OK) == 0)
			return true;
	}
	return false;
}

/* Writes an XRGB8888 (little-endian B, G, R, X) image as a binary PPM. 0 or -errno. */
static inline int write_ppm_xrgb(const char *path, const uint8_t *pixels, uint32_t width, uint32_t height,
				 uint32_t stride)
{
	FILE *f = fopen(path, "wbe");
	uint8_t *row;
	int r = 0;

	if (!f)
		return -errno;
	row = malloc((size_t)width * 3);
	if (!row) {
		fclose(f);
		return -ENOMEM;
	}
	fprintf(f, "P6\n%u %u\n255\n", width, height);
	for (uint32_t y = 0; y < height && r == 0; y++) {
		const uint8_t *src = pixels + (size_t)y * stride;
		for (uint32_t x = 0; x < width; x++) {
			row[3 * x] = src[4 * x + 2];
			row[3 * x + 1] = src[4 * x + 1];
			row[3 * x + 2] = src[4 * x];
		}
		if (fwrite(row, 3, width, f) != width)
			r = -EIO;
	}
	free(row);
	if (fclose(f) != 0 && r == 0)
		r = -errno;
	return r;
}

/*
 * Joins a stream, waiting up to wait_s seconds for its producer to create
 * it (consumers may start first). *stop ends the wait early. 0 or -errno
 * (the daemon's message in dmabroker_error_message()).
 */
static inline int join_stream(struct dmabroker *b, const struct dmabroker_stream_desc *d, uint32_t wait_s,
			      volatile int *stop, struct dmabroker_stream **ret)
{
	uint64_t deadline = monotonic_ns() + (uint64_t)wait_s * 1000000000u;
	bool said = false;
	int r;

	while ((r = dmabroker_stream_join(b, d, ret)) == -ENXIO && !*stop && monotonic_ns() < deadline) {
		if (!said)
			printf("%s: waiting up to %u s for stream '%s' to be created\n", tool_name, wait_s, d->name);
		fflush(stdout);
		said = true;
		usleep(50000);
	}
	return r;
}

/* A refusal about stream name: the daemon's message as is when it names the stream already. */
static inline int fail_stream(struct dmabroker *b, const char *what, const char *name)
{
	const char *msg = dmabroker_error_message(b);
	if (!msg)
		msg = "failed";
	if (strncmp(msg, "stream '", 8) == 0)
		return fail("%s", msg);
	return fail("%s '%s': %s", what, name, msg);
}

/* SPDX-License-Identifier: MIT */
/*
 * check-consumer: a consumer written for the GL test. It reads every frame
 * of a stream dmabroker-gl produces and compares it, pixel for pixel (the
 * X byte ignored), with the transform computed here from the camera's own
 * copy of the frame (dmabroker-camera --save-frames DIR): the input frame
 * mirrored left to right, the frame number drawn in the top row as 16 8x8
 * blocks, bit 0 leftmost, white for 1. FIFO end to end, the gl stage's
 * frame with sequence N is the camera's frame N (DIR/frame-N.raw), and the
 * number drawn in must be N (mod 65536).
 *
 * Prints "check: N frames, M identical, K differ" and exits 1 when a frame
 * differs or none came.
 *
 * usage: check-consumer --session --stream NAME --frames-dir DIR
 */
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


#include "dmabroker.h"

static int compare(const uint8_t *map, uint64_t off, uint32_t stride, uint32_t w, uint32_t h, const char *dir,
		   uint64_t seq, unsigned *counter)
{
	char path[4096], fourcc[8];
	unsigned n = 0, fw, fh;
	uint8_t *src;
	FILE *f;
	int bad = 0;

	for (unsigned bit = 0; bit < 16; bit++) /* the number drawn in: block centres of the top row */
		if (map[off + 4 * stride + (8 * bit + 4) * 4] > 0x80)
			n |= 1u << bit;
	*counter = n;
	n = (unsigned)(seq & 0xffff); /* what must be drawn in */
	snprintf(path, sizeof(path), "%s/frame-%llu.raw", dir, (unsigned long long)seq);
	f = fopen(path, "re");
	if (!f || fscanf(f, "DMBF %7s %u %u\n", fourcc, &fw, &fh) != 3 || strcmp(fourcc, "XR24") || fw != w || fh != h) {
		fprintf(stderr, "check-consumer: no XR24 %ux%u camera frame %s\n", w, h, path);
		if (f)
			fclose(f);
		return -1;
	}
	src = malloc((size_t)w * h * 4);
	if (fread(src, 4, (size_t)w * h, f) != (size_t)w * h)
		bad = -1;
	fclose(f);
	for (uint32_t y = 0; y < h && !bad; y++)
		for (uint32_t x = 0; x < w && !bad; x++) {
			const uint8_t *got = map + off + (size_t)y * stride + (size_t)x * 4, *want;
			uint8_t block[4];
			if (y < 8 && x < 128) {
				memset(block, (n >> (x / 8)) & 1 ? 0xff : 0, sizeof(block));
				want = block;
			} else {
				want = src + ((size_t)y * w + (w - 1 - x)) * 4;
			}
			bad = memcmp(got, want, 3) != 0; /* B, G, R; not X */
		}
	free(src);
	return bad;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "session", no_argument, NULL, 'S' }, { "stream", required_argument, NULL, 's' },
		{ "frames-dir", required_argument, NULL, 'D' }, { 0 },
	};
	const char *stream = "gl", *dir = NULL;
	bool session = false;
	unsigned frames = 0, same = 0, differ = 0;
	struct dmabroker *b;
	struct dmabroker_stream *s;
	int opt, r;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'S': session = true; break;
		case 's': stream = optarg; break;
		case 'D': dir = optarg; break;
		default: return fprintf(stderr, "check-consumer: bad usage\n"), 2;
		}
	}
	if (!dir)
		return fprintf(stderr, "check-consumer: --frames-dir DIR\n"), 2;
	r = dmabroker_connect(session ? DMABROKER_BUS_SESSION : DMABROKER_BUS_SYSTEM, &b);
	if (r < 0)
		return fprintf(stderr, "check-consumer: connect: %s\n", strerror(-r)), 1;
	{
		struct dmabroker_stream_desc d = {
			.version = DMABROKER_STREAM_DESC_VERSION, .name = stream, .label = "check-consumer",
			.usage = DMABROKER_USAGE_CPU_READ_FLAG,
		};
		for (int t = 0; (r = dmabroker_stream_join(b, &d, &s)) == -ENXIO && t < 1200; t++)
			usleep(100000);
	}
	if (r >= 0)
		r = dmabroker_stream_wait_ready(s, 120000);
	if (r < 0)
		return fprintf(stderr, "check-consumer: stream: %s\n", dmabroker_error_message(b)), 1;
	for (;;) {
		struct dmabroker_frame f;
		uint64_t off;
		uint32_t stride;
		unsigned counter;
		void *map;
		r = dmabroker_stream_acquire(s, &f);
		if (r == -EAGAIN) {
			if (dmabroker_stream_wait(s, 60000) <= 0)
				return fprintf(stderr, "check-consumer: no frame in 60 s\n"), 1;
			continue;
		}
		if (r == -EPIPE)
			break;
		if (r < 0)
			return fprintf(stderr, "check-consumer: acquire: %s\n", strerror(-r)), 1;
		r = dmabroker_stream_cpu_begin(s, f.index, DMABROKER_ACCESS_READ, f.fence, 10000, &map);
		if (f.fence >= 0)
			close(f.fence);
		if (r < 0)
			return fprintf(stderr, "check-consumer: cpu_begin: %s\n", strerror(-r)), 1;
		dmabroker_buffer_get_plane(f.buffer, 0, &off, &stride);
		r = compare(map, off, stride, dmabroker_stream_get_width(s), dmabroker_stream_get_height(s), dir,
			    f.sequence, &counter);
		dmabroker_stream_cpu_end(s, f.index);
		dmabroker_stream_release(s, f.index, -1);
		frames++;
		if (r == 0)
			same++;
		else {
			differ++;
			if (differ <= 5)
				fprintf(stderr, "check-consumer: frame %llu differs (number drawn in: %u)\n",
					(unsigned long long)f.sequence, counter);
		}
	}
	printf("check: %u frames, %u identical, %u differ\n", frames, same, differ);
	dmabroker_stream_destroy(s);
	dmabroker_disconnect(b);
	return frames && !differ ? 0 : 1;
}

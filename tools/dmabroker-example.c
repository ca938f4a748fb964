/* SPDX-License-Identifier: MIT */
/*
 * dmabroker-example: the example clients of docs/ACCESS-MODEL.md. One writes frames into
 * a shared buffer, the other reads them, every touch inside an access grant.
 *
 *   dmabroker-example write [FRAMES]   allocate, write FRAMES frames (every pixel of frame k is k), printing
 *                                      a sharing token once frame 1 is written
 *   dmabroker-example read TOKEN [FRAMES]
 *                                      open the buffer, read FRAMES frames, check each is whole and
 *                                      none older than the one before
 *
 * Both use the session bus (DBUS_SESSION_BUS_ADDRESS).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <drm_fourcc.h>

#include "dmabroker.h"

static int fail(struct dmabroker *b, const char *what, int r)
{
	fprintf(stderr, "dmabroker-example: %s: %s\n", what,
		b && dmabroker_error_message(b) ? dmabroker_error_message(b) : strerror(-r));
	return 1;
}

static int writer(int frames)
{
	struct dmabroker_alloc_desc desc = {
		.version = DMABROKER_ALLOC_DESC_VERSION,
		.width = 640, .height = 480, .fourcc = DRM_FORMAT_XRGB8888,
		.usage = DMABROKER_USAGE_CPU_WRITE_FLAG | DMABROKER_USAGE_CPU_READ_FLAG,
	};
	struct dmabroker *b;
	struct dmabroker_buffer *buf;
	uint32_t *pixels;
	char *token;
	size_t n;
	int r;

	if ((r = dmabroker_connect(DMABROKER_BUS_SESSION, &b)) < 0)
		return fail(NULL, "connect", r);
	if ((r = dmabroker_allocate(b, &desc, &buf)) < 0 ||
	    (r = dmabroker_buffer_create_token(buf, 0, 0, &token)) < 0)
		return fail(b, "allocate", r);
	n = dmabroker_buffer_get_size(buf) / 4;
	pixels = mmap(NULL, n * 4, PROT_READ | PROT_WRITE, MAP_SHARED, dmabroker_buffer_get_fd(buf), 0);
	if (pixels == MAP_FAILED)
		return fail(b, "mmap", -errno);
	for (uint32_t frame = 1; frame <= (uint32_t)frames; frame++) {
		uint64_t grant;
		/* Waits until no reader reads, and for their fences. */
		if ((r = dmabroker_buffer_cpu_begin(buf, DMABROKER_ACCESS_WRITE, -1, &grant)) < 0)
			return fail(b, "begin", r);
		for (size_t i = 0; i < n; i++)
			pixels[i] = frame;
		if ((r = dmabroker_buffer_cpu_end(buf, grant)) < 0)
			return fail(b, "end", r);
		if (frame == 1) {
			/* give this to the reader once frame 1 is in: whatever it reads is a written frame */
			printf("%s\n", token);
			fflush(stdout);
		}
		usleep(2000);
	}
	munmap(pixels, n * 4);
	free(token);
	dmabroker_disconnect(b);
	return 0;
}

static int reader(const char *token, int frames)
{
	struct dmabroker *b;
	struct dmabroker_buffer *buf;
	const uint32_t *pixels;
	uint32_t first = 0, last = 0;
	int torn = 0, backwards = 0, r;
	size_t n;

	if ((r = dmabroker_connect(DMABROKER_BUS_SESSION, &b)) < 0)
		return fail(NULL, "connect", r);
	if ((r = dmabroker_open_token(b, token, &buf)) < 0)
		return fail(b, "open", r);
	/* Per-frame calls go over a direct connection: no bus hop. */
	if ((r = dmabroker_open_direct(b)) < 0)
		return fail(b, "direct", r);
	n = dmabroker_buffer_get_size(buf) / 4;
	pixels = mmap(NULL, n * 4, PROT_READ, MAP_SHARED, dmabroker_buffer_get_fd(buf), 0);
	if (pixels == MAP_FAILED)
		return fail(b, "mmap", -errno);
	for (int k = 0; k < frames; k++) {
		uint64_t grant;
		/* Waits until no writer writes, and for the last writer's fence. */
		if ((r = dmabroker_buffer_cpu_begin(buf, DMABROKER_ACCESS_READ, -1, &grant)) < 0)
			return fail(b, "begin", r);
		for (size_t i = 1; i < n; i++)
			if (pixels[i] != pixels[0]) {
				torn++;
				break;
			}
		/* the writer's frames, in the order it wrote them: never an older one after a newer one */
		if (k == 0)
			first = pixels[0];
		else if (pixels[0] < last)
			backwards++;
		last = pixels[0];
		if ((r = dmabroker_buffer_cpu_end(buf, grant)) < 0)
			return fail(b, "end", r);
	}
	printf("%d frames read, %d torn, %d out of order, first frame %" PRIu32 ", last frame %" PRIu32 "\n", frames,
	       torn, backwards, first, last);
	dmabroker_disconnect(b);
	return torn || backwards ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "write") == 0)
		return writer(argc > 2 ? atoi(argv[2]) : 100);
	if (argc >= 3 && strcmp(argv[1], "read") == 0)
		return reader(argv[2], argc > 3 ? atoi(argv[3]) : 100);
	fprintf(stderr, "usage: dmabroker-example write [FRAMES]\n"
			"       dmabroker-example read TOKEN [FRAMES]\n");
	return 2;
}

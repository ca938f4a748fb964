/* SPDX-License-Identifier: MIT */
/*
 * fence-producer: a stream producer written for the Wayland tests, not a
 * real one. Like a GPU it queues each frame while the frame is still being
 * written, under a pending ready fence (sw_sync), and signals the fence
 * --delay-ms later, once the frame is complete: the consumer gets the frame
 * with its acquire fence still pending. Each frame is one colour, from the
 * frame's number (see colour_of()). It waits for each buffer's release
 * fence before writing it again and counts the release fences that came
 * pending.
 *
 * Prints one line per frame ("queued N at T", "signalled N at T": taken
 * just before it signals; CLOCK_MONOTONIC seconds) and a summary:
 * "fence-producer: N frames, R release fences, P of them pending".
 *
 * usage: fence-producer --session --stream NAME [--frames N] [--size WxH] [--delay-ms MS] [--mode fifo|mailbox]
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <drm_fourcc.h>

#include "dmabroker.h"
#include "uapi-extra.h"

/* CLOCK_MONOTONIC now, as seconds with 6 decimals (wp_presentation's clock in Weston) */
static const char *now_s(char out[static 32])
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	snprintf(out, 32, "%lld.%06ld", (long long)ts.tv_sec, ts.tv_nsec / 1000);
	return out;
}

/* frame n's colour, XRGB8888: the test computes the same */
static uint32_t colour_of(unsigned n)
{
	return 0xff000000u | ((n * 53u) & 0xff) << 16 | ((n * 101u) & 0xff) << 8 | ((n * 197u) & 0xff);
}

static bool pending(int fence)
{
	struct pollfd p = { .fd = fence, .events = POLLIN };
	return poll(&p, 1, 0) == 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "session", no_argument, NULL, 'S' },     { "stream", required_argument, NULL, 's' },
		{ "frames", required_argument, NULL, 'n' }, { "size", required_argument, NULL, 'z' },
		{ "delay-ms", required_argument, NULL, 'd' }, { "mode", required_argument, NULL, 'm' },
		{ 0 },
	};
	const char *stream = "fenced";
	unsigned frames = 20, w = 320, h = 180, delay_ms = 100, releases = 0, pending_releases = 0, point = 0;
	enum dmabroker_stream_mode mode = DMABROKER_STREAM_FIFO;
	bool session = false;
	struct dmabroker *b = NULL;
	struct dmabroker_stream *s = NULL;
	int opt, r, timeline;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'S': session = true; break;
		case 's': stream = optarg; break;
		case 'n': frames = (unsigned)atoi(optarg); break;
		case 'z':
			if (sscanf(optarg, "%ux%u", &w, &h) != 2)
				return fprintf(stderr, "fence-producer: --size WxH\n"), 2;
			break;
		case 'd': delay_ms = (unsigned)atoi(optarg); break;
		case 'm': mode = strcmp(optarg, "mailbox") == 0 ? DMABROKER_STREAM_MAILBOX : DMABROKER_STREAM_FIFO; break;
		default: return fprintf(stderr, "fence-producer: bad usage\n"), 2;
		}
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	timeline = open(SW_SYNC_DEBUGFS_PATH, O_RDWR | O_CLOEXEC);
	if (timeline < 0)
		return fprintf(stderr, "fence-producer: %s: %s\n", SW_SYNC_DEBUGFS_PATH, strerror(errno)), 1;
	r = dmabroker_connect(session ? DMABROKER_BUS_SESSION : DMABROKER_BUS_SYSTEM, &b);
	if (r < 0)
		return fprintf(stderr, "fence-producer: connect: %s\n", strerror(-r)), 1;
	{
		const uint32_t xrgb[] = { DRM_FORMAT_XRGB8888 };
		struct dmabroker_stream_desc d = {
			.version = DMABROKER_STREAM_DESC_VERSION, .name = stream, .label = "fence-producer",
			.usage = DMABROKER_USAGE_CPU_WRITE_FLAG, .formats = xrgb, .n_formats = 1, .mode = mode,
			.buffers = 4, .width = w, .height = h, .consumers = 1,
		};
		r = dmabroker_stream_create(b, &d, &s);
	}
	if (r >= 0)
		r = dmabroker_stream_wait_ready(s, 120000);
	if (r < 0)
		return fprintf(stderr, "fence-producer: stream: %s\n", dmabroker_error_message(b)), 1;
	printf("fence-producer: stream '%s' %ux%u on %s\n", stream, w, h, dmabroker_stream_get_backend(s));
	for (unsigned n = 1; n <= frames; n++) {
		struct dmabroker_frame f;
		struct sw_sync_create_fence_data fd = { .value = ++point };
		uint32_t *map, c = colour_of(n);
		uint64_t off;
		uint32_t stride;

		while ((r = dmabroker_stream_dequeue(s, &f)) == -EAGAIN)
			if (dmabroker_stream_wait(s, 60000) <= 0)
				return fprintf(stderr, "fence-producer: no buffer came back in 60 s\n"), 1;
		if (r < 0)
			return fprintf(stderr, "fence-producer: dequeue: %s\n", strerror(-r)), 1;
		if (f.fence >= 0) {
			releases++;
			pending_releases += pending(f.fence);
		}
		/* the buffer is ours once its release fence signals */
		r = dmabroker_stream_cpu_begin(s, f.index, DMABROKER_ACCESS_WRITE, f.fence, 30000, (void **)&map);
		if (f.fence >= 0)
			close(f.fence);
		if (r < 0)
			return fprintf(stderr, "fence-producer: cpu_begin: %s\n", strerror(-r)), 1;
		dmabroker_buffer_get_plane(f.buffer, 0, &off, &stride);
		/* the first half now, the rest while the frame is already queued under its pending fence */
		for (unsigned y = 0; y < h / 2; y++)
			for (unsigned x = 0; x < w; x++)
				map[(off + (size_t)y * stride) / 4 + x] = c;
		dmabroker_stream_cpu_end(s, f.index);
		snprintf(fd.name, sizeof(fd.name), "frame-%u", n);
		if (ioctl(timeline, SW_SYNC_IOC_CREATE_FENCE, &fd) < 0)
			return fprintf(stderr, "fence-producer: sw_sync: %s\n", strerror(errno)), 1;
		r = dmabroker_stream_queue(s, f.index, fd.fence, n, 0, NULL, 0);
		close(fd.fence);
		if (r < 0)
			return fprintf(stderr, "fence-producer: queue: %s\n", strerror(-r)), 1;
		printf("queued %u at %s\n", n, now_s((char[32]){ 0 }));
		fflush(stdout);
		dmabroker_process(b);
		usleep(delay_ms * 1000);
		for (unsigned y = h / 2; y < h; y++)
			for (unsigned x = 0; x < w; x++)
				map[(off + (size_t)y * stride) / 4 + x] = c;
		{
			char t[32];
			now_s(t); /* before: signalling wakes the fence's waiters, which may run before this process */
			r = ioctl(timeline, SW_SYNC_IOC_INC, &(uint32_t){ 1 });
			printf("signalled %u at %s\n", n, t);
		}
		fflush(stdout);
		dmabroker_process(b);
	}
	printf("fence-producer: %u frames, %u release fences, %u of them pending\n", frames, releases, pending_releases);
	dmabroker_stream_destroy(s);
	dmabroker_disconnect(b);
	return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * dmabroker-process: a processing stage between two streams. It consumes
 * frames of one stream (YUYV or XR24), turns each into grey-scale XR24 with
 * the CPU, and produces them into a second stream, carrying the sequence
 * and the capture timestamp through. Each step takes an input frame and an
 * output buffer together (dmabroker_streams_take(): both or neither), waits
 * for both their fences (the input's acquire fence, the output's release
 * fence), and only then touches either.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <drm_fourcc.h>

#include "dmabroker.h"
#include "tool-util.h"

static volatile int stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: dmabroker-process [OPTION]...\n"
		"Consume one dmabroker stream, turn each frame grey with the CPU, and produce\n"
		"the result into a second stream.\n"
		"\n"
		"  -i, --input NAME       stream to consume (default: camera)\n"
		"  -o, --output NAME      stream to produce, XR24 (default: grey)\n"
		"  -m, --mode MODE        the output stream's mode: fifo or mailbox (default: mailbox)\n"
		"  -b, --buffers N        the output stream's buffers, 2 to 16 (default: 4)\n"
		"  -c, --consumers N      consumers of the output to wait for (default: 1)\n"
		"  -n, --frames N         stop after N frames (default: until the input ends)\n"
		"  -w, --wait SECONDS     wait this long for the stream to be created (default: 30)\n"
		"      --session          use the session bus (default: the system bus)\n"
		"  -q, --quiet            print only errors and the summary\n"
		"  -h, --help             show this help\n"
		"\n"
		"Exit status: 0 when done, 1 on a failure (the message says which), 2 on bad usage.\n");
}

static inline uint32_t grey(uint8_t y)
{
	return 0xff000000u | (uint32_t)y << 16 | (uint32_t)y << 8 | y;
}

static void convert(uint32_t fourcc, const uint8_t *src, uint32_t src_stride, uint8_t *dst, uint32_t dst_stride,
		    uint32_t w, uint32_t h)
{
	for (uint32_t y = 0; y < h; y++) {
		const uint8_t *s = src + (size_t)y * src_stride;
		uint32_t *d = (uint32_t *)(dst + (size_t)y * dst_stride);
		if (fourcc == DRM_FORMAT_YUYV) {
			for (uint32_t x = 0; x < w; x++)
				d[x] = grey(s[2 * x]);
		} else { /* XRGB8888: B, G, R, X; BT.601 luma */
			for (uint32_t x = 0; x < w; x++) {
				uint32_t b = s[4 * x], g = s[4 * x + 1], r = s[4 * x + 2];
				d[x] = grey((uint8_t)((77 * r + 150 * g + 29 * b) >> 8));
			}
		}
	}
}

static struct dmabroker *conn;
static struct dmabroker_stream *in, *out;

/* On every exit, also the early ones: nothing left for the leak checkers. */
static void cleanup(void)
{
	dmabroker_stream_destroy(out);
	dmabroker_stream_destroy(in);
	dmabroker_disconnect(conn);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "input", required_argument, NULL, 'i' },  { "output", required_argument, NULL, 'o' },
		{ "mode", required_argument, NULL, 'm' },   { "buffers", required_argument, NULL, 'b' },
		{ "consumers", required_argument, NULL, 'c' }, { "frames", required_argument, NULL, 'n' },
		{ "session", no_argument, NULL, 'S' },      { "wait", required_argument, NULL, 'w' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },         { 0 },
	};
	static const uint32_t in_formats[] = { DRM_FORMAT_YUYV, DRM_FORMAT_XRGB8888 };
	static const uint32_t out_formats[] = { DRM_FORMAT_XRGB8888 };
	const char *in_name = "camera", *out_name = "grey";
	enum dmabroker_stream_mode mode = DMABROKER_STREAM_MAILBOX;
	uint32_t buffers = 4, consumers = 1, limit = 0;
	struct dmabroker *b = NULL;
	uint64_t frames = 0, t0 = 0;
	uint32_t wait_s = 30;
	bool session = false, quiet = false;
	char name[5];
	int opt, r;

	while ((opt = getopt_long(argc, argv, "i:o:m:b:c:n:w:qh", opts, NULL)) != -1) {
		switch (opt) {
		case 'i': in_name = optarg; break;
		case 'o': out_name = optarg; break;
		case 'm':
			if (strcmp(optarg, "fifo") == 0)
				mode = DMABROKER_STREAM_FIFO;
			else if (strcmp(optarg, "mailbox") == 0)
				mode = DMABROKER_STREAM_MAILBOX;
			else
				return usage_error("dmabroker-process", "--mode: fifo or mailbox");
			break;
		case 'b': if (!parse_u32(optarg, 2, 16, &buffers)) return usage_error("dmabroker-process", "--buffers: 2 to 16"); break;
		case 'c': if (!parse_u32(optarg, 0, 8, &consumers)) return usage_error("dmabroker-process", "--consumers: 0 to 8"); break;
		case 'n': if (!parse_u32(optarg, 1, UINT32_MAX, &limit)) return usage_error("dmabroker-process", "--frames: a positive number"); break;
		case 'S': session = true; break;
		case 'w':
			if (!parse_u32(optarg, 0, 86400, &wait_s))
				return usage_error("dmabroker-process", "--wait: 0 to 86400 seconds");
			break;
		case 'q': quiet = true; break;
		case 'h': usage(stdout); return 0;
		default: return usage_error("dmabroker-process", NULL);
		}
	}
	if (optind < argc)
		return usage_error("dmabroker-process", "unexpected argument '%s'", argv[optind]);
	set_tool_name("process");
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);

	atexit(cleanup);
	r = dmabroker_connect(session ? DMABROKER_BUS_SESSION : DMABROKER_BUS_SYSTEM, &b);
	conn = b;
	if (r < 0)
		return fail("cannot reach dmabrokerd on the %s bus: %s", session ? "session" : "system", strerror(-r)), 1;
	{
		struct dmabroker_stream_desc d = {
			.version = DMABROKER_STREAM_DESC_VERSION, .name = in_name, .label = "process",
			.usage = DMABROKER_USAGE_CPU_READ_FLAG, .formats = in_formats, .n_formats = 2,
			.max_acquired = 1,
		};
		r = join_stream(b, &d, wait_s, &stop, &in);
		/* however long negotiation takes: each 200 ms only lets a signal stop us */
		while (r >= 0 && !stop && (r = dmabroker_stream_wait_ready(in, 200)) == -ETIMEDOUT)
			r = 0;
	}
	if (stop)
		return 0;
	if (r < 0)
		return fail_stream(b, "input stream", in_name), 1;
	{
		struct dmabroker_stream_desc d = {
			.version = DMABROKER_STREAM_DESC_VERSION, .name = out_name, .label = "process",
			.usage = DMABROKER_USAGE_CPU_WRITE_FLAG, .formats = out_formats, .n_formats = 1,
			.mode = mode, .buffers = buffers, .width = dmabroker_stream_get_width(in),
			.height = dmabroker_stream_get_height(in), .consumers = consumers,
		};
		r = dmabroker_stream_create(b, &d, &out);
		/* however late its consumers join (it gave up after 200 ms once) */
		while (r >= 0 && !stop && (r = dmabroker_stream_wait_ready(out, 200)) == -ETIMEDOUT)
			r = 0;
	}
	if (stop)
		return 0;
	if (r < 0)
		return fail_stream(b, "output stream", out_name), 1;
	if (!quiet)
		printf("process: %s %ux%u %s -> %s XR24 (grey)\n", in_name, dmabroker_stream_get_width(in),
		       dmabroker_stream_get_height(in), fourcc_name(dmabroker_stream_get_fourcc(in), name), out_name);
	fflush(stdout);

	while (!stop && (!limit || frames < limit)) {
		struct dmabroker_frame fi, fo;
		uint64_t ioff, ooff;
		uint32_t istride, ostride;
		void *imap, *omap;
		struct dmabroker_stream *both[2] = { in, out };
		struct dmabroker_frame taken[2];

		/* an input frame and an output buffer, both or neither */
		r = dmabroker_streams_take(2, both, taken);
		if (r == -EAGAIN) {
			if (dmabroker_streams_wait(2, both, 1000) < 0)
				return fail("streams: %s", dmabroker_error_message(b)), 1;
			continue;
		}
		if (r == -EPIPE)
			break; /* the input ended: so does the output */
		if (r < 0)
			return fail("streams: %s", dmabroker_error_message(b)), 1;
		fi = taken[0];
		fo = taken[1];
		if (!t0)
			t0 = monotonic_ns();
		if (dmabroker_stream_cpu_begin(in, fi.index, DMABROKER_ACCESS_READ, fi.fence, 5000, &imap) < 0 ||
		    dmabroker_stream_cpu_begin(out, fo.index, DMABROKER_ACCESS_WRITE, fo.fence, 5000, &omap) < 0)
			return fail("waiting for the frames' fences: %s", dmabroker_error_message(b)), 1;
		dmabroker_buffer_get_plane(fi.buffer, 0, &ioff, &istride);
		dmabroker_buffer_get_plane(fo.buffer, 0, &ooff, &ostride);
		convert(dmabroker_stream_get_fourcc(in), (const uint8_t *)imap + ioff, istride, (uint8_t *)omap + ooff,
			ostride, dmabroker_stream_get_width(in), dmabroker_stream_get_height(in));
		dmabroker_stream_cpu_end(out, fo.index);
		dmabroker_stream_cpu_end(in, fi.index);
		if (fi.fence >= 0)
			close(fi.fence);
		if (fo.fence >= 0)
			close(fo.fence);
		if (dmabroker_stream_queue(out, fo.index, -1, fi.sequence, fi.timestamp_ns, NULL, 0) < 0 ||
		    dmabroker_stream_release(in, fi.index, -1) < 0)
			return fail("stream: %s", dmabroker_error_message(b)), 1;
		frames++;
		if (!quiet && frames % 100 == 0)
			printf("process: %" PRIu64 " frames\n", frames);
	}
	{
		double secs = t0 ? (double)(monotonic_ns() - t0) / 1e9 : 0;
		printf("process: %" PRIu64 " frames in %.2f s (%.1f fps)\n", frames, secs,
		       secs > 0 ? (double)frames / secs : 0.0);
	}
	return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * dmabroker-camera: captures from a V4L2 device straight into the buffers
 * of a dmabroker stream (V4L2_MEMORY_DMABUF: no copy) and queues each frame
 * with its capture timestamp. V4L2 does not wait for fences, so a buffer
 * the consumers handed back goes to the driver (QBUF) only once its release
 * fence has signalled; the wait is a poll() in the loop, never a block.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <libv4l2.h>
#include <linux/dma-buf.h>
#include <linux/videodev2.h>

#include "dmabroker.h"
#include "tool-util.h"

#define MAX_BUFFERS 16

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: dmabroker-camera [OPTION]...\n"
		"Capture from a V4L2 device into a dmabroker stream, as its producer.\n"
		"\n"
		"  -d, --device PATH      capture device (default: the first one with video capture)\n"
		"  -s, --stream NAME      stream name (default: camera)\n"
		"  -f, --format FOURCC    pixel format, a V4L2/DRM fourcc such as YUYV or XR24 (default: YUYV)\n"
		"  -W, --width N          frame width (default: 640)\n"
		"  -H, --height N         frame height (default: 480)\n"
		"  -r, --fps N            ask the device for N frames per second (default: its own rate)\n"
		"  -b, --buffers N        stream buffers, 2 to 16 (default: 4)\n"
		"  -m, --mode MODE        fifo or mailbox (default: mailbox)\n"
		"  -c, --consumers N      consumers to wait for before starting (default: 1)\n"
		"  -n, --frames N         stop after N frames (default: until SIGINT or SIGTERM)\n"
		"      --save-last FILE   write the last frame to FILE as a PPM (XR24/AR24 only)\n"
		"      --save-frames DIR  write every frame to DIR/frame-SEQUENCE.raw before handing it on:\n"
		"                         a line 'DMBF FOURCC WIDTH HEIGHT', then its rows (YUYV, XR24, AR24)\n"
		"      --session          use the session bus (default: the system bus)\n"
		"  -q, --quiet            print only errors and the summary\n"
		"  -h, --help             show this help\n"
		"\n"
		"Exit status: 0 when done, 1 on a failure (the message says which), 2 on bad usage.\n");
}

struct camera {
	int fd;
	const char *path;
	uint32_t fourcc, width, height, bytesperline, sizeimage;
	struct dmabroker *b;
	struct dmabroker_stream *s;
	unsigned n_buffers;
	int waiting_fence[MAX_BUFFERS];     /* a returned buffer's release fence, before QBUF */
	bool waiting[MAX_BUFFERS];
	bool queued[MAX_BUFFERS];           /* with the driver */
	bool monotonic;
	uint64_t frames, errors, ts_ahead;
};

static struct camera *cleanup_cam;

/* On every exit, also the early ones: nothing left for the leak checkers. */
static void cleanup(void)
{
	struct camera *cam = cleanup_cam;
	if (!cam)
		return;
	for (unsigned i = 0; i < MAX_BUFFERS; i++)
		if (cam->waiting_fence[i] >= 0)
			close(cam->waiting_fence[i]);
	dmabroker_stream_destroy(cam->s);
	dmabroker_disconnect(cam->b);
	if (cam->fd >= 0)
		v4l2_close(cam->fd);
}

static int xioctl(int fd, unsigned long req, void *arg)
{
	int r;
	do
		r = v4l2_ioctl(fd, req, arg);
	while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : 0;
}

static const char *find_capture_device(char *out, size_t len)
{
	for (int i = 0; i < 64; i++) {
		struct v4l2_capability cap = { 0 };
		char path[32];
		int fd;
		snprintf(path, sizeof(path), "/dev/video%d", i);
		fd = open(path, O_RDWR | O_CLOEXEC);
		if (fd < 0)
			continue;
		if (ioctl(fd, VIDIOC_QUERYCAP, &cap) == 0) {
			uint32_t caps = cap.capabilities & V4L2_CAP_DEVICE_CAPS ? cap.device_caps : cap.capabilities;
			if ((caps & V4L2_CAP_VIDEO_CAPTURE) && (caps & V4L2_CAP_STREAMING)) {
				close(fd);
				snprintf(out, len, "%s", path);
				return out;
			}
		}
		close(fd);
	}
	return NULL;
}

static int open_device(struct camera *cam)
{
	struct v4l2_capability cap = { 0 };
	uint32_t caps;
	int fd = open(cam->path, O_RDWR | O_NONBLOCK | O_CLOEXEC);

	if (fd < 0) {
		if (errno == ENOENT)
			return fail("%s: no such device (is the driver loaded? see `ls /dev/video*`)", cam->path);
		if (errno == EBUSY)
			return fail("%s: busy: another program has it open for capture", cam->path);
		return fail("%s: cannot open: %s", cam->path, strerror(errno));
	}
	/* libv4l2 without format emulation: DMABUF import needs the real format */
	cam->fd = v4l2_fd_open(fd, V4L2_DISABLE_CONVERSION);
	if (cam->fd < 0) {
		close(fd);
		return fail("%s: libv4l2 cannot take it: %s", cam->path, strerror(errno));
	}
	if (xioctl(cam->fd, VIDIOC_QUERYCAP, &cap) < 0)
		return fail("%s: not a V4L2 device (VIDIOC_QUERYCAP: %s)", cam->path, strerror(errno));
	caps = cap.capabilities & V4L2_CAP_DEVICE_CAPS ? cap.device_caps : cap.capabilities;
	if (!(caps & V4L2_CAP_VIDEO_CAPTURE))
		return fail("%s (%s): not a single-planar video capture device", cam->path, (char *)cap.card);
	if (!(caps & V4L2_CAP_STREAMING))
		return fail("%s (%s): cannot stream (no V4L2_CAP_STREAMING)", cam->path, (char *)cap.card);
	return 0;
}

static int set_format(struct camera *cam)
{
	struct v4l2_format fmt = { .type = V4L2_BUF_TYPE_VIDEO_CAPTURE };
	char want[5], got[5];
	int r;

	fmt.fmt.pix.pixelformat = cam->fourcc;
	fmt.fmt.pix.width = cam->width;
	fmt.fmt.pix.height = cam->height;
	fmt.fmt.pix.field = V4L2_FIELD_NONE;
	r = xioctl(cam->fd, VIDIOC_S_FMT, &fmt);
	if (r == -EBUSY)
		return fail("%s: busy: another program is streaming from it", cam->path);
	if (r < 0)
		return fail("%s: VIDIOC_S_FMT: %s", cam->path, strerror(-r));
	if (fmt.fmt.pix.pixelformat != cam->fourcc) {
		struct v4l2_fmtdesc d = { .type = V4L2_BUF_TYPE_VIDEO_CAPTURE };
		char list[512] = "";
		for (d.index = 0; xioctl(cam->fd, VIDIOC_ENUM_FMT, &d) == 0 && strlen(list) < 400; d.index++)
			snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", d.index ? " " : "",
				 fourcc_name(d.pixelformat, got));
		return fail("%s refuses the format %s; it offers: %s", cam->path, fourcc_name(cam->fourcc, want), list);
	}
	if (fmt.fmt.pix.width != cam->width || fmt.fmt.pix.height != cam->height)
		return fail("%s refuses %ux%u %s; the nearest it offers is %ux%u", cam->path, cam->width, cam->height,
			    fourcc_name(cam->fourcc, want), fmt.fmt.pix.width, fmt.fmt.pix.height);
	cam->bytesperline = fmt.fmt.pix.bytesperline;
	cam->sizeimage = fmt.fmt.pix.sizeimage;
	return 0;
}

static int qbuf(struct camera *cam, unsigned i)
{
	struct dmabroker_buffer *buf = dmabroker_stream_get_buffer(cam->s, i);
	struct v4l2_buffer vb = {
		.index = i, .type = V4L2_BUF_TYPE_VIDEO_CAPTURE, .memory = V4L2_MEMORY_DMABUF,
		.length = (uint32_t)dmabroker_buffer_get_size(buf),
	};
	int r;

	vb.m.fd = dmabroker_buffer_get_fd(buf);
	r = xioctl(cam->fd, VIDIOC_QBUF, &vb);
	if (r == -ENODEV)
		return fail("%s: the device was unplugged", cam->path);
	if (r < 0)
		return fail("%s: VIDIOC_QBUF of stream buffer %u: %s", cam->path, i, strerror(-r));
	cam->queued[i] = true;
	return 0;
}

/* Takes every buffer the consumers handed back: QBUF now, or once its fence signals. */
static int take_free_buffers(struct camera *cam)
{
	struct dmabroker_frame f;
	int r;

	while ((r = dmabroker_stream_dequeue(cam->s, &f)) == 0) {
		if (f.fence >= 0 && dmabroker_fence_status(f.fence) != 1) {
			cam->waiting[f.index] = true;
			cam->waiting_fence[f.index] = f.fence;
			continue;
		}
		if (f.fence >= 0)
			close(f.fence);
		r = qbuf(cam, f.index);
		if (r < 0)
			return r;
	}
	if (r != -EAGAIN)
		return fail("stream: %s", dmabroker_error_message(cam->b) ? dmabroker_error_message(cam->b) : strerror(-r));
	return 0;
}

static int save_ppm(struct camera *cam, unsigned index, const char *path)
{
	struct dmabroker_buffer *buf = dmabroker_stream_get_buffer(cam->s, index);
	uint64_t offset;
	uint32_t stride;
	void *map;
	int r;

	if (cam->fourcc != V4L2_PIX_FMT_XBGR32 && cam->fourcc != V4L2_PIX_FMT_ABGR32)
		return fail("--save-last writes XR24/AR24 frames only");
	dmabroker_buffer_get_plane(buf, 0, &offset, &stride);
	r = dmabroker_stream_cpu_begin(cam->s, index, DMABROKER_ACCESS_READ, -1, 1000, &map);
	if (r < 0)
		return fail("mapping the last frame: %s", strerror(-r));
	r = write_ppm_xrgb(path, (const uint8_t *)map + offset, cam->width, cam->height, stride);
	dmabroker_stream_cpu_end(cam->s, index);
	return r < 0 ? fail("%s: %s", path, strerror(-r)) : 0;
}

/* Frame sequence's content, for checking it end to end: DIR/frame-SEQUENCE.raw (see --save-frames). */
static int save_frame(struct camera *cam, unsigned index, const char *dir, uint64_t sequence)
{
	struct dmabroker_buffer *buf = dmabroker_stream_get_buffer(cam->s, index);
	uint32_t bpp = cam->fourcc == V4L2_PIX_FMT_YUYV ? 2 : 4, stride;
	char path[4096], name[5];
	uint64_t offset;
	void *map;
	FILE *f;
	int r;

	snprintf(path, sizeof(path), "%s/frame-%" PRIu64 ".raw", dir, sequence);
	f = fopen(path, "we");
	if (!f)
		return fail("%s: %s", path, strerror(errno));
	dmabroker_buffer_get_plane(buf, 0, &offset, &stride);
	r = dmabroker_stream_cpu_begin(cam->s, index, DMABROKER_ACCESS_READ, -1, 1000, &map);
	if (r < 0) {
		fclose(f);
		return fail("mapping frame %" PRIu64 ": %s", sequence, strerror(-r));
	}
	fprintf(f, "DMBF %s %u %u\n", fourcc_name(cam->fourcc, name), cam->width, cam->height);
	for (uint32_t y = 0; y < cam->height; y++)
		fwrite((const uint8_t *)map + offset + (size_t)y * stride, bpp, cam->width, f);
	dmabroker_stream_cpu_end(cam->s, index);
	if (ferror(f) | (fclose(f) != 0))
		return fail("%s: write error", path);
	return 0;
}

static int capture_one(struct camera *cam, uint64_t limit, const char *save_last, const char *save_dir, bool quiet)
{
	struct v4l2_buffer vb = { .type = V4L2_BUF_TYPE_VIDEO_CAPTURE, .memory = V4L2_MEMORY_DMABUF };
	uint64_t ts;
	int r = xioctl(cam->fd, VIDIOC_DQBUF, &vb);

	if (r == -EAGAIN)
		return 0;
	if (r == -ENODEV || r == -EPIPE)
		return fail("%s: the device was unplugged", cam->path);
	if (r < 0)
		return fail("%s: VIDIOC_DQBUF: %s", cam->path, strerror(-r));
	cam->queued[vb.index] = false;
	if (vb.flags & V4L2_BUF_FLAG_ERROR) {
		cam->errors++;
		return qbuf(cam, vb.index);
	}
	if (cam->monotonic && (vb.flags & V4L2_BUF_FLAG_TIMESTAMP_MASK) == V4L2_BUF_FLAG_TIMESTAMP_MONOTONIC)
		ts = (uint64_t)vb.timestamp.tv_sec * 1000000000u + (uint64_t)vb.timestamp.tv_usec * 1000u;
	else
		ts = monotonic_ns();
	/* vivid stamps the modelled end of exposure, which can lie ahead of
	 * the clock when the frame is ready early: then the dequeue time is
	 * the truth */
	if (ts > monotonic_ns()) {
		ts = monotonic_ns();
		cam->ts_ahead++;
	}
	cam->frames++;
	if (save_last && cam->frames == limit) {
		r = save_ppm(cam, vb.index, save_last);
		if (r < 0)
			return r;
	}
	if (save_dir) {
		r = save_frame(cam, vb.index, save_dir, cam->frames);
		if (r < 0)
			return r;
	}
	/* the driver wrote it and is done: no ready fence needed */
	r = dmabroker_stream_queue(cam->s, vb.index, -1, cam->frames, ts, NULL, 0);
	if (r < 0)
		return fail("stream: %s", dmabroker_error_message(cam->b));
	if (!quiet && cam->frames % 100 == 0)
		printf("camera: %" PRIu64 " frames\n", cam->frames);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "device", required_argument, NULL, 'd' }, { "stream", required_argument, NULL, 's' },
		{ "format", required_argument, NULL, 'f' }, { "width", required_argument, NULL, 'W' },
		{ "height", required_argument, NULL, 'H' }, { "buffers", required_argument, NULL, 'b' },
		{ "mode", required_argument, NULL, 'm' },   { "consumers", required_argument, NULL, 'c' },
		{ "frames", required_argument, NULL, 'n' }, { "save-last", required_argument, NULL, 'L' },
		{ "save-frames", required_argument, NULL, 'F' },
		{ "session", no_argument, NULL, 'S' },      { "quiet", no_argument, NULL, 'q' },
		{ "fps", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },         { 0 },
	};
	static struct camera cam = { .fd = -1, .fourcc = V4L2_PIX_FMT_YUYV, .width = 640, .height = 480, .monotonic = true };
	const char *stream = "camera", *save_last = NULL, *save_dir = NULL;
	enum dmabroker_stream_mode mode = DMABROKER_STREAM_MAILBOX;
	uint32_t buffers = 4, consumers = 1, fps = 0;
	uint64_t limit = 0, t0, t1;
	bool session = false, quiet = false;
	char devbuf[32], name[5];
	int opt, r;

	while ((opt = getopt_long(argc, argv, "d:s:f:W:H:r:b:m:c:n:qh", opts, NULL)) != -1) {
		switch (opt) {
		case 'd': cam.path = optarg; break;
		case 's': stream = optarg; break;
		case 'f':
			if (!parse_fourcc(optarg, &cam.fourcc))
				return usage_error("dmabroker-camera", "--format: '%s' is not a fourcc (e.g. YUYV, XR24)", optarg);
			break;
		case 'W': if (!parse_u32(optarg, 1, 16384, &cam.width)) return usage_error("dmabroker-camera", "--width: 1 to 16384"); break;
		case 'H': if (!parse_u32(optarg, 1, 16384, &cam.height)) return usage_error("dmabroker-camera", "--height: 1 to 16384"); break;
		case 'b': if (!parse_u32(optarg, 2, MAX_BUFFERS, &buffers)) return usage_error("dmabroker-camera", "--buffers: 2 to 16"); break;
		case 'c': if (!parse_u32(optarg, 0, 8, &consumers)) return usage_error("dmabroker-camera", "--consumers: 0 to 8"); break;
		case 'n': {
			uint32_t n;
			if (!parse_u32(optarg, 1, UINT32_MAX, &n))
				return usage_error("dmabroker-camera", "--frames: a positive number");
			limit = n;
			break;
		}
		case 'm':
			if (strcmp(optarg, "fifo") == 0)
				mode = DMABROKER_STREAM_FIFO;
			else if (strcmp(optarg, "mailbox") == 0)
				mode = DMABROKER_STREAM_MAILBOX;
			else
				return usage_error("dmabroker-camera", "--mode: fifo or mailbox");
			break;
		case 'L': save_last = optarg; break;
		case 'F': save_dir = optarg; break;
		case 'r': if (!parse_u32(optarg, 1, 1000, &fps)) return usage_error("dmabroker-camera", "--fps: 1 to 1000"); break;
		case 'S': session = true; break;
		case 'q': quiet = true; break;
		case 'h': usage(stdout); return 0;
		default: return usage_error("dmabroker-camera", NULL);
		}
	}
	if (optind < argc)
		return usage_error("dmabroker-camera", "unexpected argument '%s'", argv[optind]);
	if (save_last && !limit)
		return usage_error("dmabroker-camera", "--save-last needs --frames (the last frame)");
	if (save_dir && cam.fourcc != V4L2_PIX_FMT_YUYV && cam.fourcc != V4L2_PIX_FMT_XBGR32 &&
	    cam.fourcc != V4L2_PIX_FMT_ABGR32)
		return usage_error("dmabroker-camera", "--save-frames writes YUYV, XR24 and AR24 frames only");
	if (!cam.path && !(cam.path = find_capture_device(devbuf, sizeof(devbuf))))
		return fail("no video capture device in /dev/video*; name one with --device") ? 1 : 1;
	set_tool_name("camera");
	for (unsigned i = 0; i < MAX_BUFFERS; i++)
		cam.waiting_fence[i] = -1;
	cleanup_cam = &cam;
	atexit(cleanup);
	if (open_device(&cam) < 0 || set_format(&cam) < 0)
		return 1;
	if (fps) {
		struct v4l2_streamparm parm = { .type = V4L2_BUF_TYPE_VIDEO_CAPTURE };
		parm.parm.capture.timeperframe.numerator = 1;
		parm.parm.capture.timeperframe.denominator = fps;
		if (xioctl(cam.fd, VIDIOC_S_PARM, &parm) < 0)
			return fail("%s: cannot set the frame rate: %s", cam.path, strerror(errno)), 1;
		if (parm.parm.capture.timeperframe.numerator * fps != parm.parm.capture.timeperframe.denominator)
			printf("camera: %s runs at %u/%u s per frame, not 1/%u\n", cam.path,
			       parm.parm.capture.timeperframe.numerator, parm.parm.capture.timeperframe.denominator, fps);
	}

	r = dmabroker_connect(session ? DMABROKER_BUS_SESSION : DMABROKER_BUS_SYSTEM, &cam.b);
	if (r < 0)
		return fail("cannot reach dmabrokerd on the %s bus: %s", session ? "session" : "system", strerror(-r)), 1;
	{
		const char *devices[] = { cam.path };
		struct dmabroker_stream_desc d = {
			.version = DMABROKER_STREAM_DESC_VERSION, .name = stream, .label = "camera",
			.usage = DMABROKER_USAGE_CAPTURE_FLAG, .formats = &cam.fourcc, .n_formats = 1,
			.devices = devices, .n_devices = 1, .mode = mode, .buffers = buffers,
			.width = cam.width, .height = cam.height, .consumers = consumers,
		};
		r = dmabroker_stream_create(cam.b, &d, &cam.s);
	}
	if (r < 0)
		return fail_stream(cam.b, "creating stream", stream), 1;
	if (!quiet)
		printf("camera: %s, %ux%u %s; waiting for %u consumer(s) on stream '%s'\n", cam.path, cam.width,
		       cam.height, fourcc_name(cam.fourcc, name), consumers, stream);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	while (!stop && (r = dmabroker_stream_wait_ready(cam.s, 200)) == -ETIMEDOUT)
		;
	if (stop)
		return 0;
	if (r < 0)
		return fail_stream(cam.b, "stream", stream), 1;
	cam.n_buffers = dmabroker_stream_get_buffer_count(cam.s);
	{
		uint64_t offset;
		uint32_t stride;
		dmabroker_buffer_get_plane(dmabroker_stream_get_buffer(cam.s, 0), 0, &offset, &stride);
		if (stride != cam.bytesperline || offset != 0)
			return fail("the stream's buffers have stride %u, the device writes rows of %u bytes", stride,
				    cam.bytesperline), 1;
		if (dmabroker_buffer_get_size(dmabroker_stream_get_buffer(cam.s, 0)) < cam.sizeimage)
			return fail("the stream's buffers are smaller than a frame (%u bytes)", cam.sizeimage), 1;
	}
	{
		struct v4l2_requestbuffers req = { .count = cam.n_buffers, .type = V4L2_BUF_TYPE_VIDEO_CAPTURE,
						   .memory = V4L2_MEMORY_DMABUF };
		r = xioctl(cam.fd, VIDIOC_REQBUFS, &req);
		if (r < 0)
			return fail("%s: cannot import dma-bufs (VIDIOC_REQBUFS DMABUF: %s)", cam.path, strerror(-r)), 1;
		if (req.count < cam.n_buffers)
			return fail("%s takes %u buffers, the stream has %u", cam.path, req.count, cam.n_buffers), 1;
	}
	if (!quiet) {
		printf("camera: %u buffers on %s\n", cam.n_buffers, dmabroker_stream_get_backend(cam.s));
		fflush(stdout); /* a supervisor reading a pipe sees it now, not at exit */
	}
	if (take_free_buffers(&cam) < 0)
		return 1;
	{
		int type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
		r = xioctl(cam.fd, VIDIOC_STREAMON, &type);
		if (r < 0)
			return fail("%s: VIDIOC_STREAMON: %s", cam.path, strerror(-r)), 1;
	}
	t0 = monotonic_ns();
	while (!stop && (!limit || cam.frames < limit)) {
		struct pollfd pfd[2 + MAX_BUFFERS];
		unsigned n = 2, map[MAX_BUFFERS];
		pfd[0] = (struct pollfd){ .fd = cam.fd, .events = POLLIN };
		pfd[1] = (struct pollfd){ .fd = dmabroker_get_fd(cam.b), .events = POLLIN };
		for (unsigned i = 0; i < cam.n_buffers; i++)
			if (cam.waiting[i]) {
				map[n - 2] = i;
				pfd[n++] = (struct pollfd){ .fd = cam.waiting_fence[i], .events = POLLIN };
			}
		r = poll(pfd, n, 2000);
		if (r < 0 && errno != EINTR)
			return fail("poll: %s", strerror(errno)), 1;
		if (r == 0 && !quiet)
			printf("camera: no frame for 2 s (%u buffers with the driver)\n", cam.n_buffers);
		if (pfd[0].revents & POLLERR)
			return fail("%s: the device was unplugged or stopped streaming", cam.path), 1;
		if ((pfd[0].revents & POLLIN) && capture_one(&cam, limit, save_last, save_dir, quiet) < 0)
			return 1;
		for (unsigned k = 2; k < n; k++)
			if (pfd[k].revents) {
				unsigned i = map[k - 2];
				cam.waiting[i] = false;
				close(cam.waiting_fence[i]);
				cam.waiting_fence[i] = -1;
				if (qbuf(&cam, i) < 0)
					return 1;
			}
		if (dmabroker_process(cam.b) < 0)
			return fail("lost the connection to dmabrokerd"), 1;
		if (take_free_buffers(&cam) < 0)
			return 1;
	}
	t1 = monotonic_ns();
	{
		int type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
		struct v4l2_requestbuffers req = { .count = 0, .type = V4L2_BUF_TYPE_VIDEO_CAPTURE,
						   .memory = V4L2_MEMORY_DMABUF };
		xioctl(cam.fd, VIDIOC_STREAMOFF, &type);
		xioctl(cam.fd, VIDIOC_REQBUFS, &req);
	}
	printf("camera: %" PRIu64 " frames in %.2f s (%.1f fps), %" PRIu64 " driver errors\n", cam.frames,
	       (double)(t1 - t0) / 1e9, t1 > t0 ? (double)cam.frames * 1e9 / (double)(t1 - t0) : 0.0, cam.errors);
	if (cam.ts_ahead)
		printf("camera: %" PRIu64 " driver timestamps lay ahead of CLOCK_MONOTONIC; the dequeue time was used\n",
		       cam.ts_ahead);
	return 0;
}

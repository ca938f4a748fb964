/* SPDX-License-Identifier: MIT */
/*
 * broker-test: integration test of dmabrokerd through libdmabroker, against
 * a real daemon on a private bus (run it under tests/common/with-daemon.py,
 * which sets DBUS_SESSION_BUS_ADDRESS and DMABROKER_PID).
 *
 * usage: broker-test [--backend NAME]... [--vivid-import] [--no-dmabuf-ok]
 *
 * For each backend: allocate, share by a single-use token, open it in a
 * second process that writes a pattern between DMA_BUF_IOCTL_SYNC START and
 * END, read it back in the first. Then, on the first backend: every format's
 * layout, async and direct calls, buffer lifetime across holders, client
 * death, and bad input, each checking that the daemon's fd count and buffer
 * count are back where they were. Output is TAP.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include <drm_fourcc.h>
#include <linux/dma-buf.h>
#include <linux/videodev2.h>
#include <systemd/sd-bus.h>

#include "dmabroker.h"
#include "tap.h"
#include "broker-util.h"

TAP_DEFINE;

#define ELEMENTSOF(a) (sizeof(a) / sizeof((a)[0]))
#define MAX_BACKENDS 16

static const char *backends[MAX_BACKENDS];
static unsigned n_backends;
static const char *current_backend;

/* ---- helpers ---- */

static struct dmabroker_alloc_desc desc_for(uint32_t w, uint32_t h, uint32_t fourcc)
{
	struct dmabroker_alloc_desc d = {
		.version = DMABROKER_ALLOC_DESC_VERSION,
		.width = w, .height = h, .fourcc = fourcc, .usage = CPU_RW,
		.backend = current_backend,
	};
	return d;
}

static bool sync_access(const struct dmabroker_buffer *buf, uint64_t flags)
{
	struct dma_buf_sync s = { .flags = flags };
	if (!dmabroker_buffer_is_dmabuf(buf))
		return true;
	return ioctl(dmabroker_buffer_get_fd(buf), DMA_BUF_IOCTL_SYNC, &s) == 0;
}

static uint32_t pattern(uint64_t id, size_t i)
{
	return (uint32_t)(id * 0x9e3779b9u) ^ (uint32_t)i * 2654435761u;
}

/* Writes (or checks) the pattern over the whole buffer through mmap. */
static bool pattern_io(const struct dmabroker_buffer *buf, bool write)
{
	size_t size = dmabroker_buffer_get_size(buf), n = size / 4;
	uint64_t id = dmabroker_buffer_get_id(buf);
	uint32_t *p = mmap(NULL, size, write ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED,
			   dmabroker_buffer_get_fd(buf), 0);
	bool ok = true;

	if (p == MAP_FAILED) {
		tap_diag("mmap: %s", strerror(errno));
		return false;
	}
	ok = sync_access(buf, DMA_BUF_SYNC_START | (write ? DMA_BUF_SYNC_WRITE : DMA_BUF_SYNC_READ));
	for (size_t i = 0; ok && i < n; i++) {
		if (write)
			p[i] = pattern(id, i);
		else if (p[i] != pattern(id, i)) {
			tap_diag("word %zu of buffer %" PRIu64 ": 0x%08x, want 0x%08x", i, id, p[i], pattern(id, i));
			ok = false;
		}
	}
	ok &= sync_access(buf, DMA_BUF_SYNC_END | (write ? DMA_BUF_SYNC_WRITE : DMA_BUF_SYNC_READ));
	munmap(p, size);
	return ok;
}

/* In a child process with its own connection: open the token, write the pattern. */
static int child_write_by_token(const char *token)
{
	struct dmabroker *b = connect_session();
	struct dmabroker_buffer *buf = NULL;
	int r;

	if (!b)
		return 1;
	r = dmabroker_open_token(b, token, &buf);
	if (r < 0) {
		fprintf(stderr, "child: open_token: %s\n", dmabroker_error_message(b));
		return 1;
	}
	r = pattern_io(buf, true) ? 0 : 1;
	dmabroker_buffer_release(buf);
	dmabroker_disconnect(b);
	return r;
}

/* Each dma-buf is named "dmabroker:<id>" (DMA_BUF_SET_NAME). */
static bool bufinfo_has_name(uint64_t id)
{
	char want[64], line[512];
	bool found = false;
	FILE *f = fopen("/sys/kernel/debug/dma_buf/bufinfo", "re");

	if (!f) {
		tap_diag("cannot read bufinfo: %s", strerror(errno));
		return false;
	}
	snprintf(want, sizeof(want), "dmabroker:%" PRIu64 "\n", id);
	while (!found && fgets(line, sizeof(line), f))
		found = strstr(line, want) != NULL;
	fclose(f);
	return found;
}

/* ---- per-backend step ---- */

static bool step_share_across_processes(void)
{
	struct baseline base = baseline_take();
	struct dmabroker *b = connect_session();
	struct dmabroker_alloc_desc d = desc_for(256, 64, DRM_FORMAT_XRGB8888);
	struct dmabroker_buffer *buf = NULL, *again = NULL;
	char *token = NULL;
	uint32_t stride;
	int status, r;
	pid_t pid;

	CHECK(b);
	r = dmabroker_allocate(b, &d, &buf);
	CHECKF(r == 0, "allocate on %s: %s", current_backend, dmabroker_error_message(b));
	tap_diag("buffer %" PRIu64 " on %s, %" PRIu64 " bytes", dmabroker_buffer_get_id(buf),
		 dmabroker_buffer_get_backend(buf), dmabroker_buffer_get_size(buf));
	CHECK(strncmp(dmabroker_buffer_get_backend(buf), current_backend, strlen(current_backend)) == 0);
	CHECK(dmabroker_buffer_is_dmabuf(buf) == (strcmp(current_backend, "shm") != 0));
	CHECK(dmabroker_buffer_get_plane_count(buf) == 1);
	CHECK(dmabroker_buffer_get_plane(buf, 0, NULL, &stride) == 0 && stride >= 256 * 4);
	CHECK(dmabroker_buffer_get_size(buf) >= (uint64_t)stride * 64);
	CHECK(dmabroker_buffer_get_modifier(buf) == DRM_FORMAT_MOD_LINEAR);
	CHECK(dmabroker_buffer_create_token(buf, DMABROKER_TOKEN_SINGLE_USE, 60, &token) == 0);
	CHECK(strlen(token) == 32);
	if (dmabroker_buffer_is_dmabuf(buf))
		CHECKF(bufinfo_has_name(dmabroker_buffer_get_id(buf)),
		       "buffer %" PRIu64 " is not named in /sys/kernel/debug/dma_buf/bufinfo", dmabroker_buffer_get_id(buf));

	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0)
		_exit(child_write_by_token(token));
	CHECK(waitpid(pid, &status, 0) == pid);
	CHECKF(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the writer process failed");
	CHECK(pattern_io(buf, false));

	/* Single use: the token is spent. */
	r = dmabroker_open_token(b, token, &again);
	CHECK(expect_error(b, r, EKEYREVOKED, "org.dmabroker.Error.TokenUsed"));
	free(token);
	dmabroker_buffer_release(buf);
	dmabroker_disconnect(b);
	CHECK(baseline_restored(base));
	return true;
}

static bool step_multiplanar(void)
{
	struct dmabroker *b = connect_session();
	struct dmabroker_alloc_desc d = desc_for(640, 480, DRM_FORMAT_NV12);
	struct dmabroker_buffer *buf = NULL;
	uint64_t off0, off1;
	uint32_t s0, s1;
	int r;

	CHECK(b);
	r = dmabroker_allocate(b, &d, &buf);
	CHECKF(r == 0, "NV12 on %s: %s", current_backend, dmabroker_error_message(b));
	CHECK(dmabroker_buffer_get_plane_count(buf) == 2);
	CHECK(dmabroker_buffer_get_plane(buf, 0, &off0, &s0) == 0);
	CHECK(dmabroker_buffer_get_plane(buf, 1, &off1, &s1) == 0);
	CHECK(off0 == 0 && s0 >= 640 && s1 >= 640);
	CHECK(off1 >= (uint64_t)s0 * 480);
	CHECK(off1 + (uint64_t)s1 * 240 <= dmabroker_buffer_get_size(buf));
	CHECK(pattern_io(buf, true) && pattern_io(buf, false));
	dmabroker_disconnect(b); /* releases buf too */
	return true;
}

/* ---- generic steps ---- */

static bool step_every_format(void)
{
	static const struct { uint32_t fourcc; unsigned planes; uint32_t min_stride0; } f[] = {
		{ DRM_FORMAT_XRGB8888, 1, 33 * 4 }, { DRM_FORMAT_ARGB8888, 1, 33 * 4 },
		{ DRM_FORMAT_RGB565, 1, 33 * 2 }, { DRM_FORMAT_NV12, 2, 33 },
		{ DRM_FORMAT_YUV420, 3, 33 }, { DRM_FORMAT_P010, 2, 33 * 2 }, { DRM_FORMAT_YUYV, 1, 34 * 2 },
	};
	struct dmabroker *b = connect_session();

	CHECK(b);
	for (unsigned i = 0; i < ELEMENTSOF(f); i++) {
		struct dmabroker_alloc_desc d = desc_for(33, 17, f[i].fourcc);
		struct dmabroker_buffer *buf = NULL;
		uint64_t end = 0;
		int r = dmabroker_allocate(b, &d, &buf);

		CHECKF(r == 0, "format %.4s: %s", (char *)&f[i].fourcc, dmabroker_error_message(b));
		CHECKF(dmabroker_buffer_get_plane_count(buf) == f[i].planes, "%.4s planes", (char *)&f[i].fourcc);
		for (unsigned p = 0; p < f[i].planes; p++) {
			uint64_t off;
			uint32_t stride;
			CHECK(dmabroker_buffer_get_plane(buf, p, &off, &stride) == 0);
			CHECKF(off >= end, "%.4s plane %u overlaps", (char *)&f[i].fourcc, p);
			CHECKF(p > 0 || stride >= f[i].min_stride0, "%.4s stride %u", (char *)&f[i].fourcc, stride);
			end = off + (uint64_t)stride * (p == 0 ? 17 : 9);
		}
		CHECK(end <= dmabroker_buffer_get_size(buf));
		dmabroker_buffer_release(buf);
	}
	dmabroker_disconnect(b);
	return true;
}

static bool step_async_and_event_loop(void)
{
	struct dmabroker *b = connect_session();
	struct dmabroker_alloc_desc d = desc_for(64, 64, DRM_FORMAT_ARGB8888);
	struct async_result ok = { 0 }, bad = { 0 };
	struct pollfd p;

	CHECK(b);
	CHECK(dmabroker_allocate_async(b, &d, on_async_allocated, &ok) == 0);
	d.width = 0;
	CHECK(dmabroker_allocate_async(b, &d, on_async_allocated, &bad) == 0);
	CHECK(ok.done == 0); /* nothing completes before the loop runs */
	p.fd = dmabroker_get_fd(b);
	p.events = POLLIN;
	for (int i = 0; i < 100 && (!ok.done || !bad.done); i++) {
		CHECK(poll(&p, 1, 100) >= 0);
		CHECK(dmabroker_process(b) >= 0);
	}
	CHECK(ok.done == 1 && ok.error == 0 && ok.buf);
	CHECK(dmabroker_buffer_get_width(ok.buf) == 64);
	CHECK(bad.done == 1 && bad.error == -EDOM && !bad.buf);
	dmabroker_disconnect(b);
	return true;
}

static bool step_sd_event_helper(void)
{
	struct dmabroker *b = connect_session();
	struct dmabroker_alloc_desc d = desc_for(32, 32, DRM_FORMAT_XRGB8888);
	struct async_result ok = { 0 };
	sd_event *event = NULL;

	CHECK(b);
	CHECK(sd_event_new(&event) >= 0);
	CHECK(dmabroker_attach_event(b, event, SD_EVENT_PRIORITY_NORMAL) == 0);
	CHECK(dmabroker_allocate_async(b, &d, on_async_allocated, &ok) == 0);
	for (int i = 0; i < 100 && !ok.done; i++)
		CHECK(sd_event_run(event, 100000) >= 0);
	CHECK(ok.done == 1 && ok.error == 0 && ok.buf);
	/* Synchronous calls still work on an attached connection. */
	CHECK(dmabroker_allocate(b, &d, &ok.buf) == 0);
	dmabroker_disconnect(b);
	sd_event_unref(event);
	return true;
}

static bool step_attach_detach(void)
{
	struct baseline base = baseline_take();
	struct dmabroker *b = connect_session(), *other = connect_session();
	struct dmabroker_alloc_desc d = desc_for(64, 64, DRM_FORMAT_XRGB8888);
	struct dmabroker_buffer *buf = NULL, *shared = NULL;
	uint32_t a1, a2, a3;
	char *token = NULL;

	CHECK(b && other);
	CHECK(dmabroker_allocate(b, &d, &buf) == 0);
	CHECK(dmabroker_buffer_attach(buf, DMABROKER_USAGE_SCANOUT_FLAG, "vkms", DMABROKER_ATTACH_STATIC, &a1) == 0);
	CHECK(dmabroker_buffer_attach(buf, DMABROKER_USAGE_CPU_READ_FLAG, "", 0, &a2) == 0);
	CHECK(a1 != a2);
	CHECK(dmabroker_buffer_create_token(buf, 0, 0, &token) == 0);
	CHECK(dmabroker_open_token(other, token, &shared) == 0);
	CHECK(dmabroker_buffer_attach(shared, DMABROKER_USAGE_GPU_FLAG, "/dev/dri/renderD128", 0, &a3) == 0);
	/* Only the attachment's own client may end it. */
	CHECK(expect_error(other, dmabroker_buffer_detach(shared, a1), ESRCH, "org.dmabroker.Error.UnknownAttachment"));
	CHECK(dmabroker_buffer_detach(buf, a1) == 0);
	CHECK(expect_error(b, dmabroker_buffer_detach(buf, a1), ESRCH, "org.dmabroker.Error.UnknownAttachment"));
	CHECK(expect_error(b, dmabroker_buffer_attach(buf, 0, "", 0x10, &a1), EINVAL,
			   "org.dmabroker.Error.InvalidArgument"));
	CHECK(expect_error(b, dmabroker_buffer_attach(buf, 1u << 30, "", 0, &a1), EINVAL,
			   "org.dmabroker.Error.InvalidArgument"));
	/* A holder that goes takes its attachments along; the buffer stays. */
	dmabroker_disconnect(other);
	CHECK(dmabroker_buffer_detach(buf, a2) == 0);
	free(token);
	dmabroker_disconnect(b);
	CHECK(baseline_restored(base));
	return true;
}

/* Backends chosen by usage and by device, with no backend named. */
static bool step_choice_by_usage_and_device(void)
{
	struct dmabroker *b = connect_session();
	struct dmabroker_alloc_desc d = desc_for(64, 64, DRM_FORMAT_XRGB8888);
	struct dmabroker_buffer *buf = NULL;

	CHECK(b);
	d.backend = NULL;
	d.usage = CPU_RW | DMABROKER_USAGE_CONTIGUOUS_FLAG;
	CHECKF(dmabroker_allocate(b, &d, &buf) == 0, "contiguous: %s", dmabroker_error_message(b));
	CHECKF(strcmp(dmabroker_buffer_get_backend(buf), "heap:reserved") == 0, "contiguous from %s",
	       dmabroker_buffer_get_backend(buf));
	d.usage = CPU_RW;
	CHECK(dmabroker_allocate(b, &d, &buf) == 0);
	CHECKF(strcmp(dmabroker_buffer_get_backend(buf), "heap:system") == 0, "default from %s",
	       dmabroker_buffer_get_backend(buf));
	d.device = "virtio_gpu";
	d.usage = DMABROKER_USAGE_SCANOUT_FLAG;
	CHECK(dmabroker_allocate(b, &d, &buf) == 0);
	CHECKF(strcmp(dmabroker_buffer_get_backend(buf), "drm:virtio_gpu") == 0, "by driver name: %s",
	       dmabroker_buffer_get_backend(buf));
	d.device = "/dev/dma_heap/reserved";
	CHECK(dmabroker_allocate(b, &d, &buf) == 0);
	CHECKF(strcmp(dmabroker_buffer_get_backend(buf), "heap:reserved") == 0, "by path: %s",
	       dmabroker_buffer_get_backend(buf));
	d.device = NULL;
	d.backend = "shm";
	CHECK(expect_error(b, dmabroker_allocate(b, &d, &buf), ENODEV, "org.dmabroker.Error.NoBackend"));
	dmabroker_disconnect(b);
	return true;
}

static bool step_direct_connection(void)
{
	struct baseline base = baseline_take();
	struct dmabroker *b = connect_session(), *other = connect_session();
	struct dmabroker_alloc_desc d = desc_for(128, 128, DRM_FORMAT_XRGB8888);
	struct dmabroker_buffer *buf = NULL, *shared = NULL;
	char *token = NULL;
	int r;

	CHECK(b && other);
	CHECK(dmabroker_open_direct(b) == 0);
	CHECK(dmabroker_is_direct(b));
	r = dmabroker_allocate(b, &d, &buf);
	CHECKF(r == 0, "allocate over the direct connection: %s", dmabroker_error_message(b));
	CHECK(dmabroker_buffer_create_token(buf, 0, 0, &token) == 0);
	/* The direct connection acts as the same client as the bus one. */
	CHECK(dmabroker_open_direct(other) == 0);
	CHECK(dmabroker_open_token(other, token, &shared) == 0);
	CHECK(dmabroker_buffer_get_id(shared) == dmabroker_buffer_get_id(buf));
	CHECK(pattern_io(buf, true) && pattern_io(shared, false));
	/* Errors come back the same way. */
	r = dmabroker_open_token(other, "00000000000000000000000000000000", &shared);
	CHECK(expect_error(other, r, ENOKEY, "org.dmabroker.Error.TokenUnknown"));
	free(token);
	dmabroker_disconnect(b);
	dmabroker_disconnect(other);
	CHECK(baseline_restored(base));
	return true;
}

static bool step_lifetime_across_holders(void)
{
	struct baseline base = baseline_take();
	struct dmabroker *a = connect_session(), *b = connect_session();
	struct dmabroker_alloc_desc d = desc_for(100, 10, DRM_FORMAT_XRGB8888);
	struct dmabroker_buffer *buf = NULL, *shared = NULL;
	char *token = NULL;

	CHECK(a && b);
	CHECK(dmabroker_allocate(a, &d, &buf) == 0);
	CHECK(pattern_io(buf, true));
	CHECK(dmabroker_buffer_create_token(buf, 0, 0, &token) == 0);
	CHECK(dmabroker_open_token(b, token, &shared) == 0);
	dmabroker_buffer_release(buf);
	dmabroker_disconnect(a); /* the owner is gone, the buffer lives on */
	usleep(50000);
	CHECK(daemon_property_u32("Buffers") == base.buffers + 1);
	CHECK(pattern_io(shared, false));
	/* Tokens die with their creator. */
	{
		struct dmabroker_buffer *x = NULL;
		int r = dmabroker_open_token(b, token, &x);
		CHECK(expect_error(b, r, ENOKEY, "org.dmabroker.Error.TokenUnknown"));
	}
	dmabroker_buffer_release(shared);
	dmabroker_disconnect(b);
	free(token);
	CHECK(baseline_restored(base));
	return true;
}

static bool step_client_death(void)
{
	struct baseline base = baseline_take();
	struct dmabroker *b = connect_session();
	struct dmabroker_buffer *x = NULL;
	char token[64] = "";
	int fds[2], status;
	ssize_t n;
	pid_t pid;

	CHECK(b);
	CHECK(pipe(fds) == 0);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		struct dmabroker *c = connect_session();
		struct dmabroker_alloc_desc d = desc_for(320, 240, DRM_FORMAT_XRGB8888);
		struct dmabroker_buffer *bufs[3];
		char *t = NULL;
		close(fds[0]);
		for (int i = 0; i < 3; i++)
			if (!c || dmabroker_allocate(c, &d, &bufs[i]) < 0)
				_exit(1);
		if (dmabroker_open_direct(c) < 0 || dmabroker_buffer_create_token(bufs[0], 0, 0, &t) < 0)
			_exit(1);
		if (write(fds[1], t, strlen(t) + 1) < 0)
			_exit(1);
		pause(); /* killed here, holding 3 buffers, a token and a direct connection */
		_exit(1);
	}
	close(fds[1]);
	n = read(fds[0], token, sizeof(token) - 1);
	close(fds[0]);
	CHECKF(n > 0, "the child did not get its buffers");
	CHECK(daemon_property_u32("Buffers") == base.buffers + 3);
	CHECK(kill(pid, SIGKILL) == 0);
	CHECK(waitpid(pid, &status, 0) == pid && WIFSIGNALED(status));
	CHECK(baseline_restored(base));
	CHECK(expect_error(b, dmabroker_open_token(b, token, &x), ENOKEY, "org.dmabroker.Error.TokenUnknown"));
	dmabroker_disconnect(b);
	return true;
}

/* ---- bad input: each a named error, nothing left behind ---- */

static bool bad_alloc(uint32_t w, uint32_t h, uint32_t fourcc, const uint64_t *mods, size_t n_mods, uint32_t usage,
		      int want_errno, const char *want_name)
{
	struct baseline base = baseline_take();
	struct dmabroker *b = connect_session();
	struct dmabroker_alloc_desc d = desc_for(w, h, fourcc);
	struct dmabroker_buffer *buf = NULL;
	int r;

	CHECK(b);
	d.modifiers = mods;
	d.n_modifiers = n_mods;
	d.usage = usage;
	r = dmabroker_allocate(b, &d, &buf);
	CHECK(expect_error(b, r, want_errno, want_name));
	CHECK(buf == NULL);
	dmabroker_disconnect(b);
	CHECK(baseline_restored(base));
	return true;
}

static bool step_bad_zero_size(void)
{
	return bad_alloc(0, 480, DRM_FORMAT_XRGB8888, NULL, 0, CPU_RW, EDOM, "org.dmabroker.Error.InvalidDimensions") &&
	       bad_alloc(640, 0, DRM_FORMAT_NV12, NULL, 0, CPU_RW, EDOM, "org.dmabroker.Error.InvalidDimensions");
}

static bool step_bad_enormous(void)
{
	/* Over max-buffer-size (64 MiB in tests/integration/test.conf). */
	return bad_alloc(8192, 8192, DRM_FORMAT_ARGB8888, NULL, 0, CPU_RW, EFBIG, "org.dmabroker.Error.TooLarge");
}

static bool step_bad_overflow(void)
{
	/* max-dimension is 2^32-1 in the test config: the layout math itself
	 * must catch that 4294967295 x 4294967295 x 4 overflows 64 bits. */
	return bad_alloc(UINT32_MAX, UINT32_MAX, DRM_FORMAT_ARGB8888, NULL, 0, CPU_RW, EFBIG,
			 "org.dmabroker.Error.TooLarge") &&
	       bad_alloc(UINT32_MAX, 3, DRM_FORMAT_P010, NULL, 0, CPU_RW, EFBIG, "org.dmabroker.Error.TooLarge");
}

static bool step_bad_format_and_modifier(void)
{
	static const uint64_t tiled[] = { I915_FORMAT_MOD_X_TILED, I915_FORMAT_MOD_Y_TILED };
	return bad_alloc(64, 64, 0x12345678, NULL, 0, CPU_RW, EPROTONOSUPPORT,
			 "org.dmabroker.Error.UnsupportedFormat") &&
	       bad_alloc(64, 64, DRM_FORMAT_XRGB8888, tiled, 2, CPU_RW, EOPNOTSUPP,
			 "org.dmabroker.Error.UnsupportedModifier") &&
	       bad_alloc(64, 64, DRM_FORMAT_XRGB8888, NULL, 0, 1u << 20, EINVAL, "org.dmabroker.Error.InvalidArgument");
}

static bool bad_import(int fd, const char *what, int want_errno, const char *want_name, uint64_t offset,
		       uint32_t stride)
{
	struct baseline base = baseline_take();
	struct dmabroker *b = connect_session();
	struct dmabroker_plane plane = { offset, stride };
	struct dmabroker_buffer *buf = NULL;
	int r;

	CHECK(b);
	r = dmabroker_import(b, fd, 64, 64, DRM_FORMAT_XRGB8888, DRM_FORMAT_MOD_LINEAR, &plane, 1, CPU_RW, &buf);
	CHECKF(expect_error(b, r, want_errno, want_name), "importing %s", what);
	dmabroker_disconnect(b);
	CHECK(baseline_restored(base));
	return true;
}

static bool step_bad_import_not_dmabuf(void)
{
	int p[2], memfd;
	bool ok;

	CHECK(pipe2(p, O_CLOEXEC) == 0);
	memfd = memfd_create("not-a-dmabuf", MFD_CLOEXEC);
	CHECK(memfd >= 0 && ftruncate(memfd, 65536) == 0);
	ok = bad_import(p[0], "a pipe", EBADFD, "org.dmabroker.Error.NotADmaBuf", 0, 256) &&
	     bad_import(memfd, "a regular file", EBADFD, "org.dmabroker.Error.NotADmaBuf", 0, 256);
	close(p[0]);
	close(p[1]);
	close(memfd);
	return ok;
}

static bool step_bad_import_planes(void)
{
	struct dmabroker *b = connect_session();
	struct dmabroker_alloc_desc d = desc_for(64, 64, DRM_FORMAT_XRGB8888);
	struct dmabroker_buffer *buf = NULL, *imported = NULL;
	struct dmabroker_plane plane = { 0, 256 };
	bool ok;

	CHECK(b);
	CHECK(dmabroker_allocate(b, &d, &buf) == 0);
	/* A good import first: the same dma-buf registered again. */
	CHECK(dmabroker_import(b, dmabroker_buffer_get_fd(buf), 64, 64, DRM_FORMAT_XRGB8888, DRM_FORMAT_MOD_LINEAR,
			       &plane, 1, CPU_RW, &imported) == 0);
	CHECK(dmabroker_buffer_get_id(imported) != dmabroker_buffer_get_id(buf));
	dmabroker_buffer_release(imported);
	ok = bad_import(dmabroker_buffer_get_fd(buf), "planes past the end", ERANGE,
			"org.dmabroker.Error.PlanesDoNotFit", dmabroker_buffer_get_size(buf) - 256, 256) &&
	     bad_import(dmabroker_buffer_get_fd(buf), "a huge offset", ERANGE, "org.dmabroker.Error.PlanesDoNotFit",
			UINT64_MAX - 10, 256) &&
	     bad_import(dmabroker_buffer_get_fd(buf), "a short stride", EINVAL, "org.dmabroker.Error.InvalidArgument",
			0, 100);
	dmabroker_disconnect(b);
	return ok;
}

static bool step_bad_tokens(void)
{
	struct baseline base = baseline_take();
	struct dmabroker *b = connect_session(), *other = connect_session();
	struct dmabroker_alloc_desc d = desc_for(64, 64, DRM_FORMAT_XRGB8888);
	struct dmabroker_buffer *buf = NULL, *x = NULL;
	char *token = NULL, *short_lived = NULL;

	CHECK(b && other);
	CHECK(dmabroker_allocate(b, &d, &buf) == 0);
	CHECK(expect_error(other, dmabroker_open_token(other, "0123456789abcdef0123456789abcdef", &x), ENOKEY,
			   "org.dmabroker.Error.TokenUnknown"));
	CHECK(expect_error(other, dmabroker_open_token(other, "../../etc/passwd", &x), ENOKEY,
			   "org.dmabroker.Error.TokenUnknown"));
	/* Revoked: unknown from then on; only its creator may revoke it. */
	CHECK(dmabroker_buffer_create_token(buf, 0, 0, &token) == 0);
	CHECK(expect_error(other, dmabroker_revoke_token(other, token), ENOKEY, "org.dmabroker.Error.TokenUnknown"));
	CHECK(dmabroker_revoke_token(b, token) == 0);
	CHECK(expect_error(other, dmabroker_open_token(other, token, &x), ENOKEY, "org.dmabroker.Error.TokenUnknown"));
	/* Expired: a token that lives 1 s. */
	CHECK(dmabroker_buffer_create_token(buf, 0, 1, &short_lived) == 0);
	usleep(1100000);
	CHECK(expect_error(other, dmabroker_open_token(other, short_lived, &x), EKEYEXPIRED,
			   "org.dmabroker.Error.TokenExpired"));
	CHECK(expect_error(b, dmabroker_buffer_create_token(buf, 0x80, 0, &token), EINVAL,
			   "org.dmabroker.Error.InvalidArgument"));
	free(token);
	free(short_lived);
	dmabroker_disconnect(b);
	dmabroker_disconnect(other);
	CHECK(baseline_restored(base));
	return true;
}

/* A raw call, as a hostile client would make it. */
static int raw_call(sd_bus *bus, sd_bus_error *e, const char *method, const char *sig, uint64_t id)
{
	return sd_bus_call_method(bus, "org.dmabroker.Broker1", "/org/dmabroker/Broker1", "org.dmabroker.Broker1",
				  method, e, NULL, sig, id, (uint32_t)0, (uint32_t)0);
}

static bool step_bad_foreign_buffer(void)
{
	struct baseline base = baseline_take();
	struct dmabroker *owner = connect_session();
	struct dmabroker_alloc_desc d = desc_for(64, 64, DRM_FORMAT_XRGB8888);
	struct dmabroker_buffer *buf = NULL;
	sd_bus_error e = SD_BUS_ERROR_NULL;
	sd_bus *bus = NULL;
	uint64_t id;

	CHECK(owner && sd_bus_open_user(&bus) >= 0);
	CHECK(dmabroker_allocate(owner, &d, &buf) == 0);
	id = dmabroker_buffer_get_id(buf);
	CHECK(raw_call(bus, &e, "Release", "t", id) < 0);
	CHECKF(sd_bus_error_has_name(&e, "org.dmabroker.Error.NotPermitted"), "Release: %s", e.name);
	sd_bus_error_free(&e);
	CHECK(raw_call(bus, &e, "CreateToken", "tuu", id) < 0);
	CHECKF(sd_bus_error_has_name(&e, "org.dmabroker.Error.NotPermitted"), "CreateToken: %s", e.name);
	tap_diag("%s: %s", e.name, e.message);
	sd_bus_error_free(&e);
	CHECK(raw_call(bus, &e, "Release", "t", id + 1000000) < 0);
	CHECKF(sd_bus_error_has_name(&e, "org.dmabroker.Error.UnknownBuffer"), "unknown id: %s", e.name);
	sd_bus_error_free(&e);
	/* Still the owner's. */
	CHECK(pattern_io(buf, true));
	sd_bus_flush_close_unref(bus);
	dmabroker_disconnect(owner);
	CHECK(baseline_restored(base));
	return true;
}

static bool step_bad_options(void)
{
	struct baseline base = baseline_take();
	sd_bus_error e = SD_BUS_ERROR_NULL;
	sd_bus *bus = NULL;
	int r;

	CHECK(sd_bus_open_user(&bus) >= 0);
	r = sd_bus_call_method(bus, "org.dmabroker.Broker1", "/org/dmabroker/Broker1", "org.dmabroker.Broker1",
			       "Allocate", &e, NULL, "uuuatua{sv}", 64, 64, DRM_FORMAT_XRGB8888, 0, CPU_RW, 1,
			       "colour", "s", "blue");
	CHECK(r < 0 && sd_bus_error_has_name(&e, "org.dmabroker.Error.InvalidArgument"));
	sd_bus_error_free(&e);
	r = sd_bus_call_method(bus, "org.dmabroker.Broker1", "/org/dmabroker/Broker1", "org.dmabroker.Broker1",
			       "Allocate", &e, NULL, "uuuatua{sv}", 64, 64, DRM_FORMAT_XRGB8888, 0, CPU_RW, 1,
			       "backend", "u", 7);
	CHECK(r < 0 && sd_bus_error_has_name(&e, "org.dmabroker.Error.InvalidArgument"));
	sd_bus_error_free(&e);
	r = sd_bus_call_method(bus, "org.dmabroker.Broker1", "/org/dmabroker/Broker1", "org.dmabroker.Broker1",
			       "Allocate", &e, NULL, "uuuatua{sv}", 64, 64, DRM_FORMAT_XRGB8888, 0, CPU_RW, 1,
			       "fresh", "s", "yes");
	CHECK(r < 0 && sd_bus_error_has_name(&e, "org.dmabroker.Error.InvalidArgument") &&
	      strstr(e.message, "'fresh' must be a boolean"));
	sd_bus_error_free(&e);
	r = sd_bus_call_method(bus, "org.dmabroker.Broker1", "/org/dmabroker/Broker1", "org.dmabroker.Broker1",
			       "Allocate", &e, NULL, "uuuatua{sv}", 64, 64, DRM_FORMAT_XRGB8888, 0, CPU_RW, 1,
			       "backend", "s", "no-such-backend");
	CHECK(r < 0 && sd_bus_error_has_name(&e, "org.dmabroker.Error.NoBackend"));
	tap_diag("%s: %s", e.name, e.message);
	sd_bus_error_free(&e);
	/* A wrong signature is refused by sd-bus before our code runs. */
	r = sd_bus_call_method(bus, "org.dmabroker.Broker1", "/org/dmabroker/Broker1", "org.dmabroker.Broker1",
			       "Allocate", &e, NULL, "s", "garbage");
	CHECK(r < 0 && sd_bus_error_is_set(&e));
	sd_bus_error_free(&e);
	sd_bus_flush_close_unref(bus);
	CHECK(baseline_restored(base));
	return true;
}

static bool step_quota(void)
{
	struct baseline base = baseline_take();
	struct dmabroker *b = connect_session();
	struct dmabroker_alloc_desc d = desc_for(16, 16, DRM_FORMAT_XRGB8888);
	struct dmabroker_buffer *buf = NULL;
	int r = 0, n = 0;

	CHECK(b);
	/* max-buffers-per-client is 32 in the test config. */
	while (n < 100 && (r = dmabroker_allocate(b, &d, &buf)) == 0)
		n++;
	CHECKF(n == 32, "allocated %d buffers before the quota", n);
	CHECK(expect_error(b, r, EDQUOT, "org.dmabroker.Error.QuotaExceeded"));
	dmabroker_disconnect(b);
	CHECK(baseline_restored(base));
	return true;
}

static bool step_vivid_import(void)
{
	struct v4l2_requestbuffers rb = { .count = 1, .type = V4L2_BUF_TYPE_VIDEO_CAPTURE, .memory = V4L2_MEMORY_MMAP };
	struct v4l2_format fmt = { .type = V4L2_BUF_TYPE_VIDEO_CAPTURE };
	struct v4l2_exportbuffer exp = { .type = V4L2_BUF_TYPE_VIDEO_CAPTURE, .flags = O_RDWR | O_CLOEXEC };
	struct baseline base = baseline_take();
	struct dmabroker *b = connect_session();
	struct dmabroker_buffer *buf = NULL;
	struct dmabroker_plane plane;
	int vfd = -1;

	CHECK(b);
	for (int i = 0; i < 16 && vfd < 0; i++) {
		struct v4l2_capability cap = { 0 };
		char path[32];
		snprintf(path, sizeof(path), "/dev/video%d", i);
		vfd = open(path, O_RDWR | O_CLOEXEC);
		if (vfd >= 0 && (ioctl(vfd, VIDIOC_QUERYCAP, &cap) < 0 || strcmp((char *)cap.driver, "vivid") ||
				 !((cap.device_caps) & V4L2_CAP_VIDEO_CAPTURE))) {
			close(vfd);
			vfd = -1;
		}
	}
	CHECKF(vfd >= 0, "no vivid capture device");
	CHECK(ioctl(vfd, VIDIOC_G_FMT, &fmt) == 0);
	CHECK(ioctl(vfd, VIDIOC_REQBUFS, &rb) == 0 && rb.count >= 1);
	exp.index = 0;
	CHECK(ioctl(vfd, VIDIOC_EXPBUF, &exp) == 0);
	plane.offset = 0;
	plane.stride = fmt.fmt.pix.bytesperline;
	CHECKF(dmabroker_import(b, exp.fd, fmt.fmt.pix.width, fmt.fmt.pix.height, fmt.fmt.pix.pixelformat == V4L2_PIX_FMT_YUYV ? DRM_FORMAT_YUYV : DRM_FORMAT_XRGB8888,
				DRM_FORMAT_MOD_LINEAR, &plane, 1, DMABROKER_USAGE_CAPTURE_FLAG, &buf) == 0,
	       "import of a vivid EXPBUF: %s", dmabroker_error_message(b));
	tap_diag("imported vivid buffer as %" PRIu64 ", %" PRIu64 " bytes", dmabroker_buffer_get_id(buf),
		 dmabroker_buffer_get_size(buf));
	CHECK(dmabroker_buffer_get_size(buf) >= (uint64_t)fmt.fmt.pix.sizeimage);
	close(exp.fd);
	dmabroker_disconnect(b);
	rb.count = 0;
	ioctl(vfd, VIDIOC_REQBUFS, &rb);
	close(vfd);
	CHECK(baseline_restored(base));
	return true;
}

int main(int argc, char **argv)
{
	bool vivid = false, dmabuf_tests;
	char name[128];
	int steps;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--backend") == 0 && i + 1 < argc && n_backends < MAX_BACKENDS)
			backends[n_backends++] = argv[++i];
		else if (strcmp(argv[i], "--vivid-import") == 0)
			vivid = true;
		else {
			fprintf(stderr, "usage: broker-test [--backend NAME]... [--vivid-import]\n");
			return 2;
		}
	}
	if (!daemon_pid_from_env("broker-test"))
		return 2;
	if (n_backends == 0)
		backends[n_backends++] = "shm";
	dmabuf_tests = strcmp(backends[0], "shm") != 0;
	steps = (int)n_backends * 2 + 19 + vivid;
	tap_plan(steps);
	for (unsigned i = 0; i < n_backends; i++) {
		current_backend = backends[i];
		snprintf(name, sizeof(name), "%s: allocate, share by token, write in another process, read back",
			 current_backend);
		tap_step(name, step_share_across_processes);
		snprintf(name, sizeof(name), "%s: NV12 planes", current_backend);
		tap_step(name, step_multiplanar);
	}
	current_backend = backends[0];
	tap_step("layout of every required format", step_every_format);
	tap_step("asynchronous calls through get_fd/process", step_async_and_event_loop);
	tap_step("sd-event helper", step_sd_event_helper);
	tap_step("direct peer-to-peer connection", step_direct_connection);
	tap_step("attach and detach", step_attach_detach);
	if (dmabuf_tests)
		tap_step("backend chosen by usage and by device", step_choice_by_usage_and_device);
	else
		tap_skip("backend chosen by usage and by device",
			 "needs the heaps and DRM devices of the VM suite; shm is the only backend here");
	tap_step("a buffer lives while any client holds it", step_lifetime_across_holders);
	tap_step("a client killed with SIGKILL leaves nothing behind", step_client_death);
	tap_step("bad input: zero width or height", step_bad_zero_size);
	tap_step("bad input: enormous size", step_bad_enormous);
	tap_step("bad input: dimensions whose product overflows", step_bad_overflow);
	tap_step("bad input: unknown fourcc, modifier, usage", step_bad_format_and_modifier);
	tap_step("bad input: a pipe and a regular file passed to Import", step_bad_import_not_dmabuf);
	if (dmabuf_tests)
		tap_step("bad input: planes that do not fit the dma-buf", step_bad_import_planes);
	else
		tap_skip("bad input: planes that do not fit the dma-buf",
			 "needs a real dma-buf: the shm backend has none (runs in the VM suite)");
	tap_step("bad input: wrong, revoked and expired tokens", step_bad_tokens);
	tap_step("bad input: a call on another client's buffer", step_bad_foreign_buffer);
	tap_step("bad input: unknown options and wrong signatures", step_bad_options);
	tap_step("quota: max-buffers-per-client", step_quota);
	if (vivid)
		tap_step("import of a vivid EXPBUF buffer", step_vivid_import);
	tap_step("the daemon still answers", step_every_format);
	return tap_done();
}

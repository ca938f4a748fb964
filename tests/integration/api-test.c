/* SPDX-License-Identifier: MIT */
/*
 * api-test: the library functions no other test or tool calls:
 * dmabroker_connect_address(), dmabroker_buffer_dup_fd(),
 * dmabroker_stream_get_modifier() and dmabroker_stream_set_callback().
 *
 * usage: api-test (under tests/common/with-daemon.py). Output is TAP.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <drm_fourcc.h>

#include "tap.h"
#include "broker-util.h"
#include "fd-util.h"

TAP_DEFINE;


static const struct dmabroker_alloc_desc desc64 = {
	.version = DMABROKER_ALLOC_DESC_VERSION, .width = 64, .height = 64, .fourcc = DRM_FORMAT_XRGB8888,
	.usage = CPU_RW,
};

static bool step_connect_address(void)
{
	struct baseline base = baseline_take();
	const char *address = getenv("DBUS_SESSION_BUS_ADDRESS");
	struct dmabroker *b = NULL;
	struct dmabroker_buffer *buf = NULL;
	int fds = self_fd_count(), r;

	CHECK(address);
	CHECK(dmabroker_connect_address(address, &b) == 0 && b);
	CHECK(dmabroker_allocate(b, &desc64, &buf) == 0 && buf);
	CHECK(daemon_property_u32("Buffers") == base.buffers + 1);
	CHECK(dmabroker_open_direct(b) == 0 && dmabroker_is_direct(b));
	dmabroker_buffer_release(buf);
	b = dmabroker_disconnect(b);
	CHECK(self_fd_count() == fds);
	/* no bus there: an errno, nothing returned, nothing left open */
	r = dmabroker_connect_address("unix:path=/nonexistent/dmabroker-api-test", &b);
	tap_diag("an address with no bus: %d (%s)", r, strerror(-r));
	CHECK(r < 0 && !b);
	r = dmabroker_connect_address("not an address", &b);
	tap_diag("a malformed address: %d (%s)", r, strerror(-r));
	CHECK(r < 0 && !b);
	CHECK(self_fd_count() == fds);
	CHECK(baseline_restored(base));
	return true;
}

static bool step_dup_fd(void)
{
	struct baseline base = baseline_take();
	struct dmabroker *b = connect_session();
	struct dmabroker_buffer *buf = NULL;
	struct stat a, c;
	uint8_t *map;
	int fd, fds;

	CHECK(b && dmabroker_allocate(b, &desc64, &buf) == 0);
	fds = self_fd_count();
	fd = dmabroker_buffer_dup_fd(buf);
	CHECK(fd >= 0 && fd != dmabroker_buffer_get_fd(buf));
	CHECK(self_fd_count() == fds + 1);
	CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	/* the same memory: written through the buffer's fd, read through the new one */
	CHECK(fstat(fd, &a) == 0 && fstat(dmabroker_buffer_get_fd(buf), &c) == 0 && a.st_ino == c.st_ino);
	map = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, dmabroker_buffer_get_fd(buf), 0);
	CHECK(map != MAP_FAILED);
	memset(map, 0x5a, 4096);
	munmap(map, 4096);
	/* the caller's: it outlives the buffer */
	dmabroker_buffer_release(buf);
	map = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
	CHECK(map != MAP_FAILED);
	CHECK(map[0] == 0x5a && map[4095] == 0x5a);
	munmap(map, 4096);
	close(fd);
	CHECK(self_fd_count() == fds - 1); /* the buffer's own fd went with it */
	dmabroker_disconnect(b);
	CHECK(baseline_restored(base));
	return true;
}

static int calls;

static void on_stream(struct dmabroker_stream *s, void *userdata)
{
	(void)s;
	calls++;
	*(int *)userdata += 1;
}

/* Runs both connections until pred(s) (10 s at most). */
static bool run_both(struct dmabroker *p, struct dmabroker *c, bool (*pred)(const struct dmabroker_stream *),
		     const struct dmabroker_stream *s)
{
	for (int i = 0; i < 10000 && !pred(s); i++) {
		int a = dmabroker_process(p), b = dmabroker_process(c);
		if (a == 0 && b == 0)
			usleep(1000);
	}
	return pred(s);
}

static int seen;

static bool seen_some(const struct dmabroker_stream *s)
{
	(void)s;
	return seen > 0;
}

static bool step_stream_modifier_and_callback(void)
{
	struct baseline base = baseline_take();
	static const uint32_t formats[] = { DRM_FORMAT_XRGB8888 };
	static const uint64_t linear[] = { DRM_FORMAT_MOD_LINEAR };
	struct dmabroker *p = connect_session(), *c = connect_session();
	struct dmabroker_stream_desc pd = {
		.version = DMABROKER_STREAM_DESC_VERSION, .name = "api-test", .usage = CPU_RW, .formats = formats,
		.n_formats = 1, .width = 64, .height = 64, .consumers = 1, .buffers = 2,
		.mode = DMABROKER_STREAM_MAILBOX,
	};
	struct dmabroker_stream_desc cd = {
		.version = DMABROKER_STREAM_DESC_VERSION, .name = "api-test", .usage = DMABROKER_USAGE_CPU_READ_FLAG,
		.formats = formats, .n_formats = 1, .modifiers = linear, .n_modifiers = 1,
	};
	struct dmabroker_stream *ps = NULL, *cs = NULL;
	struct dmabroker_frame f;
	int r;

	CHECK(p && c);
	CHECK(dmabroker_stream_create(p, &pd, &ps) == 0 && dmabroker_stream_join(c, &cd, &cs) == 0);
	dmabroker_stream_set_callback(cs, on_stream, &seen);
	CHECK(run_both(p, c, (bool (*)(const struct dmabroker_stream *))dmabroker_stream_is_ready, cs));
	CHECK(run_both(p, c, (bool (*)(const struct dmabroker_stream *))dmabroker_stream_is_ready, ps));
	tap_diag("callback calls while negotiating: %d", seen);
	/* the negotiated modifier: linear, the same on both sides and on the buffers */
	CHECK(dmabroker_stream_get_modifier(cs) == DRM_FORMAT_MOD_LINEAR);
	CHECK(dmabroker_stream_get_modifier(ps) == dmabroker_stream_get_modifier(cs));
	CHECK(dmabroker_buffer_get_modifier(dmabroker_stream_get_buffer(cs, 0)) == dmabroker_stream_get_modifier(cs));
	CHECK(dmabroker_stream_get_fourcc(cs) == DRM_FORMAT_XRGB8888);
	/* a frame: the consumer's callback runs from dmabroker_process(), and then the frame is there */
	seen = 0;
	CHECK(dmabroker_stream_acquire(cs, &f) == -EAGAIN);
	CHECK(dmabroker_stream_dequeue(ps, &f) == 0);
	if (f.fence >= 0)
		close(f.fence);
	CHECK(dmabroker_stream_queue(ps, f.index, -1, 1, 0, NULL, 0) == 0);
	CHECK(run_both(p, c, seen_some, cs));
	tap_diag("callback calls for one frame: %d", seen);
	r = dmabroker_stream_acquire(cs, &f);
	CHECK(r == 0 && f.sequence == 1);
	if (f.fence >= 0)
		close(f.fence);
	CHECK(dmabroker_stream_release(cs, f.index, -1) == 0);
	/* cleared: no more calls, though the next frame comes */
	dmabroker_stream_set_callback(cs, NULL, NULL);
	seen = 0;
	calls = 0;
	for (int i = 0; i < 5000 && (r = dmabroker_stream_dequeue(ps, &f)) == -EAGAIN; i++)
		if (dmabroker_process(p) == 0 && dmabroker_process(c) == 0)
			usleep(1000);
	CHECK(r == 0);
	if (f.fence >= 0)
		close(f.fence);
	CHECK(dmabroker_stream_queue(ps, f.index, -1, 2, 0, NULL, 0) == 0);
	CHECK(dmabroker_stream_wait(cs, 10000) == 1);
	CHECK(dmabroker_stream_acquire(cs, &f) == 0 && f.sequence == 2);
	if (f.fence >= 0)
		close(f.fence);
	CHECK(seen == 0 && calls == 0);
	dmabroker_stream_destroy(cs);
	dmabroker_stream_destroy(ps);
	dmabroker_disconnect(c);
	dmabroker_disconnect(p);
	CHECK(baseline_restored(base));
	return true;
}

int main(void)
{
	if (!daemon_pid_from_env("api-test"))
		return 2;
	tap_plan(3);
	tap_step("dmabroker_connect_address: a bus at an address serves; no bus or a bad address: an errno, no fd left",
		 step_connect_address);
	tap_step("dmabroker_buffer_dup_fd: a new CLOEXEC fd of the same memory, the caller's, outliving the buffer",
		 step_dup_fd);
	tap_step("dmabroker_stream_get_modifier is the negotiated one; dmabroker_stream_set_callback runs the "
		 "callback when a frame arrives, and no more once cleared", step_stream_modifier_and_callback);
	return tap_done();
}

/* SPDX-License-Identifier: MIT */
/*
 * access-test: fence-ordered access end to end, against a real dmabrokerd
 * (under tests/common/with-daemon.py). Output is TAP.
 *
 * usage: access-test [--backend NAME] [--fences] [--frames N]
 *
 * Without --fences (the host, shm backend): grants, waiting, fairness,
 * multi-buffer acquisition, deadlock refusal, client death, and writer and
 * reader processes over thousands of frames through the CPU helpers.
 * With --fences (the VM, dma-buf backends, sw_sync and vgem): the same
 * frames with real pending release fences, release fences seen through
 * EXPORT_SYNC_FILE, a vgem driver fence in the next acquire fence, a
 * bounded number of kept fences, and a fence that never signals.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <drm_fourcc.h>
#include <linux/dma-buf.h>
#include <systemd/sd-bus.h>
#include <xf86drm.h>

#include "dmabroker.h"
#include "tap.h"
#include "broker-util.h"
#include "drm-find.h"
#include "uapi-extra.h"
#include "access-wire.h"
#include "errors.h"

TAP_DEFINE;

#define R DMABROKER_ACCESS_READ
#define W DMABROKER_ACCESS_WRITE

static const char *backend = "shm";
static int frames = 1000;

static struct dmabroker_buffer *alloc_buf(struct dmabroker *b, uint32_t w, uint32_t h)
{
	struct dmabroker_alloc_desc d = {
		.version = DMABROKER_ALLOC_DESC_VERSION, .width = w, .height = h,
		.fourcc = DRM_FORMAT_XRGB8888, .usage = CPU_RW, .backend = backend,
	};
	struct dmabroker_buffer *buf = NULL;
	int r = dmabroker_allocate(b, &d, &buf);
	if (r < 0)
		tap_diag("allocate on %s: %s", backend, dmabroker_error_message(b));
	return buf;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Runs the event loop of b until *done or timeout_ms passed. */
static void pump(struct dmabroker *b, const int *done, int timeout_ms)
{
	int64_t end = now_ms() + timeout_ms;
	struct pollfd p = { .fd = dmabroker_get_fd(b), .events = POLLIN };

	while (!*done && now_ms() < end) {
		poll(&p, 1, 20);
		dmabroker_process(b);
	}
}

struct pending_grant {
	int done, error, fence;
	uint64_t grant;
};

static void on_granted(struct dmabroker *b, int error, uint64_t grant, int fence, void *userdata)
{
	struct pending_grant *p = userdata;
	p->done = 1;
	p->error = error;
	p->grant = grant;
	p->fence = fence;
}

/* ListBuffers' grants, waiters, fences or timeouts of buffer id, or -1. */
static int buffer_field(uint64_t id, const char *field)
{
	struct listed_buffer e;

	if (listed_buffer_find(NULL, id, &e) <= 0)
		return -1;
	return !strcmp(field, "grants") ? (int)e.grants : !strcmp(field, "waiters") ? (int)e.waiters :
	       !strcmp(field, "fences") ? (int)e.fences : (int)e.timeouts;
}

/*
 * Waits until ListBuffers shows `field` of buffer id at want, pumping
 * `pumped` (may be NULL) meanwhile; false, saying so, if `must_wait` (may
 * be NULL) was answered first or the daemon never got there (20 s). A
 * waiter counted in `waiters` is queued in the daemon and not granted:
 * the state that proves "still waiting", however slow the daemon.
 */
static bool wait_field(uint64_t id, const char *field, int want, struct dmabroker *pumped,
		       const struct pending_grant *must_wait)
{
	int64_t end = now_ms() + 20000;
	int now = -1;

	while (now_ms() < end) {
		if (pumped)
			dmabroker_process(pumped);
		if (must_wait && must_wait->done) {
			tap_diag("answered (error %d) while it should wait: buffer %" PRIu64 " %s = %d, want %d",
				 must_wait->error, id, field, buffer_field(id, field), want);
			return false;
		}
		now = buffer_field(id, field);
		if (now == want)
			return !must_wait || !must_wait->done;
		usleep(5000);
	}
	tap_diag("buffer %" PRIu64 ": %s = %d after 20 s, want %d", id, field, now, want);
	return false;
}

/* ---- grants ---- */

static bool step_grant_basics(void)
{
	struct baseline base = baseline_take();
	struct dmabroker *a = connect_session(), *b = connect_session();
	struct dmabroker_buffer *buf, *bb;
	uint64_t g1, g2, g3;
	int f1 = -1, f2 = -1, f3 = -1;

	CHECK(a && b);
	buf = alloc_buf(a, 64, 64);
	CHECK(buf);
	bb = share(buf, b);
	CHECK(bb);
	CHECK(dmabroker_buffer_begin_access(buf, R, 0, &g1, &f1) == 0);
	/* A writer cannot join a reader... */
	CHECK(expect_error(b, dmabroker_buffer_begin_access(bb, W, DMABROKER_ACCESS_NONBLOCK, &g3, &f3), EBUSY,
			   "org.dmabroker.Error.Busy"));
	/* ...readers share. */
	CHECK(dmabroker_buffer_begin_access(bb, R, 0, &g2, &f2) == 0);
	CHECK(f1 == -1 && f2 == -1); /* nothing pending on a fresh buffer */
	CHECK(buffer_field(dmabroker_buffer_get_id(buf), "grants") == 2);
	/* Asking for what you already block yourself on. */
	CHECK(expect_error(a, dmabroker_buffer_begin_access(buf, W, 0, &g3, &f3), EDEADLK,
			   "org.dmabroker.Error.WouldDeadlock"));
	CHECK(dmabroker_end_access(a, g1, -1) == 0);
	CHECK(expect_error(a, dmabroker_end_access(a, g1, -1), EBADSLT, "org.dmabroker.Error.UnknownGrant"));
	CHECK(expect_error(a, dmabroker_end_access(a, g2, -1), EBADSLT, "org.dmabroker.Error.UnknownGrant"));
	CHECK(dmabroker_end_access(b, g2, -1) == 0);
	CHECK(dmabroker_buffer_begin_access(bb, W, DMABROKER_ACCESS_NONBLOCK, &g3, &f3) == 0);
	CHECK(dmabroker_end_access(b, g3, -1) == 0);
	CHECK(expect_error(a, dmabroker_buffer_begin_access(buf, 3, 0, &g3, &f3), EINVAL,
			   "org.dmabroker.Error.InvalidArgument"));
	CHECK(expect_error(a, dmabroker_buffer_begin_access(buf, R, 0x10, &g3, &f3), EINVAL,
			   "org.dmabroker.Error.InvalidArgument"));
	{
		/* A release fence that is not a sync_file. */
		int p[2];
		CHECK(pipe2(p, O_CLOEXEC) == 0);
		CHECK(dmabroker_buffer_begin_access(buf, R, 0, &g1, &f1) == 0);
		CHECK(expect_error(a, dmabroker_end_access(a, g1, p[0]), EINVAL, "org.dmabroker.Error.InvalidArgument"));
		CHECK(dmabroker_end_access(a, g1, -1) == 0);
		close(p[0]);
		close(p[1]);
	}
	dmabroker_disconnect(a);
	dmabroker_disconnect(b);
	CHECK(baseline_restored(base));
	return true;
}

/* One-way EndAccess: ends the grant without a reply; what only the daemon can refuse is logged, not returned. */
static bool step_end_oneway(void)
{
	struct baseline base = baseline_take();
	struct dmabroker *a = connect_session(), *b = connect_session();
	struct dmabroker_buffer *buf, *bb;
	uint64_t g1, g2;
	int f1 = -1, f2 = -1, p[2];

	CHECK(a && b && dmabroker_open_direct(a) == 0);
	buf = alloc_buf(a, 64, 64);
	CHECK(buf);
	bb = share(buf, b);
	CHECK(bb);
	for (int i = 0; i < 100; i++) {
		/* a writer on one connection, then a writer on the other: only if each one-way end landed */
		CHECK(dmabroker_buffer_begin_access(buf, W, 0, &g1, &f1) == 0);
		CHECK(dmabroker_end_access_oneway(a, g1, -1) == 0);
		/* different connections: b's begin may reach the daemon first, and waits for a's end */
		CHECK(dmabroker_buffer_begin_access(bb, W, 0, &g2, &f2) == 0);
		CHECK(dmabroker_end_access_oneway(b, g2, -1) == 0);
	}
	CHECK(dmabroker_buffer_begin_access(buf, W, 0, &g1, &f1) == 0);
	CHECK(pipe2(p, O_CLOEXEC) == 0);
	CHECK(expect_error(a, dmabroker_end_access_oneway(a, g1, p[0]), EINVAL,
			   "org.dmabroker.Error.InvalidArgument"));
	close(p[0]);
	close(p[1]);
	CHECK(dmabroker_end_access_oneway(a, g1, -1) == 0);
	/* unknown to the daemon: sent, refused there (a log line), and the connection goes on */
	CHECK(dmabroker_end_access_oneway(a, g1, -1) == 0);
	CHECK(dmabroker_end_access_oneway(a, 0xdeadbeef, -1) == 0);
	CHECK(dmabroker_buffer_begin_access(buf, R, 0, &g1, &f1) == 0);
	CHECK(buffer_field(dmabroker_buffer_get_id(buf), "grants") == 1);
	CHECK(dmabroker_end_access(a, g1, -1) == 0);
	dmabroker_disconnect(a);
	dmabroker_disconnect(b);
	CHECK(baseline_restored(base));
	return true;
}

/*
 * More one-way calls than the channel's socket holds, sent while the daemon is stopped (SIGSTOP, SIGCONT from
 * a child 300 ms later): the library waits for room, as a blocking send would; the channel does not break and
 * nothing falls back to D-Bus. (It broke with EAGAIN when a client released a thousand buffers at once in the
 * test bed, where the daemon reads slower than a client sends.)
 */
static bool step_channel_backpressure(void)
{
	enum { N = 1000 };
	struct baseline base = baseline_take();
	struct dmabroker *a = connect_session();
	struct dmabroker_channel_stats st0 = { .version = DMABROKER_CHANNEL_STATS_VERSION }, st1 = st0;
	struct dmabroker_buffer **bufs = calloc(N, sizeof(*bufs));
	int status;
	pid_t child;

	CHECK(a && bufs && dmabroker_open_direct(a) == 0);
	for (int i = 0; i < N; i++)
		CHECK((bufs[i] = alloc_buf(a, 16, 16)));
	CHECK(dmabroker_get_channel_stats(a, &st0) == 0 && st0.active);
	CHECK(kill(daemon_pid, SIGSTOP) == 0);
	child = fork();
	if (child == 0) {
		usleep(300000);
		_exit(kill(daemon_pid, SIGCONT) == 0 ? 0 : 1);
	}
	CHECK(child > 0);
	for (int i = 0; i < N; i++)
		dmabroker_buffer_release(bufs[i]);
	CHECK(waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CHECK(dmabroker_get_channel_stats(a, &st1) == 0);
	tap_diag("%d releases in a burst: channel %s, %u fallbacks before, %u after", N,
		 st1.active ? "open" : "closed", st0.fallbacks, st1.fallbacks);
	CHECK(st1.active && st1.fallbacks == st0.fallbacks);
	free(bufs);
	dmabroker_disconnect(a);
	CHECK(baseline_restored(base));
	return true;
}

/* A BEGIN or END by hand on a raw access channel. */
static int wire_request(int ch, uint32_t op, uint32_t cookie, uint64_t id, uint32_t mode)
{
	struct access_wire_request w = { .op = op, .cookie = cookie, .id = id, .mode = mode };
	return send(ch, &w, sizeof(w), MSG_NOSIGNAL) == (ssize_t)sizeof(w) ? 0 : -errno;
}

/* The next answer on a raw channel, within 5 s: its size (0: the channel ended), or -1. */
static ssize_t wire_answer(int ch, struct access_wire_reply *a)
{
	struct pollfd p = { .fd = ch, .events = POLLIN };
	memset(a, 0, sizeof(*a));
	if (poll(&p, 1, 5000) != 1)
		return -1;
	return recv(ch, a, sizeof(*a), 0);
}

static bool step_access_channel(void)
{
	struct baseline base = baseline_take();
	struct dmabroker *a = connect_session(), *b = connect_session();
	struct dmabroker_buffer *buf, *bb;
	struct access_wire_reply ans;
	sd_bus *raw = NULL;
	sd_bus_message *reply = NULL;
	sd_bus_error e = SD_BUS_ERROR_NULL;
	uint64_t g, g2;
	int f = -1, f2 = -1, fd, ch = -1;

	/* a on its access channel, b on the bus: one queue for both */
	CHECK(a && b && dmabroker_open_direct(a) == 0);
	buf = alloc_buf(a, 64, 32);
	CHECK(buf);
	bb = share(buf, b);
	CHECK(bb);
	CHECK(dmabroker_buffer_begin_access(buf, W, 0, &g, &f) == 0);
	CHECK(expect_error(b, dmabroker_buffer_begin_access(bb, R, DMABROKER_ACCESS_NONBLOCK, &g2, &f2), EBUSY,
			   "org.dmabroker.Error.Busy"));
	/* the daemon's refusals come back on the channel with their names */
	CHECK(expect_error(a, dmabroker_buffer_begin_access(buf, W, 0, &g2, &f2), EDEADLK,
			   "org.dmabroker.Error.WouldDeadlock"));
	CHECK(expect_error(a, dmabroker_buffer_begin_access(buf, 7, 0, &g2, &f2), EINVAL,
			   "org.dmabroker.Error.InvalidArgument"));
	CHECK(dmabroker_end_access_oneway(a, g, -1) == 0);
	/* b's read waits for nothing once a's one-way end is in */
	CHECK(dmabroker_buffer_begin_access(bb, R, 0, &g2, &f2) == 0);
	CHECK(dmabroker_end_access(b, g2, -1) == 0);
	/* Allocate and Release on the channel: the same buffers and the same named refusals as on D-Bus */
	{
		struct dmabroker_alloc_desc d = { .version = DMABROKER_ALLOC_DESC_VERSION, .width = 64, .height = 64,
						  .fourcc = DRM_FORMAT_XRGB8888, .usage = CPU_RW, .backend = backend,
						  .flags = DMABROKER_ALLOC_FRESH };
		struct dmabroker_buffer *x = NULL;
		int before = daemon_property_u32("Buffers");
		uint64_t offset = 1;
		uint32_t stride = 0;
		CHECK(dmabroker_allocate(a, &d, &x) == 0 && x);
		CHECK(dmabroker_buffer_get_size(x) >= 64 * 64 * 4 && dmabroker_buffer_get_plane_count(x) == 1);
		CHECK(dmabroker_buffer_get_plane(x, 0, &offset, &stride) == 0 && offset == 0 && stride >= 64 * 4);
		CHECK(daemon_property_u32("Buffers") == before + 1);
		CHECK(dmabroker_buffer_begin_access(x, W, 0, &g2, &f2) == 0);
		CHECK(dmabroker_end_access_oneway(a, g2, -1) == 0);
		dmabroker_buffer_release(x);
		for (int t = 0; t < 100 && daemon_property_u32("Buffers") != before; t++)
			usleep(10000);
		CHECK(daemon_property_u32("Buffers") == before);
		d.width = 0;
		CHECK(expect_error(a, dmabroker_allocate(a, &d, &x), EDOM, "org.dmabroker.Error.InvalidDimensions"));
		d.width = 64;
		d.fourcc = 0x20202020;
		CHECK(expect_error(a, dmabroker_allocate(a, &d, &x), EPROTONOSUPPORT,
				   "org.dmabroker.Error.UnsupportedFormat"));
		d.fourcc = DRM_FORMAT_XRGB8888;
		d.backend = "no-such-backend";
		CHECK(expect_error(a, dmabroker_allocate(a, &d, &x), ENODEV, "org.dmabroker.Error.NoBackend"));
		CHECK(daemon_property_u32("Buffers") == before);
	}

	/* by hand: one channel per client; a buffer it does not hold; an unknown grant; a malformed message */
	CHECK(sd_bus_open_user(&raw) >= 0);
	CHECK(sd_bus_call_method(raw, "org.dmabroker.Broker1", "/org/dmabroker/Broker1", "org.dmabroker.Broker1",
				 "OpenAccessChannel", &e, &reply, "") >= 0);
	CHECK(sd_bus_message_read(reply, "h", &fd) > 0 && (ch = fcntl(fd, F_DUPFD_CLOEXEC, 3)) >= 0);
	reply = sd_bus_message_unref(reply);
	CHECK(sd_bus_call_method(raw, "org.dmabroker.Broker1", "/org/dmabroker/Broker1", "org.dmabroker.Broker1",
				 "OpenAccessChannel", &e, NULL, "") < 0);
	CHECK(sd_bus_error_has_name(&e, "org.dmabroker.Error.LimitReached"));
	sd_bus_error_free(&e);
	CHECK(wire_request(ch, ACCESS_WIRE_BEGIN, 7, dmabroker_buffer_get_id(buf), W) == 0);
	CHECK(wire_answer(ch, &ans) == (ssize_t)sizeof(ans));
	tap_diag("BEGIN on another's buffer, by hand: %s: %s", dmabroker_error_code_name(ans.code), ans.message);
	CHECK(ans.op == ACCESS_WIRE_ERROR && ans.cookie == 7 && ans.error == EPERM &&
	      ans.code == DMABROKER_E_NOT_PERMITTED);
	CHECK(wire_request(ch, ACCESS_WIRE_END, 0, 0xdeadbeef, 0) == 0); /* logged; no answer */
	CHECK(wire_request(ch, ACCESS_WIRE_RELEASE, 0, dmabroker_buffer_get_id(buf), 0) == 0); /* not its own: logged */
	CHECK(wire_request(ch, ACCESS_WIRE_BEGIN, 8, 0xdeadbeef, R) == 0);
	CHECK(wire_answer(ch, &ans) == (ssize_t)sizeof(ans));
	CHECK(ans.op == ACCESS_WIRE_ERROR && ans.cookie == 8 && ans.code == DMABROKER_E_UNKNOWN_BUFFER);
	CHECK(send(ch, "bad", 3, MSG_NOSIGNAL) == 3);
	CHECK(wire_answer(ch, &ans) == 0); /* the daemon closed the channel */
	close(ch);
	sd_bus_flush_close_unref(raw);
	/* and went on serving: a's channel still works */
	CHECK(dmabroker_buffer_begin_access(buf, W, 0, &g, &f) == 0);
	CHECK(dmabroker_end_access_oneway(a, g, -1) == 0);
	dmabroker_disconnect(b);
	dmabroker_disconnect(a);
	CHECK(baseline_restored(base));
	return true;
}

static bool step_fenceless_holder(void)
{
	struct baseline base = baseline_take();
	struct dmabroker *a = connect_session(), *b = connect_session(), *c = connect_session();
	struct dmabroker_buffer *buf, *bb, *cb, *other;
	struct pending_grant pg = { 0 }, pc = { 0 };
	uint64_t g, id;
	int f = -1;

	CHECK(a && b && c);
	buf = alloc_buf(a, 64, 64);
	CHECK(buf && (bb = share(buf, b)) && (cb = share(buf, c)));
	id = dmabroker_buffer_get_id(buf);
	CHECK(dmabroker_buffer_begin_access(buf, W, 0, &g, &f) == 0); /* a CPU writer, no fence */
	/* A second writer, first in line: held, not answered, queued in the daemon (writes never overlap)... */
	CHECK(dmabroker_buffer_begin_access_async(cb, W, 0, on_granted, &pc) == 0);
	CHECK(wait_field(id, "waiters", 1, c, &pc));
	/* ...and a reader. */
	CHECK(dmabroker_buffer_begin_access_async(bb, R, 0, on_granted, &pg) == 0);
	CHECK(wait_field(id, "waiters", 2, b, &pg));
	dmabroker_process(c);
	CHECK(!pc.done && buffer_field(id, "grants") == 1);
	/* The daemon serves everybody else meanwhile. */
	other = alloc_buf(c, 32, 32);
	CHECK(other);
	CHECK(daemon_property_u32("Buffers") >= 2);
	CHECK(dmabroker_end_access(a, g, -1) == 0);
	pump(c, &pc.done, 5000);
	CHECK(pc.done && pc.error == 0 && pc.grant && pc.fence == -1);
	/* The second writer holds it; the reader still waits. */
	CHECK(wait_field(id, "waiters", 1, b, &pg));
	CHECK(buffer_field(id, "grants") == 1);
	CHECK(dmabroker_end_access(c, pc.grant, -1) == 0);
	pump(b, &pg.done, 5000);
	CHECK(pg.done && pg.error == 0 && pg.grant);
	CHECK(pg.fence == -1);
	CHECK(buffer_field(id, "grants") == 1 && buffer_field(id, "waiters") == 0);
	CHECK(dmabroker_end_access(b, pg.grant, -1) == 0);
	dmabroker_disconnect(a);
	dmabroker_disconnect(b);
	dmabroker_disconnect(c);
	CHECK(baseline_restored(base));
	return true;
}

static bool step_writer_not_starved(void)
{
	struct baseline base = baseline_take();
	struct dmabroker *a = connect_session(), *w = connect_session(), *r2 = connect_session();
	struct dmabroker_buffer *buf, *wb, *rb;
	struct pending_grant pw = { 0 }, pr = { 0 };
	uint64_t g;
	int f = -1;

	CHECK(a && w && r2);
	buf = alloc_buf(a, 64, 64);
	CHECK(buf && (wb = share(buf, w)) && (rb = share(buf, r2)));
	CHECK(dmabroker_buffer_begin_access(buf, R, 0, &g, &f) == 0);
	CHECK(dmabroker_buffer_begin_access_async(wb, W, 0, on_granted, &pw) == 0);
	CHECK(wait_field(dmabroker_buffer_get_id(buf), "waiters", 1, w, &pw));
	/* A reader arriving after a waiting writer queues behind it, although
	 * it could share with the active reader. */
	CHECK(dmabroker_buffer_begin_access_async(rb, R, 0, on_granted, &pr) == 0);
	CHECK(wait_field(dmabroker_buffer_get_id(buf), "waiters", 2, r2, &pr));
	dmabroker_process(w);
	CHECK(!pw.done && buffer_field(dmabroker_buffer_get_id(buf), "grants") == 1);
	CHECK(dmabroker_end_access(a, g, -1) == 0);
	pump(w, &pw.done, 5000);
	CHECK(pw.done && pw.error == 0);
	/* The writer holds it; the reader is still queued (not granted alongside). */
	CHECK(wait_field(dmabroker_buffer_get_id(buf), "waiters", 1, r2, &pr));
	CHECK(buffer_field(dmabroker_buffer_get_id(buf), "grants") == 1);
	CHECK(dmabroker_end_access(w, pw.grant, -1) == 0);
	pump(r2, &pr.done, 5000);
	CHECK(pr.done && pr.error == 0);
	CHECK(dmabroker_end_access(r2, pr.grant, -1) == 0);
	dmabroker_disconnect(a);
	dmabroker_disconnect(w);
	dmabroker_disconnect(r2);
	CHECK(baseline_restored(base));
	return true;
}

static bool step_deadlock_refused(void)
{
	struct baseline base = baseline_take();
	struct dmabroker *c1 = connect_session(), *c2 = connect_session();
	struct dmabroker_buffer *a1, *b1, *a2, *b2;
	struct pending_grant p1 = { 0 };
	uint64_t ga, gb, g;
	int f = -1;

	CHECK(c1 && c2);
	a1 = alloc_buf(c1, 16, 16);
	b1 = alloc_buf(c1, 16, 16);
	CHECK(a1 && b1 && (a2 = share(a1, c2)) && (b2 = share(b1, c2)));
	CHECK(dmabroker_buffer_begin_access(a1, W, 0, &ga, &f) == 0);
	CHECK(dmabroker_buffer_begin_access(b2, W, 0, &gb, &f) == 0);
	/* c1 holds A and waits for B; c2 holds B and asks for A: a cycle. */
	CHECK(dmabroker_buffer_begin_access_async(b1, W, 0, on_granted, &p1) == 0);
	CHECK(wait_field(dmabroker_buffer_get_id(b1), "waiters", 1, c1, &p1)); /* c1's wait is in */
	CHECK(expect_error(c2, dmabroker_buffer_begin_access(a2, W, 0, &g, &f), EDEADLK,
			   "org.dmabroker.Error.WouldDeadlock"));
	/* c2 backs off as told; c1 goes on. */
	CHECK(dmabroker_end_access(c2, gb, -1) == 0);
	pump(c1, &p1.done, 5000);
	CHECK(p1.done && p1.error == 0);
	CHECK(dmabroker_end_access(c1, p1.grant, -1) == 0 && dmabroker_end_access(c1, ga, -1) == 0);
	dmabroker_disconnect(c1);
	dmabroker_disconnect(c2);
	CHECK(baseline_restored(base));
	return true;
}

/* Two processes acquire {A, B} and {B, A} for writing, `n` times each. */
static int multi_child(const char *ta, const char *tb, bool reverse, int n)
{
	struct dmabroker *b = connect_session();
	struct dmabroker_buffer *bufs[2] = { NULL, NULL };
	uint32_t modes[2] = { W, W };
	uint64_t grants[2];
	int fence;

	if (!b || dmabroker_open_token(b, ta, &bufs[reverse]) < 0 || dmabroker_open_token(b, tb, &bufs[!reverse]) < 0)
		return 1;
	if (dmabroker_open_direct(b) < 0)
		return 1;
	for (int i = 0; i < n; i++) {
		if (dmabroker_begin_access_multi(b, 2, bufs, modes, 0, grants, &fence) < 0) {
			fprintf(stderr, "multi: %s\n", dmabroker_error_message(b));
			return 1;
		}
		if (fence >= 0) {
			dmabroker_fence_wait(fence, -1);
			close(fence);
		}
		if (dmabroker_end_access(b, grants[0], -1) < 0 || dmabroker_end_access(b, grants[1], -1) < 0)
			return 1;
	}
	dmabroker_disconnect(b);
	return 0;
}

static bool step_multi_no_deadlock(void)
{
	struct baseline base = baseline_take();
	struct dmabroker *owner = connect_session();
	struct dmabroker_buffer *a, *b;
	char *ta = NULL, *tb = NULL;
	pid_t pids[2];
	int64_t t0 = now_ms();

	CHECK(owner);
	a = alloc_buf(owner, 16, 16);
	b = alloc_buf(owner, 16, 16);
	CHECK(a && b);
	CHECK(dmabroker_buffer_create_token(a, 0, 0, &ta) == 0 && dmabroker_buffer_create_token(b, 0, 0, &tb) == 0);
	for (int i = 0; i < 2; i++) {
		pids[i] = fork();
		CHECK(pids[i] >= 0);
		if (pids[i] == 0)
			_exit(multi_child(ta, tb, i == 1, 1000));
	}
	for (int i = 0; i < 2; i++) {
		int status;
		/* A deadlock would hang here: the harness's timeout fails the test. */
		CHECK(waitpid(pids[i], &status, 0) == pids[i]);
		CHECKF(WIFEXITED(status) && WEXITSTATUS(status) == 0, "process %d failed", i);
	}
	tap_diag("2 x 1000 acquisitions of {A,B} and {B,A} in %.1f s", (double)(now_ms() - t0) / 1000);
	free(ta);
	free(tb);
	dmabroker_disconnect(owner);
	CHECK(baseline_restored(base));
	return true;
}

static bool step_holder_death_and_release(void)
{
	struct baseline base = baseline_take();
	struct dmabroker *a = connect_session(), *b = connect_session();
	struct dmabroker_buffer *buf, *bb;
	struct pending_grant pg = { 0 }, pr = { 0 };
	char *token = NULL, ready;
	int fds[2], status;
	pid_t pid;

	CHECK(a && b);
	buf = alloc_buf(a, 64, 64);
	CHECK(buf && (bb = share(buf, b)));
	CHECK(dmabroker_buffer_create_token(buf, 0, 0, &token) == 0);
	CHECK(pipe(fds) == 0);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		struct dmabroker *c = connect_session();
		struct dmabroker_buffer *cb = NULL;
		uint64_t g;
		int f;
		if (!c || dmabroker_open_token(c, token, &cb) < 0 || dmabroker_buffer_begin_access(cb, W, 0, &g, &f) < 0)
			_exit(1);
		if (write(fds[1], "x", 1) != 1)
			_exit(1);
		pause(); /* killed while holding a write grant */
		_exit(1);
	}
	close(fds[1]);
	CHECK(read(fds[0], &ready, 1) == 1);
	close(fds[0]);
	CHECK(dmabroker_buffer_begin_access_async(bb, R, 0, on_granted, &pg) == 0);
	CHECK(wait_field(dmabroker_buffer_get_id(buf), "waiters", 1, b, &pg));
	CHECK(kill(pid, SIGKILL) == 0 && waitpid(pid, &status, 0) == pid);
	pump(b, &pg.done, 5000);
	CHECKF(pg.done && pg.error == 0, "the waiter was not granted after the holder died");
	CHECK(dmabroker_end_access(b, pg.grant, -1) == 0);
	/* A waiter whose buffer is released gets an error, not silence. */
	{
		uint64_t g;
		int f;
		CHECK(dmabroker_buffer_begin_access(buf, W, 0, &g, &f) == 0);
		CHECK(dmabroker_buffer_begin_access_async(bb, R, 0, on_granted, &pr) == 0);
		CHECK(wait_field(dmabroker_buffer_get_id(buf), "waiters", 1, b, &pr)); /* a waiter, then released */
		dmabroker_buffer_release(bb);
		pump(b, &pr.done, 5000);
		CHECK(pr.done && pr.error == -ENOENT);
		CHECK(dmabroker_end_access(a, g, -1) == 0);
	}
	free(token);
	dmabroker_disconnect(a);
	dmabroker_disconnect(b);
	CHECK(baseline_restored(base));
	return true;
}

/* ---- frames: writers and readers ---- */

/*
 * A frame: word 0 is its sequence number, every other word f(seq, i): a
 * reader that looked while a writer wrote could see two sequence numbers.
 * That catches an overlap only if one is seen mid-write; the proof is the
 * access log below.
 */
static uint32_t frame_word(uint32_t seq, size_t i)
{
	return seq * 2654435761u ^ (uint32_t)i * 40503u;
}

struct frame_ctx {
	struct dmabroker *b;
	struct dmabroker_buffer *buf;
	uint32_t *map;
	size_t words;
	int timeline;           /* sw_sync, with --fences */
	uint32_t point;
};

static int frame_open(struct frame_ctx *f, const char *token, bool fences)
{
	memset(f, 0, sizeof(*f));
	f->timeline = -1;
	f->b = connect_session();
	if (!f->b || dmabroker_open_token(f->b, token, &f->buf) < 0 || dmabroker_open_direct(f->b) < 0)
		return -1;
	f->words = dmabroker_buffer_get_size(f->buf) / 4;
	f->map = mmap(NULL, f->words * 4, PROT_READ | PROT_WRITE, MAP_SHARED, dmabroker_buffer_get_fd(f->buf), 0);
	if (f->map == MAP_FAILED)
		return -1;
	if (fences) {
		f->timeline = open(SW_SYNC_DEBUGFS_PATH, O_RDWR | O_CLOEXEC);
		if (f->timeline < 0)
			return -1;
	}
	return 0;
}

/* A sw_sync fence at the timeline's next point: the "GPU" finishing later. */
static int frame_next_fence(struct frame_ctx *f)
{
	struct sw_sync_create_fence_data d = { .value = ++f->point };
	snprintf(d.name, sizeof(d.name), "frame-%u", f->point);
	return ioctl(f->timeline, SW_SYNC_IOC_CREATE_FENCE, &d) < 0 ? -1 : d.fence;
}

static void frame_signal(struct frame_ctx *f)
{
	uint32_t one = 1;
	ioctl(f->timeline, SW_SYNC_IOC_INC, &one);
}

static void dma_sync(struct frame_ctx *f, uint64_t flags)
{
	struct dma_buf_sync s = { .flags = flags };
	if (dmabroker_buffer_is_dmabuf(f->buf))
		ioctl(dmabroker_buffer_get_fd(f->buf), DMA_BUF_IOCTL_SYNC, &s);
}

/*
 * Begins an access for the frame: grant, wait for the acquire fence, SYNC
 * START, and with fences end the grant at once under a pending release
 * fence, like a GPU job that runs after its submission returned. CPU
 * access starts before the release fence goes back: once it is in the
 * dma-buf, SYNC START would wait for it, that is for ourselves.
 */
static int frame_begin(struct frame_ctx *f, uint32_t mode, bool fences, uint64_t *g)
{
	uint64_t sync = mode == W ? DMA_BUF_SYNC_RW : DMA_BUF_SYNC_READ;
	int acquire = -1, release;

	if (dmabroker_buffer_begin_access(f->buf, mode, 0, g, &acquire) < 0)
		return 1;
	if (acquire >= 0) {
		if (dmabroker_fence_wait(acquire, 10000) != 1)
			return 2;
		close(acquire);
	}
	dma_sync(f, DMA_BUF_SYNC_START | sync);
	if (fences) {
		release = frame_next_fence(f);
		if (release < 0 || dmabroker_end_access(f->b, *g, release) < 0)
			return 1;
		close(release);
	}
	return 0;
}

/* Ends it: SYNC END, then signal the release fence, or end the grant. */
static int frame_end(struct frame_ctx *f, uint32_t mode, bool fences, uint64_t g)
{
	dma_sync(f, DMA_BUF_SYNC_END | (mode == W ? DMA_BUF_SYNC_RW : DMA_BUF_SYNC_READ));
	if (fences)
		frame_signal(f);
	else if (dmabroker_end_access(f->b, g, -1) < 0)
		return 1;
	return 0;
}

/*
 * The access log, in memory shared by the frame processes: each takes a
 * stamp from one atomic clock when its access begins (granted, the acquire
 * fence signalled) and when it ends (before its release fence signals or
 * EndAccess goes out), and writes the event at the stamp's index. The
 * stamps order every begin and end of all processes: a write whose
 * interval holds another access's begin or end overlapped it, whatever the
 * timing, and the check below finds it in the whole log after the run.
 */
struct access_event {
	uint8_t used, proc, begin, mode;
};

struct access_log {
	_Atomic uint32_t clock;
	uint32_t size;
	struct access_event ev[];
};

static struct access_log *access_log;

static void log_access(int proc, bool begin, uint32_t mode)
{
	uint32_t at = atomic_fetch_add(&access_log->clock, 1);

	if (at < access_log->size)
		access_log->ev[at] = (struct access_event){ 1, (uint8_t)proc, begin, (uint8_t)mode };
}

/* Walks the log in stamp order: a write begins only with nobody in, a read only with no writer in. */
static bool access_log_check(int procs, unsigned *writes, unsigned *reads)
{
	uint32_t n = atomic_load(&access_log->clock);
	int in[16] = { 0 }, writers = 0, readers = 0;

	*writes = *reads = 0;
	if (n > access_log->size) {
		tap_diag("the access log overflowed: %u events, room for %u", n, access_log->size);
		return false;
	}
	for (uint32_t i = 0; i < n; i++) {
		const struct access_event *e = &access_log->ev[i];
		if (!e->used || e->proc >= procs) {
			tap_diag("access log: stamp %u was taken but never written", i);
			return false;
		}
		if (!e->begin) {
			if (!in[e->proc]) {
				tap_diag("access log: stamp %u: process %d ends an access it never began", i, e->proc);
				return false;
			}
			in[e->proc] = 0;
			*(e->mode == W ? &writers : &readers) -= 1;
			continue;
		}
		if (writers || (e->mode == W && readers)) {
			tap_diag("access log: stamp %u: process %d begins a %s while %d writer(s) and %d reader(s) "
				 "are in", i, e->proc, e->mode == W ? "write" : "read", writers, readers);
			return false;
		}
		in[e->proc] = 1;
		*(e->mode == W ? &writers : &readers) += 1;
		*(e->mode == W ? writes : reads) += 1;
	}
	return writers == 0 && readers == 0;
}

static int writer_main(int proc, const char *token, bool fences, int n)
{
	struct frame_ctx f;

	if (frame_open(&f, token, fences) < 0)
		return 1;
	for (int k = 0; k < n; k++) {
		uint64_t g;
		uint32_t seq;
		int r = frame_begin(&f, W, fences, &g);

		if (r)
			return r;
		log_access(proc, true, W);
		seq = f.map[0] + 1;
		for (size_t i = 1; i < f.words; i++)
			f.map[i] = frame_word(seq, i);
		f.map[0] = seq;
		log_access(proc, false, W);
		if (frame_end(&f, W, fences, g))
			return 1;
	}
	dmabroker_disconnect(f.b);
	return 0;
}

/* 0: the frame is whole; else the first word that disagrees. */
static size_t frame_check(const struct frame_ctx *f, uint32_t *seq)
{
	*seq = f->map[0];
	for (size_t i = 1; i < f->words; i++)
		if (f->map[i] != frame_word(*seq, i) && !(*seq == 0 && f->map[i] == 0))
			return i;
	return 0;
}

static int reader_main(int proc, const char *token, bool fences, int n)
{
	struct frame_ctx f;
	uint32_t last = 0;

	if (frame_open(&f, token, fences) < 0)
		return 1;
	for (int k = 0; k < n; k++) {
		uint64_t g;
		uint32_t seq, again;
		size_t bad;
		int r = frame_begin(&f, R, fences, &g); /* with fences: read after ending, under a release fence */

		if (r)
			return r;
		log_access(proc, true, R);
		bad = frame_check(&f, &seq);
		if (bad) {
			fprintf(stderr, "reader: frame %u torn at word %zu\n", seq, bad);
			return 3;
		}
		if (seq < last) {
			fprintf(stderr, "reader: frame %u after %u\n", seq, last);
			return 3;
		}
		/* A writer that overwrote what we still read shows here. */
		if (frame_check(&f, &again) || again != seq) {
			fprintf(stderr, "reader: frame %u changed while being read (now %u)\n", seq, again);
			return 4;
		}
		last = seq;
		log_access(proc, false, R);
		if (frame_end(&f, R, fences, g))
			return 1;
	}
	dmabroker_disconnect(f.b);
	return 0;
}

static bool run_frames(bool fences)
{
	struct baseline base = baseline_take();
	struct dmabroker *owner = connect_session();
	struct dmabroker_buffer *buf;
	enum { WRITERS = 2, READERS = 3 };
	pid_t pids[WRITERS + READERS];
	char *token = NULL;
	int64_t t0 = now_ms();
	size_t log_size;
	uint64_t g;
	uint32_t last;
	int f;

	CHECK(owner);
	buf = alloc_buf(owner, 64, 32);
	CHECK(buf);
	CHECK(dmabroker_buffer_create_token(buf, 0, 0, &token) == 0);
	log_size = sizeof(*access_log) + 2 * (size_t)(WRITERS + READERS) * frames * sizeof(struct access_event);
	access_log = mmap(NULL, log_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(access_log != MAP_FAILED);
	access_log->size = 2 * (WRITERS + READERS) * frames;
	for (int i = 0; i < WRITERS + READERS; i++) {
		pids[i] = fork();
		CHECK(pids[i] >= 0);
		if (pids[i] == 0) {
			/* every other one on D-Bus, the rest on the access channel: one order for all */
			if (i % 2)
				setenv("DMABROKER_ACCESS_CHANNEL", "0", 1);
			_exit(i < WRITERS ? writer_main(i, token, fences, frames) :
					    reader_main(i, token, fences, frames));
		}
	}
	for (int i = 0; i < WRITERS + READERS; i++) {
		int status;
		CHECK(waitpid(pids[i], &status, 0) == pids[i]);
		CHECKF(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s %d failed (status 0x%x)",
		       i < WRITERS ? "writer" : "reader", i, status);
	}
	/* Every write happened exactly once, in some order. */
	CHECK(dmabroker_buffer_cpu_begin(buf, R, 10000, &g) == 0);
	{
		uint32_t *map = mmap(NULL, dmabroker_buffer_get_size(buf), PROT_READ, MAP_SHARED,
				     dmabroker_buffer_get_fd(buf), 0);
		CHECK(map != MAP_FAILED);
		last = map[0];
		munmap(map, dmabroker_buffer_get_size(buf));
	}
	CHECK(dmabroker_buffer_cpu_end(buf, g) == 0);
	tap_diag("%d writers x %d frames, %d readers x %d reads%s, the odd ones on D-Bus and the rest on the access "
		 "channel: %.1f s; last frame %u", WRITERS, frames, READERS,
		 frames, fences ? ", with sw_sync release fences" : "", (double)(now_ms() - t0) / 1000, last);
	{
		unsigned writes, reads;
		bool ok = access_log_check(WRITERS + READERS, &writes, &reads);
		tap_diag("access log: %u writes and %u reads, in stamp order%s", writes, reads,
			 ok ? "; no write overlapped another access" : "");
		CHECKF(ok, "two accesses overlapped where one was a write");
		CHECK(writes == (unsigned)(WRITERS * frames) && reads == (unsigned)(READERS * frames));
	}
	CHECK(last == (uint32_t)(WRITERS * frames));
	munmap(access_log, log_size);
	access_log = NULL;
	free(token);
	(void)f;
	dmabroker_disconnect(owner);
	CHECK(baseline_restored(base));
	return true;
}

static bool step_frames_cpu(void)
{
	return run_frames(false);
}

static bool step_frames_fenced(void)
{
	return run_frames(true);
}

/* ---- kernel fences (VM) ---- */

static bool step_release_fence_in_dmabuf(void)
{
	struct dmabroker *a = connect_session(), *b = connect_session();
	struct dmabroker_buffer *buf, *bb;
	struct frame_ctx tl = { .timeline = -1 };
	uint64_t g;
	int acquire = -1, release, exported;

	CHECK(a && b);
	buf = alloc_buf(a, 64, 64);
	CHECK(buf && (bb = share(buf, b)));
	tl.timeline = open(SW_SYNC_DEBUGFS_PATH, O_RDWR | O_CLOEXEC);
	CHECK(tl.timeline >= 0);
	CHECK(dmabroker_buffer_begin_access(buf, W, 0, &g, &acquire) == 0 && acquire == -1);
	release = frame_next_fence(&tl);
	CHECK(release >= 0 && dmabroker_end_access(a, g, release) == 0);
	/* Implicit sync sees it: the dma-buf's own reservation has it. */
	{
		struct dma_buf_export_sync_file e = { .flags = DMA_BUF_SYNC_READ, .fd = -1 };
		CHECK(ioctl(dmabroker_buffer_get_fd(bb), DMA_BUF_IOCTL_EXPORT_SYNC_FILE, &e) == 0);
		exported = e.fd;
	}
	CHECK(dmabroker_fence_status(exported) == 0);
	/* So does the next acquirer. */
	CHECK(dmabroker_buffer_begin_access(bb, R, 0, &g, &acquire) == 0);
	CHECK(acquire >= 0 && dmabroker_fence_status(acquire) == 0);
	CHECK(buffer_field(dmabroker_buffer_get_id(buf), "fences") == 1);
	frame_signal(&tl);
	CHECK(dmabroker_fence_wait(exported, 2000) == 1);
	CHECK(dmabroker_fence_wait(acquire, 2000) == 1);
	/* Signalled fences are dropped. */
	for (int i = 0; i < 100 && buffer_field(dmabroker_buffer_get_id(buf), "fences") != 0; i++)
		usleep(10000);
	CHECK(buffer_field(dmabroker_buffer_get_id(buf), "fences") == 0);
	CHECK(dmabroker_end_access(b, g, -1) == 0);
	close(exported);
	close(acquire);
	close(release);
	close(tl.timeline);
	dmabroker_disconnect(a);
	dmabroker_disconnect(b);
	return true;
}

static bool step_vgem_fence_in_acquire(void)
{
	struct dmabroker_alloc_desc d = {
		.version = DMABROKER_ALLOC_DESC_VERSION, .width = 64, .height = 64,
		.fourcc = DRM_FORMAT_XRGB8888, .usage = CPU_RW, .backend = "drm:vgem",
	};
	struct drm_vgem_fence_attach attach = { .flags = VGEM_FENCE_WRITE };
	struct drm_vgem_fence_signal sig = { 0 };
	struct dmabroker *a = connect_session();
	struct dmabroker_buffer *buf = NULL;
	uint32_t handle;
	uint64_t g;
	int vgem, acquire = -1;

	CHECK(a);
	CHECKF(dmabroker_allocate(a, &d, &buf) == 0, "vgem: %s", dmabroker_error_message(a));
	vgem = open_drm_by_driver("vgem");
	CHECK(vgem >= 0);
	/* A driver's own fence on the buffer, added behind the broker's back. */
	CHECK(drmPrimeFDToHandle(vgem, dmabroker_buffer_get_fd(buf), &handle) == 0);
	attach.handle = handle;
	CHECK(drmIoctl(vgem, DRM_IOCTL_VGEM_FENCE_ATTACH, &attach) == 0);
	CHECK(dmabroker_buffer_begin_access(buf, R, 0, &g, &acquire) == 0);
	CHECKF(acquire >= 0 && dmabroker_fence_status(acquire) == 0, "the driver's fence is not in the acquire fence");
	sig.fence = attach.out_fence;
	CHECK(drmIoctl(vgem, DRM_IOCTL_VGEM_FENCE_SIGNAL, &sig) == 0);
	CHECK(dmabroker_fence_wait(acquire, 2000) == 1);
	CHECK(dmabroker_end_access(a, g, -1) == 0);
	close(acquire);
	close(vgem);
	dmabroker_disconnect(a);
	return true;
}

/*
 * One client ends two READ grants on one buffer under pending fences and
 * keeps its first fence open, as applications do. The daemon once merged
 * the second into the first and closed the first's fd under its live io
 * source: the epoll registration outlived the fd (the client keeps the
 * file open), and sd-event aborted once the fence signalled.
 */
static bool step_kept_fence_stays_open(void)
{
	struct dmabroker *a = connect_session();
	struct dmabroker_buffer *buf;
	struct frame_ctx tl = { .timeline = -1 };
	int kept[2 * 4];

	CHECK(a);
	buf = alloc_buf(a, 64, 64);
	CHECK(buf);
	tl.timeline = open(SW_SYNC_DEBUGFS_PATH, O_RDWR | O_CLOEXEC);
	CHECK(tl.timeline >= 0);
	for (int round = 0; round < 4; round++) {
		for (int i = 0; i < 2; i++) {
			uint64_t g;
			int acquire = -1;
			CHECK(dmabroker_buffer_begin_access(buf, R, 0, &g, &acquire) == 0);
			if (acquire >= 0)
				close(acquire);
			kept[2 * round + i] = frame_next_fence(&tl);
			CHECK(kept[2 * round + i] >= 0 && dmabroker_end_access(a, g, kept[2 * round + i]) == 0);
		}
		/* The first signals and is dropped on its own, then the second. */
		frame_signal(&tl);
		for (int i = 0; i < 200 && buffer_field(dmabroker_buffer_get_id(buf), "fences") != 1; i++)
			usleep(10000);
		CHECKF(buffer_field(dmabroker_buffer_get_id(buf), "fences") == 1, "round %d: the first fence is not "
		       "dropped alone", round);
		frame_signal(&tl);
		for (int i = 0; i < 200 && buffer_field(dmabroker_buffer_get_id(buf), "fences") != 0; i++)
			usleep(10000);
		CHECKF(kill(daemon_pid, 0) == 0, "the daemon died");
		CHECKF(buffer_field(dmabroker_buffer_get_id(buf), "fences") == 0,
		       "round %d: the daemon does not answer, or keeps signalled fences", round);
	}
	for (int i = 0; i < 8; i++)
		close(kept[i]);
	close(tl.timeline);
	dmabroker_disconnect(a);
	return true;
}

/* Polls ListBuffers until buffer id keeps `want` fences (10 s); then the daemon's fds are settled too. */
static int wait_fences(uint64_t id, int want)
{
	int now = -1;

	for (int i = 0; i < 1000 && (now = buffer_field(id, "fences")) != want; i++)
		usleep(10000);
	return now;
}

/* The daemon's fds once it has answered a call after the last one (whose message, and any fd in it, it has freed). */
static int fds_now(uint64_t id)
{
	buffer_field(id, "fences");
	return daemon_fd_count();
}

/*
 * What the daemon keeps per buffer (daemon/core/access.c): one kept_fence per
 * pending release fence handed over, its fd owned by its io source (one
 * fd each, one epoll watch each; `fences` in ListBuffers counts them), and
 * two merged caches for the next acquire fence: acc_all (every kept fence,
 * for a writer) and acc_write (the write fences, for a reader), one fd
 * each while open, closed when the last kept fence goes. A write's release
 * fence supersedes everything kept (the writer waited for it all). So:
 * 12 pending read fences = 12 kept + acc_all = 13 fds more; 11 of them
 * signalled = 1 kept, acc_all still open = 2; all = 0. Then one pending
 * write fence = 1 kept + acc_all + acc_write = 3.
 */
static bool step_fences_bounded(void)
{
	struct dmabroker *owner = connect_session();
	struct dmabroker *readers[12];
	struct dmabroker_buffer *buf, *rbufs[12];
	struct frame_ctx tl = { .timeline = -1 };
	struct baseline base;
	uint64_t g, id;
	int acquire = -1, kept, release;

	CHECK(owner);
	buf = alloc_buf(owner, 64, 64);
	CHECK(buf);
	id = dmabroker_buffer_get_id(buf);
	tl.timeline = open(SW_SYNC_DEBUGFS_PATH, O_RDWR | O_CLOEXEC);
	CHECK(tl.timeline >= 0);
	/* Twelve readers each hand back a pending fence, in a burst: each has
	 * its own deadline ([fences] timeout), which a slow set-up must not eat. */
	for (int i = 0; i < 12; i++) {
		readers[i] = connect_session();
		CHECK(readers[i] && (rbufs[i] = share(buf, readers[i])));
	}
	base = baseline_take();
	CHECK(base.fds >= 0 && wait_fences(id, 0) == 0);
	for (int i = 0; i < 12; i++) {
		CHECK(dmabroker_buffer_begin_access(rbufs[i], R, 0, &g, &acquire) == 0);
		release = frame_next_fence(&tl);
		CHECK(release >= 0 && dmabroker_end_access(readers[i], g, release) == 0);
		close(release);
	}
	kept = buffer_field(id, "fences");
	tap_diag("12 pending read fences kept as %d, with %d more fds in the daemon", kept,
		 fds_now(id) - base.fds);
	CHECK(kept == 12);
	CHECK(fds_now(id) == base.fds + 12 + 1); /* 12 kept + acc_all */
	/* A writer must wait for all twelve. */
	CHECK(dmabroker_buffer_begin_access(buf, W, 0, &g, &acquire) == 0);
	CHECK(acquire >= 0);
	CHECK(fds_now(id) == base.fds + 12 + 1); /* its acquire fence was sent and closed */
	for (int i = 0; i < 11; i++)
		frame_signal(&tl);
	CHECK(dmabroker_fence_status(acquire) == 0);
	/* Each is dropped once it has signalled: one left. */
	CHECK(wait_fences(id, 1) == 1);
	CHECK(fds_now(id) == base.fds + 1 + 1); /* 1 kept + acc_all, which still names the 11 */
	frame_signal(&tl);
	CHECK(dmabroker_fence_wait(acquire, 2000) == 1);
	CHECK(wait_fences(id, 0) == 0);
	CHECK(fds_now(id) == base.fds); /* nothing kept, nothing merged */
	close(acquire);
	/* The writer ends under a pending fence: kept alone, in both caches. */
	release = frame_next_fence(&tl);
	CHECK(release >= 0 && dmabroker_end_access(owner, g, release) == 0);
	close(release);
	CHECK(buffer_field(id, "fences") == 1);
	CHECK(fds_now(id) == base.fds + 1 + 2); /* 1 kept + acc_all + acc_write */
	/* A reader waits for it (acc_write). */
	CHECK(dmabroker_buffer_begin_access(rbufs[0], R, 0, &g, &acquire) == 0);
	CHECK(acquire >= 0 && dmabroker_fence_status(acquire) == 0);
	frame_signal(&tl);
	CHECK(dmabroker_fence_wait(acquire, 2000) == 1);
	close(acquire);
	CHECK(dmabroker_end_access(readers[0], g, -1) == 0);
	CHECK(wait_fences(id, 0) == 0);
	CHECK(fds_now(id) == base.fds);
	close(tl.timeline);
	for (int i = 0; i < 12; i++)
		dmabroker_disconnect(readers[i]);
	dmabroker_disconnect(owner);
	return true;
}

/*
 * Writes never overlap on the GPU either: a writer that ended its grant
 * under a pending release fence (the test holds it) has the next writer
 * granted at once, but with an acquire fence that waits for it, and the
 * reader after that waits for the second writer's.
 */
static bool step_writes_ordered_by_fences(void)
{
	struct dmabroker *a = connect_session(), *b = connect_session();
	struct dmabroker_buffer *buf, *bb;
	struct frame_ctx t1 = { .timeline = -1 }, t2 = { .timeline = -1 };
	uint64_t g;
	int acquire = -1, release;

	CHECK(a && b);
	buf = alloc_buf(a, 64, 64);
	CHECK(buf && (bb = share(buf, b)));
	t1.timeline = open(SW_SYNC_DEBUGFS_PATH, O_RDWR | O_CLOEXEC);
	t2.timeline = open(SW_SYNC_DEBUGFS_PATH, O_RDWR | O_CLOEXEC);
	CHECK(t1.timeline >= 0 && t2.timeline >= 0);
	CHECK(dmabroker_buffer_begin_access(buf, W, 0, &g, &acquire) == 0 && acquire == -1);
	release = frame_next_fence(&t1);
	CHECK(release >= 0 && dmabroker_end_access(a, g, release) == 0);
	close(release);
	/* The second writer: granted, its acquire fence pending while the first's is held. */
	CHECK(dmabroker_buffer_begin_access(bb, W, 0, &g, &acquire) == 0);
	CHECKF(acquire >= 0 && dmabroker_fence_status(acquire) == 0,
	       "a second writer may write while the first's release fence is pending");
	release = frame_next_fence(&t2);
	CHECK(release >= 0 && dmabroker_end_access(b, g, release) == 0);
	close(release);
	frame_signal(&t1);
	CHECK(dmabroker_fence_wait(acquire, 2000) == 1);
	close(acquire);
	/* A reader now: waits for the second writer. */
	CHECK(dmabroker_buffer_begin_access(buf, R, 0, &g, &acquire) == 0);
	CHECKF(acquire >= 0 && dmabroker_fence_status(acquire) == 0,
	       "a reader may read while the last writer's release fence is pending");
	frame_signal(&t2);
	CHECK(dmabroker_fence_wait(acquire, 2000) == 1);
	close(acquire);
	CHECK(dmabroker_end_access(a, g, -1) == 0);
	close(t1.timeline);
	close(t2.timeline);
	dmabroker_disconnect(a);
	dmabroker_disconnect(b);
	return true;
}

/* max-fences-per-client = 6 (access.conf): a seventh pending fence is refused, until some signal. */
static bool step_fence_quota(void)
{
	struct dmabroker *b = connect_session();
	struct dmabroker_buffer *bufs[7];
	struct frame_ctx tl = { .timeline = -1 };
	uint64_t g;
	int acquire = -1, release, r;

	CHECK(b);
	tl.timeline = open(SW_SYNC_DEBUGFS_PATH, O_RDWR | O_CLOEXEC);
	CHECK(tl.timeline >= 0);
	for (int i = 0; i < 7; i++)
		CHECK((bufs[i] = alloc_buf(b, 16, 16)));
	for (int i = 0; i < 6; i++) {
		CHECK(dmabroker_buffer_begin_access(bufs[i], W, 0, &g, &acquire) == 0);
		release = frame_next_fence(&tl);
		CHECK(release >= 0 && dmabroker_end_access(b, g, release) == 0);
		close(release);
	}
	CHECK(dmabroker_buffer_begin_access(bufs[6], W, 0, &g, &acquire) == 0);
	release = frame_next_fence(&tl);
	r = dmabroker_end_access(b, g, release);
	CHECK(expect_error(b, r, EDQUOT, "org.dmabroker.Error.QuotaExceeded"));
	CHECK(strstr(dmabroker_error_message(b), "max-fences-per-client = 6"));
	/* the six signal and are dropped: the seventh is taken */
	for (int i = 0; i < 6; i++)
		frame_signal(&tl);
	for (int t = 0; t < 100 && buffer_field(dmabroker_buffer_get_id(bufs[0]), "fences") != 0; t++)
		usleep(10000);
	CHECK(dmabroker_end_access(b, g, release) == 0);
	close(release);
	frame_signal(&tl);
	close(tl.timeline);
	dmabroker_disconnect(b);
	return true;
}

struct timeout_seen {
	int done;
	uint64_t buffer, client;
	int write;
};

static int on_fence_timed_out(sd_bus_message *m, void *userdata, sd_bus_error *e)
{
	struct timeout_seen *t = userdata;
	if (sd_bus_message_read(m, "ttb", &t->buffer, &t->client, &t->write) > 0)
		t->done = 1;
	return 0;
}

/*
 * A plain bus connection that holds buf (by a token) and listens for
 * FenceTimedOut and GrantTimedOut, or with buf == NULL one that holds
 * nothing: the daemon sends those signals to holders only.
 */
static sd_bus *observer(struct dmabroker_buffer *buf, struct timeout_seen *fence, struct timeout_seen *grant)
{
	sd_bus *bus = NULL;
	sd_bus_message *reply = NULL;
	char *token = NULL;
	int r = sd_bus_open_user(&bus);

	if (r >= 0 && buf) {
		r = dmabroker_buffer_create_token(buf, 0, 0, &token);
		if (r >= 0)
			r = sd_bus_call_method(bus, "org.dmabroker.Broker1", "/org/dmabroker/Broker1",
					       "org.dmabroker.Broker1", "OpenToken", NULL, &reply, "s", token);
		free(token);
		sd_bus_message_unref(reply);
	}
	if (r >= 0)
		r = sd_bus_match_signal(bus, NULL, NULL, "/org/dmabroker/Broker1", "org.dmabroker.Broker1",
					"FenceTimedOut", on_fence_timed_out, fence);
	if (r >= 0)
		r = sd_bus_match_signal(bus, NULL, NULL, "/org/dmabroker/Broker1", "org.dmabroker.Broker1",
					"GrantTimedOut", on_fence_timed_out, grant);
	if (r < 0) {
		tap_diag("observer: %s", strerror(-r));
		return sd_bus_flush_close_unref(bus);
	}
	return bus;
}

/* Processes bus until *done or ms passed. */
static void bus_pump(sd_bus *bus, const int *done, int ms)
{
	int64_t t0 = now_ms();

	while (!*done && now_ms() - t0 < ms) {
		if (sd_bus_process(bus, NULL) > 0)
			continue;
		sd_bus_wait(bus, 50000);
	}
}

/* [fences] timeout in access.conf */
#define FENCE_TIMEOUT_MS 8000

static bool client_listed(pid_t pid)
{
	sd_bus *bus = NULL;
	sd_bus_message *reply = NULL;
	uint64_t id, bytes, age;
	uint32_t uid, gid, cpid, bufs, tokens, directs;
	const char *name, *comm;
	bool found = false;
	int r = sd_bus_open_user(&bus);

	if (r >= 0)
		r = sd_bus_call_method(bus, "org.dmabroker.Broker1", "/org/dmabroker/Broker1", "org.dmabroker.Broker1",
				       "ListClients", NULL, &reply, "");
	if (r >= 0)
		r = sd_bus_message_enter_container(reply, 'a', "(tsuuusutuut)");
	while (r >= 0 && (r = sd_bus_message_read(reply, "(tsuuusutuut)", &id, &name, &uid, &gid, &cpid, &comm, &bufs,
						   &bytes, &tokens, &directs, &age)) > 0)
		found |= (pid_t)cpid == pid;
	sd_bus_message_unref(reply);
	sd_bus_flush_close_unref(bus);
	return found;
}

static bool step_fence_timeout(void)
{
	struct baseline base = baseline_take();
	struct dmabroker *y = connect_session();
	struct dmabroker_buffer *buf, *mine = NULL;
	struct timeout_seen seen = { 0 };
	sd_bus *bus = NULL;
	uint64_t g, timeouts = 0;
	char *token = NULL, ready;
	int fds[2], acquire = -1, status;
	int64_t t0;
	pid_t pid;

	struct timeout_seen unused = { 0 }, bystander_seen = { 0 }, unused2 = { 0 };
	sd_bus *bystander;

	CHECK(y);
	buf = alloc_buf(y, 64, 64);
	CHECK(buf && dmabroker_buffer_create_token(buf, 0, 0, &token) == 0);
	/* A holder hears of it; a client that holds nothing does not. */
	CHECK((bus = observer(buf, &seen, &unused)));
	CHECK((bystander = observer(NULL, &bystander_seen, &unused2)));
	CHECK(pipe(fds) == 0);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		/* X: writes under a fence it never signals, and keeps it alive. */
		struct frame_ctx tl = { .timeline = open(SW_SYNC_DEBUGFS_PATH, O_RDWR | O_CLOEXEC) };
		struct dmabroker *x = connect_session();
		struct dmabroker_buffer *xb = NULL;
		uint64_t xg;
		int xf, release;
		if (tl.timeline < 0 || !x || dmabroker_open_token(x, token, &xb) < 0 ||
		    dmabroker_buffer_begin_access(xb, W, 0, &xg, &xf) < 0)
			_exit(1);
		release = frame_next_fence(&tl);
		if (release < 0 || dmabroker_end_access(x, xg, release) < 0 || write(fds[1], "x", 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	close(fds[1]);
	CHECK(read(fds[0], &ready, 1) == 1);
	close(fds[0]);
	CHECK(client_listed(pid));
	t0 = now_ms();
	bus_pump(bus, &seen.done, FENCE_TIMEOUT_MS + 8000);
	CHECKF(seen.done, "no FenceTimedOut signal within %d s", FENCE_TIMEOUT_MS / 1000 + 8);
	/* The bystander calls the daemon now: the daemon answers after what it
	 * sent before (the signal went out before the holder got it), and the
	 * bus keeps one sender's messages in order: a signal to the bystander
	 * would be in before the answer. */
	CHECK(sd_bus_get_property_trivial(bystander, "org.dmabroker.Broker1", "/org/dmabroker/Broker1",
					  "org.dmabroker.Broker1", "FenceTimeouts", NULL, 't', &timeouts) >= 0);
	CHECK(timeouts >= 1);
	while (sd_bus_process(bystander, NULL) > 0)
		;
	CHECKF(!bystander_seen.done, "FenceTimedOut reached a client that does not hold the buffer");
	sd_bus_flush_close_unref(bystander);
	tap_diag("FenceTimedOut(buffer %" PRIu64 ", client %" PRIu64 ", write %d) after %.1f s", seen.buffer,
		 seen.client, seen.write, (double)(now_ms() - t0) / 1000);
	CHECK(seen.buffer == dmabroker_buffer_get_id(buf) && seen.write);
	CHECK(sd_bus_get_property_trivial(bus, "org.dmabroker.Broker1", "/org/dmabroker/Broker1", "org.dmabroker.Broker1",
					  "FenceTimeouts", NULL, 't', &timeouts) >= 0 && timeouts >= 1);
	CHECK(buffer_field(dmabroker_buffer_get_id(buf), "timeouts") == 1);
	CHECK(buffer_field(dmabroker_buffer_get_id(buf), "fences") == 0);
	/* The policy (drop-client in the test config): X is no client any more. */
	CHECKF(!client_listed(pid), "the client that supplied the fence is still served");
	/* Nothing is wedged: the buffer is granted at once. The acquire fence
	 * still holds the kernel's copy of X's fence, which the daemon cannot
	 * take out of the dma-buf. */
	CHECK(dmabroker_buffer_begin_access(buf, W, DMABROKER_ACCESS_NONBLOCK, &g, &acquire) == 0);
	CHECK(dmabroker_end_access(y, g, -1) == 0);
	CHECK(alloc_buf(y, 16, 16) != NULL);
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	if (acquire >= 0) {
		/* X's timeline is closed with X: the kernel signals its fences. */
		CHECK(dmabroker_fence_wait(acquire, 2000) == 1);
		close(acquire);
	}
	(void)mine;
	free(token);
	sd_bus_flush_close_unref(bus);
	dmabroker_disconnect(y);
	CHECK(baseline_restored(base));
	return true;
}

/*
 * Deadlines are per fence and per supplier. Eight readers hand back
 * fences that soon signal, then X hands back one that never does, and
 * keeps ending new read grants under already-signalled fences. X alone
 * is blamed, at its own fence's deadline: once, its fence was folded
 * into the first reader's slot (the innocent was dropped with it), and
 * each of X's later fences pushed the slot's deadline back.
 */
static bool step_fence_deadline_fair(void)
{
	struct dmabroker *owner = connect_session();
	struct dmabroker *readers[8];
	struct dmabroker_buffer *buf, *rbufs[8];
	struct frame_ctx tl = { .timeline = -1 };
	struct timeout_seen seen = { 0 }, unused = { 0 };
	sd_bus *obs;
	char *token = NULL, ready;
	uint64_t g;
	int acquire = -1, fds[2], go[2], status;
	int64_t t0;
	pid_t pid;

	CHECK(owner);
	buf = alloc_buf(owner, 64, 64);
	CHECK(buf && dmabroker_buffer_create_token(buf, 0, 0, &token) == 0);
	CHECK((obs = observer(buf, &seen, &unused)));
	tl.timeline = open(SW_SYNC_DEBUGFS_PATH, O_RDWR | O_CLOEXEC);
	CHECK(tl.timeline >= 0);
	for (int i = 0; i < 8; i++) {
		readers[i] = connect_session();
		CHECK(readers[i] && (rbufs[i] = share(buf, readers[i])));
	}
	/* X gets ready first: its set-up is slow in the test bed, and every
	 * fence handed over below has its own deadline running. */
	CHECK(pipe(fds) == 0 && pipe(go) == 0);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		struct frame_ctx never = { .timeline = open(SW_SYNC_DEBUGFS_PATH, O_RDWR | O_CLOEXEC) };
		struct frame_ctx done = { .timeline = open(SW_SYNC_DEBUGFS_PATH, O_RDWR | O_CLOEXEC) };
		struct dmabroker *x = connect_session();
		struct dmabroker_buffer *xb = NULL;
		uint64_t xg;
		int xf = -1, release;
		if (never.timeline < 0 || done.timeline < 0 || !x || dmabroker_open_token(x, token, &xb) < 0 ||
		    dmabroker_buffer_begin_access(xb, R, 0, &xg, &xf) < 0 || write(fds[1], "r", 1) != 1 ||
		    read(go[0], &ready, 1) != 1)
			_exit(1);
		release = frame_next_fence(&never);
		if (release < 0 || dmabroker_end_access(x, xg, release) < 0 || write(fds[1], "x", 1) != 1)
			_exit(1);
		close(release);
		/* Then, for three deadlines, fences that have signalled already:
		 * exit 0 once the daemon has dropped X (its buffer is gone). */
		for (int i = 0; i < 3 * FENCE_TIMEOUT_MS / 250; i++) {
			usleep(250000);
			if (dmabroker_buffer_begin_access(xb, R, 0, &xg, &xf) < 0)
				_exit(0);
			if (xf >= 0)
				close(xf);
			release = frame_next_fence(&done);
			frame_signal(&done);
			if (release < 0 || dmabroker_end_access(x, xg, release) < 0)
				_exit(0);
			close(release);
		}
		_exit(5);
	}
	close(fds[1]);
	close(go[0]);
	CHECK(read(fds[0], &ready, 1) == 1);
	/* The readers hand back their fences, X its own, in a burst. */
	for (int i = 0; i < 8; i++) {
		int release;
		CHECK(dmabroker_buffer_begin_access(rbufs[i], R, 0, &g, &acquire) == 0);
		release = frame_next_fence(&tl);
		CHECK(release >= 0 && dmabroker_end_access(readers[i], g, release) == 0);
		close(release);
	}
	CHECK(write(go[1], "g", 1) == 1);
	close(go[1]);
	CHECK(read(fds[0], &ready, 1) == 1);
	close(fds[0]);
	t0 = now_ms();
	/* The readers' fences signal. */
	for (int i = 0; i < 8; i++)
		frame_signal(&tl);
	bus_pump(obs, &seen.done, FENCE_TIMEOUT_MS + 6000);
	CHECKF(seen.done, "X's fence was not reported within %d ms of its deadline (it was pushed back)", 6000);
	tap_diag("FenceTimedOut(buffer %" PRIu64 ", client %" PRIu64 ") %.1f s after X's fence, deadline %d s",
		 seen.buffer, seen.client, (double)(now_ms() - t0) / 1000, FENCE_TIMEOUT_MS / 1000);
	CHECK(!seen.write);
	CHECK(waitpid(pid, &status, 0) == pid);
	CHECKF(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the late client was not dropped (status 0x%x)", status);
	/* The innocent readers, the first one included, still hold the buffer. */
	for (int i = 0; i < 8; i++) {
		int r = dmabroker_buffer_begin_access(rbufs[i], R, DMABROKER_ACCESS_NONBLOCK, &g, &acquire);
		CHECKF(r == 0, "reader %d was dropped: %s", i, dmabroker_error_message(readers[i]));
		if (acquire >= 0)
			close(acquire);
		CHECK(dmabroker_end_access(readers[i], g, -1) == 0);
	}
	for (int i = 0; i < 8; i++)
		dmabroker_disconnect(readers[i]);
	close(tl.timeline);
	free(token);
	sd_bus_flush_close_unref(obs);
	dmabroker_disconnect(owner);
	return true;
}

/*
 * --lease (access-lease.conf: [fences] hold-timeout = 4, timeout-policy =
 * report): a holder that never ends its WRITE grant loses it after 4 s;
 * the holders hear GrantTimedOut, the waiter is granted, the count shows.
 */
static bool step_lease(void)
{
	struct dmabroker *a = connect_session(), *b = connect_session();
	struct dmabroker_buffer *buf, *bb;
	struct timeout_seen unused = { 0 }, seen = { 0 };
	struct pending_grant p = { 0 };
	sd_bus *obs;
	uint64_t g, timeouts = 0;
	int acquire = -1;
	int64_t t0;

	CHECK(a && b);
	buf = alloc_buf(a, 64, 64);
	CHECK(buf && (bb = share(buf, b)));
	CHECK((obs = observer(buf, &unused, &seen)));
	CHECK(dmabroker_buffer_begin_access(buf, W, 0, &g, &acquire) == 0);
	t0 = now_ms();
	CHECK(dmabroker_buffer_begin_access_async(bb, W, 0, on_granted, &p) == 0);
	/* Queued behind the lease: not granted while the holder has it. */
	CHECKF(wait_field(dmabroker_buffer_get_id(buf), "waiters", 1, b, &p),
	       "the waiter was not seen queued behind the holder (hold-timeout = 4 s)");
	pump(b, &p.done, 10000);
	CHECKF(p.done && p.error == 0, "the waiter was not granted after the holder's lease ran out");
	tap_diag("the waiter was granted %.1f s after the holder took the buffer (hold-timeout = 4 s)",
		 (double)(now_ms() - t0) / 1000);
	/* The daemon counts the timeout and signals it before it ends the lease
	 * and grants the waiter: once granted, both are in. */
	CHECK(sd_bus_get_property_trivial(obs, "org.dmabroker.Broker1", "/org/dmabroker/Broker1",
					  "org.dmabroker.Broker1", "GrantTimeouts", NULL, 't', &timeouts) >= 0);
	CHECK(timeouts == 1);
	bus_pump(obs, &seen.done, 3000);
	CHECKF(seen.done, "no GrantTimedOut signal");
	CHECK(seen.buffer == dmabroker_buffer_get_id(buf) && seen.write);
	/* The lease is over: the old grant is unknown to its former holder. */
	CHECK(expect_error(a, dmabroker_end_access(a, g, -1), EBADSLT, "org.dmabroker.Error.UnknownGrant"));
	CHECK(dmabroker_end_access(b, p.grant, -1) == 0);
	if (p.fence >= 0)
		close(p.fence);
	sd_bus_flush_close_unref(obs);
	dmabroker_disconnect(a);
	dmabroker_disconnect(b);
	return true;
}

static void on_fence_cb(int fence, void *userdata)
{
	int *hits = userdata;
	(*hits)++;
}

static bool step_fence_helpers(void)
{
	struct frame_ctx t1 = { .timeline = -1 }, t2 = { .timeline = -1 };
	sd_event *event = NULL;
	sd_event_source *owned = NULL;
	int a, b, merged, hits = 0, owned_hits = 0;

	t1.timeline = open(SW_SYNC_DEBUGFS_PATH, O_RDWR | O_CLOEXEC);
	t2.timeline = open(SW_SYNC_DEBUGFS_PATH, O_RDWR | O_CLOEXEC);
	CHECK(t1.timeline >= 0 && t2.timeline >= 0);
	a = frame_next_fence(&t1);
	b = frame_next_fence(&t2);
	CHECK(a >= 0 && b >= 0);
	merged = dmabroker_fence_merge(a, b);
	CHECK(merged >= 0 && dmabroker_fence_status(merged) == 0);
	CHECK(sd_event_new(&event) >= 0);
	CHECK(dmabroker_fence_add_to_event(event, merged, on_fence_cb, &hits, NULL) == 0);
	CHECK(dmabroker_fence_add_to_event(event, a, on_fence_cb, &owned_hits, &owned) == 0);
	close(merged); /* the library watches its own duplicate */
	CHECK(dmabroker_fence_wait(b, 50) == 0);
	frame_signal(&t1);
	for (int i = 0; i < 20; i++)
		CHECK(sd_event_run(event, 10000) >= 0);
	CHECK(owned_hits == 1 && hits == 0); /* a signalled, the merge still waits for b */
	frame_signal(&t2);
	for (int i = 0; i < 20 && !hits; i++)
		CHECK(sd_event_run(event, 10000) >= 0);
	CHECK(hits == 1 && owned_hits == 1); /* each callback exactly once */
	CHECK(dmabroker_fence_wait(b, 0) == 1 && dmabroker_fence_status(a) == 1);
	sd_event_source_unref(owned);
	sd_event_unref(event);
	close(a);
	close(b);
	close(t1.timeline);
	close(t2.timeline);
	return true;
}

/* ---- moves (VM) ---- */

/* What /proc/<daemon>/fd/<name> is ("anon_inode:sync_file", ...), in link. */
static bool daemon_fd_is(const char *name, const char *want)
{
	char path[320], link[128];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/fd/%s", (int)daemon_pid, name);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		return false;
	link[n] = 0;
	return strcmp(link, want) == 0;
}

/*
 * The fences the daemon waits on, as the kernel sees it: sync_files in
 * the daemon's epoll sets (/proc/<pid>/fdinfo of each eventpoll lists the
 * fds it watches). Each kept release fence is one; a move that waits for
 * its acquire fence adds one. -errno if /proc cannot be read.
 */
static int daemon_watched_fences(void)
{
	char path[320], line[256], tfd[16];
	struct dirent *e;
	int n = 0, fd;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)daemon_pid);
	d = opendir(path);
	if (!d)
		return -errno;
	while ((e = readdir(d))) {
		FILE *f;
		if (e->d_name[0] == '.' || !daemon_fd_is(e->d_name, "anon_inode:[eventpoll]"))
			continue;
		snprintf(path, sizeof(path), "/proc/%d/fdinfo/%s", (int)daemon_pid, e->d_name);
		f = fopen(path, "re");
		if (!f)
			continue;
		while (fgets(line, sizeof(line), f))
			if (sscanf(line, "tfd: %d", &fd) == 1) {
				snprintf(tfd, sizeof(tfd), "%d", fd);
				n += daemon_fd_is(tfd, "anon_inode:sync_file");
			}
		fclose(f);
	}
	closedir(d);
	return n;
}

struct call_answer {
	int done;
	char error[128];
	uint32_t attachment;
};

static int on_call_answer(sd_bus_message *m, void *userdata, sd_bus_error *unused)
{
	struct call_answer *a = userdata;
	const sd_bus_error *e = sd_bus_message_get_error(m);
	int fd;

	a->done = 1;
	if (e)
		snprintf(a->error, sizeof(a->error), "%s: %s", e->name, e->message ? e->message : "");
	else if (sd_bus_message_read(m, "uh", &a->attachment, &fd) < 0)
		snprintf(a->error, sizeof(a->error), "a malformed answer");
	return 0;
}

/*
 * Waits until the daemon waits on `want` fences (daemon_watched_fences),
 * pumping bus for the answer `must_wait` meanwhile: false, saying so, if
 * it came first (the daemon did not wait) or the daemon never got there.
 */
static bool wait_watched_fences(int want, sd_bus *bus, const struct call_answer *must_wait)
{
	int64_t end = now_ms() + 20000;
	int now = -1;

	while (now_ms() < end) {
		while (bus && sd_bus_process(bus, NULL) > 0)
			;
		if (must_wait && must_wait->done) {
			tap_diag("answered (%s) while it should wait for a fence; the daemon waits on %d fences, "
				 "want %d", must_wait->error[0] ? must_wait->error : "success", daemon_watched_fences(),
				 want);
			return false;
		}
		now = daemon_watched_fences();
		if (now == want)
			return true;
		usleep(5000);
	}
	tap_diag("the daemon waits on %d fences after 20 s, want %d", now, want);
	return false;
}

static bool buffer_backend_is(uint64_t id, const char *want)
{
	struct listed_buffer e;

	if (listed_buffer_find(NULL, id, &e) <= 0)
		return false;
	if (strcmp(e.backend, want) != 0) {
		tap_diag("buffer %" PRIu64 " is on %s, not %s", id, e.backend, want);
		return false;
	}
	return true;
}

static bool imports_into(int drm_fd, int dmabuf)
{
	struct drm_gem_close c = { 0 };
	uint32_t handle;

	if (drmPrimeFDToHandle(drm_fd, dmabuf, &handle) < 0)
		return false;
	c.handle = handle;
	drmIoctl(drm_fd, DRM_IOCTL_GEM_CLOSE, &c);
	return true;
}

/* The whole buffer's words, checked against (or written with) a pattern. */
static bool pattern(struct dmabroker_buffer *buf, bool write, uint32_t salt)
{
	size_t size = dmabroker_buffer_get_size(buf);
	uint32_t *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, dmabroker_buffer_get_fd(buf), 0);
	uint64_t g;
	bool ok = true;
	uint64_t stride_off;
	uint32_t stride;

	if (p == MAP_FAILED || dmabroker_buffer_get_plane(buf, 0, &stride_off, &stride) < 0)
		return false;
	if (dmabroker_buffer_cpu_begin(buf, write ? W : R, 5000, &g) < 0) {
		munmap(p, size);
		return false;
	}
	/* Only the pixels: padding past each row may differ after a move. */
	for (uint32_t y = 0; ok && y < dmabroker_buffer_get_height(buf); y++)
		for (uint32_t x = 0; ok && x < dmabroker_buffer_get_width(buf); x++) {
			uint32_t *px = p + (stride_off + (uint64_t)y * stride) / 4 + x;
			uint32_t want = (y * 4099u + x) ^ salt;
			if (write)
				*px = want;
			else if (*px != want) {
				tap_diag("pixel %u,%u: 0x%08x, want 0x%08x", x, y, *px, want);
				ok = false;
			}
		}
	dmabroker_buffer_cpu_end(buf, g);
	munmap(p, size);
	return ok;
}

struct moved {
	int count, fence;
	struct dmabroker_buffer *buf;
};

static void on_move(struct dmabroker *b, struct dmabroker_buffer *buf, int fence, void *userdata)
{
	struct moved *m = userdata;
	m->count++;
	m->buf = buf;
	m->fence = fence;
}

/* A reader of bb (client b) that ended its grant under a release fence
 * still pending on a fresh sw_sync timeline (tl): signal it to finish. */
static bool pending_reader(struct dmabroker *b, struct dmabroker_buffer *bb, struct frame_ctx *tl, int *release)
{
	uint64_t g;
	int f = -1;

	tl->timeline = open(SW_SYNC_DEBUGFS_PATH, O_RDWR | O_CLOEXEC);
	CHECK(tl->timeline >= 0);
	CHECK(dmabroker_buffer_begin_access(bb, R, 0, &g, &f) == 0);
	*release = frame_next_fence(tl);
	CHECK(*release >= 0 && dmabroker_end_access(b, g, *release) == 0);
	return true;
}

/* Pumps a and b until each has heard of the move (Moved), within 10 s. */
static bool both_moved(struct dmabroker *a, struct moved *ma, struct dmabroker *b, struct moved *mb)
{
	int never = 0;

	for (int i = 0; i < 500 && (!ma->count || !mb->count); i++) {
		pump(a, &never, 10);
		pump(b, &never, 10);
	}
	return ma->count == 1 && mb->count == 1;
}

static bool step_move_for_scanout(void)
{
	struct dmabroker *a = connect_session(), *b = connect_session();
	struct dmabroker_buffer *buf, *bb;
	struct moved seen_a = { 0, -1, NULL }, seen_b = { 0, -1, NULL };
	struct frame_ctx tl = { .timeline = -1 };
	struct timeout_seen unused = { 0 }, unused2 = { 0 };
	struct call_answer ans = { 0 };
	sd_bus *mover = NULL;
	uint64_t id, g;
	uint32_t aid;
	int vgpu, release, waited, f = -1;

	CHECK(a && b);
	buf = alloc_buf(a, 320, 240);
	CHECK(buf && (bb = share(buf, b)));
	id = dmabroker_buffer_get_id(buf);
	dmabroker_set_move_handler(a, on_move, &seen_a);
	dmabroker_set_move_handler(b, on_move, &seen_b);
	CHECK(pattern(buf, true, 0x5a5a));
	vgpu = open_drm_by_driver("virtio_gpu");
	CHECK(vgpu >= 0);
	CHECKF(!imports_into(vgpu, dmabroker_buffer_get_fd(buf)), "virtio-gpu imported a heap buffer: nothing to test");
	/* b reads "on a GPU": its release fence is pending until the test signals it. */
	waited = daemon_watched_fences();
	CHECK(waited >= 0);
	CHECK(pending_reader(b, bb, &tl, &release));
	CHECK(wait_watched_fences(waited + 1, NULL, NULL)); /* the daemon keeps it and watches it */
	/* A third holder asks for the scanout attachment, without waiting for the answer. */
	CHECK((mover = observer(buf, &unused, &unused2)));
	CHECK(sd_bus_call_method_async(mover, NULL, "org.dmabroker.Broker1", "/org/dmabroker/Broker1",
				       "org.dmabroker.Broker1", "Attach", on_call_answer, &ans, "tusu", id,
				       (uint32_t)DMABROKER_USAGE_SCANOUT_FLAG, "virtio_gpu", (uint32_t)0) >= 0);
	/* The move allocates, takes its WRITE grant and waits for the acquire
	 * fence, which holds b's release fence: one more fence watched. A move
	 * that did not wait would answer the Attach instead. */
	CHECKF(wait_watched_fences(waited + 2, mover, &ans), "the move did not wait for the reader's fence");
	/* While the fence is held: unanswered, still on the heap, the daemon's write grant on it. */
	CHECK(dmabroker_fence_status(release) == 0);
	while (sd_bus_process(mover, NULL) > 0)
		;
	CHECKF(!ans.done, "the Attach was answered (%s) while the reader's fence was pending", ans.error);
	CHECK(buffer_backend_is(id, "heap:system"));
	CHECK(buffer_field(id, "grants") == 1);
	CHECK(expect_error(b, dmabroker_buffer_begin_access(bb, R, DMABROKER_ACCESS_NONBLOCK, &g, &f), EBUSY,
			   "org.dmabroker.Error.Busy"));
	CHECK(expect_error(a, dmabroker_buffer_attach(buf, DMABROKER_USAGE_SCANOUT_FLAG, "virtio_gpu", 0, &aid),
			   EBUSY, "org.dmabroker.Error.Busy"));
	CHECK(!seen_a.count && !seen_b.count);
	/* The "GPU" is done: the move goes on. */
	frame_signal(&tl);
	bus_pump(mover, &ans.done, 20000);
	CHECKF(ans.done && !ans.error[0], "attach: %s", ans.done ? ans.error : "no answer in 20 s");
	CHECK(buffer_backend_is(id, "drm:virtio_gpu"));
	CHECK(buffer_field(id, "grants") == 0);
	/* The other holders hear of it and get the new memory. */
	CHECK(both_moved(a, &seen_a, b, &seen_b));
	CHECK(seen_a.buf == buf && seen_b.buf == bb);
	for (int i = 0; i < 2; i++) {
		int *fence = i ? &seen_b.fence : &seen_a.fence;
		if (*fence >= 0) {
			CHECK(dmabroker_fence_wait(*fence, 2000) == 1);
			close(*fence);
		}
	}
	CHECKF(imports_into(vgpu, dmabroker_buffer_get_fd(buf)), "virtio-gpu refuses the moved buffer");
	CHECK(pattern(buf, false, 0x5a5a));
	CHECK(imports_into(vgpu, dmabroker_buffer_get_fd(bb)));
	CHECK(pattern(bb, false, 0x5a5a));
	sd_bus_flush_close_unref(mover);
	close(release);
	close(tl.timeline);
	close(vgpu);
	dmabroker_disconnect(a);
	dmabroker_disconnect(b);
	return true;
}

static bool step_mover_dies_mid_move(void)
{
	struct baseline base = baseline_take();
	struct dmabroker *a = connect_session(), *b = connect_session();
	struct dmabroker_buffer *buf, *bb;
	struct moved seen = { 0, -1, NULL };
	struct frame_ctx tl = { .timeline = -1 };
	char *token = NULL;
	int release, status, never = 0, waited;
	pid_t pid;

	CHECK(a && b);
	buf = alloc_buf(a, 128, 64);
	CHECK(buf && (bb = share(buf, b)) && pattern(buf, true, 0x77));
	dmabroker_set_move_handler(b, on_move, &seen);
	CHECK(dmabroker_buffer_create_token(buf, 0, 0, &token) == 0);
	/* b's pending read fence keeps the move waiting... */
	waited = daemon_watched_fences();
	CHECK(waited >= 0);
	CHECK(pending_reader(b, bb, &tl, &release));
	CHECK(wait_watched_fences(waited + 1, NULL, NULL));
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		/* ...while the client that asked for it is killed. */
		struct dmabroker *c = connect_session();
		struct dmabroker_buffer *cb = NULL;
		uint32_t aid;
		if (!c || dmabroker_open_token(c, token, &cb) < 0)
			_exit(1);
		dmabroker_buffer_attach(cb, DMABROKER_USAGE_SCANOUT_FLAG, "virtio_gpu", 0, &aid);
		_exit(2);
	}
	/* Killed once the move waits for the fence (one more fence watched). */
	CHECKF(wait_watched_fences(waited + 2, NULL, NULL), "the move did not start waiting for the reader's fence");
	CHECK(waitpid(pid, &status, WNOHANG) == 0); /* its Attach is not answered */
	CHECK(kill(pid, SIGKILL) == 0 && waitpid(pid, &status, 0) == pid);
	CHECK(WIFSIGNALED(status));
	/* Let the daemon drop the dead client before the move can finish. */
	for (int i = 0; i < 500 && client_listed(pid); i++)
		usleep(10000);
	CHECK(!client_listed(pid));
	CHECK(buffer_backend_is(dmabroker_buffer_get_id(buf), "heap:system") &&
	      daemon_watched_fences() == waited + 2); /* still waiting */
	frame_signal(&tl);
	/* The move completes for those who still hold the buffer. */
	for (int i = 0; i < 500 && !seen.count; i++)
		pump(b, &never, 20);
	CHECK(seen.count == 1);
	if (seen.fence >= 0)
		close(seen.fence);
	CHECK(buffer_backend_is(dmabroker_buffer_get_id(buf), "drm:virtio_gpu"));
	CHECK(daemon_property_u32("Buffers") >= 1); /* the daemon is alive and answers */
	CHECK(pattern(bb, false, 0x77));
	free(token);
	close(release);
	close(tl.timeline);
	dmabroker_disconnect(a);
	dmabroker_disconnect(b);
	CHECK(baseline_restored(base));
	return true;
}

static bool step_pinned_refuses_move(void)
{
	struct dmabroker *c = connect_session();
	struct dmabroker_buffer *buf;
	uint32_t pin, aid;

	CHECK(c);
	buf = alloc_buf(c, 64, 64);
	CHECK(buf && pattern(buf, true, 7));
	/* vkms imports foreign buffers: a static attachment there needs no move. */
	CHECK(dmabroker_buffer_attach(buf, DMABROKER_USAGE_SCANOUT_FLAG, "vkms", DMABROKER_ATTACH_STATIC, &pin) == 0);
	CHECK(expect_error(c, dmabroker_buffer_attach(buf, DMABROKER_USAGE_SCANOUT_FLAG, "virtio_gpu", 0, &aid),
			   ETXTBSY, "org.dmabroker.Error.Pinned"));
	CHECK(strstr(dmabroker_error_message(c), "static attachment") && strstr(dmabroker_error_message(c), "vkms"));
	CHECK(buffer_backend_is(dmabroker_buffer_get_id(buf), "heap:system"));
	CHECK(pattern(buf, false, 7));
	/* Unpinned, it can move. */
	CHECK(dmabroker_buffer_detach(buf, pin) == 0);
	CHECK(dmabroker_buffer_attach(buf, DMABROKER_USAGE_SCANOUT_FLAG, "virtio_gpu", 0, &aid) == 0);
	CHECK(buffer_backend_is(dmabroker_buffer_get_id(buf), "drm:virtio_gpu"));
	CHECK(pattern(buf, false, 7));
	dmabroker_disconnect(c);
	return true;
}

int main(int argc, char **argv)
{
	bool fences = false, lease = false;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--backend") == 0 && i + 1 < argc)
			backend = argv[++i];
		else if (strcmp(argv[i], "--fences") == 0)
			fences = true;
		else if (strcmp(argv[i], "--lease") == 0)
			lease = true;
		else if (strcmp(argv[i], "--frames") == 0 && i + 1 < argc)
			frames = atoi(argv[++i]);
		else {
			fprintf(stderr, "usage: access-test [--backend NAME] [--fences] [--frames N] [--lease]\n");
			return 2;
		}
	}
	if (!daemon_pid_from_env("access-test"))
		return 2;
	if (lease) {
		tap_plan(1);
		tap_step("a grant held past hold-timeout is reported and ended; the waiter is served", step_lease);
		return tap_done();
	}
	tap_plan(fences ? 23 : 10);
	tap_step("grants: readers share, a writer is exclusive, named errors", step_grant_basics);
	tap_step("one-way EndAccess ends the grant with no reply; a bad fence is refused locally", step_end_oneway);
	tap_step("a burst of one-way calls larger than the channel's socket, the daemon stopped: the library waits "
		 "for room, the channel holds", step_channel_backpressure);
	tap_step("the access channel: one queue with D-Bus, Allocate and Release, named refusals, one per client, "
		 "a bad message closes it, nothing leaks", step_access_channel);
	tap_step("a fence-less writer blocks a second writer and a reader (queued, not granted); the daemon serves "
		 "others", step_fenceless_holder);
	tap_step("waiters are served in order: a writer is not starved by later readers", step_writer_not_starved);
	tap_step("a waiting cycle between clients is refused with WouldDeadlock", step_deadlock_refused);
	tap_step("{A,B} and {B,A} acquired 1000 times each by two processes: no deadlock", step_multi_no_deadlock);
	tap_step("a holder killed, a waiter's buffer released", step_holder_death_and_release);
	tap_step("writers and readers over thousands of frames (CPU helpers, no fences)", step_frames_cpu);
	if (fences) {
		tap_step("writers and readers over thousands of frames with pending sw_sync fences", step_frames_fenced);
		tap_step("a release fence is in the dma-buf (EXPORT_SYNC_FILE) and in the next acquire fence",
			 step_release_fence_in_dmabuf);
		tap_step("a vgem driver fence is in the next acquire fence", step_vgem_fence_in_acquire);
		tap_step("two read fences from one client, the first kept open by it: the daemon lives on",
			 step_kept_fence_stays_open);
		tap_step("kept fences: one per fence, each dropped once signalled; the merged caches counted exactly",
			 step_fences_bounded);
		tap_step("writes never overlap on the GPU: the next writer's and reader's acquire fences wait for the "
			 "last writer's release fence", step_writes_ordered_by_fences);
		tap_step("a fence that never signals trips the deadline policy; only holders hear of it",
			 step_fence_timeout);
		tap_step("fence deadlines: per fence, never pushed back, only the late client blamed",
			 step_fence_deadline_fair);
		tap_step("the fence quota: a seventh pending fence refused, naming the limit, until some signal",
			 step_fence_quota);
		tap_step("fence helpers: merge, status, wait, sd-event callbacks", step_fence_helpers);
		tap_step("a heap buffer attached for scanout on virtio-gpu moves there, after the fences, content intact, "
			 "other holders told", step_move_for_scanout);
		tap_step("the client that asked for a move dies during it: the move completes for the others",
			 step_mover_dies_mid_move);
		tap_step("a static attachment pins the buffer: the move is refused, saying who pins it",
			 step_pinned_refuses_move);
	}
	return tap_done();
}

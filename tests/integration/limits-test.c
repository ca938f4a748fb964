/* SPDX-License-Identifier: MIT */
/*
 * limits-test: the daemon charges before it takes, never waits for long
 * work in its event loop, and a move obeys the rules an Allocate does.
 * Against a real dmabrokerd (tests/common/with-daemon.py). Output is TAP.
 *
 *   --quota    (host, shm, limits-quota.conf) a refused Allocate takes no
 *              memory; requests that wait for access count against
 *              max-grants-per-client while they wait; a Release on the
 *              access channel is seen before the D-Bus call that follows.
 *   --latency  (VM, 2 CPUs, heap:system, limits-latency.conf) while one
 *              client allocates 256 MiB and another's buffer moves to
 *              virtio-gpu, a third client's BeginAccess calls are answered:
 *              prints p50/p99/max and how many were answered during the
 *              work; asserts some were answered during the allocation and
 *              none waited for half of it (figures, not timed bounds); the
 *              same while a stream negotiates two 128 MiB buffers; an
 *              allocation udmabuf refuses (128 MiB) is AllocationFailed on the
 *              bus and the access channel and keeps nothing.
 *   --moves    (VM, limits-moves.conf) a move onto a backend the caller
 *              has no [access] rule for, or one that would take a holder
 *              past its byte quota, is refused with the named error.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <drm_fourcc.h>
#include <linux/dma-heap.h>
#include <systemd/sd-bus.h>

#include "dmabroker.h"
#include "tap.h"
#include "broker-util.h"

TAP_DEFINE;

#define NOBODY 65534
#define CPU (DMABROKER_USAGE_CPU_READ_FLAG | DMABROKER_USAGE_CPU_WRITE_FLAG)

static int64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void safe_close_fence(int fd)
{
	if (fd >= 0)
		close(fd);
}

static int alloc_on(struct dmabroker *b, uint32_t w, uint32_t h, uint32_t fourcc, uint32_t usage,
		    const char *backend, struct dmabroker_buffer **ret)
{
	struct dmabroker_alloc_desc d = {
		.version = DMABROKER_ALLOC_DESC_VERSION, .width = w, .height = h, .fourcc = fourcc, .usage = usage,
		.backend = backend, .flags = DMABROKER_ALLOC_FRESH,
	};
	*ret = NULL;
	return dmabroker_allocate(b, &d, ret);
}

/* ---- --quota: charge first, then take ---- */

/*
 * limits-quota.conf: max-bytes-per-client = 1M. A refused Allocate must not
 * have allocated: no buffer was registered for it, so the next buffer's id
 * follows the last one's (the old daemon allocated, registered the buffer,
 * charged it, found the quota passed and freed it again: an id gap).
 */
static bool step_refused_allocation_takes_nothing(void)
{
	struct dmabroker *b = connect_session();
	struct dmabroker_buffer *first = NULL, *big = NULL, *next = NULL;
	struct baseline base;
	uint64_t id1, id2;
	int r;

	CHECK(b);
	CHECKF(alloc_on(b, 256, 256, DRM_FORMAT_XRGB8888, CPU, NULL, &first) == 0, "256 KiB: %s",
	       dmabroker_error_message(b));
	base = baseline_take();
	/* 4 MiB: past max-bytes-per-client = 1M */
	r = alloc_on(b, 1024, 1024, DRM_FORMAT_XRGB8888, CPU, NULL, &big);
	CHECK(expect_error(b, r, EDQUOT, "org.dmabroker.Error.QuotaExceeded"));
	CHECK(!big);
	CHECK(baseline_restored(base));
	CHECKF(alloc_on(b, 64, 64, DRM_FORMAT_XRGB8888, CPU, NULL, &next) == 0, "%s", dmabroker_error_message(b));
	id1 = dmabroker_buffer_get_id(first);
	id2 = dmabroker_buffer_get_id(next);
	tap_diag("buffer ids: %" PRIu64 " before the refused Allocate, %" PRIu64 " after it", id1, id2);
	CHECKF(id2 == id1 + 1, "the refused Allocate registered a buffer (id %" PRIu64 "): it was allocated "
	       "before the quota was checked", id1 + 1);
	dmabroker_buffer_release(first);
	dmabroker_buffer_release(next);
	dmabroker_disconnect(b);
	return true;
}

struct outcome {
	int done, ok, refused;
};

static void on_allocated(struct dmabroker *b, int error, struct dmabroker_buffer *buf, void *userdata)
{
	struct outcome *o = userdata;
	o->done++;
	if (error == 0) {
		o->ok++;
		dmabroker_buffer_release(buf);
	} else if (error == -EDQUOT) {
		o->refused++;
	}
}

/* Two allocations of 600 KiB in flight at once, 1 MiB allowed: one is refused at its reservation. */
static bool step_concurrent_allocations(void)
{
	struct dmabroker *b = connect_session();
	struct dmabroker_alloc_desc d = {
		.version = DMABROKER_ALLOC_DESC_VERSION, .width = 400, .height = 384, .fourcc = DRM_FORMAT_XRGB8888,
		.usage = CPU, .flags = DMABROKER_ALLOC_FRESH,
	};
	struct outcome o = { 0 };

	CHECK(b);
	CHECK(dmabroker_allocate_async(b, &d, on_allocated, &o) == 0);
	CHECK(dmabroker_allocate_async(b, &d, on_allocated, &o) == 0);
	for (int i = 0; i < 5000 && o.done < 2; i++)
		if (dmabroker_process(b) == 0)
			usleep(1000);
	tap_diag("%d allocated, %d refused with QuotaExceeded", o.ok, o.refused);
	CHECK(o.done == 2 && o.ok == 1 && o.refused == 1);
	dmabroker_disconnect(b);
	return true;
}

/*
 * A Release on the access channel, then a call on the direct connection:
 * the daemon must have seen the release first. Each round allocates 600
 * KiB on the channel, releases it there (one-way), and at once opens a
 * token of another 600 KiB buffer over D-Bus: with 1 MiB allowed, that is
 * refused with QuotaExceeded whenever the daemon reads the D-Bus call
 * before the channel's RELEASE (two sockets, no order between them).
 */
#define ORDER_ROUNDS 200

static bool step_channel_release_ordered_with_bus(void)
{
	struct dmabroker *b = connect_session(), *other = connect_session();
	struct dmabroker_alloc_desc d = {
		.version = DMABROKER_ALLOC_DESC_VERSION, .width = 400, .height = 384, .fourcc = DRM_FORMAT_XRGB8888,
		.usage = CPU, .flags = DMABROKER_ALLOC_FRESH,
	};
	struct dmabroker_channel_stats st = { .version = DMABROKER_CHANNEL_STATS_VERSION };
	struct dmabroker_buffer *shared = NULL;
	char *token = NULL;
	int refused = 0, r;

	CHECK(b && other);
	CHECK(dmabroker_open_direct(b) == 0);
	CHECK(dmabroker_get_channel_stats(b, &st) == 0 && st.active);
	CHECKF(dmabroker_allocate(other, &d, &shared) == 0, "%s", dmabroker_error_message(other));
	CHECK(dmabroker_buffer_create_token(shared, 0, 0, &token) == 0);
	for (int i = 0; i < ORDER_ROUNDS; i++) {
		struct dmabroker_buffer *mine = NULL, *opened = NULL;
		CHECKF(dmabroker_allocate(b, &d, &mine) == 0, "round %d: %s", i, dmabroker_error_message(b));
		dmabroker_buffer_release(mine);
		r = dmabroker_open_token(b, token, &opened);
		if (r == -EDQUOT)
			refused++;
		else
			CHECKF(r == 0, "round %d: OpenToken: %s", i, dmabroker_error_message(b));
		dmabroker_buffer_release(opened);
	}
	CHECK(dmabroker_get_channel_stats(b, &st) == 0 && st.active && st.fallbacks == 0);
	tap_diag("%d rounds, %d OpenToken refused with QuotaExceeded (the release not yet seen)", ORDER_ROUNDS,
		 refused);
	CHECK(refused == 0);
	free(token);
	dmabroker_buffer_release(shared);
	dmabroker_disconnect(other);
	dmabroker_disconnect(b);
	return true;
}

/*
 * limits-quota.conf: max-grants-per-client = 2, max-pending-per-client = 2.
 * Two requests that wait count as the two grants they ask for: a third
 * BeginAccess is refused even on a free buffer (the old daemon granted it,
 * and the two waiting ones on top when they came through: 3 grants).
 */
static bool step_waiting_grants_count(void)
{
	struct dmabroker *h = connect_session(), *c = connect_session();
	struct dmabroker_buffer *y = NULL, *z = NULL, *w = NULL, *cy = NULL, *cz = NULL;
	struct begun gy = { 0 }, gz = { 0 };
	uint64_t hy, hz, gw = 0;
	char *ty = NULL, *tz = NULL;
	int r, fence = -1;

	CHECK(h && c);
	CHECK(alloc_on(h, 64, 64, DRM_FORMAT_XRGB8888, CPU, NULL, &y) == 0);
	CHECK(alloc_on(h, 64, 64, DRM_FORMAT_XRGB8888, CPU, NULL, &z) == 0);
	CHECK(alloc_on(c, 64, 64, DRM_FORMAT_XRGB8888, CPU, NULL, &w) == 0);
	CHECK(dmabroker_buffer_create_token(y, 0, 0, &ty) == 0 && dmabroker_buffer_create_token(z, 0, 0, &tz) == 0);
	CHECK(dmabroker_open_token(c, ty, &cy) == 0 && dmabroker_open_token(c, tz, &cz) == 0);
	CHECK(dmabroker_buffer_begin_access(y, DMABROKER_ACCESS_WRITE, 0, &hy, &fence) == 0);
	safe_close_fence(fence);
	CHECK(dmabroker_buffer_begin_access(z, DMABROKER_ACCESS_WRITE, 0, &hz, &fence) == 0);
	safe_close_fence(fence);
	/* c waits for both */
	CHECK(dmabroker_buffer_begin_access_async(cy, DMABROKER_ACCESS_READ, 0, on_begun, &gy) == 0);
	CHECK(dmabroker_buffer_begin_access_async(cz, DMABROKER_ACCESS_READ, 0, on_begun, &gz) == 0);
	for (int i = 0; i < 200; i++)
		if (dmabroker_process(c) == 0)
			usleep(1000);
	CHECK(gy.done == 0 && gz.done == 0);
	r = dmabroker_buffer_begin_access(w, DMABROKER_ACCESS_WRITE, 0, &gw, &fence);
	safe_close_fence(fence);
	CHECKF(r == -EDQUOT, "a third grant while two wait: %d (%s)", r, r < 0 ? dmabroker_error_message(c) : "granted");
	CHECK(expect_error(c, r, EDQUOT, "org.dmabroker.Error.QuotaExceeded"));
	/* the two waiting ones come through */
	CHECK(dmabroker_end_access(h, hy, -1) == 0 && dmabroker_end_access(h, hz, -1) == 0);
	for (int i = 0; i < 5000 && (gy.done == 0 || gz.done == 0); i++)
		if (dmabroker_process(c) == 0)
			usleep(1000);
	CHECK(gy.done == 1 && gy.error == 0 && gz.done == 1 && gz.error == 0);
	CHECK(dmabroker_end_access(c, gy.grant, -1) == 0 && dmabroker_end_access(c, gz.grant, -1) == 0);
	free(ty);
	free(tz);
	dmabroker_disconnect(c);
	dmabroker_disconnect(h);
	return true;
}

/* ---- --latency: nothing blocks the loop ---- */

#define SAMPLES 100000
#define BIG_ALLOCS 1
#define PACE_US 5000

struct window {
	int64_t start, end;
	int ok;
};

static int64_t sent[SAMPLES], answered[SAMPLES];

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

/* Waits for the go byte on fd, runs fn, writes its window back. */
static void child_run(int go, int out, int (*fn)(struct dmabroker *, void *), void *arg)
{
	struct dmabroker *b = connect_session();
	struct window w = { 0 };
	char c;

	if (!b || fn(b, NULL) < 0) /* preparation */
		_exit(10);
	if (write(out, &w, 1) != 1 || read(go, &c, 1) != 1)
		_exit(11);
	w.start = now_us();
	w.ok = fn(b, arg) == 0;
	w.end = now_us();
	if (!w.ok)
		fprintf(stderr, "limits-test: %s\n", dmabroker_error_message(b) ? dmabroker_error_message(b) : "failed");
	if (write(out, &w, sizeof(w)) != sizeof(w))
		_exit(12);
	dmabroker_disconnect(b);
	_exit(0);
}

/* The 256 MiB allocation (BIG_ALLOCS times in a row, fresh memory each time). */
static int big_allocations(struct dmabroker *b, void *arg)
{
	if (!arg)
		return 0;
	for (int i = 0; i < BIG_ALLOCS; i++) {
		struct dmabroker_buffer *buf;
		int r = alloc_on(b, 8192, 8192, DRM_FORMAT_XRGB8888, CPU, "heap:system", &buf);
		if (r < 0)
			return r;
		dmabroker_buffer_release(buf);
	}
	return 0;
}

static struct dmabroker_buffer *to_move;

/* A 16 MiB heap buffer that virtio-gpu cannot import, attached for scanout there: moved. */
static int moved_buffer(struct dmabroker *b, void *arg)
{
	uint32_t aid;

	if (!arg)
		return alloc_on(b, 2048, 2048, DRM_FORMAT_XRGB8888, CPU | DMABROKER_USAGE_SCANOUT_FLAG, "heap:system",
				&to_move);
	return dmabroker_buffer_attach(to_move, DMABROKER_USAGE_SCANOUT_FLAG, "virtio_gpu", 0, &aid);
}

static pid_t spawn(int (*fn)(struct dmabroker *, void *), int *ret_go, int *ret_out)
{
	int go[2], out[2];
	pid_t pid;

	if (pipe(go) < 0 || pipe(out) < 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		close(go[1]);
		close(out[0]);
		child_run(go[0], out[1], fn, (void *)1);
	}
	close(go[0]);
	close(out[1]);
	*ret_go = go[1];
	*ret_out = out[0];
	return pid;
}

static unsigned count_within(unsigned n, const struct window *w)
{
	unsigned k = 0;
	for (unsigned i = 0; i < n; i++)
		k += sent[i] >= w->start && answered[i] <= w->end;
	return k;
}

/* Long work of another client's, done by a child; the first one's window is the one measured against. */
struct work_kid {
	const char *what;
	int (*fn)(struct dmabroker *, void *);
	pid_t pid;
	int go, out;
	struct window w;
};

/*
 * While kids[] do their work, a third client calls BeginAccess + EndAccess
 * on its own buffer at a client's pace. Prints p50/p99/max of the pairs
 * answered during the work; asserts that the loop answered during kids[0]'s
 * work (at least 3 calls) and that no call waited half as long as that work
 * took (relative, not a fixed bound: a loaded host slows the guest as a whole).
 */
static bool beside_work(struct work_kid *kids, unsigned nk)
{
	struct dmabroker *c = NULL;
	struct dmabroker_buffer *mine = NULL;
	static int64_t lat[SAMPLES];
	unsigned n = 0, running = nk, in_any = 0, in_first;
	int64_t t0, lo = INT64_MAX, hi = 0, span;
	int status;
	char ready;

	/* the workers first: they must not share the third client's connection */
	for (unsigned k = 0; k < nk; k++) {
		kids[k].pid = spawn(kids[k].fn, &kids[k].go, &kids[k].out);
		CHECK(kids[k].pid > 0);
	}
	for (unsigned k = 0; k < nk; k++)
		CHECKF(read(kids[k].out, &ready, 1) == 1, "the client for %s could not prepare", kids[k].what);
	c = connect_session();
	CHECK(c);
	CHECK(alloc_on(c, 64, 64, DRM_FORMAT_XRGB8888, CPU, NULL, &mine) == 0);
	t0 = now_us();
	for (unsigned k = 0; k < nk; k++)
		CHECK(write(kids[k].go, "g", 1) == 1);
	while (running && n < SAMPLES) {
		uint64_t g;
		int r, fence = -1;
		sent[n] = now_us();
		r = dmabroker_buffer_begin_access(mine, DMABROKER_ACCESS_WRITE, 0, &g, &fence);
		safe_close_fence(fence);
		CHECKF(r == 0, "BeginAccess: %s", dmabroker_error_message(c));
		CHECK(dmabroker_end_access(c, g, -1) == 0);
		answered[n] = now_us(); /* both answered */
		n++;
		usleep(PACE_US); /* a client's pace, not a busy loop that starves the one vCPU */
		for (unsigned k = 0; k < nk; k++)
			if (kids[k].pid > 0 && waitpid(kids[k].pid, &status, WNOHANG) == kids[k].pid) {
				CHECKF(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the client for %s failed",
				       kids[k].what);
				kids[k].pid = 0;
				running--;
			}
	}
	for (unsigned k = 0; k < nk; k++) {
		struct window *w = &kids[k].w;
		CHECK(read(kids[k].out, w, sizeof(*w)) == sizeof(*w));
		close(kids[k].go);
		close(kids[k].out);
		tap_diag("%s: %.0f-%.0f ms after go (%.0f ms); BeginAccess + EndAccess answered meanwhile: %u", kids[k].what,
			 (w->start - t0) / 1000.0, (w->end - t0) / 1000.0, (w->end - w->start) / 1000.0,
			 count_within(n, w));
		CHECKF(w->ok, "%s failed", kids[k].what);
		lo = w->start < lo ? w->start : lo;
		hi = w->end > hi ? w->end : hi;
	}
	for (unsigned i = 0; i < n; i++)
		if (answered[i] >= lo && sent[i] <= hi)
			lat[in_any++] = answered[i] - sent[i];
	qsort(lat, in_any, sizeof(lat[0]), cmp_i64);
	tap_diag("BeginAccess + EndAccess of a third client during that work: %u answered of %u; p50 %.1f ms, "
		 "p99 %.1f ms, max %.1f ms", in_any, n, in_any ? lat[in_any / 2] / 1000.0 : 0.0,
		 in_any ? lat[in_any * 99 / 100] / 1000.0 : 0.0, in_any ? lat[in_any - 1] / 1000.0 : 0.0);
	span = kids[0].w.end - kids[0].w.start;
	in_first = count_within(n, &kids[0].w);
	/* No call waits for the work (the old daemon: one call waited all of it). */
	CHECKF(in_any > 0 && lat[in_any - 1] < span / 2, "a BeginAccess + EndAccess waited %.1f s of the %.1f s %s took",
	       in_any ? lat[in_any - 1] / 1e6 : 0.0, span / 1e6, kids[0].what);
	/* The loop answered while the kernel zeroed the memory (the old daemon: none, or one that came before). */
	CHECKF(in_first >= 3, "only %u BeginAccess + EndAccess answered during %s", in_first, kids[0].what);
	dmabroker_buffer_release(mine);
	dmabroker_disconnect(c);
	return true;
}

static bool step_loop_stays_responsive(void)
{
	struct work_kid kids[] = {
		{ .what = "Allocate 256 MiB (heap:system)", .fn = big_allocations },
		{ .what = "the move of 16 MiB to virtio-gpu", .fn = moved_buffer },
	};
	return beside_work(kids, 2);
}

/*
 * A stream of two 128 MiB buffers: the consumer's JoinStream starts the
 * negotiation, which allocates them for the producer; the window ends when
 * the consumer has them (StreamBuffers answered).
 */
static struct dmabroker *stream_consumer;
static struct dmabroker_stream *big_stream;

static int negotiated_stream(struct dmabroker *b, void *arg)
{
	static const uint32_t xrgb[] = { DRM_FORMAT_XRGB8888 };
	struct dmabroker_stream_desc d = {
		.version = DMABROKER_STREAM_DESC_VERSION, .name = "big", .label = "big-producer", .usage = CPU,
		.formats = xrgb, .n_formats = 1, .mode = DMABROKER_STREAM_MAILBOX, .buffers = 2, .width = 8192,
		.height = 4096, .consumers = 1,
	};
	struct dmabroker_stream *cs = NULL;
	int r;

	if (!arg) {
		stream_consumer = connect_session();
		return stream_consumer ? dmabroker_stream_create(b, &d, &big_stream) : -ENOTCONN;
	}
	d = (struct dmabroker_stream_desc){ .version = DMABROKER_STREAM_DESC_VERSION, .name = "big",
					    .label = "big-consumer", .usage = DMABROKER_USAGE_CPU_READ_FLAG };
	r = dmabroker_stream_join(stream_consumer, &d, &cs);
	if (r >= 0)
		r = dmabroker_stream_wait_ready(cs, -1);
	if (r >= 0)
		fprintf(stderr, "limits-test: the stream's buffers are on %s\n", dmabroker_stream_get_backend(cs));
	dmabroker_stream_destroy(cs);
	dmabroker_stream_destroy(big_stream);
	dmabroker_disconnect(stream_consumer);
	return r < 0 ? r : 0;
}

static bool step_stream_negotiation(void)
{
	struct work_kid kids[] = { { .what = "a stream's 2 x 128 MiB buffers", .fn = negotiated_stream } };
	return beside_work(kids, 1);
}

/*
 * An allocation the kernel refuses, on a worker: udmabuf takes at most its
 * size_limit_mb (64 MiB by default), so 128 MiB fails there. AllocationFailed
 * naming the backend, on the bus and on the access channel, and nothing kept:
 * the quota and the fd budget are given back (the same client allocates
 * again, up to its limits, and the daemon's fds and buffers are back).
 */
static bool step_allocation_fails(void)
{
	struct baseline base = baseline_take();
	struct dmabroker *b = connect_session();
	struct dmabroker_buffer *buf = NULL;

	CHECK(b);
	for (int path = 0; path < 2; path++) {
		if (path == 1)
			CHECK(dmabroker_open_direct(b) == 0); /* Allocate then goes on the access channel */
		struct dmabroker_channel_stats st0 = { .version = DMABROKER_CHANNEL_STATS_VERSION }, st1 = st0;
		CHECK(dmabroker_get_channel_stats(b, &st0) == 0);
		CHECK(expect_error(b, alloc_on(b, 8192, 4096, DRM_FORMAT_XRGB8888, CPU, "udmabuf", &buf), ENOMEM,
				   "org.dmabroker.Error.AllocationFailed"));
		CHECK(dmabroker_get_channel_stats(b, &st1) == 0);
		/* the second time on the channel indeed */
		CHECK(path == 0 || (st1.active && st1.channel_calls == st0.channel_calls + 1));
		CHECK(!buf && strstr(dmabroker_error_message(b), "udmabuf"));
		/* the positive control: what fits udmabuf is allocated there */
		CHECKF(alloc_on(b, 1024, 1024, DRM_FORMAT_XRGB8888, CPU, "udmabuf", &buf) == 0, "%s",
		       dmabroker_error_message(b));
		dmabroker_buffer_release(buf);
		buf = NULL;
	}
	dmabroker_disconnect(b);
	CHECK(baseline_restored(base));
	return true;
}

/* ---- --moves: moves obey [access] and quotas ---- */

/* As nobody: its heap buffer needs a move to virtio-gpu, which only root may allocate from. */
static int child_move_without_rule(void)
{
	struct dmabroker *b = connect_session();
	struct dmabroker_buffer *buf = NULL;
	uint32_t aid;
	int r;

	if (!b)
		return 10;
	if (alloc_on(b, 64, 64, DRM_FORMAT_XRGB8888, CPU, "heap:system", &buf) < 0) {
		fprintf(stderr, "limits-test: heap:system as nobody: %s\n", dmabroker_error_message(b));
		return 11;
	}
	r = dmabroker_buffer_attach(buf, DMABROKER_USAGE_SCANOUT_FLAG, "virtio_gpu", 0, &aid);
	if (!expect_error(b, r, EPERM, "org.dmabroker.Error.NotPermitted"))
		return 12;
	if (!strstr(dmabroker_error_message(b), "drm:virtio_gpu"))
		return 13;
	dmabroker_disconnect(b);
	return 0;
}

static bool step_move_needs_access_rule(void)
{
	int status = 0;
	pid_t pid = fork();

	if (pid == 0) {
		gid_t none[1] = { NOBODY };
		if (setgroups(1, none) < 0 || setgid(NOBODY) < 0 || setuid(NOBODY) < 0)
			_exit(100);
		_exit(child_move_without_rule());
	}
	CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
	CHECKF(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child (nobody) failed: status %d",
	       WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	return true;
}

/* root may: the same move goes through (the refusal above is the rule's). */
static bool step_move_with_rule(void)
{
	struct dmabroker *b = connect_session();
	struct dmabroker_buffer *buf = NULL;
	uint32_t aid;

	CHECK(b);
	CHECK(alloc_on(b, 64, 64, DRM_FORMAT_XRGB8888, CPU, "heap:system", &buf) == 0);
	CHECKF(dmabroker_buffer_attach(buf, DMABROKER_USAGE_SCANOUT_FLAG, "virtio_gpu", 0, &aid) == 0, "%s",
	       dmabroker_error_message(b));
	dmabroker_disconnect(b);
	return true;
}

/*
 * limits-moves.conf: max-bytes-per-client = 8220000. An imported RGB565
 * 4008x1024 buffer with tight rows (8016 bytes) in a heap dma-buf of 2005
 * pages (8212480 bytes) fits; on virtio-gpu its rows are 64-byte aligned
 * (8064 bytes: 8257536 bytes), which passes the quota of both holders.
 */
static bool step_move_within_holder_quota(void)
{
	struct dmabroker *owner = connect_session(), *other = connect_session();
	struct dma_heap_allocation_data data = { .len = 2005 * 4096, .fd_flags = O_RDWR | O_CLOEXEC };
	struct dmabroker_plane plane = { .offset = 0, .stride = 8016 };
	struct dmabroker_buffer *buf = NULL, *theirs = NULL;
	char *token = NULL;
	uint32_t aid;
	int heap, r;

	CHECK(owner && other);
	heap = open("/dev/dma_heap/system", O_RDONLY | O_CLOEXEC);
	CHECK(heap >= 0);
	CHECK(ioctl(heap, DMA_HEAP_IOCTL_ALLOC, &data) == 0);
	close(heap);
	CHECKF(dmabroker_import(owner, (int)data.fd, 4008, 1024, DRM_FORMAT_RGB565, DRM_FORMAT_MOD_LINEAR, &plane, 1,
				CPU | DMABROKER_USAGE_SCANOUT_FLAG, &buf) == 0, "import: %s",
	       dmabroker_error_message(owner));
	close((int)data.fd);
	CHECK(dmabroker_buffer_create_token(buf, 0, 0, &token) == 0);
	CHECKF(dmabroker_open_token(other, token, &theirs) == 0, "%s", dmabroker_error_message(other));
	r = dmabroker_buffer_attach(theirs, DMABROKER_USAGE_SCANOUT_FLAG, "virtio_gpu", 0, &aid);
	CHECKF(r == -EDQUOT, "the move went on: %d (%s)", r, r < 0 ? dmabroker_error_message(other) : "moved");
	CHECK(expect_error(other, r, EDQUOT, "org.dmabroker.Error.QuotaExceeded"));
	/* nothing moved: both still hold the same memory */
	CHECK(dmabroker_buffer_get_size(theirs) == 2005 * 4096);
	free(token);
	dmabroker_disconnect(other);
	dmabroker_disconnect(owner);
	return true;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";

	if (!daemon_pid_from_env("limits-test"))
		return 2;
	if (strcmp(mode, "--quota") == 0) {
		tap_plan(4);
		tap_step("a refused Allocate takes no memory", step_refused_allocation_takes_nothing);
		tap_step("two allocations in flight: the second is refused at its reservation",
			 step_concurrent_allocations);
		tap_step("waiting requests count against max-grants-per-client", step_waiting_grants_count);
		tap_step("a Release on the access channel is seen before the next D-Bus call",
			 step_channel_release_ordered_with_bus);
	} else if (strcmp(mode, "--latency") == 0) {
		/* Zeroing 256 MiB under TCG on a loaded host can pass sd-bus's 25 s default. */
		setenv("SYSTEMD_BUS_TIMEOUT", "300", 1);
		tap_plan(3);
		tap_step("BeginAccess is answered while 256 MiB are allocated and a buffer moves",
			 step_loop_stays_responsive);
		tap_step("BeginAccess is answered while a stream's 256 MiB are allocated", step_stream_negotiation);
		tap_step("an allocation the kernel refuses (128 MiB on udmabuf): AllocationFailed on the bus and the "
			 "access channel, nothing kept", step_allocation_fails);
	} else if (strcmp(mode, "--moves") == 0) {
		tap_plan(3);
		tap_step("a move onto a backend the caller has no [access] rule for is refused",
			 step_move_needs_access_rule);
		tap_step("the same move with the rule goes through", step_move_with_rule);
		tap_step("a move that would take a holder past its byte quota is refused",
			 step_move_within_holder_quota);
	} else {
		fprintf(stderr, "usage: limits-test --quota|--latency|--moves\n");
		return 2;
	}
	return tap_done();
}

/* SPDX-License-Identifier: MIT */
/*
 * stream-test: streams end to end against a real dmabrokerd (under
 * tests/common/with-daemon.py). Output is TAP.
 *
 * usage: stream-test [--fences] [--frames N]
 *
 * Without --fences (the host, shm backend): negotiation and its errors,
 * FIFO order and content, mailbox drops, back-pressure, a consumer killed
 * mid-stream, the producer leaving. With --fences (the VM, dma-buf heaps,
 * sw_sync): the producer queues each frame before it writes it, under a
 * pending ready fence, and consumers release each frame under a pending
 * release fence while they still read it: content stays intact only if
 * every fence is honoured. Also placement on a device that imports nothing.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <dirent.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <drm_fourcc.h>
#include <systemd/sd-bus.h>

#include "dmabroker.h"
#include "fd-util.h"
#include "fdmsg.h"
#include "tap.h"
#include "broker-util.h"
#include "uapi-extra.h"
#include "stream-wire.h"

TAP_DEFINE;

#define W 64
#define H 64

static bool fences;
static int frames = 300;
static const uint32_t xrgb[] = { DRM_FORMAT_XRGB8888 };

static struct dmabroker_stream_desc producer_desc(const char *name, enum dmabroker_stream_mode mode,
						  uint32_t consumers)
{
	return (struct dmabroker_stream_desc){
		.version = DMABROKER_STREAM_DESC_VERSION, .name = name, .label = "test-producer", .usage = CPU_RW,
		.formats = xrgb, .n_formats = 1, .mode = mode, .buffers = 4, .width = W, .height = H,
		.consumers = consumers,
	};
}

static struct dmabroker_stream_desc consumer_desc(const char *name, const char *label)
{
	return (struct dmabroker_stream_desc){
		.version = DMABROKER_STREAM_DESC_VERSION, .name = name, .label = label,
		.usage = DMABROKER_USAGE_CPU_READ_FLAG,
	};
}

static uint64_t monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Runs every connection's pending work, waiting up to timeout_ms for some. */
static void pump(struct dmabroker **conns, unsigned n, int timeout_ms)
{
	struct pollfd pfd[8];
	for (unsigned i = 0; i < n; i++)
		pfd[i] = (struct pollfd){ .fd = dmabroker_get_fd(conns[i]), .events = POLLIN };
	poll(pfd, n, timeout_ms);
	for (unsigned i = 0; i < n; i++)
		dmabroker_process(conns[i]);
}

/* Waits until every stream is ready (negotiation needs the pumps of all). */
static bool all_ready(struct dmabroker **conns, unsigned n, struct dmabroker_stream **s, unsigned ns)
{
	for (int t = 0; t < 500; t++) {
		bool ready = true;
		for (unsigned i = 0; i < ns; i++)
			ready &= dmabroker_stream_is_ready(s[i]);
		if (ready)
			return true;
		pump(conns, n, 10);
	}
	return false;
}

/* The daemon's counters of stream id (ListStreams; tests run as the daemon's user). */
struct counters {
	uint64_t produced, consumed, dropped;
	uint32_t consumers;
	char state[16];
};

static bool stream_counters(uint64_t id, struct counters *out)
{
	sd_bus *bus = NULL;
	sd_bus_message *reply = NULL;
	sd_bus_error e = SD_BUS_ERROR_NULL;
	bool found = false;
	int r = sd_bus_open_user(&bus);

	if (r >= 0)
		r = sd_bus_call_method(bus, "org.dmabroker.Broker1", "/org/dmabroker/Broker1", "org.dmabroker.Broker1",
				       "ListStreams", &e, &reply, "");
	if (r >= 0)
		r = sd_bus_message_enter_container(reply, 'a', "(tssssuuuututtt)");
	while (r >= 0 && !found) {
		uint64_t sid, producer, produced, consumed, dropped;
		const char *name, *mode, *state, *backend;
		uint32_t fourcc, w, h, n, consumers;
		r = sd_bus_message_read(reply, "(tssssuuuututtt)", &sid, &name, &mode, &state, &backend, &fourcc, &w,
					&h, &n, &producer, &consumers, &produced, &consumed, &dropped);
		if (r <= 0)
			break;
		if (sid == id) {
			*out = (struct counters){ produced, consumed, dropped, consumers, "" };
			snprintf(out->state, sizeof(out->state), "%s", state);
			found = true;
		}
	}
	if (r < 0)
		tap_diag("ListStreams: %s", e.message ? e.message : strerror(-r));
	sd_bus_error_free(&e);
	sd_bus_message_unref(reply);
	sd_bus_unref(bus);
	return found;
}

/* ---- frame content ---- */

static uint32_t word(uint64_t seq, size_t i)
{
	return (uint32_t)seq * 2654435761u ^ (uint32_t)i * 40503u;
}

static void fill(uint32_t *p, size_t from, size_t to, uint64_t seq)
{
	for (size_t i = from; i < to; i++)
		p[i] = i ? word(seq, i) : (uint32_t)seq;
}

/* 0 when the content is frame seq, else the first bad word's index. */
static size_t check(const uint32_t *p, size_t words, uint64_t seq)
{
	if (p[0] != (uint32_t)seq)
		return 1;
	for (size_t i = 1; i < words; i++)
		if (p[i] != word(seq, i))
			return i;
	return 0;
}

/* sw_sync: a timeline per process, a fence per point */
struct timeline {
	int fd;
	uint32_t point;
};

static int fence_next(struct timeline *t)
{
	struct sw_sync_create_fence_data d = { .value = ++t->point };
	snprintf(d.name, sizeof(d.name), "stream-%u", t->point);
	return ioctl(t->fd, SW_SYNC_IOC_CREATE_FENCE, &d) < 0 ? -1 : d.fence;
}

static void fence_signal(struct timeline *t)
{
	uint32_t one = 1;
	ioctl(t->fd, SW_SYNC_IOC_INC, &one);
}

/* ---- producer and consumer loops (in child processes) ---- */

/*
 * Produces n frames. With fences: queue first under a pending ready fence,
 * then write, then signal; and wait for each buffer's release fence.
 */
static int produce(struct dmabroker_stream *s, int n)
{
	struct timeline tl = { .fd = fences ? open(SW_SYNC_DEBUGFS_PATH, O_RDWR | O_CLOEXEC) : -1 };
	size_t words = (size_t)W * H;

	if (fences && tl.fd < 0)
		return 10;
	for (int seq = 1; seq <= n; seq++) {
		struct dmabroker_frame f;
		void *map;
		int r, ready = -1;
		while ((r = dmabroker_stream_dequeue(s, &f)) == -EAGAIN)
			if (dmabroker_stream_wait(s, 10000) <= 0)
				return 11;
		if (r < 0)
			return 12;
		/* the buffer is ours once its release fence signals */
		if (dmabroker_stream_cpu_begin(s, f.index, DMABROKER_ACCESS_WRITE, f.fence, 10000, &map) < 0)
			return 14;
		if (f.fence >= 0)
			close(f.fence);
		if (!fences) {
			fill(map, 0, words, (uint64_t)seq);
			dmabroker_stream_cpu_end(s, f.index);
			if (dmabroker_stream_queue(s, f.index, -1, (uint64_t)seq, (uint64_t)seq * 1000, NULL, 0) < 0)
				return 13;
			continue;
		}
		/*
		 * Like a GPU: the frame goes out while it is still being
		 * written, under a ready fence that signals when it is done
		 * (the mapping is coherent here; no SYNC while our own fence
		 * is pending in the dma-buf, which would wait for it).
		 */
		fill(map, 0, words / 2, (uint64_t)seq);
		dmabroker_stream_cpu_end(s, f.index);
		ready = fence_next(&tl);
		if (dmabroker_stream_queue(s, f.index, ready, (uint64_t)seq, (uint64_t)seq * 1000, NULL, 0) < 0)
			return 13;
		close(ready);
		usleep(100);
		fill(map, words / 2, words, (uint64_t)seq);
		fence_signal(&tl);
	}
	return 0;
}

/*
 * Consumes frames until the stream ends, checking order (fifo: no gaps)
 * and content. With fences: release each frame under a pending release
 * fence, read it once more (the "GPU" still reading), then signal.
 */
static int consume(struct dmabroker_stream *s, int expect, bool gapless)
{
	struct timeline tl = { .fd = fences ? open(SW_SYNC_DEBUGFS_PATH, O_RDWR | O_CLOEXEC) : -1 };
	size_t words = (size_t)W * H;
	uint64_t last = 0;
	int got = 0;

	if (fences && tl.fd < 0)
		return 20;
	for (;;) {
		struct dmabroker_frame f;
		void *map;
		size_t bad;
		int r = dmabroker_stream_acquire(s, &f);
		if (r == -EAGAIN) {
			if (dmabroker_stream_wait(s, 10000) <= 0)
				return 21;
			continue;
		}
		if (r == -EPIPE)
			break;
		if (r < 0)
			return 22;
		if (f.sequence <= last || (gapless && f.sequence != last + 1)) {
			fprintf(stderr, "frame %" PRIu64 " after %" PRIu64 "\n", f.sequence, last);
			return 23;
		}
		last = f.sequence;
		if (f.timestamp_ns != f.sequence * 1000) {
			fprintf(stderr, "frame %" PRIu64 ": timestamp %" PRIu64 ", not the producer's\n", f.sequence,
				f.timestamp_ns);
			return 28;
		}
		if (dmabroker_stream_cpu_begin(s, f.index, DMABROKER_ACCESS_READ, f.fence, 10000, &map) < 0)
			return 24;
		if (f.fence >= 0)
			close(f.fence);
		bad = check(map, words, f.sequence);
		if (bad) {
			fprintf(stderr, "frame %" PRIu64 ": word %zu wrong (before the ready fence?)\n", f.sequence, bad);
			return 25;
		}
		if (fences) {
			int release = fence_next(&tl);
			dmabroker_stream_release(s, f.index, release);
			close(release);
			usleep(200);
			bad = check(map, words, f.sequence);
			fence_signal(&tl);
			if (bad) {
				fprintf(stderr, "frame %" PRIu64 " overwritten before its release fence\n", f.sequence);
				return 26;
			}
		} else {
			dmabroker_stream_release(s, f.index, -1);
		}
		dmabroker_stream_cpu_end(s, f.index);
		got++;
	}
	if (gapless && got != expect) {
		fprintf(stderr, "got %d frames, want %d\n", got, expect);
		return 27;
	}
	return 0;
}

static int consumer_child(const char *name, const char *label, int expect, bool gapless)
{
	struct dmabroker *b = connect_session();
	struct dmabroker_stream_desc d = consumer_desc(name, label);
	struct dmabroker_stream *s = NULL;
	int r;

	if (!b || dmabroker_stream_join(b, &d, &s) < 0 || dmabroker_stream_wait_ready(s, 20000) < 0) {
		fprintf(stderr, "%s: join: %s\n", label, b ? dmabroker_error_message(b) : "no connection");
		return 30;
	}
	r = consume(s, expect, gapless);
	dmabroker_stream_destroy(s);
	dmabroker_disconnect(b);
	return r;
}

static bool wait_child(pid_t pid, const char *what)
{
	int status = 0;
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		tap_diag("%s: exit status %d", what, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
		return false;
	}
	return true;
}

/* ---- steps ---- */

static bool step_negotiation(void)
{
	struct baseline base = baseline_take();
	struct dmabroker *p = connect_session(), *c1 = connect_session(), *c2 = connect_session();
	struct dmabroker *conns[] = { p, c1, c2 };
	const uint32_t prod_formats[] = { DRM_FORMAT_ABGR8888, DRM_FORMAT_XRGB8888 };
	const uint32_t rgb565[] = { DRM_FORMAT_RGB565 };
	const uint64_t tiled[] = { I915_FORMAT_MOD_X_TILED };
	struct dmabroker_stream_desc pd = producer_desc("neg", DMABROKER_STREAM_FIFO, 2);
	struct dmabroker_stream_desc cd1 = consumer_desc("neg", "wants-xrgb"), cd2 = consumer_desc("neg", "any");
	struct dmabroker_stream *ps = NULL, *cs1 = NULL, *cs2 = NULL, *x = NULL;
	int r;

	CHECK(p && c1 && c2);
	pd.formats = prod_formats;
	pd.n_formats = 2;
	cd1.formats = xrgb;
	cd1.n_formats = 1;
	/* the first of the producer's formats that every consumer takes */
	CHECK(dmabroker_stream_create(p, &pd, &ps) == 0);
	CHECK(expect_error(p, dmabroker_stream_create(p, &pd, &x), EEXIST, "org.dmabroker.Error.NameTaken"));
	CHECK(dmabroker_stream_join(c1, &cd1, &cs1) == 0);
	CHECK(!dmabroker_stream_is_ready(cs1)); /* one more consumer expected */
	CHECK(dmabroker_stream_join(c2, &cd2, &cs2) == 0);
	CHECK(all_ready(conns, 3, (struct dmabroker_stream *[]){ ps, cs1, cs2 }, 3));
	CHECK(dmabroker_stream_get_fourcc(ps) == DRM_FORMAT_XRGB8888);
	CHECK(dmabroker_stream_get_fourcc(cs2) == DRM_FORMAT_XRGB8888);
	CHECK(dmabroker_stream_get_buffer_count(cs1) == 4 && dmabroker_stream_get_width(cs1) == W);
	tap_diag("negotiated XR24 on %s", dmabroker_stream_get_backend(ps));
	/* a late joiner that takes none of it */
	struct dmabroker_stream_desc late = consumer_desc("neg", "late-565");
	late.formats = rgb565;
	late.n_formats = 1;
	r = dmabroker_stream_join(c2, &late, &x);
	CHECK(r == -EINVAL); /* c2 is in the stream already */
	struct dmabroker *c3 = connect_session();
	CHECK(c3);
	CHECK(expect_error(c3, dmabroker_stream_join(c3, &late, &x), EPROTO, "org.dmabroker.Error.NegotiationFailed"));
	CHECK(strstr(dmabroker_error_message(c3), "late-565"));
	/* stream buffers are used through frames only */
	CHECK(expect_error(c1, dmabroker_buffer_begin_access(dmabroker_stream_get_buffer(cs1, 0), 1, 0,
							      &(uint64_t){ 0 }, &(int){ -1 }),
			   EPERM, "org.dmabroker.Error.NotPermitted"));
	dmabroker_stream_destroy(cs1);
	dmabroker_stream_destroy(cs2);
	dmabroker_stream_destroy(ps);

	/* a consumer that takes none of the producer's formats: both hear who */
	pd = producer_desc("neg2", DMABROKER_STREAM_FIFO, 1);
	cd1 = consumer_desc("neg2", "only-565");
	cd1.formats = rgb565;
	cd1.n_formats = 1;
	CHECK(dmabroker_stream_create(p, &pd, &ps) == 0);
	CHECK(dmabroker_stream_join(c1, &cd1, &cs1) == 0);
	CHECK(expect_error(c1, dmabroker_stream_wait_ready(cs1, 5000), EPROTO, "org.dmabroker.Error.NegotiationFailed"));
	CHECK(strstr(dmabroker_error_message(c1), "only-565") && strstr(dmabroker_error_message(c1), "XR24"));
	CHECK(expect_error(p, dmabroker_stream_wait_ready(ps, 5000), EPROTO, "org.dmabroker.Error.NegotiationFailed"));
	dmabroker_stream_destroy(cs1);
	dmabroker_stream_destroy(ps);

	/* a consumer that takes only a tiled modifier */
	pd = producer_desc("neg3", DMABROKER_STREAM_FIFO, 1);
	cd1 = consumer_desc("neg3", "tiled-only");
	cd1.modifiers = tiled;
	cd1.n_modifiers = 1;
	CHECK(dmabroker_stream_create(p, &pd, &ps) == 0);
	CHECK(dmabroker_stream_join(c1, &cd1, &cs1) == 0);
	CHECK(expect_error(c1, dmabroker_stream_wait_ready(cs1, 5000), EPROTO, "org.dmabroker.Error.NegotiationFailed"));
	CHECK(strstr(dmabroker_error_message(c1), "tiled-only") && strstr(dmabroker_error_message(c1), "linear"));
	dmabroker_stream_destroy(cs1);
	dmabroker_stream_destroy(ps);

	/* bad requests */
	pd = producer_desc("neg4", DMABROKER_STREAM_FIFO, 1);
	pd.buffers = 17;
	CHECK(expect_error(p, dmabroker_stream_create(p, &pd, &x), EINVAL, "org.dmabroker.Error.InvalidArgument"));
	pd = producer_desc("bad name!", DMABROKER_STREAM_FIFO, 1);
	CHECK(expect_error(p, dmabroker_stream_create(p, &pd, &x), EINVAL, "org.dmabroker.Error.InvalidArgument"));
	pd = producer_desc("neg5", DMABROKER_STREAM_FIFO, 1);
	pd.width = 0;
	CHECK(expect_error(p, dmabroker_stream_create(p, &pd, &x), EDOM, "org.dmabroker.Error.InvalidDimensions"));
	cd1 = consumer_desc("nosuch", "lost");
	CHECK(expect_error(c1, dmabroker_stream_join(c1, &cd1, &x), ENXIO, "org.dmabroker.Error.UnknownStream"));

	dmabroker_disconnect(c3);
	dmabroker_disconnect(c2);
	dmabroker_disconnect(c1);
	dmabroker_disconnect(p);
	CHECK(baseline_restored(base));
	return true;
}

/*
 * The stream's buffers are allocated like the producer's own Allocate:
 * charged to it before they are taken (on the daemon's worker threads),
 * so a stream past its quota fails naming the limit and keeps nothing;
 * and whoever leaves while they are being allocated leaves nothing.
 */
static bool step_negotiation_allocates(void)
{
	struct baseline base = baseline_take();
	struct dmabroker *p = connect_session(), *c = connect_session();
	struct dmabroker *conns[] = { p, c };
	struct dmabroker_buffer *mine[29] = { 0 }, *extra[3];
	struct dmabroker_stream *ps = NULL, *cs = NULL;
	struct dmabroker_stream_desc pd, cd;
	struct dmabroker_alloc_desc d = { .version = DMABROKER_ALLOC_DESC_VERSION, .width = W, .height = H,
					  .fourcc = DRM_FORMAT_XRGB8888, .usage = CPU_RW };
	int r = 0;

	CHECK(p && c);
	/* 29 of the producer's 32 buffers (test.conf) taken: a stream of 4 does not fit */
	for (unsigned i = 0; i < sizeof(mine) / sizeof(mine[0]) && r == 0; i++)
		r = dmabroker_allocate(p, &d, &mine[i]);
	CHECKF(r == 0, "allocate: %s", dmabroker_error_message(p));
	pd = producer_desc("quota", DMABROKER_STREAM_MAILBOX, 1);
	cd = consumer_desc("quota", "watcher");
	CHECK(dmabroker_stream_create(p, &pd, &ps) == 0);
	CHECK(dmabroker_stream_join(c, &cd, &cs) == 0);
	CHECK(expect_error(c, dmabroker_stream_wait_ready(cs, 5000), EPROTO, "org.dmabroker.Error.NegotiationFailed"));
	CHECK(strstr(dmabroker_error_message(c), "max-buffers-per-client"));
	CHECK(expect_error(p, dmabroker_stream_wait_ready(ps, 5000), EPROTO, "org.dmabroker.Error.NegotiationFailed"));
	/* of the stream's buffers, none is kept, and what could be reserved is free again */
	CHECK(daemon_property_u32("Buffers") == base.buffers + 29);
	for (int i = 0; i < 3; i++)
		CHECKF(dmabroker_allocate(p, &d, &extra[i]) == 0, "allocate: %s", dmabroker_error_message(p));
	for (int i = 0; i < 3; i++)
		dmabroker_buffer_release(extra[i]);
	dmabroker_stream_destroy(cs);
	dmabroker_stream_destroy(ps);
	for (unsigned i = 0; i < sizeof(mine) / sizeof(mine[0]); i++)
		dmabroker_buffer_release(mine[i]);
	/* the releases may travel on the access channel, not ordered with the bus calls below: seen through */
	for (int t = 0; t < 1000 && daemon_property_u32("Buffers") != base.buffers; t++)
		usleep(10000);
	CHECK(daemon_property_u32("Buffers") == base.buffers);
	/* with the quota free, the same stream runs */
	CHECK(dmabroker_stream_create(p, &pd, &ps) == 0);
	CHECK(dmabroker_stream_join(c, &cd, &cs) == 0);
	CHECK(all_ready(conns, 2, (struct dmabroker_stream *[]){ ps, cs }, 2));
	CHECK(dmabroker_stream_get_buffer_count(cs) == 4);
	CHECK(daemon_property_u32("Streams") == 1); /* the Streams property counts it */
	dmabroker_stream_destroy(cs);
	dmabroker_stream_destroy(ps);

	/* leaving at once, while the buffers are (or may still be) allocated */
	for (int round = 0; round < 40; round++) {
		struct dmabroker *leaver = round % 2 ? c : p;
		CHECK(dmabroker_stream_create(p, &pd, &ps) == 0);
		CHECK(dmabroker_stream_join(c, &cd, &cs) == 0);
		if (leaver == p) {
			ps = dmabroker_stream_destroy(ps);
			cs = dmabroker_stream_destroy(cs);
		} else {
			cs = dmabroker_stream_destroy(cs);
			ps = dmabroker_stream_destroy(ps);
		}
	}
	/* and a producer that disconnects */
	CHECK(dmabroker_stream_create(p, &pd, &ps) == 0);
	CHECK(dmabroker_stream_join(c, &cd, &cs) == 0);
	dmabroker_stream_destroy(ps);
	dmabroker_disconnect(p);
	dmabroker_stream_destroy(cs);
	dmabroker_disconnect(c);
	CHECK(baseline_restored(base));
	return true;
}

static bool step_fifo_content(void)
{
	struct baseline base = baseline_take();
	struct dmabroker *p = connect_session();
	struct dmabroker_stream_desc pd = producer_desc("fifo", DMABROKER_STREAM_FIFO, 2);
	struct dmabroker_stream *ps = NULL;
	struct counters cnt;
	pid_t kids[2];
	int r;

	CHECK(p && dmabroker_stream_create(p, &pd, &ps) == 0);
	for (int i = 0; i < 2; i++) {
		kids[i] = fork();
		if (kids[i] == 0)
			_exit(consumer_child("fifo", i ? "consumer-b" : "consumer-a", frames, true));
	}
	r = dmabroker_stream_wait_ready(ps, 20000);
	CHECK(r == 0);
	r = produce(ps, frames);
	if (r)
		tap_diag("producer failed: %d (%s)", r, dmabroker_error_message(p) ? dmabroker_error_message(p) : "-");
	CHECK(r == 0);
	/* everything back before we leave */
	for (int n = 0; n < 4; n++) {
		struct dmabroker_frame f;
		while ((r = dmabroker_stream_dequeue(ps, &f)) == -EAGAIN)
			CHECK(dmabroker_stream_wait(ps, 10000) == 1);
		CHECK(r == 0);
		if (f.fence >= 0)
			close(f.fence);
	}
	CHECK(stream_counters(dmabroker_stream_get_id(ps), &cnt));
	tap_diag("fifo: produced %" PRIu64 ", consumed %" PRIu64 ", dropped %" PRIu64, cnt.produced, cnt.consumed,
		 cnt.dropped);
	CHECK(cnt.produced == (uint64_t)frames && cnt.consumed == 2u * (uint64_t)frames && cnt.dropped == 0);
	dmabroker_stream_destroy(ps);
	CHECK(wait_child(kids[0], "consumer a"));
	CHECK(wait_child(kids[1], "consumer b"));
	dmabroker_disconnect(p);
	CHECK(baseline_restored(base));
	return true;
}

static bool step_mailbox_drops(void)
{
	struct baseline base = baseline_take();
	struct dmabroker *p = connect_session(), *a = connect_session(), *stall = connect_session();
	struct dmabroker *conns[] = { p, a, stall };
	struct dmabroker_stream_desc pd = producer_desc("mbox", DMABROKER_STREAM_MAILBOX, 2);
	struct dmabroker_stream_desc ad = consumer_desc("mbox", "fast"), sd = consumer_desc("mbox", "stalled");
	struct dmabroker_stream *ps = NULL, *as = NULL, *ss = NULL;
	struct dmabroker_frame f, held;
	uint64_t last_a = 0;
	int got_a = 0, n = 200, r;
	struct counters cnt;

	CHECK(p && a && stall);
	CHECK(dmabroker_stream_create(p, &pd, &ps) == 0);
	CHECK(dmabroker_stream_join(a, &ad, &as) == 0);
	CHECK(dmabroker_stream_join(stall, &sd, &ss) == 0);
	CHECK(all_ready(conns, 3, (struct dmabroker_stream *[]){ ps, as, ss }, 3));
	CHECK(dmabroker_stream_get_mode(as) == DMABROKER_STREAM_MAILBOX);
	for (int seq = 1; seq <= n; seq++) {
		int tries = 0;
		while ((r = dmabroker_stream_dequeue(ps, &f)) == -EAGAIN) {
			CHECK(++tries < 500); /* the producer never waits long on a stalled consumer */
			pump(conns, 3, 10);
		}
		CHECK(r == 0);
		if (f.fence >= 0)
			close(f.fence);
		CHECK(dmabroker_stream_queue(ps, f.index, -1, (uint64_t)seq, 0, NULL, 0) == 0);
		pump(conns, 3, 0);
		/* the fast consumer takes what is there; the stalled one took its first frame only */
		while (dmabroker_stream_acquire(as, &f) == 0) {
			CHECK(f.sequence > last_a);
			last_a = f.sequence;
			got_a++;
			dmabroker_stream_release(as, f.index, -1);
		}
		if (seq == 1) {
			for (int t = 0; t < 100 && dmabroker_stream_acquire(ss, &held) == -EAGAIN; t++)
				pump(conns, 3, 10);
			CHECK(held.sequence == 1);
		}
	}
	for (int t = 0; t < 50 && last_a != (uint64_t)n; t++) {
		pump(conns, 3, 10);
		while (dmabroker_stream_acquire(as, &f) == 0) {
			last_a = f.sequence;
			got_a++;
			dmabroker_stream_release(as, f.index, -1);
		}
	}
	CHECK(stream_counters(dmabroker_stream_get_id(ps), &cnt));
	tap_diag("mailbox: %d frames, the fast consumer got %d (last %" PRIu64 "), the stalled one 1; dropped %" PRIu64,
		 n, got_a, last_a, cnt.dropped);
	CHECK(last_a == (uint64_t)n);   /* the newest frame always arrives */
	CHECK(got_a >= 2);
	/* every frame reached each consumer or was counted as dropped for it:
	 * the stalled one got frame 1 and has frame n waiting */
	CHECK(cnt.dropped == (uint64_t)(n - got_a) + (uint64_t)(n - 2));
	/* the stalled consumer still holds frame 1, and gets the newest when it lets go */
	dmabroker_stream_release(ss, held.index, -1);
	for (int t = 0; t < 100 && dmabroker_stream_acquire(ss, &held) == -EAGAIN; t++)
		pump(conns, 3, 10);
	CHECK(held.sequence == (uint64_t)n);
	dmabroker_stream_destroy(ss);
	dmabroker_stream_destroy(as);
	dmabroker_stream_destroy(ps);
	dmabroker_disconnect(stall);
	dmabroker_disconnect(a);
	dmabroker_disconnect(p);
	CHECK(baseline_restored(base));
	return true;
}

static bool step_fifo_backpressure(void)
{
	struct baseline base = baseline_take();
	struct dmabroker *p = connect_session(), *a = connect_session(), *stall = connect_session();
	struct dmabroker *p2 = connect_session(), *c2 = connect_session();
	struct dmabroker *conns[] = { p, a, stall, p2, c2 };
	struct dmabroker_stream_desc pd = producer_desc("bp", DMABROKER_STREAM_FIFO, 2);
	struct dmabroker_stream_desc ad = consumer_desc("bp", "fast"), sd = consumer_desc("bp", "stalled");
	struct dmabroker_stream_desc pd2 = producer_desc("other", DMABROKER_STREAM_FIFO, 1);
	struct dmabroker_stream_desc cd2 = consumer_desc("other", "other-consumer");
	struct dmabroker_stream *ps = NULL, *as = NULL, *ss = NULL, *ps2 = NULL, *cs2 = NULL;
	struct dmabroker_frame f;
	int queued = 0, other = 0, got_a = 0;

	CHECK(p && a && stall && p2 && c2);
	CHECK(dmabroker_stream_create(p, &pd, &ps) == 0);
	CHECK(dmabroker_stream_join(a, &ad, &as) == 0);
	CHECK(dmabroker_stream_join(stall, &sd, &ss) == 0);
	CHECK(dmabroker_stream_create(p2, &pd2, &ps2) == 0);
	CHECK(dmabroker_stream_join(c2, &cd2, &cs2) == 0);
	CHECK(all_ready(conns, 5, (struct dmabroker_stream *[]){ ps, as, ss, ps2, cs2 }, 5));
	/* the stalled consumer never takes a frame: the producer runs out of buffers */
	for (int t = 0; t < 300; t++) {
		if (dmabroker_stream_dequeue(ps, &f) == 0) {
			if (f.fence >= 0)
				close(f.fence);
			CHECK(dmabroker_stream_queue(ps, f.index, -1, (uint64_t)++queued, 0, NULL, 0) == 0);
		}
		while (dmabroker_stream_acquire(as, &f) == 0) {
			got_a++;
			dmabroker_stream_release(as, f.index, -1);
		}
		/* meanwhile another stream runs, with damage rectangles */
		if (dmabroker_stream_dequeue(ps2, &f) == 0) {
			const int32_t damage[2][4] = { { 1, 2, 3, 4 }, { other, 0, 8, 8 } };
			if (f.fence >= 0)
				close(f.fence);
			CHECK(dmabroker_stream_queue(ps2, f.index, -1, (uint64_t)++other, 0, damage, 2) == 0);
		}
		while (dmabroker_stream_acquire(cs2, &f) == 0) {
			CHECK(f.n_damage == 2 && f.damage[0][0] == 1 && f.damage[0][3] == 4);
			CHECK(f.damage[1][0] == (int32_t)f.sequence - 1 && f.damage[1][2] == 8);
			dmabroker_stream_release(cs2, f.index, -1);
		}
		pump(conns, 5, 2);
	}
	tap_diag("fifo with a stalled consumer: %d frames queued (4 buffers), the fast consumer got %d; "
		 "another stream meanwhile: %d", queued, got_a, other);
	CHECK(queued == 4);       /* back-pressure: every buffer waits for the stalled consumer */
	CHECK(got_a == 4);
	CHECK(other > 50);        /* nothing else stalls */
	/* the stalled consumer leaves: its frames come back, the stream goes on */
	dmabroker_stream_destroy(ss);
	for (int t = 0; t < 200 && queued < 20; t++) {
		if (dmabroker_stream_dequeue(ps, &f) == 0) {
			if (f.fence >= 0)
				close(f.fence);
			CHECK(dmabroker_stream_queue(ps, f.index, -1, (uint64_t)++queued, 0, NULL, 0) == 0);
		}
		while (dmabroker_stream_acquire(as, &f) == 0)
			dmabroker_stream_release(as, f.index, -1);
		pump(conns, 5, 2);
	}
	CHECK(queued == 20);
	dmabroker_stream_destroy(cs2);
	dmabroker_stream_destroy(ps2);
	dmabroker_stream_destroy(as);
	dmabroker_stream_destroy(ps);
	for (unsigned i = 0; i < 5; i++)
		dmabroker_disconnect(conns[i]);
	CHECK(baseline_restored(base));
	return true;
}

static bool step_consumer_killed(void)
{
	struct baseline base = baseline_take();
	struct dmabroker *p = connect_session(), *a = connect_session();
	struct dmabroker *conns[] = { p, a };
	struct dmabroker_stream_desc pd = producer_desc("kill", DMABROKER_STREAM_FIFO, 2);
	struct dmabroker_stream_desc ad = consumer_desc("kill", "survivor");
	struct dmabroker_stream *ps = NULL, *as = NULL;
	struct dmabroker_frame f;
	struct counters cnt;
	int ready_pipe[2], queued = 0, got_a = 0, status;
	char c;
	pid_t victim;

	CHECK(p && a && pipe(ready_pipe) == 0);
	CHECK(dmabroker_stream_create(p, &pd, &ps) == 0);
	CHECK(dmabroker_stream_join(a, &ad, &as) == 0);
	victim = fork();
	if (victim == 0) {
		/* takes two frames, says so, and sits on them until killed */
		struct dmabroker *b = connect_session();
		struct dmabroker_stream_desc vd = consumer_desc("kill", "victim");
		struct dmabroker_stream *vs = NULL;
		int held = 0;
		if (!b || dmabroker_stream_join(b, &vd, &vs) < 0 || dmabroker_stream_wait_ready(vs, 20000) < 0)
			_exit(1);
		while (held < 2) {
			if (dmabroker_stream_acquire(vs, &f) == 0)
				held++;
			else if (dmabroker_stream_wait(vs, 20000) <= 0)
				_exit(2);
		}
		if (write(ready_pipe[1], "x", 1) != 1)
			_exit(3);
		pause();
		_exit(0);
	}
	close(ready_pipe[1]);
	CHECK(all_ready(conns, 2, (struct dmabroker_stream *[]){ ps, as }, 2));
	for (int t = 0; t < 500 && queued < 2; t++) {
		if (dmabroker_stream_dequeue(ps, &f) == 0) {
			if (f.fence >= 0)
				close(f.fence);
			CHECK(dmabroker_stream_queue(ps, f.index, -1, (uint64_t)++queued, 0, NULL, 0) == 0);
		}
		pump(conns, 2, 10);
	}
	CHECK(read(ready_pipe[0], &c, 1) == 1);
	close(ready_pipe[0]);
	kill(victim, SIGKILL);
	CHECK(waitpid(victim, &status, 0) == victim && WIFSIGNALED(status));
	/* the producer and the survivor go on, with all four buffers */
	for (int t = 0; t < 2000 && queued < 100; t++) {
		if (dmabroker_stream_dequeue(ps, &f) == 0) {
			if (f.fence >= 0)
				close(f.fence);
			CHECK(dmabroker_stream_queue(ps, f.index, -1, (uint64_t)++queued, 0, NULL, 0) == 0);
		}
		while (dmabroker_stream_acquire(as, &f) == 0) {
			got_a++;
			dmabroker_stream_release(as, f.index, -1);
		}
		pump(conns, 2, 5);
	}
	CHECK(queued == 100);
	for (int t = 0; t < 100 && got_a < 100; t++) {
		pump(conns, 2, 10);
		while (dmabroker_stream_acquire(as, &f) == 0) {
			got_a++;
			dmabroker_stream_release(as, f.index, -1);
		}
	}
	CHECK(got_a == 100);
	CHECK(stream_counters(dmabroker_stream_get_id(ps), &cnt));
	CHECK(cnt.consumers == 1);
	/* every buffer is free again */
	for (int n = 0; n < 4; n++) {
		int r;
		while ((r = dmabroker_stream_dequeue(ps, &f)) == -EAGAIN)
			CHECK(dmabroker_stream_wait(ps, 5000) == 1);
		CHECK(r == 0);
		if (f.fence >= 0)
			close(f.fence);
	}
	/* the producer leaves: the survivor sees the end */
	dmabroker_stream_destroy(ps);
	for (int t = 0; t < 100 && !dmabroker_stream_has_ended(as); t++)
		pump(conns, 2, 10);
	CHECK(dmabroker_stream_acquire(as, &f) == -EPIPE);
	dmabroker_stream_destroy(as);
	dmabroker_disconnect(a);
	dmabroker_disconnect(p);
	CHECK(baseline_restored(base));
	return true;
}

static bool step_take_both(void)
{
	struct baseline base = baseline_take();
	struct dmabroker *src = connect_session(), *stage = connect_session(), *sink = connect_session();
	struct dmabroker *conns[] = { src, stage, sink };
	struct dmabroker_stream_desc ad = producer_desc("stage-in", DMABROKER_STREAM_FIFO, 1);
	struct dmabroker_stream_desc ai = consumer_desc("stage-in", "stage");
	struct dmabroker_stream_desc bd = producer_desc("stage-out", DMABROKER_STREAM_FIFO, 1);
	struct dmabroker_stream_desc bi = consumer_desc("stage-out", "sink");
	struct dmabroker_stream *a = NULL, *in = NULL, *out = NULL, *sk = NULL;
	struct dmabroker_frame f, taken[2];

	CHECK(src && stage && sink);
	bd.buffers = 2;
	CHECK(dmabroker_stream_create(src, &ad, &a) == 0 && dmabroker_stream_join(stage, &ai, &in) == 0);
	CHECK(dmabroker_stream_create(stage, &bd, &out) == 0 && dmabroker_stream_join(sink, &bi, &sk) == 0);
	CHECK(all_ready(conns, 3, (struct dmabroker_stream *[]){ a, in, out, sk }, 4));
	/* no input yet: nothing is taken, not even an output buffer */
	CHECK(dmabroker_streams_take(2, (struct dmabroker_stream *[]){ in, out }, taken) == -EAGAIN);
	for (int i = 0; i < 2; i++) {
		CHECK(dmabroker_stream_dequeue(a, &f) == 0);
		CHECK(dmabroker_stream_queue(a, f.index, -1, (uint64_t)i + 1, 0, NULL, 0) == 0);
	}
	CHECK(dmabroker_streams_wait(2, (struct dmabroker_stream *[]){ in, out }, 5000) == 1);
	CHECK(dmabroker_streams_take(2, (struct dmabroker_stream *[]){ in, out }, taken) == 0);
	CHECK(taken[0].sequence == 1);
	CHECK(dmabroker_stream_queue(out, taken[1].index, -1, 1, 0, NULL, 0) == 0);
	dmabroker_stream_release(in, taken[0].index, -1);
	CHECK(dmabroker_streams_wait(2, (struct dmabroker_stream *[]){ in, out }, 5000) == 1);
	CHECK(dmabroker_streams_take(2, (struct dmabroker_stream *[]){ in, out }, taken) == 0);
	CHECK(taken[0].sequence == 2);
	CHECK(dmabroker_stream_queue(out, taken[1].index, -1, 2, 0, NULL, 0) == 0);
	dmabroker_stream_release(in, taken[0].index, -1);
	/* both output buffers are with the sink, which holds them: input waits, nothing taken */
	CHECK(dmabroker_stream_dequeue(a, &f) == 0);
	CHECK(dmabroker_stream_queue(a, f.index, -1, 3, 0, NULL, 0) == 0);
	CHECK(dmabroker_streams_wait(2, (struct dmabroker_stream *[]){ in, out }, 300) == 0);
	CHECK(dmabroker_streams_take(2, (struct dmabroker_stream *[]){ in, out }, taken) == -EAGAIN);
	for (int t = 0; t < 100 && dmabroker_stream_acquire(in, &f) == -EAGAIN; t++)
		pump(conns, 3, 10);
	CHECK(f.sequence == 3); /* it was there all along, untaken */
	dmabroker_stream_release(in, f.index, -1);
	/*
	 * The source leaves: the stage sees the end, its input having nothing left. Pumped until it has (the
	 * state), the generous bound only there to fail rather than hang; then take says so (-EPIPE), twice
	 * (the end stays), and the wait on both streams returns at once.
	 */
	dmabroker_stream_destroy(a);
	for (uint64_t end = monotonic_ms() + 30000; !dmabroker_stream_has_ended(in) && monotonic_ms() < end;)
		pump(conns, 3, 100);
	CHECK(dmabroker_stream_has_ended(in));
	CHECK(dmabroker_streams_take(2, (struct dmabroker_stream *[]){ in, out }, taken) == -EPIPE);
	CHECK(dmabroker_streams_wait(2, (struct dmabroker_stream *[]){ in, out }, 0) == 1);
	CHECK(dmabroker_streams_take(2, (struct dmabroker_stream *[]){ in, out }, taken) == -EPIPE);
	CHECK(dmabroker_stream_acquire(in, &f) == -EPIPE);
	dmabroker_stream_destroy(sk);
	dmabroker_stream_destroy(out);
	dmabroker_stream_destroy(in);
	for (unsigned i = 0; i < 3; i++)
		dmabroker_disconnect(conns[i]);
	CHECK(baseline_restored(base));
	return true;
}

/* ---- FIFO peer channels, spoken by hand ---- */

/* StreamBuffers by hand: the counters memfd and the (one, or first) channel, ours. */
static bool raw_buffers(sd_bus *d, uint64_t id, int *counters, int *channel, uint32_t *n_channels)
{
	sd_bus_message *reply = NULL;
	sd_bus_error e = SD_BUS_ERROR_NULL;
	uint32_t max_acquired, consumer;
	int fd, r = sd_bus_call_method(d, NULL, "/org/dmabroker/Broker1", "org.dmabroker.Broker1", "StreamBuffers", &e,
				       &reply, "t", id);

	*counters = *channel = -1;
	*n_channels = 0;
	if (r >= 0)
		r = sd_bus_message_skip(reply, "uuutssa(thta(tu))");
	if (r >= 0)
		r = sd_bus_message_read(reply, "u", &max_acquired);
	if (r >= 0)
		r = sd_bus_message_read(reply, "ah", 1, &fd);
	if (r >= 0)
		*counters = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (r >= 0)
		r = sd_bus_message_enter_container(reply, 'a', "(uh)");
	while (r >= 0 && (r = sd_bus_message_read(reply, "(uh)", &consumer, &fd)) > 0)
		if ((*n_channels)++ == 0)
			*channel = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (r < 0)
		tap_diag("StreamBuffers by hand: %s", e.message ? e.message : strerror(-r));
	sd_bus_error_free(&e);
	sd_bus_message_unref(reply);
	return r >= 0 && *counters >= 0 && *channel >= 0;
}

static uint64_t raw_stream(sd_bus *d, const char *method, const char *name, uint32_t consumers)
{
	sd_bus_message *reply = NULL;
	sd_bus_error e = SD_BUS_ERROR_NULL;
	uint64_t id = 0;
	int r = strcmp(method, "JoinStream") == 0
			? sd_bus_call_method(d, NULL, "/org/dmabroker/Broker1", "org.dmabroker.Broker1", method, &e,
					     &reply, "sa{sv}", name, 1, "label", "s", "by-hand")
			: sd_bus_call_method(d, NULL, "/org/dmabroker/Broker1", "org.dmabroker.Broker1", method, &e,
					     &reply, "sa{sv}", name, 5, "formats", "au", 1, DRM_FORMAT_XRGB8888,
					     "width", "u", W, "height", "u", H, "consumers", "u", consumers,
					     "label", "s", "by-hand");
	if (r >= 0)
		r = sd_bus_message_read(reply, "t", &id);
	if (r < 0)
		tap_diag("%s by hand: %s", method, e.message ? e.message : strerror(-r));
	sd_bus_error_free(&e);
	sd_bus_message_unref(reply);
	return id;
}

/* One message of the peer protocol, with pass_fd (-1: none), on channel fd: 0 or a negative errno. */
static int wire_send(int fd, uint32_t type, uint32_t index, uint64_t seq, int pass_fd)
{
	struct stream_wire w = { .type = type, .index = index, .sequence = seq };

	return fdmsg_send(fd, &w, STREAM_WIRE_SIZE(0), pass_fd);
}

static bool step_peer_channels(void)
{
	struct baseline base = baseline_take();
	struct dmabroker *p = connect_session(), *late = connect_session(), *c = connect_session();
	struct dmabroker *conns[] = { p, late, c };
	struct dmabroker_stream_desc pd = producer_desc("peer", DMABROKER_STREAM_FIFO, 1);
	struct dmabroker_stream_desc ld = consumer_desc("peer", "late");
	struct dmabroker_stream *ps = NULL, *ls = NULL, *cs = NULL;
	struct dmabroker_frame f;
	struct stream_wire w;
	struct counters cnt;
	/*
	 * Direct connections of clients of their own, to speak the protocol
	 * without libdmabroker. Their bus connections are closed at once, so the
	 * clients live on their direct connections alone: the daemon used to spin
	 * at full CPU then, serving nobody (an sd_bus_track handler called for
	 * ever), and the second call here timed out.
	 */
	sd_bus *raw = raw_direct(NULL), *rawp = raw_direct(NULL);
	sd_bus_error e = SD_BUS_ERROR_NULL;
	int counters = -1, chan = -1, pipefd[2], fds_before, r, back = 0;
	uint32_t n_chan;
	uint64_t id;

	CHECK(p && late && c && raw && rawp && pipe2(pipefd, O_CLOEXEC) == 0);
	/* a consumer by hand: a memfd it cannot shrink under the daemon, and its end of the channel */
	CHECK(dmabroker_stream_create(p, &pd, &ps) == 0);
	id = raw_stream(raw, "JoinStream", "peer", 0);
	CHECK(id == dmabroker_stream_get_id(ps));
	CHECK(raw_buffers(raw, id, &counters, &chan, &n_chan) && n_chan == 1);
	CHECK(ftruncate(counters, 0) < 0 && errno == EPERM);
	CHECK(all_ready(conns, 1, &ps, 1));
	/* FIFO frames do not go through the daemon: it says so */
	r = sd_bus_call_method(raw, NULL, "/org/dmabroker/Broker1", "org.dmabroker.Broker1", "ReleaseFrame", &e, NULL,
			       "tuah", id, 0, 0);
	tap_diag("ReleaseFrame on a FIFO stream: %s: %s", e.name, e.message);
	CHECK(r < 0 && sd_bus_error_has_name(&e, "org.dmabroker.Error.InvalidArgument") && strstr(e.message, "peer"));
	sd_bus_error_free(&e);
	/* misuse of the library: a buffer not dequeued, a frame not held */
	CHECK(dmabroker_stream_queue(ps, 0, -1, 1, 0, NULL, 0) == -EBUSY);
	/* a frame reaches the hand-made consumer on its channel, in one message */
	CHECK(dmabroker_stream_dequeue(ps, &f) == 0);
	CHECK(dmabroker_stream_queue(ps, f.index, -1, 42, 0, NULL, 0) == 0);
	CHECK(dmabroker_stream_queue(ps, f.index, -1, 43, 0, NULL, 0) == -EBUSY);
	{
		struct pollfd pfd = { .fd = chan, .events = POLLIN };
		CHECK(poll(&pfd, 1, 5000) == 1);
		CHECK(recv(chan, &w, sizeof(w), 0) == (ssize_t)STREAM_WIRE_SIZE(0));
		CHECK(w.type == STREAM_WIRE_FRAME && w.index == f.index && w.sequence == 42);
	}
	/* a consumer that releases a buffer it does not hold is cut off: the producer gets every buffer back */
	CHECK(wire_send(chan, STREAM_WIRE_RELEASE, (f.index + 1) % 4, 0, -1) == 0);
	for (int t = 0; t < 200 && back < 4; t++) {
		while (dmabroker_stream_dequeue(ps, &f) == 0) {
			back++;
			CHECK(f.fence < 0);
		}
		pump(conns, 1, 10);
	}
	CHECK(back == 4);
	/* and is told so: its channel ends, though the daemon holds a copy of it */
	CHECK(recv(chan, &w, sizeof(w), MSG_DONTWAIT) == 0);
	/* and goes on: a consumer joining the running stream gets the frames (ConsumerJoined) */
	CHECK(dmabroker_stream_join(late, &ld, &ls) == 0);
	CHECK(all_ready(conns, 2, (struct dmabroker_stream *[]){ ps, ls }, 2));
	CHECK(dmabroker_stream_queue(ps, f.index, -1, 7, 0, NULL, 0) == 0);
	for (int t = 0; t < 200 && dmabroker_stream_acquire(ls, &f) == -EAGAIN; t++)
		pump(conns, 2, 10);
	CHECK(f.sequence == 7);
	CHECK(dmabroker_stream_release(ls, (f.index + 1) % 4, -1) == -EINVAL); /* not one it holds */
	CHECK(dmabroker_stream_release(ls, f.index, -1) == 0);
	for (int t = 0; t < 200 && dmabroker_stream_dequeue(ps, &f) == -EAGAIN; t++)
		pump(conns, 2, 10);
	CHECK(f.sequence == 0 && dmabroker_stream_queue(ps, f.index, -1, 8, 0, NULL, 0) == 0);
	CHECK(stream_counters(id, &cnt));
	tap_diag("after a bad consumer was cut off and a late one joined: produced %" PRIu64 ", consumed %" PRIu64,
		 cnt.produced, cnt.consumed);
	CHECK(cnt.produced == 3 && cnt.consumed == 1);

	/* a producer by hand sends a frame whose fence is a pipe: the consumer sees the stream end, leaks nothing */
	CHECK(dmabroker_open_direct(c) == 0);
	fds_before = self_fd_count();
	id = raw_stream(rawp, "CreateStream", "peer-bad-producer", 1);
	CHECK(id > 0);
	CHECK(dmabroker_stream_join(c, &(struct dmabroker_stream_desc){ .version = DMABROKER_STREAM_DESC_VERSION,
				    .name = "peer-bad-producer", .usage = DMABROKER_USAGE_CPU_READ_FLAG }, &cs) == 0);
	{
		int pc = -1, pchan = -1;
		uint32_t pn;
		CHECK(raw_buffers(rawp, id, &pc, &pchan, &pn) && pn == 1);
		CHECK(all_ready(&conns[2], 1, &cs, 1));
		CHECK(wire_send(pchan, STREAM_WIRE_FRAME, 0, 1, pipefd[0]) == 0);
		for (int t = 0; t < 200 && !dmabroker_stream_has_ended(cs); t++)
			pump(&conns[2], 1, 10);
		CHECK(dmabroker_stream_has_ended(cs));
		CHECK(dmabroker_stream_acquire(cs, &f) == -EPIPE);
		dmabroker_stream_destroy(cs);
		close(pc);
		close(pchan);
	}
	CHECK(self_fd_count() == fds_before);

	close(pipefd[0]);
	close(pipefd[1]);
	close(counters);
	close(chan);
	sd_bus_flush_close_unref(rawp);
	sd_bus_flush_close_unref(raw);
	dmabroker_stream_destroy(ls);
	dmabroker_stream_destroy(ps);
	for (unsigned i = 0; i < 3; i++)
		dmabroker_disconnect(conns[i]);
	CHECK(baseline_restored(base));
	return true;
}

/* Waits until the daemon has ended stream id (its producer left): it has shut the channels and sent StreamEnded. */
static bool daemon_ended(uint64_t id)
{
	struct counters cnt;

	for (int t = 0; t < 500; t++) {
		if (stream_counters(id, &cnt) && strcmp(cnt.state, "ended") == 0)
			return true;
		usleep(10000);
	}
	return false;
}

/*
 * The end of a stream reaches a consumer after its last frames, whatever the
 * order it learns of them in. Here the consumer is behind, as a processing
 * stage is when its camera stops: it has released a frame its producer never
 * read, the producer queues its last frames and leaves, and only then does
 * the consumer look. Every frame must still arrive, then the end. (It used
 * to lose them: the release left unread made the channel's first read fail
 * with ECONNRESET, a release sent after the producer left failed with EPIPE,
 * and StreamEnded on the bus could overtake the frames on the channel; each
 * closed the channel with the last frames still in it, and the consumer saw
 * the end.)
 */
static bool step_tail_frames(void)
{
	struct baseline base = baseline_take();
	struct dmabroker *p = connect_session(), *c = connect_session();
	struct dmabroker *conns[] = { p, c };
	struct dmabroker_stream_desc pd = producer_desc("tail", DMABROKER_STREAM_FIFO, 1);
	struct dmabroker_stream_desc cd = consumer_desc("tail", "behind");
	struct dmabroker_stream *ps = NULL, *cs = NULL;
	struct dmabroker_frame f;
	uint64_t id, last = 0;
	int r, got = 0, queued = 0;

	CHECK(p && c);
	cd.max_acquired = 1; /* as dmabroker-process takes its input */
	CHECK(dmabroker_stream_create(p, &pd, &ps) == 0);
	CHECK(dmabroker_stream_join(c, &cd, &cs) == 0);
	CHECK(all_ready(conns, 2, (struct dmabroker_stream *[]){ ps, cs }, 2));
	id = dmabroker_stream_get_id(ps);
	/* frame 1 goes through; its release waits unread on the producer's side */
	CHECK(dmabroker_stream_dequeue(ps, &f) == 0);
	CHECK(dmabroker_stream_queue(ps, f.index, -1, (uint64_t)++queued, 0, NULL, 0) == 0);
	for (int t = 0; t < 200 && (r = dmabroker_stream_acquire(cs, &f)) == -EAGAIN; t++)
		pump(&conns[1], 1, 10);
	CHECK(r == 0 && f.sequence == 1);
	CHECK(dmabroker_stream_release(cs, f.index, -1) == 0);
	last = f.sequence;
	got++;
	/* the producer queues its three other buffers, unread by the consumer, and leaves */
	while (queued < 4) {
		CHECK(dmabroker_stream_dequeue(ps, &f) == 0);
		CHECK(dmabroker_stream_queue(ps, f.index, -1, (uint64_t)++queued, 0, NULL, 0) == 0);
	}
	dmabroker_stream_destroy(ps);
	dmabroker_disconnect(p);
	CHECK(daemon_ended(id));
	/* now the consumer looks: frames 2, 3 and 4, in order, then the end */
	for (;;) {
		r = dmabroker_stream_acquire(cs, &f);
		if (r == -EAGAIN) {
			CHECK(dmabroker_stream_wait(cs, 10000) == 1);
			continue;
		}
		if (r == -EPIPE)
			break;
		CHECK(r == 0);
		CHECK(f.sequence == last + 1);
		last = f.sequence;
		got++;
		CHECK(dmabroker_stream_release(cs, f.index, -1) == 0);
	}
	tap_diag("the producer queued %d frames and left; the consumer behind it got %d, then the end", queued, got);
	CHECK(got == queued);
	CHECK(dmabroker_stream_has_ended(cs));
	dmabroker_stream_destroy(cs);
	dmabroker_disconnect(c);
	CHECK(baseline_restored(base));
	return true;
}

/*
 * The same in mailbox mode: the newest frame waits in the daemon for a
 * consumer at its max-acquired, and still reaches it after the producer
 * left, before the end. (StreamEnded used to come first, and the frame
 * sent once the consumer let go of its own came after the end it had seen.)
 */
static bool step_tail_frame_mailbox(void)
{
	struct baseline base = baseline_take();
	struct dmabroker *p = connect_session(), *c = connect_session();
	struct dmabroker *conns[] = { p, c };
	struct dmabroker_stream_desc pd = producer_desc("tail-mbox", DMABROKER_STREAM_MAILBOX, 1);
	struct dmabroker_stream_desc cd = consumer_desc("tail-mbox", "holding");
	struct dmabroker_stream *ps = NULL, *cs = NULL;
	struct dmabroker_frame f, held;
	uint64_t id, last = 0;
	int r, queued = 0;

	CHECK(p && c);
	CHECK(dmabroker_stream_create(p, &pd, &ps) == 0);
	CHECK(dmabroker_stream_join(c, &cd, &cs) == 0);
	CHECK(all_ready(conns, 2, (struct dmabroker_stream *[]){ ps, cs }, 2));
	id = dmabroker_stream_get_id(ps);
	/* the consumer holds frame 1 (its max-acquired); frames 2 to 4 replace each other in the daemon */
	CHECK(dmabroker_stream_dequeue(ps, &f) == 0);
	CHECK(dmabroker_stream_queue(ps, f.index, -1, (uint64_t)++queued, 0, NULL, 0) == 0);
	for (int t = 0; t < 200 && (r = dmabroker_stream_acquire(cs, &held)) == -EAGAIN; t++)
		pump(conns, 2, 10);
	CHECK(r == 0 && held.sequence == 1);
	while (queued < 4) {
		for (int t = 0; t < 200 && (r = dmabroker_stream_dequeue(ps, &f)) == -EAGAIN; t++)
			pump(conns, 2, 10);
		CHECK(r == 0);
		if (f.fence >= 0)
			close(f.fence);
		CHECK(dmabroker_stream_queue(ps, f.index, -1, (uint64_t)++queued, 0, NULL, 0) == 0);
	}
	dmabroker_stream_destroy(ps);
	dmabroker_disconnect(p);
	CHECK(daemon_ended(id));
	pump(&conns[1], 1, 10);
	/* it lets go of frame 1: frame 4 comes, then the end */
	CHECK(dmabroker_stream_release(cs, held.index, -1) == 0);
	for (;;) {
		r = dmabroker_stream_acquire(cs, &f);
		if (r == -EAGAIN) {
			CHECK(dmabroker_stream_wait(cs, 10000) == 1);
			continue;
		}
		if (r == -EPIPE)
			break;
		CHECK(r == 0);
		last = f.sequence;
		CHECK(dmabroker_stream_release(cs, f.index, -1) == 0);
	}
	tap_diag("mailbox: the producer queued %d frames and left; the last the consumer got: %" PRIu64, queued, last);
	CHECK(last == (uint64_t)queued);
	dmabroker_stream_destroy(cs);
	dmabroker_disconnect(c);
	CHECK(baseline_restored(base));
	return true;
}

/* Mailbox frames go through the daemon, damage and all; more than it carries (16) is the whole frame. */
static bool step_mailbox_damage(void)
{
	struct baseline base = baseline_take();
	struct dmabroker *p = connect_session(), *c = connect_session();
	struct dmabroker *conns[] = { p, c };
	struct dmabroker_stream_desc pd = producer_desc("damage-mbox", DMABROKER_STREAM_MAILBOX, 1);
	struct dmabroker_stream_desc cd = consumer_desc("damage-mbox", "damage");
	struct dmabroker_stream *ps = NULL, *cs = NULL;
	int32_t two[2][4] = { { 1, 2, 3, 4 }, { 10, 20, 30, 40 } }, many[17][4];
	struct dmabroker_frame f, got;
	int r;

	CHECK(p && c);
	for (int i = 0; i < 17; i++) {
		many[i][0] = i;
		many[i][1] = i;
		many[i][2] = 1;
		many[i][3] = 1;
	}
	CHECK(dmabroker_stream_create(p, &pd, &ps) == 0);
	CHECK(dmabroker_stream_join(c, &cd, &cs) == 0);
	CHECK(all_ready(conns, 2, (struct dmabroker_stream *[]){ ps, cs }, 2));
	for (int round = 0; round < 2; round++) {
		for (int t = 0; t < 500 && (r = dmabroker_stream_dequeue(ps, &f)) == -EAGAIN; t++)
			pump(conns, 2, 10);
		CHECK(r == 0);
		if (f.fence >= 0)
			close(f.fence);
		r = round ? dmabroker_stream_queue(ps, f.index, -1, 2, 0, (const int32_t(*)[4])many, 17)
			  : dmabroker_stream_queue(ps, f.index, -1, 1, 0, (const int32_t(*)[4])two, 2);
		CHECK(r == 0);
		for (int t = 0; t < 500 && (r = dmabroker_stream_acquire(cs, &got)) == -EAGAIN; t++)
			pump(conns, 2, 10);
		CHECK(r == 0 && got.sequence == (uint64_t)round + 1);
		if (got.fence >= 0)
			close(got.fence);
		tap_diag("frame %d: %d rectangles queued, %u came", round + 1, round ? 17 : 2, got.n_damage);
		if (round == 0)
			CHECK(got.n_damage == 2 && memcmp(got.damage, two, sizeof(two)) == 0);
		else
			CHECK(got.n_damage == 0); /* the whole frame */
		CHECK(dmabroker_stream_release(cs, got.index, -1) == 0);
	}
	dmabroker_stream_destroy(cs);
	dmabroker_stream_destroy(ps);
	dmabroker_disconnect(c);
	dmabroker_disconnect(p);
	CHECK(baseline_restored(base));
	return true;
}

/* Whether the test bed has a DRM device of driver (its MODALIAS platform:DRIVER, as vkms and vgem have). */
static bool have_platform_drm(const char *driver)
{
	char path[64], line[128], want[64];
	bool found = false;

	snprintf(want, sizeof(want), "MODALIAS=platform:%s\n", driver);
	for (int i = 0; i < 16 && !found; i++) {
		FILE *f;
		snprintf(path, sizeof(path), "/sys/class/drm/card%d/device/uevent", i);
		f = fopen(path, "re");
		if (!f)
			continue;
		while (!found && fgets(line, sizeof(line), f))
			found = strcmp(line, want) == 0;
		fclose(f);
	}
	return found;
}

/*
 * Placement for a party whose device reads only buffers allocated on it
 * (DMABROKER_STREAM_NATIVE: Mesa's kms_swrast on vkms): the buffers go to
 * that device, though it imports foreign dma-bufs; two parties that each
 * need their own device fail negotiation, naming both.
 */
static bool step_native_placement(void)
{
	struct baseline base = baseline_take();
	struct dmabroker *p = connect_session(), *c1 = connect_session(), *c2 = connect_session();
	struct dmabroker *conns[] = { p, c1, c2 };
	const char *vkms[] = { "vkms" }, *vgem[] = { "vgem" };
	struct dmabroker_stream_desc pd = producer_desc("native", DMABROKER_STREAM_FIFO, 1);
	struct dmabroker_stream_desc cd1 = consumer_desc("native", "gl-on-vkms"), cd2;
	struct dmabroker_stream *ps = NULL, *cs1 = NULL, *cs2 = NULL;

	CHECK(p && c1 && c2);
	CHECK(have_platform_drm("vkms") && have_platform_drm("vgem"));
	/* without the flag, a device that imports foreign dma-bufs places nothing */
	cd1.devices = vkms;
	cd1.n_devices = 1;
	cd1.usage = DMABROKER_USAGE_GPU_FLAG;
	CHECK(dmabroker_stream_create(p, &pd, &ps) == 0);
	CHECK(dmabroker_stream_join(c1, &cd1, &cs1) == 0);
	CHECK(all_ready(conns, 2, (struct dmabroker_stream *[]){ ps, cs1 }, 2));
	tap_diag("devices vkms, not native: on %s", dmabroker_stream_get_backend(cs1));
	dmabroker_stream_destroy(cs1);
	dmabroker_stream_destroy(ps);
	/* with it, the buffers are vkms's own */
	cd1.flags = DMABROKER_STREAM_NATIVE;
	CHECK(dmabroker_stream_create(p, &pd, &ps) == 0);
	CHECK(dmabroker_stream_join(c1, &cd1, &cs1) == 0);
	CHECK(all_ready(conns, 2, (struct dmabroker_stream *[]){ ps, cs1 }, 2));
	tap_diag("devices vkms, native: on %s", dmabroker_stream_get_backend(cs1));
	CHECK(strcmp(dmabroker_stream_get_backend(cs1), "drm:vkms") == 0);
	CHECK(strcmp(dmabroker_stream_get_backend(ps), "drm:vkms") == 0);
	dmabroker_stream_destroy(cs1);
	dmabroker_stream_destroy(ps);
	/* two parties, each native to its own device: refused, both named */
	pd = producer_desc("native2", DMABROKER_STREAM_FIFO, 2);
	cd1 = consumer_desc("native2", "gl-on-vkms");
	cd1.devices = vkms;
	cd1.n_devices = 1;
	cd1.flags = DMABROKER_STREAM_NATIVE;
	cd2 = cd1;
	cd2.label = "gl-on-vgem";
	cd2.devices = vgem;
	CHECK(dmabroker_stream_create(p, &pd, &ps) == 0);
	CHECK(dmabroker_stream_join(c1, &cd1, &cs1) == 0);
	CHECK(dmabroker_stream_join(c2, &cd2, &cs2) == 0);
	CHECK(expect_error(c2, dmabroker_stream_wait_ready(cs2, 5000), EPROTO, "org.dmabroker.Error.NegotiationFailed"));
	tap_diag("%s", dmabroker_error_message(c2));
	CHECK(strstr(dmabroker_error_message(c2), "gl-on-vkms") && strstr(dmabroker_error_message(c2), "gl-on-vgem") &&
	      strstr(dmabroker_error_message(c2), "each reads only buffers allocated on it"));
	dmabroker_stream_destroy(cs2);
	dmabroker_stream_destroy(cs1);
	dmabroker_stream_destroy(ps);

	dmabroker_disconnect(c2);
	dmabroker_disconnect(c1);
	dmabroker_disconnect(p);
	CHECK(baseline_restored(base));
	return true;
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--fences") == 0)
			fences = true;
		else if (strcmp(argv[i], "--frames") == 0 && i + 1 < argc)
			frames = atoi(argv[++i]);
		else {
			fprintf(stderr, "usage: stream-test [--fences] [--frames N]\n");
			return 2;
		}
	}
	if (!daemon_pid_from_env("stream-test"))
		return 2;
	tap_plan(12);
	tap_step("negotiation: the first common format; refusals name the party and what; bad requests",
		 step_negotiation);
	tap_step("negotiation allocates as the producer: charged first, nothing kept when it fails or a party leaves",
		 step_negotiation_allocates);
	tap_step(fences ? "fifo: two consumers get every frame in order, intact, with pending ready and release fences"
			: "fifo: two consumers get every frame in order, intact",
		 step_fifo_content);
	tap_step("mailbox: a stalled consumer drops frames; the producer and the other consumer go on",
		 step_mailbox_drops);
	tap_step("fifo: a stalled consumer holds back its producer only; another stream runs on (with damage)",
		 step_fifo_backpressure);
	tap_step("a consumer killed mid-stream: the others go on, its buffers come back, the end is seen",
		 step_consumer_killed);
	tap_step("a stage takes its input frame and output buffer together, or neither", step_take_both);
	tap_step("fifo peer channels: frames skip the daemon; a lying consumer is cut off, a lying producer ends "
		 "the stream, a late consumer joins; nothing leaks", step_peer_channels);
	tap_step("fifo: a consumer behind its producer gets the last frames the producer queued before it left, "
		 "then the end", step_tail_frames);
	tap_step("mailbox: the newest frame reaches a consumer at its limit after the producer left, then the end",
		 step_tail_frame_mailbox);
	tap_step("mailbox: damage travels through the daemon; more than 16 rectangles are the whole frame",
		 step_mailbox_damage);
	if (fences)
		tap_step("placement: a party's device that reads only its own buffers (native) gets them; two such "
			 "devices are refused, both named", step_native_placement);
	else
		tap_skip("placement: a party's device that reads only its own buffers (native) gets them",
			 "needs DRM devices: runs in the test bed (stream-fences)");
	return tap_done();
}

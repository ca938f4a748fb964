/* SPDX-License-Identifier: MIT */
/*
 * bigbuf-test: buffers above 4 GiB, on a 32-bit and a 64-bit client. A
 * client whose size_t cannot hold a buffer's size (a 32-bit one: 4 GiB - 1
 * at most) is refused it, by name (TooLarge, -EFBIG), on every path a
 * buffer arrives by (Allocate on D-Bus and on the access channel, its
 * asynchronous form, OpenToken, Import, a stream's buffers), and the daemon
 * is left holding nothing for it; never a buffer whose size it would
 * truncate. A 64-bit client gets them whole: the size exact, the last byte
 * there. Run with the x86-64 daemon and an i386 client, and the other way
 * round (tests/i386/meson.build), against tests/integration/bigbuf.conf.
 *
 * usage: bigbuf-test (under tests/common/with-daemon.py). Output is TAP.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <drm_fourcc.h>

#include "tap.h"
#include "broker-util.h"
#include "fd-util.h"

TAP_DEFINE;

/* A client that cannot map a buffer above 4 GiB: a 32-bit one. */
static const bool narrow = SIZE_MAX < UINT64_MAX;

#define GIB (1ull << 30)

/* 40960 x 32768 XRGB8888: 5 GiB. Its least size is over 4 GiB already: a 32-bit client refuses it unasked. */
static const struct dmabroker_alloc_desc five_gib = {
	.version = DMABROKER_ALLOC_DESC_VERSION, .width = 40960, .height = 32768, .fourcc = DRM_FORMAT_XRGB8888,
	.usage = CPU_RW,
};
#define FIVE_GIB (5 * GIB)

/*
 * 16385 x 65500 XRGB8888: rows of 65540 bytes, 4 292 870 144 in all (page
 * aligned), under 4 GiB; but the daemon aligns rows to 64 bytes (65600), and
 * the buffer it makes is 4 296 802 304 bytes, over. Only the daemon's answer
 * tells: the library must check what comes back, not only what it asks for.
 */
static const struct dmabroker_alloc_desc just_over = {
	.version = DMABROKER_ALLOC_DESC_VERSION, .width = 16385, .height = 65500, .fourcc = DRM_FORMAT_XRGB8888,
	.usage = CPU_RW,
};
#define JUST_OVER (65600ull * 65500 + 4096 - 1) / 4096 * 4096

/* 32768 x 24576 XRGB8888: 3 GiB, which a 32-bit size_t holds. */
static const struct dmabroker_alloc_desc three_gib = {
	.version = DMABROKER_ALLOC_DESC_VERSION, .width = 32768, .height = 24576, .fourcc = DRM_FORMAT_XRGB8888,
	.usage = CPU_RW,
};

/* The buffer's size is what the daemon made, and its last byte is there: written and read back through its fd. */
static bool whole(struct dmabroker_buffer *buf, uint64_t want)
{
	int fd = dmabroker_buffer_get_fd(buf);
	uint8_t v = 0xa5, back = 0;

	CHECKF(dmabroker_buffer_get_size(buf) == want, "size %" PRIu64 ", want %" PRIu64,
	       dmabroker_buffer_get_size(buf), want);
	CHECK(pwrite(fd, &v, 1, (off_t)(want - 1)) == 1);
	CHECK(pread(fd, &back, 1, (off_t)(want - 1)) == 1 && back == v);
	CHECK(lseek(fd, 0, SEEK_END) == (off_t)want);
	return true;
}

/* dmabroker_allocate() of desc: refused as TooLarge on a 32-bit client, a whole buffer of want bytes on a 64-bit one. */
static bool allocate(struct dmabroker *b, const struct dmabroker_alloc_desc *desc, uint64_t want)
{
	struct dmabroker_buffer *buf = NULL;
	int r = dmabroker_allocate(b, desc, &buf);

	if (narrow) {
		CHECK(expect_error(b, r, EFBIG, ERR("TooLarge")));
		CHECK(!buf);
		return true;
	}
	CHECKF(r == 0 && buf, "allocate %ux%u: %d (%s)", desc->width, desc->height, r, dmabroker_error_message(b));
	CHECK(whole(buf, want));
	dmabroker_buffer_release(buf);
	return true;
}

static bool step_allocate_bus(void)
{
	struct baseline base = baseline_take();
	struct dmabroker *b = connect_session();

	CHECK(b);
	CHECK(allocate(b, &five_gib, FIVE_GIB));
	CHECK(allocate(b, &just_over, JUST_OVER));
	dmabroker_disconnect(b);
	CHECK(baseline_restored(base));
	return true;
}

static bool step_allocate_channel(void)
{
	struct baseline base = baseline_take();
	struct dmabroker *b = connect_session();
	struct dmabroker_channel_stats before = { .version = DMABROKER_CHANNEL_STATS_VERSION }, after = before;

	CHECK(b && dmabroker_open_direct(b) == 0);
	CHECK(dmabroker_get_channel_stats(b, &before) == 0 && before.active);
	CHECK(allocate(b, &five_gib, FIVE_GIB));
	CHECK(allocate(b, &just_over, JUST_OVER));
	CHECK(dmabroker_get_channel_stats(b, &after) == 0 && after.active);
	/* the second went on the channel (the first never left a 32-bit client); none fell back to D-Bus */
	CHECKF(after.channel_calls > before.channel_calls && after.dbus_calls == before.dbus_calls,
	       "channel calls %" PRIu64 " -> %" PRIu64 ", D-Bus calls %" PRIu64 " -> %" PRIu64, before.channel_calls,
	       after.channel_calls, before.dbus_calls, after.dbus_calls);
	dmabroker_disconnect(b);
	CHECK(baseline_restored(base));
	return true;
}

/* dmabroker_allocate_async() of desc, as allocate(); refused before the call when refused_at_once (32-bit). */
static bool allocate_async(struct dmabroker *b, const struct dmabroker_alloc_desc *desc, uint64_t want,
			   bool refused_at_once)
{
	struct async_result a = { 0 };
	int r = dmabroker_allocate_async(b, desc, on_async_allocated, &a);

	if (narrow && refused_at_once) {
		CHECK(expect_error(b, r, EFBIG, ERR("TooLarge")) && a.done == 0);
		return true;
	}
	CHECK(r >= 0);
	for (int i = 0; i < 10000 && !a.done; i++)
		if (dmabroker_process(b) == 0)
			usleep(1000);
	CHECK(a.done == 1);
	if (narrow) {
		CHECK(expect_error(b, a.error, EFBIG, ERR("TooLarge")) && !a.buf);
		return true;
	}
	CHECK(a.error == 0 && a.buf && whole(a.buf, want));
	dmabroker_buffer_release(a.buf);
	return true;
}

static bool step_allocate_async(void)
{
	struct baseline base = baseline_take();
	struct dmabroker *b = connect_session();

	CHECK(b);
	CHECK(allocate_async(b, &five_gib, FIVE_GIB, true));
	CHECK(allocate_async(b, &just_over, JUST_OVER, false));
	dmabroker_disconnect(b);
	CHECK(baseline_restored(base));
	return true;
}

/* A 5 GiB buffer allocated on bus by hand (no library: any client can hold one), and a token for it. */
static bool hand_allocate(sd_bus *bus, uint64_t *ret_id, char **ret_token)
{
	sd_bus_error e = SD_BUS_ERROR_NULL;
	sd_bus_message *reply = NULL;
	const char *token;
	int fd, r;

	r = sd_bus_call_method(bus, BUS_NAME, PATH, IFACE, "Allocate", &e, &reply, "uuuatua{sv}", five_gib.width,
			       five_gib.height, five_gib.fourcc, 0, five_gib.usage, 0);
	if (r >= 0)
		r = sd_bus_message_read(reply, "th", ret_id, &fd);
	reply = sd_bus_message_unref(reply);
	if (r >= 0)
		r = sd_bus_call_method(bus, BUS_NAME, PATH, IFACE, "CreateToken", &e, &reply, "tuu", *ret_id, 0, 0);
	if (r >= 0)
		r = sd_bus_message_read(reply, "s", &token);
	if (r >= 0)
		*ret_token = strdup(token);
	sd_bus_message_unref(reply);
	if (r < 0)
		tap_diag("by hand: %s %s", strerror(-r), e.message ? e.message : "");
	sd_bus_error_free(&e);
	return r >= 0 && *ret_token;
}

static bool step_open_token(void)
{
	struct baseline base = baseline_take();
	struct dmabroker *b = connect_session();
	struct dmabroker_buffer *buf = NULL;
	struct listed_buffer e;
	sd_bus *bus = NULL;
	char *token = NULL;
	uint64_t id = 0;
	int r;

	CHECK(b && sd_bus_open_user(&bus) >= 0);
	CHECK(hand_allocate(bus, &id, &token));
	r = dmabroker_open_token(b, token, &buf);
	free(token);
	if (narrow) {
		CHECK(expect_error(b, r, EFBIG, ERR("TooLarge")) && !buf);
	} else {
		CHECK(r == 0 && buf && whole(buf, FIVE_GIB));
		CHECK(listed_buffer_find(NULL, id, &e) == 1 && e.holders == 2);
		dmabroker_buffer_release(buf);
	}
	/* the library gave its hold back: the hand client's alone is left (Release is one-way: give it a moment) */
	for (int i = 0; i < 200 && (r = listed_buffer_find(NULL, id, &e)) == 1 && e.holders != 1; i++)
		usleep(10000);
	CHECKF(r == 1 && e.holders == 1, "buffer %" PRIu64 ": listed %d, %u holders, want 1", id, r, e.holders);
	sd_bus_flush_close_unref(bus);
	dmabroker_disconnect(b);
	CHECK(baseline_restored(base));
	return true;
}

static bool step_import(void)
{
	struct baseline base = baseline_take();
	struct dmabroker *b = connect_session();
	struct dmabroker_plane plane = { .offset = 0, .stride = 40960 * 4 };
	struct dmabroker_buffer *buf = NULL;
	int fd = memfd_create("bigbuf-test", MFD_CLOEXEC), r;

	CHECK(b && fd >= 0 && ftruncate(fd, (off_t)FIVE_GIB) == 0);
	r = dmabroker_import(b, fd, five_gib.width, five_gib.height, five_gib.fourcc, DRM_FORMAT_MOD_LINEAR, &plane, 1,
			     CPU_RW, &buf);
	/* a 64-bit client sends it, and the daemon judges the fd (a memfd is no dma-buf); a 32-bit one refuses first */
	if (narrow)
		CHECK(expect_error(b, r, EFBIG, ERR("TooLarge")));
	else
		CHECK(expect_error(b, r, EBADFD, ERR("NotADmaBuf")));
	CHECK(!buf);
	close(fd);
	dmabroker_disconnect(b);
	CHECK(baseline_restored(base));
	return true;
}

/* Runs both connections until each stream is ready or refused (10 s at most): its answer in r[0] (ps), r[1] (cs). */
static void settle(struct dmabroker *p, struct dmabroker_stream *ps, struct dmabroker *c, struct dmabroker_stream *cs,
		   int r[2], bool named[2])
{
	struct dmabroker *bs[2] = { p, c };
	struct dmabroker_stream *ss[2] = { ps, cs };

	r[0] = r[1] = -ETIMEDOUT;
	for (int i = 0; i < 10000 && (r[0] == -ETIMEDOUT || r[1] == -ETIMEDOUT); i++) {
		dmabroker_process(p);
		dmabroker_process(c);
		for (int k = 0; k < 2; k++)
			if (r[k] == -ETIMEDOUT && (r[k] = dmabroker_stream_wait_ready(ss[k], 0)) != -ETIMEDOUT)
				named[k] = r[k] == 0 || expect_error(bs[k], r[k], EFBIG, ERR("TooLarge"));
		usleep(1000);
	}
}

static bool step_stream(void)
{
	struct baseline base = baseline_take();
	static const uint32_t formats[] = { DRM_FORMAT_XRGB8888 };
	struct dmabroker *p = connect_session(), *c = connect_session();
	struct dmabroker_stream_desc pd = {
		.version = DMABROKER_STREAM_DESC_VERSION, .name = "bigbuf-test", .usage = CPU_RW, .formats = formats,
		.n_formats = 1, .width = five_gib.width, .height = five_gib.height, .consumers = 1, .buffers = 2,
		.mode = DMABROKER_STREAM_MAILBOX,
	};
	struct dmabroker_stream_desc cd = {
		.version = DMABROKER_STREAM_DESC_VERSION, .name = "bigbuf-test", .usage = CPU_RW, .formats = formats,
		.n_formats = 1,
	};
	struct dmabroker_stream *ps = NULL, *cs = NULL;
	bool named[2] = { false, false };
	uint8_t *map = NULL;
	int r[2];

	CHECK(p && c);
	CHECK(dmabroker_stream_create(p, &pd, &ps) == 0 && dmabroker_stream_join(c, &cd, &cs) == 0);
	settle(p, ps, c, cs, r, named);
	tap_diag("producer: %d, consumer: %d", r[0], r[1]);
	if (narrow) {
		/* each party is refused the buffers it cannot map, by name */
		CHECK(r[0] == -EFBIG && named[0] && r[1] == -EFBIG && named[1]);
	} else {
		CHECK(r[0] == 0 && r[1] == 0);
		CHECK(whole(dmabroker_stream_get_buffer(cs, 1), FIVE_GIB));
		/* mapped whole: the last byte the consumer wrote through its fd is there */
		CHECK(dmabroker_stream_cpu_begin(ps, 1, DMABROKER_ACCESS_READ, -1, 1000, (void **)&map) == 0 && map);
		CHECK(map[FIVE_GIB - 1] == 0xa5);
		CHECK(dmabroker_stream_cpu_end(ps, 1) == 0);
	}
	dmabroker_stream_destroy(cs);
	dmabroker_stream_destroy(ps);
	dmabroker_disconnect(c);
	dmabroker_disconnect(p);
	CHECK(baseline_restored(base));
	return true;
}

static bool step_three_gib(void)
{
	struct baseline base = baseline_take();
	struct dmabroker *b = connect_session();
	struct dmabroker_buffer *buf = NULL;
	int r;

	CHECK(b);
	r = dmabroker_allocate(b, &three_gib, &buf);
	CHECKF(r == 0 && buf, "allocate 3 GiB: %d (%s)", r, dmabroker_error_message(b));
	CHECK(whole(buf, 3 * GIB));
	dmabroker_buffer_release(buf);
	dmabroker_disconnect(b);
	CHECK(baseline_restored(base));
	return true;
}

int main(void)
{
	if (!daemon_pid_from_env("bigbuf-test"))
		return 2;
	tap_plan(7);
	tap_diag("this client is %zu-bit: its size_t holds %zu at most", sizeof(void *) * 8, (size_t)SIZE_MAX);
	tap_step("Allocate on D-Bus above 4 GiB, asked for or made: TooLarge on a 32-bit client, nothing left held; "
		 "whole on a 64-bit one", step_allocate_bus);
	tap_step("Allocate on the access channel, the same", step_allocate_channel);
	tap_step("Allocate asynchronously, the same (a 32-bit client refuses 5 GiB at once, and what it is answered "
		 "in its callback)", step_allocate_async);
	tap_step("OpenToken of a 5 GiB buffer: TooLarge on a 32-bit client, its hold given back; whole on a 64-bit one",
		 step_open_token);
	tap_step("Import of a 5 GiB memfd: TooLarge on a 32-bit client before any call; the daemon's answer on a "
		 "64-bit one", step_import);
	tap_step("A stream of 5 GiB buffers: TooLarge for both parties on a 32-bit client; mapped whole on a 64-bit "
		 "one", step_stream);
	tap_step("3 GiB, which a 32-bit size_t holds: allocated whole on every client", step_three_gib);
	return tap_done();
}

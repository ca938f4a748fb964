/* SPDX-License-Identifier: MIT */
/*
 * caps-test: the limits no other test reaches, each refused by name (the
 * error says which limit), each undone by giving back what it counts, and
 * each leaving the daemon's fds and buffers as they were.
 *
 * usage: caps-test           (caps.conf: clients, direct connections,
 *                             attachments, and the per-uid tokens,
 *                             streams, grants and bytes)
 *        caps-test --pending (caps-pending.conf: requests that wait, per
 *                             client and per uid)
 *        caps-test --fences  (caps-fences.conf, in the VM: sw_sync release
 *                             fences the daemon keeps, per uid; and
 *                             [fences] timeout-policy = report)
 *
 * Under tests/common/with-daemon.py. All clients run as this uid, so a
 * per-uid limit is reached by several clients, each within its own. Output is TAP.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <drm_fourcc.h>
#include <systemd/sd-bus.h>

#include "tap.h"
#include "broker-util.h"
#include "uapi-extra.h"

TAP_DEFINE;

#define R DMABROKER_ACCESS_READ
#define W DMABROKER_ACCESS_WRITE

static const char *backend; /* --fences: heap:system */

static struct dmabroker_buffer *alloc_wh(struct dmabroker *b, uint32_t w, uint32_t h)
{
	struct dmabroker_alloc_desc d = {
		.version = DMABROKER_ALLOC_DESC_VERSION, .width = w, .height = h, .fourcc = DRM_FORMAT_XRGB8888,
		.usage = CPU_RW, .flags = DMABROKER_ALLOC_FRESH, .backend = backend,
	};
	struct dmabroker_buffer *buf = NULL;

	if (dmabroker_allocate(b, &d, &buf) < 0)
		tap_diag("allocate %ux%u: %s", w, h, dmabroker_error_message(b));
	return buf;
}

/* The named refusal, its message naming the limit. */
static bool refused(struct dmabroker *b, int r, int want_errno, const char *want_name, const char *limit)
{
	if (!expect_error(b, r, want_errno, want_name))
		return false;
	if (!strstr(dmabroker_error_message(b), limit)) {
		tap_diag("the message does not name %s", limit);
		return false;
	}
	return true;
}

/* ---- caps.conf ---- */

/* max-clients = 6: bus connections that call, until one is refused; closing one lets the next in. */
static bool step_max_clients(void)
{
	struct baseline base = baseline_take();
	sd_bus *bus[8] = { NULL };
	sd_bus_error e = SD_BUS_ERROR_NULL;
	unsigned admitted = 0, n = 0;
	int r = 0;

	for (; n < 8; n++) {
		CHECK(sd_bus_open_user(&bus[n]) >= 0);
		r = sd_bus_call_method(bus[n], BUS_NAME, PATH, IFACE, "ListBuffers", &e, NULL, "");
		if (r < 0)
			break;
		admitted++;
	}
	tap_diag("%u clients admitted, then: %s: %s", admitted, e.name ? e.name : "-", e.message ? e.message : "-");
	CHECK(r < 0 && sd_bus_error_has_name(&e, ERR("LimitReached")) && strstr(e.message, "max-clients"));
	CHECK(admitted >= 1 && admitted <= 6);
	sd_bus_error_free(&e);
	/* one leaves: the refused one gets in */
	bus[0] = sd_bus_flush_close_unref(bus[0]);
	for (int i = 0; i < 200; i++) {
		r = sd_bus_call_method(bus[n], BUS_NAME, PATH, IFACE, "ListBuffers", &e, NULL, "");
		sd_bus_error_free(&e);
		if (r >= 0)
			break;
		usleep(10000);
	}
	CHECK(r >= 0);
	for (unsigned i = 0; i <= n && i < 8; i++)
		sd_bus_flush_close_unref(bus[i]);
	CHECK(baseline_restored(base));
	return true;
}

/* max-direct-connections-per-client = 2 */
static bool step_max_direct(void)
{
	struct baseline base = baseline_take();
	sd_bus *bus = NULL;
	sd_bus_message *reply = NULL;
	sd_bus_error e = SD_BUS_ERROR_NULL;
	int fds[2], fd, r = -1;

	CHECK(sd_bus_open_user(&bus) >= 0);
	for (int i = 0; i < 2; i++) {
		CHECK(sd_bus_call_method(bus, BUS_NAME, PATH, IFACE, "OpenDirect", NULL, &reply, "") >= 0);
		CHECK(sd_bus_message_read(reply, "h", &fd) > 0 && (fds[i] = dup(fd)) >= 0);
		reply = sd_bus_message_unref(reply);
	}
	CHECK(sd_bus_call_method(bus, BUS_NAME, PATH, IFACE, "OpenDirect", &e, NULL, "") < 0);
	tap_diag("%s: %s", e.name, e.message);
	CHECK(sd_bus_error_has_name(&e, ERR("LimitReached")) && strstr(e.message, "max-direct-connections-per-client"));
	sd_bus_error_free(&e);
	/* one closed: the daemon notices, and a third may open */
	close(fds[0]);
	for (int i = 0; i < 200 && r < 0; i++) {
		r = sd_bus_call_method(bus, BUS_NAME, PATH, IFACE, "OpenDirect", NULL, &reply, "");
		if (r < 0)
			usleep(10000);
	}
	CHECK(r >= 0);
	reply = sd_bus_message_unref(reply);
	close(fds[1]);
	sd_bus_flush_close_unref(bus);
	CHECK(baseline_restored(base));
	return true;
}

/* max-attachments-per-buffer = 2: per buffer, whoever attaches */
static bool step_max_attachments(void)
{
	struct baseline base = baseline_take();
	struct dmabroker *a = connect_session(), *b = connect_session();
	struct dmabroker_buffer *buf, *other;
	uint32_t id1, id2, id3;

	CHECK(a && b);
	buf = alloc_wh(a, 64, 64);
	CHECK(buf);
	other = share(buf, b);
	CHECK(other);
	CHECK(dmabroker_buffer_attach(buf, DMABROKER_USAGE_CPU_READ_FLAG, "", 0, &id1) == 0);
	CHECK(dmabroker_buffer_attach(buf, DMABROKER_USAGE_CPU_READ_FLAG, "", 0, &id2) == 0);
	CHECK(refused(a, dmabroker_buffer_attach(buf, DMABROKER_USAGE_CPU_READ_FLAG, "", 0, &id3), EUSERS,
		      ERR("LimitReached"), "max-attachments-per-buffer"));
	CHECK(refused(b, dmabroker_buffer_attach(other, DMABROKER_USAGE_CPU_READ_FLAG, "", 0, &id3), EUSERS,
		      ERR("LimitReached"), "max-attachments-per-buffer"));
	CHECK(dmabroker_buffer_detach(buf, id1) == 0);
	CHECK(dmabroker_buffer_attach(other, DMABROKER_USAGE_CPU_READ_FLAG, "", 0, &id3) == 0);
	dmabroker_disconnect(b);
	dmabroker_disconnect(a);
	CHECK(baseline_restored(base));
	return true;
}

/* max-tokens-per-client = 2, max-tokens-per-uid = 3 */
static bool step_tokens_per_uid(void)
{
	struct baseline base = baseline_take();
	struct dmabroker *a = connect_session(), *b = connect_session();
	struct dmabroker_buffer *x, *y;
	char *t[4] = { NULL };

	CHECK(a && b);
	x = alloc_wh(a, 64, 64);
	y = alloc_wh(b, 64, 64);
	CHECK(x && y);
	CHECK(dmabroker_buffer_create_token(x, 0, 0, &t[0]) == 0 && dmabroker_buffer_create_token(x, 0, 0, &t[1]) == 0);
	CHECK(refused(a, dmabroker_buffer_create_token(x, 0, 0, &t[3]), EDQUOT, ERR("QuotaExceeded"),
		      "max-tokens-per-client"));
	CHECK(dmabroker_buffer_create_token(y, 0, 0, &t[2]) == 0);
	CHECK(refused(b, dmabroker_buffer_create_token(y, 0, 0, &t[3]), EDQUOT, ERR("QuotaExceeded"),
		      "max-tokens-per-uid"));
	CHECK(dmabroker_revoke_token(a, t[0]) == 0);
	CHECK(dmabroker_buffer_create_token(y, 0, 0, &t[3]) == 0);
	for (int i = 0; i < 4; i++)
		free(t[i]);
	dmabroker_disconnect(b);
	dmabroker_disconnect(a);
	CHECK(baseline_restored(base));
	return true;
}

static int create_stream(struct dmabroker *b, const char *name, struct dmabroker_stream **ret)
{
	static const uint32_t formats[] = { DRM_FORMAT_XRGB8888 };
	struct dmabroker_stream_desc d = {
		.version = DMABROKER_STREAM_DESC_VERSION, .name = name, .usage = CPU_RW, .formats = formats,
		.n_formats = 1, .width = 64, .height = 64, .consumers = 1,
	};

	*ret = NULL;
	return dmabroker_stream_create(b, &d, ret);
}

/* max-streams-per-client = 1, max-streams-per-uid = 2 */
static bool step_streams_per_uid(void)
{
	struct baseline base = baseline_take();
	struct dmabroker *a = connect_session(), *b = connect_session(), *c = connect_session();
	struct dmabroker_stream *s1, *s2, *s3;

	CHECK(a && b && c);
	CHECK(create_stream(a, "caps-1", &s1) == 0);
	CHECK(refused(a, create_stream(a, "caps-x", &s3), EDQUOT, ERR("QuotaExceeded"), "max-streams-per-client"));
	CHECK(create_stream(b, "caps-2", &s2) == 0);
	CHECK(refused(c, create_stream(c, "caps-3", &s3), EDQUOT, ERR("QuotaExceeded"), "max-streams-per-uid"));
	dmabroker_stream_destroy(s1);
	for (int i = 0; i < 200; i++) { /* LeaveStream is answered; the count is down once it is */
		if (create_stream(c, "caps-3", &s3) == 0)
			break;
		usleep(10000);
	}
	CHECK(s3);
	dmabroker_stream_destroy(s3);
	dmabroker_stream_destroy(s2);
	dmabroker_disconnect(c);
	dmabroker_disconnect(b);
	dmabroker_disconnect(a);
	CHECK(baseline_restored(base));
	return true;
}

/* max-grants-per-client = 2, max-grants-per-uid = 3 */
static bool step_grants_per_uid(void)
{
	struct baseline base = baseline_take();
	struct dmabroker *a = connect_session(), *b = connect_session();
	struct dmabroker_buffer *x, *y, *z, *v;
	uint64_t g[5];
	int fence = -1;

	CHECK(a && b);
	x = alloc_wh(a, 64, 64);
	y = alloc_wh(a, 64, 64);
	z = alloc_wh(b, 64, 64);
	v = alloc_wh(b, 64, 64);
	CHECK(x && y && z && v);
	CHECK(dmabroker_buffer_begin_access(x, R, 0, &g[0], &fence) == 0 && fence < 0);
	CHECK(dmabroker_buffer_begin_access(y, R, 0, &g[1], &fence) == 0 && fence < 0);
	CHECK(dmabroker_buffer_begin_access(z, R, 0, &g[2], &fence) == 0 && fence < 0);
	CHECK(refused(b, dmabroker_buffer_begin_access(v, R, 0, &g[3], &fence), EDQUOT, ERR("QuotaExceeded"),
		      "max-grants-per-uid"));
	CHECK(dmabroker_end_access(a, g[0], -1) == 0);
	CHECK(dmabroker_buffer_begin_access(v, R, 0, &g[3], &fence) == 0 && fence < 0);
	CHECK(dmabroker_end_access(a, g[1], -1) == 0 && dmabroker_end_access(b, g[2], -1) == 0 &&
	      dmabroker_end_access(b, g[3], -1) == 0);
	dmabroker_disconnect(b);
	dmabroker_disconnect(a);
	CHECK(baseline_restored(base));
	return true;
}

/* max-bytes-per-client = 2M, max-bytes-per-uid = 3M: two clients of 1.5 MiB each fill the uid's */
static bool step_bytes_per_uid(void)
{
	struct baseline base = baseline_take();
	struct dmabroker *a = connect_session(), *b = connect_session();
	struct dmabroker_buffer *x, *y, *z = NULL;

	CHECK(a && b);
	x = alloc_wh(a, 768, 512);
	y = alloc_wh(b, 768, 512);
	CHECK(x && y);
	{
		struct dmabroker_alloc_desc d = { .version = DMABROKER_ALLOC_DESC_VERSION, .width = 64, .height = 64,
						  .fourcc = DRM_FORMAT_XRGB8888, .usage = CPU_RW,
						  .flags = DMABROKER_ALLOC_FRESH };
		CHECK(refused(b, dmabroker_allocate(b, &d, &z), EDQUOT, ERR("QuotaExceeded"), "max-bytes-per-uid"));
		CHECK(!z);
		dmabroker_buffer_release(x);
		for (int i = 0; i < 200; i++) { /* Release is one-way: the bytes come back once it is in */
			if (dmabroker_allocate(b, &d, &z) == 0)
				break;
			usleep(10000);
		}
		CHECK(z);
	}
	dmabroker_disconnect(b);
	dmabroker_disconnect(a);
	CHECK(baseline_restored(base));
	return true;
}

/* ---- caps-pending.conf ---- */

/* Runs b until *done (5 s at most). */
static bool run_until(struct dmabroker *b, const int *done)
{
	for (int i = 0; i < 5000 && !*done; i++)
		if (dmabroker_process(b) == 0)
			usleep(1000);
	return *done;
}

/* Waits (5 s at most, running b) until n requests wait on the buffers of this uid (ListBuffers' waiters). */
static bool waiting(struct dmabroker *b, unsigned n)
{
	for (int i = 0; i < 500; i++) {
		struct listed_buffers l;
		struct listed_buffer e;
		uint32_t total = 0;

		dmabroker_process(b);
		if (listed_buffers_begin(&l, NULL) >= 0)
			while (listed_buffers_next(&l, &e) > 0)
				total += e.waiters;
		listed_buffers_end(&l);
		if (total >= n)
			return true;
		usleep(10000);
	}
	tap_diag("%u requests never waited", n);
	return false;
}

/*
 * max-pending-per-client = 1, max-pending-per-uid = 2. The holder h writes
 * x and y; b waits for x (its one), and its wait for y is refused; c waits
 * for x (the uid's second); d's wait is refused by the uid's limit. When h
 * ends, the waits come through.
 */
static bool step_pending(void)
{
	struct baseline base = baseline_take();
	struct dmabroker *h = connect_session(), *b = connect_session(), *c = connect_session(),
			 *d = connect_session();
	struct dmabroker_buffer *x, *y, *bx, *by, *cx, *dx;
	struct begun gbx = { 0 }, gby = { 0 }, gcx = { 0 }, gdx = { 0 };
	uint64_t hx, hy;
	int fence = -1;

	CHECK(h && b && c && d);
	x = alloc_wh(h, 64, 64);
	y = alloc_wh(h, 64, 64);
	CHECK(x && y);
	bx = share(x, b);
	by = share(y, b);
	cx = share(x, c);
	dx = share(x, d);
	CHECK(bx && by && cx && dx);
	CHECK(dmabroker_buffer_begin_access(x, W, 0, &hx, &fence) == 0 && fence < 0);
	CHECK(dmabroker_buffer_begin_access(y, W, 0, &hy, &fence) == 0 && fence < 0);
	CHECK(dmabroker_buffer_begin_access_async(bx, R, 0, on_begun, &gbx) == 0);
	CHECK(waiting(b, 1));
	CHECK(dmabroker_buffer_begin_access_async(by, R, 0, on_begun, &gby) == 0);
	CHECK(run_until(b, &gby.done));
	CHECK(refused(b, gby.error, EDQUOT, ERR("QuotaExceeded"), "max-pending-per-client"));
	CHECK(dmabroker_buffer_begin_access_async(cx, R, 0, on_begun, &gcx) == 0);
	CHECK(waiting(c, 2));
	CHECK(dmabroker_buffer_begin_access_async(dx, R, 0, on_begun, &gdx) == 0);
	CHECK(run_until(d, &gdx.done));
	CHECK(refused(d, gdx.error, EDQUOT, ERR("QuotaExceeded"), "max-pending-per-uid"));
	CHECK(!gbx.done && !gcx.done);
	/* the holder ends: the two waits come through */
	CHECK(dmabroker_end_access(h, hx, -1) == 0 && dmabroker_end_access(h, hy, -1) == 0);
	CHECK(run_until(b, &gbx.done) && gbx.error == 0);
	CHECK(run_until(c, &gcx.done) && gcx.error == 0);
	CHECK(dmabroker_end_access(b, gbx.grant, -1) == 0 && dmabroker_end_access(c, gcx.grant, -1) == 0);
	dmabroker_disconnect(d);
	dmabroker_disconnect(c);
	dmabroker_disconnect(b);
	dmabroker_disconnect(h);
	CHECK(baseline_restored(base));
	return true;
}

/* ---- caps-fences.conf (the VM: sw_sync) ---- */

struct timeline {
	int fd;
	uint32_t point;
};

/* A sw_sync fence at the timeline's next point, pending until timeline_signal(). */
static int timeline_fence(struct timeline *t)
{
	struct sw_sync_create_fence_data d = { .value = ++t->point };

	snprintf(d.name, sizeof(d.name), "caps-%u", t->point);
	return ioctl(t->fd, SW_SYNC_IOC_CREATE_FENCE, &d) < 0 ? -1 : d.fence;
}

static void timeline_signal(struct timeline *t, uint32_t n)
{
	ioctl(t->fd, SW_SYNC_IOC_INC, &n);
}

/* A write grant on buf ended under a pending fence of t: 0, or the refusal. */
static int end_under_fence(struct dmabroker *b, struct dmabroker_buffer *buf, struct timeline *t, uint64_t *ret_grant)
{
	int acquire = -1, release, r;
	uint64_t g;

	r = dmabroker_buffer_begin_access(buf, W, 0, &g, &acquire);
	if (acquire >= 0)
		close(acquire);
	if (r < 0)
		return r;
	*ret_grant = g;
	release = timeline_fence(t);
	if (release < 0)
		return -errno;
	r = dmabroker_end_access(b, g, release);
	close(release);
	return r;
}

/* max-fences-per-client = 3, max-fences-per-uid = 4 */
static bool step_fences_per_uid(void)
{
	struct baseline base = baseline_take();
	struct dmabroker *a = connect_session(), *b = connect_session();
	struct dmabroker_buffer *bufs[6];
	struct timeline t = { .fd = open(SW_SYNC_DEBUGFS_PATH, O_RDWR | O_CLOEXEC) };
	uint64_t g;
	int r = -1, release;

	CHECK(t.fd >= 0 && a && b);
	for (int i = 0; i < 6; i++)
		CHECK((bufs[i] = alloc_wh(i < 3 ? a : b, 16, 16)));
	for (int i = 0; i < 3; i++)
		CHECK(end_under_fence(a, bufs[i], &t, &g) == 0);
	CHECK(end_under_fence(b, bufs[3], &t, &g) == 0);
	CHECK(refused(b, end_under_fence(b, bufs[4], &t, &g), EDQUOT, ERR("QuotaExceeded"), "max-fences-per-uid"));
	/* a's fences signal and are dropped: b's end (still its grant) is taken */
	timeline_signal(&t, 3);
	release = timeline_fence(&t);
	CHECK(release >= 0);
	for (int i = 0; i < 200 && r < 0; i++) {
		r = dmabroker_end_access(b, g, release);
		if (r < 0)
			usleep(10000);
	}
	CHECKF(r == 0, "the end is still refused once the other fences signalled: %s", dmabroker_error_message(b));
	close(release);
	timeline_signal(&t, 100);
	close(t.fd);
	dmabroker_disconnect(b);
	dmabroker_disconnect(a);
	CHECK(baseline_restored(base));
	return true;
}

struct timed_out {
	int done;
	uint64_t buffer, client;
	int write;
};

static int on_timed_out(sd_bus_message *m, void *userdata, sd_bus_error *e)
{
	struct timed_out *t = userdata;

	if (sd_bus_message_read(m, "ttb", &t->buffer, &t->client, &t->write) > 0)
		t->done = 1;
	return 0;
}

static bool client_id_listed(uint64_t want)
{
	sd_bus *bus = NULL;
	sd_bus_message *reply = NULL;
	uint64_t id;
	bool found = false;
	int r = sd_bus_open_user(&bus);

	if (r >= 0)
		r = sd_bus_call_method(bus, BUS_NAME, PATH, IFACE, "ListClients", NULL, &reply, "");
	if (r >= 0)
		r = sd_bus_message_enter_container(reply, 'a', "(tsuuusutuut)");
	while (r >= 0 && (r = sd_bus_message_read(reply, "(tsuuusutuut)", &id, NULL, NULL, NULL, NULL, NULL, NULL,
						   NULL, NULL, NULL, NULL)) > 0)
		found |= id == want;
	sd_bus_message_unref(reply);
	sd_bus_flush_close_unref(bus);
	return found;
}

/*
 * [fences] timeout-policy = report: a fence that never signals is reported
 * (FenceTimedOut to the holders, FenceTimeouts counted) and dropped, and
 * the client that supplied it is still served, its buffer still its own
 * (drop-client, access-test's policy, would have dropped it).
 */
static bool step_timeout_report(void)
{
	struct baseline base = baseline_take();
	struct dmabroker *x = connect_session(), *y = connect_session();
	struct dmabroker_buffer *buf, *other;
	struct timeline t = { .fd = open(SW_SYNC_DEBUGFS_PATH, O_RDWR | O_CLOEXEC) };
	struct timed_out seen = { 0 };
	sd_bus *obs = NULL;
	sd_bus_message *reply = NULL;
	char *token = NULL;
	uint64_t g, timeouts = 0;
	int fence = -1;

	CHECK(t.fd >= 0 && x && y);
	buf = alloc_wh(x, 64, 64);
	CHECK(buf);
	other = NULL;
	CHECK(dmabroker_buffer_create_token(buf, 0, 0, &token) == 0 && dmabroker_open_token(y, token, &other) == 0);
	free(token);
	token = NULL;
	/* an observer that holds the buffer hears of it */
	CHECK(sd_bus_open_user(&obs) >= 0 && dmabroker_buffer_create_token(buf, 0, 0, &token) == 0);
	CHECK(sd_bus_call_method(obs, BUS_NAME, PATH, IFACE, "OpenToken", NULL, &reply, "s", token) >= 0);
	reply = sd_bus_message_unref(reply);
	free(token);
	CHECK(sd_bus_match_signal(obs, NULL, NULL, PATH, IFACE, "FenceTimedOut", on_timed_out, &seen) >= 0);
	CHECK(end_under_fence(x, buf, &t, &g) == 0);
	/* [fences] timeout = 10: wait for the signal, however long the test bed takes */
	for (int i = 0; i < 1200 && !seen.done; i++)
		if (sd_bus_process(obs, NULL) == 0)
			sd_bus_wait(obs, 50000);
	CHECKF(seen.done, "no FenceTimedOut within 60 s");
	tap_diag("FenceTimedOut(buffer %llu, client %llu, write %d)", (unsigned long long)seen.buffer,
		 (unsigned long long)seen.client, seen.write);
	CHECK(seen.buffer == dmabroker_buffer_get_id(buf) && seen.write);
	CHECK(sd_bus_get_property_trivial(obs, BUS_NAME, PATH, IFACE, "FenceTimeouts", NULL, 't', &timeouts) >= 0 &&
	      timeouts >= 1);
	/* report, not drop-client: the late client is still served, as the same client */
	CHECKF(client_id_listed(seen.client), "client %llu was dropped", (unsigned long long)seen.client);
	CHECK(dmabroker_buffer_begin_access(buf, R, DMABROKER_ACCESS_NONBLOCK, &g, &fence) == 0);
	if (fence >= 0)
		close(fence);
	CHECK(dmabroker_end_access(x, g, -1) == 0);
	CHECK(client_id_listed(seen.client));
	timeline_signal(&t, 100);
	close(t.fd);
	sd_bus_flush_close_unref(obs);
	dmabroker_disconnect(y);
	dmabroker_disconnect(x);
	CHECK(baseline_restored(base));
	return true;
}

int main(int argc, char **argv)
{
	bool pending = argc > 1 && strcmp(argv[1], "--pending") == 0;
	bool fences = argc > 1 && strcmp(argv[1], "--fences") == 0;

	if ((argc > 1 && !pending && !fences) || argc > 2) {
		fprintf(stderr, "usage: caps-test [--pending | --fences]\n");
		return 2;
	}
	if (!daemon_pid_from_env("caps-test"))
		return 2;
	if (fences) {
		backend = "heap:system";
		tap_plan(2);
		tap_step("max-fences-per-uid: reached by two clients each within its own limit; signalled fences make "
			 "room", step_fences_per_uid);
		tap_step("timeout-policy = report: a fence that never signals is reported and dropped, its client "
			 "still served", step_timeout_report);
		return tap_done();
	}
	if (pending) {
		tap_plan(1);
		tap_step("max-pending-per-client and max-pending-per-uid: a wait past either refused by name; the "
			 "others come through", step_pending);
		return tap_done();
	}
	tap_plan(7);
	tap_step("max-clients: the client past it refused with LimitReached, let in once one leaves", step_max_clients);
	tap_step("max-direct-connections-per-client: the third refused, one closed lets another open", step_max_direct);
	tap_step("max-attachments-per-buffer: per buffer, whoever attaches; a detach makes room", step_max_attachments);
	tap_step("max-tokens-per-uid: reached by two clients each within its own limit", step_tokens_per_uid);
	tap_step("max-streams-per-uid: reached by two clients each within its own limit", step_streams_per_uid);
	tap_step("max-grants-per-uid: reached by two clients each within its own limit", step_grants_per_uid);
	tap_step("max-bytes-per-uid: reached by two clients each within its own limit", step_bytes_per_uid);
	return tap_done();
}

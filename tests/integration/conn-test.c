/* SPDX-License-Identifier: MIT */
/*
 * conn-test: what a client can make the daemon hold, against a real
 * dmabrokerd started with tests/integration/conn.conf (max-fds = 64).
 *
 * - A client that pipelines OpenToken calls on its direct connection and
 *   never reads the replies is disconnected once the daemon owes it more
 *   than its bound, and everything it held is released (its bus connection
 *   stays open: the daemon lets go by itself); others are still served.
 * - The daemon-wide fd budget: Allocate, OpenDirect and OpenAccessChannel
 *   are refused with LimitReached (naming max-fds) once the fds the daemon
 *   holds for clients reach max-fds, and so are CreateStream and JoinStream;
 *   a refused call leaves no fd behind; what is given back can be taken
 *   again, and once every client left the whole budget is there again.
 *
 * --fences (the VM: sw_sync) adds a kept release fence to the budget's
 * steps. --flood-only runs the first two steps alone (for a daemon without
 * max-fds); --flood N pipelines N calls instead of 2000 (sd-bus gives the
 * socket megabytes of buffer: a daemon without the bound queues fds of its
 * own only past about 20000). Output is TAP.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <drm_fourcc.h>
#include <systemd/sd-bus.h>

#include "dmabroker.h"
#include "tap.h"
#include "broker-util.h"
#include "uapi-extra.h"

TAP_DEFINE;

#define MAX_FDS 64 /* conn.conf */
#define RAW_SERIAL 1000000u

static int flood = 2000; /* --flood N */
static struct dmabroker *owner;
static struct dmabroker_buffer *shared;
static char *token;

/* ---- a method call marshalled by hand, to pipeline it without sd-bus reading ---- */

static size_t put_align(uint8_t *m, size_t n, size_t a)
{
	while (n % a)
		m[n++] = 0;
	return n;
}

static size_t put_u32(uint8_t *m, size_t n, uint32_t v)
{
	n = put_align(m, n, 4);
	memcpy(m + n, &v, 4);
	return n + 4;
}

static size_t put_string(uint8_t *m, size_t n, const char *s)
{
	size_t len = strlen(s);
	n = put_u32(m, n, (uint32_t)len);
	memcpy(m + n, s, len + 1);
	return n + len + 1;
}

static size_t put_signature(uint8_t *m, size_t n, const char *s)
{
	size_t len = strlen(s);
	m[n++] = (uint8_t)len;
	memcpy(m + n, s, len + 1);
	return n + len + 1;
}

static size_t put_field(uint8_t *m, size_t n, uint8_t code, const char *type, const char *value)
{
	n = put_align(m, n, 8);
	m[n++] = code;
	n = put_signature(m, n, type);
	return *type == 'g' ? put_signature(m, n, value) : put_string(m, n, value);
}

/* OpenToken(token) as a little-endian D-Bus method call; its length. m holds 512 bytes. */
static size_t marshal_open_token(uint8_t *m, uint32_t serial, const char *tok)
{
	size_t n = 0, fields, body;
	uint32_t len;

	m[n++] = 'l';
	m[n++] = 1; /* METHOD_CALL */
	m[n++] = 0;
	m[n++] = 1; /* protocol version */
	n = put_u32(m, n, 0); /* body length, below */
	n = put_u32(m, n, serial);
	n = put_u32(m, n, 0); /* header fields' length, below */
	fields = n;
	n = put_field(m, n, 1, "o", PATH);
	n = put_field(m, n, 2, "s", IFACE);
	n = put_field(m, n, 3, "s", "OpenToken");
	n = put_field(m, n, 8, "g", "s");
	len = (uint32_t)(n - fields);
	memcpy(m + 12, &len, 4);
	n = put_align(m, n, 8);
	body = n;
	n = put_string(m, n, tok);
	len = (uint32_t)(n - body);
	memcpy(m + 4, &len, 4);
	return n;
}

static int answered, refused;

static int count_replies(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
	uint64_t serial = 0;

	if (sd_bus_message_get_reply_cookie(m, &serial) >= 0 && serial >= RAW_SERIAL) {
		if (sd_bus_message_is_method_error(m, NULL)) {
			refused++;
			tap_diag("raw call refused: %s: %s", sd_bus_message_get_error(m)->name,
				 sd_bus_message_get_error(m)->message);
		} else {
			answered++;
		}
	}
	return 0;
}

/* Sends all of m on fd, waiting for room; false once the daemon hung up. */
static bool send_all(int fd, const uint8_t *m, size_t len, bool *stuck)
{
	size_t off = 0;

	while (off < len) {
		ssize_t w = send(fd, m + off, len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w > 0) {
			off += (size_t)w;
		} else if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
			struct pollfd p = { .fd = fd, .events = POLLOUT | POLLRDHUP };
			int r = poll(&p, 1, 60000); /* a bound for a daemon that neither reads nor hangs up */
			if (r == 0) {
				*stuck = true;
				return false;
			}
			if (r > 0 && (p.revents & (POLLHUP | POLLRDHUP | POLLERR)))
				return false;
		} else {
			return false; /* EPIPE, ECONNRESET: hung up */
		}
	}
	return true;
}

static bool hung_up(int fd, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLRDHUP };
	return poll(&p, 1, timeout_ms) > 0 && (p.revents & (POLLHUP | POLLRDHUP | POLLERR));
}

static bool step_flood(void)
{
	sd_bus_error error = SD_BUS_ERROR_NULL;
	sd_bus *bus = NULL, *direct = NULL;
	struct baseline base;
	uint32_t serial = RAW_SERIAL;
	uint8_t m[512];
	bool up = true, stuck = false;
	int fd = -1, peak, sent = 0, r;

	base = baseline_take();
	/* a client of its own, with a direct connection */
	CHECK(sd_bus_open_user(&bus) >= 0);
	CHECK((direct = raw_direct(bus)) && (fd = sd_bus_get_fd(direct)) >= 0);
	/* sd-bus made our send buffer megabytes: keep what waits on our side small, to count what the daemon took */
	CHECK(setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &(int){ 32 * 1024 }, sizeof(int)) >= 0);
	CHECK(sd_bus_add_filter(direct, NULL, count_replies, NULL) >= 0);
	/* a call through sd-bus first: the authentication is over before our own bytes go */
	r = sd_bus_call_method(direct, NULL, PATH, "org.freedesktop.DBus.Peer", "Ping", &error, NULL, "");
	CHECKF(r >= 0, "Ping on the direct connection: %s", error.message);

	/* the hand-made call is understood: one is answered, with the buffer */
	{
		size_t len = marshal_open_token(m, serial++, token);
		CHECK(send_all(fd, m, len, &stuck));
		for (int i = 0; i < 100 && answered + refused == 0; i++) {
			r = sd_bus_process(direct, NULL);
			CHECK(r >= 0);
			if (r == 0)
				CHECK(sd_bus_wait(direct, 5000000) >= 0);
		}
		CHECKF(answered == 1, "the hand-made OpenToken got %d answers, %d errors", answered, refused);
	}

	/* now `flood` more, never reading */
	while (sent < flood) {
		size_t len = marshal_open_token(m, serial++, token);
		up = send_all(fd, m, len, &stuck);
		if (!up)
			break;
		sent++;
	}
	CHECKF(!stuck, "the daemon neither read our calls nor hung up for 60 s (%d sent)", sent);
	peak = daemon_fd_count();
	tap_diag("sent %d of %d calls without reading a reply, then %s; the daemon holds %d fds (%d before)", sent,
		 flood, up ? "stopped" : "the daemon hung up", peak, base.fds);
	if (up)
		up = !hung_up(fd, 20000);
	CHECKF(!up, "the daemon kept the connection of a client that does not read (%d calls pipelined, "
	       "%d fds held, %d before)", sent, peak, base.fds);
	CHECK(sent < flood);
	/* everything it held is given back, while its bus connection is still open */
	CHECK(baseline_restored(base));
	sd_bus_close_unref(direct);
	sd_bus_flush_close_unref(bus);
	return true;
}

/* Others are still served, on the bus and on a direct connection. */
static bool step_others_served(void)
{
	struct dmabroker *other = connect_session(), *mine = connect_session();
	struct dmabroker_buffer *buf, *opened = NULL;
	struct baseline base = baseline_take();
	int r;

	CHECK(other && mine);
	buf = alloc_one(owner, &r);
	CHECKF(buf, "Allocate: %s", dmabroker_error_message(owner));
	dmabroker_buffer_release(buf);
	CHECK(dmabroker_open_direct(other) >= 0);
	r = dmabroker_open_token(other, token, &opened);
	CHECKF(r >= 0, "OpenToken on a direct connection: %s", dmabroker_error_message(other));
	CHECK(dmabroker_buffer_get_id(opened) == dmabroker_buffer_get_id(shared));
	dmabroker_buffer_release(opened);
	dmabroker_disconnect(other);
	dmabroker_disconnect(mine);
	CHECK(baseline_restored(base));
	return true;
}

/* Allocates on c until refused: how many; the refusal must be max-fds's LimitReached. */
static int fill(struct dmabroker *c, struct dmabroker_buffer **bufs, int max)
{
	int n = 0, r = 0;

	while (n < max && (bufs[n] = alloc_one(c, &r)))
		n++;
	if (n == max || !expect_error(c, r, EUSERS, "org.dmabroker.Error.LimitReached") ||
	    !strstr(dmabroker_error_message(c), "max-fds"))
		return -1;
	return n;
}

static void release_all(struct dmabroker_buffer **bufs, int *n)
{
	while (*n)
		dmabroker_buffer_release(bufs[--*n]);
}

/* Release is one-way: a call answered on the same connection after it says it was done. */
static bool settle(struct dmabroker *b, struct dmabroker_buffer *held)
{
	char *tok = NULL;
	int r = dmabroker_buffer_create_token(held, 0, 60, &tok);

	if (r >= 0)
		r = dmabroker_revoke_token(b, tok);
	free(tok);
	return r >= 0;
}

static bool fds_held(int want)
{
	int n = daemon_fd_count();
	if (n != want)
		tap_diag("the daemon holds %d fds, want %d", n, want);
	return n == want;
}

/*
 * The fd budget: Allocate, OpenDirect, OpenAccessChannel, CreateStream and
 * JoinStream refused with LimitReached at max-fds, nothing left behind;
 * what is given back can be taken again, and once all have left the whole
 * budget is there again (the books balance).
 */
static bool step_max_fds(void)
{
	struct dmabroker_buffer *bufs[MAX_FDS + 1];
	struct dmabroker *c = connect_session();
	struct baseline base = baseline_take();
	sd_bus_error error = SD_BUS_ERROR_NULL;
	sd_bus_message *reply = NULL;
	sd_bus *raw = NULL;
	int n, r;

	CHECK(c);
	/* the owner's buffer holds one fd of the budget */
	n = fill(c, bufs, MAX_FDS + 1);
	CHECKF(n == MAX_FDS - 1, "%d allocated, want %d (max-fds less the owner's buffer)", n, MAX_FDS - 1);
	CHECK(fds_held(base.fds + n));

	/* a direct connection and an access channel are charged too */
	r = dmabroker_open_direct(c);
	CHECK(expect_error(c, r, EUSERS, "org.dmabroker.Error.LimitReached"));
	CHECK(sd_bus_open_user(&raw) >= 0);
	r = sd_bus_call_method(raw, BUS_NAME, PATH, IFACE, "OpenAccessChannel", &error, &reply, "");
	CHECKF(r < 0 && sd_bus_error_has_name(&error, "org.dmabroker.Error.LimitReached"),
	       "OpenAccessChannel: %d %s", r, error.name ? error.name : "(none)");
	tap_diag("%s: %s", error.name, error.message);
	sd_bus_error_free(&error);
	sd_bus_message_unref(reply);
	sd_bus_flush_close_unref(raw);
	CHECK(fds_held(base.fds + n));

	/* what is given back can be taken again */
	dmabroker_buffer_release(bufs[--n]);
	CHECK(dmabroker_open_direct(c) >= 0);
	CHECK(!alloc_one(c, &r) && expect_error(c, r, EUSERS, "org.dmabroker.Error.LimitReached"));
	dmabroker_buffer_release(bufs[--n]);
	bufs[n] = alloc_one(c, &r);
	CHECKF(bufs[n], "Allocate after a release: %s", dmabroker_error_message(c));
	n++;
	release_all(bufs, &n);
	dmabroker_disconnect(c);
	CHECK(baseline_restored(base));
	return true;
}

static bool step_max_fds_streams(void)
{
	static const uint32_t xrgb[] = { DRM_FORMAT_XRGB8888 };
	struct dmabroker_stream_desc pd = {
		.version = DMABROKER_STREAM_DESC_VERSION, .name = "budget", .usage = DMABROKER_USAGE_CPU_WRITE_FLAG,
		.formats = xrgb, .n_formats = 1, .buffers = 4, .width = 64, .height = 64,
		.consumers = 3, /* never negotiated: the parties alone are charged */
	};
	struct dmabroker_stream_desc cd = {
		.version = DMABROKER_STREAM_DESC_VERSION, .name = "budget", .usage = DMABROKER_USAGE_CPU_READ_FLAG,
	};
	struct dmabroker *p = connect_session(), *q = connect_session(), *late = connect_session(),
			 *c = connect_session();
	struct dmabroker_stream *ps = NULL, *qs = NULL, *ls = NULL;
	struct dmabroker_buffer *bufs[MAX_FDS + 1];
	struct baseline base = baseline_take();
	int n, r;

	CHECK(p && q && late && c);
	CHECKF(dmabroker_stream_create(p, &pd, &ps) == 0, "CreateStream: %s", dmabroker_error_message(p));
	CHECKF(dmabroker_stream_join(q, &cd, &qs) == 0, "JoinStream: %s", dmabroker_error_message(q));
	CHECK(dmabroker_open_direct(late) == 0);
	n = fill(c, bufs, MAX_FDS + 1);
	CHECK(n > 0);
	tap_diag("%d buffers fit beside a stream with a producer and a consumer", n);
	/* a consumer's channel and counters are 3 fds: 2 free are not enough */
	dmabroker_buffer_release(bufs[--n]);
	dmabroker_buffer_release(bufs[--n]);
	CHECK(settle(c, bufs[0]));
	r = dmabroker_stream_join(late, &cd, &ls);
	CHECK(expect_error(late, r, EUSERS, "org.dmabroker.Error.LimitReached"));
	r = dmabroker_stream_create(late, &(struct dmabroker_stream_desc){ .version = DMABROKER_STREAM_DESC_VERSION,
			.name = "budget2", .usage = DMABROKER_USAGE_CPU_WRITE_FLAG, .formats = xrgb, .n_formats = 1,
			.width = 64, .height = 64, .consumers = 1 }, &ls);
	CHECK(expect_error(late, r, EUSERS, "org.dmabroker.Error.LimitReached"));
	dmabroker_buffer_release(bufs[--n]);
	CHECK(settle(c, bufs[0]));
	CHECKF(dmabroker_stream_join(late, &cd, &ls) == 0, "JoinStream: %s", dmabroker_error_message(late));
	release_all(bufs, &n);
	dmabroker_stream_destroy(ls);
	dmabroker_stream_destroy(qs);
	dmabroker_stream_destroy(ps);
	dmabroker_disconnect(late);
	dmabroker_disconnect(q);
	dmabroker_disconnect(p);
	CHECK(baseline_restored(base));

	/* everyone left: the whole budget is there again */
	n = fill(c, bufs, MAX_FDS + 1);
	CHECKF(n == MAX_FDS - 1, "%d allocated, want %d: the books do not balance", n, MAX_FDS - 1);
	release_all(bufs, &n);
	dmabroker_disconnect(c);
	CHECK(baseline_restored(base));
	return true;
}

/*
 * A kept release fence is charged too (the VM: sw_sync): EndAccess with a
 * pending fence is refused at max-fds (the grant stays), taken once there
 * is room, and given back when the fence signals.
 */
static bool step_max_fds_fences(void)
{
	struct dmabroker *c = connect_session();
	struct dmabroker_buffer *bufs[MAX_FDS + 1], *buf;
	struct baseline base = baseline_take();
	struct sw_sync_create_fence_data d = { .value = 1 };
	int n, r, acquire = -1, timeline = open(SW_SYNC_DEBUGFS_PATH, O_RDWR | O_CLOEXEC);
	uint64_t grant = 0;
	uint32_t one = 1;

	CHECK(c);
	CHECKF(timeline >= 0, "%s: %s", SW_SYNC_DEBUGFS_PATH, strerror(errno));
	CHECK(ioctl(timeline, SW_SYNC_IOC_CREATE_FENCE, &d) == 0);
	buf = alloc_one(c, &r);
	CHECKF(buf, "Allocate: %s", dmabroker_error_message(c));
	CHECK(dmabroker_buffer_begin_access(buf, DMABROKER_ACCESS_WRITE, 0, &grant, &acquire) == 0);
	if (acquire >= 0)
		close(acquire);
	n = fill(c, bufs, MAX_FDS + 1);
	CHECKF(n == MAX_FDS - 2, "%d allocated, want %d", n, MAX_FDS - 2);
	/* a pending fence the daemon would keep: refused, and the grant stays */
	r = dmabroker_end_access(c, grant, d.fence);
	CHECK(expect_error(c, r, EUSERS, "org.dmabroker.Error.LimitReached"));
	CHECK(fds_held(base.fds + n + 1));
	dmabroker_buffer_release(bufs[--n]);
	/* the same connection: the release was done before this */
	r = dmabroker_end_access(c, grant, d.fence);
	CHECKF(r == 0, "EndAccess with room for the fence: %s", dmabroker_error_message(c));
	CHECK(!alloc_one(c, &r) && expect_error(c, r, EUSERS, "org.dmabroker.Error.LimitReached"));
	/* signalled: the daemon lets the fence go, and its fd with it */
	CHECK(ioctl(timeline, SW_SYNC_IOC_INC, &one) == 0);
	for (int i = 0; i < 3000 && !(bufs[n] = alloc_one(c, &r)); i++)
		usleep(10000);
	CHECKF(bufs[n], "the signalled fence's fd was not given back: %s", dmabroker_error_message(c));
	n++;
	release_all(bufs, &n);
	dmabroker_buffer_release(buf);
	close(d.fence);
	close(timeline);
	dmabroker_disconnect(c);
	CHECK(baseline_restored(base));
	return true;
}

int main(int argc, char **argv)
{
	bool flood_only = false, fences = false;
	int r;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--flood-only") == 0)
			flood_only = true;
		else if (strcmp(argv[i], "--fences") == 0)
			fences = true;
		else if (strcmp(argv[i], "--flood") == 0 && i + 1 < argc)
			flood = atoi(argv[++i]);
	}

	if (!daemon_pid_from_env("conn-test"))
		return 1;
	owner = connect_session();
	if (!owner)
		return 1;
	shared = alloc_one(owner, &r);
	if (!shared || dmabroker_buffer_create_token(shared, 0, 600, &token) < 0) {
		fprintf(stderr, "conn-test: cannot allocate and share a buffer: %s\n", dmabroker_error_message(owner));
		return 1;
	}
	tap_plan(flood_only ? 2 : fences ? 5 : 4);
	tap_step("a client that pipelines calls on its direct connection and never reads is dropped, "
		 "and all it held released", step_flood);
	tap_step("other clients are still served, on the bus and on a direct connection", step_others_served);
	if (!flood_only) {
		tap_step("max-fds: Allocate, OpenDirect and OpenAccessChannel refused with LimitReached, "
			 "nothing left behind, given back on release", step_max_fds);
		tap_step("max-fds: CreateStream and JoinStream charged and refused too; once all left, the whole "
			 "budget is there again", step_max_fds_streams);
		if (fences)
			tap_step("max-fds: a kept release fence is charged, refused at the limit, given back once "
				 "signalled", step_max_fds_fences);
	}
	free(token);
	dmabroker_buffer_release(shared);
	dmabroker_disconnect(owner);
	return tap_done();
}

/* SPDX-License-Identifier: MIT */
/*
 * wire-test: the access channel (protocol/access-wire.h, daemon/channel/access-channel.c).
 *
 * usage: wire-test (under tests/common/with-daemon.py)
 *
 * First the library's side: its per-frame calls go over the channel while
 * it works (dmabroker_get_channel_stats() counts them), and when the
 * channel breaks they go on over D-Bus, said once on stderr and counted,
 * never silently. Then the daemon's side, by hand on the socket: every
 * malformed message (a wrong size, an unknown op, a fence on a message that
 * takes none, one too long for the daemon to read whole, an fd with no
 * message) closes the channel and keeps nothing; bad ALLOCATE arguments
 * are refused by name with the channel left open; an answer that cannot
 * be handed over (the client stopped reading) and one whose channel closed
 * meanwhile leave no buffer and no grant behind. Output is TAP.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <drm_fourcc.h>
#include <systemd/sd-bus.h>

#include "access-wire.h"
#include "errors.h"
#include "fdmsg.h"
#include "tap.h"
#include "broker-util.h"

TAP_DEFINE;

#define R DMABROKER_ACCESS_READ
#define W DMABROKER_ACCESS_WRITE

static const struct dmabroker_alloc_desc desc64 = {
	.version = DMABROKER_ALLOC_DESC_VERSION, .width = 64, .height = 64, .fourcc = DRM_FORMAT_XRGB8888,
	.usage = CPU_RW,
};

static struct dmabroker_channel_stats stats_of(struct dmabroker *b)
{
	struct dmabroker_channel_stats s = { .version = DMABROKER_CHANNEL_STATS_VERSION };

	if (dmabroker_get_channel_stats(b, &s) < 0)
		tap_diag("dmabroker_get_channel_stats failed");
	tap_diag("channel: %s, %llu calls on it, %llu on D-Bus, %u fall-backs, last error %d",
		 s.active ? "active" : "inactive", (unsigned long long)s.channel_calls,
		 (unsigned long long)s.dbus_calls, s.fallbacks, s.last_error);
	return s;
}

/* ---- stderr, captured ---- */

static int saved_stderr = -1, captured = -1;

static bool capture_stderr(void)
{
	fflush(stderr);
	captured = memfd_create("wire-test-stderr", MFD_CLOEXEC);
	saved_stderr = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
	return captured >= 0 && saved_stderr >= 0 && dup2(captured, STDERR_FILENO) == STDERR_FILENO;
}

/* Restores stderr; what was written meanwhile is in text (and echoed as diagnostics). */
static void release_stderr(char *text, size_t len)
{
	ssize_t n;

	fflush(stderr);
	dup2(saved_stderr, STDERR_FILENO);
	close(saved_stderr);
	n = pread(captured, text, len - 1, 0);
	text[n > 0 ? n : 0] = '\0';
	close(captured);
	for (const char *line = text, *end; *line; line = *end ? end + 1 : end) {
		end = strchrnul(line, '\n');
		tap_diag("stderr: %.*s", (int)(end - line), line);
	}
}

static unsigned count_lines(const char *text, const char *with)
{
	unsigned n = 0;

	for (const char *p = text; (p = strstr(p, with)); p += strlen(with))
		n++;
	return n;
}

/* The library's access channel: this process's one SOCK_SEQPACKET socket. */
static int find_channel_fd(void)
{
	int found = -1;

	for (int fd = 3; fd < 1024; fd++) {
		int type = 0;
		socklen_t len = sizeof(type);
		if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_SEQPACKET) {
			if (found >= 0)
				return -2; /* two: not sure which */
			found = fd;
		}
	}
	return found;
}

/* ---- the library's side ---- */

/* n grants begun and ended (one-way) on buf: the daemon's answers say they were real. */
static bool cycle(struct dmabroker *b, struct dmabroker_buffer *buf, int n)
{
	for (int i = 0; i < n; i++) {
		uint64_t g;
		int fence = -1;
		CHECK(dmabroker_buffer_begin_access(buf, W, DMABROKER_ACCESS_NONBLOCK, &g, &fence) == 0);
		CHECK(fence < 0);
		CHECK(dmabroker_end_access_oneway(b, g, -1) == 0);
	}
	return true;
}

static bool step_channel_used(void)
{
	struct baseline base = baseline_take();
	struct dmabroker *b = connect_session();
	struct dmabroker_channel_stats s;
	struct dmabroker_buffer *buf = NULL;
	char text[4096];

	CHECK(b && capture_stderr());
	CHECK(dmabroker_open_direct(b) == 0);
	s = stats_of(b);
	CHECK(s.active && s.channel_calls == 0 && s.dbus_calls == 0 && s.fallbacks == 0 && s.last_error == 0);
	CHECK(dmabroker_allocate(b, &desc64, &buf) == 0);
	CHECK(cycle(b, buf, 10));
	dmabroker_buffer_release(buf);
	s = stats_of(b);
	/* 1 allocate, 10 begins, 10 ends, 1 release: all on the channel */
	CHECK(s.active && s.channel_calls == 22 && s.dbus_calls == 0 && s.fallbacks == 0);
	/* an unknown version is refused */
	s.version = 99;
	CHECK(dmabroker_get_channel_stats(b, &s) == -EINVAL);
	dmabroker_disconnect(b);
	release_stderr(text, sizeof(text));
	CHECK(!strstr(text, "access channel"));
	CHECK(baseline_restored(base));
	return true;
}

static bool step_channel_broken(void)
{
	struct baseline base = baseline_take();
	struct dmabroker *b = connect_session();
	struct dmabroker_channel_stats s;
	struct dmabroker_buffer *buf = NULL, *more = NULL;
	uint64_t g, before;
	int fence = -1, ch;
	char text[4096];

	CHECK(b && capture_stderr());
	CHECK(dmabroker_open_direct(b) == 0);
	CHECK(dmabroker_allocate(b, &desc64, &buf) == 0);
	CHECK(dmabroker_buffer_begin_access(buf, W, 0, &g, &fence) == 0);
	before = stats_of(b).channel_calls;
	CHECK(before == 2);
	/* the channel breaks under the library's feet */
	ch = find_channel_fd();
	CHECK(ch >= 0);
	CHECK(shutdown(ch, SHUT_RDWR) == 0);
	/* this end goes over D-Bus, and it is real: a second writer is granted at once */
	CHECK(dmabroker_end_access_oneway(b, g, -1) == 0);
	CHECK(dmabroker_buffer_begin_access(buf, W, DMABROKER_ACCESS_NONBLOCK, &g, &fence) == 0);
	CHECK(dmabroker_end_access(b, g, -1) == 0);
	CHECK(cycle(b, buf, 5));
	CHECK(dmabroker_allocate(b, &desc64, &more) == 0);
	dmabroker_buffer_release(more);
	dmabroker_buffer_release(buf);
	s = stats_of(b);
	/* the end, 1 begin (end_access is not a per-frame call), 5 + 5, 1 allocate, 2 releases: on D-Bus */
	CHECK(!s.active && s.channel_calls == before && s.dbus_calls == 15);
	CHECK(s.fallbacks == 1 && s.last_error == -EPIPE);
	dmabroker_disconnect(b);
	release_stderr(text, sizeof(text));
	CHECK(count_lines(text, "libdmabroker: access channel broke (Broken pipe)") == 1);
	CHECK(count_lines(text, "libdmabroker: access channel") == 1);
	CHECK(baseline_restored(base));
	return true;
}

static bool step_channel_off(void)
{
	struct baseline base = baseline_take();
	struct dmabroker *b;
	struct dmabroker_channel_stats s;
	struct dmabroker_buffer *buf = NULL;
	char text[4096];

	CHECK(capture_stderr());
	setenv("DMABROKER_ACCESS_CHANNEL", "0", 1);
	b = connect_session();
	CHECK(b && dmabroker_open_direct(b) == 0);
	unsetenv("DMABROKER_ACCESS_CHANNEL");
	CHECK(find_channel_fd() == -1);
	CHECK(dmabroker_allocate(b, &desc64, &buf) == 0);
	CHECK(cycle(b, buf, 3));
	dmabroker_buffer_release(buf);
	s = stats_of(b);
	CHECK(!s.active && s.channel_calls == 0 && s.dbus_calls == 8 && s.fallbacks == 0 && s.last_error == 0);
	dmabroker_disconnect(b);
	release_stderr(text, sizeof(text));
	CHECK(!strstr(text, "access channel"));
	CHECK(baseline_restored(base));
	return true;
}

/* ---- the daemon's side, by hand ---- */

/* A bus connection of our own and its access channel. */
static bool raw_channel(sd_bus **ret_bus, int *ret_ch)
{
	int r = sd_bus_open_user(ret_bus);

	if (r < 0) {
		tap_diag("sd_bus_open_user: %s", strerror(-r));
		return false;
	}
	*ret_ch = call_for_fd(*ret_bus, "OpenAccessChannel");
	return *ret_ch >= 0;
}

/* The next message on ch (5 s at most): its size, 0 at the end, <0 on error or timeout; an fd with it is closed. */
static ssize_t answer(int ch, void *buf, size_t len)
{
	struct pollfd p = { .fd = ch, .events = POLLIN };
	ssize_t n;
	int fd;

	memset(buf, 0, len);
	if (poll(&p, 1, 5000) != 1)
		return -ETIMEDOUT;
	n = fdmsg_recv(ch, buf, len, &fd, 0);
	if (fd >= 0)
		close(fd);
	return n;
}

/* The bus connection is still served, and it may open a channel again: the old one is gone in the daemon. */
static bool still_served(sd_bus *bus)
{
	sd_bus_message *reply = NULL;
	int fd = -1;

	CHECK(sd_bus_call_method(bus, BUS_NAME, PATH, IFACE, "ListBuffers", NULL, &reply, "") >= 0);
	reply = sd_bus_message_unref(reply);
	for (int i = 0; i < 100; i++) { /* the daemon closes the old one as it reads the message */
		if (sd_bus_call_method(bus, BUS_NAME, PATH, IFACE, "OpenAccessChannel", NULL, &reply, "") >= 0)
			break;
		usleep(20000);
	}
	CHECK(reply && sd_bus_message_read(reply, "h", &fd) > 0);
	sd_bus_message_unref(reply);
	return true;
}

/* Sends msg (len bytes, with fd or -1) by hand: the daemon must close the channel and keep nothing. */
static bool closes_channel(const char *what, const void *msg, size_t len, int fd)
{
	struct baseline base = baseline_take();
	struct access_wire_reply ans;
	sd_bus *bus = NULL;
	int ch = -1;

	CHECK(raw_channel(&bus, &ch));
	CHECK(fdmsg_send(ch, msg, len, fd) == 0);
	CHECKF(answer(ch, &ans, sizeof(ans)) == 0, "%s: the channel is still open", what);
	CHECK(still_served(bus));
	close(ch);
	sd_bus_flush_close_unref(bus);
	CHECK(baseline_restored(base));
	return true;
}

static bool step_bad_messages(void)
{
	struct access_wire_request req = { .op = ACCESS_WIRE_BEGIN, .cookie = 1, .id = 1, .mode = R };
	struct access_wire_alloc alloc = { .op = ACCESS_WIRE_ALLOCATE, .cookie = 2, .width = 64, .height = 64,
					   .fourcc = DRM_FORMAT_XRGB8888, .usage = CPU_RW };
	char big[1024] = { 0 };
	int fd = memfd_create("wire-test-fence", MFD_CLOEXEC);

	CHECK(fd >= 0);
	CHECK(closes_channel("a BEGIN 4 bytes short", &req, sizeof(req) - 4, -1));
	CHECK(closes_channel("an ALLOCATE of a request's size", &alloc, sizeof(req), -1));
	req.op = 99;
	CHECK(closes_channel("an unknown op", &req, sizeof(req), -1));
	req.op = ACCESS_WIRE_BEGIN;
	CHECK(closes_channel("a BEGIN with a fence", &req, sizeof(req), fd));
	CHECK(closes_channel("an ALLOCATE with a fence", &alloc, sizeof(alloc), fd));
	req.op = ACCESS_WIRE_RELEASE;
	CHECK(closes_channel("a RELEASE with a fence", &req, sizeof(req), fd));
	/* more than the daemon reads at once: cut (MSG_TRUNC, -EMSGSIZE) */
	memcpy(big, &alloc, sizeof(alloc));
	CHECK(closes_channel("a message of 1024 bytes", big, sizeof(big), -1));
	/* an fd and no bytes (-EBADMSG) */
	CHECK(closes_channel("an fd with no message", big, 0, fd));
	close(fd);
	return true;
}

static bool step_bad_allocate(void)
{
	struct baseline base = baseline_take();
	struct access_wire_alloc a = { .op = ACCESS_WIRE_ALLOCATE, .width = 64, .height = 64,
				       .fourcc = DRM_FORMAT_XRGB8888, .usage = CPU_RW };
	struct access_wire_request end = { .op = ACCESS_WIRE_END, .id = 0xdeadbeef };
	union {
		struct access_wire_reply reply;
		struct access_wire_buffer buffer;
	} ans;
	sd_bus *bus = NULL;
	int ch = -1, fd = memfd_create("wire-test-fence", MFD_CLOEXEC);

	CHECK(fd >= 0 && raw_channel(&bus, &ch));
	a.cookie = 10;
	a.flags = 2;
	CHECK(fdmsg_send(ch, &a, sizeof(a), -1) == 0);
	CHECK(answer(ch, &ans, sizeof(ans)) == sizeof(ans.reply));
	tap_diag("flags 2: %d: %s", ans.reply.code, ans.reply.message);
	CHECK(ans.reply.op == ACCESS_WIRE_ERROR && ans.reply.cookie == 10 && ans.reply.error == EINVAL &&
	      ans.reply.code == DMABROKER_E_INVALID_ARGUMENT && strstr(ans.reply.message, "flags 0x2"));
	a.cookie = 11;
	a.flags = 0;
	a.n_modifiers = ACCESS_WIRE_MAX_MODIFIERS + 1;
	CHECK(fdmsg_send(ch, &a, sizeof(a), -1) == 0);
	CHECK(answer(ch, &ans, sizeof(ans)) == sizeof(ans.reply));
	tap_diag("17 modifiers: %d: %s", ans.reply.code, ans.reply.message);
	CHECK(ans.reply.op == ACCESS_WIRE_ERROR && ans.reply.cookie == 11 && ans.reply.error == EINVAL &&
	      strstr(ans.reply.message, "17 modifiers (at most 16)"));
	/* a modifier nobody allocates */
	a.cookie = 12;
	a.n_modifiers = 1;
	a.modifiers[0] = I915_FORMAT_MOD_X_TILED;
	CHECK(fdmsg_send(ch, &a, sizeof(a), -1) == 0);
	CHECK(answer(ch, &ans, sizeof(ans)) == sizeof(ans.reply));
	CHECK(ans.reply.op == ACCESS_WIRE_ERROR && ans.reply.cookie == 12 &&
	      ans.reply.code == DMABROKER_E_UNSUPPORTED_MODIFIER);
	/* a one-way END of an unknown grant, with a fence: refused in the log, the fence not kept */
	CHECK(fdmsg_send(ch, &end, sizeof(end), fd) == 0);
	/* the channel is still open: a good ALLOCATE is answered with its buffer, which RELEASE gives back */
	a.cookie = 13;
	a.n_modifiers = 0;
	CHECK(fdmsg_send(ch, &a, sizeof(a), -1) == 0);
	CHECK(answer(ch, &ans, sizeof(ans)) == sizeof(ans.buffer));
	CHECK(ans.buffer.op == ACCESS_WIRE_BUFFER && ans.buffer.cookie == 13 && ans.buffer.n_planes == 1);
	CHECK(daemon_property_u32("Buffers") == base.buffers + 1);
	end.op = ACCESS_WIRE_RELEASE;
	end.id = ans.buffer.id;
	CHECK(fdmsg_send(ch, &end, sizeof(end), -1) == 0);
	close(fd);
	close(ch);
	sd_bus_flush_close_unref(bus);
	CHECK(baseline_restored(base));
	return true;
}

/*
 * A hand-over that fails: the client stopped reading (SHUT_RD: the
 * daemon's sends fail with EPIPE), so the BUFFER of its ALLOCATE cannot be
 * sent. The daemon must drop that buffer and close the channel.
 */
static bool step_failed_handover(void)
{
	struct baseline base = baseline_take();
	struct access_wire_alloc a = { .op = ACCESS_WIRE_ALLOCATE, .cookie = 20, .width = 64, .height = 64,
				       .fourcc = DRM_FORMAT_XRGB8888, .usage = CPU_RW };
	struct pollfd p;
	sd_bus *bus = NULL;
	int ch = -1;

	CHECK(raw_channel(&bus, &ch));
	CHECK(shutdown(ch, SHUT_RD) == 0);
	CHECK(fdmsg_send(ch, &a, sizeof(a), -1) == 0);
	/* the daemon shuts its end once the answer failed: our side hangs up */
	p = (struct pollfd){ .fd = ch, .events = POLLOUT };
	for (int i = 0; i < 500 && !(p.revents & (POLLHUP | POLLERR)); i++) {
		poll(&p, 1, 10);
		if (!(p.revents & (POLLHUP | POLLERR)))
			usleep(10000);
	}
	CHECKF(p.revents & (POLLHUP | POLLERR), "the daemon did not close the channel (revents 0x%x)", p.revents);
	CHECK(still_served(bus));
	close(ch);
	sd_bus_flush_close_unref(bus);
	CHECK(baseline_restored(base)); /* the buffer it could not hand over is gone */
	return true;
}

/*
 * An answer after the channel closed: a BEGIN that waits (another client
 * writes), then the channel closes; the grant it would have had goes to
 * nobody.
 */
static bool step_answer_after_close(void)
{
	struct baseline base = baseline_take();
	struct dmabroker *a = connect_session();
	struct dmabroker_buffer *buf = NULL;
	struct access_wire_request req = { .op = ACCESS_WIRE_BEGIN, .cookie = 30, .mode = W };
	sd_bus *bus = NULL;
	sd_bus_message *reply = NULL;
	char *token = NULL;
	uint64_t g, g2;
	int fence = -1, ch = -1, fd, fds_open;

	CHECK(a);
	CHECK(dmabroker_allocate(a, &desc64, &buf) == 0);
	CHECK(dmabroker_buffer_begin_access(buf, W, 0, &g, &fence) == 0);
	/* a raw client holds the buffer too (by a token) and asks on its channel to write */
	CHECK(dmabroker_buffer_create_token(buf, 0, 0, &token) == 0);
	CHECK(raw_channel(&bus, &ch));
	CHECK(sd_bus_call_method(bus, BUS_NAME, PATH, IFACE, "OpenToken", NULL, &reply, "s", token) >= 0);
	CHECK(sd_bus_message_read(reply, "th", &req.id, &fd) > 0);
	reply = sd_bus_message_unref(reply);
	free(token);
	fds_open = daemon_fd_count();
	CHECK(fdmsg_send(ch, &req, sizeof(req), -1) == 0);
	/* it waits: ListBuffers says so (one waiter), then the channel closes under it */
	for (int i = 0; i < 200; i++) {
		struct listed_buffer e;
		int found = listed_buffer_find(bus, req.id, &e);
		CHECK(found >= 0);
		if (found && e.waiters == 1)
			break;
		CHECKF(i < 199, "the BEGIN never waited");
		usleep(10000);
	}
	close(ch);
	for (int i = 0; i < 200 && daemon_fd_count() >= fds_open; i++)
		usleep(10000);
	/* the writer ends; the grant the closed channel asked for goes to nobody: another writer gets it at once */
	CHECK(dmabroker_end_access(a, g, -1) == 0);
	CHECK(dmabroker_buffer_begin_access(buf, W, DMABROKER_ACCESS_NONBLOCK, &g2, &fence) == 0);
	CHECK(dmabroker_end_access(a, g2, -1) == 0);
	sd_bus_flush_close_unref(bus);
	dmabroker_buffer_release(buf);
	dmabroker_disconnect(a);
	CHECK(baseline_restored(base));
	return true;
}

/*
 * A BEGIN on the channel that waits past the call timeout gives up with
 * -ETIMEDOUT (the wait is a poll() with that timeout); its grant, when it
 * comes later, makes dmabroker_get_fd() readable and dmabroker_process()
 * hands it straight back: another writer is then granted at once.
 */
static bool step_late_grant_handed_back(void)
{
	struct baseline base = baseline_take();
	struct dmabroker *owner = connect_session(), *waiter;
	struct dmabroker_buffer *buf = NULL, *shared = NULL;
	struct timespec t0, t1;
	char *token = NULL;
	uint64_t g, g2;
	int fence = -1, r;
	double waited;

	CHECK(owner);
	setenv("SYSTEMD_BUS_TIMEOUT", "1", 1); /* read by each connection, the direct one too */
	waiter = connect_session();
	r = waiter ? dmabroker_open_direct(waiter) : -ENOTCONN;
	unsetenv("SYSTEMD_BUS_TIMEOUT");
	CHECK(r == 0 && stats_of(waiter).active);
	CHECK(dmabroker_allocate(owner, &desc64, &buf) == 0);
	CHECK(dmabroker_buffer_create_token(buf, 0, 0, &token) == 0);
	CHECK(dmabroker_open_token(waiter, token, &shared) == 0);
	CHECK(dmabroker_buffer_begin_access(buf, W, 0, &g, &fence) == 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	r = dmabroker_buffer_begin_access(shared, W, 0, &g2, &fence);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	waited = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	tap_diag("the waiting BEGIN returned %d after %.2f s", r, waited);
	CHECK(r == -ETIMEDOUT && waited >= 0.9 && waited < 5);
	CHECK(stats_of(waiter).active);
	/* the owner ends: the daemon grants the BEGIN that gave up; the waiter's loop hands it back */
	CHECK(dmabroker_end_access(owner, g, -1) == 0);
	CHECK(poll(&(struct pollfd){ .fd = dmabroker_get_fd(waiter), .events = POLLIN }, 1, 5000) == 1);
	CHECK(dmabroker_process(waiter) >= 0);
	for (int i = 0; i < 100; i++) {
		r = dmabroker_buffer_begin_access(buf, W, DMABROKER_ACCESS_NONBLOCK, &g, &fence);
		if (r != -EBUSY)
			break;
		usleep(10000);
	}
	CHECKF(r == 0, "the late grant was not handed back: %s", dmabroker_error_message(owner));
	CHECK(dmabroker_end_access(owner, g, -1) == 0);
	free(token);
	dmabroker_buffer_release(shared);
	dmabroker_buffer_release(buf);
	dmabroker_disconnect(waiter);
	dmabroker_disconnect(owner);
	CHECK(baseline_restored(base));
	return true;
}

int main(void)
{
	if (!daemon_pid_from_env("wire-test"))
		return 2;
	unsetenv("DMABROKER_ACCESS_CHANNEL");
	tap_plan(8);
	tap_step("the library's per-frame calls go on the access channel, and its counters say so", step_channel_used);
	tap_step("a broken channel: the calls go on over D-Bus, said once on stderr and counted", step_channel_broken);
	tap_step("DMABROKER_ACCESS_CHANNEL=0: D-Bus by choice, counted, nothing said", step_channel_off);
	tap_step("a wrong size, an unknown op, a fence where none goes, a message too long, an fd alone: each "
		 "closes the channel, keeps nothing, and the client is still served", step_bad_messages);
	tap_step("ALLOCATE with bad flags, 17 modifiers, a tiled modifier: refused by name on an open channel; "
		 "an END's fence not kept", step_bad_allocate);
	tap_step("a BUFFER that cannot be handed over (the client stopped reading): dropped, the channel closed",
		 step_failed_handover);
	tap_step("a BEGIN that waits, then the channel closes: its grant goes to nobody, nothing left",
		 step_answer_after_close);
	tap_step("a BEGIN that waits past the call timeout gives up; its late grant is handed back from "
		 "dmabroker_process()", step_late_grant_handed_back);
	return tap_done();
}

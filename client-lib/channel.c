/* SPDX-License-Identifier: MIT */
/* The access channel (protocol/access-wire.h), the binary path of the per-frame calls. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <limits.h>
#include <poll.h>
#include <time.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "cleanup.h"
#include "access-wire.h"
#include "errors.h"
#include "fdmsg.h"

#include "internal.h"
#include "buffers.h"
#include "channel.h"
#include "connection.h"
#include "transport.h"

/*
 * The access channel (protocol/access-wire.h): BeginAccess, the one-way
 * EndAccess, Allocate and the one-way Release in binary, one message each
 * way, for the per-frame path. Opened with the direct connection; without
 * it the calls go on D-Bus.
 */
/*
 * The channel is gone (why: r) or could not be opened: the per-frame calls
 * go on D-Bus from here. Counted for dmabroker_get_channel_stats(), and said
 * once on stderr: a silent fall-back would hide a broken channel.
 */
void channel_lost(struct dmabroker *b, int r, const char *what)
{
	b->channel_source = sd_event_source_unref(b->channel_source);
	b->access_channel = safe_close(b->access_channel);
	b->channel_unsynced = false;
	transport_update(b);
	b->channel_fallbacks++;
	b->channel_error = r < 0 ? r : -EIO;
	if (b->channel_warned)
		return;
	b->channel_warned = true;
	fprintf(stderr, "libdmabroker: access channel %s (%s): BeginAccess, EndAccess, Allocate and Release go over "
		"D-Bus while it is closed (a reconnection to a restarted daemon opens a new one)\n", what,
		strerror(-b->channel_error));
}

void open_access_channel(struct dmabroker *b)
{
	const char *env = getenv("DMABROKER_ACCESS_CHANNEL");
	sd_bus_error e = SD_BUS_ERROR_NULL;
	sd_bus_message *reply = NULL;
	uint64_t usec = 0;
	int fd, r;

	if (env && strcmp(env, "0") == 0)
		return; /* D-Bus for everything (to compare, or to debug) */
	r = sd_bus_call_method(b->direct, NULL, DMABROKER_OBJECT_PATH, DMABROKER_INTERFACE, "OpenAccessChannel", &e, &reply, "");

	if (r >= 0)
		r = sd_bus_message_read(reply, "h", &fd);
	if (r >= 0)
		r = take_fd(fd, &b->access_channel);
	sd_bus_message_unref(reply);
	if (r < 0) {
		char what[320];
		snprintf(what, sizeof(what), "cannot be opened%s%s", sd_bus_error_is_set(&e) ? ": " : "",
			 sd_bus_error_is_set(&e) && e.message ? e.message : "");
		channel_lost(b, r, what);
	}
	sd_bus_error_free(&e);
	/* a BEGIN that waits gives up when a D-Bus call would */
	b->channel_timeout_ms = -1;
	if (r >= 0 && sd_bus_get_method_call_timeout(b->direct, &usec) >= 0 && usec)
		b->channel_timeout_ms = usec / 1000u > INT_MAX ? INT_MAX : (int)(usec / 1000u);
	if (r >= 0)
		r = channel_watch(b);
	if (r < 0 && b->access_channel >= 0)
		channel_lost(b, r, "cannot be watched");
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * A message to the daemon. A full socket is the daemon reading slower than
 * this client sends (a burst of one-way ENDs or RELEASEs): wait for room, as
 * a blocking send would, until the channel's timeout. Only then, or on a
 * real error, has the channel failed.
 */
static int channel_send(struct dmabroker *b, const void *data, size_t len, int fd)
{
	int64_t deadline = b->channel_timeout_ms < 0 ? -1 : now_ms() + b->channel_timeout_ms;

	for (;;) {
		struct pollfd p = { .fd = b->access_channel, .events = POLLOUT };
		int r = fdmsg_send(b->access_channel, data, len, fd);
		int64_t left = deadline < 0 ? -1 : deadline - now_ms();

		if (r != -EAGAIN)
			return r;
		if (deadline >= 0 && left <= 0)
			return -ETIMEDOUT;
		if (poll(&p, 1, left > INT_MAX ? INT_MAX : (int)left) < 0 && errno != EINTR)
			return -errno;
	}
}

/*
 * The next answer: waits in poll() until deadline (CLOCK_MONOTONIC ms; -1:
 * no limit), then reads without blocking. Its size, 0 at the end of the
 * channel, -ETIMEDOUT, or a negative errno.
 */
static ssize_t channel_recv(struct dmabroker *b, union wire_answer *ans, int *ret_fd, int64_t deadline)
{
	for (;;) {
		struct pollfd p = { .fd = b->access_channel, .events = POLLIN };
		int64_t left = deadline < 0 ? -1 : deadline - now_ms();
		ssize_t n = fdmsg_recv(b->access_channel, ans, sizeof(*ans), ret_fd, MSG_DONTWAIT);
		int r;

		if (n != -EAGAIN)
			return n;
		if (deadline >= 0 && left <= 0)
			return -ETIMEDOUT;
		r = poll(&p, 1, left > INT_MAX ? INT_MAX : (int)left);
		if (r < 0 && errno != EINTR)
			return -errno;
	}
}

/* The answer to a call that gave up waiting: hand what it got straight back. */
static void give_back(struct dmabroker *b, const union wire_answer *ans, ssize_t n, int fd)
{
	struct access_wire_request back = { .op = ACCESS_WIRE_END, .id = ans->reply.grant };

	if (ans->head.op == ACCESS_WIRE_BUFFER && (size_t)n == sizeof(ans->buffer)) {
		back.op = ACCESS_WIRE_RELEASE;
		back.id = ans->buffer.id;
	}
	safe_close(fd);
	if (ans->head.op == ACCESS_WIRE_GRANTED || back.op == ACCESS_WIRE_RELEASE)
		channel_send(b, &back, sizeof(back), -1);
}

/*
 * The channel in b's event loop (dmabroker_get_fd()): between calls, only
 * late answers (to a BEGIN that gave up waiting) arrive, handed back at
 * once; or the end of the channel, said once, and the state moves on.
 */
static int on_channel_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct dmabroker *b = userdata;

	for (;;) {
		union wire_answer ans;
		int afd = -1;
		ssize_t n = fdmsg_recv(b->access_channel, &ans, sizeof(ans), &afd, MSG_DONTWAIT);
		if (n == -EAGAIN)
			return 0;
		if (n <= 0 || (size_t)n < ACCESS_WIRE_GRANTED_SIZE) {
			safe_close(afd);
			channel_lost(b, n == 0 ? -ECONNRESET : n < 0 ? (int)n : -EBADMSG, "broke");
			return 0;
		}
		b->channel_unsynced = false;
		give_back(b, &ans, n, afd);
	}
}

int channel_watch(struct dmabroker *b)
{
	b->channel_source = sd_event_source_unref(b->channel_source);
	if (b->access_channel < 0)
		return 0;
	return sd_event_add_io(b->event, &b->channel_source, b->access_channel, EPOLLIN, on_channel_io, b);
}

/*
 * Sends a request (len bytes, its cookie set) on the access channel and
 * waits for the answer with that cookie: 0 with *ans and *ret_fd (ours, or
 * -1); 1 when the daemon refused it (*refusal: its errno, recorded as the
 * last error); or a negative errno when the channel failed.
 */
int channel_call(struct dmabroker *b, const void *req, size_t len, uint32_t cookie, union wire_answer *ans,
		 int *ret_fd, int *refusal)
{
	int64_t deadline = b->channel_timeout_ms < 0 ? -1 : now_ms() + b->channel_timeout_ms;
	int r = channel_send(b, req, len, -1);

	while (r >= 0) {
		int fd;
		ssize_t n = channel_recv(b, ans, &fd, deadline);
		if (n <= 0)
			return n == 0 ? -ECONNRESET : (int)n;
		if ((size_t)n < ACCESS_WIRE_GRANTED_SIZE) {
			safe_close(fd);
			return -EBADMSG;
		}
		b->channel_unsynced = false; /* the daemon answers in order: it read what came before */
		if (ans->head.cookie != cookie) {
			give_back(b, ans, n, fd);
			continue;
		}
		if (ans->head.op == ACCESS_WIRE_ERROR && (size_t)n == sizeof(ans->reply)) {
			sd_bus_error e = SD_BUS_ERROR_NULL;
			safe_close(fd);
			const char *name = dmabroker_error_code_name(ans->reply.code);
			ans->reply.message[sizeof(ans->reply.message) - 1] = '\0';
			if (name) /* the protocol's error: by its D-Bus name, as the bus gives it */
				sd_bus_error_set(&e, name, ans->reply.message);
			else
				sd_bus_error_set_errnof(&e, ans->reply.error > 0 ? ans->reply.error : EIO, "%s",
							ans->reply.message);
			*refusal = set_error(b, &e, ans->reply.error > 0 ? -ans->reply.error : -EIO);
			sd_bus_error_free(&e);
			return 1;
		}
		if ((ans->head.op == ACCESS_WIRE_GRANTED && (size_t)n == ACCESS_WIRE_GRANTED_SIZE) ||
		    (ans->head.op == ACCESS_WIRE_BUFFER && (size_t)n == sizeof(ans->buffer) && fd >= 0)) {
			*ret_fd = fd;
			clear_error(b);
			return 0;
		}
		safe_close(fd);
		return -EBADMSG;
	}
	return r;
}

/* The channel broke (the daemon went away, or spoke nonsense): D-Bus from here, reconnecting if need be. */
void channel_broke(struct dmabroker *b, int r)
{
	channel_lost(b, r, r == -EBADMSG ? "broke: the daemon's answer was none" : "broke");
	daemon_lost(b, r == -EBADMSG ? 0 : -ECONNRESET);
}

/* BEGIN on the access channel: as channel_call(). */
int channel_begin(struct dmabroker_buffer *buf, uint32_t mode, uint32_t flags, uint64_t *ret_grant,
			 int *ret_fence, int *refusal)
{
	struct dmabroker *b = buf->b;
	const struct access_wire_request w = {
		.op = ACCESS_WIRE_BEGIN, .cookie = ++b->access_cookie, .id = buf->id, .mode = mode, .flags = flags,
	};
	union wire_answer a;
	int r = channel_call(b, &w, sizeof(w), w.cookie, &a, ret_fence, refusal);

	if (r == 0 && a.head.op != ACCESS_WIRE_GRANTED) {
		*ret_fence = safe_close(*ret_fence);
		return -EBADMSG;
	}
	if (r == 0)
		*ret_grant = a.reply.grant;
	return r;
}

/*
 * ALLOCATE on the access channel: 0 with *ret, 1 refused (*refusal), a
 * negative errno when the channel failed, or -E2BIG when the descriptor
 * does not fit the channel's message (then D-Bus takes it).
 */
int channel_allocate(struct dmabroker *b, const struct dmabroker_alloc_desc *d, struct dmabroker_buffer **ret,
			    int *refusal)
{
	struct access_wire_alloc w = {
		.op = ACCESS_WIRE_ALLOCATE, .width = d->width, .height = d->height, .fourcc = d->fourcc,
		.usage = d->usage, .flags = d->version >= 2 && (d->flags & DMABROKER_ALLOC_FRESH) ? 1 : 0,
		.n_modifiers = (uint32_t)d->n_modifiers,
	};
	struct dmabroker_buffer *buf;
	union wire_answer a;
	int fd = -1, r;

	if (d->n_modifiers > ACCESS_WIRE_MAX_MODIFIERS || (d->backend && strlen(d->backend) >= sizeof(w.backend)) ||
	    (d->device && strlen(d->device) >= sizeof(w.device)))
		return -E2BIG;
	if (d->n_modifiers)
		memcpy(w.modifiers, d->modifiers, d->n_modifiers * sizeof(uint64_t));
	if (d->backend)
		strcpy(w.backend, d->backend);
	if (d->device)
		strcpy(w.device, d->device);
	w.cookie = ++b->access_cookie;
	r = channel_call(b, &w, sizeof(w), w.cookie, &a, &fd, refusal);
	if (r != 0)
		return r;
	if (a.head.op != ACCESS_WIRE_BUFFER || a.buffer.n_planes > ACCESS_WIRE_MAX_PLANES ||
	    a.buffer.n_planes > MAX_PLANES) {
		safe_close(fd);
		return -EBADMSG;
	}
	buf = size_fits(a.buffer.size) ? buffer_new(b) : NULL;
	if (!buf) {
		const struct access_wire_request back = { .op = ACCESS_WIRE_RELEASE, .id = a.buffer.id };
		/* a buffer this client cannot map, or no memory: given back */
		channel_send(b, &back, sizeof(back), -1);
		safe_close(fd);
		*refusal = size_fits(a.buffer.size) ? set_error(b, NULL, -ENOMEM) : refuse_size(b, a.buffer.size, false);
		return 1;
	}
	buf->id = a.buffer.id;
	buf->fd = fd;
	buf->size = a.buffer.size;
	buf->modifier = a.buffer.modifier;
	buf->n_planes = a.buffer.n_planes;
	for (unsigned i = 0; i < a.buffer.n_planes; i++) {
		buf->planes[i].offset = a.buffer.planes[i].offset;
		buf->planes[i].stride = a.buffer.planes[i].stride;
	}
	a.buffer.backend[sizeof(a.buffer.backend) - 1] = '\0';
	allocated(buf, d, a.buffer.backend, a.buffer.dmabuf, ret);
	return 0;
}

EXPORT int dmabroker_get_channel_stats(const struct dmabroker *b, struct dmabroker_channel_stats *ret)
{
	if (!b || !ret || ret->version != DMABROKER_CHANNEL_STATS_VERSION)
		return -EINVAL;
	*ret = (struct dmabroker_channel_stats){
		.version = DMABROKER_CHANNEL_STATS_VERSION,
		.active = b->access_channel >= 0,
		.channel_calls = b->channel_calls,
		.dbus_calls = b->dbus_calls,
		.fallbacks = b->channel_fallbacks,
		.last_error = b->channel_error,
	};
	return 0;
}

/* ---- the channel as a transport (transport.h) ---- */

static int chan_allocate(struct dmabroker *b, const struct dmabroker_alloc_desc *d, struct dmabroker_buffer **ret)
{
	int refusal = 0, r = channel_allocate(b, d, ret, &refusal);

	if (r == -E2BIG) {
		/* a descriptor the channel's message cannot carry: D-Bus takes it, after what the channel sent */
		transport_sync(b);
		return direct_transport.allocate(b, d, ret);
	}
	if (r < 0) {
		channel_broke(b, r); /* on D-Bus from here, on a new connection if the daemon restarted */
		return TRANSPORT_MOVED;
	}
	b->channel_calls++;
	return r == 0 ? 0 : refusal;
}

static int chan_begin(struct dmabroker_buffer *buf, uint32_t mode, uint32_t flags, uint64_t *ret_grant,
		      int *ret_fence)
{
	struct dmabroker *b = buf->b;
	int refusal = 0, r = channel_begin(buf, mode, flags, ret_grant, ret_fence, &refusal);

	if (r == -ETIMEDOUT) { /* the daemon did not answer in time: the channel is fine */
		b->channel_calls++;
		return set_error(b, NULL, r);
	}
	if (r < 0) {
		channel_broke(b, r);
		return TRANSPORT_MOVED;
	}
	b->channel_calls++;
	return r == 0 ? 0 : refusal;
}

/* A one-way message: sent, or the channel broke (said, and the state moved on). */
static int chan_send_oneway(struct dmabroker *b, const struct access_wire_request *w, int fence)
{
	int r = channel_send(b, w, sizeof(*w), fence);

	if (r < 0) {
		channel_lost(b, r, "broke");
		return TRANSPORT_MOVED;
	}
	b->channel_calls++;
	b->channel_unsynced = true;
	clear_error(b);
	return 0;
}

static int chan_end_oneway(struct dmabroker *b, uint64_t grant, int release_fence)
{
	const struct access_wire_request w = { .op = ACCESS_WIRE_END, .id = grant };
	return chan_send_oneway(b, &w, release_fence);
}

static int chan_release(struct dmabroker_buffer *buf)
{
	const struct access_wire_request w = { .op = ACCESS_WIRE_RELEASE, .id = buf->id };
	return chan_send_oneway(buf->b, &w, -1);
}

/*
 * The sync point: a BEGIN of buffer 0 (no buffer has that id), answered at
 * once with an ERROR. The daemon reads the channel in order, so when the
 * answer is here it has read every END and RELEASE sent before it.
 */
static int chan_sync(struct dmabroker *b)
{
	const struct access_wire_request w = { .op = ACCESS_WIRE_BEGIN, .cookie = ++b->access_cookie };
	union wire_answer a;
	int fd = -1, refusal = 0, r;

	if (!b->channel_unsynced)
		return 0;
	r = channel_call(b, &w, sizeof(w), w.cookie, &a, &fd, &refusal);
	if (r < 0) {
		channel_broke(b, r);
		return r;
	}
	if (r == 0 && a.head.op == ACCESS_WIRE_GRANTED) { /* cannot be; give it back */
		const struct access_wire_request end = { .op = ACCESS_WIRE_END, .id = a.reply.grant };
		channel_send(b, &end, sizeof(end), -1);
	}
	safe_close(fd);
	clear_error(b);
	return 0;
}

const struct transport channel_transport = {
	.name = "channel",
	.allocate = chan_allocate,
	.begin = chan_begin,
	.end_oneway = chan_end_oneway,
	.release = chan_release,
	.sync = chan_sync,
};

/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <sys/ioctl.h>

#include <linux/dma-buf.h>
#include <systemd/sd-bus.h>

#include "cleanup.h"
#include "access-wire.h"
#include "errors-sdbus.h"
#include "fdmsg.h"
#include "fence.h"

#include "internal.h"

static int on_moved(sd_bus_message *m, void *userdata, sd_bus_error *ret_error);

sd_bus *calls(const struct dmabroker *b)
{
	return b->direct ? b->direct : b->bus;
}

const char *destination(const struct dmabroker *b)
{
	return b->direct ? NULL : BUS_NAME;
}

int set_error(struct dmabroker *b, const sd_bus_error *e, int r)
{
	sd_bus_error_free(&b->error);
	if (e && sd_bus_error_is_set(e))
		sd_bus_error_copy(&b->error, e);
	else
		sd_bus_error_set_errno(&b->error, r);
	return r;
}

void clear_error(struct dmabroker *b)
{
	sd_bus_error_free(&b->error);
}

static int reconnect(struct dmabroker *b);

static void remember_owner(struct dmabroker *b, const char *owner)
{
	if (owner && *owner)
		snprintf(b->daemon_owner, sizeof(b->daemon_owner), "%s", owner);
}

/*
 * The daemon's name changed hands: a restarted daemon (with the fd store it
 * kept our buffers) gets our direct connection and our buffers back.
 */
static int on_name_owner_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
	struct dmabroker *b = userdata;
	const char *name, *old_owner, *new_owner;

	if (sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner) < 0 || strcmp(name, BUS_NAME) != 0 ||
	    !*new_owner)
		return 0;
	if (b->daemon_owner[0] && strcmp(b->daemon_owner, new_owner) != 0 && !b->reconnecting)
		reconnect(b);
	remember_owner(b, new_owner);
	return 0;
}

static int connect_common(sd_bus *bus, struct dmabroker **ret)
{
	struct dmabroker *b = calloc(1, sizeof(*b));
	int r;

	if (!b) {
		sd_bus_unref(bus);
		return -ENOMEM;
	}
	b->bus = bus;
	b->access_channel = -1;
	r = sd_bus_match_signal(bus, NULL, BUS_NAME, BROKER_PATH, BROKER_INTERFACE, "Moved", on_moved, b);
	if (r >= 0)
		r = sd_bus_add_match(bus, NULL,
				     "type='signal',sender='org.freedesktop.DBus',path='/org/freedesktop/DBus',"
				     "interface='org.freedesktop.DBus',member='NameOwnerChanged',arg0='" BUS_NAME "'",
				     on_name_owner_changed, b);
	if (r >= 0) {
		sd_bus_message *reply = NULL;
		const char *owner;
		if (sd_bus_call_method(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
				       "GetNameOwner", NULL, &reply, "s", BUS_NAME) >= 0 &&
		    sd_bus_message_read(reply, "s", &owner) > 0)
			remember_owner(b, owner);
		sd_bus_message_unref(reply);
	}
	if (r >= 0)
		r = sd_event_new(&b->event);
	if (r >= 0)
		r = sd_bus_attach_event(bus, b->event, SD_EVENT_PRIORITY_NORMAL);
	if (r < 0) {
		dmabroker_disconnect(b);
		return r;
	}
	*ret = b;
	return 0;
}

EXPORT int dmabroker_connect(enum dmabroker_bus which, struct dmabroker **ret)
{
	sd_bus *bus = NULL;
	int r;

	sd_bus_error_add_map(dmabroker_error_map);
	r = which == DMABROKER_BUS_SESSION ? sd_bus_open_user(&bus) : sd_bus_open_system(&bus);
	if (r < 0)
		return r;
	return connect_common(bus, ret);
}

EXPORT int dmabroker_connect_address(const char *address, struct dmabroker **ret)
{
	sd_bus *bus = NULL;
	int r;

	sd_bus_error_add_map(dmabroker_error_map);
	r = sd_bus_new(&bus);
	if (r >= 0)
		r = sd_bus_set_address(bus, address);
	if (r >= 0)
		r = sd_bus_set_bus_client(bus, 1);
	if (r >= 0)
		r = sd_bus_negotiate_fds(bus, 1);
	if (r >= 0)
		r = sd_bus_start(bus);
	if (r < 0) {
		sd_bus_unref(bus);
		return r;
	}
	return connect_common(bus, ret);
}

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
static void channel_lost(struct dmabroker *b, int r, const char *what)
{
	b->access_channel = safe_close(b->access_channel);
	b->channel_fallbacks++;
	b->channel_error = r < 0 ? r : -EIO;
	if (b->channel_warned)
		return;
	b->channel_warned = true;
	fprintf(stderr, "libdmabroker: access channel %s (%s): BeginAccess, EndAccess, Allocate and Release go over "
		"D-Bus while it is closed (a reconnection to a restarted daemon opens a new one)\n", what,
		strerror(-b->channel_error));
}

static void open_access_channel(struct dmabroker *b)
{
	const char *env = getenv("DMABROKER_ACCESS_CHANNEL");
	sd_bus_error e = SD_BUS_ERROR_NULL;
	sd_bus_message *reply = NULL;
	uint64_t usec = 0;
	int fd, r;

	if (env && strcmp(env, "0") == 0)
		return; /* D-Bus for everything (to compare, or to debug) */
	r = sd_bus_call_method(b->direct, NULL, BROKER_PATH, BROKER_INTERFACE, "OpenAccessChannel", &e, &reply, "");

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
	if (r >= 0 && sd_bus_get_method_call_timeout(b->direct, &usec) >= 0 && usec) {
		struct timeval tv = { .tv_sec = (time_t)(usec / 1000000u), .tv_usec = (suseconds_t)(usec % 1000000u) };
		setsockopt(b->access_channel, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	}
}

static void buffer_link(struct dmabroker_buffer *buf);

/* An allocated buffer (id, fd, size, modifier and planes set) takes the rest from its descriptor, and is ours. */
static void allocated(struct dmabroker_buffer *buf, const struct dmabroker_alloc_desc *d, const char *backend,
		      bool dmabuf, struct dmabroker_buffer **ret)
{
	snprintf(buf->backend, sizeof(buf->backend), "%s", backend);
	buf->dmabuf = dmabuf;
	buf->width = d->width;
	buf->height = d->height;
	buf->fourcc = d->fourcc;
	buf->usage = d->usage;
	buffer_link(buf);
	*ret = buf;
}

/* What the daemon answers on the access channel. */
union wire_answer {
	struct {
		uint32_t op, cookie;
	} head;
	struct access_wire_reply reply;
	struct access_wire_buffer buffer;
};

/*
 * Sends a request (len bytes, its cookie set) on the access channel and
 * waits for the answer with that cookie: 0 with *ans and *ret_fd (ours, or
 * -1); 1 when the daemon refused it (*refusal: its errno, recorded as the
 * last error); or a negative errno when the channel failed.
 */
static int channel_call(struct dmabroker *b, const void *req, size_t len, uint32_t cookie, union wire_answer *ans,
			int *ret_fd, int *refusal)
{
	int r = fdmsg_send(b->access_channel, req, len, -1);

	while (r >= 0) {
		int fd;
		ssize_t n = fdmsg_recv(b->access_channel, ans, sizeof(*ans), &fd, 0);
		if (n <= 0)
			return n == 0 ? -ECONNRESET : n == -EAGAIN ? -ETIMEDOUT : (int)n;
		if ((size_t)n < ACCESS_WIRE_GRANTED_SIZE) {
			safe_close(fd);
			return -EBADMSG;
		}
		if (ans->head.cookie != cookie) {
			/* the answer to a call that gave up waiting: hand what it got straight back */
			struct access_wire_request back = { .op = ACCESS_WIRE_END, .id = ans->reply.grant };
			if (ans->head.op == ACCESS_WIRE_BUFFER && (size_t)n == sizeof(ans->buffer)) {
				back.op = ACCESS_WIRE_RELEASE;
				back.id = ans->buffer.id;
			}
			safe_close(fd);
			if (ans->head.op == ACCESS_WIRE_GRANTED || back.op == ACCESS_WIRE_RELEASE)
				fdmsg_send(b->access_channel, &back, sizeof(back), -1);
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
static void channel_broke(struct dmabroker *b, int r)
{
	channel_lost(b, r, r == -EBADMSG ? "broke: the daemon's answer was none" : "broke");
	daemon_lost(b, r == -EBADMSG ? 0 : -ECONNRESET);
}

/* BEGIN on the access channel: as channel_call(). */
static int channel_begin(struct dmabroker_buffer *buf, uint32_t mode, uint32_t flags, uint64_t *ret_grant,
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
static int channel_allocate(struct dmabroker *b, const struct dmabroker_alloc_desc *d, struct dmabroker_buffer **ret,
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
	buf = buffer_new(b);
	if (!buf) {
		const struct access_wire_request back = { .op = ACCESS_WIRE_RELEASE, .id = a.buffer.id };
		fdmsg_send(b->access_channel, &back, sizeof(back), -1);
		safe_close(fd);
		*refusal = set_error(b, NULL, -ENOMEM);
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

EXPORT int dmabroker_open_direct(struct dmabroker *b)
{
	sd_bus_error e = SD_BUS_ERROR_NULL;
	sd_bus_message *reply = NULL;
	sd_bus *direct = NULL;
	int fd, own = -1, r;

	if (b->direct)
		return 0;
	r = sd_bus_call_method(b->bus, BUS_NAME, BROKER_PATH, BROKER_INTERFACE, "OpenDirect", &e, &reply, "");
	if (r >= 0)
		r = sd_bus_message_read(reply, "h", &fd);
	if (r >= 0) {
		own = fcntl(fd, F_DUPFD_CLOEXEC, 3);
		r = own < 0 ? -errno : 0;
	}
	sd_bus_message_unref(reply);
	if (r >= 0)
		r = sd_bus_new(&direct);
	if (r >= 0)
		r = sd_bus_set_fd(direct, own, own);
	if (r >= 0) {
		own = -1;
		r = sd_bus_set_anonymous(direct, 1);
	}
	if (r >= 0)
		r = sd_bus_negotiate_fds(direct, 1);
	if (r >= 0)
		r = sd_bus_start(direct);
	if (r >= 0)
		r = sd_bus_match_signal(direct, NULL, NULL, BROKER_PATH, BROKER_INTERFACE, "Moved", on_moved, b);
	if (r >= 0)
		r = sd_bus_match_signal(direct, NULL, NULL, BROKER_PATH, BROKER_INTERFACE, NULL, stream_on_signal, b);
	if (r >= 0)
		r = sd_bus_attach_event(direct, sd_bus_get_event(b->bus), SD_EVENT_PRIORITY_NORMAL);
	if (r < 0) {
		safe_close(own);
		sd_bus_unref(direct);
		set_error(b, &e, r);
		sd_bus_error_free(&e);
		return r;
	}
	b->direct = direct;
	open_access_channel(b);
	return 0;
}

EXPORT bool dmabroker_is_direct(const struct dmabroker *b)
{
	return b->direct != NULL;
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

void buffer_free(struct dmabroker_buffer *buf)
{
	if (buf->prevp) {
		*buf->prevp = buf->next;
		if (buf->next)
			buf->next->prevp = buf->prevp;
	}
	safe_close(buf->fd);
	free(buf);
}

EXPORT struct dmabroker *dmabroker_disconnect(struct dmabroker *b)
{
	if (!b)
		return NULL;
	streams_free_all(b);
	while (b->buffers)
		buffer_free(b->buffers);
	if (b->direct) {
		sd_bus_detach_event(b->direct);
		sd_bus_flush_close_unref(b->direct);
	}
	safe_close(b->access_channel);
	if (b->bus) {
		sd_bus_detach_event(b->bus);
		sd_bus_flush_close_unref(b->bus);
	}
	sd_event_unref(b->event);
	sd_bus_error_free(&b->error);
	free(b);
	return NULL;
}

EXPORT int dmabroker_get_fd(struct dmabroker *b)
{
	return sd_event_get_fd(b->event);
}

EXPORT int dmabroker_process(struct dmabroker *b)
{
	int r;
	do
		r = sd_event_run(b->event, 0);
	while (r > 0);
	return r;
}

EXPORT int dmabroker_attach_event(struct dmabroker *b, sd_event *event, int priority)
{
	int r;

	sd_bus_detach_event(b->bus);
	if (b->direct)
		sd_bus_detach_event(b->direct);
	r = sd_bus_attach_event(b->bus, event, priority);
	if (r >= 0 && b->direct)
		r = sd_bus_attach_event(b->direct, event, priority);
	if (r < 0)
		return r;
	sd_event_unref(b->event);
	b->event = sd_event_ref(event);
	streams_attach_event(b);
	return 0;
}

EXPORT const char *dmabroker_error_name(const struct dmabroker *b)
{
	return b->error.name;
}

EXPORT const char *dmabroker_error_message(const struct dmabroker *b)
{
	return b->error.message;
}

struct dmabroker_buffer *buffer_new(struct dmabroker *b)
{
	struct dmabroker_buffer *buf = calloc(1, sizeof(*buf));
	if (!buf)
		return NULL;
	buf->b = b;
	buf->fd = -1;
	return buf;
}

static void buffer_link(struct dmabroker_buffer *buf)
{
	struct dmabroker *b = buf->b;
	buf->next = b->buffers;
	if (b->buffers)
		b->buffers->prevp = &buf->next;
	buf->prevp = &b->buffers;
	b->buffers = buf;
}

int read_planes(sd_bus_message *m, struct dmabroker_buffer *buf)
{
	uint64_t offset;
	uint32_t stride;
	int r = sd_bus_message_enter_container(m, 'a', "(tu)");

	if (r < 0)
		return r;
	while ((r = sd_bus_message_read(m, "(tu)", &offset, &stride)) > 0) {
		if (buf->n_planes == MAX_PLANES)
			return -EBADMSG;
		buf->planes[buf->n_planes].offset = offset;
		buf->planes[buf->n_planes++].stride = stride;
	}
	if (r < 0)
		return r;
	return sd_bus_message_exit_container(m);
}

int take_fd(int fd, int *ret)
{
	int own = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (own < 0)
		return -errno;
	*ret = own;
	return 0;
}

/* Parses an Allocate reply into a new buffer. */
static int parse_allocate_reply(struct dmabroker *b, const struct dmabroker_alloc_desc *d, sd_bus_message *m,
				struct dmabroker_buffer **ret)
{
	struct dmabroker_buffer *buf = buffer_new(b);
	const char *backend;
	int fd, dmabuf, r;

	if (!buf)
		return -ENOMEM;
	r = sd_bus_message_read(m, "thtt", &buf->id, &fd, &buf->size, &buf->modifier);
	if (r >= 0)
		r = take_fd(fd, &buf->fd);
	if (r >= 0)
		r = read_planes(m, buf);
	if (r >= 0)
		r = sd_bus_message_read(m, "sb", &backend, &dmabuf);
	if (r < 0) {
		buffer_free(buf);
		return r;
	}
	allocated(buf, d, backend, dmabuf, ret);
	return 0;
}

/* A descriptor the library can send: 0 or -EINVAL, before any call. */
static int check_alloc_desc(const struct dmabroker_alloc_desc *d)
{
	/* version 1 descriptors end before flags */
	if (!d || d->version < 1 || d->version > DMABROKER_ALLOC_DESC_VERSION || (d->n_modifiers && !d->modifiers) ||
	    (d->version >= 2 && (d->flags & ~DMABROKER_ALLOC_FRESH)))
		return -EINVAL;
	return 0;
}

static int new_allocate_call(struct dmabroker *b, const struct dmabroker_alloc_desc *d, sd_bus_message **ret)
{
	sd_bus_message *m = NULL;
	int r = check_alloc_desc(d);

	if (r < 0)
		return r;
	r = sd_bus_message_new_method_call(calls(b), &m, destination(b), BROKER_PATH, BROKER_INTERFACE, "Allocate");
	if (r >= 0)
		r = sd_bus_message_append(m, "uuu", d->width, d->height, d->fourcc);
	if (r >= 0)
		r = sd_bus_message_append_array(m, 't', d->modifiers, d->n_modifiers * sizeof(uint64_t));
	if (r >= 0)
		r = sd_bus_message_append(m, "u", d->usage);
	if (r >= 0)
		r = sd_bus_message_open_container(m, 'a', "{sv}");
	if (r >= 0 && d->backend)
		r = sd_bus_message_append(m, "{sv}", "backend", "s", d->backend);
	if (r >= 0 && d->device)
		r = sd_bus_message_append(m, "{sv}", "device", "s", d->device);
	if (r >= 0 && d->version >= 2 && (d->flags & DMABROKER_ALLOC_FRESH))
		r = sd_bus_message_append(m, "{sv}", "fresh", "b", 1);
	if (r >= 0)
		r = sd_bus_message_close_container(m);
	if (r < 0) {
		sd_bus_message_unref(m);
		return r;
	}
	*ret = m;
	return 0;
}

/* Sends m and waits; on failure records the error. Takes m. */
static bool connection_lost(int r, const sd_bus_error *e)
{
	return r == -ECONNRESET || r == -ENOTCONN || r == -EPIPE || r == -ESHUTDOWN ||
	       (e && sd_bus_error_has_name(e, SD_BUS_ERROR_SERVICE_UNKNOWN)) ||
	       (e && sd_bus_error_has_name(e, SD_BUS_ERROR_NAME_HAS_NO_OWNER)) ||
	       (e && sd_bus_error_has_name(e, SD_BUS_ERROR_NO_REPLY));
}

/* The same call again, for the connection that replaced the one m was made for. */
static int copy_call(struct dmabroker *b, sd_bus_message *m, sd_bus_message **ret)
{
	int r = sd_bus_message_new_method_call(calls(b), ret, destination(b), BROKER_PATH, BROKER_INTERFACE,
					       sd_bus_message_get_member(m));
	/* only a sealed message can be read back; one never sent is not yet */
	(void)sd_bus_message_seal(m, 1, 0); /* any 32-bit cookie: it is never sent */
	if (r >= 0)
		r = sd_bus_message_rewind(m, 1);
	if (r >= 0)
		r = sd_bus_message_copy(*ret, m, 1);
	if (r < 0)
		*ret = sd_bus_message_unref(*ret);
	return r;
}

int call(struct dmabroker *b, sd_bus_message *m, sd_bus_message **reply)
{
	sd_bus_error e = SD_BUS_ERROR_NULL;
	int r;

	/*
	 * A daemon restart we have not heard of yet: on the bus, the name's new
	 * owner would answer as if we were new, so hear NameOwnerChanged
	 * first. A direct connection needs no look (a syscall per call): it
	 * breaks with the daemon, and the call below then reconnects.
	 */
	while (!b->direct && !b->reconnecting && sd_bus_process(b->bus, NULL) > 0)
		;
	if (sd_bus_message_get_bus(m) != calls(b)) {
		sd_bus_message *again = NULL;
		r = copy_call(b, m, &again);
		sd_bus_message_unref(m);
		if (r < 0)
			return set_error(b, NULL, r);
		m = again;
	}
	r = sd_bus_call(calls(b), m, 0, &e, reply);
	if (r < 0 && connection_lost(r, &e) && !b->reconnecting && reconnect(b) == 0) {
		sd_bus_message *again = NULL;
		if (copy_call(b, m, &again) >= 0) {
			sd_bus_error_free(&e);
			r = sd_bus_call(calls(b), again, 0, &e, reply);
			sd_bus_message_unref(again);
		}
	}
	if (r >= 0 && !b->direct)
		remember_owner(b, sd_bus_message_get_sender(*reply));
	sd_bus_message_unref(m);
	if (r < 0)
		set_error(b, &e, r);
	else
		clear_error(b);
	sd_bus_error_free(&e);
	return r;
}

int new_call(struct dmabroker *b, const char *method, sd_bus_message **ret)
{
	return sd_bus_message_new_method_call(calls(b), ret, destination(b), BROKER_PATH, BROKER_INTERFACE, method);
}

/*
 * Reclaims n buffers from buf on: 0, 1 when the daemon refused the list
 * (NotReclaimable: one of them is not ours to take back; nothing was
 * taken), or <0.
 */
static int reclaim_some(struct dmabroker *b, struct dmabroker_buffer *buf, unsigned n)
{
	sd_bus_message *m = NULL, *reply = NULL;
	sd_bus_error e = SD_BUS_ERROR_NULL;
	int r = new_call(b, "Reclaim", &m);

	if (r >= 0)
		r = sd_bus_message_open_container(m, 'a', "(th)");
	for (unsigned i = 0; r >= 0 && buf && i < n; buf = buf->next, i++)
		r = sd_bus_message_append(m, "(th)", buf->id, buf->fd);
	if (r >= 0)
		r = sd_bus_message_close_container(m);
	if (r >= 0)
		r = sd_bus_call(calls(b), m, 0, &e, &reply);
	if (r < 0 && sd_bus_error_has_name(&e, ERR_NOT_RECLAIMABLE))
		r = 1;
	sd_bus_error_free(&e);
	sd_bus_message_unref(m);
	sd_bus_message_unref(reply);
	return r;
}

/* At most this many buffers per Reclaim (the daemon's limit). */
#define RECLAIM_BATCH 256u

/*
 * The daemon restarted (or went away): wait up to 10 s for it, open a new
 * direct connection if we had one, and reclaim every buffer we hold by
 * showing our fd of it: in batches, and one at a time in a batch the
 * daemon refused (a buffer it did not restore, or not ours to take back).
 * Buffers it did not keep stay usable locally (the fd is ours) but are no
 * longer the broker's.
 */
static int reconnect(struct dmabroker *b)
{
	sd_bus_message *reply = NULL;
	bool had_direct = b->direct != NULL;
	struct dmabroker_buffer *buf;
	int r = -ETIMEDOUT;

	b->reconnecting = true;
	if (b->direct) {
		sd_bus_detach_event(b->direct);
		b->direct = sd_bus_flush_close_unref(b->direct);
	}
	b->access_channel = safe_close(b->access_channel);
	for (int i = 0; i < 200; i++) {
		const char *owner;
		r = sd_bus_call_method(b->bus, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
				       "GetNameOwner", NULL, &reply, "s", BUS_NAME);
		if (r >= 0 && sd_bus_message_read(reply, "s", &owner) > 0) {
			remember_owner(b, owner);
			break;
		}
		reply = sd_bus_message_unref(reply);
		usleep(50000);
	}
	reply = sd_bus_message_unref(reply);
	if (r < 0)
		goto out;
	if (had_direct && (r = dmabroker_open_direct(b)) < 0)
		goto out;
	r = 0;
	for (buf = b->buffers; r >= 0 && buf;) {
		struct dmabroker_buffer *next = buf;
		unsigned n = 0;

		for (; next && n < RECLAIM_BATCH; next = next->next)
			n++;
		r = reclaim_some(b, buf, n);
		if (r == 1) /* one at a time; a refused one stays ours alone */
			for (r = 0; r >= 0 && buf != next; buf = buf->next)
				r = reclaim_some(b, buf, 1);
		if (r == 1)
			r = 0;
		buf = next;
	}
	if (r >= 0)
		b->reconnects++;
out:
	streams_daemon_lost(b);
	b->reconnecting = false;
	return r < 0 ? r : 0;
}

int daemon_lost(struct dmabroker *b, int r)
{
	if (!connection_lost(r, NULL) || b->reconnecting)
		return 0;
	return reconnect(b) == 0 ? 1 : -1;
}

EXPORT unsigned dmabroker_get_reconnect_count(const struct dmabroker *b)
{
	return b->reconnects;
}

EXPORT int dmabroker_allocate(struct dmabroker *b, const struct dmabroker_alloc_desc *desc,
			      struct dmabroker_buffer **ret)
{
	sd_bus_message *m = NULL, *reply = NULL;
	int r = check_alloc_desc(desc);

	if (r < 0)
		return set_error(b, NULL, r);
	if (b->access_channel >= 0) {
		int refusal = 0;
		r = channel_allocate(b, desc, ret, &refusal);
		if (r >= 0)
			b->channel_calls++;
		if (r >= 0)
			return r == 0 ? 0 : refusal;
		if (r != -E2BIG)
			channel_broke(b, r); /* on D-Bus from here, on a new connection if the daemon restarted */
	}
	b->dbus_calls++;
	r = new_allocate_call(b, desc, &m);
	if (r < 0)
		return set_error(b, NULL, r);
	r = call(b, m, &reply);
	if (r >= 0)
		r = parse_allocate_reply(b, desc, reply, ret);
	sd_bus_message_unref(reply);
	return r;
}

/*
 * Sends m (taken) without waiting; handler gets closure (taken: freed once
 * the reply was handled, or when the connection closes first).
 */
static int call_async(struct dmabroker *b, sd_bus_message *m, sd_bus_message_handler_t handler, void *closure)
{
	sd_bus_slot *slot = NULL;
	int r = sd_bus_call_async(calls(b), &slot, m, handler, closure, 0);

	sd_bus_message_unref(m);
	if (r < 0) {
		free(closure);
		return set_error(b, NULL, r);
	}
	sd_bus_slot_set_destroy_callback(slot, free);
	sd_bus_slot_set_floating(slot, 1);
	sd_bus_slot_unref(slot);
	return 0;
}

struct async_alloc {
	struct dmabroker *b;
	struct dmabroker_alloc_desc desc;
	dmabroker_buffer_callback cb;
	void *userdata;
};

static int on_allocate_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
	struct async_alloc *a = userdata;
	struct dmabroker_buffer *buf = NULL;
	const sd_bus_error *e = sd_bus_message_get_error(m);
	int r;

	if (e) {
		r = set_error(a->b, e, -sd_bus_message_get_errno(m));
	} else {
		r = parse_allocate_reply(a->b, &a->desc, m, &buf);
		if (r < 0)
			set_error(a->b, NULL, r);
	}
	a->cb(a->b, r < 0 ? r : 0, buf, a->userdata);
	return 0;
}

EXPORT int dmabroker_allocate_async(struct dmabroker *b, const struct dmabroker_alloc_desc *desc,
				    dmabroker_buffer_callback cb, void *userdata)
{
	sd_bus_message *m = NULL;
	struct async_alloc *a;
	int r;

	if (!cb)
		return -EINVAL;
	r = new_allocate_call(b, desc, &m);
	if (r < 0)
		return set_error(b, NULL, r);
	a = calloc(1, sizeof(*a));
	if (!a) {
		sd_bus_message_unref(m);
		return -ENOMEM;
	}
	*a = (struct async_alloc){ b, *desc, cb, userdata };
	/* The hints are the caller's strings: they are in m already; do not keep them. */
	a->desc.modifiers = NULL;
	a->desc.backend = a->desc.device = NULL;
	return call_async(b, m, on_allocate_reply, a);
}

EXPORT int dmabroker_import(struct dmabroker *b, int fd, uint32_t width, uint32_t height, uint32_t fourcc,
			    uint64_t modifier, const struct dmabroker_plane *planes, unsigned n_planes,
			    uint32_t usage, struct dmabroker_buffer **ret)
{
	sd_bus_message *m = NULL, *reply = NULL;
	struct dmabroker_buffer *buf;
	int r;

	if (n_planes > MAX_PLANES || (n_planes && !planes))
		return set_error(b, NULL, -EINVAL);
	buf = buffer_new(b);
	if (!buf)
		return -ENOMEM;
	r = take_fd(fd, &buf->fd);
	if (r >= 0)
		r = new_call(b, "Import", &m);
	if (r >= 0)
		r = sd_bus_message_append(m, "huuut", fd, width, height, fourcc, modifier);
	if (r >= 0)
		r = sd_bus_message_open_container(m, 'a', "(tu)");
	for (unsigned i = 0; r >= 0 && i < n_planes; i++)
		r = sd_bus_message_append(m, "(tu)", planes[i].offset, planes[i].stride);
	if (r >= 0)
		r = sd_bus_message_close_container(m);
	if (r >= 0)
		r = sd_bus_message_append(m, "u", usage);
	if (r < 0) {
		sd_bus_message_unref(m);
		buffer_free(buf);
		return set_error(b, NULL, r);
	}
	r = call(b, m, &reply);
	if (r >= 0)
		r = sd_bus_message_read(reply, "tt", &buf->id, &buf->size);
	sd_bus_message_unref(reply);
	if (r < 0) {
		buffer_free(buf);
		return r;
	}
	buf->width = width;
	buf->height = height;
	buf->fourcc = fourcc;
	buf->modifier = modifier;
	buf->usage = usage;
	buf->dmabuf = true;
	snprintf(buf->backend, sizeof(buf->backend), "import");
	buf->n_planes = n_planes;
	memcpy(buf->planes, planes, n_planes * sizeof(*planes));
	buffer_link(buf);
	*ret = buf;
	return 0;
}

EXPORT int dmabroker_open_token(struct dmabroker *b, const char *token, struct dmabroker_buffer **ret)
{
	sd_bus_message *m = NULL, *reply = NULL;
	struct dmabroker_buffer *buf;
	int fd, dmabuf, r;

	if (!token)
		return set_error(b, NULL, -EINVAL);
	r = new_call(b, "OpenToken", &m);
	if (r >= 0)
		r = sd_bus_message_append(m, "s", token);
	if (r < 0) {
		sd_bus_message_unref(m);
		return set_error(b, NULL, r);
	}
	r = call(b, m, &reply);
	if (r < 0)
		return r;
	buf = buffer_new(b);
	if (!buf) {
		sd_bus_message_unref(reply);
		return -ENOMEM;
	}
	r = sd_bus_message_read(reply, "thuuutt", &buf->id, &fd, &buf->width, &buf->height, &buf->fourcc,
				&buf->modifier, &buf->size);
	if (r >= 0)
		r = take_fd(fd, &buf->fd);
	if (r >= 0)
		r = read_planes(reply, buf);
	if (r >= 0)
		r = sd_bus_message_read(reply, "ub", &buf->usage, &dmabuf);
	sd_bus_message_unref(reply);
	if (r < 0) {
		buffer_free(buf);
		return r;
	}
	buf->dmabuf = dmabuf;
	snprintf(buf->backend, sizeof(buf->backend), "shared");
	buffer_link(buf);
	*ret = buf;
	return 0;
}

EXPORT struct dmabroker_buffer *dmabroker_buffer_release(struct dmabroker_buffer *buf)
{
	sd_bus_message *m = NULL;

	if (!buf)
		return NULL;
	/* No need to wait: the daemon drops the hold when the call arrives. */
	if (buf->b->access_channel >= 0) {
		const struct access_wire_request w = { .op = ACCESS_WIRE_RELEASE, .id = buf->id };
		int r = fdmsg_send(buf->b->access_channel, &w, sizeof(w), -1);
		if (r == 0) {
			buf->b->channel_calls++;
			buffer_free(buf);
			return NULL;
		}
		channel_lost(buf->b, r, "broke"); /* on D-Bus from here */
	}
	buf->b->dbus_calls++;
	if (new_call(buf->b, "Release", &m) >= 0 && sd_bus_message_append(m, "t", buf->id) >= 0 &&
	    sd_bus_message_set_expect_reply(m, 0) >= 0)
		sd_bus_send(calls(buf->b), m, NULL);
	sd_bus_message_unref(m);
	buffer_free(buf);
	return NULL;
}

EXPORT int dmabroker_buffer_create_token(struct dmabroker_buffer *buf, uint32_t flags, uint32_t ttl_seconds,
					 char **ret_token)
{
	struct dmabroker *b = buf->b;
	sd_bus_message *m = NULL, *reply = NULL;
	const char *token;
	int r = new_call(b, "CreateToken", &m);

	if (r >= 0)
		r = sd_bus_message_append(m, "tuu", buf->id, flags, ttl_seconds);
	if (r < 0) {
		sd_bus_message_unref(m);
		return set_error(b, NULL, r);
	}
	r = call(b, m, &reply);
	if (r >= 0)
		r = sd_bus_message_read(reply, "s", &token);
	if (r >= 0) {
		*ret_token = strdup(token);
		r = *ret_token ? 0 : -ENOMEM;
	}
	sd_bus_message_unref(reply);
	return r;
}

/* A call whose reply carries nothing. */
static int call_simple(struct dmabroker *b, const char *method, const char *sig, ...)
{
	sd_bus_message *m = NULL, *reply = NULL;
	va_list ap;
	int r = new_call(b, method, &m);

	if (r >= 0) {
		va_start(ap, sig);
		r = sd_bus_message_appendv(m, sig, ap);
		va_end(ap);
	}
	if (r < 0) {
		sd_bus_message_unref(m);
		return set_error(b, NULL, r);
	}
	r = call(b, m, &reply);
	sd_bus_message_unref(reply);
	return r < 0 ? r : 0;
}

EXPORT int dmabroker_revoke_token(struct dmabroker *b, const char *token)
{
	return call_simple(b, "RevokeToken", "s", token);
}

EXPORT int dmabroker_buffer_attach(struct dmabroker_buffer *buf, uint32_t usage, const char *device,
				   uint32_t flags, uint32_t *ret_id)
{
	struct dmabroker *b = buf->b;
	sd_bus_message *m = NULL, *reply = NULL;
	int r = new_call(b, "Attach", &m);

	if (r >= 0)
		r = sd_bus_message_append(m, "tusu", buf->id, usage, device ? device : "", flags);
	if (r < 0) {
		sd_bus_message_unref(m);
		return set_error(b, NULL, r);
	}
	r = call(b, m, &reply);
	if (r >= 0) {
		int fd, own = -1;
		r = sd_bus_message_read(reply, "uh", ret_id, &fd);
		/* The buffer's memory, maybe new: it moved if the device needed it. */
		if (r >= 0)
			r = take_fd(fd, &own);
		if (r >= 0) {
			safe_close(buf->fd);
			buf->fd = own;
			buf->size = (uint64_t)lseek(own, 0, SEEK_END);
		}
	}
	sd_bus_message_unref(reply);
	return r < 0 ? r : 0;
}

EXPORT int dmabroker_buffer_detach(struct dmabroker_buffer *buf, uint32_t id)
{
	return call_simple(buf->b, "Detach", "tu", buf->id, id);
}

EXPORT uint64_t dmabroker_buffer_get_id(const struct dmabroker_buffer *buf) { return buf->id; }
EXPORT int dmabroker_buffer_get_fd(const struct dmabroker_buffer *buf) { return buf->fd; }
EXPORT uint32_t dmabroker_buffer_get_width(const struct dmabroker_buffer *buf) { return buf->width; }
EXPORT uint32_t dmabroker_buffer_get_height(const struct dmabroker_buffer *buf) { return buf->height; }
EXPORT uint32_t dmabroker_buffer_get_fourcc(const struct dmabroker_buffer *buf) { return buf->fourcc; }
EXPORT uint64_t dmabroker_buffer_get_modifier(const struct dmabroker_buffer *buf) { return buf->modifier; }
EXPORT uint64_t dmabroker_buffer_get_size(const struct dmabroker_buffer *buf) { return buf->size; }
EXPORT bool dmabroker_buffer_is_dmabuf(const struct dmabroker_buffer *buf) { return buf->dmabuf; }
EXPORT const char *dmabroker_buffer_get_backend(const struct dmabroker_buffer *buf) { return buf->backend; }
EXPORT unsigned dmabroker_buffer_get_plane_count(const struct dmabroker_buffer *buf) { return buf->n_planes; }

EXPORT int dmabroker_buffer_dup_fd(const struct dmabroker_buffer *buf)
{
	int fd = fcntl(buf->fd, F_DUPFD_CLOEXEC, 3);
	return fd < 0 ? -errno : fd;
}

EXPORT int dmabroker_buffer_get_plane(const struct dmabroker_buffer *buf, unsigned i, uint64_t *offset,
				      uint32_t *stride)
{
	if (i >= buf->n_planes)
		return -EINVAL;
	if (offset)
		*offset = buf->planes[i].offset;
	if (stride)
		*stride = buf->planes[i].stride;
	return 0;
}

/* ---- access ---- */

/* Reads "ah" holding zero or one fd into *ret (a duplicate the caller owns, or -1). */
int read_fence_array(sd_bus_message *m, int *ret)
{
	int fd = -1, r = sd_bus_message_enter_container(m, 'a', "h");

	*ret = -1;
	if (r < 0)
		return r;
	r = sd_bus_message_read(m, "h", &fd);
	if (r < 0)
		return r;
	if (r > 0) {
		r = take_fd(fd, ret);
		if (r < 0)
			return r;
	}
	return sd_bus_message_exit_container(m);
}

static int new_begin_call(struct dmabroker_buffer *buf, uint32_t mode, uint32_t flags, sd_bus_message **ret)
{
	int r = new_call(buf->b, "BeginAccess", ret);
	if (r >= 0)
		r = sd_bus_message_append(*ret, "tuu", buf->id, mode, flags);
	if (r < 0)
		*ret = sd_bus_message_unref(*ret);
	return r;
}

EXPORT int dmabroker_buffer_begin_access(struct dmabroker_buffer *buf, uint32_t mode, uint32_t flags,
					 uint64_t *ret_grant, int *ret_acquire_fence)
{
	sd_bus_message *m = NULL, *reply = NULL;
	int r;

	if (buf->b->access_channel >= 0) {
		int refusal = 0;
		r = channel_begin(buf, mode, flags, ret_grant, ret_acquire_fence, &refusal);
		if (r >= 0 || r == -ETIMEDOUT)
			buf->b->channel_calls++;
		if (r >= 0)
			return r == 0 ? 0 : refusal;
		if (r == -ETIMEDOUT)
			return set_error(buf->b, NULL, r);
		channel_broke(buf->b, r);
	}
	buf->b->dbus_calls++;
	r = new_begin_call(buf, mode, flags, &m);
	if (r < 0)
		return set_error(buf->b, NULL, r);
	r = call(buf->b, m, &reply);
	if (r >= 0)
		r = sd_bus_message_read(reply, "t", ret_grant);
	if (r >= 0)
		r = read_fence_array(reply, ret_acquire_fence);
	sd_bus_message_unref(reply);
	return r < 0 ? r : 0;
}

struct async_access {
	struct dmabroker *b;
	dmabroker_access_callback cb;
	void *userdata;
};

static int on_begin_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
	struct async_access *a = userdata;
	const sd_bus_error *e = sd_bus_message_get_error(m);
	uint64_t grant = 0;
	int fence = -1, r;

	if (e) {
		r = set_error(a->b, e, -sd_bus_message_get_errno(m));
	} else {
		r = sd_bus_message_read(m, "t", &grant);
		if (r >= 0)
			r = read_fence_array(m, &fence);
		if (r < 0)
			set_error(a->b, NULL, r);
	}
	a->cb(a->b, r < 0 ? r : 0, grant, fence, a->userdata);
	return 0;
}

EXPORT int dmabroker_buffer_begin_access_async(struct dmabroker_buffer *buf, uint32_t mode, uint32_t flags,
					       dmabroker_access_callback cb, void *userdata)
{
	sd_bus_message *m = NULL;
	struct async_access *a;
	int r;

	if (!cb)
		return -EINVAL;
	r = new_begin_call(buf, mode, flags, &m);
	if (r < 0)
		return set_error(buf->b, NULL, r);
	a = calloc(1, sizeof(*a));
	if (!a) {
		sd_bus_message_unref(m);
		return -ENOMEM;
	}
	*a = (struct async_access){ buf->b, cb, userdata };
	return call_async(buf->b, m, on_begin_reply, a);
}

EXPORT int dmabroker_begin_access_multi(struct dmabroker *b, unsigned n, struct dmabroker_buffer *const *bufs,
					const uint32_t *modes, uint32_t flags, uint64_t *ret_grants,
					int *ret_acquire_fence)
{
	sd_bus_message *m = NULL, *reply = NULL;
	unsigned got = 0;
	int r = new_call(b, "BeginAccessMulti", &m);

	if (r >= 0)
		r = sd_bus_message_open_container(m, 'a', "(tu)");
	for (unsigned i = 0; r >= 0 && i < n; i++)
		r = sd_bus_message_append(m, "(tu)", bufs[i]->id, modes[i]);
	if (r >= 0)
		r = sd_bus_message_close_container(m);
	if (r >= 0)
		r = sd_bus_message_append(m, "u", flags);
	if (r < 0) {
		sd_bus_message_unref(m);
		return set_error(b, NULL, r);
	}
	r = call(b, m, &reply);
	if (r >= 0)
		r = sd_bus_message_enter_container(reply, 'a', "t");
	while (r >= 0 && got < n && (r = sd_bus_message_read(reply, "t", &ret_grants[got])) > 0)
		got++;
	if (r >= 0)
		r = sd_bus_message_exit_container(reply);
	if (r >= 0 && got != n)
		r = -EBADMSG;
	if (r >= 0)
		r = read_fence_array(reply, ret_acquire_fence);
	sd_bus_message_unref(reply);
	return r < 0 ? r : 0;
}

EXPORT int dmabroker_end_access(struct dmabroker *b, uint64_t grant, int release_fence)
{
	sd_bus_message *m = NULL, *reply = NULL;
	int r = new_call(b, "EndAccess", &m);

	if (r >= 0)
		r = sd_bus_message_append(m, "t", grant);
	if (r >= 0)
		r = release_fence >= 0 ? sd_bus_message_append(m, "ah", 1, release_fence)
				       : sd_bus_message_append(m, "ah", 0);
	if (r < 0) {
		sd_bus_message_unref(m);
		return set_error(b, NULL, r);
	}
	r = call(b, m, &reply);
	sd_bus_message_unref(reply);
	return r < 0 ? r : 0;
}

EXPORT int dmabroker_end_access_oneway(struct dmabroker *b, uint64_t grant, int release_fence)
{
	sd_bus_message *m = NULL;
	int r;

	if (release_fence >= 0 && !fence_is_sync_file(release_fence)) {
		/* what the daemon would say, said here: it will not reply */
		sd_bus_error e = SD_BUS_ERROR_NULL;
		sd_bus_error_set(&e, DMABROKER_ERROR("InvalidArgument"), "the release fence is not a sync_file");
		r = set_error(b, &e, -EINVAL);
		sd_bus_error_free(&e);
		return r;
	}
	if (b->access_channel >= 0) {
		const struct access_wire_request w = { .op = ACCESS_WIRE_END, .id = grant };
		r = fdmsg_send(b->access_channel, &w, sizeof(w), release_fence);
		if (r == 0) {
			b->channel_calls++;
			clear_error(b);
			return 0;
		}
		channel_lost(b, r, "broke"); /* on D-Bus from here */
	}
	b->dbus_calls++;
	r = new_call(b, "EndAccess", &m);
	if (r >= 0)
		r = sd_bus_message_append(m, "t", grant);
	if (r >= 0)
		r = release_fence >= 0 ? sd_bus_message_append(m, "ah", 1, release_fence)
				       : sd_bus_message_append(m, "ah", 0);
	if (r >= 0)
		r = sd_bus_message_set_expect_reply(m, 0);
	if (r >= 0)
		r = sd_bus_send(calls(b), m, NULL);
	sd_bus_message_unref(m);
	if (r < 0)
		return set_error(b, NULL, r);
	clear_error(b);
	return 0;
}

static int cpu_sync(const struct dmabroker_buffer *buf, uint64_t what)
{
	struct dma_buf_sync s = {
		.flags = what | (buf->cpu_mode == DMABROKER_ACCESS_WRITE ? DMA_BUF_SYNC_RW : DMA_BUF_SYNC_READ),
	};
	if (!buf->dmabuf)
		return 0;
	return ioctl(buf->fd, DMA_BUF_IOCTL_SYNC, &s) < 0 ? -errno : 0;
}

EXPORT int dmabroker_buffer_cpu_begin(struct dmabroker_buffer *buf, uint32_t mode, int timeout_ms,
				      uint64_t *ret_grant)
{
	uint64_t grant;
	int fence = -1, r;

	if (buf->cpu_grant)
		return set_error(buf->b, NULL, -EBUSY); /* one CPU access per buffer at a time */
	r = dmabroker_buffer_begin_access(buf, mode, 0, &grant, &fence);
	if (r < 0)
		return r;
	if (fence >= 0) {
		r = fence_wait(fence, timeout_ms);
		close(fence);
		if (r <= 0) {
			dmabroker_end_access(buf->b, grant, -1);
			return set_error(buf->b, NULL, r == 0 ? -ETIMEDOUT : r);
		}
	}
	buf->cpu_mode = mode;
	r = cpu_sync(buf, DMA_BUF_SYNC_START);
	if (r < 0) {
		dmabroker_end_access(buf->b, grant, -1);
		return set_error(buf->b, NULL, r);
	}
	buf->cpu_grant = grant;
	*ret_grant = grant;
	return 0;
}

EXPORT int dmabroker_buffer_cpu_end(struct dmabroker_buffer *buf, uint64_t grant)
{
	int r;

	if (!buf->cpu_grant || grant != buf->cpu_grant)
		return set_error(buf->b, NULL, -EINVAL);
	r = cpu_sync(buf, DMA_BUF_SYNC_END);
	buf->cpu_grant = 0;
	if (r < 0) {
		dmabroker_end_access(buf->b, grant, -1);
		return set_error(buf->b, NULL, r);
	}
	return dmabroker_end_access(buf->b, grant, -1);
}

/* ---- fences ---- */

EXPORT int dmabroker_fence_wait(int fence, int timeout_ms)
{
	return fence_wait(fence, timeout_ms);
}

EXPORT int dmabroker_fence_status(int fence)
{
	return fence_status(fence);
}

EXPORT int dmabroker_fence_merge(int a, int b)
{
	return fence_merge(a, b);
}

struct fence_watch {
	int fd;
	bool floating;               /* the library owns the source */
	dmabroker_fence_callback cb;
	void *userdata;
};

static void fence_watch_free(void *p)
{
	struct fence_watch *w = p;
	safe_close(w->fd);
	free(w);
}

static int on_fence(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct fence_watch *w = userdata;

	bool floating = w->floating;

	w->cb(w->fd, w->userdata);
	/* One shot. A source the caller holds is only turned off; one of the
	 * library's own is floating (the loop holds its only reference):
	 * un-floating it drops that reference, and it goes, w with it. */
	sd_event_source_set_enabled(s, SD_EVENT_OFF);
	if (floating)
		sd_event_source_set_floating(s, 0);
	return 0;
}

EXPORT int dmabroker_fence_add_to_event(sd_event *event, int fence, dmabroker_fence_callback cb, void *userdata,
					sd_event_source **ret_source)
{
	struct fence_watch *w;
	sd_event_source *s = NULL;
	int r;

	if (!cb)
		return -EINVAL;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->cb = cb;
	w->userdata = userdata;
	w->fd = fcntl(fence, F_DUPFD_CLOEXEC, 3);
	if (w->fd < 0) {
		free(w);
		return -errno;
	}
	r = sd_event_add_io(event, &s, w->fd, EPOLLIN, on_fence, w);
	if (r < 0) {
		fence_watch_free(w);
		return r;
	}
	sd_event_source_set_destroy_callback(s, fence_watch_free);
	if (ret_source) {
		*ret_source = s;
	} else {
		w->floating = true;
		sd_event_source_set_floating(s, 1);
		sd_event_source_unref(s);
	}
	return 0;
}

/* ---- moves ---- */

EXPORT void dmabroker_set_move_handler(struct dmabroker *b, dmabroker_move_callback cb, void *userdata)
{
	b->on_move = cb;
	b->move_userdata = userdata;
}

static int on_moved(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
	struct dmabroker *b = userdata;
	struct dmabroker_buffer *buf;
	struct dmabroker_plane planes[MAX_PLANES];
	unsigned n = 0;
	uint64_t id, size, offset;
	uint32_t stride;
	int fd, own = -1, fence = -1, r;

	r = sd_bus_message_read(m, "tht", &id, &fd, &size);
	if (r >= 0)
		r = sd_bus_message_enter_container(m, 'a', "(tu)");
	while (r >= 0 && (r = sd_bus_message_read(m, "(tu)", &offset, &stride)) > 0 && n < MAX_PLANES) {
		planes[n].offset = offset;
		planes[n++].stride = stride;
	}
	if (r >= 0)
		r = sd_bus_message_exit_container(m);
	if (r >= 0)
		r = read_fence_array(m, &fence);
	if (r < 0)
		return 0; /* malformed: not from our daemon */
	for (buf = b->buffers; buf && buf->id != id; buf = buf->next)
		;
	if (!buf || take_fd(fd, &own) < 0) {
		safe_close(fence);
		return 0;
	}
	safe_close(buf->fd);
	buf->fd = own;
	buf->size = size;
	buf->n_planes = n;
	memcpy(buf->planes, planes, n * sizeof(*planes));
	if (b->on_move)
		b->on_move(b, buf, fence, b->move_userdata);
	else
		safe_close(fence);
	return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * The connection: the bus, the direct connection, the calls made on them,
 * the event loop, the last error, and the reconnection to a restarted
 * daemon.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <stdarg.h>

#include <systemd/sd-bus.h>

#include "cleanup.h"
#include "errors-sdbus.h"

#include "internal.h"
#include "buffers.h"
#include "channel.h"
#include "connection.h"
#include "transport.h"
#include "stream.h"

sd_bus *calls(const struct dmabroker *b)
{
	return b->direct ? b->direct : b->bus;
}

const char *destination(const struct dmabroker *b)
{
	return b->direct ? NULL : DMABROKER_BUS_NAME;
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

	if (sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner) < 0 || strcmp(name, DMABROKER_BUS_NAME) != 0 ||
	    !*new_owner)
		return 0;
	if (!b->reconnecting && (b->down || (b->daemon_owner[0] && strcmp(b->daemon_owner, new_owner) != 0)))
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
	transport_update(b);
	r = sd_bus_match_signal(bus, NULL, DMABROKER_BUS_NAME, DMABROKER_OBJECT_PATH, DMABROKER_INTERFACE, "Moved", buffer_on_moved, b);
	if (r >= 0)
		r = sd_bus_add_match(bus, NULL,
				     "type='signal',sender='org.freedesktop.DBus',path='/org/freedesktop/DBus',"
				     "interface='org.freedesktop.DBus',member='NameOwnerChanged',arg0='" DMABROKER_BUS_NAME "'",
				     on_name_owner_changed, b);
	if (r >= 0) {
		sd_bus_message *reply = NULL;
		const char *owner;
		if (sd_bus_call_method(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
				       "GetNameOwner", NULL, &reply, "s", DMABROKER_BUS_NAME) >= 0 &&
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

EXPORT int dmabroker_open_direct(struct dmabroker *b)
{
	sd_bus_error e = SD_BUS_ERROR_NULL;
	sd_bus_message *reply = NULL;
	sd_bus *direct = NULL;
	int fd, own = -1, r;

	if (b->direct)
		return 0;
	r = sd_bus_call_method(b->bus, DMABROKER_BUS_NAME, DMABROKER_OBJECT_PATH, DMABROKER_INTERFACE, "OpenDirect", &e, &reply, "");
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
		r = sd_bus_match_signal(direct, NULL, NULL, DMABROKER_OBJECT_PATH, DMABROKER_INTERFACE, "Moved", buffer_on_moved, b);
	if (r >= 0)
		r = sd_bus_match_signal(direct, NULL, NULL, DMABROKER_OBJECT_PATH, DMABROKER_INTERFACE, NULL, stream_on_signal, b);
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
	transport_update(b);
	return 0;
}

EXPORT bool dmabroker_is_direct(const struct dmabroker *b)
{
	return b->direct != NULL;
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
	sd_event_source_unref(b->channel_source);
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
	r = channel_watch(b);
	if (r < 0)
		channel_lost(b, r, "cannot be watched");
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
	int r = sd_bus_message_new_method_call(calls(b), ret, destination(b), DMABROKER_OBJECT_PATH, DMABROKER_INTERFACE,
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

int call_built(struct dmabroker *b, sd_bus_message *m, int r, sd_bus_message **reply)
{
	if (r < 0) {
		sd_bus_message_unref(m);
		return set_error(b, NULL, r);
	}
	return call(b, m, reply);
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
	if (b->down && !b->reconnecting && reconnect(b) < 0) {
		sd_bus_message_unref(m);
		return set_error(b, NULL, -ENOTCONN); /* the daemon is not back: say so at once */
	}
	transport_sync(b);
	if (sd_bus_message_get_bus(m) != calls(b)) {
		sd_bus_message *again = NULL;
		r = copy_call(b, m, &again);
		sd_bus_message_unref(m);
		if (r < 0)
			return set_error(b, NULL, r);
		m = again;
	}
	r = sd_bus_call(calls(b), m, 0, &e, reply);
	if (r < 0 && connection_lost(r, &e) && !b->reconnecting) {
		sd_bus_message *again = NULL;
		sd_bus_error_free(&e);
		if (reconnect(b) < 0)
			r = -ENOTCONN;
		else if ((r = copy_call(b, m, &again)) >= 0)
			r = sd_bus_call(calls(b), again, 0, &e, reply);
		sd_bus_message_unref(again);
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
	return sd_bus_message_new_method_call(calls(b), ret, destination(b), DMABROKER_OBJECT_PATH, DMABROKER_INTERFACE, method);
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

/* Closes what the daemon's going took with it; its streams end. */
static void go_down(struct dmabroker *b)
{
	bool was_up = !b->down;

	b->down = true;
	b->had_direct = b->direct != NULL;
	if (b->direct) {
		sd_bus_detach_event(b->direct);
		b->direct = sd_bus_flush_close_unref(b->direct);
	}
	b->channel_source = sd_event_source_unref(b->channel_source);
	b->access_channel = safe_close(b->access_channel);
	b->channel_unsynced = false;
	transport_update(b);
	streams_daemon_lost(b);
	if (was_up && b->listener.connection_lost)
		b->listener.connection_lost(b, b->listener_userdata);
}

/*
 * The connection state machine. Up: calls go on b->transport. A call that
 * finds the connection gone, or NameOwnerChanged naming a new owner, takes
 * b down (go_down()) and tries to come back up at once: it asks the bus
 * who owns the daemon's name, once, and never waits for the daemon to
 * appear. Nobody: b stays down, calls fail at once with -ENOTCONN, and
 * dmabroker_process() tries again when NameOwnerChanged says the daemon is
 * back. The new daemon: a new direct connection if we had one, and every
 * buffer we hold reclaimed by showing our fd of it: in batches, and one
 * at a time in a batch the daemon refused (a buffer it did not restore,
 * or not ours to take back). Buffers it did not keep stay usable locally
 * (the fd is ours) but are no longer the broker's. 0 when up again, or a
 * negative errno (still down).
 */
static int reconnect(struct dmabroker *b)
{
	sd_bus_message *reply = NULL;
	struct dmabroker_buffer *buf;
	const char *owner;
	int r;

	if (!b->down)
		go_down(b);
	b->reconnecting = true;
	r = sd_bus_call_method(b->bus, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
			       "GetNameOwner", NULL, &reply, "s", DMABROKER_BUS_NAME);
	if (r >= 0 && sd_bus_message_read(reply, "s", &owner) > 0)
		remember_owner(b, owner);
	else
		r = -ENOTCONN; /* nobody has the name yet */
	reply = sd_bus_message_unref(reply);
	if (r >= 0 && b->had_direct)
		r = dmabroker_open_direct(b);
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
	if (r >= 0) {
		b->down = false;
		b->reconnects++;
		if (b->listener.daemon_restarted)
			b->listener.daemon_restarted(b, b->listener_userdata);
	} else if (b->direct) { /* half way: down again, the next try starts over */
		sd_bus_detach_event(b->direct);
		b->direct = sd_bus_flush_close_unref(b->direct);
		b->channel_source = sd_event_source_unref(b->channel_source);
		b->access_channel = safe_close(b->access_channel);
		transport_update(b);
	}
	b->reconnecting = false;
	return r < 0 ? r : 0;
}

int daemon_lost(struct dmabroker *b, int r)
{
	if (!connection_lost(r, NULL) || b->reconnecting)
		return 0;
	return reconnect(b) == 0 ? 1 : -1;
}

EXPORT int dmabroker_set_listener(struct dmabroker *b, const struct dmabroker_listener *listener, void *userdata)
{
	if (listener && listener->version != DMABROKER_LISTENER_VERSION)
		return -EINVAL;
	b->listener = listener ? *listener : (struct dmabroker_listener){ 0 };
	b->listener_userdata = userdata;
	return 0;
}

EXPORT unsigned dmabroker_get_reconnect_count(const struct dmabroker *b)
{
	return b->reconnects;
}

/*
 * Sends m (taken) without waiting; handler gets closure (taken: freed once
 * the reply was handled, or when the connection closes first).
 */
int call_async(struct dmabroker *b, sd_bus_message *m, sd_bus_message_handler_t handler, void *closure)
{
	sd_bus_slot *slot = NULL;
	int r;

	if (b->down && !b->reconnecting && reconnect(b) < 0) {
		sd_bus_message_unref(m);
		free(closure);
		return set_error(b, NULL, -ENOTCONN);
	}
	transport_sync(b);
	r = sd_bus_call_async(calls(b), &slot, m, handler, closure, 0);

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

/* A call whose reply carries nothing. */
int call_simple(struct dmabroker *b, const char *method, const char *sig, ...)
{
	sd_bus_message *m = NULL, *reply = NULL;
	va_list ap;
	int r = new_call(b, method, &m);

	if (r >= 0) {
		va_start(ap, sig);
		r = sd_bus_message_appendv(m, sig, ap);
		va_end(ap);
	}
	r = call_built(b, m, r, &reply);
	sd_bus_message_unref(reply);
	return r < 0 ? r : 0;
}

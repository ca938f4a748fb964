/* SPDX-License-Identifier: MIT */
/*
 * The org.dmabroker.Broker1 interface: the vtable that serves the bus and
 * every direct connection, the properties, and what every method shares:
 * who the caller is, how errors are answered (the core's struct error as a
 * D-Bus error), how answers the core gives later are sent (completions).
 * The methods themselves are in bus-buffers.c, bus-access.c, bus-streams.c
 * and bus-admin.c. protocol/org.dmabroker.Broker1.xml is the source of
 * truth for what is here (tests/host/introspection-test.py).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker.h"
#include "bus-internal.h"
#include "cleanup.h"
#include "error.h"
#include "log.h"
#include "buildconf.h"
#include "printable.h"
#include "stream.h"

int bus_caller(struct endpoint *e, sd_bus_message *m, struct client **ret, struct error *error)
{
	struct client *c;

	if (e->client) {
		*ret = e->client;
		return 0;
	}
	c = client_find_by_name(e->broker, sd_bus_message_get_sender(m));
	if (c) {
		*ret = c;
		return 0;
	}
	/* creds.c holds a new peer's calls until its client exists: not reached */
	error_setf(error, DMABROKER_E_NOT_PERMITTED, "the bus has not yet said who the caller is");
	return -EPERM;
}

/* The buffer `id`, which the caller must hold. */
int bus_held_buffer(struct endpoint *e, sd_bus_message *m, uint64_t id, struct client **ret_client,
		       struct buffer **ret_buffer, struct hold **ret_hold, struct error *error)
{
	int r = bus_caller(e, m, ret_client, error);

	if (r < 0)
		return r;
	return client_held_buffer(*ret_client, id, ret_buffer, ret_hold, error);
}

/*
 * The D-Bus rules for an error name (those of an interface name): sd-bus
 * sends any name, and the receiver drops a reply with a malformed one.
 */
static bool error_name_valid(const char *name)
{
	size_t len = strlen(name);
	unsigned dots = 0;
	bool start = true;

	if (len == 0 || len > 255)
		return false;
	for (const char *p = name; *p; p++) {
		if (*p == '.') {
			if (start)
				return false;
			dots++;
			start = true;
		} else if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || *p == '_' ||
			   (!start && *p >= '0' && *p <= '9')) {
			start = false;
		} else {
			return false;
		}
	}
	return dots > 0 && !start;
}

void bus_error_from(sd_bus_error *out, int r, const struct error *e)
{
	if (error_is_set(e) && error_name(e))
		sd_bus_error_set(out, error_name(e), e->message);
	else if (error_is_set(e))
		sd_bus_error_set_errnof(out, -e->errnum, "%s", e->message);
	else
		sd_bus_error_set_errno(out, r < 0 ? r : -EIO);
}

int broker_reply_error(sd_bus_message *call, int r, const struct error *e)
{
	_cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;

	bus_error_from(&error, r, e);
	return broker_reply_sd_bus_error(call, &error);
}

int broker_reply_sd_bus_error(sd_bus_message *call, const sd_bus_error *error)
{
	char text[1024];
	int q;

	if (!error_name_valid(error->name))
		q = -EINVAL;
	else
		q = sd_bus_reply_method_error(call, &SD_BUS_ERROR_MAKE_CONST(
						      error->name, printable(error->message, text, sizeof(text))));
	if (q >= 0 || q == -ENOTCONN || q == -ECONNRESET || q == -EPIPE)
		return 1; /* answered, or nobody left to answer */
	log_warning("cannot send the error of %s (%s): %s; sending %s", sd_bus_message_get_member(call),
		    PRINTABLE(error->name), strerror(-q), SD_BUS_ERROR_FAILED);
	q = sd_bus_reply_method_errorf(call, SD_BUS_ERROR_FAILED, "%s failed; the daemon could not send why",
				       sd_bus_message_get_member(call));
	if (q < 0)
		log_error("cannot answer %s at all: %s", sd_bus_message_get_member(call), strerror(-q));
	return 1;
}

void bus_call_keep(struct completion *c)
{
	sd_bus_message_ref(c->call);
}

void bus_call_drop(struct completion *c)
{
	c->call = sd_bus_message_unref(c->call);
}

void bus_call_fail(const struct completion *c, int r, const struct error *e)
{
	broker_reply_error(c->call, r, e);
}

/* A call answered by a function of its own when the work ends (Allocate). */
const struct completion_ops bus_call_ops = { .keep = bus_call_keep, .drop = bus_call_drop, .fail = bus_call_fail };

/* Sends a reply built by hand (the handler then returns 1: replied). */
int bus_send_reply(sd_bus_message *reply, int r)
{
	if (r >= 0)
		r = sd_bus_send(NULL, reply, NULL);
	sd_bus_message_unref(reply);
	return r < 0 ? r : 1;
}

/* Closes the array a List* reply is built in, and sends it. */
int bus_send_list_reply(sd_bus_message *reply, int r)
{
	if (r >= 0)
		r = sd_bus_message_close_container(reply);
	return bus_send_reply(reply, r);
}

int bus_append_planes(sd_bus_message *reply, const struct layout *l)
{
	int r = sd_bus_message_open_container(reply, 'a', "(tu)");
	for (unsigned i = 0; r >= 0 && i < l->n_planes; i++)
		r = sd_bus_message_append(reply, "(tu)", l->plane[i].offset, l->plane[i].stride);
	return r < 0 ? r : sd_bus_message_close_container(reply);
}

/* Reads an "ah" holding zero or one fd: the fd (borrowed from m) or -1. */
int bus_read_optional_fd(sd_bus_message *m, int *ret, struct error *error)
{
	int r = sd_bus_message_enter_container(m, 'a', "h"), fd = -1, extra;

	if (r < 0)
		return r;
	r = sd_bus_message_read(m, "h", &fd);
	if (r > 0 && sd_bus_message_read(m, "h", &extra) > 0)
		return error_set(error, DMABROKER_E_INVALID_ARGUMENT, "at most one fence");
	if (r < 0)
		return r;
	*ret = r > 0 ? fd : -1;
	return sd_bus_message_exit_container(m);
}

static int property_get(sd_bus *bus, const char *path, const char *interface, const char *property,
			sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
	struct endpoint *e = userdata;
	struct broker *b = e->broker;

	if (strcmp(property, "Version") == 0)
		return sd_bus_message_append(reply, "s", DMABROKER_VERSION);
	if (strcmp(property, "Clients") == 0)
		return sd_bus_message_append(reply, "u", b->n_clients);
	if (strcmp(property, "Buffers") == 0)
		return sd_bus_message_append(reply, "u", (uint32_t)b->buffers.len);
	if (strcmp(property, "BytesAllocated") == 0)
		return sd_bus_message_append(reply, "t", b->bytes);
	if (strcmp(property, "Streams") == 0) {
		uint32_t n = 0;
		for (struct stream *st = b->streams; st; st = stream_next(st))
			n++;
		return sd_bus_message_append(reply, "u", n);
	}
	if (strcmp(property, "FenceTimeouts") == 0)
		return sd_bus_message_append(reply, "t", b->fence_timeouts);
	if (strcmp(property, "GrantTimeouts") == 0)
		return sd_bus_message_append(reply, "t", b->grant_timeouts);
	if (strcmp(property, "PoolBuffers") == 0)
		return sd_bus_message_append(reply, "u", (uint32_t)b->pool_count);
	if (strcmp(property, "PoolBytes") == 0)
		return sd_bus_message_append(reply, "t", b->pool_bytes);
	return -ENOENT;
}
















































/*
 * Every method call goes through answer(): the method's own handler, with a
 * struct error of its own, then its error, if any, sent by
 * broker_reply_error() instead of by sd-bus (which leaves the call
 * unanswered when it cannot send the error). One small function per method
 * puts it in the vtable: nothing is looked up per call.
 */
typedef int (*method_fn)(sd_bus_message *m, void *userdata, struct error *error);

static int answer(sd_bus_message *m, void *userdata, method_fn handler)
{
	struct error error = ERROR_NULL;
	int r = handler(m, userdata, &error);

	if (r >= 0 && !error_is_set(&error))
		return r;
	return broker_reply_error(m, r, &error);
}

#define ANSWER(fn) \
	static int answer_##fn(sd_bus_message *m, void *userdata, sd_bus_error *unused) \
	{ \
		return answer(m, userdata, fn); \
	}
ANSWER(method_allocate)
ANSWER(method_import)
ANSWER(method_release)
ANSWER(method_create_token)
ANSWER(method_revoke_token)
ANSWER(method_open_token)
ANSWER(method_attach)
ANSWER(method_detach)
ANSWER(method_begin_access)
ANSWER(method_begin_access_multi)
ANSWER(method_end_access)
ANSWER(method_list_buffers)
ANSWER(method_list_clients)
ANSWER(method_get_usage)
ANSWER(method_list_backends)
ANSWER(method_reclaim)
ANSWER(method_open_access_channel)
ANSWER(method_open_direct)
ANSWER(method_create_stream)
ANSWER(method_join_stream)
ANSWER(method_stream_buffers)
ANSWER(method_queue_frame)
ANSWER(method_release_frame)
ANSWER(method_leave_stream)
ANSWER(method_list_streams)

static const sd_bus_vtable broker_methods[] = {
	SD_BUS_VTABLE_START(0),
	SD_BUS_PROPERTY("Version", "s", property_get, 0, SD_BUS_VTABLE_PROPERTY_CONST),
	SD_BUS_PROPERTY("Clients", "u", property_get, 0, 0),
	SD_BUS_PROPERTY("Buffers", "u", property_get, 0, 0),
	SD_BUS_PROPERTY("BytesAllocated", "t", property_get, 0, 0),
	SD_BUS_PROPERTY("FenceTimeouts", "t", property_get, 0, 0),
	SD_BUS_PROPERTY("GrantTimeouts", "t", property_get, 0, 0),
	SD_BUS_PROPERTY("PoolBuffers", "u", property_get, 0, 0),
	SD_BUS_PROPERTY("PoolBytes", "t", property_get, 0, 0),
	SD_BUS_PROPERTY("Streams", "u", property_get, 0, 0),
	SD_BUS_SIGNAL_WITH_NAMES("FrameReady", "tutta(iiii)ah",
				 SD_BUS_PARAM(stream) SD_BUS_PARAM(index) SD_BUS_PARAM(sequence)
				 SD_BUS_PARAM(timestamp) SD_BUS_PARAM(damage) SD_BUS_PARAM(acquire_fence), 0),
	SD_BUS_SIGNAL_WITH_NAMES("BufferReleased", "tuah",
				 SD_BUS_PARAM(stream) SD_BUS_PARAM(index) SD_BUS_PARAM(release_fence), 0),
	SD_BUS_SIGNAL_WITH_NAMES("ConsumerJoined", "tuh",
				 SD_BUS_PARAM(stream) SD_BUS_PARAM(consumer) SD_BUS_PARAM(channel), 0),
	SD_BUS_SIGNAL_WITH_NAMES("StreamEnded", "ts", SD_BUS_PARAM(stream) SD_BUS_PARAM(reason), 0),
	SD_BUS_SIGNAL_WITH_NAMES("StreamError", "tsss",
				 SD_BUS_PARAM(stream) SD_BUS_PARAM(method) SD_BUS_PARAM(error) SD_BUS_PARAM(message), 0),
	SD_BUS_SIGNAL_WITH_NAMES("FenceTimedOut", "ttb", SD_BUS_PARAM(buffer) SD_BUS_PARAM(client) SD_BUS_PARAM(write), 0),
	SD_BUS_SIGNAL_WITH_NAMES("GrantTimedOut", "ttb", SD_BUS_PARAM(buffer) SD_BUS_PARAM(client) SD_BUS_PARAM(write), 0),
	SD_BUS_SIGNAL_WITH_NAMES("Moved", "thta(tu)ah",
				 SD_BUS_PARAM(buffer) SD_BUS_PARAM(fd) SD_BUS_PARAM(size) SD_BUS_PARAM(planes)
				 SD_BUS_PARAM(fence), 0),
	SD_BUS_METHOD_WITH_NAMES("Allocate", "uuuatua{sv}",
				 SD_BUS_PARAM(width) SD_BUS_PARAM(height) SD_BUS_PARAM(fourcc)
				 SD_BUS_PARAM(modifiers) SD_BUS_PARAM(usage) SD_BUS_PARAM(options),
				 "thtta(tu)sb",
				 SD_BUS_PARAM(buffer) SD_BUS_PARAM(fd) SD_BUS_PARAM(size) SD_BUS_PARAM(modifier)
				 SD_BUS_PARAM(planes) SD_BUS_PARAM(backend) SD_BUS_PARAM(dmabuf),
				 answer_method_allocate, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_NAMES("Import", "huuuta(tu)u",
				 SD_BUS_PARAM(fd) SD_BUS_PARAM(width) SD_BUS_PARAM(height) SD_BUS_PARAM(fourcc)
				 SD_BUS_PARAM(modifier) SD_BUS_PARAM(planes) SD_BUS_PARAM(usage),
				 "tt", SD_BUS_PARAM(buffer) SD_BUS_PARAM(size),
				 answer_method_import, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_NAMES("Release", "t", SD_BUS_PARAM(buffer), "", ,
				 answer_method_release, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_NAMES("CreateToken", "tuu",
				 SD_BUS_PARAM(buffer) SD_BUS_PARAM(flags) SD_BUS_PARAM(ttl),
				 "s", SD_BUS_PARAM(token),
				 answer_method_create_token, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_NAMES("RevokeToken", "s", SD_BUS_PARAM(token), "", ,
				 answer_method_revoke_token, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_NAMES("OpenToken", "s", SD_BUS_PARAM(token),
				 "thuuutta(tu)ub",
				 SD_BUS_PARAM(buffer) SD_BUS_PARAM(fd) SD_BUS_PARAM(width) SD_BUS_PARAM(height)
				 SD_BUS_PARAM(fourcc) SD_BUS_PARAM(modifier) SD_BUS_PARAM(size)
				 SD_BUS_PARAM(planes) SD_BUS_PARAM(usage) SD_BUS_PARAM(dmabuf),
				 answer_method_open_token, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_NAMES("Attach", "tusu",
				 SD_BUS_PARAM(buffer) SD_BUS_PARAM(usage) SD_BUS_PARAM(device) SD_BUS_PARAM(flags),
				 "uh", SD_BUS_PARAM(attachment) SD_BUS_PARAM(fd),
				 answer_method_attach, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_NAMES("Detach", "tu", SD_BUS_PARAM(buffer) SD_BUS_PARAM(attachment), "", ,
				 answer_method_detach, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_NAMES("BeginAccess", "tuu", SD_BUS_PARAM(buffer) SD_BUS_PARAM(mode) SD_BUS_PARAM(flags),
				 "tah", SD_BUS_PARAM(grant) SD_BUS_PARAM(acquire_fence),
				 answer_method_begin_access, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_NAMES("BeginAccessMulti", "a(tu)u", SD_BUS_PARAM(buffers) SD_BUS_PARAM(flags),
				 "atah", SD_BUS_PARAM(grants) SD_BUS_PARAM(acquire_fence),
				 answer_method_begin_access_multi, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_NAMES("EndAccess", "tah", SD_BUS_PARAM(grant) SD_BUS_PARAM(release_fence), "", ,
				 answer_method_end_access, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_NAMES("ListBuffers", "", , "a(tuuutsuuuuutuuuu)", SD_BUS_PARAM(buffers),
				 answer_method_list_buffers, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_NAMES("ListClients", "", , "a(tsuuusutuut)", SD_BUS_PARAM(clients),
				 answer_method_list_clients, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_NAMES("GetUsage", "", , "a(sstt)", SD_BUS_PARAM(usage),
				 answer_method_get_usage, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_NAMES("ListBackends", "", , "a(sssbs)", SD_BUS_PARAM(backends),
				 answer_method_list_backends, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_NAMES("Reclaim", "a(th)", SD_BUS_PARAM(buffers), "at", SD_BUS_PARAM(reclaimed),
				 answer_method_reclaim, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_NAMES("OpenDirect", "", , "h", SD_BUS_PARAM(fd),
				 answer_method_open_direct, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_NAMES("OpenAccessChannel", "", , "h", SD_BUS_PARAM(fd),
				 answer_method_open_access_channel, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_NAMES("CreateStream", "sa{sv}", SD_BUS_PARAM(name) SD_BUS_PARAM(options),
				 "t", SD_BUS_PARAM(stream),
				 answer_method_create_stream, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_NAMES("JoinStream", "sa{sv}", SD_BUS_PARAM(name) SD_BUS_PARAM(options),
				 "tu", SD_BUS_PARAM(stream) SD_BUS_PARAM(consumer),
				 answer_method_join_stream, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_NAMES("StreamBuffers", "t", SD_BUS_PARAM(stream),
				 "uuutssa(thta(tu))uaha(uh)",
				 SD_BUS_PARAM(width) SD_BUS_PARAM(height) SD_BUS_PARAM(fourcc) SD_BUS_PARAM(modifier)
				 SD_BUS_PARAM(backend) SD_BUS_PARAM(mode) SD_BUS_PARAM(buffers)
				 SD_BUS_PARAM(max_acquired) SD_BUS_PARAM(counters) SD_BUS_PARAM(channels),
				 answer_method_stream_buffers, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_NAMES("QueueFrame", "tutta(iiii)ah",
				 SD_BUS_PARAM(stream) SD_BUS_PARAM(index) SD_BUS_PARAM(sequence)
				 SD_BUS_PARAM(timestamp) SD_BUS_PARAM(damage) SD_BUS_PARAM(ready_fence), "", ,
				 answer_method_queue_frame, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_NAMES("ReleaseFrame", "tuah",
				 SD_BUS_PARAM(stream) SD_BUS_PARAM(index) SD_BUS_PARAM(release_fence), "", ,
				 answer_method_release_frame, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_NAMES("LeaveStream", "t", SD_BUS_PARAM(stream), "", ,
				 answer_method_leave_stream, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_NAMES("ListStreams", "", , "a(tssssuuuututtt)", SD_BUS_PARAM(streams),
				 answer_method_list_streams, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_VTABLE_END,
};

const sd_bus_vtable *broker_vtable(void)
{
	return broker_methods;
}

/*
 * The bus's share of the loop. sd-bus, attached to the loop, processes one
 * message per turn, while each direct connection and access channel gets a
 * batch (client.c, access-channel.c): all the bus clients share that one
 * message, so a few busy clients off the bus starved them (their calls timed
 * out in the soak under the test bed). After every turn that did something,
 * the bus gets its batch too.
 */
enum { BUS_BATCH = 64 };

static int on_bus_batch(sd_event_source *s, void *userdata)
{
	struct bus_front *f = userdata;
	sd_bus *bus = f->bus;

	(void)s;
	for (unsigned n = 0; bus && n < BUS_BATCH && sd_bus_is_open(bus) > 0 && sd_bus_process(bus, NULL) > 0; n++)
		;
	return 0;
}

int bus_attach(struct broker *b, sd_bus *bus)
{
	struct bus_front *f = calloc(1, sizeof(*f));
	int r;

	if (!f)
		return -ENOMEM;
	f->broker = b;
	f->bus = sd_bus_ref(bus);
	f->endpoint.broker = b;
	f->endpoint.bus = bus;
	b->bus = f;
	b->events = &bus_events;
	r = creds_attach(b, bus);
	if (r < 0)
		return r;
	r = sd_bus_add_object_vtable(bus, &f->endpoint.vtable_slot, DMABROKER_OBJECT_PATH, DMABROKER_INTERFACE,
				     broker_vtable(), &f->endpoint);
	if (r < 0)
		return r;
	r = sd_bus_attach_event(bus, b->event, SD_EVENT_PRIORITY_NORMAL);
	if (r < 0)
		return r;
	return sd_event_add_post(b->event, &f->batch, on_bus_batch, f);
}

void bus_stop(struct broker *b)
{
	if (b->bus)
		creds_finish(b);
}

void bus_free(struct broker *b)
{
	struct bus_front *f = b->bus;

	if (!f)
		return;
	b->events = NULL;
	f->batch = sd_event_source_disable_unref(f->batch);
	sd_bus_slot_unref(f->endpoint.vtable_slot);
	sd_bus_flush_close_unref(f->bus);
	free(f);
	b->bus = NULL;
}

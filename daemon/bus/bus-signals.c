/* SPDX-License-Identifier: MIT */
/*
 * The core's events (core/transport.h) as org.dmabroker.Broker1 signals,
 * each for one client alone: on its direct connection if it has one, else
 * unicast on the bus.
 */
#include <errno.h>
#include <stdarg.h>
#include <string.h>

#include "broker.h"
#include "bus-fields.h"
#include "bus.h"
#include "log.h"
#include "stream.h"

int client_new_signal(struct client *c, const char *member, sd_bus_message **ret)
{
	struct endpoint *direct = c->bus ? c->bus->directs : NULL;
	sd_bus *bus = direct ? direct->bus : c->broker->bus ? c->broker->bus->bus : NULL;
	int r;

	if (!bus || (!direct && !c->bus_name))
		return -ENOTCONN;
	r = sd_bus_message_new_signal(bus, ret, DMABROKER_OBJECT_PATH, DMABROKER_INTERFACE, member);
	if (r >= 0 && !direct)
		r = sd_bus_message_set_destination(*ret, c->bus_name);
	if (r < 0)
		*ret = sd_bus_message_unref(*ret);
	return r;
}

/* Sends m if r >= 0, and lets go of it. */
static int send_signal(sd_bus_message *m, int r)
{
	if (r >= 0)
		r = sd_bus_send(NULL, m, NULL);
	sd_bus_message_unref(m);
	return r < 0 ? r : 0;
}

/* A signal of simple arguments (sig: their D-Bus signature). */
static int signal_simple(struct client *to, const char *member, const char *sig, ...)
{
	sd_bus_message *m = NULL;
	va_list ap;
	int r = client_new_signal(to, member, &m);

	if (r >= 0) {
		va_start(ap, sig);
		r = sd_bus_message_appendv(m, sig, ap);
		va_end(ap);
	}
	r = send_signal(m, r);
	if (r < 0 && r != -ENOTCONN)
		log_debug("cannot send %s to client %llu: %s", member, (unsigned long long)to->id, strerror(-r));
	return r;
}

static int fence_timed_out(struct client *to, uint64_t buffer, uint64_t client, bool write)
{
	return signal_simple(to, "FenceTimedOut", "ttb", buffer, client, write);
}

static int grant_timed_out(struct client *to, uint64_t buffer, uint64_t client, bool write)
{
	return signal_simple(to, "GrantTimedOut", "ttb", buffer, client, write);
}

static int moved(struct client *to, const struct buffer *buf, int fence)
{
	sd_bus_message *m = NULL;
	int r = client_new_signal(to, "Moved", &m);

	if (r >= 0)
		r = sd_bus_message_append(m, "tht", buf->id, buf->fd, buf->size);
	if (r >= 0)
		r = bus_append_planes(m, &buf->layout);
	if (r >= 0)
		r = bus_append_optional_fd(m, fence);
	return send_signal(m, r);
}

static int frame_ready(struct client *to, uint64_t stream, uint32_t index, const struct frame_meta *meta, int fence)
{
	sd_bus_message *m = NULL;
	int r = client_new_signal(to, "FrameReady", &m);

	if (r >= 0)
		r = sd_bus_message_append(m, "tutt", stream, index, meta->sequence, meta->timestamp_ns);
	if (r >= 0)
		r = sd_bus_message_open_container(m, 'a', "(iiii)");
	for (unsigned d = 0; r >= 0 && d < meta->n_damage; d++)
		r = sd_bus_message_append(m, "(iiii)", meta->damage[d][0], meta->damage[d][1], meta->damage[d][2],
					  meta->damage[d][3]);
	if (r >= 0)
		r = sd_bus_message_close_container(m);
	if (r >= 0)
		r = bus_append_optional_fd(m, fence);
	return send_signal(m, r);
}

static int buffer_released(struct client *to, uint64_t stream, uint32_t index, int fence)
{
	sd_bus_message *m = NULL;
	int r = client_new_signal(to, "BufferReleased", &m);

	if (r >= 0)
		r = sd_bus_message_append(m, "tu", stream, index);
	if (r >= 0)
		r = bus_append_optional_fd(m, fence);
	r = send_signal(m, r);
	if (r < 0 && r != -ENOTCONN)
		log_debug("cannot send BufferReleased to client %llu: %s", (unsigned long long)to->id, strerror(-r));
	return r;
}

static int consumer_joined(struct client *to, uint64_t stream, uint32_t consumer, int channel)
{
	return signal_simple(to, "ConsumerJoined", "tuh", stream, consumer, channel);
}

static int stream_ended(struct client *to, uint64_t stream, const char *reason)
{
	return signal_simple(to, "StreamEnded", "ts", stream, reason);
}

const struct broker_events bus_events = {
	.fence_timed_out = fence_timed_out,
	.grant_timed_out = grant_timed_out,
	.moved = moved,
	.frame_ready = frame_ready,
	.buffer_released = buffer_released,
	.consumer_joined = consumer_joined,
	.stream_ended = stream_ended,
};

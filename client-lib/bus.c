/* SPDX-License-Identifier: MIT */
/*
 * The D-Bus transports (transport.h): Allocate, BeginAccess, the one-way
 * EndAccess and Release as D-Bus messages, on the bus or on the direct
 * connection (calls() names the one the state is in).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include <systemd/sd-bus.h>

#include "bus-fields.h"
#include "internal.h"
#include "access.h"
#include "buffers.h"
#include "connection.h"
#include "transport.h"

int check_alloc_desc(const struct dmabroker_alloc_desc *d)
{
	/* version 1 descriptors end before flags */
	if (!d || d->version < 1 || d->version > DMABROKER_ALLOC_DESC_VERSION || (d->n_modifiers && !d->modifiers) ||
	    (d->version >= 2 && (d->flags & ~DMABROKER_ALLOC_FRESH)))
		return -EINVAL;
	return 0;
}

int new_allocate_call(struct dmabroker *b, const struct dmabroker_alloc_desc *d, sd_bus_message **ret)
{
	sd_bus_message *m = NULL;
	int r = check_alloc_desc(d);

	if (r < 0)
		return r;
	r = sd_bus_message_new_method_call(calls(b), &m, destination(b), DMABROKER_OBJECT_PATH, DMABROKER_INTERFACE, "Allocate");
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

int parse_allocate_reply(struct dmabroker *b, const struct dmabroker_alloc_desc *d, sd_bus_message *m,
			 struct dmabroker_buffer **ret)
{
	struct dmabroker_buffer *buf = buffer_new(b);
	const char *backend;
	int fd, dmabuf, r;

	if (!buf)
		return set_error(b, NULL, -ENOMEM);
	r = sd_bus_message_read(m, "thtt", &buf->id, &fd, &buf->size, &buf->modifier);
	if (r >= 0)
		r = take_fd(fd, &buf->fd);
	if (r >= 0)
		r = read_planes(m, buf);
	if (r >= 0)
		r = sd_bus_message_read(m, "sb", &backend, &dmabuf);
	if (r < 0) {
		buffer_free(buf);
		return set_error(b, NULL, r);
	}
	r = buffer_refused(buf);
	if (r < 0)
		return r;
	allocated(buf, d, backend, dmabuf, ret);
	return 0;
}

int new_begin_call(struct dmabroker_buffer *buf, uint32_t mode, uint32_t flags, sd_bus_message **ret)
{
	int r = new_call(buf->b, "BeginAccess", ret);
	if (r >= 0)
		r = sd_bus_message_append(*ret, "tuu", buf->id, mode, flags);
	if (r < 0)
		*ret = sd_bus_message_unref(*ret);
	return r;
}

static int bus_allocate(struct dmabroker *b, const struct dmabroker_alloc_desc *d, struct dmabroker_buffer **ret)
{
	sd_bus_message *m = NULL, *reply = NULL;
	int r;

	b->dbus_calls++;
	r = new_allocate_call(b, d, &m);
	if (r < 0)
		return set_error(b, NULL, r);
	r = call(b, m, &reply);
	if (r >= 0)
		r = parse_allocate_reply(b, d, reply, ret);
	sd_bus_message_unref(reply);
	return r < 0 ? r : 0;
}

static int bus_begin(struct dmabroker_buffer *buf, uint32_t mode, uint32_t flags, uint64_t *ret_grant,
		     int *ret_fence)
{
	sd_bus_message *m = NULL, *reply = NULL;
	int r;

	buf->b->dbus_calls++;
	r = new_begin_call(buf, mode, flags, &m);
	if (r < 0)
		return set_error(buf->b, NULL, r);
	r = call(buf->b, m, &reply);
	if (r >= 0)
		r = sd_bus_message_read(reply, "t", ret_grant);
	if (r >= 0)
		r = read_fence_array(reply, ret_fence);
	sd_bus_message_unref(reply);
	return r < 0 ? r : 0;
}

/* Sends m (taken) expecting no reply. */
static int send_oneway(struct dmabroker *b, sd_bus_message *m, int r)
{
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

int new_end_call(struct dmabroker *b, uint64_t grant, int release_fence, sd_bus_message **ret)
{
	int r = new_call(b, "EndAccess", ret);

	if (r >= 0)
		r = sd_bus_message_append(*ret, "t", grant);
	if (r >= 0)
		r = bus_append_optional_fd(*ret, release_fence);
	return r;
}

static int bus_end_oneway(struct dmabroker *b, uint64_t grant, int release_fence)
{
	sd_bus_message *m = NULL;
	int r;

	b->dbus_calls++;
	r = new_end_call(b, grant, release_fence, &m);
	return send_oneway(b, m, r);
}

/* No need to wait: the daemon drops the hold when the call arrives. */
static int bus_release(struct dmabroker_buffer *buf)
{
	sd_bus_message *m = NULL;
	int r;

	buf->b->dbus_calls++;
	r = new_call(buf->b, "Release", &m);
	if (r >= 0)
		r = sd_bus_message_append(m, "t", buf->id);
	return send_oneway(buf->b, m, r);
}

/* One socket, read in order: no sync. */
const struct transport bus_transport = {
	.name = "bus",
	.allocate = bus_allocate,
	.begin = bus_begin,
	.end_oneway = bus_end_oneway,
	.release = bus_release,
};

const struct transport direct_transport = {
	.name = "direct",
	.allocate = bus_allocate,
	.begin = bus_begin,
	.end_oneway = bus_end_oneway,
	.release = bus_release,
};

void transport_update(struct dmabroker *b)
{
	b->transport = b->access_channel >= 0 ? &channel_transport : b->direct ? &direct_transport : &bus_transport;
}

void transport_sync(struct dmabroker *b)
{
	if (b->transport && b->transport->sync)
		b->transport->sync(b);
}

/* SPDX-License-Identifier: MIT */
/*
 * org.dmabroker.Broker1, buffers: Allocate, Import, Release, the sharing
 * tokens, Attach and Detach, Reclaim. Each decodes its call, calls the core
 * (core/allocate.c, import.c, buffer.c, token.c, migrate.c, fdstore.c) and
 * encodes the answer.
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
#include "fdstore.h"
#include "migrate.h"
#include "printable.h"

static int attached(const struct completion *c, uint32_t attachment, int fd)
{
	return sd_bus_reply_method_return(c->call, "uh", attachment, fd);
}

static const struct completion_ops attach_ops = {
	.keep = bus_call_keep, .drop = bus_call_drop, .fail = bus_call_fail, .attached = attached,
};

static int read_options(sd_bus_message *m, const char **backend, const char **device, bool *fresh,
			struct error *error)
{
	int r = sd_bus_message_enter_container(m, 'a', "{sv}");
	if (r < 0)
		return r;
	while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
		const char *key;
		const char **slot;
		r = sd_bus_message_read(m, "s", &key);
		if (r < 0)
			return r;
		if (strcmp(key, "fresh") == 0) {
			int v;
			r = sd_bus_message_read(m, "v", "b", &v);
			if (r < 0)
				return error_setf(error, DMABROKER_E_INVALID_ARGUMENT, "option 'fresh' must be a boolean");
			*fresh = v;
			r = sd_bus_message_exit_container(m);
			if (r < 0)
				return r;
			continue;
		}
		if (strcmp(key, "backend") == 0)
			slot = backend;
		else if (strcmp(key, "device") == 0)
			slot = device;
		else
			return error_setf(error, DMABROKER_E_INVALID_ARGUMENT,
						 "unknown option '%s' (known: backend, device, fresh)", PRINTABLE(key));
		r = sd_bus_message_read(m, "v", "s", slot);
		if (r < 0)
			return error_setf(error, DMABROKER_E_INVALID_ARGUMENT, "option '%s' must be a string", key);
		r = sd_bus_message_exit_container(m);
		if (r < 0)
			return r;
	}
	if (r < 0)
		return r;
	return sd_bus_message_exit_container(m);
}

/* The end of an Allocate call: its reply. */
static void allocate_done(struct client *c, struct buffer *buf, int r, const struct error *error,
			  const struct completion *to)
{
	sd_bus_message *reply = NULL, *m = to->call;

	if (r < 0) {
		broker_reply_error(m, r, error); /* a deferred reply: answered like every other */
		return;
	}
	broker_allocated(c, buf);
	r = sd_bus_message_new_method_return(m, &reply);
	if (r >= 0)
		r = sd_bus_message_append(reply, "thtt", buf->id, buf->fd, buf->size, buf->modifier);
	if (r >= 0)
		r = bus_append_planes(reply, &buf->layout);
	if (r >= 0)
		r = sd_bus_message_append(reply, "sb", buf->backend->name, buf->dmabuf);
	r = bus_send_reply(reply, r);
	if (r < 0) /* the client never learns of it: do not keep it */
		buffer_release(buffer_held_by(buf, c));
}

int method_allocate(sd_bus_message *m, void *userdata, struct error *error)
{
	struct endpoint *e = userdata;
	struct alloc_args a = { 0 };
	const uint64_t *mods;
	size_t mods_size;
	struct client *c;
	int r;

	r = sd_bus_message_read(m, "uuu", &a.width, &a.height, &a.fourcc);
	if (r >= 0)
		r = sd_bus_message_read_array(m, 't', (const void **)&mods, &mods_size);
	if (r >= 0)
		r = sd_bus_message_read(m, "u", &a.usage);
	if (r >= 0)
		r = read_options(m, &a.backend, &a.device, &a.fresh, error);
	if (r < 0)
		return r;
	a.mods = mods;
	a.n_mods = mods_size / sizeof(uint64_t);
	r = bus_caller(e, m, &c, error);
	if (r >= 0)
		r = broker_allocate(c, &a, allocate_done, CALL_COMPLETION(&bus_call_ops, m, c), error);
	return r < 0 ? r : 1; /* answered when the allocation ends */
}

int method_import(sd_bus_message *m, void *userdata, struct error *error)
{
	struct import_args a = { 0 };
	struct buffer *buf;
	struct client *c;
	uint64_t offset;
	uint32_t stride;
	int r;

	r = sd_bus_message_read(m, "huuut", &a.fd, &a.width, &a.height, &a.fourcc, &a.modifier);
	if (r < 0)
		return r;
	r = sd_bus_message_enter_container(m, 'a', "(tu)");
	if (r < 0)
		return r;
	while ((r = sd_bus_message_read(m, "(tu)", &offset, &stride)) > 0) {
		if (a.layout.n_planes == FORMAT_MAX_PLANES)
			return error_setf(error, DMABROKER_E_INVALID_ARGUMENT, "more than %d planes", FORMAT_MAX_PLANES);
		a.layout.plane[a.layout.n_planes].offset = offset;
		a.layout.plane[a.layout.n_planes++].stride = stride;
	}
	if (r < 0)
		return r;
	r = sd_bus_message_exit_container(m);
	if (r >= 0)
		r = sd_bus_message_read(m, "u", &a.usage);
	if (r >= 0)
		r = bus_caller(userdata, m, &c, error);
	if (r >= 0)
		r = broker_import(c, &a, &buf, error);
	if (r < 0)
		return r;
	return sd_bus_reply_method_return(m, "tt", buf->id, buf->size);
}

int method_release(sd_bus_message *m, void *userdata, struct error *error)
{
	struct client *c;
	uint64_t id;
	int r = sd_bus_message_read(m, "t", &id);

	if (r >= 0)
		r = bus_caller(userdata, m, &c, error);
	if (r >= 0)
		r = client_release_buffer(c, id, error);
	if (r < 0)
		return r;
	return sd_bus_reply_method_return(m, "");
}

int method_create_token(sd_bus_message *m, void *userdata, struct error *error)
{
	struct client *c;
	struct buffer *buf;
	const char *value;
	uint64_t id;
	uint32_t flags, ttl;
	int r = sd_bus_message_read(m, "tuu", &id, &flags, &ttl);

	if (r >= 0)
		r = bus_held_buffer(userdata, m, id, &c, &buf, NULL, error);
	if (r >= 0)
		r = token_create(buf, c, flags, ttl, &value, error);
	if (r < 0)
		return r;
	return sd_bus_reply_method_return(m, "s", value);
}

int method_revoke_token(sd_bus_message *m, void *userdata, struct error *error)
{
	struct endpoint *e = userdata;
	struct client *c;
	const char *value;
	int r = sd_bus_message_read(m, "s", &value);

	if (r >= 0)
		r = bus_caller(e, m, &c, error);
	if (r >= 0)
		r = token_revoke(e->broker, c, value, error);
	if (r < 0)
		return r;
	return sd_bus_reply_method_return(m, "");
}

int method_open_token(sd_bus_message *m, void *userdata, struct error *error)
{
	struct endpoint *e = userdata;
	sd_bus_message *reply = NULL;
	struct buffer *buf;
	struct client *c;
	const char *value;
	int r = sd_bus_message_read(m, "s", &value);

	if (r >= 0)
		r = bus_caller(e, m, &c, error);
	if (r >= 0)
		r = token_open(c, value, &buf, error);
	if (r < 0)
		return r;
	r = sd_bus_message_new_method_return(m, &reply);
	if (r >= 0)
		r = sd_bus_message_append(reply, "thuuutt", buf->id, buf->fd, buf->width, buf->height, buf->fourcc,
					  buf->modifier, buf->size);
	if (r >= 0)
		r = bus_append_planes(reply, &buf->layout);
	if (r >= 0)
		r = sd_bus_message_append(reply, "ub", buf->usage, buf->dmabuf);
	return bus_send_reply(reply, r);
}

int method_attach(sd_bus_message *m, void *userdata, struct error *error)
{
	struct client *c;
	const char *device;
	uint64_t id;
	uint32_t usage, flags, aid;
	int fd, r = sd_bus_message_read(m, "tusu", &id, &usage, &device, &flags);

	if (r >= 0)
		r = bus_caller(userdata, m, &c, error);
	if (r >= 0)
		r = broker_attach(c, id, usage, device, flags, CALL_COMPLETION(&attach_ops, m, c), &aid, &fd, error);
	if (r != 0)
		return r < 0 ? r : 1; /* an error, or a move that answers later */
	return sd_bus_reply_method_return(m, "uh", aid, fd);
}

int method_detach(sd_bus_message *m, void *userdata, struct error *error)
{
	struct client *c;
	struct buffer *buf;
	uint64_t id;
	uint32_t aid;
	int r = sd_bus_message_read(m, "tu", &id, &aid);

	if (r >= 0)
		r = bus_held_buffer(userdata, m, id, &c, &buf, NULL, error);
	if (r >= 0)
		r = buffer_detach(buf, c, aid, error);
	if (r < 0)
		return r;
	return sd_bus_reply_method_return(m, "");
}

int method_reclaim(sd_bus_message *m, void *userdata, struct error *error)
{
	struct endpoint *e = userdata;
	sd_bus_message *reply = NULL;
	uint64_t ids[256], id;
	int fds[256], fd;
	unsigned n = 0;
	struct client *c;
	int r = bus_caller(e, m, &c, error);

	if (r < 0)
		return r;
	r = sd_bus_message_enter_container(m, 'a', "(th)");
	while (r >= 0 && (r = sd_bus_message_read(m, "(th)", &id, &fd)) > 0) {
		if (n == ELEMENTSOF(ids))
			return error_setf(error, DMABROKER_E_INVALID_ARGUMENT, "more than %zu buffers at once",
						 ELEMENTSOF(ids));
		ids[n] = id;
		fds[n++] = fd;
	}
	if (r >= 0)
		r = fdstore_reclaim(c, ids, fds, n, error);
	if (r < 0)
		return r;
	if (n)
		log_info("client %llu (%s, pid %d) reclaimed %u buffers", (unsigned long long)c->id, c->comm,
			 (int)c->pid, n);
	r = sd_bus_message_new_method_return(m, &reply);
	if (r >= 0)
		r = sd_bus_message_append_array(reply, 't', ids, n * sizeof(uint64_t));
	return bus_send_reply(reply, r);
}

/* SPDX-License-Identifier: MIT */
/*
 * org.dmabroker.Broker1, streams: CreateStream and JoinStream (their a{sv}
 * options read here), StreamBuffers, QueueFrame, ReleaseFrame, LeaveStream
 * and ListStreams, over core/stream.c.
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
#include "bus-fields.h"
#include "printable.h"
#include "stream.h"

/* ---- options ---- */

static int read_au(sd_bus_message *m, uint32_t *out, unsigned max, unsigned *n, const char *key, struct error *error)
{
	const uint32_t *v;
	size_t size;
	int r = sd_bus_message_enter_container(m, 'v', "au");
	if (r < 0)
		return error_setf(error, DMABROKER_E_INVALID_ARGUMENT, "option '%s' must be an array of uint32 (au)", key);
	r = sd_bus_message_read_array(m, 'u', (const void **)&v, &size);
	if (r < 0)
		return r;
	if (size / 4 > max)
		return error_setf(error, DMABROKER_E_INVALID_ARGUMENT, "option '%s': %zu entries, at most %u", key,
					 size / 4, max);
	memcpy(out, v, size);
	*n = (unsigned)(size / 4);
	return sd_bus_message_exit_container(m);
}

static int read_u(sd_bus_message *m, uint32_t *out, const char *key, struct error *error)
{
	int r = sd_bus_message_read(m, "v", "u", out);
	if (r < 0)
		return error_setf(error, DMABROKER_E_INVALID_ARGUMENT, "option '%s' must be a uint32 (u)", key);
	return 0;
}

static int read_s(sd_bus_message *m, char *out, size_t len, const char *key, struct error *error)
{
	const char *s;
	int r = sd_bus_message_read(m, "v", "s", &s);
	if (r < 0)
		return error_setf(error, DMABROKER_E_INVALID_ARGUMENT, "option '%s' must be a string (s)", key);
	if (strlen(s) >= len)
		return error_setf(error, DMABROKER_E_INVALID_ARGUMENT, "option '%s' is longer than %zu bytes", key,
					 len - 1);
	memcpy(out, s, strlen(s) + 1);
	return 0;
}

static int read_stream_params(sd_bus_message *m, bool producer, struct stream_params *p, struct error *error)
{
	static const char *const producer_only[] = { "mode", "buffers", "width", "height", "consumers",
						     "allow-uids", "allow-gids" };
	bool have_mode = false;
	int r;

	r = sd_bus_message_enter_container(m, 'a', "{sv}");
	if (r < 0)
		return r;
	while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
		const char *key;
		r = sd_bus_message_read(m, "s", &key);
		if (r < 0)
			return r;
		if (!producer)
			for (unsigned i = 0; i < ELEMENTSOF(producer_only); i++)
				if (strcmp(key, producer_only[i]) == 0)
					return error_setf(error, DMABROKER_E_INVALID_ARGUMENT,
								 "option '%s' is the producer's (CreateStream)", key);
		if (producer && strcmp(key, "producer-uid") == 0)
			return error_setf(error, DMABROKER_E_INVALID_ARGUMENT,
						 "option '%s' is a consumer's (JoinStream)", key);
		if (strcmp(key, "label") == 0) {
			r = read_s(m, p->label, sizeof(p->label), key, error);
		} else if (strcmp(key, "mode") == 0) {
			char mode[16];
			r = read_s(m, mode, sizeof(mode), key, error);
			if (r >= 0 && strcmp(mode, "fifo") == 0)
				p->mode = STREAM_FIFO;
			else if (r >= 0 && strcmp(mode, "mailbox") == 0)
				p->mode = STREAM_MAILBOX;
			else if (r >= 0)
				return error_setf(error, DMABROKER_E_INVALID_ARGUMENT,
							 "mode '%s': must be 'fifo' or 'mailbox'", PRINTABLE(mode));
			have_mode = true;
		} else if (strcmp(key, "buffers") == 0) {
			r = read_u(m, &p->buffers, key, error);
		} else if (strcmp(key, "width") == 0) {
			r = read_u(m, &p->width, key, error);
		} else if (strcmp(key, "height") == 0) {
			r = read_u(m, &p->height, key, error);
		} else if (strcmp(key, "consumers") == 0) {
			r = read_u(m, &p->consumers, key, error);
		} else if (strcmp(key, "producer-uid") == 0) {
			r = read_u(m, &p->producer_uid, key, error);
			p->has_producer_uid = r >= 0;
		} else if (strcmp(key, "native") == 0) {
			int v;
			r = sd_bus_message_read(m, "v", "b", &v);
			if (r < 0)
				return error_setf(error, DMABROKER_E_INVALID_ARGUMENT, "option 'native' must be a boolean (b)");
			p->native = v;
		} else if (strcmp(key, "max-acquired") == 0) {
			r = read_u(m, &p->max_acquired, key, error);
		} else if (strcmp(key, "usage") == 0) {
			r = read_u(m, &p->usage, key, error);
			if (r >= 0 && (p->usage & ~DMABROKER_USAGE_ALL))
				return error_setf(error, DMABROKER_E_INVALID_ARGUMENT, "unknown usage bits 0x%x",
							 p->usage & ~DMABROKER_USAGE_ALL);
		} else if (strcmp(key, "allow-uids") == 0) {
			r = read_au(m, p->allow_uids, DMABROKER_STREAM_MAX_ALLOW, &p->n_allow_uids, key, error);
		} else if (strcmp(key, "allow-gids") == 0) {
			r = read_au(m, p->allow_gids, DMABROKER_STREAM_MAX_ALLOW, &p->n_allow_gids, key, error);
		} else if (strcmp(key, "formats") == 0) {
			r = read_au(m, p->formats, DMABROKER_STREAM_MAX_FORMATS, &p->n_formats, key, error);
		} else if (strcmp(key, "modifiers") == 0) {
			const uint64_t *v;
			size_t size;
			r = sd_bus_message_enter_container(m, 'v', "at");
			if (r < 0)
				return error_setf(error, DMABROKER_E_INVALID_ARGUMENT,
							 "option 'modifiers' must be an array of uint64 (at)");
			r = sd_bus_message_read_array(m, 't', (const void **)&v, &size);
			if (r >= 0 && size / 8 > DMABROKER_STREAM_MAX_MODIFIERS)
				return error_setf(error, DMABROKER_E_INVALID_ARGUMENT, "%zu modifiers, at most %d",
							 size / 8, DMABROKER_STREAM_MAX_MODIFIERS);
			if (r >= 0) {
				memcpy(p->modifiers, v, size);
				p->n_modifiers = (unsigned)(size / 8);
				r = sd_bus_message_exit_container(m);
			}
		} else if (strcmp(key, "devices") == 0) {
			const char *d;
			r = sd_bus_message_enter_container(m, 'v', "as");
			if (r < 0)
				return error_setf(error, DMABROKER_E_INVALID_ARGUMENT,
							 "option 'devices' must be an array of strings (as)");
			r = sd_bus_message_enter_container(m, 'a', "s");
			while (r >= 0 && (r = sd_bus_message_read(m, "s", &d)) > 0) {
				if (p->n_devices == DMABROKER_STREAM_MAX_DEVICES)
					return error_setf(error, DMABROKER_E_INVALID_ARGUMENT, "more than %d devices",
								 DMABROKER_STREAM_MAX_DEVICES);
				if (strlen(d) >= sizeof(p->devices[0]))
					return error_setf(error, DMABROKER_E_INVALID_ARGUMENT, "device name too long");
				snprintf(p->devices[p->n_devices++], sizeof(p->devices[0]), "%s", d);
			}
			if (r >= 0)
				r = sd_bus_message_exit_container(m);
			if (r >= 0)
				r = sd_bus_message_exit_container(m);
		} else {
			return error_setf(error, DMABROKER_E_INVALID_ARGUMENT,
						 "unknown option '%s' (known: label, mode, buffers, width, height, "
						 "consumers, max-acquired, usage, formats, modifiers, devices, native, allow-uids, "
						 "allow-gids, producer-uid)", PRINTABLE(key));
		}
		if (r < 0)
			return r;
		r = sd_bus_message_exit_container(m);
		if (r < 0)
			return r;
	}
	if (r < 0)
		return r;
	r = sd_bus_message_exit_container(m);
	if (r < 0)
		return r;
	if (producer && !have_mode)
		p->mode = STREAM_FIFO;
	return 0;
}


/* Streams run on direct connections: the per-frame messages skip the bus. */
static int direct_caller(struct endpoint *e, sd_bus_message *m, struct client **ret, struct error *error)
{
	if (!e->client)
		return error_set(error, DMABROKER_E_NOT_PERMITTED,
					"streams run over a direct connection: call OpenDirect, then this method on it");
	return bus_caller(e, m, ret, error);
}

static int find_stream(struct broker *b, uint64_t id, struct stream **ret, struct error *error)
{
	*ret = stream_find(b, id);
	if (!*ret)
		return stream_unknown(id, error);
	return 0;
}

/*
 * QueueFrame and ReleaseFrame are sent without expecting a reply: a failure
 * then comes back as a StreamError signal (and a log line), not lost.
 */
static int oneway_result(struct endpoint *e, sd_bus_message *m, struct client *c, uint64_t stream, int r,
			 struct error *error)
{
	if (!c)
		c = e->client; /* refused before direct_caller(), as a call with two fences is: still told */
	if (r >= 0)
		return sd_bus_reply_method_return(m, ""); /* dropped by sd-bus when no reply is expected */
	if (c && !sd_bus_message_get_expect_reply(m)) {
		_cleanup_(sd_bus_error_free) sd_bus_error be = SD_BUS_ERROR_NULL;
		sd_bus_message *sig = NULL;
		const char *name, *msg;

		bus_error_from(&be, r, error);
		name = be.name;
		msg = be.message ? PRINTABLE(be.message) : strerror(-r);
		log_notice("client %llu: %s on stream %llu: %s", (unsigned long long)c->id, sd_bus_message_get_member(m),
			   (unsigned long long)stream, msg);
		if (client_new_signal(c, "StreamError", &sig) >= 0 &&
		    sd_bus_message_append(sig, "tsss", stream, sd_bus_message_get_member(m), name, msg) >= 0)
			sd_bus_send(NULL, sig, NULL);
		sd_bus_message_unref(sig);
	}
	return r;
}

int method_create_stream(sd_bus_message *m, void *userdata, struct error *error)
{
	struct stream_params p = { 0 };
	struct stream *s;
	struct client *c = NULL;
	const char *name;
	int r = sd_bus_message_read(m, "s", &name);

	if (r >= 0)
		r = read_stream_params(m, true, &p, error);
	if (r >= 0)
		r = direct_caller(userdata, m, &c, error);
	if (r < 0)
		return r;
	snprintf(p.name, sizeof(p.name), "%s", name);
	if (strlen(name) >= sizeof(p.name))
		return error_setf(error, DMABROKER_E_INVALID_ARGUMENT, "stream name longer than %zu bytes",
					 sizeof(p.name) - 1);
	r = stream_create(c, &p, &s, error);
	if (r < 0)
		return r;
	return sd_bus_reply_method_return(m, "t", stream_id(s));
}

int method_join_stream(sd_bus_message *m, void *userdata, struct error *error)
{
	struct stream_params p = { 0 };
	struct stream *s;
	struct client *c = NULL;
	const char *name;
	uint32_t consumer;
	int r = sd_bus_message_read(m, "s", &name);

	if (r >= 0)
		r = read_stream_params(m, false, &p, error);
	if (r >= 0)
		r = direct_caller(userdata, m, &c, error);
	if (r < 0)
		return r;
	snprintf(p.name, sizeof(p.name), "%s", name);
	r = stream_join(c, &p, &s, &consumer, error);
	if (r < 0)
		return r;
	return sd_bus_reply_method_return(m, "tu", stream_id(s), consumer);
}

/* StreamBuffers' answer: "uuutssa(thta(tu))uaha(uh)". */
static int send_stream_buffers(const struct completion *to, struct stream *s, struct client *c)
{
	struct stream_buffers_info info;
	sd_bus_message *reply = NULL;
	int r;

	stream_describe(s, c, &info);
	r = sd_bus_message_new_method_return(to->call, &reply);
	if (r >= 0)
		r = sd_bus_message_append(reply, "uuutss", info.width, info.height, info.fourcc, info.modifier,
					  info.backend, info.mode);
	if (r >= 0)
		r = sd_bus_message_open_container(reply, 'a', "(thta(tu))");
	for (unsigned i = 0; r >= 0 && i < info.n_buffers; i++) {
		const struct buffer *buf = info.buffers[i];
		r = sd_bus_message_open_container(reply, 'r', "thta(tu)");
		if (r >= 0)
			r = sd_bus_message_append(reply, "tht", buf->id, buf->fd, buf->size);
		if (r >= 0)
			r = bus_append_planes(reply, &buf->layout);
		if (r >= 0)
			r = sd_bus_message_close_container(reply);
	}
	if (r >= 0)
		r = sd_bus_message_close_container(reply);
	if (r >= 0)
		r = sd_bus_message_append(reply, "u", info.max_acquired);
	if (r >= 0)
		r = bus_append_optional_fd(reply, info.counters);
	if (r >= 0)
		r = sd_bus_message_open_container(reply, 'a', "(uh)");
	for (unsigned i = 0; r >= 0 && i < info.n_channels; i++)
		r = sd_bus_message_append(reply, "(uh)", info.channels[i].consumer, info.channels[i].fd);
	if (r >= 0)
		r = sd_bus_message_close_container(reply);
	if (r >= 0)
		r = sd_bus_send(NULL, reply, NULL);
	sd_bus_message_unref(reply);
	return r < 0 ? r : 0;
}

static const struct completion_ops stream_buffers_ops = {
	.keep = bus_call_keep, .drop = bus_call_drop, .fail = bus_call_fail, .stream_buffers = send_stream_buffers,
};

int method_stream_buffers(sd_bus_message *m, void *userdata, struct error *error)
{
	struct endpoint *e = userdata;
	struct stream *s;
	struct client *c = NULL;
	uint64_t id;
	int r = sd_bus_message_read(m, "t", &id);

	if (r >= 0)
		r = direct_caller(e, m, &c, error);
	if (r >= 0)
		r = find_stream(e->broker, id, &s, error);
	if (r < 0)
		return r;
	return stream_buffers(s, c, CALL_COMPLETION(&stream_buffers_ops, m, c), error);
}

int method_queue_frame(sd_bus_message *m, void *userdata, struct error *error)
{
	struct endpoint *e = userdata;
	struct frame_meta meta = { 0 };
	struct client *c = NULL;
	struct stream *s;
	uint64_t id = 0;
	uint32_t index;
	int fence = -1, r = sd_bus_message_read(m, "tutt", &id, &index, &meta.sequence, &meta.timestamp_ns);

	if (r >= 0)
		r = bus_read_damage(m, meta.damage, DMABROKER_STREAM_MAX_DAMAGE, &meta.n_damage);
	if (r >= 0)
		r = bus_read_optional_fd(m, &fence, error);
	if (r >= 0)
		r = direct_caller(e, m, &c, error);
	if (r >= 0)
		r = find_stream(e->broker, id, &s, error);
	if (r >= 0)
		r = stream_queue(s, c, index, &meta, fence, error);
	return oneway_result(e, m, c, id, r, error);
}

int method_release_frame(sd_bus_message *m, void *userdata, struct error *error)
{
	struct endpoint *e = userdata;
	struct client *c = NULL;
	struct stream *s;
	uint64_t id = 0;
	uint32_t index;
	int fence = -1, r = sd_bus_message_read(m, "tu", &id, &index);

	if (r >= 0)
		r = bus_read_optional_fd(m, &fence, error);
	if (r >= 0)
		r = direct_caller(e, m, &c, error);
	if (r >= 0)
		r = find_stream(e->broker, id, &s, error);
	if (r >= 0)
		r = stream_release(s, c, index, fence, error);
	return oneway_result(e, m, c, id, r, error);
}

int method_leave_stream(sd_bus_message *m, void *userdata, struct error *error)
{
	struct endpoint *e = userdata;
	struct stream *s;
	struct client *c = NULL;
	uint64_t id;
	int r = sd_bus_message_read(m, "t", &id);

	if (r >= 0)
		r = bus_caller(e, m, &c, error);
	if (r >= 0)
		r = find_stream(e->broker, id, &s, error);
	if (r >= 0)
		r = stream_leave(s, c, error);
	if (r < 0)
		return r;
	return sd_bus_reply_method_return(m, "");
}

static int append_stream(const struct stream_info *i, void *userdata)
{
	return sd_bus_message_append(userdata, "(tssssuuuututtt)", i->id, i->name, i->mode, i->state, i->backend,
				     i->fourcc, i->width, i->height, i->n_buffers, i->producer, i->n_consumers,
				     i->produced, i->consumed, i->dropped);
}

int method_list_streams(sd_bus_message *m, void *userdata, struct error *error)
{
	struct endpoint *e = userdata;
	sd_bus_message *reply = NULL;
	struct client *c;
	int r = bus_caller(e, m, &c, error);

	if (r < 0)
		return r;
	r = sd_bus_message_new_method_return(m, &reply);
	if (r >= 0)
		r = sd_bus_message_open_container(reply, 'a', "(tssssuuuututtt)");
	if (r >= 0)
		r = stream_list(e->broker, c, append_stream, reply);
	return bus_send_list_reply(reply, r);
}

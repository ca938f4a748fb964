/* SPDX-License-Identifier: MIT */
/*
 * org.dmabroker.Broker1, access: BeginAccess, BeginAccessMulti and
 * EndAccess (core/access.c), and the two faster ways in it hands out:
 * OpenDirect (a private D-Bus connection) and OpenAccessChannel (the binary
 * channel, channel/access-channel.c).
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
#include "channel.h"

/* BeginAccess: (t grant, ah fence); BeginAccessMulti: (at grants, ah fence). */
static int send_granted(const struct completion *c, struct grant *const *grants, unsigned n, int fence, bool multi)
{
	sd_bus_message *reply = NULL;
	int r = sd_bus_message_new_method_return(c->call, &reply);

	if (r >= 0 && multi) {
		r = sd_bus_message_open_container(reply, 'a', "t");
		for (unsigned i = 0; r >= 0 && i < n; i++)
			r = sd_bus_message_append(reply, "t", grants[i]->id);
		if (r >= 0)
			r = sd_bus_message_close_container(reply);
	} else if (r >= 0) {
		r = sd_bus_message_append(reply, "t", grants[0]->id);
	}
	if (r >= 0)
		r = bus_append_optional_fd(reply, fence);
	if (r >= 0)
		r = sd_bus_send(NULL, reply, NULL);
	sd_bus_message_unref(reply);
	return r < 0 ? r : 0;
}

static int granted_one(const struct completion *c, struct grant *const *grants, unsigned n, int fence)
{
	return send_granted(c, grants, n, fence, false);
}

static int granted_multi(const struct completion *c, struct grant *const *grants, unsigned n, int fence)
{
	return send_granted(c, grants, n, fence, true);
}

static const struct completion_ops begin_ops = {
	.keep = bus_call_keep, .drop = bus_call_drop, .fail = bus_call_fail, .granted = granted_one,
};
static const struct completion_ops begin_multi_ops = {
	.keep = bus_call_keep, .drop = bus_call_drop, .fail = bus_call_fail, .granted = granted_multi,
};

int method_begin_access(sd_bus_message *m, void *userdata, struct error *error)
{
	struct client *c;
	struct buffer *buf;
	uint64_t id;
	uint32_t mode, flags;
	int r = sd_bus_message_read(m, "tuu", &id, &mode, &flags);

	if (r >= 0)
		r = bus_held_buffer(userdata, m, id, &c, &buf, NULL, error);
	if (r < 0)
		return r;
	return access_begin(c, CALL_COMPLETION(&begin_ops, m, c), 1, &buf, &mode, flags, error);
}

int method_begin_access_multi(sd_bus_message *m, void *userdata, struct error *error)
{
	struct endpoint *e = userdata;
	struct buffer *bufs[DMABROKER_ACCESS_MAX_MULTI];
	uint32_t modes[DMABROKER_ACCESS_MAX_MULTI], flags;
	unsigned n = 0;
	struct client *c;
	uint64_t id;
	uint32_t mode;
	int r = sd_bus_message_enter_container(m, 'a', "(tu)");

	if (r < 0)
		return r;
	while ((r = sd_bus_message_read(m, "(tu)", &id, &mode)) > 0) {
		if (n == DMABROKER_ACCESS_MAX_MULTI)
			return error_setf(error, DMABROKER_E_INVALID_ARGUMENT, "more than %d buffers at once",
						 DMABROKER_ACCESS_MAX_MULTI);
		r = bus_held_buffer(e, m, id, &c, &bufs[n], NULL, error);
		if (r < 0)
			return r;
		modes[n++] = mode;
	}
	if (r >= 0)
		r = sd_bus_message_exit_container(m);
	if (r >= 0)
		r = sd_bus_message_read(m, "u", &flags);
	if (r >= 0)
		r = bus_caller(e, m, &c, error);
	if (r < 0)
		return r;
	return access_begin(c, CALL_COMPLETION(&begin_multi_ops, m, c), n, bufs, modes, flags, error);
}

int method_end_access(sd_bus_message *m, void *userdata, struct error *error)
{
	struct endpoint *e = userdata;
	struct client *c;
	uint64_t grant;
	int fence = -1, r = sd_bus_message_read(m, "t", &grant);

	if (r >= 0)
		r = bus_read_optional_fd(m, &fence, error);
	if (r >= 0)
		r = bus_caller(e, m, &c, error);
	if (r >= 0)
		r = access_end(c, grant, fence, error);
	if (r < 0 && !sd_bus_message_get_expect_reply(m))
		/* one-way (dmabroker_end_access_oneway): nobody hears the error, so say it here */
		log_notice("one-way EndAccess of grant %llu from %s refused: %s", (unsigned long long)grant,
			   sd_bus_message_get_sender(m) ? sd_bus_message_get_sender(m) : "a direct connection",
			   error_is_set(error) ? error->message : strerror(-r));
	if (r < 0)
		return r;
	return sd_bus_reply_method_return(m, "");
}

int method_open_access_channel(sd_bus_message *m, void *userdata, struct error *error)
{
	_cleanup_close_ int fd = -1;
	struct client *c;
	int r = bus_caller(userdata, m, &c, error);

	if (r >= 0)
		r = access_channel_open(c, &fd, error);
	if (r < 0)
		return r;
	return sd_bus_reply_method_return(m, "h", fd);
}

int method_open_direct(sd_bus_message *m, void *userdata, struct error *error)
{
	struct endpoint *e = userdata;
	_cleanup_close_ int fd = -1;
	struct client *c;
	int r;

	if (e->client)
		return error_set(error, DMABROKER_E_NOT_PERMITTED,
					"this is a direct connection already; call OpenDirect on the bus");
	r = bus_caller(e, m, &c, error);
	if (r >= 0)
		r = bus_open_direct(c, &fd, error);
	if (r < 0)
		return r;
	return sd_bus_reply_method_return(m, "h", fd);
}

/* SPDX-License-Identifier: MIT */
/*
 * org.dmabroker.Broker1, what is there: ListBuffers, ListClients, GetUsage
 * and ListBackends (everything for an admin, one's own for others).
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
#include "config.h"
#include "quota.h"

int method_list_buffers(sd_bus_message *m, void *userdata, struct error *error)
{
	struct endpoint *e = userdata;
	sd_bus_message *reply = NULL;
	struct client *c;
	uint64_t now, key;
	void *v;
	int r = bus_caller(e, m, &c, error);

	if (r < 0)
		return r;
	now = now_usec();
	r = sd_bus_message_new_method_return(m, &reply);
	if (r >= 0)
		r = sd_bus_message_open_container(reply, 'a', "(tuuutsuuuuutuuuu)");
	for (size_t i = 0; r >= 0 && hashmap_next(&e->broker->buffers, &i, &key, &v);) {
		struct buffer *buf = v;
		if (!client_is_admin(c) && !buffer_held_by(buf, c))
			continue;
		r = sd_bus_message_append(reply, "(tuuutsuuuuutuuuu)", buf->id, buf->width, buf->height, buf->fourcc,
					  buf->size, buf->backend ? buf->backend->name : "import", buf->usage,
					  (uint32_t)buf->owner_uid, (uint32_t)buf->owner_pid, buf->n_holders,
					  buf->n_attachments, now - buf->created_usec,
					  buf->resv.readers + (buf->resv.writer ? 1u : 0u), buf->resv.waiters,
					  access_pending_fences(buf), buf->resv.fence_timeouts);
	}
	return bus_send_list_reply(reply, r);
}

int method_list_clients(sd_bus_message *m, void *userdata, struct error *error)
{
	struct endpoint *e = userdata;
	sd_bus_message *reply = NULL;
	struct client *self;
	uint64_t now;
	int r = bus_caller(e, m, &self, error);

	if (r < 0)
		return r;
	now = now_usec();
	r = sd_bus_message_new_method_return(m, &reply);
	if (r >= 0)
		r = sd_bus_message_open_container(reply, 'a', "(tsuuusutuut)");
	for (struct client *c = e->broker->clients; r >= 0 && c; c = c->next) {
		if (!client_is_admin(self) && c != self)
			continue;
		r = sd_bus_message_append(reply, "(tsuuusutuut)", c->id, c->bus_name ? c->bus_name : "",
					  (uint32_t)c->uid, (uint32_t)c->gid, (uint32_t)c->pid, c->comm, c->n_holds,
					  c->bytes, c->n_tokens, c->n_directs, now - c->created_usec);
	}
	return bus_send_list_reply(reply, r);
}

static int append_usage(sd_bus_message *reply, const char *scope, const struct usage *u, const struct config *cfg,
			bool uid)
{
	int r = 0;
	for (unsigned q = 0; r >= 0 && q < Q__MAX; q++) {
		uint64_t limit = uid ? quota_uid_limit(cfg, q) : quota_client_limit(cfg, q);
		if (limit)
			r = sd_bus_message_append(reply, "(sstt)", scope, quota_resource_name(q), u->v[q], limit);
	}
	return r;
}

int method_get_usage(sd_bus_message *m, void *userdata, struct error *error)
{
	struct endpoint *e = userdata;
	struct broker *b = e->broker;
	sd_bus_message *reply = NULL;
	struct client *self;
	uid_t uids[256];
	unsigned n_uids = 0;
	int r = bus_caller(e, m, &self, error);

	if (r < 0)
		return r;
	r = sd_bus_message_new_method_return(m, &reply);
	if (r >= 0)
		r = sd_bus_message_open_container(reply, 'a', "(sstt)");
	for (struct client *c = b->clients; r >= 0 && c; c = c->next) {
		char scope[64];
		struct usage u;
		bool seen = false;
		if (!client_is_admin(self) && c != self)
			continue;
		snprintf(scope, sizeof(scope), "client %llu (%s)", (unsigned long long)c->id, c->comm);
		quota_client_usage(c, &u);
		r = append_usage(reply, scope, &u, &b->config, false);
		for (unsigned i = 0; i < n_uids; i++)
			seen |= uids[i] == c->uid;
		if (!seen && n_uids < ELEMENTSOF(uids))
			uids[n_uids++] = c->uid;
	}
	for (unsigned i = 0; r >= 0 && i < n_uids; i++) {
		char scope[32];
		struct usage u;
		snprintf(scope, sizeof(scope), "uid %u", (unsigned)uids[i]);
		quota_uid_usage(b, uids[i], &u);
		r = append_usage(reply, scope, &u, &b->config, true);
	}
	return bus_send_list_reply(reply, r);
}

int method_list_backends(sd_bus_message *m, void *userdata, struct error *error)
{
	struct endpoint *e = userdata;
	const struct backends *bs = &e->broker->backends;
	sd_bus_message *reply = NULL;
	int r = sd_bus_message_new_method_return(m, &reply);

	if (r >= 0)
		r = sd_bus_message_open_container(reply, 'a', "(sssbs)");
	for (unsigned i = 0; r >= 0 && i < bs->n_notes; i++)
		r = sd_bus_message_append(reply, "(sssbs)", bs->notes[i].name, bs->notes[i].kind,
					  bs->notes[i].device, bs->notes[i].available, bs->notes[i].detail);
	return bus_send_list_reply(reply, r);
}

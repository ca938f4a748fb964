/* SPDX-License-Identifier: MIT */
/*
 * Who a new bus peer is. The daemon decides with what the bus vouches for
 * and nothing else: GetConnectionCredentials, that is the uid, the pid and,
 * where the bus reports them, the groups the peer had when it connected. It
 * never reads /proc for a decision: /proc describes the process as it is
 * at the moment it is read (after a setgroups(), an exec of a setgid
 * binary, or another process with a reused pid), not the one that
 * connected.
 *
 * The question is asked asynchronously, so that a new client never makes
 * the loop wait for the bus: the peer's first Broker1 call is held (a
 * reference on the message) until the answer comes, and its further calls
 * meanwhile are held after it, in order, up to CREDS_MAX_HELD per peer and
 * CREDS_MAX_HELD_TOTAL in all (the rest get LimitReached: a held call keeps
 * the fds it carries open, up to the bus's max_message_unix_fds each). Then the client is created and the held calls are
 * dispatched through the same vtable as any other. If the bus cannot say,
 * each held call gets NotPermitted. A peer that leaves meanwhile is
 * forgotten with its calls (nothing to answer: it is gone).
 *
 * The peer is watched (NameOwnerChanged for its unique name) from its first
 * call: the match is asked of the bus before the credentials, so the bus
 * either reports the departure or fails the credentials call; the same
 * match then watches the client.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "bus.h"
#include "cleanup.h"
#include "error.h"
#include "log.h"

enum { CREDS_MAX_HELD = 64, CREDS_MAX_HELD_TOTAL = 256 };

struct creds_wait {
	struct broker *broker;
	char *name;                     /* the peer's unique name */
	sd_bus_slot *name_slot;         /* its NameOwnerChanged match; the client takes it over */
	sd_bus_slot *call_slot;         /* GetConnectionCredentials in flight */
	sd_bus_message *held[CREDS_MAX_HELD];
	unsigned n_held;
	struct creds_wait *next;
};

static struct creds_wait *wait_find(struct broker *b, const char *name)
{
	for (struct creds_wait *w = b->bus->creds_waits; w; w = w->next)
		if (strcmp(w->name, name) == 0)
			return w;
	return NULL;
}

static void wait_unlink(struct creds_wait *w)
{
	struct broker *b = w->broker;

	for (struct creds_wait **p = &b->bus->creds_waits; *p; p = &(*p)->next)
		if (*p == w) {
			*p = w->next;
			b->bus->n_creds_waits--;
			break;
		}
}

/* Forgets w and its held calls; each is answered with error first if error is set. */
static void wait_free(struct creds_wait *w, const struct error *error)
{
	wait_unlink(w);
	/* sd-bus holds a reference on a slot while it calls its callback */
	sd_bus_slot_unref(w->call_slot);
	sd_bus_slot_unref(w->name_slot);
	w->broker->bus->n_creds_held -= w->n_held;
	for (unsigned i = 0; i < w->n_held; i++) {
		if (error && error_is_set(error))
			broker_reply_error(w->held[i], -EIO, error);
		sd_bus_message_unref(w->held[i]);
	}
	free(w->name);
	free(w);
}

static const sd_bus_vtable *broker_method(const char *member)
{
	for (const sd_bus_vtable *v = broker_vtable(); v->type != _SD_BUS_VTABLE_END; v++)
		if (v->type == _SD_BUS_VTABLE_METHOD && strcmp(v->x.method.member, member) == 0)
			return v;
	return NULL;
}

/* Runs a held call as sd-bus would have: the signature checked, errors answered. */
static void dispatch(struct broker *b, sd_bus_message *m)
{
	const sd_bus_vtable *v = broker_method(sd_bus_message_get_member(m));
	sd_bus_error error = SD_BUS_ERROR_NULL;
	int r;

	if (!sd_bus_message_has_signature(m, v->x.method.signature)) {
		sd_bus_reply_method_errorf(m, SD_BUS_ERROR_INVALID_ARGS,
					   "Invalid arguments '%s' to call %s.%s(), expecting '%s'.",
					   sd_bus_message_get_signature(m, true), DMABROKER_INTERFACE, v->x.method.member,
					   v->x.method.signature);
		return;
	}
	/* the handler answers its own errors (bus-interface.c); this is in case sd-bus would have */
	r = v->x.method.handler(m, &b->bus->endpoint, &error);
	if (sd_bus_error_is_set(&error))
		broker_reply_sd_bus_error(m, &error);
	else if (r < 0)
		broker_reply_error(m, r, NULL);
	sd_bus_error_free(&error);
}

/* The a{sv} of GetConnectionCredentials: UnixUserID and ProcessID required, UnixGroupIDs if given. */
static int read_creds(sd_bus_message *m, struct client_creds *ret)
{
	bool have_uid = false, have_pid = false;
	int r;

	*ret = (struct client_creds){ 0 };
	r = sd_bus_message_enter_container(m, 'a', "{sv}");
	while (r >= 0 && (r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
		const char *key;
		uint32_t u;

		r = sd_bus_message_read(m, "s", &key);
		if (r < 0)
			break;
		if (strcmp(key, "UnixUserID") == 0) {
			r = sd_bus_message_read(m, "v", "u", &u);
			ret->uid = (uid_t)u;
			have_uid = r >= 0;
		} else if (strcmp(key, "ProcessID") == 0) {
			r = sd_bus_message_read(m, "v", "u", &u);
			ret->pid = (pid_t)u;
			have_pid = r >= 0 && u > 0;
		} else if (strcmp(key, "UnixGroupIDs") == 0) {
			const uint32_t *g = NULL;
			size_t size = 0;

			r = sd_bus_message_enter_container(m, 'v', "au");
			if (r >= 0)
				r = sd_bus_message_read_array(m, 'u', (const void **)&g, &size);
			for (size_t i = 0; r >= 0 && i < size / sizeof(*g); i++) {
				if (ret->n_groups == ELEMENTSOF(ret->groups)) {
					log_notice("a peer is in %zu groups: only the first %zu count", size / sizeof(*g),
						   ELEMENTSOF(ret->groups));
					break;
				}
				ret->groups[ret->n_groups++] = (gid_t)g[i];
			}
			if (r >= 0)
				r = sd_bus_message_exit_container(m);
		} else
			r = sd_bus_message_skip(m, "v");
		if (r >= 0)
			r = sd_bus_message_exit_container(m);
	}
	if (r < 0)
		return r;
	return have_uid && have_pid ? 0 : -ENODATA;
}

static int on_creds(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
	struct creds_wait *w = userdata;
	struct broker *b = w->broker;
	struct error error = ERROR_NULL;
	sd_bus_message *held[CREDS_MAX_HELD];
	struct client_creds creds;
	struct client *c = NULL;
	unsigned n;
	int r;

	w->call_slot = sd_bus_slot_unref(w->call_slot);
	if (sd_bus_message_is_method_error(m, NULL)) {
		const sd_bus_error *e = sd_bus_message_get_error(m);
		/* most often the peer left already: then nobody reads the answers */
		log_debug("no credentials for %s: %s", w->name, e->message ? e->message : e->name);
		error_setf(&error, DMABROKER_E_NOT_PERMITTED, "the bus did not say who the caller is (%s)", e->name);
		wait_free(w, &error);
		error = ERROR_NULL;
		return 0;
	}
	r = read_creds(m, &creds);
	if (r < 0) {
		log_warning("the bus did not vouch for the uid and pid of %s: %s", w->name, strerror(-r));
		error_setf(&error, DMABROKER_E_NOT_PERMITTED, "the bus did not vouch for the caller's uid and pid");
		wait_free(w, &error);
		error = ERROR_NULL;
		return 0;
	}
	r = client_new(b, w->name, &creds, &c, &error);
	if (r >= 0 && !bus_client_of(c)) {
		client_free(c);
		r = -ENOMEM;
	}
	if (r < 0) {
		if (!error_is_set(&error))
			error_set_errnof(&error, r, "cannot serve a new client: %s", strerror(-r));
		wait_free(w, &error);
		error = ERROR_NULL;
		return 0;
	}
	c->bus->name_slot = TAKE_PTR(w->name_slot); /* the client watches its name from now on */
	/* The client answers from now on: run what it sent meanwhile, in order. */
	n = w->n_held;
	memcpy(held, w->held, n * sizeof(held[0]));
	b->bus->n_creds_held -= n;
	w->n_held = 0;
	wait_free(w, NULL);
	log_debug("client %llu: %u calls held while the bus answered", (unsigned long long)c->id, n);
	for (unsigned i = 0; i < n; i++) {
		dispatch(b, held[i]);
		sd_bus_message_unref(held[i]);
	}
	return 0;
}

static int on_name_owner_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
	struct broker *b = userdata;
	const char *name, *old_owner, *new_owner;
	struct creds_wait *w;
	struct client *c;

	if (sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner) < 0 || *new_owner)
		return 0;
	w = wait_find(b, name);
	if (w) {
		log_debug("%s left before the bus said who it is: %u calls dropped", name, w->n_held);
		wait_free(w, NULL);
		return 0;
	}
	c = client_find_by_name(b, name);
	if (c)
		bus_name_gone(c);
	return 0;
}

/* The bus refused the match (its limit of match rules): the peer cannot be watched, so it is not served. */
static int on_match_installed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
	struct broker *b = userdata;
	sd_bus_slot *slot = sd_bus_get_current_slot(sd_bus_message_get_bus(m));
	const sd_bus_error *e = sd_bus_message_get_error(m);
	struct error error = ERROR_NULL;

	if (!e)
		return 0;
	for (struct creds_wait *w = b->bus->creds_waits; w; w = w->next)
		if (w->name_slot == slot) {
			log_warning("cannot watch %s on the bus (%s): its calls are refused", w->name, e->name);
			error_setf(&error, DMABROKER_E_LIMIT_REACHED,
					  "the broker cannot watch one more client on the bus (%s)", e->name);
			wait_free(w, &error);
			error = ERROR_NULL;
			return 0;
		}
	for (struct client *c = b->clients; c; c = c->next)
		if (c->bus && c->bus->name_slot == slot) {
			log_warning("cannot watch client %llu (%s) on the bus (%s): dropped", (unsigned long long)c->id,
				    c->bus_name, e->name);
			bus_name_gone(c);
			return 0;
		}
	return 0;
}

/* The match that sees unique name leave the bus. */
static int watch_name(struct broker *b, const char *name, sd_bus_slot **ret)
{
	char match[256];

	if ((size_t)snprintf(match, sizeof(match),
			     "type='signal',sender='org.freedesktop.DBus',path='/org/freedesktop/DBus',"
			     "interface='org.freedesktop.DBus',member='NameOwnerChanged',arg0='%s'",
			     name) >= sizeof(match))
		return -ENAMETOOLONG;
	return sd_bus_add_match_async(b->bus->bus, ret, match, on_name_owner_changed, on_match_installed, b);
}

static int wait_new(struct broker *b, const char *name, struct creds_wait **ret, struct error *error)
{
	struct creds_wait *w;
	int r;

	if (b->n_clients + b->bus->n_creds_waits >= b->config.max_clients)
		return error_setf(error, DMABROKER_E_LIMIT_REACHED,
					 "the broker serves %u clients and %u new ones, the limit (max-clients)",
					 b->n_clients, b->bus->n_creds_waits);
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->broker = b;
	w->name = strdup(name);
	if (!w->name) {
		free(w);
		return -ENOMEM;
	}
	/* the match first: the bus handles our two calls in order */
	r = watch_name(b, name, &w->name_slot);
	if (r >= 0)
		r = sd_bus_call_method_async(b->bus->bus, &w->call_slot, "org.freedesktop.DBus", "/org/freedesktop/DBus",
					     "org.freedesktop.DBus", "GetConnectionCredentials", on_creds, w, "s",
					     name);
	if (r < 0) {
		sd_bus_slot_unref(w->name_slot);
		free(w->name);
		free(w);
		return error_set_errnof(error, r, "cannot ask the bus who the caller is: %s", strerror(-r));
	}
	w->next = b->bus->creds_waits;
	b->bus->creds_waits = w;
	b->bus->n_creds_waits++;
	*ret = w;
	return 0;
}

/*
 * Sees every message on the bus before the vtable does: a Broker1 call of a
 * peer that is no client yet is held here (1: consumed), anything else goes
 * on (0). Properties, introspection and Peer need no credentials.
 */
static int on_message(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
	struct broker *b = userdata;
	const char *sender = sd_bus_message_get_sender(m), *path = sd_bus_message_get_path(m);
	const char *interface = sd_bus_message_get_interface(m), *member = sd_bus_message_get_member(m);
	struct creds_wait *w;
	uint8_t type;
	int r;

	if (sd_bus_message_get_type(m, &type) < 0 || type != SD_BUS_MESSAGE_METHOD_CALL)
		return 0;
	if (!sender || !path || !member || strcmp(path, DMABROKER_OBJECT_PATH) != 0 ||
	    (interface && strcmp(interface, DMABROKER_INTERFACE) != 0) || !broker_method(member))
		return 0;
	if (client_find_by_name(b, sender))
		return 0;
	w = wait_find(b, sender);
	if (w && w->n_held == CREDS_MAX_HELD)
		return sd_bus_error_setf(error, ERR_LIMIT_REACHED,
					 "%u calls sent before the bus said who the caller is, the limit",
					 CREDS_MAX_HELD);
	if (b->bus->n_creds_held >= CREDS_MAX_HELD_TOTAL)
		return sd_bus_error_setf(error, ERR_LIMIT_REACHED,
					 "%u calls of new clients wait for the bus to say who they are, the limit",
					 b->bus->n_creds_held);
	if (!w) {
		struct error e = ERROR_NULL;

		r = wait_new(b, sender, &w, &e);
		if (r < 0) {
			bus_error_from(error, r, &e);
			return r; /* sd-bus answers with error */
		}
	}
	w->held[w->n_held++] = sd_bus_message_ref(m);
	b->bus->n_creds_held++;
	return 1;
}

int creds_attach(struct broker *b, sd_bus *bus)
{
	return sd_bus_add_filter(bus, &b->bus->creds_filter, on_message, b);
}

void creds_finish(struct broker *b)
{
	/* a stopping daemon leaves the bus: the bus answers the held calls (NoReply) */
	while (b->bus->creds_waits)
		wait_free(b->bus->creds_waits, NULL);
	b->bus->creds_filter = sd_bus_slot_unref(b->bus->creds_filter);
}

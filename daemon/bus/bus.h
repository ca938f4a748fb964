/* SPDX-License-Identifier: MIT */
/*
 * The D-Bus front end: org.dmabroker.Broker1 on the bus and on every direct
 * connection (bus-interface.c and the methods by area), and who a new bus peer is (creds.c). It decodes a
 * call, calls the core, and encodes the answer; the core's errors
 * (core/error.h) become D-Bus errors here.
 */
#pragma once

#include <systemd/sd-bus.h>

#include "error.h"

#include <systemd/sd-event.h>

#include "transport.h"

struct broker;
struct client;
struct creds_wait;
struct layout;

/* What a vtable's userdata points to: the bus (client == NULL: look the
 * caller up by its unique name) or one client's direct connection. */
struct endpoint {
	struct broker *broker;
	struct client *client;
	sd_bus *bus;
	sd_bus_slot *vtable_slot, *match_slot;
	sd_event_source *io, *more;     /* a direct connection's socket; more queued to process (bus-direct.c) */
	struct endpoint *next;          /* in its bus_client's directs */
};

/* The front end's state (broker->bus). */
struct bus_front {
	struct broker *broker;
	sd_bus *bus;
	struct endpoint endpoint;       /* the bus's own: the caller is looked up by its unique name */
	struct creds_wait *creds_waits; /* new bus peers whose credentials are asked (creds.c) */
	unsigned n_creds_waits, n_creds_held;
	sd_bus_slot *creds_filter;
	sd_event_source *batch;         /* more of the bus's messages per turn of the loop */
};

/* The bus's state on a client (client->bus; bus-direct.c). */
struct bus_client {
	struct client_link link;
	struct client *client;
	sd_bus_slot *name_slot;         /* watches its bus name leave (creds.c) */
	struct endpoint *directs;       /* its direct connections */
};

/* Serves org.dmabroker.Broker1 for b on bus (bus-interface.c). */
int bus_attach(struct broker *b, sd_bus *bus);
/* Stops taking new clients (their held calls are dropped): before broker_finish(). */
void bus_stop(struct broker *b);
/* Leaves the bus: after broker_finish(). */
void bus_free(struct broker *b);

/* bus-direct.c: c's bus state, made when first needed (NULL: out of memory). */
struct bus_client *bus_client_of(struct client *c);
/* c's bus name left the bus: c lives on through its direct connections, or is freed. */
void bus_name_gone(struct client *c);
/* OpenDirect: a new direct connection for c; the client's end in *ret_fd. */
int bus_open_direct(struct client *c, int *ret_fd, struct error *error);


/*
 * The org.dmabroker.Broker1 vtable for the bus and every direct connection:
 * each method's handler runs inside a wrapper that answers its error with
 * broker_reply_error(), so that no call goes unanswered.
 */
const sd_bus_vtable *broker_vtable(void);
/*
 * Answers call with e (its D-Bus name, and its message made printable), or
 * with r's errno when e is not set. If that cannot be sent, with a fixed
 * org.freedesktop.DBus.Error.Failed. Every method's error goes through
 * here (broker_vtable()), and so do the deferred replies. Returns 1
 * (answered).
 */
int broker_reply_error(sd_bus_message *call, int r, const struct error *e);
/* The same with an sd-bus error, as it will be sent. */
int broker_reply_sd_bus_error(sd_bus_message *call, const sd_bus_error *error);
/* e as a D-Bus error: its protocol name, or the errno's (r's when e is not set). */
void bus_error_from(sd_bus_error *out, int r, const struct error *e);

/* bus-signals.c: the core's events as signals. */
extern const struct broker_events bus_events;
/* A signal for c alone: on its direct connection if it has one, else unicast on the bus. */
int client_new_signal(struct client *c, const char *member, sd_bus_message **ret);
/* Appends a layout's planes, a(tu). */
int bus_append_planes(sd_bus_message *m, const struct layout *l);

/* creds.c: a new bus peer's calls are held until the bus says who it is. */
int creds_attach(struct broker *b, sd_bus *bus);
void creds_finish(struct broker *b);

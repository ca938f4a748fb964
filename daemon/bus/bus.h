/* SPDX-License-Identifier: MIT */
/*
 * The D-Bus front end: org.dmabroker.Broker1 on the bus and on every direct
 * connection (bus-api.c), and who a new bus peer is (creds.c). It decodes a
 * call, calls the core, and encodes the answer; the core's errors
 * (core/error.h) become D-Bus errors here.
 */
#pragma once

#include <systemd/sd-bus.h>

#include "error.h"

struct broker;
struct client;
struct layout;

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

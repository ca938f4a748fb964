/* SPDX-License-Identifier: MIT */
/* The connection (connection.c): calls on the bus or the direct connection, the last error, reconnection. */
#pragma once

#include <systemd/sd-bus.h>

#include "internal.h"

sd_bus *calls(const struct dmabroker *b);
const char *destination(const struct dmabroker *b);
/* Records the failure (e, or r alone) as the last error; returns r. */
int set_error(struct dmabroker *b, const sd_bus_error *e, int r);
void clear_error(struct dmabroker *b);
/* Sends m (taken) and waits; records the error. */
int call(struct dmabroker *b, sd_bus_message *m, sd_bus_message **reply);
/* call() of m, whose building returned r: when r < 0, m is freed and r is the call's error. */
int call_built(struct dmabroker *b, sd_bus_message *m, int r, sd_bus_message **reply);
int new_call(struct dmabroker *b, const char *method, sd_bus_message **ret);
/*
 * Sends m (taken) without waiting; handler gets closure (taken: freed once
 * the reply was handled, or when the connection closes first).
 */
int call_async(struct dmabroker *b, sd_bus_message *m, sd_bus_message_handler_t handler, void *closure);
/* A call whose reply carries nothing. */
int call_simple(struct dmabroker *b, const char *method, const char *sig, ...);
/*
 * r came from a send on a connection that may be gone: if so (and not
 * already reconnecting), reconnect to a restarted daemon. 1 when it did,
 * 0 when r is no such error, -1 when the daemon did not come back.
 */
int daemon_lost(struct dmabroker *b, int r);

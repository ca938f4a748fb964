/* SPDX-License-Identifier: MIT */
/* Streams (stream.c), as the connection sees them. */
#pragma once

#include <systemd/sd-bus.h>

#include "internal.h"

/* The signals of streams, on the direct connection. */
int stream_on_signal(sd_bus_message *m, void *userdata, sd_bus_error *ret_error);
void streams_free_all(struct dmabroker *b);
/* Moves the streams' peer channels to b->event (after dmabroker_attach_event). */
void streams_attach_event(struct dmabroker *b);
/* The daemon restarted: its streams are gone (StreamEnded for consumers, an error for producers). */
void streams_daemon_lost(struct dmabroker *b);

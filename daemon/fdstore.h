/* SPDX-License-Identifier: MIT */
/* Keeping buffers across a daemon restart in the service manager's fd store (fdstore.c). */
#pragma once

#include <stdint.h>

#include <systemd/sd-bus.h>

struct broker;
struct buffer;
struct client;

/* Puts buf's fd in the fd store (no-op unless fd-store is on). */
void fdstore_add(struct buffer *buf);
/* Takes it out again (buf is freed). */
void fdstore_remove(struct buffer *buf);
/* buf's memory or layout changed: stored again under its new name, if it was stored. */
void fdstore_update(struct buffer *buf);
/* At start: rebuilds the stored buffers, held until restore-grace ends. How many, or <0. */
int fdstore_restore(struct broker *b);
/* Reclaim: 1 when c showed its own fd of buffer id and now holds it, 0 when not, <0 with error. */
int fdstore_reclaim(struct client *c, uint64_t id, int fd, sd_bus_error *error);

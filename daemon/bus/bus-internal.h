/* SPDX-License-Identifier: MIT */
/*
 * What the files of the D-Bus front end share: the caller of a call, the
 * replies, the completions of calls the core answers later, and the method
 * handlers the vtable (bus-interface.c) puts together. Each handler decodes
 * its call, calls the core, and encodes the answer; its error goes back
 * through broker_reply_error().
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <systemd/sd-bus.h>

#include "bus.h"
#include "error.h"
#include "transport.h"

struct buffer;
struct client;
struct endpoint;
struct hold;
struct layout;

/* The client calling m on endpoint e (the bus: looked up by sender; a direct connection: its own). */
int bus_caller(struct endpoint *e, sd_bus_message *m, struct client **ret, struct error *error);
/* The caller and the buffer `id`, which it must hold. */
int bus_held_buffer(struct endpoint *e, sd_bus_message *m, uint64_t id, struct client **ret_client,
		    struct buffer **ret_buffer, struct hold **ret_hold, struct error *error);

/* Sends a reply built by hand (the handler then returns 1: replied). */
int bus_send_reply(sd_bus_message *reply, int r);
/* Closes the array a List* reply is built in, and sends it. */
int bus_send_list_reply(sd_bus_message *reply, int r);
/* Reads an "ah" holding zero or one fd: the fd (borrowed from m) or -1. */
int bus_read_optional_fd(sd_bus_message *m, int *ret, struct error *error);

/* Completions over D-Bus: the call message is kept (a reference) while the core waits. */
void bus_call_keep(struct completion *c);
void bus_call_drop(struct completion *c);
void bus_call_fail(const struct completion *c, int r, const struct error *e);
/* A call answered by a function of its own when the work ends (Allocate). */
extern const struct completion_ops bus_call_ops;
/* The completion of call m of client c, answered through ops (the core keeps it if it must). */
#define CALL_COMPLETION(ops_, m, c) (&(struct completion){ .ops = (ops_), .call = (m), .client = (c) })

/* The methods, by area. */
#define BUS_METHOD(name) int name(sd_bus_message *m, void *userdata, struct error *error)
/* bus-buffers.c */
BUS_METHOD(method_allocate);
BUS_METHOD(method_import);
BUS_METHOD(method_release);
BUS_METHOD(method_create_token);
BUS_METHOD(method_revoke_token);
BUS_METHOD(method_open_token);
BUS_METHOD(method_attach);
BUS_METHOD(method_detach);
BUS_METHOD(method_reclaim);
/* bus-access.c */
BUS_METHOD(method_begin_access);
BUS_METHOD(method_begin_access_multi);
BUS_METHOD(method_end_access);
BUS_METHOD(method_open_access_channel);
BUS_METHOD(method_open_direct);
/* bus-admin.c */
BUS_METHOD(method_list_buffers);
BUS_METHOD(method_list_clients);
BUS_METHOD(method_get_usage);
BUS_METHOD(method_list_backends);
/* bus-streams.c */
BUS_METHOD(method_create_stream);
BUS_METHOD(method_join_stream);
BUS_METHOD(method_stream_buffers);
BUS_METHOD(method_queue_frame);
BUS_METHOD(method_release_frame);
BUS_METHOD(method_leave_stream);
BUS_METHOD(method_list_streams);

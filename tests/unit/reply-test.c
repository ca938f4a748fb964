/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of broker_reply_error() (daemon/bus/bus-interface.c), the one place
 * the daemon's error replies are sent from: over a socketpair, a call whose
 * core error (core/error.h) quotes a string cut inside a character (which
 * sd-bus refuses to send: the call went unanswered) is answered with its
 * protocol name and a printable message; one that cannot be sent (a
 * malformed error name, which sd-bus sends and the receiver drops) with
 * org.freedesktop.DBus.Error.Failed; without an error, with the errno's.
 */
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <systemd/sd-bus.h>

#include "bus.h"
#include "errors-sdbus.h"
#include "tap.h"

TAP_DEFINE;

static sd_bus *server, *client;
static const struct error *next_core;  /* what the server's method answers with: a core error, */
static const sd_bus_error *next_error; /* or a D-Bus one, */
static int next_errno;
static bool raw;                       /* leave the error to sd-bus, as the daemon did */

static int method(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
	if (raw)
		return sd_bus_error_set(error, error_name(next_core), next_core->message);
	if (next_core)
		return broker_reply_error(m, next_errno, next_core);
	if (next_error)
		return broker_reply_sd_bus_error(m, next_error);
	return broker_reply_error(m, next_errno, NULL);
}

static const sd_bus_vtable vtable[] = {
	SD_BUS_VTABLE_START(0),
	SD_BUS_METHOD("M", "", "", method, 0),
	SD_BUS_VTABLE_END,
};

struct answer {
	bool done;
	char name[128], message[256];
};

static int on_answer(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
	struct answer *a = userdata;
	const sd_bus_error *e = sd_bus_message_get_error(m);

	a->done = true;
	snprintf(a->name, sizeof(a->name), "%s", e ? e->name : "");
	snprintf(a->message, sizeof(a->message), "%s", e && e->message ? e->message : "");
	return 0;
}

/* Calls M, then a Ping: the server answers in order, so the ping's answer
 * first means M was not answered. */
static bool call(struct answer *a)
{
	struct answer ping = { 0 };
	sd_bus_slot *slot = NULL, *pslot = NULL;
	int r;

	*a = (struct answer){ 0 };
	r = sd_bus_call_method_async(client, &slot, NULL, "/", "org.example.T", "M", on_answer, a, "");
	if (r >= 0)
		r = sd_bus_call_method_async(client, &pslot, NULL, "/", "org.freedesktop.DBus.Peer", "Ping", on_answer,
					     &ping, "");
	for (int i = 0; r >= 0 && i < 100000 && !a->done && !ping.done; i++) {
		int s = sd_bus_process(server, NULL), c = sd_bus_process(client, NULL);
		if (s < 0 || c < 0)
			r = s < 0 ? s : c;
		else if (s == 0 && c == 0) {
			struct pollfd p[2] = { { sd_bus_get_fd(server), POLLIN, 0 }, { sd_bus_get_fd(client), POLLIN, 0 } };
			poll(p, 2, 100);
		}
	}
	sd_bus_slot_unref(slot);
	sd_bus_slot_unref(pslot);
	return r >= 0 && a->done;
}

static bool test_cut_message(void)
{
	struct error e = ERROR_NULL;
	struct answer a;

	next_errno = error_set(&e, DMABROKER_E_TOKEN_UNKNOWN, "no token 'ab\xe2\x82' \x1b[2K");
	next_core = &e;
	/* the cause: sd-bus will not send it, and the call is left unanswered */
	raw = true;
	CHECK(!call(&a));
	raw = false;
	CHECK(call(&a));
	CHECK(strcmp(a.name, ERR_TOKEN_UNKNOWN) == 0);
	CHECKF(strcmp(a.message, "no token 'ab\\xe2\\x82' \\x1b[2K") == 0, "message: %s", a.message);
	next_core = NULL;
	return true;
}

static bool test_unsendable(void)
{
	const sd_bus_error e = SD_BUS_ERROR_MAKE_CONST("not a valid error name", "whatever");
	struct answer a;

	next_error = &e;
	CHECK(call(&a));
	next_error = NULL;
	CHECKF(strcmp(a.name, SD_BUS_ERROR_FAILED) == 0, "name: %s", a.name);
	CHECKF(strcmp(a.message, "M failed; the daemon could not send why") == 0, "message: %s", a.message);
	return true;
}

static bool test_errno(void)
{
	struct answer a;

	next_errno = -EKEYEXPIRED;
	CHECK(call(&a));
	CHECKF(strcmp(a.name, "System.Error.EKEYEXPIRED") == 0, "name: %s", a.name);
	/* a core error without a name: the errno's name, with its message */
	struct error e = ERROR_NULL;
	next_errno = error_set_errnof(&e, -ENOSPC, "no room for %d more", 3);
	next_core = &e;
	CHECK(call(&a));
	next_core = NULL;
	CHECKF(strcmp(a.name, "System.Error.ENOSPC") == 0, "name: %s", a.name);
	CHECKF(strcmp(a.message, "no room for 3 more") == 0, "message: %s", a.message);
	next_errno = 0; /* no error at all: still an answer */
	CHECK(call(&a));
	CHECK(*a.name);
	return true;
}

int main(void)
{
	sd_id128_t id;
	int fds[2], r;

	sd_bus_error_add_map(dmabroker_error_map);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, fds) < 0 || sd_bus_new(&server) < 0 ||
	    sd_bus_new(&client) < 0 || sd_id128_randomize(&id) < 0 || sd_bus_set_fd(server, fds[0], fds[0]) < 0 ||
	    sd_bus_set_server(server, 1, id) < 0 || sd_bus_set_anonymous(server, 1) < 0 ||
	    sd_bus_add_object_vtable(server, NULL, "/", "org.example.T", vtable, NULL) < 0 ||
	    sd_bus_start(server) < 0 || sd_bus_set_fd(client, fds[1], fds[1]) < 0 ||
	    sd_bus_set_anonymous(client, 1) < 0 || sd_bus_start(client) < 0)
		return 1;
	tap_plan(3);
	tap_step("an error quoting a cut character is answered, named, printable", test_cut_message);
	tap_step("an error that cannot be sent is answered with Failed", test_unsendable);
	tap_step("without an error: answered with the errno's error", test_errno);
	r = tap_done();
	sd_bus_close_unref(client);
	sd_bus_close_unref(server);
	return r;
}

/* SPDX-License-Identifier: MIT */
/*
 * The bus's state on each client: the match that sees its bus name leave,
 * and its direct connections (OpenDirect): private D-Bus connections on a
 * socketpair that act as the client, serve the same vtable, and skip
 * dbus-daemon on the per-frame path. A client lives while its bus name or
 * any of its direct connections does.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "broker.h"
#include "bus.h"
#include "cleanup.h"
#include "log.h"
#include "quota.h"

static void endpoint_free(struct endpoint *e)
{
	fd_budget_uncharge(e->broker, 1); /* its socket, charged in bus_open_direct() */
	sd_bus_slot_unref(e->vtable_slot);
	sd_bus_slot_unref(e->match_slot);
	sd_event_source_disable_unref(e->io);
	sd_event_source_disable_unref(e->more);
	/* close, not flush_close: flushing waits for a peer that may never read */
	sd_bus_close_unref(e->bus);
	free(e);
}

/*
 * A direct connection is driven by the daemon's own io source instead of
 * sd_bus_attach_event(): on each wakeup every message that is there is
 * processed (up to a bound, then the rest on the next loop iteration), and
 * nothing else. sd-bus's own integration processes one message per
 * dispatch and re-arms a timer in between, which cost four extra syscalls
 * per message on the per-frame path (docs/BENCHMARKS.md).
 */
enum { DIRECT_BATCH = 64 };

/*
 * What the daemon may owe a direct connection's peer: what the socket holds
 * unread (its send buffer is set to DIRECT_MAX_UNREAD: the kernel keeps the
 * rest back) and, once the socket is full, DIRECT_MAX_QUEUED more messages
 * in sd-bus's write queue, whose fds the daemon holds. A peer that lets more
 * pile up does not read its replies (a pipeline of calls it never reads
 * made the daemon queue replies and their fds without end): it is
 * disconnected, and its client goes as if it had left.
 */
enum { DIRECT_MAX_UNREAD = 64 * 1024, DIRECT_MAX_QUEUED = 64 };

/* If e's peer is past the bound, drops its client (e and all); true then. */
static bool direct_drop_if_not_reading(struct endpoint *e)
{
	struct client *c = e->client;
	uint64_t queued = 0;

	if (sd_bus_get_n_queued_write(e->bus, &queued) < 0 || queued <= DIRECT_MAX_QUEUED)
		return false;
	log_warning("dropping client %llu (pid %d, %s): it does not read its direct connection "
		    "(%llu messages queued past a full socket, the limit is %u)", (unsigned long long)c->id,
		    (int)c->pid, c->comm, (unsigned long long)queued, (unsigned)DIRECT_MAX_QUEUED);
	client_free(c);
	return true;
}

static int on_direct_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct endpoint *e = userdata;
	sd_bus *bus = sd_bus_ref(e->bus);
	unsigned n = 0;

	/*
	 * Disconnected frees e from inside sd_bus_process (and so does a
	 * handler that drops the client): e lives while bus is open.
	 */
	while (n++ < DIRECT_BATCH && sd_bus_process(bus, NULL) > 0)
		if (sd_bus_is_open(bus) <= 0 || direct_drop_if_not_reading(e))
			goto out;
	if (n > DIRECT_BATCH && sd_bus_is_open(bus) > 0)
		sd_event_source_set_enabled(e->more, SD_EVENT_ONESHOT);
out:
	sd_bus_unref(bus);
	return 0;
}

static int on_direct_more(sd_event_source *s, void *userdata)
{
	return on_direct_io(s, -1, 0, userdata);
}

/* Before the loop sleeps: wait for what sd-bus needs (POLLOUT with a write queue). */
static int on_direct_prepare(sd_event_source *s, void *userdata)
{
	struct endpoint *e = userdata;
	uint64_t t;
	int events;

	/* signals (frames, moves) are queued outside on_direct_io: bound them here */
	if (direct_drop_if_not_reading(e))
		return 0;
	events = sd_bus_get_events(e->bus);
	if (events < 0) /* closed: the Disconnected message is still to be processed */
		events = EPOLLIN;
	sd_event_source_set_io_events(e->io, (uint32_t)events);
	if (sd_bus_get_timeout(e->bus, &t) > 0 && t == 0)
		sd_event_source_set_enabled(e->more, SD_EVENT_ONESHOT); /* read but not yet dispatched */
	return 0;
}

static int direct_attach(struct endpoint *e)
{
	struct broker *b = e->broker;
	int r = sd_event_add_io(b->event, &e->io, sd_bus_get_fd(e->bus), EPOLLIN, on_direct_io, e);
	if (r >= 0)
		r = sd_event_source_set_prepare(e->io, on_direct_prepare);
	if (r >= 0)
		r = sd_event_add_defer(b->event, &e->more, on_direct_more, e);
	if (r >= 0)
		r = sd_event_source_set_enabled(e->more, SD_EVENT_OFF);
	return r;
}

static void bus_client_free(struct client_link *l)
{
	struct bus_client *bc = (struct bus_client *)l;

	while (bc->directs) {
		struct endpoint *e = bc->directs;
		bc->directs = e->next;
		endpoint_free(e);
	}
	sd_bus_slot_unref(bc->name_slot);
	bc->client->bus = NULL;
	free(bc);
}

struct bus_client *bus_client_of(struct client *c)
{
	struct bus_client *bc = c->bus;

	if (bc)
		return bc;
	bc = calloc(1, sizeof(*bc));
	if (!bc)
		return NULL;
	bc->link.free = bus_client_free;
	bc->client = c;
	client_link_add(c, &bc->link);
	c->bus = bc;
	return bc;
}

void bus_name_gone(struct client *c)
{
	struct bus_client *bc = c->bus;

	free(c->bus_name);
	c->bus_name = NULL;
	/* sd-bus holds a reference on the match slot while it calls its callback */
	if (bc)
		bc->name_slot = sd_bus_slot_unref(bc->name_slot);
	if (!bc || !bc->directs)
		client_free(c); /* else it lives on through its direct connections */
}

static int on_direct_disconnected(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
	struct endpoint *e = userdata;
	struct client *c = e->client;

	for (struct endpoint **p = &c->bus->directs; *p; p = &(*p)->next)
		if (*p == e) {
			*p = e->next;
			break;
		}
	c->n_directs--;
	endpoint_free(e); /* safe here: sd-bus holds its own reference while it dispatches */
	if (!c->bus_name && !c->bus->directs)
		client_free(c);
	return 0;
}

int bus_open_direct(struct client *c, int *ret_fd, struct error *error)
{
	struct bus_client *bc = bus_client_of(c);
	struct broker *b = c->broker;
	_cleanup_close_ int mine = -1, theirs = -1;
	struct endpoint *e;
	sd_id128_t id;
	int fds[2], r;

	if (!bc)
		return -ENOMEM;
	if (c->n_directs >= b->config.max_direct_per_client)
		return error_setf(error, DMABROKER_E_LIMIT_REACHED,
					 "client has %u direct connections, the limit (max-direct-connections-per-client)",
					 c->n_directs);
	r = fd_budget_charge(b, 1, error); /* our end of the socket; endpoint_free() gives it back */
	if (r < 0)
		return r;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, fds) < 0) {
		r = -errno;
		fd_budget_uncharge(b, 1);
		return r;
	}
	mine = fds[0];
	theirs = fds[1];
	e = calloc(1, sizeof(*e));
	if (!e) {
		fd_budget_uncharge(b, 1);
		return -ENOMEM;
	}
	e->broker = b;
	e->client = c;
	r = sd_bus_new(&e->bus);
	if (r >= 0)
		r = sd_bus_set_fd(e->bus, mine, mine);
	if (r >= 0) {
		mine = -1; /* the bus owns it now */
		sd_id128_randomize(&id);
		r = sd_bus_set_server(e->bus, 1, id);
	}
	/* The peer was authenticated by the bus already: the socket came to it
	 * in a reply to its own call. */
	if (r >= 0)
		r = sd_bus_set_anonymous(e->bus, 1);
	if (r >= 0)
		r = sd_bus_negotiate_fds(e->bus, 1);
	if (r >= 0)
		r = sd_bus_add_object_vtable(e->bus, &e->vtable_slot, DMABROKER_OBJECT_PATH, DMABROKER_INTERFACE,
					     broker_vtable(), e);
	if (r >= 0)
		r = sd_bus_match_signal(e->bus, &e->match_slot, NULL, "/org/freedesktop/DBus/Local",
					"org.freedesktop.DBus.Local", "Disconnected", on_direct_disconnected, e);
	if (r >= 0)
		r = sd_bus_start(e->bus);
	/*
	 * After sd_bus_start(), which raises it to megabytes: at most
	 * DIRECT_MAX_UNREAD bytes wait unread in the socket (the kernel
	 * doubles what is set).
	 */
	if (r >= 0 && setsockopt(sd_bus_get_fd(e->bus), SOL_SOCKET, SO_SNDBUF, &(int){ DIRECT_MAX_UNREAD / 2 },
				 sizeof(int)) < 0)
		r = -errno;
	if (r >= 0)
		r = direct_attach(e);
	if (r < 0) {
		endpoint_free(e);
		return error_set_errnof(error, r, "cannot set up the direct connection: %s", strerror(-r));
	}
	e->next = bc->directs;
	bc->directs = e;
	c->n_directs++;
	*ret_fd = TAKE_FD(theirs);
	return 0;
}

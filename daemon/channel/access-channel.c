/* SPDX-License-Identifier: MIT */
/*
 * The access channel (protocol/access-wire.h): BeginAccess, EndAccess,
 * Allocate and Release in binary, one message each way, on a socket of the
 * client's own. The grants are access.c's and the buffers buffer.c's, the
 * same as the D-Bus methods'; this is only the other door into them, for
 * the per-frame path.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "access-wire.h"
#include "access.h"
#include "broker.h"
#include "channel.h"
#include "cleanup.h"
#include "error.h"
#include "fdmsg.h"
#include "log.h"
#include "printable.h"
#include "quota.h"
#include "stream.h"

enum { CHANNEL_BATCH = 64 };

struct access_channel {
	struct client_link link;        /* freed with its client */
	struct client *client;
	int fd;
	sd_event_source *io;
	bool shut;                      /* an answer could not be sent: closed at the next on_io */
};

static const struct completion_ops channel_ops;

static void channel_link_free(struct client_link *l)
{
	access_channel_close(((struct access_channel *)l)->client);
}

void access_channel_close(struct client *c)
{
	struct access_channel *ch = c->access_channel;

	if (!ch)
		return;
	client_link_remove(c, &ch->link);
	sd_event_source_disable_unref(ch->io);
	safe_close(ch->fd);
	fd_budget_uncharge(c->broker, 1); /* charged in access_channel_open() */
	free(ch);
	c->access_channel = NULL;
	access_drop_requests(c, &channel_ops);
}

/*
 * Sends an answer. One that cannot be sent (a client that does not read
 * fills the socket) ends the channel: shut down, the client reads what was
 * sent and then the end instead of waiting for an answer that never comes,
 * and the loop sees the end on our side and closes it (on_io), which is
 * safe from wherever this is called.
 */
static int channel_send(struct client *c, const void *w, size_t len, int fd)
{
	int r;

	if (!c->access_channel)
		return -ENOTCONN; /* closed while the request waited: nobody to tell */
	if (c->access_channel->shut)
		return -EPIPE;
	r = fdmsg_send(c->access_channel->fd, w, len, fd);
	if (r < 0) {
		c->access_channel->shut = true;
		log_notice("client %llu (%s, pid %d): access channel: cannot answer (%s); closing the channel",
			   (unsigned long long)c->id, c->comm, (int)c->pid,
			   r == -EAGAIN ? "it does not read its answers" : strerror(-r));
		shutdown(c->access_channel->fd, SHUT_RDWR);
	}
	return r;
}

/* GRANTED: a BEGIN names one buffer. */
static int channel_granted(const struct completion *to, struct grant *const *grants, unsigned n, int fence)
{
	struct access_wire_reply w = { .op = ACCESS_WIRE_GRANTED, .cookie = (uint32_t)to->cookie,
				       .grant = grants[0]->id };

	return channel_send(to->client, &w, ACCESS_WIRE_GRANTED_SIZE, fence);
}

static void channel_error(struct client *c, uint32_t cookie, const struct error *e, int r)
{
	struct access_wire_reply w = { .op = ACCESS_WIRE_ERROR, .cookie = cookie };

	if (error_is_set(e)) {
		w.error = e->errnum;
		w.code = e->code;
		printable(e->message, w.message, sizeof(w.message)); /* cut between characters */
	} else {
		w.error = r < 0 ? -r : EIO;
		snprintf(w.message, sizeof(w.message), "%s", strerror(w.error));
	}
	channel_send(c, &w, sizeof(w), -1);
}

static void channel_fail(const struct completion *to, int r, const struct error *e)
{
	channel_error(to->client, (uint32_t)to->cookie, e, r);
}

static const struct completion_ops channel_ops = { .fail = channel_fail, .granted = channel_granted };

static int on_begin(struct client *c, const struct access_wire_request *w, struct error *error)
{
	struct buffer *buf;
	int r = client_held_buffer(c, w->id, &buf, NULL, error);

	if (r >= 0)
		r = access_begin(c, &(struct completion){ .ops = &channel_ops, .cookie = w->cookie, .client = c }, 1,
				 &buf, &w->mode, w->flags, error);
	return r;
}

/* The end of an ALLOCATE: the BUFFER answer with its fd, or an ERROR. */
static void allocate_done(struct client *c, struct buffer *buf, int r, const struct error *error,
			  const struct completion *to)
{
	struct error e = ERROR_NULL;
	struct access_wire_buffer a = { .op = ACCESS_WIRE_BUFFER, .cookie = (uint32_t)to->cookie };

	if (r >= 0 && buf->layout.n_planes > ACCESS_WIRE_MAX_PLANES) {
		buffer_release(buffer_held_by(buf, c));
		r = error_set(&e, DMABROKER_E_INVALID_ARGUMENT, "a layout of more planes than the access channel carries");
		error = &e;
	}
	if (r < 0) {
		if (c->access_channel)
			channel_error(c, (uint32_t)to->cookie, error, r);
		return;
	}
	broker_allocated(c, buf);
	a.id = buf->id;
	a.size = buf->size;
	a.modifier = buf->modifier;
	a.n_planes = buf->layout.n_planes;
	a.dmabuf = buf->dmabuf;
	for (unsigned i = 0; i < buf->layout.n_planes; i++) {
		a.planes[i].offset = buf->layout.plane[i].offset;
		a.planes[i].stride = buf->layout.plane[i].stride;
	}
	snprintf(a.backend, sizeof(a.backend), "%s", buf->backend->name);
	r = channel_send(c, &a, sizeof(a), buf->fd);
	if (r < 0) { /* the client never learns of it: do not keep it */
		log_debug("client %llu: access channel: cannot hand over buffer %llu: %s", (unsigned long long)c->id,
			  (unsigned long long)buf->id, strerror(-r));
		buffer_release(buffer_held_by(buf, c));
	}
}

/* ALLOCATE: answered when the allocation ends (on a worker), with the buffer's fd or an ERROR. */
static void on_allocate(struct client *c, struct access_wire_alloc *w)
{
	struct error e = ERROR_NULL;
	struct alloc_args args = {
		.width = w->width, .height = w->height, .fourcc = w->fourcc, .usage = w->usage, .mods = w->modifiers,
		.n_mods = w->n_modifiers, .fresh = w->flags & 1,
	};
	int r = 0;

	w->backend[sizeof(w->backend) - 1] = w->device[sizeof(w->device) - 1] = '\0';
	args.backend = *w->backend ? w->backend : NULL;
	args.device = *w->device ? w->device : NULL;
	if ((w->flags & ~1u) || w->n_modifiers > ACCESS_WIRE_MAX_MODIFIERS)
		r = error_setf(&e, DMABROKER_E_INVALID_ARGUMENT, "flags 0x%x (known: 1 = fresh), %u modifiers (at most %d)",
				      w->flags, w->n_modifiers, ACCESS_WIRE_MAX_MODIFIERS);
	if (r >= 0)
		r = broker_allocate(c, &args, allocate_done,
				    &(struct completion){ .ops = &channel_ops, .cookie = w->cookie, .client = c }, &e);
	if (r < 0)
		channel_error(c, w->cookie, &e, r);
	e = ERROR_NULL;
}

/* The size each kind of message must have. */
static size_t wire_size(uint32_t op)
{
	switch (op) {
	case ACCESS_WIRE_BEGIN:
	case ACCESS_WIRE_END:
	case ACCESS_WIRE_RELEASE:
		return sizeof(struct access_wire_request);
	case ACCESS_WIRE_ALLOCATE:
		return sizeof(struct access_wire_alloc);
	default:
		return 0;
	}
}

union wire_in {
	uint32_t op;
	struct access_wire_request req;
	struct access_wire_alloc alloc;
};

/* One message; false when the channel must close. */
static bool on_message(struct client *c, union wire_in *w, ssize_t n, int fence)
{
	struct error e = ERROR_NULL;
	const char *what = NULL;
	int r = 0;

	if (n < 4 || (size_t)n != wire_size(w->op) || (fence >= 0 && w->op != ACCESS_WIRE_END)) {
		log_notice("client %llu (%s, pid %d): access channel: a message that is none (%zd bytes, op %u); "
			   "closing the channel", (unsigned long long)c->id, c->comm, (int)c->pid, n,
			   n >= 4 ? w->op : 0);
		return false;
	}
	switch (w->op) {
	case ACCESS_WIRE_BEGIN:
		r = on_begin(c, &w->req, &e);
		if (r < 0)
			channel_error(c, w->req.cookie, &e, r);
		r = 0;
		break;
	case ACCESS_WIRE_ALLOCATE:
		on_allocate(c, &w->alloc);
		break;
	case ACCESS_WIRE_END:
		r = access_end(c, w->req.id, fence, &e);
		what = "EndAccess of grant";
		break;
	case ACCESS_WIRE_RELEASE:
		r = client_release_buffer(c, w->req.id, &e);
		what = "Release of buffer";
		break;
	}
	if (r < 0) /* one-way: nobody hears the refusal, so say it here */
		log_notice("client %llu: one-way %s %llu on the access channel refused: %s", (unsigned long long)c->id,
			   what, (unsigned long long)w->req.id, error_is_set(&e) ? e.message : strerror(-r));
	e = ERROR_NULL;
	return true;
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct client *c = userdata;

	for (unsigned k = 0; k < CHANNEL_BATCH && c->access_channel; k++) {
		union wire_in w;
		int fence;
		ssize_t n;
		bool ok;
		if (c->access_channel->shut) { /* what it sent after that is not read: it would not hear back */
			access_channel_close(c);
			return 0;
		}
		n = fdmsg_recv(fd, &w, sizeof(w), &fence, MSG_DONTWAIT);
		if (n == -EAGAIN)
			return 0;
		if (n == 0 || (n < 0 && n != -EMSGSIZE && n != -EBADMSG)) {
			log_debug("client %llu: access channel closed", (unsigned long long)c->id);
			access_channel_close(c);
			return 0;
		}
		ok = n > 0 && on_message(c, &w, n, fence);
		safe_close(fence);
		if (!ok) {
			access_channel_close(c);
			return 0;
		}
	}
	return 0; /* more waits: level-triggered, the loop comes back */
}

int access_channel_open(struct client *c, int *ret_fd, struct error *error)
{
	_cleanup_close_ int theirs = -1;
	struct access_channel *ch;
	int fds[2], r;

	if (c->access_channel)
		return error_set(error, DMABROKER_E_LIMIT_REACHED, "this client has its access channel already");
	/* our end, charged before it is taken; access_channel_close() gives it back */
	r = fd_budget_charge(c->broker, 1, error);
	if (r < 0)
		return r;
	/* theirs blocks (the library waits in recvmsg); ours never does */
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) < 0) {
		r = -errno;
		fd_budget_uncharge(c->broker, 1);
		return r;
	}
	theirs = fds[1];
	if (fcntl(fds[0], F_SETFL, O_NONBLOCK) < 0) {
		r = -errno;
		close(fds[0]);
		fd_budget_uncharge(c->broker, 1);
		return r;
	}
	ch = calloc(1, sizeof(*ch));
	if (!ch) {
		close(fds[0]);
		fd_budget_uncharge(c->broker, 1);
		return -ENOMEM;
	}
	*ch = (struct access_channel){ .client = c, .fd = fds[0] };
	r = sd_event_add_io(c->broker->event, &ch->io, ch->fd, EPOLLIN, on_io, c);
	if (r < 0) {
		close(ch->fd);
		free(ch);
		fd_budget_uncharge(c->broker, 1);
		return error_set_errnof(error, r, "cannot watch the access channel: %s", strerror(-r));
	}
	c->access_channel = ch;
	ch->link.free = channel_link_free;
	client_link_add(c, &ch->link);
	*ret_fd = TAKE_FD(theirs);
	return 0;
}

/* SPDX-License-Identifier: MIT */
/* Buffers: allocate, import, open by token, release, tokens, attachments, moves, accessors. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <systemd/sd-bus.h>

#include "cleanup.h"
#include "access-wire.h"
#include "errors.h"
#include "fdmsg.h"
#include "format.h"

#include "internal.h"
#include "access.h"
#include "buffers.h"
#include "channel.h"
#include "connection.h"
#include "transport.h"

/* The library seeks in buffers (lseek) and compares their sizes as off_t: 64 bits on every ABI. */
_Static_assert(sizeof(off_t) == 8, "libdmabroker needs a 64-bit off_t (-D_FILE_OFFSET_BITS=64, which meson sets)");

bool size_fits(uint64_t size)
{
	return size <= SIZE_MAX && size <= INT64_MAX;
}

int size_refused(uint64_t size, bool least, sd_bus_error *e)
{
	return sd_bus_error_setf(e, ERR_TOO_LARGE, "a buffer of %s%" PRIu64 " bytes: more than this %u-bit client can map "
				 "(%zu bytes at most)", least ? "at least " : "", size, (unsigned)(sizeof(void *) * 8),
				 (size_t)SIZE_MAX);
}

int refuse_size(struct dmabroker *b, uint64_t size, bool least)
{
	sd_bus_error e = SD_BUS_ERROR_NULL;
	int r = size_refused(size, least, &e);

	set_error(b, &e, r);
	sd_bus_error_free(&e);
	return r;
}

int buffer_refused(struct dmabroker_buffer *buf)
{
	struct dmabroker *b = buf->b;
	uint64_t size = buf->size;

	if (size_fits(size))
		return 0;
	dmabroker_buffer_release(buf);
	return refuse_size(b, size, false);
}

/*
 * A buffer whose least size (its rows unaligned) does not fit is refused
 * before the daemon makes it; the size the daemon answers is checked as
 * well. A 64-bit client is never refused here.
 */
static int check_alloc_size(struct dmabroker *b, const struct dmabroker_alloc_desc *d)
{
	const struct layout_constraints c = {
		.stride_align = 1, .offset_align = 1, .max_size = UINT64_MAX, .max_dimension = UINT32_MAX,
	};
	const struct format_info *f = format_lookup(d->fourcc);
	struct layout l;

	if (!f || layout_compute(f, d->width, d->height, &c, &l) < 0 || size_fits(l.size))
		return 0; /* fits, or for the daemon to refuse */
	return refuse_size(b, l.size, true);
}

/* A descriptor the library can send, of a buffer this client can map: 0, or the error recorded. */
static int check_alloc(struct dmabroker *b, const struct dmabroker_alloc_desc *d)
{
	int r = check_alloc_desc(d);

	if (r < 0)
		return set_error(b, NULL, r);
	return check_alloc_size(b, d);
}

/* An allocated buffer (id, fd, size, modifier and planes set) takes the rest from its descriptor, and is ours. */
void allocated(struct dmabroker_buffer *buf, const struct dmabroker_alloc_desc *d, const char *backend,
		      bool dmabuf, struct dmabroker_buffer **ret)
{
	snprintf(buf->backend, sizeof(buf->backend), "%s", backend);
	buf->dmabuf = dmabuf;
	buf->width = d->width;
	buf->height = d->height;
	buf->fourcc = d->fourcc;
	buf->usage = d->usage;
	buffer_link(buf);
	*ret = buf;
}

void buffer_free(struct dmabroker_buffer *buf)
{
	if (buf->prevp) {
		*buf->prevp = buf->next;
		if (buf->next)
			buf->next->prevp = buf->prevp;
	}
	safe_close(buf->fd);
	free(buf);
}

struct dmabroker_buffer *buffer_new(struct dmabroker *b)
{
	struct dmabroker_buffer *buf = calloc(1, sizeof(*buf));
	if (!buf)
		return NULL;
	buf->b = b;
	buf->fd = -1;
	return buf;
}

void buffer_link(struct dmabroker_buffer *buf)
{
	struct dmabroker *b = buf->b;
	buf->next = b->buffers;
	if (b->buffers)
		b->buffers->prevp = &buf->next;
	buf->prevp = &b->buffers;
	b->buffers = buf;
}

int read_planes(sd_bus_message *m, struct dmabroker_buffer *buf)
{
	uint64_t offset;
	uint32_t stride;
	int r = sd_bus_message_enter_container(m, 'a', "(tu)");

	if (r < 0)
		return r;
	while ((r = sd_bus_message_read(m, "(tu)", &offset, &stride)) > 0) {
		if (buf->n_planes == MAX_PLANES)
			return -EBADMSG;
		buf->planes[buf->n_planes].offset = offset;
		buf->planes[buf->n_planes++].stride = stride;
	}
	if (r < 0)
		return r;
	return sd_bus_message_exit_container(m);
}

int take_fd(int fd, int *ret)
{
	int own = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (own < 0)
		return -errno;
	*ret = own;
	return 0;
}

EXPORT int dmabroker_allocate(struct dmabroker *b, const struct dmabroker_alloc_desc *desc,
			      struct dmabroker_buffer **ret)
{
	int r = check_alloc(b, desc);

	if (r < 0)
		return r;
	r = b->transport->allocate(b, desc, ret);
	if (r == TRANSPORT_MOVED)
		r = b->transport->allocate(b, desc, ret);
	return r;
}

struct async_alloc {
	struct dmabroker *b;
	struct dmabroker_alloc_desc desc;
	dmabroker_buffer_callback cb;
	void *userdata;
};

static int on_allocate_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
	struct async_alloc *a = userdata;
	struct dmabroker_buffer *buf = NULL;
	const sd_bus_error *e = sd_bus_message_get_error(m);
	int r;

	if (e)
		r = set_error(a->b, e, -sd_bus_message_get_errno(m));
	else
		r = parse_allocate_reply(a->b, &a->desc, m, &buf);
	a->cb(a->b, r < 0 ? r : 0, buf, a->userdata);
	return 0;
}

EXPORT int dmabroker_allocate_async(struct dmabroker *b, const struct dmabroker_alloc_desc *desc,
				    dmabroker_buffer_callback cb, void *userdata)
{
	sd_bus_message *m = NULL;
	struct async_alloc *a;
	int r;

	if (!cb)
		return -EINVAL;
	r = check_alloc(b, desc);
	if (r < 0)
		return r;
	r = new_allocate_call(b, desc, &m);
	if (r < 0)
		return set_error(b, NULL, r);
	a = calloc(1, sizeof(*a));
	if (!a) {
		sd_bus_message_unref(m);
		return -ENOMEM;
	}
	*a = (struct async_alloc){ b, *desc, cb, userdata };
	/* The hints are the caller's strings: they are in m already; do not keep them. */
	a->desc.modifiers = NULL;
	a->desc.backend = a->desc.device = NULL;
	return call_async(b, m, on_allocate_reply, a);
}

EXPORT int dmabroker_import(struct dmabroker *b, int fd, uint32_t width, uint32_t height, uint32_t fourcc,
			    uint64_t modifier, const struct dmabroker_plane *planes, unsigned n_planes,
			    uint32_t usage, struct dmabroker_buffer **ret)
{
	sd_bus_message *m = NULL, *reply = NULL;
	struct dmabroker_buffer *buf;
	struct stat st;
	int r;

	if (n_planes > MAX_PLANES || (n_planes && !planes))
		return set_error(b, NULL, -EINVAL);
	/* a dma-buf's size is its inode's, as a memfd's */
	if (fstat(fd, &st) == 0 && !size_fits((uint64_t)st.st_size))
		return refuse_size(b, (uint64_t)st.st_size, false);
	buf = buffer_new(b);
	if (!buf)
		return -ENOMEM;
	r = take_fd(fd, &buf->fd);
	if (r >= 0)
		r = new_call(b, "Import", &m);
	if (r >= 0)
		r = sd_bus_message_append(m, "huuut", fd, width, height, fourcc, modifier);
	if (r >= 0)
		r = sd_bus_message_open_container(m, 'a', "(tu)");
	for (unsigned i = 0; r >= 0 && i < n_planes; i++)
		r = sd_bus_message_append(m, "(tu)", planes[i].offset, planes[i].stride);
	if (r >= 0)
		r = sd_bus_message_close_container(m);
	if (r >= 0)
		r = sd_bus_message_append(m, "u", usage);
	if (r < 0) {
		sd_bus_message_unref(m);
		buffer_free(buf);
		return set_error(b, NULL, r);
	}
	r = call(b, m, &reply);
	if (r >= 0)
		r = sd_bus_message_read(reply, "tt", &buf->id, &buf->size);
	sd_bus_message_unref(reply);
	if (r < 0) {
		buffer_free(buf);
		return r;
	}
	buf->width = width;
	buf->height = height;
	buf->fourcc = fourcc;
	buf->modifier = modifier;
	buf->usage = usage;
	buf->dmabuf = true;
	snprintf(buf->backend, sizeof(buf->backend), "import");
	buf->n_planes = n_planes;
	memcpy(buf->planes, planes, n_planes * sizeof(*planes));
	r = buffer_refused(buf);
	if (r < 0)
		return r;
	buffer_link(buf);
	*ret = buf;
	return 0;
}

EXPORT int dmabroker_open_token(struct dmabroker *b, const char *token, struct dmabroker_buffer **ret)
{
	sd_bus_message *m = NULL, *reply = NULL;
	struct dmabroker_buffer *buf;
	int fd, dmabuf, r;

	if (!token)
		return set_error(b, NULL, -EINVAL);
	r = new_call(b, "OpenToken", &m);
	if (r >= 0)
		r = sd_bus_message_append(m, "s", token);
	r = call_built(b, m, r, &reply);
	if (r < 0)
		return r;
	buf = buffer_new(b);
	if (!buf) {
		sd_bus_message_unref(reply);
		return -ENOMEM;
	}
	r = sd_bus_message_read(reply, "thuuutt", &buf->id, &fd, &buf->width, &buf->height, &buf->fourcc,
				&buf->modifier, &buf->size);
	if (r >= 0)
		r = take_fd(fd, &buf->fd);
	if (r >= 0)
		r = read_planes(reply, buf);
	if (r >= 0)
		r = sd_bus_message_read(reply, "ub", &buf->usage, &dmabuf);
	sd_bus_message_unref(reply);
	if (r < 0) {
		buffer_free(buf);
		return r;
	}
	buf->dmabuf = dmabuf;
	snprintf(buf->backend, sizeof(buf->backend), "shared");
	r = buffer_refused(buf);
	if (r < 0)
		return r;
	buffer_link(buf);
	*ret = buf;
	return 0;
}

EXPORT struct dmabroker_buffer *dmabroker_buffer_release(struct dmabroker_buffer *buf)
{
	struct dmabroker *b;

	if (!buf)
		return NULL;
	b = buf->b;
	if (b->transport->release(buf) == TRANSPORT_MOVED)
		b->transport->release(buf);
	buffer_free(buf);
	return NULL;
}

EXPORT int dmabroker_buffer_create_token(struct dmabroker_buffer *buf, uint32_t flags, uint32_t ttl_seconds,
					 char **ret_token)
{
	struct dmabroker *b = buf->b;
	sd_bus_message *m = NULL, *reply = NULL;
	const char *token;
	int r = new_call(b, "CreateToken", &m);

	if (r >= 0)
		r = sd_bus_message_append(m, "tuu", buf->id, flags, ttl_seconds);
	r = call_built(b, m, r, &reply);
	if (r >= 0)
		r = sd_bus_message_read(reply, "s", &token);
	if (r >= 0) {
		*ret_token = strdup(token);
		r = *ret_token ? 0 : -ENOMEM;
	}
	sd_bus_message_unref(reply);
	return r;
}

EXPORT int dmabroker_revoke_token(struct dmabroker *b, const char *token)
{
	return call_simple(b, "RevokeToken", "s", token);
}

EXPORT int dmabroker_buffer_attach(struct dmabroker_buffer *buf, uint32_t usage, const char *device,
				   uint32_t flags, uint32_t *ret_id)
{
	struct dmabroker *b = buf->b;
	sd_bus_message *m = NULL, *reply = NULL;
	int r = new_call(b, "Attach", &m);

	if (r >= 0)
		r = sd_bus_message_append(m, "tusu", buf->id, usage, device ? device : "", flags);
	r = call_built(b, m, r, &reply);
	if (r >= 0) {
		int fd, own = -1;
		r = sd_bus_message_read(reply, "uh", ret_id, &fd);
		/* The buffer's memory, maybe new: it moved if the device needed it. */
		if (r >= 0)
			r = take_fd(fd, &own);
		if (r >= 0) {
			safe_close(buf->fd);
			buf->fd = own;
			buf->size = (uint64_t)lseek(own, 0, SEEK_END);
		}
	}
	sd_bus_message_unref(reply);
	return r < 0 ? r : 0;
}

EXPORT int dmabroker_buffer_detach(struct dmabroker_buffer *buf, uint32_t id)
{
	return call_simple(buf->b, "Detach", "tu", buf->id, id);
}

EXPORT uint64_t dmabroker_buffer_get_id(const struct dmabroker_buffer *buf) { return buf->id; }
EXPORT int dmabroker_buffer_get_fd(const struct dmabroker_buffer *buf) { return buf->fd; }
EXPORT uint32_t dmabroker_buffer_get_width(const struct dmabroker_buffer *buf) { return buf->width; }
EXPORT uint32_t dmabroker_buffer_get_height(const struct dmabroker_buffer *buf) { return buf->height; }
EXPORT uint32_t dmabroker_buffer_get_fourcc(const struct dmabroker_buffer *buf) { return buf->fourcc; }
EXPORT uint64_t dmabroker_buffer_get_modifier(const struct dmabroker_buffer *buf) { return buf->modifier; }
EXPORT uint64_t dmabroker_buffer_get_size(const struct dmabroker_buffer *buf) { return buf->size; }
EXPORT bool dmabroker_buffer_is_dmabuf(const struct dmabroker_buffer *buf) { return buf->dmabuf; }
EXPORT const char *dmabroker_buffer_get_backend(const struct dmabroker_buffer *buf) { return buf->backend; }
EXPORT unsigned dmabroker_buffer_get_plane_count(const struct dmabroker_buffer *buf) { return buf->n_planes; }

EXPORT int dmabroker_buffer_dup_fd(const struct dmabroker_buffer *buf)
{
	int fd = fcntl(buf->fd, F_DUPFD_CLOEXEC, 3);
	return fd < 0 ? -errno : fd;
}

EXPORT int dmabroker_buffer_get_plane(const struct dmabroker_buffer *buf, unsigned i, uint64_t *offset,
				      uint32_t *stride)
{
	if (i >= buf->n_planes)
		return -EINVAL;
	if (offset)
		*offset = buf->planes[i].offset;
	if (stride)
		*stride = buf->planes[i].stride;
	return 0;
}

/* ---- moves ---- */

EXPORT void dmabroker_set_move_handler(struct dmabroker *b, dmabroker_move_callback cb, void *userdata)
{
	b->on_move = cb;
	b->move_userdata = userdata;
}

int buffer_on_moved(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
	struct dmabroker *b = userdata;
	struct dmabroker_buffer *buf;
	struct dmabroker_plane planes[MAX_PLANES];
	unsigned n = 0;
	uint64_t id, size, offset;
	uint32_t stride;
	int fd, own = -1, fence = -1, r;

	r = sd_bus_message_read(m, "tht", &id, &fd, &size);
	if (r >= 0)
		r = sd_bus_message_enter_container(m, 'a', "(tu)");
	while (r >= 0 && (r = sd_bus_message_read(m, "(tu)", &offset, &stride)) > 0 && n < MAX_PLANES) {
		planes[n].offset = offset;
		planes[n++].stride = stride;
	}
	if (r >= 0)
		r = sd_bus_message_exit_container(m);
	if (r >= 0)
		r = read_fence_array(m, &fence);
	if (r < 0)
		return 0; /* malformed: not from our daemon */
	for (buf = b->buffers; buf && buf->id != id; buf = buf->next)
		;
	if (!buf || take_fd(fd, &own) < 0) {
		safe_close(fence);
		return 0;
	}
	safe_close(buf->fd);
	buf->fd = own;
	buf->size = size;
	buf->n_planes = n;
	memcpy(buf->planes, planes, n * sizeof(*planes));
	if (b->listener.moved)
		b->listener.moved(b, buf, fence, b->listener_userdata);
	else if (b->on_move)
		b->on_move(b, buf, fence, b->move_userdata);
	else
		safe_close(fence);
	return 0;
}

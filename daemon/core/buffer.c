/* SPDX-License-Identifier: MIT */
/*
 * Buffers: a dma-buf (or shm memfd) the daemon keeps one fd of, held by one
 * or more clients. A buffer lives while any client holds it; holders are
 * charged its size against their quota. Attachments record who uses it, for
 * what and on which device.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker.h"
#include "cleanup.h"
#include "error.h"
#include "log.h"
#include "fdstore.h"
#include "migrate.h"
#include "pool.h"
#include "quota.h"
#include "stream.h"

#include <sys/ioctl.h>
#include <drm_fourcc.h>
#include <linux/dma-buf.h>

struct buffer *buffer_find(struct broker *b, uint64_t id)
{
	return hashmap_get(&b->buffers, id);
}

struct hold *buffer_held_by(struct buffer *buf, struct client *c)
{
	for (struct hold *h = buf->holders; h; h = h->next_in_buffer)
		if (h->client == c)
			return h;
	return NULL;
}

void buffer_set_name(const struct buffer *buf)
{
	char name[DMA_BUF_NAME_LEN];
	snprintf(name, sizeof(name), "dmabroker:%llu", (unsigned long long)buf->id);
	if (buf->dmabuf && ioctl(buf->fd, DMA_BUF_SET_NAME_B, name) < 0)
		log_debug("DMA_BUF_SET_NAME on buffer %llu: %s", (unsigned long long)buf->id, strerror(errno));
}

int buffer_dup_fd(const struct buffer *buf)
{
	int fd = fcntl(buf->fd, F_DUPFD_CLOEXEC, 3);
	return fd < 0 ? -errno : fd;
}

static int charge(struct client *c, uint64_t size, struct error *error)
{
	int r = quota_check(c, Q_BUFFERS, 1, error);
	return r < 0 ? r : quota_check(c, Q_BYTES, size, error);
}

int buffer_hold(struct buffer *buf, struct client *c, struct error *error)
{
	struct hold *h;
	int r;

	if (buffer_held_by(buf, c))
		return 0;
	r = charge(c, buf->size, error);
	if (r < 0)
		return r;
	if (c->uid != buf->owner_uid)
		buf->no_pool = true; /* that user may keep its fd: never reuse it for the owner */
	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->client = c;
	h->buffer = buf;
	h->next_in_client = c->holds;
	c->holds = h;
	h->next_in_buffer = buf->holders;
	buf->holders = h;
	buf->n_holders++;
	c->n_holds++;
	c->bytes += buf->size;
	fdstore_holders_changed(buf); /* a new uid may reclaim it after a restart */
	return 0;
}

static void buffer_free(struct buffer *buf, struct broker *b)
{
	while (buf->tokens)
		token_free(buf->tokens);
	migration_cancel(buf);
	access_free_buffer(buf);
	fdstore_remove(buf);
	hashmap_remove(&b->buffers, buf->id);
	b->bytes -= buf->size;
	if (!pool_put(b, buf))
		log_debug("buffer %llu freed", (unsigned long long)buf->id);
	safe_close(buf->fd);
	fd_budget_uncharge(b, 1);
	free(buf);
}

void buffer_detach_client(struct buffer *buf, struct client *c)
{
	for (struct attachment **a = &buf->attachments; *a;) {
		if ((*a)->client == c) {
			struct attachment *dead = *a;
			*a = dead->next;
			buf->n_attachments--;
			free(dead);
		} else {
			a = &(*a)->next;
		}
	}
}

void buffer_release(struct hold *h)
{
	struct buffer *buf = h->buffer;
	struct client *c = h->client;
	struct broker *b = c->broker;

	access_release_buffer(buf, c);
	migration_forget_client(buf, c);
	for (struct hold **p = &c->holds; *p; p = &(*p)->next_in_client)
		if (*p == h) {
			*p = h->next_in_client;
			break;
		}
	for (struct hold **p = &buf->holders; *p; p = &(*p)->next_in_buffer)
		if (*p == h) {
			*p = h->next_in_buffer;
			break;
		}
	buf->n_holders--;
	c->n_holds--;
	c->bytes -= buf->size;
	buffer_detach_client(buf, c);
	free(h);
	if (buf->n_holders == 0 && !buf->stream)
		buffer_free(buf, b);
	else
		fdstore_holders_changed(buf); /* c's uid may no longer reclaim it after a restart */
}

/*
 * Registers fd (taken over, also on failure) as a new buffer held by owner,
 * sized by the fd itself; the caller fills in the description. The caller
 * charged fd against the fd budget: the buffer takes the charge over (and
 * gives it back when it is freed, or here on failure).
 */
int buffer_register(struct broker *b, struct client *owner, int fd, struct buffer **ret, struct error *error)
{
	_cleanup_close_ int owned = fd;
	struct buffer *buf;
	off_t size = lseek(fd, 0, SEEK_END);
	int r;

	if (size <= 0) {
		fd_budget_uncharge(b, 1);
		return error_setf(error, DMABROKER_E_NOT_A_DMABUF, "cannot tell the buffer's size: %s",
					 size < 0 ? strerror(errno) : "it is empty");
	}
	lseek(fd, 0, SEEK_SET);
	buf = calloc(1, sizeof(*buf));
	if (!buf) {
		fd_budget_uncharge(b, 1);
		return -ENOMEM;
	}
	buf->broker = b;
	buf->id = ++b->next_buffer_id;
	buf->fd = TAKE_FD(owned);
	buf->size = (uint64_t)size;
	buf->owner_uid = owner->uid;
	buf->owner_pid = owner->pid;
	buf->owner_id = owner->id;
	buf->created_usec = now_usec();
	buf->next_attachment_id = 1;
	access_init_buffer(buf);
	r = hashmap_put(&b->buffers, buf->id, buf);
	if (r < 0) {
		safe_close(buf->fd);
		fd_budget_uncharge(b, 1);
		free(buf);
		return r;
	}
	b->bytes += buf->size;
	r = buffer_hold(buf, owner, error);
	if (r < 0) {
		buffer_free(buf, b);
		return r;
	}
	*ret = buf;
	return 0;
}

int buffer_attach(struct buffer *buf, struct client *c, uint32_t usage, const char *device, uint32_t flags,
		  uint32_t *ret_id, struct error *error)
{
	struct attachment *a;

	if (buf->n_attachments >= c->broker->config.max_attachments_per_buffer)
		return error_setf(error, DMABROKER_E_LIMIT_REACHED,
					 "buffer %llu has %u attachments, the limit (max-attachments-per-buffer)",
					 (unsigned long long)buf->id, buf->n_attachments);
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->id = buf->next_attachment_id++;
	a->client = c;
	a->usage = usage;
	a->flags = flags;
	snprintf(a->device, sizeof(a->device), "%s", device);
	a->next = buf->attachments;
	buf->attachments = a;
	buf->n_attachments++;
	*ret_id = a->id;
	return 0;
}

int buffer_detach(struct buffer *buf, struct client *c, uint32_t id, struct error *error)
{
	for (struct attachment **a = &buf->attachments; *a; a = &(*a)->next) {
		if ((*a)->id == id && (*a)->client == c) {
			struct attachment *dead = *a;
			*a = dead->next;
			buf->n_attachments--;
			free(dead);
			return 0;
		}
	}
	return error_setf(error, DMABROKER_E_UNKNOWN_ATTACHMENT,
				 "buffer %llu has no attachment %u of this client",
				 (unsigned long long)buf->id, id);
}

void buffer_describe(struct buffer *buf, uint32_t width, uint32_t height, uint32_t fourcc, uint64_t modifier,
		     uint32_t usage, const struct layout *layout)
{
	buf->width = width;
	buf->height = height;
	buf->fourcc = fourcc;
	buf->modifier = modifier;
	buf->usage = usage;
	buf->layout = *layout;
}

void buffer_unset_stream(struct buffer *buf)
{
	buf->stream = NULL;
	if (buf->n_holders == 0)
		buffer_free(buf, buf->broker);
}

int client_held_buffer(struct client *c, uint64_t id, struct buffer **ret_buffer, struct hold **ret_hold,
		       struct error *error)
{
	struct buffer *buf = buffer_find(c->broker, id);
	struct hold *h;

	if (!buf)
		return error_setf(error, DMABROKER_E_UNKNOWN_BUFFER, "no buffer %llu (released, or never existed)",
					 (unsigned long long)id);
	h = buffer_held_by(buf, c);
	if (!h)
		return error_setf(error, DMABROKER_E_NOT_PERMITTED,
					 "buffer %llu is not held by this client; open it with a token from its owner",
					 (unsigned long long)id);
	*ret_buffer = buf;
	if (ret_hold)
		*ret_hold = h;
	return 0;
}

int buffer_check_format(uint32_t fourcc, const struct format_info **ret, struct error *error)
{
	char name[5], list[256] = "";
	const struct format_info *all;
	unsigned n;

	*ret = format_lookup(fourcc);
	if (*ret)
		return 0;
	all = format_all(&n);
	for (unsigned i = 0; i < n; i++)
		snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", i ? ", " : "", all[i].name);
	return error_setf(error, DMABROKER_E_UNSUPPORTED_FORMAT, "format 0x%08x ('%s') is not supported; supported: %s",
				 fourcc, fourcc_str(fourcc, name), list);
}

int buffer_check_usage(uint32_t usage, struct error *error)
{
	if (usage & ~DMABROKER_USAGE_ALL)
		return error_setf(error, DMABROKER_E_INVALID_ARGUMENT, "unknown usage bits 0x%x (known: 0x%x)",
					 usage & ~DMABROKER_USAGE_ALL, DMABROKER_USAGE_ALL);
	return 0;
}

int buffer_check_dimensions(struct broker *b, uint32_t w, uint32_t h, struct error *error)
{
	if (w == 0 || h == 0 || w > b->config.max_dimension || h > b->config.max_dimension)
		return error_setf(error, DMABROKER_E_INVALID_DIMENSIONS,
					 "%ux%u: width and height must be 1 to %u (max-dimension)", w, h,
					 b->config.max_dimension);
	return 0;
}

int client_release_buffer(struct client *c, uint64_t id, struct error *error)
{
	struct buffer *buf;
	struct hold *h;
	int r = client_held_buffer(c, id, &buf, &h, error);

	if (r >= 0)
		r = stream_check_direct_use(buf, error);
	if (r < 0)
		return r;
	buffer_release(h);
	return 0;
}

int buffer_check_image(struct broker *b, uint32_t width, uint32_t height, uint32_t fourcc, uint32_t usage,
		       const struct format_info **ret, struct error *error)
{
	int r = buffer_check_dimensions(b, width, height, error);

	if (r >= 0)
		r = buffer_check_format(fourcc, ret, error);
	if (r >= 0)
		r = buffer_check_usage(usage, error);
	return r;
}

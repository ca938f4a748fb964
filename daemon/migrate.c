/* SPDX-License-Identifier: MIT */
/*
 * Moves: when a new attachment needs a placement the buffer's memory cannot
 * give (virtio-gpu imports no foreign dma-buf), the daemon allocates on the
 * attachment's device, takes a WRITE grant of its own (ordered with every
 * other access), waits in the event loop for the acquire fence, copies the
 * content, swaps the memory in, and sends every other holder a Moved signal
 * with the new fd and a fence. A static attachment pins the buffer: then
 * the attach is refused with an error that names who pins it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/dma-buf.h>
#include <xf86drm.h>

#include "broker.h"
#include "cleanup.h"
#include "errors.h"
#include "fence.h"
#include "log.h"
#include "printable.h"
#include "fdstore.h"
#include "migrate.h"
#include "usage.h"

struct migration {
	struct buffer *buf;
	struct client *client;          /* who attaches; NULL once it let go */
	sd_bus_message *msg;            /* its Attach call */
	struct backend *target;
	int new_fd;
	struct layout layout;
	uint32_t usage, flags;
	char device[128];
	struct grant *grant;
	sd_event_source *wait;
	int acquire;
};

static struct backend *drm_backend_for(struct broker *b, const char *device)
{
	for (struct backend *be = b->backends.list; be; be = be->next)
		if (strcmp(be->ops->kind, "drm") == 0 && (strcmp(device, be->device) == 0 || strcmp(device, be->driver) == 0))
			return be;
	return NULL;
}

static void migration_free(struct migration *mig)
{
	if (!mig)
		return;
	if (mig->buf && mig->buf->migration == mig)
		mig->buf->migration = NULL;
	sd_event_source_disable_unref(mig->wait);
	safe_close(mig->acquire);
	safe_close(mig->new_fd);
	sd_bus_message_unref(mig->msg);
	free(mig);
}

static void fail(struct migration *mig, const char *what, int err)
{
	log_warning("buffer %llu: moving it to %s failed: %s: %s", (unsigned long long)mig->buf->id,
		    mig->target->name, what, strerror(err));
	sd_bus_reply_method_errorf(mig->msg, ERR_ALLOCATION_FAILED, "buffer %llu: moving it to %s failed: %s: %s",
				   (unsigned long long)mig->buf->id, mig->target->name, what, strerror(err));
	if (mig->grant)
		access_end_internal(mig->grant);
	migration_free(mig);
}

static int sync_dmabuf(int fd, uint64_t flags)
{
	struct dma_buf_sync s = { .flags = flags };
	return ioctl(fd, DMA_BUF_IOCTL_SYNC, &s) < 0 ? -errno : 0;
}

/* Copies every plane, row by row: the strides of old and new may differ. */
static int copy_content(struct buffer *buf, int new_fd, const struct layout *nl)
{
	const struct format_info *f = format_lookup(buf->fourcc);
	uint8_t *src, *dst;
	int r = 0;

	src = mmap(NULL, buf->size, PROT_READ, MAP_SHARED, buf->fd, 0);
	if (src == MAP_FAILED)
		return -errno;
	dst = mmap(NULL, nl->size, PROT_READ | PROT_WRITE, MAP_SHARED, new_fd, 0);
	if (dst == MAP_FAILED) {
		r = -errno;
		munmap(src, buf->size);
		return r;
	}
	sync_dmabuf(buf->fd, DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ);
	sync_dmabuf(new_fd, DMA_BUF_SYNC_START | DMA_BUF_SYNC_WRITE);
	for (unsigned p = 0; p < f->n_planes; p++) {
		uint64_t row = format_min_stride(f, p, buf->width);
		for (uint32_t y = 0; y < format_plane_height(f, p, buf->height); y++)
			memcpy(dst + nl->plane[p].offset + (uint64_t)y * nl->plane[p].stride,
			       src + buf->layout.plane[p].offset + (uint64_t)y * buf->layout.plane[p].stride, row);
	}
	sync_dmabuf(new_fd, DMA_BUF_SYNC_END | DMA_BUF_SYNC_WRITE);
	sync_dmabuf(buf->fd, DMA_BUF_SYNC_END | DMA_BUF_SYNC_READ);
	munmap(dst, nl->size);
	munmap(src, buf->size);
	return 0;
}

/* Tells holder c that buf moved: a Moved signal, on its direct connection if it has one. */
static void notify_moved(struct buffer *buf, struct client *c, int fence)
{
	sd_bus_message *m = NULL;
	int r = client_new_signal(c, "Moved", &m);

	if (r == -ENOTCONN)
		return;
	if (r >= 0)
		r = sd_bus_message_append(m, "tht", buf->id, buf->fd, buf->size);
	if (r >= 0)
		r = sd_bus_message_open_container(m, 'a', "(tu)");
	for (unsigned i = 0; r >= 0 && i < buf->layout.n_planes; i++)
		r = sd_bus_message_append(m, "(tu)", buf->layout.plane[i].offset, buf->layout.plane[i].stride);
	if (r >= 0)
		r = sd_bus_message_close_container(m);
	if (r >= 0)
		r = fence >= 0 ? sd_bus_message_append(m, "ah", 1, fence) : sd_bus_message_append(m, "ah", 0);
	if (r >= 0)
		r = sd_bus_send(NULL, m, NULL);
	if (r < 0)
		log_warning("buffer %llu: cannot tell client %llu it moved: %s", (unsigned long long)buf->id,
			    (unsigned long long)c->id, strerror(-r));
	sd_bus_message_unref(m);
}

static void finish(struct migration *mig)
{
	struct buffer *buf = mig->buf;
	struct broker *b = buf->broker;
	sd_bus_error error = SD_BUS_ERROR_NULL;
	struct backend *old = buf->backend;
	int64_t delta;
	uint32_t aid;
	int r, fence;

	r = copy_content(buf, mig->new_fd, &mig->layout);
	if (r < 0) {
		fail(mig, "cannot copy the content", -r);
		return;
	}
	/* Swap the memory in; holders are charged the new size. */
	delta = (int64_t)mig->layout.size - (int64_t)buf->size;
	for (struct hold *h = buf->holders; h; h = h->next_in_buffer)
		h->client->bytes += (uint64_t)delta;
	b->bytes += (uint64_t)delta;
	safe_close(buf->fd);
	buf->fd = mig->new_fd;
	mig->new_fd = -1;
	buf->size = mig->layout.size;
	buf->layout = mig->layout;
	buf->backend = mig->target;
	buf->imported = false;
	buffer_set_name(buf);
	fdstore_update(buf);
	log_info("buffer %llu moved from %s to %s for an attachment on %s", (unsigned long long)buf->id,
		 old ? old->name : "import", mig->target->name, PRINTABLE(mig->device));

	if (mig->client) {
		r = buffer_attach(buf, mig->client, mig->usage, mig->device, mig->flags, &aid, &error);
		if (r < 0) {
			broker_reply_error(mig->msg, r, &error);
			sd_bus_error_free(&error);
		} else {
			sd_bus_reply_method_return(mig->msg, "uh", aid, buf->fd);
		}
	}
	/* Everybody else holding it gets the new memory, and a fence for it. */
	fence = dmabuf_export_fence(buf->fd, true);
	if (fence >= 0 && fence_status(fence) == 1)
		fence = safe_close(fence);
	for (struct hold *h = buf->holders; h; h = h->next_in_buffer)
		if (h->client != mig->client)
			notify_moved(buf, h->client, fence);
	safe_close(fence);
	buf->migration = NULL;
	access_end_internal(mig->grant);
	mig->grant = NULL;
	migration_free(mig);
}

static int on_acquire_signalled(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	finish(userdata);
	return 0;
}

static void on_granted(struct buffer *buf, struct grant *g, int acquire, void *userdata)
{
	struct migration *mig = userdata;

	mig->grant = g;
	if (!g) {
		safe_close(acquire);
		fail(mig, "cannot take a grant on it", ENOMEM);
		return;
	}
	/* Copy only once everything before us is done: wait in the loop. */
	if (acquire >= 0 && fence_status(acquire) == 0) {
		mig->acquire = acquire;
		if (sd_event_add_io(buf->broker->event, &mig->wait, acquire, EPOLLIN, on_acquire_signalled, mig) >= 0)
			return;
		fail(mig, "cannot wait for its fences", EIO);
		return;
	}
	safe_close(acquire);
	finish(mig);
}

int migrate_for_attach(struct buffer *buf, struct client *c, sd_bus_message *m, uint32_t usage, const char *device,
		       uint32_t flags, sd_bus_error *error)
{
	struct broker *b = buf->broker;
	struct backend *target;
	struct migration *mig;
	struct alloc_request req;
	int fd, r;

	if (!(usage & DMABROKER_USAGE_DEVICE) || !buf->dmabuf || !(target = drm_backend_for(b, device)))
		return 0; /* not a placement we can check */
	if (buf->backend == target || backend_can_import(target, buf->fd))
		return 0;
	if (buf->migration)
		return sd_bus_error_setf(error, ERR_BUSY, "buffer %llu is being moved already; retry when it is done",
					 (unsigned long long)buf->id);
	for (const struct attachment *a = buf->attachments; a; a = a->next)
		if (a->flags & ATTACH_STATIC)
			return sd_bus_error_setf(error, ERR_PINNED,
						 "%s cannot use buffer %llu where it lies (%s), and it cannot move: "
						 "client %llu (pid %d, %s) pins it with static attachment %u on '%s'",
						 target->name, (unsigned long long)buf->id,
						 buf->backend ? buf->backend->name : "imported memory",
						 (unsigned long long)a->client->id, (int)a->client->pid, a->client->comm,
						 a->id, PRINTABLE(a->device));
	req = (struct alloc_request){ .format = format_lookup(buf->fourcc), .width = buf->width, .height = buf->height,
				      .usage = buf->usage | usage, .max_size = b->config.max_buffer_size,
				      .max_dimension = b->config.max_dimension };
	mig = calloc(1, sizeof(*mig));
	if (!mig)
		return -ENOMEM;
	fd = target->ops->alloc(target, &req, &mig->layout);
	if (fd < 0) {
		free(mig);
		return sd_bus_error_setf(error, ERR_ALLOCATION_FAILED,
					 "buffer %llu must move to %s for this attachment, and %s could not allocate it: %s",
					 (unsigned long long)buf->id, target->name, target->name, strerror(-fd));
	}
	mig->buf = buf;
	mig->client = c;
	mig->msg = sd_bus_message_ref(m);
	mig->target = target;
	mig->new_fd = fd;
	mig->acquire = -1;
	mig->usage = usage;
	mig->flags = flags;
	snprintf(mig->device, sizeof(mig->device), "%s", device);
	buf->migration = mig;
	log_debug("buffer %llu: %s cannot import it; moving it there", (unsigned long long)buf->id, target->name);
	r = access_begin_internal(buf, ACCESS_WRITE, on_granted, mig);
	if (r < 0) {
		migration_free(mig);
		return r;
	}
	return 1; /* replied to later */
}

void migration_forget_client(struct buffer *buf, struct client *c)
{
	if (buf->migration && buf->migration->client == c)
		buf->migration->client = NULL;
}

void migration_cancel(struct buffer *buf)
{
	struct migration *mig = buf->migration;

	if (!mig)
		return;
	sd_bus_reply_method_errorf(mig->msg, ERR_UNKNOWN_BUFFER, "buffer %llu was freed while it was being moved",
				   (unsigned long long)buf->id);
	mig->grant = NULL; /* freed with the buffer's grants */
	migration_free(mig);
}

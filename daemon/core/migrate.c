/* SPDX-License-Identifier: MIT */
/*
 * Moves: when a new attachment needs a placement the buffer's memory cannot
 * give (virtio-gpu imports no foreign dma-buf), the daemon allocates on the
 * attachment's device, takes a WRITE grant of its own (ordered with every
 * other access), waits in the event loop for the acquire fence, copies the
 * content, swaps the memory in, and sends every other holder a Moved signal
 * with the new fd and a fence. A static attachment pins the buffer: then
 * the attach is refused with an error that names who pins it. A move obeys
 * the rules an Allocate does: the caller needs the [access] rule of the
 * target, and a bigger buffer must fit every holder's quota. The
 * allocation and the copy run on worker threads (worker.c), and the wait
 * for the acquire fence has a deadline ([fences] timeout): the loop never
 * waits for either.
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
#include "error.h"
#include "fence.h"
#include "log.h"
#include "printable.h"
#include "fdstore.h"
#include "migrate.h"
#include "quota.h"
#include "stream.h"
#include "dmabroker-protocol.h"
#include "worker.h"

struct migration {
	struct buffer *buf;
	struct client *client;          /* who attaches; NULL once it let go */
	struct completion to;           /* its Attach call, answered when the move ends */
	struct backend *target;
	int new_fd;
	struct layout layout;
	uint32_t usage, flags;
	char device[128];
	struct grant *grant;
	sd_event_source *wait, *deadline;
	int acquire;
	struct move_job *job;           /* the allocation or the copy on a worker, or NULL */
};

/* A move's work off the loop: allocate on the target, or copy the content. */
struct move_job {
	struct work work;
	struct migration *mig;          /* NULL once the move ended without it */
	bool copy;
	/* the allocation: target, req in; fd (or a negative errno) and layout out */
	struct backend *target;
	struct alloc_request req;
	/* the copy: from src to dst, both the job's own fds */
	int src, dst;
	uint32_t fourcc, width, height;
	uint64_t src_size;
	struct layout src_layout;
	/* both */
	struct layout layout;
	int fd, r;
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
	if (mig->job)
		mig->job->mig = NULL; /* it ends on its own */
	sd_event_source_disable_unref(mig->deadline);
	sd_event_source_disable_unref(mig->wait);
	safe_close(mig->acquire);
	safe_close(mig->new_fd);
	completion_drop(&mig->to);
	free(mig);
}

static void fail_named(struct migration *mig, int code, const char *what, const char *why)
{
	log_warning("buffer %llu: moving it to %s failed: %s: %s", (unsigned long long)mig->buf->id,
		    mig->target->name, what, why);
	if (mig->client) {
		struct error e = ERROR_NULL;
		int r = error_setf(&e, code, "buffer %llu: moving it to %s failed: %s: %s",
				   (unsigned long long)mig->buf->id, mig->target->name, what, why);
		completion_fail(&mig->to, r, &e); /* answered whatever the text */
	}
	if (mig->grant)
		access_end_internal(mig->grant);
	migration_free(mig);
}

static void fail(struct migration *mig, const char *what, int err)
{
	fail_named(mig, DMABROKER_E_ALLOCATION_FAILED, what, strerror(err));
}

static int sync_dmabuf(int fd, uint64_t flags)
{
	struct dma_buf_sync s = { .flags = flags };
	return ioctl(fd, DMA_BUF_IOCTL_SYNC, &s) < 0 ? -errno : 0;
}

/*
 * Copies every plane, row by row: the strides of old and new may differ.
 * On a worker thread: only the job's own data.
 */
static int copy_content(const struct move_job *j)
{
	const struct format_info *f = format_lookup(j->fourcc);
	const struct layout *nl = &j->layout;
	uint8_t *src, *dst;
	int r = 0;

	if (j->src_size > SIZE_MAX || nl->size > SIZE_MAX)
		return -EFBIG; /* a 32-bit daemon cannot map it whole: never a truncated copy */
	src = mmap(NULL, j->src_size, PROT_READ, MAP_SHARED, j->src, 0);
	if (src == MAP_FAILED)
		return -errno;
	dst = mmap(NULL, nl->size, PROT_READ | PROT_WRITE, MAP_SHARED, j->dst, 0);
	if (dst == MAP_FAILED) {
		r = -errno;
		munmap(src, j->src_size);
		return r;
	}
	sync_dmabuf(j->src, DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ);
	sync_dmabuf(j->dst, DMA_BUF_SYNC_START | DMA_BUF_SYNC_WRITE);
	for (unsigned p = 0; p < f->n_planes; p++) {
		uint64_t row = format_min_stride(f, p, j->width);
		for (uint32_t y = 0; y < format_plane_height(f, p, j->height); y++)
			memcpy(dst + nl->plane[p].offset + (uint64_t)y * nl->plane[p].stride,
			       src + j->src_layout.plane[p].offset + (uint64_t)y * j->src_layout.plane[p].stride, row);
	}
	sync_dmabuf(j->dst, DMA_BUF_SYNC_END | DMA_BUF_SYNC_WRITE);
	sync_dmabuf(j->src, DMA_BUF_SYNC_END | DMA_BUF_SYNC_READ);
	munmap(dst, nl->size);
	munmap(src, j->src_size);
	return 0;
}

/* Tells holder c that buf moved: a Moved signal, on its direct connection if it has one. */
static void notify_moved(struct buffer *buf, struct client *c, int fence)
{
	int r = broker_emit(buf->broker, moved, c, buf, fence);

	if (r == -ENOTCONN)
		return;
	if (r < 0)
		log_warning("buffer %llu: cannot tell client %llu it moved: %s", (unsigned long long)buf->id,
			    (unsigned long long)c->id, strerror(-r));
}

/*
 * Would a buffer grown by delta bytes pass a holder's quota? 0, or
 * -EDQUOT with QuotaExceeded (naming the caller's own limit, not another
 * holder's).
 */
static int check_holders(struct buffer *buf, struct client *c, uint64_t delta, const char *target,
			 struct error *error)
{
	for (struct hold *h = buf->holders; h && delta; h = h->next_in_buffer) {
		struct error e = ERROR_NULL;
		int r = quota_check(h->client, Q_BYTES, delta, &e);
		if (r >= 0)
			continue;
		r = error_setf(error, DMABROKER_E_QUOTA_EXCEEDED,
				      "buffer %llu must move to %s for this attachment, which makes it %llu bytes "
				      "bigger, and %s: %s", (unsigned long long)buf->id, target,
				      (unsigned long long)delta, h->client == c ? "that passes your quota" :
				      "that passes the quota of another holder", h->client == c ? e.message : "");
		e = ERROR_NULL;
		return r;
	}
	return 0;
}

static void swap_in(struct migration *mig)
{
	struct buffer *buf = mig->buf;
	struct broker *b = buf->broker;
	struct error error = ERROR_NULL;
	struct backend *old = buf->backend;
	int64_t delta;
	uint32_t aid;
	int r, fence;

	/* The memory the target gave may be bigger than foreseen (a driver's pitch). */
	delta = (int64_t)mig->layout.size - (int64_t)buf->size;
	if (delta > 0 && check_holders(buf, mig->client, (uint64_t)delta, mig->target->name, &error) < 0) {
		fail_named(mig, error.code, "the holders' quotas", error.message);
		error = ERROR_NULL;
		return;
	}
	/* Swap the memory in; holders are charged the new size. */
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
			completion_fail(&mig->to, r, &error);
			error = ERROR_NULL;
		} else {
			if (mig->to.ops && mig->to.ops->attached)
				mig->to.ops->attached(&mig->to, aid, buf->fd);
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

static void job_done(struct work *w, bool cancelled);

static void job_run(struct work *w)
{
	struct move_job *j = (struct move_job *)w;

	if (j->copy)
		j->r = copy_content(j);
	else
		j->fd = j->target->ops->alloc(j->target, &j->req, &j->layout);
}

static const struct work_ops move_job_ops = { .run = job_run, .done = job_done };

static struct move_job *job_new(struct migration *mig, bool copy)
{
	struct move_job *j = calloc(1, sizeof(*j));

	if (!j)
		return NULL;
	j->work.ops = &move_job_ops;
	j->mig = mig;
	j->copy = copy;
	j->src = j->dst = j->fd = -1;
	mig->job = j;
	return j;
}

/* The content is copied off the loop, under the daemon's WRITE grant. */
static void start_copy(struct migration *mig)
{
	struct buffer *buf = mig->buf;
	struct move_job *j;

	/* done waiting: the sources go before the fence's fd */
	mig->deadline = sd_event_source_disable_unref(mig->deadline);
	mig->wait = sd_event_source_disable_unref(mig->wait);
	mig->acquire = safe_close(mig->acquire);
	j = job_new(mig, true);
	if (!j) {
		fail(mig, "cannot copy the content", ENOMEM);
		return;
	}
	j->src = buffer_dup_fd(buf);
	j->dst = fcntl(mig->new_fd, F_DUPFD_CLOEXEC, 3);
	j->fourcc = buf->fourcc;
	j->width = buf->width;
	j->height = buf->height;
	j->src_size = buf->size;
	j->src_layout = buf->layout;
	j->layout = mig->layout;
	if (j->src < 0 || j->dst < 0) {
		mig->job = NULL;
		safe_close(j->src);
		safe_close(j->dst);
		free(j);
		fail(mig, "cannot copy the content", EMFILE);
		return;
	}
	workers_submit(buf->broker->workers, &j->work);
}

static void on_allocated(struct migration *mig, int fd, const struct layout *layout);

static void job_done(struct work *w, bool cancelled)
{
	struct move_job *j = (struct move_job *)w;
	struct migration *mig = j->mig;

	safe_close(j->src);
	safe_close(j->dst);
	if (mig)
		mig->job = NULL;
	if (!mig || cancelled) {
		safe_close(j->fd);
		free(j);
		return;
	}
	if (!j->copy)
		on_allocated(mig, j->fd, &j->layout);
	else if (j->r < 0)
		fail(mig, "cannot copy the content", -j->r);
	else
		swap_in(mig);
	free(j);
}

static int on_acquire_signalled(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	start_copy(userdata);
	return 0;
}

static int on_deadline(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct migration *mig = userdata;
	char why[128];

	snprintf(why, sizeof(why), "what it waited for did not end within %u s ([fences] timeout); retry later",
		 mig->buf->broker->config.fence_timeout_sec);
	fail_named(mig, DMABROKER_E_BUSY, "the buffer's other users", why);
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
	/* Copy only once everything before us is done: wait in the loop, with a deadline. */
	if (acquire >= 0 && fence_status(acquire) == 0) {
		uint32_t sec = buf->broker->config.fence_timeout_sec ? buf->broker->config.fence_timeout_sec : 10;
		mig->acquire = acquire;
		if (sd_event_add_io(buf->broker->event, &mig->wait, acquire, EPOLLIN, on_acquire_signalled, mig) >= 0 &&
		    sd_event_add_time_relative(buf->broker->event, &mig->deadline, CLOCK_MONOTONIC,
					       (uint64_t)sec * 1000000u, 0, on_deadline, mig) >= 0)
			return;
		fail(mig, "cannot wait for its fences", EIO);
		return;
	}
	safe_close(acquire);
	start_copy(mig);
}

/* The target's memory is there (or not): take the daemon's WRITE grant to copy under. */
static void on_allocated(struct migration *mig, int fd, const struct layout *layout)
{
	struct buffer *buf = mig->buf;
	int r;

	if (fd < 0) {
		fail(mig, "the target could not allocate it", -fd);
		return;
	}
	mig->new_fd = fd;
	mig->layout = *layout;
	r = access_begin_internal(buf, DMABROKER_ACCESS_WRITE, on_granted, mig);
	if (r < 0)
		fail(mig, "cannot take a grant on it", -r);
}

static int migrate_for_attach(struct buffer *buf, struct client *c, const struct completion *to, uint32_t usage,
			      const char *device, uint32_t flags, struct error *error)
{
	struct broker *b = buf->broker;
	struct backend *target;
	struct migration *mig;
	struct alloc_request req;
	struct move_job *j;
	struct layout l;
	int r;

	if (!(usage & DMABROKER_USAGE_DEVICE) || !buf->dmabuf || !(target = drm_backend_for(b, device)))
		return 0; /* not a placement we can check */
	if (buf->backend == target || backend_can_import(target, buf->fd))
		return 0;
	if (buf->migration)
		return error_setf(error, DMABROKER_E_BUSY, "buffer %llu is being moved already; retry when it is done",
					 (unsigned long long)buf->id);
	for (const struct attachment *a = buf->attachments; a; a = a->next)
		if (a->flags & DMABROKER_ATTACH_STATIC)
			return error_setf(error, DMABROKER_E_PINNED,
						 "%s cannot use buffer %llu where it lies (%s), and it cannot move: "
						 "client %llu (pid %d, %s) pins it with static attachment %u on '%s'",
						 target->name, (unsigned long long)buf->id,
						 buf->backend ? buf->backend->name : "imported memory",
						 (unsigned long long)a->client->id, (int)a->client->pid, a->client->comm,
						 a->id, PRINTABLE(a->device));
	/* The move allocates for the caller: its [access] rules apply. */
	if (!access_rules_allow(c, target))
		return access_rules_refuse(c, target, error);
	req = (struct alloc_request){ .format = format_lookup(buf->fourcc), .width = buf->width, .height = buf->height,
				      .usage = buf->usage | usage, .max_size = b->config.max_buffer_size,
				      .max_dimension = b->config.max_dimension };
	/* Every holder is charged the new size: it must fit their quotas. */
	r = backend_layout(target, &req, &l);
	if (r < 0)
		return error_setf(error, DMABROKER_E_ALLOCATION_FAILED,
					 "buffer %llu must move to %s for this attachment, and %s cannot lay it out: %s",
					 (unsigned long long)buf->id, target->name, target->name, strerror(-r));
	if (l.size > buf->size) {
		r = check_holders(buf, c, l.size - buf->size, target->name, error);
		if (r < 0)
			return r;
	}
	mig = calloc(1, sizeof(*mig));
	if (!mig)
		return -ENOMEM;
	j = job_new(mig, false);
	if (!j) {
		free(mig);
		return -ENOMEM;
	}
	j->target = target;
	j->req = req;
	mig->buf = buf;
	mig->client = c;
	mig->to = *to;
	completion_keep(&mig->to);
	mig->target = target;
	mig->new_fd = -1;
	mig->acquire = -1;
	mig->usage = usage;
	mig->flags = flags;
	snprintf(mig->device, sizeof(mig->device), "%s", device);
	buf->migration = mig;
	log_debug("buffer %llu: %s cannot import it; moving it there", (unsigned long long)buf->id, target->name);
	/* the allocation off the loop; the rest follows from its end */
	workers_submit(b->workers, &j->work);
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
	struct error e = ERROR_NULL;

	completion_fail(&mig->to, error_setf(&e, DMABROKER_E_UNKNOWN_BUFFER, "buffer %llu was freed while it was being moved",
					     (unsigned long long)buf->id), &e);
	mig->grant = NULL; /* freed with the buffer's grants */
	migration_free(mig);
}

int broker_attach(struct client *c, uint64_t id, uint32_t usage, const char *device, uint32_t flags,
		  const struct completion *to, uint32_t *ret_attachment, int *ret_fd, struct error *error)
{
	struct buffer *buf;
	int r = client_held_buffer(c, id, &buf, NULL, error);

	if (r >= 0)
		r = buffer_check_usage(usage, error);
	if (r >= 0)
		r = stream_check_direct_use(buf, error);
	if (r < 0)
		return r;
	if (flags & ~DMABROKER_ATTACH_STATIC)
		return error_setf(error, DMABROKER_E_INVALID_ARGUMENT, "unknown attach flags 0x%x (known: 1 = static)",
				  flags & ~DMABROKER_ATTACH_STATIC);
	if (strlen(device) >= sizeof(((struct attachment *)0)->device))
		return error_setf(error, DMABROKER_E_INVALID_ARGUMENT, "device name longer than %zu bytes",
				  sizeof(((struct attachment *)0)->device) - 1);
	r = migrate_for_attach(buf, c, to, usage, device, flags, error);
	if (r != 0)
		return r; /* an error, or a move that answers later */
	*ret_fd = buf->fd;
	return buffer_attach(buf, c, usage, device, flags, ret_attachment, error);
}

/* SPDX-License-Identifier: MIT */
/* Access: grants (BeginAccess, EndAccess, the multi and CPU forms). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>

#include <linux/dma-buf.h>
#include <systemd/sd-bus.h>

#include "cleanup.h"
#include "access-wire.h"
#include "errors.h"
#include "fdmsg.h"
#include "fence.h"

#include "internal.h"
#include "access.h"
#include "buffers.h"
#include "channel.h"
#include "connection.h"
#include "transport.h"

/* ---- access ---- */

/* Reads "ah" holding zero or one fd into *ret (a duplicate the caller owns, or -1). */
int read_fence_array(sd_bus_message *m, int *ret)
{
	int fd = -1, r = sd_bus_message_enter_container(m, 'a', "h");

	*ret = -1;
	if (r < 0)
		return r;
	r = sd_bus_message_read(m, "h", &fd);
	if (r < 0)
		return r;
	if (r > 0) {
		r = take_fd(fd, ret);
		if (r < 0)
			return r;
	}
	return sd_bus_message_exit_container(m);
}

EXPORT int dmabroker_buffer_begin_access(struct dmabroker_buffer *buf, uint32_t mode, uint32_t flags,
					 uint64_t *ret_grant, int *ret_acquire_fence)
{
	struct dmabroker *b = buf->b;
	int r = b->transport->begin(buf, mode, flags, ret_grant, ret_acquire_fence);

	if (r == TRANSPORT_MOVED)
		r = b->transport->begin(buf, mode, flags, ret_grant, ret_acquire_fence);
	return r;
}

struct async_access {
	struct dmabroker *b;
	dmabroker_access_callback cb;
	void *userdata;
};

static int on_begin_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
	struct async_access *a = userdata;
	const sd_bus_error *e = sd_bus_message_get_error(m);
	uint64_t grant = 0;
	int fence = -1, r;

	if (e) {
		r = set_error(a->b, e, -sd_bus_message_get_errno(m));
	} else {
		r = sd_bus_message_read(m, "t", &grant);
		if (r >= 0)
			r = read_fence_array(m, &fence);
		if (r < 0)
			set_error(a->b, NULL, r);
	}
	a->cb(a->b, r < 0 ? r : 0, grant, fence, a->userdata);
	return 0;
}

EXPORT int dmabroker_buffer_begin_access_async(struct dmabroker_buffer *buf, uint32_t mode, uint32_t flags,
					       dmabroker_access_callback cb, void *userdata)
{
	sd_bus_message *m = NULL;
	struct async_access *a;
	int r;

	if (!cb)
		return -EINVAL;
	r = new_begin_call(buf, mode, flags, &m);
	if (r < 0)
		return set_error(buf->b, NULL, r);
	a = calloc(1, sizeof(*a));
	if (!a) {
		sd_bus_message_unref(m);
		return -ENOMEM;
	}
	*a = (struct async_access){ buf->b, cb, userdata };
	return call_async(buf->b, m, on_begin_reply, a);
}

EXPORT int dmabroker_begin_access_multi(struct dmabroker *b, unsigned n, struct dmabroker_buffer *const *bufs,
					const uint32_t *modes, uint32_t flags, uint64_t *ret_grants,
					int *ret_acquire_fence)
{
	sd_bus_message *m = NULL, *reply = NULL;
	unsigned got = 0;
	int r = new_call(b, "BeginAccessMulti", &m);

	if (r >= 0)
		r = sd_bus_message_open_container(m, 'a', "(tu)");
	for (unsigned i = 0; r >= 0 && i < n; i++)
		r = sd_bus_message_append(m, "(tu)", bufs[i]->id, modes[i]);
	if (r >= 0)
		r = sd_bus_message_close_container(m);
	if (r >= 0)
		r = sd_bus_message_append(m, "u", flags);
	r = call_built(b, m, r, &reply);
	if (r >= 0)
		r = sd_bus_message_enter_container(reply, 'a', "t");
	while (r >= 0 && got < n && (r = sd_bus_message_read(reply, "t", &ret_grants[got])) > 0)
		got++;
	if (r >= 0)
		r = sd_bus_message_exit_container(reply);
	if (r >= 0 && got != n)
		r = -EBADMSG;
	if (r >= 0)
		r = read_fence_array(reply, ret_acquire_fence);
	sd_bus_message_unref(reply);
	return r < 0 ? r : 0;
}

EXPORT int dmabroker_end_access(struct dmabroker *b, uint64_t grant, int release_fence)
{
	sd_bus_message *m = NULL, *reply = NULL;
	int r = new_end_call(b, grant, release_fence, &m);

	r = call_built(b, m, r, &reply);
	sd_bus_message_unref(reply);
	return r < 0 ? r : 0;
}

EXPORT int dmabroker_end_access_oneway(struct dmabroker *b, uint64_t grant, int release_fence)
{
	int r;

	if (release_fence >= 0 && !fence_is_sync_file(release_fence)) {
		/* what the daemon would say, said here: it will not reply */
		sd_bus_error e = SD_BUS_ERROR_NULL;
		sd_bus_error_set(&e, DMABROKER_ERROR("InvalidArgument"), "the release fence is not a sync_file");
		r = set_error(b, &e, -EINVAL);
		sd_bus_error_free(&e);
		return r;
	}
	r = b->transport->end_oneway(b, grant, release_fence);
	if (r == TRANSPORT_MOVED)
		r = b->transport->end_oneway(b, grant, release_fence);
	return r;
}

static int cpu_sync(const struct dmabroker_buffer *buf, uint64_t what)
{
	struct dma_buf_sync s = {
		.flags = what | (buf->cpu_mode == DMABROKER_ACCESS_WRITE ? DMA_BUF_SYNC_RW : DMA_BUF_SYNC_READ),
	};
	if (!buf->dmabuf)
		return 0;
	return ioctl(buf->fd, DMA_BUF_IOCTL_SYNC, &s) < 0 ? -errno : 0;
}

EXPORT int dmabroker_buffer_cpu_begin(struct dmabroker_buffer *buf, uint32_t mode, int timeout_ms,
				      uint64_t *ret_grant)
{
	uint64_t grant;
	int fence = -1, r;

	if (buf->cpu_grant)
		return set_error(buf->b, NULL, -EBUSY); /* one CPU access per buffer at a time */
	r = dmabroker_buffer_begin_access(buf, mode, 0, &grant, &fence);
	if (r < 0)
		return r;
	if (fence >= 0) {
		r = fence_wait(fence, timeout_ms);
		close(fence);
		if (r <= 0) {
			dmabroker_end_access(buf->b, grant, -1);
			return set_error(buf->b, NULL, r == 0 ? -ETIMEDOUT : r);
		}
	}
	buf->cpu_mode = mode;
	r = cpu_sync(buf, DMA_BUF_SYNC_START);
	if (r < 0) {
		dmabroker_end_access(buf->b, grant, -1);
		return set_error(buf->b, NULL, r);
	}
	buf->cpu_grant = grant;
	*ret_grant = grant;
	return 0;
}

EXPORT int dmabroker_buffer_cpu_end(struct dmabroker_buffer *buf, uint64_t grant)
{
	int r;

	if (!buf->cpu_grant || grant != buf->cpu_grant)
		return set_error(buf->b, NULL, -EINVAL);
	r = cpu_sync(buf, DMA_BUF_SYNC_END);
	buf->cpu_grant = 0;
	if (r < 0) {
		dmabroker_end_access(buf->b, grant, -1);
		return set_error(buf->b, NULL, r);
	}
	return dmabroker_end_access(buf->b, grant, -1);
}

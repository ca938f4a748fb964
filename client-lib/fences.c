/* SPDX-License-Identifier: MIT */
/* Fences: sync_file helpers and their watch on an sd-event loop. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/epoll.h>

#include "cleanup.h"
#include "fence.h"

#include "internal.h"

/* ---- fences ---- */

EXPORT int dmabroker_fence_wait(int fence, int timeout_ms)
{
	return fence_wait(fence, timeout_ms);
}

EXPORT int dmabroker_fence_status(int fence)
{
	return fence_status(fence);
}

EXPORT int dmabroker_fence_merge(int a, int b)
{
	return fence_merge(a, b);
}

struct fence_watch {
	int fd;
	bool floating;               /* the library owns the source */
	dmabroker_fence_callback cb;
	void *userdata;
};

static void fence_watch_free(void *p)
{
	struct fence_watch *w = p;
	safe_close(w->fd);
	free(w);
}

static int on_fence(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct fence_watch *w = userdata;

	bool floating = w->floating;

	w->cb(w->fd, w->userdata);
	/* One shot. A source the caller holds is only turned off; one of the
	 * library's own is floating (the loop holds its only reference):
	 * un-floating it drops that reference, and it goes, w with it. */
	sd_event_source_set_enabled(s, SD_EVENT_OFF);
	if (floating)
		sd_event_source_set_floating(s, 0);
	return 0;
}

EXPORT int dmabroker_fence_add_to_event(sd_event *event, int fence, dmabroker_fence_callback cb, void *userdata,
					sd_event_source **ret_source)
{
	struct fence_watch *w;
	sd_event_source *s = NULL;
	int r;

	if (!cb)
		return -EINVAL;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->cb = cb;
	w->userdata = userdata;
	w->fd = fcntl(fence, F_DUPFD_CLOEXEC, 3);
	if (w->fd < 0) {
		free(w);
		return -errno;
	}
	r = sd_event_add_io(event, &s, w->fd, EPOLLIN, on_fence, w);
	if (r < 0) {
		fence_watch_free(w);
		return r;
	}
	sd_event_source_set_destroy_callback(s, fence_watch_free);
	if (ret_source) {
		*ret_source = s;
	} else {
		w->floating = true;
		sd_event_source_set_floating(s, 1);
		sd_event_source_unref(s);
	}
	return 0;
}

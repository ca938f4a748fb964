/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "broker.h"
#include "pool.h"
#include "errors.h"
#include "log.h"
#include "stream.h"
#include "worker.h"

uint64_t now_usec(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int on_trim(sd_event_source *s, uint64_t usec, void *userdata)
{
	malloc_trim(0);
	return 0;
}

/*
 * Large structures shrank (a client left): give the freed heap back to the
 * kernel soon, at most once a second, so that RSS after a burst falls back
 * instead of staying at its high-water mark.
 */
void broker_trim_later(struct broker *b)
{
	int enabled = SD_EVENT_OFF;

	if (!b->event)
		return;
	if (b->trim_timer && sd_event_source_get_enabled(b->trim_timer, &enabled) >= 0 && enabled != SD_EVENT_OFF)
		return;
	if (!b->trim_timer) {
		if (sd_event_add_time_relative(b->event, &b->trim_timer, CLOCK_MONOTONIC, 1000000, 100000, on_trim,
					       b) < 0)
			return;
	} else if (sd_event_source_set_time_relative(b->trim_timer, 1000000) < 0) {
		return;
	}
	sd_event_source_set_enabled(b->trim_timer, SD_EVENT_ONESHOT);
}

int broker_init(struct broker *b, sd_event *event, const struct config *c)
{
	memset(b, 0, sizeof(*b));
	b->event = sd_event_ref(event);
	b->config = *c;
	b->uid = geteuid();
	b->self.broker = b;
	snprintf(b->self.comm, sizeof(b->self.comm), "dmabrokerd");
	b->restored.broker = b;
	snprintf(b->restored.comm, sizeof(b->restored.comm), "restored");
	return backends_probe(&b->backends, c);
}

void broker_finish(struct broker *b)
{
	/*
	 * A stopping daemon leaves the fd store as it is: on a restart the next
	 * one takes the buffers back, and on a real stop the service manager
	 * drops the store itself. Freeing below must not take them out.
	 */
	b->fd_store = false;
	b->workers = workers_free(b->workers); /* what is in flight is dropped */
	while (b->clients)
		client_free(b->clients);
	while (b->restored.holds)
		buffer_release(b->restored.holds);
	b->restore_timer = sd_event_source_disable_unref(b->restore_timer);
	b->trim_timer = sd_event_source_disable_unref(b->trim_timer);
	streams_free(b);
	pool_clear(b);
	hashmap_clear(&b->buffers);
	hashmap_clear(&b->grants);
	hashmap_clear(&b->tokens);
	backends_free(&b->backends);
	sd_event_unref(b->event);
	b->event = NULL;
}

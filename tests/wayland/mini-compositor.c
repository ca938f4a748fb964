/* SPDX-License-Identifier: MIT */
/*
 * mini-compositor: a minimal Wayland compositor written for the protocol
 * tests, NOT a real compositor: it shows nothing. It exists because no
 * compositor in the test bed offers what these tests exercise: Weston 10 on
 * llvmpipe offers neither linux-dmabuf version 4 (dmabuf feedback) nor
 * zwp_linux_explicit_synchronization_v1. It speaks wl_compositor,
 * xdg_wm_base, zwp_linux_dmabuf_v1 version 4 (a default feedback naming
 * --main-device, one tranche of XRGB8888 linear) and explicit sync, and
 * logs what every commit carried, one line each:
 *
 *   commit N buffer B acquire none|pending|signalled content 0xRRGGBB complete|torn
 *   release B fenced|immediate|wl_buffer
 *
 * Per commit it takes the acquire fence's state as it came, waits for the
 * fence (up to 5 s, blocking: a stand-in), then reads the buffer through a
 * mapping of its dma-buf: "complete" when its first and last rows hold the
 * same colour (the producer writes the second half after queueing under
 * its fence). The buffer the commit replaces goes back: through its
 * zwp_linux_buffer_release_v1 alternately with a fence (sw_sync, signalled
 * 500 ms later: the producer gets it still pending) and immediately, or with
 * wl_buffer.release.
 *
 * One wl_output: a surface enters it on its first commit of a buffer. On
 * SIGUSR1 it is unplugged: every surface leaves it, its global goes
 * ("output unplugged"), and from then on no frame callback is sent (nothing
 * is repainted). --refuse-buffers: every buffer creation fails.
 *
 * usage: mini-compositor --socket NAME --main-device /dev/dri/cardN [--refuse-buffers]
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/sync_file.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <drm_fourcc.h>
#include <wayland-server.h>

#include "uapi-extra.h"
#include "linux-dmabuf-unstable-v1-server-protocol.h"
#include "linux-explicit-synchronization-unstable-v1-server-protocol.h"
#include "xdg-shell-server-protocol.h"

struct buffer {
	struct wl_resource *resource;
	int fd;
	uint32_t offset, stride, width, height, format;
	unsigned id;
};

struct surface {
	struct wl_resource *resource, *sync;
	struct buffer *pending, *current;
	int acquire;                            /* pending state's acquire fence */
	struct wl_resource *release, *current_release; /* pending state's and the current buffer's release objects */
	struct wl_list frames;                  /* wl_callback resources, pending */
	bool attached;
	bool entered;                           /* wl_surface.enter sent for the output */
	struct wl_list link;                    /* mc.surfaces */
};

static struct {
	struct wl_display *display;
	dev_t main_device;
	int timeline;
	uint32_t point;
	unsigned commits, buffers, releases;
	int table_fd;
	struct wl_event_source *timers[64];     /* the release fences' signals to come */
	unsigned n_timers;
	bool refuse_buffers;                    /* --refuse-buffers: every zwp_linux_buffer_params_v1.create fails */
	struct wl_global *output;               /* one output; NULL once unplugged (SIGUSR1) */
	struct wl_list outputs;                 /* its wl_output resources */
	struct wl_list surfaces;
} mc = { .timeline = -1, .table_fd = -1 };

static void destroy_resource(struct wl_client *c, struct wl_resource *r)
{
	(void)c;
	wl_resource_destroy(r);
}

/* ---- wl_buffer ---- */

static const struct wl_buffer_interface buffer_impl = { .destroy = destroy_resource };

static void buffer_destroyed(struct wl_resource *r)
{
	struct buffer *b = wl_resource_get_user_data(r);
	close(b->fd);
	free(b);
}

/* ---- zwp_linux_buffer_params_v1 ---- */

struct params {
	int fd;
	uint32_t offset, stride;
	uint64_t modifier;
	bool used;
};

static void params_destroyed(struct wl_resource *r)
{
	struct params *p = wl_resource_get_user_data(r);
	if (p->fd >= 0)
		close(p->fd);
	free(p);
}

static void params_add(struct wl_client *c, struct wl_resource *r, int32_t fd, uint32_t plane, uint32_t offset,
		       uint32_t stride, uint32_t hi, uint32_t lo)
{
	struct params *p = wl_resource_get_user_data(r);
	(void)c;
	if (plane != 0 || p->fd >= 0) {
		close(fd);
		wl_resource_post_error(r, ZWP_LINUX_BUFFER_PARAMS_V1_ERROR_PLANE_IDX, "one plane only (XRGB8888)");
		return;
	}
	p->fd = fd;
	p->offset = offset;
	p->stride = stride;
	p->modifier = (uint64_t)hi << 32 | lo;
}

static struct buffer *make_buffer(struct wl_client *c, struct wl_resource *r, uint32_t id, int32_t w, int32_t h,
				  uint32_t format)
{
	struct params *p = wl_resource_get_user_data(r);
	struct buffer *b;

	if (p->used || p->fd < 0 || format != DRM_FORMAT_XRGB8888 || p->modifier != DRM_FORMAT_MOD_LINEAR ||
	    mc.refuse_buffers)
		return NULL;
	b = calloc(1, sizeof(*b));
	b->resource = wl_resource_create(c, &wl_buffer_interface, 1, id);
	*b = (struct buffer){ .resource = b->resource, .fd = p->fd, .offset = p->offset, .stride = p->stride,
			      .width = (uint32_t)w, .height = (uint32_t)h, .format = format, .id = mc.buffers++ };
	wl_resource_set_implementation(b->resource, &buffer_impl, b, buffer_destroyed);
	p->fd = -1;
	p->used = true;
	return b;
}

static void params_create(struct wl_client *c, struct wl_resource *r, int32_t w, int32_t h, uint32_t format,
			  uint32_t flags)
{
	struct buffer *b = make_buffer(c, r, 0, w, h, format);
	(void)flags;
	if (b)
		zwp_linux_buffer_params_v1_send_created(r, b->resource);
	else
		zwp_linux_buffer_params_v1_send_failed(r);
}

static void params_create_immed(struct wl_client *c, struct wl_resource *r, uint32_t id, int32_t w, int32_t h,
				uint32_t format, uint32_t flags)
{
	(void)flags;
	if (!make_buffer(c, r, id, w, h, format))
		wl_resource_post_error(r, ZWP_LINUX_BUFFER_PARAMS_V1_ERROR_INVALID_WL_BUFFER, "refused");
}

static const struct zwp_linux_buffer_params_v1_interface params_impl = {
	.destroy = destroy_resource, .add = params_add, .create = params_create, .create_immed = params_create_immed,
};

/* ---- zwp_linux_dmabuf_v1 version 4 and its feedback ---- */

static const struct zwp_linux_dmabuf_feedback_v1_interface feedback_impl = { .destroy = destroy_resource };

static void send_feedback(struct wl_client *c, struct wl_resource *r, uint32_t id)
{
	struct wl_resource *f = wl_resource_create(c, &zwp_linux_dmabuf_feedback_v1_interface,
						   wl_resource_get_version(r), id);
	struct wl_array dev, idx;
	uint16_t *i;

	wl_resource_set_implementation(f, &feedback_impl, NULL, NULL);
	zwp_linux_dmabuf_feedback_v1_send_format_table(f, mc.table_fd, 16);
	wl_array_init(&dev);
	memcpy(wl_array_add(&dev, sizeof(dev_t)), &mc.main_device, sizeof(dev_t));
	zwp_linux_dmabuf_feedback_v1_send_main_device(f, &dev);
	zwp_linux_dmabuf_feedback_v1_send_tranche_target_device(f, &dev);
	wl_array_init(&idx);
	i = wl_array_add(&idx, sizeof(*i));
	*i = 0;
	zwp_linux_dmabuf_feedback_v1_send_tranche_formats(f, &idx);
	zwp_linux_dmabuf_feedback_v1_send_tranche_flags(f, 0);
	zwp_linux_dmabuf_feedback_v1_send_tranche_done(f);
	zwp_linux_dmabuf_feedback_v1_send_done(f);
	wl_array_release(&dev);
	wl_array_release(&idx);
}

static void dmabuf_create_params(struct wl_client *c, struct wl_resource *r, uint32_t id)
{
	struct params *p = calloc(1, sizeof(*p));
	struct wl_resource *pr = wl_resource_create(c, &zwp_linux_buffer_params_v1_interface,
						    wl_resource_get_version(r), id);
	p->fd = -1;
	wl_resource_set_implementation(pr, &params_impl, p, params_destroyed);
}

static void dmabuf_default_feedback(struct wl_client *c, struct wl_resource *r, uint32_t id)
{
	send_feedback(c, r, id);
}

static void dmabuf_surface_feedback(struct wl_client *c, struct wl_resource *r, uint32_t id, struct wl_resource *s)
{
	(void)s;
	send_feedback(c, r, id);
}

static const struct zwp_linux_dmabuf_v1_interface dmabuf_impl = {
	.destroy = destroy_resource, .create_params = dmabuf_create_params,
	.get_default_feedback = dmabuf_default_feedback, .get_surface_feedback = dmabuf_surface_feedback,
};

static void bind_dmabuf(struct wl_client *c, void *data, uint32_t version, uint32_t id)
{
	struct wl_resource *r = wl_resource_create(c, &zwp_linux_dmabuf_v1_interface, version, id);
	(void)data;
	wl_resource_set_implementation(r, &dmabuf_impl, NULL, NULL);
	if (version == 3)
		zwp_linux_dmabuf_v1_send_modifier(r, DRM_FORMAT_XRGB8888, 0, 0);
}

/* ---- explicit synchronization ---- */

static void sync_destroyed(struct wl_resource *r)
{
	struct surface *s = wl_resource_get_user_data(r);
	if (s)
		s->sync = NULL;
}

static void sync_set_acquire_fence(struct wl_client *c, struct wl_resource *r, int32_t fd)
{
	struct surface *s = wl_resource_get_user_data(r);
	struct sync_file_info info = { 0 };
	(void)c;
	if (ioctl(fd, SYNC_IOC_FILE_INFO, &info) < 0) {
		close(fd);
		wl_resource_post_error(r, ZWP_LINUX_SURFACE_SYNCHRONIZATION_V1_ERROR_INVALID_FENCE, "not a sync_file");
		return;
	}
	if (s->acquire >= 0) {
		close(fd);
		wl_resource_post_error(r, ZWP_LINUX_SURFACE_SYNCHRONIZATION_V1_ERROR_DUPLICATE_FENCE, "two fences");
		return;
	}
	s->acquire = fd;
}

static void sync_get_release(struct wl_client *c, struct wl_resource *r, uint32_t id)
{
	struct surface *s = wl_resource_get_user_data(r);
	if (s->release) {
		wl_resource_post_error(r, ZWP_LINUX_SURFACE_SYNCHRONIZATION_V1_ERROR_DUPLICATE_RELEASE, "two");
		return;
	}
	s->release = wl_resource_create(c, &zwp_linux_buffer_release_v1_interface, 1, id);
	wl_resource_set_implementation(s->release, NULL, NULL, NULL);
}

static const struct zwp_linux_surface_synchronization_v1_interface sync_impl = {
	.destroy = destroy_resource, .set_acquire_fence = sync_set_acquire_fence, .get_release = sync_get_release,
};

static void explicit_get_synchronization(struct wl_client *c, struct wl_resource *r, uint32_t id,
					 struct wl_resource *surface)
{
	struct surface *s = wl_resource_get_user_data(surface);
	s->sync = wl_resource_create(c, &zwp_linux_surface_synchronization_v1_interface, 1, id);
	wl_resource_set_implementation(s->sync, &sync_impl, s, sync_destroyed);
}

static const struct zwp_linux_explicit_synchronization_v1_interface explicit_impl = {
	.destroy = destroy_resource, .get_synchronization = explicit_get_synchronization,
};

static void bind_explicit(struct wl_client *c, void *data, uint32_t version, uint32_t id)
{
	struct wl_resource *r = wl_resource_create(c, &zwp_linux_explicit_synchronization_v1_interface, version, id);
	(void)data;
	wl_resource_set_implementation(r, &explicit_impl, NULL, NULL);
}

/* ---- wl_surface ---- */

/* sw_sync signals in order: the oldest release fence, with the oldest timer */
static int signal_release(void *data)
{
	(void)data;
	ioctl(mc.timeline, SW_SYNC_IOC_INC, &(uint32_t){ 1 });
	wl_event_source_remove(mc.timers[0]);
	memmove(mc.timers, mc.timers + 1, --mc.n_timers * sizeof(mc.timers[0]));
	return 0;
}

/* The buffer of the current state goes back: through its release object, or wl_buffer.release. */
static void release_current(struct surface *s)
{
	if (!s->current)
		return;
	if (s->current_release) {
		if (mc.releases++ % 2 == 0 && mc.n_timers < 64) {
			struct sw_sync_create_fence_data d = { .value = ++mc.point };
			struct wl_event_source *src;
			snprintf(d.name, sizeof(d.name), "release-%u", mc.point);
			ioctl(mc.timeline, SW_SYNC_IOC_CREATE_FENCE, &d);
			zwp_linux_buffer_release_v1_send_fenced_release(s->current_release, d.fence);
			close(d.fence);
			src = wl_event_loop_add_timer(wl_display_get_event_loop(mc.display), signal_release, NULL);
			wl_event_source_timer_update(src, 500);
			mc.timers[mc.n_timers++] = src;
			printf("release %u fenced\n", s->current->id);
		} else {
			zwp_linux_buffer_release_v1_send_immediate_release(s->current_release);
			printf("release %u immediate\n", s->current->id);
		}
		wl_resource_destroy(s->current_release);
		s->current_release = NULL;
	} else {
		wl_buffer_send_release(s->current->resource);
		printf("release %u wl_buffer\n", s->current->id);
	}
}

static void surface_attach(struct wl_client *c, struct wl_resource *r, struct wl_resource *buffer, int32_t x,
			   int32_t y)
{
	struct surface *s = wl_resource_get_user_data(r);
	(void)c, (void)x, (void)y;
	s->pending = buffer ? wl_resource_get_user_data(buffer) : NULL;
	s->attached = true;
}

/* a frame callback leaves its surface's list when destroyed (libwayland does not unlink a resource's link) */
static void callback_destroyed(struct wl_resource *cb)
{
	wl_list_remove(wl_resource_get_link(cb));
}

static void surface_frame(struct wl_client *c, struct wl_resource *r, uint32_t id)
{
	struct surface *s = wl_resource_get_user_data(r);
	struct wl_resource *cb = wl_resource_create(c, &wl_callback_interface, 1, id);
	wl_resource_set_implementation(cb, NULL, NULL, callback_destroyed);
	wl_list_insert(s->frames.prev, wl_resource_get_link(cb));
}

static const char *fence_state(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	if (fd < 0)
		return "none";
	return poll(&p, 1, 0) == 0 ? "pending" : "signalled";
}

static void surface_commit(struct wl_client *c, struct wl_resource *r)
{
	struct surface *s = wl_resource_get_user_data(r);
	struct wl_resource *cb, *tmp;
	(void)c;

	if (s->attached && s->pending) {
		struct buffer *b = s->pending;
		const char *state = fence_state(s->acquire);
		uint32_t first = 0, last = 0;
		uint8_t *map;

		if (s->acquire >= 0) /* the compositor's GPU would wait: this stand-in waits on the CPU */
			poll(&(struct pollfd){ .fd = s->acquire, .events = POLLIN }, 1, 5000);
		map = mmap(NULL, (size_t)b->offset + (size_t)b->stride * b->height, PROT_READ, MAP_SHARED, b->fd, 0);
		if (map != MAP_FAILED) {
			first = *(uint32_t *)(map + b->offset);
			last = *(uint32_t *)(map + b->offset + (size_t)b->stride * (b->height - 1));
			munmap(map, (size_t)b->offset + (size_t)b->stride * b->height);
		}
		printf("commit %u buffer %u acquire %s content 0x%06x %s\n", ++mc.commits, b->id, state,
		       first & 0xffffff, map != MAP_FAILED && first == last ? "complete" : "torn");
		if (s->current != b)
			release_current(s);
		else if (s->current_release) /* the same buffer again: its old release object is answered now */
			release_current(s);
		s->current = b;
		s->current_release = s->release;
	} else if (s->release) {
		wl_resource_destroy(s->release); /* no buffer committed: nothing to release */
	}
	s->release = NULL;
	if (s->acquire >= 0)
		close(s->acquire);
	s->acquire = -1;
	s->attached = false;
	if (!mc.output) { /* on no output: not repainted, so no frame callback (a real compositor's behaviour) */
		fflush(stdout);
		return;
	}
	if (!s->entered && s->current) {
		struct wl_resource *o;
		wl_resource_for_each(o, &mc.outputs)
			if (wl_resource_get_client(o) == wl_resource_get_client(r))
				wl_surface_send_enter(r, o);
		s->entered = true;
	}
	wl_resource_for_each_safe(cb, tmp, &s->frames) {
		wl_callback_send_done(cb, 0);
		wl_resource_destroy(cb);
	}
	fflush(stdout);
}

static void surface_noop_i4(struct wl_client *c, struct wl_resource *r, int32_t a, int32_t b, int32_t w, int32_t h)
{
	(void)c, (void)r, (void)a, (void)b, (void)w, (void)h;
}

static void surface_noop_region(struct wl_client *c, struct wl_resource *r, struct wl_resource *region)
{
	(void)c, (void)r, (void)region;
}

static void surface_noop_i(struct wl_client *c, struct wl_resource *r, int32_t v)
{
	(void)c, (void)r, (void)v;
}

static const struct wl_surface_interface surface_impl = {
	.destroy = destroy_resource, .attach = surface_attach, .damage = surface_noop_i4, .frame = surface_frame,
	.set_opaque_region = surface_noop_region, .set_input_region = surface_noop_region, .commit = surface_commit,
	.set_buffer_transform = surface_noop_i, .set_buffer_scale = surface_noop_i, .damage_buffer = surface_noop_i4,
};

static void surface_destroyed(struct wl_resource *r)
{
	struct surface *s = wl_resource_get_user_data(r);
	struct wl_resource *cb, *tmp;
	if (s->sync)
		wl_resource_set_user_data(s->sync, NULL);
	if (s->acquire >= 0)
		close(s->acquire);
	wl_list_remove(&s->link);
	/* callbacks the client's end destroys later: out of the list, which goes now */
	wl_resource_for_each_safe(cb, tmp, &s->frames) {
		wl_list_remove(wl_resource_get_link(cb));
		wl_list_init(wl_resource_get_link(cb));
	}
	free(s);
}

static const struct wl_region_interface region_impl = {
	.destroy = destroy_resource, .add = surface_noop_i4, .subtract = surface_noop_i4,
};

static void compositor_create_surface(struct wl_client *c, struct wl_resource *r, uint32_t id)
{
	struct surface *s = calloc(1, sizeof(*s));
	s->resource = wl_resource_create(c, &wl_surface_interface, wl_resource_get_version(r), id);
	s->acquire = -1;
	wl_list_init(&s->frames);
	wl_list_insert(&mc.surfaces, &s->link);
	wl_resource_set_implementation(s->resource, &surface_impl, s, surface_destroyed);
}

static void compositor_create_region(struct wl_client *c, struct wl_resource *r, uint32_t id)
{
	struct wl_resource *region = wl_resource_create(c, &wl_region_interface, 1, id);
	(void)r;
	wl_resource_set_implementation(region, &region_impl, NULL, NULL);
}

/* ---- wl_output: one, 640x480, unplugged on SIGUSR1 ---- */

static void output_release(struct wl_client *c, struct wl_resource *r)
{
	(void)c;
	wl_resource_destroy(r);
}

static const struct wl_output_interface output_impl = { .release = output_release };

static void output_destroyed(struct wl_resource *r)
{
	wl_list_remove(wl_resource_get_link(r));
}

static void bind_output(struct wl_client *c, void *data, uint32_t version, uint32_t id)
{
	struct wl_resource *r = wl_resource_create(c, &wl_output_interface, version, id);
	(void)data;
	wl_resource_set_implementation(r, &output_impl, NULL, output_destroyed);
	wl_list_insert(&mc.outputs, wl_resource_get_link(r));
	wl_output_send_geometry(r, 0, 0, 0, 0, WL_OUTPUT_SUBPIXEL_UNKNOWN, "dmabroker", "mini", WL_OUTPUT_TRANSFORM_NORMAL);
	wl_output_send_mode(r, WL_OUTPUT_MODE_CURRENT, 640, 480, 60000);
	if (version >= 2)
		wl_output_send_done(r);
}

/* SIGUSR1: the output goes, as when a monitor is unplugged: every surface leaves it, the global is removed. */
static int on_unplug(int sig, void *data)
{
	struct surface *s;
	struct wl_resource *o;
	(void)sig, (void)data;
	if (!mc.output)
		return 0;
	wl_list_for_each(s, &mc.surfaces, link) {
		if (!s->entered)
			continue;
		wl_resource_for_each(o, &mc.outputs)
			if (wl_resource_get_client(o) == wl_resource_get_client(s->resource))
				wl_surface_send_leave(s->resource, o);
		s->entered = false;
	}
	wl_global_destroy(mc.output);
	mc.output = NULL;
	printf("output unplugged\n");
	fflush(stdout);
	return 0;
}

static const struct wl_compositor_interface compositor_impl = {
	.create_surface = compositor_create_surface, .create_region = compositor_create_region,
};

static void bind_compositor(struct wl_client *c, void *data, uint32_t version, uint32_t id)
{
	struct wl_resource *r = wl_resource_create(c, &wl_compositor_interface, version, id);
	(void)data;
	wl_resource_set_implementation(r, &compositor_impl, NULL, NULL);
}

/* ---- xdg-shell: a toplevel is configured once, at 0x0 (its own size) ---- */

static void toplevel_noop(struct wl_client *c, struct wl_resource *r)
{
	(void)c, (void)r;
}

static void toplevel_noop_r(struct wl_client *c, struct wl_resource *r, struct wl_resource *o)
{
	(void)c, (void)r, (void)o;
}

static void toplevel_noop_s(struct wl_client *c, struct wl_resource *r, const char *s)
{
	(void)c, (void)r, (void)s;
}

static void toplevel_noop_menu(struct wl_client *c, struct wl_resource *r, struct wl_resource *seat, uint32_t serial,
			       int32_t x, int32_t y)
{
	(void)c, (void)r, (void)seat, (void)serial, (void)x, (void)y;
}

static void toplevel_noop_move(struct wl_client *c, struct wl_resource *r, struct wl_resource *seat, uint32_t serial)
{
	(void)c, (void)r, (void)seat, (void)serial;
}

static void toplevel_noop_resize(struct wl_client *c, struct wl_resource *r, struct wl_resource *seat,
				 uint32_t serial, uint32_t edges)
{
	(void)c, (void)r, (void)seat, (void)serial, (void)edges;
}

static void toplevel_noop_size(struct wl_client *c, struct wl_resource *r, int32_t w, int32_t h)
{
	(void)c, (void)r, (void)w, (void)h;
}

static const struct xdg_toplevel_interface toplevel_impl = {
	.destroy = destroy_resource, .set_parent = toplevel_noop_r, .set_title = toplevel_noop_s,
	.set_app_id = toplevel_noop_s, .show_window_menu = toplevel_noop_menu, .move = toplevel_noop_move,
	.resize = toplevel_noop_resize, .set_max_size = toplevel_noop_size, .set_min_size = toplevel_noop_size,
	.set_maximized = toplevel_noop, .unset_maximized = toplevel_noop, .set_fullscreen = toplevel_noop_r,
	.unset_fullscreen = toplevel_noop, .set_minimized = toplevel_noop,
};

static void xdg_surface_get_toplevel(struct wl_client *c, struct wl_resource *r, uint32_t id)
{
	struct wl_resource *t = wl_resource_create(c, &xdg_toplevel_interface, wl_resource_get_version(r), id);
	struct wl_array states;
	wl_resource_set_implementation(t, &toplevel_impl, NULL, NULL);
	wl_array_init(&states);
	xdg_toplevel_send_configure(t, 0, 0, &states);
	xdg_surface_send_configure(r, wl_display_next_serial(mc.display));
}

static void xdg_surface_get_popup(struct wl_client *c, struct wl_resource *r, uint32_t id, struct wl_resource *p,
				  struct wl_resource *pos)
{
	(void)c, (void)id, (void)p, (void)pos;
	wl_resource_post_error(r, XDG_WM_BASE_ERROR_INVALID_POPUP_PARENT, "no popups here");
}

static void xdg_surface_geometry(struct wl_client *c, struct wl_resource *r, int32_t x, int32_t y, int32_t w,
				 int32_t h)
{
	(void)c, (void)r, (void)x, (void)y, (void)w, (void)h;
}

static void xdg_surface_ack(struct wl_client *c, struct wl_resource *r, uint32_t serial)
{
	(void)c, (void)r, (void)serial;
}

static const struct xdg_surface_interface xdg_surface_impl = {
	.destroy = destroy_resource, .get_toplevel = xdg_surface_get_toplevel, .get_popup = xdg_surface_get_popup,
	.set_window_geometry = xdg_surface_geometry, .ack_configure = xdg_surface_ack,
};

static void wm_create_positioner(struct wl_client *c, struct wl_resource *r, uint32_t id)
{
	(void)c, (void)id;
	wl_resource_post_error(r, XDG_WM_BASE_ERROR_INVALID_POSITIONER, "no positioners here");
}

static void wm_get_xdg_surface(struct wl_client *c, struct wl_resource *r, uint32_t id, struct wl_resource *surface)
{
	struct wl_resource *x = wl_resource_create(c, &xdg_surface_interface, wl_resource_get_version(r), id);
	(void)surface;
	wl_resource_set_implementation(x, &xdg_surface_impl, NULL, NULL);
}

static void wm_pong(struct wl_client *c, struct wl_resource *r, uint32_t serial)
{
	(void)c, (void)r, (void)serial;
}

static const struct xdg_wm_base_interface wm_impl = {
	.destroy = destroy_resource, .create_positioner = wm_create_positioner,
	.get_xdg_surface = wm_get_xdg_surface, .pong = wm_pong,
};

static void bind_wm(struct wl_client *c, void *data, uint32_t version, uint32_t id)
{
	struct wl_resource *r = wl_resource_create(c, &xdg_wm_base_interface, version, id);
	(void)data;
	wl_resource_set_implementation(r, &wm_impl, NULL, NULL);
}

static int on_term(int sig, void *data)
{
	(void)sig, (void)data;
	wl_display_terminate(mc.display);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' }, { "main-device", required_argument, NULL, 'd' },
		{ "refuse-buffers", no_argument, NULL, 'R' }, { 0 },
	};
	const char *socket = NULL, *device = NULL;
	struct { uint32_t format, pad; uint64_t modifier; } table = { DRM_FORMAT_XRGB8888, 0, DRM_FORMAT_MOD_LINEAR };
	struct wl_event_source *sigs[3];
	struct stat st;
	int opt;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 's': socket = optarg; break;
		case 'd': device = optarg; break;
		case 'R': mc.refuse_buffers = true; break;
		default:
			return fprintf(stderr, "usage: mini-compositor --socket NAME --main-device NODE [--refuse-buffers]\n"), 2;
		}
	}
	if (!socket || !device || stat(device, &st) < 0)
		return fprintf(stderr, "mini-compositor: --socket NAME --main-device NODE (an existing node)\n"), 2;
	setvbuf(stdout, NULL, _IOLBF, 0);
	mc.main_device = st.st_rdev;
	mc.timeline = open(SW_SYNC_DEBUGFS_PATH, O_RDWR | O_CLOEXEC);
	mc.table_fd = memfd_create("format-table", MFD_CLOEXEC);
	if (mc.timeline < 0 || mc.table_fd < 0 || write(mc.table_fd, &table, sizeof(table)) != sizeof(table))
		return fprintf(stderr, "mini-compositor: sw_sync or the format table: %s\n", strerror(errno)), 1;
	mc.display = wl_display_create();
	if (wl_display_add_socket(mc.display, socket) < 0)
		return fprintf(stderr, "mini-compositor: socket %s: %s\n", socket, strerror(errno)), 1;
	wl_global_create(mc.display, &wl_compositor_interface, 4, NULL, bind_compositor);
	wl_global_create(mc.display, &xdg_wm_base_interface, 1, NULL, bind_wm);
	wl_global_create(mc.display, &zwp_linux_dmabuf_v1_interface, 4, NULL, bind_dmabuf);
	wl_global_create(mc.display, &zwp_linux_explicit_synchronization_v1_interface, 2, NULL, bind_explicit);
	wl_list_init(&mc.outputs);
	wl_list_init(&mc.surfaces);
	mc.output = wl_global_create(mc.display, &wl_output_interface, 3, NULL, bind_output);
	sigs[0] = wl_event_loop_add_signal(wl_display_get_event_loop(mc.display), SIGTERM, on_term, NULL);
	sigs[1] = wl_event_loop_add_signal(wl_display_get_event_loop(mc.display), SIGINT, on_term, NULL);
	sigs[2] = wl_event_loop_add_signal(wl_display_get_event_loop(mc.display), SIGUSR1, on_unplug, NULL);
	printf("mini-compositor: listening on %s, main device %s\n", socket, device);
	wl_display_run(mc.display);
	printf("mini-compositor: %u commits, %u buffers, %u releases\n", mc.commits, mc.buffers, mc.releases);
	wl_display_destroy_clients(mc.display);
	while (mc.n_timers)
		wl_event_source_remove(mc.timers[--mc.n_timers]);
	wl_event_source_remove(sigs[0]);
	wl_event_source_remove(sigs[1]);
	wl_event_source_remove(sigs[2]);
	wl_display_destroy(mc.display);
	close(mc.table_fd);
	close(mc.timeline);
	return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * dmabroker-wayland: shows a dmabroker stream on a Wayland surface, as one
 * of the stream's consumers, zero-copy: each stream buffer becomes one
 * wl_buffer through zwp_linux_dmabuf_v1, once; per frame the surface gets
 * the frame's buffer attached and committed.
 *
 * What it joins the stream with is what the compositor says it can use:
 * the formats it lists with the linear (or the implicit, INVALID) modifier,
 * and with linux-dmabuf version 4 the default feedback's main device, named
 * to the broker as the device the buffers must be native to, so that a
 * compositor whose renderer reads only its own device's buffers (Mesa's
 * kms_swrast) gets them there. With version 3 there is no main device:
 * --device names it.
 *
 * Ordering, per frame:
 *  - explicit sync, when the compositor offers
 *    zwp_linux_explicit_synchronization_v1: the frame's acquire fence goes
 *    with the commit, and the compositor's release fence back to the stream;
 *  - implicit sync otherwise: the broker has put the acquire fence into the
 *    dma-buf before the frame arrives, for a compositor or driver that waits
 *    on the dma-buf's fences; a compositor that reads with the CPU and does
 *    not wait (a software renderer) would show a frame not yet written, so by
 *    default (--wait-fence=implicit) the client waits for the acquire fence
 *    before it commits and counts the time it waited. On wl_buffer.release the
 *    frame goes back to the stream with a release fence taken from the
 *    dma-buf (what a writer must wait for: the compositor's reads, if any
 *    left fences there).
 * One commit per frame callback: a frame that arrives meanwhile waits (FIFO)
 * or replaces the waiting one (mailbox).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/dma-buf.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <drm_fourcc.h>
#include <wayland-client.h>

#include "dmabroker.h"
#include "cleanup.h"
#include "format.h"
#include "tool-util.h"
#include "linux-dmabuf-unstable-v1-client-protocol.h"
#include "linux-explicit-synchronization-unstable-v1-client-protocol.h"
#include "presentation-time-client-protocol.h"
#include "xdg-shell-client-protocol.h"

#define MAX_OUTPUTS 8
#define MAX_BUFFERS 16
#define MAX_FORMATS 128
#define MAX_SAMPLES 100000

static volatile int got_signal;

static void on_signal(int sig)
{
	(void)sig;
	got_signal = 1;
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: dmabroker-wayland [OPTION]...\n"
		"Show a dmabroker stream in a Wayland compositor's window, as one of its consumers, zero-copy\n"
		"(zwp_linux_dmabuf_v1).\n"
		"\n"
		"  -s, --stream NAME      stream to join (default: camera)\n"
		"  -f, --fullscreen       ask for a fullscreen window (a compositor may then put the frames\n"
		"                         on a display plane with no copy at all)\n"
		"  -d, --device DEV       the DRM device the compositor reads buffers on (node or driver\n"
		"                         name, e.g. vkms): the buffers are allocated there. Default: the\n"
		"                         main device of the compositor's dmabuf feedback (linux-dmabuf\n"
		"                         version 4); with version 3 none, and the broker places the buffers\n"
		"                         by the other parties' needs\n"
		"      --sync MODE        auto (explicit when the compositor offers it, else implicit),\n"
		"                         explicit, or implicit (default: auto)\n"
		"      --wait-fence WHEN  implicit (wait for each frame's acquire fence before committing it,\n"
		"                         with implicit sync: for compositors that read with the CPU without\n"
		"                         waiting), always, or never (default: implicit)\n"
		"  -n, --frames N         quit after showing N frames\n"
		"      --exit-on-end      quit when the stream ends (default: keep showing the last frame)\n"
		"  -w, --wait SECONDS     wait this long for the stream to be created (default: 30)\n"
		"      --display NAME     Wayland display (default: $WAYLAND_DISPLAY, else wayland-0)\n"
		"      --session          use the session bus (default: the system bus)\n"
		"  -v, --verbose          a line per frame: when it was committed and when it was presented\n"
		"                         (CLOCK_MONOTONIC seconds), and whether with no copy\n"
		"  -q, --quiet            print only errors and the summary\n"
		"  -h, --help             show this help\n"
		"\n"
		"Exit status: 0 when done, 1 on a failure (the message says which), 2 on bad usage.\n");
}

enum sync_mode { SYNC_AUTO, SYNC_EXPLICIT, SYNC_IMPLICIT };
enum wait_mode { WAIT_IMPLICIT, WAIT_ALWAYS, WAIT_NEVER };

struct held {                           /* a frame this client holds */
	bool valid;
	unsigned index;
	uint64_t sequence, timestamp_ns;
	int fence;                      /* its acquire fence, until committed */
	unsigned n_damage;
	int32_t damage[DMABROKER_FRAME_MAX_DAMAGE][4];
};

struct slot {                           /* a stream buffer and its wl_buffer */
	struct wl_buffer *buffer;
	bool attached;                  /* committed and not yet released by the compositor */
	bool failed;
	struct zwp_linux_buffer_release_v1 *release;
	struct held frame;              /* the frame it carries while attached */
};

struct client {
	/* Wayland */
	struct wl_display *display;
	struct wl_registry *registry;
	struct wl_compositor *compositor;
	struct xdg_wm_base *wm_base;
	struct zwp_linux_dmabuf_v1 *dmabuf;
	uint32_t dmabuf_version;
	struct zwp_linux_explicit_synchronization_v1 *explicit_sync;
	struct wp_presentation *presentation;
	struct zwp_linux_surface_synchronization_v1 *surface_sync;
	struct wl_surface *surface;
	struct xdg_surface *xdg_surface;
	struct xdg_toplevel *toplevel;
	struct wl_callback *frame_cb;
	bool configured, closed, fullscreen;
	/* the outputs, and which the window is on (wl_surface.enter/leave) */
	struct output { struct wl_output *o; uint32_t name; bool on; } outputs[MAX_OUTPUTS];
	unsigned n_outputs;
	bool entered, hidden;           /* on an output once; on none now (unplugged) */
	/* what the compositor takes: formats with the linear or implicit modifier */
	struct format { uint32_t fourcc; uint64_t modifier; } formats[MAX_FORMATS];
	unsigned n_formats;
	/* dmabuf feedback (version 4) */
	struct zwp_linux_dmabuf_feedback_v1 *feedback;
	bool feedback_done, have_main_device;
	dev_t main_device;
	struct { uint32_t format; uint32_t pad; uint64_t modifier; } *table;
	size_t table_len;
	char device[64];                /* the device named to the broker */
	bool native;                    /* and it reads only buffers allocated on it */
	bool implicit_modifier;         /* the buffers went to the compositor as DRM_FORMAT_MOD_INVALID */
	/* the stream */
	struct dmabroker *b;
	struct dmabroker_stream *s;
	struct slot slots[MAX_BUFFERS];
	unsigned n_slots, n_created;
	bool explicit, ended, end_reported;
	enum wait_mode wait;
	struct held next;
	/* stats */
	uint64_t n_shown, n_skipped, n_unshown, n_fenced, n_waited, t_first, t_last, wait_ns;
	uint64_t n_presented, n_zero_copy, n_discarded; /* wp_presentation feedback */
	struct wp_presentation_feedback *feedbacks[8];   /* the ones not answered yet (one per commit) */
	uint64_t feedback_seq[8];                        /* the frame each is about */
	unsigned n_feedbacks;
	uint32_t presentation_clock;                     /* wp_presentation.clock_id */
	double *latency_ms;
	unsigned n_latency;
	bool quiet, verbose;
};

static struct client *cleanup_client;

static void presentation_clock_id(void *data, struct wp_presentation *p, uint32_t clock)
{
	(void)p;
	((struct client *)data)->presentation_clock = clock;
}

static const struct wp_presentation_listener presentation_clock_listener = { .clock_id = presentation_clock_id };

/* ---- what the compositor takes ---- */

static bool takes_modifier(uint64_t m)
{
	return m == DRM_FORMAT_MOD_LINEAR || m == DRM_FORMAT_MOD_INVALID;
}

/* A format the compositor takes, kept when dmabroker allocates it too (a stream party lists at most 32). */
static void add_format(struct client *c, uint32_t fourcc, uint64_t modifier)
{
	if (!takes_modifier(modifier) || !format_lookup(fourcc))
		return;
	for (unsigned i = 0; i < c->n_formats; i++)
		if (c->formats[i].fourcc == fourcc) {
			if (modifier == DRM_FORMAT_MOD_LINEAR) /* linear stated beats implicit */
				c->formats[i].modifier = modifier;
			return;
		}
	if (c->n_formats < MAX_FORMATS)
		c->formats[c->n_formats++] = (struct format){ fourcc, modifier };
}

static uint64_t modifier_for(const struct client *c, uint32_t fourcc)
{
	for (unsigned i = 0; i < c->n_formats; i++)
		if (c->formats[i].fourcc == fourcc)
			return c->formats[i].modifier;
	return DRM_FORMAT_MOD_INVALID;
}

static void dmabuf_format(void *data, struct zwp_linux_dmabuf_v1 *d, uint32_t format)
{
	(void)data, (void)d, (void)format; /* version 3 sends modifier events too */
}

static void dmabuf_modifier(void *data, struct zwp_linux_dmabuf_v1 *d, uint32_t format, uint32_t hi, uint32_t lo)
{
	(void)d;
	add_format(data, format, (uint64_t)hi << 32 | lo);
}

static const struct zwp_linux_dmabuf_v1_listener dmabuf_listener = {
	.format = dmabuf_format,
	.modifier = dmabuf_modifier,
};

static void fb_done(void *data, struct zwp_linux_dmabuf_feedback_v1 *f)
{
	(void)f;
	((struct client *)data)->feedback_done = true;
}

static void fb_format_table(void *data, struct zwp_linux_dmabuf_feedback_v1 *f, int32_t fd, uint32_t size)
{
	struct client *c = data;
	(void)f;
	if (c->table)
		munmap(c->table, c->table_len * sizeof(*c->table));
	c->table = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
	c->table_len = c->table == MAP_FAILED ? 0 : size / sizeof(*c->table);
	if (c->table == MAP_FAILED)
		c->table = NULL;
	close(fd);
}

static void fb_main_device(void *data, struct zwp_linux_dmabuf_feedback_v1 *f, struct wl_array *dev)
{
	struct client *c = data;
	(void)f;
	if (dev->size == sizeof(dev_t)) {
		memcpy(&c->main_device, dev->data, sizeof(dev_t));
		c->have_main_device = true;
	}
}

static void fb_tranche_done(void *data, struct zwp_linux_dmabuf_feedback_v1 *f)
{
	(void)data, (void)f;
}

static void fb_tranche_target_device(void *data, struct zwp_linux_dmabuf_feedback_v1 *f, struct wl_array *dev)
{
	(void)data, (void)f, (void)dev;
}

static void fb_tranche_formats(void *data, struct zwp_linux_dmabuf_feedback_v1 *f, struct wl_array *indices)
{
	struct client *c = data;
	uint16_t *idx;
	(void)f;
	wl_array_for_each(idx, indices)
		if (c->table && *idx < c->table_len)
			add_format(c, c->table[*idx].format, c->table[*idx].modifier);
}

static void fb_tranche_flags(void *data, struct zwp_linux_dmabuf_feedback_v1 *f, uint32_t flags)
{
	(void)data, (void)f, (void)flags;
}

static const struct zwp_linux_dmabuf_feedback_v1_listener feedback_listener = {
	.done = fb_done,
	.format_table = fb_format_table,
	.main_device = fb_main_device,
	.tranche_done = fb_tranche_done,
	.tranche_target_device = fb_tranche_target_device,
	.tranche_formats = fb_tranche_formats,
	.tranche_flags = fb_tranche_flags,
};

/* The card node of device dev (a render node's card, through sysfs), into out. */
static int device_node(dev_t dev, char *out, size_t len)
{
	char path[32];
	struct stat st;

	for (int i = 0; i < 64; i++) {
		snprintf(path, sizeof(path), "/dev/dri/card%d", i);
		if (stat(path, &st) == 0 && st.st_rdev == dev) {
			snprintf(out, len, "%s", path);
			return 0;
		}
	}
	/* a render node: the card of the same device */
	for (int i = 128; i < 192; i++) {
		snprintf(path, sizeof(path), "/dev/dri/renderD%d", i);
		if (stat(path, &st) != 0 || st.st_rdev != dev)
			continue;
		for (int k = 0; k < 64; k++) {
			char a[160], b[160], ra[PATH_MAX], rb[PATH_MAX];
			snprintf(a, sizeof(a), "/sys/class/drm/renderD%d/device", i);
			snprintf(b, sizeof(b), "/sys/class/drm/card%d/device", k);
			if (realpath(a, ra) && realpath(b, rb) && strcmp(ra, rb) == 0) {
				snprintf(out, len, "/dev/dri/card%d", k);
				return 0;
			}
		}
	}
	return -ENOENT;
}

/*
 * Whether the compositor reads only buffers allocated on its device: a DRM
 * device with no render node (vkms, a KMS-only driver) is rendered by Mesa's
 * kms_swrast, which maps dumb buffers and cannot read a foreign dma-buf
 * though it imports one. dev: a node path or a driver name.
 */
static bool reads_native_only(const char *dev)
{
	char path[96], driver[64];
	bool render = false, match = false;

	for (int i = 0; i < 64 && !match; i++) {
		char link[PATH_MAX], node[24];
		ssize_t n;
		snprintf(node, sizeof(node), "/dev/dri/card%d", i);
		snprintf(path, sizeof(path), "/sys/class/drm/card%d/device/driver", i);
		n = readlink(path, link, sizeof(link) - 1);
		driver[0] = 0;
		if (n > 0) {
			link[n] = 0;
			snprintf(driver, sizeof(driver), "%.63s", strrchr(link, '/') ? strrchr(link, '/') + 1 : link);
		} else {
			/* vkms and vgem have no driver link: their MODALIAS names them */
			FILE *f;
			char line[128];
			snprintf(path, sizeof(path), "/sys/class/drm/card%d/device/uevent", i);
			f = fopen(path, "re");
			while (f && fgets(line, sizeof(line), f))
				if (strncmp(line, "MODALIAS=platform:", 18) == 0)
					snprintf(driver, sizeof(driver), "%.*s", (int)strcspn(line + 18, "\n"), line + 18);
			if (f)
				fclose(f);
		}
		if (strcmp(dev, node) != 0 && !(driver[0] && strcmp(dev, driver) == 0))
			continue;
		match = true;
		render = card_has_render_node(i);
	}
	return match && !render;
}

/* ---- the window ---- */

static void wm_ping(void *data, struct xdg_wm_base *wm, uint32_t serial)
{
	(void)data;
	xdg_wm_base_pong(wm, serial);
}

static const struct xdg_wm_base_listener wm_listener = { .ping = wm_ping };

static void xdg_surface_configure(void *data, struct xdg_surface *xs, uint32_t serial)
{
	struct client *c = data;

	xdg_surface_ack_configure(xs, serial);
	/* a configure acked takes effect at the next commit: a shell may map the window only then (kiosk-shell
	 * sends a second one, fullscreen, after the first buffer), so commit now rather than at the next frame */
	if (c->configured && c->n_shown)
		wl_surface_commit(c->surface);
	c->configured = true;
}

static const struct xdg_surface_listener xdg_surface_listener = { .configure = xdg_surface_configure };

static void toplevel_configure(void *data, struct xdg_toplevel *t, int32_t w, int32_t h, struct wl_array *states)
{
	(void)data, (void)t, (void)w, (void)h, (void)states; /* the window is the stream's size */
}

static void toplevel_close(void *data, struct xdg_toplevel *t)
{
	(void)t;
	((struct client *)data)->closed = true;
}

static const struct xdg_toplevel_listener toplevel_listener = {
	.configure = toplevel_configure,
	.close = toplevel_close,
};

static void registry_global(void *data, struct wl_registry *r, uint32_t name, const char *iface, uint32_t version)
{
	struct client *c = data;

	if (strcmp(iface, wl_compositor_interface.name) == 0) {
		c->compositor = wl_registry_bind(r, name, &wl_compositor_interface, version < 4 ? version : 4);
	} else if (strcmp(iface, xdg_wm_base_interface.name) == 0) {
		c->wm_base = wl_registry_bind(r, name, &xdg_wm_base_interface, 1);
		xdg_wm_base_add_listener(c->wm_base, &wm_listener, c);
	} else if (strcmp(iface, zwp_linux_dmabuf_v1_interface.name) == 0 && version >= 3) {
		c->dmabuf_version = version < 4 ? version : 4;
		c->dmabuf = wl_registry_bind(r, name, &zwp_linux_dmabuf_v1_interface, c->dmabuf_version);
		if (c->dmabuf_version < 4)
			zwp_linux_dmabuf_v1_add_listener(c->dmabuf, &dmabuf_listener, c);
	} else if (strcmp(iface, wp_presentation_interface.name) == 0) {
		c->presentation = wl_registry_bind(r, name, &wp_presentation_interface, 1);
		wp_presentation_add_listener(c->presentation, &presentation_clock_listener, c);
	} else if (strcmp(iface, zwp_linux_explicit_synchronization_v1_interface.name) == 0) {
		c->explicit_sync = wl_registry_bind(r, name, &zwp_linux_explicit_synchronization_v1_interface, 1);
	} else if (strcmp(iface, wl_output_interface.name) == 0 && c->n_outputs < MAX_OUTPUTS) {
		/* bound so that wl_surface.enter and leave name it: which outputs the window is on */
		c->outputs[c->n_outputs++] = (struct output){
			.o = wl_registry_bind(r, name, &wl_output_interface, version < 3 ? version : 3), .name = name };
	}
}

static void output_destroy(struct wl_output *o)
{
	if (wl_output_get_version(o) >= WL_OUTPUT_RELEASE_SINCE_VERSION)
		wl_output_release(o);
	else
		wl_output_destroy(o);
}

/*
 * Whether the window is on no output any more, though it was on one: an
 * output unplugged. The compositor then repaints it nowhere and sends no
 * frame callback, so frames go back to the stream unshown (a FIFO producer
 * would otherwise wait for ever), until the window is on an output again.
 */
static void update_visibility(struct client *c)
{
	bool on = false;
	for (unsigned i = 0; i < c->n_outputs; i++)
		on |= c->outputs[i].on;
	if (on)
		c->entered = true;
	if (c->hidden == (c->entered && !on))
		return;
	c->hidden = !c->hidden;
	if (!c->quiet)
		printf(c->hidden ? "wayland: the window is on no output now (an output unplugged?): frames go back to "
				   "the stream unshown until it is on one again\n"
				 : "wayland: the window is on an output again\n");
	fflush(stdout);
	if (!c->hidden && c->frame_cb) { /* the callback asked for while hidden may never come */
		wl_callback_destroy(c->frame_cb);
		c->frame_cb = NULL;
	}
}

static void registry_global_remove(void *data, struct wl_registry *r, uint32_t name)
{
	struct client *c = data;
	(void)r;
	for (unsigned i = 0; i < c->n_outputs; i++)
		if (c->outputs[i].name == name) {
			output_destroy(c->outputs[i].o);
			c->outputs[i] = c->outputs[--c->n_outputs];
			update_visibility(c);
			break;
		}
}

static void surface_enter_leave(struct client *c, struct wl_output *o, bool on)
{
	for (unsigned i = 0; i < c->n_outputs; i++)
		if (c->outputs[i].o == o)
			c->outputs[i].on = on;
	update_visibility(c);
}

static void surface_enter(void *data, struct wl_surface *s, struct wl_output *o)
{
	(void)s;
	surface_enter_leave(data, o, true);
}

static void surface_leave(void *data, struct wl_surface *s, struct wl_output *o)
{
	(void)s;
	surface_enter_leave(data, o, false);
}

static const struct wl_surface_listener surface_listener = { .enter = surface_enter, .leave = surface_leave };

static const struct wl_registry_listener registry_listener = {
	.global = registry_global,
	.global_remove = registry_global_remove,
};

/* A failed Wayland call: the connection's own error when it has one. */
static int wl_fail(struct client *c, const char *what)
{
	int err = wl_display_get_error(c->display);
	const struct wl_interface *iface;
	uint32_t id, code;

	if (err == EPROTO) {
		code = wl_display_get_protocol_error(c->display, &iface, &id);
		return fail("%s: the compositor raised a protocol error: %s@%u, code %u", what,
			    iface ? iface->name : "?", id, code);
	}
	if (err)
		return fail("%s: the compositor closed the connection (%s)", what, strerror(err));
	return fail("%s: the Wayland connection failed", what);
}

static int connect_compositor(struct client *c, const char *name)
{
	char fourccs[MAX_FORMATS * 6] = "";

	c->display = wl_display_connect(name);
	if (!c->display)
		return fail("cannot connect to the Wayland compositor at %s: %s",
			    name ? name : getenv("WAYLAND_DISPLAY") ? getenv("WAYLAND_DISPLAY") : "wayland-0",
			    strerror(errno));
	c->registry = wl_display_get_registry(c->display);
	wl_registry_add_listener(c->registry, &registry_listener, c);
	if (wl_display_roundtrip(c->display) < 0)
		return wl_fail(c, "listing the compositor's globals");
	if (!c->compositor || !c->wm_base)
		return fail("the compositor offers no %s", !c->compositor ? "wl_compositor" : "xdg_wm_base");
	if (!c->dmabuf)
		return fail("the compositor offers no zwp_linux_dmabuf_v1 (version 3 or later): it cannot show "
			    "dma-bufs");
	if (c->dmabuf_version >= 4) {
		c->feedback = zwp_linux_dmabuf_v1_get_default_feedback(c->dmabuf);
		zwp_linux_dmabuf_feedback_v1_add_listener(c->feedback, &feedback_listener, c);
		while (!c->feedback_done)
			if (wl_display_roundtrip(c->display) < 0)
				return wl_fail(c, "reading the compositor's dmabuf feedback");
	} else if (wl_display_roundtrip(c->display) < 0) {
		return wl_fail(c, "reading the compositor's dma-buf formats");
	}
	if (!c->n_formats)
		return fail("the compositor takes no dma-buf format with a linear or implicit modifier that dmabroker "
			    "allocates (dmabroker allocates linear buffers)");
	if (!c->device[0] && c->have_main_device && device_node(c->main_device, c->device, sizeof(c->device)) < 0)
		return fail("the compositor's main device %u:%u is no DRM node here", major(c->main_device),
			    minor(c->main_device));
	for (unsigned i = 0; i < c->n_formats && i < 24; i++) {
		char n[5];
		snprintf(fourccs + strlen(fourccs), sizeof(fourccs) - strlen(fourccs), "%s%s", i ? " " : "",
			 fourcc_name(c->formats[i].fourcc, n));
	}
	if (!c->quiet)
		printf("wayland: linux-dmabuf version %u, %u formats dmabroker allocates too (%s%s), main device %s, "
		       "explicit sync %s\n",
		       c->dmabuf_version, c->n_formats, fourccs, c->n_formats > 24 ? " ..." : "",
		       c->device[0] ? c->device : "unknown", c->explicit_sync ? "offered" : "not offered");
	return 0;
}

static int create_window(struct client *c, const char *stream)
{
	char title[96];

	c->surface = wl_compositor_create_surface(c->compositor);
	wl_surface_add_listener(c->surface, &surface_listener, c);
	c->xdg_surface = xdg_wm_base_get_xdg_surface(c->wm_base, c->surface);
	xdg_surface_add_listener(c->xdg_surface, &xdg_surface_listener, c);
	c->toplevel = xdg_surface_get_toplevel(c->xdg_surface);
	xdg_toplevel_add_listener(c->toplevel, &toplevel_listener, c);
	snprintf(title, sizeof(title), "dmabroker: %s", stream);
	xdg_toplevel_set_title(c->toplevel, title);
	xdg_toplevel_set_app_id(c->toplevel, "org.dmabroker.wayland");
	if (c->fullscreen)
		xdg_toplevel_set_fullscreen(c->toplevel, NULL);
	if (c->explicit)
		c->surface_sync = zwp_linux_explicit_synchronization_v1_get_synchronization(c->explicit_sync,
											      c->surface);
	wl_surface_commit(c->surface);
	while (!c->configured)
		if (wl_display_dispatch(c->display) < 0)
			return wl_fail(c, "waiting for the window");
	return 0;
}

/* ---- the stream's buffers as wl_buffers ---- */

static void buffer_release(void *data, struct wl_buffer *wb);

static const struct wl_buffer_listener buffer_listener = { .release = buffer_release };

static void params_created(void *data, struct zwp_linux_buffer_params_v1 *p, struct wl_buffer *wb)
{
	struct slot *slot = data;
	slot->buffer = wb;
	zwp_linux_buffer_params_v1_destroy(p);
}

static void params_failed(void *data, struct zwp_linux_buffer_params_v1 *p)
{
	struct slot *slot = data;
	slot->failed = true;
	zwp_linux_buffer_params_v1_destroy(p);
}

static const struct zwp_linux_buffer_params_v1_listener params_listener = {
	.created = params_created,
	.failed = params_failed,
};

/* Makes a wl_buffer of every stream buffer, described with modifier; 0, or 1 when the compositor refused one. */
static int create_buffers(struct client *c, uint64_t modifier)
{
	uint32_t fourcc = dmabroker_stream_get_fourcc(c->s);
	uint32_t w = dmabroker_stream_get_width(c->s), h = dmabroker_stream_get_height(c->s);
	bool refused = false;

	for (unsigned i = 0; i < c->n_slots; i++) {
		struct dmabroker_buffer *buf = dmabroker_stream_get_buffer(c->s, i);
		struct zwp_linux_buffer_params_v1 *p = zwp_linux_dmabuf_v1_create_params(c->dmabuf);
		c->slots[i].failed = false;
		for (unsigned k = 0; k < dmabroker_buffer_get_plane_count(buf); k++) {
			uint64_t offset;
			uint32_t stride;
			dmabroker_buffer_get_plane(buf, k, &offset, &stride);
			zwp_linux_buffer_params_v1_add(p, dmabroker_buffer_get_fd(buf), k, (uint32_t)offset, stride,
						       modifier >> 32, modifier & 0xffffffff);
		}
		zwp_linux_buffer_params_v1_add_listener(p, &params_listener, &c->slots[i]);
		/* create, not create_immed: a refusal is an event, not a protocol error that ends the client */
		zwp_linux_buffer_params_v1_create(p, (int32_t)w, (int32_t)h, fourcc, 0);
	}
	for (unsigned i = 0; i < c->n_slots; i++)
		while (!c->slots[i].buffer && !c->slots[i].failed)
			if (wl_display_dispatch(c->display) < 0)
				return wl_fail(c, "importing the stream's buffers into the compositor");
	for (unsigned i = 0; i < c->n_slots; i++)
		refused |= c->slots[i].failed;
	if (refused)
		for (unsigned i = 0; i < c->n_slots; i++)
			if (c->slots[i].buffer) {
				wl_buffer_destroy(c->slots[i].buffer);
				c->slots[i].buffer = NULL;
			}
	return refused ? 1 : 0;
}

/*
 * The stream's buffers as wl_buffers, once. They are linear: described as
 * such (DRM_FORMAT_MOD_LINEAR), which a compositor needs to put them on a
 * display plane; one that takes only implicit modifiers (it listed INVALID
 * alone) and refuses the explicit one gets them as INVALID.
 */
static int import_buffers(struct client *c)
{
	uint32_t fourcc = dmabroker_stream_get_fourcc(c->s);
	uint32_t w = dmabroker_stream_get_width(c->s), h = dmabroker_stream_get_height(c->s);
	char n[5];
	int r;

	c->n_slots = dmabroker_stream_get_buffer_count(c->s);
	r = create_buffers(c, DRM_FORMAT_MOD_LINEAR);
	if (r == 1 && modifier_for(c, fourcc) == DRM_FORMAT_MOD_INVALID) {
		if (!c->quiet)
			printf("wayland: the compositor refused the buffers as linear; describing them with the implicit "
			       "modifier, as it listed\n");
		r = create_buffers(c, DRM_FORMAT_MOD_INVALID);
		c->implicit_modifier = r == 0;
	}
	if (r < 0)
		return r;
	if (r == 1)
		return fail("the compositor refused the stream's buffers: %ux%u %s, linear, %u plane(s) on %s "
			    "(zwp_linux_buffer_params_v1.failed)", w, h, fourcc_name(fourcc, n),
			    dmabroker_buffer_get_plane_count(dmabroker_stream_get_buffer(c->s, 0)),
			    dmabroker_stream_get_backend(c->s));
	for (unsigned i = 0; i < c->n_slots; i++)
		wl_buffer_add_listener(c->slots[i].buffer, &buffer_listener, &c->slots[i]);
	return 0;
}

/* ---- frames ---- */

static void give_back(struct client *c, struct held *h, int fence)
{
	if (!h->valid)
		return;
	dmabroker_stream_release(c->s, h->index, fence);
	if (h->fence >= 0)
		close(h->fence);
	h->valid = false;
	h->fence = -1;
}

/* What a writer of the buffer must wait for now: every fence in its dma-buf, as a sync_file, or -1. */
static int export_fence(struct client *c, unsigned index)
{
	struct dma_buf_export_sync_file arg = { .flags = DMA_BUF_SYNC_WRITE, .fd = -1 };
	int fd = dmabroker_buffer_get_fd(dmabroker_stream_get_buffer(c->s, index));

	if (ioctl(fd, DMA_BUF_IOCTL_EXPORT_SYNC_FILE, &arg) < 0)
		return -1; /* not a dma-buf (shm), or an older kernel: nothing to wait for */
	return arg.fd;
}

static void buffer_release(void *data, struct wl_buffer *wb)
{
	struct slot *slot = data;
	struct client *c = cleanup_client;
	(void)wb;
	if (!slot->attached || slot->release) /* explicit sync: the buffer release object says it */
		return;
	slot->attached = false;
	int fence = export_fence(c, slot->frame.index);
	give_back(c, &slot->frame, fence);
	if (fence >= 0)
		close(fence);
}

static void release_fenced(void *data, struct zwp_linux_buffer_release_v1 *r, int32_t fence)
{
	struct slot *slot = data;
	zwp_linux_buffer_release_v1_destroy(r);
	slot->release = NULL;
	slot->attached = false;
	give_back(cleanup_client, &slot->frame, fence);
	close(fence);
}

static void release_immediate(void *data, struct zwp_linux_buffer_release_v1 *r)
{
	struct slot *slot = data;
	zwp_linux_buffer_release_v1_destroy(r);
	slot->release = NULL;
	slot->attached = false;
	give_back(cleanup_client, &slot->frame, -1);
}

static const struct zwp_linux_buffer_release_v1_listener release_listener = {
	.fenced_release = release_fenced,
	.immediate_release = release_immediate,
};

static void frame_done(void *data, struct wl_callback *cb, uint32_t time)
{
	struct client *c = data;
	(void)time;
	wl_callback_destroy(cb);
	c->frame_cb = NULL;
}

static const struct wl_callback_listener frame_listener = { .done = frame_done };

/* wp_presentation: whether each frame reached the screen, and with no copy (on a display plane) */
static void pf_sync_output(void *data, struct wp_presentation_feedback *f, struct wl_output *o)
{
	(void)data, (void)f, (void)o;
}

/* Forgets f, answered: the sequence of the frame it was about. */
static uint64_t feedback_done(struct client *c, struct wp_presentation_feedback *f)
{
	uint64_t seq = 0;
	for (unsigned i = 0; i < c->n_feedbacks; i++)
		if (c->feedbacks[i] == f) {
			seq = c->feedback_seq[i];
			c->n_feedbacks--;
			c->feedbacks[i] = c->feedbacks[c->n_feedbacks];
			c->feedback_seq[i] = c->feedback_seq[c->n_feedbacks];
			break;
		}
	wp_presentation_feedback_destroy(f);
	return seq;
}

static void pf_presented(void *data, struct wp_presentation_feedback *f, uint32_t sec_hi, uint32_t sec_lo,
			 uint32_t nsec, uint32_t refresh, uint32_t seq_hi, uint32_t seq_lo, uint32_t flags)
{
	struct client *c = data;
	uint64_t seq = feedback_done(c, f);
	(void)refresh, (void)seq_hi, (void)seq_lo;
	c->n_presented++;
	if (flags & WP_PRESENTATION_FEEDBACK_KIND_ZERO_COPY)
		c->n_zero_copy++;
	if (c->verbose)
		printf("wayland: frame %" PRIu64 " presented at %" PRIu64 ".%06u%s%s\n", seq,
		       ((uint64_t)sec_hi << 32) | sec_lo, nsec / 1000,
		       c->presentation_clock == CLOCK_MONOTONIC ? "" : " (not CLOCK_MONOTONIC)",
		       flags & WP_PRESENTATION_FEEDBACK_KIND_ZERO_COPY ? ", zero-copy" : "");
	fflush(stdout);
}

static void pf_discarded(void *data, struct wp_presentation_feedback *f)
{
	struct client *c = data;
	uint64_t seq = feedback_done(c, f);
	c->n_discarded++;
	if (c->verbose)
		printf("wayland: frame %" PRIu64 " discarded\n", seq);
}

static const struct wp_presentation_feedback_listener presentation_listener = {
	.sync_output = pf_sync_output,
	.presented = pf_presented,
	.discarded = pf_discarded,
};

/* Waits for fence on the CPU (bounded: a fence that never signals is the producer's fault, not a hang here). */
static int wait_fence(struct client *c, int fence)
{
	struct pollfd p = { .fd = fence, .events = POLLIN };
	uint64_t t0 = monotonic_ns();
	int r;

	while ((r = poll(&p, 1, 10000)) < 0 && errno == EINTR && !got_signal)
		;
	c->wait_ns += monotonic_ns() - t0;
	c->n_waited++;
	if (r == 0)
		return fail("a frame's acquire fence did not signal within 10 s");
	return r < 0 ? -errno : 0;
}

/* Commits c->next if it can: the window is configured and the last frame callback came. */
static int show_next(struct client *c)
{
	struct held *h = &c->next;
	struct slot *slot;

	if (!h->valid || c->frame_cb)
		return 0;
	slot = &c->slots[h->index];
	if (h->fence >= 0)
		c->n_fenced++;
	const char *fence_state = h->fence < 0 ? "none" : "signalled";
	if (h->fence >= 0 && (c->wait == WAIT_ALWAYS || (c->wait == WAIT_IMPLICIT && !c->explicit))) {
		if (wait_fence(c, h->fence) < 0)
			return -1;
		close(h->fence);
		h->fence = -1;
	}
	if (c->explicit) {
		if (h->fence >= 0)
			zwp_linux_surface_synchronization_v1_set_acquire_fence(c->surface_sync, h->fence);
		slot->release = zwp_linux_surface_synchronization_v1_get_release(c->surface_sync);
		zwp_linux_buffer_release_v1_add_listener(slot->release, &release_listener, slot);
	}
	if (h->fence >= 0) {
		if (poll(&(struct pollfd){ .fd = h->fence, .events = POLLIN }, 1, 0) == 0)
			fence_state = "pending";
		close(h->fence);
	}
	h->fence = -1;
	wl_surface_attach(c->surface, slot->buffer, 0, 0);
	if (h->n_damage == 0)
		wl_surface_damage_buffer(c->surface, 0, 0, INT32_MAX, INT32_MAX);
	for (unsigned i = 0; i < h->n_damage; i++)
		wl_surface_damage_buffer(c->surface, h->damage[i][0], h->damage[i][1], h->damage[i][2],
					 h->damage[i][3]);
	c->frame_cb = wl_surface_frame(c->surface);
	wl_callback_add_listener(c->frame_cb, &frame_listener, c);
	if (c->presentation && c->n_feedbacks < ELEMENTSOF(c->feedbacks)) { /* one per frame callback: a few at most */
		struct wp_presentation_feedback *f = wp_presentation_feedback(c->presentation, c->surface);
		wp_presentation_feedback_add_listener(f, &presentation_listener, c);
		c->feedback_seq[c->n_feedbacks] = h->sequence;
		c->feedbacks[c->n_feedbacks++] = f;
	}
	wl_surface_commit(c->surface);
	if (c->verbose) {
		uint64_t now = monotonic_ns();
		printf("wayland: frame %" PRIu64 " committed at %" PRIu64 ".%06u, its acquire fence %s\n", h->sequence,
		       now / 1000000000u, (unsigned)(now % 1000000000u / 1000), fence_state);
		fflush(stdout);
	}
	slot->attached = true;
	slot->frame = *h;
	h->valid = false;
	{
		uint64_t now = monotonic_ns();
		if (!c->t_first)
			c->t_first = now;
		c->t_last = now;
		if (slot->frame.timestamp_ns && now > slot->frame.timestamp_ns && c->n_latency < MAX_SAMPLES)
			c->latency_ms[c->n_latency++] = (double)(now - slot->frame.timestamp_ns) / 1e6;
	}
	c->n_shown++;
	return 0;
}

/* Takes frames from the stream: FIFO in order, mailbox the newest. */
static int take_frames(struct client *c)
{
	bool fifo = dmabroker_stream_get_mode(c->s) == DMABROKER_STREAM_FIFO;
	struct dmabroker_frame f;
	int r = 0;

	if (c->hidden && c->next.valid) { /* the frame waiting for a frame callback that will not come */
		give_back(c, &c->next, c->next.fence);
		c->n_skipped++;
		c->n_unshown++;
	}
	while (!(fifo && c->next.valid) && (r = dmabroker_stream_acquire(c->s, &f)) == 0) {
		if (c->hidden) { /* on no output: back at once, done when the producer's write is */
			dmabroker_stream_release(c->s, f.index, f.fence);
			if (f.fence >= 0)
				close(f.fence);
			c->n_skipped++;
			c->n_unshown++;
			continue;
		}
		if (c->next.valid) { /* replaced before it was shown */
			give_back(c, &c->next, -1);
			c->n_skipped++;
		}
		c->next = (struct held){ .valid = true, .index = f.index, .sequence = f.sequence,
					 .timestamp_ns = f.timestamp_ns, .fence = f.fence, .n_damage = f.n_damage };
		memcpy(c->next.damage, f.damage, sizeof(f.damage));
	}
	if (fifo && c->next.valid)
		r = -EAGAIN;
	if (r == -EPIPE) {
		c->ended = true;
		r = 0;
	} else if (r == -EAGAIN) {
		r = 0;
	} else if (r < 0) {
		return fail("stream: %s", dmabroker_error_message(c->b));
	}
	return show_next(c);
}

static void print_summary(struct client *c)
{
	double secs = c->t_last > c->t_first ? (double)(c->t_last - c->t_first) / 1e9 : 0;

	printf("wayland: %" PRIu64 " frames shown, %" PRIu64 " skipped", c->n_shown, c->n_skipped);
	if (c->n_unshown)
		printf(" (%" PRIu64 " of them given back unshown: the window on no output)", c->n_unshown);
	if (secs > 0)
		printf(", %.1f frames/s", (double)(c->n_shown - 1) / secs);
	if (c->n_latency) {
		qsort(c->latency_ms, c->n_latency, sizeof(double), cmp_double);
		printf(", latency to commit p50 %.2f ms p99 %.2f ms", c->latency_ms[c->n_latency / 2],
		       c->latency_ms[c->n_latency * 99 / 100]);
	}
	if (c->presentation)
		printf("; presented %" PRIu64 ", %" PRIu64 " of them zero-copy (on a display plane), %" PRIu64
		       " discarded", c->n_presented, c->n_zero_copy, c->n_discarded);
	printf("; sync %s, %" PRIu64 " frames came with an acquire fence, %" PRIu64 " waited for on the CPU before "
	       "commit", c->explicit ? "explicit" : "implicit", c->n_fenced, c->n_waited);
	if (c->n_waited)
		printf(" (%.3f ms on average)", (double)c->wait_ns / 1e6 / (double)c->n_waited);
	printf("\n");
	fflush(stdout);
}

static void cleanup(void)
{
	struct client *c = cleanup_client;

	if (!c)
		return;
	c->next.valid = c->next.valid && c->s;
	if (c->s) {
		if (c->next.fence >= 0)
			close(c->next.fence);
		c->s = dmabroker_stream_destroy(c->s);
	}
	for (unsigned i = 0; i < c->n_slots; i++) {
		if (c->slots[i].release)
			zwp_linux_buffer_release_v1_destroy(c->slots[i].release);
		if (c->slots[i].buffer)
			wl_buffer_destroy(c->slots[i].buffer);
	}
	if (c->b)
		dmabroker_disconnect(c->b);
	if (c->display) {
		while (c->n_outputs)
			output_destroy(c->outputs[--c->n_outputs].o);
		if (c->frame_cb)
			wl_callback_destroy(c->frame_cb);
		if (c->surface_sync)
			zwp_linux_surface_synchronization_v1_destroy(c->surface_sync);
		if (c->toplevel)
			xdg_toplevel_destroy(c->toplevel);
		if (c->xdg_surface)
			xdg_surface_destroy(c->xdg_surface);
		if (c->surface)
			wl_surface_destroy(c->surface);
		if (c->feedback)
			zwp_linux_dmabuf_feedback_v1_destroy(c->feedback);
		while (c->n_feedbacks)
			wp_presentation_feedback_destroy(c->feedbacks[--c->n_feedbacks]);
		if (c->presentation)
			wp_presentation_destroy(c->presentation);
		if (c->explicit_sync)
			zwp_linux_explicit_synchronization_v1_destroy(c->explicit_sync);
		if (c->dmabuf)
			zwp_linux_dmabuf_v1_destroy(c->dmabuf);
		if (c->wm_base)
			xdg_wm_base_destroy(c->wm_base);
		if (c->compositor)
			wl_compositor_destroy(c->compositor);
		if (c->registry)
			wl_registry_destroy(c->registry);
		if (c->table)
			munmap(c->table, c->table_len * sizeof(*c->table));
		wl_display_flush(c->display);
		wl_display_disconnect(c->display);
	}
	free(c->latency_ms);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "stream", required_argument, NULL, 's' },   { "fullscreen", no_argument, NULL, 'f' },
		{ "device", required_argument, NULL, 'd' },   { "sync", required_argument, NULL, 'Y' },
		{ "wait-fence", required_argument, NULL, 'F' }, { "frames", required_argument, NULL, 'n' },
		{ "exit-on-end", no_argument, NULL, 'E' },    { "wait", required_argument, NULL, 'w' },
		{ "display", required_argument, NULL, 'D' },  { "session", no_argument, NULL, 'S' },
		{ "verbose", no_argument, NULL, 'v' },        { "quiet", no_argument, NULL, 'q' },          { "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	static struct client c = { .next.fence = -1 };  /* cleanup() runs after main returns */
	const char *stream = "camera", *display = NULL;
	enum sync_mode sync = SYNC_AUTO;
	uint32_t limit = 0, wait_s = 30;
	bool session = false, exit_on_end = false;
	char name[5];
	int opt, r;

	while ((opt = getopt_long(argc, argv, "s:fd:n:w:vqh", opts, NULL)) != -1) {
		switch (opt) {
		case 's': stream = optarg; break;
		case 'f': c.fullscreen = true; break;
		case 'd': snprintf(c.device, sizeof(c.device), "%s", optarg); break;
		case 'Y':
			if (strcmp(optarg, "auto") == 0)
				sync = SYNC_AUTO;
			else if (strcmp(optarg, "explicit") == 0)
				sync = SYNC_EXPLICIT;
			else if (strcmp(optarg, "implicit") == 0)
				sync = SYNC_IMPLICIT;
			else
				return usage_error("dmabroker-wayland", "--sync: auto, explicit or implicit");
			break;
		case 'F':
			if (strcmp(optarg, "implicit") == 0)
				c.wait = WAIT_IMPLICIT;
			else if (strcmp(optarg, "always") == 0)
				c.wait = WAIT_ALWAYS;
			else if (strcmp(optarg, "never") == 0)
				c.wait = WAIT_NEVER;
			else
				return usage_error("dmabroker-wayland", "--wait-fence: implicit, always or never");
			break;
		case 'n':
			if (!parse_u32(optarg, 1, UINT32_MAX, &limit))
				return usage_error("dmabroker-wayland", "--frames: a positive number");
			break;
		case 'E': exit_on_end = true; break;
		case 'w':
			if (!parse_u32(optarg, 0, 86400, &wait_s))
				return usage_error("dmabroker-wayland", "--wait: 0 to 86400 seconds");
			break;
		case 'D': display = optarg; break;
		case 'S': session = true; break;
		case 'q': c.quiet = true; break;
		case 'v': c.verbose = true; break;
		case 'h': usage(stdout); return 0;
		default: return usage_error("dmabroker-wayland", NULL);
		}
	}
	if (optind < argc)
		return usage_error("dmabroker-wayland", "unexpected argument '%s'", argv[optind]);
	set_tool_name("wayland");
	cleanup_client = &c;
	atexit(cleanup);
	c.latency_ms = calloc(MAX_SAMPLES, sizeof(double));
	if (!c.latency_ms || connect_compositor(&c, display) < 0)
		return 1;
	c.native = c.device[0] && reads_native_only(c.device);
	if (c.native && !c.quiet)
		printf("wayland: %s has no render node: its GL (Mesa's kms_swrast) reads only buffers allocated on it, "
		       "so the stream's buffers are asked for there\n", c.device);
	if (sync == SYNC_EXPLICIT && !c.explicit_sync)
		return fail("--sync explicit: the compositor offers no zwp_linux_explicit_synchronization_v1"), 1;
	c.explicit = sync != SYNC_IMPLICIT && c.explicit_sync;

	r = dmabroker_connect(session ? DMABROKER_BUS_SESSION : DMABROKER_BUS_SYSTEM, &c.b);
	if (r < 0)
		return fail("cannot reach dmabrokerd on the %s bus: %s", session ? "session" : "system", strerror(-r)), 1;
	{
		uint32_t fourccs[MAX_FORMATS];
		const char *devices[] = { c.device };
		struct dmabroker_stream_desc sd = {
			.version = DMABROKER_STREAM_DESC_VERSION, .name = stream, .label = "wayland",
			.usage = DMABROKER_USAGE_GPU_FLAG, .formats = fourccs, .n_formats = c.n_formats,
			.devices = devices, .n_devices = c.device[0] ? 1 : 0, .max_acquired = 2,
			.flags = c.native ? DMABROKER_STREAM_NATIVE : 0,
		};
		for (unsigned i = 0; i < c.n_formats; i++)
			fourccs[i] = c.formats[i].fourcc;
		r = join_stream(c.b, &sd, wait_s, &got_signal, &c.s);
	}
	if (r < 0)
		return fail_stream(c.b, "joining stream", stream), 1;
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	while (!got_signal && (r = dmabroker_stream_wait_ready(c.s, 200)) == -ETIMEDOUT)
		;
	if (got_signal)
		return 0;
	if (r < 0)
		return fail_stream(c.b, "stream", stream), 1;
	if (create_window(&c, stream) < 0 || import_buffers(&c) < 0)
		return 1;
	if (!c.quiet)
		printf("wayland: stream '%s' %ux%u %s, %u buffers on %s, %s window, %s sync\n", stream,
		       dmabroker_stream_get_width(c.s), dmabroker_stream_get_height(c.s),
		       fourcc_name(dmabroker_stream_get_fourcc(c.s), name), dmabroker_stream_get_buffer_count(c.s),
		       dmabroker_stream_get_backend(c.s), c.fullscreen ? "fullscreen" : "a", c.explicit ? "explicit" : "implicit");
	fflush(stdout);

	while (!got_signal && !c.closed) {
		struct pollfd pfd[2] = {
			{ .fd = wl_display_get_fd(c.display), .events = POLLIN },
			{ .fd = dmabroker_get_fd(c.b), .events = POLLIN },
		};
		while (wl_display_prepare_read(c.display) != 0)
			if (wl_display_dispatch_pending(c.display) < 0)
				return wl_fail(&c, "showing frames"), 1;
		if (wl_display_flush(c.display) < 0 && errno != EAGAIN) {
			wl_display_cancel_read(c.display);
			return wl_fail(&c, "showing frames"), 1;
		}
		r = poll(pfd, 2, 1000);
		if (r < 0 && errno != EINTR) {
			wl_display_cancel_read(c.display);
			return fail("poll: %s", strerror(errno)), 1;
		}
		if (r > 0 && (pfd[0].revents & (POLLIN | POLLERR | POLLHUP))) {
			if (wl_display_read_events(c.display) < 0)
				return wl_fail(&c, "showing frames"), 1;
		} else {
			wl_display_cancel_read(c.display);
		}
		if (wl_display_dispatch_pending(c.display) < 0)
			return wl_fail(&c, "showing frames"), 1;
		if (dmabroker_process(c.b) < 0)
			return fail("lost the connection to dmabrokerd"), 1;
		if (take_frames(&c) < 0)
			return 1;
		if (limit && c.n_shown >= limit)
			break;
		if (c.ended && !c.next.valid && !c.end_reported) {
			c.end_reported = true;
			printf("wayland: stream ended; showing frame %" PRIu64 "\n", c.n_shown);
			fflush(stdout);
			if (exit_on_end)
				break;
		}
	}
	if (c.closed && !c.quiet)
		printf("wayland: the compositor closed the window\n");
	print_summary(&c);
	return 0;
}

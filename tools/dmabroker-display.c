/* SPDX-License-Identifier: MIT */
/*
 * dmabroker-display: shows a dmabroker stream on a KMS output with atomic
 * commits. Each stream buffer is imported once as a framebuffer; per frame
 * the acquire fence goes to the plane as IN_FENCE_FD and the commit's
 * OUT_FENCE_PTR fence goes back as the release fence of the frame it
 * replaces. Keys (libinput): q/Esc quit, space/p pause, Tab/o next output.
 * On vkms it can read the output back through the writeback connector:
 * once at exit (--writeback FILE) or after every flip, compared with the
 * frame's content (--verify), and with the grey image of the camera frame it
 * came from, by sequence number (--verify-grey-of DIR, with dmabroker-camera
 * --save-frames DIR): the check of the whole pipeline, grey stage included.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <drm_fourcc.h>
#include <libinput.h>
#include <linux/input-event-codes.h>
#include <xf86drm.h>
#include <xf86drmMode.h>

#include "dmabroker.h"
#include "tool-util.h"

#define MAX_BUFFERS 16
#define MAX_OUTPUTS 8
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
		"Usage: dmabroker-display [OPTION]...\n"
		"Show a dmabroker stream on a KMS output, as one of its consumers.\n"
		"\n"
		"  -d, --device DEV       DRM device node or driver name, e.g. /dev/dri/card1 or vkms\n"
		"                         (default: the first device with a connected output)\n"
		"  -o, --output NAME      connector, e.g. Virtual-1 (default: the first connected)\n"
		"  -s, --stream NAME      stream to join (default: camera)\n"
		"  -n, --frames N         quit after showing N frames\n"
		"      --exit-on-end      quit when the stream ends (default: keep showing the last frame)\n"
		"  -i, --input WHAT       keyboard: auto (every /dev/input/event*), none, or a device path\n"
		"                         (default: auto)\n"
		"      --writeback FILE   at exit, read the output back through the writeback connector\n"
		"                         (vkms) into FILE as a PPM\n"
		"      --verify           after every flip, read the output back (writeback) and compare it\n"
		"                         with the frame, pixel for pixel\n"
		"      --verify-grey-of DIR\n"
		"                         with --verify, also compare the screen with the grey image of the\n"
		"                         camera frame of the same sequence number, from DIR (written by\n"
		"                         dmabroker-camera --save-frames): YUYV's luma, or XR24's BT.601 luma\n"
		"  -w, --wait SECONDS     wait this long for the stream to be created (default: 30)\n"
		"      --session          use the session bus (default: the system bus)\n"
		"  -q, --quiet            print only errors, key actions and the summary\n"
		"  -h, --help             show this help\n"
		"\n"
		"Keys: q or Esc quit, space or p pause/resume, Tab or o switch to the next connected output.\n"
		"Exit status: 0 when done, 1 on a failure (the message says which), 2 on bad usage.\n");
}

struct output {
	uint32_t connector;
	char name[32];
	drmModeModeInfo modes[64];
	int n_modes;
	uint32_t possible_crtcs;
};

struct held {                           /* a frame we hold */
	bool valid;
	unsigned index;
	uint64_t sequence, timestamp_ns;
	int fence;                      /* its acquire fence, until committed */
};

struct display {
	int fd;
	char path[64], driver[32];
	struct output outputs[MAX_OUTPUTS];
	unsigned n_outputs, cur, prev_output;
	bool switch_output;
	uint32_t crtc, crtc_index, plane, mode_blob;
	drmModeModeInfo mode;
	uint32_t formats[64];
	unsigned n_formats;
	struct {
		uint32_t fb_id, crtc_id, src_x, src_y, src_w, src_h, crtc_x, crtc_y, crtc_w, crtc_h, in_fence;
	} pp;
	uint32_t crtc_mode_id, crtc_active, crtc_out_fence, conn_crtc_id;
	/* writeback */
	uint32_t wb_connector, wb_crtc_id, wb_fb_id_prop, wb_fence_prop;
	uint32_t wb_fb, wb_handle, wb_pitch;
	uint64_t wb_size;
	uint8_t *wb_map;
	int wb_fence;
	bool wb_attached;
	/* the stream */
	struct dmabroker *b;
	struct dmabroker_stream *s;
	uint32_t fb[MAX_BUFFERS];
	bool modeset_done, flip_pending, paused, quit, ended, end_reported;
	struct held shown, pending, next;
	/* input */
	struct libinput *li;
	/* stats */
	uint64_t n_shown, n_skipped, verify_ok, verify_bad, grey_ok, grey_bad, t_first, t_last;
	double *latency_ms;
	unsigned n_latency;
	bool quiet, verify;
	const char *grey_of;            /* --verify-grey-of */
};

static uint32_t prop_id(int fd, uint32_t obj, uint32_t type, const char *name)
{
	drmModeObjectProperties *props = drmModeObjectGetProperties(fd, obj, type);
	uint32_t id = 0;
	for (uint32_t i = 0; props && i < props->count_props && !id; i++) {
		drmModePropertyRes *p = drmModeGetProperty(fd, props->props[i]);
		if (p && strcmp(p->name, name) == 0)
			id = p->prop_id;
		drmModeFreeProperty(p);
	}
	drmModeFreeObjectProperties(props);
	return id;
}

static uint64_t prop_value(int fd, uint32_t obj, uint32_t type, const char *name)
{
	drmModeObjectProperties *props = drmModeObjectGetProperties(fd, obj, type);
	uint64_t v = 0;
	for (uint32_t i = 0; props && i < props->count_props; i++) {
		drmModePropertyRes *p = drmModeGetProperty(fd, props->props[i]);
		if (p && strcmp(p->name, name) == 0)
			v = props->prop_values[i];
		drmModeFreeProperty(p);
	}
	drmModeFreeObjectProperties(props);
	return v;
}

/*
 * Commits need DRM master. The first to open a card is master, but a
 * process looking for its own card among all of them (another display
 * started at the same time) may hold a card it does not want for a moment,
 * master and all, and then this client is not: it takes master once that
 * one lets go. A card another process drives for good (a compositor) is
 * refused after a few seconds, naming why.
 */
static int become_master(struct display *d)
{
	for (int t = 0; t < 500; t++) {
		if (drmIsMaster(d->fd) || drmSetMaster(d->fd) == 0)
			return 0;
		usleep(10 * 1000);
	}
	return fail("%s: cannot become DRM master: another process drives this device (%s)", d->path,
		    strerror(errno));
}

/* Opens dev (a path or a driver name); *ret_fd or -1 with a message. */
static int open_device(struct display *d, const char *dev)
{
	for (int i = 0; i < 16; i++) {
		char path[64];
		drmVersion *v;
		int fd;
		if (dev && dev[0] == '/')
			snprintf(path, sizeof(path), "%s", dev);
		else
			snprintf(path, sizeof(path), "/dev/dri/card%d", i);
		fd = open(path, O_RDWR | O_CLOEXEC);
		if (fd < 0) {
			if (dev && dev[0] == '/')
				return fail("%s: %s", path, strerror(errno));
			continue;
		}
		if (!dev || dev[0] != '/')
			drmDropMaster(fd); /* maybe not ours: its own display may want it now; ours is taken back below */
		v = drmGetVersion(fd);
		if (v && (!dev || dev[0] == '/' || strcmp(v->name, dev) == 0) &&
		    drmSetClientCap(fd, DRM_CLIENT_CAP_ATOMIC, 1) == 0) {
			snprintf(d->path, sizeof(d->path), "%s", path);
			snprintf(d->driver, sizeof(d->driver), "%s", v->name);
			drmFreeVersion(v);
			d->fd = fd;
			drmSetClientCap(fd, DRM_CLIENT_CAP_UNIVERSAL_PLANES, 1);
			drmSetClientCap(fd, DRM_CLIENT_CAP_WRITEBACK_CONNECTORS, 1);
			return become_master(d);
		}
		drmFreeVersion(v);
		close(fd);
		if (dev && dev[0] == '/')
			return fail("%s: not a KMS device with atomic modesetting", path);
	}
	return fail("no KMS device %s%s%s found in /dev/dri", dev ? "with driver '" : "", dev ? dev : "",
		    dev ? "'" : "");
}

static int find_outputs(struct display *d, const char *want)
{
	drmModeRes *res = drmModeGetResources(d->fd);
	if (!res)
		return fail("%s: no KMS resources: %s", d->path, strerror(errno));
	for (int i = 0; i < res->count_connectors; i++) {
		drmModeConnector *c = drmModeGetConnector(d->fd, res->connectors[i]);
		if (!c)
			continue;
		if (c->connector_type == DRM_MODE_CONNECTOR_WRITEBACK) {
			d->wb_connector = c->connector_id;
		} else if (c->connection == DRM_MODE_CONNECTED && c->count_modes > 0 && d->n_outputs < MAX_OUTPUTS) {
			struct output *o = &d->outputs[d->n_outputs++];
			const char *type = drmModeGetConnectorTypeName(c->connector_type);
			o->connector = c->connector_id;
			snprintf(o->name, sizeof(o->name), "%s-%u", type ? type : "Unknown", c->connector_type_id);
			o->n_modes = c->count_modes < 64 ? c->count_modes : 64;
			memcpy(o->modes, c->modes, sizeof(o->modes[0]) * (size_t)o->n_modes);
			for (int e = 0; e < c->count_encoders; e++) {
				drmModeEncoder *enc = drmModeGetEncoder(d->fd, c->encoders[e]);
				if (enc)
					o->possible_crtcs |= enc->possible_crtcs;
				drmModeFreeEncoder(enc);
			}
		}
		drmModeFreeConnector(c);
	}
	if (d->n_outputs == 0) {
		drmModeFreeResources(res);
		return fail("%s (%s): no connected output", d->path, d->driver);
	}
	if (want) {
		unsigned i;
		for (i = 0; i < d->n_outputs && strcmp(d->outputs[i].name, want) != 0; i++)
			;
		if (i == d->n_outputs) {
			drmModeFreeResources(res);
			return fail("%s: no connected output '%s' (connected: %s%s)", d->path, want, d->outputs[0].name,
				    d->n_outputs > 1 ? ", ..." : "");
		}
		d->cur = i;
	}
	for (int i = 0; i < res->count_crtcs; i++)
		if (d->outputs[d->cur].possible_crtcs & (1u << i)) {
			d->crtc = res->crtcs[i];
			d->crtc_index = (uint32_t)i;
			break;
		}
	drmModeFreeResources(res);
	if (!d->crtc)
		return fail("%s: output %s has no CRTC", d->path, d->outputs[d->cur].name);
	return 0;
}

static int find_plane(struct display *d)
{
	drmModePlaneRes *pr = drmModeGetPlaneResources(d->fd);
	for (uint32_t i = 0; pr && i < pr->count_planes && !d->plane; i++) {
		drmModePlane *p = drmModeGetPlane(d->fd, pr->planes[i]);
		if (p && (p->possible_crtcs & (1u << d->crtc_index)) &&
		    prop_value(d->fd, p->plane_id, DRM_MODE_OBJECT_PLANE, "type") == DRM_PLANE_TYPE_PRIMARY) {
			d->plane = p->plane_id;
			d->n_formats = p->count_formats < 64 ? p->count_formats : 64;
			memcpy(d->formats, p->formats, sizeof(uint32_t) * d->n_formats);
		}
		drmModeFreePlane(p);
	}
	drmModeFreePlaneResources(pr);
	if (!d->plane)
		return fail("%s: no primary plane for the CRTC", d->path);
#define PLANE_PROP(field, name) d->pp.field = prop_id(d->fd, d->plane, DRM_MODE_OBJECT_PLANE, name)
	PLANE_PROP(fb_id, "FB_ID"); PLANE_PROP(crtc_id, "CRTC_ID"); PLANE_PROP(src_x, "SRC_X");
	PLANE_PROP(src_y, "SRC_Y"); PLANE_PROP(src_w, "SRC_W"); PLANE_PROP(src_h, "SRC_H");
	PLANE_PROP(crtc_x, "CRTC_X"); PLANE_PROP(crtc_y, "CRTC_Y"); PLANE_PROP(crtc_w, "CRTC_W");
	PLANE_PROP(crtc_h, "CRTC_H"); PLANE_PROP(in_fence, "IN_FENCE_FD");
#undef PLANE_PROP
	d->crtc_mode_id = prop_id(d->fd, d->crtc, DRM_MODE_OBJECT_CRTC, "MODE_ID");
	d->crtc_active = prop_id(d->fd, d->crtc, DRM_MODE_OBJECT_CRTC, "ACTIVE");
	d->crtc_out_fence = prop_id(d->fd, d->crtc, DRM_MODE_OBJECT_CRTC, "OUT_FENCE_PTR");
	d->conn_crtc_id = prop_id(d->fd, d->outputs[d->cur].connector, DRM_MODE_OBJECT_CONNECTOR, "CRTC_ID");
	if (!d->pp.in_fence || !d->crtc_out_fence)
		return fail("%s: no IN_FENCE_FD/OUT_FENCE_PTR: explicit fencing is not supported", d->path);
	if (d->wb_connector) {
		d->wb_crtc_id = prop_id(d->fd, d->wb_connector, DRM_MODE_OBJECT_CONNECTOR, "CRTC_ID");
		d->wb_fb_id_prop = prop_id(d->fd, d->wb_connector, DRM_MODE_OBJECT_CONNECTOR, "WRITEBACK_FB_ID");
		d->wb_fence_prop = prop_id(d->fd, d->wb_connector, DRM_MODE_OBJECT_CONNECTOR, "WRITEBACK_OUT_FENCE_PTR");
	}
	return 0;
}

/* The output's mode for a w x h frame: that size if it has it, else its preferred one. */
static int pick_mode(struct display *d, uint32_t w, uint32_t h)
{
	const struct output *o = &d->outputs[d->cur];
	int best = -1;
	for (int i = 0; i < o->n_modes; i++)
		if (o->modes[i].hdisplay == w && o->modes[i].vdisplay == h &&
		    (best < 0 || (o->modes[i].type & DRM_MODE_TYPE_PREFERRED)))
			best = i;
	for (int i = 0; i < o->n_modes && best < 0; i++)
		if (o->modes[i].type & DRM_MODE_TYPE_PREFERRED)
			best = i;
	if (best < 0)
		best = 0;
	d->mode = o->modes[best];
	if (d->mode_blob)
		drmModeDestroyPropertyBlob(d->fd, d->mode_blob);
	d->mode_blob = 0;
	if (drmModeCreatePropertyBlob(d->fd, &d->mode, sizeof(d->mode), &d->mode_blob) < 0)
		return fail("%s: cannot create the mode blob: %s", d->path, strerror(errno));
	return 0;
}

static int import_buffers(struct display *d)
{
	unsigned n = dmabroker_stream_get_buffer_count(d->s);
	for (unsigned i = 0; i < n; i++) {
		struct dmabroker_buffer *buf = dmabroker_stream_get_buffer(d->s, i);
		uint32_t handles[4] = { 0 }, pitches[4] = { 0 }, offsets[4] = { 0 }, handle;
		uint64_t mods[4] = { 0 };
		unsigned planes = dmabroker_buffer_get_plane_count(buf);
		uint64_t modifier = dmabroker_buffer_get_modifier(buf);
		if (drmPrimeFDToHandle(d->fd, dmabroker_buffer_get_fd(buf), &handle) < 0)
			return fail("%s (%s) cannot import stream buffer %u: %s", d->path, d->driver, i, strerror(errno));
		for (unsigned p = 0; p < planes && p < 4; p++) {
			uint64_t off;
			dmabroker_buffer_get_plane(buf, p, &off, &pitches[p]);
			offsets[p] = (uint32_t)off;
			handles[p] = handle;
			mods[p] = modifier;
		}
		/* linear: no modifier flag, which drivers without modifier support refuse */
		if (drmModeAddFB2WithModifiers(d->fd, dmabroker_buffer_get_width(buf), dmabroker_buffer_get_height(buf),
					       dmabroker_buffer_get_fourcc(buf), handles, pitches, offsets, mods,
					       &d->fb[i], modifier == DRM_FORMAT_MOD_LINEAR ? 0 : DRM_MODE_FB_MODIFIERS) < 0)
			return fail("%s: framebuffer for stream buffer %u: %s", d->path, i, strerror(errno));
	}
	return 0;
}

/* A dumb buffer of the mode's size for the writeback connector. */
static int setup_writeback(struct display *d)
{
	struct drm_mode_create_dumb create = { .width = d->mode.hdisplay, .height = d->mode.vdisplay, .bpp = 32 };
	struct drm_mode_map_dumb map = { 0 };
	uint32_t handles[4] = { 0 }, pitches[4] = { 0 }, offsets[4] = { 0 };

	if (!d->wb_connector || !d->wb_fb_id_prop)
		return fail("%s (%s) has no writeback connector", d->path, d->driver);
	if (drmIoctl(d->fd, DRM_IOCTL_MODE_CREATE_DUMB, &create) < 0)
		return fail("writeback buffer: %s", strerror(errno));
	d->wb_handle = create.handle;
	d->wb_pitch = create.pitch;
	d->wb_size = create.size;
	handles[0] = create.handle;
	pitches[0] = create.pitch;
	if (drmModeAddFB2(d->fd, create.width, create.height, DRM_FORMAT_XRGB8888, handles, pitches, offsets,
			  &d->wb_fb, 0) < 0)
		return fail("writeback framebuffer: %s", strerror(errno));
	map.handle = create.handle;
	if (drmIoctl(d->fd, DRM_IOCTL_MODE_MAP_DUMB, &map) < 0)
		return fail("writeback map: %s", strerror(errno));
	d->wb_map = mmap(NULL, d->wb_size, PROT_READ, MAP_SHARED, d->fd, (off_t)map.offset);
	if (d->wb_map == MAP_FAILED) {
		d->wb_map = NULL;
		return fail("writeback mmap: %s", strerror(errno));
	}
	return 0;
}

/* Commits frame index (with its acquire fence) and, if asked, a writeback. */
static int commit(struct display *d, unsigned index, int in_fence, bool writeback, int *out_fence)
{
	drmModeAtomicReq *req = drmModeAtomicAlloc();
	uint32_t flags = DRM_MODE_ATOMIC_NONBLOCK | DRM_MODE_PAGE_FLIP_EVENT;
	const struct output *o = &d->outputs[d->cur];
	uint32_t w = d->mode.hdisplay, h = d->mode.vdisplay;
	struct dmabroker_buffer *buf = dmabroker_stream_get_buffer(d->s, index);
	uint32_t fw = dmabroker_buffer_get_width(buf), fh = dmabroker_buffer_get_height(buf);
	int32_t out = -1;
	int r;

	if (!req)
		return -ENOMEM;
	if (writeback && !d->wb_attached) {
		/* vkms cannot clone: the writeback connector drives the CRTC alone */
		drmModeAtomicAddProperty(req, o->connector, d->conn_crtc_id, 0);
		drmModeAtomicAddProperty(req, d->wb_connector, d->wb_crtc_id, d->crtc);
		drmModeAtomicAddProperty(req, d->crtc, d->crtc_mode_id, d->mode_blob);
		drmModeAtomicAddProperty(req, d->crtc, d->crtc_active, 1);
		flags |= DRM_MODE_ATOMIC_ALLOW_MODESET;
	} else if (!d->modeset_done || d->switch_output) {
		if (d->switch_output)
			drmModeAtomicAddProperty(req, d->outputs[d->prev_output].connector, d->conn_crtc_id, 0);
		/* a writeback connector an earlier client left on the CRTC, with no job, fails the check */
		if (d->wb_connector && d->wb_crtc_id && !d->wb_attached)
			drmModeAtomicAddProperty(req, d->wb_connector, d->wb_crtc_id, 0);
		drmModeAtomicAddProperty(req, o->connector, d->conn_crtc_id, d->crtc);
		drmModeAtomicAddProperty(req, d->crtc, d->crtc_mode_id, d->mode_blob);
		drmModeAtomicAddProperty(req, d->crtc, d->crtc_active, 1);
		flags |= DRM_MODE_ATOMIC_ALLOW_MODESET;
	}
	drmModeAtomicAddProperty(req, d->plane, d->pp.fb_id, d->fb[index]);
	drmModeAtomicAddProperty(req, d->plane, d->pp.crtc_id, d->crtc);
	drmModeAtomicAddProperty(req, d->plane, d->pp.src_x, 0);
	drmModeAtomicAddProperty(req, d->plane, d->pp.src_y, 0);
	drmModeAtomicAddProperty(req, d->plane, d->pp.src_w, (uint64_t)(fw < w ? fw : w) << 16);
	drmModeAtomicAddProperty(req, d->plane, d->pp.src_h, (uint64_t)(fh < h ? fh : h) << 16);
	drmModeAtomicAddProperty(req, d->plane, d->pp.crtc_x, 0);
	drmModeAtomicAddProperty(req, d->plane, d->pp.crtc_y, 0);
	drmModeAtomicAddProperty(req, d->plane, d->pp.crtc_w, fw < w ? fw : w);
	drmModeAtomicAddProperty(req, d->plane, d->pp.crtc_h, fh < h ? fh : h);
	if (in_fence >= 0)
		drmModeAtomicAddProperty(req, d->plane, d->pp.in_fence, (uint64_t)in_fence);
	drmModeAtomicAddProperty(req, d->crtc, d->crtc_out_fence, (uint64_t)(uintptr_t)&out);
	if (writeback) {
		drmModeAtomicAddProperty(req, d->wb_connector, d->wb_fb_id_prop, d->wb_fb);
		drmModeAtomicAddProperty(req, d->wb_connector, d->wb_fence_prop, (uint64_t)(uintptr_t)&d->wb_fence);
	}
	r = drmModeAtomicCommit(d->fd, req, flags, d);
	drmModeAtomicFree(req);
	if (r < 0) {
		r = -errno;
		if (out >= 0)
			close(out);
		return r;
	}
	d->modeset_done = true;
	d->switch_output = false;
	if (writeback)
		d->wb_attached = true;
	*out_fence = out;
	return 0;
}

static void release(struct display *d, struct held *h, int fence)
{
	if (!h->valid)
		return;
	dmabroker_stream_release(d->s, h->index, fence);
	if (h->fence >= 0)
		close(h->fence);
	h->valid = false;
	h->fence = -1;
}

/* Shows d->next if it can: no flip in flight, not paused. */
static int show_next(struct display *d)
{
	int out = -1, r;

	if (!d->next.valid || d->flip_pending || d->wb_fence >= 0)
		return 0;
	r = commit(d, d->next.index, d->next.fence, d->verify, &out);
	if (r < 0) {
		const struct output *o = &d->outputs[d->cur];
		return fail("%s: showing a %ux%u frame on %s (%ux%u): atomic commit: %s", d->path,
			    dmabroker_stream_get_width(d->s), dmabroker_stream_get_height(d->s), o->name,
			    d->mode.hdisplay, d->mode.vdisplay, strerror(-r));
	}
	/* the frame on screen is free once the new one is: the commit's out fence */
	release(d, &d->shown, out);
	if (out >= 0)
		close(out);
	if (d->next.fence >= 0)
		close(d->next.fence);
	d->next.fence = -1;
	d->pending = d->next;
	d->next.valid = false;
	d->flip_pending = true;
	return 0;
}

/* Takes frames from the stream: fifo in order, mailbox the newest. */
static int take_frames(struct display *d)
{
	bool fifo = dmabroker_stream_get_mode(d->s) == DMABROKER_STREAM_FIFO;
	struct dmabroker_frame f;
	int r;

	while (!(fifo && d->next.valid) && (r = dmabroker_stream_acquire(d->s, &f)) == 0) {
		if (d->paused) {
			release(d, &(struct held){ .valid = true, .index = f.index, .fence = f.fence }, -1);
			d->n_skipped++;
			continue;
		}
		if (d->next.valid) { /* replaced before it was shown */
			release(d, &d->next, -1);
			d->n_skipped++;
		}
		d->next = (struct held){ .valid = true, .index = f.index, .sequence = f.sequence,
					 .timestamp_ns = f.timestamp_ns, .fence = f.fence };
	}
	if (fifo && d->next.valid)
		r = -EAGAIN;
	if (r == -EPIPE) {
		d->ended = true;
		r = 0;
	} else if (r == -EAGAIN) {
		r = 0;
	} else if (r < 0) {
		return fail("stream: %s", dmabroker_error_message(d->b));
	}
	return show_next(d);
}

/*
 * The screen (the writeback, w x h of it) against the grey image of the source frame of the frame shown:
 * grey-of/frame-SEQUENCE.raw, as dmabroker-camera --save-frames wrote it. The expected image is computed here,
 * from the definition of the grey stage, not taken from the stage: every pixel y,y,y with y the source's luma
 * (YUYV: its Y; XR24/AR24: (77 R + 150 G + 29 B) >> 8, BT.601).
 */
static void compare_grey_of(struct display *d, uint32_t w, uint32_t h)
{
	char path[4096], fcc[8];
	uint32_t sw = 0, sh = 0, bpp = 0;
	uint64_t bad = 0;
	uint8_t *row = NULL;
	const char *why = NULL;
	FILE *f;

	snprintf(path, sizeof(path), "%s/frame-%" PRIu64 ".raw", d->grey_of, d->shown.sequence);
	f = fopen(path, "re");
	if (!f)
		why = "no source frame";
	else if (fscanf(f, "DMBF %7s %u %u", fcc, &sw, &sh) != 3 || fgetc(f) != '\n')
		why = "not a frame file";
	else if (!(bpp = !strcmp(fcc, "YUYV") ? 2 : !strcmp(fcc, "XR24") || !strcmp(fcc, "AR24") ? 4 : 0))
		why = "a format other than YUYV, XR24, AR24";
	else if (sw != dmabroker_stream_get_width(d->s) || sh != dmabroker_stream_get_height(d->s))
		why = "a size other than the stream's";
	else if (!(row = malloc((size_t)sw * bpp)))
		why = "out of memory";
	for (uint32_t y = 0; !why && y < h; y++) {
		const uint32_t *screen = (const uint32_t *)(d->wb_map + (size_t)y * d->wb_pitch);
		if (fread(row, bpp, sw, f) != sw) {
			why = "a short frame file";
			break;
		}
		for (uint32_t x = 0; x < w; x++) {
			const uint8_t *p = row + (size_t)x * bpp;
			uint32_t l = bpp == 2 ? p[0] : (77u * p[2] + 150u * p[1] + 29u * p[0]) >> 8;
			bad += (screen[x] & 0xffffff) != (l << 16 | l << 8 | l);
		}
	}
	free(row);
	if (f)
		fclose(f);
	if (why || bad) {
		d->grey_bad++;
		if (why)
			fprintf(stderr, "display: frame %" PRIu64 ": %s: %s\n", d->shown.sequence, path, why);
		else
			fprintf(stderr, "display: frame %" PRIu64 ": %" PRIu64 " pixels on screen are not the grey of "
				"the camera's frame\n", d->shown.sequence, bad);
	} else {
		d->grey_ok++;
	}
}

static int compare_writeback(struct display *d)
{
	struct dmabroker_buffer *buf = dmabroker_stream_get_buffer(d->s, d->shown.index);
	uint32_t w = dmabroker_buffer_get_width(buf), h = dmabroker_buffer_get_height(buf);
	uint64_t offset;
	uint32_t stride;
	const uint8_t *src;
	void *map;
	uint64_t bad = 0;

	if (w > d->mode.hdisplay)
		w = d->mode.hdisplay;
	if (h > d->mode.vdisplay)
		h = d->mode.vdisplay;
	dmabroker_buffer_get_plane(buf, 0, &offset, &stride);
	if (dmabroker_stream_cpu_begin(d->s, d->shown.index, DMABROKER_ACCESS_READ, -1, 1000, &map) < 0)
		return fail("--verify: cannot map the frame");
	src = (const uint8_t *)map + offset;
	for (uint32_t y = 0; y < h; y++) {
		const uint32_t *a = (const uint32_t *)(src + (size_t)y * stride);
		const uint32_t *b = (const uint32_t *)(d->wb_map + (size_t)y * d->wb_pitch);
		for (uint32_t x = 0; x < w; x++)
			bad += (a[x] & 0xffffff) != (b[x] & 0xffffff);
	}
	dmabroker_stream_cpu_end(d->s, d->shown.index);
	if (d->grey_of)
		compare_grey_of(d, w, h);
	if (bad) {
		d->verify_bad++;
		fprintf(stderr, "display: frame %" PRIu64 ": %" PRIu64 " pixels on screen differ from the frame\n",
			d->shown.sequence, bad);
	} else {
		d->verify_ok++;
	}
	return 0;
}

static void on_flip(int fd, unsigned seq, unsigned sec, unsigned usec, void *data)
{
	struct display *d = data;
	uint64_t t = (uint64_t)sec * 1000000000u + (uint64_t)usec * 1000u;
	(void)fd;
	(void)seq;
	d->flip_pending = false;
	if (!d->pending.valid)
		return; /* a redraw of the frame on screen */
	d->shown = d->pending;
	d->pending.valid = false;
	d->n_shown++;
	if (!d->t_first)
		d->t_first = t;
	d->t_last = t;
	if (getenv("DMABROKER_DEBUG_LATENCY"))
		fprintf(stderr, "flip %" PRIu64 " frame %" PRIu64 " now %" PRIu64 "\n", t, d->shown.timestamp_ns, monotonic_ns());
	if (d->shown.timestamp_ns && t > d->shown.timestamp_ns && d->n_latency < MAX_SAMPLES)
		d->latency_ms[d->n_latency++] = (double)(t - d->shown.timestamp_ns) / 1e6;
}

/* ---- keys ---- */

static int open_restricted(const char *path, int flags, void *user)
{
	int fd = open(path, flags | O_CLOEXEC);
	(void)user;
	return fd < 0 ? -errno : fd;
}

static void close_restricted(int fd, void *user)
{
	(void)user;
	close(fd);
}

static const struct libinput_interface input_iface = { open_restricted, close_restricted };

static int setup_input(struct display *d, const char *what)
{
	unsigned keyboards = 0;

	if (strcmp(what, "none") == 0)
		return 0;
	d->li = libinput_path_create_context(&input_iface, NULL);
	if (!d->li)
		return fail("libinput: cannot create a context");
	if (strcmp(what, "auto") == 0) {
		DIR *dir = opendir("/dev/input");
		struct dirent *e;
		while (dir && (e = readdir(dir))) {
			char path[300];
			struct libinput_device *dev;
			if (strncmp(e->d_name, "event", 5) != 0)
				continue;
			snprintf(path, sizeof(path), "/dev/input/%s", e->d_name);
			dev = libinput_path_add_device(d->li, path);
			if (dev && libinput_device_has_capability(dev, LIBINPUT_DEVICE_CAP_KEYBOARD))
				keyboards++;
			else if (dev)
				libinput_path_remove_device(dev);
		}
		if (dir)
			closedir(dir);
	} else {
		struct libinput_device *dev = libinput_path_add_device(d->li, what);
		if (!dev)
			return fail("--input %s: libinput cannot use it (not an evdev device, or no udev data)", what);
		keyboards += libinput_device_has_capability(dev, LIBINPUT_DEVICE_CAP_KEYBOARD);
	}
	if (!d->quiet || keyboards)
		printf("display: %u keyboard(s): q quit, space pause, Tab next output\n", keyboards);
	return 0;
}

static void next_output(struct display *d)
{
	unsigned next = (d->cur + 1) % d->n_outputs;
	if (d->n_outputs == 1) {
		printf("display: output %s is the only connected one\n", d->outputs[d->cur].name);
		return;
	}
	if (!(d->outputs[next].possible_crtcs & (1u << d->crtc_index))) {
		printf("display: output %s cannot use this CRTC; staying on %s\n", d->outputs[next].name,
		       d->outputs[d->cur].name);
		return;
	}
	d->prev_output = d->cur;
	d->cur = next;
	d->switch_output = true;
	pick_mode(d, dmabroker_stream_get_width(d->s), dmabroker_stream_get_height(d->s));
	printf("display: output %s (%ux%u)\n", d->outputs[d->cur].name, d->mode.hdisplay, d->mode.vdisplay);
	/* show the current frame there now, even while paused */
	if (!d->next.valid && d->shown.valid && !d->flip_pending) {
		int out = -1;
		if (commit(d, d->shown.index, -1, false, &out) == 0) {
			d->flip_pending = true;
			if (out >= 0)
				close(out);
		}
	}
}

static void handle_input(struct display *d)
{
	struct libinput_event *ev;

	libinput_dispatch(d->li);
	while ((ev = libinput_get_event(d->li))) {
		if (libinput_event_get_type(ev) == LIBINPUT_EVENT_KEYBOARD_KEY) {
			struct libinput_event_keyboard *k = libinput_event_get_keyboard_event(ev);
			if (libinput_event_keyboard_get_key_state(k) == LIBINPUT_KEY_STATE_PRESSED) {
				switch (libinput_event_keyboard_get_key(k)) {
				case KEY_Q:
				case KEY_ESC:
					printf("display: quit\n");
					d->quit = true;
					break;
				case KEY_SPACE:
				case KEY_P:
					d->paused = !d->paused;
					printf("display: %s\n", d->paused ? "paused" : "resumed");
					break;
				case KEY_TAB:
				case KEY_O:
					next_output(d);
					break;
				default:
					break;
				}
				fflush(stdout);
			}
		}
		libinput_event_destroy(ev);
	}
}

/* ---- exit ---- */

static double pct(const double *v, unsigned n, double p)
{
	unsigned i = (unsigned)(p / 100.0 * (n - 1) + 0.5);
	return n ? v[i < n ? i : n - 1] : 0;
}

static void print_summary(struct display *d)
{
	double secs = d->t_last > d->t_first ? (double)(d->t_last - d->t_first) / 1e9 : 0;
	printf("display: %s on %s (%s): %" PRIu64 " frames shown in %.2f s (%.1f fps), %" PRIu64 " skipped\n",
	       d->outputs[d->cur].name, d->path, d->driver, d->n_shown, secs,
	       secs > 0 ? (double)(d->n_shown - 1) / secs : 0.0, d->n_skipped);
	if (d->n_latency) {
		qsort(d->latency_ms, d->n_latency, sizeof(double), cmp_double);
		printf("display: latency capture to flip: p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms "
		       "(%u frames)\n", pct(d->latency_ms, d->n_latency, 50), pct(d->latency_ms, d->n_latency, 90),
		       pct(d->latency_ms, d->n_latency, 99), d->latency_ms[d->n_latency - 1], d->n_latency);
	}
	if (d->verify)
		printf("display: writeback check: %" PRIu64 " frames identical on screen, %" PRIu64 " differ\n",
		       d->verify_ok, d->verify_bad);
	if (d->grey_of)
		printf("display: grey check: %" PRIu64 " frames on screen are the grey of their camera frame, %" PRIu64
		       " differ\n", d->grey_ok, d->grey_bad);
}

/* Reads the output back once, into path. */
static int writeback_to_file(struct display *d, const char *path)
{
	int out = -1, r;
	struct pollfd pfd;

	if (!d->shown.valid)
		return fail("--writeback: no frame was shown");
	while (d->flip_pending) {
		drmEventContext ev = { .version = 2, .page_flip_handler = on_flip };
		pfd = (struct pollfd){ .fd = d->fd, .events = POLLIN };
		if (poll(&pfd, 1, 2000) <= 0)
			return fail("--writeback: the last flip did not complete");
		drmHandleEvent(d->fd, &ev);
	}
	r = commit(d, d->shown.index, -1, true, &out);
	if (r < 0)
		return fail("--writeback: atomic commit: %s", strerror(-r));
	if (out >= 0)
		close(out);
	d->flip_pending = true;
	pfd = (struct pollfd){ .fd = d->wb_fence, .events = POLLIN };
	if (poll(&pfd, 1, 5000) <= 0)
		return fail("--writeback: the writeback did not complete in 5 s");
	r = write_ppm_xrgb(path, d->wb_map, d->mode.hdisplay, d->mode.vdisplay, d->wb_pitch);
	if (r < 0)
		return fail("%s: %s", path, strerror(-r));
	printf("display: output read back through writeback into %s\n", path);
	return 0;
}

static struct display *cleanup_display;

/*
 * Gives the CRTC back to the output connector when the writeback connector
 * drives it (vkms cannot clone): a writeback connector left on the CRTC
 * makes the next DRM master's commits fail (Weston 10: "atomic: couldn't
 * commit new state: Invalid argument"), as it knows no writeback connector.
 */
static void detach_writeback(struct display *d)
{
	drmModeAtomicReq *req;

	if (!d->wb_attached || d->fd < 0 || !(req = drmModeAtomicAlloc()))
		return;
	while (d->flip_pending) { /* the writeback's commit, if it has not completed */
		drmEventContext ev = { .version = 2, .page_flip_handler = on_flip };
		if (poll(&(struct pollfd){ .fd = d->fd, .events = POLLIN }, 1, 2000) <= 0)
			break;
		drmHandleEvent(d->fd, &ev);
	}
	drmModeAtomicAddProperty(req, d->wb_connector, d->wb_crtc_id, 0);
	drmModeAtomicAddProperty(req, d->outputs[d->cur].connector, d->conn_crtc_id, d->crtc);
	drmModeAtomicAddProperty(req, d->crtc, d->crtc_mode_id, d->mode_blob);
	drmModeAtomicAddProperty(req, d->crtc, d->crtc_active, 1);
	if (drmModeAtomicCommit(d->fd, req, DRM_MODE_ATOMIC_ALLOW_MODESET, NULL) < 0)
		fprintf(stderr, "display: warning: cannot give the CRTC back to %s from the writeback connector: %s\n",
			d->outputs[d->cur].name, strerror(errno));
	else
		d->wb_attached = false;
	drmModeAtomicFree(req);
}

/* On every exit, also the early ones: nothing left for the leak checkers. */
static void cleanup(void)
{
	struct display *d = cleanup_display;
	if (!d)
		return;
	detach_writeback(d);
	if (d->s) {
		release(d, &d->next, -1);
		release(d, &d->pending, -1);
		release(d, &d->shown, -1);
	}
	dmabroker_stream_destroy(d->s);
	dmabroker_disconnect(d->b);
	if (d->li)
		libinput_unref(d->li);
	if (d->wb_map)
		munmap(d->wb_map, d->wb_size);
	if (d->wb_fence >= 0)
		close(d->wb_fence);
	if (d->fd >= 0)
		close(d->fd);
	free(d->latency_ms);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "device", required_argument, NULL, 'd' }, { "output", required_argument, NULL, 'o' },
		{ "stream", required_argument, NULL, 's' }, { "frames", required_argument, NULL, 'n' },
		{ "exit-on-end", no_argument, NULL, 'E' },  { "input", required_argument, NULL, 'i' },
		{ "writeback", required_argument, NULL, 'B' }, { "verify", no_argument, NULL, 'V' },
		{ "session", no_argument, NULL, 'S' },      { "wait", required_argument, NULL, 'w' },
		{ "quiet", no_argument, NULL, 'q' },        { "verify-grey-of", required_argument, NULL, 'G' },
		{ "help", no_argument, NULL, 'h' },         { 0 },
	};
	static struct display d = { .fd = -1, .wb_fence = -1 };  /* cleanup() runs after main returns */
	const char *device = NULL, *output = NULL, *stream = "camera", *input = "auto", *wb_file = NULL;
	uint32_t limit = 0;
	uint32_t wait_s = 30;
	bool session = false, exit_on_end = false;
	char name[5];
	int opt, r;

	while ((opt = getopt_long(argc, argv, "d:o:s:n:i:w:qh", opts, NULL)) != -1) {
		switch (opt) {
		case 'd': device = optarg; break;
		case 'o': output = optarg; break;
		case 's': stream = optarg; break;
		case 'n':
			if (!parse_u32(optarg, 1, UINT32_MAX, &limit))
				return usage_error("dmabroker-display", "--frames: a positive number");
			break;
		case 'E': exit_on_end = true; break;
		case 'i': input = optarg; break;
		case 'B': wb_file = optarg; break;
		case 'V': d.verify = true; break;
		case 'G': d.grey_of = optarg; break;
		case 'S': session = true; break;
		case 'w':
			if (!parse_u32(optarg, 0, 86400, &wait_s))
				return usage_error("dmabroker-display", "--wait: 0 to 86400 seconds");
			break;
		case 'q': d.quiet = true; break;
		case 'h': usage(stdout); return 0;
		default: return usage_error("dmabroker-display", NULL);
		}
	}
	if (optind < argc)
		return usage_error("dmabroker-display", "unexpected argument '%s'", argv[optind]);
	if (d.grey_of && !d.verify)
		return usage_error("dmabroker-display", "--verify-grey-of needs --verify");
	set_tool_name("display");
	d.shown.fence = d.pending.fence = d.next.fence = -1;
	cleanup_display = &d;
	atexit(cleanup);
	d.latency_ms = calloc(MAX_SAMPLES, sizeof(double));
	if (!d.latency_ms || open_device(&d, device) < 0 || find_outputs(&d, output) < 0 || find_plane(&d) < 0)
		return 1;
	if (setup_input(&d, input) < 0)
		return 1;

	r = dmabroker_connect(session ? DMABROKER_BUS_SESSION : DMABROKER_BUS_SYSTEM, &d.b);
	if (r < 0)
		return fail("cannot reach dmabrokerd on the %s bus: %s", session ? "session" : "system", strerror(-r)), 1;
	{
		char label[48];
		const char *devices[] = { d.path };
		struct dmabroker_stream_desc sd = {
			.version = DMABROKER_STREAM_DESC_VERSION, .name = stream, .label = label,
			.usage = DMABROKER_USAGE_SCANOUT_FLAG, .formats = d.formats, .n_formats = d.n_formats,
			.devices = devices, .n_devices = 1, .max_acquired = 2,
		};
		snprintf(label, sizeof(label), "display:%s", d.driver);
		r = join_stream(d.b, &sd, wait_s, &got_signal, &d.s);
	}
	if (r < 0)
		return fail_stream(d.b, "joining stream", stream), 1;
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	while (!got_signal && (r = dmabroker_stream_wait_ready(d.s, 200)) == -ETIMEDOUT)
		;
	if (got_signal)
		return 0;
	if (r < 0)
		return fail_stream(d.b, "stream", stream), 1;
	if (pick_mode(&d, dmabroker_stream_get_width(d.s), dmabroker_stream_get_height(d.s)) < 0 ||
	    import_buffers(&d) < 0 || ((wb_file || d.verify) && setup_writeback(&d) < 0))
		return 1;
	if (!d.quiet)
		printf("display: %s (%s) output %s %ux%u: stream '%s' %ux%u %s, %u buffers on %s\n", d.path, d.driver,
		       d.outputs[d.cur].name, d.mode.hdisplay, d.mode.vdisplay, stream, dmabroker_stream_get_width(d.s),
		       dmabroker_stream_get_height(d.s), fourcc_name(dmabroker_stream_get_fourcc(d.s), name),
		       dmabroker_stream_get_buffer_count(d.s), dmabroker_stream_get_backend(d.s));
	fflush(stdout);

	while (!d.quit && !got_signal) {
		drmEventContext ev = { .version = 2, .page_flip_handler = on_flip };
		struct pollfd pfd[4] = {
			{ .fd = d.fd, .events = POLLIN },
			{ .fd = dmabroker_get_fd(d.b), .events = POLLIN },
			{ .fd = d.li ? libinput_get_fd(d.li) : -1, .events = POLLIN },
			{ .fd = d.wb_fence, .events = POLLIN },
		};
		r = poll(pfd, 4, 1000);
		if (r < 0 && errno != EINTR)
			return fail("poll: %s", strerror(errno)), 1;
		if (pfd[0].revents & POLLIN)
			drmHandleEvent(d.fd, &ev);
		if (pfd[2].revents & POLLIN)
			handle_input(&d);
		if (d.wb_fence >= 0 && (pfd[3].revents & POLLIN) && !d.flip_pending) {
			close(d.wb_fence);
			d.wb_fence = -1;
			if (compare_writeback(&d) < 0)
				return 1;
		}
		if (dmabroker_process(d.b) < 0)
			return fail("lost the connection to dmabrokerd"), 1;
		if (take_frames(&d) < 0)
			return 1;
		if (limit && d.n_shown >= limit)
			break;
		if (d.ended && !d.next.valid && !d.flip_pending && d.wb_fence < 0 && !d.end_reported) {
			d.end_reported = true;
			printf("display: stream ended; showing frame %" PRIu64 "\n", d.shown.sequence);
			fflush(stdout);
			if (exit_on_end)
				break;
		}
	}
	if (wb_file && writeback_to_file(&d, wb_file) < 0)
		return 1;
	print_summary(&d);
	return d.verify_bad || d.grey_bad ? 1 : 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * DRM: dumb buffers on a KMS device (vkms, virtio-gpu, bochs, ...) or GEM
 * buffers on vgem, exported with PRIME. Devices are chosen by path or by
 * driver name ([backends] drm-devices); by default every card is probed.
 * The daemon drops DRM master at once, so it never stands in a
 * compositor's way.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <xf86drm.h>
#include <xf86drmMode.h>

#include "backend.h"
#include "cleanup.h"
#include "config.h"

static int drm_alloc(struct backend *b, const struct alloc_request *req, struct layout *layout)
{
	const struct format_info *f = req->format;
	struct drm_mode_create_dumb dumb = { 0 };
	struct drm_mode_destroy_dumb destroy = { 0 };
	int r = backend_layout(b, req, layout), fd = -1;
	bool native;

	if (r < 0)
		return r;
	/* Dumb buffers are made of 32-bit pixels on some drivers (virtio-gpu
	 * takes nothing else). A 32-bit RGB format gets the driver's own pitch
	 * (the one it scans out with); anything else is laid out by us in a
	 * dumb buffer of 32-bit "pixels" wide enough for our stride. */
	native = f->n_planes == 1 && f->plane[0].bytes_per_block == 4 && f->plane[0].block_width == 1;
	dumb.bpp = 32;
	if (native) {
		dumb.width = req->width;
		dumb.height = req->height;
	} else {
		dumb.width = layout->plane[0].stride / 4; /* strides are 64-byte aligned */
		dumb.height = (uint32_t)((layout->size + layout->plane[0].stride - 1) / layout->plane[0].stride);
	}
	if (drmIoctl(b->fd, DRM_IOCTL_MODE_CREATE_DUMB, &dumb) < 0)
		return -errno;
	destroy.handle = dumb.handle;
	if (native) {
		layout->plane[0].stride = dumb.pitch;
		layout->size = dumb.size;
		if (layout->size > req->max_size)
			r = -E2BIG;
	} else if (dumb.pitch != layout->plane[0].stride || dumb.size < layout->size) {
		r = -ENOSPC;
	}
	if (r == 0 && drmPrimeHandleToFD(b->fd, dumb.handle, DRM_CLOEXEC | DRM_RDWR, &fd) < 0)
		r = -errno;
	/* The dma-buf holds its own reference to the object. */
	drmIoctl(b->fd, DRM_IOCTL_MODE_DESTROY_DUMB, &destroy);
	return r < 0 ? r : fd;
}

static const struct backend_ops drm_ops = { .kind = "drm", .alloc = drm_alloc };

static bool can_create_dumb(int fd)
{
	struct drm_mode_create_dumb dumb = { .width = 16, .height = 16, .bpp = 32 };
	struct drm_mode_destroy_dumb destroy = { 0 };

	if (drmIoctl(fd, DRM_IOCTL_MODE_CREATE_DUMB, &dumb) < 0)
		return false;
	destroy.handle = dumb.handle;
	drmIoctl(fd, DRM_IOCTL_MODE_DESTROY_DUMB, &destroy);
	return true;
}

static bool wanted(const struct config *c, const char *path, const char *driver)
{
	if (c->n_drm_devices == 0)
		return true;
	for (unsigned i = 0; i < c->n_drm_devices; i++)
		if (strcmp(c->drm_devices[i], path) == 0 || strcmp(c->drm_devices[i], driver) == 0)
			return true;
	return false;
}

void backend_drm_probe(struct backends *bs, const struct config *c, struct backend ***tail)
{
	unsigned found = 0;

	for (int i = 0; i < 16; i++) {
		char path[64], name[64];
		uint64_t dumb = 0, prime = 0;
		drmVersionPtr v;
		drmModeResPtr res;
		struct backend *b;
		int fd;

		snprintf(path, sizeof(path), "/dev/dri/card%d", i);
		fd = open(path, O_RDWR | O_CLOEXEC);
		if (fd < 0) {
			if (errno != ENOENT)
				backends_note(bs, "drm", "drm", path, false, "cannot open: %s", strerror(errno));
			continue;
		}
		found++;
		drmDropMaster(fd);
		v = drmGetVersion(fd);
		snprintf(name, sizeof(name), "drm:%.50s", v ? v->name : "unknown");
		if (!v || !wanted(c, path, v->name)) {
			backends_note(bs, name, "drm", path, false, "not in [backends] drm-devices");
			drmFreeVersion(v);
			close(fd);
			continue;
		}
		/* DRM_CAP_DUMB_BUFFER is a KMS cap: GEM-only drivers (vgem)
		 * refuse it, yet create dumb buffers. Ask those by trying. */
		if (drmGetCap(fd, DRM_CAP_DUMB_BUFFER, &dumb) < 0)
			dumb = can_create_dumb(fd);
		if (!dumb || drmGetCap(fd, DRM_CAP_PRIME, &prime) < 0 || !(prime & DRM_PRIME_CAP_EXPORT)) {
			backends_note(bs, name, "drm", path, false, "no dumb buffers or no PRIME export");
			drmFreeVersion(v);
			close(fd);
			continue;
		}
		b = backend_new(&drm_ops, name, path, fd);
		if (!b) {
			drmFreeVersion(v);
			close(fd);
			continue;
		}
		snprintf(b->driver, sizeof(b->driver), "%.31s", v->name);
		res = drmModeGetResources(fd);
		b->kms = res && res->count_crtcs > 0;
		drmModeFreeResources(res);
		**tail = b;
		*tail = &b->next;
		backends_note(bs, name, "drm", path, true, "%s, dumb buffers exported with PRIME",
			      b->kms ? "KMS device" : "GEM only, no display");
		drmFreeVersion(v);
	}
	if (!found)
		backends_note(bs, "drm", "drm", "/dev/dri", false, "no DRM card (no /dev/dri/card*)");
}

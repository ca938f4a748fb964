/* SPDX-License-Identifier: MIT */
/*
 * scanout-read: written for the weston-fullscreen test. It reads what a
 * CRTC's primary plane scans out while another process (Weston) is DRM
 * master: the plane's framebuffer (drmModeGetFB2, whose handles root gets
 * without being master), mapped through the dumb-buffer map of its GEM
 * object, written as a PPM of the framebuffer's size. With a fullscreen
 * view on the plane (direct scanout) that framebuffer is the client's own
 * buffer, not a composite. vkms's writeback connector would need the
 * master's commit.
 *
 * Prints "scanout: plane P fb F WxH FOURCC" and exits 0; 1 with a message.
 *
 * usage: scanout-read DRIVER OUT.ppm
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <drm_fourcc.h>
#include <xf86drm.h>
#include <xf86drmMode.h>

#include "drm-find.h"

static int fail(const char *what)
{
	fprintf(stderr, "scanout-read: %s: %s\n", what, strerror(errno));
	return 1;
}

int main(int argc, char **argv)
{
	drmModePlaneResPtr planes;
	drmModeFB2Ptr fb = NULL;
	uint32_t plane_id = 0;
	struct drm_mode_map_dumb map = { 0 };
	uint8_t *p;
	size_t size;
	FILE *f;
	int fd;

	if (argc != 3)
		return fprintf(stderr, "usage: scanout-read DRIVER OUT.ppm\n"), 2;
	fd = open_drm_by_driver(argv[1]);
	if (fd < 0)
		return fprintf(stderr, "scanout-read: no %s card\n", argv[1]), 1;
	drmSetClientCap(fd, DRM_CLIENT_CAP_UNIVERSAL_PLANES, 1);
	planes = drmModeGetPlaneResources(fd);
	if (!planes)
		return fail("drmModeGetPlaneResources");
	/* the first plane with a framebuffer: vkms's primary (its cursor and overlays come later and are unused) */
	for (uint32_t i = 0; i < planes->count_planes && !fb; i++) {
		drmModePlanePtr pl = drmModeGetPlane(fd, planes->planes[i]);
		if (pl && pl->fb_id) {
			plane_id = pl->plane_id;
			fb = drmModeGetFB2(fd, pl->fb_id);
		}
		drmModeFreePlane(pl);
	}
	drmModeFreePlaneResources(planes);
	if (!fb)
		return fprintf(stderr, "scanout-read: no plane of %s scans out a framebuffer\n", argv[1]), 1;
	if (!fb->handles[0])
		return fprintf(stderr, "scanout-read: no handle for fb %u (not root?)\n", fb->fb_id), 1;
	if (fb->pixel_format != DRM_FORMAT_XRGB8888 && fb->pixel_format != DRM_FORMAT_ARGB8888)
		return fprintf(stderr, "scanout-read: fb %u is not XRGB8888/ARGB8888\n", fb->fb_id), 1;
	map.handle = fb->handles[0];
	if (drmIoctl(fd, DRM_IOCTL_MODE_MAP_DUMB, &map) < 0)
		return fail("DRM_IOCTL_MODE_MAP_DUMB");
	size = (size_t)fb->offsets[0] + (size_t)fb->pitches[0] * fb->height;
	p = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, (off_t)map.offset);
	if (p == MAP_FAILED)
		return fail("mmap");
	f = fopen(argv[2], "we");
	if (!f)
		return fail(argv[2]);
	fprintf(f, "P6\n%u %u\n255\n", fb->width, fb->height);
	for (uint32_t y = 0; y < fb->height; y++)
		for (uint32_t x = 0; x < fb->width; x++) {
			const uint8_t *px = p + fb->offsets[0] + (size_t)y * fb->pitches[0] + (size_t)x * 4;
			fputc(px[2], f), fputc(px[1], f), fputc(px[0], f);
		}
	if (fclose(f) != 0)
		return fail(argv[2]);
	printf("scanout: plane %u fb %u %ux%u %s\n", plane_id, fb->fb_id, fb->width, fb->height,
	       fb->pixel_format == DRM_FORMAT_XRGB8888 ? "XR24" : "AR24");
	munmap(p, size);
	drmModeFreeFB2(fb);
	close(fd);
	return 0;
}

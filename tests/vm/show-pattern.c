/* SPDX-License-Identifier: MIT */
/*
 * show-pattern DRIVER SCREENDUMP-CMD...: scan out a known pattern on the first
 * connected output of the DRM device driven by DRIVER (a dumb buffer and a
 * legacy mode set), run SCREENDUMP-CMD while the pattern is on screen, then
 * print "WIDTHxHEIGHT". The pattern: eight vertical bars, bar i of colour
 * bar_colour(i) below. Used by tests/vm/runner-test.py to check that a qemu
 * screendump shows the scanout pixel for pixel.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <xf86drm.h>
#include <xf86drmMode.h>

#include "drm-find.h"

static uint32_t bar_colour(unsigned i)
{
	static const uint32_t c[8] = { 0xff0000, 0x00ff00, 0x0000ff, 0xffffff,
				       0x000000, 0x808080, 0x12345a, 0xa5c3e1 };
	return c[i % 8];
}

static int fail(const char *what)
{
	fprintf(stderr, "show-pattern: %s: %s\n", what, strerror(errno));
	return 1;
}

int main(int argc, char **argv)
{
	struct drm_mode_create_dumb dumb = { .bpp = 32 };
	struct drm_mode_map_dumb map = { 0 };
	drmModeConnectorPtr conn = NULL;
	drmModeResPtr res;
	uint32_t fb, *px;
	int fd, status;
	pid_t pid;

	if (argc < 3) {
		fprintf(stderr, "usage: show-pattern DRIVER SCREENDUMP-CMD...\n");
		return 2;
	}
	fd = open_drm_by_driver(argv[1]);
	if (fd < 0)
		return fail("no DRM device for that driver");
	res = drmModeGetResources(fd);
	if (!res)
		return fail("drmModeGetResources");
	for (int i = 0; i < res->count_connectors && !conn; i++) {
		conn = drmModeGetConnector(fd, res->connectors[i]);
		if (conn && (conn->connection != DRM_MODE_CONNECTED || !conn->count_modes)) {
			drmModeFreeConnector(conn);
			conn = NULL;
		}
	}
	if (!conn || res->count_crtcs < 1)
		return fail("no connected output");
	dumb.width = conn->modes[0].hdisplay;
	dumb.height = conn->modes[0].vdisplay;
	if (drmIoctl(fd, DRM_IOCTL_MODE_CREATE_DUMB, &dumb))
		return fail("CREATE_DUMB");
	map.handle = dumb.handle;
	if (drmIoctl(fd, DRM_IOCTL_MODE_MAP_DUMB, &map))
		return fail("MAP_DUMB");
	px = mmap(NULL, dumb.size, PROT_WRITE, MAP_SHARED, fd, (off_t)map.offset);
	if (px == MAP_FAILED)
		return fail("mmap");
	for (uint32_t y = 0; y < dumb.height; y++)
		for (uint32_t x = 0; x < dumb.width; x++)
			px[y * (dumb.pitch / 4) + x] = bar_colour(x * 8 / dumb.width);
	munmap(px, dumb.size);
	if (drmModeAddFB(fd, dumb.width, dumb.height, 24, 32, dumb.pitch, dumb.handle, &fb))
		return fail("drmModeAddFB");
	if (drmModeSetCrtc(fd, res->crtcs[0], fb, 0, 0, &conn->connector_id, 1, &conn->modes[0]))
		return fail("drmModeSetCrtc");
	/* The pattern stays on screen while we hold the device: dump now. */
	pid = fork();
	if (pid == 0) {
		execvp(argv[2], argv + 2);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status))
		return fail("the screendump command failed");
	printf("%ux%u\n", dumb.width, dumb.height);
	return 0;
}

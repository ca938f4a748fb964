/* SPDX-License-Identifier: MIT */
/* Find a DRM device by driver name (card numbers differ between boots). */
#pragma once

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <xf86drm.h>

/* Opens /dev/dri/cardN of DRIVER (e.g. "vkms", "virtio_gpu"); the caller
 * closes the fd. Returns -ENODEV when no such device exists. */
static inline int open_drm_by_driver(const char *driver)
{
	for (int i = 0; i < 16; i++) {
		char path[64];
		drmVersionPtr v;
		int fd;

		snprintf(path, sizeof(path), "/dev/dri/card%d", i);
		fd = open(path, O_RDWR | O_CLOEXEC);
		if (fd < 0)
			continue;
		v = drmGetVersion(fd);
		if (v && strcmp(v->name, driver) == 0) {
			drmFreeVersion(v);
			return fd;
		}
		drmFreeVersion(v);
		close(fd);
	}
	return -ENODEV;
}

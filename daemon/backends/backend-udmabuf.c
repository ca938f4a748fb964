/* SPDX-License-Identifier: MIT */
/* udmabuf: a sealed memfd turned into a dma-buf (/dev/udmabuf). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/udmabuf.h>

#include "backend.h"
#include "cleanup.h"

#define UDMABUF_DEV "/dev/udmabuf"

static int udmabuf_alloc(struct backend *b, const struct alloc_request *req, struct layout *layout)
{
	struct udmabuf_create create = { .flags = UDMABUF_FLAGS_CLOEXEC };
	_cleanup_close_ int memfd = -1;
	int r = backend_layout(b, req, layout), fd;

	if (r < 0)
		return r;
	r = memfd_sealed("dmabroker-udmabuf", layout->size, &memfd);
	if (r < 0)
		return r;
	create.memfd = (uint32_t)memfd;
	create.size = layout->size;
	fd = ioctl(b->fd, UDMABUF_CREATE, &create);
	return fd < 0 ? -errno : fd;
}

static const struct backend_ops udmabuf_ops = { .kind = "udmabuf", .alloc = udmabuf_alloc };

void backend_udmabuf_probe(struct backends *bs, const struct config *c, struct backend ***tail)
{
	int fd = open(UDMABUF_DEV, O_RDWR | O_CLOEXEC);
	struct backend *b;

	if (fd < 0) {
		backends_note(bs, "udmabuf", "udmabuf", UDMABUF_DEV, false, "%s (kernel without CONFIG_UDMABUF?)",
			      strerror(errno));
		return;
	}
	b = backend_new(&udmabuf_ops, "udmabuf", UDMABUF_DEV, fd);
	if (!b) {
		close(fd);
		return;
	}
	snprintf(b->driver, sizeof(b->driver), "udmabuf");
	**tail = b;
	*tail = &b->next;
	backends_note(bs, "udmabuf", "udmabuf", UDMABUF_DEV, true, "memfd-backed dma-bufs");
}

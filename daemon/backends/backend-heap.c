/* SPDX-License-Identifier: MIT */
/* dma-buf heaps: /dev/dma_heap/<name>, the system heap and CMA heaps. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/dma-heap.h>

#include "backend.h"
#include "config.h"

#define HEAP_DIR "/dev/dma_heap"

static int heap_alloc(struct backend *b, const struct alloc_request *req, struct layout *layout)
{
	struct dma_heap_allocation_data data = { .fd_flags = O_RDWR | O_CLOEXEC };
	int r = backend_layout(b, req, layout);

	if (r < 0)
		return r;
	data.len = layout->size;
	if (ioctl(b->fd, DMA_HEAP_IOCTL_ALLOC, &data) < 0)
		return -errno;
	return (int)data.fd;
}

static const struct backend_ops heap_ops = { .kind = "heap", .alloc = heap_alloc };

/* The system heaps are not contiguous; every other heap is a CMA area. */
static bool heap_is_contiguous(const char *name)
{
	return strncmp(name, "system", 6) != 0;
}

void backend_heap_probe(struct backends *bs, const struct config *c, struct backend ***tail)
{
	DIR *d = opendir(HEAP_DIR);
	struct dirent *e;

	if (!d) {
		backends_note(bs, "heap", "heap", HEAP_DIR, false, "%s (kernel without CONFIG_DMABUF_HEAPS?)",
			      strerror(errno));
		return;
	}
	while ((e = readdir(d))) {
		char path[300], name[64];
		struct backend *b;
		int fd;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), HEAP_DIR "/%s", e->d_name);
		snprintf(name, sizeof(name), "heap:%.58s", e->d_name);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			backends_note(bs, name, "heap", path, false, "cannot open: %s", strerror(errno));
			continue;
		}
		b = backend_new(&heap_ops, name, path, fd);
		if (!b) {
			close(fd);
			continue;
		}
		snprintf(b->driver, sizeof(b->driver), "%.31s", e->d_name);
		b->contiguous = heap_is_contiguous(e->d_name);
		**tail = b;
		*tail = &b->next;
		backends_note(bs, name, "heap", path, true, "%s",
			      b->contiguous ? "CMA heap, physically contiguous" : "system heap, scattered pages");
	}
	closedir(d);
}

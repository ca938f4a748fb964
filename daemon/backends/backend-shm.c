/* SPDX-License-Identifier: MIT */
/* shm: a sealed memfd, for CPU-only use where no dma-buf exporter exists.
 * Never a dma-buf: clients are told so (the buffer's "dmabuf" is false). */
#include <stdio.h>

#include "backend.h"
#include "config.h"

static int shm_alloc(struct backend *b, const struct alloc_request *req, struct layout *layout)
{
	int fd, r = backend_layout(b, req, layout);
	if (r < 0)
		return r;
	r = memfd_sealed("dmabroker-shm", layout->size, &fd);
	return r < 0 ? r : fd;
}

static const struct backend_ops shm_ops = { .kind = "shm", .alloc = shm_alloc };

void backend_shm_probe(struct backends *bs, const struct config *c, struct backend ***tail)
{
	struct backend *b;

	if (!c->shm) {
		backends_note(bs, "shm", "shm", "", false, "disabled in the config ([backends] shm = no)");
		return;
	}
	b = backend_new(&shm_ops, "shm", "", -1);
	if (!b)
		return;
	b->dmabuf = false;
	snprintf(b->driver, sizeof(b->driver), "memfd");
	**tail = b;
	*tail = &b->next;
	backends_note(bs, "shm", "shm", "", true, "memfd, CPU only, not a dma-buf");
}

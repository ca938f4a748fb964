/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <drm_fourcc.h>
#include <xf86drm.h>

#include "backend.h"
#include "cleanup.h"
#include "config.h"
#include "log.h"
#include "printable.h"
#include "dmabroker-protocol.h"

struct backend *backend_new(const struct backend_ops *ops, const char *name, const char *device, int fd)
{
	struct backend *b = calloc(1, sizeof(*b));
	if (!b)
		return NULL;
	b->ops = ops;
	b->fd = fd;
	b->dmabuf = true;
	b->stride_align = 64;
	b->offset_align = 64;
	snprintf(b->name, sizeof(b->name), "%s", name);
	snprintf(b->device, sizeof(b->device), "%s", device);
	return b;
}

void backends_note(struct backends *bs, const char *name, const char *kind, const char *device,
		   bool available, const char *fmt, ...)
{
	struct backend_note *n;
	va_list ap;

	if (bs->n_notes == BACKEND_MAX_NOTES)
		return;
	n = &bs->notes[bs->n_notes++];
	snprintf(n->name, sizeof(n->name), "%s", name);
	snprintf(n->kind, sizeof(n->kind), "%s", kind);
	snprintf(n->device, sizeof(n->device), "%s", device);
	n->available = available;
	va_start(ap, fmt);
	vsnprintf(n->detail, sizeof(n->detail), fmt, ap);
	va_end(ap);
	log_full(available ? LOG_INFO : LOG_NOTICE, "backend %s (%s): %s: %s", name,
		 *device ? device : "-", available ? "available" : "unavailable", n->detail);
}

bool backend_can_import(const struct backend *be, int fd)
{
	struct drm_gem_close close_req = { 0 };
	uint32_t handle;

	if (drmPrimeFDToHandle(be->fd, fd, &handle) < 0)
		return false;
	close_req.handle = handle;
	drmIoctl(be->fd, DRM_IOCTL_GEM_CLOSE, &close_req);
	return true;
}

/*
 * Tries, once at start-up, whether each DRM device imports a dma-buf from
 * elsewhere (a heap, udmabuf or another device): stream negotiation
 * allocates on a device that does not.
 */
static void probe_imports(struct backends *bs)
{
	const struct alloc_request req = { .format = format_lookup(DRM_FORMAT_XRGB8888), .width = 64, .height = 64,
					   .max_size = 1 << 20, .max_dimension = 64 };
	for (struct backend *be = bs->list; be; be = be->next) {
		struct layout l;
		int fd = -1;
		if (strcmp(be->ops->kind, "drm") != 0)
			continue;
		be->imports = true; /* unless shown otherwise */
		for (struct backend *src = bs->list; src && fd < 0; src = src->next)
			if (src != be && src->dmabuf)
				fd = src->ops->alloc(src, &req, &l);
		if (fd < 0)
			continue;
		be->imports = backend_can_import(be, fd);
		log_info("backend %s %s foreign dma-bufs", be->name, be->imports ? "imports" : "does not import");
		close(fd);
	}
}

int backends_probe(struct backends *bs, const struct config *c)
{
	static const struct {
		const char *kind;
		void (*probe)(struct backends *, const struct config *, struct backend ***);
	} modules[] = {
		{ "heap", backend_heap_probe },
		{ "udmabuf", backend_udmabuf_probe },
		{ "drm", backend_drm_probe },
		{ "shm", backend_shm_probe },
	};
	struct backend **tail = &bs->list;

	memset(bs, 0, sizeof(*bs));
	snprintf(bs->default_heap, sizeof(bs->default_heap), "%s", c->heap);
	snprintf(bs->contiguous_heap, sizeof(bs->contiguous_heap), "%s", c->contiguous_heap);
	bs->shm_allowed = c->shm;
	for (unsigned i = 0; i < c->n_order; i++)
		for (unsigned j = 0; j < ELEMENTSOF(modules); j++)
			if (strcmp(c->order[i], modules[j].kind) == 0)
				modules[j].probe(bs, c, &tail);
	for (unsigned j = 0; j < ELEMENTSOF(modules); j++) {
		bool listed = false;
		for (unsigned i = 0; i < c->n_order; i++)
			listed |= strcmp(c->order[i], modules[j].kind) == 0;
		if (!listed)
			backends_note(bs, modules[j].kind, modules[j].kind, "", false,
				      "not in the configured order ([backends] order)");
	}
	probe_imports(bs);
	return 0;
}

void backends_free(struct backends *bs)
{
	while (bs->list) {
		struct backend *b = bs->list;
		bs->list = b->next;
		if (b->ops->destroy)
			b->ops->destroy(b);
		safe_close(b->fd);
		free(b);
	}
}

static bool matches_hint(const struct backend *b, const char *backend_hint, const char *device_hint)
{
	if (backend_hint && *backend_hint && strcmp(backend_hint, b->ops->kind) != 0 &&
	    strcmp(backend_hint, b->name) != 0)
		return false;
	if (device_hint && *device_hint && strcmp(device_hint, b->device) != 0 &&
	    strcmp(device_hint, b->driver) != 0)
		return false;
	return true;
}

/* Can b serve this usage at all? On no, *why says why. */
static bool serves(const struct backends *bs, const struct backend *b, uint32_t usage, bool hinted,
		   const char **why)
{
	if ((usage & DMABROKER_USAGE_CONTIGUOUS) && !b->contiguous)
		return *why = "needs physically contiguous memory (a CMA heap)", false;
	if ((usage & DMABROKER_USAGE_DEVICE) && !b->dmabuf)
		return *why = "device usage needs a dma-buf, shm is CPU-only", false;
	if (!b->dmabuf && !bs->shm_allowed)
		return *why = "shm is disabled in the config", false;
	/* Without a hint, heaps serve only the configured default heap (or the
	 * contiguous one when that is asked for), and DRM devices without KMS
	 * (vgem) only on request. */
	if (!hinted && strcmp(b->ops->kind, "heap") == 0) {
		bool want_contig = usage & DMABROKER_USAGE_CONTIGUOUS;
		const char *name = want_contig ? bs->contiguous_heap : bs->default_heap;
		if (strcmp(name, "auto") == 0 ? !b->contiguous : strcmp(name, b->driver) != 0)
			return *why = "not the configured heap", false;
	}
	return true;
}

unsigned backends_choose(struct backends *bs, uint32_t usage, const char *backend_hint,
			 const char *device_hint, struct backend **out, unsigned max,
			 char *why, size_t why_len)
{
	bool hinted = (backend_hint && *backend_hint) || (device_hint && *device_hint);
	const char *last_why = NULL, *last_name = NULL;
	unsigned n = 0, matched = 0;

	for (struct backend *b = bs->list; b && n < max; b = b->next) {
		const char *reason = NULL;
		if (!matches_hint(b, backend_hint, device_hint))
			continue;
		matched++;
		if (!serves(bs, b, usage, hinted, &reason)) {
			last_why = reason;
			last_name = b->name;
			continue;
		}
		out[n++] = b;
	}
	if (n == 0) {
		char text[512]; /* the hints are the client's: quoted printable, cut between characters */
		if (!matched && hinted)
			snprintf(text, sizeof(text), "no available backend matches backend '%s' device '%s' "
				 "(see dmabrokerctl backends)", PRINTABLE(backend_hint), PRINTABLE(device_hint));
		else if (last_why)
			snprintf(text, sizeof(text), "no backend can serve usage 0x%x: %s %s", usage, last_name, last_why);
		else
			snprintf(text, sizeof(text), "no backend is available (see dmabrokerctl backends)");
		printable(text, why, why_len);
	}
	return n;
}

int memfd_sealed(const char *name, uint64_t size, int *ret_fd)
{
	_cleanup_close_ int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)size) < 0)
		return -errno;
	/* udmabuf needs SHRINK sealed; GROW too so the size is fixed. */
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0)
		return -errno;
	*ret_fd = TAKE_FD(fd);
	return 0;
}

int backend_layout(const struct backend *b, const struct alloc_request *req, struct layout *l)
{
	struct layout_constraints c = {
		.stride_align = b->stride_align, .offset_align = b->offset_align,
		.max_size = req->max_size, .max_dimension = req->max_dimension,
	};
	return layout_compute(req->format, req->width, req->height, &c, l);
}

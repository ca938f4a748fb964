/* SPDX-License-Identifier: MIT */
/*
 * Allocation backends, one module each behind this interface (after
 * wlroots' allocator): dma-buf heaps (backend-heap.c), DRM dumb/GEM
 * (backend-drm.c), udmabuf (backend-udmabuf.c) and the shm fallback
 * (backend-shm.c). backend.c probes them at start-up in the configured order
 * and picks one for each allocation.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "format.h"

struct config;

struct alloc_request {
	const struct format_info *format;
	uint32_t width, height;
	uint32_t usage;                 /* DMABROKER_USAGE_* */
	uint64_t max_size;
	uint32_t max_dimension;
	bool fresh;                     /* the "fresh" option: new memory, never a pooled buffer */
};

struct backend;

struct backend_ops {
	const char *kind;               /* "heap", "drm", "udmabuf", "shm" */
	/*
	 * Allocates a buffer for req: fills layout and returns a new fd (the
	 * caller owns it) or a negative errno: -EINVAL/-E2BIG from the layout,
	 * anything else from the kernel.
	 */
	int (*alloc)(struct backend *b, const struct alloc_request *req, struct layout *layout);
	void (*destroy)(struct backend *b);
};

struct backend {
	const struct backend_ops *ops;
	char name[64];                  /* "heap:system", "drm:vkms", "udmabuf", "shm" */
	char device[128];               /* the device node, "" for shm */
	char driver[32];                /* DRM driver or heap name */
	bool dmabuf;                    /* false only for shm */
	bool contiguous;                /* physically contiguous memory */
	bool kms;                       /* a KMS device: can scan out its own buffers */
	bool imports;                   /* DRM: imports foreign dma-bufs (virtio-gpu does not) */
	uint32_t stride_align, offset_align;
	int fd;                         /* the device, owned; -1 if none */
	struct backend *next;
};

/* What probing found or did not, for `dmabrokerctl backends`. */
struct backend_note {
	char name[64], kind[16], device[128], detail[160];
	bool available;
};

#define BACKEND_MAX_NOTES 32

struct backends {
	struct backend *list;           /* in configured order */
	unsigned n_notes;
	struct backend_note notes[BACKEND_MAX_NOTES];
	char default_heap[64], contiguous_heap[64];
	bool shm_allowed;
};

int backends_probe(struct backends *bs, const struct config *c);
void backends_free(struct backends *bs);
void backends_note(struct backends *bs, const char *name, const char *kind, const char *device,
		   bool available, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/*
 * Picks the backends that can serve req->usage, honouring the optional
 * hints (a kind "heap", a name "heap:reserved" / "drm:vkms", a device path
 * or driver name), in configured order. Fills out (at most max) and returns
 * how many; *why says, when there are none, why not.
 */
unsigned backends_choose(struct backends *bs, uint32_t usage, const char *backend_hint,
			 const char *device_hint, struct backend **out, unsigned max,
			 char *why, size_t why_len);

/* Module constructors: each probes its devices and adds backends + notes. */
void backend_heap_probe(struct backends *bs, const struct config *c, struct backend ***tail);
void backend_drm_probe(struct backends *bs, const struct config *c, struct backend ***tail);
void backend_udmabuf_probe(struct backends *bs, const struct config *c, struct backend ***tail);
void backend_shm_probe(struct backends *bs, const struct config *c, struct backend ***tail);

/* Whether the DRM device behind be can import the dma-buf fd. */
bool backend_can_import(const struct backend *be, int fd);

/* Shared by the modules. */
struct backend *backend_new(const struct backend_ops *ops, const char *name, const char *device, int fd);
int memfd_sealed(const char *name, uint64_t size, int *ret_fd);
/* The linear layout of req under b's alignment rules. */
int backend_layout(const struct backend *b, const struct alloc_request *req, struct layout *l);

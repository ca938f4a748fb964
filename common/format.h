/* SPDX-License-Identifier: MIT */
/*
 * Pixel formats and buffer layout: which DRM fourccs dmabroker allocates,
 * and where each plane of a linear buffer lies. All size math is done in
 * 64 bits with overflow checks.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#define FORMAT_MAX_PLANES 3

struct format_plane {
	uint8_t bytes_per_block; /* bytes of one block of pixels */
	uint8_t block_width;     /* pixels per block, horizontally */
	uint8_t hsub, vsub;      /* subsampling of this plane (1 for none) */
};

struct format_info {
	uint32_t fourcc;
	const char *name;
	uint8_t n_planes;
	struct format_plane plane[FORMAT_MAX_PLANES];
};

struct plane_layout {
	uint64_t offset;
	uint32_t stride;
};

struct layout {
	uint8_t n_planes;
	struct plane_layout plane[FORMAT_MAX_PLANES];
	uint64_t size;          /* whole buffer, page aligned */
};

struct layout_constraints {
	uint32_t stride_align;  /* bytes; a power of two */
	uint32_t offset_align;  /* bytes; a power of two */
	uint64_t max_size;      /* refuse larger buffers (-E2BIG) */
	uint32_t max_dimension; /* refuse wider or taller ones (-EINVAL) */
};

const struct format_info *format_lookup(uint32_t fourcc);
/* Fills buf (at least 5 bytes) with the printable fourcc, e.g. "NV12". */
const char *fourcc_str(uint32_t fourcc, char buf[static 5]);
/* The formats dmabroker knows, for listing; n gets their count. */
const struct format_info *format_all(unsigned *n);

/* Rows of plane i for a buffer of the given height. */
uint32_t format_plane_height(const struct format_info *f, unsigned i, uint32_t height);
/* The least stride plane i can have at the given width, or 0 on overflow. */
uint64_t format_min_stride(const struct format_info *f, unsigned i, uint32_t width);

/*
 * Computes a linear layout. Returns 0, or:
 *   -EINVAL  zero or over-limit width or height
 *   -E2BIG   the buffer would exceed max_size (or overflow 64 bits)
 */
int layout_compute(const struct format_info *f, uint32_t width, uint32_t height,
		   const struct layout_constraints *c, struct layout *out);

/*
 * Checks that a client-described layout fits a buffer of buf_size bytes:
 * each stride at least the least stride, each plane inside the buffer.
 * Returns 0, -EINVAL (bad stride) or -ERANGE (a plane does not fit).
 */
int layout_validate(const struct format_info *f, uint32_t width, uint32_t height,
		    const struct layout *l, uint64_t buf_size);

/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <string.h>

#include <drm_fourcc.h>

#include "format.h"

#define PAGE_SIZE_BYTES 4096u

#define P(bytes, bw, hs, vs) { .bytes_per_block = (bytes), .block_width = (bw), .hsub = (hs), .vsub = (vs) }

static const struct format_info formats[] = {
	{ DRM_FORMAT_XRGB8888, "XRGB8888", 1, { P(4, 1, 1, 1) } },
	{ DRM_FORMAT_ARGB8888, "ARGB8888", 1, { P(4, 1, 1, 1) } },
	{ DRM_FORMAT_XBGR8888, "XBGR8888", 1, { P(4, 1, 1, 1) } },
	{ DRM_FORMAT_ABGR8888, "ABGR8888", 1, { P(4, 1, 1, 1) } },
	{ DRM_FORMAT_RGB565, "RGB565", 1, { P(2, 1, 1, 1) } },
	{ DRM_FORMAT_YUYV, "YUYV", 1, { P(4, 2, 1, 1) } },
	{ DRM_FORMAT_UYVY, "UYVY", 1, { P(4, 2, 1, 1) } },
	{ DRM_FORMAT_NV12, "NV12", 2, { P(1, 1, 1, 1), P(2, 1, 2, 2) } },
	{ DRM_FORMAT_NV21, "NV21", 2, { P(1, 1, 1, 1), P(2, 1, 2, 2) } },
	{ DRM_FORMAT_YUV420, "YUV420", 3, { P(1, 1, 1, 1), P(1, 1, 2, 2), P(1, 1, 2, 2) } },
	{ DRM_FORMAT_YVU420, "YVU420", 3, { P(1, 1, 1, 1), P(1, 1, 2, 2), P(1, 1, 2, 2) } },
	{ DRM_FORMAT_P010, "P010", 2, { P(2, 1, 1, 1), P(4, 1, 2, 2) } },
};

const struct format_info *format_lookup(uint32_t fourcc)
{
	for (unsigned i = 0; i < sizeof(formats) / sizeof(formats[0]); i++)
		if (formats[i].fourcc == fourcc)
			return &formats[i];
	return NULL;
}

const struct format_info *format_all(unsigned *n)
{
	*n = sizeof(formats) / sizeof(formats[0]);
	return formats;
}

const char *fourcc_str(uint32_t fourcc, char buf[static 5])
{
	for (int i = 0; i < 4; i++) {
		char c = (char)((fourcc >> (8 * i)) & 0xff);
		buf[i] = c >= 0x20 && c < 0x7f ? c : '?';
	}
	buf[4] = 0;
	return buf;
}

static uint64_t div_round_up(uint64_t a, uint64_t b)
{
	return a / b + (a % b != 0);
}

/* Rounds v up to a multiple of align (a power of two); false on overflow. */
static bool align_up(uint64_t v, uint64_t align, uint64_t *out)
{
	uint64_t r;
	if (align <= 1) {
		*out = v;
		return true;
	}
	if (__builtin_add_overflow(v, align - 1, &r))
		return false;
	*out = r & ~(align - 1);
	return true;
}

uint32_t format_plane_height(const struct format_info *f, unsigned i, uint32_t height)
{
	return (uint32_t)div_round_up(height, f->plane[i].vsub);
}

uint64_t format_min_stride(const struct format_info *f, unsigned i, uint32_t width)
{
	const struct format_plane *p = &f->plane[i];
	uint64_t samples = div_round_up(width, p->hsub);
	uint64_t blocks = div_round_up(samples, p->block_width);
	uint64_t bytes;

	if (__builtin_mul_overflow(blocks, (uint64_t)p->bytes_per_block, &bytes))
		return 0;
	return bytes;
}

int layout_compute(const struct format_info *f, uint32_t width, uint32_t height,
		   const struct layout_constraints *c, struct layout *out)
{
	uint64_t end = 0;

	if (width == 0 || height == 0 || width > c->max_dimension || height > c->max_dimension)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	out->n_planes = f->n_planes;
	for (unsigned i = 0; i < f->n_planes; i++) {
		uint64_t stride, plane_size, offset;

		if (!align_up(format_min_stride(f, i, width), c->stride_align, &stride) ||
		    stride == 0 || stride > UINT32_MAX)
			return -E2BIG;
		if (__builtin_mul_overflow(stride, (uint64_t)format_plane_height(f, i, height), &plane_size))
			return -E2BIG;
		if (!align_up(end, c->offset_align, &offset) ||
		    __builtin_add_overflow(offset, plane_size, &end))
			return -E2BIG;
		out->plane[i].offset = offset;
		out->plane[i].stride = (uint32_t)stride;
	}
	if (!align_up(end, PAGE_SIZE_BYTES, &out->size) || out->size > c->max_size)
		return -E2BIG;
	return 0;
}

int layout_validate(const struct format_info *f, uint32_t width, uint32_t height,
		    const struct layout *l, uint64_t buf_size)
{
	if (width == 0 || height == 0 || l->n_planes != f->n_planes)
		return -EINVAL;
	for (unsigned i = 0; i < f->n_planes; i++) {
		uint64_t min_stride = format_min_stride(f, i, width);
		uint32_t rows = format_plane_height(f, i, height);
		uint64_t last_row, end;

		if (min_stride == 0 || l->plane[i].stride < min_stride)
			return -EINVAL;
		/* The last row needs only min_stride bytes, not a whole stride. */
		if (__builtin_mul_overflow((uint64_t)l->plane[i].stride, (uint64_t)(rows - 1), &last_row) ||
		    __builtin_add_overflow(l->plane[i].offset, last_row, &end) ||
		    __builtin_add_overflow(end, min_stride, &end) || end > buf_size)
			return -ERANGE;
	}
	return 0;
}

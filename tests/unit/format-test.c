/* SPDX-License-Identifier: MIT */
/* Unit tests of common/format.c: layouts of every format, overflow safety,
 * and the validation of client-described planes. */
#include <errno.h>
#include <stdint.h>

#include <drm_fourcc.h>

#include "format.h"
#include "tap.h"

TAP_DEFINE;

static const struct layout_constraints c64 = {
	.stride_align = 64, .offset_align = 64, .max_size = UINT64_MAX, .max_dimension = UINT32_MAX,
};

struct expect {
	uint32_t fourcc;
	unsigned planes;
	uint64_t offset[3];
	uint32_t stride[3];
	uint64_t size;
};

/* 33x17: odd sizes, so that rounding of subsampled planes shows. Computed by hand:
 * XRGB8888: 33*4=132 -> 192; 192*17 = 3264 -> page 4096.
 * RGB565:   66 -> 128.  YUYV: ceil(33/2)=17 macropixels * 4 = 68 -> 128.
 * NV12:     Y 33 -> 64, 17 rows = 1088; CbCr 17 pairs * 2 = 34 -> 64, 9 rows at 1088.
 * YUV420:   Y 1088; U 17 -> 64, 9 rows at 1088; V at 1088 + 576 = 1664.
 * P010:     Y 66 -> 128, 17 rows = 2176; CbCr 17 * 4 = 68 -> 128 at 2176. */
static const struct expect expected[] = {
	{ DRM_FORMAT_XRGB8888, 1, { 0 }, { 192 }, 4096 },
	{ DRM_FORMAT_ARGB8888, 1, { 0 }, { 192 }, 4096 },
	{ DRM_FORMAT_RGB565, 1, { 0 }, { 128 }, 4096 },
	{ DRM_FORMAT_YUYV, 1, { 0 }, { 128 }, 4096 },
	{ DRM_FORMAT_NV12, 2, { 0, 1088 }, { 64, 64 }, 4096 },
	{ DRM_FORMAT_YUV420, 3, { 0, 1088, 1664 }, { 64, 64, 64 }, 4096 },
	{ DRM_FORMAT_P010, 2, { 0, 2176 }, { 128, 128 }, 4096 },
};

static bool step_required_formats(void)
{
	for (unsigned i = 0; i < sizeof(expected) / sizeof(expected[0]); i++) {
		const struct expect *e = &expected[i];
		const struct format_info *f = format_lookup(e->fourcc);
		struct layout l;

		CHECKF(f, "format %.4s missing", (char *)&e->fourcc);
		CHECK(layout_compute(f, 33, 17, &c64, &l) == 0);
		CHECKF(l.n_planes == e->planes, "%s: %u planes", f->name, l.n_planes);
		for (unsigned p = 0; p < e->planes; p++)
			CHECKF(l.plane[p].offset == e->offset[p] && l.plane[p].stride == e->stride[p],
			       "%s plane %u: offset %llu stride %u, want %llu %u", f->name, p,
			       (unsigned long long)l.plane[p].offset, l.plane[p].stride,
			       (unsigned long long)e->offset[p], e->stride[p]);
		CHECKF(l.size == e->size, "%s: size %llu", f->name, (unsigned long long)l.size);
		/* What we lay out, we accept back. */
		CHECK(layout_validate(f, 33, 17, &l, l.size) == 0);
	}
	return true;
}

static bool step_1080p(void)
{
	const struct format_info *nv12 = format_lookup(DRM_FORMAT_NV12);
	struct layout l;

	CHECK(layout_compute(nv12, 1920, 1080, &c64, &l) == 0);
	CHECK(l.plane[0].stride == 1920 && l.plane[1].offset == 1920u * 1080 && l.plane[1].stride == 1920);
	CHECK(l.size == 3112960); /* 1920*1080*3/2 = 3110400 -> page */
	return true;
}

static bool step_every_format_sane(void)
{
	unsigned n;
	const struct format_info *all = format_all(&n);

	CHECK(n >= 7);
	for (unsigned i = 0; i < n; i++) {
		for (uint32_t w = 1; w < 70; w += 7)
			for (uint32_t h = 1; h < 40; h += 5) {
				struct layout l;
				uint64_t end = 0;
				CHECK(layout_compute(&all[i], w, h, &c64, &l) == 0);
				for (unsigned p = 0; p < l.n_planes; p++) {
					CHECK(l.plane[p].offset >= end && l.plane[p].offset % 64 == 0);
					CHECK(l.plane[p].stride % 64 == 0);
					CHECK(l.plane[p].stride >= format_min_stride(&all[i], p, w));
					end = l.plane[p].offset + (uint64_t)l.plane[p].stride *
						format_plane_height(&all[i], p, h);
				}
				CHECK(end <= l.size && l.size % 4096 == 0);
			}
	}
	return true;
}

static bool step_limits_and_overflow(void)
{
	const struct format_info *argb = format_lookup(DRM_FORMAT_ARGB8888);
	const struct format_info *yuv = format_lookup(DRM_FORMAT_YUV420);
	struct layout_constraints small = c64;
	struct layout l;

	CHECK(layout_compute(argb, 0, 10, &c64, &l) == -EINVAL);
	CHECK(layout_compute(argb, 10, 0, &c64, &l) == -EINVAL);
	small.max_dimension = 100;
	CHECK(layout_compute(argb, 101, 10, &small, &l) == -EINVAL);
	small.max_size = 1 << 20;
	CHECK(layout_compute(argb, 100, 100, &small, &l) == 0);
	small.max_dimension = 4096;
	CHECK(layout_compute(argb, 1024, 1024, &small, &l) == -E2BIG);
	/* A stride beyond 32 bits. */
	CHECK(layout_compute(argb, UINT32_MAX, 1, &c64, &l) == -E2BIG);
	/* Planes whose sum passes 2^64: the Y plane alone is just under it. */
	CHECK(layout_compute(yuv, 0xffffffc0u, UINT32_MAX, &c64, &l) == -E2BIG);
	return true;
}

static bool step_validate(void)
{
	const struct format_info *nv12 = format_lookup(DRM_FORMAT_NV12);
	struct layout l = { .n_planes = 2, .plane = { { 0, 64 }, { 1088, 64 } } };

	CHECK(layout_validate(nv12, 33, 17, &l, 1664) == 0);
	/* The last row needs only the least stride, not a whole one. */
	CHECK(layout_validate(nv12, 33, 17, &l, 1088 + 64 * 8 + 34) == 0);
	CHECK(layout_validate(nv12, 33, 17, &l, 1088 + 64 * 8 + 33) == -ERANGE);
	l.plane[1].stride = 33;
	CHECK(layout_validate(nv12, 33, 17, &l, 1 << 20) == -EINVAL);
	l.plane[1].stride = 64;
	l.plane[1].offset = UINT64_MAX - 10;
	CHECK(layout_validate(nv12, 33, 17, &l, 1 << 20) == -ERANGE);
	l.plane[1].offset = 1088;
	l.plane[1].stride = UINT32_MAX;
	CHECK(layout_validate(nv12, 33, 17, &l, UINT64_MAX) == 0);
	CHECK(layout_validate(nv12, 33, 17, &l, 1 << 30) == -ERANGE);
	l.n_planes = 1;
	CHECK(layout_validate(nv12, 33, 17, &l, 1 << 20) == -EINVAL);
	return true;
}

static bool step_fourcc_names(void)
{
	char buf[5];
	CHECK(strcmp(fourcc_str(DRM_FORMAT_NV12, buf), "NV12") == 0);
	CHECK(strcmp(fourcc_str(0x01020304, buf), "????") == 0);
	CHECK(format_lookup(0x12345678) == NULL);
	return true;
}

int main(void)
{
	tap_plan(6);
	tap_step("layouts of the required formats at 33x17, by hand", step_required_formats);
	tap_step("NV12 1920x1080", step_1080p);
	tap_step("every format: aligned, ordered, inside the size", step_every_format_sane);
	tap_step("zero, over-limit and overflowing sizes", step_limits_and_overflow);
	tap_step("validation of described planes", step_validate);
	tap_step("fourcc names", step_fourcc_names);
	return tap_done();
}

/* SPDX-License-Identifier: MIT */
/* libFuzzer target: layout math and the validation of client-described
 * planes (Import). Whatever the numbers, nothing overflows, and a layout
 * that validates lies inside the buffer; one we compute validates. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct input {
	uint8_t format;
	uint8_t n_planes;
	uint32_t width, height;
	uint64_t buf_size;
	struct { uint64_t offset; uint32_t stride; } plane[FORMAT_MAX_PLANES];
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct input in = { 0 };
	const struct format_info *all, *f;
	struct layout l = { 0 }, mine;
	struct layout_constraints c = { .stride_align = 64, .offset_align = 64, .max_size = 1ull << 40,
					.max_dimension = UINT32_MAX };
	unsigned n;

	memcpy(&in, data, size < sizeof(in) ? size : sizeof(in));
	all = format_all(&n);
	f = &all[in.format % n];
	l.n_planes = in.n_planes % (FORMAT_MAX_PLANES + 1);
	for (unsigned i = 0; i < FORMAT_MAX_PLANES; i++) {
		l.plane[i].offset = in.plane[i].offset;
		l.plane[i].stride = in.plane[i].stride;
	}
	if (layout_validate(f, in.width, in.height, &l, in.buf_size) == 0) {
		for (unsigned i = 0; i < f->n_planes; i++) {
			unsigned __int128 end = (unsigned __int128)l.plane[i].offset +
						(unsigned __int128)l.plane[i].stride * (format_plane_height(f, i, in.height) - 1) +
						format_min_stride(f, i, in.width);
			if (end > in.buf_size || l.plane[i].stride < format_min_stride(f, i, in.width))
				abort();
		}
	}
	if (layout_compute(f, in.width, in.height, &c, &mine) == 0) {
		if (mine.size > c.max_size || layout_validate(f, in.width, in.height, &mine, mine.size) != 0)
			abort();
	}
	return 0;
}

/* SPDX-License-Identifier: MIT */
/* Import (import.c): a client's own dma-buf, checked and registered. */
#pragma once

#include <stdint.h>

#include "error.h"
#include "format.h"

struct buffer;
struct client;

/* import.c: Import of a client's dma-buf (fd borrowed), held by c on success. */
struct import_args {
	int fd;
	uint32_t width, height, fourcc, usage;
	uint64_t modifier;
	struct layout layout;           /* the planes' offsets and strides, as described */
};
int broker_import(struct client *c, const struct import_args *a, struct buffer **ret, struct error *error);

/* SPDX-License-Identifier: MIT */
/* Usage flags of Allocate, Import and Attach (the protocol's "usage" u). */
#pragma once

enum dmabroker_usage {
	DMABROKER_USAGE_CPU_READ   = 1u << 0, /* mmap and read */
	DMABROKER_USAGE_CPU_WRITE  = 1u << 1, /* mmap and write */
	DMABROKER_USAGE_SCANOUT    = 1u << 2, /* a KMS framebuffer */
	DMABROKER_USAGE_CAPTURE    = 1u << 3, /* written by a V4L2 device */
	DMABROKER_USAGE_GPU        = 1u << 4, /* read or written by a GPU */
	DMABROKER_USAGE_CONTIGUOUS = 1u << 5, /* physically contiguous memory (CMA) */
};

#define DMABROKER_USAGE_ALL 0x3fu
#define DMABROKER_USAGE_DEVICE (DMABROKER_USAGE_SCANOUT | DMABROKER_USAGE_CAPTURE | DMABROKER_USAGE_GPU)

/* SPDX-License-Identifier: MIT */
/* The same frame handoff through PipeWire (pipewire.c). */
#pragma once

#include <stddef.h>
#include <stdint.h>

/*
 * Starts a private PipeWire daemon, a driving producer stream here and a
 * consumer stream in a child (pin_peer() called in the daemon and the
 * consumer), links them, and fills lat with frames one-way latencies in
 * ns. 0, or -1 with a reason in error.
 */
int pipewire_handoff(unsigned frames, int (*pin_peer)(void), uint64_t *lat, char *error, size_t error_len);

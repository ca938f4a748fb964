/* SPDX-License-Identifier: MIT */
/*
 * Fields of the protocol's D-Bus messages that the daemon and the library
 * read or write the same way: a frame's damage, a(iiii) (QueueFrame,
 * FrameReady), and an optional fd, ah (fences, the counters memfd).
 */
#pragma once

#include <stdint.h>

#include <systemd/sd-bus.h>

/*
 * Reads a(iiii) into damage (at most max rectangles: more than that is the
 * whole frame, *n = 0). Returns >= 0, or a negative errno from sd-bus.
 */
int bus_read_damage(sd_bus_message *m, int32_t (*damage)[4], unsigned max, unsigned *n);

/* Appends fd as an "ah" of one fd, or of none when fd < 0. */
int bus_append_optional_fd(sd_bus_message *m, int fd);

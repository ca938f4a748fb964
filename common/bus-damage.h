/* SPDX-License-Identifier: MIT */
/*
 * A frame's damage on D-Bus, a(iiii) (QueueFrame, FrameReady): read the
 * same way by the daemon and the library.
 */
#pragma once

#include <stdint.h>

#include <systemd/sd-bus.h>

/*
 * Reads a(iiii) into damage (at most max rectangles: more than that is the
 * whole frame, *n = 0). Returns >= 0, or a negative errno from sd-bus.
 */
int bus_read_damage(sd_bus_message *m, int32_t (*damage)[4], unsigned max, unsigned *n);

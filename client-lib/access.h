/* SPDX-License-Identifier: MIT */
/* Access (access.c). */
#pragma once

#include <systemd/sd-bus.h>

/* Reads "ah" holding zero or one fd into *ret (a duplicate the caller owns, or -1). */
int read_fence_array(sd_bus_message *m, int *ret);

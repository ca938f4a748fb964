/* SPDX-License-Identifier: MIT */
#include <stdbool.h>

#include "bus-fields.h"

int bus_read_damage(sd_bus_message *m, int32_t (*damage)[4], unsigned max, unsigned *n)
{
	int32_t x, y, w, h;
	bool whole = false;
	int r = sd_bus_message_enter_container(m, 'a', "(iiii)");

	*n = 0;
	while (r >= 0 && (r = sd_bus_message_read(m, "(iiii)", &x, &y, &w, &h)) > 0) {
		if (whole || *n == max) {
			whole = true; /* more than max: the whole frame is damaged */
			continue;
		}
		damage[*n][0] = x;
		damage[*n][1] = y;
		damage[*n][2] = w;
		damage[(*n)++][3] = h;
	}
	if (whole)
		*n = 0;
	if (r >= 0)
		r = sd_bus_message_exit_container(m);
	return r;
}

int bus_append_optional_fd(sd_bus_message *m, int fd)
{
	return fd >= 0 ? sd_bus_message_append(m, "ah", 1, fd) : sd_bus_message_append(m, "ah", 0);
}

/* SPDX-License-Identifier: MIT */
/*
 * The protocol's errors (errors.h) as an sd-bus error map, for the D-Bus
 * transports: the daemon's bus front end and the client library.
 */
#pragma once

#include <systemd/sd-bus.h>

#include "errors.h"

static const sd_bus_error_map dmabroker_error_map[] = {
#define X(id, code, name, errnum) SD_BUS_ERROR_MAP(name, errnum),
	DMABROKER_ERRORS(X)
#undef X
	SD_BUS_ERROR_MAP_END
};

/* SPDX-License-Identifier: MIT */
#include <string.h>

#include "errors.h"

int dmabroker_error_code_of(const char *name)
{
	if (!name)
		return DMABROKER_E_NONE;
#define X(id, c, n, errnum) if (strcmp(name, n) == 0) return c;
	DMABROKER_ERRORS(X)
#undef X
	return DMABROKER_E_NONE;
}

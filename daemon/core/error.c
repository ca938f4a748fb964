/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "error.h"

/* An error already set is kept: the first cause wins. */
static int set(struct error *e, int code, int errnum, const char *message)
{
	if (errnum < 0)
		errnum = -errnum;
	if (errnum == 0)
		errnum = EIO;
	if (e && !error_is_set(e)) {
		e->code = code;
		e->errnum = errnum;
		snprintf(e->message, sizeof(e->message), "%s", message ? message : strerror(errnum));
	}
	return -errnum;
}

int error_setf(struct error *e, int code, const char *fmt, ...)
{
	char message[sizeof(e->message)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);
	return set(e, code, dmabroker_error_code_errno(code), message);
}

int error_set(struct error *e, int code, const char *message)
{
	return set(e, code, dmabroker_error_code_errno(code), message);
}

int error_set_errnof(struct error *e, int r, const char *fmt, ...)
{
	char message[sizeof(e->message)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);
	return set(e, DMABROKER_E_NONE, r, message);
}

int error_set_errno(struct error *e, int r)
{
	return set(e, DMABROKER_E_NONE, r, NULL);
}

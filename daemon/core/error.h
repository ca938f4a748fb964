/* SPDX-License-Identifier: MIT */
/*
 * What a core operation says when it refuses: one of the protocol's named
 * errors (protocol/errors.h) or a system errno, with a message for the
 * client. The core knows no transport: the D-Bus front end turns this into
 * an error reply (bus/bus-error.c), the access channel into an ERROR
 * message with the code (channel/access-channel.c).
 */
#pragma once

#include <stdbool.h>

#include "errors.h"

struct error {
	int code;                       /* enum dmabroker_error_code; DMABROKER_E_NONE: errnum alone */
	int errnum;                     /* the positive errno (the code's, or the system's) */
	char message[512];              /* printable: client strings are escaped by the caller */
};

#define ERROR_NULL ((struct error){ 0 })

/* Sets e (if not NULL) to a named error; returns its negative errno. */
int error_setf(struct error *e, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int error_set(struct error *e, int code, const char *message);
/* Sets e (if not NULL) to the system error r (negative errno); returns r. */
int error_set_errnof(struct error *e, int r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int error_set_errno(struct error *e, int r);
static inline bool error_is_set(const struct error *e)
{
	return e && e->errnum != 0;
}
/* The D-Bus name of e: its named error's, or NULL for a system errno. */
static inline const char *error_name(const struct error *e)
{
	return dmabroker_error_code_name(e->code);
}

/* SPDX-License-Identifier: MIT */
/*
 * The protocol's named errors, one table: each has a code (what the daemon's
 * core returns, and what the access channel's ERROR carries on the wire), a
 * D-Bus name (org.dmabroker.Error.*, what D-Bus replies carry) and the errno
 * the client library returns for it. protocol/org.dmabroker.Broker1.xml
 * documents each of them. Codes are part of the wire format: never reuse or
 * renumber one.
 */
#pragma once

#include <errno.h>

#define DMABROKER_ERROR(n) "org.dmabroker.Error." n

#define ERR_INVALID_ARGUMENT     DMABROKER_ERROR("InvalidArgument")
#define ERR_INVALID_DIMENSIONS   DMABROKER_ERROR("InvalidDimensions")
#define ERR_TOO_LARGE            DMABROKER_ERROR("TooLarge")
#define ERR_UNSUPPORTED_FORMAT   DMABROKER_ERROR("UnsupportedFormat")
#define ERR_UNSUPPORTED_MODIFIER DMABROKER_ERROR("UnsupportedModifier")
#define ERR_NO_BACKEND           DMABROKER_ERROR("NoBackend")
#define ERR_ALLOCATION_FAILED    DMABROKER_ERROR("AllocationFailed")
#define ERR_NOT_A_DMABUF         DMABROKER_ERROR("NotADmaBuf")
#define ERR_PLANES_DO_NOT_FIT    DMABROKER_ERROR("PlanesDoNotFit")
#define ERR_UNKNOWN_BUFFER       DMABROKER_ERROR("UnknownBuffer")
#define ERR_NOT_PERMITTED        DMABROKER_ERROR("NotPermitted")
#define ERR_TOKEN_UNKNOWN        DMABROKER_ERROR("TokenUnknown")
#define ERR_TOKEN_EXPIRED        DMABROKER_ERROR("TokenExpired")
#define ERR_TOKEN_USED           DMABROKER_ERROR("TokenUsed")
#define ERR_QUOTA_EXCEEDED       DMABROKER_ERROR("QuotaExceeded")
#define ERR_LIMIT_REACHED        DMABROKER_ERROR("LimitReached")
#define ERR_UNKNOWN_ATTACHMENT   DMABROKER_ERROR("UnknownAttachment")
#define ERR_UNKNOWN_GRANT        DMABROKER_ERROR("UnknownGrant")
#define ERR_BUSY                 DMABROKER_ERROR("Busy")
#define ERR_WOULD_DEADLOCK       DMABROKER_ERROR("WouldDeadlock")
#define ERR_PINNED               DMABROKER_ERROR("Pinned")
#define ERR_UNKNOWN_STREAM       DMABROKER_ERROR("UnknownStream")
#define ERR_NAME_TAKEN           DMABROKER_ERROR("NameTaken")
#define ERR_NEGOTIATION_FAILED   DMABROKER_ERROR("NegotiationFailed")
#define ERR_STREAM_ENDED         DMABROKER_ERROR("StreamEnded")
#define ERR_NOT_RECLAIMABLE      DMABROKER_ERROR("NotReclaimable")

/* X(code name, code, D-Bus name, errno) */
#define DMABROKER_ERRORS(X) \
	X(INVALID_ARGUMENT, 1, ERR_INVALID_ARGUMENT, EINVAL) \
	X(INVALID_DIMENSIONS, 2, ERR_INVALID_DIMENSIONS, EDOM) \
	X(TOO_LARGE, 3, ERR_TOO_LARGE, EFBIG) \
	X(UNSUPPORTED_FORMAT, 4, ERR_UNSUPPORTED_FORMAT, EPROTONOSUPPORT) \
	X(UNSUPPORTED_MODIFIER, 5, ERR_UNSUPPORTED_MODIFIER, EOPNOTSUPP) \
	X(NO_BACKEND, 6, ERR_NO_BACKEND, ENODEV) \
	X(ALLOCATION_FAILED, 7, ERR_ALLOCATION_FAILED, ENOMEM) \
	X(NOT_A_DMABUF, 8, ERR_NOT_A_DMABUF, EBADFD) \
	X(PLANES_DO_NOT_FIT, 9, ERR_PLANES_DO_NOT_FIT, ERANGE) \
	X(UNKNOWN_BUFFER, 10, ERR_UNKNOWN_BUFFER, ENOENT) \
	X(NOT_PERMITTED, 11, ERR_NOT_PERMITTED, EPERM) \
	X(TOKEN_UNKNOWN, 12, ERR_TOKEN_UNKNOWN, ENOKEY) \
	X(TOKEN_EXPIRED, 13, ERR_TOKEN_EXPIRED, EKEYEXPIRED) \
	X(TOKEN_USED, 14, ERR_TOKEN_USED, EKEYREVOKED) \
	X(QUOTA_EXCEEDED, 15, ERR_QUOTA_EXCEEDED, EDQUOT) \
	X(LIMIT_REACHED, 16, ERR_LIMIT_REACHED, EUSERS) \
	X(UNKNOWN_ATTACHMENT, 17, ERR_UNKNOWN_ATTACHMENT, ESRCH) \
	X(UNKNOWN_GRANT, 18, ERR_UNKNOWN_GRANT, EBADSLT) \
	X(BUSY, 19, ERR_BUSY, EBUSY) \
	X(WOULD_DEADLOCK, 20, ERR_WOULD_DEADLOCK, EDEADLK) \
	X(PINNED, 21, ERR_PINNED, ETXTBSY) \
	X(UNKNOWN_STREAM, 22, ERR_UNKNOWN_STREAM, ENXIO) \
	X(NAME_TAKEN, 23, ERR_NAME_TAKEN, EEXIST) \
	X(NEGOTIATION_FAILED, 24, ERR_NEGOTIATION_FAILED, EPROTO) \
	X(STREAM_ENDED, 25, ERR_STREAM_ENDED, EPIPE) \
	X(NOT_RECLAIMABLE, 26, ERR_NOT_RECLAIMABLE, ESTALE)

enum dmabroker_error_code {
	DMABROKER_E_NONE = 0,           /* no named error: a system errno, or success */
#define X(id, code, name, errnum) DMABROKER_E_##id = code,
	DMABROKER_ERRORS(X)
#undef X
	DMABROKER_E_MAX
};

/* The D-Bus name of code, or NULL when it has none (0, unknown codes). */
static inline const char *dmabroker_error_code_name(int code)
{
	switch (code) {
#define X(id, c, name, errnum) case c: return name;
	DMABROKER_ERRORS(X)
#undef X
	}
	return NULL;
}

/* The (positive) errno the library returns for code, 0 when it has none. */
static inline int dmabroker_error_code_errno(int code)
{
	switch (code) {
#define X(id, c, name, errnum) case c: return errnum;
	DMABROKER_ERRORS(X)
#undef X
	}
	return 0;
}

/* The code of a D-Bus error name, DMABROKER_E_NONE when it is not one of ours. */
int dmabroker_error_code_of(const char *name);

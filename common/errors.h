/* SPDX-License-Identifier: MIT */
/*
 * The protocol's named errors (org.dmabroker.Error.*) and the errno each
 * maps to, for sd-bus's error maps: the daemon replies with the name, the
 * client library returns the negative errno and keeps the name and message.
 * protocol/org.dmabroker.Broker1.xml documents each of them.
 */
#pragma once

#include <errno.h>
#include <systemd/sd-bus.h>

#define DMABROKER_ERROR(n) "org.dmabroker.Error." n

#define ERR_INVALID_ARGUMENT    DMABROKER_ERROR("InvalidArgument")
#define ERR_INVALID_DIMENSIONS  DMABROKER_ERROR("InvalidDimensions")
#define ERR_TOO_LARGE           DMABROKER_ERROR("TooLarge")
#define ERR_UNSUPPORTED_FORMAT  DMABROKER_ERROR("UnsupportedFormat")
#define ERR_UNSUPPORTED_MODIFIER DMABROKER_ERROR("UnsupportedModifier")
#define ERR_NO_BACKEND          DMABROKER_ERROR("NoBackend")
#define ERR_ALLOCATION_FAILED   DMABROKER_ERROR("AllocationFailed")
#define ERR_NOT_A_DMABUF        DMABROKER_ERROR("NotADmaBuf")
#define ERR_PLANES_DO_NOT_FIT   DMABROKER_ERROR("PlanesDoNotFit")
#define ERR_UNKNOWN_BUFFER      DMABROKER_ERROR("UnknownBuffer")
#define ERR_NOT_PERMITTED       DMABROKER_ERROR("NotPermitted")
#define ERR_TOKEN_UNKNOWN       DMABROKER_ERROR("TokenUnknown")
#define ERR_TOKEN_EXPIRED       DMABROKER_ERROR("TokenExpired")
#define ERR_TOKEN_USED          DMABROKER_ERROR("TokenUsed")
#define ERR_QUOTA_EXCEEDED      DMABROKER_ERROR("QuotaExceeded")
#define ERR_LIMIT_REACHED       DMABROKER_ERROR("LimitReached")
#define ERR_UNKNOWN_ATTACHMENT  DMABROKER_ERROR("UnknownAttachment")

static const sd_bus_error_map dmabroker_error_map[] = {
	SD_BUS_ERROR_MAP(ERR_INVALID_ARGUMENT, EINVAL),
	SD_BUS_ERROR_MAP(ERR_INVALID_DIMENSIONS, EDOM),
	SD_BUS_ERROR_MAP(ERR_TOO_LARGE, EFBIG),
	SD_BUS_ERROR_MAP(ERR_UNSUPPORTED_FORMAT, EPROTONOSUPPORT),
	SD_BUS_ERROR_MAP(ERR_UNSUPPORTED_MODIFIER, EOPNOTSUPP),
	SD_BUS_ERROR_MAP(ERR_NO_BACKEND, ENODEV),
	SD_BUS_ERROR_MAP(ERR_ALLOCATION_FAILED, ENOMEM),
	SD_BUS_ERROR_MAP(ERR_NOT_A_DMABUF, EBADFD),
	SD_BUS_ERROR_MAP(ERR_PLANES_DO_NOT_FIT, ERANGE),
	SD_BUS_ERROR_MAP(ERR_UNKNOWN_BUFFER, ENOENT),
	SD_BUS_ERROR_MAP(ERR_NOT_PERMITTED, EPERM),
	SD_BUS_ERROR_MAP(ERR_TOKEN_UNKNOWN, ENOKEY),
	SD_BUS_ERROR_MAP(ERR_TOKEN_EXPIRED, EKEYEXPIRED),
	SD_BUS_ERROR_MAP(ERR_TOKEN_USED, EKEYREVOKED),
	SD_BUS_ERROR_MAP(ERR_QUOTA_EXCEEDED, EDQUOT),
	SD_BUS_ERROR_MAP(ERR_LIMIT_REACHED, EUSERS),
	SD_BUS_ERROR_MAP(ERR_UNKNOWN_ATTACHMENT, ESRCH),
	SD_BUS_ERROR_MAP_END
};

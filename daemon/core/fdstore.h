/* SPDX-License-Identifier: MIT */
/* Keeping buffers across a daemon restart in the service manager's fd store (fdstore.c). */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>


#include "error.h"
#include "format.h"

struct broker;
struct buffer;
struct client;

#define FDSTORE_NAME_MAX 255    /* the longest FDNAME systemd takes */
#define FDSTORE_MAX_UIDS 8      /* holders' uids recorded per buffer; more cannot reclaim it */

/* FLAGS in a stored name */
#define FDSTORE_DMABUF 1u
#define FDSTORE_IMPORTED 2u
#define FDSTORE_NO_POOL 4u      /* another uid held it: never pooled (pool.c) */

/* What a stored name says about its buffer. */
struct fdstore_record {
	uint64_t id, modifier;
	uint32_t width, height, fourcc, usage, flags;
	uid_t owner_uid;
	char backend[64];               /* "heap:system", or "-" for none */
	struct layout layout;           /* planes; size is not recorded */
	uid_t uids[FDSTORE_MAX_UIDS];   /* who may reclaim it: the uids that held it */
	unsigned n_uids;
};

/*
 * Parses a stored name: "dmabroker.b2." then, all decimal and '.'-separated,
 * ID W H FOURCC MODIFIER USAGE OWNER FLAGS BACKEND N, N times OFFSET STRIDE,
 * K, K times UID; BACKEND with '+' for ':'. The first format,
 * "dmabroker.b.ID...N" with the planes and no uids, is read as held by its
 * owner's uid alone and never pooled (who else held it is not known).
 * Strict: canonical numbers only (no sign, space or leading zero), within
 * range, nothing left over. 0, or -EINVAL with ret undefined.
 */
int fdstore_parse_name(const char *name, struct fdstore_record *ret);
/*
 * Writes rec's name (the current format) into out; uids that would make it
 * longer than FDSTORE_NAME_MAX are left out, the last first. Its length, or
 * -EINVAL (a record no name can describe), -ENAMETOOLONG, -ENOBUFS (size).
 */
int fdstore_format_name(const struct fdstore_record *rec, char *out, size_t size);

/* Puts buf's fd in the fd store (no-op unless fd-store is on). */
void fdstore_add(struct buffer *buf);
/* Takes it out again (buf is freed). */
void fdstore_remove(struct buffer *buf);
/* buf's memory or layout changed: stored again under its new name, if it was stored. */
void fdstore_update(struct buffer *buf);
/* buf's holders changed: stored again if that changes who may reclaim it, or its never-pool mark. */
void fdstore_holders_changed(struct buffer *buf);
/* At start: rebuilds the stored buffers, held until restore-grace ends. How many, or <0. */
int fdstore_restore(struct broker *b);
/*
 * Rebuilds one stored buffer from fd (taken over, closed on failure) and
 * its name, held by b->restored. 0, or <0 when the name is not one of ours
 * or does not fit the fd (the fd store is then told to drop it).
 */
int fdstore_restore_fd(struct broker *b, int fd, const char *name);
/*
 * Reclaim: c takes back n restored buffers, ids[i] shown with c's own fd
 * fds[i] of it. All or nothing: each must have been restored from the fd
 * store and still wait (restore-grace), c's uid must be one that held it
 * before the restart, and fds[i] must be the buffer itself (not O_PATH).
 * 0, or <0 with error set (NotReclaimable, QuotaExceeded), nothing taken.
 */
int fdstore_reclaim(struct client *c, const uint64_t *ids, const int *fds, unsigned n, struct error *error);

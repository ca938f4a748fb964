/* SPDX-License-Identifier: MIT */
/*
 * Access grants: the daemon as the userspace mirror of a dma-buf's
 * reservation object (see docs/ACCESS-MODEL.md).
 *
 * Per buffer, either any number of READ grants or one WRITE grant are
 * active. A request that conflicts with an active grant, or with an earlier
 * request still waiting, waits in one FIFO for the whole broker and is
 * answered when it can be granted (an asynchronous D-Bus reply): waiters are
 * served in order, so writers do not starve. A request for several buffers
 * is granted all at once or not at all, so it never holds some while it
 * waits for others; single requests that would close a cycle of waiting
 * clients are refused with WouldDeadlock (the ww_mutex back-off).
 *
 * Every grant comes with an acquire fence: the release fences of the
 * conflicting accesses before it, merged with what the kernel has on the
 * dma-buf (DMA_BUF_IOCTL_EXPORT_SYNC_FILE). Release fences handed back at
 * EndAccess are kept (watched in the event loop, dropped once signalled,
 * reported when past their deadline) and imported into the dma-buf.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "error.h"
#include "transport.h"
#include "dmabroker-protocol.h"

#include <systemd/sd-event.h>

struct broker;
struct buffer;
struct client;


/*
 * One kept release fence: watched on its own, with its own deadline, set
 * once when it is handed over and never moved, and blamed on the one
 * client that supplied it. Its io source owns the fd, so the fd is closed
 * only after it has left epoll (an fd closed under a live io source leaves
 * a stale epoll registration behind, and sd-event aborts on it).
 */
struct kept_fence {
	int fd;                         /* owned by io */
	struct buffer *buf;
	bool write;
	uint64_t supplier;              /* the client id that handed it over */
	struct client *client;          /* that client while it lives, else NULL */
	sd_event_source *io, *timer;
	uint64_t deadline_usec;
	struct kept_fence *next_in_buffer, *prev_in_buffer;
	struct kept_fence *next_in_client, *prev_in_client;
};

struct grant {
	uint64_t id;
	struct buffer *buf;
	struct client *client;
	uint32_t mode;
	sd_event_source *lease;         /* [fences] hold-timeout, or NULL */
	struct grant *next_in_buffer, *next_in_client;
};

struct resv {                       /* embedded in struct buffer */
	struct grant *grants;
	unsigned readers;
	bool writer;
	struct kept_fence *fences;      /* the last writer's, and the readers' since */
	unsigned n_fences;
	/* The kept fences merged, for acquire fences: the write fences, and
	 * all. Plain fds that no event source watches; rebuilt when stale. */
	int acc_write, acc_all;
	bool acc_stale;
	unsigned waiters;               /* queued requests naming this buffer */
	uint32_t fence_timeouts, grant_timeouts;
};

/* The daemon's own accesses (a move): called when granted, with the
 * acquire fence (the callee owns it; -1 = none). */
typedef void (*access_internal_cb)(struct buffer *buf, struct grant *g, int acquire_fence, void *userdata);

struct request {                    /* a BeginAccess waiting in the queue */
	struct client *client;
	struct completion done;         /* how to answer it (its transport's), or: */
	access_internal_cb internal;    /* the daemon's own request */
	void *userdata;
	unsigned n;
	struct buffer *bufs[DMABROKER_ACCESS_MAX_MULTI];
	uint32_t modes[DMABROKER_ACCESS_MAX_MULTI];
	struct request *next;
};

/*
 * BeginAccess of n buffers (1 to DMABROKER_ACCESS_MAX_MULTI, all or
 * nothing): granted at once and answered through done, or queued (done is
 * kept until it is answered). Returns 1 (answered or queued), or a negative
 * errno with error set.
 */
int access_begin(struct client *c, const struct completion *done, unsigned n, struct buffer **bufs,
		 const uint32_t *modes, uint32_t flags, struct error *error);
/* EndAccess: release_fd is borrowed (-1: the work is done). */
int access_end(struct client *c, uint64_t grant_id, int release_fd, struct error *error);
/*
 * The daemon's own access to buf, ordered with everybody else's: cb runs
 * when granted (maybe at once). Returns 0 or a negative errno.
 */
int access_begin_internal(struct buffer *buf, uint32_t mode, access_internal_cb cb, void *userdata);
/* Ends an internal grant (the work is done). */
void access_end_internal(struct grant *g);
/* Ends c's grants on buf and its queued requests naming buf (it released buf). */
void access_release_buffer(struct buffer *buf, struct client *c);
/*
 * Drops c's requests that would be answered through ops, unanswered (its
 * access channel closed: nobody to answer, and a channel opened later must
 * not get grants for cookies of the old one).
 */
void access_drop_requests(struct client *c, const struct completion_ops *ops);
/* Ends everything c has (it is going away). */
void access_drop_client(struct client *c);
/* Frees buf's kept fences (buf is being freed). */
void access_free_buffer(struct buffer *buf);
/* How many fences buf keeps. */
unsigned access_pending_fences(const struct buffer *buf);
/* Sets up buf's reservation (buf is new). */
void access_init_buffer(struct buffer *buf);
/* c is going away: its kept fences stay (others wait for them), uncharged. */
void access_forget_fences(struct client *c);
/* Drops c's kept fences that have signalled but were not dispatched yet. */
void access_prune_fences(struct client *c);

/* SPDX-License-Identifier: MIT */
/*
 * The books of a stream, kept by whoever gives the producer its buffers
 * back: the daemon for a mailbox stream (daemon/core/stream.c), the
 * producer's library for a FIFO stream (client-lib/stream.c), and, for
 * what a party has taken, the consumer's library too. No transport, no
 * event loop: the callers send what the books tell them to.
 *
 * struct stream_books, per buffer: which parties hold the frame in it
 * (have it, or have it waiting for them), the producer's ready fence and
 * the merge of the holders' release fences. When the last holder lets go,
 * the buffer goes back to the producer with one fence.
 *
 * struct stream_account, per party: the frames it has taken (at most
 * max-acquired) and those that wait for it, in a mailbox slot (a newer
 * frame replaces the one there, which the caller gives back) or in a
 * queue, oldest first.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "dmabroker-protocol.h"

#define STREAM_BOOKS_MAX_BUFFERS DMABROKER_STREAM_MAX_BUFFERS
#define STREAM_BOOKS_MAX_PARTIES 32 /* bits of a holders mask */

struct stream_book {
	uint32_t holders;               /* bit k: party k holds the frame, or it waits for k */
	int ready_fence;                /* the producer's, while the frame is out; -1: none */
	int release_fence;              /* the merge of the holders' release fences; -1: none */
};

struct stream_books {
	struct stream_book buf[STREAM_BOOKS_MAX_BUFFERS];
};

struct stream_account {
	unsigned max_acquired;
	uint32_t acquired;              /* bit i: it has taken frame i and not let go of it */
	int slot;                       /* mailbox: the newest frame waiting for it, or -1 */
	uint8_t queue[STREAM_BOOKS_MAX_BUFFERS]; /* otherwise: frames waiting for it */
	unsigned q_head, q_len;
};

void stream_books_init(struct stream_books *b);
/* Closes every fence and forgets every holder: the books as init left them. */
void stream_books_reset(struct stream_books *b);
/* The producer sends out frame i; ready_fence is taken over (-1: none). */
void stream_books_send(struct stream_books *b, unsigned i, int ready_fence);
/* Frame i is party k's, or waits for it. */
void stream_books_hold(struct stream_books *b, unsigned i, unsigned k);
bool stream_books_holds(const struct stream_books *b, unsigned i, unsigned k);
/* Whether frame i is out: some party holds it. */
bool stream_books_out(const struct stream_books *b, unsigned i);
/*
 * Party k lets go of frame i with release_fence (taken over, -1: none),
 * merged into the others'. True when k was its last holder: the caller
 * gives buffer i back (stream_books_give_back).
 */
bool stream_books_let_go(struct stream_books *b, unsigned i, unsigned k, int release_fence);
/* Party k is gone: it lets go of every frame. Returns the buffers it was the last holder of (bit i). */
uint32_t stream_books_drop(struct stream_books *b, unsigned k);
/*
 * Buffer i goes back to the producer: returns the fence it waits for
 * before writing (the caller's, -1: none), the merge of the release
 * fences and, for a frame nobody waited for (dropped), the ready fence
 * until it has signalled, so that it still orders after its own writes.
 */
int stream_books_give_back(struct stream_books *b, unsigned i);

void stream_account_init(struct stream_account *a, unsigned max_acquired);
/* Under max-acquired: it may take one more frame. */
bool stream_account_may_acquire(const struct stream_account *a);
/* It takes frame i (whether it may is the caller's to check). */
void stream_account_acquire(struct stream_account *a, unsigned i);
bool stream_account_holds(const struct stream_account *a, unsigned i);
/* It lets go of frame i: false when it did not hold it. */
bool stream_account_release(struct stream_account *a, unsigned i);
/* Whether frames wait for it. */
bool stream_account_waiting(const struct stream_account *a);
/*
 * Frame i for the party: 1 when it may have it now (nothing waits before
 * it and it is under max-acquired; the caller sends it and acquires it),
 * 0 when it waits: in the slot when mailbox (*replaced is then the frame
 * it replaced there, which the caller gives back, or -1), else at the end
 * of the queue.
 */
int stream_account_offer(struct stream_account *a, unsigned i, bool mailbox, int *replaced);
/* The next frame waiting for it (the slot's, then the queue's), taken off, if it may acquire one; else -1. */
int stream_account_next(struct stream_account *a);
/*
 * The party leaves: one frame it has, taken out of its account (those it
 * acquired, lowest first; then the slot's; then the queue's, oldest
 * first), or -1 when it has none left.
 */
int stream_account_drop(struct stream_account *a);

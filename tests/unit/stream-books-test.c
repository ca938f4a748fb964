/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of common/stream-books.c, the books the daemon keeps for a
 * mailbox stream and the library for a FIFO stream: holders, a buffer given
 * back only by its last holder, the fences it goes back with, max-acquired,
 * the mailbox slot, the order of the waiting queue and of a leaving party's
 * frames.
 *
 * The host makes no sync_file (no sw_sync, no dma-buf exporter), so the
 * fences here are eventfds: pending until written, signalled after, as
 * fence_status() sees them. That covers which fence goes back, which is
 * closed, and that nothing leaks; the merge of two real fences
 * (fence_merge) is not reached here: two eventfds cannot be merged, and the
 * books then keep the first and close the second. The VM tests
 * (stream-fences) merge real ones.
 */
#include <fcntl.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "stream-books.h"
#include "tap.h"

TAP_DEFINE;

static bool is_open(int fd)
{
	return fcntl(fd, F_GETFD) >= 0;
}

/* A fence stand-in: pending, or signalled. */
static int fence(bool signalled)
{
	int fd = eventfd(signalled ? 1 : 0, EFD_CLOEXEC);
	if (fd < 0)
		abort();
	return fd;
}

static bool step_holders(void)
{
	struct stream_books b;

	stream_books_init(&b);
	CHECK(!stream_books_out(&b, 3));
	stream_books_send(&b, 3, -1);
	stream_books_hold(&b, 3, 0);
	stream_books_hold(&b, 3, 5);
	CHECK(stream_books_out(&b, 3) && stream_books_holds(&b, 3, 0) && stream_books_holds(&b, 3, 5));
	CHECK(!stream_books_holds(&b, 3, 1) && !stream_books_out(&b, 2));
	CHECK(!stream_books_let_go(&b, 3, 0, -1)); /* 5 still holds it */
	CHECK(!stream_books_holds(&b, 3, 0) && stream_books_holds(&b, 3, 5) && stream_books_out(&b, 3));
	CHECK(stream_books_let_go(&b, 3, 5, -1)); /* the last one */
	CHECK(!stream_books_out(&b, 3));
	CHECK(stream_books_give_back(&b, 3) == -1); /* no fence either way */
	return true;
}

/* A party that goes lets go of all it holds: the buffers it held last are freed, the others stay out. */
static bool step_drop(void)
{
	struct stream_books b;

	stream_books_init(&b);
	stream_books_hold(&b, 0, 1);
	stream_books_hold(&b, 1, 1);
	stream_books_hold(&b, 1, 2);
	stream_books_hold(&b, 15, 1);
	stream_books_hold(&b, 4, 2);
	CHECK(stream_books_drop(&b, 1) == ((1u << 0) | (1u << 15)));
	CHECK(!stream_books_out(&b, 0) && !stream_books_out(&b, 15));
	CHECK(stream_books_out(&b, 1) && stream_books_holds(&b, 1, 2) && !stream_books_holds(&b, 1, 1));
	CHECK(stream_books_drop(&b, 1) == 0); /* nothing left */
	CHECK(stream_books_drop(&b, 2) == ((1u << 1) | (1u << 4)));
	return true;
}

/* The fence a buffer goes back with: the release fence; a ready fence only while it is pending. */
static bool step_give_back_fences(void)
{
	struct stream_books b;
	int release = fence(false), ready = fence(false), got;

	stream_books_init(&b);
	/* one holder's release fence goes back as it is; a signalled ready fence is closed */
	stream_books_send(&b, 0, ready);
	stream_books_hold(&b, 0, 0);
	CHECK(write(ready, &(uint64_t){ 1 }, 8) == 8);
	CHECK(stream_books_let_go(&b, 0, 0, release));
	got = stream_books_give_back(&b, 0);
	CHECK(got == release && is_open(release));
	CHECK(!is_open(ready));
	CHECK(b.buf[0].ready_fence == -1 && b.buf[0].release_fence == -1);
	close(got);

	/* a frame nobody released with a fence (dropped): it goes back with its pending ready fence */
	ready = fence(false);
	stream_books_send(&b, 1, ready);
	stream_books_hold(&b, 1, 3);
	CHECK(stream_books_let_go(&b, 1, 3, -1));
	got = stream_books_give_back(&b, 1);
	CHECK(got == ready && is_open(ready));
	close(got);

	/* the same dropped frame, its ready fence signalled: nothing to wait for */
	ready = fence(true);
	stream_books_send(&b, 1, ready);
	CHECK(stream_books_give_back(&b, 1) == -1 && !is_open(ready));
	return true;
}

/*
 * Two holders' release fences are merged. Eventfds do not merge: the books
 * keep the first and close the second (fence_accumulate), and a pending
 * ready fence that cannot be merged is closed too; nothing leaks.
 */
static bool step_release_fences_accumulate(void)
{
	struct stream_books b;
	int first = fence(false), second = fence(false), ready = fence(false), got;

	stream_books_init(&b);
	stream_books_send(&b, 7, ready);
	stream_books_hold(&b, 7, 0);
	stream_books_hold(&b, 7, 1);
	CHECK(!stream_books_let_go(&b, 7, 1, first));
	CHECK(b.buf[7].release_fence == first);
	CHECK(stream_books_let_go(&b, 7, 0, second));
	CHECK(b.buf[7].release_fence == first && !is_open(second));
	got = stream_books_give_back(&b, 7);
	CHECK(got == first && is_open(first) && !is_open(ready));
	close(got);
	return true;
}

static bool step_reset_closes(void)
{
	struct stream_books b;
	int ready = fence(false), release = fence(false);

	stream_books_init(&b);
	stream_books_send(&b, 2, ready);
	stream_books_hold(&b, 2, 0);
	stream_books_hold(&b, 2, 1);
	CHECK(!stream_books_let_go(&b, 2, 1, release));
	stream_books_reset(&b);
	CHECK(!is_open(ready) && !is_open(release));
	CHECK(!stream_books_out(&b, 2) && b.buf[2].ready_fence == -1 && b.buf[2].release_fence == -1);
	stream_books_reset(&b); /* again: nothing to close */
	return true;
}

/* At max-acquired a frame waits; it goes once the party lets go of one. */
static bool step_max_acquired(void)
{
	struct stream_account a;
	int replaced;

	stream_account_init(&a, 2);
	for (unsigned i = 0; i < 2; i++) {
		CHECK(stream_account_may_acquire(&a));
		CHECK(stream_account_offer(&a, i, false, &replaced) == 1 && replaced == -1);
		stream_account_acquire(&a, i);
	}
	CHECK(!stream_account_may_acquire(&a));
	CHECK(stream_account_offer(&a, 2, false, &replaced) == 0 && replaced == -1);
	CHECK(stream_account_waiting(&a));
	CHECK(stream_account_next(&a) == -1); /* refused: at its limit */
	CHECK(!stream_account_release(&a, 2)); /* not one it holds */
	CHECK(!stream_account_holds(&a, 99));
	CHECK(stream_account_release(&a, 1) && !stream_account_holds(&a, 1));
	CHECK(stream_account_next(&a) == 2);
	stream_account_acquire(&a, 2);
	CHECK(!stream_account_waiting(&a) && stream_account_next(&a) == -1);
	CHECK(stream_account_holds(&a, 0) && stream_account_holds(&a, 2) && !stream_account_may_acquire(&a));

	/* max-acquired 0 (a library's own account before StreamBuffers): never under it */
	stream_account_init(&a, 0);
	CHECK(!stream_account_may_acquire(&a));
	return true;
}

/* Mailbox: a frame waits in the one slot; a newer one replaces it, and the older is handed back. */
static bool step_mailbox(void)
{
	struct stream_account a;
	int replaced;

	stream_account_init(&a, 1);
	CHECK(stream_account_offer(&a, 0, true, &replaced) == 1 && replaced == -1);
	stream_account_acquire(&a, 0);
	CHECK(stream_account_offer(&a, 1, true, &replaced) == 0 && replaced == -1);
	CHECK(stream_account_offer(&a, 2, true, &replaced) == 0 && replaced == 1);
	CHECK(stream_account_offer(&a, 3, true, &replaced) == 0 && replaced == 2);
	CHECK(stream_account_release(&a, 0));
	/* under its limit again, but the slot is not empty: a new frame still waits behind it */
	CHECK(stream_account_offer(&a, 4, true, &replaced) == 0 && replaced == 3);
	CHECK(stream_account_next(&a) == 4);
	CHECK(!stream_account_waiting(&a) && stream_account_next(&a) == -1);
	return true;
}

/* FIFO: frames wait in the order they came, across the ring's end. */
static bool step_queue_order(void)
{
	struct stream_account a;
	unsigned held = 15, next = 0;
	int replaced;

	stream_account_init(&a, 1);
	stream_account_acquire(&a, held);
	/* 3 rounds of 11: the ring of 16 wraps around */
	for (unsigned round = 0; round < 3; round++) {
		for (unsigned k = 0; k < 11; k++)
			CHECK(stream_account_offer(&a, (round * 11 + k) % 15, false, &replaced) == 0 && replaced == -1);
		for (unsigned k = 0; k < 11; k++) {
			CHECK(stream_account_next(&a) == -1); /* it holds one: max-acquired */
			CHECK(stream_account_release(&a, held));
			CHECK(stream_account_next(&a) == (int)(next++ % 15));
			held = (next - 1) % 15;
			stream_account_acquire(&a, held);
		}
		CHECK(!stream_account_waiting(&a));
	}
	return true;
}

/* A party that leaves gives back what it acquired (lowest first), then its slot's, then its queue's. */
static bool step_drop_order(void)
{
	static const int expect[] = { 1, 6, 9, 4, 12, 0, -1 };
	struct stream_account a;
	int replaced;

	stream_account_init(&a, 3);
	stream_account_acquire(&a, 9);
	stream_account_acquire(&a, 1);
	stream_account_acquire(&a, 6);
	CHECK(stream_account_offer(&a, 4, true, &replaced) == 0); /* slot */
	CHECK(stream_account_offer(&a, 12, false, &replaced) == 0); /* queue, after the slot */
	CHECK(stream_account_offer(&a, 0, false, &replaced) == 0);
	for (unsigned k = 0; k < sizeof(expect) / sizeof(expect[0]); k++)
		CHECK(stream_account_drop(&a) == expect[k]);
	CHECK(!stream_account_waiting(&a) && a.acquired == 0);
	return true;
}

int main(void)
{
	tap_plan(9);
	tap_step("holders are set and cleared per party; the last one frees the buffer", step_holders);
	tap_step("a party that goes frees the buffers it held last", step_drop);
	tap_step("a buffer goes back with its release fence, or its ready fence while pending", step_give_back_fences);
	tap_step("release fences accumulate; one that cannot merge is closed", step_release_fences_accumulate);
	tap_step("reset closes every fence", step_reset_closes);
	tap_step("max-acquired: a frame waits at the limit", step_max_acquired);
	tap_step("mailbox: a newer frame replaces the waiting one, which is handed back", step_mailbox);
	tap_step("the queue keeps the order frames came in", step_queue_order);
	tap_step("a leaving party's frames: acquired, slot, queue", step_drop_order);
	return tap_done();
}

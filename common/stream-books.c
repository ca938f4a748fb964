/* SPDX-License-Identifier: MIT */
#include "cleanup.h"
#include "fence.h"
#include "stream-books.h"

_Static_assert(DMABROKER_STREAM_MAX_CONSUMERS <= STREAM_BOOKS_MAX_PARTIES, "a holders mask has a bit per party");
_Static_assert(STREAM_BOOKS_MAX_BUFFERS <= 32 && STREAM_BOOKS_MAX_BUFFERS <= 256,
	       "an acquired mask has a bit per buffer; a queue entry is a uint8_t");

void stream_books_init(struct stream_books *b)
{
	for (unsigned i = 0; i < STREAM_BOOKS_MAX_BUFFERS; i++)
		b->buf[i] = (struct stream_book){ .ready_fence = -1, .release_fence = -1 };
}

void stream_books_reset(struct stream_books *b)
{
	for (unsigned i = 0; i < STREAM_BOOKS_MAX_BUFFERS; i++) {
		safe_close(b->buf[i].ready_fence);
		safe_close(b->buf[i].release_fence);
	}
	stream_books_init(b);
}

void stream_books_send(struct stream_books *b, unsigned i, int ready_fence)
{
	b->buf[i].ready_fence = ready_fence;
}

void stream_books_hold(struct stream_books *b, unsigned i, unsigned k)
{
	b->buf[i].holders |= 1u << k;
}

bool stream_books_holds(const struct stream_books *b, unsigned i, unsigned k)
{
	return b->buf[i].holders & (1u << k);
}

bool stream_books_out(const struct stream_books *b, unsigned i)
{
	return b->buf[i].holders != 0;
}

bool stream_books_let_go(struct stream_books *b, unsigned i, unsigned k, int release_fence)
{
	struct stream_book *book = &b->buf[i];

	fence_accumulate(&book->release_fence, release_fence);
	book->holders &= ~(1u << k);
	return book->holders == 0;
}

uint32_t stream_books_drop(struct stream_books *b, unsigned k)
{
	uint32_t freed = 0;

	for (unsigned i = 0; i < STREAM_BOOKS_MAX_BUFFERS; i++)
		if (stream_books_holds(b, i, k) && stream_books_let_go(b, i, k, -1))
			freed |= 1u << i;
	return freed;
}

int stream_books_give_back(struct stream_books *b, unsigned i)
{
	struct stream_book *book = &b->buf[i];
	int release = TAKE_FD(book->release_fence);

	/* A frame nobody waited for (dropped) still orders after its own writes. */
	if (book->ready_fence >= 0 && fence_status(book->ready_fence) != 1)
		fence_accumulate(&release, book->ready_fence);
	else
		safe_close(book->ready_fence);
	book->ready_fence = -1;
	return release;
}

void stream_account_init(struct stream_account *a, unsigned max_acquired)
{
	*a = (struct stream_account){ .max_acquired = max_acquired, .slot = -1 };
}

bool stream_account_may_acquire(const struct stream_account *a)
{
	return (unsigned)__builtin_popcount(a->acquired) < a->max_acquired;
}

void stream_account_acquire(struct stream_account *a, unsigned i)
{
	a->acquired |= 1u << i;
}

bool stream_account_holds(const struct stream_account *a, unsigned i)
{
	return i < STREAM_BOOKS_MAX_BUFFERS && (a->acquired & (1u << i));
}

bool stream_account_release(struct stream_account *a, unsigned i)
{
	if (!stream_account_holds(a, i))
		return false;
	a->acquired &= ~(1u << i);
	return true;
}

bool stream_account_waiting(const struct stream_account *a)
{
	return a->slot >= 0 || a->q_len > 0;
}

int stream_account_offer(struct stream_account *a, unsigned i, bool mailbox, int *replaced)
{
	*replaced = -1;
	if (stream_account_may_acquire(a) && !stream_account_waiting(a))
		return 1;
	if (mailbox) {
		*replaced = a->slot;
		a->slot = (int)i;
	} else {
		a->queue[(a->q_head + a->q_len++) % STREAM_BOOKS_MAX_BUFFERS] = (uint8_t)i;
	}
	return 0;
}

static int queue_pop(struct stream_account *a)
{
	unsigned i;

	if (!a->q_len)
		return -1;
	i = a->queue[a->q_head];
	a->q_head = (a->q_head + 1) % STREAM_BOOKS_MAX_BUFFERS;
	a->q_len--;
	return (int)i;
}

static int slot_or_queue(struct stream_account *a)
{
	int i = a->slot;

	if (i < 0)
		return queue_pop(a);
	a->slot = -1;
	return i;
}

int stream_account_next(struct stream_account *a)
{
	if (!stream_account_may_acquire(a))
		return -1;
	return slot_or_queue(a);
}

int stream_account_drop(struct stream_account *a)
{
	if (a->acquired) {
		unsigned i = (unsigned)__builtin_ctz(a->acquired);
		a->acquired &= ~(1u << i);
		return (int)i;
	}
	return slot_or_queue(a);
}

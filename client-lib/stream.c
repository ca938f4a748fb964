/* SPDX-License-Identifier: MIT */
/*
 * Streams, client side: the producer's free buffers and the consumer's
 * frames queue here as they arrive; dequeue/acquire take from that queue
 * without a round trip, queue/release are one-way messages.
 *
 * FIFO streams are peer to peer (protocol/stream-wire.h): frames go from the
 * producer straight to each consumer on a channel the daemon set up, and
 * releases straight back. So the books the daemon keeps for a mailbox
 * stream are kept here, with the same module (common/stream-books.h):
 * the producer knows which consumers hold each buffer and merges their
 * release fences, a consumer holds at most max-acquired frames, and both
 * import the fences they send into the dma-buf. Mailbox streams go through the daemon (its signals on the
 * direct connection).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <linux/dma-buf.h>

#include "bus-fields.h"
#include "cleanup.h"
#include "errors.h"
#include "fdmsg.h"
#include "fence.h"
#include "internal.h"
#include "access.h"
#include "buffers.h"
#include "connection.h"
#include "stream.h"
#include "stream-books.h"
#include "stream-wire.h"

#define MAX_BUFFERS 16
#define MAX_PEERS 8 /* the daemon's consumers per stream */

/* One end of a FIFO stream's peer channel. */
struct peer {
	struct dmabroker_stream *s;
	uint32_t id;                    /* the consumer's */
	int fd;                         /* -1: gone */
	sd_event_source *source;
};

struct dmabroker_stream {
	struct dmabroker *b;
	uint64_t id;
	bool producer, ready, ended;
	int error;                      /* a failure to report (<0), from a reply or StreamError */
	sd_bus_error err;
	sd_bus_slot *buffers_call;      /* StreamBuffers, until answered */
	uint32_t width, height, fourcc;
	uint64_t modifier;
	char backend[64];
	enum dmabroker_stream_mode mode;
	unsigned n_buffers;
	struct dmabroker_buffer *buffers[MAX_BUFFERS];
	void *maps[MAX_BUFFERS];
	struct dmabroker_frame queue[MAX_BUFFERS]; /* free buffers or frames */
	unsigned q_head, q_len;
	dmabroker_stream_callback cb;
	void *userdata;
	/* FIFO: peer to peer */
	bool peer;
	struct peer peers[MAX_PEERS];   /* producer: one per consumer; consumer: [0] */
	struct stream_wire_counters *counters; /* ours to count in, mapped (NULL: not counting) */
	uint32_t have;                  /* consumer: bit i: frame i is here (queued or taken) */
	/* what the application took: a consumer's frames (acquire; max-acquired), a producer's buffers (dequeue) */
	struct stream_account taken;
	struct stream_books books;      /* producer: who holds each buffer (bit k: peers[k]), its fences */
	uint64_t daemon_checked_ms;     /* producer: when check_daemon() last looked */
	struct dmabroker_stream *next;
};

static struct dmabroker_stream *find(struct dmabroker *b, uint64_t id)
{
	for (struct dmabroker_stream *s = b->streams; s; s = s->next)
		if (s->id == id)
			return s;
	return NULL;
}

static void notify(struct dmabroker_stream *s)
{
	struct dmabroker *b = s->b;

	if (s->cb)
		s->cb(s, s->userdata);
	if (b->listener.stream)
		b->listener.stream(b, s, b->listener_userdata);
}

static void fail(struct dmabroker_stream *s, const sd_bus_error *e, int r)
{
	sd_bus_error_free(&s->err);
	if (e && sd_bus_error_is_set(e)) {
		sd_bus_error_copy(&s->err, e);
		r = -sd_bus_error_get_errno(e);
	}
	s->error = r < 0 ? r : -EIO;
	notify(s);
}

static int report(struct dmabroker_stream *s)
{
	int r = s->error;
	s->error = 0;
	return set_error(s->b, sd_bus_error_is_set(&s->err) ? &s->err : NULL, r);
}

static void push(struct dmabroker_stream *s, const struct dmabroker_frame *f)
{
	if (s->q_len == MAX_BUFFERS) { /* cannot happen: the daemon sends at most one per buffer */
		safe_close(f->fence);
		return;
	}
	s->queue[(s->q_head + s->q_len++) % MAX_BUFFERS] = *f;
}

/* ---- FIFO streams: the peer channels ---- */

static int peer_send(int fd, const struct stream_wire *w, int fence)
{
	return fdmsg_send(fd, w, STREAM_WIRE_SIZE(w->n_damage), fence);
}

/*
 * Receives one message: 1 with *w and *fence (ours, or -1), 0 at the end
 * of the channel, -EAGAIN when nothing is there, -EBADMSG for a message
 * that is not one (its fds closed), other negative errno.
 */
static int peer_recv(int fd, struct stream_wire *w, int *fence)
{
	ssize_t n = fdmsg_recv(fd, w, sizeof(*w), fence, MSG_DONTWAIT);

	/*
	 * The other end was closed with messages of ours unread (a producer
	 * that stops reading releases once it has queued its last frame): the
	 * kernel says so once, ahead of what it sent us, which is still here
	 * to read, before the end.
	 */
	if (n == -ECONNRESET)
		n = fdmsg_recv(fd, w, sizeof(*w), fence, MSG_DONTWAIT);
	if (n <= 0)
		return n == -EMSGSIZE ? -EBADMSG : (int)n;
	if ((size_t)n < STREAM_WIRE_HEADER_SIZE || w->n_damage > STREAM_WIRE_MAX_DAMAGE ||
	    (size_t)n != STREAM_WIRE_SIZE(w->n_damage) || (*fence >= 0 && !fence_is_sync_file(*fence))) {
		*fence = safe_close(*fence);
		return -EBADMSG;
	}
	return 1;
}

/* Producer: buffer i is free again, with the merge of its release fences. */
static void give_back(struct dmabroker_stream *s, unsigned i)
{
	push(s, &(struct dmabroker_frame){ .index = i, .fence = stream_books_give_back(&s->books, i) });
}

/*
 * The channel ended (the daemon shut it: the other party left or died) or
 * we cut it off (the other party broke the protocol). Shut down, not only
 * closed: the daemon holds a copy of both ends, so a close alone would leave
 * the other party waiting on a channel nobody reads.
 */
static void peer_gone(struct peer *p)
{
	struct dmabroker_stream *s = p->s;
	uint32_t freed;

	p->source = sd_event_source_disable_unref(p->source);
	if (p->fd >= 0)
		shutdown(p->fd, SHUT_RDWR);
	p->fd = safe_close(p->fd);
	if (!s->producer) {
		s->ended = true; /* what is queued here can still be taken */
		return;
	}
	freed = stream_books_drop(&s->books, (unsigned)(p - s->peers));
	for (unsigned i = 0; i < s->n_buffers; i++)
		if (freed & (1u << i))
			give_back(s, i);
}

/* Producer: a consumer released a buffer. fence is taken. */
static int on_release(struct peer *p, const struct stream_wire *w, int fence)
{
	struct dmabroker_stream *s = p->s;
	unsigned i = w->index, k = (unsigned)(p - s->peers);

	if (w->type != STREAM_WIRE_RELEASE || i >= s->n_buffers || !stream_books_holds(&s->books, i, k)) {
		safe_close(fence);
		return -EBADMSG;
	}
	/* the consumer imported it into the dma-buf when it sent it: each side imports what it sends */
	if (stream_books_let_go(&s->books, i, k, fence))
		give_back(s, i);
	return 0;
}

/* Consumer: a frame from the producer. fence is taken. */
static int on_frame(struct dmabroker_stream *s, const struct stream_wire *w, int fence)
{
	struct dmabroker_frame f = {
		.index = w->index, .sequence = w->sequence, .timestamp_ns = w->timestamp_ns, .fence = fence,
		.n_damage = w->n_damage,
	};

	if (w->type != STREAM_WIRE_FRAME || w->index >= s->n_buffers || (s->have & (1u << w->index))) {
		safe_close(fence);
		return -EBADMSG;
	}
	memcpy(f.damage, w->damage, w->n_damage * sizeof(w->damage[0]));
	s->have |= 1u << w->index;
	push(s, &f);
	return 0;
}

static int on_peer(sd_event_source *source, int fd, uint32_t revents, void *userdata)
{
	struct peer *p = userdata;
	struct dmabroker_stream *s = p->s;

	/*
	 * One message a dispatch, as a hand-written receiver would read it: a
	 * second recvmsg to learn that nothing else is there costs a syscall
	 * on every frame, and when more is there the loop comes back at once
	 * (the source is level-triggered).
	 */
	struct stream_wire w;
	int fence, r = peer_recv(fd, &w, &fence);

	if (r == -EAGAIN)
		return 0;
	if (r > 0)
		r = (s->producer ? on_release(p, &w, fence) : on_frame(s, &w, fence)) < 0 ? -EBADMSG : 1;
	if (r <= 0)
		peer_gone(p); /* the end, or a peer that breaks the protocol: treated as gone */
	notify(s);
	return 0;
}

/* Takes fd (ours) as the channel to consumer id. */
static int peer_add(struct dmabroker_stream *s, uint32_t id, int fd)
{
	struct peer *p = NULL;
	int r;

	for (unsigned k = 0; k < MAX_PEERS && !p; k++)
		if (!s->peers[k].s || s->peers[k].fd < 0) /* a gone one holds nothing any more */
			p = &s->peers[k];
	if (!p) {
		close(fd);
		return -EBADMSG;
	}
	*p = (struct peer){ .s = s, .id = id, .fd = fd };
	r = sd_event_add_io(s->b->event, &p->source, fd, EPOLLIN, on_peer, p);
	if (r < 0)
		p->fd = safe_close(p->fd);
	return r;
}

/* StreamBuffers' "uaha(uh)": max-acquired, the counters memfd, the channels. */
static int read_peers(struct dmabroker_stream *s, sd_bus_message *m)
{
	uint32_t max_acquired, id;
	int counters = -1, fd, r = sd_bus_message_read(m, "u", &max_acquired);

	if (r >= 0)
		r = read_fence_array(m, &counters); /* zero or one fd, like a fence */
	if (r >= 0 && counters >= 0) {
		void *map = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, counters, 0);
		s->counters = map == MAP_FAILED ? NULL : map; /* not counting is no reason to fail */
		s->peer = true;
		close(counters);
	}
	s->taken.max_acquired = max_acquired;
	if (r >= 0)
		r = sd_bus_message_enter_container(m, 'a', "(uh)");
	while (r >= 0 && (r = sd_bus_message_read(m, "(uh)", &id, &fd)) > 0) {
		int own;
		r = take_fd(fd, &own);
		if (r >= 0)
			r = peer_add(s, id, own);
	}
	if (r >= 0)
		r = sd_bus_message_exit_container(m);
	return r;
}

static void peers_close(struct dmabroker_stream *s)
{
	for (unsigned k = 0; k < MAX_PEERS; k++) {
		s->peers[k].source = sd_event_source_disable_unref(s->peers[k].source);
		s->peers[k].fd = safe_close(s->peers[k].fd);
	}
	stream_books_reset(&s->books);
	if (s->counters)
		munmap(s->counters, 4096);
	s->counters = NULL;
}

void streams_attach_event(struct dmabroker *b)
{
	for (struct dmabroker_stream *s = b->streams; s; s = s->next)
		for (unsigned k = 0; k < MAX_PEERS; k++) {
			struct peer *p = &s->peers[k];
			if (!p->source)
				continue;
			p->source = sd_event_source_disable_unref(p->source);
			if (sd_event_add_io(b->event, &p->source, p->fd, EPOLLIN, on_peer, p) < 0)
				peer_gone(p);
		}
}

static int on_buffers(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
	struct dmabroker_stream *s = userdata;
	sd_bus_error too_large = SD_BUS_ERROR_NULL;
	const char *backend, *mode;
	int r;

	s->buffers_call = sd_bus_slot_unref(s->buffers_call);
	if (sd_bus_message_is_method_error(m, NULL)) {
		fail(s, sd_bus_message_get_error(m), -EIO);
		return 0;
	}
	r = sd_bus_message_read(m, "uuutss", &s->width, &s->height, &s->fourcc, &s->modifier, &backend, &mode);
	if (r >= 0) {
		snprintf(s->backend, sizeof(s->backend), "%s", backend);
		s->mode = strcmp(mode, "mailbox") == 0 ? DMABROKER_STREAM_MAILBOX : DMABROKER_STREAM_FIFO;
		r = sd_bus_message_enter_container(m, 'a', "(thta(tu))");
	}
	while (r >= 0 && (r = sd_bus_message_enter_container(m, 'r', "thta(tu)")) > 0) {
		struct dmabroker_buffer *buf;
		int fd;
		if (s->n_buffers == MAX_BUFFERS) {
			r = -EBADMSG;
			break;
		}
		buf = buffer_new(s->b);
		if (!buf) {
			r = -ENOMEM;
			break;
		}
		s->buffers[s->n_buffers++] = buf;
		r = sd_bus_message_read(m, "tht", &buf->id, &fd, &buf->size);
		if (r >= 0 && !size_fits(buf->size))
			r = size_refused(buf->size, false, &too_large); /* the stream fails for this party */
		if (r >= 0)
			r = take_fd(fd, &buf->fd);
		if (r >= 0)
			r = read_planes(m, buf);
		if (r >= 0)
			r = sd_bus_message_exit_container(m);
		buf->width = s->width;
		buf->height = s->height;
		buf->fourcc = s->fourcc;
		buf->modifier = s->modifier;
		buf->dmabuf = strcmp(s->backend, "shm") != 0;
		snprintf(buf->backend, sizeof(buf->backend), "%s", s->backend);
	}
	if (r >= 0)
		r = sd_bus_message_exit_container(m);
	if (r >= 0)
		r = read_peers(s, m);
	if (r < 0) {
		fail(s, &too_large, r);
		sd_bus_error_free(&too_large);
		return 0;
	}
	s->ready = true;
	if (s->producer)
		for (unsigned i = 0; i < s->n_buffers; i++)
			push(s, &(struct dmabroker_frame){ .index = i, .fence = -1 });
	notify(s);
	return 0;
}

static int stream_new(struct dmabroker *b, const struct dmabroker_stream_desc *d, bool producer,
		      struct dmabroker_stream **ret)
{
	sd_bus_message *m = NULL, *reply = NULL;
	struct dmabroker_stream *s;
	int r;

	/* version 1 descriptors end before flags */
	if (!d || d->version < 1 || d->version > DMABROKER_STREAM_DESC_VERSION || !d->name ||
	    (d->version >= 2 && (d->flags & ~(DMABROKER_STREAM_PRODUCER_UID | DMABROKER_STREAM_NATIVE))) ||
	    (d->version >= 2 && producer && (d->flags & DMABROKER_STREAM_PRODUCER_UID)))
		return set_error(b, NULL, -EINVAL);
	r = dmabroker_open_direct(b);
	if (r < 0)
		return r;
	r = new_call(b, producer ? "CreateStream" : "JoinStream", &m);
	if (r >= 0)
		r = sd_bus_message_append(m, "s", d->name);
	if (r >= 0)
		r = sd_bus_message_open_container(m, 'a', "{sv}");
	if (r >= 0 && d->label)
		r = sd_bus_message_append(m, "{sv}", "label", "s", d->label);
	if (r >= 0 && d->usage)
		r = sd_bus_message_append(m, "{sv}", "usage", "u", d->usage);
	if (r >= 0 && d->n_formats) {
		r = sd_bus_message_open_container(m, 'e', "sv");
		if (r >= 0)
			r = sd_bus_message_append(m, "s", "formats");
		if (r >= 0)
			r = sd_bus_message_open_container(m, 'v', "au");
		if (r >= 0)
			r = sd_bus_message_append_array(m, 'u', d->formats, d->n_formats * sizeof(uint32_t));
		if (r >= 0)
			r = sd_bus_message_close_container(m);
		if (r >= 0)
			r = sd_bus_message_close_container(m);
	}
	if (r >= 0 && d->n_modifiers) {
		r = sd_bus_message_open_container(m, 'e', "sv");
		if (r >= 0)
			r = sd_bus_message_append(m, "s", "modifiers");
		if (r >= 0)
			r = sd_bus_message_open_container(m, 'v', "at");
		if (r >= 0)
			r = sd_bus_message_append_array(m, 't', d->modifiers, d->n_modifiers * sizeof(uint64_t));
		if (r >= 0)
			r = sd_bus_message_close_container(m);
		if (r >= 0)
			r = sd_bus_message_close_container(m);
	}
	if (r >= 0 && d->n_devices) {
		r = sd_bus_message_open_container(m, 'e', "sv");
		if (r >= 0)
			r = sd_bus_message_append(m, "s", "devices");
		if (r >= 0)
			r = sd_bus_message_open_container(m, 'v', "as");
		if (r >= 0)
			r = sd_bus_message_open_container(m, 'a', "s");
		for (size_t i = 0; r >= 0 && i < d->n_devices; i++)
			r = sd_bus_message_append(m, "s", d->devices[i]);
		for (int k = 0; r >= 0 && k < 3; k++)
			r = sd_bus_message_close_container(m);
	}
	for (int k = 0; r >= 0 && producer && k < 2; k++) {
		size_t n = k ? d->n_allow_gids : d->n_allow_uids;
		if (!n)
			continue;
		r = sd_bus_message_open_container(m, 'e', "sv");
		if (r >= 0)
			r = sd_bus_message_append(m, "s", k ? "allow-gids" : "allow-uids");
		if (r >= 0)
			r = sd_bus_message_open_container(m, 'v', "au");
		if (r >= 0)
			r = sd_bus_message_append_array(m, 'u', k ? d->allow_gids : d->allow_uids, n * sizeof(uint32_t));
		if (r >= 0)
			r = sd_bus_message_close_container(m);
		if (r >= 0)
			r = sd_bus_message_close_container(m);
	}
	if (r >= 0 && producer)
		r = sd_bus_message_append(m, "{sv}{sv}{sv}{sv}{sv}", "mode", "s",
					  d->mode == DMABROKER_STREAM_MAILBOX ? "mailbox" : "fifo",
					  "buffers", "u", d->buffers, "width", "u", d->width, "height", "u", d->height,
					  "consumers", "u", d->consumers);
	if (r >= 0 && !producer && d->max_acquired)
		r = sd_bus_message_append(m, "{sv}", "max-acquired", "u", d->max_acquired);
	if (r >= 0 && d->version >= 2 && (d->flags & DMABROKER_STREAM_NATIVE))
		r = sd_bus_message_append(m, "{sv}", "native", "b", 1);
	if (r >= 0 && !producer && d->version >= 2 && (d->flags & DMABROKER_STREAM_PRODUCER_UID))
		r = sd_bus_message_append(m, "{sv}", "producer-uid", "u", d->producer_uid);
	if (r >= 0)
		r = sd_bus_message_close_container(m);
	r = call_built(b, m, r, &reply);
	if (r < 0)
		return r;
	s = calloc(1, sizeof(*s));
	if (!s) {
		sd_bus_message_unref(reply);
		return set_error(b, NULL, -ENOMEM);
	}
	s->b = b;
	s->producer = producer;
	for (unsigned k = 0; k < MAX_PEERS; k++)
		s->peers[k].fd = -1;
	stream_books_init(&s->books);
	stream_account_init(&s->taken, 0);
	r = sd_bus_message_read(reply, "t", &s->id);
	sd_bus_message_unref(reply);
	if (r >= 0)
		r = new_call(b, "StreamBuffers", &m);
	if (r >= 0) {
		r = sd_bus_message_append(m, "t", s->id);
		if (r >= 0)
			/* no timeout: negotiation waits for the consumers, however long they take */
			r = sd_bus_call_async(calls(b), &s->buffers_call, m, on_buffers, s, UINT64_MAX);
		sd_bus_message_unref(m);
	}
	s->next = b->streams;
	b->streams = s;
	if (r < 0) {
		dmabroker_stream_destroy(s);
		return set_error(b, NULL, r);
	}
	*ret = s;
	return 0;
}

EXPORT int dmabroker_stream_create(struct dmabroker *b, const struct dmabroker_stream_desc *desc,
				   struct dmabroker_stream **ret)
{
	return stream_new(b, desc, true, ret);
}

EXPORT int dmabroker_stream_join(struct dmabroker *b, const struct dmabroker_stream_desc *desc,
				 struct dmabroker_stream **ret)
{
	return stream_new(b, desc, false, ret);
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Runs the event loop until done(s) or timeout: 1 done, 0 timeout, <0 error. */
static int run_until(struct dmabroker_stream *s, bool (*done)(const struct dmabroker_stream *), int timeout_ms)
{
	uint64_t deadline = timeout_ms < 0 ? 0 : now_ms() + (uint64_t)timeout_ms;

	for (;;) {
		uint64_t left;
		int r;
		if (s->error)
			return report(s);
		if (done(s))
			return 1;
		if (timeout_ms >= 0) {
			uint64_t now = now_ms();
			if (now >= deadline)
				return 0;
			left = (deadline - now) * 1000u;
		} else {
			left = UINT64_MAX;
		}
		r = sd_event_run(s->b->event, left);
		if (r < 0)
			return set_error(s->b, NULL, r);
	}
}

static bool is_ready(const struct dmabroker_stream *s)
{
	return s->ready;
}

EXPORT int dmabroker_stream_wait_ready(struct dmabroker_stream *s, int timeout_ms)
{
	int r = run_until(s, is_ready, timeout_ms);
	if (r == 0)
		return set_error(s->b, NULL, -ETIMEDOUT);
	return r < 0 ? r : 0;
}

/* Whether something waits, and (a FIFO consumer) it is under its max-acquired. */
static bool can_take(const struct dmabroker_stream *s)
{
	return s->q_len > 0 && (!s->peer || s->producer || stream_account_may_acquire(&s->taken));
}

static bool has_item(const struct dmabroker_stream *s)
{
	return can_take(s) || s->ended;
}

EXPORT int dmabroker_stream_wait(struct dmabroker_stream *s, int timeout_ms)
{
	return run_until(s, has_item, timeout_ms);
}

EXPORT struct dmabroker_stream *dmabroker_stream_destroy(struct dmabroker_stream *s)
{
	struct dmabroker *b;

	if (!s)
		return NULL;
	b = s->b;
	for (struct dmabroker_stream **p = &b->streams; *p; p = &(*p)->next)
		if (*p == s) {
			*p = s->next;
			break;
		}
	if (b->direct && s->id) {
		sd_bus_message *m = NULL, *reply = NULL;
		/*
		 * A call, not one-way: once it is answered, the daemon has
		 * taken every frame queued before. A producer that queues its
		 * last frame and exits would lose it otherwise: a connection
		 * closed with signals unread (BufferReleased) fails the
		 * daemon's next write to it, and sd-bus then drops what it
		 * had not read yet. Its error is of no use here.
		 */
		if (new_call(b, "LeaveStream", &m) >= 0 && sd_bus_message_append(m, "t", s->id) >= 0)
			sd_bus_call(b->direct, m, 0, NULL, &reply);
		sd_bus_message_unref(reply);
		sd_bus_message_unref(m);
	}
	sd_bus_slot_unref(s->buffers_call);
	peers_close(s);
	for (unsigned i = 0; i < s->q_len; i++)
		safe_close(s->queue[(s->q_head + i) % MAX_BUFFERS].fence);
	for (unsigned i = 0; i < s->n_buffers; i++) {
		if (s->maps[i])
			munmap(s->maps[i], s->buffers[i]->size);
		buffer_free(s->buffers[i]);
	}
	sd_bus_error_free(&s->err);
	free(s);
	return NULL;
}

void streams_daemon_lost(struct dmabroker *b)
{
	for (struct dmabroker_stream *s = b->streams; s; s = s->next) {
		sd_bus_error e = SD_BUS_ERROR_NULL;
		s->buffers_call = sd_bus_slot_unref(s->buffers_call);
		s->id = 0; /* nothing to leave any more */
		peers_close(s);
		if (s->producer || !s->ready) {
			sd_bus_error_set(&e, DMABROKER_ERROR("StreamEnded"),
					 "the daemon restarted: streams do not survive it; create the stream again");
			fail(s, &e, -EPIPE);
			sd_bus_error_free(&e);
		} else {
			s->ended = true;
			notify(s);
		}
	}
}

void streams_free_all(struct dmabroker *b)
{
	while (b->streams)
		dmabroker_stream_destroy(b->streams);
}

static int take(struct dmabroker_stream *s, struct dmabroker_frame *f)
{
	if (s->error)
		return report(s);
	if (!s->ready)
		return set_error(s->b, NULL, -EAGAIN);
	if (!can_take(s))
		return set_error(s->b, NULL, s->ended && s->q_len == 0 ? -EPIPE : -EAGAIN);
	*f = s->queue[s->q_head];
	f->buffer = s->buffers[f->index];
	s->q_head = (s->q_head + 1) % MAX_BUFFERS;
	s->q_len--;
	stream_account_acquire(&s->taken, f->index);
	return 0;
}

EXPORT int dmabroker_stream_dequeue(struct dmabroker_stream *s, struct dmabroker_frame *frame)
{
	if (!s->producer)
		return set_error(s->b, NULL, -EPERM);
	return take(s, frame);
}

EXPORT int dmabroker_stream_acquire(struct dmabroker_stream *s, struct dmabroker_frame *frame)
{
	if (s->producer)
		return set_error(s->b, NULL, -EPERM);
	return take(s, frame);
}

static int check_takeable(unsigned n, struct dmabroker_stream *const *streams)
{
	if (n == 0 || n > MAX_BUFFERS)
		return -EINVAL;
	for (unsigned i = 0; i < n; i++) {
		struct dmabroker_stream *s = streams[i];
		if (s->b != streams[0]->b)
			return -EINVAL;
		if (s->error)
			return report(s);
		if (!s->ready)
			return -EAGAIN;
		if (!can_take(s))
			return s->ended && !s->producer && s->q_len == 0 ? -EPIPE : -EAGAIN;
	}
	return 0;
}

EXPORT int dmabroker_streams_take(unsigned n, struct dmabroker_stream *const *streams, struct dmabroker_frame *frames)
{
	int r = check_takeable(n, streams);

	if (r < 0)
		return set_error(streams[0]->b, NULL, r);
	for (unsigned i = 0; i < n; i++)
		take(streams[i], &frames[i]); /* cannot fail now */
	return 0;
}

EXPORT int dmabroker_streams_wait(unsigned n, struct dmabroker_stream *const *streams, int timeout_ms)
{
	uint64_t deadline = timeout_ms < 0 ? 0 : now_ms() + (uint64_t)timeout_ms;

	for (;;) {
		int r = check_takeable(n, streams);
		uint64_t left = UINT64_MAX;
		if (r == 0 || r == -EPIPE)
			return 1;
		if (r != -EAGAIN)
			return set_error(streams[0]->b, NULL, r);
		if (timeout_ms >= 0) {
			uint64_t now = now_ms();
			if (now >= deadline)
				return 0;
			left = (deadline - now) * 1000u;
		}
		r = sd_event_run(streams[0]->b->event, left);
		if (r < 0)
			return set_error(streams[0]->b, NULL, r);
	}
}

/* Sends a one-way call; m is taken. */
static int send_oneway(struct dmabroker_stream *s, sd_bus_message *m, int fence)
{
	int r = bus_append_optional_fd(m, fence);
	if (r >= 0)
		r = sd_bus_message_set_expect_reply(m, 0);
	if (r >= 0)
		r = sd_bus_send(s->b->direct, m, NULL);
	sd_bus_message_unref(m);
	/* the daemon went away: reconnecting ends this stream with StreamEnded */
	if (r < 0 && daemon_lost(s->b, r) != 0 && s->error)
		return report(s);
	return r < 0 ? set_error(s->b, NULL, r) : 0;
}

/*
 * Frames skip the daemon, so nothing else would tell a producer that the
 * daemon died: look at the direct connection (one poll) and, when it is
 * gone, reconnect, which ends this stream with StreamEnded as it would a
 * mailbox stream's. 0, or the error to report.
 */
static int check_daemon(struct dmabroker_stream *s)
{
	struct pollfd p = { .fd = s->b->direct ? sd_bus_get_fd(s->b->direct) : -1, .events = POLLRDHUP };
	uint64_t now = now_ms();

	/* at most every 100 ms: a syscall on every frame shows (docs/BENCHMARKS.md) */
	if (now - s->daemon_checked_ms >= 100) {
		s->daemon_checked_ms = now;
		if (p.fd >= 0 && poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)))
			daemon_lost(s->b, -ECONNRESET);
	}
	return s->error ? report(s) : 0;
}

/* Producer, FIFO: buffer index to every consumer, on its channel. */
static int peer_queue(struct dmabroker_stream *s, unsigned index, int ready_fence, uint64_t sequence,
		      uint64_t timestamp_ns, const int32_t (*damage)[4], unsigned n_damage)
{
	struct stream_wire w = {
		.type = STREAM_WIRE_FRAME, .index = index, .sequence = sequence, .timestamp_ns = timestamp_ns,
		.n_damage = damage ? n_damage : 0,
	};
	const struct dmabroker_buffer *buf = s->buffers[index];

	int r = check_daemon(s);

	if (r < 0)
		return r;
	if (!stream_account_holds(&s->taken, index))
		return set_error(s->b, NULL, -EBUSY); /* not dequeued: queued already, or free */
	if (w.n_damage > STREAM_WIRE_MAX_DAMAGE || (ready_fence >= 0 && !fence_is_sync_file(ready_fence)))
		return set_error(s->b, NULL, -EINVAL);
	if (w.n_damage)
		memcpy(w.damage, damage, w.n_damage * sizeof(w.damage[0]));
	if (ready_fence >= 0) {
		int own = fcntl(ready_fence, F_DUPFD_CLOEXEC, 3);
		if (own < 0)
			return set_error(s->b, NULL, -errno);
		stream_books_send(&s->books, index, own);
		if (buf->dmabuf)
			dmabuf_import_fence(buf->fd, ready_fence, true);
	}
	stream_account_release(&s->taken, index);
	for (unsigned k = 0; k < MAX_PEERS; k++) {
		struct peer *p = &s->peers[k];
		if (p->fd < 0)
			continue;
		if (peer_send(p->fd, &w, ready_fence) == 0)
			stream_books_hold(&s->books, index, k);
		else
			peer_gone(p); /* gone, or not reading with its every buffer in flight: cannot be */
	}
	if (s->counters) {
		s->counters->frames++;
		if (!stream_books_out(&s->books, index))
			s->counters->dropped++;
	}
	if (!stream_books_out(&s->books, index))
		give_back(s, index); /* nobody to show it to */
	return 0;
}

/* Consumer, FIFO: frame index back to the producer, on the channel. */
static int peer_release(struct dmabroker_stream *s, unsigned index, int release_fence)
{
	struct stream_wire w = { .type = STREAM_WIRE_RELEASE, .index = index };
	const struct dmabroker_buffer *buf = s->buffers[index];
	int r;

	if (!stream_account_holds(&s->taken, index))
		return set_error(s->b, NULL, -EINVAL); /* not a frame it holds */
	if (release_fence >= 0) {
		if (!fence_is_sync_file(release_fence))
			return set_error(s->b, NULL, -EINVAL);
		if (buf->dmabuf)
			dmabuf_import_fence(buf->fd, release_fence, false);
	}
	stream_account_release(&s->taken, index);
	s->have &= ~(1u << index);
	if (s->counters)
		s->counters->frames++;
	if (s->peers[0].fd < 0)
		return 0; /* the producer left: nobody to give it back to */
	/*
	 * Once the producer has left, a send fails (EPIPE) while the frames
	 * it queued before are still on the channel, ahead of its end:
	 * reading tells when it is over. Any other failure cuts the channel
	 * off, so that the producer gets its buffers back.
	 */
	r = peer_send(s->peers[0].fd, &w, release_fence);
	if (r < 0 && r != -EPIPE)
		peer_gone(&s->peers[0]);
	return 0;
}

EXPORT int dmabroker_stream_queue(struct dmabroker_stream *s, unsigned index, int ready_fence, uint64_t sequence,
				  uint64_t timestamp_ns, const int32_t (*damage)[4], unsigned n_damage)
{
	sd_bus_message *m = NULL;
	int r;

	if (s->error)
		return report(s);
	if (!s->producer || !s->ready || index >= s->n_buffers)
		return set_error(s->b, NULL, !s->producer ? -EPERM : !s->ready ? -EAGAIN : -EINVAL);
	if (s->peer)
		return peer_queue(s, index, ready_fence, sequence, timestamp_ns, damage, n_damage);
	r = new_call(s->b, "QueueFrame", &m);
	if (r >= 0)
		r = sd_bus_message_append(m, "tutt", s->id, index, sequence, timestamp_ns);
	if (r >= 0)
		r = sd_bus_message_open_container(m, 'a', "(iiii)");
	for (unsigned i = 0; r >= 0 && damage && i < n_damage; i++)
		r = sd_bus_message_append(m, "(iiii)", damage[i][0], damage[i][1], damage[i][2], damage[i][3]);
	if (r >= 0)
		r = sd_bus_message_close_container(m);
	if (r < 0) {
		sd_bus_message_unref(m);
		return set_error(s->b, NULL, r);
	}
	return send_oneway(s, m, ready_fence);
}

EXPORT int dmabroker_stream_release(struct dmabroker_stream *s, unsigned index, int release_fence)
{
	sd_bus_message *m = NULL;
	int r;

	if (s->producer || !s->ready || index >= s->n_buffers)
		return set_error(s->b, NULL, s->producer ? -EPERM : -EINVAL);
	if (s->peer)
		return peer_release(s, index, release_fence);
	r = new_call(s->b, "ReleaseFrame", &m);
	if (r >= 0)
		r = sd_bus_message_append(m, "tu", s->id, index);
	if (r < 0) {
		sd_bus_message_unref(m);
		return set_error(s->b, NULL, r);
	}
	return send_oneway(s, m, release_fence);
}

int stream_on_signal(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
	struct dmabroker *b = userdata;
	const char *member = sd_bus_message_get_member(m);
	struct dmabroker_stream *s;
	struct dmabroker_frame f = { .fence = -1 };
	uint64_t id;
	int r;

	if (!member || sd_bus_message_read(m, "t", &id) < 0 || !(s = find(b, id)))
		return 0;
	if (strcmp(member, "FrameReady") == 0) {
		r = sd_bus_message_read(m, "utt", &f.index, &f.sequence, &f.timestamp_ns);
		if (r >= 0)
			r = bus_read_damage(m, f.damage, DMABROKER_FRAME_MAX_DAMAGE, &f.n_damage);
		if (r >= 0)
			r = read_fence_array(m, &f.fence);
		/* frames may come before the StreamBuffers reply: keep them */
		if (r < 0 || f.index >= MAX_BUFFERS || (s->ready && f.index >= s->n_buffers) || s->producer) {
			safe_close(f.fence);
			return 0;
		}
		push(s, &f);
	} else if (strcmp(member, "BufferReleased") == 0) {
		r = sd_bus_message_read(m, "u", &f.index);
		if (r >= 0)
			r = read_fence_array(m, &f.fence);
		if (r < 0 || f.index >= s->n_buffers || !s->producer) {
			safe_close(f.fence);
			return 0;
		}
		push(s, &f);
	} else if (strcmp(member, "ConsumerJoined") == 0) {
		uint32_t consumer;
		int fd, own;
		if (!s->producer || !s->peer || sd_bus_message_read(m, "uh", &consumer, &fd) < 0 ||
		    take_fd(fd, &own) < 0)
			return 0;
		if (peer_add(s, consumer, own) < 0)
			return 0;
	} else if (strcmp(member, "StreamEnded") == 0) {
		/*
		 * A FIFO consumer's end is its channel's: the daemon shut it
		 * before it sent this, behind the producer's last frames, which
		 * this signal can overtake (it comes on another socket).
		 */
		if (s->producer || !s->peer || s->peers[0].fd < 0)
			s->ended = true;
	} else if (strcmp(member, "StreamError") == 0) {
		const char *method, *name, *message;
		sd_bus_error e = SD_BUS_ERROR_NULL;
		if (sd_bus_message_read(m, "sss", &method, &name, &message) < 0)
			return 0;
		sd_bus_error_setf(&e, name, "%s: %s", method, message);
		fail(s, &e, -EIO);
		sd_bus_error_free(&e);
		return 0;
	} else {
		return 0;
	}
	notify(s);
	return 0;
}

EXPORT void dmabroker_stream_set_callback(struct dmabroker_stream *s, dmabroker_stream_callback cb, void *userdata)
{
	s->cb = cb;
	s->userdata = userdata;
}

static int sync_buffer(const struct dmabroker_buffer *buf, uint64_t flags)
{
	struct dma_buf_sync sync = { .flags = flags };
	if (!buf->dmabuf)
		return 0;
	return ioctl(buf->fd, DMA_BUF_IOCTL_SYNC, &sync) < 0 ? -errno : 0;
}

EXPORT int dmabroker_stream_cpu_begin(struct dmabroker_stream *s, unsigned index, uint32_t mode, int fence,
				      int timeout_ms, void **ret_map)
{
	struct dmabroker_buffer *buf;
	int r;

	if (index >= s->n_buffers)
		return set_error(s->b, NULL, -EINVAL);
	buf = s->buffers[index];
	if (fence >= 0) {
		r = fence_wait(fence, timeout_ms);
		if (r <= 0)
			return set_error(s->b, NULL, r == 0 ? -ETIMEDOUT : r);
	}
	if (!s->maps[index]) {
		void *p;
		if (!size_fits(buf->size)) /* moved to memory larger than this client can map */
			return refuse_size(s->b, buf->size, false);
		p = mmap(NULL, buf->size, PROT_READ | PROT_WRITE, MAP_SHARED, buf->fd, 0);
		if (p == MAP_FAILED)
			return set_error(s->b, NULL, -errno);
		s->maps[index] = p;
	}
	buf->cpu_mode = mode;
	r = sync_buffer(buf, DMA_BUF_SYNC_START |
			(mode == DMABROKER_ACCESS_WRITE ? DMA_BUF_SYNC_RW : DMA_BUF_SYNC_READ));
	if (r < 0)
		return set_error(s->b, NULL, r);
	*ret_map = s->maps[index];
	return 0;
}

EXPORT int dmabroker_stream_cpu_end(struct dmabroker_stream *s, unsigned index)
{
	struct dmabroker_buffer *buf;
	int r;

	if (index >= s->n_buffers)
		return set_error(s->b, NULL, -EINVAL);
	buf = s->buffers[index];
	r = sync_buffer(buf, DMA_BUF_SYNC_END |
			(buf->cpu_mode == DMABROKER_ACCESS_WRITE ? DMA_BUF_SYNC_RW : DMA_BUF_SYNC_READ));
	return r < 0 ? set_error(s->b, NULL, r) : 0;
}

EXPORT uint64_t dmabroker_stream_get_id(const struct dmabroker_stream *s) { return s->id; }
EXPORT bool dmabroker_stream_is_ready(const struct dmabroker_stream *s) { return s->ready; }
EXPORT bool dmabroker_stream_has_ended(const struct dmabroker_stream *s) { return s->ended; }
EXPORT uint32_t dmabroker_stream_get_width(const struct dmabroker_stream *s) { return s->width; }
EXPORT uint32_t dmabroker_stream_get_height(const struct dmabroker_stream *s) { return s->height; }
EXPORT uint32_t dmabroker_stream_get_fourcc(const struct dmabroker_stream *s) { return s->fourcc; }
EXPORT uint64_t dmabroker_stream_get_modifier(const struct dmabroker_stream *s) { return s->modifier; }
EXPORT const char *dmabroker_stream_get_backend(const struct dmabroker_stream *s) { return s->backend; }
EXPORT enum dmabroker_stream_mode dmabroker_stream_get_mode(const struct dmabroker_stream *s) { return s->mode; }
EXPORT unsigned dmabroker_stream_get_buffer_count(const struct dmabroker_stream *s) { return s->n_buffers; }

EXPORT struct dmabroker_buffer *dmabroker_stream_get_buffer(const struct dmabroker_stream *s, unsigned index)
{
	return index < s->n_buffers ? s->buffers[index] : NULL;
}

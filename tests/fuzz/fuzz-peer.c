/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the peer channel of a FIFO stream (protocol/stream-wire.h),
 * the bytes the other party sends that libdmabroker parses (peer_recv,
 * on_frame, on_release in client-lib/stream.c). The target is built from
 * the library's sources and includes stream.c, so that it reaches its
 * parsing and its books without the daemon: a stream is set up as the
 * StreamBuffers reply would set it up (shm buffers, max-acquired, one
 * SOCK_SEQPACKET channel per peer), as the producer with up to 8
 * consumers or as a consumer. Each input is then a sequence of steps: a
 * peer sends a message (any type, index, damage count and size, with no
 * fd, a memfd, a pipe, /dev/null or two of them, or nothing but an fd), a
 * peer leaves, a consumer joins, the application takes a frame or buffer
 * and gives it back through the public API; the library's event loop runs
 * after each.
 *
 * Checked after every step: the library's books (every buffer in exactly
 * one place: queued, taken or held by live peers; frames queued once, at
 * indexes in range; a live channel has its event source), what the
 * application is handed and what the library sends its peers; after the
 * input the stream is destroyed and the process has the fds it had before.
 */
#include "stream.c"

#define FUZZ_NAME "fuzz-peer"
#include "fuzz-util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { P_SEND, P_CLOSE, P_TAKE, P_GIVE, P_JOIN, P_IDLE, P_WIRE, P__MAX };

static struct dmabroker *b;
static struct dmabroker_stream *s;
static int ends[MAX_PEERS];             /* the peers' ends of the channels, -1: gone */
static uint32_t mine;                   /* buffers the application has taken */
static unsigned n_notified;

/* With FUZZ_PEER_STATS set, at exit: what got through (shows the fuzzer gets past the checks). */
static unsigned long n_taken[2], n_given[2], n_cut_off;

static void print_stats(void)
{
	fprintf(stderr, "fuzz-peer: consumer: %lu frames acquired, %lu released; producer: %lu buffers dequeued, "
		"%lu queued; %lu peers cut off\n", n_taken[0], n_given[0], n_taken[1], n_given[1], n_cut_off);
}

static void on_notify(struct dmabroker_stream *st, void *userdata)
{
	check(st == s);
	n_notified++;
}

/* A new channel to a peer: the library's end goes to slot k's peer_add(). */
static void add_peer(uint32_t id)
{
	int pair[2];

	check(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, pair) == 0);
	if (peer_add(s, id, pair[0]) < 0) { /* full: closed it */
		close(pair[1]);
		return;
	}
	for (unsigned k = 0; k < MAX_PEERS; k++)
		if (s->peers[k].fd == pair[0]) {
			safe_close(ends[k]);
			ends[k] = pair[1];
			return;
		}
	check(!"peer_add put it nowhere");
}

/* The stream, as on_buffers() leaves it once StreamBuffers was answered. */
static void new_stream(struct input *in)
{
	uint8_t role = byte(in), n = byte(in), max_acquired = byte(in), peers = byte(in);
	int counters;

	s = calloc(1, sizeof(*s));
	check(s);
	s->b = b;
	s->producer = role & 1;
	for (unsigned k = 0; k < MAX_PEERS; k++) {
		s->peers[k].fd = -1;
		ends[k] = -1;
	}
	stream_books_init(&s->books);
	stream_account_init(&s->taken, 0);
	s->next = b->streams;
	b->streams = s;
	s->width = 64;
	s->height = 16;
	s->fourcc = 0x34325258;
	snprintf(s->backend, sizeof(s->backend), "shm");
	s->mode = DMABROKER_STREAM_FIFO;
	s->n_buffers = 1 + n % MAX_BUFFERS;
	for (unsigned i = 0; i < s->n_buffers; i++) {
		struct dmabroker_buffer *buf = buffer_new(b);
		check(buf);
		s->buffers[i] = buf;
		buf->id = 100 + i;
		buf->fd = memfd_create("fuzz-peer", MFD_CLOEXEC);
		check(buf->fd >= 0 && ftruncate(buf->fd, 4096) == 0);
		buf->size = 4096;
		buf->width = s->width;
		buf->height = s->height;
		buf->fourcc = s->fourcc;
		buf->n_planes = 1;
		buf->planes[0].stride = 256;
		snprintf(buf->backend, sizeof(buf->backend), "shm");
	}
	/* read_peers() */
	s->taken.max_acquired = 1 + max_acquired % s->n_buffers;
	counters = memfd_create("fuzz-peer-counters", MFD_CLOEXEC);
	check(counters >= 0 && ftruncate(counters, 4096) == 0);
	s->counters = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, counters, 0);
	check(s->counters != MAP_FAILED);
	close(counters);
	s->peer = true;
	for (unsigned k = 0; k < (s->producer ? 1 + peers % MAX_PEERS : 1u); k++)
		add_peer(k + 1);
	s->ready = true;
	if (s->producer)
		for (unsigned i = 0; i < s->n_buffers; i++)
			push(s, &(struct dmabroker_frame){ .index = i, .fence = -1 });
	dmabroker_stream_set_callback(s, on_notify, NULL);
}

/* An empty memfd, a pipe or /dev/null. */
static int new_fd(struct input *in, enum fuzz_fd_kind kind)
{
	int fd = fuzz_new_fd(in, kind, 0);

	check(fd >= 0);
	return fd;
}

/*
 * P_SEND: peer, fds (0 none, 1-3 one of a kind, 4 two), length (u16, 0: as
 * given), how many bytes are given (u8), the bytes (the rest zero).
 */
static void step_send(struct input *in)
{
	uint8_t k = byte(in) % MAX_PEERS, fds_sel = byte(in), given;
	uint16_t len = (uint16_t)(byte(in) | byte(in) << 8);
	uint8_t msg[sizeof(struct stream_wire) + 32] = { 0 };
	int fds[2] = { -1, -1 };
	unsigned n_fds = 0;

	given = byte(in); /* fewer than fit: the rest of a longer message is zero */
	for (unsigned i = 0; i < given; i++)
		msg[i] = byte(in);
	len = len ? len % (sizeof(msg) + 1) : given;
	switch (fds_sel % 5) {
	case 0:
		break;
	case 4:
		fds[n_fds++] = new_fd(in, FUZZ_FD_MEMFD);
		fds[n_fds++] = new_fd(in, FUZZ_FD_PIPE);
		break;
	default:
		fds[n_fds++] = new_fd(in, fds_sel % 5 - 1);
		break;
	}
	/* fails when the library has hung up on this peer: nothing to check then */
	if (ends[k] >= 0)
		(void)send_fds(ends[k], msg, len, fds, n_fds, MSG_NOSIGNAL | MSG_DONTWAIT);
	for (unsigned i = 0; i < n_fds; i++)
		close(fds[i]);
}

/*
 * P_WIRE: a message of the protocol's shape: peer, type (mostly the one its
 * side sends), index, damage count, fd; the size always the one it claims.
 */
static void step_wire(struct input *in)
{
	uint8_t k = byte(in) % MAX_PEERS, type = byte(in), index = byte(in), n_damage = byte(in), fd_sel = byte(in);
	struct stream_wire w = {
		.type = type < 192 ? (s->producer ? STREAM_WIRE_RELEASE : STREAM_WIRE_FRAME) : type % 4,
		.index = index < 240 ? index % (s->n_buffers + 1u) : index,
		.n_damage = n_damage < 240 ? n_damage % (STREAM_WIRE_MAX_DAMAGE + 1) : n_damage,
		.sequence = byte(in),
		.timestamp_ns = byte(in),
	};
	int fd = fd_sel < 224 ? -1 : new_fd(in, fd_sel % 3);

	for (unsigned i = 0; i < STREAM_WIRE_MAX_DAMAGE && i < w.n_damage; i++)
		for (unsigned j = 0; j < 4; j++)
			w.damage[i][j] = (int8_t)byte(in);
	if (ends[k] >= 0)
		(void)send_fds(ends[k], &w,
			       w.n_damage <= STREAM_WIRE_MAX_DAMAGE ? STREAM_WIRE_SIZE(w.n_damage) : sizeof(w), &fd,
			       fd >= 0, MSG_NOSIGNAL | MSG_DONTWAIT);
	safe_close(fd);
}

/* What the library sent the peers: well-formed, of its own side's type, in range. */
static void drain_peers(void)
{
	for (unsigned k = 0; k < MAX_PEERS; k++) {
		for (;;) {
			struct stream_wire w;
			int fd;
			ssize_t n;
			if (ends[k] < 0)
				break;
			n = fdmsg_recv(ends[k], &w, sizeof(w), &fd, MSG_DONTWAIT);
			if (n == -EAGAIN)
				break;
			if (n == 0 || n == -ECONNRESET) { /* the library hung up: a peer that broke the protocol */
				check(s->peers[k].fd < 0);
				n_cut_off++;
				ends[k] = safe_close(ends[k]);
				break;
			}
			check(n >= (ssize_t)STREAM_WIRE_HEADER_SIZE && w.n_damage <= STREAM_WIRE_MAX_DAMAGE &&
			      (size_t)n == STREAM_WIRE_SIZE(w.n_damage));
			check(w.type == (s->producer ? STREAM_WIRE_FRAME : STREAM_WIRE_RELEASE));
			check(w.index < s->n_buffers);
			check(fd < 0); /* the application gives no fences here */
		}
	}
}

static void pump(void)
{
	for (int i = 0; i < 1000; i++)
		if (sd_event_run(b->event, 0) <= 0)
			break;
	drain_peers();
}

static bool valid_fd(int fd)
{
	return fcntl(fd, F_GETFD) >= 0;
}

static void check_books(void)
{
	uint32_t all = s->n_buffers == 32 ? ~0u : (1u << s->n_buffers) - 1, queued = 0;

	check(s->n_buffers >= 1 && s->n_buffers <= MAX_BUFFERS && s->q_len <= MAX_BUFFERS && s->q_head < MAX_BUFFERS);
	for (unsigned i = 0; i < s->q_len; i++) {
		const struct dmabroker_frame *f = &s->queue[(s->q_head + i) % MAX_BUFFERS];
		check(f->index < s->n_buffers && !(queued & (1u << f->index)));
		check(f->n_damage <= DMABROKER_FRAME_MAX_DAMAGE);
		check(f->fence < 0 || valid_fd(f->fence));
		queued |= 1u << f->index;
	}
	check(!(s->taken.acquired & ~all) && !(queued & s->taken.acquired));
	check(s->taken.acquired == mine);
	for (unsigned k = 0; k < MAX_PEERS; k++) {
		const struct peer *p = &s->peers[k];
		check((p->fd >= 0) == (p->source != NULL));
		check(p->fd < 0 || valid_fd(p->fd));
	}
	if (s->producer) {
		uint32_t live = 0;
		for (unsigned k = 0; k < MAX_PEERS; k++)
			if (s->peers[k].fd >= 0)
				live |= 1u << k;
		/* every buffer in exactly one place: queued (free), taken (dequeued), or held by consumers */
		for (unsigned i = 0; i < s->n_buffers; i++) {
			const struct stream_book *book = &s->books.buf[i];
			uint32_t bit = 1u << i;
			check((!!(queued & bit)) + (!!(s->taken.acquired & bit)) + (book->holders != 0) == 1);
			check(!(book->holders & ~live));
			if (!book->holders)
				check(book->ready_fence < 0 && book->release_fence < 0);
		}
		for (unsigned i = s->n_buffers; i < MAX_BUFFERS; i++)
			check(!s->books.buf[i].holders && s->books.buf[i].ready_fence < 0 &&
			      s->books.buf[i].release_fence < 0);
	} else {
		/* a frame is here once: queued or taken */
		check(!(s->have & ~all) && (s->taken.acquired & ~s->have) == 0 && (queued | s->taken.acquired) == s->have);
		check(s->peers[0].fd >= 0 || s->ended);
		for (unsigned k = 1; k < MAX_PEERS; k++)
			check(s->peers[k].fd < 0);
	}
}

/* P_TAKE: what the application is handed is in range and its own. */
static void step_take(void)
{
	struct dmabroker_frame f;
	int r = s->producer ? dmabroker_stream_dequeue(s, &f) : dmabroker_stream_acquire(s, &f);

	if (r < 0) {
		check(r == -EAGAIN || r == -EPIPE);
		return;
	}
	check(f.index < s->n_buffers && f.buffer == s->buffers[f.index] && !(mine & (1u << f.index)));
	check(f.n_damage <= DMABROKER_FRAME_MAX_DAMAGE);
	check(f.fence < 0 || valid_fd(f.fence));
	safe_close(f.fence);
	mine |= 1u << f.index;
	n_taken[s->producer]++;
}

/* P_GIVE: one it took back (queue, release), or an index it does not hold. */
static void step_give(struct input *in)
{
	uint8_t sel = byte(in);
	unsigned index = sel % MAX_BUFFERS;
	int32_t damage[3][4] = { { 0, 0, 8, 8 }, { 8, 8, 8, 8 }, { -1, -1, 0, 0 } };
	int r;

	if (sel < 224 && mine) /* the sel-th it holds */
		for (unsigned i = 0, n = sel % (unsigned)__builtin_popcount(mine); i < MAX_BUFFERS; i++)
			if ((mine & (1u << i)) && n-- == 0) {
				index = i;
				break;
			}
	r = s->producer ? dmabroker_stream_queue(s, index, -1, sel, 1000u * sel, damage, sel % 4) :
			  dmabroker_stream_release(s, index, -1);
	if (mine & (1u << index)) {
		check(r == 0);
		mine &= ~(1u << index);
		n_given[s->producer]++;
	} else {
		check(r < 0);
	}
}

static void setup(void)
{
	b = calloc(1, sizeof(*b));
	check(b);
	b->access_channel = -1;
	check(sd_event_new(&b->event) >= 0);
	if (getenv("FUZZ_PEER_STATS"))
		atexit(print_stats);
}

static void run(struct input *in)
{
	mine = 0;
	new_stream(in);
	pump();
	check_books();
	for (int steps = 0; steps < 64 && in->left; steps++) {
		switch (byte(in) % P__MAX) {
		case P_SEND:
			step_send(in);
			break;
		case P_CLOSE: {
			unsigned k = byte(in) % MAX_PEERS;
			ends[k] = safe_close(ends[k]);
			break;
		}
		case P_TAKE:
			step_take();
			break;
		case P_GIVE:
			step_give(in);
			break;
		case P_WIRE:
			step_wire(in);
			break;
		case P_JOIN:
			if (s->producer)
				add_peer(100 + (uint32_t)steps);
			break;
		default:
			break;
		}
		pump();
		check_books();
	}
	s = dmabroker_stream_destroy(s);
	check(!b->streams && !b->buffers);
	for (unsigned k = 0; k < MAX_PEERS; k++)
		ends[k] = safe_close(ends[k]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fuzz_one_input(data, size, setup, run, NULL);
}

/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the access channel (protocol/access-wire.h), the bytes a
 * client sends the daemon there. Two clients of a broker with the shm
 * backend each open their channel (access_channel_open: the client's end is
 * a SOCK_SEQPACKET socket, as the library gets it); each input is a short
 * sequence of messages of any kind and size, BEGIN, END, ALLOCATE, RELEASE
 * or none, with ids small enough to name live buffers and grants, modes
 * and flags valid or not, with or without fds (memfd, pipe, /dev/null, two
 * at once), and of steps between them: a buffer shared with the other
 * client (as OpenToken would), the event loop pumped, a flood of BEGINs
 * whose answers are not read, a channel opened again, a client leaving.
 *
 * Checked after every step: every BEGIN and ALLOCATE is answered exactly
 * once with a well-formed reply (an ALLOCATE at once, a BEGIN at once or
 * from the queue; a refusal with an org.dmabroker.Error name), unless the
 * channel was closed, which happens for a bad message or a client that
 * does not read, and only then; a closed channel leaves nothing queued;
 * the books balance (buffers, bytes, holds, grants, the queue). After the
 * input the clients leave and nothing is left: no buffer, grant or
 * request, and the process has the fds it had before.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <systemd/sd-event.h>

#include "access-wire.h"
#include "broker.h"
#include "channel.h"
#include "cleanup.h"
#include "errors.h"
#include "fdmsg.h"
#include "log.h"

#define FUZZ_NAME "fuzz-access"
#include "fuzz-util.h"
#include "fuzz-books.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct broker broker;
static sd_event *event;

/* ---- a client, as the harness sees it ---- */

enum { MAX_OUTSTANDING = 1024, MAX_MESSAGES = 32 };

struct outstanding {
	uint32_t cookie;
	uint32_t op;                    /* ACCESS_WIRE_BEGIN or _ALLOCATE */
};

struct side {
	struct client *c;               /* NULL once it left */
	int fd;                         /* its end of the channel, -1: none */
	bool bad;                       /* it sent a message that is none: the daemon must close */
	bool deaf;                      /* it sent more than the daemon could answer without it reading */
	struct outstanding out[MAX_OUTSTANDING];
	unsigned n_out;
};

static struct side sides[2];
static uint32_t next_cookie;

/* With FUZZ_ACCESS_STATS set: what the daemon answered, at exit (shows the fuzzer gets past the checks). */
static unsigned long n_granted, n_granted_later, n_buffers, n_errors, n_closed;

static void print_stats(void)
{
	fprintf(stderr, "fuzz-access: %lu GRANTED (%lu from the queue), %lu BUFFER, %lu ERROR, %lu channels closed\n",
		n_granted, n_granted_later, n_buffers, n_errors, n_closed);
}

static void open_channel(struct side *s)
{
	struct error e = ERROR_NULL;
	check(access_channel_open(s->c, &s->fd, &e) >= 0);
	s->bad = s->deaf = false;
	e = ERROR_NULL;
}

/* ---- the messages ---- */

static uint64_t some_id(struct input *in, uint64_t next)
{
	uint8_t sel = byte(in);
	if (sel < 200)
		return next - sel % 5; /* recent ones, the next one, or 0 */
	if (sel < 240)
		return sel % 4;
	return bytes(in, 8);
}

static uint32_t some_u32(struct input *in, uint32_t small)
{
	uint8_t sel = byte(in);
	return sel < 224 ? sel % small : (uint32_t)bytes(in, 4);
}

static const uint32_t fourccs[] = {
	0x34325258 /* XR24 */, 0x34325241 /* AR24 */, 0x3231564e /* NV12 */, 0x56595559 /* YUYV */,
	0x36314752 /* RG16 */, 0x30313050 /* P010 */, 0x32315559 /* YU12 */, 0x12345678,
};

static void some_string(struct input *in, char *s, size_t size)
{
	static const char *const words[] = { "", "shm", "heap", "drm", "udmabuf", "heap:system", "/dev/dri/card0" };
	uint8_t sel = byte(in);

	if (sel < 200) {
		snprintf(s, size, "%s", words[sel % (sizeof(words) / sizeof(words[0]))]);
		return;
	}
	/* anything, NUL-terminated or not */
	for (size_t i = 0; i < size; i++)
		s[i] = (char)(sel & 1 ? 'a' + i % 26 : byte(in));
}

static void fill_alloc(struct input *in, struct access_wire_alloc *w)
{
	uint8_t sel = byte(in);

	w->width = sel < 224 ? 1 + byte(in) % 128 : (uint32_t)bytes(in, 4);
	sel = byte(in);
	w->height = sel < 224 ? 1 + byte(in) % 128 : (uint32_t)bytes(in, 4);
	sel = byte(in);
	w->fourcc = sel < 240 ? fourccs[sel % 8] : (uint32_t)bytes(in, 4);
	w->usage = some_u32(in, 16);
	w->flags = some_u32(in, 3);
	w->n_modifiers = some_u32(in, 3);
	for (unsigned i = 0; i < ACCESS_WIRE_MAX_MODIFIERS && i < w->n_modifiers; i++) {
		sel = byte(in);
		w->modifiers[i] = sel < 128 ? 0 /* linear */ : sel < 192 ? 0x00ffffffffffffffull /* invalid */ :
				  bytes(in, 8);
	}
	if (byte(in) & 1)
		some_string(in, w->backend, sizeof(w->backend));
	if (byte(in) & 1)
		some_string(in, w->device, sizeof(w->device));
}

static void remember(struct side *s, uint32_t cookie, uint32_t op)
{
	check(s->n_out < MAX_OUTSTANDING);
	s->out[s->n_out++] = (struct outstanding){ .cookie = cookie, .op = op };
}

/* One message from s, built from the data. */
static void send_message(struct side *s, struct input *in)
{
	union {
		uint32_t op;
		struct access_wire_request req;
		struct access_wire_alloc alloc;
		uint8_t raw[sizeof(struct access_wire_alloc) + 64];
	} w;
	uint8_t kind = byte(in), shape = byte(in), with_fds = byte(in);
	size_t len = 0, right;
	int fds[2] = { -1, -1 };
	unsigned n_fds = with_fds < 192 ? 0 : with_fds < 248 ? 1 : 2;
	uint32_t cookie = ++next_cookie;

	memset(&w, 0, sizeof(w));
	switch (kind % 5) {
	case 0:
		w.req = (struct access_wire_request){ .op = ACCESS_WIRE_BEGIN, .cookie = cookie,
			.id = some_id(in, broker.next_buffer_id + 1), .mode = some_u32(in, 4), .flags = some_u32(in, 3) };
		len = sizeof(w.req);
		break;
	case 1:
		w.req = (struct access_wire_request){ .op = ACCESS_WIRE_END, .cookie = cookie,
			.id = some_id(in, broker.next_grant_id + 1) };
		len = sizeof(w.req);
		break;
	case 2:
		w.alloc.op = ACCESS_WIRE_ALLOCATE;
		w.alloc.cookie = cookie;
		fill_alloc(in, &w.alloc);
		len = sizeof(w.alloc);
		break;
	case 3:
		w.req = (struct access_wire_request){ .op = ACCESS_WIRE_RELEASE, .cookie = cookie,
			.id = some_id(in, broker.next_buffer_id + 1) };
		len = sizeof(w.req);
		break;
	default: /* no such kind, or one of the daemon's own */
		w.req = (struct access_wire_request){ .op = (uint32_t)bytes(in, 1) % 10, .cookie = cookie,
			.id = some_id(in, broker.next_buffer_id + 1) };
		if (w.req.op == ACCESS_WIRE_ALLOCATE)
			w.req.op = 0;
		len = byte(in) & 1 ? sizeof(w.req) : sizeof(w.alloc);
		break;
	}
	if (shape >= 224) { /* cut, or with something after it */
		size_t n = bytes(in, 2) % sizeof(w.raw);
		for (size_t i = len; i < n; i++)
			w.raw[i] = byte(in);
		len = n;
	}
	for (unsigned i = 0; i < n_fds; i++) {
		/* a memfd (of some bytes), a pipe, /dev/null */
		fds[i] = fuzz_new_fd(in, byte(in) % 3, 1);
		check(fds[i] >= 0);
	}
	/* the daemon reads what is sent before it answers: the socket never fills here */
	check(send_fds(s->fd, &w, len, fds, n_fds, MSG_NOSIGNAL | MSG_DONTWAIT) == (ssize_t)len);
	for (unsigned i = 0; i < n_fds; i++)
		close(fds[i]);

	/* what the daemon must make of it */
	right = w.op == ACCESS_WIRE_ALLOCATE ? sizeof(w.alloc) :
		w.op == ACCESS_WIRE_BEGIN || w.op == ACCESS_WIRE_END || w.op == ACCESS_WIRE_RELEASE ? sizeof(w.req) : 0;
	if (len < 4 || len != right || (n_fds && w.op != ACCESS_WIRE_END)) {
		/* none (a message of 0 bytes and no fd is the end of the channel: none too) */
		s->bad = true;
		return;
	}
	if (w.op == ACCESS_WIRE_BEGIN || w.op == ACCESS_WIRE_ALLOCATE)
		remember(s, w.req.cookie, w.op);
}

/*
 * Many BEGINs (refused at once, each answered with an ERROR) without reading
 * the answers: more than the socket holds. The daemon reads them all (it is
 * pumped), and each must be answered or the channel closed.
 */
static void flood(struct side *s, struct input *in)
{
	unsigned n = 128 + byte(in); /* the socket holds about 170 answers */

	for (unsigned i = 0; i < n && s->fd >= 0 && s->n_out < MAX_OUTSTANDING; i++) {
		struct access_wire_request w = { .op = ACCESS_WIRE_BEGIN, .cookie = ++next_cookie, .id = 0, .mode = 1 };
		if (send(s->fd, &w, sizeof(w), MSG_NOSIGNAL | MSG_DONTWAIT) != (ssize_t)sizeof(w))
			break; /* the daemon closed the channel, or has not read yet */
		remember(s, w.cookie, ACCESS_WIRE_BEGIN);
		if (i % 16 == 15)
			for (int k = 0; k < 100 && sd_event_run(event, 0) > 0; k++)
				;
	}
	s->deaf = true;
}

/* ---- the daemon's answers ---- */

static void answered(struct side *s, uint32_t cookie, uint32_t op)
{
	for (unsigned i = 0; i < s->n_out; i++)
		if (s->out[i].cookie == cookie) {
			check(op == ACCESS_WIRE_ERROR || (op == ACCESS_WIRE_GRANTED) == (s->out[i].op == ACCESS_WIRE_BEGIN));
			s->out[i] = s->out[--s->n_out];
			return;
		}
	fprintf(stderr, "fuzz-access: an answer (op %u) to cookie %u, which is not waiting for one\n", op, cookie);
	abort();
}

/* Reads what the daemon sent s. */
static void read_answers(struct side *s)
{
	union {
		uint32_t op;
		struct access_wire_reply reply;
		struct access_wire_buffer buffer;
	} a;

	while (s->fd >= 0) {
		int fd;
		ssize_t n = fdmsg_recv(s->fd, &a, sizeof(a), &fd, MSG_DONTWAIT);
		if (n == -EAGAIN)
			return;
		if (n == -ECONNRESET) {
			/* the daemon closed its end with messages unread: what it sent before still follows */
			check(s->bad || s->deaf || !s->c);
			continue;
		}
		check(n >= 0); /* the daemon sends nothing too long, and no fd without a message */
		if (n == 0) {
			/*
			 * The daemon closed the channel: only for a message that was
			 * none, a client that did not read its answers, or as it left.
			 */
			check(s->bad || s->deaf || !s->c);
			check(!s->c || !s->c->access_channel);
			n_closed += s->c != NULL;
			s->fd = safe_close(s->fd);
			s->n_out = 0; /* nobody answers them any more */
			return;
		}
		check(n >= 8);
		switch (a.op) {
		case ACCESS_WIRE_GRANTED:
			check((size_t)n == ACCESS_WIRE_GRANTED_SIZE);
			check(a.reply.grant && a.reply.grant <= broker.next_grant_id);
			n_granted++;
			n_granted_later += a.reply.cookie != next_cookie;
			break;
		case ACCESS_WIRE_BUFFER:
			check((size_t)n == sizeof(a.buffer) && fd >= 0);
			check(a.buffer.id && a.buffer.id <= broker.next_buffer_id);
			check(a.buffer.n_planes >= 1 && a.buffer.n_planes <= ACCESS_WIRE_MAX_PLANES);
			check(memchr(a.buffer.backend, 0, sizeof(a.buffer.backend)));
			n_buffers++;
			break;
		case ACCESS_WIRE_ERROR:
			check((size_t)n == sizeof(a.reply) && fd < 0);
			check(memchr(a.reply.message, 0, sizeof(a.reply.message)));
			check(a.reply.error > 0);
			/* bad input gets a named error */
			check(dmabroker_error_code_name(a.reply.code) != NULL);
			check(a.reply.error == dmabroker_error_code_errno(a.reply.code));
			n_errors++;
			break;
		default:
			check(!"an answer of no known kind");
		}
		answered(s, a.reply.cookie, a.op);
		safe_close(fd);
	}
}

/* ---- the books ---- */

static void check_books(void)
{
	uint64_t bytes = 0, key;
	unsigned n_grants = 0;
	void *v;

	for (size_t i = 0; hashmap_next(&broker.buffers, &i, &key, &v);) {
		struct buffer *buf = v;
		check(buf->id == key);
		bytes += buf->size;
		n_grants += books_check_buffer(&broker, buf);
	}
	check(bytes == broker.bytes);
	books_check_grants(&broker, n_grants);
	for (struct client *c = broker.clients; c; c = c->next)
		books_check_client(&broker, c, true);
}

/* What each side waits for: an ALLOCATE is answered at once, a BEGIN at once or when granted. */
static void check_waiting(struct side *s)
{
	if (!s->c)
		return;
	/* a channel that is closed leaves nothing in the queue to answer on a channel opened later */
	for (struct request *r = broker.pending; r; r = r->next) {
		unsigned found = 0;
		if (r->client != s->c || r->done.call || r->internal)
			continue;
		check(s->c->access_channel);
		for (unsigned i = 0; i < s->n_out; i++)
			found += s->out[i].cookie == r->done.cookie && s->out[i].op == ACCESS_WIRE_BEGIN;
		check(found == 1);
	}
	if (!s->c->access_channel)
		return;
	for (unsigned i = 0; i < s->n_out; i++) {
		bool queued = false;
		check(s->out[i].op == ACCESS_WIRE_BEGIN);
		for (struct request *r = broker.pending; r && !queued; r = r->next)
			queued = r->client == s->c && !r->done.call && !r->internal && r->done.cookie == s->out[i].cookie;
		check(queued);
	}
}

/*
 * Runs the daemon until it has nothing to do, then reads the answers. (If
 * allocations go to worker threads, wait for them here too.)
 */
static void pump(void)
{
	for (int i = 0; i < 2000; i++)
		if (sd_event_run(event, 0) <= 0)
			break;
	for (unsigned k = 0; k < 2; k++)
		read_answers(&sides[k]);
	check_books();
	for (unsigned k = 0; k < 2; k++) {
		struct side *s = &sides[k];
		/* a message that is none closes the channel, at once */
		if (s->c && s->bad)
			check(!s->c->access_channel);
		check_waiting(s);
	}
}

static void leave(struct side *s)
{
	read_answers(s); /* what came before it left */
	if (s->c)
		client_free(s->c);
	s->c = NULL;
	s->n_out = 0; /* its requests went with it */
}

static void setup(void)
{
	struct config cfg;

	config_init(&cfg);
	cfg.max_buffer_size = 1 << 20;
	cfg.max_buffers_per_client = 8;
	cfg.max_pending_per_client = 8;
	cfg.pool_max_bytes = 0; /* freed buffers go: the fd count must come back */
	if (!getenv("FUZZ_ACCESS_LOG"))
		log_set_level(LOG_CRIT);
	if (sd_event_new(&event) < 0 || broker_init(&broker, event, &cfg) < 0)
		abort();
	if (getenv("FUZZ_ACCESS_STATS"))
		atexit(print_stats);
}

static void run(struct input *in)
{
	unsigned messages = 0;

	sides[0] = (struct side){ .c = books_new_client(&broker, 4242), .fd = -1 };
	sides[1] = (struct side){ .c = books_new_client(&broker, 4243), .fd = -1 };
	open_channel(&sides[0]);
	open_channel(&sides[1]);
	for (int steps = 0; steps < 64 && in->left && messages < MAX_MESSAGES; steps++) {
		uint8_t sel = byte(in);
		struct side *s = &sides[sel & 1], *other = &sides[!(sel & 1)];
		sel >>= 1;
		if (sel < 96) {
			if (s->fd >= 0) {
				send_message(s, in);
				messages++;
			}
			if (sel & 1)
				continue; /* more before the daemon looks */
		} else if (sel < 104) {
			/* the other client gets one of s's buffers, as OpenToken would give it */
			struct buffer *buf = buffer_find(&broker, some_id(in, broker.next_buffer_id));
			struct error e = ERROR_NULL;
			if (buf && s->c && other->c && buffer_held_by(buf, s->c))
				buffer_hold(buf, other->c, &e);
			e = ERROR_NULL;
		} else if (sel < 110) {
			/* a client whose channel was closed opens a new one */
			if (s->c && !s->c->access_channel) {
				safe_close(s->fd);
				open_channel(s);
			}
		} else if (sel < 112) {
			leave(s);
		} else if (sel < 114) {
			if (s->fd >= 0)
				flood(s, in);
		}
		pump();
	}
	pump();
	/* the clients go: everything they held goes with them */
	for (unsigned k = 0; k < 2; k++)
		leave(&sides[k]);
	pump();
	for (unsigned k = 0; k < 2; k++) {
		/* their channels ended */
		if (sides[k].fd >= 0) {
			char x;
			check(recv(sides[k].fd, &x, 1, MSG_DONTWAIT) == 0);
		}
		sides[k].fd = safe_close(sides[k].fd);
	}
	check(broker.buffers.len == 0 && broker.grants.len == 0 && !broker.pending && broker.bytes == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* a short run first: what sd-event sets up once (timerfds) is not a leak */
	static const uint8_t warm[] = { 4, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 };

	return fuzz_one_input(data, size, setup, run, &(struct input){ warm, sizeof(warm) });
}

/* SPDX-License-Identifier: MIT */
/*
 * Streams: a set of buffers the broker cycles between one producer and one
 * or more consumers, with fences both ways.
 *
 *   producer                 daemon                       consumer
 *   CreateStream ----------> negotiates once the expected
 *                            consumers joined (JoinStream)
 *   StreamBuffers <--------- fds, once ------------------> StreamBuffers
 *   QueueFrame(i, ready) --> FrameReady(i, acquire=ready) -> (uses it)
 *                            <---------------------------- ReleaseFrame(i, release)
 *   BufferReleased(i, release) <- when every consumer let go of i
 *
 * FIFO streams: frames do not pass through the daemon at all. At
 * negotiation it gives the producer and each consumer the two ends of a
 * peer channel (protocol/stream-wire.h), and frames and releases go from one
 * to the other in one hop, fences included; the libraries keep the books
 * the daemon keeps for mailbox streams below (one module for both:
 * common/stream-books.h), and import the fences into the dma-buf. The
 * daemon keeps a copy of both ends of each channel and shuts it down when
 * either party leaves or dies, so the other side knows at once; it reads
 * the frame counters from a memfd per party.
 *
 * Mailbox streams: per-frame calls are one-way messages on the client's
 * direct connection, relayed by the daemon, which can replace a frame a
 * consumer has not taken even when that consumer does not read at all (so
 * the producer never waits on it). The daemon never waits on a fence: it
 * passes the producer's ready fence to the consumers as their acquire fence
 * and the merge of the consumers' release fences back to the producer, and
 * imports both into the dma-buf, so that implicit-sync users of the buffer
 * see the same order.
 *
 * Each consumer holds at most max-acquired frames. A frame that finds it at
 * that limit waits: in FIFO mode in a queue (a stalled consumer thus holds
 * every buffer in the end, and the producer waits: back-pressure); in
 * mailbox mode in a single slot, where a newer frame replaces it (dropped;
 * the buffer goes back to the producer).
 *
 * Negotiation picks the first of the producer's formats every consumer
 * accepts, the linear modifier, and a placement: on a DRM device that some
 * party uses and that imports no foreign dma-buf (virtio-gpu) or that the
 * party declares it reads only its own buffers from (option native: Mesa's
 * kms_swrast), else wherever the union of usages can be served. A refusal
 * names the party.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <drm_fourcc.h>

#include "allocate.h"
#include "broker.h"
#include "cleanup.h"
#include "error.h"
#include "fence.h"
#include "log.h"
#include "printable.h"
#include "quota.h"
#include "stream-books.h"
#include "stream-wire.h"
#include "stream.h"
#include "dmabroker-protocol.h"

struct stream_party {
	struct client *client;
	struct stream_params p;
	struct completion waiting;      /* its StreamBuffers call, until negotiated (ops NULL: none) */
	int counters;                   /* FIFO: its memfd of struct stream_wire_counters, or -1 */
	bool has_buffers;               /* its StreamBuffers reply went out */
};

struct stream_consumer {
	struct stream_party party;
	uint32_t id;
	bool active;
	struct stream_account account;  /* the frames it holds and those waiting for it */
	uint64_t delivered, consumed, dropped;
	bool end_owed;                  /* StreamEnded, once what waits for it here is sent */
	int chan[2];                    /* FIFO: the peer channel, producer's end and its own (ours), or -1 */
};

struct slot {
	struct buffer *buf;
	struct frame_meta meta;
};

struct stream {
	struct broker *broker;
	uint64_t id;
	struct stream_params p;         /* the producer's */
	enum stream_state state;
	int error_code;                 /* why it failed (STREAM_FAILED) */
	char error_msg[512];
	bool has_producer;
	struct stream_party producer;
	struct stream_consumer consumers[DMABROKER_STREAM_MAX_CONSUMERS];
	unsigned n_consumers;
	uint32_t next_consumer_id;
	uint32_t fourcc;
	uint64_t modifier;
	struct backend *backend;
	struct slot slots[DMABROKER_STREAM_MAX_BUFFERS];
	unsigned n_slots;
	struct stream_books books;      /* who holds each slot's frame (bit: index in consumers[]), its fences */
	uint64_t produced, consumed, dropped;
	uid_t owner_uid;                /* the producer's */
	bool peer;                      /* FIFO: frames travel on peer channels, not through us */
	/* negotiation: buffers being allocated on workers (allocate.c), and why the first failed */
	unsigned allocating;
	bool alloc_failed;
	struct backend *need;           /* the placement a party's device asked for, or NULL */
	struct stream *next;
};

static const char *const mode_names[] = { [STREAM_FIFO] = "fifo", [STREAM_MAILBOX] = "mailbox" };
static const char *const state_names[] = {
	[STREAM_NEGOTIATING] = "negotiating", [STREAM_RUNNING] = "running",
	[STREAM_FAILED] = "failed", [STREAM_ENDED] = "ended",
};

/* ---- lookup ---- */

static bool valid_name(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
		      *s == '-' || *s == '_' || *s == '.'))
			return false;
	return true;
}


struct stream *stream_find(struct broker *b, uint64_t id)
{
	for (struct stream *s = b->streams; s; s = s->next)
		if (s->id == id)
			return s;
	return NULL;
}

uint64_t stream_id(const struct stream *s)
{
	return s->id;
}

struct stream *stream_next(const struct stream *s)
{
	return s->next;
}

static struct stream *find_by_name(struct broker *b, const char *name)
{
	for (struct stream *s = b->streams; s; s = s->next)
		if (strcmp(s->p.name, name) == 0)
			return s;
	return NULL;
}

static struct stream_consumer *consumer_of(struct stream *s, struct client *c)
{
	for (unsigned i = 0; i < DMABROKER_STREAM_MAX_CONSUMERS; i++)
		if (s->consumers[i].active && s->consumers[i].party.client == c)
			return &s->consumers[i];
	return NULL;
}

static bool in_stream(struct stream *s, struct client *c)
{
	return consumer_of(s, c) || (s->has_producer && s->producer.client == c);
}

int stream_unknown(uint64_t id, struct error *error)
{
	return error_setf(error, DMABROKER_E_UNKNOWN_STREAM, "no stream %llu", (unsigned long long)id);
}

/* "consumer 'display' (client 7)"; the label is the client's: quoted printable. */
static const char *who(const struct stream *s, const struct stream_party *p, char *out, size_t len)
{
	char text[128], label[48];

	snprintf(text, sizeof(text), "%s '%s' (client %llu)", p == &s->producer ? "producer" : "consumer",
		 printable(p->p.label, label, sizeof(label)), (unsigned long long)p->client->id);
	return printable(text, out, len);
}

/* ---- peer channels (FIFO streams) ---- */

/* A party's counters: one page, sealed so that it cannot shrink under our pread. */
static int counters_new(void)
{
	int fd = memfd_create("dmabroker-stream-counters", MFD_CLOEXEC | MFD_ALLOW_SEALING), r;

	if (fd < 0)
		return -errno;
	if (ftruncate(fd, 4096) < 0 || fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

/* What the party counted (it may write anything there: its own figures only). */
static struct stream_wire_counters counters_read(int fd)
{
	struct stream_wire_counters k = { 0 };

	if (fd >= 0 && pread(fd, &k, sizeof(k), 0) != (ssize_t)sizeof(k))
		memset(&k, 0, sizeof(k));
	return k;
}

static int channel_open(struct stream_consumer *con)
{
	int sv[2], counters;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) < 0)
		return -errno;
	counters = counters_new();
	if (counters < 0) {
		close(sv[0]);
		close(sv[1]);
		return counters;
	}
	con->chan[0] = sv[0];
	con->chan[1] = sv[1];
	con->party.counters = counters;
	return 0;
}

/* Ends con's channel: both sides see it end now, whoever else holds it. */
static void channel_shut(struct stream_consumer *con)
{
	if (con->chan[0] >= 0)
		shutdown(con->chan[0], SHUT_RDWR);
	con->chan[0] = safe_close(con->chan[0]);
	con->chan[1] = safe_close(con->chan[1]);
}

/* Shuts con's channel and keeps what it counted. */
static void channel_close(struct stream *s, struct stream_consumer *con)
{
	channel_shut(con);
	if (con->party.counters >= 0) {
		con->consumed = counters_read(con->party.counters).frames;
		s->consumed += con->consumed;
		con->party.counters = safe_close(con->party.counters);
	}
}

/* At negotiation: the producer's counters and a channel per consumer. */
static int peers_open(struct stream *s, struct error *error)
{
	int r = 0;

	s->producer.counters = counters_new();
	if (s->producer.counters < 0)
		r = s->producer.counters;
	for (unsigned i = 0; r >= 0 && i < DMABROKER_STREAM_MAX_CONSUMERS; i++)
		if (s->consumers[i].active)
			r = channel_open(&s->consumers[i]);
	if (r >= 0) {
		s->peer = true;
		return 0;
	}
	for (unsigned i = 0; i < DMABROKER_STREAM_MAX_CONSUMERS; i++)
		if (s->consumers[i].active)
			channel_close(s, &s->consumers[i]);
	s->producer.counters = safe_close(s->producer.counters);
	return error_setf(error, DMABROKER_E_NEGOTIATION_FAILED, "stream '%s': cannot open its peer channels: %s",
				 s->p.name, strerror(-r));
}

/* A consumer that joined a running FIFO stream: the producer gets its end. */
static void peer_announce(struct stream *s, struct stream_consumer *con)
{
	if (s->has_producer && s->producer.has_buffers)
		broker_emit(s->broker, consumer_joined, s->producer.client, s->id, con->id, con->chan[0]);
}

/* ---- the frame cycle ---- */

static void return_to_producer(struct stream *s, unsigned i)
{
	int release = stream_books_give_back(&s->books, i);

	if (s->has_producer)
		broker_emit(s->broker, buffer_released, s->producer.client, s->id, i, release);
	safe_close(release);
}

/* con lets go of frame i, with release_fence (taken, -1: none). */
static void slot_unref(struct stream *s, struct stream_consumer *con, unsigned i, int release_fence)
{
	if (stream_books_let_go(&s->books, i, (unsigned)(con - s->consumers), release_fence))
		return_to_producer(s, i);
}

static void send_frame(struct stream *s, struct stream_consumer *con, unsigned i)
{
	const struct slot *sl = &s->slots[i];
	int r;

	stream_account_acquire(&con->account, i);
	con->delivered++;
	r = broker_emit(s->broker, frame_ready, con->party.client, s->id, i, &sl->meta, s->books.buf[i].ready_fence);
	if (r < 0)
		log_debug("stream %llu: cannot send frame to client %llu: %s", (unsigned long long)s->id,
			  (unsigned long long)con->party.client->id, strerror(-r));
}

/*
 * The producer left: con hears it after the last frame that waits for it
 * here (it comes when con lets go of one), on the same connection, so it
 * never sees the end before a frame still on its way.
 */
static void send_end(struct stream *s, struct stream_consumer *con)
{
	con->end_owed = stream_account_waiting(&con->account);
	if (!con->end_owed)
		broker_emit(s->broker, stream_ended, con->party.client, s->id, "the producer left");
}

/* Sends con what waits for it, while it is under its limit. */
static void pump(struct stream *s, struct stream_consumer *con)
{
	for (int i; (i = stream_account_next(&con->account)) >= 0;)
		send_frame(s, con, (unsigned)i);
	if (con->end_owed)
		send_end(s, con);
}

static void deliver(struct stream *s, struct stream_consumer *con, unsigned i)
{
	int old;

	stream_books_hold(&s->books, i, (unsigned)(con - s->consumers));
	if (stream_account_offer(&con->account, i, s->p.mode == STREAM_MAILBOX, &old) > 0) {
		send_frame(s, con, i);
	} else if (old >= 0) {
		con->dropped++;
		s->dropped++;
		slot_unref(s, con, (unsigned)old, -1);
	}
}

/* ---- negotiation ---- */

static bool has_u32(const uint32_t *v, unsigned n, uint32_t x)
{
	for (unsigned i = 0; i < n; i++)
		if (v[i] == x)
			return true;
	return false;
}

static bool takes_linear(const struct stream_params *p)
{
	for (unsigned i = 0; i < p->n_modifiers; i++)
		if (p->modifiers[i] == DRM_FORMAT_MOD_LINEAR)
			return true;
	return p->n_modifiers == 0;
}

/* Whether party p's device be needs the buffers allocated on it: it imports none, or p reads only its own. */
static bool needs_native(const struct stream_party *p, const struct backend *be)
{
	return be && (!be->imports || p->p.native);
}

static struct backend *drm_backend_for(struct broker *b, const char *device)
{
	for (struct backend *be = b->backends.list; be; be = be->next)
		if (strcmp(be->ops->kind, "drm") == 0 && (strcmp(device, be->device) == 0 || strcmp(device, be->driver) == 0))
			return be;
	return NULL;
}

static void format_list(const uint32_t *f, unsigned n, char *out, size_t len)
{
	char name[5];
	*out = 0;
	for (unsigned i = 0; i < n; i++)
		snprintf(out + strlen(out), len - strlen(out), "%s%s", i ? ", " : "", fourcc_str(f[i], name));
	if (!n)
		snprintf(out, len, "any");
}

/*
 * Checks that party p can use the stream as negotiated (or as it would be:
 * fourcc, and buffers on `placed`): 0, or <0 with error naming p.
 */
static int check_party(struct stream *s, const struct stream_party *p, uint32_t fourcc, const struct backend *placed,
		       struct error *error)
{
	char w[96], list[256], name[5];

	if (p->p.n_formats && !has_u32(p->p.formats, p->p.n_formats, fourcc)) {
		format_list(p->p.formats, p->p.n_formats, list, sizeof(list));
		return error_setf(error, DMABROKER_E_NEGOTIATION_FAILED,
					 "stream '%s': %s does not accept %s; it takes %s", s->p.name,
					 who(s, p, w, sizeof(w)), fourcc_str(fourcc, name), list);
	}
	if (!takes_linear(&p->p))
		return error_setf(error, DMABROKER_E_NEGOTIATION_FAILED,
					 "stream '%s': %s takes only modifiers 0x%llx... (%u), and dmabroker allocates "
					 "linear buffers", s->p.name, who(s, p, w, sizeof(w)),
					 (unsigned long long)p->p.modifiers[0], p->p.n_modifiers);
	for (unsigned d = 0; placed && d < p->p.n_devices; d++) {
		struct backend *be = drm_backend_for(s->broker, p->p.devices[d]);
		if (needs_native(p, be) && be != placed)
			return error_setf(error, DMABROKER_E_NEGOTIATION_FAILED,
						 "stream '%s': %s uses %s (%s)%s, but the buffers are on %s",
						 s->p.name, who(s, p, w, sizeof(w)), be->driver, be->device,
						 be->imports ? " and reads only buffers allocated on it (native)"
							     : ", which imports no foreign dma-buf", placed->name);
	}
	if (placed && (p->p.usage & DMABROKER_USAGE_CONTIGUOUS) && !placed->contiguous)
		return error_setf(error, DMABROKER_E_NEGOTIATION_FAILED,
					 "stream '%s': %s needs contiguous memory; the buffers are on %s", s->p.name,
					 who(s, p, w, sizeof(w)), placed->name);
	return 0;
}

static unsigned parties(struct stream *s, struct stream_party **out)
{
	unsigned n = 0;
	if (s->has_producer)
		out[n++] = &s->producer;
	for (unsigned i = 0; i < DMABROKER_STREAM_MAX_CONSUMERS; i++)
		if (s->consumers[i].active)
			out[n++] = &s->consumers[i].party;
	return n;
}

/*
 * Negotiation's first half, in the loop: the format, the placement and the
 * backends that may serve it (req, candidates). 0, or <0 with error.
 */
static int negotiate_plan(struct stream *s, struct alloc_request *req, struct backend **candidates, unsigned *ret_nc,
			  struct error *error)
{
	struct broker *b = s->broker;
	struct stream_party *all[DMABROKER_STREAM_MAX_CONSUMERS + 1], *needer = NULL;
	struct backend *need = NULL;
	char w[96], w2[96], why[256], list[256];
	uint32_t fourcc = 0, usage = 0;
	unsigned n = parties(s, all), nc;
	int r;

	/* the first of the producer's formats that everybody takes */
	for (unsigned f = 0; f < s->p.n_formats && !fourcc; f++) {
		bool ok = format_lookup(s->p.formats[f]) != NULL;
		for (unsigned i = 1; i < n && ok; i++)
			ok = all[i]->p.n_formats == 0 || has_u32(all[i]->p.formats, all[i]->p.n_formats, s->p.formats[f]);
		if (ok)
			fourcc = s->p.formats[f];
	}
	if (!fourcc) {
		format_list(s->p.formats, s->p.n_formats, list, sizeof(list));
		for (unsigned i = 1; i < n; i++) {
			bool any = false;
			for (unsigned f = 0; f < s->p.n_formats; f++)
				any |= all[i]->p.n_formats == 0 ||
				       has_u32(all[i]->p.formats, all[i]->p.n_formats, s->p.formats[f]);
			if (!any) {
				char theirs[256];
				format_list(all[i]->p.formats, all[i]->p.n_formats, theirs, sizeof(theirs));
				return error_setf(error, DMABROKER_E_NEGOTIATION_FAILED,
							 "stream '%s': %s accepts none of the producer's formats (%s); "
							 "it takes %s", s->p.name, who(s, all[i], w, sizeof(w)), list,
							 theirs);
			}
		}
		return error_setf(error, DMABROKER_E_NEGOTIATION_FAILED,
					 "stream '%s': no format of the producer's (%s) is supported by dmabroker and "
					 "accepted by every consumer", s->p.name, list);
	}
	for (unsigned i = 0; i < n; i++) {
		r = check_party(s, all[i], fourcc, NULL, error);
		if (r < 0)
			return r;
		usage |= all[i]->p.usage;
	}
	/* placement: the one device that imports nothing or is read natively only, if a party uses one */
	for (unsigned i = 0; i < n; i++)
		for (unsigned d = 0; d < all[i]->p.n_devices; d++) {
			struct backend *be = drm_backend_for(b, all[i]->p.devices[d]);
			if (!needs_native(all[i], be))
				continue;
			if (need && need != be)
				return error_setf(error, DMABROKER_E_NEGOTIATION_FAILED,
							 "stream '%s': %s needs the buffers on %s (%s) and %s on %s (%s); %s, "
							 "so no placement serves both", s->p.name, who(s, needer, w, sizeof(w)),
							 need->driver, need->device, who(s, all[i], w2, sizeof(w2)), be->driver,
							 be->device, !need->imports && !be->imports
								 ? "neither device imports foreign dma-bufs"
								 : "each reads only buffers allocated on it");
			need = be;
			needer = all[i];
		}
	nc = backends_choose(&b->backends, usage, need ? need->name : NULL, NULL, candidates, *ret_nc,
			     why, sizeof(why));
	if (nc > 0) {
		/* the producer allocates: its [access] rules apply */
		r = filter_allowed(s->producer.client, candidates, &nc, error);
		if (r < 0)
			return r;
	}
	if (nc == 0) {
		if (need)
			return error_setf(error, DMABROKER_E_NEGOTIATION_FAILED,
						 "stream '%s': %s needs the buffers on %s, which cannot serve usage 0x%x: %s",
						 s->p.name, who(s, needer, w, sizeof(w)), need->name, usage, why);
		return error_setf(error, DMABROKER_E_NEGOTIATION_FAILED, "stream '%s': %s", s->p.name, why);
	}

	*req = (struct alloc_request){
		.format = format_lookup(fourcc), .width = s->p.width, .height = s->p.height, .usage = usage,
		.max_size = b->config.max_buffer_size, .max_dimension = b->config.max_dimension,
	};
	s->fourcc = fourcc;
	s->modifier = DRM_FORMAT_MOD_LINEAR;
	s->need = need;
	*ret_nc = nc;
	return 0;
}

/*
 * Negotiation's end, once every buffer is allocated: every party can use
 * them where they are, and FIFO streams get their peer channels.
 */
static int negotiate_finish(struct stream *s, struct error *error)
{
	struct stream_party *all[DMABROKER_STREAM_MAX_CONSUMERS + 1];
	unsigned n = parties(s, all);
	int r;

	if (!s->n_slots)
		return error_setf(error, DMABROKER_E_NEGOTIATION_FAILED, "stream '%s': no buffer", s->p.name);
	s->backend = s->slots[0].buf->backend;
	/* consumers that joined while the buffers were allocated were checked for the format only */
	for (unsigned i = 0; i < n; i++) {
		r = check_party(s, all[i], s->fourcc, s->backend, error);
		if (r < 0)
			return r;
	}
	if (s->p.mode == STREAM_FIFO) {
		r = peers_open(s, error);
		if (r < 0)
			return r;
	}
	log_info("stream %llu '%s': %ux%u %s on %s, %u buffers, %s%s, %u consumers", (unsigned long long)s->id,
		 s->p.name, s->p.width, s->p.height, format_lookup(s->fourcc)->name, s->backend->name, s->n_slots,
		 mode_names[s->p.mode], s->peer ? " (peer to peer)" : "", s->n_consumers);
	return 0;
}

/* ---- StreamBuffers replies ---- */

void stream_describe(const struct stream *s, const struct client *c, struct stream_buffers_info *out)
{
	const struct stream_consumer *con = consumer_of((struct stream *)s, (struct client *)c);
	const struct stream_party *p = con ? &con->party : &s->producer;

	*out = (struct stream_buffers_info){
		.width = s->p.width, .height = s->p.height, .fourcc = s->fourcc, .modifier = s->modifier,
		.backend = s->backend ? s->backend->name : "", .mode = mode_names[s->p.mode],
		.n_buffers = s->n_slots, .max_acquired = con ? p->p.max_acquired : 0, .counters = p->counters,
	};
	for (unsigned i = 0; i < s->n_slots; i++)
		out->buffers[i] = s->slots[i].buf;
	for (unsigned i = 0; i < DMABROKER_STREAM_MAX_CONSUMERS; i++) {
		const struct stream_consumer *k = &s->consumers[i];
		if (!k->active || k->chan[0] < 0 || (con && k != con))
			continue;
		out->channels[out->n_channels].consumer = k->id;
		out->channels[out->n_channels++].fd = con ? k->chan[1] : k->chan[0];
	}
}

/* Hands p its buffers (held from now on) through `to`. */
static int reply_buffers(struct stream *s, struct stream_party *p, const struct completion *to, struct error *error)
{
	int r;

	for (unsigned i = 0; i < s->n_slots; i++) {
		r = buffer_hold(s->slots[i].buf, p->client, error);
		if (r < 0)
			return r;
	}
	r = to->ops && to->ops->stream_buffers ? to->ops->stream_buffers(to, s, p->client) : -ENOTCONN;
	if (r >= 0)
		p->has_buffers = true;
	return r < 0 ? r : 1;
}

static void answer_waiting(struct stream *s, struct stream_party *p)
{
	struct error e = ERROR_NULL;
	struct completion call = p->waiting;
	int r;

	if (!call.ops)
		return;
	p->waiting.ops = NULL;
	if (s->state == STREAM_RUNNING)
		r = reply_buffers(s, p, &call, &e);
	else if (s->state == STREAM_FAILED)
		r = error_set(&e, s->error_code, s->error_msg);
	else
		r = error_setf(&e, DMABROKER_E_STREAM_ENDED, "stream '%s' ended: its producer left", s->p.name);
	if (r < 0 && !error_is_set(&e))
		error_set_errnof(&e, r, "cannot send the stream's buffers: %s", strerror(-r));
	if (r < 0)
		completion_fail(&call, r, &e);
	completion_drop(&call);
}

/* The end of negotiation: running, or failed with e (set) and no buffers; every waiting party is answered. */
static void negotiation_end(struct stream *s, struct error *e)
{
	struct stream_party *all[DMABROKER_STREAM_MAX_CONSUMERS + 1];
	unsigned n;

	if (!error_is_set(e) && negotiate_finish(s, e) >= 0) {
		s->state = STREAM_RUNNING;
	} else {
		s->state = STREAM_FAILED;
		s->error_code = error_is_set(e) && e->code ? e->code : DMABROKER_E_NEGOTIATION_FAILED;
		printable(error_is_set(e) ? e->message : "negotiation failed", s->error_msg, sizeof(s->error_msg));
		log_notice("stream %llu: %s", (unsigned long long)s->id, s->error_msg);
		for (unsigned i = 0; i < s->n_slots; i++) {
			buffer_release(buffer_held_by(s->slots[i].buf, s->producer.client));
			buffer_unset_stream(s->slots[i].buf);
		}
		s->n_slots = 0;
	}
	n = parties(s, all);
	for (unsigned i = 0; i < n; i++)
		answer_waiting(s, all[i]);
}

/* Why the first of the stream's allocations failed, kept until they have all ended. */
static void allocation_failed(struct stream *s, const struct error *e)
{
	if (s->alloc_failed)
		return;
	s->alloc_failed = true;
	snprintf(s->error_msg, sizeof(s->error_msg), "stream '%s': %u buffers%s%s%s: %.300s", s->p.name, s->p.buffers,
		 s->need ? " (on " : "", s->need ? s->need->name : "", s->need ? " because of its importers)" : "",
		 error_is_set(e) ? e->message : "cannot allocate");
}

static void allocations_ended(struct stream *s)
{
	struct error e = ERROR_NULL;

	if (s->alloc_failed)
		error_set(&e, DMABROKER_E_NEGOTIATION_FAILED, s->error_msg);
	negotiation_end(s, &e);
}

/*
 * One of the stream's buffers, allocated for its producer c (allocate.c),
 * on the loop. A stream that ended or went meanwhile does not take it. Not
 * called when c left: allocate.c then keeps nothing.
 */
static void slot_allocated(struct client *c, struct buffer *buf, int r, const struct error *error,
			   const struct completion *to)
{
	struct stream *s = stream_find(c->broker, to->cookie); /* the stream's id */

	if (!s || s->state != STREAM_NEGOTIATING || !s->has_producer || s->producer.client != c || !s->allocating) {
		if (buf)
			buffer_release(buffer_held_by(buf, c));
		return;
	}
	if (r < 0) {
		allocation_failed(s, error);
	} else if (s->alloc_failed || s->n_slots >= s->p.buffers) {
		buffer_release(buffer_held_by(buf, c));
	} else {
		/* the stream keeps it; holders are the parties. Streams do not
		 * survive a restart, so their buffers are not in the fd store. */
		buf->stream = s;
		s->slots[s->n_slots++] = (struct slot){ .buf = buf };
	}
	if (--s->allocating == 0)
		allocations_ended(s);
}

/*
 * Once the producer and the consumers it waits for are there: plans the
 * stream in the loop, then allocates its buffers like an Allocate of the
 * producer's (charged to it first, taken on a worker thread), so the loop
 * never waits for the kernel to zero them. Until they are all there the
 * stream stays negotiating; StreamBuffers calls wait.
 */
static void maybe_negotiate(struct stream *s)
{
	struct error e = ERROR_NULL;
	struct backend *candidates[16];
	struct alloc_request req;
	unsigned nc = ELEMENTSOF(candidates);

	if (s->state != STREAM_NEGOTIATING || s->allocating || !s->has_producer || s->n_consumers < s->p.consumers)
		return;
	if (negotiate_plan(s, &req, candidates, &nc, &e) < 0) {
		negotiation_end(s, &e);
		e = ERROR_NULL;
		return;
	}
	s->allocating = 1; /* this loop's own: no end before every allocation has started */
	for (unsigned i = 0; i < s->p.buffers && !s->alloc_failed; i++) {
		s->allocating++;
		if (allocation_start(s->producer.client, &req, candidates, nc, slot_allocated,
				     &(struct completion){ .cookie = s->id }, &e) < 0) {
			s->allocating--;
			allocation_failed(s, &e);
		}
		e = ERROR_NULL;
	}
	if (--s->allocating == 0)
		allocations_ended(s);
}

/* ---- create, join, leave ---- */

static int check_limit(struct client *c, struct error *error)
{
	return quota_check(c, Q_STREAMS, 1, error);
}

/*
 * What a stream may make the daemon hold, charged against the fd budget
 * when a party comes and given back when it goes: the producer's counters;
 * a consumer's peer channel (both ends) and counters; and, for the stream's
 * life, a ready and a release fence per buffer.
 */
enum {
	STREAM_PRODUCER_FDS = 1,
	STREAM_CONSUMER_FDS = 3,
	STREAM_SLOT_FDS = 2 * DMABROKER_STREAM_MAX_BUFFERS,
};

static void default_label(struct client *c, struct stream_params *p)
{
	if (!*p->label)
		snprintf(p->label, sizeof(p->label), "%s", *c->comm ? c->comm : "client");
}

/*
 * [streams] NAME = principals: whether c may produce a stream named name.
 * The refusal names neither the principals nor whether such a stream
 * exists (they are in the log).
 */
static int check_reserved(struct client *c, const char *name, struct error *error)
{
	const struct config *cfg = &c->broker->config;
	const struct stream_rule *rule = NULL;
	char allowed[256] = "";

	for (unsigned i = 0; i < cfg->n_streams && !rule; i++)
		if (strcmp(cfg->streams[i].name, name) == 0)
			rule = &cfg->streams[i];
	if (!rule)
		return 0;
	for (unsigned i = 0; i < rule->n; i++) {
		const struct principal *w = &rule->who[i];
		if (w->resolved && (w->group ? client_in_group(c, w->id) : c->uid == w->id))
			return 0;
		snprintf(allowed + strlen(allowed), sizeof(allowed) - strlen(allowed), "%s%s%s", i ? ", " : "",
			 w->group ? "@" : "", w->name);
	}
	log_notice("refused client %llu (%s, uid %u, pid %d): may not create stream '%s' ([streams] allows %s)",
		   (unsigned long long)c->id, c->comm, (unsigned)c->uid, (int)c->pid, name, allowed);
	return error_setf(error, DMABROKER_E_NOT_PERMITTED,
				 "stream name '%s' is reserved to other users by the daemon's [streams] rule", name);
}

int stream_create(struct client *c, const struct stream_params *p, struct stream **ret, struct error *error)
{
	struct broker *b = c->broker;
	const struct format_info *f = NULL;
	struct stream *s;
	int r;

	if (p->buffers > DMABROKER_STREAM_MAX_BUFFERS)
		return error_setf(error, DMABROKER_E_INVALID_ARGUMENT, "%u buffers: a stream has 1 to %d", p->buffers,
				  DMABROKER_STREAM_MAX_BUFFERS);
	if (p->consumers > DMABROKER_STREAM_MAX_CONSUMERS)
		return error_setf(error, DMABROKER_E_INVALID_ARGUMENT, "%u consumers: at most %d", p->consumers,
				  DMABROKER_STREAM_MAX_CONSUMERS);
	if (p->n_formats == 0)
		return error_set(error, DMABROKER_E_INVALID_ARGUMENT,
				 "the producer must name its formats (option 'formats')");
	if (!valid_name(p->name))
		return error_setf(error, DMABROKER_E_INVALID_ARGUMENT,
					 "stream name '%s': 1 to 63 of A-Z a-z 0-9 - _ .", PRINTABLE(p->name));
	r = check_reserved(c, p->name, error);
	if (r < 0)
		return r;
	if (find_by_name(b, p->name))
		return error_setf(error, DMABROKER_E_NAME_TAKEN, "a stream named '%s' exists", p->name);
	if (p->width == 0 || p->height == 0 || p->width > b->config.max_dimension || p->height > b->config.max_dimension)
		return error_setf(error, DMABROKER_E_INVALID_DIMENSIONS,
					 "%ux%u: width and height must be 1 to %u (max-dimension)", p->width, p->height,
					 b->config.max_dimension);
	for (unsigned i = 0; i < p->n_formats && !f; i++)
		f = format_lookup(p->formats[i]);
	if (!f) {
		char list[256];
		format_list(p->formats, p->n_formats, list, sizeof(list));
		return error_setf(error, DMABROKER_E_UNSUPPORTED_FORMAT, "none of the formats %s is supported", list);
	}
	r = check_limit(c, error);
	if (r >= 0)
		r = fd_budget_charge(b, STREAM_PRODUCER_FDS + STREAM_SLOT_FDS, error);
	if (r < 0)
		return r;
	s = calloc(1, sizeof(*s));
	if (!s) {
		fd_budget_uncharge(b, STREAM_PRODUCER_FDS + STREAM_SLOT_FDS);
		return -ENOMEM;
	}
	s->broker = b;
	s->id = ++b->next_stream_id;
	s->p = *p;
	if (s->p.buffers == 0)
		s->p.buffers = 4;
	default_label(c, &s->p);
	s->has_producer = true;
	s->owner_uid = c->uid;
	s->producer.client = c;
	s->producer.p = s->p;
	s->producer.counters = -1;
	stream_books_init(&s->books);
	for (unsigned i = 0; i < DMABROKER_STREAM_MAX_CONSUMERS; i++) {
		s->consumers[i].party.counters = -1;
		s->consumers[i].chan[0] = s->consumers[i].chan[1] = -1;
	}
	s->next_consumer_id = 1;
	s->next = b->streams;
	b->streams = s;
	c->n_streams++;
	log_debug("client %llu created stream %llu '%s'", (unsigned long long)c->id, (unsigned long long)s->id,
		  s->p.name);
	maybe_negotiate(s);
	*ret = s;
	return 0;
}

/* The producer's own uid, admins, and whom the producer allows. */
static bool may_join(const struct stream *s, const struct client *c)
{
	if (c->uid == s->owner_uid || client_is_admin(c))
		return true;
	for (unsigned i = 0; i < s->p.n_allow_uids; i++)
		if (c->uid == s->p.allow_uids[i])
			return true;
	for (unsigned i = 0; i < s->p.n_allow_gids; i++)
		if (client_in_group(c, s->p.allow_gids[i]))
			return true;
	return false;
}

/*
 * Whether c may join s as asked in p: s has a producer, c may join it (the
 * producer's uid, admins, allow-uids/gids) and, when c asked for one, the
 * producer runs as producer-uid. Whatever the reason, a refusal is answered
 * exactly like a name no stream has: the reply depends on nothing but c's
 * own request, so it tells nothing of other users' streams (the log does).
 */
static bool joinable(const struct stream *s, const struct client *c, const struct stream_params *p)
{
	if (!s || !s->has_producer)
		return false;
	if (!may_join(s, c)) {
		log_notice("refused client %llu (%s, uid %u, pid %d): may not join stream '%s' of uid %u",
			   (unsigned long long)c->id, c->comm, (unsigned)c->uid, (int)c->pid, s->p.name,
			   (unsigned)s->owner_uid);
		return false;
	}
	if (p->has_producer_uid && s->owner_uid != p->producer_uid) {
		log_notice("refused client %llu (%s, uid %u, pid %d): stream '%s' is produced by uid %u, "
			   "it asked for uid %u", (unsigned long long)c->id, c->comm, (unsigned)c->uid, (int)c->pid,
			   s->p.name, (unsigned)s->owner_uid, (unsigned)p->producer_uid);
		return false;
	}
	return true;
}

int stream_join(struct client *c, const struct stream_params *p, struct stream **ret, uint32_t *ret_consumer,
		struct error *error)
{
	struct stream *s = find_by_name(c->broker, p->name);
	struct stream_consumer *con = NULL;
	int r;

	if (!joinable(s, c, p))
		return p->has_producer_uid
			? error_setf(error, DMABROKER_E_UNKNOWN_STREAM, "no stream named '%s' produced by uid %u",
					    PRINTABLE(p->name), (unsigned)p->producer_uid)
			: error_setf(error, DMABROKER_E_UNKNOWN_STREAM, "no stream named '%s'", PRINTABLE(p->name));
	if (s->state == STREAM_FAILED)
		return error_set(error, s->error_code, s->error_msg);
	if (s->producer.client == c || consumer_of(s, c))
		return error_setf(error, DMABROKER_E_INVALID_ARGUMENT, "this client is in stream '%s' already", p->name);
	for (unsigned i = 0; i < DMABROKER_STREAM_MAX_CONSUMERS && !con; i++)
		if (!s->consumers[i].active)
			con = &s->consumers[i];
	if (!con)
		return error_setf(error, DMABROKER_E_LIMIT_REACHED, "stream '%s' has %d consumers, the most it takes",
					 p->name, DMABROKER_STREAM_MAX_CONSUMERS);
	r = check_limit(c, error);
	if (r < 0)
		return r;
	if (p->max_acquired > s->p.buffers)
		return error_setf(error, DMABROKER_E_INVALID_ARGUMENT, "max-acquired %u: the stream has %u buffers",
					 p->max_acquired, s->p.buffers);
	r = fd_budget_charge(c->broker, STREAM_CONSUMER_FDS, error); /* given back in leave() */
	if (r < 0)
		return r;
	*con = (struct stream_consumer){ .party = { .client = c, .p = *p, .counters = -1 }, .chan = { -1, -1 } };
	default_label(c, &con->party.p);
	if (!con->party.p.max_acquired)
		con->party.p.max_acquired = s->p.mode == STREAM_MAILBOX ? 1 : s->p.buffers;
	stream_account_init(&con->account, con->party.p.max_acquired);
	if (s->allocating) {
		/* the format is chosen; the placement is checked when the buffers are there */
		r = check_party(s, &con->party, s->fourcc, NULL, error);
		if (r < 0) {
			fd_budget_uncharge(c->broker, STREAM_CONSUMER_FDS);
			return r;
		}
	} else if (s->state == STREAM_RUNNING) {
		r = check_party(s, &con->party, s->fourcc, s->backend, error);
		if (r >= 0 && s->peer && (r = channel_open(con)) < 0)
			error_set_errnof(error, r, "cannot open a peer channel: %s", strerror(-r));
		if (r < 0) {
			fd_budget_uncharge(c->broker, STREAM_CONSUMER_FDS);
			return r;
		}
	}
	con->active = true;
	con->id = s->next_consumer_id++;
	if (con->chan[0] >= 0)
		peer_announce(s, con); /* a running FIFO stream: the producer gets its end now */
	s->n_consumers++;
	c->n_streams++;
	log_debug("client %llu joined stream %llu '%s' as consumer %u", (unsigned long long)c->id,
		  (unsigned long long)s->id, s->p.name, con->id);
	*ret = s;
	*ret_consumer = con->id;
	maybe_negotiate(s);
	return 0;
}

static void stream_free(struct stream *s)
{
	struct broker *b = s->broker;

	for (struct stream **p = &b->streams; *p; p = &(*p)->next)
		if (*p == s) {
			*p = s->next;
			break;
		}
	stream_books_reset(&s->books);
	for (unsigned i = 0; i < s->n_slots; i++)
		buffer_unset_stream(s->slots[i].buf);
	for (unsigned i = 0; i < DMABROKER_STREAM_MAX_CONSUMERS; i++)
		channel_close(s, &s->consumers[i]);
	safe_close(s->producer.counters);
	fd_budget_uncharge(b, STREAM_SLOT_FDS); /* charged in stream_create() */
	log_debug("stream %llu '%s' freed", (unsigned long long)s->id, s->p.name);
	free(s);
}

static void release_holds(struct stream *s, struct client *c)
{
	for (unsigned i = 0; i < s->n_slots; i++) {
		struct hold *h = buffer_held_by(s->slots[i].buf, c);
		if (h)
			buffer_release(h);
	}
}

static void drop_waiting(struct stream_party *p, bool reply, const char *why)
{
	if (!p->waiting.ops)
		return;
	if (reply) {
		struct error e = ERROR_NULL;

		completion_fail(&p->waiting, error_set(&e, DMABROKER_E_STREAM_ENDED, why), &e);
	}
	completion_drop(&p->waiting);
}

/* Removes c from s; frees s when nobody is left. going: c is going away. */
static void leave(struct stream *s, struct client *c, bool going)
{
	struct stream_consumer *con = consumer_of(s, c);

	if (con) {
		con->active = false;
		s->n_consumers--;
		for (int i; (i = stream_account_drop(&con->account)) >= 0;)
			slot_unref(s, con, (unsigned)i, -1);
		channel_close(s, con);
		fd_budget_uncharge(s->broker, STREAM_CONSUMER_FDS); /* charged in stream_join() */
		drop_waiting(&con->party, !going, "left the stream");
		log_debug("client %llu left stream %llu as consumer %u (%llu frames consumed, %llu dropped)",
			  (unsigned long long)c->id, (unsigned long long)s->id, con->id,
			  (unsigned long long)con->consumed, (unsigned long long)con->dropped);
	} else if (s->has_producer && s->producer.client == c) {
		struct stream_wire_counters k = counters_read(s->producer.counters);
		s->has_producer = false;
		s->produced += k.frames;
		s->dropped += k.dropped;
		s->producer.counters = safe_close(s->producer.counters);
		fd_budget_uncharge(s->broker, STREAM_PRODUCER_FDS); /* charged in stream_create() */
		for (unsigned i = 0; i < DMABROKER_STREAM_MAX_CONSUMERS; i++)
			channel_shut(&s->consumers[i]);
		drop_waiting(&s->producer, !going, "left the stream");
		if (s->state == STREAM_NEGOTIATING || s->state == STREAM_RUNNING) {
			s->state = STREAM_ENDED;
			for (unsigned i = 0; i < DMABROKER_STREAM_MAX_CONSUMERS; i++)
				if (s->consumers[i].active) {
					answer_waiting(s, &s->consumers[i].party);
					send_end(s, &s->consumers[i]);
				}
		}
		log_debug("stream %llu '%s': producer left after %llu frames", (unsigned long long)s->id, s->p.name,
			  (unsigned long long)s->produced);
	} else {
		return;
	}
	c->n_streams--;
	release_holds(s, c);
	if (!s->has_producer && s->n_consumers == 0)
		stream_free(s);
}

int stream_leave(struct stream *s, struct client *c, struct error *error)
{
	if (!in_stream(s, c))
		return stream_unknown(s->id, error);
	leave(s, c, false);
	return 0;
}

void stream_drop_client(struct broker *b, struct client *c)
{
	for (struct stream *s = b->streams, *next; s; s = next) {
		next = s->next;
		if (c->n_streams)
			leave(s, c, true);
	}
}

void streams_free(struct broker *b)
{
	while (b->streams) {
		struct stream *s = b->streams;
		drop_waiting(&s->producer, false, NULL);
		for (unsigned i = 0; i < DMABROKER_STREAM_MAX_CONSUMERS; i++)
			drop_waiting(&s->consumers[i].party, false, NULL);
		stream_free(s);
	}
}

/* ---- per frame ---- */

int stream_buffers(struct stream *s, struct client *c, const struct completion *to, struct error *error)
{
	struct stream_consumer *con = consumer_of(s, c);
	struct stream_party *p = con ? &con->party : (s->has_producer && s->producer.client == c) ? &s->producer : NULL;

	if (!p)
		return stream_unknown(s->id, error);
	if (p->waiting.ops)
		return error_set(error, DMABROKER_E_INVALID_ARGUMENT, "a StreamBuffers call is waiting already");
	switch (s->state) {
	case STREAM_RUNNING:
		return reply_buffers(s, p, to, error);
	case STREAM_FAILED:
		return error_set(error, s->error_code, s->error_msg);
	case STREAM_ENDED:
		return error_setf(error, DMABROKER_E_STREAM_ENDED, "stream '%s' ended: its producer left", s->p.name);
	case STREAM_NEGOTIATING:
		p->waiting = *to;
		completion_keep(&p->waiting);
		return 1;
	}
	return -EINVAL;
}

static int check_peer(struct stream *s, struct error *error)
{
	if (!s->peer)
		return 0;
	return error_setf(error, DMABROKER_E_INVALID_ARGUMENT,
				 "stream '%s' is a FIFO stream: its frames travel on the peer channels StreamBuffers "
				 "gave, not through the daemon", s->p.name);
}

static int check_index(struct stream *s, uint32_t index, struct error *error)
{
	if (s->state != STREAM_RUNNING)
		return error_setf(error, s->state == STREAM_ENDED ? DMABROKER_E_STREAM_ENDED : DMABROKER_E_INVALID_ARGUMENT,
				  "stream '%s' is %s", s->p.name, state_names[s->state]);
	if (index >= s->n_slots)
		return error_setf(error, DMABROKER_E_INVALID_ARGUMENT, "buffer index %u: stream '%s' has %u buffers",
					 index, s->p.name, s->n_slots);
	return 0;
}

int stream_queue(struct stream *s, struct client *c, uint32_t index, const struct frame_meta *meta, int ready_fence,
		 struct error *error)
{
	struct slot *sl;
	int r;

	if (!in_stream(s, c))
		return stream_unknown(s->id, error);
	if (!s->has_producer || s->producer.client != c)
		return error_setf(error, DMABROKER_E_NOT_PERMITTED, "only the producer of stream '%s' queues frames",
					 s->p.name);
	r = check_peer(s, error);
	if (r >= 0)
		r = check_index(s, index, error);
	if (r < 0)
		return r;
	sl = &s->slots[index];
	if (stream_books_out(&s->books, index))
		return error_setf(error, DMABROKER_E_BUSY, "buffer %u of stream '%s' is queued already; wait for its "
					 "BufferReleased", index, s->p.name);
	if (ready_fence >= 0) {
		int own;
		if (!fence_is_sync_file(ready_fence))
			return error_set(error, DMABROKER_E_INVALID_ARGUMENT, "the ready fence is not a sync_file");
		own = fcntl(ready_fence, F_DUPFD_CLOEXEC, 3);
		if (own < 0)
			return -errno;
		if (sl->buf->dmabuf)
			dmabuf_import_fence(sl->buf->fd, own, true);
		stream_books_send(&s->books, index, own);
	}
	sl->meta = *meta;
	s->produced++;
	for (unsigned i = 0; i < DMABROKER_STREAM_MAX_CONSUMERS; i++)
		if (s->consumers[i].active)
			deliver(s, &s->consumers[i], index);
	if (!stream_books_out(&s->books, index)) {
		s->dropped++; /* nobody to show it to */
		return_to_producer(s, index);
	}
	return 0;
}

int stream_release(struct stream *s, struct client *c, uint32_t index, int release_fence, struct error *error)
{
	struct stream_consumer *con = consumer_of(s, c);
	struct slot *sl;
	int own = -1, r;

	if (!con && !in_stream(s, c))
		return stream_unknown(s->id, error);
	if (!con)
		return error_setf(error, DMABROKER_E_NOT_PERMITTED, "the producer of stream '%s' releases no frames",
					 s->p.name);
	r = check_peer(s, error);
	if (r < 0)
		return r;
	if (index >= s->n_slots || !stream_account_holds(&con->account, index))
		return error_setf(error, DMABROKER_E_INVALID_ARGUMENT,
					 "consumer %u of stream '%s' does not hold buffer %u", con->id, s->p.name, index);
	sl = &s->slots[index];
	if (release_fence >= 0) {
		if (!fence_is_sync_file(release_fence))
			return error_set(error, DMABROKER_E_INVALID_ARGUMENT, "the release fence is not a sync_file");
		own = fcntl(release_fence, F_DUPFD_CLOEXEC, 3);
		if (own < 0)
			return -errno;
		if (sl->buf->dmabuf)
			dmabuf_import_fence(sl->buf->fd, own, false);
	}
	stream_account_release(&con->account, index);
	con->consumed++;
	s->consumed++;
	slot_unref(s, con, index, own);
	pump(s, con);
	return 0;
}

/* ---- introspection ---- */

int stream_list(struct broker *b, struct client *c, int (*fn)(const struct stream_info *info, void *userdata),
		void *userdata)
{
	int r = 0;

	for (struct stream *s = b->streams; r >= 0 && s; s = s->next) {
		/* a FIFO stream's live parties count in their memfds; those gone, here */
		struct stream_wire_counters k = counters_read(s->producer.counters);
		uint64_t consumed = s->consumed;
		if (!client_is_admin(c) && !consumer_of(s, c) && !(s->has_producer && s->producer.client == c))
			continue;
		for (unsigned i = 0; i < DMABROKER_STREAM_MAX_CONSUMERS; i++)
			if (s->consumers[i].active)
				consumed += counters_read(s->consumers[i].party.counters).frames;
		r = fn(&(struct stream_info){
			       .id = s->id, .name = s->p.name, .mode = mode_names[s->p.mode],
			       .state = state_names[s->state], .backend = s->backend ? s->backend->name : "",
			       .fourcc = s->fourcc, .width = s->p.width, .height = s->p.height, .n_buffers = s->n_slots,
			       .producer = s->has_producer ? s->producer.client->id : 0, .n_consumers = s->n_consumers,
			       .produced = s->produced + k.frames, .consumed = consumed,
			       .dropped = s->dropped + k.dropped,
		       },
		       userdata);
	}
	return r;
}

int stream_check_direct_use(const struct buffer *buf, struct error *error)
{
	if (!buf->stream)
		return 0;
	return error_setf(error, DMABROKER_E_NOT_PERMITTED,
				 "buffer %llu cycles in stream '%s': use its frames (QueueFrame, ReleaseFrame), "
				 "and LeaveStream to let go", (unsigned long long)buf->id, buf->stream->p.name);
}

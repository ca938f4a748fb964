/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the D-Bus argument decoding of every method. Each input
 * is a short sequence of calls, built from the fuzz data against the
 * methods and in-signatures of the daemon's own vtable (so it cannot drift
 * from it): strings from a dictionary of option keys and names or from the
 * data, ids small enough to name live objects, fds of several kinds
 * (memfd, pipe, socket, /dev/null), arrays, structs, dicts and variants of
 * any type. Two clients of one uid make the calls, each over its own
 * real direct connection (a socketpair with sd-bus at both ends), into a
 * broker with the shm backend (workers inline: an allocation ends within
 * its call); what one creates the other can name (ids, the last token), so
 * tokens are redeemed, streams joined and grants waited for across them.
 *
 * After every call the books must balance (check_books): every buffer,
 * hold, attachment, token, grant, waiting request and kept fence is on the
 * lists that name it and belongs to what is alive; each client's counters
 * (holds and bytes, tokens, grants, requests and the grants they ask for,
 * kept fences, direct connections, streams) are what is registered to it;
 * and the fd budget (quota.c) is exactly the fds the books show: one per
 * buffer, direct connection, access channel, kept fence and merged fence,
 * and what each stream is charged. A client leaves by closing its end and
 * doing nothing else, during the input or at its end: the daemon must
 * notice and free it itself, and with it everything it had (the books
 * balance with nothing of it left). When both have left, no buffer, token,
 * grant, request or stream is left, the fd budget is back where it was and
 * the process has the fds it had before the input.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "broker.h"
#include "bus.h"
#include "errors-sdbus.h"
#include "fd-util.h"
#include "log.h"
#include "stream.h"

#define FUZZ_NAME "fuzz-bus"
#include "fuzz-util.h"
#include "fuzz-books.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const words[] = {
	"backend", "device", "shm", "heap", "drm", "label", "mode", "fifo", "mailbox", "buffers", "width", "height",
	"consumers", "max-acquired", "usage", "formats", "modifiers", "devices", "allow-uids", "allow-gids", "s1",
	"s2", "", "/dev/dri/card0", "virtio_gpu", "heap:system",
};

static int append_value(sd_bus_message *m, const char **sig, struct input *in, int depth);

/* What the broker hands out, so that calls can name live objects. */
static struct broker broker;
static char last_token[64];

static const uint32_t fourccs[] = {
	0x34325258 /* XR24 */, 0x34325241 /* AR24 */, 0x3231564e /* NV12 */, 0x56595559 /* YUYV */,
	0x36314752 /* RG16 */, 0x30313050 /* P010 */, 0x32315559 /* YU12 */, 0x12345678,
};

/* The end of the single complete type at t. */
static const char *type_end(const char *t)
{
	int level = 0;
	do {
		if (*t == '(' || *t == '{')
			level++;
		else if (*t == ')' || *t == '}')
			level--;
		else if (*t == 'a') {
			t++;
			continue;
		}
		t++;
	} while (level > 0 && *t);
	return t;
}

static int append_fd(sd_bus_message *m, struct input *in)
{
	static const enum fuzz_fd_kind kinds[] = { FUZZ_FD_MEMFD, FUZZ_FD_PIPE, FUZZ_FD_SOCKET, FUZZ_FD_NULL };
	int fd = fuzz_new_fd(in, kinds[byte(in) % 4], 2), r;

	if (fd < 0)
		return -1;
	r = sd_bus_message_append_basic(m, 'h', &fd); /* duplicates it */
	close(fd);
	return r;
}

static int append_basic(sd_bus_message *m, char t, struct input *in)
{
	uint8_t sel;

	switch (t) {
	case 'y': { uint8_t v = byte(in); return sd_bus_message_append_basic(m, t, &v); }
	case 'b': { int v = byte(in) & 1; return sd_bus_message_append_basic(m, t, &v); }
	case 'u':
	case 'i': {
		uint32_t v;
		sel = byte(in);
		if (sel < 96)
			v = sel % 8; /* indices, modes, flags, usage bits */
		else if (sel < 160)
			v = fourccs[sel % 8];
		else if (sel < 224)
			v = 1u + (uint32_t)bytes(in, 2) % 2048; /* sizes */
		else
			v = (uint32_t)bytes(in, 4);
		return sd_bus_message_append_basic(m, t, &v);
	}
	case 't': {
		uint64_t v;
		sel = byte(in);
		if (sel < 64)
			v = broker.next_buffer_id - sel % 4; /* recent buffers */
		else if (sel < 96)
			v = broker.next_grant_id - sel % 4;
		else if (sel < 128)
			v = broker.next_stream_id - sel % 4;
		else if (sel < 192)
			v = sel % 8;
		else
			v = bytes(in, 8);
		return sd_bus_message_append_basic(m, t, &v);
	}
	case 's': {
		char buf[48];
		unsigned n;
		sel = byte(in);
		if (sel < 160)
			return sd_bus_message_append_basic(m, t, words[sel % (sizeof(words) / sizeof(words[0]))]);
		if (sel < 176)
			return sd_bus_message_append_basic(m, t, last_token);
		n = byte(in) % (sizeof(buf) - 1);
		for (unsigned i = 0; i < n; i++)
			buf[i] = (char)(32 + byte(in) % 95); /* printable ASCII: sd-bus wants valid UTF-8 */
		buf[n] = 0;
		return sd_bus_message_append_basic(m, t, buf);
	}
	case 'h':
		return append_fd(m, in);
	default:
		return -1;
	}
}

static int append_variant(sd_bus_message *m, struct input *in, int depth)
{
	static const char *const types[] = { "s", "u", "t", "b", "au", "as", "at", "a(iiii)", "i", "au", "u" };
	const char *t = types[byte(in) % (sizeof(types) / sizeof(types[0]))];
	const char *cursor = t;
	int r = sd_bus_message_open_container(m, 'v', t);
	if (r >= 0)
		r = append_value(m, &cursor, in, depth + 1);
	if (r >= 0)
		r = sd_bus_message_close_container(m);
	return r;
}

/* Appends one complete type at *sig and moves *sig past it. */
static int append_value(sd_bus_message *m, const char **sig, struct input *in, int depth)
{
	const char *t = *sig;
	int r;

	if (depth > 6)
		return -1;
	if (*t == 'a') {
		const char *elem = t + 1, *end = type_end(elem);
		char contents[64];
		uint8_t sel = byte(in);
		unsigned n = sel < 112 ? 0 : sel % 6; /* empty often: most arrays are optional */
		snprintf(contents, sizeof(contents), "%.*s", (int)(end - elem), elem);
		if (*elem == '{') {
			r = sd_bus_message_open_container(m, 'a', contents);
			for (unsigned i = 0; r >= 0 && i < n; i++) {
				const char *inner = elem + 1;
				char entry[64];
				snprintf(entry, sizeof(entry), "%.*s", (int)(end - elem - 2), elem + 1);
				r = sd_bus_message_open_container(m, 'e', entry);
				while (r >= 0 && *inner != '}')
					r = append_value(m, &inner, in, depth + 1);
				if (r >= 0)
					r = sd_bus_message_close_container(m);
			}
		} else {
			r = sd_bus_message_open_container(m, 'a', contents);
			for (unsigned i = 0; r >= 0 && i < n; i++) {
				const char *inner = elem;
				r = append_value(m, &inner, in, depth + 1);
			}
		}
		if (r >= 0)
			r = sd_bus_message_close_container(m);
		*sig = end;
		return r;
	}
	if (*t == '(') {
		const char *end = type_end(t), *inner = t + 1;
		char contents[64];
		snprintf(contents, sizeof(contents), "%.*s", (int)(end - t - 2), t + 1);
		r = sd_bus_message_open_container(m, 'r', contents);
		while (r >= 0 && *inner != ')')
			r = append_value(m, &inner, in, depth + 1);
		if (r >= 0)
			r = sd_bus_message_close_container(m);
		*sig = end;
		return r;
	}
	*sig = t + 1;
	if (*t == 'v')
		return append_variant(m, in, depth);
	return append_basic(m, *t, in);
}

/* ---- the broker ---- */

static sd_event *event;
/* Messages to read stream_append_list() back from: a bus that never runs. */
static sd_bus *scratch_bus;
static const sd_bus_vtable *methods[64];
static unsigned n_methods;

/* With FUZZ_BUS_STATS set: how many calls of each method succeeded, at exit
 * (shows the fuzzer gets past the argument checks, not only into them). */
static unsigned long replied_ok[64], replied_error[64];

static int on_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
	unsigned i = (unsigned)(uintptr_t)userdata;
	const char *token;
	if (sd_bus_message_is_method_error(m, NULL)) {
		replied_error[i]++;
		if (getenv("FUZZ_BUS_ERRORS") && strcmp(getenv("FUZZ_BUS_ERRORS"), methods[i]->x.method.member) == 0 &&
		    replied_error[i] < 20)
			fprintf(stderr, "fuzz-bus: %s: %s\n", methods[i]->x.method.member,
				sd_bus_message_get_error(m)->message);
		return 0;
	}
	replied_ok[i]++;
	if (strcmp(methods[i]->x.method.member, "CreateToken") == 0 && sd_bus_message_read(m, "s", &token) > 0)
		snprintf(last_token, sizeof(last_token), "%s", token);
	return 0;
}

static void print_stats(void)
{
	for (unsigned i = 0; i < n_methods; i++)
		fprintf(stderr, "fuzz-bus: %-18s %8lu ok %8lu errors\n", methods[i]->x.method.member, replied_ok[i],
			replied_error[i]);
}

static void setup(void)
{
	struct config cfg;

	config_init(&cfg);
	cfg.max_buffer_size = 1 << 20;
	cfg.max_buffers_per_client = 8;
	cfg.max_streams_per_client = 3;
	cfg.max_direct_per_client = 2;
	cfg.pool_max_bytes = 0; /* freed buffers go: the fd count must come back */
	if (!getenv("FUZZ_BUS_LOG"))
		log_set_level(LOG_CRIT);
	check(sd_event_new(&event) >= 0 && broker_init(&broker, event, &cfg) >= 0);
	broker.events = &bus_events; /* signals go out on the clients' direct connections */
	{
		int pair[2];
		check(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, pair) == 0);
		check(sd_bus_new(&scratch_bus) >= 0 && sd_bus_set_fd(scratch_bus, pair[0], pair[0]) >= 0 &&
		      sd_bus_start(scratch_bus) >= 0);
		/* pair[1] stays open: the scratch bus's peer, which never answers */
	}
	sd_bus_error_add_map(dmabroker_error_map);
	for (const sd_bus_vtable *v = broker_vtable(); v->type != _SD_BUS_VTABLE_END; v++)
		if (v->type == _SD_BUS_VTABLE_METHOD && n_methods < 64)
			methods[n_methods++] = v;
	if (getenv("FUZZ_BUS_STATS"))
		atexit(print_stats);
}

/* The two clients' ends of their direct connections (NULL: gone). */
static sd_bus *client_bus[2];

/* Runs the daemon and the clients until none has anything to do. */
static void pump(void)
{
	for (int i = 0; i < 2000; i++) {
		int n = sd_event_run(event, 0);
		for (unsigned k = 0; k < 2; k++)
			if (client_bus[k] && sd_bus_process(client_bus[k], NULL) > 0)
				n = 1;
		if (n <= 0)
			break;
	}
}

/* ---- the books ---- */

/* What stream.c charges the fd budget (its STREAM_*_FDS): a change there shows here as a budget mismatch. */
enum { SLOT_FDS = 2 * DMABROKER_STREAM_MAX_BUFFERS, PRODUCER_FDS = 1, CONSUMER_FDS = 3 };

/*
 * The streams viewer sees (ListStreams, as the daemon answers it): how
 * many, and the fds they are charged: SLOT_FDS for the stream, PRODUCER_FDS
 * while it has its producer, CONSUMER_FDS per consumer.
 */
struct stream_count {
	unsigned n;
	uint64_t fds;
};

static int count_stream(const struct stream_info *i, void *userdata)
{
	struct stream_count *k = userdata;

	check(i->n_consumers <= DMABROKER_STREAM_MAX_CONSUMERS);
	k->fds += SLOT_FDS + (i->producer != 0 ? PRODUCER_FDS : 0) + CONSUMER_FDS * i->n_consumers;
	k->n++;
	return 0;
}

/* The streams ListStreams shows viewer, and the fds they hold. */
static unsigned list_streams(struct client *viewer, uint64_t *ret_fds)
{
	struct stream_count k = { 0 };

	check(stream_list(&broker, viewer, count_stream, &k) >= 0);
	if (ret_fds)
		*ret_fds = k.fds;
	return k.n;
}

/* c's counters are what is registered to it; returns the fds charged for it. */
static uint64_t check_client(struct client *c, bool is_client)
{
	unsigned tokens = 0, fences = 0, directs = 0;
	uint64_t key;
	void *v;

	books_check_client(&broker, c, is_client);
	for (size_t i = 0; hashmap_next(&broker.tokens, &i, &key, &v);)
		tokens += ((struct token *)v)->creator == c;
	check(tokens == c->n_tokens);
	for (struct kept_fence *k = c->fences; k; k = k->next_in_client) {
		check(k->client == c && hashmap_get(&broker.buffers, k->buf->id) == k->buf);
		fences++;
	}
	check(fences == c->n_fences);
	for (struct endpoint *e = c->bus ? c->bus->directs : NULL; e; e = e->next) {
		check(e->client == c && e->broker == &broker);
		directs++;
	}
	check(directs == c->n_directs);
	/* with the workers inline (broker.workers NULL), nothing is in flight once the loop is idle */
	check(c->n_reserved == 0 && c->bytes_reserved == 0);
	if (is_client)
		check(list_streams(c, NULL) == c->n_streams);
	return directs + (c->access_channel != NULL);
}

/*
 * Every object is where its counters say, on every list that names it,
 * and belongs to what is alive; every fd the daemon keeps for its clients
 * is charged to the fd budget once, and nothing else is.
 */
static void check_books(void)
{
	struct client admin = { .broker = &broker, .uid = 0 };
	uint64_t bytes = 0, fds, stream_fds, key;
	unsigned n_grants = 0, n_tokens = 0;
	void *v;

	fds = broker.buffers.len;
	for (size_t i = 0; hashmap_next(&broker.buffers, &i, &key, &v);) {
		struct buffer *buf = v;
		unsigned attachments = 0, fences = 0;
		check(buf->id == key && buf->fd >= 0);
		bytes += buf->size;
		n_grants += books_check_buffer(&broker, buf);
		for (struct attachment *a = buf->attachments; a; a = a->next) {
			check(books_client_alive(&broker, a->client) && buffer_held_by(buf, a->client));
			attachments++;
		}
		check(attachments == buf->n_attachments);
		for (struct token *t = buf->tokens; t; t = t->next_in_buffer) {
			check(t->buffer == buf && books_client_alive(&broker, t->creator));
			check(hashmap_get(&broker.tokens, t->key) == t);
			n_tokens++;
		}
		for (struct kept_fence *k = buf->resv.fences; k; k = k->next_in_buffer) {
			check(k->buf == buf && (!k->client || books_client_alive(&broker, k->client)));
			fences++;
		}
		check(fences == buf->resv.n_fences);
		fds += fences + (buf->resv.acc_write >= 0) + (buf->resv.acc_all >= 0);
	}
	check(bytes == broker.bytes);
	/* every token and grant is on its buffer's list (counted above) and nowhere else */
	check(n_tokens == broker.tokens.len);
	books_check_grants(&broker, n_grants);
	for (size_t i = 0; hashmap_next(&broker.tokens, &i, &key, &v);) {
		struct token *t = v;
		check(t->key == key && hashmap_get(&broker.buffers, t->buffer->id) == t->buffer);
	}
	for (struct client *c = broker.clients; c; c = c->next)
		fds += check_client(c, true);
	/* the daemon's own two (its moves, buffers restored from the fd store) */
	fds += check_client(&broker.self, false) + check_client(&broker.restored, false);
	list_streams(&admin, &stream_fds);
	fds += stream_fds;
	if (fds != broker.fds) {
		fprintf(stderr, "fuzz-bus: the fd budget has %llu fds charged, the books show %llu\n",
			(unsigned long long)broker.fds, (unsigned long long)fds);
		abort();
	}
}

static uint64_t client_ids[2];

static void arrive(unsigned k)
{
	struct error e = ERROR_NULL;
	struct client *c = books_new_client(&broker, 4242); /* not an admin */
	int fd = -1;

	client_ids[k] = c->id;
	check(bus_open_direct(c, &fd, &e) >= 0);
	check(sd_bus_new(&client_bus[k]) >= 0 && sd_bus_set_fd(client_bus[k], fd, fd) >= 0 &&
	      sd_bus_set_anonymous(client_bus[k], 1) >= 0 && sd_bus_negotiate_fds(client_bus[k], 1) >= 0 &&
	      sd_bus_start(client_bus[k]) >= 0);
	e = ERROR_NULL;
}

/*
 * Client k closes its end and does nothing else: the daemon must notice by
 * itself and free it, and with it everything it had (check_books() then
 * finds nothing that names it: every hold, grant, request, token and kept
 * fence belongs to a live client, and the fd budget is what the books show).
 */
static void depart(unsigned k)
{
	sd_bus_flush_close_unref(client_bus[k]);
	client_bus[k] = NULL;
	pump();
	for (struct client *x = broker.clients; x; x = x->next)
		if (x->id == client_ids[k]) {
			fprintf(stderr, "fuzz-bus: client %llu left, but the daemon keeps it: %u buffers, %u tokens, "
				"%u grants, %u pending, %u streams, %u direct connections, access channel %s\n",
				(unsigned long long)x->id, x->n_holds, x->n_tokens, x->n_grants, x->n_pending,
				x->n_streams, x->n_directs, x->access_channel ? "open" : "closed");
			abort();
		}
	check_books();
}

/*
 * Two clients of one uid come, each on its own direct connection, make up
 * to 12 calls between them (the books balance after each; either may
 * leave in between), and go. Then nothing is left, and the fd budget is
 * where it was.
 */
static void visit(struct input *in)
{
	uint64_t budget = broker.fds;

	arrive(0);
	arrive(1);
	pump();
	check_books();
	for (int calls = 0; calls < 12 && in->left; calls++) {
		uint8_t sel = byte(in);
		unsigned which = sel % n_methods, k = (sel / n_methods) & 1;
		const sd_bus_vtable *v = methods[which];
		const char *sig = v->x.method.signature;
		sd_bus_message *m = NULL;
		int r;

		if (sel >= 250) { /* a client goes */
			if (client_bus[sel & 1])
				depart(sel & 1);
			continue;
		}
		if (!client_bus[k])
			continue;
		r = sd_bus_message_new_method_call(client_bus[k], &m, NULL, DMABROKER_OBJECT_PATH, DMABROKER_INTERFACE,
						   v->x.method.member);
		while (r >= 0 && *sig)
			r = append_value(m, &sig, in, 0);
		if (r >= 0 && (byte(in) & 7) == 0) {
			r = sd_bus_message_set_expect_reply(m, 0);
			if (r >= 0)
				sd_bus_send(client_bus[k], m, NULL);
		} else if (r >= 0) {
			sd_bus_call_async(client_bus[k], NULL, m, on_reply, (void *)(uintptr_t)which, 0);
		}
		sd_bus_message_unref(m);
		pump();
		check_books();
	}
	for (unsigned k = 0; k < 2; k++)
		if (client_bus[k])
			depart(k);
	check(!broker.clients && broker.n_clients == 0);
	check(broker.buffers.len == 0 && broker.bytes == 0 && broker.tokens.len == 0 && broker.grants.len == 0);
	check(!broker.pending && !broker.streams);
	if (broker.fds != budget) {
		fprintf(stderr, "fuzz-bus: the fd budget had %llu fds charged before the clients came, %llu after they left\n",
			(unsigned long long)budget, (unsigned long long)broker.fds);
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* an empty visit first: what sd-event opens once (a clock's timerfd) is not a leak */
	return fuzz_one_input(data, size, setup, visit, &(struct input){ NULL, 0 });
}

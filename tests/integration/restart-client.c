/* SPDX-License-Identifier: MIT */
/*
 * restart-client: the client side of tests/integration/restart-test.py.
 * Allocates three buffers and writes a pattern in each, shares one with a
 * second connection by token, opens a direct connection, and leaves one
 * more buffer with a child process that will be gone by the restart.
 * Prints "ready IDS..." and waits for a line on stdin ("down"): the daemon
 * was killed; two calls then (BeginAccess, CreateToken) must fail at once
 * ("child gone; while down: begin ERRNO, token ERRNO, SECONDS s"). Then a second line
 * ("go"): the daemon was restarted. Then it uses every buffer again without doing
 * anything special (the library must reconnect and reclaim by itself),
 * checks each content, and allocates and shares anew. Exit 0 when all of
 * that worked; a message on stderr otherwise.
 *
 * "restart-client --backend NAME" allocates from that backend (the VM test
 * uses heap:system, so real dma-bufs go through the store).
 *
 * Its listener (dmabroker_set_listener()) must hear each restart: the
 * connection lost once and the daemon restarted once, and stream events.
 *
 * After that first restart it waits for "again" (the harness restarts the
 * daemon once more, with SIGTERM) and uses every buffer again the same way.
 *
 * "restart-client forge ID" instead shows the daemon forged proofs for a
 * restored buffer ID, over a plain sd-bus connection: a memfd of the same
 * size, /dev/null, a pipe, and an id nobody has. It prints the error each
 * got ("memfd NotReclaimable" ...) or how many it reclaimed, and exits 0
 * when every call got a reply.
 *
 * Other modes, each a client of its own the harness drives by lines:
 *   reclaim ID FD   one Reclaim of (ID, FD) on a plain connection: prints
 *                   "reclaimed N" or "error NAME"
 *   share           allocates two 32x32 buffers and shares them by token:
 *                   "shared ID1 ID2 TOKEN1 TOKEN2"; then "release" lets go
 *                   of the second (after the restart: reclaims first),
 *                   "alloc" allocates 32x32 again and says whether it got
 *                   the second's memory back ("pooled same"/"pooled
 *                   different"), "end" ends
 *   open T1 T2      opens both tokens ("opened ID1 ID2"), keeps them until a
 *                   line comes, then leaves without a word
 *   burst N         allocates N 16x16 buffers ("allocated N"), holds them
 *                   until a line comes, then releases them and ends
 *   hold            allocates two buffers, writes a pattern in each and
 *                   shares the second: "holding ID1 ID2 TOKEN"
 *   peer TOKEN      opens the token and checks the pattern: "peer ID"
 *   (hold and peer, driven by the systemd tests across restarts they do
 *   not announce: each line "check" checks every pattern again, which
 *   reconnects and reclaims after a restart, and prints "intact N" with N
 *   the connection's reconnect count; "end" ends)
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <drm_fourcc.h>
#include <fcntl.h>
#include <systemd/sd-bus.h>

#include "dmabroker.h"

#define FAIL(...) do { fprintf(stderr, "restart-client: " __VA_ARGS__); fputc('\n', stderr); exit(1); } while (0)

static const char *backend;

static struct dmabroker_buffer *alloc_size(struct dmabroker *b, uint32_t side)
{
	struct dmabroker_alloc_desc d = {
		.version = DMABROKER_ALLOC_DESC_VERSION, .width = side, .height = side, .fourcc = DRM_FORMAT_XRGB8888,
		.usage = DMABROKER_USAGE_CPU_READ_FLAG | DMABROKER_USAGE_CPU_WRITE_FLAG, .backend = backend,
	};
	struct dmabroker_buffer *buf = NULL;
	if (dmabroker_allocate(b, &d, &buf) < 0)
		FAIL("allocate: %s", dmabroker_error_message(b));
	return buf;
}

static struct dmabroker_buffer *alloc(struct dmabroker *b)
{
	return alloc_size(b, 64);
}

static struct dmabroker *buf_owner;

static void pattern(struct dmabroker_buffer *buf, uint32_t salt, bool write)
{
	size_t words = dmabroker_buffer_get_size(buf) / 4;
	uint64_t grant;
	uint32_t *p;

	if (dmabroker_buffer_cpu_begin(buf, write ? DMABROKER_ACCESS_WRITE : DMABROKER_ACCESS_READ, 5000, &grant) < 0)
		FAIL("cpu_begin on buffer %llu: %s", (unsigned long long)dmabroker_buffer_get_id(buf),
		     dmabroker_error_message(buf_owner));
	p = mmap(NULL, words * 4, PROT_READ | PROT_WRITE, MAP_SHARED, dmabroker_buffer_get_fd(buf), 0);
	if (p == MAP_FAILED)
		FAIL("mmap: %s", strerror(errno));
	for (size_t i = 0; i < words; i++) {
		uint32_t v = salt * 2654435761u ^ (uint32_t)i;
		if (write)
			p[i] = v;
		else if (p[i] != v)
			FAIL("buffer %llu: word %zu changed across the restart",
			     (unsigned long long)dmabroker_buffer_get_id(buf), i);
	}
	munmap(p, words * 4);
	if (dmabroker_buffer_cpu_end(buf, grant) < 0)
		FAIL("cpu_end failed");
}

static const uint32_t xr24[] = { DRM_FORMAT_XRGB8888 };

static struct dmabroker_stream *stream_party(struct dmabroker *b, bool producer)
{
	struct dmabroker_stream_desc d = {
		.version = DMABROKER_STREAM_DESC_VERSION, .name = "restart", .formats = xr24, .n_formats = 1,
		.usage = DMABROKER_USAGE_CPU_READ_FLAG | DMABROKER_USAGE_CPU_WRITE_FLAG, .buffers = 2,
		.width = 64, .height = 64, .consumers = 1,
	};
	struct dmabroker_stream *s = NULL;
	if ((producer ? dmabroker_stream_create(b, &d, &s) : dmabroker_stream_join(b, &d, &s)) < 0)
		FAIL("stream %s: %s", producer ? "create" : "join", dmabroker_error_message(b));
	return s;
}

/* One frame from p to c: sequence seq arrives. */
static void one_frame(struct dmabroker_stream *p, struct dmabroker_stream *c, uint64_t seq)
{
	struct dmabroker_frame f;
	int r;
	if (dmabroker_stream_wait_ready(p, 10000) < 0 || dmabroker_stream_wait_ready(c, 10000) < 0)
		FAIL("stream not ready");
	while ((r = dmabroker_stream_dequeue(p, &f)) == -EAGAIN)
		if (dmabroker_stream_wait(p, 10000) <= 0)
			FAIL("no free buffer");
	if (r < 0 || dmabroker_stream_queue(p, f.index, -1, seq, 0, NULL, 0) < 0)
		FAIL("queue");
	while ((r = dmabroker_stream_acquire(c, &f)) == -EAGAIN)
		if (dmabroker_stream_wait(c, 10000) <= 0)
			FAIL("no frame");
	if (r < 0 || f.sequence != seq || dmabroker_stream_release(c, f.index, -1) < 0)
		FAIL("acquire: %d, sequence %llu", r, (unsigned long long)f.sequence);
}

/* Reclaim (id, fd) over a plain connection: how many the daemon gave back, or -1 with the error's short name. */
static int raw_reclaim(sd_bus *bus, uint64_t id, int fd, char *err, size_t err_len)
{
	sd_bus_message *reply = NULL;
	sd_bus_error e = SD_BUS_ERROR_NULL;
	const uint64_t *ids;
	size_t n = 0;
	int r = sd_bus_call_method(bus, "org.dmabroker.Broker1", "/org/dmabroker/Broker1", "org.dmabroker.Broker1",
				   "Reclaim", &e, &reply, "a(th)", 1, id, fd);
	if (r >= 0)
		r = sd_bus_message_read_array(reply, 't', (const void **)&ids, &n);
	if (r < 0) {
		const char *name = e.name ? e.name : "none";
		snprintf(err, err_len, "%s", strncmp(name, "org.dmabroker.Error.", 20) == 0 ? name + 20 : name);
		fprintf(stderr, "restart-client: Reclaim: %s\n", e.message ? e.message : strerror(-r));
	}
	sd_bus_error_free(&e);
	sd_bus_message_unref(reply);
	return r < 0 ? -1 : (int)(n / sizeof(uint64_t));
}

/* Prints what one Reclaim got: "WHAT N" (reclaimed N) or "WHAT ERROR". */
static void print_reclaim(sd_bus *bus, const char *what, uint64_t id, int fd)
{
	char err[128] = "";
	int n = raw_reclaim(bus, id, fd, err, sizeof(err));
	if (n >= 0)
		printf("%s %d\n", what, n);
	else
		printf("%s %s\n", what, err);
}

static int forge(uint64_t id)
{
	sd_bus *bus = NULL;
	int memfd = memfd_create("forged", MFD_CLOEXEC), null = open("/dev/null", O_RDWR | O_CLOEXEC), p[2];

	if (memfd < 0 || ftruncate(memfd, 16384) < 0 || null < 0 || pipe(p) < 0 || sd_bus_open_user(&bus) < 0)
		FAIL("forge: set-up");
	print_reclaim(bus, "memfd", id, memfd);
	print_reclaim(bus, "null", id, null);
	print_reclaim(bus, "pipe", id, p[0]);
	print_reclaim(bus, "unknown", id + 1000, memfd);
	close(memfd);
	close(null);
	close(p[0]);
	close(p[1]);
	sd_bus_flush_close_unref(bus);
	return 0; /* every call was answered: sd-bus would have failed with a time-out otherwise */
}

static int one_reclaim(uint64_t id, int fd)
{
	sd_bus *bus = NULL;
	char err[128] = "";
	int n;

	if (sd_bus_open_user(&bus) < 0)
		FAIL("reclaim: cannot connect");
	n = raw_reclaim(bus, id, fd, err, sizeof(err));
	if (n >= 0)
		printf("reclaimed %d\n", n);
	else
		printf("error %s\n", err);
	sd_bus_flush_close_unref(bus);
	return 0;
}

static void wait_line(const char *want)
{
	char line[64];
	if (!fgets(line, sizeof(line), stdin) || strncmp(line, want, strlen(want)) != 0)
		FAIL("expected '%s'", want);
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

static int share(void)
{
	struct dmabroker *a = NULL;
	struct dmabroker_buffer *x1, *x2, *again;
	char *t1 = NULL, *t2 = NULL;
	struct stat old, new;
	int kept;

	if (dmabroker_connect(DMABROKER_BUS_SESSION, &a) < 0)
		FAIL("share: connect");
	x1 = alloc_size(a, 32);
	x2 = alloc_size(a, 32);
	if (dmabroker_buffer_create_token(x1, 0, 0, &t1) < 0 || dmabroker_buffer_create_token(x2, 0, 0, &t2) < 0)
		FAIL("share: token: %s", dmabroker_error_message(a));
	kept = dmabroker_buffer_dup_fd(x2);
	if (kept < 0 || fstat(kept, &old) < 0)
		FAIL("share: dup");
	say("shared %llu %llu %s %s", (unsigned long long)dmabroker_buffer_get_id(x1),
	    (unsigned long long)dmabroker_buffer_get_id(x2), t1, t2);
	free(t1);
	free(t2);
	wait_line("release");
	/* a call first: after the restart it reconnects and reclaims both */
	if (dmabroker_buffer_create_token(x2, 0, 0, &t2) < 0)
		FAIL("share: token after the restart: %s", dmabroker_error_message(a));
	free(t2);
	dmabroker_buffer_release(x2);
	/* one more call on the same connection: the daemon handled the release before it answers */
	if (dmabroker_buffer_create_token(x1, 0, 0, &t1) < 0)
		FAIL("share: token after the release: %s", dmabroker_error_message(a));
	free(t1);
	say("released");
	wait_line("alloc");
	again = alloc_size(a, 32);
	if (fstat(dmabroker_buffer_get_fd(again), &new) < 0)
		FAIL("share: fstat");
	say("pooled %s", new.st_ino == old.st_ino && new.st_dev == old.st_dev ? "same" : "different");
	close(kept);
	wait_line("end");
	dmabroker_disconnect(a);
	return 0;
}

static int open_tokens(const char *t1, const char *t2)
{
	struct dmabroker *b = NULL;
	struct dmabroker_buffer *x1, *x2;

	if (dmabroker_connect(DMABROKER_BUS_SESSION, &b) < 0)
		FAIL("open: connect");
	if (dmabroker_open_token(b, t1, &x1) < 0 || dmabroker_open_token(b, t2, &x2) < 0)
		FAIL("open: %s", dmabroker_error_message(b));
	say("opened %llu %llu", (unsigned long long)dmabroker_buffer_get_id(x1),
	    (unsigned long long)dmabroker_buffer_get_id(x2));
	wait_line("");
	_exit(0); /* without a word to the daemon */
}

static int burst(unsigned n)
{
	struct dmabroker *b = NULL;
	struct dmabroker_buffer **bufs = calloc(n, sizeof(*bufs));

	if (!bufs || dmabroker_connect(DMABROKER_BUS_SESSION, &b) < 0)
		FAIL("burst: connect");
	for (unsigned i = 0; i < n; i++)
		bufs[i] = alloc_size(b, 16);
	say("allocated %u", n);
	wait_line("");
	for (unsigned i = 0; i < n; i++)
		dmabroker_buffer_release(bufs[i]);
	free(bufs);
	dmabroker_disconnect(b);
	return 0;
}

/* hold and peer: buffers kept across restarts the client is not told about, checked on "check" */
static int hold(const char *token)
{
	struct dmabroker *a = NULL;
	struct dmabroker_buffer *bufs[2] = { NULL, NULL };
	char line[64] = "", *t = NULL;
	int n = token ? 1 : 2;

	if (dmabroker_connect(DMABROKER_BUS_SESSION, &a) < 0)
		FAIL("hold: connect");
	buf_owner = a;
	if (token) {
		if (dmabroker_open_token(a, token, &bufs[0]) < 0)
			FAIL("peer: open: %s", dmabroker_error_message(a));
		pattern(bufs[0], 2, false);
		say("peer %llu", (unsigned long long)dmabroker_buffer_get_id(bufs[0]));
	} else {
		for (int i = 0; i < 2; i++) {
			bufs[i] = alloc(a);
			pattern(bufs[i], (uint32_t)i + 1, true);
		}
		if (dmabroker_buffer_create_token(bufs[1], 0, 0, &t) < 0)
			FAIL("hold: token: %s", dmabroker_error_message(a));
		say("holding %llu %llu %s", (unsigned long long)dmabroker_buffer_get_id(bufs[0]),
		    (unsigned long long)dmabroker_buffer_get_id(bufs[1]), t);
		free(t);
	}
	while (fgets(line, sizeof(line), stdin) && strncmp(line, "check", 5) == 0) {
		for (int i = 0; i < n; i++)
			pattern(bufs[i], token ? 2 : (uint32_t)i + 1, false);
		say("intact %u", dmabroker_get_reconnect_count(a));
	}
	if (strncmp(line, "end", 3) != 0)
		FAIL("expected 'check' or 'end'");
	dmabroker_disconnect(a);
	return 0;
}

/* What a's listener heard (dmabroker_set_listener()). */
struct heard {
	unsigned lost, restarted, stream;
};

static void on_lost(struct dmabroker *b, void *userdata)
{
	((struct heard *)userdata)->lost++;
}

static void on_restarted(struct dmabroker *b, void *userdata)
{
	((struct heard *)userdata)->restarted++;
}

static void on_stream(struct dmabroker *b, struct dmabroker_stream *s, void *userdata)
{
	((struct heard *)userdata)->stream++;
}

static void check_heard(const struct heard *h, unsigned restarts)
{
	if (h->lost != restarts || h->restarted != restarts || !h->stream)
		FAIL("listener: %u connection losses, %u restarts, %u stream events; want %u, %u, some", h->lost,
		     h->restarted, h->stream, restarts, restarts);
}

int main(int argc, char **argv)
{
	struct dmabroker *a = NULL, *b = NULL;
	struct dmabroker_buffer *bufs[3], *shared = NULL, *fresh;
	struct dmabroker_stream *ps, *cs;
	struct heard heard = { 0 };
	char *token = NULL, line[64];
	int to_child[2], from_child[2];
	unsigned long long orphan = 0;
	pid_t child;

	if (argc >= 3 && strcmp(argv[1], "--backend") == 0) {
		backend = argv[2];
		argv += 2;
		argc -= 2;
	}
	if (argc == 3 && strcmp(argv[1], "forge") == 0)
		return forge(strtoull(argv[2], NULL, 10));
	if (argc == 4 && strcmp(argv[1], "reclaim") == 0)
		return one_reclaim(strtoull(argv[2], NULL, 10), atoi(argv[3]));
	if (argc == 2 && strcmp(argv[1], "share") == 0)
		return share();
	if (argc == 4 && strcmp(argv[1], "open") == 0)
		return open_tokens(argv[2], argv[3]);
	if (argc == 3 && strcmp(argv[1], "burst") == 0)
		return burst((unsigned)atoi(argv[2]));
	if (argc == 2 && strcmp(argv[1], "hold") == 0)
		return hold(NULL);
	if (argc == 3 && strcmp(argv[1], "peer") == 0)
		return hold(argv[2]);
	if (argc != 1)
		FAIL("usage: restart-client [--backend NAME] [forge ID | reclaim ID FD | share | open T1 T2 | burst N | hold | "
		     "peer TOKEN]");
	if (dmabroker_connect(DMABROKER_BUS_SESSION, &a) < 0 || dmabroker_connect(DMABROKER_BUS_SESSION, &b) < 0)
		FAIL("connect");
	if (dmabroker_set_listener(a, &(struct dmabroker_listener){ .version = 99 }, NULL) != -EINVAL ||
	    dmabroker_set_listener(a, &(struct dmabroker_listener){
		    .version = DMABROKER_LISTENER_VERSION, .connection_lost = on_lost,
		    .daemon_restarted = on_restarted, .stream = on_stream }, &heard) < 0)
		FAIL("set_listener");
	if (dmabroker_open_direct(a) < 0)
		FAIL("open_direct: %s", dmabroker_error_message(a));
	buf_owner = a;
	for (int i = 0; i < 3; i++) {
		bufs[i] = alloc(a);
		pattern(bufs[i], (uint32_t)i + 1, true);
	}
	if (dmabroker_buffer_create_token(bufs[2], 0, 0, &token) < 0 || dmabroker_open_token(b, token, &shared) < 0)
		FAIL("share: %s", dmabroker_error_message(a));
	free(token);
	/* a client that will be gone by the restart: its buffer is restored, never reclaimed */
	if (pipe(to_child) < 0 || pipe(from_child) < 0)
		FAIL("pipe");
	child = fork();
	if (child == 0) {
		struct dmabroker *c = NULL;
		char ok;
		if (dmabroker_connect(DMABROKER_BUS_SESSION, &c) < 0)
			_exit(1);
		dprintf(from_child[1], "%llu\n", (unsigned long long)dmabroker_buffer_get_id(alloc(c)));
		if (read(to_child[0], &ok, 1) < 0)
			_exit(1);
		_exit(0); /* without a word to the daemon */
	}
	{
		FILE *f = fdopen(from_child[0], "r");
		if (!f || fscanf(f, "%llu", &orphan) != 1)
			FAIL("the child did not allocate");
	}
	/* a stream from a to b, one frame through it */
	ps = stream_party(a, true);
	cs = stream_party(b, false);
	one_frame(ps, cs, 1);
	printf("ready %llu %llu %llu %llu\n", (unsigned long long)dmabroker_buffer_get_id(bufs[0]),
	       (unsigned long long)dmabroker_buffer_get_id(bufs[1]), (unsigned long long)dmabroker_buffer_get_id(bufs[2]),
	       orphan);
	fflush(stdout);
	/* the harness kills the daemon; the child goes while it is down */
	if (!fgets(line, sizeof(line), stdin) || strncmp(line, "down", 4) != 0)
		FAIL("expected 'down'");
	if (write(to_child[1], "x", 1) != 1 || waitpid(child, NULL, 0) != child)
		FAIL("child");
	/* calls while the daemon is down fail at once (dmabroker.h: daemon restarts) */
	{
		struct timespec t0, t1;
		uint64_t grant;
		int fence = -1, r1, r2;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		r1 = dmabroker_buffer_begin_access(bufs[0], DMABROKER_ACCESS_READ, 0, &grant, &fence);
		r2 = dmabroker_buffer_create_token(bufs[0], 0, 0, &token);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		printf("child gone; while down: begin %d, token %d, %.3f s\n", r1, r2,
		       (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	}
	fflush(stdout);
	if (!fgets(line, sizeof(line), stdin) || strncmp(line, "go", 2) != 0)
		FAIL("expected 'go'");

	/*
	 * The daemon restarted. Streams do not survive it: the consumer sees
	 * the end, the producer's next frame fails with StreamEnded; then the
	 * stream is made again and works.
	 */
	{
		struct dmabroker_frame f;
		int r = dmabroker_stream_wait(cs, 15000);
		if (r != 1 || dmabroker_stream_acquire(cs, &f) != -EPIPE)
			FAIL("consumer after the restart: wait %d, acquire did not say the stream ended", r);
		r = dmabroker_stream_dequeue(ps, &f);
		if (r >= 0)
			r = dmabroker_stream_queue(ps, f.index, -1, 2, 0, NULL, 0);
		if (r != -EPIPE || !dmabroker_error_name(a) ||
		    strcmp(dmabroker_error_name(a), "org.dmabroker.Error.StreamEnded") != 0)
			FAIL("producer after the restart: %d (%s), want StreamEnded", r,
			     dmabroker_error_name(a) ? dmabroker_error_name(a) : "-");
		dmabroker_stream_destroy(ps);
		dmabroker_stream_destroy(cs);
		ps = stream_party(a, true);
		cs = stream_party(b, false);
		one_frame(ps, cs, 3);
		dmabroker_stream_destroy(ps);
		dmabroker_stream_destroy(cs);
	}
	/* buffers: use everything as if nothing happened */
	buf_owner = a;
	for (int i = 0; i < 3; i++)
		pattern(bufs[i], (uint32_t)i + 1, false);
	buf_owner = b;
	pattern(shared, 3, false);
	if (dmabroker_get_reconnect_count(a) != 1 || dmabroker_get_reconnect_count(b) != 1)
		FAIL("reconnects: %u and %u, want 1 each", dmabroker_get_reconnect_count(a),
		     dmabroker_get_reconnect_count(b));
	fresh = alloc(a);
	if (dmabroker_buffer_get_id(fresh) <= dmabroker_buffer_get_id(bufs[2]))
		FAIL("a new buffer reused id %llu", (unsigned long long)dmabroker_buffer_get_id(fresh));
	pattern(fresh, 4, true);
	if (dmabroker_buffer_create_token(bufs[0], 0, 0, &token) < 0)
		FAIL("token after the restart: %s", dmabroker_error_message(a));
	free(token);
	check_heard(&heard, 1);
	printf("stream ended by the restart and made again; reclaimed and used: 3 buffers of one client, 1 of another, new id %llu\n",
	       (unsigned long long)dmabroker_buffer_get_id(fresh));
	fflush(stdout);

	/* a second restart, by SIGTERM this time (systemctl restart): nothing lost either */
	wait_line("again");
	buf_owner = a;
	for (int i = 0; i < 3; i++)
		pattern(bufs[i], (uint32_t)i + 1, false);
	pattern(fresh, 4, false);
	buf_owner = b;
	pattern(shared, 3, false);
	if (dmabroker_get_reconnect_count(a) != 2 || dmabroker_get_reconnect_count(b) != 2)
		FAIL("reconnects: %u and %u, want 2 each", dmabroker_get_reconnect_count(a),
		     dmabroker_get_reconnect_count(b));
	check_heard(&heard, 2);
	say("again: reclaimed and used 4 buffers of one client, 1 of another");
	if (!fgets(line, sizeof(line), stdin))
		FAIL("expected 'end'");
	dmabroker_disconnect(b);
	dmabroker_disconnect(a);
	return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * dmabroker-bench: what dmabroker costs, measured side by side with a
 * hand-written Unix-socket handoff in one run. See --help and
 * docs/BENCHMARKS.md.
 *
 * Every figure is printed with p50 and p99 and its ratio to its baseline.
 * Nothing here asserts a speed: the machines are shared and noisy, so the
 * targets are read off the output (the last table says which are met).
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <drm_fourcc.h>
#include <linux/dma-heap.h>

#include "dmabroker.h"
#include "pipewire-bench.h"
#include "tool-util.h"

static const char usage_text[] =
	"Usage: dmabroker-bench [OPTION]...\n"
	"\n"
	"Measures dmabroker against its baselines in one run, on the daemon of the\n"
	"session bus (DBUS_SESSION_BUS_ADDRESS), and prints p50/p99 and each\n"
	"figure's ratio to its baseline:\n"
	"  raw       a request/reply carrying one fd each way over a Unix socketpair\n"
	"            between two processes (SCM_RIGHTS), and a one-way fd handoff\n"
	"  access    BeginAccess+EndAccess over the bus and over the direct connection,\n"
	"            with EndAccess waited for and one-way\n"
	"  stream    a frame handoff between two processes over direct connections:\n"
	"            producer queues, consumer acquires (one way), consumer releases,\n"
	"            producer dequeues it back (cycle); the same one-way handoff\n"
	"            through PipeWire (a private pipewire daemon started here, two\n"
	"            pw_streams linked by its link-factory); frames/s with 1 and 3\n"
	"            consumers\n"
	"  alloc     Allocate (+Release) through the daemon, fresh and from its pool,\n"
	"            against the same allocation made directly (memfd for shm,\n"
	"            DMA_HEAP_IOCTL_ALLOC for heap), at 4 KiB, 1 MiB, 8 MiB and 32 MiB\n"
	"  memory    the daemon's RSS per buffer (10,000 buffers) and per client (64)\n"
	"  scaling   BeginAccess+EndAccess with 10 and 10,000 buffers held, and\n"
	"            with 1, 8 and 64 client processes at once\n"
	"  cpu       the daemon's CPU time per frame (needs DMABROKER_PID)\n"
	"\n"
	"Options:\n"
	"  --quick             few iterations (a smoke test, figures are rough)\n"
	"  --iterations N      samples per latency figure (default 2000)\n"
	"  --backend NAME      allocate from NAME (default: the daemon's choice);\n"
	"                      heap:NAME is compared with /dev/dma_heap/NAME\n"
	"  --buffers N         buffers held for the memory and scaling figures\n"
	"                      (default 10000, --quick 1000)\n"
	"  --no-pin            leave CPU placement to the scheduler (default: the\n"
	"                      bench and its clients on CPU 0, the raw peer and\n"
	"                      the daemon on CPU 1, so a baseline and its broker\n"
	"                      figure pay the same wakeups)\n"
	"  --only SECTION      run one section (raw, access, stream, alloc, memory,\n"
	"                      scaling); raw always runs, it is the baseline\n"
	"  -h, --help          this text\n"
	"\n"
	"The daemon needs limits above the defaults for the memory and scaling\n"
	"sections (tests/bench/bench.conf): 10,000 buffers in one client.\n"
	"Exit status: 0 when every section ran, 1 when one failed (the reason is\n"
	"printed), 2 for bad usage.\n";

static unsigned iterations = 2000;
static bool quick;
static const char *backend;
static const char *only;
static uint32_t n_buffers = 10000;
static bool no_pin;

/* ---- samples ---- */

struct samples {
	uint64_t *v;
	size_t n, cap;
};

static void add(struct samples *s, uint64_t ns)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 1024;
		s->v = realloc(s->v, s->cap * sizeof(*s->v));
		if (!s->v)
			abort();
	}
	s->v[s->n++] = ns;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static double pct(struct samples *s, double p)
{
	size_t i;
	if (!s->n)
		return 0;
	qsort(s->v, s->n, sizeof(*s->v), cmp_u64);
	i = (size_t)(p * (double)(s->n - 1) + 0.5);
	return (double)s->v[i] / 1000.0;
}

static void reset(struct samples *s)
{
	s->n = 0;
}

/* One table row: name, p50, p99 (µs), n, and the ratio of p50 to base_p50 (0: it is a baseline). */
static void row(const char *name, struct samples *s, double base_p50)
{
	double p50 = pct(s, 0.5), p99 = pct(s, 0.99);
	if (base_p50 > 0)
		printf("  %-52s %10.1f %10.1f %7zu %7.2fx\n", name, p50, p99, s->n, p50 / base_p50);
	else
		printf("  %-52s %10.1f %10.1f %7zu %8s\n", name, p50, p99, s->n, "base");
	fflush(stdout);
}

static void header(const char *title)
{
	printf("\n%s\n  %-52s %10s %10s %7s %8s\n", title, "", "p50 µs", "p99 µs", "n", "ratio");
}

/* ---- targets, collected for the closing table ---- */

struct target {
	char what[96];
	double value, limit;
	const char *unit;
};
static struct target targets[16];
static unsigned n_targets;

static void target(const char *what, double value, double limit, const char *unit)
{
	if (n_targets < sizeof(targets) / sizeof(targets[0]))
		targets[n_targets++] = (struct target){ .value = value, .limit = limit, .unit = unit };
	snprintf(targets[n_targets - 1].what, sizeof(targets[0].what), "%s", what);
}

static int failed;
#define SECTION_FAIL(...) do { fail(__VA_ARGS__); failed = 1; } while (0)

static bool want(const char *section)
{
	return !only || strcmp(only, section) == 0;
}

/* ---- CPU placement ---- */

/*
 * Where the processes run decides what a wakeup costs (same CPU: a switch;
 * another, idle CPU: an interrupt and an idle exit), and left to the
 * scheduler it changes from run to run. So the bench places them the same
 * way for a baseline and its broker figure: the bench and its client
 * processes on CPU 0, the raw peer and the daemon on CPU 1.
 */
static bool pinned;

static bool pin(pid_t pid, int cpu)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(pid, sizeof(set), &set) == 0;
}

/* The peers' CPU: raw peer, stream consumers, PipeWire's consumer and daemon. */
static int pin_peer(void)
{
	return pinned && pin(0, 1) ? 0 : -1;
}

/* ---- fd passing ---- */

static int send_fd(int sock, const void *data, size_t len, int fd)
{
	char control[CMSG_SPACE(sizeof(int))] = { 0 };
	struct iovec iov = { .iov_base = (void *)data, .iov_len = len };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	if (fd >= 0) {
		struct cmsghdr *c;
		msg.msg_control = control;
		msg.msg_controllen = sizeof(control);
		c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	return sendmsg(sock, &msg, MSG_NOSIGNAL) == (ssize_t)len ? 0 : -1;
}

/* Receives len bytes and at most one fd (-1 if none). */
static int recv_fd(int sock, void *data, size_t len, int *ret_fd)
{
	char control[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { .iov_base = data, .iov_len = len };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control,
			      .msg_controllen = sizeof(control) };
	struct cmsghdr *c;
	ssize_t n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC | MSG_WAITALL);
	*ret_fd = -1;
	if (n != (ssize_t)len)
		return -1;
	for (c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
			memcpy(ret_fd, CMSG_DATA(c), sizeof(int));
	return 0;
}

/* ---- raw baselines ---- */

static double raw_rtt_p50, raw_oneway_p50;

static void bench_raw(void)
{
	struct samples rtt = { 0 }, oneway = { 0 };
	int sv[2], memfd = memfd_create("bench", MFD_CLOEXEC);
	uint64_t t;
	pid_t pid;

	if (memfd < 0 || ftruncate(memfd, 4096) < 0 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		SECTION_FAIL("raw: set-up: %s", strerror(errno));
		return;
	}
	pid = fork();
	if (pid == 0) {
		/* the peer: answers each request with an fd; then, one way, notes each arrival */
		int fd;
		close(sv[0]);
		pin_peer();
		for (unsigned i = 0; i < iterations; i++) {
			if (recv_fd(sv[1], &t, sizeof(t), &fd) < 0)
				_exit(1);
			close(fd);
			if (send_fd(sv[1], &t, sizeof(t), memfd) < 0)
				_exit(1);
		}
		for (unsigned i = 0; i < iterations; i++) {
			uint64_t now;
			if (recv_fd(sv[1], &t, sizeof(t), &fd) < 0)
				_exit(1);
			now = monotonic_ns();
			close(fd);
			t = now - t; /* the latency goes back with the pacing byte */
			if (send_fd(sv[1], &t, sizeof(t), -1) < 0)
				_exit(1);
		}
		_exit(0);
	}
	close(sv[1]);
	for (unsigned i = 0; i < iterations; i++) {
		int fd;
		uint64_t t0 = monotonic_ns();
		if (send_fd(sv[0], &t0, sizeof(t0), memfd) < 0 || recv_fd(sv[0], &t, sizeof(t), &fd) < 0)
			break;
		add(&rtt, monotonic_ns() - t0);
		close(fd);
	}
	for (unsigned i = 0; i < iterations; i++) {
		int fd;
		uint64_t t0 = monotonic_ns();
		if (send_fd(sv[0], &t0, sizeof(t0), memfd) < 0 || recv_fd(sv[0], &t, sizeof(t), &fd) < 0)
			break;
		add(&oneway, t);
	}
	close(sv[0]);
	close(memfd);
	waitpid(pid, NULL, 0);
	if (rtt.n != iterations || oneway.n != iterations) {
		SECTION_FAIL("raw: the peer process failed");
		return;
	}
	header("baseline: two processes, a Unix socketpair, SCM_RIGHTS");
	row("request/reply, one fd each way", &rtt, 0);
	row("one-way fd handoff (send to the peer's wakeup)", &oneway, 0);
	raw_rtt_p50 = pct(&rtt, 0.5);
	raw_oneway_p50 = pct(&oneway, 0.5);
	free(rtt.v);
	free(oneway.v);
}

/* ---- helpers on the broker ---- */

static struct dmabroker_buffer *alloc_flags(struct dmabroker *b, uint32_t width, uint32_t height, uint32_t flags)
{
	struct dmabroker_alloc_desc d = {
		.version = DMABROKER_ALLOC_DESC_VERSION, .width = width, .height = height,
		.fourcc = DRM_FORMAT_XRGB8888, .backend = backend, .flags = flags,
		.usage = DMABROKER_USAGE_CPU_READ_FLAG | DMABROKER_USAGE_CPU_WRITE_FLAG,
	};
	struct dmabroker_buffer *buf = NULL;
	if (dmabroker_allocate(b, &d, &buf) < 0)
		return NULL;
	return buf;
}

static struct dmabroker_buffer *alloc_buffer(struct dmabroker *b, uint32_t width, uint32_t height)
{
	return alloc_flags(b, width, height, 0);
}

static struct dmabroker *connect_or_fail(bool direct)
{
	struct dmabroker *b = NULL;
	if (dmabroker_connect(DMABROKER_BUS_SESSION, &b) < 0) {
		SECTION_FAIL("cannot connect to dmabrokerd on the session bus: is it running?");
		return NULL;
	}
	if (direct && dmabroker_open_direct(b) < 0) {
		SECTION_FAIL("OpenDirect: %s", dmabroker_error_message(b));
		return dmabroker_disconnect(b);
	}
	return b;
}

/* n BeginAccess(write)+EndAccess pairs on buf: the pair's time in s; false on an error. */
static bool access_pairs(struct dmabroker *b, struct dmabroker_buffer *buf, unsigned n, bool end_oneway,
			 struct samples *pair, struct samples *begin)
{
	for (unsigned i = 0; i < n; i++) {
		uint64_t grant, t0 = monotonic_ns(), t1;
		int fence = -1;
		if (dmabroker_buffer_begin_access(buf, DMABROKER_ACCESS_WRITE, 0, &grant, &fence) < 0)
			return false;
		t1 = monotonic_ns();
		if (fence >= 0)
			close(fence);
		if ((end_oneway ? dmabroker_end_access_oneway(b, grant, -1) : dmabroker_end_access(b, grant, -1)) < 0)
			return false;
		if (pair)
			add(pair, monotonic_ns() - t0);
		if (begin)
			add(begin, t1 - t0);
	}
	return true;
}

/* ---- access ---- */

static void bench_access(void)
{
	struct samples pair = { 0 }, begin = { 0 };
	/* the bus; the direct connection in D-Bus; the access channel, with EndAccess waited and one-way */
	static const struct {
		bool direct, channel, oneway;
		const char *how;
	} runs[] = {
		{ false, false, false, "bus" },
		{ true, false, true, "direct D-Bus, one-way end" },
		{ true, true, false, "access channel, waited end" },
		{ true, true, true, "access channel, one-way end" },
	};
	header("access: BeginAccess + EndAccess, one client, one buffer (the baseline: raw request/reply)");
	for (unsigned run = 0; run < sizeof(runs) / sizeof(runs[0]); run++) {
		struct dmabroker *b;
		struct dmabroker_buffer *buf;
		const char *how = runs[run].how;
		char name[96];
		/* the library opens the access channel with the direct connection unless told not to */
		setenv("DMABROKER_ACCESS_CHANNEL", runs[run].channel ? "1" : "0", 1);
		b = connect_or_fail(runs[run].direct);
		unsetenv("DMABROKER_ACCESS_CHANNEL");
		buf = b ? alloc_buffer(b, 64, 64) : NULL;
		if (!buf) {
			if (b)
				SECTION_FAIL("access: Allocate: %s", dmabroker_error_message(b));
			dmabroker_disconnect(b);
			return;
		}
		access_pairs(b, buf, iterations / 10, runs[run].oneway, NULL, NULL); /* warm up */
		reset(&pair);
		reset(&begin);
		if (!access_pairs(b, buf, iterations, runs[run].oneway, &pair, &begin))
			SECTION_FAIL("access: %s", dmabroker_error_message(b));
		if (run != 2) {
			snprintf(name, sizeof(name), "BeginAccess alone, %s", runs[run].channel ? "access channel" :
				 runs[run].direct ? "direct D-Bus" : how);
			row(name, &begin, raw_rtt_p50);
		}
		snprintf(name, sizeof(name), "BeginAccess+EndAccess, %s", how);
		row(name, &pair, raw_rtt_p50);
		if (run == 3)
			target("BeginAccess+EndAccess (access channel, one-way end) / raw round trip, p50",
			       pct(&pair, 0.5) / raw_rtt_p50, 1.3, "x");
		dmabroker_buffer_release(buf);
		dmabroker_disconnect(b);
	}
	free(pair.v);
	free(begin.v);
}

/* ---- streams ---- */

static const uint32_t xr24[] = { DRM_FORMAT_XRGB8888 };
/* FIFO streams go peer to peer; mailbox ones through the daemon (for comparison) */
static enum dmabroker_stream_mode stream_mode = DMABROKER_STREAM_FIFO;

/* Creates (producer: then writes a byte per consumer to go) or joins the stream, and waits until it is ready. */
static struct dmabroker_stream *stream_party(struct dmabroker *b, const char *name, bool producer, unsigned buffers,
					     unsigned consumers, int go)
{
	struct dmabroker_stream_desc d = {
		.version = DMABROKER_STREAM_DESC_VERSION, .name = name, .formats = xr24, .n_formats = 1,
		.usage = DMABROKER_USAGE_CPU_READ_FLAG | DMABROKER_USAGE_CPU_WRITE_FLAG,
		.mode = stream_mode, .buffers = buffers, .width = 64, .height = 64,
		.consumers = consumers,
	};
	struct dmabroker_stream *s = NULL;
	int r = producer ? dmabroker_stream_create(b, &d, &s) : dmabroker_stream_join(b, &d, &s);
	for (unsigned i = 0; r >= 0 && producer && i < consumers; i++)
		if (write(go, "g", 1) != 1)
			r = -errno;
	if (r < 0 || dmabroker_stream_wait_ready(s, 20000) < 0) {
		fail("stream %s: %s: %s", name, producer ? "create" : "join", dmabroker_error_message(b));
		dmabroker_stream_destroy(s);
		return NULL;
	}
	return s;
}

/*
 * A consumer process: acquires every frame, notes how long after the
 * producer's queue (its timestamp) it arrived, releases it at once; at the
 * end writes the latencies to fd out. Exits 0 when it saw frames frames.
 */
static void consumer_main(const char *name, unsigned frames, int out, int ready)
{
	struct dmabroker *b = NULL;
	struct dmabroker_stream *s;
	uint64_t *lat = calloc(frames, sizeof(*lat));
	unsigned got = 0;

	char go;

	pin_peer();
	if (dmabroker_connect(DMABROKER_BUS_SESSION, &b) < 0 || !lat)
		_exit(1);
	/* joins once the producer has created the stream */
	if (read(ready, &go, 1) != 1)
		_exit(1);
	s = stream_party(b, name, false, 0, 0, -1);
	if (!s)
		_exit(1);
	while (got < frames) {
		struct dmabroker_frame f;
		int r = dmabroker_stream_acquire(s, &f);
		if (r == -EAGAIN) {
			if (dmabroker_stream_wait(s, 10000) <= 0)
				_exit(1);
			continue;
		}
		if (r < 0)
			_exit(1);
		lat[got++] = monotonic_ns() - f.timestamp_ns;
		if (f.fence >= 0)
			close(f.fence);
		if (dmabroker_stream_release(s, f.index, -1) < 0)
			_exit(1);
	}
	if (write(out, lat, frames * sizeof(*lat)) != (ssize_t)(frames * sizeof(*lat)))
		_exit(1);
	/* stay until the producer is done, so the stream does not lose a party mid-run */
	while (dmabroker_stream_wait(s, 20000) > 0) {
		struct dmabroker_frame f;
		if (dmabroker_stream_acquire(s, &f) < 0)
			break;
		if (f.fence >= 0)
			close(f.fence);
		dmabroker_stream_release(s, f.index, -1);
	}
	dmabroker_stream_destroy(s);
	dmabroker_disconnect(b);
	_exit(0);
}

/* Producer: the next free buffer, waiting for it. */
static int dequeue_wait(struct dmabroker_stream *s, struct dmabroker_frame *f)
{
	int r;
	while ((r = dmabroker_stream_dequeue(s, f)) == -EAGAIN)
		if (dmabroker_stream_wait(s, 10000) <= 0)
			return -ETIMEDOUT;
	if (r >= 0 && f->fence >= 0) {
		close(f->fence);
		f->fence = -1;
	}
	return r;
}

/* Runs a stream with n consumer processes: one-way latencies, and the cycle (buffers == 1) or frames/s. */
static bool stream_run(unsigned consumers, unsigned buffers, unsigned frames, struct samples *oneway,
		       struct samples *cycle, double *fps)
{
	char name[64];
	struct dmabroker *b = connect_or_fail(false);
	struct dmabroker_stream *s = NULL;
	pid_t pids[8];
	int pipes[8][2], ready[2];
	bool ok = b != NULL;
	uint64_t t_start, t_end, t_last = 0;

	snprintf(name, sizeof(name), "bench-%d-%u", (int)getpid(), consumers * 100 + buffers);
	if (!ok || pipe2(ready, O_CLOEXEC) < 0)
		return false;
	for (unsigned c = 0; c < consumers; c++) {
		if (pipe2(pipes[c], O_CLOEXEC) < 0)
			return false;
		pids[c] = fork();
		if (pids[c] == 0)
			consumer_main(name, frames, pipes[c][1], ready[0]);
		close(pipes[c][1]);
	}
	close(ready[0]);
	if (ok)
		s = stream_party(b, name, true, buffers, consumers, ready[1]);
	close(ready[1]);
	ok = s != NULL;
	/*
	 * With one buffer, dequeue returns only once the consumers released
	 * the last frame and the daemon gave it back: the full cycle.
	 */
	t_start = monotonic_ns();
	for (unsigned i = 0; ok && i <= frames; i++) {
		struct dmabroker_frame f;
		uint64_t now;
		if (dequeue_wait(s, &f) < 0) {
			ok = false;
			break;
		}
		now = monotonic_ns();
		if (cycle && i > 0)
			add(cycle, now - t_last);
		t_last = now;
		if (i < frames && dmabroker_stream_queue(s, f.index, -1, i, now, NULL, 0) < 0)
			ok = false;
	}
	t_end = monotonic_ns();
	if (fps)
		*fps = (double)frames * 1e9 / (double)(t_end - t_start);
	for (unsigned c = 0; c < consumers; c++) {
		uint64_t *lat = calloc(frames, sizeof(*lat));
		size_t want = frames * sizeof(*lat), got = 0;
		ssize_t n;
		while (lat && got < want && (n = read(pipes[c][0], (char *)lat + got, want - got)) > 0)
			got += (size_t)n;
		if (got != want)
			ok = false;
		for (unsigned i = 0; oneway && got == want && i < frames; i++)
			add(oneway, lat[i]);
		free(lat);
		close(pipes[c][0]);
	}
	dmabroker_stream_destroy(s);
	for (unsigned c = 0; c < consumers; c++) {
		int status = 0;
		waitpid(pids[c], &status, 0);
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			ok = false;
	}
	dmabroker_disconnect(b);
	return ok;
}

/* ---- the daemon's own figures ---- */

static pid_t daemon_pid(void)
{
	const char *p = getenv("DMABROKER_PID");
	return p ? (pid_t)atoi(p) : 0;
}

/* The daemon's CPU time in ns (schedstat: exact; else stat: clock ticks), or 0. */
static uint64_t daemon_cpu_ns(void)
{
	char path[64];
	unsigned long long ns = 0;
	FILE *f;
	if (!daemon_pid())
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/schedstat", (int)daemon_pid());
	f = fopen(path, "re");
	if (f) {
		if (fscanf(f, "%llu", &ns) != 1)
			ns = 0;
		fclose(f);
		return ns;
	}
	/* no schedstat (a kernel without SCHED_INFO): utime + stime, fields 14 and 15, in clock ticks */
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)daemon_pid());
	f = fopen(path, "re");
	if (f) {
		char buf[1024], *p;
		unsigned long long ut, st;
		size_t n = fread(buf, 1, sizeof(buf) - 1, f);
		buf[n] = 0;
		p = strrchr(buf, ')'); /* after the command, which may hold spaces */
		if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) == 2)
			ns = (ut + st) * (1000000000ull / (unsigned long long)sysconf(_SC_CLK_TCK));
		fclose(f);
	}
	return ns;
}

/* The daemon's resident memory in KiB, or 0. */
static long daemon_rss_kib(void)
{
	char path[64], line[256];
	long kib = 0;
	FILE *f;
	if (!daemon_pid())
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)daemon_pid());
	f = fopen(path, "re");
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	if (f)
		fclose(f);
	return kib;
}

static void bench_stream(void)
{
	struct samples oneway = { 0 }, cycle = { 0 };
	double fps1 = 0, fps3 = 0;
	uint64_t cpu0, cpu1;
	unsigned frames = iterations;

	header("stream: producer and consumer processes; FIFO peer to peer (the baseline: raw one-way handoff)");
	cpu0 = daemon_cpu_ns();
	if (!stream_run(1, 1, frames, &oneway, &cycle, NULL)) {
		SECTION_FAIL("stream: the 1-buffer run failed");
		return;
	}
	cpu1 = daemon_cpu_ns();
	row("queue -> consumer's acquire (one way)", &oneway, raw_oneway_p50);
	row("queue -> acquire -> release -> producer's dequeue", &cycle, raw_rtt_p50);
	target("frame handoff one way (direct) / raw one-way handoff, p50", pct(&oneway, 0.5) / raw_oneway_p50, 1.3,
	       "x");
	if (cpu0 && cpu1 >= cpu0)
		printf("  daemon CPU time per frame (1 consumer): %.1f µs\n", (double)(cpu1 - cpu0) / 1000.0 / frames);
	else
		printf("  daemon CPU time per frame: not measured (no DMABROKER_PID or no /proc/PID/schedstat)\n");
	{
		/* the same through the daemon: a mailbox stream, two hops */
		struct samples mb = { 0 }, mbc = { 0 };
		stream_mode = DMABROKER_STREAM_MAILBOX;
		cpu0 = daemon_cpu_ns();
		if (stream_run(1, 1, frames, &mb, &mbc, NULL)) {
			cpu1 = daemon_cpu_ns();
			row("mailbox, relayed by the daemon: one way", &mb, raw_oneway_p50);
			row("mailbox, relayed by the daemon: full cycle", &mbc, raw_rtt_p50);
			if (cpu0 && cpu1 >= cpu0)
				printf("  daemon CPU time per mailbox frame: %.1f µs\n",
				       (double)(cpu1 - cpu0) / 1000.0 / frames);
		} else {
			SECTION_FAIL("stream: the mailbox run failed");
		}
		stream_mode = DMABROKER_STREAM_FIFO;
		free(mb.v);
		free(mbc.v);
	}
	{
		uint64_t *lat = calloc(frames, sizeof(*lat));
		struct samples pw = { 0 };
		char why[256] = "";
		if (lat && pipewire_handoff(frames, pin_peer, lat, why, sizeof(why)) == 0) {
			for (unsigned i = 0; i < frames; i++)
				add(&pw, lat[i]);
			row("PipeWire: queue -> consumer's process (one way)", &pw, raw_oneway_p50);
			target("frame handoff one way (direct) / PipeWire's, p50", pct(&oneway, 0.5) / pct(&pw, 0.5), 1.0,
			       "x");
		} else {
			SECTION_FAIL("stream: the PipeWire comparison failed: %s", why);
		}
		free(lat);
		free(pw.v);
	}
	if (!stream_run(1, 4, frames, NULL, NULL, &fps1) || !stream_run(3, 4, frames, NULL, NULL, &fps3)) {
		SECTION_FAIL("stream: a frame-rate run failed");
		return;
	}
	printf("  frames/s, 4 buffers, producer and consumers as fast as they go: 1 consumer %.0f, 3 consumers %.0f\n",
	       fps1, fps3);
	printf("  (raw one-way handoff as a rate: %.0f/s)\n", 1e6 / raw_oneway_p50);
	fflush(stdout);
	free(oneway.v);
	free(cycle.v);
}

/* ---- allocation ---- */

/* The same allocation the daemon's backend makes, by hand: an fd, or -errno. */
static int direct_alloc(int heap, uint64_t size)
{
	if (heap >= 0) {
		struct dma_heap_allocation_data d = { .len = size, .fd_flags = O_RDWR | O_CLOEXEC };
		return ioctl(heap, DMA_HEAP_IOCTL_ALLOC, &d) < 0 ? -errno : (int)d.fd;
	} else {
		int fd = memfd_create("bench", MFD_CLOEXEC | MFD_ALLOW_SEALING);
		if (fd < 0)
			return -errno;
		if (ftruncate(fd, (off_t)size) < 0 ||
		    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
			close(fd);
			return -errno;
		}
		return fd;
	}
}

static void bench_alloc(void)
{
	static const uint64_t sizes[] = { 4096, 1 << 20, 8 << 20, 32 << 20 };
	struct dmabroker *b = connect_or_fail(true);
	struct samples direct = { 0 }, broker = { 0 }, pooled = { 0 };
	const char *kind = "memfd (the shm backend)";
	char path[128], name[96];
	int heap = -1;

	if (!b)
		return;
	if (backend && strncmp(backend, "heap:", 5) == 0) {
		snprintf(path, sizeof(path), "/dev/dma_heap/%s", backend + 5);
		heap = open(path, O_RDONLY | O_CLOEXEC);
		if (heap < 0) {
			SECTION_FAIL("alloc: %s: %s", path, strerror(errno));
			dmabroker_disconnect(b);
			return;
		}
		kind = path;
	} else if (backend && strcmp(backend, "shm") != 0) {
		printf("\nalloc: skipped: a direct baseline is written for heap:NAME and shm only, not %s\n", backend);
		dmabroker_disconnect(b);
		return;
	}
	printf("\nalloc: Allocate over the direct connection against %s by hand, each freed before the next\n"
	       "(by hand: allocation + close timed; daemon: Allocate timed, the one-way Release before it paid there)\n",
	       kind);
	header("");
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		unsigned n = sizes[i] >= (8 << 20) ? iterations / 20 + 5 : iterations / 4 + 5;
		reset(&direct);
		reset(&broker);
		reset(&pooled);
		for (unsigned k = 0; k < n; k++) {
			/*
			 * Allocation and free, both timed: through the daemon the
			 * free (a one-way Release) is paid before the next Allocate
			 * is served, so it is in that figure too.
			 */
			uint64_t t0 = monotonic_ns();
			int fd = direct_alloc(heap, sizes[i]);
			if (fd < 0) {
				SECTION_FAIL("alloc: direct %" PRIu64 " bytes: %s", sizes[i], strerror(-fd));
				goto out;
			}
			close(fd);
			add(&direct, monotonic_ns() - t0);
		}
		/* fresh: new memory every time; pooled: the one just freed comes back (if the daemon pools) */
		for (int pass = 0; pass < 2; pass++)
			for (unsigned k = 0; k < n + (unsigned)pass; k++) {
				struct dmabroker_buffer *buf;
				uint64_t t0 = monotonic_ns();
				buf = alloc_flags(b, 1024, (uint32_t)(sizes[i] / 4096), pass ? 0 : DMABROKER_ALLOC_FRESH);
				if (!pass || k > 0) /* the first pooled one fills the pool */
					add(pass ? &pooled : &broker, monotonic_ns() - t0);
				if (!buf) {
					SECTION_FAIL("alloc: %" PRIu64 " bytes: %s", sizes[i], dmabroker_error_message(b));
					goto out;
				}
				dmabroker_buffer_release(buf);
			}
		snprintf(name, sizeof(name), "%" PRIu64 " KiB by hand", sizes[i] / 1024);
		row(name, &direct, 0);
		snprintf(name, sizeof(name), "%" PRIu64 " KiB through the daemon, fresh", sizes[i] / 1024);
		row(name, &broker, pct(&direct, 0.5));
		snprintf(name, sizeof(name), "%" PRIu64 " KiB through the daemon, from its pool", sizes[i] / 1024);
		row(name, &pooled, pct(&direct, 0.5));
		if (sizes[i] == (8 << 20)) {
			/* unpooled: read it off a daemon with no pool, whose kept buffers would hold their pages
			 * from the kernel and slow a fresh allocation (./run bench does a second such run) */
			target("fresh 8 MiB Allocate / direct allocation, p50 (unpooled: a daemon without a pool)",
			       pct(&broker, 0.5) / pct(&direct, 0.5), 1.2, "x");
			target("pooled 8 MiB Allocate / direct allocation, p50", pct(&pooled, 0.5) / pct(&direct, 0.5),
			       0.5, "x");
		}
	}
	printf("  (from its pool: the daemon needs [pool] max-bytes, as in tests/bench/bench.conf)\n");
out:
	if (heap >= 0)
		close(heap);
	free(direct.v);
	free(broker.v);
	free(pooled.v);
	dmabroker_disconnect(b);
}

/* ---- memory and scaling ---- */

static void bench_memory_and_scaling(void)
{
	unsigned n_bufs = n_buffers, n_clients = 64;
	struct dmabroker *b = connect_or_fail(true);
	struct dmabroker_buffer **bufs = calloc(n_bufs, sizeof(*bufs));
	struct dmabroker *clients[64] = { 0 };
	struct samples at10 = { 0 }, atn = { 0 };
	long rss0, rss1, rss2;
	unsigned n = 0;
	char name[96];

	if (!b || !bufs)
		goto out;
	for (; n < 10; n++)
		if (!(bufs[n] = alloc_buffer(b, 1024, 1)))
			break;
	access_pairs(b, bufs[0], iterations / 10, false, NULL, NULL);
	if (n < 10 || !access_pairs(b, bufs[0], iterations, false, &at10, NULL)) {
		SECTION_FAIL("scaling: %s", dmabroker_error_message(b));
		goto out;
	}
	rss0 = daemon_rss_kib();
	for (; n < n_bufs; n++)
		if (!(bufs[n] = alloc_buffer(b, 1024, 1)))
			break;
	if (n < n_bufs) {
		SECTION_FAIL("memory: buffer %u of %u: %s (the daemon needs tests/bench/bench.conf's limits)", n + 1,
			     n_bufs, dmabroker_error_message(b));
		goto out;
	}
	rss1 = daemon_rss_kib();
	access_pairs(b, bufs[n_bufs / 2], iterations / 10, false, NULL, NULL);
	if (!access_pairs(b, bufs[n_bufs / 2], iterations, false, &atn, NULL)) {
		SECTION_FAIL("scaling: %s", dmabroker_error_message(b));
		goto out;
	}
	header("scaling: BeginAccess+EndAccess on the direct connection, by buffers the daemon holds");
	row("10 buffers held", &at10, 0);
	snprintf(name, sizeof(name), "%u buffers held", n_bufs);
	row(name, &atn, pct(&at10, 0.5));
	snprintf(name, sizeof(name), "per-operation cost at %u buffers / at 10, p50", n_bufs);
	target(name, pct(&atn, 0.5) / pct(&at10, 0.5), 1.2, "x");
	for (unsigned c = 0; c < n_clients; c++)
		if (dmabroker_connect(DMABROKER_BUS_SESSION, &clients[c]) < 0 || dmabroker_open_direct(clients[c]) < 0) {
			SECTION_FAIL("memory: client %u: cannot connect", c + 1);
			goto out;
		}
	usleep(100000); /* the daemon has registered them */
	rss2 = daemon_rss_kib();
	printf("\nmemory: the daemon's resident set (VmRSS)\n");
	if (rss0 && rss1) {
		double per = (double)(rss1 - rss0) * 1024.0 / (double)(n_bufs - 10);
		printf("  per buffer: %.0f bytes (%ld -> %ld KiB for %u buffers of 4 KiB; the memory itself is not mapped by the daemon)\n",
		       per, rss0, rss1, n_bufs - 10);
		target("daemon memory per buffer", per / 1024.0, 2.0, "KiB");
		printf("  per client: %.0f bytes (%ld -> %ld KiB for %u clients, each with a direct connection)\n",
		       (double)(rss2 - rss1) * 1024.0 / n_clients, rss1, rss2, n_clients);
	} else {
		printf("  not measured: no DMABROKER_PID\n");
	}
out:
	for (unsigned c = 0; c < n_clients; c++)
		dmabroker_disconnect(clients[c]);
	for (unsigned i = 0; bufs && i < n; i++)
		dmabroker_buffer_release(bufs[i]);
	free(bufs);
	free(at10.v);
	free(atn.v);
	dmabroker_disconnect(b);
}

/* k client processes at once, each BeginAccess+EndAccess on its own buffer: per-op p50/p99 of all, and ops/s. */
static void bench_clients(void)
{
	static const unsigned counts[] = { 1, 8, 64 };
	enum { PER_MAX = 2048 };
	struct samples all = { 0 };
	uint64_t *v = calloc(PER_MAX + 2, sizeof(uint64_t));
	double base = 0;

	header("scaling: client processes at once, each BeginAccess+EndAccess on its own buffer, direct connections");
	for (size_t ci = 0; v && ci < sizeof(counts) / sizeof(counts[0]); ci++) {
		unsigned k = counts[ci], per = iterations / 4 + 10 > PER_MAX ? PER_MAX : iterations / 4 + 10;
		size_t len = (per + 2) * sizeof(uint64_t);
		int pipes[64][2];
		pid_t pids[64];
		uint64_t t0 = UINT64_MAX, t1 = 0;
		char name[96];
		bool ok = true;

		for (unsigned c = 0; c < k; c++) {
			if (pipe2(pipes[c], O_CLOEXEC) < 0)
				abort();
			pids[c] = fork();
			if (pids[c] == 0) {
				/* its record: the loop's start and end, then its samples, on its own pipe */
				struct dmabroker *b = NULL;
				struct dmabroker_buffer *buf;
				struct samples s = { 0 };
				if (dmabroker_connect(DMABROKER_BUS_SESSION, &b) < 0 || dmabroker_open_direct(b) < 0 ||
				    !(buf = alloc_buffer(b, 64, 64)))
					_exit(1);
				v[0] = monotonic_ns();
				if (!access_pairs(b, buf, per, false, &s, NULL))
					_exit(1);
				v[1] = monotonic_ns();
				memcpy(v + 2, s.v, per * sizeof(uint64_t));
				if (write(pipes[c][1], v, len) != (ssize_t)len)
					_exit(1);
				dmabroker_buffer_release(buf);
				dmabroker_disconnect(b);
				_exit(0);
			}
			close(pipes[c][1]);
		}
		reset(&all);
		for (unsigned c = 0; c < k; c++) {
			size_t got = 0;
			ssize_t n;
			while (got < len && (n = read(pipes[c][0], (char *)v + got, len - got)) > 0)
				got += (size_t)n;
			close(pipes[c][0]);
			if (got != len) {
				ok = false;
				continue;
			}
			t0 = v[0] < t0 ? v[0] : t0;
			t1 = v[1] > t1 ? v[1] : t1;
			for (unsigned i = 0; i < per; i++)
				add(&all, v[2 + i]);
		}
		for (unsigned c = 0; c < k; c++) {
			int status = 0;
			waitpid(pids[c], &status, 0);
			ok = ok && WIFEXITED(status) && WEXITSTATUS(status) == 0;
		}
		if (!ok || all.n != (size_t)k * per) {
			SECTION_FAIL("scaling: a client process failed (%u clients)", k);
			break;
		}
		snprintf(name, sizeof(name), "%u client%s (%.0f pairs/s in all)", k, k == 1 ? "" : "s",
			 (double)all.n * 1e9 / (double)(t1 - t0));
		row(name, &all, base);
		if (ci == 0)
			base = pct(&all, 0.5);
	}
	free(v);
	free(all.v);
}

static void print_targets(void)
{
	if (!n_targets)
		return;
	printf("\ntargets (docs/BENCHMARKS.md; read off this run, not asserted)\n");
	for (unsigned i = 0; i < n_targets; i++)
		printf("  %-60s %8.2f %-3s (target <= %.1f %s): %s\n", targets[i].what, targets[i].value, targets[i].unit,
		       targets[i].limit, targets[i].unit, targets[i].value <= targets[i].limit ? "met" : "NOT MET");
}

int main(int argc, char **argv)
{
	enum { OPT_QUICK = 256, OPT_ITER, OPT_BACKEND, OPT_ONLY, OPT_BUFFERS, OPT_NO_PIN };
	static const struct option options[] = {
		{ "quick", no_argument, NULL, OPT_QUICK },
		{ "iterations", required_argument, NULL, OPT_ITER },
		{ "backend", required_argument, NULL, OPT_BACKEND },
		{ "only", required_argument, NULL, OPT_ONLY },
		{ "buffers", required_argument, NULL, OPT_BUFFERS },
		{ "no-pin", no_argument, NULL, OPT_NO_PIN },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	static const char *const sections[] = { "raw", "access", "stream", "alloc", "memory", "scaling" };
	bool iter_set = false, buffers_set = false;
	int c;

	set_tool_name("dmabroker-bench");
	while ((c = getopt_long(argc, argv, "h", options, NULL)) != -1) {
		switch (c) {
		case OPT_QUICK:
			quick = true;
			break;
		case OPT_ITER:
			if (!parse_u32(optarg, 20, 10000000, &iterations))
				return usage_error(argv[0], "--iterations: a number from 20 up, not '%s'", optarg);
			iter_set = true;
			break;
		case OPT_NO_PIN:
			no_pin = true;
			break;
		case OPT_BUFFERS:
			if (!parse_u32(optarg, 20, 100000, &n_buffers))
				return usage_error(argv[0], "--buffers: a number from 20 to 100000, not '%s'", optarg);
			buffers_set = true;
			break;
		case OPT_BACKEND:
			backend = optarg;
			break;
		case OPT_ONLY: {
			bool known = false;
			for (size_t i = 0; i < sizeof(sections) / sizeof(sections[0]); i++)
				known = known || strcmp(optarg, sections[i]) == 0;
			if (!known)
				return usage_error(argv[0], "--only: raw, access, stream, alloc, memory or scaling, not '%s'",
						   optarg);
			only = optarg;
			break;
		}
		case 'h':
			fputs(usage_text, stdout);
			return 0;
		default:
			return usage_error(argv[0], NULL);
		}
	}
	if (optind < argc)
		return usage_error(argv[0], "unexpected argument '%s'", argv[optind]);
	if (quick && !iter_set)
		iterations = 100;
	if (quick && !buffers_set)
		n_buffers = 1000;
	signal(SIGPIPE, SIG_IGN);
	{
		/* one fd per buffer held: as many as the hard limit allows */
		struct rlimit rl;
		if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
			rl.rlim_cur = rl.rlim_max;
			setrlimit(RLIMIT_NOFILE, &rl);
		}
	}
	if (!no_pin && sysconf(_SC_NPROCESSORS_ONLN) >= 2 && pin(0, 0)) {
		pinned = true;
		if (daemon_pid() && !pin(daemon_pid(), 1))
			fprintf(stderr, "dmabroker-bench: cannot place the daemon on CPU 1: %s\n", strerror(errno));
	}
	printf("placement: %s\n", pinned ? "bench and clients on CPU 0; peers (raw peer, consumers) and daemons (dmabrokerd, pipewire) on CPU 1"
					    : "left to the scheduler (--no-pin, or one CPU)");
	printf("dmabroker-bench: %u samples per figure%s; backend %s; daemon pid %s\n", iterations,
	       quick ? " (--quick: rough figures)" : "", backend ? backend : "(the daemon's choice)",
	       getenv("DMABROKER_PID") ? getenv("DMABROKER_PID") : "unknown");
	bench_raw();
	if (!raw_rtt_p50)
		return 1;
	if (want("access"))
		bench_access();
	if (want("stream"))
		bench_stream();
	if (want("alloc"))
		bench_alloc();
	if (want("memory") || want("scaling"))
		bench_memory_and_scaling();
	if (want("scaling"))
		bench_clients();
	print_targets();
	return failed;
}

/* SPDX-License-Identifier: MIT */
/*
 * Helpers for tests that talk to a real dmabrokerd through libdmabroker
 * (under tests/common/with-daemon.py, which sets DMABROKER_PID): the
 * daemon's names, its fd count and properties, baselines of them, its
 * ListBuffers read entry by entry, named-error checks.
 * Include after tap.h, in one file per program.
 */
#pragma once

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <drm_fourcc.h>
#include <systemd/sd-bus.h>

#include "dmabroker.h"
#include "errors.h"

/* The daemon's bus name, object and interface, and its error names (protocol/org.dmabroker.Broker1.xml). */
#define BUS_NAME DMABROKER_BUS_NAME /* dmabroker-protocol.h */
#define PATH DMABROKER_OBJECT_PATH
#define IFACE DMABROKER_INTERFACE
#define ERR(n) DMABROKER_ERROR(n) /* errors.h */
/* What most test buffers are for: the CPU reads and writes them. */
#define CPU_RW (DMABROKER_USAGE_CPU_READ_FLAG | DMABROKER_USAGE_CPU_WRITE_FLAG)

static pid_t daemon_pid;

static inline int daemon_fd_count(void)
{
	char path[64];
	struct dirent *e;
	int n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)daemon_pid);
	d = opendir(path);
	if (!d)
		return -errno;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

/* The daemon's resident memory (VmRSS), in KiB, or -1. */
static inline long daemon_rss_kib(void)
{
	char path[64], line[256];
	long kib = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)daemon_pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

/*
 * Whether the daemon runs under qemu-user (a cross build's tests, through
 * binfmt_misc): its /proc/PID/exe is then the emulator, named in why, and
 * its RSS is the emulator's, translated code included, not the daemon's.
 */
static inline bool daemon_emulated(char *why, size_t size)
{
	char path[64], exe[PATH_MAX];
	const char *base;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/exe", (int)daemon_pid);
	n = readlink(path, exe, sizeof(exe) - 1);
	if (n <= 0)
		return false;
	exe[n] = 0;
	base = strrchr(exe, '/') ? strrchr(exe, '/') + 1 : exe;
	if (strncmp(base, "qemu-", 5) != 0)
		return false;
	snprintf(why, size, "the daemon runs under qemu-user (%s is %s), whose RSS is the emulator's, its translated code "
		 "included", path, exe);
	return true;
}

/*
 * The daemon's property `name` of type u (Buffers, Clients, Streams,
 * PoolBuffers), read on a bus connection of its own, or a negative errno.
 */
static inline int daemon_property_u32(const char *name)
{
	sd_bus *bus = NULL;
	uint32_t n = 0;
	int r = sd_bus_open_user(&bus);

	if (r >= 0)
		r = sd_bus_get_property_trivial(bus, BUS_NAME, PATH, IFACE, name, NULL, 'u', &n);
	sd_bus_flush_close_unref(bus);
	if (r >= 0 && n > INT_MAX)
		r = -ERANGE;
	return r < 0 ? r : (int)n;
}

/* One entry of ListBuffers (a(tuuutsuuuuutuuuu), protocol/org.dmabroker.Broker1.xml). */
struct listed_buffer {
	uint64_t id;
	uint32_t width, height, fourcc;
	uint64_t size;
	char backend[64];               /* "import" for imports */
	uint32_t usage, uid, pid, holders, attachments;
	uint64_t age_usec;
	uint32_t grants, waiters, fences, timeouts;
};

/*
 * A ListBuffers reply, read an entry at a time: listed_buffers_begin(),
 * listed_buffers_next() until it returns 0 or less, listed_buffers_end()
 * (always, also after a failed begin).
 */
struct listed_buffers {
	sd_bus *own;                    /* the connection opened for the call, or NULL */
	sd_bus_message *reply;
};

/* Calls ListBuffers on bus (NULL: on a connection of its own): 0, or a negative errno. */
static inline int listed_buffers_begin(struct listed_buffers *l, sd_bus *bus)
{
	int r = 0;

	*l = (struct listed_buffers){ NULL, NULL };
	if (!bus) {
		r = sd_bus_open_user(&l->own);
		bus = l->own;
	}
	if (r >= 0)
		r = sd_bus_call_method(bus, BUS_NAME, PATH, IFACE, "ListBuffers", NULL, &l->reply, "");
	if (r >= 0)
		r = sd_bus_message_enter_container(l->reply, 'a', "(tuuutsuuuuutuuuu)");
	return r < 0 ? r : 0;
}

/* The next entry, into *e: 1; 0 after the last one, the reply read whole; a negative errno when it does not parse. */
static inline int listed_buffers_next(struct listed_buffers *l, struct listed_buffer *e)
{
	const char *backend;
	int r = sd_bus_message_read(l->reply, "(tuuutsuuuuutuuuu)", &e->id, &e->width, &e->height, &e->fourcc,
				    &e->size, &backend, &e->usage, &e->uid, &e->pid, &e->holders, &e->attachments,
				    &e->age_usec, &e->grants, &e->waiters, &e->fences, &e->timeouts);

	if (r > 0) {
		snprintf(e->backend, sizeof(e->backend), "%s", backend);
		return 1;
	}
	if (r == 0)
		r = sd_bus_message_exit_container(l->reply);
	/* nothing left behind the array */
	if (r >= 0 && !sd_bus_message_at_end(l->reply, true))
		r = -EBADMSG;
	return r < 0 ? r : 0;
}

static inline void listed_buffers_end(struct listed_buffers *l)
{
	l->reply = sd_bus_message_unref(l->reply);
	l->own = sd_bus_flush_close_unref(l->own);
}

/* Buffer id as ListBuffers on bus (NULL: a connection of its own) shows it: 1 (in *e), 0 when not listed, or a
 * negative errno. */
static inline int listed_buffer_find(sd_bus *bus, uint64_t id, struct listed_buffer *e)
{
	struct listed_buffers l;
	int r = listed_buffers_begin(&l, bus);

	while (r >= 0 && (r = listed_buffers_next(&l, e)) > 0 && e->id != id)
		;
	listed_buffers_end(&l);
	return r;
}

/*
 * Calls method on bus, one that takes nothing and answers an fd
 * (OpenDirect, OpenAccessChannel): that fd, ours (CLOEXEC), or a negative
 * errno, said why.
 */
static inline int call_for_fd(sd_bus *bus, const char *method)
{
	sd_bus_message *reply = NULL;
	sd_bus_error e = SD_BUS_ERROR_NULL;
	int fd, r = sd_bus_call_method(bus, BUS_NAME, PATH, IFACE, method, &e, &reply, "");

	if (r >= 0)
		r = sd_bus_message_read(reply, "h", &fd);
	if (r >= 0 && (r = fcntl(fd, F_DUPFD_CLOEXEC, 3)) < 0)
		r = -errno;
	sd_bus_message_unref(reply);
	if (r < 0)
		tap_diag("%s by hand: %s %s", method, strerror(-r), e.message ? e.message : "");
	sd_bus_error_free(&e);
	return r;
}

/*
 * A direct connection of bus's client, spoken by hand (OpenDirect, then
 * sd-bus on its socket), or NULL, said why. With bus NULL, of a client of
 * its own whose bus connection is closed at once: the client lives on its
 * direct connection alone.
 */
static inline sd_bus *raw_direct(sd_bus *bus)
{
	sd_bus *own = NULL, *d = NULL;
	int fd, r = 0;

	if (!bus) {
		r = sd_bus_open_user(&own);
		bus = own;
	}
	fd = r < 0 ? r : call_for_fd(bus, "OpenDirect");
	sd_bus_flush_close_unref(own);
	r = fd < 0 ? fd : sd_bus_new(&d);
	if (r >= 0) {
		r = sd_bus_set_fd(d, fd, fd);
		if (r >= 0)
			fd = -1; /* d's now */
	}
	if (r >= 0)
		r = sd_bus_set_anonymous(d, 1);
	if (r >= 0)
		r = sd_bus_negotiate_fds(d, 1);
	if (r >= 0)
		r = sd_bus_start(d);
	if (r < 0) {
		tap_diag("a direct connection by hand: %s", strerror(-r));
		if (fd >= 0)
			close(fd);
		return sd_bus_unref(d);
	}
	return d;
}

/* The daemon's fd and buffer counts before a step, compared after it. The
 * daemon drops a dead client asynchronously: give it a moment. */
struct baseline {
	int fds, buffers;
};

/* Waits until the counts hold still (the daemon may still be cleaning up
 * after the previous step's clients), and returns them. */
static inline struct baseline baseline_take(void)
{
	struct baseline last = { -1, -1 };
	int same = 0;

	for (int i = 0; i < 200 && same < 5; i++) {
		struct baseline now = { daemon_fd_count(), daemon_property_u32("Buffers") };
		same = now.fds == last.fds && now.buffers == last.buffers ? same + 1 : 0;
		last = now;
		usleep(30000);
	}
	return last;
}

/* False, and why, when either count cannot be read (before or now): an unreadable /proc proves nothing. */
static inline bool baseline_restored(struct baseline b)
{
	if (b.fds < 0 || b.buffers < 0) {
		tap_diag("no baseline: the daemon's fds (/proc/%d/fd): %s; its buffers (Buffers property): %s",
			 (int)daemon_pid, b.fds < 0 ? strerror(-b.fds) : "read",
			 b.buffers < 0 ? strerror(-b.buffers) : "read");
		return false;
	}
	for (int i = 0; i < 500; i++) {
		if (daemon_fd_count() == b.fds && daemon_property_u32("Buffers") == b.buffers)
			return true;
		usleep(10000);
	}
	{
		int fds = daemon_fd_count(), buffers = daemon_property_u32("Buffers");
		if (fds < 0 || buffers < 0)
			tap_diag("cannot read the daemon's counts now: fds (/proc/%d/fd): %s; buffers: %s",
				 (int)daemon_pid, fds < 0 ? strerror(-fds) : "read",
				 buffers < 0 ? strerror(-buffers) : "read");
		else
			tap_diag("daemon holds %d fds and %d buffers; before: %d and %d", fds, buffers, b.fds,
				 b.buffers);
	}
	return false;
}

static inline struct dmabroker *connect_session(void)
{
	struct dmabroker *b = NULL;
	int r = dmabroker_connect(DMABROKER_BUS_SESSION, &b);
	if (r < 0)
		tap_diag("connect: %s", strerror(-r));
	return b;
}

static inline bool expect_error(struct dmabroker *b, int r, int want_errno, const char *want_name)
{
	const char *name = dmabroker_error_name(b);
	if (r != -want_errno || !name || strcmp(name, want_name) != 0) {
		tap_diag("got %d (%s: %s), want -%d (%s)", r, name ? name : "-",
			 dmabroker_error_message(b) ? dmabroker_error_message(b) : "-", want_errno, want_name);
		return false;
	}
	tap_diag("%s: %s", name, dmabroker_error_message(b));
	return true;
}


/* A 64x64 XRGB8888 buffer the CPU reads and writes, of b's, or NULL; *ret: what dmabroker_allocate() returned. */
static inline struct dmabroker_buffer *alloc_one(struct dmabroker *b, int *ret)
{
	struct dmabroker_alloc_desc d = {
		.version = DMABROKER_ALLOC_DESC_VERSION, .width = 64, .height = 64, .fourcc = DRM_FORMAT_XRGB8888,
		.usage = CPU_RW,
	};
	struct dmabroker_buffer *buf = NULL;

	*ret = dmabroker_allocate(b, &d, &buf);
	return buf;
}

/* Shares buf with other: the same buffer, opened by a token; NULL when either step failed. */
static inline struct dmabroker_buffer *share(struct dmabroker_buffer *buf, struct dmabroker *other)
{
	struct dmabroker_buffer *out = NULL;
	char *token = NULL;

	if (dmabroker_buffer_create_token(buf, 0, 0, &token) == 0)
		dmabroker_open_token(other, token, &out);
	free(token);
	return out;
}

/* What dmabroker_allocate_async() answered (on_async_allocated): how many answers, the last error and buffer. */
struct async_result {
	int done, error;
	struct dmabroker_buffer *buf;
};

/* The callback that fills a struct async_result (userdata). */
static inline void on_async_allocated(struct dmabroker *b, int error, struct dmabroker_buffer *buf, void *userdata)
{
	struct async_result *res = userdata;

	res->done++;
	res->error = error;
	res->buf = buf;
}

/* What dmabroker_buffer_begin_access_async() answered (on_begun): how many answers, the last error and grant. */
struct begun {
	int done, error;
	uint64_t grant;
};

/* The callback that fills a struct begun (userdata); a fence that comes with the grant is closed. */
static inline void on_begun(struct dmabroker *b, int error, uint64_t grant, int fence, void *userdata)
{
	struct begun *g = userdata;

	g->done++;
	g->error = error;
	g->grant = grant;
	if (fence >= 0)
		close(fence);
}

/* Reads DMABROKER_PID; false (with a message) when not under with-daemon.py. */
static inline bool daemon_pid_from_env(const char *prog)
{
	const char *pid = getenv("DMABROKER_PID");
	if (!pid) {
		fprintf(stderr, "%s: run me under tests/common/with-daemon.py (DMABROKER_PID is not set)\n", prog);
		return false;
	}
	daemon_pid = atoi(pid);
	return true;
}

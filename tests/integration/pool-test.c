/* SPDX-License-Identifier: MIT */
/*
 * pool-test: the daemon's buffer pool ([pool] in tests/integration/pool.conf:
 * 1 MiB, 3 buffers) against a real dmabrokerd on a bus any uid may use.
 * Runs as root; a child drops to nobody. Output is TAP.
 *
 * A buffer's contents tell where its memory came from: each allocation is
 * filled with a pattern of its own, and a pooled buffer keeps it.
 */
#include <errno.h>
#include <grp.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <drm_fourcc.h>
#include <systemd/sd-bus.h>

#include "dmabroker.h"
#include "tap.h"
#include "broker-util.h"

TAP_DEFINE;

#define NOBODY 65534

/* Release is one-way: the daemon's fd count settles shortly after. True when it reaches want within 5 s. */
static bool fds_become(int want)
{
	for (int i = 0; i < 500; i++) {
		if (daemon_fd_count() == want)
			return true;
		usleep(10000);
	}
	tap_diag("daemon fds: %d, want %d", daemon_fd_count(), want);
	return false;
}

static struct dmabroker_buffer *alloc_buf(struct dmabroker *b, uint32_t flags)
{
	struct dmabroker_alloc_desc d = {
		.version = DMABROKER_ALLOC_DESC_VERSION, .width = 64, .height = 64, .fourcc = DRM_FORMAT_XRGB8888,
		.usage = DMABROKER_USAGE_CPU_READ_FLAG | DMABROKER_USAGE_CPU_WRITE_FLAG, .flags = flags,
	};
	struct dmabroker_buffer *buf = NULL;
	if (dmabroker_allocate(b, &d, &buf) < 0) {
		tap_diag("allocate: %s", dmabroker_error_message(b));
		return NULL;
	}
	return buf;
}

/* Writes salt's pattern (salt 0: reads) and returns the salt the contents show: 0 zeroes, -1 mixed. */
static long contents(struct dmabroker_buffer *buf, uint32_t write_salt)
{
	size_t words = dmabroker_buffer_get_size(buf) / 4;
	uint32_t *p = mmap(NULL, words * 4, PROT_READ | PROT_WRITE, MAP_SHARED, dmabroker_buffer_get_fd(buf), 0);
	long salt;

	if (p == MAP_FAILED)
		return -2;
	if (write_salt)
		for (size_t i = 0; i < words; i++)
			p[i] = write_salt ^ (uint32_t)i;
	salt = (long)p[0];
	for (size_t i = 1; i < words; i++)
		if (p[i] != ((uint32_t)salt ^ (uint32_t)i)) {
			salt = -1;
			break;
		}
	if (salt == -1) {
		/* all zero? */
		salt = 0;
		for (size_t i = 0; i < words; i++)
			if (p[i]) {
				salt = -1;
				break;
			}
	}
	munmap(p, words * 4);
	return salt;
}

static bool step_reuse(void)
{
	struct dmabroker *b = connect_session();
	struct dmabroker_buffer *a, *c;
	int fds0;
	uint64_t id_a;

	CHECK(b);
	fds0 = daemon_fd_count();
	a = alloc_buf(b, 0);
	CHECK(a && contents(a, 0) == 0); /* new memory: zeroed by the kernel */
	CHECK(contents(a, 0xA0000) == 0xA0000);
	id_a = dmabroker_buffer_get_id(a);
	dmabroker_buffer_release(a);
	CHECK(fds_become(fds0 + 1)); /* kept */
	c = alloc_buf(b, 0);
	CHECK(c);
	tap_diag("buffer %llu after %llu: contents salt 0x%lx", (unsigned long long)dmabroker_buffer_get_id(c),
		 (unsigned long long)id_a, contents(c, 0));
	CHECK(dmabroker_buffer_get_id(c) != id_a);
	CHECK(contents(c, 0) == 0xA0000); /* the same memory */
	CHECK(fds_become(fds0 + 1));
	dmabroker_buffer_release(c);
	CHECK(fds_become(fds0 + 1));
	dmabroker_disconnect(b);
	return true;
}

static bool step_fresh(void)
{
	struct dmabroker *b = connect_session();
	struct dmabroker_buffer *c;
	int fds0;

	CHECK(b);
	{
		/* flags the library does not know, and a descriptor version it does not know: refused before a call */
		struct dmabroker_alloc_desc d = {
			.version = DMABROKER_ALLOC_DESC_VERSION, .width = 64, .height = 64,
			.fourcc = DRM_FORMAT_XRGB8888, .usage = DMABROKER_USAGE_CPU_READ_FLAG, .flags = 0x80,
		};
		struct dmabroker_buffer *x = NULL;
		CHECK(dmabroker_allocate(b, &d, &x) == -EINVAL && !x);
		d.flags = 0;
		d.version = DMABROKER_ALLOC_DESC_VERSION + 1;
		CHECK(dmabroker_allocate(b, &d, &x) == -EINVAL && !x);
	}
	fds0 = daemon_fd_count(); /* with one pooled buffer of root's */
	c = alloc_buf(b, DMABROKER_ALLOC_FRESH);
	CHECK(c && contents(c, 0) == 0);
	CHECK(fds_become(fds0 + 1)); /* the pooled one stayed */
	dmabroker_buffer_release(c);
	CHECK(fds_become(fds0 + 1)); /* C went to the pool, the oldest stayed: max-bytes is 1M */
	/* C was pooled (it is root's and nobody else held it): the next one of root's is C or A */
	dmabroker_disconnect(b);
	return true;
}

static int child_other_uid(void *arg)
{
	struct dmabroker *b = connect_session();
	struct dmabroker_buffer *c, *shared = NULL;
	const char *token = arg;
	long salt;

	if (!b)
		return 10;
	c = alloc_buf(b, 0);
	if (!c)
		return 11;
	salt = contents(c, 0);
	if (salt != 0) {
		fprintf(stderr, "pool-test: nobody got memory with salt 0x%lx\n", salt);
		return 12;
	}
	dmabroker_buffer_release(c);
	if (token && (dmabroker_open_token(b, token, &shared) < 0 || contents(shared, 0) != 0xD0000))
		return 13;
	dmabroker_disconnect(b); /* releases the shared one, keeps nothing */
	return 0;
}

static int as_nobody(void *arg)
{
	int status = 0;
	pid_t pid = fork();
	if (pid == 0) {
		if (setgroups(0, NULL) < 0 || setgid(NOBODY) < 0 || setuid(NOBODY) < 0)
			_exit(100);
		_exit(child_other_uid(arg));
	}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

static bool step_other_uids(void)
{
	struct dmabroker *b = connect_session();
	struct dmabroker_buffer *d, *e;
	char *token = NULL;
	int fds0, clients0;

	CHECK(b);
	clients0 = daemon_property_u32("Clients");
	/* nobody never gets root's pooled memory */
	CHECK(as_nobody(NULL) == 0);
	/*
	 * The baseline once nobody's client is gone: the daemon frees it (its
	 * direct connection, its channel) when it sees the hangup, which a slow
	 * daemon (valgrind) may not have yet; counted before, its fds were in it.
	 */
	for (int i = 0; i < 500 && daemon_property_u32("Clients") != clients0; i++)
		usleep(10000);
	CHECK(daemon_property_u32("Clients") == clients0);
	/* a buffer nobody held is not pooled when root lets go */
	fds0 = daemon_fd_count();
	d = alloc_buf(b, DMABROKER_ALLOC_FRESH);
	CHECK(d && contents(d, 0xD0000) == 0xD0000);
	CHECK(dmabroker_buffer_create_token(d, 0, 0, &token) == 0);
	CHECK(as_nobody(token) == 0);
	free(token);
	dmabroker_buffer_release(d);
	CHECK(fds_become(fds0)); /* closed, not pooled */
	e = alloc_buf(b, 0);
	CHECK(e && contents(e, 0) != 0xD0000);
	dmabroker_buffer_release(e);
	dmabroker_disconnect(b);
	return true;
}

static bool step_bounded(void)
{
	struct dmabroker *b = connect_session();
	struct dmabroker_buffer *bufs[5];
	int fds0, pooled;

	CHECK(b);
	/*
	 * 5 of root's held: root's pooled ones are taken; nobody's (from the
	 * step before) stay until pushed out. Released, the 5 go to the pool,
	 * which keeps the 3 newest and closes the rest, nobody's first.
	 */
	for (int i = 0; i < 5; i++)
		CHECK((bufs[i] = alloc_buf(b, 0)));
	usleep(100000);
	fds0 = daemon_fd_count();
	for (int i = 0; i < 5; i++)
		dmabroker_buffer_release(bufs[i]);
	for (int i = 0; i < 500 && (pooled = daemon_fd_count()) > fds0 - 5 + 3; i++)
		usleep(10000);
	pooled = daemon_fd_count();
	tap_diag("daemon fds with 5 held: %d; after they were released: %d (max-buffers = 3)", fds0, pooled);
	/* fds0 counts the 5 and whatever of nobody's was pooled (0 to 3); after: 3 in the pool in all */
	CHECK(pooled <= fds0 - 2 && pooled >= fds0 - 5);
	{
		/* and the daemon says so: PoolBuffers, PoolBytes */
		sd_bus *bus = NULL;
		uint32_t n = 0;
		uint64_t bytes = 0;
		CHECK(sd_bus_open_user(&bus) >= 0);
		CHECK(sd_bus_get_property_trivial(bus, BUS_NAME, PATH, IFACE, "PoolBuffers", NULL, 'u', &n) >= 0);
		CHECK(sd_bus_get_property_trivial(bus, BUS_NAME, PATH, IFACE, "PoolBytes", NULL, 't', &bytes) >= 0);
		tap_diag("PoolBuffers %u, PoolBytes %llu", n, (unsigned long long)bytes);
		CHECK(n == 3 && bytes == 3 * 16384);
		sd_bus_flush_close_unref(bus);
	}
	dmabroker_disconnect(b);
	return true;
}

/*
 * Which one goes when the pool is full: the oldest. The pool holds 3 (the step before); four new buffers of
 * root's (fresh memory, each with a pattern of its own, 1 to 4) are released in order, each release waited
 * for: each pushes the pool's oldest out, so it ends holding 2, 3 and 4, and 1, the oldest, is gone. The
 * next three Allocates of that size get 2, 3 and 4 back, in some order, and the fourth new zeroed memory.
 */
static bool step_oldest_first(void)
{
	struct dmabroker *b = connect_session();
	struct dmabroker_buffer *bufs[4];
	long got[4];
	bool seen[5] = { false };
	int fds0;

	CHECK(b);
	CHECK(daemon_property_u32("PoolBuffers") == 3);
	for (int i = 0; i < 4; i++) {
		CHECK((bufs[i] = alloc_buf(b, DMABROKER_ALLOC_FRESH)));
		CHECK(contents(bufs[i], 0) == 0);
		CHECK(contents(bufs[i], 0x10000u * (uint32_t)(i + 1)) == 0x10000 * (i + 1));
	}
	fds0 = baseline_take().fds; /* once it holds still */
	for (int i = 0; i < 4; i++) {
		dmabroker_buffer_release(bufs[i]);
		/* its fd went to the pool, the pool's oldest was closed: one fd fewer each time */
		CHECK(fds_become(fds0 - 1 - i));
	}
	CHECK(daemon_property_u32("PoolBuffers") == 3);
	for (int i = 0; i < 4; i++) {
		CHECK((bufs[i] = alloc_buf(b, 0)));
		got[i] = contents(bufs[i], 0);
	}
	tap_diag("released 1, 2, 3, 4 (oldest first) into a full pool of 3; taken back: 0x%lx, 0x%lx, 0x%lx, then "
		 "0x%lx", got[0], got[1], got[2], got[3]);
	for (int i = 0; i < 3; i++) {
		CHECK(got[i] > 0 && got[i] % 0x10000 == 0 && got[i] / 0x10000 >= 2 && got[i] / 0x10000 <= 4);
		CHECK(!seen[got[i] / 0x10000]);
		seen[got[i] / 0x10000] = true;
	}
	CHECK(got[3] == 0); /* 1, the oldest, was evicted: new memory */
	CHECK(daemon_property_u32("PoolBuffers") == 0);
	for (int i = 0; i < 4; i++)
		dmabroker_buffer_release(bufs[i]);
	dmabroker_disconnect(b);
	return true;
}

int main(void)
{
	if (!daemon_pid_from_env("pool-test"))
		return 1;
	tap_plan(5);
	tap_step("a freed buffer comes back to the next Allocate of its size by its uid, contents and all", step_reuse);
	tap_step("Allocate with fresh=true gets new, zeroed memory and leaves the pool alone", step_fresh);
	tap_step("another uid never gets pooled memory, and a buffer it held is never pooled", step_other_uids);
	tap_step("the pool keeps at most max-buffers; the oldest go", step_bounded);
	tap_step("a full pool evicts its oldest buffer first: the newer ones come back, the oldest does not",
		 step_oldest_first);
	return tap_done();
}

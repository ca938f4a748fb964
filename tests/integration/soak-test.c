/* SPDX-License-Identifier: MIT */
/*
 * soak-test: many clients at once against a real dmabrokerd (under
 * tests/common/with-daemon.py), each cycling through allocate, share by
 * token, write access and read access (with pending sw_sync release fences
 * given --fences), and release, while the parent SIGKILLs random clients
 * and starts new ones. Afterwards the daemon's fd count, buffer count and
 * memory must be back where they were. Output is TAP.
 *
 * usage: soak-test [--clients N] [--seconds S] [--kill-every MS] [--fences] [--backend NAME]
 * (a SIGKILL every MS milliseconds on average, default 100)
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <drm_fourcc.h>

#include "dmabroker.h"
#include "tap.h"
#include "broker-util.h"
#include "uapi-extra.h"

TAP_DEFINE;

#define MAX_CLIENTS 256

static int n_clients = 64, seconds = 15, kill_every_ms = 100;
static bool fences;
static const char *backend;
static uint64_t *cycles_done;   /* shared with the children: one counter each */

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* One client's life: cycles until killed or out of time. Exit 0 when every call behaved. */
static int client_main(unsigned slot, uint64_t deadline_ms)
{
	struct dmabroker *a = connect_session(), *b = connect_session();
	int timeline = -1;
	uint32_t point = 0, seed = (uint32_t)getpid();

	if (!a || !b)
		return 10;
	if (fences && (timeline = open(SW_SYNC_DEBUGFS_PATH, O_RDWR | O_CLOEXEC)) < 0)
		return 11;
	if (slot % 2 && dmabroker_open_direct(a) < 0)
		return 12;
	while (now_ms() < deadline_ms) {
		struct dmabroker_alloc_desc d = {
			.version = DMABROKER_ALLOC_DESC_VERSION, .width = 16 + rand_r(&seed) % 240,
			.height = 16 + rand_r(&seed) % 240, .fourcc = DRM_FORMAT_XRGB8888,
			.usage = DMABROKER_USAGE_CPU_READ_FLAG | DMABROKER_USAGE_CPU_WRITE_FLAG, .backend = backend,
		};
		struct dmabroker_buffer *mine = NULL, *theirs = NULL;
		char *token = NULL;
		uint64_t g;
		int acquire = -1, release = -1, r;

		if (dmabroker_allocate(a, &d, &mine) < 0)
			return 20;
		if (dmabroker_buffer_create_token(mine, DMABROKER_TOKEN_SINGLE_USE, 0, &token) < 0 ||
		    dmabroker_open_token(b, token, &theirs) < 0)
			return 21;
		free(token);
		/* write, handing back a release fence the "GPU" signals a moment later */
		if (dmabroker_buffer_begin_access(mine, DMABROKER_ACCESS_WRITE, 0, &g, &acquire) < 0)
			return 22;
		if (acquire >= 0)
			close(acquire);
		if (fences) {
			struct sw_sync_create_fence_data fd = { .value = ++point };
			snprintf(fd.name, sizeof(fd.name), "soak");
			if (ioctl(timeline, SW_SYNC_IOC_CREATE_FENCE, &fd) < 0)
				return 23;
			release = fd.fence;
		}
		r = dmabroker_end_access(a, g, release);
		if (release >= 0)
			close(release);
		if (r < 0)
			return 24;
		if (fences) {
			uint32_t one = 1;
			ioctl(timeline, SW_SYNC_IOC_INC, &one);
		}
		/* read from the other connection: the acquire fence covers the write */
		if (dmabroker_buffer_begin_access(theirs, DMABROKER_ACCESS_READ, 0, &g, &acquire) < 0)
			return 25;
		if (acquire >= 0) {
			if (dmabroker_fence_wait(acquire, 5000) != 1)
				return 26;
			close(acquire);
		}
		if (dmabroker_end_access(b, g, -1) < 0)
			return 27;
		dmabroker_buffer_release(theirs);
		dmabroker_buffer_release(mine);
		cycles_done[slot]++;
	}
	dmabroker_disconnect(b);
	dmabroker_disconnect(a);
	return 0;
}

static pid_t spawn(unsigned slot, uint64_t deadline_ms)
{
	pid_t pid = fork();
	if (pid == 0)
		_exit(client_main(slot, deadline_ms));
	return pid;
}

static bool step_soak(void)
{
	pid_t pids[MAX_CLIENTS];
	uint64_t start = now_ms(), deadline = start + (uint64_t)seconds * 1000u, cycles = 0;
	unsigned kills = 0, spawned = 0, failures = 0, seed = 12345;
	struct baseline before;
	long rss_before, rss_warm = 0, rss_after;
	int status;

	cycles_done = mmap(NULL, sizeof(uint64_t) * MAX_CLIENTS, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
			   -1, 0);
	CHECK(cycles_done != MAP_FAILED);
	before = baseline_take();
	rss_before = daemon_rss_kib();
	for (int i = 0; i < n_clients; i++) {
		pids[i] = spawn((unsigned)i, deadline);
		spawned++;
	}
	/* SIGKILL a random client now and then, and start a new one in its place */
	while (now_ms() + 500 < deadline) {
		unsigned victim = (unsigned)rand_r(&seed) % (unsigned)n_clients;
		usleep((useconds_t)kill_every_ms * 500u + (useconds_t)(rand_r(&seed) % ((unsigned)kill_every_ms * 1000u)));
		if (!rss_warm && now_ms() > start + (deadline - start) / 3)
			rss_warm = daemon_rss_kib(); /* once everything is in full swing */
		kill(pids[victim], SIGKILL);
		if (waitpid(pids[victim], &status, 0) == pids[victim] && !(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)) {
			if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
				tap_diag("client %u failed before it was killed: status %d", victim,
					 WIFEXITED(status) ? WEXITSTATUS(status) : -1);
				failures++;
			}
		}
		kills++;
		pids[victim] = spawn(victim, deadline);
		spawned++;
	}
	for (int i = 0; i < n_clients; i++) {
		if (waitpid(pids[i], &status, 0) != pids[i] || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			tap_diag("client %d: status %d", i, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
			failures++;
		}
	}
	for (int i = 0; i < MAX_CLIENTS; i++)
		cycles += cycles_done[i];
	CHECK(baseline_restored(before));
	rss_after = daemon_rss_kib();
	tap_diag("%d clients for %d s%s: %" PRIu64 " cycles (allocate, share, write%s, read, release), %u SIGKILLs, "
		 "%u clients started, %u failures", n_clients, seconds, fences ? " with sw_sync fences" : "", cycles,
		 fences ? " + pending fence" : "", kills, spawned, failures);
	tap_diag("daemon: %d fds and %d buffers before and after; RSS %ld KiB before, %ld KiB in full swing, %ld KiB after",
		 before.fds, before.buffers, rss_before, rss_warm, rss_after);
	CHECK(failures == 0);
	CHECK(cycles >= (uint64_t)n_clients);
	/*
	 * No growth with the number of cycles: after is no more than in full
	 * swing (plus 512 KiB of slack for malloc). Under valgrind and ASan the
	 * daemon's freed memory sits in a quarantine, so RSS says nothing
	 * there; their leak checkers judge it instead.
	 */
#if defined(__SANITIZE_ADDRESS__)
	tap_diag("RSS not compared: the daemon is built with ASan (LSan checks its leaks at exit)");
#else
	if (getenv("DMABROKER_VALGRIND"))
		tap_diag("RSS not compared: the daemon runs under valgrind (memcheck checks its leaks at exit)");
	else
		CHECK(rss_after <= (rss_warm > rss_before ? rss_warm : rss_before) + 512);
#endif
	munmap(cycles_done, sizeof(uint64_t) * MAX_CLIENTS);
	return true;
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--clients") == 0 && i + 1 < argc)
			n_clients = atoi(argv[++i]);
		else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
			seconds = atoi(argv[++i]);
		else if (strcmp(argv[i], "--fences") == 0)
			fences = true;
		else if (strcmp(argv[i], "--kill-every") == 0 && i + 1 < argc)
			kill_every_ms = atoi(argv[++i]);
		else if (strcmp(argv[i], "--backend") == 0 && i + 1 < argc)
			backend = argv[++i];
		else {
			fprintf(stderr, "usage: soak-test [--clients N] [--seconds S] [--kill-every MS] [--fences] [--backend NAME]\n");
			return 2;
		}
	}
	if (n_clients < 1 || n_clients > MAX_CLIENTS || seconds < 2 || kill_every_ms < 1) {
		fprintf(stderr, "soak-test: 1 to %d clients, at least 2 seconds\n", MAX_CLIENTS);
		return 2;
	}
	if (getenv("DMABROKER_SOAK_SECONDS"))
		seconds = atoi(getenv("DMABROKER_SOAK_SECONDS"));
	if (!daemon_pid_from_env("soak-test"))
		return 2;
	tap_plan(1);
	tap_step("clients allocating, sharing, accessing and releasing while random ones are SIGKILLed: "
		 "the daemon's fds, buffers and memory come back", step_soak);
	return tap_done();
}

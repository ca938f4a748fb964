/* SPDX-License-Identifier: MIT */
/*
 * churn-test: the daemon's memory after a long adversarial run, against a
 * real dmabrokerd (under tests/common/with-daemon.py). Output is TAP.
 *
 * usage: churn-test [--calls N] [--clients N]
 *
 * Clients make N calls in all: allocations held by the hundred, tokens
 * made and redeemed, tokens that do not exist, releases of buffers never
 * held, tokens of half a MiB; then they leave. The daemon's RSS is read before, at the
 * peak and two seconds after the last client left. A leak grows with the
 * calls; allocator high-water stays after the clients left. The figures
 * are printed; the check is that RSS comes back near where it started
 * (and that every buffer and fd is gone), not a speed.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <drm_fourcc.h>

#include "dmabroker.h"
#include "tap.h"
#include "broker-util.h"

TAP_DEFINE;

static long calls = 100000;
static int n_clients = 4;

enum { HELD = 256 };

/* One client's share of the calls; the peak RSS seen in *peak. */
static bool churn(struct dmabroker *b, long n, long *peak, long *made)
{
	struct dmabroker_alloc_desc d = {
		.version = DMABROKER_ALLOC_DESC_VERSION, .width = 64, .height = 64,
		.fourcc = DRM_FORMAT_XRGB8888, .usage = DMABROKER_USAGE_CPU_READ_FLAG | DMABROKER_USAGE_CPU_WRITE_FLAG,
	};
	struct dmabroker_buffer *held[HELD] = { NULL };
	char bad[64];
	long k = 0;

	while (k < n) {
		/* Hold a few hundred buffers, with a token each, then let them go. */
		for (int i = 0; i < HELD && k < n; i++, k += 3) {
			struct dmabroker_buffer *other = NULL;
			char *token = NULL;
			CHECKF(dmabroker_allocate(b, &d, &held[i]) == 0, "%s", dmabroker_error_message(b));
			CHECK(dmabroker_buffer_create_token(held[i], 0, 0, &token) == 0);
			CHECK(dmabroker_open_token(b, token, &other) == 0);
			dmabroker_buffer_release(other);
			free(token);
		}
		{
			long rss = daemon_rss_kib();
			if (rss > *peak)
				*peak = rss;
		}
		/* Calls that fail, with strings the daemon puts into its errors. */
		for (int i = 0; i < HELD && k < n; i++, k++) {
			struct dmabroker_buffer *none = NULL;
			snprintf(bad, sizeof(bad), "%032lx-\xe2\x80\xae-%ld", k * 2654435761ul, k);
			CHECK(dmabroker_open_token(b, bad, &none) < 0);
		}
		/* And a few with strings of half a MiB: the daemon reads, copies
		 * and frees messages that size. */
		for (int i = 0; i < 4 && k < n; i++, k++) {
			struct dmabroker_buffer *none = NULL;
			size_t len = (size_t)512 * 1024 + (size_t)(k % 4096) * 64;
			char *big = malloc(len + 1);
			CHECK(big);
			memset(big, 'a' + (int)(k % 26), len);
			big[len] = 0;
			CHECK(dmabroker_open_token(b, big, &none) < 0);
			free(big);
		}
		for (int i = 0; i < HELD; i++) {
			if (held[i])
				dmabroker_buffer_release(held[i]);
			held[i] = NULL;
		}
		*made += HELD;
	}
	return true;
}

static bool step_churn(void)
{
	struct baseline base = baseline_take();
	struct dmabroker *clients[16];
	long before, peak, after = -1, made = 0;

	before = peak = daemon_rss_kib();
	CHECK(before > 0);
	for (int i = 0; i < n_clients; i++)
		CHECK((clients[i] = connect_session()));
	for (int i = 0; i < n_clients; i++)
		CHECK(churn(clients[i], calls / n_clients, &peak, &made));
	for (int i = 0; i < n_clients; i++)
		dmabroker_disconnect(clients[i]);
	CHECK(baseline_restored(base));
	/* The daemon trims its heap a second after a client left. */
	for (int i = 0; i < 30; i++) {
		usleep(100000);
		after = daemon_rss_kib();
	}
	tap_diag("%ld calls by %d clients (%ld buffers allocated, %d held at a time each): daemon RSS %ld KiB before, "
		 "%ld KiB at the peak, %ld KiB 3 s after they left", calls, n_clients, made, HELD, before, peak, after);
	/* Not a leak and not high-water: back within 2 MiB of the start. */
	CHECKF(after <= before + 2048, "RSS stayed %ld KiB above where it started", after - before);
	return true;
}

int main(int argc, char **argv)
{
	char why[PATH_MAX + 160];

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--calls") == 0 && i + 1 < argc)
			calls = atol(argv[++i]);
		else if (strcmp(argv[i], "--clients") == 0 && i + 1 < argc)
			n_clients = atoi(argv[++i]);
		else {
			fprintf(stderr, "usage: churn-test [--calls N] [--clients N]\n");
			return 2;
		}
	}
	if (calls < 1 || n_clients < 1 || n_clients > 16) {
		fprintf(stderr, "churn-test: --calls at least 1, --clients 1 to 16\n");
		return 2;
	}
	if (!daemon_pid_from_env("churn-test"))
		return 2;
	tap_plan(1);
	/* Under a memory checker or an emulator the daemon's RSS is theirs. */
	if (getenv("DMABROKER_VALGRIND") && strcmp(getenv("DMABROKER_VALGRIND"), "1") == 0)
		tap_skip("the daemon's memory comes back after a long run of calls", "the daemon runs under valgrind");
	else if (getenv("ASAN_OPTIONS"))
		tap_skip("the daemon's memory comes back after a long run of calls",
			 "the daemon is built with ASan (shadow memory, quarantine)");
	else if (daemon_emulated(why, sizeof(why)))
		tap_skip("the daemon's memory comes back after a long run of calls", why);
	else
		tap_step("the daemon's memory comes back after a long run of calls", step_churn);
	return tap_done();
}

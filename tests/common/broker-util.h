/* SPDX-License-Identifier: MIT */
/*
 * Helpers for tests that talk to a real dmabrokerd through libdmabroker
 * (under tests/common/with-daemon.py, which sets DMABROKER_PID): the
 * daemon's fd and buffer counts, baselines of them, named-error checks.
 * Include after tap.h, in one file per program.
 */
#pragma once

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <systemd/sd-bus.h>

#include "dmabroker.h"

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

static inline int daemon_buffer_count(void)
{
	sd_bus *bus = NULL;
	uint32_t n = 0;
	int r = sd_bus_open_user(&bus);

	if (r >= 0)
		r = sd_bus_get_property_trivial(bus, "org.dmabroker.Broker1", "/org/dmabroker/Broker1",
						"org.dmabroker.Broker1", "Buffers", NULL, 'u', &n);
	sd_bus_unref(bus);
	return r < 0 ? r : (int)n;
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
		struct baseline now = { daemon_fd_count(), daemon_buffer_count() };
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
		if (daemon_fd_count() == b.fds && daemon_buffer_count() == b.buffers)
			return true;
		usleep(10000);
	}
	{
		int fds = daemon_fd_count(), buffers = daemon_buffer_count();
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

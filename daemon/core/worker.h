/* SPDX-License-Identifier: MIT */
/*
 * Worker threads (worker.c) for the work that may take long and cannot be
 * polled: a kernel allocation of up to max-buffer-size (the kernel zeroes
 * it while the caller waits) and a move's copy. A job runs on a worker and
 * touches only its own fields; its completion runs on the event loop's
 * thread, which alone touches the daemon's state.
 */
#pragma once

#include <stdbool.h>

#include <systemd/sd-event.h>

struct work;

struct work_ops {
	/* On a worker thread: only w's own data, no daemon state. */
	void (*run)(struct work *w);
	/*
	 * On the loop thread, once run() returned; cancelled when the daemon
	 * stops (run() may not have run): then only free what w holds. w is
	 * the callee's again: it frees it.
	 */
	void (*done)(struct work *w, bool cancelled);
};

struct work {
	const struct work_ops *ops;
	struct work *next;              /* in a queue of struct workers */
};

struct workers;

#define WORKERS_DEFAULT 2

/*
 * How many workers: WORKERS_DEFAULT, but one CPU is left for the loop (a
 * thread deep in a kernel allocation is not preempted on every kernel), and
 * at least one.
 */
unsigned workers_for_cpus(void);

/* Starts n threads, completions delivered by an io source on event. */
int workers_new(sd_event *event, unsigned n, struct workers **ret);
/*
 * Queues w. Without workers (ws NULL: unit tests, fuzzers), runs it and
 * completes it at once, before returning.
 */
void workers_submit(struct workers *ws, struct work *w);
/* Stops the threads (waits for running jobs), completes what is left as cancelled. NULL. */
struct workers *workers_free(struct workers *ws);

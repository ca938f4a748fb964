/* SPDX-License-Identifier: MIT */
/*
 * Minimal TAP (Test Anything Protocol) output for the test programs, so that
 * `meson test` (protocol: 'tap') counts and names every step. A failed
 * check prints the file, line, expression and errno, and marks the step
 * "not ok"; tap_done() returns the exit status.
 */
#pragma once

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct tap {
	int planned, run, failed;
	bool step_failed;
};

extern struct tap tap_state;

#define TAP_DEFINE struct tap tap_state

static inline void tap_plan(int n)
{
	tap_state.planned = n;
	printf("1..%d\n", n);
	fflush(stdout);
}

static inline void tap_diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline void tap_diag(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("# ", stdout);
	vprintf(fmt, ap);
	fputc('\n', stdout);
	va_end(ap);
	fflush(stdout);
}

static inline void tap_skip(const char *name, const char *why);

/*
 * Run one step: fn returns true when all its checks held. With TAP_ONLY
 * set (by hand, to run some steps against an old daemon, say), a step
 * whose name does not contain it is reported as skipped, saying so.
 */
static inline void tap_step(const char *name, bool (*fn)(void))
{
	const char *only = getenv("TAP_ONLY");
	bool ok;

	if (only && *only && !strstr(name, only)) {
		tap_skip(name, "not selected by TAP_ONLY");
		return;
	}
	tap_state.step_failed = false;
	ok = fn() && !tap_state.step_failed;
	tap_state.run++;
	if (!ok)
		tap_state.failed++;
	printf("%s %d - %s\n", ok ? "ok" : "not ok", tap_state.run, name);
	fflush(stdout);
}

static inline void tap_skip(const char *name, const char *why)
{
	tap_state.run++;
	printf("ok %d - %s # SKIP %s\n", tap_state.run, name, why);
	fflush(stdout);
}

static inline int tap_done(void)
{
	if (tap_state.run != tap_state.planned) {
		tap_diag("planned %d steps, ran %d", tap_state.planned, tap_state.run);
		return 1;
	}
	return tap_state.failed ? 1 : 0;
}

/* CHECK(expr): on failure, report and return false from the current step. */
#define CHECK(expr) do {							\
	int errno_saved_ = errno;						\
	if (!(expr)) {								\
		tap_diag("%s:%d: check failed: %s (errno %d: %s)",		\
			 __FILE__, __LINE__, #expr, errno_saved_,		\
			 strerror(errno_saved_));				\
		tap_state.step_failed = true;					\
		return false;							\
	}									\
} while (0)

/* CHECKF: like CHECK with a message of its own. */
#define CHECKF(expr, ...) do {							\
	if (!(expr)) {								\
		tap_diag("%s:%d: check failed: %s", __FILE__, __LINE__, #expr);\
		tap_diag(__VA_ARGS__);						\
		tap_state.step_failed = true;					\
		return false;							\
	}									\
} while (0)

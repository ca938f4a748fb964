/* SPDX-License-Identifier: MIT */
/*
 * Messages to the service manager ($NOTIFY_SOCKET: READY=1, FDSTORE=1 with
 * an fd, FDSTOREREMOVE=1, WATCHDOG=1...) that never block the event loop
 * (notify.c).
 */
#pragma once

#include <stdint.h>

#include <systemd/sd-event.h>

struct notify;

/* WATCHDOG=1 goes out every $WATCHDOG_USEC / NOTIFY_WATCHDOG_DIVISOR. */
#define NOTIFY_WATCHDOG_DIVISOR 4

/* How many messages may wait for the service manager before notify_send() refuses more. */
#define NOTIFY_MAX_QUEUED 1024

/*
 * Opens a non-blocking datagram socket to path (a file system path, or
 * "@name" for the abstract namespace), or to $NOTIFY_SOCKET when path is
 * NULL, watched by an io source on event while messages wait. *ret is NULL
 * (and 0 returned) when there is no socket to talk to. <0 on error.
 */
int notify_new(sd_event *event, const char *path, unsigned max_queued, struct notify **ret);
/* Drops what still waits (closing its fds); accepts NULL; returns NULL. */
struct notify *notify_free(struct notify *n);
/*
 * Sends text with fd (duplicated: the caller keeps fd; -1 for none) after
 * everything sent before it, in order, without blocking: what the socket
 * does not take now waits in the queue and goes out from the event loop.
 * 0 when sent or queued; -ENOBUFS when the queue is full (nothing queued);
 * -ENOTCONN when n is NULL (no service manager); other <0 on error.
 */
int notify_send(struct notify *n, const char *text, int fd);
/* How many messages wait. */
unsigned notify_queued(const struct notify *n);
/*
 * At exit, outside the event loop: waits up to timeout_usec for what waits
 * to go out. Returns how many messages are left.
 */
unsigned notify_flush(struct notify *n, uint64_t timeout_usec);
/*
 * When the service manager asks for keep-alive messages ($WATCHDOG_USEC,
 * and $WATCHDOG_PID naming this process if it is set: sd_watchdog_enabled()),
 * sends WATCHDOG=1 from a timer on event every $WATCHDOG_USEC / 4, in
 * order with the other messages, for as long as the loop runs its timers.
 * 1 with *ret_period set when started; 0 when not asked (or n is NULL);
 * -EINVAL for a $WATCHDOG_USEC that is not a number of microseconds (or
 * is below 4); other <0 on error.
 */
int notify_watchdog_start(struct notify *n, sd_event *event, uint64_t *ret_period);

/* SPDX-License-Identifier: MIT */
/*
 * Messages to the service manager without blocking. sd_notify() opens a
 * blocking socket per message: when the service manager does not read its
 * notify socket (busy, or its queue of max_dgram_qlen datagrams full), the
 * sendmsg() waits, and with it the whole daemon. Here one socket, connected
 * (so that poll() tells when the receiver's queue has room again) and
 * non-blocking, carries every message; what it does not take at once waits
 * in a bounded queue, in order, and an io source sends it when the socket
 * is writable. Order matters: the fd store takes an fd it holds already
 * under a new name only after the old name was removed.
 *
 * The watchdog's WATCHDOG=1 goes the same way, from a timer of the event
 * loop: sd_event_set_watchdog() would send it with sd_notify(), which can
 * block, and a loop that no longer runs its timers (wedged in a callback)
 * stops the pings, which is what the service manager's watchdog is for.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "cleanup.h"
#include "log.h"
#include "notify.h"

struct notify_msg {
	struct notify_msg *next;
	int fd;                         /* ours, or -1 */
	size_t len;
	char text[];
};

struct notify {
	int fd;
	sd_event_source *io;            /* on while messages wait */
	struct sockaddr_un addr;
	socklen_t addr_len;
	struct notify_msg *head, *tail;
	unsigned n_queued, max_queued;
	bool full_reported;
	sd_event_source *watchdog;      /* WATCHDOG=1 every watchdog_period */
	uint64_t watchdog_period;
	int watchdog_error;             /* the last error reported, not to repeat it every period */
};

static int set_address(struct notify *n, const char *path)
{
	size_t len = strlen(path);

	if (len == 0 || len >= sizeof(n->addr.sun_path) || (path[0] != '/' && path[0] != '@'))
		return -EINVAL;
	n->addr.sun_family = AF_UNIX;
	memcpy(n->addr.sun_path, path, len);
	if (path[0] == '@')
		n->addr.sun_path[0] = 0; /* abstract: no terminating NUL counted */
	else
		len++;
	n->addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
	return 0;
}

static int on_writable(sd_event_source *s, int fd, uint32_t revents, void *userdata);

int notify_new(sd_event *event, const char *path, unsigned max_queued, struct notify **ret)
{
	struct notify *n;
	int r;

	*ret = NULL;
	if (!path)
		path = getenv("NOTIFY_SOCKET");
	if (!path || !*path)
		return 0;
	n = calloc(1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	n->fd = -1;
	n->max_queued = max_queued ? max_queued : 1;
	r = set_address(n, path);
	if (r < 0)
		goto fail;
	n->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (n->fd < 0 || connect(n->fd, (struct sockaddr *)&n->addr, n->addr_len) < 0) {
		r = -errno;
		goto fail;
	}
	if (event) {
		r = sd_event_add_io(event, &n->io, n->fd, EPOLLOUT, on_writable, n);
		if (r >= 0)
			r = sd_event_source_set_enabled(n->io, SD_EVENT_OFF);
		if (r < 0)
			goto fail;
	}
	*ret = n;
	return 0;
fail:
	notify_free(n);
	return r;
}

static void pop(struct notify *n)
{
	struct notify_msg *m = n->head;

	n->head = m->next;
	if (!n->head)
		n->tail = NULL;
	n->n_queued--;
	safe_close(m->fd);
	free(m);
}

struct notify *notify_free(struct notify *n)
{
	if (!n)
		return NULL;
	while (n->head)
		pop(n);
	n->watchdog = sd_event_source_disable_unref(n->watchdog);
	/* the source goes before its fd */
	n->io = sd_event_source_disable_unref(n->io);
	safe_close(n->fd);
	free(n);
	return NULL;
}

/* One datagram: 0, -EAGAIN when the socket cannot take it now, other <0. */
static int send_one(struct notify *n, const char *text, size_t len, int fd)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} control;
	struct iovec iov = { .iov_base = (void *)text, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (fd >= 0) {
		memset(&control, 0, sizeof(control));
		mh.msg_control = &control;
		mh.msg_controllen = sizeof(control);
		control.h.cmsg_level = SOL_SOCKET;
		control.h.cmsg_type = SCM_RIGHTS;
		control.h.cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(&control.h), &fd, sizeof(int));
	}
	for (int attempt = 0;; attempt++) {
		if (sendmsg(n->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT) >= 0)
			return 0;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN)
			return -EAGAIN;
		/* the service manager bound its socket anew (re-executed): connect again, once */
		if (attempt == 0 && (errno == ECONNREFUSED || errno == ENOTCONN) &&
		    connect(n->fd, (struct sockaddr *)&n->addr, n->addr_len) == 0)
			continue;
		return -errno;
	}
}

static void first_line(const char *text, size_t len, char *out, size_t out_len)
{
	size_t k = strcspn(text, "\n");
	if (k > len)
		k = len;
	if (k >= out_len)
		k = out_len - 1;
	memcpy(out, text, k);
	out[k] = 0;
}

/* Sends what waits, in order, until the socket would block. 0, or <0 from the io source. */
static int drain(struct notify *n)
{
	while (n->head) {
		struct notify_msg *m = n->head;
		int r = send_one(n, m->text, m->len, m->fd);
		if (r == -EAGAIN)
			return n->io ? sd_event_source_set_enabled(n->io, SD_EVENT_ON) : 0;
		if (r < 0) {
			char what[64];
			first_line(m->text, m->len, what, sizeof(what));
			log_warning("notify: the service manager did not take '%s': %s", what, strerror(-r));
		}
		pop(n);
	}
	n->full_reported = false;
	return n->io ? sd_event_source_set_enabled(n->io, SD_EVENT_OFF) : 0;
}

static int on_writable(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	int r = drain(userdata);
	if (r < 0)
		log_warning("notify: cannot watch the notify socket: %s", strerror(-r));
	return 0;
}

int notify_send(struct notify *n, const char *text, int fd)
{
	size_t len = strlen(text);
	struct notify_msg *m;
	int r;

	if (!n)
		return -ENOTCONN;
	if (!n->head) {
		r = send_one(n, text, len, fd);
		if (r != -EAGAIN)
			return r;
	}
	if (n->n_queued >= n->max_queued) {
		if (!n->full_reported)
			log_warning("notify: the service manager reads nothing: %u messages wait, "
				    "refusing more until it does", n->n_queued);
		n->full_reported = true;
		return -ENOBUFS;
	}
	m = malloc(sizeof(*m) + len + 1);
	if (!m)
		return -ENOMEM;
	m->next = NULL;
	m->len = len;
	memcpy(m->text, text, len + 1);
	m->fd = -1;
	if (fd >= 0) {
		m->fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
		if (m->fd < 0) {
			r = -errno;
			free(m);
			return r;
		}
	}
	if (n->tail)
		n->tail->next = m;
	else
		n->head = m;
	n->tail = m;
	n->n_queued++;
	if (n->io)
		sd_event_source_set_enabled(n->io, SD_EVENT_ON);
	return 0;
}

unsigned notify_queued(const struct notify *n)
{
	return n ? n->n_queued : 0;
}

static uint64_t monotonic_usec(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

unsigned notify_flush(struct notify *n, uint64_t timeout_usec)
{
	uint64_t end = monotonic_usec() + timeout_usec;

	if (!n)
		return 0;
	for (;;) {
		struct pollfd p = { .fd = n->fd, .events = POLLOUT };
		uint64_t now;

		drain(n);
		now = monotonic_usec();
		if (!n->head || now >= end)
			break;
		if (poll(&p, 1, (int)((end - now + 999) / 1000)) < 0 && errno != EINTR)
			break;
	}
	if (n->head)
		log_warning("notify: %u messages to the service manager were never sent", n->n_queued);
	return n->n_queued;
}

static int on_watchdog(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct notify *n = userdata;
	uint64_t now;
	int r;

	r = notify_send(n, "WATCHDOG=1", -1);
	/* a full queue was reported by notify_send() */
	if (r < 0 && r != -ENOBUFS && r != n->watchdog_error)
		log_warning("notify: cannot send WATCHDOG=1: %s", strerror(-r));
	n->watchdog_error = r < 0 ? r : 0;
	/* the next one a period after this one: a late loop does not catch up with a burst */
	r = sd_event_now(sd_event_source_get_event(s), CLOCK_MONOTONIC, &now);
	if (r >= 0)
		r = sd_event_source_set_time(s, now + n->watchdog_period - n->watchdog_period / 8);
	if (r >= 0)
		r = sd_event_source_set_enabled(s, SD_EVENT_ON);
	if (r < 0)
		log_error("notify: cannot schedule the next WATCHDOG=1, the service manager will stop us: %s",
			  strerror(-r));
	return 0;
}

int notify_watchdog_start(struct notify *n, sd_event *event, uint64_t *ret_period)
{
	uint64_t timeout = 0, now;
	int r;

	*ret_period = 0;
	r = sd_watchdog_enabled(0, &timeout);
	if (r <= 0)
		return r;
	if (!n)
		return 0;
	n->watchdog_period = timeout / NOTIFY_WATCHDOG_DIVISOR;
	if (n->watchdog_period == 0)
		return -EINVAL;
	n->watchdog = sd_event_source_disable_unref(n->watchdog);
	r = sd_event_now(event, CLOCK_MONOTONIC, &now);
	if (r < 0)
		return r;
	/*
	 * sd-event fires a timer up to its accuracy late (250 ms by default),
	 * to wake up less often: in the last eighth of each period here.
	 */
	r = sd_event_add_time(event, &n->watchdog, CLOCK_MONOTONIC, now + n->watchdog_period - n->watchdog_period / 8,
			      n->watchdog_period / 8, on_watchdog, n);
	/* when due, before the sources that wait with it: a busy loop is not a wedged one */
	if (r >= 0)
		r = sd_event_source_set_priority(n->watchdog, SD_EVENT_PRIORITY_IMPORTANT);
	if (r < 0)
		return r;
	*ret_period = n->watchdog_period;
	return 1;
}

/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of daemon/service/notify.c: messages to a service manager that does
 * not read its notify socket never block; they wait, in order, with their
 * fds, and go out from the event loop once it reads; a full queue refuses
 * more without leaking; the exit flush is bounded; no NOTIFY_SOCKET, and
 * an abstract one; the watchdog's WATCHDOG=1 comes from the loop's timer.
 */
#include <dirent.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "cleanup.h"
#include "notify.h"
#include "tap.h"
#include "fd-util.h"

TAP_DEFINE;

static char dir[64], path[128];

/* A call that blocks never returns: the watchdog turns that into a failure. */
static void on_alarm(int sig)
{
	static const char m[] = "Bail out! a notification blocked the caller\n";
	(void)sig;
	if (write(1, m, sizeof(m) - 1) < 0)
		_exit(2);
	_exit(1);
}

/* The service manager's end, bound at addr (a path, or "@name"), not read until the test says. */
static int make_reader(const char *addr)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t len = strlen(addr);
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	memcpy(sa.sun_path, addr, len);
	if (addr[0] == '@')
		sa.sun_path[0] = 0;
	else
		len++;
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)) < 0)
		return -1;
	return fd;
}

/* One datagram if there is one: 1 with its text and fd (or -1), 0 when none. */
static int read_one(int reader, char *text, size_t size, int *ret_fd)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int) * 4)];
	} control;
	struct iovec iov = { .iov_base = text, .iov_len = size - 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &control,
			     .msg_controllen = sizeof(control) };
	ssize_t n = recvmsg(reader, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);

	if (n < 0)
		return 0;
	text[n] = 0;
	*ret_fd = -1;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
			memcpy(ret_fd, CMSG_DATA(c), sizeof(int));
	return 1;
}

static unsigned queue_len(void)
{
	FILE *f = fopen("/proc/sys/net/unix/max_dgram_qlen", "r");
	unsigned q = 512;
	if (f) {
		if (fscanf(f, "%u", &q) != 1)
			q = 512;
		fclose(f);
	}
	return q;
}

/* Message i: every third without an fd, like READY=1 between FDSTORE=1s. */
static void message(unsigned i, char *text, size_t size)
{
	if (i % 3 == 2)
		snprintf(text, size, "STATUS=%u", i);
	else
		snprintf(text, size, "FDSTORE=1\nFDNAME=m.%u", i);
}

static bool step_never_blocks(void)
{
	unsigned n_msgs = queue_len() + 50, got = 0;
	ino_t *inodes = calloc(n_msgs, sizeof(*inodes));
	int reader = make_reader(path), fds0 = self_fd_count();
	struct notify *n = NULL;
	sd_event *event = NULL;
	bool queued = false;
	char text[128], want[128];

	CHECK(inodes && reader >= 0 && sd_event_new(&event) >= 0);
	CHECK(notify_new(event, path, n_msgs, &n) == 0 && n);
	alarm(60);
	for (unsigned i = 0; i < n_msgs; i++) {
		int fd = -1;
		struct stat st;
		message(i, text, sizeof(text));
		if (i % 3 != 2) {
			fd = memfd_create("m", MFD_CLOEXEC);
			CHECK(fd >= 0 && fstat(fd, &st) == 0);
			inodes[i] = st.st_ino;
		}
		CHECK(notify_send(n, text, fd) == 0);
		queued |= notify_queued(n) > 0;
		safe_close(fd); /* notify keeps its own */
	}
	alarm(0);
	tap_diag("%u messages; %u waited in the queue (the socket took %u)", n_msgs, notify_queued(n),
		 n_msgs - notify_queued(n));
	CHECK(queued); /* the socket would have blocked: sd_notify() would have waited here */
	/* the reader reads now: the event loop sends the rest, in order */
	for (int spins = 0; got < n_msgs && spins < 100000; spins++) {
		int fd;
		while (got < n_msgs && read_one(reader, text, sizeof(text), &fd)) {
			struct stat st;
			message(got, want, sizeof(want));
			CHECK(strcmp(text, want) == 0);
			if (got % 3 != 2)
				CHECK(fd >= 0 && fstat(fd, &st) == 0 && st.st_ino == inodes[got]);
			else
				CHECK(fd < 0);
			safe_close(fd);
			got++;
		}
		if (got < n_msgs)
			CHECK(sd_event_run(event, 10000) >= 0);
	}
	CHECK(got == n_msgs);
	CHECK(notify_queued(n) == 0);
	notify_free(n);
	sd_event_unref(event);
	close(reader);
	unlink(path);
	free(inodes);
	CHECK(self_fd_count() == fds0 - 1); /* the reader was counted */
	return true;
}

static bool step_full(void)
{
	int reader = make_reader(path), fds0 = self_fd_count(), fd = memfd_create("m", MFD_CLOEXEC), r = 0;
	unsigned sent = 0, limit = queue_len() + 100;
	struct notify *n = NULL;
	char text[128];

	CHECK(reader >= 0 && fd >= 0);
	CHECK(notify_new(NULL, path, 4, &n) == 0 && n);
	alarm(60);
	while (sent < limit && (r = notify_send(n, "FDSTORE=1\nFDNAME=full", fd)) == 0)
		sent++;
	alarm(0);
	CHECK(r == -ENOBUFS);
	CHECK(notify_queued(n) == 4);
	tap_diag("refused after %u messages: the socket took %u, 4 wait", sent, sent - 4);
	notify_free(n); /* the 4 waiting fds closed */
	for (int got; read_one(reader, text, sizeof(text), &got);)
		safe_close(got);
	close(fd);
	close(reader);
	unlink(path);
	CHECK(self_fd_count() == fds0 - 1);
	return true;
}

static bool step_flush(void)
{
	int reader = make_reader(path), fd;
	unsigned q = queue_len(), total = q + 5, got = 0;
	struct notify *n = NULL;
	char text[128], want[128];

	CHECK(reader >= 0);
	CHECK(notify_new(NULL, path, 1024, &n) == 0 && n);
	for (unsigned i = 0; i < total; i++) {
		snprintf(text, sizeof(text), "STATUS=%u", i);
		CHECK(notify_send(n, text, -1) == 0);
	}
	CHECK(notify_queued(n) > 0);
	/* nobody reads: the flush gives up after its time and says what is left */
	CHECK(notify_flush(n, 20000) > 0);
	while (read_one(reader, text, sizeof(text), &fd)) {
		snprintf(want, sizeof(want), "STATUS=%u", got++);
		CHECK(strcmp(text, want) == 0);
	}
	/* the rest fits in the socket now */
	CHECK(notify_flush(n, 10 * 1000000u) == 0);
	while (read_one(reader, text, sizeof(text), &fd)) {
		snprintf(want, sizeof(want), "STATUS=%u", got++);
		CHECK(strcmp(text, want) == 0);
	}
	CHECK(got == total);
	notify_free(n);
	close(reader);
	unlink(path);
	return true;
}

static bool step_no_socket(void)
{
	struct notify *n = (struct notify *)1;

	unsetenv("NOTIFY_SOCKET");
	CHECK(notify_new(NULL, NULL, 16, &n) == 0 && n == NULL);
	CHECK(notify_send(NULL, "READY=1", -1) == -ENOTCONN);
	CHECK(notify_queued(NULL) == 0 && notify_flush(NULL, 0) == 0 && notify_free(NULL) == NULL);
	/* a socket nobody listens on, or a bad address: an error, nothing left open */
	CHECK(notify_new(NULL, path, 16, &n) < 0 && n == NULL);
	CHECK(notify_new(NULL, "relative/path", 16, &n) == -EINVAL && n == NULL);
	return true;
}

static bool step_abstract_from_env(void)
{
	char addr[64], text[64];
	int reader, fd;
	struct notify *n = NULL;

	snprintf(addr, sizeof(addr), "@dmabroker-notify-test-%d", (int)getpid());
	reader = make_reader(addr);
	CHECK(reader >= 0);
	setenv("NOTIFY_SOCKET", addr, 1);
	CHECK(notify_new(NULL, NULL, 16, &n) == 0 && n);
	CHECK(notify_send(n, "READY=1", -1) == 0);
	CHECK(read_one(reader, text, sizeof(text), &fd) == 1 && strcmp(text, "READY=1") == 0 && fd < 0);
	notify_free(n);
	close(reader);
	unsetenv("NOTIFY_SOCKET");
	return true;
}

static uint64_t now_usec(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/*
 * How many WATCHDOG=1 came while the loop ran (run) or stood still (!run)
 * for usec, read as they come (a fresh network namespace queues 10
 * datagrams on a socket: net.unix.max_dgram_qlen).
 */
static int watchdog_pings(sd_event *event, int reader, bool run, uint64_t usec)
{
	uint64_t end = now_usec() + usec, now;
	char text[64];
	int fd, got = 0;

	while ((now = now_usec()) < end) {
		if (!run)
			usleep(1000);
		else if (sd_event_run(event, end - now < 2000 ? end - now : 2000) < 0)
			return -1;
		while (read_one(reader, text, sizeof(text), &fd)) {
			safe_close(fd);
			got += strcmp(text, "WATCHDOG=1") == 0;
		}
	}
	return got;
}

static bool step_watchdog(void)
{
	int reader = make_reader(path), got;
	struct notify *n = NULL;
	sd_event *event = NULL;
	uint64_t period = 1;
	char pid[32];

	CHECK(reader >= 0 && sd_event_new(&event) >= 0);
	CHECK(notify_new(event, path, 16, &n) == 0 && n);
	/* not asked: no $WATCHDOG_USEC, another process's $WATCHDOG_PID; no socket */
	unsetenv("WATCHDOG_USEC");
	CHECK(notify_watchdog_start(n, event, &period) == 0 && period == 0);
	setenv("WATCHDOG_USEC", "40000", 1);
	setenv("WATCHDOG_PID", "1", 1);
	CHECK(notify_watchdog_start(n, event, &period) == 0 && period == 0);
	unsetenv("WATCHDOG_PID");
	CHECK(notify_watchdog_start(NULL, event, &period) == 0 && period == 0);
	/* no number, or too short for a quarter */
	setenv("WATCHDOG_USEC", "soon", 1);
	CHECK(notify_watchdog_start(n, event, &period) == -EINVAL);
	setenv("WATCHDOG_USEC", "3", 1);
	CHECK(notify_watchdog_start(n, event, &period) == -EINVAL);
	/* 40 ms, this process's pid: every 10 ms while the loop runs, none while it stands still */
	setenv("WATCHDOG_USEC", "40000", 1);
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	setenv("WATCHDOG_PID", pid, 1);
	CHECK(notify_watchdog_start(n, event, &period) == 1 && period == 10000);
	got = watchdog_pings(event, reader, true, 200000);
	tap_diag("%d WATCHDOG=1 in 200 ms of loop, one every 10 ms", got);
	CHECK(got >= 10 && got <= 24); /* every 8.75 to 10 ms */
	got = watchdog_pings(event, reader, false, 100000);
	CHECK(got == 0);
	got = watchdog_pings(event, reader, true, 100000);
	tap_diag("%d WATCHDOG=1 in 100 ms of loop after 100 ms standing still", got);
	CHECK(got >= 4 && got <= 13); /* one late, then the period again: no burst for the missed ones */
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
	notify_free(n); /* the timer with it */
	sd_event_unref(event);
	close(reader);
	unlink(path);
	return true;
}

int main(void)
{
	signal(SIGALRM, on_alarm);
	snprintf(dir, sizeof(dir), "/tmp/dmabroker-notify.XXXXXX");
	if (!mkdtemp(dir))
		return 1;
	snprintf(path, sizeof(path), "%s/notify", dir);
	tap_plan(6);
	tap_step("a service manager that does not read: nothing blocks, all arrives in order with its fds once it reads",
		 step_never_blocks);
	tap_step("a full queue refuses more (ENOBUFS) and leaks no fd", step_full);
	tap_step("the exit flush is bounded, and sends the rest in order once there is room", step_flush);
	tap_step("no NOTIFY_SOCKET, nobody listening, a bad address", step_no_socket);
	tap_step("an abstract NOTIFY_SOCKET from the environment", step_abstract_from_env);
	tap_step("the watchdog: WATCHDOG=1 every quarter of WATCHDOG_USEC while the loop runs, none while it stands still;"
		 " not asked, bad values", step_watchdog);
	rmdir(dir);
	return tap_done();
}

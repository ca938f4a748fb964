/* SPDX-License-Identifier: MIT */
/*
 * errors-test: the D-Bus error paths of daemon/bus/ that nothing else
 * reaches, each with its named error, and each leaving the daemon's fds
 * and buffers as they were (tests/common/broker-util.h baselines).
 *
 * usage: errors-test [--dmabuf] (under tests/common/with-daemon.py)
 *
 * Where libdmabroker refuses a call itself (more than 4 planes, two
 * fences, stream methods on the bus), the call is made by hand with
 * sd-bus; where sd-bus cannot send it (a Reclaim of 257 buffers needs 257
 * fds, more than one sendmsg carries), the message is written on the wire
 * by hand. With --dmabuf (the VM: /dev/dma_heap/system) also the Import
 * checks that come after "is it a dma-buf". Output is TAP.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <drm_fourcc.h>
#include <linux/dma-heap.h>
#include <systemd/sd-bus.h>

#include "fd-util.h"
#include "tap.h"
#include "broker-util.h"

TAP_DEFINE;


/* ---- helpers ---- */

static struct dmabroker_buffer *alloc_buf(struct dmabroker *b, uint32_t w, uint32_t h)
{
	struct dmabroker_alloc_desc d = {
		.version = DMABROKER_ALLOC_DESC_VERSION, .width = w, .height = h, .fourcc = DRM_FORMAT_XRGB8888,
		.usage = CPU_RW,
	};
	struct dmabroker_buffer *buf = NULL;

	if (dmabroker_allocate(b, &d, &buf) < 0)
		tap_diag("allocate: %s", dmabroker_error_message(b));
	return buf;
}

static sd_bus *open_bus(void)
{
	sd_bus *bus = NULL;
	int r = sd_bus_open_user(&bus);

	if (r < 0)
		tap_diag("sd_bus_open_user: %s", strerror(-r));
	return bus;
}

/* A new call of method on bus (the daemon's name on the bus, none on a direct connection). */
static sd_bus_message *new_call(sd_bus *bus, bool direct, const char *method)
{
	sd_bus_message *m = NULL;

	if (sd_bus_message_new_method_call(bus, &m, direct ? NULL : BUS_NAME, PATH, IFACE, method) < 0)
		return NULL;
	return m;
}

/* Sends m (taken) and checks that the answer is the error want, its message containing text. */
static bool call_refused(sd_bus *bus, sd_bus_message *m, const char *want, const char *text)
{
	sd_bus_error e = SD_BUS_ERROR_NULL;
	sd_bus_message *reply = NULL;
	int r;

	if (!m) {
		tap_diag("cannot build the call");
		return false;
	}
	r = sd_bus_call(bus, m, 10 * 1000000, &e, &reply);
	sd_bus_message_unref(reply);
	sd_bus_message_unref(m);
	if (r >= 0 || !sd_bus_error_has_name(&e, want) || !e.message || (text && !strstr(e.message, text))) {
		tap_diag("got %d (%s: %s); want %s saying '%s'", r, e.name ? e.name : "-", e.message ? e.message : "-",
			 want, text ? text : "");
		sd_bus_error_free(&e);
		return false;
	}
	tap_diag("%s: %s", e.name, e.message);
	sd_bus_error_free(&e);
	return true;
}

/* ---- Allocate ---- */

static bool step_allocate_modifiers(void)
{
	struct baseline base = baseline_take();
	struct dmabroker *b = connect_session();
	uint64_t mods[65];
	struct dmabroker_alloc_desc d = {
		.version = DMABROKER_ALLOC_DESC_VERSION, .width = 64, .height = 64, .fourcc = DRM_FORMAT_XRGB8888,
		.usage = CPU_RW, .modifiers = mods,
	};
	struct dmabroker_buffer *buf = NULL;

	CHECK(b);
	for (unsigned i = 0; i < 65; i++)
		mods[i] = DRM_FORMAT_MOD_LINEAR;
	d.n_modifiers = 65;
	CHECK(expect_error(b, dmabroker_allocate(b, &d, &buf), EINVAL, ERR("InvalidArgument")));
	CHECK(strstr(dmabroker_error_message(b), "65 modifiers; at most 64"));
	CHECK(!buf);
	/* the positive control: 64 are fine */
	d.n_modifiers = 64;
	CHECK(dmabroker_allocate(b, &d, &buf) == 0 && buf);
	dmabroker_buffer_release(buf);
	dmabroker_disconnect(b);
	CHECK(baseline_restored(base));
	return true;
}

/* ---- Import ---- */

static sd_bus_message *import_call(sd_bus *bus, int fd, uint32_t w, uint32_t h, uint32_t fourcc, uint64_t mod,
				   unsigned n_planes, uint32_t usage)
{
	sd_bus_message *m = new_call(bus, false, "Import");
	int r = m ? 0 : -ENOMEM;

	if (r >= 0)
		r = sd_bus_message_append(m, "huuut", fd, w, h, fourcc, mod);
	if (r >= 0)
		r = sd_bus_message_open_container(m, 'a', "(tu)");
	for (unsigned i = 0; r >= 0 && i < n_planes; i++)
		r = sd_bus_message_append(m, "(tu)", (uint64_t)0, w * 4);
	if (r >= 0)
		r = sd_bus_message_close_container(m);
	if (r >= 0)
		r = sd_bus_message_append(m, "u", usage);
	if (r < 0)
		m = sd_bus_message_unref(m);
	return m;
}

static bool step_import_host(void)
{
	struct baseline base = baseline_take();
	sd_bus *bus = open_bus();
	int fd = memfd_of_size(1 << 20);
	struct dmabroker *b = connect_session();
	struct dmabroker_buffer *buf = NULL;
	struct dmabroker_plane planes[5] = { { 0, 256 }, { 0, 256 }, { 0, 256 }, { 0, 256 }, { 0, 256 } };

	CHECK(bus && fd >= 0 && b);
	/* the library refuses five planes itself; four it sends, and the daemon takes three at most (as five) */
	CHECK(dmabroker_import(b, fd, 64, 64, DRM_FORMAT_XRGB8888, DRM_FORMAT_MOD_LINEAR, planes, 5, CPU_RW, &buf) ==
	      -EINVAL);
	CHECK(expect_error(b, dmabroker_import(b, fd, 64, 64, DRM_FORMAT_XRGB8888, DRM_FORMAT_MOD_LINEAR, planes, 4,
					       CPU_RW, &buf), EINVAL, ERR("InvalidArgument")));
	CHECK(strstr(dmabroker_error_message(b), "more than 3 planes"));
	CHECK(call_refused(bus, import_call(bus, fd, 64, 64, DRM_FORMAT_XRGB8888, DRM_FORMAT_MOD_LINEAR, 5, CPU_RW),
			   ERR("InvalidArgument"), "more than 3 planes"));
	/* a memfd is no dma-buf, whatever else is right or wrong */
	CHECK(call_refused(bus, import_call(bus, fd, 64, 64, DRM_FORMAT_XRGB8888, DRM_FORMAT_MOD_LINEAR, 1, CPU_RW),
			   ERR("NotADmaBuf"), "a regular file"));
	CHECK(call_refused(bus, import_call(bus, fd, 0, 64, 0x20202020, 7, 3, 1u << 30), ERR("NotADmaBuf"), NULL));
	/* every other kind of fd named as what it is */
	{
		int sv[2] = { -1, -1 }, null = open("/dev/null", O_RDWR | O_CLOEXEC);
		int dir = open("/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0 && null >= 0 && dir >= 0);
		CHECK(call_refused(bus, import_call(bus, sv[0], 64, 64, DRM_FORMAT_XRGB8888, DRM_FORMAT_MOD_LINEAR, 1,
						    CPU_RW), ERR("NotADmaBuf"), "a socket"));
		CHECK(call_refused(bus, import_call(bus, null, 64, 64, DRM_FORMAT_XRGB8888, DRM_FORMAT_MOD_LINEAR, 1,
						    CPU_RW), ERR("NotADmaBuf"), "a character device"));
		CHECK(call_refused(bus, import_call(bus, dir, 64, 64, DRM_FORMAT_XRGB8888, DRM_FORMAT_MOD_LINEAR, 1,
						    CPU_RW), ERR("NotADmaBuf"), "a directory"));
		close(sv[0]);
		close(sv[1]);
		close(null);
		close(dir);
	}
	close(fd);
	sd_bus_flush_close_unref(bus);
	dmabroker_disconnect(b);
	CHECK(baseline_restored(base));
	return true;
}

/* A dma-buf of size bytes from the system heap, or -1. */
static int heap_dmabuf(size_t size)
{
	struct dma_heap_allocation_data a = { .len = size, .fd_flags = O_RDWR | O_CLOEXEC };
	int heap = open("/dev/dma_heap/system", O_RDONLY | O_CLOEXEC), r;

	if (heap < 0) {
		tap_diag("/dev/dma_heap/system: %s", strerror(errno));
		return -1;
	}
	r = ioctl(heap, DMA_HEAP_IOCTL_ALLOC, &a);
	close(heap);
	if (r < 0) {
		tap_diag("DMA_HEAP_IOCTL_ALLOC: %s", strerror(errno));
		return -1;
	}
	return (int)a.fd;
}

static bool step_import_dmabuf(void)
{
	struct baseline base = baseline_take();
	struct dmabroker *b = connect_session();
	struct dmabroker_buffer *buf = NULL;
	const struct dmabroker_plane one = { 0, 256 }, two[2] = { { 0, 256 }, { 64 * 256, 256 } };
	int fd = heap_dmabuf(1 << 20), before = daemon_property_u32("Buffers");

	CHECK(b && fd >= 0);
	CHECK(expect_error(b, dmabroker_import(b, fd, 0, 64, DRM_FORMAT_XRGB8888, DRM_FORMAT_MOD_LINEAR, &one, 1,
					       CPU_RW, &buf), EDOM, ERR("InvalidDimensions")));
	CHECK(expect_error(b, dmabroker_import(b, fd, 64, 64, 0x20202020, DRM_FORMAT_MOD_LINEAR, &one, 1, CPU_RW, &buf),
			   EPROTONOSUPPORT, ERR("UnsupportedFormat")));
	CHECK(expect_error(b, dmabroker_import(b, fd, 64, 64, DRM_FORMAT_XRGB8888, DRM_FORMAT_MOD_LINEAR, &one, 1,
					       1u << 30, &buf), EINVAL, ERR("InvalidArgument")));
	CHECK(strstr(dmabroker_error_message(b), "unknown usage bits"));
	CHECK(expect_error(b, dmabroker_import(b, fd, 64, 64, DRM_FORMAT_XRGB8888, I915_FORMAT_MOD_X_TILED, &one, 1,
					       CPU_RW, &buf), EOPNOTSUPP, ERR("UnsupportedModifier")));
	CHECK(expect_error(b, dmabroker_import(b, fd, 64, 64, DRM_FORMAT_XRGB8888, DRM_FORMAT_MOD_LINEAR, two, 2,
					       CPU_RW, &buf), EINVAL, ERR("InvalidArgument")));
	CHECK(strstr(dmabroker_error_message(b), "has 1 planes; 2 were described"));
	CHECK(expect_error(b, dmabroker_import(b, fd, 64, 64, DRM_FORMAT_NV12, DRM_FORMAT_MOD_LINEAR, &one, 1, CPU_RW,
					       &buf), EINVAL, ERR("InvalidArgument")));
	CHECK(strstr(dmabroker_error_message(b), "has 2 planes; 1 were described"));
	CHECK(!buf && daemon_property_u32("Buffers") == before);
	/* the positive control: the same fd, described right */
	CHECK(dmabroker_import(b, fd, 64, 64, DRM_FORMAT_XRGB8888, DRM_FORMAT_MOD_LINEAR, &one, 1, CPU_RW, &buf) == 0);
	CHECK(daemon_property_u32("Buffers") == before + 1);
	dmabroker_buffer_release(buf);
	close(fd);
	dmabroker_disconnect(b);
	CHECK(baseline_restored(base));
	return true;
}

/* ---- names, fences, limits of a call ---- */

static bool step_long_names(void)
{
	struct baseline base = baseline_take();
	struct dmabroker *b = connect_session();
	struct dmabroker_buffer *buf;
	sd_bus *bus = open_bus(), *direct;
	char name[201];
	uint32_t aid;
	sd_bus_message *m;

	CHECK(b && bus);
	buf = alloc_buf(b, 64, 64);
	CHECK(buf);
	memset(name, 'd', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	CHECK(expect_error(b, dmabroker_buffer_attach(buf, DMABROKER_USAGE_GPU_FLAG, name, 0, &aid), EINVAL,
			   ERR("InvalidArgument")));
	CHECK(strstr(dmabroker_error_message(b), "device name longer than"));
	/* a stream name of 200 characters, on a direct connection (where streams are) */
	direct = raw_direct(bus);
	CHECK(direct);
	m = new_call(direct, true, "CreateStream");
	CHECK(m && sd_bus_message_append(m, "s", name) >= 0 &&
	      sd_bus_message_append(m, "a{sv}", 1, "formats", "au", 1, DRM_FORMAT_XRGB8888) >= 0);
	CHECK(call_refused(direct, m, ERR("InvalidArgument"), "stream name longer than 63 bytes"));
	sd_bus_flush_close_unref(direct);
	sd_bus_flush_close_unref(bus);
	dmabroker_buffer_release(buf);
	dmabroker_disconnect(b);
	CHECK(baseline_restored(base));
	return true;
}

/* The stream option 'native' of the wrong type, in CreateStream and in JoinStream: refused, naming it; nothing kept. */
static bool step_native_type(void)
{
	struct baseline base = baseline_take();
	sd_bus *bus = open_bus(), *direct;
	sd_bus_message *m;

	CHECK(bus);
	direct = raw_direct(bus);
	CHECK(direct);
	m = new_call(direct, true, "CreateStream");
	CHECK(m && sd_bus_message_append(m, "s", "typed") >= 0 &&
	      sd_bus_message_append(m, "a{sv}", 2, "formats", "au", 1, DRM_FORMAT_XRGB8888, "native", "s", "yes") >= 0);
	CHECK(call_refused(direct, m, ERR("InvalidArgument"), "option 'native' must be a boolean (b)"));
	m = new_call(direct, true, "JoinStream");
	CHECK(m && sd_bus_message_append(m, "s", "typed") >= 0 &&
	      sd_bus_message_append(m, "a{sv}", 1, "native", "u", (uint32_t)1) >= 0);
	CHECK(call_refused(direct, m, ERR("InvalidArgument"), "option 'native' must be a boolean (b)"));
	sd_bus_flush_close_unref(direct);
	sd_bus_flush_close_unref(bus);
	CHECK(baseline_restored(base));
	return true;
}

static bool step_two_fences(void)
{
	struct baseline base = baseline_take();
	sd_bus *bus = open_bus();
	int f1 = memfd_of_size(16), f2 = memfd_of_size(16);
	sd_bus_message *m;

	CHECK(bus && f1 >= 0 && f2 >= 0);
	m = new_call(bus, false, "EndAccess");
	CHECK(m && sd_bus_message_append(m, "tah", (uint64_t)1, 2, f1, f2) >= 0);
	CHECK(call_refused(bus, m, ERR("InvalidArgument"), "at most one fence"));
	close(f1);
	close(f2);
	sd_bus_flush_close_unref(bus);
	CHECK(baseline_restored(base));
	return true;
}

static bool step_multi_over_limit(void)
{
	struct baseline base = baseline_take();
	struct dmabroker *b = connect_session();
	struct dmabroker_buffer *buf, *bufs[17];
	uint32_t modes[17];
	uint64_t grants[17], g;
	int fence = -1;

	CHECK(b);
	buf = alloc_buf(b, 64, 64);
	CHECK(buf);
	for (unsigned i = 0; i < 17; i++) {
		bufs[i] = buf;
		modes[i] = DMABROKER_ACCESS_READ;
	}
	CHECK(expect_error(b, dmabroker_begin_access_multi(b, 17, bufs, modes, 0, grants, &fence), EINVAL,
			   ERR("InvalidArgument")));
	CHECK(strstr(dmabroker_error_message(b), "more than 16 buffers at once"));
	/* a buffer of the set this connection does not hold, and one that does not exist: refused, naming it */
	{
		sd_bus *bus = open_bus();
		sd_bus_message *m = bus ? new_call(bus, false, "BeginAccessMulti") : NULL;
		if (m && sd_bus_message_append(m, "a(tu)u", 1, dmabroker_buffer_get_id(buf),
					       (uint32_t)DMABROKER_ACCESS_READ, (uint32_t)0) < 0)
			m = sd_bus_message_unref(m);
		CHECK(bus && call_refused(bus, m, ERR("NotPermitted"), "is not held by this client"));
		m = new_call(bus, false, "BeginAccessMulti");
		if (m && sd_bus_message_append(m, "a(tu)u", 1, (uint64_t)999999, (uint32_t)DMABROKER_ACCESS_READ,
					       (uint32_t)0) < 0)
			m = sd_bus_message_unref(m);
		CHECK(call_refused(bus, m, ERR("UnknownBuffer"), "no buffer 999999"));
		sd_bus_flush_close_unref(bus);
	}
	/* no grant was left behind: a write is granted at once */
	CHECK(dmabroker_buffer_begin_access(buf, DMABROKER_ACCESS_WRITE, DMABROKER_ACCESS_NONBLOCK, &g, &fence) == 0);
	CHECK(fence < 0 && dmabroker_end_access(b, g, -1) == 0);
	dmabroker_buffer_release(buf);
	dmabroker_disconnect(b);
	CHECK(baseline_restored(base));
	return true;
}

/*
 * The D-Bus wire, by hand: a Reclaim of 257 (id, fd) pairs that all name
 * the one fd the message carries (sd-bus would send 257 fds, more than
 * the kernel passes in one sendmsg: SCM_MAX_FD is 253).
 */
struct wire {
	uint8_t d[8192];
	size_t n;
};

static void w_pad(struct wire *w, size_t a)
{
	while (w->n % a)
		w->d[w->n++] = 0;
}

static void w_u32(struct wire *w, uint32_t v)
{
	w_pad(w, 4);
	memcpy(w->d + w->n, &v, 4);
	w->n += 4;
}

static void w_u64(struct wire *w, uint64_t v)
{
	w_pad(w, 8);
	memcpy(w->d + w->n, &v, 8);
	w->n += 8;
}

/* A header field (code, one-letter signature, and a string value or a u32). */
static void w_field(struct wire *w, uint8_t code, char type, const char *s, uint32_t u)
{
	w_pad(w, 8);
	w->d[w->n++] = code;
	w->d[w->n++] = 1;
	w->d[w->n++] = (uint8_t)type;
	w->d[w->n++] = 0;
	if (type == 'u') {
		w_u32(w, u);
	} else if (type == 'g') {
		w->d[w->n++] = (uint8_t)strlen(s);
		memcpy(w->d + w->n, s, strlen(s) + 1);
		w->n += strlen(s) + 1;
	} else {
		w_u32(w, (uint32_t)strlen(s));
		memcpy(w->d + w->n, s, strlen(s) + 1);
		w->n += strlen(s) + 1;
	}
}

/* Reads from fd until text appears (true) or 10 s pass. */
static bool read_until(int fd, const char *text, char *got, size_t len)
{
	size_t n = 0;

	while (n + 1 < len) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t k;
		if (poll(&p, 1, 10000) != 1)
			break;
		k = read(fd, got + n, len - 1 - n);
		if (k <= 0)
			break;
		n += (size_t)k;
		got[n] = '\0';
		if (memmem(got, n, text, strlen(text)))
			return true;
	}
	got[n] = '\0';
	return false;
}

static bool step_reclaim_over_limit(void)
{
	struct baseline base = baseline_take();
	sd_bus *bus = open_bus();
	struct wire w = { .n = 0 };
	char got[4096];
	size_t fields_at, fields_end, body_at, array_at;
	uint32_t len;
	int sock = -1, fd = memfd_of_size(16);
	const char *hello = "AUTH ANONYMOUS\r\nNEGOTIATE_UNIX_FD\r\nBEGIN\r\n";

	CHECK(bus && fd >= 0);
	CHECK((sock = call_for_fd(bus, "OpenDirect")) >= 0); /* the socket itself, to write on by hand */
	/* the direct connection's authentication: anonymous, with fds */
	CHECK(write(sock, "", 1) == 1 && write(sock, hello, strlen(hello)) == (ssize_t)strlen(hello));
	CHECK(read_until(sock, "AGREE_UNIX_FD\r\n", got, sizeof(got)));
	/* header: little-endian method call, version 1; body length filled in below */
	w.d[0] = 'l';
	w.d[1] = 1;
	w.d[2] = 0;
	w.d[3] = 1;
	w.n = 4;
	w_u32(&w, 0);
	w_u32(&w, 1); /* serial */
	w_u32(&w, 0); /* the fields' length, below */
	fields_at = w.n;
	w_field(&w, 1, 'o', PATH, 0);
	w_field(&w, 2, 's', IFACE, 0);
	w_field(&w, 3, 's', "Reclaim", 0);
	w_field(&w, 8, 'g', "a(th)", 0);
	w_field(&w, 9, 'u', NULL, 1);
	fields_end = w.n;
	len = (uint32_t)(fields_end - fields_at);
	memcpy(w.d + 12, &len, 4);
	w_pad(&w, 8);
	body_at = w.n;
	w_u32(&w, 0); /* the array's length, below */
	w_pad(&w, 8);
	array_at = w.n;
	for (unsigned i = 0; i < 257; i++) {
		w_u64(&w, 1000 + i);
		w_u32(&w, 0); /* fd index 0, every time */
	}
	len = (uint32_t)(w.n - array_at);
	memcpy(w.d + body_at, &len, 4);
	len = (uint32_t)(w.n - body_at);
	memcpy(w.d + 4, &len, 4);
	CHECK(send_fds(sock, w.d, w.n, &fd, 1, MSG_NOSIGNAL) == (ssize_t)w.n);
	CHECK(read_until(sock, "more than 256 buffers at once", got, sizeof(got)));
	CHECK(memmem(got, sizeof(got), ERR("InvalidArgument"), strlen(ERR("InvalidArgument"))));
	tap_diag("Reclaim of 257 by hand: InvalidArgument: more than 256 buffers at once");
	close(sock);
	close(fd);
	sd_bus_flush_close_unref(bus);
	CHECK(baseline_restored(base));
	return true;
}

/* ---- direct connections and streams ---- */

static bool step_direct_only(void)
{
	struct baseline base = baseline_take();
	sd_bus *bus = open_bus(), *direct;
	sd_bus_message *m;

	CHECK(bus);
	direct = raw_direct(bus);
	CHECK(direct);
	CHECK(call_refused(direct, new_call(direct, true, "OpenDirect"), ERR("NotPermitted"),
			   "a direct connection already"));
	/* the stream methods, on the bus: each refused, naming OpenDirect */
	m = new_call(bus, false, "CreateStream");
	CHECK(m && sd_bus_message_append(m, "sa{sv}", "errors-test", 1, "formats", "au", 1, DRM_FORMAT_XRGB8888) >= 0);
	CHECK(call_refused(bus, m, ERR("NotPermitted"), "call OpenDirect"));
	m = new_call(bus, false, "JoinStream");
	CHECK(m && sd_bus_message_append(m, "sa{sv}", "errors-test", 0) >= 0);
	CHECK(call_refused(bus, m, ERR("NotPermitted"), "call OpenDirect"));
	m = new_call(bus, false, "StreamBuffers");
	CHECK(m && sd_bus_message_append(m, "t", (uint64_t)1) >= 0);
	CHECK(call_refused(bus, m, ERR("NotPermitted"), "call OpenDirect"));
	m = new_call(bus, false, "QueueFrame");
	CHECK(m && sd_bus_message_append(m, "tutta(iiii)ah", (uint64_t)1, 0, (uint64_t)0, (uint64_t)0, 0, 0) >= 0);
	CHECK(call_refused(bus, m, ERR("NotPermitted"), "call OpenDirect"));
	m = new_call(bus, false, "ReleaseFrame");
	CHECK(m && sd_bus_message_append(m, "tuah", (uint64_t)1, 0, 0) >= 0);
	CHECK(call_refused(bus, m, ERR("NotPermitted"), "call OpenDirect"));
	sd_bus_flush_close_unref(direct);
	sd_bus_flush_close_unref(bus);
	CHECK(baseline_restored(base));
	return true;
}

struct stream_error {
	uint64_t stream;
	char method[32], name[96], message[256];
	bool seen;
};

static int on_stream_error(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
	struct stream_error *se = userdata;
	const char *method, *name, *message;

	if (sd_bus_message_read(m, "tsss", &se->stream, &method, &name, &message) < 0)
		return 0;
	snprintf(se->method, sizeof(se->method), "%s", method);
	snprintf(se->name, sizeof(se->name), "%s", name);
	snprintf(se->message, sizeof(se->message), "%s", message);
	se->seen = true;
	return 0;
}

/* Runs direct until a StreamError arrives (10 s at most). */
static bool wait_stream_error(sd_bus *direct, struct stream_error *se)
{
	for (int i = 0; i < 100 && !se->seen; i++) {
		int r = sd_bus_process(direct, NULL);
		if (r < 0)
			return false;
		if (r == 0)
			sd_bus_wait(direct, 100000);
	}
	return se->seen;
}

static bool oneway(sd_bus *direct, sd_bus_message *m)
{
	int r = m ? sd_bus_message_set_expect_reply(m, 0) : -ENOMEM;

	if (r >= 0)
		r = sd_bus_send(direct, m, NULL);
	sd_bus_message_unref(m);
	return r >= 0;
}

static bool step_stream_error(void)
{
	struct baseline base = baseline_take();
	struct stream_error se = { 0 };
	sd_bus *bus = open_bus(), *direct;
	sd_bus_message *m;
	int f1 = memfd_of_size(16), f2 = memfd_of_size(16);

	CHECK(bus && f1 >= 0 && f2 >= 0);
	direct = raw_direct(bus);
	CHECK(direct);
	CHECK(sd_bus_match_signal(direct, NULL, NULL, PATH, IFACE, "StreamError", on_stream_error, &se) >= 0);
	/* one-way QueueFrame for a stream that is not there: the answer is a StreamError */
	m = new_call(direct, true, "QueueFrame");
	CHECK(m && sd_bus_message_append(m, "tutta(iiii)ah", (uint64_t)4242, 0, (uint64_t)1, (uint64_t)0, 0, 0) >= 0);
	CHECK(oneway(direct, m));
	CHECK(wait_stream_error(direct, &se));
	tap_diag("StreamError: %llu %s %s: %s", (unsigned long long)se.stream, se.method, se.name, se.message);
	CHECK(se.stream == 4242 && strcmp(se.method, "QueueFrame") == 0 && strcmp(se.name, ERR("UnknownStream")) == 0);
	/* one-way ReleaseFrame with two fences: refused the same way, not lost */
	se = (struct stream_error){ 0 };
	m = new_call(direct, true, "ReleaseFrame");
	CHECK(m && sd_bus_message_append(m, "tuah", (uint64_t)4343, 0, 2, f1, f2) >= 0);
	CHECK(oneway(direct, m));
	CHECK(wait_stream_error(direct, &se));
	tap_diag("StreamError: %llu %s %s: %s", (unsigned long long)se.stream, se.method, se.name, se.message);
	CHECK(se.stream == 4343 && strcmp(se.method, "ReleaseFrame") == 0 &&
	      strcmp(se.name, ERR("InvalidArgument")) == 0 && strstr(se.message, "at most one fence"));
	close(f1);
	close(f2);
	sd_bus_flush_close_unref(direct);
	sd_bus_flush_close_unref(bus);
	CHECK(baseline_restored(base));
	return true;
}

int main(int argc, char **argv)
{
	bool dmabuf = argc > 1 && strcmp(argv[1], "--dmabuf") == 0;

	if ((argc > 1 && !dmabuf) || argc > 2) {
		fprintf(stderr, "usage: errors-test [--dmabuf]\n");
		return 2;
	}
	if (!daemon_pid_from_env("errors-test"))
		return 2;
	tap_plan(dmabuf ? 10 : 9);
	tap_step("Allocate with 65 modifiers: InvalidArgument (64: allocated)", step_allocate_modifiers);
	tap_step("Import of 4 or 5 planes: InvalidArgument; of a memfd, a socket, a character device, a directory: "
		 "NotADmaBuf naming what it is, before its other faults",
		 step_import_host);
	if (dmabuf)
		tap_step("Import of a dma-buf: bad dimensions, format, usage, modifier and plane counts, each named "
			 "(described right: imported)", step_import_dmabuf);
	tap_step("a device name and a stream name too long: InvalidArgument", step_long_names);
	tap_step("the stream option 'native' not a boolean, in CreateStream and JoinStream: InvalidArgument naming it",
		 step_native_type);
	tap_step("EndAccess with two fences: InvalidArgument", step_two_fences);
	tap_step("BeginAccessMulti of 17: InvalidArgument; with a buffer not held or unknown: refused by name; no grant left behind",
		 step_multi_over_limit);
	tap_step("Reclaim of 257 (written on the wire by hand): InvalidArgument", step_reclaim_over_limit);
	tap_step("OpenDirect on a direct connection, and the stream methods on the bus: NotPermitted",
		 step_direct_only);
	tap_step("a failed one-way QueueFrame or ReleaseFrame comes back as a StreamError naming it",
		 step_stream_error);
	return tap_done();
}

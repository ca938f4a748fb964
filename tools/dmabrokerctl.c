/* SPDX-License-Identifier: MIT */
/*
 * dmabrokerctl: look at and try out a running dmabrokerd.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <systemd/sd-bus.h>

#include "dmabroker.h"
#include "dmabroker-protocol.h"
#include "errors-sdbus.h"
#include "format.h"


static const char usage_text[] =
	"Usage: dmabrokerctl [OPTION]... COMMAND [ARG]... [OPTION]...\n"
	"\n"
	"Look at and try out a running dmabrokerd.\n"
	"\n"
	"Commands:\n"
	"  status                      version, clients, buffers, bytes allocated\n"
	"  buffers                     buffers: size, format, backend, owner, holders,\n"
	"                              active grants, waiters, pending fences, fence\n"
	"                              timeouts, age (root sees all, others their own)\n"
	"  clients                     connected clients and what they hold\n"
	"  backends                    allocation backends found, and why others were not\n"
	"  usage                       what this client and its uid use against each limit\n"
	"                              (root: every client and uid)\n"
	"  streams                     streams: mode, state, format, placement, producer,\n"
	"                              consumers, frames produced, consumed and dropped\n"
	"  alloc WxH FORMAT            allocate a buffer, print it, release it on exit\n"
	"      --usage=LIST            cpu-read,cpu-write,scanout,capture,gpu,contiguous\n"
	"                              (default cpu-read,cpu-write)\n"
	"      --backend=NAME          heap, drm, udmabuf, shm, or a name from 'backends'\n"
	"      --device=DEV            a device path, DRM driver or heap name\n"
	"      --share                 also print a sharing token for it\n"
	"      --hold                  keep it until Ctrl-C (to look at it with 'buffers')\n"
	"\n"
	"Options (before or after the command):\n"
	"  --system                    talk to the daemon on the system bus (default)\n"
	"  --session                   talk to the daemon on the session bus\n"
	"  --json                      print JSON instead of columns\n"
	"  -h, --help                  print this help and exit\n"
	"\n"
	"FORMAT is a DRM format name: XRGB8888, ARGB8888, XBGR8888, ABGR8888, RGB565,\n"
	"YUYV, UYVY, NV12, NV21, YUV420, YVU420, P010.\n"
	"\n"
	"Exit status: 0 on success, 1 when the daemon refused or is not there, 2 on bad usage.\n";

static bool json;
static enum dmabroker_bus which_bus = DMABROKER_BUS_SYSTEM;

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "dmabrokerctl: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'dmabrokerctl --help' for more information.\n");
	return 2;
}

static sd_bus *open_bus(void)
{
	sd_bus *bus = NULL;
	int r = which_bus == DMABROKER_BUS_SESSION ? sd_bus_open_user(&bus) : sd_bus_open_system(&bus);
	if (r < 0) {
		fprintf(stderr, "dmabrokerctl: cannot connect to the %s bus: %s\n",
			which_bus == DMABROKER_BUS_SESSION ? "session" : "system", strerror(-r));
		return NULL;
	}
	return bus;
}

static int report(const char *what, const sd_bus_error *e, int r)
{
	if (e && sd_bus_error_has_name(e, SD_BUS_ERROR_SERVICE_UNKNOWN))
		fprintf(stderr, "dmabrokerctl: dmabrokerd is not running on the %s bus\n",
			which_bus == DMABROKER_BUS_SESSION ? "session" : "system");
	else
		fprintf(stderr, "dmabrokerctl: %s: %s\n", what, e && e->message ? e->message : strerror(-r));
	return 1;
}

static void json_string(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static void format_usage(uint32_t usage, char *buf, size_t len)
{
	static const char *const names[] = { "cpu-read", "cpu-write", "scanout", "capture", "gpu", "contiguous" };
	buf[0] = 0;
	for (unsigned i = 0; i < 6; i++)
		if (usage & (1u << i))
			snprintf(buf + strlen(buf), len - strlen(buf), "%s%s", buf[0] ? "," : "", names[i]);
	if (!buf[0])
		snprintf(buf, len, "-");
}

static bool parse_usage(const char *s, uint32_t *ret)
{
	static const char *const names[] = { "cpu-read", "cpu-write", "scanout", "capture", "gpu", "contiguous" };
	char *copy = strdup(s), *save = NULL;
	bool ok = copy != NULL;

	*ret = 0;
	for (char *tok = copy ? strtok_r(copy, ",", &save) : NULL; tok && ok; tok = strtok_r(NULL, ",", &save)) {
		bool found = false;
		for (unsigned i = 0; i < 6; i++)
			if (strcmp(tok, names[i]) == 0) {
				*ret |= 1u << i;
				found = true;
			}
		ok = found;
	}
	free(copy);
	return ok;
}

static void human_size(uint64_t n, char *buf, size_t len)
{
	if (n >= (1ull << 30))
		snprintf(buf, len, "%.1fG", (double)n / (1ull << 30));
	else if (n >= (1ull << 20))
		snprintf(buf, len, "%.1fM", (double)n / (1ull << 20));
	else if (n >= (1ull << 10))
		snprintf(buf, len, "%.1fK", (double)n / (1ull << 10));
	else
		snprintf(buf, len, "%" PRIu64, n);
}

static int get_property(sd_bus *bus, const char *name, char type, void *ret, sd_bus_error *e)
{
	return sd_bus_get_property_trivial(bus, DMABROKER_BUS_NAME, DMABROKER_OBJECT_PATH, DMABROKER_INTERFACE, name, e, type, ret);
}

static int cmd_status(void)
{
	sd_bus_error e = SD_BUS_ERROR_NULL;
	sd_bus *bus = open_bus();
	char *version = NULL;
	uint32_t clients = 0, buffers = 0, pooled = 0;
	uint64_t bytes = 0, timeouts = 0, pool_bytes = 0;
	char size[32], pool_size[32];
	int r;

	if (!bus)
		return 1;
	r = sd_bus_get_property_string(bus, DMABROKER_BUS_NAME, DMABROKER_OBJECT_PATH, DMABROKER_INTERFACE, "Version", &e, &version);
	if (r >= 0)
		r = get_property(bus, "Clients", 'u', &clients, &e);
	if (r >= 0)
		r = get_property(bus, "Buffers", 'u', &buffers, &e);
	if (r >= 0)
		r = get_property(bus, "BytesAllocated", 't', &bytes, &e);
	if (r >= 0)
		r = get_property(bus, "FenceTimeouts", 't', &timeouts, &e);
	if (r >= 0)
		r = get_property(bus, "PoolBuffers", 'u', &pooled, &e);
	if (r >= 0)
		r = get_property(bus, "PoolBytes", 't', &pool_bytes, &e);
	if (r < 0) {
		r = report("status", &e, r);
		sd_bus_error_free(&e);
		sd_bus_unref(bus);
		return r;
	}
	human_size(bytes, size, sizeof(size));
	human_size(pool_bytes, pool_size, sizeof(pool_size));
	if (json)
		printf("{\"version\": \"%s\", \"clients\": %u, \"buffers\": %u, \"bytes_allocated\": %" PRIu64
		       ", \"fence_timeouts\": %" PRIu64 ", \"pool_buffers\": %u, \"pool_bytes\": %" PRIu64 "}\n",
		       version, clients, buffers, bytes, timeouts, pooled, pool_bytes);
	else
		printf("dmabrokerd %s on the %s bus\nclients:  %u\nbuffers:  %u\nallocated: %s (%" PRIu64 " bytes)\n"
		       "fence timeouts: %" PRIu64 "\npool:     %u buffers, %s\n", version,
		       which_bus == DMABROKER_BUS_SESSION ? "session" : "system", clients, buffers, size, bytes, timeouts,
		       pooled, pool_size);
	free(version);
	sd_bus_unref(bus);
	return 0;
}

/* Calls a List* method; the reply is positioned inside its array. */
static int list_call(sd_bus *bus, const char *method, const char *sig, sd_bus_message **reply)
{
	sd_bus_error e = SD_BUS_ERROR_NULL;
	int r = sd_bus_call_method(bus, DMABROKER_BUS_NAME, DMABROKER_OBJECT_PATH, DMABROKER_INTERFACE, method, &e, reply, "");
	if (r < 0) {
		report(method, &e, r);
		sd_bus_error_free(&e);
		return -1;
	}
	r = sd_bus_message_enter_container(*reply, 'a', sig);
	return r < 0 ? -1 : 0;
}

/* Ends a listing: closes the JSON array, frees, maps r to the exit status. */
static int list_end(sd_bus_message *reply, sd_bus *bus, int r)
{
	if (json)
		printf("]\n");
	sd_bus_message_unref(reply);
	sd_bus_unref(bus);
	return r < 0 ? 1 : 0;
}

static int cmd_buffers(void)
{
	sd_bus *bus = open_bus();
	sd_bus_message *reply = NULL;
	uint64_t id, size, age;
	uint32_t w, h, fourcc, usage, uid, pid, holders, attachments, grants, waiters, fences, timeouts;
	const char *backend;
	unsigned n = 0;
	int r;

	if (!bus || list_call(bus, "ListBuffers", "(tuuutsuuuuutuuuu)", &reply) < 0) {
		sd_bus_unref(bus);
		return 1;
	}
	if (json)
		printf("[");
	else
		printf("%6s %11s %-8s %8s %-14s %-22s %6s %7s %7s %6s %7s %6s %8s %7s\n", "ID", "SIZE", "FORMAT", "BYTES",
		       "BACKEND", "USAGE", "UID", "PID", "HOLDERS", "GRANTS", "WAITERS", "FENCES", "TIMEOUTS", "AGE");
	while ((r = sd_bus_message_read(reply, "(tuuutsuuuuutuuuu)", &id, &w, &h, &fourcc, &size, &backend, &usage,
					&uid, &pid, &holders, &attachments, &age, &grants, &waiters, &fences,
					&timeouts)) > 0) {
		char fcc[5], dims[24], sz[32], us[96];
		const struct format_info *fi = format_lookup(fourcc);
		const char *fname = fi ? fi->name : fourcc_str(fourcc, fcc);
		format_usage(usage, us, sizeof(us));
		if (json) {
			printf("%s{\"id\": %" PRIu64 ", \"width\": %u, \"height\": %u, \"format\": \"%s\", "
			       "\"size\": %" PRIu64 ", \"backend\": ", n ? ", " : "", id, w, h, fname, size);
			json_string(backend);
			printf(", \"usage\": \"%s\", \"owner_uid\": %u, \"owner_pid\": %u, \"holders\": %u, "
			       "\"attachments\": %u, \"age_usec\": %" PRIu64 ", \"grants\": %u, \"waiters\": %u, "
			       "\"pending_fences\": %u, \"fence_timeouts\": %u}", us, uid, pid, holders, attachments, age,
			       grants, waiters, fences, timeouts);
		} else {
			snprintf(dims, sizeof(dims), "%ux%u", w, h);
			human_size(size, sz, sizeof(sz));
			printf("%6" PRIu64 " %11s %-8s %8s %-14s %-22s %6u %7u %7u %6u %7u %6u %8u %6.1fs\n", id, dims,
			       fname, sz, backend, us, uid, pid, holders, grants, waiters, fences, timeouts,
			       (double)age / 1e6);
		}
		n++;
	}
	return list_end(reply, bus, r);
}

static int cmd_clients(void)
{
	sd_bus *bus = open_bus();
	sd_bus_message *reply = NULL;
	uint64_t id, bytes, age;
	uint32_t uid, gid, pid, buffers, tokens, directs;
	const char *name, *comm;
	unsigned n = 0;
	int r;

	if (!bus || list_call(bus, "ListClients", "(tsuuusutuut)", &reply) < 0) {
		sd_bus_unref(bus);
		return 1;
	}
	if (json)
		printf("[");
	else
		printf("%6s %-10s %-16s %6s %6s %7s %7s %8s %6s %6s %8s\n", "ID", "BUS NAME", "COMMAND", "UID", "GID", "PID",
		       "BUFFERS", "BYTES", "TOKENS", "DIRECT", "AGE");
	while ((r = sd_bus_message_read(reply, "(tsuuusutuut)", &id, &name, &uid, &gid, &pid, &comm, &buffers, &bytes,
					&tokens, &directs, &age)) > 0) {
		char sz[32], g[16] = "-";
		/* UINT32_MAX: the bus reports no primary group (only the groups, which the daemon keeps) */
		if (gid != UINT32_MAX)
			snprintf(g, sizeof(g), "%u", gid);
		if (json) {
			printf("%s{\"id\": %" PRIu64 ", \"bus_name\": ", n ? ", " : "", id);
			json_string(name);
			printf(", \"command\": ");
			json_string(comm);
			printf(", \"uid\": %u, \"gid\": %s, \"pid\": %u, \"buffers\": %u, \"bytes\": %" PRIu64
			       ", \"tokens\": %u, \"direct_connections\": %u, \"age_usec\": %" PRIu64 "}",
			       uid, gid != UINT32_MAX ? g : "null", pid, buffers, bytes, tokens, directs, age);
		} else {
			human_size(bytes, sz, sizeof(sz));
			printf("%6" PRIu64 " %-10s %-16s %6u %6s %7u %7u %8s %6u %6u %7.1fs\n", id, *name ? name : "-", comm,
			       uid, g, pid, buffers, sz, tokens, directs, (double)age / 1e6);
		}
		n++;
	}
	return list_end(reply, bus, r);
}

static int cmd_backends(void)
{
	sd_bus *bus = open_bus();
	sd_bus_message *reply = NULL;
	const char *name, *kind, *device, *detail;
	int available, r;
	unsigned n = 0;

	if (!bus || list_call(bus, "ListBackends", "(sssbs)", &reply) < 0) {
		sd_bus_unref(bus);
		return 1;
	}
	if (json)
		printf("[");
	else
		printf("%-18s %-8s %-22s %-11s %s\n", "NAME", "KIND", "DEVICE", "AVAILABLE", "DETAIL");
	while ((r = sd_bus_message_read(reply, "(sssbs)", &name, &kind, &device, &available, &detail)) > 0) {
		if (json) {
			printf("%s{\"name\": ", n ? ", " : "");
			json_string(name);
			printf(", \"kind\": ");
			json_string(kind);
			printf(", \"device\": ");
			json_string(device);
			printf(", \"available\": %s, \"detail\": ", available ? "true" : "false");
			json_string(detail);
			printf("}");
		} else {
			printf("%-18s %-8s %-22s %-11s %s\n", name, kind, *device ? device : "-", available ? "yes" : "no",
			       detail);
		}
		n++;
	}
	return list_end(reply, bus, r);
}

static volatile sig_atomic_t stop;
static void on_stop(int sig)
{
	(void)sig;
	stop = 1;
}

static int cmd_usage(void)
{
	sd_bus *bus = open_bus();
	sd_bus_message *reply = NULL;
	const char *scope, *res;
	uint64_t used, limit;
	unsigned n = 0;
	int r;

	if (!bus || list_call(bus, "GetUsage", "(sstt)", &reply) < 0) {
		sd_bus_unref(bus);
		return 1;
	}
	if (json)
		printf("[");
	else
		printf("%-28s %-9s %12s %12s %5s\n", "SCOPE", "RESOURCE", "USED", "LIMIT", "USE");
	while ((r = sd_bus_message_read(reply, "(sstt)", &scope, &res, &used, &limit)) > 0) {
		if (json) {
			printf("%s{\"scope\": ", n ? ", " : "");
			json_string(scope);
			printf(", \"resource\": \"%s\", \"used\": %" PRIu64 ", \"limit\": %" PRIu64 "}", res, used, limit);
		} else {
			char u[32], l[32];
			if (strcmp(res, "bytes") == 0) {
				human_size(used, u, sizeof(u));
				human_size(limit, l, sizeof(l));
			} else {
				snprintf(u, sizeof(u), "%" PRIu64, used);
				snprintf(l, sizeof(l), "%" PRIu64, limit);
			}
			printf("%-28s %-9s %12s %12s %4.0f%%\n", scope, res, u, l, limit ? 100.0 * (double)used / (double)limit : 0.0);
		}
		n++;
	}
	return list_end(reply, bus, r);
}

static int cmd_streams(void)
{
	sd_bus *bus = open_bus();
	sd_bus_message *reply = NULL;
	uint64_t id, producer, produced, consumed, dropped;
	uint32_t fourcc, w, h, buffers, consumers;
	const char *name, *mode, *state, *backend;
	unsigned n = 0;
	int r;

	if (!bus || list_call(bus, "ListStreams", "(tssssuuuututtt)", &reply) < 0) {
		sd_bus_unref(bus);
		return 1;
	}
	if (json)
		printf("[");
	else
		printf("%4s %-16s %-8s %-12s %-16s %-12s %4s %8s %5s %9s %9s %9s\n", "ID", "NAME", "MODE", "STATE",
		       "BACKEND", "FORMAT", "BUFS", "PRODUCER", "CONS", "PRODUCED", "CONSUMED", "DROPPED");
	while ((r = sd_bus_message_read(reply, "(tssssuuuututtt)", &id, &name, &mode, &state, &backend, &fourcc, &w,
					&h, &buffers, &producer, &consumers, &produced, &consumed, &dropped)) > 0) {
		char fmt[5], size[32];
		fourcc_str(fourcc, fmt);
		if (json) {
			printf("%s{\"id\": %" PRIu64 ", \"name\": ", n ? ", " : "", id);
			json_string(name);
			printf(", \"mode\": \"%s\", \"state\": \"%s\", \"backend\": ", mode, state);
			json_string(backend);
			printf(", \"fourcc\": \"%s\", \"width\": %u, \"height\": %u, \"buffers\": %u, \"producer\": %" PRIu64
			       ", \"consumers\": %u, \"produced\": %" PRIu64 ", \"consumed\": %" PRIu64
			       ", \"dropped\": %" PRIu64 "}", fourcc ? fmt : "", w, h, buffers, producer, consumers,
			       produced, consumed, dropped);
		} else {
			snprintf(size, sizeof(size), "%ux%u %s", w, h, fourcc ? fmt : "-");
			printf("%4" PRIu64 " %-16s %-8s %-12s %-16s %-12s %4u %8" PRIu64 " %5u %9" PRIu64 " %9" PRIu64
			       " %9" PRIu64 "\n", id, name, mode, state, *backend ? backend : "-", size, buffers, producer,
			       consumers, produced, consumed, dropped);
		}
		n++;
	}
	return list_end(reply, bus, r);
}

/* alloc's own options, parsed with the others in main(). */
struct alloc_options {
	struct dmabroker_alloc_desc desc;
	bool share, hold;
};

/* alloc WxH FORMAT: args[0] and args[1]. */
static int cmd_alloc(struct alloc_options *o, int nargs, char **args)
{
	struct dmabroker_alloc_desc d = o->desc;
	const struct format_info *all, *f = NULL;
	struct dmabroker_buffer *buf = NULL;
	struct dmabroker *b = NULL;
	bool share = o->share, hold = o->hold;
	char *token = NULL, fcc[5];
	unsigned n;
	int r;

	if (nargs != 2)
		return usage_error("%s", "alloc needs WxH and FORMAT, e.g. 'alloc 640x480 XRGB8888'");
	if (sscanf(args[0], "%ux%u%c", &d.width, &d.height, fcc) != 2)
		return usage_error("bad size '%s' (want WIDTHxHEIGHT)", args[0]);
	all = format_all(&n);
	for (unsigned i = 0; i < n && !f; i++)
		if (strcasecmp(all[i].name, args[1]) == 0)
			f = &all[i];
	if (!f)
		return usage_error("unknown format '%s' (see --help)", args[1]);
	d.fourcc = f->fourcc;

	r = dmabroker_connect(which_bus, &b);
	if (r < 0) {
		fprintf(stderr, "dmabrokerctl: cannot connect to the %s bus: %s\n",
			which_bus == DMABROKER_BUS_SESSION ? "session" : "system", strerror(-r));
		return 1;
	}
	r = dmabroker_allocate(b, &d, &buf);
	if (r < 0) {
		const char *name = dmabroker_error_name(b);
		fprintf(stderr, "dmabrokerctl: alloc: %s%s%s%s\n",
			dmabroker_error_message(b) ? dmabroker_error_message(b) : strerror(-r),
			name ? " (" : "", name ? name : "", name ? ")" : "");
		dmabroker_disconnect(b);
		return 1;
	}
	if (share && dmabroker_buffer_create_token(buf, 0, 0, &token) < 0) {
		fprintf(stderr, "dmabrokerctl: token: %s\n", dmabroker_error_message(b));
		dmabroker_disconnect(b);
		return 1;
	}
	if (json) {
		printf("{\"id\": %" PRIu64 ", \"width\": %u, \"height\": %u, \"format\": \"%s\", \"size\": %" PRIu64
		       ", \"backend\": \"%s\", \"dmabuf\": %s, \"planes\": [",
		       dmabroker_buffer_get_id(buf), d.width, d.height, f->name, dmabroker_buffer_get_size(buf),
		       dmabroker_buffer_get_backend(buf), dmabroker_buffer_is_dmabuf(buf) ? "true" : "false");
		for (unsigned i = 0; i < dmabroker_buffer_get_plane_count(buf); i++) {
			uint64_t off;
			uint32_t stride;
			dmabroker_buffer_get_plane(buf, i, &off, &stride);
			printf("%s{\"offset\": %" PRIu64 ", \"stride\": %u}", i ? ", " : "", off, stride);
		}
		printf("]%s%s%s}\n", token ? ", \"token\": \"" : "", token ? token : "", token ? "\"" : "");
	} else {
		printf("buffer %" PRIu64 ": %ux%u %s, %" PRIu64 " bytes on %s%s\n", dmabroker_buffer_get_id(buf), d.width,
		       d.height, f->name, dmabroker_buffer_get_size(buf), dmabroker_buffer_get_backend(buf),
		       dmabroker_buffer_is_dmabuf(buf) ? "" : " (not a dma-buf)");
		for (unsigned i = 0; i < dmabroker_buffer_get_plane_count(buf); i++) {
			uint64_t off;
			uint32_t stride;
			dmabroker_buffer_get_plane(buf, i, &off, &stride);
			printf("  plane %u: offset %" PRIu64 ", stride %u\n", i, off, stride);
		}
		if (token)
			printf("token: %s\n", token);
	}
	fflush(stdout);
	if (hold) {
		signal(SIGINT, on_stop);
		signal(SIGTERM, on_stop);
		if (!json)
			fprintf(stderr, "holding buffer %" PRIu64 "; Ctrl-C releases it\n", dmabroker_buffer_get_id(buf));
		while (!stop)
			pause();
	}
	free(token);
	dmabroker_buffer_release(buf);
	dmabroker_disconnect(b);
	return 0;
}

static const struct command {
	const char *name;
	int (*run)(void);
} commands[] = {
	{ "status", cmd_status },
	{ "buffers", cmd_buffers },
	{ "clients", cmd_clients },
	{ "backends", cmd_backends },
	{ "streams", cmd_streams },
	{ "usage", cmd_usage },
};

int main(int argc, char **argv)
{
	enum { OPT_SYSTEM = 256, OPT_SESSION, OPT_JSON, OPT_USAGE, OPT_BACKEND, OPT_DEVICE, OPT_SHARE, OPT_HOLD };
	static const struct option options[] = {
		{ "system", no_argument, NULL, OPT_SYSTEM },
		{ "session", no_argument, NULL, OPT_SESSION },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "help", no_argument, NULL, 'h' },
		/* alloc's */
		{ "usage", required_argument, NULL, OPT_USAGE },
		{ "backend", required_argument, NULL, OPT_BACKEND },
		{ "device", required_argument, NULL, OPT_DEVICE },
		{ "share", no_argument, NULL, OPT_SHARE },
		{ "hold", no_argument, NULL, OPT_HOLD },
		{ 0 },
	};
	struct alloc_options alloc = {
		.desc = { .version = DMABROKER_ALLOC_DESC_VERSION,
			  .usage = DMABROKER_USAGE_CPU_READ_FLAG | DMABROKER_USAGE_CPU_WRITE_FLAG },
	};
	/* The command and its arguments: no command takes more than two; nargs counts them all. */
	char *args[3];
	const char *alloc_option = NULL;
	int nargs = 0, c;

	/*
	 * Options come before or after the command, as with systemctl and busctl. The leading "-" makes getopt
	 * return every other argument in order, as option 1 (whatever POSIXLY_CORRECT says); "--" ends the
	 * options.
	 */
	while ((c = getopt_long(argc, argv, "-h", options, NULL)) != -1) {
		switch (c) {
		case 1:
			if (nargs < (int)(sizeof(args) / sizeof(args[0])))
				args[nargs] = optarg;
			nargs++;
			break;
		case OPT_SYSTEM: which_bus = DMABROKER_BUS_SYSTEM; break;
		case OPT_SESSION: which_bus = DMABROKER_BUS_SESSION; break;
		case OPT_JSON: json = true; break;
		case 'h': fputs(usage_text, stdout); return 0;
		case OPT_USAGE:
			if (!parse_usage(optarg, &alloc.desc.usage))
				return usage_error("bad --usage '%s'", optarg);
			alloc_option = "--usage";
			break;
		case OPT_BACKEND: alloc.desc.backend = optarg; alloc_option = "--backend"; break;
		case OPT_DEVICE: alloc.desc.device = optarg; alloc_option = "--device"; break;
		case OPT_SHARE: alloc.share = true; alloc_option = "--share"; break;
		case OPT_HOLD: alloc.hold = true; alloc_option = "--hold"; break;
		default: fputs("Try 'dmabrokerctl --help' for more information.\n", stderr); return 2;
		}
	}
	for (; optind < argc; optind++, nargs++)
		if (nargs < (int)(sizeof(args) / sizeof(args[0])))
			args[nargs] = argv[optind];
	if (nargs == 0)
		return usage_error("%s", "no command given");
	sd_bus_error_add_map(dmabroker_error_map);
	if (strcmp(args[0], "alloc") == 0)
		return cmd_alloc(&alloc, nargs - 1, args + 1);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(args[0], commands[i].name) != 0)
			continue;
		if (alloc_option)
			return usage_error("%s is an option of alloc, not of %s", alloc_option, args[0]);
		if (nargs > 1)
			return usage_error("'%s' takes no arguments", args[0]);
		return commands[i].run();
	}
	return usage_error("unknown command '%s'", args[0]);
}

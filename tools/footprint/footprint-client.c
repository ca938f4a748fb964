/* SPDX-License-Identifier: MIT */
/*
 * footprint-client: the load tools/footprint/footprint.py measures the
 * daemon's memory under. Reads commands from stdin, one a line, and answers
 * each on stdout once it is done:
 *   buffers K   allocate K more buffers (64x64 XRGB8888, cpu-read|cpu-write)
 *               on one connection, and hold them
 *   clients K   open K more bus connections, each calling GetUsage once (the
 *               daemon then knows it as a client), and keep them open
 * The answer is "ok BUFFERS CLIENTS" (what it holds now) or "error: ...".
 * At end of input it exits, letting go of everything.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <drm_fourcc.h>
#include <systemd/sd-bus.h>

#include "dmabroker.h"
#include "dmabroker-protocol.h"

struct load {
	const char *address;
	struct dmabroker *broker;
	struct dmabroker_buffer **buffers;
	unsigned n_buffers;
	sd_bus **clients;
	unsigned n_clients;
};

static int add_buffers(struct load *l, unsigned k)
{
	struct dmabroker_alloc_desc desc = {
		.version = DMABROKER_ALLOC_DESC_VERSION,
		.width = 64,
		.height = 64,
		.fourcc = DRM_FORMAT_XRGB8888,
		.usage = DMABROKER_USAGE_CPU_READ | DMABROKER_USAGE_CPU_WRITE,
	};
	struct dmabroker_buffer **more;
	int r;

	if (!l->broker) {
		r = dmabroker_connect_address(l->address, &l->broker);
		if (r < 0) {
			printf("error: cannot connect to %s: %s\n", l->address, strerror(-r));
			return r;
		}
	}
	more = realloc(l->buffers, (l->n_buffers + k) * sizeof(*more));
	if (!more) {
		printf("error: out of memory\n");
		return -ENOMEM;
	}
	l->buffers = more;
	for (unsigned i = 0; i < k; i++) {
		r = dmabroker_allocate(l->broker, &desc, &l->buffers[l->n_buffers]);
		if (r < 0) {
			const char *why = dmabroker_error_message(l->broker);
			printf("error: buffer %u: %s\n", l->n_buffers + 1, why ? why : strerror(-r));
			return r;
		}
		l->n_buffers++;
	}
	return 0;
}

static int add_clients(struct load *l, unsigned k)
{
	sd_bus **more = realloc(l->clients, (l->n_clients + k) * sizeof(*more));
	int r;

	if (!more) {
		printf("error: out of memory\n");
		return -ENOMEM;
	}
	l->clients = more;
	for (unsigned i = 0; i < k; i++) {
		sd_bus_error e = SD_BUS_ERROR_NULL;
		sd_bus *bus = NULL;

		r = sd_bus_new(&bus);
		if (r >= 0)
			r = sd_bus_set_address(bus, l->address);
		if (r >= 0)
			r = sd_bus_set_bus_client(bus, 1);
		if (r >= 0)
			r = sd_bus_start(bus);
		if (r >= 0)
			r = sd_bus_call_method(bus, DMABROKER_BUS_NAME, DMABROKER_OBJECT_PATH, DMABROKER_INTERFACE,
					       "GetUsage", &e, NULL, "");
		if (r < 0) {
			printf("error: client %u: %s\n", l->n_clients + 1, e.message ? e.message : strerror(-r));
			sd_bus_error_free(&e);
			sd_bus_unref(bus);
			return r;
		}
		l->clients[l->n_clients++] = bus;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct load l = { .address = getenv("DBUS_SESSION_BUS_ADDRESS") };
	struct rlimit nofile;
	char line[128], what[16];
	unsigned k;
	int r = 0;

	if (argc != 1 || !l.address) {
		fprintf(stderr, "Usage: DBUS_SESSION_BUS_ADDRESS=... %s <COMMANDS\n"
			"Commands, one a line: 'buffers K', 'clients K' (see tools/footprint/footprint-client.c).\n",
			argv[0]);
		return 2;
	}
	/* a buffer is an fd: room for more than the soft limit's 1024 */
	if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
		nofile.rlim_cur = nofile.rlim_max;
		setrlimit(RLIMIT_NOFILE, &nofile);
	}
	while (r >= 0 && fgets(line, sizeof(line), stdin)) {
		if (sscanf(line, "%15s %u", what, &k) != 2) {
			printf("error: not a command: %s", line);
			r = -EINVAL;
		} else if (strcmp(what, "buffers") == 0) {
			r = add_buffers(&l, k);
		} else if (strcmp(what, "clients") == 0) {
			r = add_clients(&l, k);
		} else {
			printf("error: unknown command '%s'\n", what);
			r = -EINVAL;
		}
		if (r >= 0)
			printf("ok %u %u\n", l.n_buffers, l.n_clients);
		fflush(stdout);
	}
	for (unsigned i = 0; i < l.n_buffers; i++)
		dmabroker_buffer_release(l.buffers[i]);
	for (unsigned i = 0; i < l.n_clients; i++)
		sd_bus_flush_close_unref(l.clients[i]);
	dmabroker_disconnect(l.broker);
	free(l.buffers);
	free(l.clients);
	return r < 0 ? 1 : 0;
}

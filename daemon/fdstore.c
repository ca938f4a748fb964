/* SPDX-License-Identifier: MIT */
/*
 * Keeping buffers across a daemon restart (crash or upgrade). With
 * fd-store on, every buffer's fd also sits in the service manager's file
 * descriptor store (sd_notify FDSTORE=1), under a name that records how to
 * rebuild it: id, size, format, modifier, usage, owner, backend and planes.
 * At start the daemon takes the stored fds back (LISTEN_FDNAMES), rebuilds
 * the buffers under their old ids, and holds them for restore-grace
 * seconds. A client reclaims a buffer by showing its own fd of it
 * (Reclaim): the same open file proves it held or was given the buffer.
 * Whatever nobody reclaimed is released when the grace period ends.
 *
 * The name is "dmabroker.b.ID.W.H.FOURCC.MODIFIER.USAGE.UID.FLAGS.BACKEND.N"
 * then ".OFFSET.STRIDE" per plane, all decimal; BACKEND with ':' as '+',
 * because ':' separates LISTEN_FDNAMES.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "broker.h"
#include "cleanup.h"
#include "errors.h"
#include "fdstore.h"
#include "log.h"
#include "quota.h"

#define PREFIX "dmabroker.b."

static void make_name(const struct buffer *buf, char *out, size_t len)
{
	char backend[64];
	size_t n;

	snprintf(backend, sizeof(backend), "%s", buf->backend ? buf->backend->name : "-");
	for (char *p = backend; *p; p++)
		if (*p == ':')
			*p = '+';
	n = (size_t)snprintf(out, len, PREFIX "%" PRIu64 ".%u.%u.%u.%" PRIu64 ".%u.%u.%u.%s.%u", buf->id,
			     buf->width, buf->height, buf->fourcc, buf->modifier, buf->usage, (unsigned)buf->owner_uid,
			     (buf->dmabuf ? 1u : 0u) | (buf->imported ? 2u : 0u), backend, buf->layout.n_planes);
	for (unsigned i = 0; i < buf->layout.n_planes && n < len; i++)
		n += (size_t)snprintf(out + n, len - n, ".%" PRIu64 ".%u", buf->layout.plane[i].offset,
				      buf->layout.plane[i].stride);
}

void fdstore_add(struct buffer *buf)
{
	char msg[300];
	int r;

	if (!buf->broker->fd_store)
		return;
	make_name(buf, buf->fdname, sizeof(buf->fdname));
	snprintf(msg, sizeof(msg), "FDSTORE=1\nFDNAME=%s", buf->fdname);
	r = sd_pid_notify_with_fds(0, 0, msg, &buf->fd, 1);
	if (r <= 0)
		log_warning("buffer %" PRIu64 ": cannot put it in the fd store (%s): it would not survive a restart",
			    buf->id, r < 0 ? strerror(-r) : "no NOTIFY_SOCKET");
}

static void notify_remove(const char *name)
{
	char msg[300];
	snprintf(msg, sizeof(msg), "FDSTOREREMOVE=1\nFDNAME=%s", name);
	sd_pid_notify(0, 0, msg);
}

void fdstore_remove(struct buffer *buf)
{
	if (!buf->broker->fd_store || !buf->fdname[0])
		return;
	notify_remove(buf->fdname);
	buf->fdname[0] = 0;
}

void fdstore_update(struct buffer *buf)
{
	if (!buf->fdname[0])
		return;
	fdstore_remove(buf);
	fdstore_add(buf);
}

/* What a stored name says. */
struct stored {
	uint64_t id, modifier;
	unsigned width, height, fourcc, usage, uid, flags, n_planes;
	char backend[64];
	struct layout layout;
};

static bool parse_name(const char *name, struct stored *s)
{
	int used = 0;
	const char *p;

	if (strncmp(name, PREFIX, strlen(PREFIX)) != 0)
		return false;
	if (sscanf(name + strlen(PREFIX), "%" SCNu64 ".%u.%u.%u.%" SCNu64 ".%u.%u.%u.%63[^.].%u%n", &s->id, &s->width,
		   &s->height, &s->fourcc, &s->modifier, &s->usage, &s->uid, &s->flags, s->backend,
		   &s->n_planes, &used) != 10 ||
	    s->n_planes > FORMAT_MAX_PLANES || s->id == 0)
		return false;
	s->layout.n_planes = (uint8_t)s->n_planes;
	p = name + strlen(PREFIX) + used;
	for (unsigned i = 0; i < s->n_planes; i++) {
		int k = 0;
		if (sscanf(p, ".%" SCNu64 ".%u%n", &s->layout.plane[i].offset, &s->layout.plane[i].stride, &k) != 2)
			return false;
		p += k;
	}
	if (*p)
		return false;
	for (char *c = s->backend; *c; c++)
		if (*c == '+')
			*c = ':';
	return true;
}

static int on_grace_over(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct broker *b = userdata;
	unsigned n = b->restored.n_holds;

	while (b->restored.holds)
		buffer_release(b->restored.holds);
	if (n)
		log_info("restore grace over: %u buffers nobody reclaimed were released", n);
	b->restore_timer = sd_event_source_disable_unref(b->restore_timer);
	return 0;
}

int fdstore_restore(struct broker *b)
{
	char **names = NULL;
	unsigned restored = 0;
	int n = sd_listen_fds_with_names(1, &names);

	if (n <= 0)
		return n;
	for (int i = 0; i < n; i++) {
		int fd = SD_LISTEN_FDS_START + i;
		struct stored parsed = { 0 };
		struct buffer *buf;
		sd_bus_error e = SD_BUS_ERROR_NULL;

		if (!names || !names[i] || !parse_name(names[i], &parsed) || buffer_find(b, parsed.id)) {
			log_warning("fd store: dropping fd %d named '%s': not a buffer of ours", fd,
				    names && names[i] ? names[i] : "");
			if (names && names[i] && b->fd_store)
				notify_remove(names[i]);
			close(fd);
			continue;
		}
		fd_budget_charge_always(b, 1); /* it is ours already; buffer_register() takes the charge */
		if (buffer_register(b, &b->restored, fd, &buf, &e) < 0) {
			log_warning("fd store: cannot restore buffer %" PRIu64 ": %s", parsed.id,
				    e.message ? e.message : "?");
			sd_bus_error_free(&e);
			continue;
		}
		/* back under its old id */
		hashmap_remove(&b->buffers, buf->id);
		buf->id = parsed.id;
		if (hashmap_put(&b->buffers, buf->id, buf) < 0) {
			buffer_release(buffer_held_by(buf, &b->restored));
			continue;
		}
		if (b->next_buffer_id < buf->id)
			b->next_buffer_id = buf->id;
		parsed.layout.size = buf->size;
		buffer_describe(buf, parsed.width, parsed.height, parsed.fourcc, parsed.modifier, parsed.usage,
				&parsed.layout);
		buf->owner_uid = parsed.uid;
		buf->dmabuf = parsed.flags & 1;
		buf->imported = parsed.flags & 2;
		for (struct backend *be = b->backends.list; be; be = be->next)
			if (strcmp(be->name, parsed.backend) == 0)
				buf->backend = be;
		snprintf(buf->fdname, sizeof(buf->fdname), "%s", names[i]);
		restored++;
	}
	for (int i = 0; names && i < n; i++)
		free(names[i]);
	free(names);
	if (restored) {
		log_info("fd store: restored %u buffers; clients have %u s to reclaim them", restored,
			 b->config.restore_grace_sec);
		sd_event_add_time_relative(b->event, &b->restore_timer, CLOCK_MONOTONIC,
					   (uint64_t)b->config.restore_grace_sec * 1000000u, 0, on_grace_over, b);
	}
	return (int)restored;
}

int fdstore_reclaim(struct client *c, uint64_t id, int fd, sd_bus_error *error)
{
	struct buffer *buf = buffer_find(c->broker, id);
	struct stat a, b;

	if (!buf)
		return 0;
	if (fstat(fd, &a) < 0 || fstat(buf->fd, &b) < 0 || a.st_ino != b.st_ino || a.st_dev != b.st_dev)
		return 0; /* not the same buffer: no proof */
	if (buffer_held_by(buf, c))
		return 1;
	return buffer_hold(buf, c, error) < 0 ? -EDQUOT : 1;
}

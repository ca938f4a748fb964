/* SPDX-License-Identifier: MIT */
/*
 * Keeping buffers across a daemon restart (crash or upgrade). With
 * fd-store on, every buffer's fd also sits in the service manager's file
 * descriptor store (FDSTORE=1, sent without blocking: notify.c), under a
 * name that records how to rebuild it: id, size, format, modifier, usage,
 * owner, backend, planes, whether it may ever be pooled, and the uids that
 * hold it. The name follows the holders: when a uid joins or leaves, or the
 * never-pool mark is set, the buffer is stored again under its new name.
 * At start the daemon takes the stored fds back (LISTEN_FDNAMES), rebuilds
 * the buffers under their old ids, and holds them for restore-grace
 * seconds. A client reclaims a buffer by showing its own fd of it
 * (Reclaim): only a buffer restored and still waiting, only by a uid that
 * held it before the restart, only with the buffer's own fd. Whatever
 * nobody reclaimed is released when the grace period ends.
 *
 * A stopping daemon leaves the store as it is (broker_finish): systemd
 * hands it to the next start on a restart and drops it on a real stop.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "broker.h"
#include "cleanup.h"
#include "error.h"
#include "fdstore.h"
#include "log.h"
#include "quota.h"
#include "notify.h"

#define PREFIX "dmabroker.b2."
#define PREFIX_V1 "dmabroker.b."
#define MAX_FIELDS (13 + 2 * FORMAT_MAX_PLANES + FDSTORE_MAX_UIDS)

static bool backend_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
	       c == '-' || c == '+' || c == ':';
}

static bool backend_valid(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n >= sizeof(((struct fdstore_record *)0)->backend))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!backend_char(s[i]))
			return false;
	return true;
}

int fdstore_format_name(const struct fdstore_record *rec, char *out, size_t size)
{
	char name[FDSTORE_NAME_MAX + 1], backend[sizeof(rec->backend)];
	int n, base;

	if (rec->id == 0 || !backend_valid(rec->backend) || rec->layout.n_planes == 0 ||
	    rec->layout.n_planes > FORMAT_MAX_PLANES || rec->n_uids > FDSTORE_MAX_UIDS ||
	    (rec->flags & ~(FDSTORE_DMABUF | FDSTORE_IMPORTED | FDSTORE_NO_POOL)))
		return -EINVAL;
	memcpy(backend, rec->backend, sizeof(backend));
	for (char *p = backend; *p; p++)
		if (*p == ':')
			*p = '+'; /* ':' separates LISTEN_FDNAMES */
	base = snprintf(name, sizeof(name), PREFIX "%" PRIu64 ".%u.%u.%u.%" PRIu64 ".%u.%u.%u.%s.%u", rec->id,
			rec->width, rec->height, rec->fourcc, rec->modifier, rec->usage, (unsigned)rec->owner_uid,
			rec->flags, backend, rec->layout.n_planes);
	for (unsigned i = 0; i < rec->layout.n_planes && base < (int)sizeof(name); i++)
		base += snprintf(name + base, sizeof(name) - (size_t)base, ".%" PRIu64 ".%u", rec->layout.plane[i].offset,
				 rec->layout.plane[i].stride);
	if (base >= (int)sizeof(name))
		return -ENAMETOOLONG;
	/* as many uids as fit, the first ones */
	for (unsigned k = rec->n_uids + 1; k-- > 0;) {
		n = base + snprintf(name + base, sizeof(name) - (size_t)base, ".%u", k);
		for (unsigned i = 0; i < k && n < (int)sizeof(name); i++)
			n += snprintf(name + n, sizeof(name) - (size_t)n, ".%u", (unsigned)rec->uids[i]);
		if (n < (int)sizeof(name))
			break;
	}
	if (n >= (int)sizeof(name))
		return -ENAMETOOLONG;
	if ((size_t)n >= size)
		return -ENOBUFS;
	memcpy(out, name, (size_t)n + 1);
	return n;
}

/* A canonical decimal number up to max: digits only, no leading zero but "0". */
static bool parse_number(const char *s, uint64_t max, uint64_t *ret)
{
	uint64_t v = 0;

	if (!*s || (s[0] == '0' && s[1]))
		return false;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
			return false;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	if (v > max)
		return false;
	*ret = v;
	return true;
}

static bool parse_u32(const char *s, uint32_t *ret)
{
	uint64_t v;
	if (!parse_number(s, UINT32_MAX, &v))
		return false;
	*ret = (uint32_t)v;
	return true;
}

static bool parse_uid(const char *s, uid_t *ret)
{
	uint64_t v;
	if (!parse_number(s, UINT32_MAX - 1, &v)) /* (uid_t)-1 is no uid */
		return false;
	*ret = (uid_t)v;
	return true;
}

int fdstore_parse_name(const char *name, struct fdstore_record *ret)
{
	char copy[FDSTORE_NAME_MAX + 1], *f[MAX_FIELDS + 1];
	unsigned n = 0, i, planes, k;
	bool v1;
	uint64_t v;
	size_t len;

	if (!name)
		return -EINVAL;
	len = strlen(name);
	if (strncmp(name, PREFIX, strlen(PREFIX)) == 0)
		v1 = false;
	else if (strncmp(name, PREFIX_V1, strlen(PREFIX_V1)) == 0)
		v1 = true;
	else
		return -EINVAL;
	if (len > FDSTORE_NAME_MAX)
		return -EINVAL;
	memcpy(copy, name, len + 1);
	/* split on '.': every field non-empty */
	for (char *p = copy;;) {
		char *dot = strchr(p, '.');
		if (n == ELEMENTSOF(f))
			return -EINVAL;
		f[n++] = p;
		if (!dot)
			break;
		*dot = 0;
		p = dot + 1;
	}
	for (i = 0; i < n; i++)
		if (!*f[i])
			return -EINVAL;
	if (n < 12)
		return -EINVAL;
	memset(ret, 0, sizeof(*ret));
	if (!parse_number(f[2], UINT64_MAX, &ret->id) || ret->id == 0 || !parse_u32(f[3], &ret->width) ||
	    !parse_u32(f[4], &ret->height) || !parse_u32(f[5], &ret->fourcc) ||
	    !parse_number(f[6], UINT64_MAX, &ret->modifier) || !parse_u32(f[7], &ret->usage) ||
	    !parse_uid(f[8], &ret->owner_uid) || !parse_u32(f[9], &ret->flags) ||
	    !parse_number(f[11], FORMAT_MAX_PLANES, &v) || v == 0)
		return -EINVAL;
	if (ret->flags & ~(v1 ? FDSTORE_DMABUF | FDSTORE_IMPORTED : FDSTORE_DMABUF | FDSTORE_IMPORTED | FDSTORE_NO_POOL))
		return -EINVAL;
	if (strlen(f[10]) >= sizeof(ret->backend) || !backend_valid(f[10]) || strchr(f[10], ':'))
		return -EINVAL;
	snprintf(ret->backend, sizeof(ret->backend), "%s", f[10]);
	for (char *p = ret->backend; *p; p++)
		if (*p == '+')
			*p = ':';
	planes = (unsigned)v;
	ret->layout.n_planes = (uint8_t)planes;
	i = 12;
	if (n < i + 2 * planes)
		return -EINVAL;
	for (unsigned j = 0; j < planes; j++, i += 2)
		if (!parse_number(f[i], UINT64_MAX, &ret->layout.plane[j].offset) ||
		    !parse_u32(f[i + 1], &ret->layout.plane[j].stride))
			return -EINVAL;
	if (v1) {
		if (i != n)
			return -EINVAL;
		/* who else held it was not recorded: its owner alone may reclaim it, and it is never pooled */
		ret->uids[0] = ret->owner_uid;
		ret->n_uids = 1;
		ret->flags |= FDSTORE_NO_POOL;
		return 0;
	}
	if (i >= n || !parse_number(f[i], FDSTORE_MAX_UIDS, &v))
		return -EINVAL;
	k = (unsigned)v;
	i++;
	if (n != i + k)
		return -EINVAL;
	for (unsigned j = 0; j < k; j++)
		if (!parse_uid(f[i + j], &ret->uids[j]))
			return -EINVAL;
	ret->n_uids = k;
	return 0;
}

/* A name the service manager could have given us: printable ASCII, no ':', not too long. */
static bool fdname_valid(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > FDSTORE_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (name[i] < ' ' || name[i] > '~' || name[i] == ':')
			return false;
	return true;
}

static int cmp_uid(const void *a, const void *b)
{
	uid_t x = *(const uid_t *)a, y = *(const uid_t *)b;
	return x < y ? -1 : x > y;
}

static void add_uid(uid_t *uids, unsigned *n, unsigned max, uid_t uid)
{
	for (unsigned i = 0; i < *n; i++)
		if (uids[i] == uid)
			return;
	if (*n < max)
		uids[(*n)++] = uid;
}

/*
 * Who may reclaim buf after a restart: the uids of its holders, and while
 * it waits to be reclaimed, those recorded before. The owner's first if it
 * is among them, then the others in order, at most FDSTORE_MAX_UIDS.
 */
static unsigned reclaim_uids(const struct buffer *buf, uid_t *uids)
{
	struct broker *b = buf->broker;
	uid_t all[64];
	unsigned n = 0, k = 0;
	bool owner = false;

	for (const struct hold *h = buf->holders; h; h = h->next_in_buffer) {
		if (h->client == &b->restored)
			for (unsigned i = 0; i < buf->n_reclaim_uids; i++)
				add_uid(all, &n, ELEMENTSOF(all), buf->reclaim_uids[i]);
		else if (h->client != &b->self)
			add_uid(all, &n, ELEMENTSOF(all), h->client->uid);
	}
	qsort(all, n, sizeof(all[0]), cmp_uid);
	for (unsigned i = 0; i < n; i++)
		owner |= all[i] == buf->owner_uid;
	if (owner)
		uids[k++] = buf->owner_uid;
	for (unsigned i = 0; i < n && k < FDSTORE_MAX_UIDS; i++)
		if (all[i] != buf->owner_uid)
			uids[k++] = all[i];
	return k;
}

static int name_of(const struct buffer *buf, char *out, size_t size)
{
	struct fdstore_record rec = {
		.id = buf->id, .modifier = buf->modifier, .width = buf->width, .height = buf->height,
		.fourcc = buf->fourcc, .usage = buf->usage, .owner_uid = buf->owner_uid, .layout = buf->layout,
		.flags = (buf->dmabuf ? FDSTORE_DMABUF : 0) | (buf->imported ? FDSTORE_IMPORTED : 0) |
			 (buf->no_pool ? FDSTORE_NO_POOL : 0),
	};

	snprintf(rec.backend, sizeof(rec.backend), "%s", buf->backend ? buf->backend->name : "-");
	if (!backend_valid(rec.backend))
		snprintf(rec.backend, sizeof(rec.backend), "-"); /* not a name we can write: not pooled after a restore */
	rec.n_uids = reclaim_uids(buf, rec.uids);
	return fdstore_format_name(&rec, out, size);
}

static void notify_remove(struct broker *b, const char *name)
{
	char msg[FDSTORE_NAME_MAX + 64];
	int r;

	snprintf(msg, sizeof(msg), "FDSTOREREMOVE=1\nFDNAME=%s", name);
	r = notify_send(b->notify, msg, -1);
	if (r < 0 && r != -ENOTCONN)
		log_warning("fd store: cannot drop '%s': %s", name, strerror(-r));
}

void fdstore_add(struct buffer *buf)
{
	char msg[FDSTORE_NAME_MAX + 64];
	int r;

	if (!buf->broker->fd_store)
		return;
	r = name_of(buf, buf->fdname, sizeof(buf->fdname));
	if (r >= 0) {
		snprintf(msg, sizeof(msg), "FDSTORE=1\nFDNAME=%s", buf->fdname);
		r = notify_send(buf->broker->notify, msg, buf->fd);
	}
	if (r < 0) {
		buf->fdname[0] = 0;
		log_warning("buffer %" PRIu64 ": cannot put it in the fd store (%s): it would not survive a restart",
			    buf->id, r == -ENOTCONN ? "no NOTIFY_SOCKET" : strerror(-r));
	}
}

void fdstore_remove(struct buffer *buf)
{
	if (!buf->broker->fd_store || !buf->fdname[0])
		return;
	notify_remove(buf->broker, buf->fdname);
	buf->fdname[0] = 0;
}

void fdstore_update(struct buffer *buf)
{
	if (!buf->fdname[0])
		return;
	/* removed first: the store ignores an fd it holds already, whatever its new name */
	fdstore_remove(buf);
	fdstore_add(buf);
}

void fdstore_holders_changed(struct buffer *buf)
{
	char name[sizeof(buf->fdname)];

	if (!buf->broker->fd_store || !buf->fdname[0])
		return;
	if (name_of(buf, name, sizeof(name)) >= 0 && strcmp(name, buf->fdname) == 0)
		return;
	fdstore_update(buf);
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

static int refuse(struct broker *b, const char *name, const char *why)
{
	log_warning("fd store: dropping an fd named '%s': %s", name, why);
	if (b->fd_store && fdname_valid(name))
		notify_remove(b, name);
	return -EINVAL;
}

int fdstore_restore_fd(struct broker *b, int fd, const char *name)
{
	_cleanup_close_ int owned = fd;
	struct error e = ERROR_NULL;
	const struct format_info *f;
	struct fdstore_record rec;
	struct buffer *buf;
	off_t size;
	int r;

	if (!name)
		return -EINVAL;
	if (fdstore_parse_name(name, &rec) < 0)
		return refuse(b, name, "not a buffer of ours");
	if (buffer_find(b, rec.id))
		return refuse(b, name, "a second buffer under that id");
	f = format_lookup(rec.fourcc);
	size = lseek(fd, 0, SEEK_END);
	if (!f || f->n_planes != rec.layout.n_planes || size <= 0 ||
	    layout_validate(f, rec.width, rec.height, &rec.layout, (uint64_t)size) < 0)
		return refuse(b, name, "its planes do not fit the fd");
	fd_budget_charge_always(b, 1); /* it is ours already; buffer_register() takes the charge */
	r = buffer_register(b, &b->restored, TAKE_FD(owned), &buf, &e);
	if (r < 0) {
		log_warning("fd store: cannot restore buffer %" PRIu64 ": %s", rec.id,
			    error_is_set(&e) ? e.message : strerror(-r));
		return r;
	}
	/* back under its old id */
	hashmap_remove(&b->buffers, buf->id);
	buf->id = rec.id;
	r = hashmap_put(&b->buffers, buf->id, buf);
	if (r < 0) {
		buf->id = 0; /* in no map: buffer_free's removal must not hit another */
		buffer_release(buffer_held_by(buf, &b->restored));
		return r;
	}
	if (b->next_buffer_id < buf->id)
		b->next_buffer_id = buf->id;
	rec.layout.size = buf->size;
	buffer_describe(buf, rec.width, rec.height, rec.fourcc, rec.modifier, rec.usage, &rec.layout);
	buf->owner_uid = rec.owner_uid;
	buf->dmabuf = rec.flags & FDSTORE_DMABUF;
	buf->imported = rec.flags & FDSTORE_IMPORTED;
	buf->no_pool = rec.flags & FDSTORE_NO_POOL;
	memcpy(buf->reclaim_uids, rec.uids, sizeof(rec.uids[0]) * rec.n_uids);
	buf->n_reclaim_uids = (uint8_t)rec.n_uids;
	for (struct backend *be = b->backends.list; be; be = be->next)
		if (strcmp(be->name, rec.backend) == 0)
			buf->backend = be;
	snprintf(buf->fdname, sizeof(buf->fdname), "%s", name);
	fdstore_holders_changed(buf); /* a name of the first format is stored again in the current one */
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
		if (!names || !names[i]) {
			log_warning("fd store: dropping fd %d without a name", fd);
			close(fd);
			continue;
		}
		if (fdstore_restore_fd(b, fd, names[i]) == 0)
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

/* The checks of one Reclaim entry; error names the first that fails. */
static int check_reclaim(struct client *c, uint64_t id, int fd, struct buffer **ret, struct error *error)
{
	struct broker *b = c->broker;
	struct buffer *buf = buffer_find(b, id);
	struct stat a, st;
	bool uid_ok = false;
	int flags;

	/* one answer for "no such buffer", "not restored" and "not yours": nothing leaks */
	if (buf && buffer_held_by(buf, &b->restored))
		for (unsigned i = 0; i < buf->n_reclaim_uids; i++)
			uid_ok |= buf->reclaim_uids[i] == c->uid;
	if (!uid_ok)
		return error_setf(error, DMABROKER_E_NOT_RECLAIMABLE,
					 "no buffer %" PRIu64 " waits to be reclaimed by uid %u (a buffer restored from "
					 "the fd store goes back to a uid that held it before the restart, within "
					 "restore-grace)", id, (unsigned)c->uid);
	flags = fcntl(fd, F_GETFL);
	if (flags < 0 || (flags & O_PATH))
		return error_setf(error, DMABROKER_E_NOT_RECLAIMABLE,
					 "buffer %" PRIu64 ": an O_PATH fd proves nothing; show your fd of the buffer", id);
	if (fstat(fd, &a) < 0 || fstat(buf->fd, &st) < 0 || a.st_ino != st.st_ino || a.st_dev != st.st_dev)
		return error_setf(error, DMABROKER_E_NOT_RECLAIMABLE,
					 "buffer %" PRIu64 ": the fd shown is another file; show your fd of the buffer", id);
	*ret = buf;
	return 0;
}

int fdstore_reclaim(struct client *c, const uint64_t *ids, const int *fds, unsigned n, struct error *error)
{
	struct broker *b = c->broker;
	_cleanup_free_ struct buffer **bufs = NULL;
	_cleanup_free_ bool *taken = NULL;
	int r = 0;

	if (n == 0)
		return 0;
	if (!b->restored.holds)
		return error_setf(error, DMABROKER_E_NOT_RECLAIMABLE,
					 "nothing to reclaim: no buffer restored from the fd store waits (the daemon "
					 "did not restart with one, or restore-grace, %u s, is over)",
					 b->config.restore_grace_sec);
	bufs = calloc(n, sizeof(*bufs));
	taken = calloc(n, sizeof(*taken));
	if (!bufs || !taken)
		return -ENOMEM;
	for (unsigned i = 0; i < n; i++) {
		r = check_reclaim(c, ids[i], fds[i], &bufs[i], error);
		if (r < 0)
			return r;
	}
	for (unsigned i = 0; i < n; i++) {
		if (buffer_held_by(bufs[i], c))
			continue;
		r = buffer_hold(bufs[i], c, error);
		if (r < 0)
			break;
		taken[i] = true;
	}
	if (r < 0) /* all or nothing; the restored hold keeps each buffer alive */
		for (unsigned i = 0; i < n; i++)
			if (taken[i])
				buffer_release(buffer_held_by(bufs[i], c));
	return r;
}

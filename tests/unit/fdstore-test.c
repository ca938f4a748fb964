/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of daemon/core/fdstore.c's names, without a service manager: the
 * round trip of every field, the holders' uids and the never-pool mark; the
 * first format read conservatively; strict refusal of malformed names; the
 * uids that do not fit in systemd's 255 characters left out; and a restore
 * from an fd and its name, which refuses what does not fit and leaks
 * nothing.
 */
#include <dirent.h>
#include <drm_fourcc.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "broker.h"
#include "cleanup.h"
#include "error.h"
#include "fdstore.h"
#include "tap.h"
#include "fd-util.h"

TAP_DEFINE;

static bool same(const struct fdstore_record *a, const struct fdstore_record *b)
{
	if (a->id != b->id || a->modifier != b->modifier || a->width != b->width || a->height != b->height ||
	    a->fourcc != b->fourcc || a->usage != b->usage || a->flags != b->flags || a->owner_uid != b->owner_uid ||
	    strcmp(a->backend, b->backend) != 0 || a->layout.n_planes != b->layout.n_planes || a->n_uids != b->n_uids)
		return false;
	for (unsigned i = 0; i < a->layout.n_planes; i++)
		if (a->layout.plane[i].offset != b->layout.plane[i].offset ||
		    a->layout.plane[i].stride != b->layout.plane[i].stride)
			return false;
	for (unsigned i = 0; i < a->n_uids; i++)
		if (a->uids[i] != b->uids[i])
			return false;
	return true;
}

static bool step_round_trip(void)
{
	struct fdstore_record r = {
		.id = 42, .modifier = 0, .width = 1920, .height = 1080, .fourcc = DRM_FORMAT_NV12, .usage = 0x13,
		.flags = FDSTORE_DMABUF | FDSTORE_NO_POOL, .owner_uid = 1000, .backend = "heap:system",
		.layout = { .n_planes = 2, .plane = { { 0, 1920 }, { 1920 * 1080, 1920 } } },
		.uids = { 1000, 0, 65534 }, .n_uids = 3,
	}, back;
	char name[FDSTORE_NAME_MAX + 1], again[FDSTORE_NAME_MAX + 1];

	CHECK(fdstore_format_name(&r, name, sizeof(name)) > 0);
	tap_diag("%s", name);
	CHECK(strcmp(name, "dmabroker.b2.42.1920.1080.842094158.0.19.1000.5.heap+system.2.0.1920.2073600.1920"
			   ".3.1000.0.65534") == 0);
	CHECK(fdstore_parse_name(name, &back) == 0 && same(&r, &back));
	CHECK(fdstore_format_name(&back, again, sizeof(again)) > 0 && strcmp(name, again) == 0);
	/* no uid at all: nobody may reclaim it */
	r.n_uids = 0;
	CHECK(fdstore_format_name(&r, name, sizeof(name)) > 0 && fdstore_parse_name(name, &back) == 0 &&
	      same(&r, &back));
	/* too small an output */
	CHECK(fdstore_format_name(&r, name, 10) == -ENOBUFS);
	return true;
}

static bool step_first_format(void)
{
	struct fdstore_record r;

	CHECK(fdstore_parse_name("dmabroker.b.5.64.64.875713112.0.3.1000.1.heap+system.1.0.256", &r) == 0);
	CHECK(r.id == 5 && r.width == 64 && r.height == 64 && r.fourcc == DRM_FORMAT_XRGB8888 && r.usage == 3);
	CHECK(r.owner_uid == 1000 && strcmp(r.backend, "heap:system") == 0);
	CHECK(r.layout.n_planes == 1 && r.layout.plane[0].offset == 0 && r.layout.plane[0].stride == 256);
	/* who else held it is unknown: its owner alone may reclaim it, and it is never pooled */
	CHECK(r.n_uids == 1 && r.uids[0] == 1000);
	CHECK(r.flags == (FDSTORE_DMABUF | FDSTORE_NO_POOL));
	/* the first format had no never-pool bit, nor uids */
	CHECK(fdstore_parse_name("dmabroker.b.5.64.64.875713112.0.3.1000.4.shm.1.0.256", &r) == -EINVAL);
	CHECK(fdstore_parse_name("dmabroker.b.5.64.64.875713112.0.3.1000.1.shm.1.0.256.1.1000", &r) == -EINVAL);
	return true;
}

static bool step_strict(void)
{
	static const char *const bad[] = {
		"",
		"dmabroker",
		"dmabroker.b2.",
		"dmabroker.c.1.64.64.875713112.0.3.0.0.shm.1.0.256.1.0",
		"xdmabroker.b2.1.64.64.875713112.0.3.0.0.shm.1.0.256.1.0",
		"dmabroker.b2.0.64.64.875713112.0.3.0.0.shm.1.0.256.1.0",       /* id 0 */
		"dmabroker.b2.01.64.64.875713112.0.3.0.0.shm.1.0.256.1.0",      /* leading zero */
		"dmabroker.b2.+1.64.64.875713112.0.3.0.0.shm.1.0.256.1.0",      /* sign */
		"dmabroker.b2.-1.64.64.875713112.0.3.0.0.shm.1.0.256.1.0",
		"dmabroker.b2. 1.64.64.875713112.0.3.0.0.shm.1.0.256.1.0",      /* space */
		"dmabroker.b2.1.4294967296.64.875713112.0.3.0.0.shm.1.0.256.1.0", /* width past 32 bits */
		"dmabroker.b2.18446744073709551616.64.64.875713112.0.3.0.0.shm.1.0.256.1.0", /* id past 64 bits */
		"dmabroker.b2.1.64.64.875713112.0.3.0.0.shm.0.1.0",             /* no plane */
		"dmabroker.b2.1.64.64.875713112.0.3.0.0.shm.4.0.256.0.256.0.256.0.256.1.0", /* 4 planes */
		"dmabroker.b2.1.64.64.875713112.0.3.0.0.shm.2.0.256.1.0",       /* a plane short */
		"dmabroker.b2.1.64.64.875713112.0.3.0.0.shm.1.0.256.1.0.",      /* trailing dot */
		"dmabroker.b2.1.64.64.875713112.0.3.0.0.shm.1.0.256.1.0.7",     /* one uid too many */
		"dmabroker.b2.1.64.64.875713112.0.3.0.0.shm.1.0.256.2.0",       /* one uid short */
		"dmabroker.b2.1.64.64.875713112.0.3.0.0.shm.1.0.256",           /* no uid count */
		"dmabroker.b2.1.64.64.875713112.0.3.0.0.shm.1.0.256.9.1.2.3.4.5.6.7.8.9", /* more than 8 uids */
		"dmabroker.b2.1.64.64.875713112.0.3.0.0.shm.1.0.256.1.4294967295", /* (uid_t)-1 */
		"dmabroker.b2.1.64.64.875713112.0.3.4294967295.0.shm.1.0.256.1.0", /* owner (uid_t)-1 */
		"dmabroker.b2.1.64.64.875713112.0.3.0.8.shm.1.0.256.1.0",       /* unknown flag */
		"dmabroker.b2.1.64.64.875713112.0.3.0.0.heap:system.1.0.256.1.0", /* ':' separates names */
		"dmabroker.b2.1.64.64.875713112.0.3.0.0.heap/x.1.0.256.1.0",
		"dmabroker.b2.1.64.64.875713112.0.3.0.0..1.0.256.1.0",          /* empty backend */
		"dmabroker.b2.1..64.875713112.0.3.0.0.shm.1.0.256.1.0",         /* empty field */
		"dmabroker.b2.1.64.64.875713112.0.3.0.0.shm.1.0.256.1.0\n",
		"dmabroker.b2.1.64.64.875713112.0.3.0.0.shm.1.0.256.1.0\nFDSTOREREMOVE=1",
	};
	struct fdstore_record r;
	char longest[400];

	for (size_t i = 0; i < ELEMENTSOF(bad); i++)
		CHECKF(fdstore_parse_name(bad[i], &r) == -EINVAL, "accepted: '%s'", bad[i]);
	CHECK(fdstore_parse_name(NULL, &r) == -EINVAL);
	/* the well-formed neighbour of them all is taken */
	CHECK(fdstore_parse_name("dmabroker.b2.1.64.64.875713112.0.3.0.0.shm.1.0.256.1.0", &r) == 0);
	/* longer than systemd allows */
	snprintf(longest, sizeof(longest), "dmabroker.b2.1.64.64.875713112.0.3.0.0.%0250d.1.0.256.1.0", 0);
	CHECK(fdstore_parse_name(longest, &r) == -EINVAL);
	return true;
}

static bool step_too_many_uids(void)
{
	struct fdstore_record r = {
		.id = UINT64_MAX, .modifier = UINT64_MAX - 1, .width = 4000000000u, .height = 4000000000u,
		.fourcc = DRM_FORMAT_YUV420, .usage = 4000000000u, .flags = 7, .owner_uid = 4000000000u,
		.backend = "drm:virtio_gpu",
		.layout = { .n_planes = 3, .plane = { { UINT64_MAX, 4000000000u }, { UINT64_MAX, 4000000000u },
						      { UINT64_MAX, 4000000000u } } },
		.n_uids = FDSTORE_MAX_UIDS,
	}, back;
	char name[FDSTORE_NAME_MAX + 1];
	int len;

	for (unsigned i = 0; i < FDSTORE_MAX_UIDS; i++)
		r.uids[i] = 4000000000u + i;
	len = fdstore_format_name(&r, name, sizeof(name));
	CHECK(len > 0 && len <= FDSTORE_NAME_MAX && strlen(name) == (size_t)len);
	CHECK(fdstore_parse_name(name, &back) == 0);
	tap_diag("%d characters, %u of %u uids", len, back.n_uids, r.n_uids);
	CHECK(back.n_uids < r.n_uids);
	for (unsigned i = 0; i < back.n_uids; i++)
		CHECK(back.uids[i] == r.uids[i]); /* the first ones: the owner's comes first */
	/* not even without uids: no name */
	snprintf(r.backend, sizeof(r.backend), "%s", "drm:a_backend_name_that_is_as_long_as_they_may_be_63_chars_x");
	r.n_uids = 0;
	CHECK(fdstore_format_name(&r, name, sizeof(name)) == -ENAMETOOLONG);
	/* what no name can say */
	r = back;
	r.id = 0;
	CHECK(fdstore_format_name(&r, name, sizeof(name)) == -EINVAL);
	r = back;
	snprintf(r.backend, sizeof(r.backend), "a.b");
	CHECK(fdstore_format_name(&r, name, sizeof(name)) == -EINVAL);
	return true;
}

static bool step_restore_fd(void)
{
	struct broker b;
	struct buffer *buf;
	int fds0 = self_fd_count();

	memset(&b, 0, sizeof(b));
	config_init(&b.config);
	b.restored.broker = &b;
	b.self.broker = &b;
	/* 64x64 XRGB8888 in 16 KiB, held by uids 1000 and 0, never pooled */
	CHECK(fdstore_restore_fd(&b, memfd_of_size(16384), "dmabroker.b2.7.64.64.875713112.0.3.1000.4.shm.1.0.256.2.1000.0") == 0);
	buf = buffer_find(&b, 7);
	CHECK(buf && buf->size == 16384 && buf->width == 64 && buf->owner_uid == 1000 && buf->no_pool);
	CHECK(buf->n_reclaim_uids == 2 && buf->reclaim_uids[0] == 1000 && buf->reclaim_uids[1] == 0);
	CHECK(buffer_held_by(buf, &b.restored) && b.next_buffer_id == 7);
	/* the same id again, garbage, planes past the fd's end, an unknown fourcc: refused, fd closed */
	CHECK(fdstore_restore_fd(&b, memfd_of_size(16384), "dmabroker.b2.7.64.64.875713112.0.3.1000.4.shm.1.0.256.0") < 0);
	CHECK(fdstore_restore_fd(&b, memfd_of_size(16384), "dmabroker.b2.8.garbage") < 0);
	CHECK(fdstore_restore_fd(&b, memfd_of_size(4096), "dmabroker.b2.9.64.64.875713112.0.3.1000.0.shm.1.0.256.1.1000") < 0);
	CHECK(fdstore_restore_fd(&b, memfd_of_size(16384), "dmabroker.b2.10.64.64.1.0.3.1000.0.shm.1.0.256.1.1000") < 0);
	CHECK(fdstore_restore_fd(&b, memfd_of_size(16384), "dmabroker.b2.11.64.64.875713112.0.3.1000.0.shm.1.0.64.1.1000") < 0);
	CHECK(fdstore_restore_fd(&b, memfd_of_size(16384), NULL) == -EINVAL);
	CHECK(!buffer_find(&b, 8) && !buffer_find(&b, 9) && !buffer_find(&b, 10) && !buffer_find(&b, 11));
	CHECK(b.restored.n_holds == 1);
	while (b.restored.holds)
		buffer_release(b.restored.holds);
	CHECK(!buffer_find(&b, 7));
	hashmap_clear(&b.buffers);
	config_free(&b.config);
	CHECK(self_fd_count() == fds0);
	return true;
}

static bool refused(int r, struct error *e)
{
	bool ok = r < 0 && e->code == DMABROKER_E_NOT_RECLAIMABLE;
	if (!ok)
		tap_diag("got %d %s", r, error_is_set(e) && error_name(e) ? error_name(e) : "(no named error)");
	else
		tap_diag("refused: %s", e->message);
	*e = ERROR_NULL;
	return ok;
}

static bool step_reclaim(void)
{
	struct error e = ERROR_NULL;
	struct client alice, root;
	struct broker b;
	struct buffer *x, *y;
	uint64_t ids[2] = { 7, 8 };
	int fds[2], path_fd, other, fds0 = self_fd_count();
	char proc[64];

	memset(&b, 0, sizeof(b));
	config_init(&b.config);
	b.restored.broker = &b;
	b.self.broker = &b;
	alice = (struct client){ .broker = &b, .id = 1, .uid = 1000 };
	root = (struct client){ .broker = &b, .id = 2, .uid = 0 };
	/* nothing restored: nothing to reclaim, but an empty list is fine */
	CHECK(fdstore_reclaim(&alice, ids, fds, 0, &e) == 0);
	fds[0] = memfd_of_size(16384);
	CHECK(refused(fdstore_reclaim(&alice, ids, fds, 1, &e), &e));
	close(fds[0]);
	/* 7: alice's alone; 8: alice's, shared with root */
	CHECK(fdstore_restore_fd(&b, memfd_of_size(16384), "dmabroker.b2.7.64.64.875713112.0.3.1000.0.shm.1.0.256.1.1000") == 0);
	CHECK(fdstore_restore_fd(&b, memfd_of_size(16384), "dmabroker.b2.8.64.64.875713112.0.3.1000.4.shm.1.0.256.2.1000.0") == 0);
	x = buffer_find(&b, 7);
	y = buffer_find(&b, 8);
	CHECK(x && y);
	fds[0] = buffer_dup_fd(x);
	fds[1] = buffer_dup_fd(y);
	/* another uid, with the real fd */
	CHECK(refused(fdstore_reclaim(&root, ids, fds, 1, &e), &e));
	/* an O_PATH fd of it */
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fds[0]);
	path_fd = open(proc, O_PATH | O_CLOEXEC);
	CHECK(path_fd >= 0);
	CHECK(refused(fdstore_reclaim(&alice, ids, &path_fd, 1, &e), &e));
	close(path_fd);
	/* another file under the right id, after a good entry: all or nothing */
	other = memfd_of_size(16384);
	CHECK(refused(fdstore_reclaim(&alice, ids, (int[]){ fds[0], other }, 2, &e), &e));
	close(other);
	CHECK(alice.n_holds == 0);
	/* over the quota on the second: nothing kept */
	b.config.max_buffers_per_client = 1;
	CHECK(fdstore_reclaim(&alice, ids, fds, 2, &e) < 0 && (e.code == DMABROKER_E_QUOTA_EXCEEDED));
	e = ERROR_NULL;
	CHECK(alice.n_holds == 0 && x->n_holders == 1 && y->n_holders == 1);
	b.config.max_buffers_per_client = 2;
	CHECK(fdstore_reclaim(&alice, ids, fds, 2, &e) == 0);
	CHECK(alice.n_holds == 2 && buffer_held_by(x, &alice) && buffer_held_by(y, &alice));
	/* again: nothing changes */
	CHECK(fdstore_reclaim(&alice, ids, fds, 2, &e) == 0 && alice.n_holds == 2);
	/* root held 8 before the restart */
	CHECK(fdstore_reclaim(&root, ids + 1, fds + 1, 1, &e) == 0 && buffer_held_by(y, &root));
	/* the grace ends: the restored holds go, and with them any further reclaim */
	while (b.restored.holds)
		buffer_release(b.restored.holds);
	CHECK(refused(fdstore_reclaim(&root, ids, fds, 1, &e), &e));
	while (alice.holds)
		buffer_release(alice.holds);
	while (root.holds)
		buffer_release(root.holds);
	CHECK(!buffer_find(&b, 7) && !buffer_find(&b, 8));
	close(fds[0]);
	close(fds[1]);
	hashmap_clear(&b.buffers);
	config_free(&b.config);
	CHECK(self_fd_count() == fds0);
	return true;
}

int main(void)
{
	tap_plan(6);
	tap_step("a name says every field, the holders' uids and the never-pool mark, and reads back the same",
		 step_round_trip);
	tap_step("a name of the first format reads as its owner's alone, never pooled", step_first_format);
	tap_step("malformed names are refused: signs, spaces, zeros, overflow, counts, flags, separators, length",
		 step_strict);
	tap_step("uids that do not fit in 255 characters are left out, the last first", step_too_many_uids);
	tap_step("a restore from an fd and its name; what does not fit is refused and closed", step_restore_fd);
	tap_step("Reclaim: restored, in the grace, by a uid that held it, with its own fd; all or nothing",
		 step_reclaim);
	return tap_done();
}

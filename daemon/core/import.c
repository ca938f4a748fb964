/* SPDX-License-Identifier: MIT */
/*
 * Import: a client's own dma-buf, checked (it is a dma-buf, the planes it
 * says it has fit in it) and registered like an allocated buffer.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <drm_fourcc.h>

#include "broker.h"
#include "fdstore.h"
#include "quota.h"

#define DMA_BUF_FS_MAGIC 0x444d4142 /* "DMAB", include/uapi/linux/magic.h */

static const char *fd_kind(int fd)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return "an unusable fd";
	if (S_ISFIFO(st.st_mode))
		return "a pipe";
	if (S_ISREG(st.st_mode))
		return "a regular file";
	if (S_ISSOCK(st.st_mode))
		return "a socket";
	if (S_ISCHR(st.st_mode))
		return "a character device";
	if (S_ISDIR(st.st_mode))
		return "a directory";
	return "not a dma-buf";
}

int broker_import(struct client *c, const struct import_args *a, struct buffer **ret, struct error *error)
{
	struct broker *b = c->broker;
	const struct format_info *f;
	struct layout l = a->layout;
	struct statfs sfs;
	struct buffer *buf;
	off_t size;
	int r, own;

	if (fstatfs(a->fd, &sfs) < 0 || sfs.f_type != DMA_BUF_FS_MAGIC)
		return error_setf(error, DMABROKER_E_NOT_A_DMABUF, "the fd is %s, not a dma-buf", fd_kind(a->fd));
	r = buffer_check_image(b, a->width, a->height, a->fourcc, a->usage, &f, error);
	if (r < 0)
		return r;
	if (a->modifier != DRM_FORMAT_MOD_LINEAR)
		return error_setf(error, DMABROKER_E_UNSUPPORTED_MODIFIER,
				  "modifier 0x%llx: dmabroker checks and imports linear buffers only",
				  (unsigned long long)a->modifier);
	if (l.n_planes != f->n_planes)
		return error_setf(error, DMABROKER_E_INVALID_ARGUMENT, "%s has %u planes; %u were described", f->name,
				  f->n_planes, l.n_planes);
	size = lseek(a->fd, 0, SEEK_END);
	if (size <= 0)
		return error_setf(error, DMABROKER_E_NOT_A_DMABUF, "cannot tell the dma-buf's size");
	r = layout_validate(f, a->width, a->height, &l, (uint64_t)size);
	if (r == -EINVAL)
		return error_setf(error, DMABROKER_E_INVALID_ARGUMENT, "a stride is smaller than a row of %u %s pixels",
				  a->width, f->name);
	if (r < 0)
		return error_setf(error, DMABROKER_E_PLANES_DO_NOT_FIT,
				  "the planes described for %ux%u %s do not fit in the dma-buf's %lld bytes", a->width,
				  a->height, f->name, (long long)size);
	r = fd_budget_charge(b, 1, error); /* buffer_register() takes the charge over */
	if (r < 0)
		return r;
	own = fcntl(a->fd, F_DUPFD_CLOEXEC, 3);
	if (own < 0) {
		r = -errno;
		fd_budget_uncharge(b, 1);
		return r;
	}
	r = buffer_register(b, c, own, &buf, error);
	if (r < 0)
		return r;
	buf->imported = true;
	buf->dmabuf = true;
	l.size = buf->size;
	buffer_describe(buf, a->width, a->height, a->fourcc, a->modifier, a->usage, &l);
	fdstore_add(buf);
	*ret = buf;
	return 0;
}

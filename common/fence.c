/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/dma-buf.h>
#include <linux/sync_file.h>

#include "fence.h"

int fence_wait(int fence, int timeout_ms)
{
	struct pollfd p = { .fd = fence, .events = POLLIN };
	int r;

	do
		r = poll(&p, 1, timeout_ms);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	if (r > 0 && (p.revents & (POLLERR | POLLNVAL)))
		return -EBADF;
	return r > 0;
}

int fence_status(int fence)
{
	return fence_wait(fence, 0);
}

bool fence_is_sync_file(int fd)
{
	struct sync_file_info info = { 0 }; /* num_fences 0: the header only */
	return ioctl(fd, SYNC_IOC_FILE_INFO, &info) == 0;
}

int fence_merge(int a, int b)
{
	struct sync_merge_data m = { .fd2 = b };

	strcpy(m.name, "dmabroker");
	if (ioctl(a, SYNC_IOC_MERGE, &m) < 0)
		return -errno;
	return m.fence; /* the kernel sets O_CLOEXEC on sync_file fds */
}

int fence_accumulate(int *acc, int add)
{
	int merged;

	if (add < 0)
		return 0;
	if (*acc < 0) {
		*acc = add;
		return 0;
	}
	merged = fence_merge(*acc, add);
	close(add);
	if (merged < 0)
		return merged;
	close(*acc);
	*acc = merged;
	return 0;
}

int dmabuf_export_fence(int dmabuf, bool write)
{
	struct dma_buf_export_sync_file e = { .flags = write ? DMA_BUF_SYNC_WRITE : DMA_BUF_SYNC_READ, .fd = -1 };
	if (ioctl(dmabuf, DMA_BUF_IOCTL_EXPORT_SYNC_FILE, &e) < 0)
		return -errno;
	return e.fd;
}

int dmabuf_import_fence(int dmabuf, int fence, bool write)
{
	struct dma_buf_import_sync_file i = { .flags = write ? DMA_BUF_SYNC_WRITE : DMA_BUF_SYNC_READ, .fd = fence };
	return ioctl(dmabuf, DMA_BUF_IOCTL_IMPORT_SYNC_FILE, &i) < 0 ? -errno : 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * kernel-interfaces: the test bed's first real test. Runs inside the VM
 * (tests/vm/vm-run) against the real drivers and asserts every step of what
 * dmabroker is built on: dma-buf heaps, udmabuf, DRM dumb + PRIME on vgem,
 * CPU access bracketed by DMA_BUF_IOCTL_SYNC, sync_file import/export with
 * sw_sync and vgem fences, a vkms atomic flip gated by IN_FENCE_FD with an
 * OUT_FENCE_PTR that signals, and a vivid capture into a heap buffer with
 * V4L2_MEMORY_DMABUF. Output is TAP.
 */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/dma-buf.h>
#include <linux/dma-heap.h>
#include <linux/sync_file.h>
#include <linux/udmabuf.h>
#include <linux/videodev2.h>

#include <drm_fourcc.h>
#include <xf86drm.h>
#include <xf86drmMode.h>

#include "drm-find.h"

#include "tap.h"
#include "uapi-extra.h"

TAP_DEFINE;

#define MIB (1024u * 1024u)
#define ELEMENTS(a) (sizeof(a) / sizeof((a)[0]))

/* ---- helpers ---- */

static int heap_alloc(const char *heap, size_t size)
{
	char path[128];
	struct dma_heap_allocation_data data = {
		.len = size,
		.fd_flags = O_RDWR | O_CLOEXEC,
	};
	int heap_fd, r;

	snprintf(path, sizeof(path), "/dev/dma_heap/%s", heap);
	heap_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (heap_fd < 0)
		return -errno;
	r = ioctl(heap_fd, DMA_HEAP_IOCTL_ALLOC, &data);
	r = r < 0 ? -errno : (int)data.fd;
	close(heap_fd);
	return r;
}

/* The CMA heap is named after its CMA area ("reserved" for the default one). */
static bool find_cma_heap(char *name, size_t len)
{
	DIR *d = opendir("/dev/dma_heap");
	struct dirent *e;
	bool found = false;

	if (!d)
		return false;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.' || strcmp(e->d_name, "system") == 0 ||
		    strncmp(e->d_name, "system", 6) == 0)
			continue;
		snprintf(name, len, "%s", e->d_name);
		found = true;
		break;
	}
	closedir(d);
	return found;
}

static off_t dmabuf_size(int fd)
{
	return lseek(fd, 0, SEEK_END);
}

static int dmabuf_sync(int fd, uint64_t flags)
{
	struct dma_buf_sync s = { .flags = flags };
	return ioctl(fd, DMA_BUF_IOCTL_SYNC, &s) < 0 ? -errno : 0;
}

/* 1 when signalled, 0 when pending after timeout_ms, negative on error. */
static int fence_wait(int fence, int timeout_ms)
{
	struct pollfd p = { .fd = fence, .events = POLLIN };
	int r = poll(&p, 1, timeout_ms);
	if (r < 0)
		return -errno;
	return r > 0 && (p.revents & POLLIN) ? 1 : 0;
}

static int fence_status(int fence)
{
	struct sync_file_info info = { 0 };
	if (ioctl(fence, SYNC_IOC_FILE_INFO, &info) < 0)
		return -errno;
	return info.status; /* 1 signalled, 0 active, <0 error */
}

static int sw_sync_fence(int timeline, uint32_t value)
{
	struct sw_sync_create_fence_data d = { .value = value };
	snprintf(d.name, sizeof(d.name), "test-%u", value);
	if (ioctl(timeline, SW_SYNC_IOC_CREATE_FENCE, &d) < 0)
		return -errno;
	return d.fence;
}

static int sw_sync_inc(int timeline, uint32_t n)
{
	return ioctl(timeline, SW_SYNC_IOC_INC, &n) < 0 ? -errno : 0;
}

static int export_fence(int dmabuf, uint32_t flags)
{
	struct dma_buf_export_sync_file e = { .flags = flags, .fd = -1 };
	if (ioctl(dmabuf, DMA_BUF_IOCTL_EXPORT_SYNC_FILE, &e) < 0)
		return -errno;
	return e.fd;
}

static int import_fence(int dmabuf, int fence, uint32_t flags)
{
	struct dma_buf_import_sync_file i = { .flags = flags, .fd = fence };
	return ioctl(dmabuf, DMA_BUF_IOCTL_IMPORT_SYNC_FILE, &i) < 0 ? -errno : 0;
}

static uint32_t prop_id(int fd, uint32_t obj, uint32_t type, const char *name)
{
	drmModeObjectPropertiesPtr props = drmModeObjectGetProperties(fd, obj, type);
	uint32_t id = 0;

	for (uint32_t i = 0; props && i < props->count_props && !id; i++) {
		drmModePropertyPtr p = drmModeGetProperty(fd, props->props[i]);
		if (p && strcmp(p->name, name) == 0)
			id = p->prop_id;
		drmModeFreeProperty(p);
	}
	drmModeFreeObjectProperties(props);
	return id;
}

static uint64_t prop_value(int fd, uint32_t obj, uint32_t type, const char *name)
{
	drmModeObjectPropertiesPtr props = drmModeObjectGetProperties(fd, obj, type);
	uint64_t v = UINT64_MAX;

	for (uint32_t i = 0; props && i < props->count_props; i++) {
		drmModePropertyPtr p = drmModeGetProperty(fd, props->props[i]);
		if (p && strcmp(p->name, name) == 0)
			v = props->prop_values[i];
		drmModeFreeProperty(p);
	}
	drmModeFreeObjectProperties(props);
	return v;
}

/* ---- steps ---- */

static int system_buf = -1;

static bool step_heap_system(void)
{
	system_buf = heap_alloc("system", 4 * MIB);
	CHECKF(system_buf >= 0, "system heap alloc: %s", strerror(-system_buf));
	CHECK(dmabuf_size(system_buf) == 4 * MIB);
	return true;
}

static bool step_heap_cma(void)
{
	char name[256];
	int fd;

	CHECKF(find_cma_heap(name, sizeof(name)), "no CMA heap in /dev/dma_heap");
	tap_diag("CMA heap: /dev/dma_heap/%s", name);
	fd = heap_alloc(name, 8 * MIB);
	CHECKF(fd >= 0, "CMA heap alloc of 8 MiB: %s", strerror(-fd));
	CHECK(dmabuf_size(fd) == 8 * MIB);
	close(fd);
	return true;
}

static bool step_udmabuf(void)
{
	const size_t size = 2 * MIB;
	struct udmabuf_create create = { 0 };
	int memfd, dev, buf;
	uint8_t *map;
	bool same;

	memfd = memfd_create("kernel-interfaces", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	CHECK(memfd >= 0);
	CHECK(ftruncate(memfd, size) == 0);
	CHECK(fcntl(memfd, F_ADD_SEALS, F_SEAL_SHRINK) == 0);
	CHECK(pwrite(memfd, "udmabuf!", 8, MIB) == 8);
	dev = open("/dev/udmabuf", O_RDWR | O_CLOEXEC);
	CHECK(dev >= 0);
	create.memfd = memfd;
	create.flags = UDMABUF_FLAGS_CLOEXEC;
	create.offset = 0;
	create.size = size;
	buf = ioctl(dev, UDMABUF_CREATE, &create);
	CHECK(buf >= 0);
	close(dev);
	close(memfd);
	CHECK(dmabuf_size(buf) == (off_t)size);
	/* The dma-buf is the memfd's memory: what was written there shows. */
	map = mmap(NULL, size, PROT_READ, MAP_SHARED, buf, 0);
	CHECK(map != MAP_FAILED);
	CHECK(dmabuf_sync(buf, DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ) == 0);
	same = memcmp(map + MIB, "udmabuf!", 8) == 0;
	CHECK(dmabuf_sync(buf, DMA_BUF_SYNC_END | DMA_BUF_SYNC_READ) == 0);
	munmap(map, size);
	close(buf);
	CHECK(same);
	return true;
}

static int vgem_fd = -1, vgem_buf = -1;
static uint32_t vgem_handle;

static bool step_vgem_prime(void)
{
	struct drm_mode_create_dumb dumb = { .width = 256, .height = 256, .bpp = 32 };

	vgem_fd = open_drm_by_driver("vgem");
	CHECKF(vgem_fd >= 0, "no vgem DRM device");
	CHECK(drmIoctl(vgem_fd, DRM_IOCTL_MODE_CREATE_DUMB, &dumb) == 0);
	CHECK(dumb.pitch >= 256 * 4 && dumb.size >= (uint64_t)dumb.pitch * 256);
	vgem_handle = dumb.handle;
	CHECK(drmPrimeHandleToFD(vgem_fd, dumb.handle, DRM_CLOEXEC | DRM_RDWR, &vgem_buf) == 0);
	CHECK(vgem_buf >= 0);
	CHECK(dmabuf_size(vgem_buf) >= (off_t)dumb.size);
	return true;
}

static bool step_cpu_access(void)
{
	const size_t size = 4 * MIB;
	uint32_t *w, *r;
	bool ok = true;

	CHECK(system_buf >= 0);
	w = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, system_buf, 0);
	CHECK(w != MAP_FAILED);
	CHECK(dmabuf_sync(system_buf, DMA_BUF_SYNC_START | DMA_BUF_SYNC_WRITE) == 0);
	for (size_t i = 0; i < size / 4; i++)
		w[i] = (uint32_t)i * 2654435761u;
	CHECK(dmabuf_sync(system_buf, DMA_BUF_SYNC_END | DMA_BUF_SYNC_WRITE) == 0);
	munmap(w, size);

	/* A second, independent mapping sees the same bytes. */
	r = mmap(NULL, size, PROT_READ, MAP_SHARED, system_buf, 0);
	CHECK(r != MAP_FAILED);
	CHECK(dmabuf_sync(system_buf, DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ) == 0);
	for (size_t i = 0; i < size / 4 && ok; i++)
		ok = r[i] == (uint32_t)i * 2654435761u;
	CHECK(dmabuf_sync(system_buf, DMA_BUF_SYNC_END | DMA_BUF_SYNC_READ) == 0);
	munmap(r, size);
	CHECK(ok);
	return true;
}

static bool step_sw_sync_fences(void)
{
	int timeline, f1, f2, exported, merged_fd;
	struct sync_merge_data merge = { .name = "merged" };

	CHECK(system_buf >= 0);
	timeline = open(SW_SYNC_DEBUGFS_PATH, O_RDWR | O_CLOEXEC);
	CHECK(timeline >= 0);
	f1 = sw_sync_fence(timeline, 1);
	f2 = sw_sync_fence(timeline, 2);
	CHECK(f1 >= 0 && f2 >= 0);
	CHECK(fence_status(f1) == 0 && fence_wait(f1, 0) == 0);

	/* A write fence imported into the buffer... */
	CHECK(import_fence(system_buf, f1, DMA_BUF_SYNC_WRITE) == 0);
	/* ...is what a reader must wait for: exported, it is pending. */
	exported = export_fence(system_buf, DMA_BUF_SYNC_READ);
	CHECK(exported >= 0);
	CHECK(fence_status(exported) == 0);
	CHECK(fence_wait(exported, 50) == 0);

	/* A merge of f1 and f2 waits for both. */
	merge.fd2 = f2;
	CHECK(ioctl(f1, SYNC_IOC_MERGE, &merge) == 0);
	merged_fd = merge.fence;

	CHECK(sw_sync_inc(timeline, 1) == 0);
	CHECK(fence_wait(exported, 1000) == 1);
	CHECK(fence_status(exported) == 1);
	CHECK(fence_status(merged_fd) == 0);
	CHECK(sw_sync_inc(timeline, 1) == 0);
	CHECK(fence_wait(merged_fd, 1000) == 1);

	/* Nothing pending any more: the buffer's fences are all signalled. */
	close(exported);
	exported = export_fence(system_buf, DMA_BUF_SYNC_WRITE);
	CHECK(exported >= 0 && fence_wait(exported, 0) == 1);
	close(exported);
	close(merged_fd);
	close(f1);
	close(f2);
	close(timeline);
	return true;
}

static bool step_vgem_fence(void)
{
	struct drm_vgem_fence_attach attach = { .flags = VGEM_FENCE_WRITE };
	struct drm_vgem_fence_signal sig = { 0 };
	int reader_waits, writer_waits;

	CHECK(vgem_fd >= 0 && vgem_buf >= 0);
	attach.handle = vgem_handle;
	CHECK(drmIoctl(vgem_fd, DRM_IOCTL_VGEM_FENCE_ATTACH, &attach) == 0);
	reader_waits = export_fence(vgem_buf, DMA_BUF_SYNC_READ);
	writer_waits = export_fence(vgem_buf, DMA_BUF_SYNC_WRITE);
	CHECK(reader_waits >= 0 && writer_waits >= 0);
	CHECK(fence_wait(reader_waits, 50) == 0);
	CHECK(fence_wait(writer_waits, 0) == 0);
	sig.fence = attach.out_fence;
	CHECK(drmIoctl(vgem_fd, DRM_IOCTL_VGEM_FENCE_SIGNAL, &sig) == 0);
	CHECK(fence_wait(reader_waits, 1000) == 1);
	CHECK(fence_wait(writer_waits, 1000) == 1);
	close(reader_waits);
	close(writer_waits);
	return true;
}

static bool step_vkms_fenced_flip(void)
{
	drmModeResPtr res;
	drmModeConnectorPtr conn = NULL;
	drmModePlaneResPtr planes;
	drmModeModeInfo mode;
	uint32_t crtc_id = 0, crtc_index = 0, plane_id = 0, fb_id = 0, blob = 0;
	uint32_t handle = 0;
	int fd, buf, timeline, in_fence, r;
	int32_t out_fence = -1;
	drmModeAtomicReqPtr req;
	uint32_t *map;
	size_t size;

	fd = open_drm_by_driver("vkms");
	CHECKF(fd >= 0, "no vkms DRM device");
	CHECK(drmSetClientCap(fd, DRM_CLIENT_CAP_UNIVERSAL_PLANES, 1) == 0);
	CHECK(drmSetClientCap(fd, DRM_CLIENT_CAP_ATOMIC, 1) == 0);
	res = drmModeGetResources(fd);
	CHECK(res);
	for (int i = 0; i < res->count_connectors && !conn; i++) {
		conn = drmModeGetConnector(fd, res->connectors[i]);
		if (conn && (conn->connection != DRM_MODE_CONNECTED || conn->count_modes == 0 ||
			     conn->connector_type == DRM_MODE_CONNECTOR_WRITEBACK)) {
			drmModeFreeConnector(conn);
			conn = NULL;
		}
	}
	CHECKF(conn, "vkms has no connected output");
	mode = conn->modes[0];
	CHECK(res->count_crtcs > 0);
	crtc_id = res->crtcs[0];
	crtc_index = 0;
	planes = drmModeGetPlaneResources(fd);
	CHECK(planes);
	for (uint32_t i = 0; i < planes->count_planes && !plane_id; i++) {
		drmModePlanePtr p = drmModeGetPlane(fd, planes->planes[i]);
		if (p && (p->possible_crtcs & (1u << crtc_index)) &&
		    prop_value(fd, p->plane_id, DRM_MODE_OBJECT_PLANE, "type") == DRM_PLANE_TYPE_PRIMARY)
			plane_id = p->plane_id;
		drmModeFreePlane(p);
	}
	drmModeFreePlaneResources(planes);
	CHECKF(plane_id, "no primary plane for CRTC %u", crtc_id);
	tap_diag("vkms: %s-%u %ux%u, crtc %u, plane %u", "Virtual", conn->connector_type_id,
		 mode.hdisplay, mode.vdisplay, crtc_id, plane_id);

	/* A heap buffer, imported into vkms as a framebuffer. */
	size = (size_t)mode.hdisplay * mode.vdisplay * 4;
	buf = heap_alloc("system", size);
	CHECK(buf >= 0);
	map = mmap(NULL, size, PROT_WRITE, MAP_SHARED, buf, 0);
	CHECK(map != MAP_FAILED);
	CHECK(dmabuf_sync(buf, DMA_BUF_SYNC_START | DMA_BUF_SYNC_WRITE) == 0);
	for (size_t i = 0; i < size / 4; i++)
		map[i] = 0x00ff8000;
	CHECK(dmabuf_sync(buf, DMA_BUF_SYNC_END | DMA_BUF_SYNC_WRITE) == 0);
	munmap(map, size);
	CHECK(drmPrimeFDToHandle(fd, buf, &handle) == 0);
	{
		uint32_t handles[4] = { handle }, pitches[4] = { mode.hdisplay * 4u }, offsets[4] = { 0 };
		CHECK(drmModeAddFB2(fd, mode.hdisplay, mode.vdisplay, DRM_FORMAT_XRGB8888,
				    handles, pitches, offsets, &fb_id, 0) == 0);
	}
	CHECK(drmModeCreatePropertyBlob(fd, &mode, sizeof(mode), &blob) == 0);

	timeline = open(SW_SYNC_DEBUGFS_PATH, O_RDWR | O_CLOEXEC);
	CHECK(timeline >= 0);
	in_fence = sw_sync_fence(timeline, 1);
	CHECK(in_fence >= 0);

	req = drmModeAtomicAlloc();
	CHECK(req);
#define ADD(obj, type, name, val) do {						\
		uint32_t pid_ = prop_id(fd, obj, type, name);			\
		CHECKF(pid_, "no property %s", name);				\
		CHECK(drmModeAtomicAddProperty(req, obj, pid_, (uint64_t)(val)) >= 0); \
	} while (0)
	ADD(conn->connector_id, DRM_MODE_OBJECT_CONNECTOR, "CRTC_ID", crtc_id);
	ADD(crtc_id, DRM_MODE_OBJECT_CRTC, "MODE_ID", blob);
	ADD(crtc_id, DRM_MODE_OBJECT_CRTC, "ACTIVE", 1);
	ADD(crtc_id, DRM_MODE_OBJECT_CRTC, "OUT_FENCE_PTR", (uintptr_t)&out_fence);
	ADD(plane_id, DRM_MODE_OBJECT_PLANE, "FB_ID", fb_id);
	ADD(plane_id, DRM_MODE_OBJECT_PLANE, "CRTC_ID", crtc_id);
	ADD(plane_id, DRM_MODE_OBJECT_PLANE, "IN_FENCE_FD", in_fence);
	ADD(plane_id, DRM_MODE_OBJECT_PLANE, "SRC_X", 0);
	ADD(plane_id, DRM_MODE_OBJECT_PLANE, "SRC_Y", 0);
	ADD(plane_id, DRM_MODE_OBJECT_PLANE, "SRC_W", (uint64_t)mode.hdisplay << 16);
	ADD(plane_id, DRM_MODE_OBJECT_PLANE, "SRC_H", (uint64_t)mode.vdisplay << 16);
	ADD(plane_id, DRM_MODE_OBJECT_PLANE, "CRTC_X", 0);
	ADD(plane_id, DRM_MODE_OBJECT_PLANE, "CRTC_Y", 0);
	ADD(plane_id, DRM_MODE_OBJECT_PLANE, "CRTC_W", mode.hdisplay);
	ADD(plane_id, DRM_MODE_OBJECT_PLANE, "CRTC_H", mode.vdisplay);
#undef ADD
	r = drmModeAtomicCommit(fd, req, DRM_MODE_ATOMIC_ALLOW_MODESET | DRM_MODE_ATOMIC_NONBLOCK, NULL);
	drmModeAtomicFree(req);
	CHECKF(r == 0, "atomic commit: %s", strerror(-r));
	CHECK(out_fence >= 0);

	/* The flip waits for IN_FENCE_FD: its out fence stays pending. */
	CHECK(fence_wait(out_fence, 300) == 0);
	CHECK(fence_status(out_fence) == 0);
	CHECK(sw_sync_inc(timeline, 1) == 0);
	CHECK(fence_wait(out_fence, 2000) == 1);
	CHECK(fence_status(out_fence) == 1);

	close(out_fence);
	close(in_fence);
	close(timeline);
	drmModeFreeConnector(conn);
	drmModeFreeResources(res);
	close(buf);
	close(fd); /* the framebuffer and the blob go with the fd */
	return true;
}

static int find_vivid_capture(void)
{
	for (int i = 0; i < 16; i++) {
		struct v4l2_capability cap = { 0 };
		char path[32];
		uint32_t caps;
		int fd;

		snprintf(path, sizeof(path), "/dev/video%d", i);
		fd = open(path, O_RDWR | O_CLOEXEC);
		if (fd < 0)
			continue;
		if (ioctl(fd, VIDIOC_QUERYCAP, &cap) == 0 && strcmp((char *)cap.driver, "vivid") == 0) {
			caps = cap.capabilities & V4L2_CAP_DEVICE_CAPS ? cap.device_caps : cap.capabilities;
			if ((caps & V4L2_CAP_VIDEO_CAPTURE) && (caps & V4L2_CAP_STREAMING)) {
				tap_diag("vivid capture: %s (%s)", path, cap.card);
				return fd;
			}
		}
		close(fd);
	}
	return -ENODEV;
}

static bool step_vivid_capture(void)
{
	struct v4l2_format fmt = { .type = V4L2_BUF_TYPE_VIDEO_CAPTURE };
	struct v4l2_requestbuffers rb = { .type = V4L2_BUF_TYPE_VIDEO_CAPTURE, .memory = V4L2_MEMORY_DMABUF };
	struct v4l2_buffer b;
	int type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
	int fd, bufs[8];
	uint8_t *maps[8];
	uint32_t n;
	size_t size, changed = 0;

	fd = find_vivid_capture();
	CHECKF(fd >= 0, "no vivid capture device");
	CHECK(ioctl(fd, VIDIOC_G_FMT, &fmt) == 0);
	tap_diag("format %.4s %ux%u, %u bytes", (char *)&fmt.fmt.pix.pixelformat,
		 fmt.fmt.pix.width, fmt.fmt.pix.height, fmt.fmt.pix.sizeimage);
	size = (fmt.fmt.pix.sizeimage + 4095) & ~(size_t)4095;
	CHECK(size > 0);

	/* vivid needs a minimum number of queued buffers: take what it grants. */
	rb.count = 2;
	CHECK(ioctl(fd, VIDIOC_REQBUFS, &rb) == 0);
	CHECKF(rb.count >= 1 && rb.count <= ELEMENTS(bufs), "REQBUFS granted %u buffers", rb.count);
	n = rb.count;
	for (uint32_t i = 0; i < n; i++) {
		bufs[i] = heap_alloc("system", size);
		CHECK(bufs[i] >= 0);
		maps[i] = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, bufs[i], 0);
		CHECK(maps[i] != MAP_FAILED);
		CHECK(dmabuf_sync(bufs[i], DMA_BUF_SYNC_START | DMA_BUF_SYNC_WRITE) == 0);
		memset(maps[i], 0xa5, size);
		CHECK(dmabuf_sync(bufs[i], DMA_BUF_SYNC_END | DMA_BUF_SYNC_WRITE) == 0);
		memset(&b, 0, sizeof(b));
		b.type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
		b.memory = V4L2_MEMORY_DMABUF;
		b.index = i;
		b.m.fd = bufs[i];
		b.length = (uint32_t)size;
		CHECK(ioctl(fd, VIDIOC_QBUF, &b) == 0);
	}
	CHECK(ioctl(fd, VIDIOC_STREAMON, &type) == 0);
	{
		struct pollfd p = { .fd = fd, .events = POLLIN };
		CHECKF(poll(&p, 1, 5000) == 1, "no frame from vivid within 5 s");
	}
	memset(&b, 0, sizeof(b));
	b.type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
	b.memory = V4L2_MEMORY_DMABUF;
	CHECK(ioctl(fd, VIDIOC_DQBUF, &b) == 0);
	CHECK(b.index < n && !(b.flags & V4L2_BUF_FLAG_ERROR));
	CHECK(b.bytesused == fmt.fmt.pix.sizeimage);
	CHECK(ioctl(fd, VIDIOC_STREAMOFF, &type) == 0);

	CHECK(dmabuf_sync(bufs[b.index], DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ) == 0);
	for (size_t i = 0; i < fmt.fmt.pix.sizeimage; i++)
		changed += maps[b.index][i] != 0xa5;
	CHECK(dmabuf_sync(bufs[b.index], DMA_BUF_SYNC_END | DMA_BUF_SYNC_READ) == 0);
	tap_diag("buffer %u of %u: %zu of %u bytes changed by the capture", b.index, n, changed,
		 fmt.fmt.pix.sizeimage);
	CHECK(changed > fmt.fmt.pix.sizeimage / 2);

	rb.count = 0;
	CHECK(ioctl(fd, VIDIOC_REQBUFS, &rb) == 0);
	for (uint32_t i = 0; i < n; i++) {
		munmap(maps[i], size);
		close(bufs[i]);
	}
	close(fd);
	return true;
}

int main(void)
{
	if (!getenv("DMABROKER_VM"))
		tap_diag("warning: not inside the test bed; run through tests/vm/vm-run");
	tap_plan(9);
	tap_step("dma-buf heap: system", step_heap_system);
	tap_step("dma-buf heap: CMA", step_heap_cma);
	tap_step("udmabuf from a sealed memfd", step_udmabuf);
	tap_step("vgem dumb buffer exported with PRIME", step_vgem_prime);
	tap_step("mmap + DMA_BUF_IOCTL_SYNC write and read back", step_cpu_access);
	tap_step("sw_sync fence: IMPORT_SYNC_FILE / EXPORT_SYNC_FILE / MERGE", step_sw_sync_fences);
	tap_step("vgem fence seen through EXPORT_SYNC_FILE", step_vgem_fence);
	tap_step("vkms atomic flip held by IN_FENCE_FD, OUT_FENCE_PTR signals", step_vkms_fenced_flip);
	tap_step("vivid capture into a heap buffer (V4L2_MEMORY_DMABUF)", step_vivid_capture);
	if (system_buf >= 0)
		close(system_buf);
	if (vgem_buf >= 0)
		close(vgem_buf);
	if (vgem_fd >= 0)
		close(vgem_fd);
	return tap_done();
}

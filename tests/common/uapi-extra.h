/* SPDX-License-Identifier: MIT */
/*
 * Kernel interfaces the tests use that Debian 12's userspace headers do not
 * ship: sw_sync (drivers/dma-buf/sw_sync.c, a debugfs test interface) and
 * vgem's fence ioctls (include/uapi/drm/vgem_drm.h). Layouts copied from
 * Linux 6.12; they are ABI and do not change.
 */
#pragma once

#include <linux/types.h>
#include <linux/ioctl.h>
#include <drm.h>

/* sw_sync: open /sys/kernel/debug/sync/sw_sync to get a timeline. */
struct sw_sync_create_fence_data {
	__u32 value;     /* the fence signals when the timeline reaches this */
	char name[32];
	__s32 fence;     /* out: a sync_file fd */
};
#define SW_SYNC_IOC_MAGIC 'W'
#define SW_SYNC_IOC_CREATE_FENCE _IOWR(SW_SYNC_IOC_MAGIC, 0, struct sw_sync_create_fence_data)
#define SW_SYNC_IOC_INC _IOW(SW_SYNC_IOC_MAGIC, 1, __u32)
#define SW_SYNC_DEBUGFS_PATH "/sys/kernel/debug/sync/sw_sync"

/* vgem: attach a fence to a GEM object's reservation, signal it later. */
struct drm_vgem_fence_attach {
	__u32 handle;
	__u32 flags;
#define VGEM_FENCE_WRITE 0x1
	__u32 out_fence; /* a vgem fence id, not an fd */
	__u32 pad;
};
struct drm_vgem_fence_signal {
	__u32 fence;
	__u32 flags;
};
#define DRM_VGEM_FENCE_ATTACH 0x1
#define DRM_VGEM_FENCE_SIGNAL 0x2
#define DRM_IOCTL_VGEM_FENCE_ATTACH DRM_IOWR(DRM_COMMAND_BASE + DRM_VGEM_FENCE_ATTACH, struct drm_vgem_fence_attach)
#define DRM_IOCTL_VGEM_FENCE_SIGNAL DRM_IOW(DRM_COMMAND_BASE + DRM_VGEM_FENCE_SIGNAL, struct drm_vgem_fence_signal)

/* SPDX-License-Identifier: MIT */
/* The format table and the helpers dmabrokersink and dmabrokersrc share (gstdmabroker.h). */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <drm_fourcc.h>

#include "gstdmabroker.h"

/*
 * GStreamer names a format by its bytes in memory, DRM by a little-endian
 * word: GStreamer's BGRx is DRM's XRGB8888. Every format dmabrokerd knows
 * (common/format.c) that GStreamer has.
 */
static const struct {
	GstVideoFormat format;
	uint32_t fourcc;
} formats[] = {
	{ GST_VIDEO_FORMAT_BGRx, DRM_FORMAT_XRGB8888 },
	{ GST_VIDEO_FORMAT_BGRA, DRM_FORMAT_ARGB8888 },
	{ GST_VIDEO_FORMAT_RGBx, DRM_FORMAT_XBGR8888 },
	{ GST_VIDEO_FORMAT_RGBA, DRM_FORMAT_ABGR8888 },
	{ GST_VIDEO_FORMAT_RGB16, DRM_FORMAT_RGB565 },
	{ GST_VIDEO_FORMAT_YUY2, DRM_FORMAT_YUYV },
	{ GST_VIDEO_FORMAT_UYVY, DRM_FORMAT_UYVY },
	{ GST_VIDEO_FORMAT_NV12, DRM_FORMAT_NV12 },
	{ GST_VIDEO_FORMAT_NV21, DRM_FORMAT_NV21 },
	{ GST_VIDEO_FORMAT_I420, DRM_FORMAT_YUV420 },
	{ GST_VIDEO_FORMAT_YV12, DRM_FORMAT_YVU420 },
	{ GST_VIDEO_FORMAT_P010_10LE, DRM_FORMAT_P010 },
};

uint32_t gst_dmabroker_fourcc_from_format(GstVideoFormat format)
{
	for (size_t i = 0; i < G_N_ELEMENTS(formats); i++)
		if (formats[i].format == format)
			return formats[i].fourcc;
	return 0;
}

GstVideoFormat gst_dmabroker_format_from_fourcc(uint32_t fourcc)
{
	for (size_t i = 0; i < G_N_ELEMENTS(formats); i++)
		if (formats[i].fourcc == fourcc)
			return formats[i].format;
	return GST_VIDEO_FORMAT_UNKNOWN;
}

GstCaps *gst_dmabroker_template_caps(void)
{
	GValue list = G_VALUE_INIT, v = G_VALUE_INIT;
	GstCaps *caps = gst_caps_new_simple("video/x-raw", "width", GST_TYPE_INT_RANGE, 1, 16384, "height",
					    GST_TYPE_INT_RANGE, 1, 16384, "framerate", GST_TYPE_FRACTION_RANGE, 0,
					    1, G_MAXINT, 1, NULL);

	g_value_init(&list, GST_TYPE_LIST);
	g_value_init(&v, G_TYPE_STRING);
	for (size_t i = 0; i < G_N_ELEMENTS(formats); i++) {
		g_value_set_static_string(&v, gst_video_format_to_string(formats[i].format));
		gst_value_list_append_value(&list, &v);
	}
	gst_caps_set_value(caps, "format", &list);
	g_value_unset(&v);
	g_value_unset(&list);
	return caps;
}

static size_t add_fourcc(uint32_t *fourccs, size_t n, size_t max, const char *name)
{
	uint32_t f = name ? gst_dmabroker_fourcc_from_format(gst_video_format_from_string(name)) : 0;

	if (!f || n >= max)
		return n;
	for (size_t i = 0; i < n; i++)
		if (fourccs[i] == f)
			return n;
	fourccs[n] = f;
	return n + 1;
}

size_t gst_dmabroker_fourccs_from_caps(const GstCaps *caps, uint32_t *fourccs, size_t max)
{
	size_t n = 0;

	for (guint i = 0; i < gst_caps_get_size(caps); i++) {
		const GValue *v = gst_structure_get_value(gst_caps_get_structure(caps, i), "format");
		if (!v)
			continue;
		if (G_VALUE_HOLDS_STRING(v))
			n = add_fourcc(fourccs, n, max, g_value_get_string(v));
		else if (GST_VALUE_HOLDS_LIST(v))
			for (guint k = 0; k < gst_value_list_get_size(v); k++) {
				const GValue *e = gst_value_list_get_value(v, k);
				if (G_VALUE_HOLDS_STRING(e))
					n = add_fourcc(fourccs, n, max, g_value_get_string(e));
			}
	}
	return n;
}

bool gst_dmabroker_valid_stream_name(const char *name)
{
	size_t n = name ? strlen(name) : 0;

	if (n < 1 || n > 63)
		return false;
	return strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.") == n;
}

int gst_dmabroker_wake_init(struct gst_dmabroker_wake *w)
{
	w->flushing = 0;
	w->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	return w->fd < 0 ? -errno : 0;
}

void gst_dmabroker_wake_close(struct gst_dmabroker_wake *w)
{
	if (w->fd >= 0)
		close(w->fd);
	w->fd = -1;
}

void gst_dmabroker_wake_set(struct gst_dmabroker_wake *w, bool flushing)
{
	uint64_t v = 1;

	g_atomic_int_set(&w->flushing, flushing);
	if (w->fd < 0)
		return;
	if (flushing) {
		if (write(w->fd, &v, sizeof(v)) < 0)
			GST_WARNING("eventfd write: %s", g_strerror(errno));
	} else if (read(w->fd, &v, sizeof(v)) < 0 && errno != EAGAIN) {
		GST_WARNING("eventfd read: %s", g_strerror(errno));
	}
}

int gst_dmabroker_poll(struct dmabroker *b, struct gst_dmabroker_wake *w, int timeout_ms)
{
	struct pollfd p[2] = {
		{ .fd = b ? dmabroker_get_fd(b) : -1, .events = POLLIN },
		{ .fd = w->fd, .events = POLLIN },
	};
	int r;

	if (g_atomic_int_get(&w->flushing))
		return -EINTR;
	r = poll(p, 2, timeout_ms);
	if (r < 0)
		return errno == EINTR ? 0 : -errno;
	if (g_atomic_int_get(&w->flushing))
		return -EINTR;
	return (p[0].revents & POLLIN) != 0;
}

const char *gst_dmabroker_error(struct dmabroker *b, int r)
{
	const char *msg = b ? dmabroker_error_message(b) : NULL;
	return msg && *msg ? msg : g_strerror(-r);
}

char *gst_dmabroker_stream_message(struct dmabroker *b, int r, const char *name)
{
	const char *msg = gst_dmabroker_error(b, r);

	if (g_str_has_prefix(msg, "stream '"))
		return g_strdup(msg);
	return g_strdup_printf("stream '%s': %s", name ? name : "", msg);
}

gboolean gst_dmabroker_start(GstElement *element, const char *name, gboolean session, struct gst_dmabroker_wake *w,
			     struct dmabroker **b)
{
	int r;

	if (!gst_dmabroker_valid_stream_name(name)) {
		GST_ELEMENT_ERROR(element, RESOURCE, SETTINGS,
				  ("stream name '%s' is not valid: 1 to 63 of A-Z a-z 0-9 - _ .", name ? name : ""), (NULL));
		return FALSE;
	}
	r = gst_dmabroker_wake_init(w);
	if (r < 0) {
		GST_ELEMENT_ERROR(element, RESOURCE, FAILED, ("eventfd: %s", g_strerror(-r)), (NULL));
		return FALSE;
	}
	r = dmabroker_connect(session ? DMABROKER_BUS_SESSION : DMABROKER_BUS_SYSTEM, b);
	if (r < 0) {
		GST_ELEMENT_ERROR(element, RESOURCE, OPEN_READ_WRITE,
				  ("cannot reach dmabrokerd on the %s bus: %s", session ? "session" : "system", g_strerror(-r)),
				  (NULL));
		gst_dmabroker_wake_close(w);
		return FALSE;
	}
	return TRUE;
}

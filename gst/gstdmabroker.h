/* SPDX-License-Identifier: MIT */
/*
 * The GStreamer plugin libgstdmabroker: dmabrokersink (a stream producer)
 * and dmabrokersrc (a stream consumer). What both elements share: the
 * table of GStreamer formats and their DRM fourccs, the stream name's
 * check, and waiting on a stream while the element may be told to stop.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <gst/gst.h>
#include <gst/base/gstbasesink.h>
#include <gst/base/gstpushsrc.h>
#include <gst/video/video.h>

#include "dmabroker.h"

G_BEGIN_DECLS

#define GST_TYPE_DMABROKER_SINK (gst_dmabroker_sink_get_type())
G_DECLARE_FINAL_TYPE(GstDmaBrokerSink, gst_dmabroker_sink, GST, DMABROKER_SINK, GstBaseSink)
#define GST_TYPE_DMABROKER_SRC (gst_dmabroker_src_get_type())
G_DECLARE_FINAL_TYPE(GstDmaBrokerSrc, gst_dmabroker_src, GST, DMABROKER_SRC, GstPushSrc)
#define GST_TYPE_DMABROKER_MODE (gst_dmabroker_mode_get_type())
GType gst_dmabroker_mode_get_type(void);

/* The DRM fourcc of a GStreamer format, 0 when the broker has none. */
uint32_t gst_dmabroker_fourcc_from_format(GstVideoFormat format);
/* The GStreamer format of a DRM fourcc, GST_VIDEO_FORMAT_UNKNOWN when none. */
GstVideoFormat gst_dmabroker_format_from_fourcc(uint32_t fourcc);
/* video/x-raw in every format of the table, any size and rate: both elements' pad templates. */
GstCaps *gst_dmabroker_template_caps(void);
/*
 * The fourccs of caps' formats that are in the table, in caps' order,
 * without repeats: at most max. Returns how many.
 */
size_t gst_dmabroker_fourccs_from_caps(const GstCaps *caps, uint32_t *fourccs, size_t max);

/* Whether name is a stream name the daemon takes: 1-63 of A-Z a-z 0-9 - _ . */
bool gst_dmabroker_valid_stream_name(const char *name);

/*
 * A way to wake an element's streaming thread out of a wait: an eventfd
 * that unlock() makes readable and unlock_stop() drains.
 */
struct gst_dmabroker_wake {
	int fd;
	volatile gint flushing;
};
int gst_dmabroker_wake_init(struct gst_dmabroker_wake *w);
void gst_dmabroker_wake_close(struct gst_dmabroker_wake *w);
void gst_dmabroker_wake_set(struct gst_dmabroker_wake *w, bool flushing);
/*
 * Polls b's fd (none when b is NULL) and w up to timeout_ms: 1 when b's fd
 * is readable (run dmabroker_process()), 0 on timeout, -EINTR when w was
 * set (flushing).
 */
int gst_dmabroker_poll(struct dmabroker *b, struct gst_dmabroker_wake *w, int timeout_ms);

/*
 * What both elements' start() does: name checked (the stream name), w's
 * eventfd opened, *b connected to dmabrokerd on the session or the system
 * bus. FALSE when one failed: the element's error is posted, nothing left
 * open.
 */
gboolean gst_dmabroker_start(GstElement *element, const char *name, gboolean session, struct gst_dmabroker_wake *w,
			     struct dmabroker **b);

/* What a failed call's error says: the daemon's message, or strerror(-r). */
const char *gst_dmabroker_error(struct dmabroker *b, int r);
/* The same about stream name: "stream 'NAME': ...", unless the daemon's message names it already. Free it. */
char *gst_dmabroker_stream_message(struct dmabroker *b, int r, const char *name);
/* Posts that message as the element's error. */
#define GST_DMABROKER_STREAM_ERROR(el, domain, code, b, r, name)                   \
	do {                                                                         \
		char *msg_ = gst_dmabroker_stream_message((b), (r), (name));       \
		GST_ELEMENT_ERROR((el), domain, code, ("%s", msg_), (NULL));        \
		g_free(msg_);                                                        \
	} while (0)

GST_DEBUG_CATEGORY_EXTERN(gst_dmabroker_sink_debug);
GST_DEBUG_CATEGORY_EXTERN(gst_dmabroker_src_debug);

G_END_DECLS

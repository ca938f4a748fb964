/* SPDX-License-Identifier: MIT */
/*
 * dmabrokersink: a dmabroker stream producer. It creates the stream when
 * its caps are set (format, width and height from them), waits in its
 * first render for the stream to be negotiated with its consumers, then
 * per buffer dequeues a free stream buffer (its release fence waited for
 * by dmabroker_stream_cpu_begin()), copies the frame into it, plane by
 * plane at the stream buffer's offsets and strides, and queues it with the
 * buffer's running time as its timestamp. A FIFO stream's back-pressure is
 * the wait for a free buffer. Every frame is copied: the "copies" property
 * counts them.
 */
#include <errno.h>
#include <unistd.h>


#include "gstdmabroker.h"

#define GST_CAT_DEFAULT gst_dmabroker_sink_debug

/* how long a free buffer's release fence may stay pending before the sink gives up */
#define FENCE_TIMEOUT_MS 10000
/* the longest a wait sleeps before it looks at the stream again */
#define POLL_SLICE_MS 1000

struct _GstDmaBrokerSink {
	GstBaseSink parent;
	/* properties (the object lock) */
	char *stream_name;
	enum dmabroker_stream_mode mode;
	guint buffers, consumers;
	gboolean session;
	guint64 frames, copies;
	/* the streaming thread's */
	struct dmabroker *b;
	struct dmabroker_stream *s;
	GstVideoInfo info;
	struct gst_dmabroker_wake wake;
};

G_DEFINE_TYPE(GstDmaBrokerSink, gst_dmabroker_sink, GST_TYPE_BASE_SINK)

enum { PROP_0, PROP_STREAM, PROP_MODE, PROP_BUFFERS, PROP_CONSUMERS, PROP_SESSION, PROP_FRAMES, PROP_COPIES };

#define DEFAULT_STREAM "camera"
#define DEFAULT_MODE DMABROKER_STREAM_FIFO
#define DEFAULT_BUFFERS 4
#define DEFAULT_CONSUMERS 1

static void gst_dmabroker_sink_set_property(GObject *object, guint id, const GValue *value, GParamSpec *pspec)
{
	GstDmaBrokerSink *self = GST_DMABROKER_SINK(object);

	GST_OBJECT_LOCK(self);
	switch (id) {
	case PROP_STREAM:
		g_free(self->stream_name);
		self->stream_name = g_value_dup_string(value);
		break;
	case PROP_MODE: self->mode = g_value_get_enum(value); break;
	case PROP_BUFFERS: self->buffers = g_value_get_uint(value); break;
	case PROP_CONSUMERS: self->consumers = g_value_get_uint(value); break;
	case PROP_SESSION: self->session = g_value_get_boolean(value); break;
	default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, id, pspec); break;
	}
	GST_OBJECT_UNLOCK(self);
}

static void gst_dmabroker_sink_get_property(GObject *object, guint id, GValue *value, GParamSpec *pspec)
{
	GstDmaBrokerSink *self = GST_DMABROKER_SINK(object);

	GST_OBJECT_LOCK(self);
	switch (id) {
	case PROP_STREAM: g_value_set_string(value, self->stream_name); break;
	case PROP_MODE: g_value_set_enum(value, self->mode); break;
	case PROP_BUFFERS: g_value_set_uint(value, self->buffers); break;
	case PROP_CONSUMERS: g_value_set_uint(value, self->consumers); break;
	case PROP_SESSION: g_value_set_boolean(value, self->session); break;
	case PROP_FRAMES: g_value_set_uint64(value, self->frames); break;
	case PROP_COPIES: g_value_set_uint64(value, self->copies); break;
	default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, id, pspec); break;
	}
	GST_OBJECT_UNLOCK(self);
}

static void gst_dmabroker_sink_finalize(GObject *object)
{
	GstDmaBrokerSink *self = GST_DMABROKER_SINK(object);

	g_free(self->stream_name);
	G_OBJECT_CLASS(gst_dmabroker_sink_parent_class)->finalize(object);
}

static gboolean gst_dmabroker_sink_start(GstBaseSink *bsink)
{
	GstDmaBrokerSink *self = GST_DMABROKER_SINK(bsink);
	gboolean session;
	char *name;
	gboolean ok;

	GST_OBJECT_LOCK(self);
	session = self->session;
	name = g_strdup(self->stream_name);
	self->frames = self->copies = 0;
	GST_OBJECT_UNLOCK(self);
	ok = gst_dmabroker_start(GST_ELEMENT(self), name, session, &self->wake, &self->b);
	g_free(name);
	return ok;
}

static gboolean gst_dmabroker_sink_stop(GstBaseSink *bsink)
{
	GstDmaBrokerSink *self = GST_DMABROKER_SINK(bsink);

	GST_INFO_OBJECT(self, "stopped: %" G_GUINT64_FORMAT " frames queued, %" G_GUINT64_FORMAT " of them copied",
			self->frames, self->copies);
	/* a producer that leaves: its consumers get the frames queued, then the stream's end */
	self->s = dmabroker_stream_destroy(self->s);
	self->b = dmabroker_disconnect(self->b);
	gst_dmabroker_wake_close(&self->wake);
	return TRUE;
}

static gboolean gst_dmabroker_sink_unlock(GstBaseSink *bsink)
{
	gst_dmabroker_wake_set(&GST_DMABROKER_SINK(bsink)->wake, true);
	return TRUE;
}

static gboolean gst_dmabroker_sink_unlock_stop(GstBaseSink *bsink)
{
	gst_dmabroker_wake_set(&GST_DMABROKER_SINK(bsink)->wake, false);
	return TRUE;
}

static gboolean gst_dmabroker_sink_set_caps(GstBaseSink *bsink, GstCaps *caps)
{
	GstDmaBrokerSink *self = GST_DMABROKER_SINK(bsink);
	GstVideoInfo info;
	uint32_t fourcc;
	char *label, *name;
	int r;

	if (!gst_video_info_from_caps(&info, caps))
		return FALSE;
	if (self->s) {
		if (gst_video_info_is_equal(&info, &self->info))
			return TRUE;
		/* a new format or size would be a new stream: not in this version */
		char *str = gst_caps_to_string(caps);
		GST_ELEMENT_ERROR(self, CORE, NEGOTIATION,
				  ("the caps changed mid-stream to %s: a stream keeps its format and size", str), (NULL));
		g_free(str);
		return FALSE;
	}
	fourcc = gst_dmabroker_fourcc_from_format(GST_VIDEO_INFO_FORMAT(&info));
	if (!fourcc)
		return FALSE;
	label = g_strdup_printf("gst:%s", GST_OBJECT_NAME(self));
	GST_OBJECT_LOCK(self);
	name = g_strdup(self->stream_name);
	{
		struct dmabroker_stream_desc d = {
			.version = DMABROKER_STREAM_DESC_VERSION, .name = name, .label = label,
			.usage = DMABROKER_USAGE_CPU_WRITE_FLAG, .formats = &fourcc, .n_formats = 1,
			.mode = self->mode, .buffers = self->buffers,
			.width = (uint32_t)GST_VIDEO_INFO_WIDTH(&info), .height = (uint32_t)GST_VIDEO_INFO_HEIGHT(&info),
			.consumers = self->consumers,
		};
		GST_OBJECT_UNLOCK(self);
		r = dmabroker_stream_create(self->b, &d, &self->s);
	}
	if (r < 0)
		GST_ELEMENT_ERROR(self, RESOURCE, OPEN_WRITE,
				  ("cannot create stream '%s': %s", name, gst_dmabroker_error(self->b, r)), (NULL));
	else
		GST_INFO_OBJECT(self, "stream '%s' created: %ux%u %s", name, GST_VIDEO_INFO_WIDTH(&info),
				GST_VIDEO_INFO_HEIGHT(&info), gst_video_format_to_string(GST_VIDEO_INFO_FORMAT(&info)));
	g_free(name);
	g_free(label);
	self->info = info;
	return r >= 0;
}

/* Upstream may hand buffers with any plane layout (GstVideoMeta): the copy reads them. */
static gboolean gst_dmabroker_sink_propose_allocation(GstBaseSink *bsink, GstQuery *query)
{
	gst_query_add_allocation_meta(query, GST_VIDEO_META_API_TYPE, NULL);
	return TRUE;
}

/*
 * Runs the connection until check() is no longer -EAGAIN (or, for
 * wait_ready, -ETIMEDOUT): its result, or GST_FLOW_FLUSHING when told to
 * stop meanwhile (*flushing set).
 */
static int run_until(GstDmaBrokerSink *self, int (*check)(GstDmaBrokerSink *self, void *data), int again,
		     void *data, bool *flushing)
{
	int r;

	*flushing = false;
	for (;;) {
		/* first what was read already: a call's reply may have brought news with it */
		int p = dmabroker_process(self->b);
		if (p < 0)
			return p;
		r = check(self, data);
		if (r != again)
			return r;
		p = gst_dmabroker_poll(self->b, &self->wake, POLL_SLICE_MS);
		if (p == -EINTR) {
			*flushing = true;
			return r;
		}
		if (p < 0)
			return p;
	}
}

static int check_ready(GstDmaBrokerSink *self, void *data)
{
	return dmabroker_stream_wait_ready(self->s, 0);
}

static int check_dequeue(GstDmaBrokerSink *self, void *data)
{
	return dmabroker_stream_dequeue(self->s, data);
}

/* Copies frame buf into stream buffer f, at its planes' offsets and strides. */
static GstFlowReturn copy_frame(GstDmaBrokerSink *self, GstBuffer *buf, struct dmabroker_frame *f)
{
	unsigned n_planes = GST_VIDEO_INFO_N_PLANES(&self->info);
	GstVideoInfo out_info = self->info;
	GstVideoFrame in, out;
	GstBuffer *wrap;
	void *map;
	int r;

	if (dmabroker_buffer_get_plane_count(f->buffer) != n_planes) {
		GST_ELEMENT_ERROR(self, STREAM, FORMAT,
				  ("stream buffer %u has %u planes, %s has %u", f->index,
				   dmabroker_buffer_get_plane_count(f->buffer),
				   gst_video_format_to_string(GST_VIDEO_INFO_FORMAT(&self->info)), n_planes), (NULL));
		return GST_FLOW_ERROR;
	}
	for (unsigned i = 0; i < n_planes; i++) {
		uint64_t offset;
		uint32_t stride;
		dmabroker_buffer_get_plane(f->buffer, i, &offset, &stride);
		out_info.offset[i] = (gsize)offset;
		out_info.stride[i] = (gint)stride;
	}
	out_info.size = (gsize)dmabroker_buffer_get_size(f->buffer);
	/* the buffer is ours once its release fence signalled */
	r = dmabroker_stream_cpu_begin(self->s, f->index, DMABROKER_ACCESS_WRITE, f->fence, FENCE_TIMEOUT_MS, &map);
	if (r < 0) {
		GST_ELEMENT_ERROR(self, RESOURCE, WRITE,
				  ("stream buffer %u: %s", f->index,
				   r == -ETIMEDOUT ? "its release fence did not signal in 10 s" : gst_dmabroker_error(self->b, r)),
				  (NULL));
		return GST_FLOW_ERROR;
	}
	if (!gst_video_frame_map(&in, &self->info, buf, GST_MAP_READ)) {
		dmabroker_stream_cpu_end(self->s, f->index);
		GST_ELEMENT_ERROR(self, STREAM, FORMAT, ("cannot map the incoming frame as its caps say"), (NULL));
		return GST_FLOW_ERROR;
	}
	wrap = gst_buffer_new_wrapped_full(0, map, out_info.size, 0, out_info.size, NULL, NULL);
	if (gst_video_frame_map(&out, &out_info, wrap, GST_MAP_WRITE)) {
		gst_video_frame_copy(&out, &in);
		gst_video_frame_unmap(&out);
	} else {
		r = -EINVAL;
	}
	gst_video_frame_unmap(&in);
	gst_buffer_unref(wrap);
	dmabroker_stream_cpu_end(self->s, f->index);
	if (r < 0) {
		GST_ELEMENT_ERROR(self, STREAM, FORMAT, ("stream buffer %u is too small for the frame", f->index),
				  (NULL));
		return GST_FLOW_ERROR;
	}
	return GST_FLOW_OK;
}

static GstFlowReturn gst_dmabroker_sink_render(GstBaseSink *bsink, GstBuffer *buf)
{
	GstDmaBrokerSink *self = GST_DMABROKER_SINK(bsink);
	struct dmabroker_frame f = { .fence = -1 };
	GstClockTime pts = GST_BUFFER_PTS(buf), running = GST_CLOCK_TIME_NONE;
	GstFlowReturn ret;
	bool flushing;
	int r;

	if (!self->s)
		return GST_FLOW_NOT_NEGOTIATED;
	if (!dmabroker_stream_is_ready(self->s)) {
		GST_INFO_OBJECT(self, "waiting for the stream's consumers");
		r = run_until(self, check_ready, -ETIMEDOUT, NULL, &flushing);
		if (flushing)
			return GST_FLOW_FLUSHING;
		if (r < 0) {
			GST_DMABROKER_STREAM_ERROR(self, RESOURCE, OPEN_WRITE, self->b, r, self->stream_name);
			return GST_FLOW_ERROR;
		}
		GST_INFO_OBJECT(self, "stream ready: %u buffers on %s; every frame is copied into them",
				dmabroker_stream_get_buffer_count(self->s), dmabroker_stream_get_backend(self->s));
	}
	r = run_until(self, check_dequeue, -EAGAIN, &f, &flushing);
	if (flushing)
		return GST_FLOW_FLUSHING;
	if (r < 0) {
		GST_DMABROKER_STREAM_ERROR(self, RESOURCE, WRITE, self->b, r, self->stream_name);
		return GST_FLOW_ERROR;
	}
	ret = copy_frame(self, buf, &f);
	if (f.fence >= 0)
		close(f.fence);
	if (ret != GST_FLOW_OK)
		return ret;
	if (GST_CLOCK_TIME_IS_VALID(pts))
		running = gst_segment_to_running_time(&bsink->segment, GST_FORMAT_TIME, pts);
	GST_OBJECT_LOCK(self);
	self->frames++;
	self->copies++;
	GST_OBJECT_UNLOCK(self);
	/* written by the CPU, complete: no ready fence */
	r = dmabroker_stream_queue(self->s, f.index, -1, self->frames,
				   GST_CLOCK_TIME_IS_VALID(running) ? running : 0, NULL, 0);
	if (r < 0) {
		GST_DMABROKER_STREAM_ERROR(self, RESOURCE, WRITE, self->b, r, self->stream_name);
		return GST_FLOW_ERROR;
	}
	return GST_FLOW_OK;
}

static void gst_dmabroker_sink_class_init(GstDmaBrokerSinkClass *klass)
{
	GObjectClass *gobject_class = G_OBJECT_CLASS(klass);
	GstElementClass *element_class = GST_ELEMENT_CLASS(klass);
	GstBaseSinkClass *bsink_class = GST_BASE_SINK_CLASS(klass);
	GstCaps *caps = gst_dmabroker_template_caps();
	const GParamFlags rw = G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY;
	const GParamFlags ro = G_PARAM_READABLE | G_PARAM_STATIC_STRINGS;

	gobject_class->set_property = gst_dmabroker_sink_set_property;
	gobject_class->get_property = gst_dmabroker_sink_get_property;
	gobject_class->finalize = gst_dmabroker_sink_finalize;
	g_object_class_install_property(gobject_class, PROP_STREAM,
		g_param_spec_string("stream", "Stream", "The stream's name (1 to 63 of A-Z a-z 0-9 - _ .)",
				    DEFAULT_STREAM, rw));
	g_object_class_install_property(gobject_class, PROP_MODE,
		g_param_spec_enum("mode", "Mode", "How frames reach the consumers: fifo (every frame, back-pressure) "
				  "or mailbox (the newest replaces one not taken yet)",
				  GST_TYPE_DMABROKER_MODE, DEFAULT_MODE, rw));
	g_object_class_install_property(gobject_class, PROP_BUFFERS,
		g_param_spec_uint("buffers", "Buffers", "How many buffers the stream cycles", 1, 16, DEFAULT_BUFFERS,
				  rw));
	g_object_class_install_property(gobject_class, PROP_CONSUMERS,
		g_param_spec_uint("consumers", "Consumers",
				  "How many consumers to wait for before the stream is negotiated", 0, 16,
				  DEFAULT_CONSUMERS, rw));
	g_object_class_install_property(gobject_class, PROP_SESSION,
		g_param_spec_boolean("session", "Session bus",
				     "Find dmabrokerd on the session bus (default: the system bus)", FALSE, rw));
	g_object_class_install_property(gobject_class, PROP_FRAMES,
		g_param_spec_uint64("frames", "Frames", "Frames queued to the stream", 0, G_MAXUINT64, 0, ro));
	g_object_class_install_property(gobject_class, PROP_COPIES,
		g_param_spec_uint64("copies", "Copies", "Frames copied into a stream buffer (every frame, in this version)",
				    0, G_MAXUINT64, 0, ro));

	gst_element_class_set_static_metadata(element_class, "dmabroker stream producer", "Sink/Video",
		"Produces frames into a dmabroker stream, for other processes to consume", "dmabroker");
	gst_element_class_add_pad_template(element_class,
		gst_pad_template_new("sink", GST_PAD_SINK, GST_PAD_ALWAYS, caps));
	gst_caps_unref(caps);

	bsink_class->start = GST_DEBUG_FUNCPTR(gst_dmabroker_sink_start);
	bsink_class->stop = GST_DEBUG_FUNCPTR(gst_dmabroker_sink_stop);
	bsink_class->unlock = GST_DEBUG_FUNCPTR(gst_dmabroker_sink_unlock);
	bsink_class->unlock_stop = GST_DEBUG_FUNCPTR(gst_dmabroker_sink_unlock_stop);
	bsink_class->set_caps = GST_DEBUG_FUNCPTR(gst_dmabroker_sink_set_caps);
	bsink_class->propose_allocation = GST_DEBUG_FUNCPTR(gst_dmabroker_sink_propose_allocation);
	bsink_class->render = GST_DEBUG_FUNCPTR(gst_dmabroker_sink_render);
}

static void gst_dmabroker_sink_init(GstDmaBrokerSink *self)
{
	self->stream_name = g_strdup(DEFAULT_STREAM);
	self->mode = DEFAULT_MODE;
	self->buffers = DEFAULT_BUFFERS;
	self->consumers = DEFAULT_CONSUMERS;
	self->wake.fd = -1;
}

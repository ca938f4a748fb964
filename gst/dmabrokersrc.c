/* SPDX-License-Identifier: MIT */
/*
 * dmabrokersrc: a dmabroker stream consumer, a live source. It joins the
 * stream when it negotiates (waiting up to "wait" seconds for the stream to
 * appear, then for the stream to be negotiated), offering the formats
 * downstream takes; its caps are the stream's format and size. Each frame
 * goes out as fd memory of the stream buffer (GstDmaBufAllocator memory
 * when the buffer is a dma-buf; the shm backend's memfds are plain fd
 * memory), with a GstVideoMeta giving every plane's offset and stride.
 * Each stream buffer's fd is duplicated once, when the stream is ready, and
 * that duplicate belongs to a parent GstMemory kept while the stream is;
 * each frame is a share of it, and the frame goes back to the stream when
 * that share is freed, whoever frees it. The frame's acquire fence is
 * waited for before the buffer is pushed. When downstream cannot read a
 * GstVideoMeta and the stream's layout is not GStreamer's own, the frame
 * is copied into a buffer of GStreamer's layout and given back at once
 * (the "copies" property counts them).
 */
#include <errno.h>
#include <unistd.h>

#include <gst/allocators/allocators.h>

#include "gstdmabroker.h"

#define GST_CAT_DEFAULT gst_dmabroker_src_debug

#define MAX_BUFFERS 16
/* how long a frame's acquire fence may stay pending before the source gives up */
#define FENCE_TIMEOUT_MS 10000
#define POLL_SLICE_MS 1000

struct _GstDmaBrokerSrc {
	GstPushSrc parent;
	/* properties (the object lock) */
	char *stream_name;
	gboolean session;
	guint wait_s;
	guint64 frames, copies;
	/* the connection: the streaming thread's calls and the release of frames (any thread) */
	GMutex lock;
	struct dmabroker *b;
	struct dmabroker_stream *s;
	guint generation;                  /* a new one per start: a frame of an old stream is not released */
	/* the streaming thread's, once the stream is ready */
	GstVideoInfo info;                 /* the caps, GStreamer's own layout */
	unsigned n_buffers;
	GstMemory *mem[MAX_BUFFERS];       /* the parent of every frame of buffer i; owns a dup of its fd */
	gboolean meta_ok;                  /* downstream reads GstVideoMeta */
	struct gst_dmabroker_wake wake;
};

G_DEFINE_TYPE(GstDmaBrokerSrc, gst_dmabroker_src, GST_TYPE_PUSH_SRC)

enum { PROP_0, PROP_STREAM, PROP_SESSION, PROP_WAIT, PROP_FRAMES, PROP_COPIES };

#define DEFAULT_STREAM "camera"
#define DEFAULT_WAIT 30

/* A frame downstream holds: released to the stream when the memory is freed. */
struct held_frame {
	GstDmaBrokerSrc *self;
	guint generation;
	unsigned index;
};

static GQuark held_frame_quark(void)
{
	return g_quark_from_static_string("GstDmaBrokerSrc-frame");
}

static void release_frame(gpointer data)
{
	struct held_frame *h = data;
	GstDmaBrokerSrc *self = h->self;

	g_mutex_lock(&self->lock);
	if (self->s && self->generation == h->generation) {
		int r = dmabroker_stream_release(self->s, h->index, -1);
		if (r < 0)
			GST_WARNING_OBJECT(self, "releasing stream buffer %u: %s", h->index, gst_dmabroker_error(self->b, r));
	}
	g_mutex_unlock(&self->lock);
	gst_object_unref(self);
	g_free(h);
}

static void gst_dmabroker_src_set_property(GObject *object, guint id, const GValue *value, GParamSpec *pspec)
{
	GstDmaBrokerSrc *self = GST_DMABROKER_SRC(object);

	GST_OBJECT_LOCK(self);
	switch (id) {
	case PROP_STREAM:
		g_free(self->stream_name);
		self->stream_name = g_value_dup_string(value);
		break;
	case PROP_SESSION: self->session = g_value_get_boolean(value); break;
	case PROP_WAIT: self->wait_s = g_value_get_uint(value); break;
	default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, id, pspec); break;
	}
	GST_OBJECT_UNLOCK(self);
}

static void gst_dmabroker_src_get_property(GObject *object, guint id, GValue *value, GParamSpec *pspec)
{
	GstDmaBrokerSrc *self = GST_DMABROKER_SRC(object);

	GST_OBJECT_LOCK(self);
	switch (id) {
	case PROP_STREAM: g_value_set_string(value, self->stream_name); break;
	case PROP_SESSION: g_value_set_boolean(value, self->session); break;
	case PROP_WAIT: g_value_set_uint(value, self->wait_s); break;
	case PROP_FRAMES: g_value_set_uint64(value, self->frames); break;
	case PROP_COPIES: g_value_set_uint64(value, self->copies); break;
	default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, id, pspec); break;
	}
	GST_OBJECT_UNLOCK(self);
}

static void gst_dmabroker_src_finalize(GObject *object)
{
	GstDmaBrokerSrc *self = GST_DMABROKER_SRC(object);

	g_free(self->stream_name);
	g_mutex_clear(&self->lock);
	G_OBJECT_CLASS(gst_dmabroker_src_parent_class)->finalize(object);
}

static gboolean gst_dmabroker_src_start(GstBaseSrc *bsrc)
{
	GstDmaBrokerSrc *self = GST_DMABROKER_SRC(bsrc);
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

static gboolean gst_dmabroker_src_stop(GstBaseSrc *bsrc)
{
	GstDmaBrokerSrc *self = GST_DMABROKER_SRC(bsrc);
	GstMemory *mem[MAX_BUFFERS];
	unsigned n;

	GST_INFO_OBJECT(self, "stopped: %" G_GUINT64_FORMAT " frames pushed, %" G_GUINT64_FORMAT " of them copied",
			self->frames, self->copies);
	g_mutex_lock(&self->lock);
	/* frames downstream still holds keep their memory; the stream no longer wants them back */
	self->generation++;
	self->s = dmabroker_stream_destroy(self->s);
	self->b = dmabroker_disconnect(self->b);
	n = self->n_buffers;
	memcpy(mem, self->mem, sizeof(mem));
	memset(self->mem, 0, sizeof(self->mem));
	self->n_buffers = 0;
	g_mutex_unlock(&self->lock);
	/* outside the lock: nothing here is a frame, but unref may run any notify */
	for (unsigned i = 0; i < n; i++)
		if (mem[i])
			gst_memory_unref(mem[i]);
	gst_dmabroker_wake_close(&self->wake);
	return TRUE;
}

static gboolean gst_dmabroker_src_unlock(GstBaseSrc *bsrc)
{
	gst_dmabroker_wake_set(&GST_DMABROKER_SRC(bsrc)->wake, true);
	return TRUE;
}

static gboolean gst_dmabroker_src_unlock_stop(GstBaseSrc *bsrc)
{
	gst_dmabroker_wake_set(&GST_DMABROKER_SRC(bsrc)->wake, false);
	return TRUE;
}

/*
 * Runs the connection (first what was read already: a call's reply may
 * have brought news with it), then check() under the lock; until check()
 * is no longer again, waiting for the connection up to POLL_SLICE_MS at a
 * time. check()'s result, -EINTR when flushing, or the connection's error.
 */
static int run_until(GstDmaBrokerSrc *self, int (*check)(GstDmaBrokerSrc *self, void *data), int again, void *data)
{
	for (;;) {
		int r;
		g_mutex_lock(&self->lock);
		r = dmabroker_process(self->b);
		if (r >= 0)
			r = check(self, data);
		g_mutex_unlock(&self->lock);
		if (r != again)
			return r;
		r = gst_dmabroker_poll(self->b, &self->wake, POLL_SLICE_MS);
		if (r < 0)
			return r;
	}
}

static int check_ready(GstDmaBrokerSrc *self, void *data)
{
	return dmabroker_stream_wait_ready(self->s, 0);
}

static int check_acquire(GstDmaBrokerSrc *self, void *data)
{
	return dmabroker_stream_acquire(self->s, data);
}

/* Joins the stream, waiting up to wait_s for it to appear: 0, -EINTR when flushing, or an error (posted). */
static int join_stream(GstDmaBrokerSrc *self, const char *name, guint wait_s, const uint32_t *fourccs, size_t n)
{
	gint64 deadline = g_get_monotonic_time() + (gint64)wait_s * G_USEC_PER_SEC;
	char *label = g_strdup_printf("gst:%s", GST_OBJECT_NAME(self));
	struct dmabroker_stream_desc d = {
		.version = DMABROKER_STREAM_DESC_VERSION, .name = name, .label = label,
		.usage = DMABROKER_USAGE_CPU_READ_FLAG, .formats = fourccs, .n_formats = n,
	};
	bool said = false;
	int r;

	for (;;) {
		struct dmabroker_stream *s = NULL;
		g_mutex_lock(&self->lock);
		r = dmabroker_stream_join(self->b, &d, &s);
		self->s = s;
		g_mutex_unlock(&self->lock);
		if (r != -ENXIO || g_get_monotonic_time() >= deadline)
			break;
		if (!said)
			GST_INFO_OBJECT(self, "waiting up to %u s for stream '%s' to be created", wait_s, name);
		said = true;
		if (gst_dmabroker_poll(NULL, &self->wake, 50) == -EINTR) {
			r = -EINTR;
			break;
		}
	}
	g_free(label);
	if (r == -ENXIO)
		GST_ELEMENT_ERROR(self, RESOURCE, NOT_FOUND,
				  ("stream '%s' did not appear within %u s", name, wait_s),
				  ("%s", gst_dmabroker_error(self->b, r)));
	else if (r < 0 && r != -EINTR)
		GST_ELEMENT_ERROR(self, RESOURCE, OPEN_READ,
				  ("cannot join stream '%s': %s", name, gst_dmabroker_error(self->b, r)), (NULL));
	return r;
}

/* Wraps every stream buffer once: a dup of its fd owned by a parent memory. */
static gboolean wrap_buffers(GstDmaBrokerSrc *self, const char *name)
{
	GstAllocator *dmabuf = gst_dmabuf_allocator_new(), *fd = gst_fd_allocator_new();
	gboolean ok = TRUE;

	self->n_buffers = MIN(dmabroker_stream_get_buffer_count(self->s), MAX_BUFFERS);
	for (unsigned i = 0; i < self->n_buffers && ok; i++) {
		struct dmabroker_buffer *buf = dmabroker_stream_get_buffer(self->s, i);
		int dup = dmabroker_buffer_dup_fd(buf);
		gsize size = (gsize)dmabroker_buffer_get_size(buf);

		if (dup < 0) {
			GST_ELEMENT_ERROR(self, RESOURCE, OPEN_READ,
					  ("stream '%s', buffer %u: cannot duplicate its fd: %s", name, i, g_strerror(-dup)),
					  (NULL));
			ok = FALSE;
			break;
		}
		if (dmabroker_buffer_get_plane_count(buf) != GST_VIDEO_INFO_N_PLANES(&self->info)) {
			GST_ELEMENT_ERROR(self, STREAM, FORMAT,
					  ("stream '%s', buffer %u: %u planes, %s has %u", name, i,
					   dmabroker_buffer_get_plane_count(buf),
					   gst_video_format_to_string(GST_VIDEO_INFO_FORMAT(&self->info)),
					   GST_VIDEO_INFO_N_PLANES(&self->info)), (NULL));
			close(dup);
			ok = FALSE;
			break;
		}
		if (dmabroker_buffer_is_dmabuf(buf))
			self->mem[i] = gst_dmabuf_allocator_alloc_with_flags(dmabuf, dup, size, GST_FD_MEMORY_FLAG_KEEP_MAPPED);
		else
			self->mem[i] = gst_fd_allocator_alloc(fd, dup, size, GST_FD_MEMORY_FLAG_KEEP_MAPPED);
	}
	gst_object_unref(dmabuf);
	gst_object_unref(fd);
	return ok;
}

/*
 * The stream joined and ready, its caps set: done once, in the streaming
 * thread, before the first frame. FALSE when it failed (posted) or the
 * element was told to stop.
 */
static gboolean gst_dmabroker_src_negotiate(GstBaseSrc *bsrc)
{
	GstDmaBrokerSrc *self = GST_DMABROKER_SRC(bsrc);
	GstCaps *templ, *peer, *caps;
	uint32_t fourccs[32];
	GstVideoFormat format;
	size_t n;
	char *name;
	guint wait_s;
	int r;

	/* a stream keeps its format and size: downstream's reconfigure changes nothing */
	if (self->n_buffers)
		return TRUE;
	templ = gst_pad_get_pad_template_caps(GST_BASE_SRC_PAD(bsrc));
	peer = gst_pad_peer_query_caps(GST_BASE_SRC_PAD(bsrc), templ);
	gst_caps_unref(templ);
	n = gst_dmabroker_fourccs_from_caps(peer, fourccs, G_N_ELEMENTS(fourccs));
	if (n == 0) {
		char *str = gst_caps_to_string(peer);
		GST_ELEMENT_ERROR(self, CORE, NEGOTIATION,
				  ("downstream takes none of the formats dmabroker has: %s", str), (NULL));
		g_free(str);
		gst_caps_unref(peer);
		return FALSE;
	}
	gst_caps_unref(peer);
	GST_OBJECT_LOCK(self);
	name = g_strdup(self->stream_name);
	wait_s = self->wait_s;
	GST_OBJECT_UNLOCK(self);

	/* joined already when an earlier attempt was cut short by a flush */
	r = self->s ? 0 : join_stream(self, name, wait_s, fourccs, n);
	if (r == 0)
		r = run_until(self, check_ready, -ETIMEDOUT, NULL);
	if (r == -EINTR) {
		g_free(name);
		return FALSE;
	}
	if (r < 0) {
		if (self->s)
			GST_DMABROKER_STREAM_ERROR(self, RESOURCE, OPEN_READ, self->b, r, name);
		g_free(name);
		return FALSE;
	}
	format = gst_dmabroker_format_from_fourcc(dmabroker_stream_get_fourcc(self->s));
	gst_video_info_set_format(&self->info, format, dmabroker_stream_get_width(self->s),
				  dmabroker_stream_get_height(self->s));
	GST_INFO_OBJECT(self, "stream '%s': %ux%u %s, %u buffers on %s", name, dmabroker_stream_get_width(self->s),
			dmabroker_stream_get_height(self->s), gst_video_format_to_string(format),
			dmabroker_stream_get_buffer_count(self->s), dmabroker_stream_get_backend(self->s));
	if (format == GST_VIDEO_FORMAT_UNKNOWN || !wrap_buffers(self, name)) {
		if (format == GST_VIDEO_FORMAT_UNKNOWN)
			GST_ELEMENT_ERROR(self, CORE, NEGOTIATION,
					  ("stream '%s' was negotiated to a format GStreamer has not", name), (NULL));
		g_free(name);
		return FALSE;
	}
	g_free(name);
	caps = gst_video_info_to_caps(&self->info);
	gst_caps_set_simple(caps, "framerate", GST_TYPE_FRACTION, 0, 1, NULL);
	r = gst_base_src_set_caps(bsrc, caps);
	gst_caps_unref(caps);
	return r;
}

static gboolean gst_dmabroker_src_decide_allocation(GstBaseSrc *bsrc, GstQuery *query)
{
	GstDmaBrokerSrc *self = GST_DMABROKER_SRC(bsrc);

	self->meta_ok = gst_query_find_allocation_meta(query, GST_VIDEO_META_API_TYPE, NULL);
	GST_INFO_OBJECT(self, "downstream %s GstVideoMeta", self->meta_ok ? "reads" : "does not read");
	return GST_BASE_SRC_CLASS(gst_dmabroker_src_parent_class)->decide_allocation(bsrc, query);
}

/* The frame as GStreamer's own layout, from buf (which has the stream's, in its GstVideoMeta). */
static GstBuffer *copy_to_default_layout(GstDmaBrokerSrc *self, GstBuffer *buf)
{
	GstBuffer *out = gst_buffer_new_allocate(NULL, GST_VIDEO_INFO_SIZE(&self->info), NULL);
	GstVideoFrame in, o;
	gboolean ok = FALSE;

	if (gst_video_frame_map(&in, &self->info, buf, GST_MAP_READ)) {
		if (gst_video_frame_map(&o, &self->info, out, GST_MAP_WRITE)) {
			ok = gst_video_frame_copy(&o, &in);
			gst_video_frame_unmap(&o);
		}
		gst_video_frame_unmap(&in);
	}
	if (!ok)
		gst_clear_buffer(&out);
	return out;
}

static GstFlowReturn gst_dmabroker_src_create(GstPushSrc *psrc, GstBuffer **ret)
{
	GstDmaBrokerSrc *self = GST_DMABROKER_SRC(psrc);
	struct dmabroker_frame f;
	gsize offset[GST_VIDEO_MAX_PLANES] = { 0 };
	gint stride[GST_VIDEO_MAX_PLANES] = { 0 };
	unsigned n_planes = GST_VIDEO_INFO_N_PLANES(&self->info);
	struct held_frame *h;
	gboolean same_layout = TRUE;
	GstMemory *mem;
	GstBuffer *buf;
	int r;

	if (!self->s || !self->n_buffers)
		return GST_FLOW_NOT_NEGOTIATED;
	/* 0, -EPIPE at the stream's end, -EINTR when flushing, or an error */
	r = run_until(self, check_acquire, -EAGAIN, &f);
	if (r == -EINTR)
		return GST_FLOW_FLUSHING;
	if (r == -EPIPE) {
		GST_INFO_OBJECT(self, "the stream ended");
		return GST_FLOW_EOS;
	}
	if (r < 0) {
		GST_DMABROKER_STREAM_ERROR(self, RESOURCE, READ, self->b, r, self->stream_name);
		return GST_FLOW_ERROR;
	}
	if (f.index >= self->n_buffers) {
		if (f.fence >= 0)
			close(f.fence);
		g_mutex_lock(&self->lock);
		dmabroker_stream_release(self->s, f.index, -1);
		g_mutex_unlock(&self->lock);
		GST_ELEMENT_ERROR(self, RESOURCE, READ, ("stream '%s': a frame in buffer %u of %u", self->stream_name,
							 f.index, self->n_buffers), (NULL));
		return GST_FLOW_ERROR;
	}
	/* nothing downstream may touch the frame before its acquire fence signalled */
	if (f.fence >= 0) {
		int w = dmabroker_fence_wait(f.fence, FENCE_TIMEOUT_MS);
		close(f.fence);
		if (w != 1) {
			g_mutex_lock(&self->lock);
			dmabroker_stream_release(self->s, f.index, -1);
			g_mutex_unlock(&self->lock);
			GST_ELEMENT_ERROR(self, RESOURCE, READ,
					  ("stream '%s', buffer %u: its acquire fence %s", self->stream_name, f.index,
					   w == 0 ? "did not signal in 10 s" : g_strerror(-w)), (NULL));
			return GST_FLOW_ERROR;
		}
	}
	for (unsigned i = 0; i < n_planes; i++) {
		uint64_t off;
		uint32_t st;
		dmabroker_buffer_get_plane(f.buffer, i, &off, &st);
		offset[i] = (gsize)off;
		stride[i] = (gint)st;
		same_layout &= offset[i] == GST_VIDEO_INFO_PLANE_OFFSET(&self->info, i) &&
			       stride[i] == GST_VIDEO_INFO_PLANE_STRIDE(&self->info, i);
	}

	/* in GStreamer's own layout, the frame is its first info.size bytes (a downstream without
	 * GstVideoMeta takes the memory's size as the frame's) */
	mem = gst_memory_share(self->mem[f.index], 0,
			       same_layout ? (gssize)MIN(GST_VIDEO_INFO_SIZE(&self->info), self->mem[f.index]->size) : -1);
	h = g_new(struct held_frame, 1);
	*h = (struct held_frame){ .self = gst_object_ref(self), .generation = self->generation, .index = f.index };
	gst_mini_object_set_qdata(GST_MINI_OBJECT_CAST(mem), held_frame_quark(), h, release_frame);
	buf = gst_buffer_new();
	gst_buffer_append_memory(buf, mem);
	gst_buffer_add_video_meta_full(buf, GST_VIDEO_FRAME_FLAG_NONE, GST_VIDEO_INFO_FORMAT(&self->info),
				       GST_VIDEO_INFO_WIDTH(&self->info), GST_VIDEO_INFO_HEIGHT(&self->info), n_planes,
				       offset, stride);
	GST_OBJECT_LOCK(self);
	self->frames++;
	GST_OBJECT_UNLOCK(self);
	if (!self->meta_ok && !same_layout) {
		/* the frame goes back to the stream as soon as it is copied */
		GstBuffer *copy = copy_to_default_layout(self, buf);
		gst_buffer_unref(buf);
		if (!copy) {
			GST_ELEMENT_ERROR(self, RESOURCE, READ, ("stream '%s', buffer %u: cannot map it", self->stream_name,
								 f.index), (NULL));
			return GST_FLOW_ERROR;
		}
		GST_OBJECT_LOCK(self);
		if (self->copies++ == 0)
			GST_INFO_OBJECT(self, "downstream does not read GstVideoMeta and the stream's layout is not "
					      "GStreamer's: every frame is copied");
		GST_OBJECT_UNLOCK(self);
		buf = copy;
	}
	*ret = buf;
	return GST_FLOW_OK;
}

static void gst_dmabroker_src_class_init(GstDmaBrokerSrcClass *klass)
{
	GObjectClass *gobject_class = G_OBJECT_CLASS(klass);
	GstElementClass *element_class = GST_ELEMENT_CLASS(klass);
	GstBaseSrcClass *bsrc_class = GST_BASE_SRC_CLASS(klass);
	GstPushSrcClass *psrc_class = GST_PUSH_SRC_CLASS(klass);
	GstCaps *caps = gst_dmabroker_template_caps();
	const GParamFlags rw = G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY;
	const GParamFlags ro = G_PARAM_READABLE | G_PARAM_STATIC_STRINGS;

	gobject_class->set_property = gst_dmabroker_src_set_property;
	gobject_class->get_property = gst_dmabroker_src_get_property;
	gobject_class->finalize = gst_dmabroker_src_finalize;
	g_object_class_install_property(gobject_class, PROP_STREAM,
		g_param_spec_string("stream", "Stream", "The stream's name (1 to 63 of A-Z a-z 0-9 - _ .)",
				    DEFAULT_STREAM, rw));
	g_object_class_install_property(gobject_class, PROP_SESSION,
		g_param_spec_boolean("session", "Session bus",
				     "Find dmabrokerd on the session bus (default: the system bus)", FALSE, rw));
	g_object_class_install_property(gobject_class, PROP_WAIT,
		g_param_spec_uint("wait", "Wait", "Seconds to wait for the stream to be created", 0, 86400,
				  DEFAULT_WAIT, rw));
	g_object_class_install_property(gobject_class, PROP_FRAMES,
		g_param_spec_uint64("frames", "Frames", "Frames taken from the stream", 0, G_MAXUINT64, 0, ro));
	g_object_class_install_property(gobject_class, PROP_COPIES,
		g_param_spec_uint64("copies", "Copies",
				    "Frames copied into GStreamer's layout, for a downstream that reads no GstVideoMeta",
				    0, G_MAXUINT64, 0, ro));

	gst_element_class_set_static_metadata(element_class, "dmabroker stream consumer", "Source/Video",
		"Consumes the frames of a dmabroker stream, as dma-buf memory", "dmabroker");
	gst_element_class_add_pad_template(element_class,
		gst_pad_template_new("src", GST_PAD_SRC, GST_PAD_ALWAYS, caps));
	gst_caps_unref(caps);

	bsrc_class->start = GST_DEBUG_FUNCPTR(gst_dmabroker_src_start);
	bsrc_class->stop = GST_DEBUG_FUNCPTR(gst_dmabroker_src_stop);
	bsrc_class->unlock = GST_DEBUG_FUNCPTR(gst_dmabroker_src_unlock);
	bsrc_class->unlock_stop = GST_DEBUG_FUNCPTR(gst_dmabroker_src_unlock_stop);
	bsrc_class->negotiate = GST_DEBUG_FUNCPTR(gst_dmabroker_src_negotiate);
	bsrc_class->decide_allocation = GST_DEBUG_FUNCPTR(gst_dmabroker_src_decide_allocation);
	psrc_class->create = GST_DEBUG_FUNCPTR(gst_dmabroker_src_create);
}

static void gst_dmabroker_src_init(GstDmaBrokerSrc *self)
{
	self->stream_name = g_strdup(DEFAULT_STREAM);
	self->wait_s = DEFAULT_WAIT;
	self->wake.fd = -1;
	g_mutex_init(&self->lock);
	gst_base_src_set_live(GST_BASE_SRC(self), TRUE);
	gst_base_src_set_format(GST_BASE_SRC(self), GST_FORMAT_TIME);
	gst_base_src_set_do_timestamp(GST_BASE_SRC(self), TRUE);
}

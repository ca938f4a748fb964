/* SPDX-License-Identifier: MIT */
/* The plugin libgstdmabroker: its two elements, its debug categories, the stream mode enum. */
#include "buildconf.h"
#include "gstdmabroker.h"

/* GST_PLUGIN_DEFINE names the package by this macro */
#define PACKAGE "dmabroker"

GType gst_dmabroker_mode_get_type(void)
{
	static gsize type;
	static const GEnumValue values[] = {
		{ DMABROKER_STREAM_FIFO, "every frame to every consumer; a slow consumer slows the producer", "fifo" },
		{ DMABROKER_STREAM_MAILBOX, "the newest frame replaces one a consumer has not taken yet", "mailbox" },
		{ 0, NULL, NULL },
	};

	if (g_once_init_enter(&type))
		g_once_init_leave(&type, g_enum_register_static("GstDmaBrokerMode", values));
	return type;
}

GST_DEBUG_CATEGORY(gst_dmabroker_sink_debug);
GST_DEBUG_CATEGORY(gst_dmabroker_src_debug);

static gboolean plugin_init(GstPlugin *plugin)
{
	GST_DEBUG_CATEGORY_INIT(gst_dmabroker_sink_debug, "dmabrokersink", 0, "dmabroker stream producer");
	GST_DEBUG_CATEGORY_INIT(gst_dmabroker_src_debug, "dmabrokersrc", 0, "dmabroker stream consumer");
	return gst_element_register(plugin, "dmabrokersink", GST_RANK_NONE, GST_TYPE_DMABROKER_SINK) &&
	       gst_element_register(plugin, "dmabrokersrc", GST_RANK_NONE, GST_TYPE_DMABROKER_SRC);
}

GST_PLUGIN_DEFINE(GST_VERSION_MAJOR, GST_VERSION_MINOR, dmabroker,
		  "dma-bufs shared through dmabrokerd: stream producer and consumer elements", plugin_init,
		  DMABROKER_VERSION, "MIT/X11", "dmabroker", "dmabroker")

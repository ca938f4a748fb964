/* SPDX-License-Identifier: MIT */
/*
 * dmabroker-gl: a GPU stage between two streams. It consumes an input
 * stream, renders a transform of each frame with GLES (mirrored left to
 * right, and the output frame's number drawn in as 16 black or white 8x8
 * blocks along the top row, bit 0 leftmost) into a buffer of an output
 * stream it produces, and hands the frame on, zero-copy: each stream buffer
 * is imported once, the input as an EGLImage texture
 * (EGL_EXT_image_dma_buf_import, every plane with its offset and stride,
 * and the modifier with _modifiers), the output as an EGLImage render
 * target.
 *
 * EGL on GBM on a DRM card node (Mesa). Ordering: with
 * EGL_ANDROID_native_fence_sync and EGL_KHR_wait_sync the acquire fence is
 * waited for by the GPU and the output goes on under a native fence that
 * signals when rendering is done; without them (Mesa's llvmpipe) the stage
 * waits for the acquire fence on the CPU, renders, glFinish()es and hands
 * the frame on complete (no fence: it is written when queued), and says so.
 *
 * A device with no render node (vkms) is rendered by Mesa's kms_swrast,
 * which reads and writes only dumb buffers of its own device: both streams
 * then ask for buffers native to it (DMABROKER_STREAM_NATIVE), and a
 * placement elsewhere is refused by the negotiation, naming this stage.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <EGL/egl.h>
#include <EGL/eglext.h>
#include <GLES2/gl2.h>
#include <GLES2/gl2ext.h>
#include <drm_fourcc.h>
#include <gbm.h>
#include <xf86drm.h>

#include "dmabroker.h"
#include "tool-util.h"

#define MAX_BUFFERS 16

static volatile int got_signal;

static void on_signal(int sig)
{
	(void)sig;
	got_signal = 1;
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: dmabroker-gl [OPTION]...\n"
		"A GLES stage between two dmabroker streams: each frame of the input stream is drawn mirrored,\n"
		"with the frame's number in its top row, into a buffer of the output stream, zero-copy.\n"
		"\n"
		"  -d, --device DEV       the DRM card node or driver name to render on, e.g. /dev/dri/card0 or\n"
		"                         vkms (default: the first card)\n"
		"  -i, --input NAME       stream to consume (default: camera)\n"
		"  -o, --output NAME      stream to produce (default: gl)\n"
		"  -m, --mode MODE        the output stream's mode: fifo or mailbox (default: mailbox)\n"
		"  -b, --buffers N        the output stream's buffers, 2 to 16 (default: 4)\n"
		"  -c, --consumers N      consumers of the output to wait for (default: 1)\n"
		"  -n, --frames N         stop after N frames\n"
		"  -w, --wait SECONDS     wait this long for the input stream to be created (default: 30)\n"
		"      --session          use the session bus (default: the system bus)\n"
		"  -q, --quiet            print only errors and the summary\n"
		"  -h, --help             show this help\n"
		"\n"
		"Exit status: 0 when done, 1 on a failure (the message says which), 2 on bad usage.\n");
}

struct gl {
	int fd;
	char path[64], driver[64];
	bool native;                            /* no render node: kms_swrast, its own dumb buffers only */
	struct gbm_device *gbm;
	EGLDisplay dpy;
	EGLContext ctx;
	bool native_fence;                      /* EGL_ANDROID_native_fence_sync and EGL_KHR_wait_sync */
	PFNEGLCREATEIMAGEKHRPROC create_image;
	PFNEGLDESTROYIMAGEKHRPROC destroy_image;
	PFNGLEGLIMAGETARGETTEXTURE2DOESPROC image_texture;
	PFNGLEGLIMAGETARGETRENDERBUFFERSTORAGEOESPROC image_renderbuffer;
	PFNEGLCREATESYNCKHRPROC create_sync;
	PFNEGLDESTROYSYNCKHRPROC destroy_sync;
	PFNEGLWAITSYNCKHRPROC wait_sync;
	PFNEGLDUPNATIVEFENCEFDANDROIDPROC dup_fence;
	GLuint program, vbo;
	GLint u_size, u_counter, u_tex;
	/* per stream buffer, imported once */
	EGLImageKHR in_image[MAX_BUFFERS], out_image[MAX_BUFFERS];
	GLuint in_tex[MAX_BUFFERS], out_rb[MAX_BUFFERS], out_fb[MAX_BUFFERS];
	/* the streams */
	struct dmabroker *b;
	struct dmabroker_stream *in, *out;
	uint64_t n_frames, n_waited, wait_ns, render_ns;
	bool quiet;
};

static struct gl *cleanup_gl;

static bool has_ext(const char *list, const char *ext)
{
	size_t n = strlen(ext);
	for (const char *p = list; p && (p = strstr(p, ext)); p += n)
		if ((p == list || p[-1] == ' ') && (p[n] == ' ' || p[n] == 0))
			return true;
	return false;
}

/* Opens the card (node or driver name), gives up DRM master at once: a display on it needs it. */
static int open_card(struct gl *g, const char *want)
{
	for (int i = 0; i < 16; i++) {
		char path[32];
		drmVersionPtr v;
		int fd;
		snprintf(path, sizeof(path), "/dev/dri/card%d", i);
		fd = open(path, O_RDWR | O_CLOEXEC);
		if (fd < 0)
			continue;
		v = drmGetVersion(fd);
		if (v && (!want || strcmp(want, path) == 0 || strcmp(want, v->name) == 0)) {
			g->fd = fd;
			snprintf(g->path, sizeof(g->path), "%s", path);
			snprintf(g->driver, sizeof(g->driver), "%s", v->name);
			drmFreeVersion(v);
			drmDropMaster(fd); /* fails harmlessly when it was not master */
			g->native = !card_has_render_node(i);
			return 0;
		}
		drmFreeVersion(v);
		close(fd);
	}
	return fail("no DRM card %s%s", want ? "matching " : "", want ? want : "(no /dev/dri/card*)");
}

static GLuint compile(GLenum type, const char *src)
{
	GLuint s = glCreateShader(type);
	GLint ok = 0;
	glShaderSource(s, 1, &src, NULL);
	glCompileShader(s);
	glGetShaderiv(s, GL_COMPILE_STATUS, &ok);
	if (!ok) {
		char log[512] = "";
		glGetShaderInfoLog(s, sizeof(log), NULL, log);
		fail("GLES shader: %s", log);
		return 0;
	}
	return s;
}

static const char vertex_src[] =
	"attribute vec2 pos;\n"
	"void main() { gl_Position = vec4(pos, 0.0, 1.0); }\n";

/*
 * Output pixel (x, y) (memory row y: the dma-buf render target and texture
 * both have row 0 at GL's y = 0) is input pixel (w-1-x, y), sampled at its
 * centre with GL_NEAREST: exact. The top 8 rows' first 128 pixels are the
 * frame counter's 16 bits, 8x8 each, bit 0 leftmost, white for 1.
 */
static const char fragment_src[] =
	"precision highp float;\n"
	"uniform sampler2D tex;\n"
	"uniform vec2 size;\n"
	"uniform float counter;\n"
	"void main() {\n"
	"  vec2 p = gl_FragCoord.xy;\n"
	"  if (p.y < 8.0 && p.x < 128.0) {\n"
	"    float bit = mod(floor(counter / exp2(floor(p.x / 8.0))), 2.0);\n"
	"    gl_FragColor = vec4(vec3(bit), 1.0);\n"
	"  } else {\n"
	"    gl_FragColor = vec4(texture2D(tex, vec2((size.x - p.x) / size.x, p.y / size.y)).rgb, 1.0);\n"
	"  }\n"
	"}\n";

static int init_egl(struct gl *g)
{
	PFNEGLGETPLATFORMDISPLAYEXTPROC get_display =
		(PFNEGLGETPLATFORMDISPLAYEXTPROC)eglGetProcAddress("eglGetPlatformDisplayEXT");
	static const EGLint ctx_attr[] = { EGL_CONTEXT_CLIENT_VERSION, 2, EGL_NONE };
	const char *exts;
	GLuint vs, fs;
	GLint ok = 0;

	g->gbm = gbm_create_device(g->fd);
	if (!g->gbm)
		return fail("%s: gbm_create_device failed", g->path);
	g->dpy = get_display ? get_display(EGL_PLATFORM_GBM_KHR, g->gbm, NULL) : EGL_NO_DISPLAY;
	if (g->dpy == EGL_NO_DISPLAY || !eglInitialize(g->dpy, NULL, NULL))
		return fail("%s: no EGL display on GBM (EGL_KHR_platform_gbm)", g->path);
	exts = eglQueryString(g->dpy, EGL_EXTENSIONS);
	static const char *const needed[] = { "EGL_EXT_image_dma_buf_import", "EGL_KHR_surfaceless_context",
					      "EGL_KHR_no_config_context" };
	for (unsigned i = 0; i < sizeof(needed) / sizeof(needed[0]); i++)
		if (!has_ext(exts, needed[i]))
			return fail("%s: EGL lacks %s", g->path, needed[i]);
	g->native_fence = has_ext(exts, "EGL_ANDROID_native_fence_sync") && has_ext(exts, "EGL_KHR_wait_sync");
	eglBindAPI(EGL_OPENGL_ES_API);
	g->ctx = eglCreateContext(g->dpy, EGL_NO_CONFIG_KHR, EGL_NO_CONTEXT, ctx_attr);
	if (g->ctx == EGL_NO_CONTEXT || !eglMakeCurrent(g->dpy, EGL_NO_SURFACE, EGL_NO_SURFACE, g->ctx))
		return fail("%s: cannot make a GLES 2 context current (0x%x)", g->path, eglGetError());
	if (!has_ext((const char *)glGetString(GL_EXTENSIONS), "GL_OES_EGL_image"))
		return fail("%s: GLES lacks GL_OES_EGL_image", g->path);
	g->create_image = (PFNEGLCREATEIMAGEKHRPROC)eglGetProcAddress("eglCreateImageKHR");
	g->destroy_image = (PFNEGLDESTROYIMAGEKHRPROC)eglGetProcAddress("eglDestroyImageKHR");
	g->image_texture = (PFNGLEGLIMAGETARGETTEXTURE2DOESPROC)eglGetProcAddress("glEGLImageTargetTexture2DOES");
	g->image_renderbuffer =
		(PFNGLEGLIMAGETARGETRENDERBUFFERSTORAGEOESPROC)eglGetProcAddress("glEGLImageTargetRenderbufferStorageOES");
	g->create_sync = (PFNEGLCREATESYNCKHRPROC)eglGetProcAddress("eglCreateSyncKHR");
	g->destroy_sync = (PFNEGLDESTROYSYNCKHRPROC)eglGetProcAddress("eglDestroySyncKHR");
	g->wait_sync = (PFNEGLWAITSYNCKHRPROC)eglGetProcAddress("eglWaitSyncKHR");
	g->dup_fence = (PFNEGLDUPNATIVEFENCEFDANDROIDPROC)eglGetProcAddress("eglDupNativeFenceFDANDROID");
	if (!g->create_image || !g->image_texture || !g->image_renderbuffer)
		return fail("%s: the EGLImage entry points are missing", g->path);
	vs = compile(GL_VERTEX_SHADER, vertex_src);
	fs = compile(GL_FRAGMENT_SHADER, fragment_src);
	if (!vs || !fs)
		return -1;
	g->program = glCreateProgram();
	glAttachShader(g->program, vs);
	glAttachShader(g->program, fs);
	glBindAttribLocation(g->program, 0, "pos");
	glLinkProgram(g->program);
	glGetProgramiv(g->program, GL_LINK_STATUS, &ok);
	if (!ok)
		return fail("GLES program does not link");
	g->u_size = glGetUniformLocation(g->program, "size");
	g->u_counter = glGetUniformLocation(g->program, "counter");
	g->u_tex = glGetUniformLocation(g->program, "tex");
	{
		static const GLfloat quad[] = { -1, -1, 1, -1, -1, 1, 1, 1 };
		glGenBuffers(1, &g->vbo);
		glBindBuffer(GL_ARRAY_BUFFER, g->vbo);
		glBufferData(GL_ARRAY_BUFFER, sizeof(quad), quad, GL_STATIC_DRAW);
	}
	if (!g->quiet)
		printf("gl: %s (%s): %s, %s; %s\n", g->path, g->driver, (const char *)glGetString(GL_RENDERER),
		       g->native ? "no render node: buffers must be native to it" : "a render node",
		       g->native_fence ? "native fences (EGL_ANDROID_native_fence_sync, EGL_KHR_wait_sync)"
				       : "no native fence sync: acquire fences waited for on the CPU, output handed on "
					 "after glFinish");
	return 0;
}

/* Buffer buf as an EGLImage: every plane with its offset and stride, the modifier when it is not the implicit one. */
static EGLImageKHR import_image(struct gl *g, struct dmabroker_buffer *buf, const char *what)
{
	EGLint attr[64];
	unsigned n = 0, planes = dmabroker_buffer_get_plane_count(buf);
	uint64_t modifier = dmabroker_buffer_get_modifier(buf);
	static const EGLint fd_key[] = { EGL_DMA_BUF_PLANE0_FD_EXT, EGL_DMA_BUF_PLANE1_FD_EXT, EGL_DMA_BUF_PLANE2_FD_EXT };
	static const EGLint off_key[] = { EGL_DMA_BUF_PLANE0_OFFSET_EXT, EGL_DMA_BUF_PLANE1_OFFSET_EXT,
					  EGL_DMA_BUF_PLANE2_OFFSET_EXT };
	static const EGLint pitch_key[] = { EGL_DMA_BUF_PLANE0_PITCH_EXT, EGL_DMA_BUF_PLANE1_PITCH_EXT,
					    EGL_DMA_BUF_PLANE2_PITCH_EXT };
	static const EGLint lo_key[] = { EGL_DMA_BUF_PLANE0_MODIFIER_LO_EXT, EGL_DMA_BUF_PLANE1_MODIFIER_LO_EXT,
					 EGL_DMA_BUF_PLANE2_MODIFIER_LO_EXT };
	static const EGLint hi_key[] = { EGL_DMA_BUF_PLANE0_MODIFIER_HI_EXT, EGL_DMA_BUF_PLANE1_MODIFIER_HI_EXT,
					 EGL_DMA_BUF_PLANE2_MODIFIER_HI_EXT };
	EGLImageKHR img;
	char name[5];

	attr[n++] = EGL_WIDTH;
	attr[n++] = (EGLint)dmabroker_buffer_get_width(buf);
	attr[n++] = EGL_HEIGHT;
	attr[n++] = (EGLint)dmabroker_buffer_get_height(buf);
	attr[n++] = EGL_LINUX_DRM_FOURCC_EXT;
	attr[n++] = (EGLint)dmabroker_buffer_get_fourcc(buf);
	for (unsigned p = 0; p < planes && p < 3; p++) {
		uint64_t offset;
		uint32_t stride;
		dmabroker_buffer_get_plane(buf, p, &offset, &stride);
		attr[n++] = fd_key[p];
		attr[n++] = dmabroker_buffer_get_fd(buf);
		attr[n++] = off_key[p];
		attr[n++] = (EGLint)offset;
		attr[n++] = pitch_key[p];
		attr[n++] = (EGLint)stride;
		if (modifier != DRM_FORMAT_MOD_INVALID) {
			attr[n++] = lo_key[p];
			attr[n++] = (EGLint)(modifier & 0xffffffff);
			attr[n++] = hi_key[p];
			attr[n++] = (EGLint)(modifier >> 32);
		}
	}
	attr[n++] = EGL_NONE;
	img = g->create_image(g->dpy, EGL_NO_CONTEXT, EGL_LINUX_DMA_BUF_EXT, NULL, attr);
	if (img == EGL_NO_IMAGE_KHR)
		fail("%s: EGL refuses the %s buffer (%ux%u %s on %s) as an EGLImage (0x%x)", g->path, what,
		     dmabroker_buffer_get_width(buf), dmabroker_buffer_get_height(buf),
		     fourcc_name(dmabroker_buffer_get_fourcc(buf), name), dmabroker_buffer_get_backend(buf),
		     eglGetError());
	return img;
}

static int import_streams(struct gl *g)
{
	for (unsigned i = 0; i < dmabroker_stream_get_buffer_count(g->in); i++) {
		g->in_image[i] = import_image(g, dmabroker_stream_get_buffer(g->in, i), "input");
		if (g->in_image[i] == EGL_NO_IMAGE_KHR)
			return -1;
		glGenTextures(1, &g->in_tex[i]);
		glBindTexture(GL_TEXTURE_2D, g->in_tex[i]);
		g->image_texture(GL_TEXTURE_2D, g->in_image[i]);
		glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_MIN_FILTER, GL_NEAREST);
		glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_MAG_FILTER, GL_NEAREST);
		glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_WRAP_S, GL_CLAMP_TO_EDGE);
		glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_WRAP_T, GL_CLAMP_TO_EDGE);
	}
	for (unsigned i = 0; i < dmabroker_stream_get_buffer_count(g->out); i++) {
		g->out_image[i] = import_image(g, dmabroker_stream_get_buffer(g->out, i), "output");
		if (g->out_image[i] == EGL_NO_IMAGE_KHR)
			return -1;
		glGenRenderbuffers(1, &g->out_rb[i]);
		glBindRenderbuffer(GL_RENDERBUFFER, g->out_rb[i]);
		g->image_renderbuffer(GL_RENDERBUFFER, g->out_image[i]);
		glGenFramebuffers(1, &g->out_fb[i]);
		glBindFramebuffer(GL_FRAMEBUFFER, g->out_fb[i]);
		glFramebufferRenderbuffer(GL_FRAMEBUFFER, GL_COLOR_ATTACHMENT0, GL_RENDERBUFFER, g->out_rb[i]);
		if (glCheckFramebufferStatus(GL_FRAMEBUFFER) != GL_FRAMEBUFFER_COMPLETE)
			return fail("%s: the output buffer %u is no complete framebuffer (0x%x)", g->path, i,
				    glCheckFramebufferStatus(GL_FRAMEBUFFER));
	}
	return 0;
}

/* Waits for fence: on the GPU with native fences, else on the CPU (bounded). Closes it. */
static int wait_fence(struct gl *g, int fence)
{
	uint64_t t0;
	int r;

	if (fence < 0)
		return 0;
	if (g->native_fence) {
		EGLint attr[] = { EGL_SYNC_NATIVE_FENCE_FD_ANDROID, fence, EGL_NONE };
		EGLSyncKHR sync = g->create_sync(g->dpy, EGL_SYNC_NATIVE_FENCE_ANDROID, attr);
		if (sync != EGL_NO_SYNC_KHR) { /* EGL owns the fd now */
			g->wait_sync(g->dpy, sync, 0);
			g->destroy_sync(g->dpy, sync);
			return 0;
		}
	}
	t0 = monotonic_ns();
	while ((r = poll(&(struct pollfd){ .fd = fence, .events = POLLIN }, 1, 10000)) < 0 && errno == EINTR)
		;
	close(fence);
	g->wait_ns += monotonic_ns() - t0;
	g->n_waited++;
	return r == 1 ? 0 : fail("a fence did not signal within 10 s");
}

/* Renders input frame in into output buffer out; returns the ready fence of the output (or -1: complete). */
static int render(struct gl *g, const struct dmabroker_frame *in, const struct dmabroker_frame *out)
{
	uint32_t w = dmabroker_stream_get_width(g->out), h = dmabroker_stream_get_height(g->out);
	uint64_t t0 = monotonic_ns();
	int ready = -1;

	glBindFramebuffer(GL_FRAMEBUFFER, g->out_fb[out->index]);
	glViewport(0, 0, (GLsizei)w, (GLsizei)h);
	glUseProgram(g->program);
	glActiveTexture(GL_TEXTURE0);
	glBindTexture(GL_TEXTURE_2D, g->in_tex[in->index]);
	glUniform1i(g->u_tex, 0);
	glUniform2f(g->u_size, (GLfloat)w, (GLfloat)h);
	glUniform1f(g->u_counter, (GLfloat)(g->n_frames + 1));
	glBindBuffer(GL_ARRAY_BUFFER, g->vbo);
	glVertexAttribPointer(0, 2, GL_FLOAT, GL_FALSE, 0, NULL);
	glEnableVertexAttribArray(0);
	glDrawArrays(GL_TRIANGLE_STRIP, 0, 4);
	if (g->native_fence) {
		EGLSyncKHR sync = g->create_sync(g->dpy, EGL_SYNC_NATIVE_FENCE_ANDROID, NULL);
		glFlush();
		if (sync != EGL_NO_SYNC_KHR) {
			ready = g->dup_fence(g->dpy, sync);
			g->destroy_sync(g->dpy, sync);
		}
	}
	if (ready < 0)
		glFinish(); /* the frame is complete when handed on */
	g->render_ns += monotonic_ns() - t0;
	return ready;
}

static void print_summary(struct gl *g)
{
	printf("gl: %" PRIu64 " frames, %.2f ms per frame rendering", g->n_frames,
	       g->n_frames ? (double)g->render_ns / 1e6 / (double)g->n_frames : 0.0);
	if (g->n_waited)
		printf(", %" PRIu64 " fences waited for on the CPU, %.3f ms on average", g->n_waited,
		       (double)g->wait_ns / 1e6 / (double)g->n_waited);
	printf("\n");
	fflush(stdout);
}

static void cleanup(void)
{
	struct gl *g = cleanup_gl;
	if (!g)
		return;
	if (g->dpy != EGL_NO_DISPLAY && g->ctx != EGL_NO_CONTEXT) {
		for (unsigned i = 0; i < MAX_BUFFERS; i++) {
			if (g->in_image[i])
				g->destroy_image(g->dpy, g->in_image[i]);
			if (g->out_image[i])
				g->destroy_image(g->dpy, g->out_image[i]);
		}
		eglMakeCurrent(g->dpy, EGL_NO_SURFACE, EGL_NO_SURFACE, EGL_NO_CONTEXT);
		eglDestroyContext(g->dpy, g->ctx);
	}
	if (g->dpy != EGL_NO_DISPLAY)
		eglTerminate(g->dpy);
	if (g->out)
		g->out = dmabroker_stream_destroy(g->out);
	if (g->in)
		g->in = dmabroker_stream_destroy(g->in);
	if (g->b)
		dmabroker_disconnect(g->b);
	if (g->gbm)
		gbm_device_destroy(g->gbm);
	if (g->fd >= 0)
		close(g->fd);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "device", required_argument, NULL, 'd' }, { "input", required_argument, NULL, 'i' },
		{ "output", required_argument, NULL, 'o' }, { "mode", required_argument, NULL, 'm' },
		{ "buffers", required_argument, NULL, 'b' }, { "consumers", required_argument, NULL, 'c' },
		{ "frames", required_argument, NULL, 'n' }, { "wait", required_argument, NULL, 'w' },
		{ "session", no_argument, NULL, 'S' },      { "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },         { 0 },
	};
	static struct gl g = { .fd = -1, .dpy = EGL_NO_DISPLAY, .ctx = EGL_NO_CONTEXT };
	const char *device = NULL, *input = "camera", *output = "gl";
	uint32_t limit = 0, wait_s = 30, buffers = 4, consumers = 1;
	enum dmabroker_stream_mode mode = DMABROKER_STREAM_MAILBOX;
	bool session = false;
	int opt, r;

	while ((opt = getopt_long(argc, argv, "d:i:o:m:b:c:n:w:qh", opts, NULL)) != -1) {
		switch (opt) {
		case 'd': device = optarg; break;
		case 'i': input = optarg; break;
		case 'o': output = optarg; break;
		case 'm':
			if (strcmp(optarg, "fifo") == 0)
				mode = DMABROKER_STREAM_FIFO;
			else if (strcmp(optarg, "mailbox") == 0)
				mode = DMABROKER_STREAM_MAILBOX;
			else
				return usage_error("dmabroker-gl", "--mode: fifo or mailbox");
			break;
		case 'b':
			if (!parse_u32(optarg, 2, 16, &buffers))
				return usage_error("dmabroker-gl", "--buffers: 2 to 16");
			break;
		case 'c':
			if (!parse_u32(optarg, 0, 8, &consumers))
				return usage_error("dmabroker-gl", "--consumers: 0 to 8");
			break;
		case 'n':
			if (!parse_u32(optarg, 1, UINT32_MAX, &limit))
				return usage_error("dmabroker-gl", "--frames: a positive number");
			break;
		case 'w':
			if (!parse_u32(optarg, 0, 86400, &wait_s))
				return usage_error("dmabroker-gl", "--wait: 0 to 86400 seconds");
			break;
		case 'S': session = true; break;
		case 'q': g.quiet = true; break;
		case 'h': usage(stdout); return 0;
		default: return usage_error("dmabroker-gl", NULL);
		}
	}
	if (optind < argc)
		return usage_error("dmabroker-gl", "unexpected argument '%s'", argv[optind]);
	set_tool_name("gl");
	cleanup_gl = &g;
	atexit(cleanup);
	if (open_card(&g, device) < 0 || init_egl(&g) < 0)
		return 1;
	r = dmabroker_connect(session ? DMABROKER_BUS_SESSION : DMABROKER_BUS_SYSTEM, &g.b);
	if (r < 0)
		return fail("cannot reach dmabrokerd on the %s bus: %s", session ? "session" : "system", strerror(-r)), 1;
	{
		static const uint32_t rgb[] = { DRM_FORMAT_XRGB8888, DRM_FORMAT_ARGB8888 };
		char label[80];
		const char *devices[] = { g.path };
		struct dmabroker_stream_desc in = {
			.version = DMABROKER_STREAM_DESC_VERSION, .name = input, .label = label,
			.usage = DMABROKER_USAGE_GPU_FLAG, .formats = rgb, .n_formats = 2, .devices = devices,
			.n_devices = 1, .max_acquired = 1, .flags = g.native ? DMABROKER_STREAM_NATIVE : 0,
		};
		snprintf(label, sizeof(label), "gl:%s", g.driver);
		r = join_stream(g.b, &in, wait_s, &got_signal, &g.in);
		if (r < 0)
			return fail_stream(g.b, "joining stream", input), 1;
		while (!got_signal && (r = dmabroker_stream_wait_ready(g.in, 200)) == -ETIMEDOUT)
			;
		if (got_signal)
			return 0;
		if (r < 0)
			return fail_stream(g.b, "stream", input), 1;
		struct dmabroker_stream_desc out = {
			.version = DMABROKER_STREAM_DESC_VERSION, .name = output, .label = label,
			.usage = DMABROKER_USAGE_GPU_FLAG, .formats = rgb, .n_formats = 1, .devices = devices,
			.n_devices = 1, .mode = mode, .buffers = buffers, .consumers = consumers,
			.width = dmabroker_stream_get_width(g.in), .height = dmabroker_stream_get_height(g.in),
			.flags = g.native ? DMABROKER_STREAM_NATIVE : 0,
		};
		r = dmabroker_stream_create(g.b, &out, &g.out);
		if (r < 0)
			return fail_stream(g.b, "creating stream", output), 1;
		while (!got_signal && (r = dmabroker_stream_wait_ready(g.out, 200)) == -ETIMEDOUT)
			;
		if (got_signal)
			return 0;
		if (r < 0)
			return fail_stream(g.b, "stream", output), 1;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	if (import_streams(&g) < 0)
		return 1;
	if (!g.quiet)
		printf("gl: '%s' %ux%u on %s -> '%s' on %s\n", input, dmabroker_stream_get_width(g.in),
		       dmabroker_stream_get_height(g.in), dmabroker_stream_get_backend(g.in), output,
		       dmabroker_stream_get_backend(g.out));
	fflush(stdout);

	while (!got_signal && !(limit && g.n_frames >= limit)) {
		struct dmabroker_stream *both[2] = { g.in, g.out };
		struct dmabroker_frame f[2];
		int ready;

		r = dmabroker_streams_take(2, both, f);
		if (r == -EAGAIN) {
			if (dmabroker_streams_wait(2, both, 1000) < 0)
				return fail("lost the connection to dmabrokerd"), 1;
			continue;
		}
		if (r == -EPIPE) {
			if (!g.quiet)
				printf("gl: the input stream ended\n");
			break;
		}
		if (r < 0)
			return fail("streams: %s", dmabroker_error_message(g.b)), 1;
		if (wait_fence(&g, f[0].fence) < 0 || wait_fence(&g, f[1].fence) < 0)
			return 1;
		ready = render(&g, &f[0], &f[1]);
		g.n_frames++;
		/* the input is free once the rendering that read it is done: the same fence */
		dmabroker_stream_release(g.in, f[0].index, ready);
		r = dmabroker_stream_queue(g.out, f[1].index, ready, g.n_frames, f[0].timestamp_ns, NULL, 0);
		if (ready >= 0)
			close(ready);
		if (r < 0)
			return fail("queueing frame %" PRIu64 ": %s", g.n_frames, dmabroker_error_message(g.b)), 1;
	}
	print_summary(&g);
	return 0;
}

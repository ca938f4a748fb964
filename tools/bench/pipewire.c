/* SPDX-License-Identifier: MIT */
/*
 * The peer a user would otherwise pick: the same producer -> consumer video
 * frame handoff through PipeWire, for dmabroker-bench. A PipeWire daemon is
 * started here on a private runtime directory (Debian's pipewire, its
 * default pipewire.conf, no session manager), the producer is a driving
 * pw_stream (Video/Source, 64x64 BGRx, memfd buffers) in this process, the
 * consumer a pw_stream in a child process, and the two are linked through
 * the daemon's link-factory (what a session manager would do).
 *
 * Each frame carries the producer's CLOCK_MONOTONIC time from just before
 * pw_stream_queue_buffer(); the consumer notes when its process callback
 * sees it (in PipeWire's data thread, PW_STREAM_FLAG_RT_PROCESS) and gives
 * the buffer back at once. The producer sends a frame every 2 ms, so
 * frames do not queue; the latencies come back over a pipe.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <pipewire/pipewire.h>
#include <spa/param/video/format-utils.h>

#include "pipewire-bench.h"

#define W 64
#define H 64

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

struct party {
	struct pw_main_loop *loop;
	struct pw_context *context;
	struct pw_core *core;
	struct pw_stream *stream;
	struct spa_hook listener;
	struct spa_source *timer;
	bool producer, streaming, failed;
	unsigned frames, sent, got;
	uint64_t *lat;
	char error[160];
};

static const struct spa_pod *format_param(struct spa_pod_builder *b, uint32_t id)
{
	return spa_pod_builder_add_object(b, SPA_TYPE_OBJECT_Format, id,
		SPA_FORMAT_mediaType, SPA_POD_Id(SPA_MEDIA_TYPE_video),
		SPA_FORMAT_mediaSubtype, SPA_POD_Id(SPA_MEDIA_SUBTYPE_raw),
		SPA_FORMAT_VIDEO_format, SPA_POD_Id(SPA_VIDEO_FORMAT_BGRx),
		SPA_FORMAT_VIDEO_size, SPA_POD_Rectangle(&SPA_RECTANGLE(W, H)),
		SPA_FORMAT_VIDEO_framerate, SPA_POD_Fraction(&SPA_FRACTION(500, 1)));
}

static void on_param_changed(void *userdata, uint32_t id, const struct spa_pod *param)
{
	struct party *p = userdata;
	uint8_t buf[512];
	struct spa_pod_builder b = SPA_POD_BUILDER_INIT(buf, sizeof(buf));
	const struct spa_pod *params[1];

	if (!param || id != SPA_PARAM_Format || !p->producer)
		return;
	params[0] = spa_pod_builder_add_object(&b, SPA_TYPE_OBJECT_ParamBuffers, SPA_PARAM_Buffers,
		SPA_PARAM_BUFFERS_buffers, SPA_POD_CHOICE_RANGE_Int(4, 2, 8),
		SPA_PARAM_BUFFERS_blocks, SPA_POD_Int(1),
		SPA_PARAM_BUFFERS_size, SPA_POD_Int(W * H * 4),
		SPA_PARAM_BUFFERS_stride, SPA_POD_Int(W * 4));
	pw_stream_update_params(p->stream, params, 1);
}

static void on_state_changed(void *userdata, enum pw_stream_state old, enum pw_stream_state state, const char *error)
{
	struct party *p = userdata;

	if (state == PW_STREAM_STATE_ERROR) {
		snprintf(p->error, sizeof(p->error), "stream error: %s", error ? error : "?");
		p->failed = true;
		pw_main_loop_quit(p->loop);
	}
	if (state == PW_STREAM_STATE_STREAMING && p->producer && !p->streaming) {
		struct timespec first = { 0, 1000000 }, every = { 0, 2000000 };
		p->streaming = true;
		pw_loop_update_timer(pw_main_loop_get_loop(p->loop), p->timer, &first, &every, false);
	}
}

/* Consumer, in PipeWire's data thread: when did this frame arrive? */
static void on_process(void *userdata)
{
	struct party *p = userdata;
	struct pw_buffer *b;

	if (p->producer)
		return;
	while ((b = pw_stream_dequeue_buffer(p->stream))) {
		uint64_t t = now_ns(), sent = 0;
		struct spa_data *d = &b->buffer->datas[0];
		if (d->data && d->chunk->size >= sizeof(sent)) {
			memcpy(&sent, d->data, sizeof(sent));
			if (p->got < p->frames && sent)
				p->lat[p->got++] = t - sent;
		}
		pw_stream_queue_buffer(p->stream, b);
	}
	if (p->got >= p->frames)
		pw_main_loop_quit(p->loop);
}

/* Producer: one frame per tick, stamped just before it is queued. */
static void on_tick(void *userdata, uint64_t expirations)
{
	struct party *p = userdata;
	struct pw_buffer *b = pw_stream_dequeue_buffer(p->stream);
	struct spa_data *d;
	uint64_t t;

	if (!b)
		return; /* all with the consumer: the next tick */
	d = &b->buffer->datas[0];
	d->chunk->offset = 0;
	d->chunk->size = W * H * 4;
	d->chunk->stride = W * 4;
	t = now_ns();
	if (d->data)
		memcpy(d->data, &t, sizeof(t));
	pw_stream_queue_buffer(p->stream, b);
	p->sent++;
}

/* The consumer's latencies are ready on the pipe: the run is over. */
static void on_result(void *userdata, int fd, uint32_t mask)
{
	struct party *p = userdata;
	pw_main_loop_quit(p->loop);
}

static void on_deadline(void *userdata, uint64_t expirations)
{
	struct party *p = userdata;
	snprintf(p->error, sizeof(p->error), "no result after 30 s (%u frames sent)", p->sent);
	p->failed = true;
	pw_main_loop_quit(p->loop);
}

static const struct pw_stream_events events = {
	PW_VERSION_STREAM_EVENTS,
	.state_changed = on_state_changed,
	.param_changed = on_param_changed,
	.process = on_process,
};

static int party_init(struct party *p, bool producer, const char *name)
{
	uint8_t buf[512];
	struct spa_pod_builder b = SPA_POD_BUILDER_INIT(buf, sizeof(buf));
	const struct spa_pod *params[1];

	p->producer = producer;
	p->loop = pw_main_loop_new(NULL);
	p->context = p->loop ? pw_context_new(pw_main_loop_get_loop(p->loop), NULL, 0) : NULL;
	p->core = p->context ? pw_context_connect(p->context, NULL, 0) : NULL;
	if (!p->core) {
		snprintf(p->error, sizeof(p->error), "cannot connect to the PipeWire daemon: %s", strerror(errno));
		return -1;
	}
	p->stream = pw_stream_new(p->core, name,
		pw_properties_new(PW_KEY_MEDIA_TYPE, "Video", PW_KEY_MEDIA_CATEGORY, producer ? "Source" : "Capture",
				  PW_KEY_MEDIA_CLASS, producer ? "Video/Source" : "Stream/Input/Video",
				  PW_KEY_NODE_NAME, name, NULL));
	if (!p->stream)
		return -1;
	pw_stream_add_listener(p->stream, &p->listener, &events, p);
	if (producer)
		p->timer = pw_loop_add_timer(pw_main_loop_get_loop(p->loop), on_tick, p);
	params[0] = format_param(&b, SPA_PARAM_EnumFormat);
	return pw_stream_connect(p->stream, producer ? PW_DIRECTION_OUTPUT : PW_DIRECTION_INPUT, PW_ID_ANY,
				 producer ? PW_STREAM_FLAG_DRIVER | PW_STREAM_FLAG_MAP_BUFFERS
					  : PW_STREAM_FLAG_MAP_BUFFERS | PW_STREAM_FLAG_RT_PROCESS,
				 params, 1);
}

static void party_free(struct party *p)
{
	if (p->stream)
		pw_stream_destroy(p->stream);
	if (p->core)
		pw_core_disconnect(p->core);
	if (p->context)
		pw_context_destroy(p->context);
	if (p->loop)
		pw_main_loop_destroy(p->loop);
}

/* Runs the loop until the stream has a node id (PAUSED) or timeout_ms passes. */
static uint32_t wait_node_id(struct party *p, int timeout_ms)
{
	for (int i = 0; i < timeout_ms / 10; i++) {
		uint32_t id = pw_stream_get_node_id(p->stream);
		if (id != SPA_ID_INVALID)
			return id;
		pw_loop_iterate(pw_main_loop_get_loop(p->loop), 10);
	}
	return SPA_ID_INVALID;
}

/* The private runtime directory: the daemon's sockets and locks, no subdirectories. */
static void remove_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	while (d && (e = readdir(d)))
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			unlinkat(dirfd(d), e->d_name, 0);
	if (d)
		closedir(d);
	if (rmdir(dir) < 0)
		fprintf(stderr, "dmabroker-bench: could not remove %s: %s\n", dir, strerror(errno));
}

int pipewire_handoff(unsigned frames, int (*consumer_cpu_pin)(void), uint64_t *lat, char *error, size_t error_len)
{
	char dir[] = "/tmp/dmabroker-bench-pw.XXXXXX";
	int to_parent[2] = { -1, -1 }, status = 0, rc = -1;
	pid_t daemon = -1, consumer = -1;
	struct party prod = { 0 };
	struct pw_proxy *link = NULL;
	uint32_t cons_id = SPA_ID_INVALID, prod_id;

	if (!mkdtemp(dir) || pipe2(to_parent, O_CLOEXEC) < 0) {
		snprintf(error, error_len, "set-up: %s", strerror(errno));
		return -1;
	}
	setenv("XDG_RUNTIME_DIR", dir, 1);
	setenv("PIPEWIRE_RUNTIME_DIR", dir, 1);
	daemon = fork();
	if (daemon == 0) {
		int null = open("/dev/null", O_RDWR);
		dup2(null, 1);
		dup2(null, 2);
		setsid();
		consumer_cpu_pin(); /* a server: with the peers */
		execlp("pipewire", "pipewire", (char *)NULL);
		_exit(127);
	}
	/* the daemon's socket */
	for (int i = 0; i < 500; i++) {
		char sock[128];
		struct stat st;
		snprintf(sock, sizeof(sock), "%s/pipewire-0", dir);
		if (stat(sock, &st) == 0)
			break;
		if (waitpid(daemon, &status, WNOHANG) == daemon) {
			snprintf(error, error_len, "the PipeWire daemon (pipewire) did not start (status %d)", status);
			goto out;
		}
		usleep(10000);
	}
	consumer = fork();
	if (consumer == 0) {
		struct party c = { .frames = frames };
		uint32_t id;
		close(to_parent[0]);
		consumer_cpu_pin();
		pw_init(NULL, NULL);
		c.lat = calloc(frames, sizeof(*c.lat));
		if (!c.lat || party_init(&c, false, "dmabroker-bench-sink") < 0)
			_exit(1);
		id = wait_node_id(&c, 10000);
		if (id == SPA_ID_INVALID || write(to_parent[1], &id, sizeof(id)) != sizeof(id))
			_exit(2);
		pw_main_loop_run(c.loop);
		if (c.failed || write(to_parent[1], c.lat, frames * sizeof(*c.lat)) != (ssize_t)(frames * sizeof(*c.lat)))
			_exit(3);
		party_free(&c);
		_exit(0);
	}
	close(to_parent[1]);
	to_parent[1] = -1;
	pw_init(NULL, NULL);
	prod.frames = frames;
	if (party_init(&prod, true, "dmabroker-bench-source") < 0) {
		snprintf(error, error_len, "producer: %s", prod.error[0] ? prod.error : "cannot create the stream");
		goto out;
	}
	prod_id = wait_node_id(&prod, 10000);
	if (prod_id == SPA_ID_INVALID || read(to_parent[0], &cons_id, sizeof(cons_id)) != sizeof(cons_id)) {
		snprintf(error, error_len, "the streams did not appear in the PipeWire graph");
		goto out;
	}
	{
		/* what a session manager would do: link the two */
		struct pw_properties *props = pw_properties_new(NULL, NULL);
		pw_properties_setf(props, PW_KEY_LINK_OUTPUT_NODE, "%u", prod_id);
		pw_properties_setf(props, PW_KEY_LINK_INPUT_NODE, "%u", cons_id);
		pw_properties_set(props, PW_KEY_OBJECT_LINGER, "false");
		link = pw_core_create_object(prod.core, "link-factory", PW_TYPE_INTERFACE_Link, PW_VERSION_LINK,
					     &props->dict, 0);
		if (!link) {
			pw_properties_free(props);
			snprintf(error, error_len, "link-factory: %s", strerror(errno));
			goto out;
		}
		pw_properties_free(props);
	}
	{
		struct pw_loop *l = pw_main_loop_get_loop(prod.loop);
		struct spa_source *deadline = pw_loop_add_timer(l, on_deadline, &prod);
		struct timespec t = { 30, 0 };
		pw_loop_update_timer(l, deadline, &t, NULL, false);
		pw_loop_add_io(l, to_parent[0], SPA_IO_IN | SPA_IO_HUP, false, on_result, &prod);
	}
	pw_main_loop_run(prod.loop);
	if (prod.failed) {
		snprintf(error, error_len, "%s", prod.error);
		goto out;
	}
	if (!prod.streaming) {
		snprintf(error, error_len, "the linked streams never started streaming%s%s", prod.error[0] ? ": " : "",
			 prod.error);
		goto out;
	}
	{
		size_t want = frames * sizeof(*lat), got = 0;
		ssize_t n;
		while (got < want && (n = read(to_parent[0], (char *)lat + got, want - got)) > 0)
			got += (size_t)n;
		if (got != want) {
			snprintf(error, error_len, "the consumer saw fewer than %u frames", frames);
			goto out;
		}
	}
	rc = 0;
out:
	if (consumer > 0) {
		kill(consumer, SIGTERM);
		waitpid(consumer, NULL, 0);
	}
	if (link)
		pw_proxy_destroy(link);
	party_free(&prod);
	if (daemon > 0) {
		kill(daemon, SIGTERM);
		waitpid(daemon, NULL, 0);
	}
	if (to_parent[0] >= 0)
		close(to_parent[0]);
	remove_dir(dir);
	return rc;
}

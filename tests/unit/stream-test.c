/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of stream negotiation (daemon/core/stream.c), without a bus
 * (core-fixture.h): a producer and consumers declare formats, modifiers
 * and usage at stream_create()/stream_join(); once the expected consumers
 * are there the core picks the format, allocates the buffers (inline: no
 * workers; on the shm backend, memfds) and answers every StreamBuffers call
 * that waited, through the recording transport, or fails the stream with
 * NegotiationFailed and a reason naming the party. A stream that failed
 * keeps no buffer, and refuses later joins with its reason.
 *
 * Not here: placement by devices (a party's DRM device that imports no
 * foreign dma-buf, two such devices) and contiguous heaps need DRM devices
 * and dma-heaps: covered in the VM by tests/integration (stream-test.c's
 * negotiation steps). The frames (queue, release, the books) are the
 * stream books' (stream-books-test.c) and stream-test in the VM.
 */
#include <drm_fourcc.h>

#include "core-fixture.h"

TAP_DEFINE;

static struct stream_params producer_params(const char *name, unsigned consumers)
{
	struct stream_params p = { .width = 64, .height = 32, .buffers = 3, .consumers = consumers,
				   .formats = { DRM_FORMAT_XRGB8888 }, .n_formats = 1, .mode = STREAM_FIFO };

	snprintf(p.name, sizeof(p.name), "%s", name);
	return p;
}

static struct stream_params consumer_params(const char *name)
{
	struct stream_params p = { 0 };

	snprintf(p.name, sizeof(p.name), "%s", name);
	return p;
}

/* StreamBuffers of c on s as call cookie: what stream_buffers() returned, error in *e. */
static int buffers_call(struct stream *s, struct client *c, uint64_t cookie, struct error *e)
{
	struct completion to = call_of(c, cookie);

	*e = ERROR_NULL;
	return stream_buffers(s, c, &to, e);
}

/* The answer to call cookie, or NULL. */
static const struct answer *answer_to(uint64_t cookie)
{
	for (unsigned i = 0; i < rec.n_answers; i++)
		if (rec.answers[i].cookie == cookie)
			return &rec.answers[i];
	return NULL;
}

/* A failed answer with NegotiationFailed whose message has `why`. */
static bool negotiation_failed(const struct answer *a, const char *why)
{
	if (a && a->kind == ANSWER_FAILED && a->code == DMABROKER_E_NEGOTIATION_FAILED && strstr(a->message, why))
		return true;
	tap_diag("expected NegotiationFailed with '%s', got %s: %s", why,
		 !a ? "no answer" : a->kind == ANSWER_FAILED ? "a failure" : "buffers", a ? a->message : "");
	return false;
}

static bool step_negotiated(void)
{
	struct stream_params pp = producer_params("cam", 1), cp = consumer_params("cam");
	const struct answer *a;
	struct client *prod, *cons;
	struct stream *s, *joined;
	struct error e = ERROR_NULL;
	uint32_t consumer;

	fixture_setup(NULL);
	fixture_clients(1000, 2, &prod, &cons);
	/* the producer prefers XRGB to ARGB and offers no NV12; the consumer lists NV12, ARGB, XRGB */
	pp.formats[0] = DRM_FORMAT_RGB565;
	pp.formats[1] = DRM_FORMAT_XRGB8888;
	pp.formats[2] = DRM_FORMAT_ARGB8888;
	pp.n_formats = 3;
	cp.formats[0] = DRM_FORMAT_NV12;
	cp.formats[1] = DRM_FORMAT_ARGB8888;
	cp.formats[2] = DRM_FORMAT_XRGB8888;
	cp.n_formats = 3;
	cp.modifiers[0] = 0x0100000000000001ULL; /* a tiled one, and linear */
	cp.modifiers[1] = DRM_FORMAT_MOD_LINEAR;
	cp.n_modifiers = 2;
	CHECK(stream_create(prod, &pp, &s, &e) == 0);
	/* the producer's StreamBuffers waits for the consumer */
	CHECK(buffers_call(s, prod, 1, &e) == 1 && rec.n_answers == 0 && rec.keeps == 1);
	CHECK(buffers_call(s, prod, 2, &e) < 0 && e.code == DMABROKER_E_INVALID_ARGUMENT);
	e = ERROR_NULL;
	CHECK(stream_join(cons, &cp, &joined, &consumer, &e) == 0 && joined == s && consumer == 1);
	/* negotiated and allocated inline: the producer is answered */
	a = answer_to(1);
	CHECK(a && a->kind == ANSWER_STREAM_BUFFERS && a->client == prod->id && rec.drops == 1);
	CHECK(a->info.fourcc == DRM_FORMAT_XRGB8888 && a->info.modifier == DRM_FORMAT_MOD_LINEAR);
	CHECK(a->info.width == 64 && a->info.height == 32 && a->info.n_buffers == 3);
	CHECK(strcmp(a->info.backend, "shm") == 0 && strcmp(a->info.mode, "fifo") == 0);
	CHECK(a->info.n_channels == 1 && a->info.channels[0].consumer == 1 && a->info.max_acquired == 0);
	for (unsigned i = 0; i < 3; i++)
		CHECK(a->info.buffers[i]->width == 64 && a->info.buffers[i]->fourcc == DRM_FORMAT_XRGB8888 &&
		      buffer_held_by((struct buffer *)a->info.buffers[i], prod));
	/* the consumer is answered at once, with the same buffers */
	CHECK(buffers_call(s, cons, 3, &e) == 1);
	a = answer_to(3);
	CHECK(a && a->kind == ANSWER_STREAM_BUFFERS && a->info.n_buffers == 3 && a->info.max_acquired == 3);
	CHECK(a->info.buffers[0] == answer_to(1)->info.buffers[0] && a->info.n_channels == 1);
	CHECK(cons->n_holds == 3 && prod->n_holds == 3);
	return fixture_finish();
}

static bool step_any_format_mailbox(void)
{
	struct stream_params pp = producer_params("screen", 0);
	const struct answer *a;
	struct client *prod, *cons;
	struct stream *s, *joined;
	struct error e = ERROR_NULL;
	uint32_t consumer;

	fixture_setup(NULL);
	fixture_clients(1000, 2, &prod, &cons);
	/* a fourcc dmabroker does not know is skipped; no consumer awaited: negotiated at once */
	pp.formats[0] = 0x20202020;
	pp.formats[1] = DRM_FORMAT_RGB565;
	pp.n_formats = 2;
	pp.mode = STREAM_MAILBOX;
	pp.buffers = 0; /* the default */
	CHECK(stream_create(prod, &pp, &s, &e) == 0);
	CHECK(buffers_call(s, prod, 1, &e) == 1);
	a = answer_to(1);
	CHECK(a && a->kind == ANSWER_STREAM_BUFFERS && a->info.fourcc == DRM_FORMAT_RGB565 && a->info.n_buffers == 4);
	CHECK(strcmp(a->info.mode, "mailbox") == 0 && a->info.n_channels == 0);
	/* a consumer that names no format takes the stream as it is; mailbox: one frame at a time */
	CHECK(stream_join(cons, &(struct stream_params){ .name = "screen" }, &joined, &consumer, &e) == 0);
	CHECK(buffers_call(s, cons, 2, &e) == 1);
	a = answer_to(2);
	CHECK(a && a->kind == ANSWER_STREAM_BUFFERS && a->info.max_acquired == 1 && a->info.fourcc == DRM_FORMAT_RGB565);
	return fixture_finish();
}

/* A stream of one consumer with consumer params cp: the producer's waiting StreamBuffers' answer must fail with why. */
static bool fails_with(struct stream_params cp, const char *why)
{
	struct stream_params pp = producer_params("cam", 1);
	struct client *prod, *cons, *late;
	struct stream *s, *joined;
	struct error e = ERROR_NULL;
	uint32_t consumer;
	uint64_t fds;

	fixture_setup(NULL);
	fixture_clients(1000, 3, &prod, &cons, &late);
	fds = b.fds;
	CHECK(stream_create(prod, &pp, &s, &e) == 0);
	CHECK(buffers_call(s, prod, 1, &e) == 1);
	snprintf(cp.name, sizeof(cp.name), "cam");
	CHECK(stream_join(cons, &cp, &joined, &consumer, &e) == 0);
	CHECK(negotiation_failed(answer_to(1), why));
	CHECK(rec.keeps == 1 && rec.drops == 1);
	/* failed: no buffer kept, and every later call gets the reason */
	CHECK(prod->n_holds == 0 && b.buffers.len == 0);
	CHECK(buffers_call(s, cons, 2, &e) < 0 && e.code == DMABROKER_E_NEGOTIATION_FAILED && strstr(e.message, why));
	CHECK(stream_join(late, &(struct stream_params){ .name = "cam" }, &joined, &consumer, &e) < 0);
	CHECK(e.code == DMABROKER_E_NEGOTIATION_FAILED && strstr(e.message, why));
	CHECK(stream_leave(s, cons, &e) == 0 && stream_leave(s, prod, &e) == 0 && b.fds == fds);
	return fixture_finish();
}

static bool step_no_common_format(void)
{
	struct stream_params cp = { .formats = { DRM_FORMAT_NV12, DRM_FORMAT_YUYV }, .n_formats = 2 };

	/* the consumer named by its comm and client id */
	return fails_with(cp, "(client 2) accepts none of the producer's formats (XR24); it takes NV12, YUYV");
}

static bool step_modifiers(void)
{
	struct stream_params cp = { .modifiers = { 0x0100000000000001ULL }, .n_modifiers = 1 };

	return fails_with(cp, "takes only modifiers 0x100000000000001");
}

static bool step_device_usage(void)
{
	struct stream_params gpu = { .usage = DMABROKER_USAGE_GPU };
	struct stream_params contig = { .usage = DMABROKER_USAGE_CONTIGUOUS };

	return fails_with(gpu, "device usage needs a dma-buf") &&
	       fails_with(contig, "needs physically contiguous memory");
}

static void tune_small(struct config *cfg)
{
	cfg->max_buffer_size = 4096;
}

static bool step_allocation_fails(void)
{
	struct stream_params pp = producer_params("big", 0);
	struct client *prod;
	struct stream *s;
	struct error e = ERROR_NULL;

	fixture_setup(tune_small);
	prod = fixture_client(1000);
	CHECK(stream_create(prod, &pp, &s, &e) == 0);
	CHECK(buffers_call(s, prod, 1, &e) < 0 && e.code == DMABROKER_E_NEGOTIATION_FAILED);
	CHECK(strstr(e.message, "3 buffers") && strstr(e.message, "max-buffer-size"));
	CHECK(prod->n_holds == 0 && prod->n_reserved == 0 && b.buffers.len == 0);
	return fixture_finish();
}

static int count_consumers(const struct stream_info *info, void *userdata)
{
	*(uint32_t *)userdata = info->n_consumers;
	return 0;
}

static bool step_late_joiner_checked(void)
{
	struct stream_params pp = producer_params("cam", 0);
	struct stream_params bad = { .name = "cam", .formats = { DRM_FORMAT_NV12 }, .n_formats = 1 };
	struct client *prod, *cons;
	struct stream *s, *joined;
	struct error e = ERROR_NULL;
	uint32_t consumer, n = 99;

	fixture_setup(NULL);
	fixture_clients(1000, 2, &prod, &cons);
	CHECK(stream_create(prod, &pp, &s, &e) == 0);
	/* running: a joiner that cannot take it is refused, the stream goes on */
	CHECK(stream_join(cons, &bad, &joined, &consumer, &e) < 0 && e.code == DMABROKER_E_NEGOTIATION_FAILED);
	CHECK(strstr(e.message, "does not accept XR24; it takes NV12") && cons->n_streams == 0);
	CHECK(stream_list(&b, prod, count_consumers, &n) >= 0 && n == 0);
	CHECK(buffers_call(s, prod, 1, &e) == 1 && answer_to(1)->kind == ANSWER_STREAM_BUFFERS);
	return fixture_finish();
}

static bool step_create_refused(void)
{
	struct stream_params pp = producer_params("cam", 0);
	struct client *prod;
	struct stream *s;
	struct error e = ERROR_NULL;

	fixture_setup(NULL);
	prod = fixture_client(1000);
	pp.formats[0] = 0x20202020;
	CHECK(stream_create(prod, &pp, &s, &e) < 0 && e.code == DMABROKER_E_UNSUPPORTED_FORMAT);
	pp = producer_params("cam", 0);
	pp.n_formats = 0;
	e = ERROR_NULL;
	CHECK(stream_create(prod, &pp, &s, &e) < 0 && e.code == DMABROKER_E_INVALID_ARGUMENT);
	pp = producer_params("no spaces", 0);
	e = ERROR_NULL;
	CHECK(stream_create(prod, &pp, &s, &e) < 0 && e.code == DMABROKER_E_INVALID_ARGUMENT);
	pp = producer_params("cam", 0);
	pp.width = 0;
	e = ERROR_NULL;
	CHECK(stream_create(prod, &pp, &s, &e) < 0 && e.code == DMABROKER_E_INVALID_DIMENSIONS);
	CHECK(!b.streams && prod->n_streams == 0 && b.fds == 0);
	return fixture_finish();
}

int main(void)
{
	tap_plan(8);
	tap_step("the first of the producer's formats every consumer takes; waiting StreamBuffers answered",
		 step_negotiated);
	tap_step("unknown fourccs skipped, no consumer awaited, a consumer with no formats; mailbox",
		 step_any_format_mailbox);
	tap_step("no common format: NegotiationFailed naming the consumer and both lists", step_no_common_format);
	tap_step("a consumer that takes no linear modifier: NegotiationFailed", step_modifiers);
	tap_step("usage the backends cannot serve (device, contiguous on shm): NegotiationFailed", step_device_usage);
	tap_step("an allocation that fails fails the stream, nothing kept", step_allocation_fails);
	tap_step("a consumer joining a running stream is checked alone", step_late_joiner_checked);
	tap_step("CreateStream refuses what it can tell at once", step_create_refused);
	return tap_done();
}

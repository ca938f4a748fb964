/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the quotas (daemon/core/quota.c) as the operations meet
 * them, without a bus (core-fixture.h): each per-client and per-uid limit
 * lets a client reach it exactly and refuses the next one with
 * QuotaExceeded naming the limit (buffers and bytes through Import's
 * registration, Allocate and a hold; grants and pending requests through
 * BeginAccess; tokens; streams); clients per uid and the broker's clients
 * are refused with LimitReached; the daemon-wide fd budget (max-fds) is
 * charged before an fd is taken, refused with LimitReached, and given back
 * on every failure and release. A refused call leaves nothing behind.
 *
 * Not here: max-fences-per-client/uid through EndAccess needs pending
 * sync_files (sw_sync), in the VM: access-test.c step_fence_quota
 * (access-fences); only the check itself is exercised below.
 * max-direct-per-client is the D-Bus front end's (bus/bus-direct.c), not
 * the core's: bus-test (host) covers it.
 */
#include <drm_fourcc.h>

#include "core-fixture.h"

TAP_DEFINE;

enum { R = DMABROKER_ACCESS_READ, W = DMABROKER_ACCESS_WRITE };

/* e is a QuotaExceeded error naming key ("max-buffers-per-client"). */
static bool quota_error(const struct error *e, const char *key)
{
	if (e->code == DMABROKER_E_QUOTA_EXCEEDED && strstr(e->message, key))
		return true;
	tap_diag("expected QuotaExceeded naming %s, got code %d: %s", key, e->code, e->message);
	return false;
}

static void tune_buffers(struct config *cfg)
{
	cfg->max_buffers_per_client = 3;
	cfg->max_buffers_per_uid = 4;
	cfg->max_bytes_per_client = 5 * 4096;
}

static bool step_buffers_and_bytes(void)
{
	struct client *a, *a2, *other;
	struct buffer *buf = NULL;
	struct error e = ERROR_NULL;
	uint64_t fds;

	fixture_setup(tune_buffers);
	a = fixture_client(1000);
	a2 = fixture_client(1000);
	other = fixture_client(2000);
	for (unsigned i = 0; i < 3; i++)
		CHECK(fixture_buffer_e(a, 4096, &e));
	fds = b.fds;
	CHECK(!fixture_buffer_e(a, 4096, &e) && quota_error(&e, "max-buffers-per-client = 3"));
	/* refused: nothing kept, the fd given back */
	CHECK(a->n_holds == 3 && b.buffers.len == 3 && b.fds == fds);
	/* the uid's: a2 gets one more, then its uid is full */
	e = ERROR_NULL;
	CHECK((buf = fixture_buffer_e(a2, 4096, &e)));
	CHECK(!fixture_buffer_e(a2, 4096, &e) && quota_error(&e, "max-buffers-per-uid = 4"));
	/* a hold counts like a buffer of one's own */
	e = ERROR_NULL;
	CHECK(buffer_hold(buf, other, &e) == 0);
	buffer_release(buffer_held_by(buf, a2));
	e = ERROR_NULL;
	CHECK(buffer_hold(buf, a, &e) < 0 && quota_error(&e, "max-buffers-per-client"));
	/* bytes: 2 of 4096 held; 3 * 4096 more reach 5 * 4096, one byte more would pass it */
	buffer_release(a->holds);
	e = ERROR_NULL;
	CHECK(!fixture_buffer_e(a, 3 * 4096 + 1, &e) && quota_error(&e, "max-bytes-per-client = 20480"));
	e = ERROR_NULL;
	CHECK(fixture_buffer_e(a, 3 * 4096, &e) && a->bytes == 5 * 4096);
	return fixture_finish();
}

static bool allocated;

static void on_allocated(struct client *c, struct buffer *buf, int r, const struct error *error,
			 const struct completion *to)
{
	allocated = r >= 0 && buf;
}

static void tune_allocate(struct config *cfg)
{
	cfg->max_buffers_per_client = 2;
	cfg->max_fds = 3;
}

static bool step_allocate_charged_first(void)
{
	struct alloc_args args = { .width = 64, .height = 64, .fourcc = DRM_FORMAT_XRGB8888,
				   .usage = DMABROKER_USAGE_CPU_READ | DMABROKER_USAGE_CPU_WRITE };
	struct completion to = { 0 };
	struct client *a, *bob;
	struct error e = ERROR_NULL;

	fixture_setup(tune_allocate);
	a = fixture_client(1000);
	bob = fixture_client(1001);
	/* inline (no workers): allocated and registered before broker_allocate returns */
	for (unsigned i = 0; i < 2; i++) {
		allocated = false;
		CHECK(broker_allocate(a, &args, on_allocated, &to, &e) == 0 && allocated);
	}
	allocated = false;
	CHECK(broker_allocate(a, &args, on_allocated, &to, &e) < 0 && !allocated);
	CHECK(quota_error(&e, "max-buffers-per-client = 2"));
	CHECK(a->n_reserved == 0 && a->bytes_reserved == 0 && b.fds == 2);
	/* the third fd of the daemon's is bob's; the fourth passes max-fds */
	e = ERROR_NULL;
	CHECK(broker_allocate(bob, &args, on_allocated, &to, &e) == 0 && b.fds == 3);
	e = ERROR_NULL;
	CHECK(broker_allocate(bob, &args, on_allocated, &to, &e) < 0 && e.code == DMABROKER_E_LIMIT_REACHED);
	CHECK(strstr(e.message, "max-fds = 3") && b.fds == 3 && bob->n_holds == 1 && bob->n_reserved == 0);
	/* given back when the buffer goes */
	buffer_release(bob->holds);
	CHECK(b.fds == 2);
	return fixture_finish();
}

static void tune_fds(struct config *cfg)
{
	cfg->max_fds = 2;
}

static bool step_fd_budget(void)
{
	struct client *a;
	struct error e = ERROR_NULL;
	int fd;
	struct buffer *buf;

	fixture_setup(tune_fds);
	a = fixture_client(1000);
	CHECK(fd_budget_charge(&b, 2, &e) == 0 && b.fds == 2);
	CHECK(fd_budget_charge(&b, 1, &e) < 0 && e.code == DMABROKER_E_LIMIT_REACHED && b.fds == 2);
	fd_budget_uncharge(&b, 2);
	/* a buffer that cannot be registered gives its charge back */
	fd = memfd_of_size(0);
	CHECK(fd >= 0);
	e = ERROR_NULL;
	CHECK(fd_budget_charge(&b, 1, &e) == 0);
	CHECK(buffer_register(&b, a, fd, &buf, &e) < 0 && e.code == DMABROKER_E_NOT_A_DMABUF && b.fds == 0);
	/* a stream charges its producer's fds and its buffers' fences at once: refused whole */
	{
		struct stream_params p = { .name = "cam", .width = 64, .height = 64, .buffers = 2, .consumers = 1,
					   .formats = { DRM_FORMAT_XRGB8888 }, .n_formats = 1 };
		struct stream *s;
		e = ERROR_NULL;
		CHECK(stream_create(a, &p, &s, &e) < 0 && e.code == DMABROKER_E_LIMIT_REACHED);
		CHECK(b.fds == 0 && a->n_streams == 0 && !b.streams);
	}
	return fixture_finish();
}

static void tune_grants(struct config *cfg)
{
	cfg->max_grants_per_client = 2;
	cfg->max_pending_per_client = 1;
	cfg->max_grants_per_uid = 3;
}

static int begin(struct client *c, uint64_t cookie, unsigned n, struct buffer **bufs, uint32_t mode,
		 struct error *e)
{
	struct completion done = call_of(c, cookie);
	uint32_t modes[DMABROKER_ACCESS_MAX_MULTI];

	for (unsigned i = 0; i < n; i++)
		modes[i] = mode;
	*e = ERROR_NULL;
	return access_begin(c, &done, n, bufs, modes, 0, e);
}

static bool step_grants_and_pending(void)
{
	struct client *a, *a2, *bob;
	struct buffer *buf[4];
	struct error e = ERROR_NULL;

	fixture_setup(tune_grants);
	a = fixture_client(1000);
	a2 = fixture_client(1000);
	bob = fixture_client(2000);
	for (unsigned i = 0; i < 4; i++) {
		buf[i] = fixture_buffer(bob);
		CHECK(buffer_hold(buf[i], a, &e) == 0 && buffer_hold(buf[i], a2, &e) == 0);
	}
	/* two grants, then the third is refused; two at once with one left too */
	CHECK(begin(a, 1, 1, &buf[0], R, &e) == 1);
	CHECK(begin(a, 2, 2, &buf[1], R, &e) < 0 && quota_error(&e, "max-grants-per-client = 2"));
	CHECK(begin(a, 3, 1, &buf[1], R, &e) == 1 && a->n_grants == 2);
	CHECK(begin(a, 4, 1, &buf[2], R, &e) < 0 && quota_error(&e, "max-grants-per-client = 2"));
	/* the uid's: a2 may have one more */
	CHECK(begin(a2, 5, 1, &buf[2], R, &e) == 1);
	CHECK(begin(a2, 6, 1, &buf[3], R, &e) < 0 && quota_error(&e, "max-grants-per-uid = 3"));
	/* one request may wait, the second is refused */
	CHECK(begin(bob, 7, 1, &buf[0], W, &e) == 1);
	CHECK(bob->n_pending == 1 && bob->n_pending_grants == 1 && bob->n_grants == 0);
	CHECK(begin(bob, 8, 1, &buf[1], W, &e) < 0 && quota_error(&e, "max-pending-per-client = 1"));
	/* the waiting request's grant counts: one granted, and no more */
	CHECK(begin(bob, 9, 1, &buf[3], W, &e) == 1 && bob->n_grants == 1);
	CHECK(begin(bob, 10, 1, &buf[2], R, &e) < 0 && quota_error(&e, "max-grants-per-client = 2"));
	CHECK(bob->n_pending == 1 && rec.keeps == 1);
	return fixture_finish();
}

static void tune_tokens(struct config *cfg)
{
	cfg->max_tokens_per_client = 2;
	cfg->max_tokens_per_uid = 3;
}

static bool step_tokens(void)
{
	struct client *a, *a2;
	struct buffer *buf;
	struct error e = ERROR_NULL;
	const char *v;

	fixture_setup(tune_tokens);
	fixture_clients(1000, 2, &a, &a2);
	buf = fixture_buffer(a);
	CHECK(buffer_hold(buf, a2, &e) == 0);
	CHECK(token_create(buf, a, 0, 60, &v, &e) == 0 && token_create(buf, a, 0, 60, &v, &e) == 0);
	CHECK(token_create(buf, a, 0, 60, &v, &e) < 0 && quota_error(&e, "max-tokens-per-client = 2"));
	e = ERROR_NULL;
	CHECK(token_create(buf, a2, 0, 60, &v, &e) == 0);
	CHECK(token_create(buf, a2, 0, 60, &v, &e) < 0 && quota_error(&e, "max-tokens-per-uid = 3"));
	CHECK(a->n_tokens == 2 && a2->n_tokens == 1 && b.tokens.len == 3);
	return fixture_finish();
}

static void tune_streams(struct config *cfg)
{
	cfg->max_streams_per_client = 1;
	cfg->max_streams_per_uid = 2;
}

static bool step_streams(void)
{
	struct stream_params p = { .width = 64, .height = 64, .buffers = 2, .consumers = 1,
				   .formats = { DRM_FORMAT_XRGB8888 }, .n_formats = 1 };
	struct client *a, *a2, *a3;
	struct stream *s;
	struct error e = ERROR_NULL;
	uint32_t id;
	uint64_t fds;

	fixture_setup(tune_streams);
	fixture_clients(1000, 3, &a, &a2, &a3);
	snprintf(p.name, sizeof(p.name), "one");
	CHECK(stream_create(a, &p, &s, &e) == 0);
	snprintf(p.name, sizeof(p.name), "two");
	fds = b.fds;
	CHECK(stream_create(a, &p, &s, &e) < 0 && quota_error(&e, "max-streams-per-client = 1"));
	CHECK(b.fds == fds && a->n_streams == 1);
	/* joining counts too */
	snprintf(p.name, sizeof(p.name), "one");
	e = ERROR_NULL;
	CHECK(stream_join(a2, &p, &s, &id, &e) == 0);
	e = ERROR_NULL;
	snprintf(p.name, sizeof(p.name), "three");
	fds = b.fds;
	CHECK(stream_create(a3, &p, &s, &e) < 0 && quota_error(&e, "max-streams-per-uid = 2"));
	CHECK(b.fds == fds && a3->n_streams == 0);
	return fixture_finish();
}

static void tune_clients(struct config *cfg)
{
	cfg->max_clients_per_uid = 2;
	cfg->max_clients = 3;
}

static bool step_clients(void)
{
	struct error e = ERROR_NULL;

	fixture_setup(tune_clients);
	CHECK(fixture_client_e(1000, &e) && fixture_client_e(1000, &e));
	CHECK(!fixture_client_e(1000, &e) && e.code == DMABROKER_E_LIMIT_REACHED);
	CHECK(strstr(e.message, "max-clients-per-uid") && b.n_clients == 2);
	e = ERROR_NULL;
	CHECK(fixture_client_e(2000, &e));
	CHECK(!fixture_client_e(3000, &e) && e.code == DMABROKER_E_LIMIT_REACHED && strstr(e.message, "max-clients"));
	CHECK(b.n_clients == 3);
	return fixture_finish();
}

static void tune_fences(struct config *cfg)
{
	cfg->max_fences_per_client = 2;
	cfg->max_fences_per_uid = 3;
}

/* Fences are kept only for pending sync_files (the VM); here the check alone, with the counts set by hand. */
static bool step_fences_check(void)
{
	struct client *a, *a2;
	struct error e = ERROR_NULL;

	fixture_setup(tune_fences);
	fixture_clients(1000, 2, &a, &a2);
	a->n_fences = 1;
	CHECK(quota_check(a, Q_FENCES, 1, &e) == 0);
	a->n_fences = 2;
	CHECK(quota_check(a, Q_FENCES, 1, &e) < 0 && quota_error(&e, "max-fences-per-client = 2"));
	e = ERROR_NULL;
	CHECK(quota_check(a2, Q_FENCES, 1, &e) == 0);
	a2->n_fences = 1;
	CHECK(quota_check(a2, Q_FENCES, 1, &e) < 0 && quota_error(&e, "max-fences-per-uid = 3"));
	/* the daemon's own are never refused */
	b.self.n_fences = 100;
	e = ERROR_NULL;
	CHECK(quota_check(&b.self, Q_FENCES, 1, &e) == 0);
	a->n_fences = a2->n_fences = b.self.n_fences = 0;
	return fixture_finish();
}

int main(void)
{
	tap_plan(8);
	tap_step("buffers and bytes, per client and per uid: the limit reached, the next refused, nothing kept",
		 step_buffers_and_bytes);
	tap_step("Allocate charges quota and the fd budget before taking; refused, nothing stays reserved",
		 step_allocate_charged_first);
	tap_step("the fd budget: LimitReached at max-fds, given back on a failed register or stream",
		 step_fd_budget);
	tap_step("grants and pending requests, per client and per uid (waiting grants count)",
		 step_grants_and_pending);
	tap_step("tokens, per client and per uid", step_tokens);
	tap_step("streams, produced or joined, per client and per uid", step_streams);
	tap_step("clients per uid and in all: LimitReached", step_clients);
	tap_step("fences: the check at the limit (the kept fences themselves need the VM)", step_fences_check);
	return tap_done();
}

/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the grant queue (daemon/core/access.c), without a bus: a
 * broker with clients made by hand and memfd buffers (core-fixture.h),
 * answered through a recording transport. READ grants share and WRITE
 * excludes; waiters are served in order and a writer is not overtaken by
 * later readers; BeginAccessMulti is all or nothing; a request that would
 * close a cycle of waiting clients gets WouldDeadlock; NONBLOCK gets Busy;
 * a released buffer fails its waiting requests with UnknownBuffer;
 * access_drop_requests() drops a transport's requests unanswered; a grant
 * the transport could not send is taken back; the daemon's own (internal)
 * accesses wait in the same queue.
 *
 * Fences on the host: there is no sw_sync here, so no pending sync_file.
 * What is checked: EndAccess with no fence; the acquire fence is -1 when
 * nothing is kept and the dma-buf is not one (memfd); a release fence that
 * is not a sync_file is refused with InvalidArgument and the grant stays.
 * Kept fences (one per fence, dropped once signalled, merged into the next
 * acquire fence, imported into the dma-buf), max-fences-per-client, the
 * fence deadline and hold-timeout need sw_sync and a dma-buf: they are
 * covered in the VM by tests/integration/access-test.c (access-fences:
 * "kept fences ...", step_fences_bounded, step_fence_quota,
 * step_fence_timeout, step_fence_deadline_fair) and caps-fences.
 */
#include <fcntl.h>

#include "core-fixture.h"

TAP_DEFINE;

enum { R = DMABROKER_ACCESS_READ, W = DMABROKER_ACCESS_WRITE };

/* BeginAccess of one buffer by c, call number cookie: what access_begin() returned, error in *e. */
static int begin1(struct client *c, uint64_t cookie, struct buffer *buf, uint32_t mode, uint32_t flags,
		  struct error *e)
{
	struct completion done = call_of(c, cookie);

	*e = ERROR_NULL;
	return access_begin(c, &done, 1, &buf, &mode, flags, e);
}

/* As begin1(), for a step that expects it to be accepted (granted or queued). */
static bool begin_ok(struct client *c, uint64_t cookie, struct buffer *buf, uint32_t mode)
{
	struct error e;
	int r = begin1(c, cookie, buf, mode, 0, &e);

	if (r != 1)
		tap_diag("BeginAccess %llu: %d %s", (unsigned long long)cookie, r, e.message);
	return r == 1;
}

/* The grant id answered to call cookie (0: none). */
static uint64_t granted_to(uint64_t cookie)
{
	for (unsigned i = 0; i < rec.n_answers; i++)
		if (rec.answers[i].kind == ANSWER_GRANTED && rec.answers[i].cookie == cookie)
			return rec.answers[i].grants[0];
	return 0;
}

static bool end_ok(struct client *c, uint64_t cookie)
{
	struct error e = ERROR_NULL;
	uint64_t g = granted_to(cookie);

	if (!g || access_end(c, g, -1, &e) < 0) {
		tap_diag("EndAccess of call %llu: %s", (unsigned long long)cookie, g ? e.message : "never granted");
		return false;
	}
	return true;
}

/*
 * A broker with n clients of one uid (pointers to fill in after n) and a
 * buffer of the first's that all of them hold.
 */
static struct buffer *shared_buffer(unsigned n, ...)
{
	struct client *c[8];
	struct buffer *buf;
	struct error e = ERROR_NULL;
	va_list ap;

	fixture_setup(NULL);
	va_start(ap, n);
	for (unsigned i = 0; i < n; i++)
		*va_arg(ap, struct client **) = c[i] = fixture_client(1000);
	va_end(ap);
	buf = fixture_buffer(c[0]);
	for (unsigned i = 1; i < n; i++)
		if (buffer_hold(buf, c[i], &e) < 0)
			abort();
	return buf;
}

static bool step_read_shares_write_excludes(void)
{
	struct client *a, *bob, *carol;
	struct buffer *buf;

	buf = shared_buffer(3, &a, &bob, &carol);
	CHECK(begin_ok(a, 1, buf, R) && begin_ok(bob, 2, buf, R));
	CHECK(rec.n_answers == 2 && granted_to(1) && granted_to(2));
	CHECK(buf->resv.readers == 2 && !buf->resv.writer);
	/* the fence of a grant with nothing kept, on a memfd: none */
	CHECK(answer(0)->fence == -1 && answer(1)->fence == -1);
	/* a writer waits for both readers */
	CHECK(begin_ok(carol, 3, buf, W));
	CHECK(rec.n_answers == 2 && carol->n_pending == 1 && buf->resv.waiters == 1);
	CHECK(end_ok(a, 1));
	CHECK(rec.n_answers == 2);
	CHECK(end_ok(bob, 2));
	CHECK(rec.n_answers == 3 && granted_to(3) && buf->resv.writer && buf->resv.readers == 0);
	/* and a reader waits for the writer */
	CHECK(begin_ok(a, 4, buf, R));
	CHECK(rec.n_answers == 3);
	CHECK(end_ok(carol, 3));
	CHECK(rec.n_answers == 4 && granted_to(4));
	return fixture_finish();
}

static bool step_fifo_order(void)
{
	struct client *c[4];
	struct buffer *buf;

	buf = shared_buffer(4, &c[0], &c[1], &c[2], &c[3]);
	CHECK(begin_ok(c[0], 1, buf, W));
	/* three writers wait: served in the order they came */
	CHECK(begin_ok(c[1], 2, buf, W) && begin_ok(c[2], 3, buf, W) && begin_ok(c[3], 4, buf, W));
	CHECK(rec.n_answers == 1);
	for (unsigned i = 0; i < 3; i++) {
		CHECK(end_ok(c[i], i + 1));
		CHECKF(rec.n_answers == i + 2 && answer(i + 1)->cookie == i + 2,
		       "after call %u ended, expected call %u granted; answer %u is call %llu", i + 1, i + 2, i + 1,
		       answer(i + 1) ? (unsigned long long)answer(i + 1)->cookie : 0ULL);
	}
	return fixture_finish();
}

static bool step_writer_not_overtaken(void)
{
	struct client *reader, *writer, *late;
	struct buffer *buf;
	struct error e;

	buf = shared_buffer(3, &reader, &writer, &late);
	CHECK(begin_ok(reader, 1, buf, R));
	CHECK(begin_ok(writer, 2, buf, W));
	/* a later reader would share with the active reader, but the writer came first */
	CHECK(begin_ok(late, 3, buf, R));
	CHECK(rec.n_answers == 1 && buf->resv.readers == 1);
	/* NONBLOCK says why */
	CHECK(begin1(late, 4, buf, R, DMABROKER_ACCESS_NONBLOCK, &e) < 0 && e.code == DMABROKER_E_BUSY);
	CHECK(strstr(e.message, "readers hold it"));
	CHECK(end_ok(reader, 1));
	CHECK(rec.n_answers == 2 && answer(1)->cookie == 2);
	CHECK(end_ok(writer, 2));
	CHECK(rec.n_answers == 3 && answer(2)->cookie == 3);
	return fixture_finish();
}

static bool step_nonblock_busy(void)
{
	struct client *a, *bob;
	struct buffer *buf;
	struct error e;

	buf = shared_buffer(2, &a, &bob);
	CHECK(begin_ok(a, 1, buf, W));
	CHECK(begin1(bob, 2, buf, R, DMABROKER_ACCESS_NONBLOCK, &e) < 0 && e.code == DMABROKER_E_BUSY);
	CHECK(strstr(e.message, "a writer holds it"));
	/* nothing queued, nothing kept, nothing answered */
	CHECK(bob->n_pending == 0 && !b.pending && rec.keeps == 0 && rec.n_answers == 1);
	/* free again: NONBLOCK is granted at once */
	CHECK(end_ok(a, 1));
	CHECK(begin1(bob, 3, buf, W, DMABROKER_ACCESS_NONBLOCK, &e) == 1 && granted_to(3));
	/* unknown flags */
	CHECK(begin1(a, 4, buf, R, 0x10, &e) < 0 && e.code == DMABROKER_E_INVALID_ARGUMENT);
	return fixture_finish();
}

static bool step_multi_all_or_nothing(void)
{
	struct client *a, *bob, *carol;
	struct buffer *b1, *b2, *bufs[2];
	uint32_t modes[2] = { W, W };
	struct completion done;
	struct error e = ERROR_NULL;

	fixture_setup(NULL);
	fixture_clients(1000, 3, &a, &bob, &carol);
	b1 = fixture_buffer(bob);
	b2 = fixture_buffer(a);
	CHECK(buffer_hold(b2, bob, &e) == 0 && buffer_hold(b1, carol, &e) == 0);
	CHECK(begin_ok(a, 1, b2, W));
	bufs[0] = b1;
	bufs[1] = b2;
	done = call_of(bob, 2);
	CHECK(access_begin(bob, &done, 2, bufs, modes, 0, &e) == 1);
	/* b1 is free, but bob holds nothing while it waits for b2 */
	CHECK(rec.n_answers == 1 && bob->n_grants == 0 && !b1->resv.writer && b1->resv.readers == 0);
	CHECK(bob->n_pending == 1 && bob->n_pending_grants == 2);
	/* and those after it on b1 wait behind it */
	CHECK(begin1(carol, 3, b1, R, DMABROKER_ACCESS_NONBLOCK, &e) < 0 && e.code == DMABROKER_E_BUSY);
	CHECK(strstr(e.message, "others wait before you"));
	CHECK(end_ok(a, 1));
	/* both at once, in one answer */
	CHECK(rec.n_answers == 2 && answer(1)->cookie == 2 && answer(1)->n == 2);
	CHECK(bob->n_grants == 2 && b1->resv.writer && b2->resv.writer && bob->n_pending_grants == 0);
	/* the same buffer twice, or too many */
	bufs[1] = b1;
	e = ERROR_NULL;
	CHECK(access_begin(carol, &done, 2, bufs, modes, 0, &e) < 0 && e.code == DMABROKER_E_INVALID_ARGUMENT);
	e = ERROR_NULL;
	CHECK(access_begin(carol, &done, 0, bufs, modes, 0, &e) < 0 && e.code == DMABROKER_E_INVALID_ARGUMENT);
	return fixture_finish();
}

static bool step_would_deadlock(void)
{
	struct client *a, *bob, *carol;
	struct buffer *b1, *b2, *b3;
	struct error e;

	fixture_setup(NULL);
	fixture_clients(1000, 3, &a, &bob, &carol);
	b1 = fixture_buffer(a);
	b2 = fixture_buffer(bob);
	b3 = fixture_buffer(carol);
	CHECK(buffer_hold(b2, a, &e) == 0 && buffer_hold(b1, bob, &e) == 0);
	CHECK(buffer_hold(b3, bob, &e) == 0 && buffer_hold(b1, carol, &e) == 0);
	CHECK(begin_ok(a, 1, b1, W) && begin_ok(bob, 2, b2, W));
	/* a waits for bob: fine, bob waits for nobody */
	CHECK(begin_ok(a, 3, b2, W));
	CHECK(rec.n_answers == 2 && a->n_pending == 1);
	/* bob asking for b1 would close the cycle */
	CHECK(begin1(bob, 4, b1, R, 0, &e) < 0 && e.code == DMABROKER_E_WOULD_DEADLOCK);
	CHECK(bob->n_pending == 0 && rec.n_answers == 2);
	/* a longer cycle: carol holds b3, waits for b1 (a); bob asks b3 -> bob waits carol waits a waits bob */
	CHECK(begin_ok(carol, 5, b3, W) && begin_ok(carol, 6, b1, R));
	CHECK(begin1(bob, 7, b3, W, 0, &e) < 0 && e.code == DMABROKER_E_WOULD_DEADLOCK);
	/* waiting on one's own grant */
	CHECK(begin1(a, 8, b1, R, 0, &e) < 0 && e.code == DMABROKER_E_WOULD_DEADLOCK);
	/* bob ends: a gets b2, the queue moves on */
	CHECK(end_ok(bob, 2));
	CHECK(granted_to(3));
	return fixture_finish();
}

static bool step_release_fails_waiters(void)
{
	struct client *a, *bob;
	struct buffer *buf;
	struct error e;
	uint64_t id;

	buf = shared_buffer(2, &a, &bob);
	id = buf->id;
	CHECK(begin_ok(a, 1, buf, W) && begin_ok(bob, 2, buf, R));
	CHECK(rec.keeps == 1);
	e = ERROR_NULL;
	CHECK(client_release_buffer(bob, id, &e) == 0);
	CHECK(rec.n_answers == 2 && answer(1)->kind == ANSWER_FAILED && answer(1)->cookie == 2);
	CHECK(answer(1)->code == DMABROKER_E_UNKNOWN_BUFFER && strstr(answer(1)->message, "released"));
	CHECK(bob->n_pending == 0 && bob->n_pending_grants == 0 && !b.pending && rec.drops == 1);
	/* releasing with a grant ends it: the writer's buffer is free for nobody else, and gone */
	CHECK(client_release_buffer(a, id, &e) == 0 && a->n_grants == 0 && !buffer_find(&b, id));
	return fixture_finish();
}

static bool step_drop_requests(void)
{
	struct client *a, *bob;
	struct buffer *buf;
	struct completion other;
	uint32_t mode = R;
	struct error e = ERROR_NULL;

	buf = shared_buffer(2, &a, &bob);
	CHECK(begin_ok(a, 1, buf, W));
	CHECK(begin_ok(bob, 2, buf, R));
	other = (struct completion){ .ops = &rec_ops_other, .cookie = 3, .client = bob };
	CHECK(access_begin(bob, &other, 1, &buf, &mode, 0, &e) == 1);
	CHECK(bob->n_pending == 2 && rec.keeps == 2);
	/* the other transport closed: its request goes unanswered, the first stays */
	access_drop_requests(bob, &rec_ops_other);
	CHECK(bob->n_pending == 1 && rec.drops == 1 && rec.n_answers == 1);
	CHECK(end_ok(a, 1));
	CHECK(rec.n_answers == 2 && answer(1)->cookie == 2);
	return fixture_finish();
}

static bool step_unsent_grant_taken_back(void)
{
	struct client *a, *bob, *carol;
	struct buffer *buf;
	struct error e;

	buf = shared_buffer(3, &a, &bob, &carol);
	/* at once: the call fails and nothing is granted */
	rec.granted_result = -EPIPE;
	CHECK(begin1(a, 1, buf, W, 0, &e) == -EPIPE);
	CHECK(a->n_grants == 0 && !buf->resv.writer && b.grants.len == 0);
	rec.granted_result = 0;
	/* from the queue: answered with a failure instead, and the next waiter is served */
	CHECK(begin_ok(a, 2, buf, W) && begin_ok(bob, 3, buf, W) && begin_ok(carol, 4, buf, R));
	rec.granted_result = -EPIPE;
	CHECK(end_ok(a, 2));
	rec.granted_result = 0;
	/* bob's write could not be sent, so carol's read was next (and could not be sent either) */
	CHECK(bob->n_grants == 0 && bob->n_pending == 0 && carol->n_grants == 0 && !b.pending);
	CHECK(rec.n_answers == 3 && answer(1)->kind == ANSWER_FAILED && answer(1)->cookie == 3);
	CHECK(answer(1)->code == DMABROKER_E_ALLOCATION_FAILED);
	CHECK(answer(2)->kind == ANSWER_FAILED && answer(2)->cookie == 4);
	CHECK(!buf->resv.writer && buf->resv.readers == 0 && b.grants.len == 0);
	CHECK(begin_ok(carol, 5, buf, W) && granted_to(5));
	return fixture_finish();
}

static struct grant *internal_grant;
static int internal_calls;

static void on_internal(struct buffer *buf, struct grant *g, int acquire_fence, void *userdata)
{
	internal_calls++;
	internal_grant = g;
	if (acquire_fence >= 0)
		close(acquire_fence);
}

static bool step_internal_in_line(void)
{
	struct client *a, *bob;
	struct buffer *buf;

	internal_calls = 0;
	internal_grant = NULL;
	buf = shared_buffer(2, &a, &bob);
	CHECK(begin_ok(a, 1, buf, R));
	/* the daemon's move waits for the reader, and bob's read waits behind it */
	CHECK(access_begin_internal(buf, W, on_internal, NULL) == 0 && internal_calls == 0);
	CHECK(begin_ok(bob, 2, buf, R));
	CHECK(end_ok(a, 1));
	CHECK(internal_calls == 1 && internal_grant && internal_grant->client == &b.self && rec.n_answers == 1);
	access_end_internal(internal_grant);
	CHECK(rec.n_answers == 2 && granted_to(2));
	return fixture_finish();
}

static bool step_end_and_fences(void)
{
	struct client *a, *bob;
	struct buffer *buf;
	struct error e;
	uint64_t g;
	int pipefd[2];

	buf = shared_buffer(2, &a, &bob);
	CHECK(begin_ok(a, 1, buf, W));
	g = granted_to(1);
	/* only the grant's own client may end it */
	e = ERROR_NULL;
	CHECK(access_end(bob, g, -1, &e) < 0 && e.code == DMABROKER_E_UNKNOWN_GRANT);
	e = ERROR_NULL;
	CHECK(access_end(a, g + 100, -1, &e) < 0 && e.code == DMABROKER_E_UNKNOWN_GRANT);
	/* a release fence that is no sync_file: refused, the grant stays, nothing kept */
	CHECK(pipe2(pipefd, O_CLOEXEC) == 0);
	e = ERROR_NULL;
	CHECK(access_end(a, g, pipefd[0], &e) < 0 && e.code == DMABROKER_E_INVALID_ARGUMENT);
	close(pipefd[0]);
	close(pipefd[1]);
	CHECK(a->n_grants == 1 && buf->resv.writer && access_pending_fences(buf) == 0 && a->n_fences == 0);
	/* ended with no fence: nothing kept, and the next grant's acquire fence is none */
	e = ERROR_NULL;
	CHECK(access_end(a, g, -1, &e) == 0 && a->n_grants == 0 && access_pending_fences(buf) == 0);
	CHECK(buf->resv.acc_all == -1 && buf->resv.acc_write == -1);
	CHECK(begin_ok(bob, 2, buf, R) && answer(1)->fence == -1);
	/* ended twice */
	CHECK(end_ok(bob, 2));
	e = ERROR_NULL;
	CHECK(access_end(bob, granted_to(2), -1, &e) < 0 && e.code == DMABROKER_E_UNKNOWN_GRANT);
	return fixture_finish();
}

static bool step_client_leaves(void)
{
	struct client *a, *bob, *carol;
	struct buffer *buf;

	buf = shared_buffer(3, &a, &bob, &carol);
	CHECK(begin_ok(a, 1, buf, W) && begin_ok(bob, 2, buf, W) && begin_ok(carol, 3, buf, R));
	/* bob goes: its request is dropped unanswered */
	client_free(bob);
	CHECK(rec.n_answers == 1 && rec.drops == 1);
	/* a goes: its grant ends, carol is next */
	client_free(a);
	CHECK(rec.n_answers == 2 && answer(1)->cookie == 3 && buf->resv.readers == 1);
	return fixture_finish();
}

int main(void)
{
	tap_plan(12);
	tap_step("READ grants share, WRITE excludes; the acquire fence is none when nothing is kept",
		 step_read_shares_write_excludes);
	tap_step("waiters are granted in the order they came (FIFO)", step_fifo_order);
	tap_step("a waiting writer is not overtaken by a later reader (fairness)", step_writer_not_overtaken);
	tap_step("NONBLOCK: Busy with the reason, nothing queued", step_nonblock_busy);
	tap_step("BeginAccessMulti is all or nothing: holds none while it waits, gets all in one answer",
		 step_multi_all_or_nothing);
	tap_step("WouldDeadlock for a request that closes a cycle (two and three clients) or waits on itself",
		 step_would_deadlock);
	tap_step("a released buffer fails its waiting requests with UnknownBuffer", step_release_fails_waiters);
	tap_step("access_drop_requests drops one transport's requests unanswered", step_drop_requests);
	tap_step("a grant the transport cannot send is taken back (at once and from the queue)",
		 step_unsent_grant_taken_back);
	tap_step("the daemon's own access waits in the same queue", step_internal_in_line);
	tap_step("EndAccess: own grants only, no fence or a refused non-sync_file, nothing kept",
		 step_end_and_fences);
	tap_step("a client that leaves: its requests dropped unanswered, its grants ended", step_client_leaves);
	return tap_done();
}

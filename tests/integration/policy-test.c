/* SPDX-License-Identifier: MIT */
/*
 * policy-test: access control and quotas against a real dmabrokerd started
 * with tests/integration/policy.conf on a bus any uid may use
 * (with-daemon.py --any-user). Runs as root; children drop to other uids
 * and groups before they connect. Output is TAP.
 *
 * policy.conf: shm only for root and @12345; per client 4 buffers, 2
 * tokens, 1 stream, 2 grants, 1 pending request; per uid 6 buffers and 6
 * clients.
 */
#include <errno.h>
#include <grp.h>
#include <inttypes.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <drm_fourcc.h>
#include <systemd/sd-bus.h>

#include "dmabroker.h"
#include "tap.h"
#include "broker-util.h"

TAP_DEFINE;

#define NOBODY 65534
#define GROUP 12345

static struct dmabroker_buffer *alloc_one(struct dmabroker *b, int *ret)
{
	struct dmabroker_alloc_desc d = {
		.version = DMABROKER_ALLOC_DESC_VERSION, .width = 64, .height = 64, .fourcc = DRM_FORMAT_XRGB8888,
		.usage = DMABROKER_USAGE_CPU_READ_FLAG | DMABROKER_USAGE_CPU_WRITE_FLAG,
	};
	struct dmabroker_buffer *buf = NULL;
	*ret = dmabroker_allocate(b, &d, &buf);
	return buf;
}

/* Runs fn in a child as uid with the given groups; its exit status (0 = passed). */
static int as_user(uid_t uid, gid_t gid, const gid_t *groups, size_t n, int (*fn)(void *), void *arg)
{
	int status = 0;
	pid_t pid = fork();

	if (pid == 0) {
		if (setgroups(n, groups) < 0 || setgid(gid) < 0 || setuid(uid) < 0)
			_exit(100);
		_exit(fn(arg));
	}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

/* ---- access rules ---- */

static int child_denied(void *arg)
{
	struct dmabroker *b = connect_session();
	int r;
	(void)arg;
	if (!b)
		return 10;
	alloc_one(b, &r);
	if (!expect_error(b, r, EPERM, "org.dmabroker.Error.NotPermitted"))
		return 11;
	if (!strstr(dmabroker_error_message(b), "may not allocate from shm") ||
	    !strstr(dmabroker_error_message(b), "root, @12345"))
		return 12;
	dmabroker_disconnect(b);
	return 0;
}

static int child_allowed(void *arg)
{
	struct dmabroker *b = connect_session();
	struct dmabroker_buffer *buf;
	int r;
	(void)arg;
	if (!b)
		return 10;
	buf = alloc_one(b, &r);
	if (r < 0) {
		tap_diag("allowed child: %s", dmabroker_error_message(b));
		return 13;
	}
	dmabroker_buffer_release(buf);
	dmabroker_disconnect(b);
	return 0;
}

static bool step_access_rules(void)
{
	const gid_t in_group[] = { GROUP };
	struct baseline base = baseline_take();

	/* nobody: refused, the error and the rule named */
	CHECK(as_user(NOBODY, NOBODY, NULL, 0, child_denied, NULL) == 0);
	/* nobody in group 12345 (a supplementary group): allowed */
	CHECK(as_user(NOBODY, NOBODY, in_group, 1, child_allowed, NULL) == 0);
	/* root by name */
	CHECK(as_user(0, 0, NULL, 0, child_allowed, NULL) == 0);
	CHECK(baseline_restored(base));
	return true;
}

/* ---- a client sees only its own buffers ---- */

struct shared {
	uint64_t root_buffer;
};

static int child_cannot_touch(void *arg)
{
	const struct shared *sh = arg;
	struct dmabroker *b = connect_session();
	sd_bus *bus = NULL;
	sd_bus_message *reply = NULL;
	sd_bus_error e = SD_BUS_ERROR_NULL;
	int r, n = 0;
	uint64_t id;

	if (!b || sd_bus_open_user(&bus) < 0)
		return 10;
	/* Release, CreateToken and BeginAccess of root's buffer by id: refused */
	r = sd_bus_call_method(bus, "org.dmabroker.Broker1", "/org/dmabroker/Broker1", "org.dmabroker.Broker1",
			       "CreateToken", &e, &reply, "tuu", sh->root_buffer, 0u, 0u);
	if (r != -EPERM || !sd_bus_error_has_name(&e, "org.dmabroker.Error.NotPermitted"))
		return 11;
	sd_bus_error_free(&e);
	r = sd_bus_call_method(bus, "org.dmabroker.Broker1", "/org/dmabroker/Broker1", "org.dmabroker.Broker1",
			       "Release", &e, &reply, "t", sh->root_buffer);
	if (r != -EPERM)
		return 12;
	sd_bus_error_free(&e);
	/* ListBuffers shows none of root's */
	r = sd_bus_call_method(bus, "org.dmabroker.Broker1", "/org/dmabroker/Broker1", "org.dmabroker.Broker1",
			       "ListBuffers", &e, &reply, "");
	if (r < 0)
		return 13;
	sd_bus_message_enter_container(reply, 'a', "(tuuutsuuuuutuuuu)");
	while (sd_bus_message_enter_container(reply, 'r', "tuuutsuuuuutuuuu") > 0) {
		sd_bus_message_read(reply, "t", &id);
		sd_bus_message_skip(reply, "uuutsuuuuutuuuu");
		sd_bus_message_exit_container(reply);
		n += id == sh->root_buffer;
	}
	sd_bus_message_unref(reply);
	sd_bus_unref(bus);
	dmabroker_disconnect(b);
	return n == 0 ? 0 : 14;
}

static bool step_own_buffers_only(void)
{
	struct dmabroker *b = connect_session();
	struct dmabroker_buffer *buf;
	struct shared sh;
	int r;

	CHECK(b);
	buf = alloc_one(b, &r);
	CHECK(r == 0);
	sh.root_buffer = dmabroker_buffer_get_id(buf);
	CHECK(as_user(NOBODY, NOBODY, (const gid_t[]){ GROUP }, 1, child_cannot_touch, &sh) == 0);
	dmabroker_buffer_release(buf);
	dmabroker_disconnect(b);
	return true;
}

/* ---- quotas ---- */

static bool step_client_quotas(void)
{
	struct baseline base = baseline_take();
	struct dmabroker *b = connect_session(), *other = connect_session();
	struct dmabroker_buffer *bufs[5];
	char *tokens[3] = { NULL };
	uint64_t g[3];
	int r, fence = -1;

	CHECK(b && other);
	for (int i = 0; i < 4; i++) {
		bufs[i] = alloc_one(b, &r);
		CHECK(r == 0);
	}
	alloc_one(b, &r);
	CHECK(expect_error(b, r, EDQUOT, "org.dmabroker.Error.QuotaExceeded"));
	CHECK(strstr(dmabroker_error_message(b), "max-buffers-per-client = 4"));
	for (int i = 0; i < 2; i++)
		CHECK(dmabroker_buffer_create_token(bufs[0], 0, 0, &tokens[i]) == 0);
	r = dmabroker_buffer_create_token(bufs[0], 0, 0, &tokens[2]);
	CHECK(expect_error(b, r, EDQUOT, "org.dmabroker.Error.QuotaExceeded"));
	CHECK(strstr(dmabroker_error_message(b), "max-tokens-per-client = 2"));
	/* grants: 2 at most */
	CHECK(dmabroker_buffer_begin_access(bufs[0], DMABROKER_ACCESS_READ, 0, &g[0], &fence) == 0);
	CHECK(dmabroker_buffer_begin_access(bufs[1], DMABROKER_ACCESS_READ, 0, &g[1], &fence) == 0);
	r = dmabroker_buffer_begin_access(bufs[2], DMABROKER_ACCESS_READ, 0, &g[2], &fence);
	CHECK(expect_error(b, r, EDQUOT, "org.dmabroker.Error.QuotaExceeded"));
	CHECK(strstr(dmabroker_error_message(b), "max-grants-per-client = 2"));
	/* streams: 1 at most */
	{
		static const uint32_t xr24[] = { DRM_FORMAT_XRGB8888 };
		struct dmabroker_stream_desc d = {
			.version = DMABROKER_STREAM_DESC_VERSION, .name = "q1", .formats = xr24, .n_formats = 1,
			.width = 16, .height = 16, .buffers = 1, .consumers = 1,
		};
		struct dmabroker_stream *s1 = NULL, *s2 = NULL;
		CHECK(dmabroker_stream_create(other, &d, &s1) == 0);
		d.name = "q2";
		r = dmabroker_stream_create(other, &d, &s2);
		CHECK(expect_error(other, r, EDQUOT, "org.dmabroker.Error.QuotaExceeded"));
		CHECK(strstr(dmabroker_error_message(other), "max-streams-per-client = 1"));
		dmabroker_stream_destroy(s1);
	}
	for (int i = 0; i < 2; i++) {
		dmabroker_revoke_token(b, tokens[i]);
		free(tokens[i]);
		dmabroker_end_access(b, g[i], -1);
	}
	for (int i = 0; i < 4; i++)
		dmabroker_buffer_release(bufs[i]);
	dmabroker_disconnect(other);
	dmabroker_disconnect(b);
	CHECK(baseline_restored(base));
	return true;
}

static int child_uid_quota(void *arg)
{
	struct dmabroker *a = connect_session(), *b2 = connect_session();
	struct dmabroker *more[6] = { NULL };
	int r, n_more = 0, failed_at = -1;
	(void)arg;

	if (!a || !b2)
		return 10;
	/* 4 in one client (its own limit), 2 in another: the uid's 6 */
	for (int i = 0; i < 4; i++)
		if (!alloc_one(a, &r))
			return 11;
	for (int i = 0; i < 2; i++)
		if (!alloc_one(b2, &r))
			return 12;
	alloc_one(b2, &r);
	if (!expect_error(b2, r, EDQUOT, "org.dmabroker.Error.QuotaExceeded") ||
	    !strstr(dmabroker_error_message(b2), "uid 65534 has 6 buffers across its clients") ||
	    !strstr(dmabroker_error_message(b2), "max-buffers-per-uid = 6"))
		return 13;
	/* clients: 6 per uid; a, b2 and 4 more; the next is refused at its first call */
	for (int i = 0; i < 6 && failed_at < 0; i++) {
		more[i] = connect_session();
		n_more++;
		if (!more[i])
			return 14;
		r = dmabroker_open_direct(more[i]);
		if (r < 0) {
			if (!expect_error(more[i], r, EUSERS, "org.dmabroker.Error.LimitReached") ||
			    !strstr(dmabroker_error_message(more[i]), "max-clients-per-uid"))
				return 15;
			failed_at = i;
		}
	}
	for (int i = 0; i < n_more; i++)
		dmabroker_disconnect(more[i]);
	dmabroker_disconnect(b2);
	dmabroker_disconnect(a);
	return failed_at == 4 ? 0 : 16;
}

static bool step_uid_quotas(void)
{
	struct baseline base = baseline_take();
	/* root's own buffers do not count against nobody */
	struct dmabroker *root = connect_session();
	int r;

	CHECK(root);
	for (int i = 0; i < 3; i++)
		CHECK(alloc_one(root, &r) && r == 0);
	CHECK(as_user(NOBODY, NOBODY, (const gid_t[]){ GROUP }, 1, child_uid_quota, NULL) == 0);
	dmabroker_disconnect(root);
	CHECK(baseline_restored(base));
	return true;
}

/* ---- usage against limits ---- */

static bool step_usage(void)
{
	struct dmabroker *b = connect_session();
	sd_bus *bus = NULL;
	sd_bus_message *reply = NULL;
	const char *scope, *res;
	uint64_t used, limit;
	bool client_row = false, uid_row = false;
	int r;

	CHECK(b);
	CHECK(alloc_one(b, &r) && alloc_one(b, &r));
	CHECK(dmabroker_open_direct(b) == 0);
	CHECK(sd_bus_open_user(&bus) >= 0);
	/* as root (admin): every client and uid, ours among them */
	r = sd_bus_call_method(bus, "org.dmabroker.Broker1", "/org/dmabroker/Broker1", "org.dmabroker.Broker1",
			       "GetUsage", NULL, &reply, "");
	CHECK(r >= 0);
	CHECK(sd_bus_message_enter_container(reply, 'a', "(sstt)") > 0);
	while (sd_bus_message_read(reply, "(sstt)", &scope, &res, &used, &limit) > 0) {
		if (strncmp(scope, "client", 6) == 0 && strcmp(res, "buffers") == 0 && used == 2 && limit == 4)
			client_row = true;
		if (strcmp(scope, "uid 0") == 0 && strcmp(res, "buffers") == 0 && used >= 2 && limit == 6)
			uid_row = true;
	}
	CHECK(client_row && uid_row);
	sd_bus_message_unref(reply);
	sd_bus_unref(bus);
	dmabroker_disconnect(b);
	return true;
}

/* ---- streams: who may join ---- */

static int child_join(void *arg)
{
	const char *name = arg;
	struct dmabroker *b = connect_session();
	struct dmabroker_stream_desc d = { .version = DMABROKER_STREAM_DESC_VERSION, .name = name };
	struct dmabroker_stream *s = NULL;
	int r;

	if (!b)
		return 10;
	r = dmabroker_stream_join(b, &d, &s);
	if (r == 0) {
		dmabroker_stream_destroy(s);
		dmabroker_disconnect(b);
		return 0;
	}
	if (!expect_error(b, r, EPERM, "org.dmabroker.Error.NotPermitted"))
		return 11;
	dmabroker_disconnect(b);
	return 1;
}

static bool step_stream_join(void)
{
	static const uint32_t xr24[] = { DRM_FORMAT_XRGB8888 };
	static const uint32_t allowed_gid[] = { GROUP };
	struct dmabroker *p = connect_session();
	struct dmabroker_stream_desc d = {
		.version = DMABROKER_STREAM_DESC_VERSION, .name = "private", .formats = xr24, .n_formats = 1,
		.width = 16, .height = 16, .buffers = 1, .consumers = 5,
	};
	struct dmabroker_stream *s = NULL;

	CHECK(p && dmabroker_stream_create(p, &d, &s) == 0);
	CHECK(as_user(NOBODY, NOBODY, NULL, 0, child_join, (void *)"private") == 1);
	dmabroker_stream_destroy(s);
	d.name = "shared";
	d.allow_gids = allowed_gid;
	d.n_allow_gids = 1;
	CHECK(dmabroker_stream_create(p, &d, &s) == 0);
	CHECK(as_user(NOBODY, NOBODY, NULL, 0, child_join, (void *)"shared") == 1);
	CHECK(as_user(NOBODY, NOBODY, (const gid_t[]){ GROUP }, 1, child_join, (void *)"shared") == 0);
	dmabroker_stream_destroy(s);
	dmabroker_disconnect(p);
	return true;
}

int main(void)
{
	if (!daemon_pid_from_env("policy-test"))
		return 2;
	if (geteuid() != 0) {
		/* the steps change uids; without root they cannot run at all */
		printf("1..0 # SKIP policy-test needs root to act as other users (runs as uid %u)\n", (unsigned)geteuid());
		return 0;
	}
	tap_plan(6);
	tap_step("[access]: shm for root and @12345 only; nobody refused, naming the rule; a group member allowed",
		 step_access_rules);
	tap_step("another user's buffer: not listed, not released, not shared (NotPermitted)", step_own_buffers_only);
	tap_step("per-client quotas: buffers, tokens, grants, streams, each naming its limit", step_client_quotas);
	tap_step("per-uid quotas: buffers across two clients, clients per uid; another uid unaffected",
		 step_uid_quotas);
	tap_step("GetUsage: the client's and the uid's use against their limits", step_usage);
	tap_step("streams: other users may join only when the producer allows them", step_stream_join);
	return tap_done();
}

/* SPDX-License-Identifier: MIT */
/*
 * policy-test: access control and quotas against a real dmabrokerd started
 * with tests/integration/policy.conf on a bus any uid may use
 * (with-daemon.py --any-user). Runs as root; children drop to other uids
 * and groups before they connect. Output is TAP.
 *
 * policy.conf: shm only for root and @12345; per client 4 buffers, 2
 * tokens, 1 stream, 2 grants, 1 pending request; per uid 6 buffers and 6
 * clients; the stream names "camera" reserved to root and "group-cam" to
 * @12345.
 *
 * The last three steps are about how the daemon learns who a new client is:
 * from the bus (GetConnectionCredentials), asked without blocking, its first
 * calls held meanwhile.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <grp.h>
#include <inttypes.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/*
 * ListBuffers' ids into ids[] (at most max); the number of entries, or a negative errno when the call
 * failed or its reply did not parse whole.
 */
static int list_buffer_ids(sd_bus *bus, uint64_t *ids, int max)
{
	struct listed_buffers l;
	struct listed_buffer e;
	int r = listed_buffers_begin(&l, bus), n = 0;

	while (r >= 0 && (r = listed_buffers_next(&l, &e)) > 0) {
		if (n < max)
			ids[n] = e.id;
		n++;
	}
	listed_buffers_end(&l);
	return r < 0 ? r : n;
}

static int count_id(const uint64_t *ids, int n, uint64_t id)
{
	int k = 0;

	for (int i = 0; i < n; i++)
		k += ids[i] == id;
	return k;
}

static int child_cannot_touch(void *arg)
{
	const struct shared *sh = arg;
	struct dmabroker *b = connect_session();
	sd_bus *bus = NULL;
	sd_bus_message *reply = NULL;
	sd_bus_error e = SD_BUS_ERROR_NULL;
	uint64_t ids[16], own_id = 0;
	int r, n;

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
	/*
	 * ListBuffers shows none of root's. The positive control first: a buffer of its own, allocated on the
	 * same bus connection that lists, is listed, once, and the reply parsed whole; so an empty or unreadable
	 * list cannot pass for "root's buffer not listed".
	 */
	r = sd_bus_call_method(bus, "org.dmabroker.Broker1", "/org/dmabroker/Broker1", "org.dmabroker.Broker1",
			       "Allocate", &e, &reply, "uuuatua{sv}", 64u, 64u, (uint32_t)DRM_FORMAT_XRGB8888, 0,
			       (uint32_t)(DMABROKER_USAGE_CPU_READ_FLAG | DMABROKER_USAGE_CPU_WRITE_FLAG), 0);
	if (r < 0) {
		tap_diag("own buffer: Allocate: %s", e.message ? e.message : strerror(-r));
		return 13;
	}
	sd_bus_error_free(&e);
	r = sd_bus_message_read(reply, "t", &own_id);
	sd_bus_message_unref(reply);
	if (r < 0 || own_id == 0)
		return 13;
	n = list_buffer_ids(bus, ids, 16);
	if (n < 0) {
		tap_diag("ListBuffers did not parse: %s", strerror(-n));
		return 14;
	}
	if (count_id(ids, n < 16 ? n : 16, own_id) != 1) {
		tap_diag("ListBuffers of %d entries does not list the caller's own buffer %" PRIu64, n, own_id);
		return 15;
	}
	/* and nothing else: nobody holds no other buffer */
	if (count_id(ids, n < 16 ? n : 16, sh->root_buffer) != 0 || n != 1) {
		tap_diag("ListBuffers lists %d buffers for nobody (root's %" PRIu64 " %s)", n, sh->root_buffer,
			 count_id(ids, n < 16 ? n : 16, sh->root_buffer) ? "among them" : "not among them");
		return 16;
	}
	sd_bus_unref(bus);
	dmabroker_disconnect(b);
	return 0;
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

/*
 * As nobody, while root's client is connected: GetUsage and ListClients
 * show only its own client and uid (the positive control: its own rows
 * are there).
 */
static int child_sees_own_usage_only(void *arg)
{
	sd_bus *bus = NULL;
	sd_bus_message *reply = NULL;
	const char *scope, *res, *name, *comm;
	uint64_t used, limit, id, bytes, t1;
	uint32_t uid, gid, pid, n_buffers, u1;
	unsigned own = 0, others = 0;
	char uid_scope[32];

	(void)arg;
	if (sd_bus_open_user(&bus) < 0)
		return 10;
	if (sd_bus_call_method(bus, "org.dmabroker.Broker1", "/org/dmabroker/Broker1", "org.dmabroker.Broker1",
			       "GetUsage", NULL, &reply, "") < 0 ||
	    sd_bus_message_enter_container(reply, 'a', "(sstt)") <= 0)
		return 11;
	snprintf(uid_scope, sizeof(uid_scope), "uid %u", (unsigned)NOBODY);
	while (sd_bus_message_read(reply, "(sstt)", &scope, &res, &used, &limit) > 0) {
		if (strncmp(scope, "client", 6) == 0 || strcmp(scope, uid_scope) == 0)
			own++;
		else
			others++;
		if (strncmp(scope, "uid", 3) == 0 && strcmp(scope, uid_scope) != 0)
			tap_diag("nobody's GetUsage shows %s", scope);
	}
	reply = sd_bus_message_unref(reply);
	if (own == 0 || others != 0) {
		tap_diag("nobody's GetUsage: %u rows of its own, %u of others", own, others);
		return 12;
	}
	own = others = 0;
	if (sd_bus_call_method(bus, "org.dmabroker.Broker1", "/org/dmabroker/Broker1", "org.dmabroker.Broker1",
			       "ListClients", NULL, &reply, "") < 0 ||
	    sd_bus_message_enter_container(reply, 'a', "(tsuuusutuut)") <= 0)
		return 13;
	while (sd_bus_message_read(reply, "(tsuuusutuut)", &id, &name, &uid, &gid, &pid, &comm, &n_buffers, &bytes,
				   &u1, &u1, &t1) > 0) {
		if (uid == NOBODY && pid == (uint32_t)getpid())
			own++;
		else
			others++;
	}
	sd_bus_message_unref(reply);
	sd_bus_unref(bus);
	if (own != 1 || others != 0) {
		tap_diag("nobody's ListClients: %u rows of its own, %u of others", own, others);
		return 14;
	}
	return 0;
}

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
	/* another user sees only its own (root's client is connected meanwhile) */
	CHECK(as_user(NOBODY, NOBODY, (const gid_t[]){ NOBODY }, 1, child_sees_own_usage_only, NULL) == 0);
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
	if (!expect_error(b, r, ENXIO, "org.dmabroker.Error.UnknownStream"))
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

/* ---- streams: no squatting, and refusals that tell nothing ---- */

static const uint32_t xr24[] = { DRM_FORMAT_XRGB8888 };

static struct dmabroker_stream_desc producer(const char *name, uint32_t consumers)
{
	return (struct dmabroker_stream_desc){
		.version = DMABROKER_STREAM_DESC_VERSION, .name = name, .formats = xr24, .n_formats = 1,
		.usage = DMABROKER_USAGE_CPU_READ_FLAG | DMABROKER_USAGE_CPU_WRITE_FLAG,
		.width = 16, .height = 16, .buffers = 2, .consumers = consumers,
	};
}

/* A consumer's description; with_uid: only a stream that uid produces. */
static struct dmabroker_stream_desc consumer(const char *name, bool with_uid, uint32_t producer_uid)
{
	return (struct dmabroker_stream_desc){
		.version = DMABROKER_STREAM_DESC_VERSION, .name = name, .usage = DMABROKER_USAGE_CPU_READ_FLAG,
		.flags = with_uid ? DMABROKER_STREAM_PRODUCER_UID : 0, .producer_uid = producer_uid,
	};
}

/* Creates name as the caller: 0, or the negative errno with the error's name and message in out. */
static int try_create(const char *name, char *out, size_t len)
{
	struct dmabroker *b = connect_session();
	struct dmabroker_stream_desc d = producer(name, 5);
	struct dmabroker_stream *s = NULL;
	int r;

	if (!b)
		return -ENOTCONN;
	r = dmabroker_stream_create(b, &d, &s);
	if (r < 0)
		snprintf(out, len, "%s: %s", dmabroker_error_name(b), dmabroker_error_message(b));
	dmabroker_stream_destroy(s);
	dmabroker_disconnect(b);
	return r;
}

/* JoinStream as the caller: 0, or the negative errno with the error's name and message in out. */
static int try_join(const struct dmabroker_stream_desc *d, char *out, size_t len)
{
	struct dmabroker *b = connect_session();
	struct dmabroker_stream *s = NULL;
	int r;

	if (!b)
		return -ENOTCONN;
	r = dmabroker_stream_join(b, d, &s);
	if (r < 0)
		snprintf(out, len, "%s: %s", dmabroker_error_name(b), dmabroker_error_message(b));
	dmabroker_stream_destroy(s);
	dmabroker_disconnect(b);
	return r;
}

/*
 * The refusal of a join must be the reply a name no stream has gets:
 * joins name (which exists), then name with "-none" (which does not),
 * and compares the two replies with the name taken out.
 */
static bool refused_like_missing(const char *name, bool with_uid, uint32_t producer_uid)
{
	char got[512] = "", missing[512] = "", missing_name[80], want[512];
	struct dmabroker_stream_desc d = consumer(name, with_uid, producer_uid);
	int r = try_join(&d, got, sizeof(got)), r_missing;

	snprintf(missing_name, sizeof(missing_name), "%s-none", name);
	d.name = missing_name;
	r_missing = try_join(&d, missing, sizeof(missing));
	if (r != -ENXIO || r_missing != -ENXIO) {
		tap_diag("join '%s': %d (%s); join '%s': %d (%s)", name, r, got, missing_name, r_missing, missing);
		return false;
	}
	/* the missing one's reply, with its name put back to the existing one's */
	snprintf(want, sizeof(want), "%s", missing);
	{
		char *at = strstr(want, missing_name);
		if (!at)
			return false;
		memmove(at + strlen(name), at + strlen(missing_name), strlen(at + strlen(missing_name)) + 1);
	}
	if (strcmp(got, want) != 0) {
		tap_diag("refused:  %s\n#   missing: %s", got, missing);
		return false;
	}
	tap_diag("%s", got);
	return true;
}

static int child_join_refused_like_missing(void *arg)
{
	return refused_like_missing(arg, false, 0) && refused_like_missing(arg, true, 0) &&
	       refused_like_missing(arg, true, NOBODY) ? 0 : 1;
}

/* LeaveStream(id) on the bus: its error "name: message", or "" when it succeeded. */
static bool leave_stream(sd_bus *bus, uint64_t id, char *out, size_t len)
{
	sd_bus_error e = SD_BUS_ERROR_NULL;
	int r = sd_bus_call_method(bus, "org.dmabroker.Broker1", "/org/dmabroker/Broker1", "org.dmabroker.Broker1",
				   "LeaveStream", &e, NULL, "t", id);

	snprintf(out, len, "%s: %s", r < 0 && e.name ? e.name : "", r < 0 && e.message ? e.message : "");
	sd_bus_error_free(&e);
	return r < 0;
}

/* Another user's stream id, named by a call, is answered like an id no stream has. */
static int child_other_id(void *arg)
{
	uint64_t id = *(const uint64_t *)arg;
	char got[256], want[256], missing[256], want_missing[256];
	sd_bus *bus = NULL;
	bool ok;

	if (sd_bus_open_user(&bus) < 0)
		return 10;
	ok = leave_stream(bus, id, got, sizeof(got)) && leave_stream(bus, UINT64_MAX, missing, sizeof(missing));
	sd_bus_unref(bus);
	snprintf(want, sizeof(want), "org.dmabroker.Error.UnknownStream: no stream %" PRIu64, id);
	snprintf(want_missing, sizeof(want_missing), "org.dmabroker.Error.UnknownStream: no stream %" PRIu64,
		 UINT64_MAX);
	tap_diag("LeaveStream(%" PRIu64 ") of another user's stream: %s; of none: %s", id, got, missing);
	return ok && strcmp(got, want) == 0 && strcmp(missing, want_missing) == 0 ? 0 : 1;
}

static bool step_stream_refusals_hidden(void)
{
	struct baseline base = baseline_take();
	struct dmabroker *p = connect_session();
	struct dmabroker_stream_desc d = producer("rootonly", 5);
	struct dmabroker_stream *s = NULL;
	uint64_t id;

	/* root's stream, nobody not allowed: as if there were none, with or without producer-uid */
	CHECK(p && dmabroker_stream_create(p, &d, &s) == 0);
	CHECK(as_user(NOBODY, NOBODY, NULL, 0, child_join_refused_like_missing, (void *)"rootonly") == 0);
	/* nor does naming its id tell it exists */
	id = dmabroker_stream_get_id(s);
	CHECK(as_user(NOBODY, NOBODY, NULL, 0, child_other_id, &id) == 0);
	dmabroker_stream_destroy(s);
	dmabroker_disconnect(p);
	CHECK(baseline_restored(base));
	return true;
}

static int child_create(void *arg)
{
	char err[512] = "";
	int r = try_create(arg, err, sizeof(err));

	tap_diag("create '%s' as uid %u: %s", (const char *)arg, (unsigned)getuid(), r == 0 ? "created" : err);
	if (r == 0)
		return 0;
	if (r != -EPERM || !strstr(err, "org.dmabroker.Error.NotPermitted: ") || !strstr(err, "reserved"))
		return 2;
	/* the refusal names neither the rule's users nor whether the stream exists */
	if (strstr(err, "root") || strstr(err, "12345") || strstr(err, "exists"))
		return 3;
	return 1;
}

static bool step_stream_reserved_names(void)
{
	const gid_t in_group[] = { GROUP };
	struct baseline base = baseline_take();
	struct dmabroker *p = connect_session();
	struct dmabroker_stream_desc d = producer("camera", 5);
	struct dmabroker_stream *s = NULL;
	char err[512] = "";

	/* a squatter cannot take root's name before root starts ... */
	CHECK(as_user(NOBODY, NOBODY, NULL, 0, child_create, (void *)"camera") == 1);
	/* ... nor in a group it is not in, nor can root take the group's name (nobody is exempt) */
	CHECK(as_user(NOBODY, NOBODY, NULL, 0, child_create, (void *)"group-cam") == 1);
	CHECK(try_create("group-cam", err, sizeof(err)) == -EPERM);
	tap_diag("root: %s", err);
	/* the group's member may; an unreserved name is anyone's */
	CHECK(as_user(NOBODY, NOBODY, in_group, 1, child_create, (void *)"group-cam") == 0);
	CHECK(as_user(NOBODY, NOBODY, NULL, 0, child_create, (void *)"camera2") == 0);
	/* root creates its camera; the squatter is refused the same way while it exists */
	CHECK(p && dmabroker_stream_create(p, &d, &s) == 0);
	CHECK(as_user(NOBODY, NOBODY, NULL, 0, child_create, (void *)"camera") == 1);
	dmabroker_stream_destroy(s);
	dmabroker_disconnect(p);
	CHECK(baseline_restored(base));
	return true;
}

/* A squatter: a child of uid that creates name (allowing allow_uid to join) and keeps it until told. */
struct squatter {
	pid_t pid;
	int go;         /* closed: the squatter leaves */
};

static bool squat(struct squatter *sq, uid_t uid, const char *name, uint32_t allow_uid)
{
	int ready[2], go[2];
	char c = 0;

	if (pipe2(ready, O_CLOEXEC) < 0 || pipe2(go, O_CLOEXEC) < 0)
		return false;
	sq->pid = fork();
	if (sq->pid == 0) {
		struct dmabroker *b;
		struct dmabroker_stream_desc d = producer(name, 5);
		struct dmabroker_stream *s = NULL;
		close(ready[0]);
		close(go[1]);
		if (setgroups(0, NULL) < 0 || setgid(uid) < 0 || setuid(uid) < 0)
			_exit(100);
		b = connect_session();
		d.allow_uids = &allow_uid;
		d.n_allow_uids = 1;
		if (!b || dmabroker_stream_create(b, &d, &s) < 0)
			_exit(101);
		if (write(ready[1], "x", 1) != 1)
			_exit(102);
		while (read(go[0], &c, 1) < 0 && errno == EINTR)
			;
		dmabroker_stream_destroy(s);
		dmabroker_disconnect(b);
		_exit(0);
	}
	close(ready[1]);
	close(go[0]);
	sq->go = go[1];
	if (sq->pid < 0 || read(ready[0], &c, 1) != 1) {
		close(ready[0]);
		return false;
	}
	close(ready[0]);
	return true;
}

static bool squat_end(struct squatter *sq)
{
	int status = 0;

	close(sq->go);
	return waitpid(sq->pid, &status, 0) == sq->pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* The real consumer, of uid NOBODY, asking for root's stream: joins, gets one frame from it. */
static int child_consumer(void *arg)
{
	struct dmabroker *b = connect_session();
	struct dmabroker_stream_desc d = consumer(arg, true, 0);
	struct dmabroker_stream *s = NULL;
	struct dmabroker_frame f;
	int r;

	if (!b)
		return 10;
	r = dmabroker_stream_join(b, &d, &s);
	if (r < 0) {
		tap_diag("legit join: %s: %s", dmabroker_error_name(b), dmabroker_error_message(b));
		return 11;
	}
	if (dmabroker_stream_wait_ready(s, -1) < 0)
		return 12;
	while ((r = dmabroker_stream_acquire(s, &f)) == -EAGAIN)
		if (dmabroker_stream_wait(s, -1) < 0)
			return 13;
	if (r < 0 || f.sequence != 42)
		return 14;
	if (f.fence >= 0)
		close(f.fence);
	dmabroker_stream_release(s, f.index, -1);
	dmabroker_stream_destroy(s);
	dmabroker_disconnect(b);
	return 0;
}

/* Calls method (CreateStream or JoinStream) of "webcam" with one option; its error name, or "". */
static const char *raw_stream_call(sd_bus *d, const char *method, const char *key, const char *type, uint32_t u,
				   char *out, size_t len)
{
	sd_bus_error e = SD_BUS_ERROR_NULL;
	sd_bus_message *reply = NULL;
	int r = strcmp(type, "u") == 0
		? sd_bus_call_method(d, NULL, "/org/dmabroker/Broker1", "org.dmabroker.Broker1", method, &e, &reply,
				     "sa{sv}", "webcam", 1, key, "u", u)
		: sd_bus_call_method(d, NULL, "/org/dmabroker/Broker1", "org.dmabroker.Broker1", method, &e, &reply,
				     "sa{sv}", "webcam", 1, key, "s", "0");

	snprintf(out, len, "%s", r < 0 && e.name ? e.name : "");
	if (r < 0)
		tap_diag("%s with %s (%s): %s: %s", method, key, type, e.name, e.message);
	sd_bus_error_free(&e);
	sd_bus_message_unref(reply);
	return out;
}

static bool step_stream_producer_uid_option(void)
{
	struct baseline base = baseline_take();
	sd_bus *d = raw_direct(NULL); /* CreateStream and JoinStream run on one */
	char name[128];

	CHECK(d);
	/* a producer's CreateStream with it, a consumer's with a string: InvalidArgument, nothing left behind */
	CHECK(strcmp(raw_stream_call(d, "CreateStream", "producer-uid", "u", 0, name, sizeof(name)),
		     "org.dmabroker.Error.InvalidArgument") == 0);
	CHECK(strcmp(raw_stream_call(d, "JoinStream", "producer-uid", "s", 0, name, sizeof(name)),
		     "org.dmabroker.Error.InvalidArgument") == 0);
	/* well formed, for a stream nobody produces: UnknownStream */
	CHECK(strcmp(raw_stream_call(d, "JoinStream", "producer-uid", "u", 0, name, sizeof(name)),
		     "org.dmabroker.Error.UnknownStream") == 0);
	sd_bus_flush_close_unref(d);
	CHECK(baseline_restored(base));
	return true;
}

static bool step_stream_producer_uid(void)
{
	struct baseline base = baseline_take();
	struct dmabroker_stream_desc d = consumer("webcam", true, 0);
	struct dmabroker *p;
	struct dmabroker_stream *s = NULL;
	struct dmabroker_frame f;
	struct squatter sq;
	char err[512] = "";
	int status = 0, r;
	pid_t pid;

	/* nobody squats "webcam" (an unreserved name) and lets the consumer's uid (root) in */
	CHECK(squat(&sq, NOBODY, "webcam", 0));
	/* without producer-uid, the consumer would get the squatter's frames ... */
	d.flags = 0;
	CHECK(try_join(&d, err, sizeof(err)) == 0);
	/* ... with it, the squatter's stream is as if there were none, and its uid is not told */
	d.flags = DMABROKER_STREAM_PRODUCER_UID;
	r = try_join(&d, err, sizeof(err));
	tap_diag("producer-uid 0, squatter's stream: %d %s", r, err);
	CHECK(r == -ENXIO);
	CHECK(strcmp(err, "org.dmabroker.Error.UnknownStream: no stream named 'webcam' produced by uid 0") == 0);
	CHECK(!strstr(err, "65534"));
	CHECK(refused_like_missing("webcam", true, 0));
	/* the squatter's uid, asked for, is what the consumer gets */
	d.producer_uid = NOBODY;
	CHECK(try_join(&d, err, sizeof(err)) == 0);
	CHECK(squat_end(&sq));
	/* producer-uid is a consumer's: the library refuses it to a producer */
	p = connect_session();
	CHECK(p);
	d = producer("webcam", 1);
	d.flags = DMABROKER_STREAM_PRODUCER_UID;
	CHECK(dmabroker_stream_create(p, &d, &s) == -EINVAL);
	/* the legit case: root's stream, the consumer asks for root, frames flow */
	d = producer("camera", 1);
	d.allow_uids = (const uint32_t[]){ NOBODY };
	d.n_allow_uids = 1;
	CHECK(dmabroker_stream_create(p, &d, &s) == 0);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		if (setgroups(0, NULL) < 0 || setgid(NOBODY) < 0 || setuid(NOBODY) < 0)
			_exit(100);
		_exit(child_consumer((void *)"camera"));
	}
	CHECK(dmabroker_stream_wait_ready(s, -1) == 0);
	while ((r = dmabroker_stream_dequeue(s, &f)) == -EAGAIN)
		CHECK(dmabroker_stream_wait(s, -1) >= 0);
	CHECK(r == 0);
	if (f.fence >= 0)
		close(f.fence);
	CHECK(dmabroker_stream_queue(s, f.index, -1, 42, 0, NULL, 0) == 0);
	/* the consumer runs on its own; this side only has to answer its release */
	while (waitpid(pid, &status, WNOHANG) == 0)
		dmabroker_stream_wait(s, 100);
	CHECKF(WIFEXITED(status) && WEXITSTATUS(status) == 0, "legit consumer: status %d", status);
	dmabroker_stream_destroy(s);
	dmabroker_disconnect(p);
	CHECK(baseline_restored(base));
	return true;
}

/* ---- credentials: what the bus vouches for, asked without blocking ---- */

/*
 * Connects as nobody with the groups `before`, then (keeping root as its
 * saved uid) changes its supplementary groups to `after` and makes its first
 * call to the daemon. The bus reports the groups of the connection; /proc
 * shows the new ones. 0: allowed, 1: refused with NotPermitted.
 */
struct regroup {
	const gid_t *before, *after;
	size_t n_before, n_after;
};

static int child_regroup(void *arg)
{
	const struct regroup *g = arg;
	struct dmabroker *b;
	struct dmabroker_buffer *buf;
	int r;

	if (setgroups(g->n_before, g->before) < 0 || setresgid(NOBODY, NOBODY, NOBODY) < 0 ||
	    setresuid(NOBODY, NOBODY, 0) < 0)
		return 20;
	b = connect_session(); /* connected and known to the bus: its calls to the bus were answered */
	if (!b)
		return 21;
	if (seteuid(0) < 0 || setgroups(g->n_after, g->after) < 0 || seteuid(NOBODY) < 0)
		return 22;
	buf = alloc_one(b, &r);
	if (r == 0) {
		dmabroker_buffer_release(buf);
		dmabroker_disconnect(b);
		return 0;
	}
	if (!expect_error(b, r, EPERM, "org.dmabroker.Error.NotPermitted"))
		return 23;
	dmabroker_disconnect(b);
	return 1;
}

/* as_user's fork without its set*id: child_regroup does its own */
static int in_child(int (*fn)(void *), void *arg)
{
	int status = 0;
	pid_t pid = fork();

	if (pid == 0)
		_exit(fn(arg));
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

static bool step_groups_from_bus(void)
{
	static const gid_t in_group[] = { GROUP };
	struct baseline base = baseline_take();
	int r;

	/* joins @12345 after connecting: the bus says it is not in it, /proc says it is */
	r = in_child(child_regroup, &(struct regroup){ .after = in_group, .n_after = 1 });
	CHECKF(r == 1, "joined the group after connecting: %s (%d)", r == 0 ? "allowed" : "failed", r);
	/* leaves @12345 after connecting: the bus says it is in it */
	r = in_child(child_regroup, &(struct regroup){ .before = in_group, .n_before = 1 });
	CHECKF(r == 0, "left the group after connecting: %s (%d)", r == 1 ? "refused" : "failed", r);
	CHECK(baseline_restored(base));
	return true;
}

/* Calls sent back to back on a fresh connection, before the daemon can know who sent them. */
enum { PIPELINED = 48, FLOOD = 120 }; /* FLOOD: under dbus-daemon's 128 pending replies per connection */

struct answers {
	unsigned next;                  /* answers seen */
	unsigned order[FLOOD];          /* order[k]: the call answered k-th */
	const char *error[FLOOD];       /* its error name, or NULL */
	unsigned listed[FLOOD];         /* ListBuffers: how many buffers */
	uint64_t allocated;             /* Allocate's buffer */
};

struct call {
	struct answers *a;
	unsigned i;
};

static int on_answer(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
	const struct call *c = userdata;
	struct answers *a = c->a;
	const sd_bus_error *e = sd_bus_message_get_error(m);

	a->order[a->next++] = c->i;
	a->error[c->i] = e ? strdup(e->name) : NULL;
	if (e)
		return 0;
	if (strcmp(sd_bus_message_get_signature(m, true), "a(tuuutsuuuuutuuuu)") == 0) {
		sd_bus_message_enter_container(m, 'a', "(tuuutsuuuuutuuuu)");
		while (sd_bus_message_skip(m, "(tuuutsuuuuutuuuu)") > 0)
			a->listed[c->i]++;
	} else if (sd_bus_message_get_signature(m, true)[0] == 't')
		sd_bus_message_read(m, "t", &a->allocated);
	return 0;
}

static int send_call(sd_bus *bus, struct call *c, const char *member, const char *sig, ...)
{
	sd_bus_message *m = NULL;
	va_list ap;
	int r = sd_bus_message_new_method_call(bus, &m, "org.dmabroker.Broker1", "/org/dmabroker/Broker1",
					       "org.dmabroker.Broker1", member);

	if (r >= 0) {
		va_start(ap, sig);
		r = sd_bus_message_appendv(m, sig, ap);
		va_end(ap);
	}
	if (r >= 0)
		r = sd_bus_call_async(bus, NULL, m, on_answer, c, 0);
	sd_bus_message_unref(m);
	return r;
}

static int send_allocate(sd_bus *bus, struct call *c)
{
	sd_bus_message *m = NULL;
	int r = sd_bus_message_new_method_call(bus, &m, "org.dmabroker.Broker1", "/org/dmabroker/Broker1",
					       "org.dmabroker.Broker1", "Allocate");

	if (r >= 0)
		r = sd_bus_message_append(m, "uuu", 64u, 64u, (uint32_t)DRM_FORMAT_XRGB8888);
	if (r >= 0)
		r = sd_bus_message_append_array(m, 't', NULL, 0);
	if (r >= 0)
		r = sd_bus_message_append(m, "ua{sv}", (uint32_t)DMABROKER_USAGE_CPU_READ_FLAG, 0);
	if (r >= 0)
		r = sd_bus_call_async(bus, NULL, m, on_answer, c, 0);
	sd_bus_message_unref(m);
	return r;
}

static bool wait_answers(sd_bus *bus, const struct answers *a, unsigned n)
{
	while (a->next < n) {
		int r = sd_bus_process(bus, NULL);
		if (r < 0)
			return false;
		if (r == 0 && sd_bus_wait(bus, UINT64_MAX) < 0)
			return false;
	}
	return true;
}

static void answers_free(struct answers *a, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		free((char *)a->error[i]);
}

static bool step_pipelined_first_calls(void)
{
	struct baseline base = baseline_take();
	static struct answers a;
	static struct call calls[FLOOD];
	sd_bus *bus = NULL;
	unsigned n_ok = 0, last = 0;
	struct dmabroker *owner;
	struct dmabroker_buffer *shared = NULL;
	char *token = NULL;
	int r;

	/* OpenToken, then ListBuffers (must see it), Release of an unknown id, GetUsage, ...
	 * (OpenToken, not Allocate: an Allocate is answered when its worker is done,
	 * maybe after later calls) */
	memset(&a, 0, sizeof(a));
	owner = connect_session();
	CHECK(owner && (shared = alloc_one(owner, &r)) && r == 0);
	CHECK(dmabroker_buffer_create_token(shared, 0, 0, &token) == 0);
	CHECK(sd_bus_open_user(&bus) >= 0);
	for (unsigned i = 0; i < PIPELINED; i++) {
		calls[i] = (struct call){ &a, i };
		if (i == 0)
			CHECK(send_call(bus, &calls[i], "OpenToken", "s", token) >= 0);
		else if (i % 3 == 1)
			CHECK(send_call(bus, &calls[i], "ListBuffers", "") >= 0);
		else if (i % 3 == 2)
			CHECK(send_call(bus, &calls[i], "Release", "t", (uint64_t)UINT64_MAX) >= 0);
		else
			CHECK(send_call(bus, &calls[i], "GetUsage", "") >= 0);
	}
	CHECK(sd_bus_flush(bus) >= 0);
	CHECK(wait_answers(bus, &a, PIPELINED));
	for (unsigned k = 0; k < PIPELINED; k++) {
		unsigned i = a.order[k];
		CHECKF(i == k, "answer %u was for call %u", k, i);
		if (i == 0)
			CHECKF(!a.error[i] && a.allocated, "OpenToken: %s", a.error[i] ? a.error[i] : "no buffer");
		else if (i % 3 == 1)
			CHECKF(!a.error[i] && a.listed[i] == 1, "ListBuffers %u: %s, %u buffers", i,
			       a.error[i] ? a.error[i] : "ok", a.listed[i]);
		else if (i % 3 == 2)
			CHECKF(a.error[i] && strcmp(a.error[i], "org.dmabroker.Error.UnknownBuffer") == 0,
			       "Release %u: %s", i, a.error[i] ? a.error[i] : "ok");
		else
			CHECKF(!a.error[i], "GetUsage %u: %s", i, a.error[i]);
	}
	answers_free(&a, PIPELINED);
	sd_bus_flush_close_unref(bus);
	free(token);
	dmabroker_buffer_release(shared);
	dmabroker_disconnect(owner);

	/* A flood: every call answered; beyond the bound only with LimitReached, the rest in order */
	memset(&a, 0, sizeof(a));
	bus = NULL;
	CHECK(sd_bus_open_user(&bus) >= 0);
	for (unsigned i = 0; i < FLOOD; i++) {
		calls[i] = (struct call){ &a, i };
		CHECK(send_call(bus, &calls[i], "ListBuffers", "") >= 0);
	}
	CHECK(sd_bus_flush(bus) >= 0);
	CHECK(wait_answers(bus, &a, FLOOD));
	for (unsigned k = 0; k < FLOOD; k++) {
		unsigned i = a.order[k];
		if (a.error[i]) {
			CHECKF(strcmp(a.error[i], "org.dmabroker.Error.LimitReached") == 0, "call %u: %s", i,
			       a.error[i]);
			continue;
		}
		CHECKF(n_ok == 0 || i > last, "call %u answered after call %u", i, last);
		last = i;
		n_ok++;
	}
	CHECK(n_ok > 0);
	answers_free(&a, FLOOD);
	sd_bus_flush_close_unref(bus);
	CHECK(baseline_restored(base));
	return true;
}

static bool step_leaves_while_held(void)
{
	struct baseline base = baseline_take();
	int clients = daemon_property_u32("Clients");
	static struct answers a;
	static struct call calls[8];
	bool same = false;

	CHECK(clients >= 0);
	for (unsigned round = 0; round < 20; round++) {
		sd_bus *bus = NULL;
		int fds[2] = { -1, -1 };

		CHECK(pipe2(fds, O_CLOEXEC) == 0);
		CHECK(sd_bus_open_user(&bus) >= 0);
		for (unsigned i = 0; i < 8; i++)
			calls[i] = (struct call){ &a, i };
		/* calls that carry fds, which the daemon keeps while it holds them */
		CHECK(send_call(bus, &calls[0], "Import", "huuuta(tu)u", fds[0], 64u, 64u,
				(uint32_t)DRM_FORMAT_XRGB8888, (uint64_t)0, 1, (uint64_t)0, 256u, 1u) >= 0);
		CHECK(send_allocate(bus, &calls[1]) >= 0);
		CHECK(send_call(bus, &calls[2], "EndAccess", "tah", (uint64_t)1, 2, fds[0], fds[1]) >= 0);
		CHECK(send_call(bus, &calls[3], "OpenDirect", "") >= 0);
		CHECK(sd_bus_flush(bus) >= 0);
		if (round % 2)
			usleep(round * 500); /* sometimes leaving later: the daemon may know it by then */
		sd_bus_close_unref(bus);
		close(fds[0]);
		close(fds[1]);
	}
	/* every one of them forgotten: no client, no buffer, no fd left */
	for (int i = 0; i < 500 && !same; i++) {
		same = daemon_property_u32("Clients") == clients;
		if (!same)
			usleep(10000);
	}
	CHECKF(same, "%d clients, %d before", daemon_property_u32("Clients"), clients);
	CHECK(baseline_restored(base));
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
	tap_plan(13);
	tap_step("[access]: shm for root and @12345 only; nobody refused, naming the rule; a group member allowed",
		 step_access_rules);
	tap_step("another user's buffer: not listed, not released, not shared (NotPermitted)", step_own_buffers_only);
	tap_step("per-client quotas: buffers, tokens, grants, streams, each naming its limit", step_client_quotas);
	tap_step("per-uid quotas: buffers across two clients, clients per uid; another uid unaffected",
		 step_uid_quotas);
	tap_step("GetUsage: the client's and the uid's use against their limits; another user sees only its own, "
		 "in GetUsage and ListClients", step_usage);
	tap_step("streams: other users may join only when the producer allows them", step_stream_join);
	tap_step("streams: a stream one may not join, or its id, is answered like a missing one (UnknownStream)",
		 step_stream_refusals_hidden);
	tap_step("streams: [streams] reserves names; others' CreateStream refused (NotPermitted), naming nobody",
		 step_stream_reserved_names);
	tap_step("streams: producer-uid refuses a squatter's stream like a missing one; the real producer's joins",
		 step_stream_producer_uid);
	tap_step("streams: producer-uid is a consumer's uint32 option; otherwise InvalidArgument",
		 step_stream_producer_uid_option);
	tap_step("group rules: the groups the bus reports for the connection, not those /proc shows later",
		 step_groups_from_bus);
	tap_step("calls pipelined before the daemon knows the caller: all answered, in order, held up to a bound",
		 step_pipelined_first_calls);
	tap_step("a client that leaves while its first calls are held leaves no client, buffer or fd behind",
		 step_leaves_while_held);
	return tap_done();
}

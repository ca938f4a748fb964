/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <sys/epoll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "access.h"
#include "broker.h"
#include "cleanup.h"
#include "error.h"
#include "fence.h"
#include "log.h"
#include "quota.h"
#include "stream.h"

static void grant_free(struct grant *g);
static void request_unlink(struct broker *b, struct request *r);
static void enqueue(struct broker *b, struct request *req);

static const char *mode_name(uint32_t mode)
{
	return mode == DMABROKER_ACCESS_WRITE ? "write" : "read";
}

/* ---- kept fences ---- */

/* The merged fds (acc_write, acc_all) count against the fd budget while they are open. */
static int acc_add(struct broker *b, int *acc, int fd)
{
	bool was = *acc >= 0;
	int r = fence_accumulate(acc, fd);

	if (!was && *acc >= 0)
		fd_budget_charge_always(b, 1);
	return r;
}

static int acc_close(struct broker *b, int fd)
{
	if (fd >= 0) {
		close(fd);
		fd_budget_uncharge(b, 1);
	}
	return -1;
}

static void kept_fence_free(struct kept_fence *k)
{
	struct resv *rv = &k->buf->resv;

	/* Out of epoll first: the io source owns the fd and closes it after. */
	sd_event_source_disable_unref(k->io);
	sd_event_source_disable_unref(k->timer);
	if (k->prev_in_buffer)
		k->prev_in_buffer->next_in_buffer = k->next_in_buffer;
	else
		rv->fences = k->next_in_buffer;
	if (k->next_in_buffer)
		k->next_in_buffer->prev_in_buffer = k->prev_in_buffer;
	rv->n_fences--;
	fd_budget_uncharge(k->buf->broker, 1); /* charged in keep_fence() */
	if (k->client) {
		if (k->prev_in_client)
			k->prev_in_client->next_in_client = k->next_in_client;
		else
			k->client->fences = k->next_in_client;
		if (k->next_in_client)
			k->next_in_client->prev_in_client = k->prev_in_client;
		k->client->n_fences--;
	}
	if (!rv->fences) {
		/* Nothing kept: nothing to merge. */
		rv->acc_write = acc_close(k->buf->broker, rv->acc_write);
		rv->acc_all = acc_close(k->buf->broker, rv->acc_all);
		rv->acc_stale = false;
	}
	free(k);
}

static int on_fence_signalled(sd_event_source *src, int fd, uint32_t revents, void *userdata)
{
	/* The merged fds may still name it: signalled, it costs them nothing. */
	kept_fence_free(userdata);
	return 0;
}

/* Tells every holder of buf, and `also`, that client's fence or grant was late (grant: a grant's lease). */
static void notify_holders(struct buffer *buf, bool grant, uint64_t client, bool write, struct client *also)
{
	struct broker *b = buf->broker;

	for (struct hold *h = buf->holders; h; h = h->next_in_buffer) {
		if (h->client == also)
			also = NULL;
		if (grant)
			broker_emit(b, grant_timed_out, h->client, buf->id, client, write);
		else
			broker_emit(b, fence_timed_out, h->client, buf->id, client, write);
	}
	if (also && grant)
		broker_emit(b, grant_timed_out, also, buf->id, client, write);
	else if (also)
		broker_emit(b, fence_timed_out, also, buf->id, client, write);
}

/* The timeout policy, for the one client that was late. */
static void apply_timeout_policy(struct client *c, const char *what)
{
	if (!c || c->broker->config.fence_timeout_policy != FENCE_POLICY_DROP_CLIENT || c == &c->broker->self)
		return;
	log_warning("dropping client %llu (pid %d, %s): %s (timeout-policy = drop-client)",
		    (unsigned long long)c->id, (int)c->pid, c->comm, what);
	client_free(c);
}

static int on_fence_deadline(sd_event_source *src, uint64_t usec, void *userdata)
{
	struct kept_fence *k = userdata;
	struct buffer *buf = k->buf;
	struct broker *b = buf->broker;
	struct client *c = k->client;
	uint64_t supplier = k->supplier;
	bool write = k->write;

	buf->resv.fence_timeouts++;
	b->fence_timeouts++;
	if (c)
		c->fence_timeouts++;
	log_warning("buffer %llu: a %s fence from client %llu has not signalled after %u s; dropping it "
		    "(the kernel keeps its own copy until it signals)",
		    (unsigned long long)buf->id, write ? "write" : "read", (unsigned long long)supplier,
		    b->config.fence_timeout_sec);
	/* Later acquire fences no longer wait for it. */
	buf->resv.acc_stale = true;
	kept_fence_free(k);
	notify_holders(buf, false, supplier, write, c);
	apply_timeout_policy(c, "its fence did not signal in time");
	return 0;
}

/* Keeps fence (taken over) on buf, supplied by c; signalled ones are not kept. */
static void keep_fence(struct buffer *buf, int fence, bool write, struct client *c)
{
	struct broker *b = buf->broker;
	struct resv *rv = &buf->resv;
	struct kept_fence *k;
	int r, dup;

	if (fence_status(fence) != 0) {
		close(fence);
		return;
	}
	k = calloc(1, sizeof(*k));
	if (!k) {
		close(fence);
		return;
	}
	k->fd = fence;
	k->buf = buf;
	k->write = write;
	fd_budget_charge_always(b, 1); /* access_end() checked the budget */
	k->supplier = c->id;
	k->deadline_usec = now_usec() + (uint64_t)b->config.fence_timeout_sec * 1000000u;
	r = sd_event_add_io(b->event, &k->io, fence, EPOLLIN, on_fence_signalled, k);
	if (r >= 0)
		r = sd_event_source_set_io_fd_own(k->io, true);
	if (r >= 0)
		r = sd_event_add_time(b->event, &k->timer, CLOCK_MONOTONIC, k->deadline_usec, 10000,
				      on_fence_deadline, k);
	if (r < 0) {
		log_warning("buffer %llu: cannot watch a release fence: %s", (unsigned long long)buf->id,
			    strerror(-r));
		if (!k->io || sd_event_source_get_io_fd_own(k->io) <= 0)
			close(fence);
		sd_event_source_disable_unref(k->io);
		sd_event_source_disable_unref(k->timer);
		fd_budget_uncharge(b, 1);
		free(k);
		return;
	}
	k->next_in_buffer = rv->fences;
	if (rv->fences)
		rv->fences->prev_in_buffer = k;
	rv->fences = k;
	rv->n_fences++;
	if (c != &b->self) {
		k->client = c;
		k->next_in_client = c->fences;
		if (c->fences)
			c->fences->prev_in_client = k;
		c->fences = k;
		c->n_fences++;
	}
	/* Into the merged fds, unless they are rebuilt anyway. */
	if (!rv->acc_stale) {
		dup = fcntl(fence, F_DUPFD_CLOEXEC, 3);
		if (dup < 0 || acc_add(b, &rv->acc_all, dup) < 0)
			rv->acc_stale = true;
		if (write && !rv->acc_stale) {
			dup = fcntl(fence, F_DUPFD_CLOEXEC, 3);
			if (dup < 0 || acc_add(b, &rv->acc_write, dup) < 0)
				rv->acc_stale = true;
		}
	}
}

static void resv_clear(struct resv *rv)
{
	while (rv->fences)
		kept_fence_free(rv->fences);
}

/* Merges what is kept again (a fence was dropped at its deadline). */
static int resv_rebuild(struct broker *b, struct resv *rv)
{
	int r = 0, dup;

	rv->acc_write = acc_close(b, rv->acc_write);
	rv->acc_all = acc_close(b, rv->acc_all);
	for (struct kept_fence *k = rv->fences; r >= 0 && k; k = k->next_in_buffer) {
		dup = fcntl(k->fd, F_DUPFD_CLOEXEC, 3);
		r = dup < 0 ? -errno : acc_add(b, &rv->acc_all, dup);
		if (r >= 0 && k->write) {
			dup = fcntl(k->fd, F_DUPFD_CLOEXEC, 3);
			r = dup < 0 ? -errno : acc_add(b, &rv->acc_write, dup);
		}
	}
	rv->acc_stale = r < 0;
	return r;
}

void access_init_buffer(struct buffer *buf)
{
	buf->resv.acc_write = buf->resv.acc_all = -1;
}

unsigned access_pending_fences(const struct buffer *buf)
{
	return buf->resv.n_fences;
}

void access_forget_fences(struct client *c)
{
	while (c->fences) {
		struct kept_fence *k = c->fences;
		c->fences = k->next_in_client;
		k->client = NULL;
		k->next_in_client = k->prev_in_client = NULL;
	}
	c->n_fences = 0;
}

void access_prune_fences(struct client *c)
{
	for (struct kept_fence *k = c->fences, *next; k; k = next) {
		next = k->next_in_client;
		if (fence_status(k->fd) != 0)
			kept_fence_free(k);
	}
}

void access_free_buffer(struct buffer *buf)
{
	struct broker *b = buf->broker;

	/* Only the daemon's own grants and requests can outlive the holders. */
	for (struct grant *g = buf->resv.grants, *next; g; g = next) {
		next = g->next_in_buffer;
		grant_free(g);
	}
	for (struct request *r = b->pending, *next; r; r = next) {
		next = r->next;
		for (unsigned i = 0; i < r->n; i++)
			if (r->bufs[i] == buf) {
				request_unlink(b, r);
				break;
			}
	}
	resv_clear(&buf->resv);
}

/* The acquire fence for mode on buf, merged into *acc. */
static int acquire_fence(struct buffer *buf, uint32_t mode, int *acc)
{
	struct resv *rv = &buf->resv;
	int r = 0, fd, kept;

	if (rv->acc_stale)
		r = resv_rebuild(buf->broker, rv);
	kept = mode == DMABROKER_ACCESS_WRITE ? rv->acc_all : rv->acc_write;
	if (r >= 0 && kept >= 0) {
		fd = fcntl(kept, F_DUPFD_CLOEXEC, 3);
		r = fd < 0 ? -errno : fence_accumulate(acc, fd);
	}
	if (r >= 0 && buf->dmabuf) {
		/* What drivers ordered by implicit sync (and what we imported). */
		fd = dmabuf_export_fence(buf->fd, mode == DMABROKER_ACCESS_WRITE);
		if (fd >= 0) {
			if (fence_status(fd) == 1)
				close(fd);
			else
				r = fence_accumulate(acc, fd);
		}
	}
	return r;
}

/* ---- grants ---- */

static bool conflicts(uint32_t a, uint32_t b)
{
	return a == DMABROKER_ACCESS_WRITE || b == DMABROKER_ACCESS_WRITE;
}

static bool active_conflict(const struct buffer *buf, uint32_t mode)
{
	return buf->resv.writer || (mode == DMABROKER_ACCESS_WRITE && buf->resv.readers > 0);
}

static bool requests_conflict(const struct request *a, const struct buffer *const *bufs, const uint32_t *modes,
			      unsigned n)
{
	for (unsigned i = 0; i < a->n; i++)
		for (unsigned j = 0; j < n; j++)
			if (a->bufs[i] == bufs[j] && conflicts(a->modes[i], modes[j]))
				return true;
	return false;
}

/* Can these be granted now, with `before` the queued requests ahead? */
static bool grantable(struct broker *b, struct buffer *const *bufs, const uint32_t *modes, unsigned n,
		      const struct request *stop)
{
	for (unsigned i = 0; i < n; i++)
		if (active_conflict(bufs[i], modes[i]))
			return false;
	for (const struct request *q = b->pending; q && q != stop; q = q->next)
		if (requests_conflict(q, (const struct buffer *const *)bufs, modes, n))
			return false;
	return true;
}

static int on_lease_expired(sd_event_source *src, uint64_t usec, void *userdata);

static struct grant *grant_new(struct client *c, struct buffer *buf, uint32_t mode)
{
	struct broker *b = c->broker;
	struct grant *g = calloc(1, sizeof(*g));

	if (!g)
		return NULL;
	g->id = ++b->next_grant_id;
	g->buf = buf;
	g->client = c;
	g->mode = mode;
	if (c != &b->self && b->config.hold_timeout_sec &&
	    sd_event_add_time_relative(b->event, &g->lease, CLOCK_MONOTONIC,
				       (uint64_t)b->config.hold_timeout_sec * 1000000u, 10000, on_lease_expired, g) < 0) {
		free(g);
		return NULL;
	}
	if (hashmap_put(&b->grants, g->id, g) < 0) {
		sd_event_source_disable_unref(g->lease);
		free(g);
		return NULL;
	}
	g->next_in_buffer = buf->resv.grants;
	buf->resv.grants = g;
	g->next_in_client = c->grants;
	c->grants = g;
	c->n_grants++;
	if (mode == DMABROKER_ACCESS_WRITE)
		buf->resv.writer = true;
	else
		buf->resv.readers++;
	return g;
}

static void grant_free(struct grant *g)
{
	struct client *c = g->client;
	struct buffer *buf = g->buf;

	for (struct grant **p = &buf->resv.grants; *p; p = &(*p)->next_in_buffer)
		if (*p == g) {
			*p = g->next_in_buffer;
			break;
		}
	for (struct grant **p = &c->grants; *p; p = &(*p)->next_in_client)
		if (*p == g) {
			*p = g->next_in_client;
			break;
		}
	c->n_grants--;
	if (g->mode == DMABROKER_ACCESS_WRITE)
		buf->resv.writer = false;
	else
		buf->resv.readers--;
	hashmap_remove(&c->broker->grants, g->id);
	sd_event_source_disable_unref(g->lease);
	free(g);
}

/* Grants every item to c and answers through done. On failure nothing is granted. */
static int grant_and_reply(struct client *c, const struct completion *done, unsigned n, struct buffer **bufs,
			   const uint32_t *modes)
{
	struct grant *grants[DMABROKER_ACCESS_MAX_MULTI];
	int acc = -1, r = 0;
	unsigned made = 0;

	for (unsigned i = 0; r >= 0 && i < n; i++)
		r = acquire_fence(bufs[i], modes[i], &acc);
	for (; r >= 0 && made < n; made++) {
		grants[made] = grant_new(c, bufs[made], modes[made]);
		if (!grants[made])
			r = -ENOMEM;
	}
	if (r >= 0)
		r = done->ops && done->ops->granted ? done->ops->granted(done, grants, n, acc) : -ENOTCONN;
	safe_close(acc);
	if (r < 0) {
		/* The client never learns of them: take them back. */
		for (unsigned i = 0; i < made; i++)
			if (grants[i])
				grant_free(grants[i]);
		return r;
	}
	for (unsigned i = 0; i < n; i++)
		log_debug("client %llu: grant %llu, %s on buffer %llu", (unsigned long long)c->id,
			  (unsigned long long)grants[i]->id, mode_name(modes[i]), (unsigned long long)bufs[i]->id);
	return 1;
}

static void grant_internal(struct buffer *buf, uint32_t mode, access_internal_cb cb, void *userdata)
{
	struct client *self = &buf->broker->self;
	struct grant *g;
	int acc = -1;

	if (acquire_fence(buf, mode, &acc) < 0 || !(g = grant_new(self, buf, mode))) {
		safe_close(acc);
		cb(buf, NULL, -1, userdata);
		return;
	}
	cb(buf, g, acc, userdata);
}

/* ---- the queue ---- */

/* Answers a waiting request with an error, where it came from. */
static void request_fail(const struct request *r, int code, const char *message)
{
	struct error e = ERROR_NULL;

	completion_fail(&r->done, error_set(&e, code, message), &e);
}

static void request_unlink(struct broker *b, struct request *r)
{
	for (struct request **p = &b->pending; *p; p = &(*p)->next)
		if (*p == r) {
			*p = r->next;
			break;
		}
	for (unsigned i = 0; i < r->n; i++)
		r->bufs[i]->resv.waiters--;
	r->client->n_pending--;
	r->client->n_pending_grants -= r->n;
	completion_drop(&r->done);
	free(r);
}

/* Grants what can be granted, in order. */
static void process_queue(struct broker *b)
{
	struct request *r = b->pending;

	while (r) {
		struct request *next = r->next;
		if (grantable(b, r->bufs, r->modes, r->n, r)) {
			struct request copy = *r;
			completion_keep(&copy.done);
			request_unlink(b, r);
			if (copy.internal)
				grant_internal(copy.bufs[0], copy.modes[0], copy.internal, copy.userdata);
			else if (grant_and_reply(copy.client, &copy.done, copy.n, copy.bufs, copy.modes) < 0)
				request_fail(&copy, DMABROKER_E_ALLOCATION_FAILED, "cannot grant access: out of memory or "
					     "cannot answer");
			completion_drop(&copy.done);
			next = b->pending; /* the queue changed: rescan from the start */
		}
		r = next;
	}
}

/* Clients that c's would-be request waits for; true if following them leads back to c. */
static bool waits_for(struct broker *b, const struct client *start, struct buffer **bufs, const uint32_t *modes,
		      unsigned n, const struct request *stop, uint64_t *seen, unsigned *n_seen, unsigned depth);

static bool blocker_reaches(struct broker *b, const struct client *start, const struct client *blocker,
			    uint64_t *seen, unsigned *n_seen, unsigned depth)
{
	if (blocker == start)
		return true;
	for (unsigned i = 0; i < *n_seen; i++)
		if (seen[i] == blocker->id)
			return false;
	if (*n_seen < 512)
		seen[(*n_seen)++] = blocker->id;
	if (depth > 64)
		return false;
	for (const struct request *q = b->pending; q; q = q->next)
		if (q->client == blocker &&
		    waits_for(b, start, (struct buffer **)q->bufs, q->modes, q->n, q, seen, n_seen, depth + 1))
			return true;
	return false;
}

static bool waits_for(struct broker *b, const struct client *start, struct buffer **bufs, const uint32_t *modes,
		      unsigned n, const struct request *stop, uint64_t *seen, unsigned *n_seen, unsigned depth)
{
	for (unsigned i = 0; i < n; i++)
		for (const struct grant *g = bufs[i]->resv.grants; g; g = g->next_in_buffer)
			if (conflicts(g->mode, modes[i]) &&
			    blocker_reaches(b, start, g->client, seen, n_seen, depth))
				return true;
	for (const struct request *q = b->pending; q && q != stop; q = q->next)
		if (requests_conflict(q, (const struct buffer *const *)bufs, modes, n) &&
		    blocker_reaches(b, start, q->client, seen, n_seen, depth))
			return true;
	return false;
}

int access_begin(struct client *c, const struct completion *done, unsigned n, struct buffer **bufs,
		 const uint32_t *modes, uint32_t flags, struct error *error)
{
	struct broker *b = c->broker;
	struct request *req;
	uint64_t seen[512];
	unsigned n_seen = 0;
	int r;

	/* a stream's buffers cycle with its frames, not with grants of their own */
	for (unsigned i = 0; i < n && i < DMABROKER_ACCESS_MAX_MULTI; i++) {
		r = stream_check_direct_use(bufs[i], error);
		if (r < 0)
			return r;
	}
	if (flags & ~DMABROKER_ACCESS_NONBLOCK)
		return error_setf(error, DMABROKER_E_INVALID_ARGUMENT, "unknown access flags 0x%x (known: 1 = nonblock)",
					 flags & ~DMABROKER_ACCESS_NONBLOCK);
	if (n == 0 || n > DMABROKER_ACCESS_MAX_MULTI)
		return error_setf(error, DMABROKER_E_INVALID_ARGUMENT, "%u buffers; 1 to %d at once", n, DMABROKER_ACCESS_MAX_MULTI);
	for (unsigned i = 0; i < n; i++) {
		if (modes[i] != DMABROKER_ACCESS_READ && modes[i] != DMABROKER_ACCESS_WRITE)
			return error_setf(error, DMABROKER_E_INVALID_ARGUMENT, "mode %u: 1 = read, 2 = write", modes[i]);
		for (unsigned j = 0; j < i; j++)
			if (bufs[j] == bufs[i])
				return error_setf(error, DMABROKER_E_INVALID_ARGUMENT, "buffer %llu named twice",
							 (unsigned long long)bufs[i]->id);
		/* Waiting on itself would never end. */
		for (const struct grant *g = bufs[i]->resv.grants; g; g = g->next_in_buffer)
			if (g->client == c && conflicts(g->mode, modes[i]))
				return error_setf(error, DMABROKER_E_WOULD_DEADLOCK,
							 "this client holds %s grant %llu on buffer %llu; end it first",
							 mode_name(g->mode), (unsigned long long)g->id,
							 (unsigned long long)bufs[i]->id);
	}
	r = quota_check(c, Q_GRANTS, n, error);
	if (r < 0)
		return r;
	if (grantable(b, bufs, modes, n, NULL)) {
		r = grant_and_reply(c, done, n, bufs, modes);
		return r < 0 ? error_set_errnof(error, r, "cannot grant access: %s", strerror(-r)) : r;
	}
	if (flags & DMABROKER_ACCESS_NONBLOCK)
		return error_setf(error, DMABROKER_E_BUSY, "buffer %llu is busy: %s",
					 (unsigned long long)bufs[0]->id,
					 bufs[0]->resv.writer ? "a writer holds it" :
					 bufs[0]->resv.readers ? "readers hold it" : "others wait before you");
	r = quota_check(c, Q_PENDING, 1, error);
	if (r < 0)
		return r;
	if (waits_for(b, c, bufs, modes, n, NULL, seen, &n_seen, 0))
		return error_setf(error, DMABROKER_E_WOULD_DEADLOCK,
					 "waiting would deadlock: a client this request waits for waits for this "
					 "client; end your grants and retry, or ask for all buffers in one call");
	req = calloc(1, sizeof(*req));
	if (!req)
		return -ENOMEM;
	req->client = c;
	req->done = *done;
	completion_keep(&req->done);
	req->n = n;
	memcpy(req->bufs, bufs, n * sizeof(*bufs));
	memcpy(req->modes, modes, n * sizeof(*modes));
	enqueue(b, req);
	log_debug("client %llu waits for %s on buffer %llu%s", (unsigned long long)c->id, mode_name(modes[0]),
		  (unsigned long long)bufs[0]->id, n > 1 ? " and others" : "");
	return 1;
}

static void enqueue(struct broker *b, struct request *req)
{
	struct request **tail = &b->pending;

	while (*tail)
		tail = &(*tail)->next;
	*tail = req;
	for (unsigned i = 0; i < req->n; i++)
		req->bufs[i]->resv.waiters++;
	req->client->n_pending++;
	req->client->n_pending_grants += req->n; /* charged now: they count against max-grants while they wait */
}

int access_begin_internal(struct buffer *buf, uint32_t mode, access_internal_cb cb, void *userdata)
{
	struct broker *b = buf->broker;
	struct request *req;

	if (grantable(b, &buf, &mode, 1, NULL)) {
		grant_internal(buf, mode, cb, userdata);
		return 0;
	}
	req = calloc(1, sizeof(*req));
	if (!req)
		return -ENOMEM;
	req->client = &b->self;
	req->internal = cb;
	req->userdata = userdata;
	req->n = 1;
	req->bufs[0] = buf;
	req->modes[0] = mode;
	enqueue(b, req);
	return 0;
}

/* Ends grant g with release fence (borrowed; -1 = done). */
static void grant_end(struct grant *g, int release_fd)
{
	struct buffer *buf = g->buf;
	bool write = g->mode == DMABROKER_ACCESS_WRITE;
	int own = -1;

	if (release_fd >= 0) {
		own = fcntl(release_fd, F_DUPFD_CLOEXEC, 3);
		if (own >= 0 && buf->dmabuf && dmabuf_import_fence(buf->fd, own, write) < 0)
			log_debug("buffer %llu: IMPORT_SYNC_FILE: %s", (unsigned long long)buf->id, strerror(errno));
	}
	/* The writer waited for everything kept: its fence supersedes it all. */
	if (write)
		resv_clear(&buf->resv);
	if (own >= 0)
		keep_fence(buf, own, write, g->client);
	grant_free(g);
}

/* A grant held past [fences] hold-timeout: reported like a late fence, then the policy. */
static int on_lease_expired(sd_event_source *src, uint64_t usec, void *userdata)
{
	struct grant *g = userdata;
	struct buffer *buf = g->buf;
	struct client *c = g->client;
	struct broker *b = c->broker;
	bool write = g->mode == DMABROKER_ACCESS_WRITE;

	buf->resv.grant_timeouts++;
	b->grant_timeouts++;
	c->grant_timeouts++;
	log_warning("buffer %llu: client %llu (pid %d, %s) has held a %s grant for %u s (hold-timeout)",
		    (unsigned long long)buf->id, (unsigned long long)c->id, (int)c->pid, c->comm, mode_name(g->mode),
		    b->config.hold_timeout_sec);
	notify_holders(buf, true, c->id, write, c);
	if (b->config.fence_timeout_policy == FENCE_POLICY_DROP_CLIENT) {
		apply_timeout_policy(c, "it held a grant past hold-timeout");
		return 0;
	}
	/* report: the lease ends, as if the holder had ended it with no fence. */
	grant_end(g, -1);
	process_queue(b);
	return 0;
}

void access_end_internal(struct grant *g)
{
	struct broker *b = g->client->broker;

	grant_end(g, -1);
	process_queue(b);
}

int access_end(struct client *c, uint64_t grant_id, int release_fd, struct error *error)
{
	struct broker *b = c->broker;
	struct grant *g = hashmap_get(&b->grants, grant_id);

	if (!g || g->client != c)
		return error_setf(error, DMABROKER_E_UNKNOWN_GRANT, "this client has no grant %llu",
					 (unsigned long long)grant_id);
	if (release_fd >= 0 && !fence_is_sync_file(release_fd))
		return error_setf(error, DMABROKER_E_INVALID_ARGUMENT, "the release fence is not a sync_file");
	/* a pending fence is kept: count it against the client's fences */
	if (release_fd >= 0 && fence_status(release_fd) == 0) {
		struct error probe = ERROR_NULL;
		int r = quota_check(c, Q_FENCES, 1, &probe);
		if (r < 0) {
			/* Some may have signalled without the loop having seen it yet. */
			probe = ERROR_NULL;
			access_prune_fences(c);
			r = quota_check(c, Q_FENCES, 1, error);
		}
		if (r >= 0)
			r = fd_budget_check(b, 1, error);
		if (r < 0)
			return r;
	}
	grant_end(g, release_fd);
	process_queue(b);
	return 0;
}

void access_release_buffer(struct buffer *buf, struct client *c)
{
	struct broker *b = c->broker;
	bool changed = false;

	for (struct grant *g = buf->resv.grants, *next; g; g = next) {
		next = g->next_in_buffer;
		if (g->client == c) {
			grant_end(g, -1);
			changed = true;
		}
	}
	for (struct request *r = b->pending, *next; r; r = next) {
		next = r->next;
		for (unsigned i = 0; i < r->n; i++)
			if (r->client == c && r->bufs[i] == buf) {
				char msg[96];
				snprintf(msg, sizeof(msg), "buffer %llu was released while this request waited",
					 (unsigned long long)buf->id);
				request_fail(r, DMABROKER_E_UNKNOWN_BUFFER, msg);
				request_unlink(b, r);
				changed = true;
				break;
			}
	}
	if (changed)
		process_queue(b);
}

void access_drop_requests(struct client *c, const struct completion_ops *ops)
{
	struct broker *b = c->broker;
	bool changed = false;

	for (struct request *r = b->pending, *next; r; r = next) {
		next = r->next;
		if (r->client == c && r->done.ops == ops && !r->internal) {
			request_unlink(b, r);
			changed = true;
		}
	}
	if (changed)
		process_queue(b);
}

void access_drop_client(struct client *c)
{
	struct broker *b = c->broker;
	bool changed = c->grants || c->n_pending;

	while (c->grants)
		grant_end(c->grants, -1);
	for (struct request *r = b->pending, *next; r; r = next) {
		next = r->next;
		if (r->client == c)
			request_unlink(b, r);
	}
	if (changed)
		process_queue(b);
}

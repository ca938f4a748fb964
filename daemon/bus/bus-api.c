/* SPDX-License-Identifier: MIT */
/*
 * The org.dmabroker.Broker1 interface: decodes each call, checks it, and
 * turns it into an operation on clients and buffers. The same vtable serves
 * the bus and every direct connection. protocol/org.dmabroker.Broker1.xml is
 * the source of truth for what is here (tests/host/introspection-test.py).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <drm_fourcc.h>
#include <linux/dma-buf.h>

#include "broker.h"
#include "bus.h"
#include "buildconf.h"
#include "cleanup.h"
#include "config.h"
#include "error.h"
#include "log.h"
#include "fdstore.h"
#include "migrate.h"
#include "printable.h"
#include "quota.h"
#include "stream.h"
#include "dmabroker-protocol.h"

#define DMA_BUF_FS_MAGIC 0x444d4142 /* "DMAB", include/uapi/linux/magic.h */
#define MAX_MODIFIERS 64

static int caller(struct endpoint *e, sd_bus_message *m, struct client **ret, struct error *error)
{
	struct client *c;

	if (e->client) {
		*ret = e->client;
		return 0;
	}
	c = client_find_by_name(e->broker, sd_bus_message_get_sender(m));
	if (c) {
		*ret = c;
		return 0;
	}
	/* creds.c holds a new peer's calls until its client exists: not reached */
	error_setf(error, DMABROKER_E_NOT_PERMITTED, "the bus has not yet said who the caller is");
	return -EPERM;
}

/* The buffer `id`, which the caller must hold. */
static int held_buffer(struct endpoint *e, sd_bus_message *m, uint64_t id, struct client **ret_client,
		       struct buffer **ret_buffer, struct hold **ret_hold, struct error *error)
{
	int r = caller(e, m, ret_client, error);

	if (r < 0)
		return r;
	return client_held_buffer(*ret_client, id, ret_buffer, ret_hold, error);
}

/*
 * The D-Bus rules for an error name (those of an interface name): sd-bus
 * sends any name, and the receiver drops a reply with a malformed one.
 */
static bool error_name_valid(const char *name)
{
	size_t len = strlen(name);
	unsigned dots = 0;
	bool start = true;

	if (len == 0 || len > 255)
		return false;
	for (const char *p = name; *p; p++) {
		if (*p == '.') {
			if (start)
				return false;
			dots++;
			start = true;
		} else if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || *p == '_' ||
			   (!start && *p >= '0' && *p <= '9')) {
			start = false;
		} else {
			return false;
		}
	}
	return dots > 0 && !start;
}

void bus_error_from(sd_bus_error *out, int r, const struct error *e)
{
	if (error_is_set(e) && error_name(e))
		sd_bus_error_set(out, error_name(e), e->message);
	else if (error_is_set(e))
		sd_bus_error_set_errnof(out, -e->errnum, "%s", e->message);
	else
		sd_bus_error_set_errno(out, r < 0 ? r : -EIO);
}

int broker_reply_error(sd_bus_message *call, int r, const struct error *e)
{
	_cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;

	bus_error_from(&error, r, e);
	return broker_reply_sd_bus_error(call, &error);
}

int broker_reply_sd_bus_error(sd_bus_message *call, const sd_bus_error *error)
{
	char text[1024];
	int q;

	if (!error_name_valid(error->name))
		q = -EINVAL;
	else
		q = sd_bus_reply_method_error(call, &SD_BUS_ERROR_MAKE_CONST(
						      error->name, printable(error->message, text, sizeof(text))));
	if (q >= 0 || q == -ENOTCONN || q == -ECONNRESET || q == -EPIPE)
		return 1; /* answered, or nobody left to answer */
	log_warning("cannot send the error of %s (%s): %s; sending %s", sd_bus_message_get_member(call),
		    PRINTABLE(error->name), strerror(-q), SD_BUS_ERROR_FAILED);
	q = sd_bus_reply_method_errorf(call, SD_BUS_ERROR_FAILED, "%s failed; the daemon could not send why",
				       sd_bus_message_get_member(call));
	if (q < 0)
		log_error("cannot answer %s at all: %s", sd_bus_message_get_member(call), strerror(-q));
	return 1;
}

/* ---- answers the core gives later: completions over D-Bus ---- */

static void call_keep(struct completion *c)
{
	sd_bus_message_ref(c->call);
}

static void call_drop(struct completion *c)
{
	c->call = sd_bus_message_unref(c->call);
}

static void call_fail(const struct completion *c, int r, const struct error *e)
{
	broker_reply_error(c->call, r, e);
}

/* BeginAccess: (t grant, ah fence); BeginAccessMulti: (at grants, ah fence). */
static int send_granted(const struct completion *c, struct grant *const *grants, unsigned n, int fence, bool multi)
{
	sd_bus_message *reply = NULL;
	int r = sd_bus_message_new_method_return(c->call, &reply);

	if (r >= 0 && multi) {
		r = sd_bus_message_open_container(reply, 'a', "t");
		for (unsigned i = 0; r >= 0 && i < n; i++)
			r = sd_bus_message_append(reply, "t", grants[i]->id);
		if (r >= 0)
			r = sd_bus_message_close_container(reply);
	} else if (r >= 0) {
		r = sd_bus_message_append(reply, "t", grants[0]->id);
	}
	if (r >= 0)
		r = fence >= 0 ? sd_bus_message_append(reply, "ah", 1, fence) : sd_bus_message_append(reply, "ah", 0);
	if (r >= 0)
		r = sd_bus_send(NULL, reply, NULL);
	sd_bus_message_unref(reply);
	return r < 0 ? r : 0;
}

static int granted_one(const struct completion *c, struct grant *const *grants, unsigned n, int fence)
{
	return send_granted(c, grants, n, fence, false);
}

static int granted_multi(const struct completion *c, struct grant *const *grants, unsigned n, int fence)
{
	return send_granted(c, grants, n, fence, true);
}

static const struct completion_ops begin_ops = {
	.keep = call_keep, .drop = call_drop, .fail = call_fail, .granted = granted_one,
};
static const struct completion_ops begin_multi_ops = {
	.keep = call_keep, .drop = call_drop, .fail = call_fail, .granted = granted_multi,
};
static int attached(const struct completion *c, uint32_t attachment, int fd)
{
	return sd_bus_reply_method_return(c->call, "uh", attachment, fd);
}

static const struct completion_ops attach_ops = {
	.keep = call_keep, .drop = call_drop, .fail = call_fail, .attached = attached,
};
/* A call answered by a function of its own when the work ends (Allocate). */
static const struct completion_ops call_ops = { .keep = call_keep, .drop = call_drop, .fail = call_fail };

/* The completion of call m of client c, answered through ops (the core keeps it if it must). */
#define CALL_COMPLETION(ops_, m, c) (&(struct completion){ .ops = (ops_), .call = (m), .client = (c) })

/* Sends a reply built by hand (the handler then returns 1: replied). */
static int send_reply(sd_bus_message *reply, int r)
{
	if (r >= 0)
		r = sd_bus_send(NULL, reply, NULL);
	sd_bus_message_unref(reply);
	return r < 0 ? r : 1;
}

/* Closes the array a List* reply is built in, and sends it. */
static int send_list_reply(sd_bus_message *reply, int r)
{
	if (r >= 0)
		r = sd_bus_message_close_container(reply);
	return send_reply(reply, r);
}

int bus_append_planes(sd_bus_message *reply, const struct layout *l)
{
	int r = sd_bus_message_open_container(reply, 'a', "(tu)");
	for (unsigned i = 0; r >= 0 && i < l->n_planes; i++)
		r = sd_bus_message_append(reply, "(tu)", l->plane[i].offset, l->plane[i].stride);
	return r < 0 ? r : sd_bus_message_close_container(reply);
}

static int read_options(sd_bus_message *m, const char **backend, const char **device, bool *fresh,
			struct error *error)
{
	int r = sd_bus_message_enter_container(m, 'a', "{sv}");
	if (r < 0)
		return r;
	while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
		const char *key;
		const char **slot;
		r = sd_bus_message_read(m, "s", &key);
		if (r < 0)
			return r;
		if (strcmp(key, "fresh") == 0) {
			int v;
			r = sd_bus_message_read(m, "v", "b", &v);
			if (r < 0)
				return error_setf(error, DMABROKER_E_INVALID_ARGUMENT, "option 'fresh' must be a boolean");
			*fresh = v;
			r = sd_bus_message_exit_container(m);
			if (r < 0)
				return r;
			continue;
		}
		if (strcmp(key, "backend") == 0)
			slot = backend;
		else if (strcmp(key, "device") == 0)
			slot = device;
		else
			return error_setf(error, DMABROKER_E_INVALID_ARGUMENT,
						 "unknown option '%s' (known: backend, device, fresh)", PRINTABLE(key));
		r = sd_bus_message_read(m, "v", "s", slot);
		if (r < 0)
			return error_setf(error, DMABROKER_E_INVALID_ARGUMENT, "option '%s' must be a string", key);
		r = sd_bus_message_exit_container(m);
		if (r < 0)
			return r;
	}
	if (r < 0)
		return r;
	return sd_bus_message_exit_container(m);
}

/* Drops the backends c may not allocate from ([access]); none left: NotPermitted. */
int filter_allowed(const struct client *c, struct backend **candidates, unsigned *n, struct error *error)
{
	struct backend *first = *n ? candidates[0] : NULL;
	unsigned kept = 0;

	for (unsigned i = 0; i < *n; i++)
		if (access_rules_allow(c, candidates[i]))
			candidates[kept++] = candidates[i];
	*n = kept;
	if (kept == 0 && first)
		return access_rules_refuse(c, first, error);
	return 0;
}

int broker_allocate(struct client *c, const struct alloc_args *a, allocation_done_fn done_fn,
		    const struct completion *to, struct error *error)
{
	struct broker *b = c->broker;
	const struct format_info *f;
	struct backend *candidates[16];
	struct alloc_request req;
	bool linear_ok;
	char why[256];
	unsigned n;
	int r = buffer_check_dimensions(b, a->width, a->height, error);

	if (r >= 0)
		r = buffer_check_format(a->fourcc, &f, error);
	if (r >= 0)
		r = buffer_check_usage(a->usage, error);
	if (r < 0)
		return r;
	if (a->n_mods > MAX_MODIFIERS)
		return error_setf(error, DMABROKER_E_INVALID_ARGUMENT, "%zu modifiers; at most %d", a->n_mods,
					 MAX_MODIFIERS);
	linear_ok = a->n_mods == 0;
	for (size_t i = 0; i < a->n_mods; i++)
		linear_ok |= a->mods[i] == DRM_FORMAT_MOD_LINEAR || a->mods[i] == DRM_FORMAT_MOD_INVALID;
	if (!linear_ok)
		return error_setf(error, DMABROKER_E_UNSUPPORTED_MODIFIER,
					 "none of the %zu modifiers (first 0x%llx) can be allocated: dmabroker "
					 "allocates linear buffers (DRM_FORMAT_MOD_LINEAR)",
					 a->n_mods, (unsigned long long)a->mods[0]);

	n = backends_choose(&b->backends, a->usage, a->backend, a->device, candidates, ELEMENTSOF(candidates), why,
			    sizeof(why));
	if (n == 0)
		return error_setf(error, DMABROKER_E_NO_BACKEND, "%s", why);
	r = filter_allowed(c, candidates, &n, error);
	if (r < 0)
		return r;

	req = (struct alloc_request){ .format = f, .width = a->width, .height = a->height, .usage = a->usage,
				      .max_size = b->config.max_buffer_size, .max_dimension = b->config.max_dimension,
				      .fresh = a->fresh };
	return allocation_start(c, &req, candidates, n, done_fn, to, error);
}

/* A client's new buffer: kept across a restart (a stream's are not). */
void broker_allocated(struct client *c, struct buffer *buf)
{
	fdstore_add(buf);
	log_debug("client %llu allocated buffer %llu: %ux%u, %llu bytes on %s", (unsigned long long)c->id,
		  (unsigned long long)buf->id, buf->width, buf->height, (unsigned long long)buf->size,
		  buf->backend->name);
}

/* The end of an Allocate call: its reply. */
static void allocate_done(struct client *c, struct buffer *buf, int r, const struct error *error,
			  const struct completion *to)
{
	sd_bus_message *reply = NULL, *m = to->call;

	if (r < 0) {
		broker_reply_error(m, r, error); /* a deferred reply: answered like every other */
		return;
	}
	broker_allocated(c, buf);
	r = sd_bus_message_new_method_return(m, &reply);
	if (r >= 0)
		r = sd_bus_message_append(reply, "thtt", buf->id, buf->fd, buf->size, buf->modifier);
	if (r >= 0)
		r = bus_append_planes(reply, &buf->layout);
	if (r >= 0)
		r = sd_bus_message_append(reply, "sb", buf->backend->name, buf->dmabuf);
	r = send_reply(reply, r);
	if (r < 0) /* the client never learns of it: do not keep it */
		buffer_release(buffer_held_by(buf, c));
}

static int method_allocate(sd_bus_message *m, void *userdata, struct error *error)
{
	struct endpoint *e = userdata;
	struct alloc_args a = { 0 };
	const uint64_t *mods;
	size_t mods_size;
	struct client *c;
	int r;

	r = sd_bus_message_read(m, "uuu", &a.width, &a.height, &a.fourcc);
	if (r >= 0)
		r = sd_bus_message_read_array(m, 't', (const void **)&mods, &mods_size);
	if (r >= 0)
		r = sd_bus_message_read(m, "u", &a.usage);
	if (r >= 0)
		r = read_options(m, &a.backend, &a.device, &a.fresh, error);
	if (r < 0)
		return r;
	a.mods = mods;
	a.n_mods = mods_size / sizeof(uint64_t);
	r = caller(e, m, &c, error);
	if (r >= 0)
		r = broker_allocate(c, &a, allocate_done, CALL_COMPLETION(&call_ops, m, c), error);
	return r < 0 ? r : 1; /* answered when the allocation ends */
}

static const char *fd_kind(int fd)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return "an unusable fd";
	if (S_ISFIFO(st.st_mode))
		return "a pipe";
	if (S_ISREG(st.st_mode))
		return "a regular file";
	if (S_ISSOCK(st.st_mode))
		return "a socket";
	if (S_ISCHR(st.st_mode))
		return "a character device";
	if (S_ISDIR(st.st_mode))
		return "a directory";
	return "not a dma-buf";
}

static int method_import(sd_bus_message *m, void *userdata, struct error *error)
{
	struct endpoint *e = userdata;
	struct broker *b = e->broker;
	const struct format_info *f;
	uint32_t width, height, fourcc, usage;
	uint64_t modifier, offset;
	uint32_t stride;
	struct layout l = { 0 };
	struct statfs sfs;
	struct buffer *buf;
	struct client *c;
	off_t size;
	int fd, r, own;

	r = sd_bus_message_read(m, "huuut", &fd, &width, &height, &fourcc, &modifier);
	if (r < 0)
		return r;
	r = sd_bus_message_enter_container(m, 'a', "(tu)");
	if (r < 0)
		return r;
	while ((r = sd_bus_message_read(m, "(tu)", &offset, &stride)) > 0) {
		if (l.n_planes == FORMAT_MAX_PLANES)
			return error_setf(error, DMABROKER_E_INVALID_ARGUMENT, "more than %d planes", FORMAT_MAX_PLANES);
		l.plane[l.n_planes].offset = offset;
		l.plane[l.n_planes++].stride = stride;
	}
	if (r < 0)
		return r;
	r = sd_bus_message_exit_container(m);
	if (r >= 0)
		r = sd_bus_message_read(m, "u", &usage);
	if (r < 0)
		return r;
	r = caller(e, m, &c, error);
	if (r < 0)
		return r;
	if (fstatfs(fd, &sfs) < 0 || sfs.f_type != DMA_BUF_FS_MAGIC)
		return error_setf(error, DMABROKER_E_NOT_A_DMABUF, "the fd is %s, not a dma-buf", fd_kind(fd));
	r = buffer_check_dimensions(b, width, height, error);
	if (r >= 0)
		r = buffer_check_format(fourcc, &f, error);
	if (r >= 0)
		r = buffer_check_usage(usage, error);
	if (r < 0)
		return r;
	if (modifier != DRM_FORMAT_MOD_LINEAR)
		return error_setf(error, DMABROKER_E_UNSUPPORTED_MODIFIER,
					 "modifier 0x%llx: dmabroker checks and imports linear buffers only",
					 (unsigned long long)modifier);
	if (l.n_planes != f->n_planes)
		return error_setf(error, DMABROKER_E_INVALID_ARGUMENT, "%s has %u planes; %u were described",
					 f->name, f->n_planes, l.n_planes);
	size = lseek(fd, 0, SEEK_END);
	if (size <= 0)
		return error_setf(error, DMABROKER_E_NOT_A_DMABUF, "cannot tell the dma-buf's size");
	r = layout_validate(f, width, height, &l, (uint64_t)size);
	if (r == -EINVAL)
		return error_setf(error, DMABROKER_E_INVALID_ARGUMENT,
					 "a stride is smaller than a row of %u %s pixels", width, f->name);
	if (r < 0)
		return error_setf(error, DMABROKER_E_PLANES_DO_NOT_FIT,
					 "the planes described for %ux%u %s do not fit in the dma-buf's %lld bytes",
					 width, height, f->name, (long long)size);
	r = fd_budget_charge(b, 1, error); /* buffer_register() takes the charge over */
	if (r < 0)
		return r;
	own = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (own < 0) {
		r = -errno;
		fd_budget_uncharge(b, 1);
		return r;
	}
	r = buffer_register(b, c, own, &buf, error);
	if (r < 0)
		return r;
	buf->imported = true;
	buf->dmabuf = true;
	l.size = buf->size;
	buffer_describe(buf, width, height, fourcc, modifier, usage, &l);
	fdstore_add(buf);
	return sd_bus_reply_method_return(m, "tt", buf->id, buf->size);
}

static int method_release(sd_bus_message *m, void *userdata, struct error *error)
{
	struct client *c;
	uint64_t id;
	int r = sd_bus_message_read(m, "t", &id);

	if (r >= 0)
		r = caller(userdata, m, &c, error);
	if (r >= 0)
		r = client_release_buffer(c, id, error);
	if (r < 0)
		return r;
	return sd_bus_reply_method_return(m, "");
}

static int method_create_token(sd_bus_message *m, void *userdata, struct error *error)
{
	struct client *c;
	struct buffer *buf;
	const char *value;
	uint64_t id;
	uint32_t flags, ttl;
	int r = sd_bus_message_read(m, "tuu", &id, &flags, &ttl);

	if (r >= 0)
		r = held_buffer(userdata, m, id, &c, &buf, NULL, error);
	if (r >= 0)
		r = token_create(buf, c, flags, ttl, &value, error);
	if (r < 0)
		return r;
	return sd_bus_reply_method_return(m, "s", value);
}

static int method_revoke_token(sd_bus_message *m, void *userdata, struct error *error)
{
	struct endpoint *e = userdata;
	struct client *c;
	const char *value;
	int r = sd_bus_message_read(m, "s", &value);

	if (r >= 0)
		r = caller(e, m, &c, error);
	if (r >= 0)
		r = token_revoke(e->broker, c, value, error);
	if (r < 0)
		return r;
	return sd_bus_reply_method_return(m, "");
}

static int method_open_token(sd_bus_message *m, void *userdata, struct error *error)
{
	struct endpoint *e = userdata;
	sd_bus_message *reply = NULL;
	struct token *t;
	struct buffer *buf;
	struct client *c;
	const char *value;
	int r = sd_bus_message_read(m, "s", &value);

	if (r >= 0)
		r = caller(e, m, &c, error);
	if (r >= 0)
		r = token_redeem(e->broker, value, &t, error);
	if (r < 0)
		return r;
	buf = t->buffer;
	r = buffer_hold(buf, c, error);
	if (r < 0)
		return r;
	token_consumed(t);
	r = sd_bus_message_new_method_return(m, &reply);
	if (r >= 0)
		r = sd_bus_message_append(reply, "thuuutt", buf->id, buf->fd, buf->width, buf->height, buf->fourcc,
					  buf->modifier, buf->size);
	if (r >= 0)
		r = bus_append_planes(reply, &buf->layout);
	if (r >= 0)
		r = sd_bus_message_append(reply, "ub", buf->usage, buf->dmabuf);
	return send_reply(reply, r);
}

static int method_attach(sd_bus_message *m, void *userdata, struct error *error)
{
	struct client *c;
	const char *device;
	uint64_t id;
	uint32_t usage, flags, aid;
	int fd, r = sd_bus_message_read(m, "tusu", &id, &usage, &device, &flags);

	if (r >= 0)
		r = caller(userdata, m, &c, error);
	if (r >= 0)
		r = broker_attach(c, id, usage, device, flags, CALL_COMPLETION(&attach_ops, m, c), &aid, &fd, error);
	if (r != 0)
		return r < 0 ? r : 1; /* an error, or a move that answers later */
	return sd_bus_reply_method_return(m, "uh", aid, fd);
}

static int method_detach(sd_bus_message *m, void *userdata, struct error *error)
{
	struct client *c;
	struct buffer *buf;
	uint64_t id;
	uint32_t aid;
	int r = sd_bus_message_read(m, "tu", &id, &aid);

	if (r >= 0)
		r = held_buffer(userdata, m, id, &c, &buf, NULL, error);
	if (r >= 0)
		r = buffer_detach(buf, c, aid, error);
	if (r < 0)
		return r;
	return sd_bus_reply_method_return(m, "");
}

/* Reads an "ah" holding zero or one fd: the fd (borrowed from m) or -1. */
static int read_optional_fd(sd_bus_message *m, int *ret, struct error *error)
{
	int r = sd_bus_message_enter_container(m, 'a', "h"), fd = -1, extra;

	if (r < 0)
		return r;
	r = sd_bus_message_read(m, "h", &fd);
	if (r > 0 && sd_bus_message_read(m, "h", &extra) > 0)
		return error_set(error, DMABROKER_E_INVALID_ARGUMENT, "at most one fence");
	if (r < 0)
		return r;
	*ret = r > 0 ? fd : -1;
	return sd_bus_message_exit_container(m);
}

static int method_begin_access(sd_bus_message *m, void *userdata, struct error *error)
{
	struct client *c;
	struct buffer *buf;
	uint64_t id;
	uint32_t mode, flags;
	int r = sd_bus_message_read(m, "tuu", &id, &mode, &flags);

	if (r >= 0)
		r = held_buffer(userdata, m, id, &c, &buf, NULL, error);
	if (r < 0)
		return r;
	return access_begin(c, CALL_COMPLETION(&begin_ops, m, c), 1, &buf, &mode, flags, error);
}

static int method_begin_access_multi(sd_bus_message *m, void *userdata, struct error *error)
{
	struct endpoint *e = userdata;
	struct buffer *bufs[DMABROKER_ACCESS_MAX_MULTI];
	uint32_t modes[DMABROKER_ACCESS_MAX_MULTI], flags;
	unsigned n = 0;
	struct client *c;
	uint64_t id;
	uint32_t mode;
	int r = sd_bus_message_enter_container(m, 'a', "(tu)");

	if (r < 0)
		return r;
	while ((r = sd_bus_message_read(m, "(tu)", &id, &mode)) > 0) {
		if (n == DMABROKER_ACCESS_MAX_MULTI)
			return error_setf(error, DMABROKER_E_INVALID_ARGUMENT, "more than %d buffers at once",
						 DMABROKER_ACCESS_MAX_MULTI);
		r = held_buffer(e, m, id, &c, &bufs[n], NULL, error);
		if (r < 0)
			return r;
		modes[n++] = mode;
	}
	if (r >= 0)
		r = sd_bus_message_exit_container(m);
	if (r >= 0)
		r = sd_bus_message_read(m, "u", &flags);
	if (r >= 0)
		r = caller(e, m, &c, error);
	if (r < 0)
		return r;
	return access_begin(c, CALL_COMPLETION(&begin_multi_ops, m, c), n, bufs, modes, flags, error);
}

static int method_end_access(sd_bus_message *m, void *userdata, struct error *error)
{
	struct endpoint *e = userdata;
	struct client *c;
	uint64_t grant;
	int fence = -1, r = sd_bus_message_read(m, "t", &grant);

	if (r >= 0)
		r = read_optional_fd(m, &fence, error);
	if (r >= 0)
		r = caller(e, m, &c, error);
	if (r >= 0)
		r = access_end(c, grant, fence, error);
	if (r < 0 && !sd_bus_message_get_expect_reply(m))
		/* one-way (dmabroker_end_access_oneway): nobody hears the error, so say it here */
		log_notice("one-way EndAccess of grant %llu from %s refused: %s", (unsigned long long)grant,
			   sd_bus_message_get_sender(m) ? sd_bus_message_get_sender(m) : "a direct connection",
			   error_is_set(error) ? error->message : strerror(-r));
	if (r < 0)
		return r;
	return sd_bus_reply_method_return(m, "");
}

static int method_list_buffers(sd_bus_message *m, void *userdata, struct error *error)
{
	struct endpoint *e = userdata;
	sd_bus_message *reply = NULL;
	struct client *c;
	uint64_t now, key;
	void *v;
	int r = caller(e, m, &c, error);

	if (r < 0)
		return r;
	now = now_usec();
	r = sd_bus_message_new_method_return(m, &reply);
	if (r >= 0)
		r = sd_bus_message_open_container(reply, 'a', "(tuuutsuuuuutuuuu)");
	for (size_t i = 0; r >= 0 && hashmap_next(&e->broker->buffers, &i, &key, &v);) {
		struct buffer *buf = v;
		if (!client_is_admin(c) && !buffer_held_by(buf, c))
			continue;
		r = sd_bus_message_append(reply, "(tuuutsuuuuutuuuu)", buf->id, buf->width, buf->height, buf->fourcc,
					  buf->size, buf->backend ? buf->backend->name : "import", buf->usage,
					  (uint32_t)buf->owner_uid, (uint32_t)buf->owner_pid, buf->n_holders,
					  buf->n_attachments, now - buf->created_usec,
					  buf->resv.readers + (buf->resv.writer ? 1u : 0u), buf->resv.waiters,
					  access_pending_fences(buf), buf->resv.fence_timeouts);
	}
	return send_list_reply(reply, r);
}

static int method_list_clients(sd_bus_message *m, void *userdata, struct error *error)
{
	struct endpoint *e = userdata;
	sd_bus_message *reply = NULL;
	struct client *self;
	uint64_t now;
	int r = caller(e, m, &self, error);

	if (r < 0)
		return r;
	now = now_usec();
	r = sd_bus_message_new_method_return(m, &reply);
	if (r >= 0)
		r = sd_bus_message_open_container(reply, 'a', "(tsuuusutuut)");
	for (struct client *c = e->broker->clients; r >= 0 && c; c = c->next) {
		if (!client_is_admin(self) && c != self)
			continue;
		r = sd_bus_message_append(reply, "(tsuuusutuut)", c->id, c->bus_name ? c->bus_name : "",
					  (uint32_t)c->uid, (uint32_t)c->gid, (uint32_t)c->pid, c->comm, c->n_holds,
					  c->bytes, c->n_tokens, c->n_directs, now - c->created_usec);
	}
	return send_list_reply(reply, r);
}

static int append_usage(sd_bus_message *reply, const char *scope, const struct usage *u, const struct config *cfg,
			bool uid)
{
	int r = 0;
	for (unsigned q = 0; r >= 0 && q < Q__MAX; q++) {
		uint64_t limit = uid ? quota_uid_limit(cfg, q) : quota_client_limit(cfg, q);
		if (limit)
			r = sd_bus_message_append(reply, "(sstt)", scope, quota_resource_name(q), u->v[q], limit);
	}
	return r;
}

static int method_get_usage(sd_bus_message *m, void *userdata, struct error *error)
{
	struct endpoint *e = userdata;
	struct broker *b = e->broker;
	sd_bus_message *reply = NULL;
	struct client *self;
	uid_t uids[256];
	unsigned n_uids = 0;
	int r = caller(e, m, &self, error);

	if (r < 0)
		return r;
	r = sd_bus_message_new_method_return(m, &reply);
	if (r >= 0)
		r = sd_bus_message_open_container(reply, 'a', "(sstt)");
	for (struct client *c = b->clients; r >= 0 && c; c = c->next) {
		char scope[64];
		struct usage u;
		bool seen = false;
		if (!client_is_admin(self) && c != self)
			continue;
		snprintf(scope, sizeof(scope), "client %llu (%s)", (unsigned long long)c->id, c->comm);
		quota_client_usage(c, &u);
		r = append_usage(reply, scope, &u, &b->config, false);
		for (unsigned i = 0; i < n_uids; i++)
			seen |= uids[i] == c->uid;
		if (!seen && n_uids < ELEMENTSOF(uids))
			uids[n_uids++] = c->uid;
	}
	for (unsigned i = 0; r >= 0 && i < n_uids; i++) {
		char scope[32];
		struct usage u;
		snprintf(scope, sizeof(scope), "uid %u", (unsigned)uids[i]);
		quota_uid_usage(b, uids[i], &u);
		r = append_usage(reply, scope, &u, &b->config, true);
	}
	return send_list_reply(reply, r);
}

static int method_list_backends(sd_bus_message *m, void *userdata, struct error *error)
{
	struct endpoint *e = userdata;
	const struct backends *bs = &e->broker->backends;
	sd_bus_message *reply = NULL;
	int r = sd_bus_message_new_method_return(m, &reply);

	if (r >= 0)
		r = sd_bus_message_open_container(reply, 'a', "(sssbs)");
	for (unsigned i = 0; r >= 0 && i < bs->n_notes; i++)
		r = sd_bus_message_append(reply, "(sssbs)", bs->notes[i].name, bs->notes[i].kind,
					  bs->notes[i].device, bs->notes[i].available, bs->notes[i].detail);
	return send_list_reply(reply, r);
}

static int method_reclaim(sd_bus_message *m, void *userdata, struct error *error)
{
	struct endpoint *e = userdata;
	sd_bus_message *reply = NULL;
	uint64_t ids[256], id;
	int fds[256], fd;
	unsigned n = 0;
	struct client *c;
	int r = caller(e, m, &c, error);

	if (r < 0)
		return r;
	r = sd_bus_message_enter_container(m, 'a', "(th)");
	while (r >= 0 && (r = sd_bus_message_read(m, "(th)", &id, &fd)) > 0) {
		if (n == ELEMENTSOF(ids))
			return error_setf(error, DMABROKER_E_INVALID_ARGUMENT, "more than %zu buffers at once",
						 ELEMENTSOF(ids));
		ids[n] = id;
		fds[n++] = fd;
	}
	if (r >= 0)
		r = fdstore_reclaim(c, ids, fds, n, error);
	if (r < 0)
		return r;
	if (n)
		log_info("client %llu (%s, pid %d) reclaimed %u buffers", (unsigned long long)c->id, c->comm,
			 (int)c->pid, n);
	r = sd_bus_message_new_method_return(m, &reply);
	if (r >= 0)
		r = sd_bus_message_append_array(reply, 't', ids, n * sizeof(uint64_t));
	return send_reply(reply, r);
}

static int method_open_access_channel(sd_bus_message *m, void *userdata, struct error *error)
{
	_cleanup_close_ int fd = -1;
	struct client *c;
	int r = caller(userdata, m, &c, error);

	if (r >= 0)
		r = access_channel_open(c, &fd, error);
	if (r < 0)
		return r;
	return sd_bus_reply_method_return(m, "h", fd);
}

static int method_open_direct(sd_bus_message *m, void *userdata, struct error *error)
{
	struct endpoint *e = userdata;
	_cleanup_close_ int fd = -1;
	struct client *c;
	int r;

	if (e->client)
		return error_set(error, DMABROKER_E_NOT_PERMITTED,
					"this is a direct connection already; call OpenDirect on the bus");
	r = caller(e, m, &c, error);
	if (r >= 0)
		r = client_open_direct(c, &fd, error);
	if (r < 0)
		return r;
	return sd_bus_reply_method_return(m, "h", fd);
}

/* ---- streams ---- */

/* Streams run on direct connections: the per-frame messages skip the bus. */
static int direct_caller(struct endpoint *e, sd_bus_message *m, struct client **ret, struct error *error)
{
	if (!e->client)
		return error_set(error, DMABROKER_E_NOT_PERMITTED,
					"streams run over a direct connection: call OpenDirect, then this method on it");
	return caller(e, m, ret, error);
}

static int find_stream(struct broker *b, uint64_t id, struct stream **ret, struct error *error)
{
	*ret = stream_find(b, id);
	if (!*ret)
		return stream_unknown(id, error);
	return 0;
}

/*
 * QueueFrame and ReleaseFrame are sent without expecting a reply: a failure
 * then comes back as a StreamError signal (and a log line), not lost.
 */
static int oneway_result(struct endpoint *e, sd_bus_message *m, struct client *c, uint64_t stream, int r,
			 struct error *error)
{
	if (!c)
		c = e->client; /* refused before direct_caller(), as a call with two fences is: still told */
	if (r >= 0)
		return sd_bus_reply_method_return(m, ""); /* dropped by sd-bus when no reply is expected */
	if (c && !sd_bus_message_get_expect_reply(m)) {
		_cleanup_(sd_bus_error_free) sd_bus_error be = SD_BUS_ERROR_NULL;
		sd_bus_message *sig = NULL;
		const char *name, *msg;

		bus_error_from(&be, r, error);
		name = be.name;
		msg = be.message ? PRINTABLE(be.message) : strerror(-r);
		log_notice("client %llu: %s on stream %llu: %s", (unsigned long long)c->id, sd_bus_message_get_member(m),
			   (unsigned long long)stream, msg);
		if (client_new_signal(c, "StreamError", &sig) >= 0 &&
		    sd_bus_message_append(sig, "tsss", stream, sd_bus_message_get_member(m), name, msg) >= 0)
			sd_bus_send(NULL, sig, NULL);
		sd_bus_message_unref(sig);
	}
	return r;
}

static int method_create_stream(sd_bus_message *m, void *userdata, struct error *error)
{
	struct stream_params p = { 0 };
	struct stream *s;
	struct client *c = NULL;
	const char *name;
	int r = sd_bus_message_read(m, "s", &name);

	if (r >= 0)
		r = stream_read_params(m, true, &p, error);
	if (r >= 0)
		r = direct_caller(userdata, m, &c, error);
	if (r < 0)
		return r;
	snprintf(p.name, sizeof(p.name), "%s", name);
	if (strlen(name) >= sizeof(p.name))
		return error_setf(error, DMABROKER_E_INVALID_ARGUMENT, "stream name longer than %zu bytes",
					 sizeof(p.name) - 1);
	r = stream_create(c, &p, &s, error);
	if (r < 0)
		return r;
	return sd_bus_reply_method_return(m, "t", stream_id(s));
}

static int method_join_stream(sd_bus_message *m, void *userdata, struct error *error)
{
	struct stream_params p = { 0 };
	struct stream *s;
	struct client *c = NULL;
	const char *name;
	uint32_t consumer;
	int r = sd_bus_message_read(m, "s", &name);

	if (r >= 0)
		r = stream_read_params(m, false, &p, error);
	if (r >= 0)
		r = direct_caller(userdata, m, &c, error);
	if (r < 0)
		return r;
	snprintf(p.name, sizeof(p.name), "%s", name);
	r = stream_join(c, &p, &s, &consumer, error);
	if (r < 0)
		return r;
	return sd_bus_reply_method_return(m, "tu", stream_id(s), consumer);
}

static int method_stream_buffers(sd_bus_message *m, void *userdata, struct error *error)
{
	struct endpoint *e = userdata;
	struct stream *s;
	struct client *c = NULL;
	uint64_t id;
	int r = sd_bus_message_read(m, "t", &id);

	if (r >= 0)
		r = direct_caller(e, m, &c, error);
	if (r >= 0)
		r = find_stream(e->broker, id, &s, error);
	if (r < 0)
		return r;
	return stream_buffers(s, c, m, error);
}

static int method_queue_frame(sd_bus_message *m, void *userdata, struct error *error)
{
	struct endpoint *e = userdata;
	struct frame_meta meta = { 0 };
	struct client *c = NULL;
	struct stream *s;
	uint64_t id = 0;
	uint32_t index;
	int32_t x, y, w, h;
	int fence = -1, r = sd_bus_message_read(m, "tutt", &id, &index, &meta.sequence, &meta.timestamp_ns);

	if (r >= 0)
		r = sd_bus_message_enter_container(m, 'a', "(iiii)");
	while (r >= 0 && (r = sd_bus_message_read(m, "(iiii)", &x, &y, &w, &h)) > 0) {
		if (meta.n_damage == DMABROKER_STREAM_MAX_DAMAGE) {
			/* more than that: the whole frame is damaged */
			meta.n_damage = 0;
			continue;
		}
		meta.damage[meta.n_damage][0] = x;
		meta.damage[meta.n_damage][1] = y;
		meta.damage[meta.n_damage][2] = w;
		meta.damage[meta.n_damage++][3] = h;
	}
	if (r >= 0)
		r = sd_bus_message_exit_container(m);
	if (r >= 0)
		r = read_optional_fd(m, &fence, error);
	if (r >= 0)
		r = direct_caller(e, m, &c, error);
	if (r >= 0)
		r = find_stream(e->broker, id, &s, error);
	if (r >= 0)
		r = stream_queue(s, c, index, &meta, fence, error);
	return oneway_result(e, m, c, id, r, error);
}

static int method_release_frame(sd_bus_message *m, void *userdata, struct error *error)
{
	struct endpoint *e = userdata;
	struct client *c = NULL;
	struct stream *s;
	uint64_t id = 0;
	uint32_t index;
	int fence = -1, r = sd_bus_message_read(m, "tu", &id, &index);

	if (r >= 0)
		r = read_optional_fd(m, &fence, error);
	if (r >= 0)
		r = direct_caller(e, m, &c, error);
	if (r >= 0)
		r = find_stream(e->broker, id, &s, error);
	if (r >= 0)
		r = stream_release(s, c, index, fence, error);
	return oneway_result(e, m, c, id, r, error);
}

static int method_leave_stream(sd_bus_message *m, void *userdata, struct error *error)
{
	struct endpoint *e = userdata;
	struct stream *s;
	struct client *c = NULL;
	uint64_t id;
	int r = sd_bus_message_read(m, "t", &id);

	if (r >= 0)
		r = caller(e, m, &c, error);
	if (r >= 0)
		r = find_stream(e->broker, id, &s, error);
	if (r >= 0)
		r = stream_leave(s, c, error);
	if (r < 0)
		return r;
	return sd_bus_reply_method_return(m, "");
}

static int method_list_streams(sd_bus_message *m, void *userdata, struct error *error)
{
	struct endpoint *e = userdata;
	sd_bus_message *reply = NULL;
	struct client *c;
	int r = caller(e, m, &c, error);

	if (r < 0)
		return r;
	r = sd_bus_message_new_method_return(m, &reply);
	if (r >= 0)
		r = sd_bus_message_open_container(reply, 'a', "(tssssuuuututtt)");
	if (r >= 0)
		r = stream_append_list(e->broker, c, reply);
	return send_list_reply(reply, r);
}

static int property_get(sd_bus *bus, const char *path, const char *interface, const char *property,
			sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
	struct endpoint *e = userdata;
	struct broker *b = e->broker;

	if (strcmp(property, "Version") == 0)
		return sd_bus_message_append(reply, "s", DMABROKER_VERSION);
	if (strcmp(property, "Clients") == 0)
		return sd_bus_message_append(reply, "u", b->n_clients);
	if (strcmp(property, "Buffers") == 0)
		return sd_bus_message_append(reply, "u", (uint32_t)b->buffers.len);
	if (strcmp(property, "BytesAllocated") == 0)
		return sd_bus_message_append(reply, "t", b->bytes);
	if (strcmp(property, "Streams") == 0) {
		uint32_t n = 0;
		for (struct stream *st = b->streams; st; st = stream_next(st))
			n++;
		return sd_bus_message_append(reply, "u", n);
	}
	if (strcmp(property, "FenceTimeouts") == 0)
		return sd_bus_message_append(reply, "t", b->fence_timeouts);
	if (strcmp(property, "GrantTimeouts") == 0)
		return sd_bus_message_append(reply, "t", b->grant_timeouts);
	if (strcmp(property, "PoolBuffers") == 0)
		return sd_bus_message_append(reply, "u", (uint32_t)b->pool_count);
	if (strcmp(property, "PoolBytes") == 0)
		return sd_bus_message_append(reply, "t", b->pool_bytes);
	return -ENOENT;
}

/*
 * Every method call goes through answer(): the method's own handler, with a
 * struct error of its own, then its error, if any, sent by
 * broker_reply_error() instead of by sd-bus (which leaves the call
 * unanswered when it cannot send the error). One small function per method
 * puts it in the vtable: nothing is looked up per call.
 */
typedef int (*method_fn)(sd_bus_message *m, void *userdata, struct error *error);

static int answer(sd_bus_message *m, void *userdata, method_fn handler)
{
	struct error error = ERROR_NULL;
	int r = handler(m, userdata, &error);

	if (r >= 0 && !error_is_set(&error))
		return r;
	return broker_reply_error(m, r, &error);
}

#define ANSWER(fn) \
	static int answer_##fn(sd_bus_message *m, void *userdata, sd_bus_error *unused) \
	{ \
		return answer(m, userdata, fn); \
	}
ANSWER(method_allocate)
ANSWER(method_import)
ANSWER(method_release)
ANSWER(method_create_token)
ANSWER(method_revoke_token)
ANSWER(method_open_token)
ANSWER(method_attach)
ANSWER(method_detach)
ANSWER(method_begin_access)
ANSWER(method_begin_access_multi)
ANSWER(method_end_access)
ANSWER(method_list_buffers)
ANSWER(method_list_clients)
ANSWER(method_get_usage)
ANSWER(method_list_backends)
ANSWER(method_reclaim)
ANSWER(method_open_access_channel)
ANSWER(method_open_direct)
ANSWER(method_create_stream)
ANSWER(method_join_stream)
ANSWER(method_stream_buffers)
ANSWER(method_queue_frame)
ANSWER(method_release_frame)
ANSWER(method_leave_stream)
ANSWER(method_list_streams)

static const sd_bus_vtable broker_methods[] = {
	SD_BUS_VTABLE_START(0),
	SD_BUS_PROPERTY("Version", "s", property_get, 0, SD_BUS_VTABLE_PROPERTY_CONST),
	SD_BUS_PROPERTY("Clients", "u", property_get, 0, 0),
	SD_BUS_PROPERTY("Buffers", "u", property_get, 0, 0),
	SD_BUS_PROPERTY("BytesAllocated", "t", property_get, 0, 0),
	SD_BUS_PROPERTY("FenceTimeouts", "t", property_get, 0, 0),
	SD_BUS_PROPERTY("GrantTimeouts", "t", property_get, 0, 0),
	SD_BUS_PROPERTY("PoolBuffers", "u", property_get, 0, 0),
	SD_BUS_PROPERTY("PoolBytes", "t", property_get, 0, 0),
	SD_BUS_PROPERTY("Streams", "u", property_get, 0, 0),
	SD_BUS_SIGNAL_WITH_NAMES("FrameReady", "tutta(iiii)ah",
				 SD_BUS_PARAM(stream) SD_BUS_PARAM(index) SD_BUS_PARAM(sequence)
				 SD_BUS_PARAM(timestamp) SD_BUS_PARAM(damage) SD_BUS_PARAM(acquire_fence), 0),
	SD_BUS_SIGNAL_WITH_NAMES("BufferReleased", "tuah",
				 SD_BUS_PARAM(stream) SD_BUS_PARAM(index) SD_BUS_PARAM(release_fence), 0),
	SD_BUS_SIGNAL_WITH_NAMES("ConsumerJoined", "tuh",
				 SD_BUS_PARAM(stream) SD_BUS_PARAM(consumer) SD_BUS_PARAM(channel), 0),
	SD_BUS_SIGNAL_WITH_NAMES("StreamEnded", "ts", SD_BUS_PARAM(stream) SD_BUS_PARAM(reason), 0),
	SD_BUS_SIGNAL_WITH_NAMES("StreamError", "tsss",
				 SD_BUS_PARAM(stream) SD_BUS_PARAM(method) SD_BUS_PARAM(error) SD_BUS_PARAM(message), 0),
	SD_BUS_SIGNAL_WITH_NAMES("FenceTimedOut", "ttb", SD_BUS_PARAM(buffer) SD_BUS_PARAM(client) SD_BUS_PARAM(write), 0),
	SD_BUS_SIGNAL_WITH_NAMES("GrantTimedOut", "ttb", SD_BUS_PARAM(buffer) SD_BUS_PARAM(client) SD_BUS_PARAM(write), 0),
	SD_BUS_SIGNAL_WITH_NAMES("Moved", "thta(tu)ah",
				 SD_BUS_PARAM(buffer) SD_BUS_PARAM(fd) SD_BUS_PARAM(size) SD_BUS_PARAM(planes)
				 SD_BUS_PARAM(fence), 0),
	SD_BUS_METHOD_WITH_NAMES("Allocate", "uuuatua{sv}",
				 SD_BUS_PARAM(width) SD_BUS_PARAM(height) SD_BUS_PARAM(fourcc)
				 SD_BUS_PARAM(modifiers) SD_BUS_PARAM(usage) SD_BUS_PARAM(options),
				 "thtta(tu)sb",
				 SD_BUS_PARAM(buffer) SD_BUS_PARAM(fd) SD_BUS_PARAM(size) SD_BUS_PARAM(modifier)
				 SD_BUS_PARAM(planes) SD_BUS_PARAM(backend) SD_BUS_PARAM(dmabuf),
				 answer_method_allocate, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_NAMES("Import", "huuuta(tu)u",
				 SD_BUS_PARAM(fd) SD_BUS_PARAM(width) SD_BUS_PARAM(height) SD_BUS_PARAM(fourcc)
				 SD_BUS_PARAM(modifier) SD_BUS_PARAM(planes) SD_BUS_PARAM(usage),
				 "tt", SD_BUS_PARAM(buffer) SD_BUS_PARAM(size),
				 answer_method_import, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_NAMES("Release", "t", SD_BUS_PARAM(buffer), "", ,
				 answer_method_release, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_NAMES("CreateToken", "tuu",
				 SD_BUS_PARAM(buffer) SD_BUS_PARAM(flags) SD_BUS_PARAM(ttl),
				 "s", SD_BUS_PARAM(token),
				 answer_method_create_token, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_NAMES("RevokeToken", "s", SD_BUS_PARAM(token), "", ,
				 answer_method_revoke_token, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_NAMES("OpenToken", "s", SD_BUS_PARAM(token),
				 "thuuutta(tu)ub",
				 SD_BUS_PARAM(buffer) SD_BUS_PARAM(fd) SD_BUS_PARAM(width) SD_BUS_PARAM(height)
				 SD_BUS_PARAM(fourcc) SD_BUS_PARAM(modifier) SD_BUS_PARAM(size)
				 SD_BUS_PARAM(planes) SD_BUS_PARAM(usage) SD_BUS_PARAM(dmabuf),
				 answer_method_open_token, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_NAMES("Attach", "tusu",
				 SD_BUS_PARAM(buffer) SD_BUS_PARAM(usage) SD_BUS_PARAM(device) SD_BUS_PARAM(flags),
				 "uh", SD_BUS_PARAM(attachment) SD_BUS_PARAM(fd),
				 answer_method_attach, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_NAMES("Detach", "tu", SD_BUS_PARAM(buffer) SD_BUS_PARAM(attachment), "", ,
				 answer_method_detach, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_NAMES("BeginAccess", "tuu", SD_BUS_PARAM(buffer) SD_BUS_PARAM(mode) SD_BUS_PARAM(flags),
				 "tah", SD_BUS_PARAM(grant) SD_BUS_PARAM(acquire_fence),
				 answer_method_begin_access, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_NAMES("BeginAccessMulti", "a(tu)u", SD_BUS_PARAM(buffers) SD_BUS_PARAM(flags),
				 "atah", SD_BUS_PARAM(grants) SD_BUS_PARAM(acquire_fence),
				 answer_method_begin_access_multi, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_NAMES("EndAccess", "tah", SD_BUS_PARAM(grant) SD_BUS_PARAM(release_fence), "", ,
				 answer_method_end_access, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_NAMES("ListBuffers", "", , "a(tuuutsuuuuutuuuu)", SD_BUS_PARAM(buffers),
				 answer_method_list_buffers, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_NAMES("ListClients", "", , "a(tsuuusutuut)", SD_BUS_PARAM(clients),
				 answer_method_list_clients, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_NAMES("GetUsage", "", , "a(sstt)", SD_BUS_PARAM(usage),
				 answer_method_get_usage, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_NAMES("ListBackends", "", , "a(sssbs)", SD_BUS_PARAM(backends),
				 answer_method_list_backends, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_NAMES("Reclaim", "a(th)", SD_BUS_PARAM(buffers), "at", SD_BUS_PARAM(reclaimed),
				 answer_method_reclaim, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_NAMES("OpenDirect", "", , "h", SD_BUS_PARAM(fd),
				 answer_method_open_direct, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_NAMES("OpenAccessChannel", "", , "h", SD_BUS_PARAM(fd),
				 answer_method_open_access_channel, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_NAMES("CreateStream", "sa{sv}", SD_BUS_PARAM(name) SD_BUS_PARAM(options),
				 "t", SD_BUS_PARAM(stream),
				 answer_method_create_stream, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_NAMES("JoinStream", "sa{sv}", SD_BUS_PARAM(name) SD_BUS_PARAM(options),
				 "tu", SD_BUS_PARAM(stream) SD_BUS_PARAM(consumer),
				 answer_method_join_stream, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_NAMES("StreamBuffers", "t", SD_BUS_PARAM(stream),
				 "uuutssa(thta(tu))uaha(uh)",
				 SD_BUS_PARAM(width) SD_BUS_PARAM(height) SD_BUS_PARAM(fourcc) SD_BUS_PARAM(modifier)
				 SD_BUS_PARAM(backend) SD_BUS_PARAM(mode) SD_BUS_PARAM(buffers)
				 SD_BUS_PARAM(max_acquired) SD_BUS_PARAM(counters) SD_BUS_PARAM(channels),
				 answer_method_stream_buffers, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_NAMES("QueueFrame", "tutta(iiii)ah",
				 SD_BUS_PARAM(stream) SD_BUS_PARAM(index) SD_BUS_PARAM(sequence)
				 SD_BUS_PARAM(timestamp) SD_BUS_PARAM(damage) SD_BUS_PARAM(ready_fence), "", ,
				 answer_method_queue_frame, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_NAMES("ReleaseFrame", "tuah",
				 SD_BUS_PARAM(stream) SD_BUS_PARAM(index) SD_BUS_PARAM(release_fence), "", ,
				 answer_method_release_frame, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_NAMES("LeaveStream", "t", SD_BUS_PARAM(stream), "", ,
				 answer_method_leave_stream, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_NAMES("ListStreams", "", , "a(tssssuuuututtt)", SD_BUS_PARAM(streams),
				 answer_method_list_streams, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_VTABLE_END,
};

const sd_bus_vtable *broker_vtable(void)
{
	return broker_methods;
}

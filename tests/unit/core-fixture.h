/* SPDX-License-Identifier: MIT */
/*
 * A broker without a bus, for the core's unit tests (grants-test.c,
 * quota-test.c, stream-test.c): the shm backend only (memfds, no device),
 * allocations inline (no workers), clients made with client_new() as the
 * bus would, buffers registered from memfds. A recording transport answers
 * the calls the core could not answer at once: every granted, failed and
 * stream_buffers answer is kept in order, and keep/drop are counted so
 * that a test can assert that no completion is leaked or dropped twice.
 *
 * Each step sets up its own broker (fixture_setup) and ends it
 * (fixture_finish), which reports whether the transport's references
 * balanced.
 */
#pragma once

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <systemd/sd-event.h>

#include "broker.h"
#include "cleanup.h"
#include "error.h"
#include "log.h"
#include "quota.h"
#include "stream.h"
#include "tap.h"

enum answer_kind { ANSWER_GRANTED, ANSWER_FAILED, ANSWER_STREAM_BUFFERS };

/* One answer the core sent through the recording transport. */
struct answer {
	enum answer_kind kind;
	uint64_t cookie;                /* which call (the test's own numbering) */
	uint64_t client;                /* the answered client's id */
	unsigned n;                     /* granted: how many grants */
	uint64_t grants[DMABROKER_ACCESS_MAX_MULTI];
	int fence;                      /* granted: the acquire fence as passed (-1: none) */
	int r, code;                    /* failed: the errno and the named error */
	char message[512];
	struct stream_buffers_info info; /* stream_buffers: what stream_describe() gave */
};

struct recorder {
	struct answer answers[64];
	unsigned n_answers;
	unsigned keeps, drops;
	int granted_result;             /* what granted() returns: 0, or < 0 to refuse the grant */
};

static struct recorder rec;

static void rec_keep(struct completion *c)
{
	rec.keeps++;
}

static void rec_drop(struct completion *c)
{
	rec.drops++;
}

static struct answer *rec_add(const struct completion *c, enum answer_kind kind)
{
	struct answer *a;

	if (rec.n_answers >= ELEMENTSOF(rec.answers))
		abort();
	a = &rec.answers[rec.n_answers++];
	*a = (struct answer){ .kind = kind, .cookie = c->cookie, .client = c->client ? c->client->id : 0, .fence = -1 };
	return a;
}

static void rec_fail(const struct completion *c, int r, const struct error *e)
{
	struct answer *a = rec_add(c, ANSWER_FAILED);

	a->r = r;
	a->code = e ? e->code : 0;
	if (e)
		snprintf(a->message, sizeof(a->message), "%s", e->message);
}

static int rec_granted(const struct completion *c, struct grant *const *grants, unsigned n, int fence)
{
	struct answer *a;

	if (rec.granted_result < 0)
		return rec.granted_result;
	a = rec_add(c, ANSWER_GRANTED);
	a->n = n;
	for (unsigned i = 0; i < n; i++)
		a->grants[i] = grants[i]->id;
	a->fence = fence;
	return 0;
}

static int rec_stream_buffers(const struct completion *c, struct stream *s, struct client *to)
{
	struct answer *a = rec_add(c, ANSWER_STREAM_BUFFERS);

	stream_describe(s, to, &a->info);
	return 0;
}

static const struct completion_ops rec_ops = {
	.keep = rec_keep, .drop = rec_drop, .fail = rec_fail, .granted = rec_granted,
	.stream_buffers = rec_stream_buffers,
};

/* A second transport with the same answers: the access channel next to the bus, say. */
static const struct completion_ops rec_ops_other = {
	.keep = rec_keep, .drop = rec_drop, .fail = rec_fail, .granted = rec_granted,
	.stream_buffers = rec_stream_buffers,
};

/* A call of c's, numbered `cookie`, answered through the recorder. */
static inline struct completion call_of(struct client *c, uint64_t cookie)
{
	return (struct completion){ .ops = &rec_ops, .cookie = cookie, .client = c };
}

static struct broker b;
static sd_event *event;
static unsigned next_peer;
static unsigned fds_before;

/* The fds this process has open. */
static inline unsigned count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	unsigned n = 0;

	if (!d)
		abort();
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

/* A config with only the shm backend and no pool; tune changes it further (may be NULL). */
static inline void fixture_setup(void (*tune)(struct config *cfg))
{
	struct config cfg;

	memset(&rec, 0, sizeof(rec));
	fds_before = count_fds();
	config_init(&cfg);
	for (unsigned i = 0; i < cfg.n_order; i++)
		free(cfg.order[i]);
	cfg.order[0] = strdup("shm");
	cfg.n_order = 1;
	cfg.shm = true;
	cfg.pool_max_bytes = 0;
	if (tune)
		tune(&cfg);
	if (!getenv("UNIT_LOG"))
		log_set_level(LOG_CRIT);
	if (sd_event_new(&event) < 0 || broker_init(&b, event, &cfg) < 0)
		abort();
}

/*
 * Frees everything; false (with a diagnostic) if the transport's keeps and
 * drops do not balance, the fd budget is not back to 0, or an fd is left.
 */
static inline bool fixture_finish(void)
{
	bool balanced;
	unsigned fds;

	broker_finish(&b);
	balanced = rec.keeps == rec.drops;
	config_free(&b.config);
	event = sd_event_unref(event);
	fds = count_fds();
	if (!balanced)
		tap_diag("the transport was kept %u times and dropped %u times", rec.keeps, rec.drops);
	if (b.fds)
		tap_diag("the fd budget has %llu fds charged after the broker ended", (unsigned long long)b.fds);
	if (fds != fds_before)
		tap_diag("%u fds open before the step, %u after", fds_before, fds);
	return balanced && b.fds == 0 && fds == fds_before;
}

/* A client of uid, as the bus would make it; NULL with *e set when refused. */
static inline struct client *fixture_client_e(uid_t uid, struct error *e)
{
	struct client_creds creds = { .uid = uid, .pid = getpid() };
	struct client *c = NULL;
	char name[32];

	snprintf(name, sizeof(name), ":1.%u", ++next_peer);
	if (client_new(&b, name, &creds, &c, e) < 0)
		return NULL;
	return c;
}

static inline struct client *fixture_client(uid_t uid)
{
	struct error e = ERROR_NULL;
	struct client *c = fixture_client_e(uid, &e);

	if (!c) {
		tap_diag("client_new: %s", e.message);
		abort();
	}
	return c;
}

/* n clients of uid: fixture_clients(1000, 2, &a, &bob). */
static inline void fixture_clients(uid_t uid, unsigned n, ...)
{
	va_list ap;

	va_start(ap, n);
	for (unsigned i = 0; i < n; i++)
		*va_arg(ap, struct client **) = fixture_client(uid);
	va_end(ap);
}

/* A memfd of size bytes, or -1. */
static inline int memfd_of_size(off_t size)
{
	int fd = memfd_create("unit", MFD_CLOEXEC);

	if (fd >= 0 && ftruncate(fd, size) < 0) {
		close(fd);
		fd = -1;
	}
	return fd;
}

/* A buffer of size bytes held by owner, as Import would register it; NULL with *e set when refused. */
static inline struct buffer *fixture_buffer_e(struct client *owner, off_t size, struct error *e)
{
	struct buffer *buf = NULL;
	int fd = memfd_of_size(size);

	if (fd < 0)
		abort();
	if (fd_budget_charge(&b, 1, e) < 0) {
		close(fd);
		return NULL;
	}
	if (buffer_register(&b, owner, fd, &buf, e) < 0)
		return NULL;
	return buf;
}

static inline struct buffer *fixture_buffer(struct client *owner)
{
	struct error e = ERROR_NULL;
	struct buffer *buf = fixture_buffer_e(owner, 4096, &e);

	if (!buf) {
		tap_diag("buffer_register: %s", e.message);
		abort();
	}
	return buf;
}

/* The i-th answer, or NULL. */
static inline const struct answer *answer(unsigned i)
{
	return i < rec.n_answers ? &rec.answers[i] : NULL;
}

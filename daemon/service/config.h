/* SPDX-License-Identifier: MIT */
/*
 * dmabroker.conf: an INI file. Sections [daemon], [backends], [limits],
 * [fences], [access], [streams], [pool];
 * "key = value" lines; '#' or ';' start a comment line. An unknown section
 * or key, a bad value or a repeated key is an error that names the file,
 * the line and the reason: the daemon refuses to start with it.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "buildconf.h"

#define CONFIG_MAX_LIST 16
#define CONFIG_MAX_ACCESS 16
#define CONFIG_MAX_PRINCIPALS 16
#define CONFIG_MAX_STREAMS 16

/* A user or group an [access] rule names; resolved to a number at start-up. */
struct principal {
	bool group;
	bool resolved;
	uint32_t id;
	char name[33];
};

/* [access] BACKEND = principals: only they may allocate from BACKEND. */
struct access_rule {
	char *backend;
	unsigned line;
	unsigned n;
	struct principal who[CONFIG_MAX_PRINCIPALS];
};

/* [streams] NAME = principals: only they may create (produce) stream NAME. */
struct stream_rule {
	char *name;
	unsigned line;
	unsigned n;
	struct principal who[CONFIG_MAX_PRINCIPALS];
};
#define CONFIG_DEFAULT_PATH DMABROKER_SYSCONFDIR "/dmabroker/dmabroker.conf"

struct config {
	/* [daemon] */
	int log_level;                 /* log-level: err ... debug */
	bool fd_store;                 /* fd-store: keep buffers in the service manager's fd store */
	uint32_t restore_grace_sec;    /* restore-grace: how long restored buffers wait to be reclaimed */
	/* [backends] */
	unsigned n_order;              /* order: backend kinds, first match wins */
	char *order[CONFIG_MAX_LIST];
	char *heap;                    /* heap: the default heap's name */
	char *contiguous_heap;         /* contiguous-heap: "auto" = the first CMA heap */
	unsigned n_drm_devices;        /* drm-devices: paths or driver names; none = every card */
	char *drm_devices[CONFIG_MAX_LIST];
	bool shm;                      /* shm: allow the memfd fallback */
	/* [limits] */
	uint64_t max_buffer_size;
	uint32_t max_dimension;
	uint32_t max_clients;
	uint32_t max_buffers_per_client;
	uint64_t max_bytes_per_client;
	uint32_t max_tokens_per_client;
	uint32_t max_token_ttl;        /* seconds */
	uint32_t max_attachments_per_buffer;
	uint64_t max_fds;              /* fds held for clients, daemon-wide; 0 = auto (RLIMIT_NOFILE less head-room) */
	/* [pool] */
	uint64_t pool_max_bytes;       /* max-bytes: freed buffers kept for reuse; 0 = no pool */
	uint32_t pool_max_buffers;     /* max-buffers */
	uint32_t max_direct_per_client;
	uint32_t max_grants_per_client;
	uint32_t max_pending_per_client;
	uint32_t max_streams_per_client; /* streams it produces or consumes */
	uint32_t max_fences_per_client;  /* release fences kept for it */
	/* per uid, summed over its clients */
	uint32_t max_clients_per_uid;
	uint32_t max_buffers_per_uid;
	uint64_t max_bytes_per_uid;
	uint32_t max_tokens_per_uid;
	uint32_t max_streams_per_uid;
	uint32_t max_grants_per_uid;
	uint32_t max_pending_per_uid;
	uint32_t max_fences_per_uid;
	/* [access] */
	unsigned n_access;
	struct access_rule access[CONFIG_MAX_ACCESS];
	/* [streams] */
	unsigned n_streams;
	struct stream_rule streams[CONFIG_MAX_STREAMS];
	/* [fences] */
	uint32_t fence_timeout_sec;    /* timeout: a kept fence must signal within this */
	int fence_timeout_policy;      /* timeout-policy: for late fences and grants held too long */
	uint32_t hold_timeout_sec;     /* hold-timeout: longest a grant is held; 0 = no limit */
};

enum { FENCE_POLICY_REPORT, FENCE_POLICY_DROP_CLIENT };

void config_init(struct config *c);
void config_free(struct config *c);

/*
 * Parses text (named `name` in errors) into c, on top of what c holds.
 * Returns 0, or -EINVAL with *ret_error = "name:LINE: reason" (free() it).
 */
int config_parse(struct config *c, const char *text, const char *name, char **ret_error);

/*
 * Resolves the user and group names of [access] and [streams] rules (getpwnam,
 * getgrnam): once, at start-up, so that the daemon never waits on a name
 * service later. 0, or -EINVAL with *ret_error naming the rule.
 */
int config_resolve(struct config *c, char **ret_error);

/*
 * Loads the file at path. A missing file is no error when !must_exist (the
 * defaults hold). Returns 0 or a negative errno with *ret_error set.
 */
int config_load(struct config *c, const char *path, bool must_exist, char **ret_error);

/* The i-th key the parser knows, and its section; NULL past the last. */
const char *config_key_name(unsigned i, const char **section);

/* Parses "512", "64K", "256M", "2G" (binary units). false if malformed or too big. */
bool config_parse_size(const char *s, uint64_t *ret);

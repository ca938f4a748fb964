/* SPDX-License-Identifier: MIT */
#include <ctype.h>
#include <stddef.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "cleanup.h"
#include "config.h"
#include "log.h"

#define CONFIG_MAX_FILE (1u << 20)

static const char *const backend_kinds[] = { "heap", "udmabuf", "drm", "shm" };

void config_init(struct config *c)
{
	*c = (struct config){
		.log_level = LOG_INFO,
		.shm = true,
		.max_buffer_size = 512ull << 20,
		.max_dimension = 16384,
		.max_clients = 256,
		.max_buffers_per_client = 1024,
		.max_bytes_per_client = 2048ull << 20,
		.max_tokens_per_client = 256,
		.max_token_ttl = 3600,
		.max_attachments_per_buffer = 16,
		.max_direct_per_client = 4,
		.max_grants_per_client = 256,
		.max_pending_per_client = 16,
		.max_streams_per_client = 8,
		.restore_grace_sec = 30,
		.pool_max_buffers = 64,
		.max_fences_per_client = 1024,
		.max_clients_per_uid = 64,
		.max_buffers_per_uid = 4096,
		.max_bytes_per_uid = 4096ull << 20,
		.max_tokens_per_uid = 1024,
		.max_streams_per_uid = 32,
		.max_grants_per_uid = 1024,
		.max_pending_per_uid = 64,
		.max_fences_per_uid = 4096,
		.fence_timeout_sec = 10,
		.fence_timeout_policy = FENCE_POLICY_DROP_CLIENT,
	};
	for (unsigned i = 0; i < ELEMENTSOF(backend_kinds); i++)
		c->order[c->n_order++] = strdup(backend_kinds[i]);
	c->heap = strdup("system");
	c->contiguous_heap = strdup("auto");
}

static void free_list(char **list, unsigned *n)
{
	for (unsigned i = 0; i < *n; i++)
		free(list[i]);
	*n = 0;
}

void config_free(struct config *c)
{
	free_list(c->order, &c->n_order);
	free_list(c->drm_devices, &c->n_drm_devices);
	free(c->heap);
	free(c->contiguous_heap);
	c->heap = c->contiguous_heap = NULL;
	for (unsigned i = 0; i < c->n_access; i++)
		free(c->access[i].backend);
	c->n_access = 0;
	for (unsigned i = 0; i < c->n_streams; i++)
		free(c->streams[i].name);
	c->n_streams = 0;
}

bool config_parse_size(const char *s, uint64_t *ret)
{
	char *end;
	unsigned long long v;
	unsigned shift = 0;

	if (!isdigit((unsigned char)*s))
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return false;
	switch (*end) {
	case 'K': shift = 10; end++; break;
	case 'M': shift = 20; end++; break;
	case 'G': shift = 30; end++; break;
	default: break;
	}
	if (*end || v > (UINT64_MAX >> shift))
		return false;
	*ret = (uint64_t)v << shift;
	return true;
}

static bool parse_u32(const char *s, uint32_t *ret)
{
	uint64_t v;
	if (!config_parse_size(s, &v) || v > UINT32_MAX)
		return false;
	*ret = (uint32_t)v;
	return true;
}

static bool parse_bool(const char *s, bool *ret)
{
	static const char *const yes[] = { "yes", "true", "on", "1" }, *const no[] = { "no", "false", "off", "0" };
	for (unsigned i = 0; i < ELEMENTSOF(yes); i++) {
		if (strcmp(s, yes[i]) == 0)
			return (*ret = true);
		if (strcmp(s, no[i]) == 0)
			return !(*ret = false);
	}
	return false;
}

static char *strip(char *s)
{
	char *e;
	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = 0;
	return s;
}

/* Splits a comma-separated list; false (and reason set) when malformed. */
static bool parse_list(char *v, char **list, unsigned *n, const char **reason)
{
	unsigned count = 0;
	char *items[CONFIG_MAX_LIST];

	for (char *tok = v, *next; tok; tok = next) {
		next = strchr(tok, ',');
		if (next)
			*next++ = 0;
		tok = strip(tok);
		if (!*tok) {
			*reason = "empty item in list";
			return false;
		}
		if (count == CONFIG_MAX_LIST) {
			*reason = "too many items in list (at most 16)";
			return false;
		}
		items[count++] = tok;
	}
	free_list(list, n);
	for (unsigned i = 0; i < count; i++)
		list[i] = strdup(items[i]);
	*n = count;
	return true;
}

static int fail(char **ret_error, const char *name, unsigned line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int fail(char **ret_error, const char *name, unsigned line, const char *fmt, ...)
{
	char reason[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	if (ret_error && asprintf(ret_error, "%s:%u: %s", name, line, reason) < 0)
		*ret_error = NULL;
	return -EINVAL;
}

enum section {
	SECTION_NONE, SECTION_DAEMON, SECTION_BACKENDS, SECTION_LIMITS, SECTION_FENCES, SECTION_ACCESS, SECTION_POOL,
	SECTION_STREAMS,
};

struct key {
	enum section section;
	const char *name;
	enum { K_LOGLEVEL, K_ORDER, K_STRING, K_LIST, K_BOOL, K_SIZE64, K_SIZE64_OR_0, K_U32, K_U32_OR_0, K_POLICY } type;
	size_t offset, count_offset;
};

#define KEY(sec, n, t, field) { sec, n, t, offsetof(struct config, field), 0 }
#define LISTKEY(sec, n, t, field, count) { sec, n, t, offsetof(struct config, field), offsetof(struct config, count) }

static const struct key keys[] = {
	KEY(SECTION_DAEMON, "log-level", K_LOGLEVEL, log_level),
	KEY(SECTION_DAEMON, "fd-store", K_BOOL, fd_store),
	KEY(SECTION_DAEMON, "restore-grace", K_U32, restore_grace_sec),
	LISTKEY(SECTION_BACKENDS, "order", K_ORDER, order, n_order),
	KEY(SECTION_BACKENDS, "heap", K_STRING, heap),
	KEY(SECTION_BACKENDS, "contiguous-heap", K_STRING, contiguous_heap),
	LISTKEY(SECTION_BACKENDS, "drm-devices", K_LIST, drm_devices, n_drm_devices),
	KEY(SECTION_BACKENDS, "shm", K_BOOL, shm),
	KEY(SECTION_LIMITS, "max-buffer-size", K_SIZE64, max_buffer_size),
	KEY(SECTION_LIMITS, "max-dimension", K_U32, max_dimension),
	KEY(SECTION_LIMITS, "max-clients", K_U32, max_clients),
	KEY(SECTION_LIMITS, "max-buffers-per-client", K_U32, max_buffers_per_client),
	KEY(SECTION_LIMITS, "max-bytes-per-client", K_SIZE64, max_bytes_per_client),
	KEY(SECTION_LIMITS, "max-tokens-per-client", K_U32, max_tokens_per_client),
	KEY(SECTION_LIMITS, "max-token-ttl", K_U32, max_token_ttl),
	KEY(SECTION_LIMITS, "max-attachments-per-buffer", K_U32, max_attachments_per_buffer),
	KEY(SECTION_LIMITS, "max-fds", K_SIZE64_OR_0, max_fds),
	KEY(SECTION_LIMITS, "max-direct-connections-per-client", K_U32, max_direct_per_client),
	KEY(SECTION_LIMITS, "max-grants-per-client", K_U32, max_grants_per_client),
	KEY(SECTION_LIMITS, "max-pending-per-client", K_U32, max_pending_per_client),
	KEY(SECTION_LIMITS, "max-streams-per-client", K_U32, max_streams_per_client),
	KEY(SECTION_LIMITS, "max-fences-per-client", K_U32, max_fences_per_client),
	KEY(SECTION_LIMITS, "max-clients-per-uid", K_U32, max_clients_per_uid),
	KEY(SECTION_LIMITS, "max-buffers-per-uid", K_U32, max_buffers_per_uid),
	KEY(SECTION_LIMITS, "max-bytes-per-uid", K_SIZE64, max_bytes_per_uid),
	KEY(SECTION_LIMITS, "max-tokens-per-uid", K_U32, max_tokens_per_uid),
	KEY(SECTION_LIMITS, "max-streams-per-uid", K_U32, max_streams_per_uid),
	KEY(SECTION_LIMITS, "max-grants-per-uid", K_U32, max_grants_per_uid),
	KEY(SECTION_LIMITS, "max-pending-per-uid", K_U32, max_pending_per_uid),
	KEY(SECTION_LIMITS, "max-fences-per-uid", K_U32, max_fences_per_uid),
	KEY(SECTION_FENCES, "timeout", K_U32, fence_timeout_sec),
	KEY(SECTION_FENCES, "timeout-policy", K_POLICY, fence_timeout_policy),
	KEY(SECTION_FENCES, "hold-timeout", K_U32_OR_0, hold_timeout_sec),
	KEY(SECTION_POOL, "max-bytes", K_SIZE64_OR_0, pool_max_bytes),
	KEY(SECTION_POOL, "max-buffers", K_U32, pool_max_buffers),
};

static const char *const section_names[] = {
	[SECTION_DAEMON] = "daemon", [SECTION_BACKENDS] = "backends", [SECTION_LIMITS] = "limits",
	[SECTION_FENCES] = "fences", [SECTION_ACCESS] = "access", [SECTION_POOL] = "pool",
	[SECTION_STREAMS] = "streams",
};

/* "@video, camera, 1000": users, @groups, by name or number, into who[*n]. */
static int parse_principals(char *v, struct principal *who, unsigned *n, const char **reason)
{
	char *save = NULL;

	for (char *tok = strtok_r(v, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		struct principal *p;
		char *name = strip(tok);
		bool group = *name == '@';
		if (group)
			name++;
		if (!*name)
			return *reason = "an empty user or @group", -EINVAL;
		if (*n == CONFIG_MAX_PRINCIPALS)
			return *reason = "more than 16 users and groups", -EINVAL;
		if (strlen(name) >= sizeof(who[0].name))
			return *reason = "a user or group name longer than 32 characters", -EINVAL;
		for (const char *c = name; *c; c++)
			if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
			      *c == '_' || *c == '-' || *c == '.'))
				return *reason = "user and group names are letters, digits, '_', '-', '.'", -EINVAL;
		p = &who[(*n)++];
		p->group = group;
		snprintf(p->name, sizeof(p->name), "%s", name);
		p->resolved = parse_u32(name, &p->id);
	}
	if (*n == 0)
		return *reason = "expected users and @groups, e.g. '@video, root'", -EINVAL;
	return 0;
}

static int set_access(struct config *c, const char *backend, char *v, unsigned line, const char **reason)
{
	struct access_rule *rule;

	if (!*backend || strchr(backend, ' '))
		return *reason = "expected a backend name such as heap:reserved", -EINVAL;
	for (unsigned i = 0; i < c->n_access; i++)
		if (strcmp(c->access[i].backend, backend) == 0)
			return *reason = "backend has a rule already", -EINVAL;
	if (c->n_access == CONFIG_MAX_ACCESS)
		return *reason = "more than 16 rules", -EINVAL;
	rule = &c->access[c->n_access];
	memset(rule, 0, sizeof(*rule));
	rule->line = line;
	if (parse_principals(v, rule->who, &rule->n, reason) < 0)
		return -EINVAL;
	rule->backend = strdup(backend);
	if (!rule->backend)
		return *reason = "out of memory", -ENOMEM;
	c->n_access++;
	return 0;
}

/* [streams] NAME = principals: NAME as CreateStream takes it (1-63 of A-Z a-z 0-9 - _ .). */
static int set_stream_rule(struct config *c, const char *stream, char *v, unsigned line, const char **reason)
{
	struct stream_rule *rule;

	if (!*stream || strlen(stream) > 63)
		return *reason = "expected a stream name of 1 to 63 characters", -EINVAL;
	for (const char *ch = stream; *ch; ch++)
		if (!((*ch >= 'a' && *ch <= 'z') || (*ch >= 'A' && *ch <= 'Z') || (*ch >= '0' && *ch <= '9') ||
		      *ch == '-' || *ch == '_' || *ch == '.'))
			return *reason = "stream names are letters, digits, '-', '_', '.'", -EINVAL;
	for (unsigned i = 0; i < c->n_streams; i++)
		if (strcmp(c->streams[i].name, stream) == 0)
			return *reason = "stream has a rule already", -EINVAL;
	if (c->n_streams == CONFIG_MAX_STREAMS)
		return *reason = "more than 16 rules", -EINVAL;
	rule = &c->streams[c->n_streams];
	memset(rule, 0, sizeof(*rule));
	rule->line = line;
	if (parse_principals(v, rule->who, &rule->n, reason) < 0)
		return -EINVAL;
	rule->name = strdup(stream);
	if (!rule->name)
		return *reason = "out of memory", -ENOMEM;
	c->n_streams++;
	return 0;
}

static int resolve(struct principal *who, unsigned n, const char *section, const char *key, unsigned line,
		   char **ret_error)
{
	for (unsigned j = 0; j < n; j++) {
		struct principal *p = &who[j];
		if (p->resolved)
			continue;
		if (p->group) {
			struct group *g = getgrnam(p->name);
			if (g)
				p->id = g->gr_gid;
			p->resolved = g != NULL;
		} else {
			struct passwd *pw = getpwnam(p->name);
			if (pw)
				p->id = pw->pw_uid;
			p->resolved = pw != NULL;
		}
		if (!p->resolved) {
			if (ret_error && asprintf(ret_error, "[%s] %s (line %u): no %s named '%s'", section, key, line,
						  p->group ? "group" : "user", p->name) < 0)
				*ret_error = NULL;
			return -EINVAL;
		}
	}
	return 0;
}

int config_resolve(struct config *c, char **ret_error)
{
	int r = 0;

	for (unsigned i = 0; r >= 0 && i < c->n_access; i++)
		r = resolve(c->access[i].who, c->access[i].n, "access", c->access[i].backend, c->access[i].line,
			    ret_error);
	for (unsigned i = 0; r >= 0 && i < c->n_streams; i++)
		r = resolve(c->streams[i].who, c->streams[i].n, "streams", c->streams[i].name, c->streams[i].line,
			    ret_error);
	return r;
}

const char *config_key_name(unsigned i, const char **section)
{
	if (i >= ELEMENTSOF(keys))
		return NULL;
	*section = section_names[keys[i].section];
	return keys[i].name;
}

static int set_key(struct config *c, const struct key *k, char *v, const char **reason)
{
	char *base = (char *)c;
	int level;

	switch (k->type) {
	case K_LOGLEVEL:
		level = log_level_from_string(v);
		if (level < 0)
			return *reason = "expected err, warning, notice, info or debug", -EINVAL;
		c->log_level = level;
		return 0;
	case K_ORDER:
	case K_LIST:
		if (!parse_list(v, (char **)(base + k->offset), (unsigned *)(base + k->count_offset), reason))
			return -EINVAL;
		if (k->type == K_ORDER) {
			for (unsigned i = 0; i < c->n_order; i++) {
				bool known = false;
				for (unsigned j = 0; j < ELEMENTSOF(backend_kinds); j++)
					known |= strcmp(c->order[i], backend_kinds[j]) == 0;
				if (!known)
					return *reason = "unknown backend (known: heap, udmabuf, drm, shm)", -EINVAL;
				for (unsigned j = 0; j < i; j++)
					if (strcmp(c->order[i], c->order[j]) == 0)
						return *reason = "backend listed twice", -EINVAL;
			}
		}
		return 0;
	case K_STRING:
		if (!*v || strchr(v, '/'))
			return *reason = "expected a name (no '/')", -EINVAL;
		free(*(char **)(base + k->offset));
		*(char **)(base + k->offset) = strdup(v);
		return 0;
	case K_BOOL:
		if (!parse_bool(v, (bool *)(base + k->offset)))
			return *reason = "expected yes or no", -EINVAL;
		return 0;
	case K_SIZE64:
		if (!config_parse_size(v, (uint64_t *)(base + k->offset)) || *(uint64_t *)(base + k->offset) == 0)
			return *reason = "expected a positive size such as 4096, 64K, 256M or 2G", -EINVAL;
		return 0;
	case K_SIZE64_OR_0:
		if (!config_parse_size(v, (uint64_t *)(base + k->offset)))
			return *reason = "expected a size such as 0, 4096, 64K, 256M or 2G", -EINVAL;
		return 0;
	case K_POLICY:
		if (strcmp(v, "report") == 0)
			c->fence_timeout_policy = FENCE_POLICY_REPORT;
		else if (strcmp(v, "drop-client") == 0)
			c->fence_timeout_policy = FENCE_POLICY_DROP_CLIENT;
		else
			return *reason = "expected report or drop-client", -EINVAL;
		return 0;
	case K_U32_OR_0:
		if (!parse_u32(v, (uint32_t *)(base + k->offset)))
			return *reason = "expected a number below 2^32 (0: no limit)", -EINVAL;
		return 0;
	case K_U32:
		if (!parse_u32(v, (uint32_t *)(base + k->offset)) || *(uint32_t *)(base + k->offset) == 0)
			return *reason = "expected a positive number below 2^32", -EINVAL;
		return 0;
	}
	return -EINVAL;
}

int config_parse(struct config *c, const char *text, const char *name, char **ret_error)
{
	_cleanup_free_ char *copy = strdup(text);
	enum section section = SECTION_NONE;
	bool seen[ELEMENTSOF(keys)] = { false };
	unsigned lineno = 0;
	char *next;

	if (!copy)
		return -ENOMEM;
	for (char *line = copy; line; line = next) {
		char *s, *eq, *key, *value;
		const struct key *k = NULL;
		const char *reason = NULL;

		next = strchr(line, '\n');
		if (next)
			*next++ = 0;
		lineno++;
		s = strip(line);
		if (!*s || *s == '#' || *s == ';')
			continue;
		if (*s == '[') {
			char *close = strchr(s, ']');
			if (!close || close[1])
				return fail(ret_error, name, lineno, "malformed section header");
			*close = 0;
			section = SECTION_NONE;
			for (unsigned i = 1; i < ELEMENTSOF(section_names); i++)
				if (strcmp(strip(s + 1), section_names[i]) == 0)
					section = (enum section)i;
			if (section == SECTION_NONE)
				return fail(ret_error, name, lineno,
					    "unknown section [%s] (known: daemon, backends, limits, fences, access, pool, streams)",
					    strip(s + 1));
			continue;
		}
		eq = strchr(s, '=');
		if (!eq)
			return fail(ret_error, name, lineno, "expected 'key = value' or '[section]'");
		*eq = 0;
		key = strip(s);
		value = strip(eq + 1);
		if (section == SECTION_NONE)
			return fail(ret_error, name, lineno, "key '%s' outside of a section", key);
		if (section == SECTION_ACCESS) {
			_cleanup_free_ char *shown = strdup(value);
			if (!shown)
				return -ENOMEM;
			if (set_access(c, key, value, lineno, &reason) < 0)
				return fail(ret_error, name, lineno, "[access] %s: bad value '%s': %s", key, shown, reason);
			continue;
		}
		if (section == SECTION_STREAMS) {
			_cleanup_free_ char *shown = strdup(value);
			if (!shown)
				return -ENOMEM;
			if (set_stream_rule(c, key, value, lineno, &reason) < 0)
				return fail(ret_error, name, lineno, "[streams] %s: bad value '%s': %s", key, shown, reason);
			continue;
		}
		for (unsigned i = 0; i < ELEMENTSOF(keys) && !k; i++)
			if (keys[i].section == section && strcmp(keys[i].name, key) == 0)
				k = &keys[i];
		if (!k)
			return fail(ret_error, name, lineno, "unknown key '%s' in section [%s]", key,
				    section_names[section]);
		if (seen[k - keys])
			return fail(ret_error, name, lineno, "key '%s' set twice", key);
		seen[k - keys] = true;
		{
			/* set_key() may cut value up: keep it whole for the message. */
			_cleanup_free_ char *shown = strdup(value);
			if (!shown)
				return -ENOMEM;
			if (set_key(c, k, value, &reason) < 0)
				return fail(ret_error, name, lineno, "%s: bad value '%s': %s", key, shown, reason);
		}
	}
	return 0;
}

int config_load(struct config *c, const char *path, bool must_exist, char **ret_error)
{
	_cleanup_free_ char *text = NULL;
	FILE *f = fopen(path, "re");
	size_t len;

	if (!f) {
		int r = -errno;
		if (r == -ENOENT && !must_exist)
			return 0;
		if (ret_error && asprintf(ret_error, "%s: cannot open: %s", path, strerror(-r)) < 0)
			*ret_error = NULL;
		return r;
	}
	text = malloc(CONFIG_MAX_FILE + 1);
	len = text ? fread(text, 1, CONFIG_MAX_FILE + 1, f) : 0;
	fclose(f);
	if (!text)
		return -ENOMEM;
	if (len > CONFIG_MAX_FILE)
		return fail(ret_error, path, 0, "file larger than 1 MiB");
	text[len] = 0;
	if (strlen(text) != len)
		return fail(ret_error, path, 0, "file contains a NUL byte");
	return config_parse(c, text, path, ret_error);
}

/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "broker.h"
#include "error.h"
#include "log.h"
#include "quota.h"

static const char *const names[Q__MAX] = {
	[Q_BUFFERS] = "buffers", [Q_BYTES] = "bytes", [Q_TOKENS] = "tokens", [Q_STREAMS] = "streams",
	[Q_GRANTS] = "grants", [Q_PENDING] = "pending", [Q_FENCES] = "fences", [Q_CLIENTS] = "clients",
};

const char *quota_resource_name(enum quota_resource r)
{
	return r < Q__MAX ? names[r] : "?";
}

/* One resource's use by c, in O(1). */
static uint64_t client_use(const struct client *c, enum quota_resource r)
{
	switch (r) {
	case Q_BUFFERS: return c->n_holds + c->n_reserved;
	case Q_BYTES: return c->bytes + c->bytes_reserved;
	case Q_TOKENS: return c->n_tokens;
	case Q_STREAMS: return c->n_streams;
	case Q_GRANTS: return c->n_grants + c->n_pending_grants;
	case Q_PENDING: return c->n_pending;
	case Q_CLIENTS: return 1;
	case Q_FENCES: return c->n_fences;
	default: return 0;
	}
}

static uint64_t uid_use(const struct broker *b, uid_t uid, enum quota_resource r)
{
	uint64_t n = 0;
	for (const struct client *c = b->clients; c; c = c->next)
		if (c->uid == uid)
			n += client_use(c, r);
	return n;
}

void quota_client_usage(const struct client *c, struct usage *u)
{
	for (unsigned r = 0; r < Q__MAX; r++)
		u->v[r] = client_use(c, (enum quota_resource)r);
}

void quota_uid_usage(const struct broker *b, uid_t uid, struct usage *u)
{
	for (unsigned r = 0; r < Q__MAX; r++)
		u->v[r] = uid_use(b, uid, (enum quota_resource)r);
}

uint64_t quota_client_limit(const struct config *cfg, enum quota_resource r)
{
	switch (r) {
	case Q_BUFFERS: return cfg->max_buffers_per_client;
	case Q_BYTES: return cfg->max_bytes_per_client;
	case Q_TOKENS: return cfg->max_tokens_per_client;
	case Q_STREAMS: return cfg->max_streams_per_client;
	case Q_GRANTS: return cfg->max_grants_per_client;
	case Q_PENDING: return cfg->max_pending_per_client;
	case Q_FENCES: return cfg->max_fences_per_client;
	default: return 0;
	}
}

uint64_t quota_uid_limit(const struct config *cfg, enum quota_resource r)
{
	switch (r) {
	case Q_BUFFERS: return cfg->max_buffers_per_uid;
	case Q_BYTES: return cfg->max_bytes_per_uid;
	case Q_TOKENS: return cfg->max_tokens_per_uid;
	case Q_STREAMS: return cfg->max_streams_per_uid;
	case Q_GRANTS: return cfg->max_grants_per_uid;
	case Q_PENDING: return cfg->max_pending_per_uid;
	case Q_FENCES: return cfg->max_fences_per_uid;
	case Q_CLIENTS: return cfg->max_clients_per_uid;
	default: return 0;
	}
}

static const char *limit_key(enum quota_resource r, bool uid)
{
	static char key[48];
	snprintf(key, sizeof(key), "max-%s-per-%s", names[r], uid ? "uid" : "client");
	return key;
}

static bool over(uint64_t used, uint64_t add, uint64_t limit)
{
	return limit && (used + add > limit || used + add < used);
}

int quota_check(const struct client *c, enum quota_resource r, uint64_t add, struct error *error)
{
	const struct config *cfg = &c->broker->config;
	uint64_t used;
	int ret;

	if (c == &c->broker->self || c == &c->broker->restored)
		return 0; /* the daemon's own grants (moves), restored buffers */
	used = client_use(c, r);
	if (over(used, add, quota_client_limit(cfg, r))) {
		ret = error_setf(error, DMABROKER_E_QUOTA_EXCEEDED,
					"client %llu has %llu %s; %llu more would pass %s = %llu",
					(unsigned long long)c->id, (unsigned long long)used, names[r],
					(unsigned long long)add, limit_key(r, false),
					(unsigned long long)quota_client_limit(cfg, r));
	} else {
		used = uid_use(c->broker, c->uid, r);
		if (!over(used, add, quota_uid_limit(cfg, r)))
			return 0;
		ret = error_setf(error, DMABROKER_E_QUOTA_EXCEEDED,
					"uid %u has %llu %s across its clients; %llu more would pass %s = %llu",
					(unsigned)c->uid, (unsigned long long)used, names[r], (unsigned long long)add,
					limit_key(r, true), (unsigned long long)quota_uid_limit(cfg, r));
	}
	log_notice("refused client %llu (%s, uid %u, pid %d): %s", (unsigned long long)c->id, c->comm,
		   (unsigned)c->uid, (int)c->pid, error->message);
	return ret;
}

int quota_check_new_client(const struct broker *b, uid_t uid, pid_t pid, struct error *error)
{
	uint64_t n = uid_use(b, uid, Q_CLIENTS);

	if (!over(n, 1, b->config.max_clients_per_uid))
		return 0;
	log_notice("refused a new client of uid %u (pid %d): %llu clients, max-clients-per-uid = %u", (unsigned)uid,
		   (int)pid, (unsigned long long)n, b->config.max_clients_per_uid);
	return error_setf(error, DMABROKER_E_LIMIT_REACHED,
				 "uid %u has %llu clients, the limit (max-clients-per-uid)", (unsigned)uid,
				 (unsigned long long)n);
}

int fd_budget_check(const struct broker *b, unsigned n, struct error *error)
{
	uint64_t limit = b->config.max_fds;

	if (!over(b->fds, n, limit))
		return 0;
	log_notice("refused to take %u more fds: the daemon holds %llu for its clients, max-fds = %llu", n,
		   (unsigned long long)b->fds, (unsigned long long)limit);
	return error_setf(error, DMABROKER_E_LIMIT_REACHED,
				 "the daemon holds %llu fds for its clients; %u more would pass max-fds = %llu",
				 (unsigned long long)b->fds, n, (unsigned long long)limit);
}

int fd_budget_charge(struct broker *b, unsigned n, struct error *error)
{
	int r = fd_budget_check(b, n, error);

	if (r >= 0)
		b->fds += n;
	return r;
}

void fd_budget_charge_always(struct broker *b, unsigned n)
{
	b->fds += n;
}

void fd_budget_uncharge(struct broker *b, unsigned n)
{
	if (b->fds < n) {
		log_error("fd budget: %u fds given back, %llu were charged", n, (unsigned long long)b->fds);
		b->fds = 0;
		return;
	}
	b->fds -= n;
}

uint64_t fd_budget_headroom(const struct config *cfg)
{
	return 256 + (uint64_t)cfg->pool_max_buffers + cfg->max_clients;
}

uint64_t fd_budget_limit(const struct config *cfg, uint64_t nofile)
{
	uint64_t headroom = fd_budget_headroom(cfg);
	uint64_t most = nofile > 2 * headroom ? nofile - headroom : nofile / 2;

	if (cfg->max_fds == 0)
		return most;
	if (cfg->max_fds > most)
		log_warning("max-fds = %llu, but the fd limit is %llu and %llu of it are head-room: max-fds = %llu",
			    (unsigned long long)cfg->max_fds, (unsigned long long)nofile,
			    (unsigned long long)headroom, (unsigned long long)most);
	return cfg->max_fds < most ? cfg->max_fds : most;
}

static const struct access_rule *rule_for(const struct config *cfg, const struct backend *be)
{
	for (unsigned i = 0; i < cfg->n_access; i++)
		if (strcmp(cfg->access[i].backend, be->name) == 0)
			return &cfg->access[i];
	return NULL;
}

bool client_in_group(const struct client *c, uint32_t gid)
{
	/* the groups the bus reports (creds.c), not the process as it is now */
	for (unsigned i = 0; i < c->n_groups; i++)
		if (c->groups[i] == gid)
			return true;
	return false;
}

static bool matches(const struct client *c, const struct principal *p)
{
	if (!p->resolved)
		return false;
	return p->group ? client_in_group(c, p->id) : c->uid == p->id;
}

bool access_rules_allow(const struct client *c, const struct backend *be)
{
	const struct access_rule *rule = rule_for(&c->broker->config, be);

	if (!rule || c == &c->broker->self)
		return true;
	for (unsigned i = 0; i < rule->n; i++)
		if (matches(c, &rule->who[i]))
			return true;
	return false;
}

int access_rules_refuse(const struct client *c, const struct backend *be, struct error *error)
{
	const struct access_rule *rule = rule_for(&c->broker->config, be);
	char who[256] = "";

	for (unsigned i = 0; rule && i < rule->n; i++)
		snprintf(who + strlen(who), sizeof(who) - strlen(who), "%s%s%s", i ? ", " : "",
			 rule->who[i].group ? "@" : "", rule->who[i].name);
	log_notice("refused client %llu (%s, uid %u, pid %d): may not allocate from %s ([access] allows %s)",
		   (unsigned long long)c->id, c->comm, (unsigned)c->uid, (int)c->pid, be->name, who);
	return error_setf(error, DMABROKER_E_NOT_PERMITTED,
				 "uid %u may not allocate from %s: the daemon's [access] rule allows only %s",
				 (unsigned)c->uid, be->name, who);
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

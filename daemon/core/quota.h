/* SPDX-License-Identifier: MIT */
/*
 * Quotas and access rules (quota.c): every limit a client can run into, per
 * client and per uid (summed over that uid's clients), checked in one
 * place that names the limit in the error and logs the refusal; and the
 * [access] rules on which users may allocate from which backend.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>


#include "error.h"

struct broker;
struct client;
struct backend;
struct config;

enum quota_resource {
	Q_BUFFERS,      /* buffers held */
	Q_BYTES,        /* bytes of the buffers held */
	Q_TOKENS,       /* live sharing tokens */
	Q_STREAMS,      /* streams produced or consumed */
	Q_GRANTS,       /* active access grants */
	Q_PENDING,      /* access requests waiting */
	Q_FENCES,       /* release fences the daemon keeps for it */
	Q_CLIENTS,      /* per uid only: clients */
	Q__MAX,
};

struct usage {
	uint64_t v[Q__MAX];
};

const char *quota_resource_name(enum quota_resource r);
void quota_client_usage(const struct client *c, struct usage *u);
void quota_uid_usage(const struct broker *b, uid_t uid, struct usage *u);
/* The configured limits (0: none for that scope). */
uint64_t quota_client_limit(const struct config *cfg, enum quota_resource r);
uint64_t quota_uid_limit(const struct config *cfg, enum quota_resource r);

/*
 * Would `add` more of r pass c's limit or its uid's? 0, or -EDQUOT with a
 * QuotaExceeded error naming the limit (and a log line).
 */
int quota_check(const struct client *c, enum quota_resource r, uint64_t add, struct error *error);
/* A new client of uid: within max-clients-per-uid? */
int quota_check_new_client(const struct broker *b, uid_t uid, pid_t pid, struct error *error);

/*
 * The daemon-wide fd budget ([limits] max-fds): the fds the daemon holds on
 * its clients' behalf (buffers, kept fences, direct connections, access
 * channels, streams' channels and fences), charged before they are taken
 * and given back when closed. fd_budget_charge(): 0, or -EUSERS with a
 * LimitReached error naming max-fds (and a log line); nothing is charged
 * then. fd_budget_charge_always(): for fds the daemon has already (buffers
 * restored from the fd store).
 */
int fd_budget_charge(struct broker *b, unsigned n, struct error *error);
/* As fd_budget_charge(), without charging: for a taker that charges itself (always) right after. */
int fd_budget_check(const struct broker *b, unsigned n, struct error *error);
void fd_budget_charge_always(struct broker *b, unsigned n);
void fd_budget_uncharge(struct broker *b, unsigned n);
/*
 * The fds the daemon keeps for itself out of RLIMIT_NOFILE: the event loop
 * and the bus, backends' devices, the pool, the fd store's messages, new
 * clients' first calls and fds in replies on their way out.
 */
uint64_t fd_budget_headroom(const struct config *cfg);
/* max-fds for an fd limit of nofile: the configured value, or (0: auto) nofile less the headroom. */
uint64_t fd_budget_limit(const struct config *cfg, uint64_t nofile);

/* Whether c may allocate from be under the config's [access] rules. */
bool access_rules_allow(const struct client *c, const struct backend *be);
/* The NotPermitted error (and log line) for a refused backend. */
int access_rules_refuse(const struct client *c, const struct backend *be, struct error *error);
/* Drops the candidates c may not allocate from; none left: -EPERM, NotPermitted. */
int filter_allowed(const struct client *c, struct backend **candidates, unsigned *n, struct error *error);
/* Whether gid is among the groups the bus reported for c when it connected. */
bool client_in_group(const struct client *c, uint32_t gid);

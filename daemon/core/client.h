/* SPDX-License-Identifier: MIT */
/*
 * Clients (client.c): one per bus peer, with the credentials the bus
 * vouched for, what it holds and what it is charged; its transports keep
 * their own state on it (client_link, transport.h).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "error.h"
#include "transport.h"

struct access_channel;
struct broker;
struct bus_client;
struct grant;
struct hold;
struct kept_fence;

struct client {
	struct broker *broker;
	uint64_t id;
	char *bus_name;                 /* unique name; NULL once it left the bus */
	uid_t uid;
	gid_t gid;                      /* (gid_t)-1: the bus does not report a primary group */
	gid_t groups[32];               /* the groups the bus reports (creds.c) */
	unsigned n_groups;
	pid_t pid;
	char comm[32];                  /* for logs and lists only, read at creation */
	struct hold *holds;
	unsigned n_holds, n_tokens, n_directs, n_streams;
	uint64_t bytes;                 /* size of every buffer it holds */
	unsigned n_reserved;            /* allocations in flight, charged before they are taken (allocate.c) */
	uint64_t bytes_reserved;
	struct client_link *links;      /* its transports' state: freed with it */
	struct bus_client *bus;         /* the bus's (bus/), while it is reachable there */
	struct grant *grants;
	unsigned n_grants, n_pending;
	struct kept_fence *fences;      /* release fences it handed over, still kept (access.c) */
	unsigned n_fences;
	unsigned n_pending_grants;      /* grants its waiting requests ask for: charged at queue time */
	struct access_channel *access_channel; /* its access channel (channel/), or NULL */
	uint32_t fence_timeouts;        /* its fences that missed their deadline */
	uint32_t grant_timeouts;        /* its grants held past hold-timeout */
	uint64_t created_usec;
	struct client *next;
};

/* client.c */
struct client *client_find_by_name(struct broker *b, const char *name);
/* What the bus vouches for about a peer (GetConnectionCredentials). */
struct client_creds {
	uid_t uid;
	pid_t pid;
	gid_t groups[32];
	unsigned n_groups;
};
/* A client for bus peer bus_name, with the credentials the bus vouched for. */
int client_new(struct broker *b, const char *bus_name, const struct client_creds *creds, struct client **ret,
	       struct error *error);
void client_free(struct client *c);
bool client_is_admin(const struct client *c);

/* SPDX-License-Identifier: MIT */
/*
 * Clients: one per bus peer (by unique name), created on its first call,
 * with the credentials the bus vouches for. Its transports (the bus, its
 * direct connections, its access channel) keep their own state on it
 * (client_link) and decide when it goes; then everything it holds is
 * released.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "broker.h"
#include "cleanup.h"
#include "error.h"
#include "log.h"
#include "printable.h"
#include "quota.h"
#include "stream.h"

struct client *client_find_by_name(struct broker *b, const char *name)
{
	for (struct client *c = b->clients; c; c = c->next)
		if (c->bus_name && strcmp(c->bus_name, name) == 0)
			return c;
	return NULL;
}

bool client_is_admin(const struct client *c)
{
	return c->uid == 0 || c->uid == c->broker->uid;
}

void client_link_add(struct client *c, struct client_link *l)
{
	l->next = c->links;
	c->links = l;
}

void client_link_remove(struct client *c, struct client_link *l)
{
	for (struct client_link **p = &c->links; *p; p = &(*p)->next)
		if (*p == l) {
			*p = l->next;
			break;
		}
}

void client_free(struct client *c)
{
	struct broker *b = c->broker;

	log_debug("client %llu (%s, pid %d) gone: releasing %u buffers",
		  (unsigned long long)c->id, c->bus_name ? c->bus_name : "off the bus", (int)c->pid, c->n_holds);
	/* its transports first: nothing reaches it any more (its channel's queued BEGINs go too) */
	while (c->links) {
		struct client_link *l = c->links;
		c->links = l->next;
		l->free(l);
	}
	access_drop_client(c);
	access_forget_fences(c);
	stream_drop_client(b, c);
	tokens_drop_for_client(b, c);
	while (c->holds)
		buffer_release(c->holds);
	for (struct client **p = &b->clients; *p; p = &(*p)->next)
		if (*p == c) {
			*p = c->next;
			break;
		}
	b->n_clients--;
	free(c->bus_name);
	free(c);
	broker_trim_later(b);
}

/* For logs and lists only: never for a decision (the pid may be reused by now). */
static void read_comm(pid_t pid, char *buf, size_t size)
{
	char path[64];
	ssize_t n = -1;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd >= 0) {
		n = read(fd, buf, size - 1);
		close(fd);
	}
	if (n <= 0)
		n = snprintf(buf, size, "?");
	buf[n] = 0;
	buf[strcspn(buf, "\n")] = 0;
}

int client_new(struct broker *b, const char *bus_name, const struct client_creds *creds, struct client **ret,
	       struct error *error)
{
	_cleanup_free_ struct client *c = NULL;
	int r;

	if (b->n_clients >= b->config.max_clients)
		return error_setf(error, DMABROKER_E_LIMIT_REACHED,
					 "the broker serves %u clients, the limit (max-clients)", b->n_clients);
	r = quota_check_new_client(b, creds->uid, creds->pid, error);
	if (r < 0)
		return r;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->bus_name = strdup(bus_name);
	if (!c->bus_name)
		return -ENOMEM;
	c->broker = b;
	c->uid = creds->uid;
	c->gid = (gid_t)-1;
	c->pid = creds->pid;
	c->n_groups = creds->n_groups < ELEMENTSOF(c->groups) ? creds->n_groups : ELEMENTSOF(c->groups);
	memcpy(c->groups, creds->groups, c->n_groups * sizeof(c->groups[0]));
	{
		/* the process names itself: printable, for lists, logs and errors */
		char comm[sizeof(c->comm)];
		read_comm(c->pid, comm, sizeof(comm));
		printable(comm, c->comm, sizeof(c->comm));
	}
	c->id = ++b->next_client_id;
	c->created_usec = now_usec();
	c->next = b->clients;
	b->clients = c;
	b->n_clients++;
	log_debug("client %llu: %s uid %u pid %d (%s), %u groups", (unsigned long long)c->id, c->bus_name,
		  (unsigned)c->uid, (int)c->pid, c->comm, c->n_groups);
	*ret = TAKE_PTR(c);
	return 0;
}

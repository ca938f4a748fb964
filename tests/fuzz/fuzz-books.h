/* SPDX-License-Identifier: MIT */
/*
 * The daemon's books as the targets that run a broker check them: a client
 * registered as the bus would register it, and the walks every target
 * makes after each step (each buffer's holders, grants and waiters; each
 * grant and waiting request on the lists that name it; each client's
 * counters). A target adds what only it reaches. Include after
 * fuzz-util.h and broker.h.
 */
#pragma once

#include "broker.h"

/* A client of uid (not an admin), registered with b as a bus client would be. */
static inline struct client *books_new_client(struct broker *b, uid_t uid)
{
	struct client *c = calloc(1, sizeof(*c));

	check(c);
	c->broker = b;
	c->id = ++b->next_client_id;
	c->uid = uid;
	c->gid = uid;
	c->pid = getpid();
	snprintf(c->comm, sizeof(c->comm), "fuzz");
	c->next = b->clients;
	b->clients = c;
	b->n_clients++;
	return c;
}

/* A client of b's, or one of the daemon's own two (its moves, buffers restored from the fd store). */
static inline bool books_client_alive(const struct broker *b, const struct client *c)
{
	if (c == &b->self || c == &b->restored)
		return true;
	for (const struct client *x = b->clients; x; x = x->next)
		if (x == c)
			return true;
	return false;
}

/*
 * buf's holders, grants and waiters are where its counters say, and each
 * belongs to what is alive; returns how many grants it has.
 */
static inline unsigned books_check_buffer(struct broker *b, struct buffer *buf)
{
	unsigned holders = 0, readers = 0, writers = 0, waiters = 0, grants = 0;

	for (struct hold *h = buf->holders; h; h = h->next_in_buffer) {
		check(h->buffer == buf && books_client_alive(b, h->client) && buffer_held_by(buf, h->client) == h);
		holders++;
	}
	check(holders == buf->n_holders && (holders > 0 || buf->stream));
	for (struct grant *g = buf->resv.grants; g; g = g->next_in_buffer) {
		check(g->buf == buf && hashmap_get(&b->grants, g->id) == g);
		readers += g->mode == DMABROKER_ACCESS_READ;
		writers += g->mode == DMABROKER_ACCESS_WRITE;
		grants++;
	}
	check(readers == buf->resv.readers && writers == buf->resv.writer && !(readers && writers));
	for (struct request *r = b->pending; r; r = r->next)
		for (unsigned k = 0; k < r->n; k++)
			waiters += r->bufs[k] == buf;
	check(waiters == buf->resv.waiters);
	return grants;
}

/*
 * Every grant (n_grants of them on the buffers' lists) belongs to a live
 * client and a live buffer and is on both their lists; every waiting
 * request is a live client's and names live buffers.
 */
static inline void books_check_grants(struct broker *b, unsigned n_grants)
{
	uint64_t key;
	void *v;

	check(n_grants == b->grants.len);
	for (size_t i = 0; hashmap_next(&b->grants, &i, &key, &v);) {
		struct grant *g = v;
		bool listed = false;
		check(g->id == key && books_client_alive(b, g->client));
		check(hashmap_get(&b->buffers, g->buf->id) == g->buf);
		for (struct grant *x = g->client->grants; x && !listed; x = x->next_in_client)
			listed = x == g;
		check(listed);
	}
	for (struct request *r = b->pending; r; r = r->next) {
		check(books_client_alive(b, r->client) && r->n >= 1 && r->n <= DMABROKER_ACCESS_MAX_MULTI);
		for (unsigned k = 0; k < r->n; k++)
			check(hashmap_get(&b->buffers, r->bufs[k]->id) == r->bufs[k]);
	}
}

/*
 * c's holds and bytes, grants, waiting requests and the grants they ask
 * for are what is registered to it; a client (not the daemon's own) holds
 * no more than max-buffers-per-client.
 */
static inline void books_check_client(struct broker *b, struct client *c, bool is_client)
{
	uint64_t held = 0;
	unsigned holds = 0, grants = 0, pending = 0, pending_grants = 0;

	for (struct hold *h = c->holds; h; h = h->next_in_client) {
		check(h->client == c && buffer_held_by(h->buffer, c) == h);
		held += h->buffer->size;
		holds++;
	}
	check(held == c->bytes && holds == c->n_holds);
	check(!is_client || holds <= b->config.max_buffers_per_client);
	for (struct grant *g = c->grants; g; g = g->next_in_client) {
		check(g->client == c && hashmap_get(&b->grants, g->id) == g);
		grants++;
	}
	check(grants == c->n_grants);
	for (struct request *r = b->pending; r; r = r->next)
		if (r->client == c) {
			pending++;
			pending_grants += r->n;
		}
	check(pending == c->n_pending && pending_grants == c->n_pending_grants);
}

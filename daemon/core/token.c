/* SPDX-License-Identifier: MIT */
/*
 * Sharing tokens: capabilities to open a buffer. 128 random bits from
 * getrandom(), so unguessable; revocable by their creator; optionally
 * single-use; always with an expiry (at most max-token-ttl). A token dies
 * with its buffer and with the client that created it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "broker.h"
#include "error.h"
#include "printable.h"
#include "quota.h"
#include "stream.h"

static uint64_t token_key(const char *value)
{
	uint64_t k = 0;
	/* The first 16 hex digits are 64 random bits: a fine hash key. */
	for (int i = 0; i < 16 && value[i]; i++)
		k = (k << 4) | (uint64_t)(value[i] <= '9' ? value[i] - '0' : (value[i] | 0x20) - 'a' + 10);
	return k;
}

static bool token_well_formed(const char *value)
{
	size_t n = strlen(value);
	if (n != 32)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((value[i] >= '0' && value[i] <= '9') || (value[i] >= 'a' && value[i] <= 'f')))
			return false;
	return true;
}

static struct token *token_find(struct broker *b, const char *value)
{
	struct token *t;
	if (!token_well_formed(value))
		return NULL;
	t = hashmap_get(&b->tokens, token_key(value));
	return t && strcmp(t->value, value) == 0 ? t : NULL;
}

void token_free(struct token *t)
{
	struct broker *b = t->creator->broker;

	for (struct token **p = &t->buffer->tokens; *p; p = &(*p)->next_in_buffer)
		if (*p == t) {
			*p = t->next_in_buffer;
			break;
		}
	hashmap_remove(&b->tokens, t->key);
	t->creator->n_tokens--;
	free(t);
}

static void sweep_expired(struct client *c)
{
	struct broker *b = c->broker;
	uint64_t now = now_usec();
	struct token *dead[64];
	unsigned n = 0;
	uint64_t key;
	void *v;

	for (size_t i = 0; n < 64 && hashmap_next(&b->tokens, &i, &key, &v);) {
		struct token *t = v;
		if (t->creator == c && (t->expires_usec <= now || t->used))
			dead[n++] = t;
	}
	for (unsigned i = 0; i < n; i++)
		token_free(dead[i]);
}

int token_create(struct buffer *buf, struct client *c, uint32_t flags, uint32_t ttl_sec,
		 const char **ret_value, struct error *error)
{
	struct broker *b = c->broker;
	uint8_t rnd[16];
	struct token *t;
	int r = stream_check_direct_use(buf, error);

	if (r < 0)
		return r;
	if (flags & ~DMABROKER_TOKEN_SINGLE_USE)
		return error_setf(error, DMABROKER_E_INVALID_ARGUMENT, "unknown token flags 0x%x (known: 1 = single use)",
					 flags & ~DMABROKER_TOKEN_SINGLE_USE);
	if (ttl_sec == 0 || ttl_sec > b->config.max_token_ttl)
		ttl_sec = b->config.max_token_ttl;
	if (c->n_tokens >= b->config.max_tokens_per_client)
		sweep_expired(c);
	r = quota_check(c, Q_TOKENS, 1, error);
	if (r < 0)
		return r;
	if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd))
		return -errno;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	for (int i = 0; i < 16; i++)
		snprintf(t->value + 2 * i, 3, "%02x", rnd[i]);
	t->key = token_key(t->value);
	if (hashmap_get(&b->tokens, t->key)) { /* 2^-64: refuse rather than shadow */
		free(t);
		return -EEXIST;
	}
	r = hashmap_put(&b->tokens, t->key, t);
	if (r < 0) {
		free(t);
		return r;
	}
	t->buffer = buf;
	t->creator = c;
	t->single_use = flags & DMABROKER_TOKEN_SINGLE_USE;
	t->expires_usec = now_usec() + (uint64_t)ttl_sec * 1000000u;
	t->next_in_buffer = buf->tokens;
	buf->tokens = t;
	c->n_tokens++;
	*ret_value = t->value;
	return 0;
}

int token_revoke(struct broker *b, struct client *c, const char *value, struct error *error)
{
	struct token *t = token_find(b, value);

	if (!t || t->creator != c)
		return error_setf(error, DMABROKER_E_TOKEN_UNKNOWN, "no token '%s' created by this client",
					 PRINTABLE(value));
	token_free(t);
	return 0;
}

int token_redeem(struct broker *b, const char *value, struct token **ret, struct error *error)
{
	struct token *t = token_find(b, value);

	if (!t)
		return error_setf(error, DMABROKER_E_TOKEN_UNKNOWN,
					 "token '%s' is not valid: mistyped, revoked, or its buffer is gone",
					 PRINTABLE(value));
	if (t->used)
		return error_set(error, DMABROKER_E_TOKEN_USED,
					"this single-use token was used already; ask the buffer's owner for a new one");
	if (now_usec() >= t->expires_usec) {
		token_free(t);
		return error_set(error, DMABROKER_E_TOKEN_EXPIRED,
					"the token has expired; ask the buffer's owner for a new one");
	}
	*ret = t;
	return 0;
}

void token_consumed(struct token *t)
{
	if (t->single_use)
		t->used = true;
}

void tokens_drop_for_client(struct broker *b, struct client *c)
{
	while (c->n_tokens) {
		uint64_t key;
		void *v;
		bool found = false;
		for (size_t i = 0; hashmap_next(&b->tokens, &i, &key, &v);) {
			if (((struct token *)v)->creator == c) {
				token_free(v);
				found = true;
				break;
			}
		}
		if (!found)
			break;
	}
}

int token_open(struct client *c, const char *value, struct buffer **ret, struct error *error)
{
	struct token *t;
	int r = token_redeem(c->broker, value, &t, error);

	if (r >= 0)
		r = buffer_hold(t->buffer, c, error);
	if (r < 0)
		return r;
	*ret = t->buffer;
	token_consumed(t);
	return 0;
}

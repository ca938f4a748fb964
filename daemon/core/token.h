/* SPDX-License-Identifier: MIT */
/* Sharing tokens (token.c): a buffer handed to another client by a secret. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "error.h"

struct broker;
struct buffer;
struct client;

struct token {
	char value[33];                 /* 128 random bits, hex */
	uint64_t key;
	struct buffer *buffer;
	struct client *creator;
	bool single_use, used;
	uint64_t expires_usec;          /* CLOCK_MONOTONIC */
	struct token *next_in_buffer;
};

/* token.c */
int token_create(struct buffer *buf, struct client *c, uint32_t flags, uint32_t ttl_sec,
		 const char **ret_value, struct error *error);
int token_revoke(struct broker *b, struct client *c, const char *value, struct error *error);
/* OpenToken: c holds the token's buffer (*ret) from now on. */
int token_open(struct client *c, const char *value, struct buffer **ret, struct error *error);
/* Finds a usable token; call token_consumed() once the buffer was opened. */
int token_redeem(struct broker *b, const char *value, struct token **ret, struct error *error);
void token_consumed(struct token *t);
void token_free(struct token *t);
void tokens_drop_for_client(struct broker *b, struct client *c);

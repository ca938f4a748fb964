/* SPDX-License-Identifier: MIT */
/* Unit tests of daemon/core/token.c, without a bus: randomness and format,
 * single use, expiry, revocation by the creator only, the per-client quota,
 * and tokens dying with their buffer. */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "broker.h"
#include "error.h"
#include "tap.h"

TAP_DEFINE;

static struct broker b;
static struct client alice, bob;
static struct buffer buf;

static void setup(void)
{
	memset(&b, 0, sizeof(b));
	config_init(&b.config);
	b.config.max_tokens_per_client = 4;
	b.config.max_token_ttl = 3600;
	alice = (struct client){ .broker = &b, .id = 1 };
	bob = (struct client){ .broker = &b, .id = 2 };
	buf = (struct buffer){ .id = 7 };
}

static void teardown(void)
{
	while (buf.tokens)
		token_free(buf.tokens);
	hashmap_clear(&b.tokens);
	config_free(&b.config);
}

static bool step_format_and_uniqueness(void)
{
	struct error e = ERROR_NULL;
	char seen[4][33];
	const char *v;
	struct token *t;

	setup();
	for (int i = 0; i < 4; i++) {
		CHECK(token_create(&buf, &alice, 0, 0, &v, &e) == 0);
		CHECK(strlen(v) == 32 && strspn(v, "0123456789abcdef") == 32);
		for (int j = 0; j < i; j++)
			CHECK(strcmp(seen[j], v) != 0);
		memcpy(seen[i], v, 33);
	}
	for (int i = 0; i < 4; i++) {
		CHECK(token_redeem(&b, seen[i], &t, &e) == 0 && t->buffer == &buf);
	}
	/* Case and length matter; so does every digit. */
	seen[0][0] = seen[0][0] == 'a' ? 'b' : 'a';
	CHECK(token_redeem(&b, seen[0], &t, &e) == -ENOKEY);
	e = ERROR_NULL;
	CHECK(token_redeem(&b, "", &t, &e) == -ENOKEY);
	e = ERROR_NULL;
	teardown();
	return true;
}

static bool step_single_use(void)
{
	struct error e = ERROR_NULL;
	struct token *t;
	const char *v;
	char copy[33];

	setup();
	CHECK(token_create(&buf, &alice, DMABROKER_TOKEN_SINGLE_USE, 0, &v, &e) == 0);
	memcpy(copy, v, 33);
	CHECK(token_redeem(&b, copy, &t, &e) == 0);
	/* Not spent until the buffer was opened: a failed open keeps it. */
	CHECK(token_redeem(&b, copy, &t, &e) == 0);
	token_consumed(t);
	CHECK(token_redeem(&b, copy, &t, &e) == -EKEYREVOKED);
	CHECK(e.code == DMABROKER_E_TOKEN_USED);
	e = ERROR_NULL;
	teardown();
	return true;
}

static bool step_expiry(void)
{
	struct error e = ERROR_NULL;
	struct token *t;
	const char *v;
	char copy[33];

	setup();
	CHECK(token_create(&buf, &alice, 0, 1, &v, &e) == 0);
	memcpy(copy, v, 33);
	CHECK(token_redeem(&b, copy, &t, &e) == 0);
	t->expires_usec = now_usec() - 1; /* as if a second passed */
	CHECK(token_redeem(&b, copy, &t, &e) == -EKEYEXPIRED);
	e = ERROR_NULL;
	/* An expired token is gone: it no longer counts against the quota. */
	CHECK(alice.n_tokens == 0);
	/* A ttl above the maximum is cut to it. */
	CHECK(token_create(&buf, &alice, 0, 999999, &v, &e) == 0);
	CHECK(token_redeem(&b, v, &t, &e) == 0 && t->expires_usec <= now_usec() + 3600ull * 1000000u);
	teardown();
	return true;
}

static bool step_revoke_and_quota(void)
{
	struct error e = ERROR_NULL;
	struct token *t;
	const char *v;
	char copy[33];

	setup();
	CHECK(token_create(&buf, &alice, 0, 0, &v, &e) == 0);
	memcpy(copy, v, 33);
	CHECK(token_revoke(&b, &bob, copy, &e) == -ENOKEY);
	e = ERROR_NULL;
	CHECK(token_revoke(&b, &alice, copy, &e) == 0);
	CHECK(token_redeem(&b, copy, &t, &e) == -ENOKEY);
	e = ERROR_NULL;
	for (int i = 0; i < 4; i++)
		CHECK(token_create(&buf, &alice, 0, 0, &v, &e) == 0);
	CHECK(token_create(&buf, &alice, 0, 0, &v, &e) == -EDQUOT);
	CHECK(e.code == DMABROKER_E_QUOTA_EXCEEDED);
	e = ERROR_NULL;
	CHECK(token_create(&buf, &bob, 0, 0, &v, &e) == 0); /* a quota per client */
	CHECK(token_create(&buf, &alice, 0x2, 0, &v, &e) == -EINVAL);
	e = ERROR_NULL;
	/* The creator leaving takes its tokens along, not the others'. */
	tokens_drop_for_client(&b, &alice);
	CHECK(alice.n_tokens == 0 && bob.n_tokens == 1 && b.tokens.len == 1);
	teardown();
	CHECK(bob.n_tokens == 0 && b.tokens.len == 0);
	return true;
}

int main(void)
{
	tap_plan(4);
	tap_step("128-bit hex tokens, all different, exact match only", step_format_and_uniqueness);
	tap_step("single use, spent only once the buffer is open", step_single_use);
	tap_step("expiry, and ttl capped at max-token-ttl", step_expiry);
	tap_step("revocation by the creator, quota per client, dropped with the creator", step_revoke_and_quota);
	return tap_done();
}

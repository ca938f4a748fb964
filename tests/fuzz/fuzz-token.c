/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: sharing tokens (token.c), as CreateToken, OpenToken and
 * RevokeToken use them, against a model of what must happen.
 *
 * Each input starts afresh: three clients (alice and bob of one uid,
 * mallory of another) and two buffers of alice's, registered in a real
 * broker. Then up to 48 steps, each chosen by the input: a client mints a
 * token on a buffer it holds (flags and ttl from the input, so that unknown
 * flags, the ttl clamp, the expired-or-used sweep and the per-client and
 * per-uid quotas are reached); a client redeems a string and, as OpenToken
 * does, holds the buffer and consumes the token; a client revokes a string;
 * a token's expiry passes (its deadline is set in the past: the clock
 * moved on); a client releases a buffer (its last holder frees it, and its
 * tokens with it); a client leaves. The string is a token the daemon really
 * minted in this input, such a token mutated (a character changed,
 * upper-cased, cut or lengthened, which keeps or breaks the hash key), or
 * bytes of the input, so that the redemption succeeds and every refusal
 * (TokenUnknown, TokenUsed, TokenExpired) is reached.
 *
 * Every answer must be the model's, by error name. After every step the
 * books must match the model: each live token in the table and on its
 * buffer's list, with its creator, buffer, single-use and used flags, each
 * client's n_tokens, each buffer alive or gone. When the clients have left
 * nothing is left: no token, no buffer, the fd budget where it was and the
 * process's fds as before the input.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker.h"
#include "errors.h"
#include "fd-util.h"
#include "log.h"
#include "quota.h"

#define FUZZ_NAME "fuzz-token"
#include "fuzz-util.h"
#include "fuzz-books.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { N_CLIENTS = 3, N_BUFFERS = 2, MAX_TOKENS = 48, MAX_STEPS = 48 };
enum { PER_CLIENT = 4, PER_UID = 6 };

static struct broker b;
static sd_event *event;

/* The model: what the daemon must have. */
static struct {
	struct client *c;               /* NULL once it left */
	uid_t uid;
} clients[N_CLIENTS];

static struct {
	struct buffer *buf;             /* NULL once freed */
	uint64_t id;
	bool held[N_CLIENTS];
} bufs[N_BUFFERS];

static struct {
	char value[33];
	unsigned buf, creator;
	bool single_use, used, expired, live;
} toks[MAX_TOKENS];
static unsigned n_toks;

/* With FUZZ_TOKEN_STATS set: how often each answer came, at exit (shows every path is reached). */
enum { A_MINTED, A_INVALID, A_QUOTA, A_SWEPT, A_REDEEMED, A_UNKNOWN, A_USED, A_EXPIRED, A_REVOKED, A_NOT_REVOKED, A__MAX };
static const char *const answer_names[A__MAX] = {
	"minted", "invalid flags", "quota exceeded", "swept", "redeemed", "unknown", "used", "expired", "revoked",
	"not revoked",
};
static unsigned long answers[A__MAX];

static void print_stats(void)
{
	for (unsigned i = 0; i < A__MAX; i++)
		fprintf(stderr, "fuzz-token: %-16s %10lu\n", answer_names[i], answers[i]);
}

static struct token *find_token(const char *value)
{
	uint64_t key;
	void *v;

	for (size_t i = 0; hashmap_next(&b.tokens, &i, &key, &v);)
		if (strcmp(((struct token *)v)->value, value) == 0)
			return v;
	return NULL;
}

/* The live model token with exactly this value, or -1. */
static int model_find(const char *s)
{
	for (unsigned i = 0; i < n_toks; i++)
		if (toks[i].live && strcmp(toks[i].value, s) == 0)
			return (int)i;
	return -1;
}

static unsigned model_count(int creator, int buf)
{
	unsigned n = 0;
	for (unsigned i = 0; i < n_toks; i++)
		n += toks[i].live && (creator < 0 || toks[i].creator == (unsigned)creator) &&
		     (buf < 0 || toks[i].buf == (unsigned)buf);
	return n;
}

static void check_books(void)
{
	unsigned live = model_count(-1, -1);

	check(b.tokens.len == live);
	for (unsigned i = 0; i < n_toks; i++) {
		struct token *t = find_token(toks[i].value);
		check(!t == !toks[i].live);
		if (!t)
			continue;
		check(t->creator == clients[toks[i].creator].c && t->buffer == bufs[toks[i].buf].buf);
		check(t->single_use == toks[i].single_use && t->used == toks[i].used);
	}
	for (unsigned k = 0; k < N_CLIENTS; k++)
		if (clients[k].c)
			check(clients[k].c->n_tokens == model_count((int)k, -1));
	for (unsigned j = 0; j < N_BUFFERS; j++) {
		unsigned n = 0;
		check(!buffer_find(&b, bufs[j].id) == !bufs[j].buf);
		if (!bufs[j].buf)
			continue;
		for (struct token *t = bufs[j].buf->tokens; t; t = t->next_in_buffer) {
			check(t->buffer == bufs[j].buf && find_token(t->value) == t);
			n++;
		}
		check(n == model_count(-1, (int)j));
		for (unsigned k = 0; k < N_CLIENTS; k++)
			check(!clients[k].c || !buffer_held_by(bufs[j].buf, clients[k].c) == !bufs[j].held[k]);
	}
}

static void expect_error(const struct error *e, int r, int code)
{
	if (r < 0 && e->code == code && r == -dmabroker_error_code_errno(code))
		return;
	fprintf(stderr, "fuzz-token: expected %s, got %d %s: %s\n", dmabroker_error_code_name(code), r,
		error_name(e) ? error_name(e) : "(no named error)", e->message);
	abort();
}

/* A token of this input as it is, changed, or bytes of the input. */
static void choose_string(struct input *in, char *s, size_t size)
{
	static const char charset[] = "0123456789abcdefABCDEFg \x7f\xff";
	uint8_t sel = byte(in);

	s[0] = 0;
	if (sel < 200 && n_toks)
		snprintf(s, size, "%s", toks[byte(in) % n_toks].value);
	if (sel >= 112 && sel < 200) {
		/* changed: 1 to 3 edits; a position past the end lengthens it, a NUL cuts it */
		for (unsigned k = 0, n = 1 + byte(in) % 3; k < n; k++) {
			size_t len = strlen(s), pos = byte(in) % 36;
			uint8_t ch = byte(in);
			char c = ch < 240 ? charset[ch % (sizeof(charset) - 1)] : 0;
			if (pos >= len && len + 1 < size) {
				s[len] = c ? c : 'a';
				s[len + 1] = 0;
			} else if (pos < len) {
				s[pos] = c;
			}
		}
	} else if (sel >= 200) {
		size_t n = byte(in) % 40;
		for (size_t i = 0; i < n && i + 1 < size; i++) {
			s[i] = (char)byte(in);
			if (!s[i])
				s[i] = '0';
			s[i + 1] = 0;
		}
	}
}

static void drop_tokens(bool (*gone)(unsigned i, unsigned arg), unsigned arg)
{
	for (unsigned i = 0; i < n_toks; i++)
		if (toks[i].live && gone(i, arg))
			toks[i].live = false;
}

static bool of_buffer(unsigned i, unsigned j)
{
	return toks[i].buf == j;
}

static bool of_creator(unsigned i, unsigned k)
{
	return toks[i].creator == k;
}

/* The model: buffer j lost its holder k; with none left it is freed, and its tokens with it. */
static void model_released(unsigned j, unsigned k)
{
	bool any = false;

	bufs[j].held[k] = false;
	for (unsigned x = 0; x < N_CLIENTS; x++)
		any |= bufs[j].held[x];
	if (!any) {
		bufs[j].buf = NULL;
		drop_tokens(of_buffer, j);
	}
}

static void op_mint(struct input *in, unsigned k)
{
	struct error e = ERROR_NULL;
	unsigned j = byte(in) % N_BUFFERS, uid_tokens = 0;
	uint8_t f = byte(in), tsel = byte(in);
	uint32_t flags = f < 224 ? f & DMABROKER_TOKEN_SINGLE_USE : f;
	/* 0 (the most), or long enough not to pass while the input runs; past max-token-ttl: clamped */
	uint32_t ttl = tsel < 64 ? 0 : 60u * tsel, clamped = ttl == 0 || ttl > b.config.max_token_ttl ? b.config.max_token_ttl : ttl;
	const char *value = NULL;
	uint64_t before = now_usec();
	int r;

	if (!bufs[j].buf || !bufs[j].held[k]) /* CreateToken wants a buffer the caller holds */
		return;
	r = token_create(bufs[j].buf, clients[k].c, flags, ttl, &value, &e);
	if (flags & ~DMABROKER_TOKEN_SINGLE_USE) {
		expect_error(&e, r, DMABROKER_E_INVALID_ARGUMENT);
		answers[A_INVALID]++;
		goto out;
	}
	/* at its limit, the creator's used and expired tokens go first */
	if (model_count((int)k, -1) >= PER_CLIENT)
		for (unsigned i = 0; i < n_toks; i++)
			if (toks[i].live && toks[i].creator == k && (toks[i].used || toks[i].expired)) {
				toks[i].live = false;
				answers[A_SWEPT]++;
			}
	for (unsigned x = 0; x < N_CLIENTS; x++)
		if (clients[x].c && clients[x].uid == clients[k].uid)
			uid_tokens += model_count((int)x, -1);
	if (model_count((int)k, -1) + 1 > PER_CLIENT || uid_tokens + 1 > PER_UID) {
		expect_error(&e, r, DMABROKER_E_QUOTA_EXCEEDED);
		answers[A_QUOTA]++;
		goto out;
	}
	check(r == 0 && value && strlen(value) == 32 && n_toks < MAX_TOKENS);
	check(model_find(value) < 0);
	{
		struct token *t = find_token(value);
		check(t && t->expires_usec >= before + (uint64_t)clamped * 1000000u &&
		      t->expires_usec <= now_usec() + (uint64_t)clamped * 1000000u);
	}
	snprintf(toks[n_toks].value, sizeof(toks[n_toks].value), "%s", value);
	toks[n_toks].buf = j;
	toks[n_toks].creator = k;
	toks[n_toks].single_use = flags & DMABROKER_TOKEN_SINGLE_USE;
	toks[n_toks].used = toks[n_toks].expired = false;
	toks[n_toks].live = true;
	n_toks++;
	answers[A_MINTED]++;
out:
	e = ERROR_NULL;
}

/* As OpenToken: redeem, hold the buffer, consume the token. */
static void op_redeem(struct input *in, unsigned k)
{
	struct error e = ERROR_NULL;
	struct token *t = NULL;
	char s[64];
	int i, r;

	choose_string(in, s, sizeof(s));
	i = model_find(s);
	r = token_redeem(&b, s, &t, &e);
	if (i < 0) {
		expect_error(&e, r, DMABROKER_E_TOKEN_UNKNOWN);
		answers[A_UNKNOWN]++;
	} else if (toks[i].used) {
		expect_error(&e, r, DMABROKER_E_TOKEN_USED);
		answers[A_USED]++;
	} else if (toks[i].expired) {
		expect_error(&e, r, DMABROKER_E_TOKEN_EXPIRED);
		toks[i].live = false; /* an expired token goes when it is shown */
		answers[A_EXPIRED]++;
	} else {
		unsigned j = toks[i].buf;
		check(r == 0 && t && strcmp(t->value, s) == 0 && t->buffer == bufs[j].buf);
		check(buffer_hold(t->buffer, clients[k].c, &e) == 0);
		token_consumed(t);
		bufs[j].held[k] = true;
		toks[i].used = toks[i].single_use;
		answers[A_REDEEMED]++;
	}
	e = ERROR_NULL;
}

static void op_revoke(struct input *in, unsigned k)
{
	struct error e = ERROR_NULL;
	char s[64];
	int i, r;

	choose_string(in, s, sizeof(s));
	i = model_find(s);
	r = token_revoke(&b, clients[k].c, s, &e);
	/* only its creator revokes it, used or expired or not; anyone else is told it does not exist */
	if (i >= 0 && toks[i].creator == k) {
		check(r == 0);
		toks[i].live = false;
		answers[A_REVOKED]++;
	} else {
		expect_error(&e, r, DMABROKER_E_TOKEN_UNKNOWN);
		answers[A_NOT_REVOKED]++;
	}
	e = ERROR_NULL;
}

static void op_expire(struct input *in)
{
	unsigned i;
	struct token *t;

	if (!n_toks)
		return;
	i = byte(in) % n_toks;
	if (!toks[i].live)
		return;
	t = find_token(toks[i].value);
	check(t);
	t->expires_usec = now_usec() - 1; /* the clock moved past it */
	toks[i].expired = true;
}

static void op_release(struct input *in, unsigned k)
{
	unsigned j = byte(in) % N_BUFFERS;

	if (!bufs[j].buf || !bufs[j].held[k])
		return;
	buffer_release(buffer_held_by(bufs[j].buf, clients[k].c));
	model_released(j, k);
}

static void op_leave(unsigned k)
{
	client_free(clients[k].c);
	clients[k].c = NULL;
	drop_tokens(of_creator, k);
	for (unsigned j = 0; j < N_BUFFERS; j++)
		if (bufs[j].buf && bufs[j].held[k])
			model_released(j, k);
}

static void setup(void)
{
	struct config cfg;

	config_init(&cfg);
	cfg.max_tokens_per_client = PER_CLIENT;
	cfg.max_tokens_per_uid = PER_UID;
	cfg.max_token_ttl = 3600;
	cfg.pool_max_bytes = 0; /* freed buffers go: the fd count must come back */
	if (!getenv("FUZZ_TOKEN_LOG"))
		log_set_level(LOG_CRIT);
	check(sd_event_new(&event) >= 0 && broker_init(&b, event, &cfg) >= 0);
	if (getenv("FUZZ_TOKEN_STATS"))
		atexit(print_stats);
}

static void run(struct input *in)
{
	static const uid_t uids[N_CLIENTS] = { 4242, 4242, 4343 }; /* alice, bob, mallory */
	uint64_t budget = b.fds;

	n_toks = 0;
	for (unsigned k = 0; k < N_CLIENTS; k++) {
		clients[k].uid = uids[k];
		clients[k].c = books_new_client(&b, uids[k]);
	}
	for (unsigned j = 0; j < N_BUFFERS; j++) {
		struct error e = ERROR_NULL;
		int fd = memfd_of_size(4096);
		check(fd >= 0 && fd_budget_charge(&b, 1, &e) == 0);
		check(buffer_register(&b, clients[0].c, fd, &bufs[j].buf, &e) == 0);
		bufs[j].id = bufs[j].buf->id;
		memset(bufs[j].held, 0, sizeof(bufs[j].held));
		bufs[j].held[0] = true;
	}
	check_books();
	for (unsigned step = 0; step < MAX_STEPS && in->left; step++) {
		uint8_t sel = byte(in);
		unsigned k = sel % N_CLIENTS;
		sel /= N_CLIENTS;
		if (!clients[k].c)
			continue;
		if (sel < 20)
			op_mint(in, k);
		else if (sel < 50)
			op_redeem(in, k);
		else if (sel < 62)
			op_revoke(in, k);
		else if (sel < 72)
			op_expire(in);
		else if (sel < 80)
			op_release(in, k);
		else if (sel < 83)
			op_leave(k);
		check_books();
	}
	/* the clients go: their tokens and buffers go with them */
	for (unsigned k = 0; k < N_CLIENTS; k++)
		if (clients[k].c) {
			op_leave(k);
			check_books();
		}
	check(!b.clients && b.tokens.len == 0 && b.buffers.len == 0 && b.bytes == 0);
	check(b.fds == budget);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* an empty run first: what sd-event opens once (a clock's timerfd) is not a leak */
	return fuzz_one_input(data, size, setup, run, &(struct input){ NULL, 0 });
}

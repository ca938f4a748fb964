/* SPDX-License-Identifier: MIT */
/* libFuzzer target: redeeming and revoking tokens given by a client. Only a
 * token the daemon made opens a buffer; anything else is TokenUnknown. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct broker b;
static struct client alice;
static struct buffer buf;
static char real[4][33];

static void setup(void)
{
	sd_bus_error e = SD_BUS_ERROR_NULL;
	const char *v;

	config_init(&b.config);
	alice.broker = &b;
	alice.id = 1;
	buf.id = 1;
	buf.broker = &b;
	for (int i = 0; i < 4; i++) {
		if (token_create(&buf, &alice, 0, 0, &v, &e) < 0)
			abort();
		memcpy(real[i], v, 33);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	sd_bus_error e = SD_BUS_ERROR_NULL;
	struct token *t = NULL;
	char *s = malloc(size + 1);
	bool known = false;
	int r;

	if (!ready) {
		setup();
		ready = 1;
	}
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = 0;
	for (int i = 0; i < 4; i++)
		known |= strcmp(s, real[i]) == 0;
	r = token_redeem(&b, s, &t, &e);
	if ((r == 0) != known || (r == 0 && t->buffer != &buf))
		abort();
	sd_bus_error_free(&e);
	/* Someone else's revocation of anything never succeeds. */
	{
		struct client mallory = { .broker = &b, .id = 2 };
		if (token_revoke(&b, &mallory, s, &e) == 0)
			abort();
		sd_bus_error_free(&e);
	}
	free(s);
	return 0;
}

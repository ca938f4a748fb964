/* SPDX-License-Identifier: MIT */
/* libFuzzer target: the config parser never crashes, and either accepts a
 * file or says "name:LINE: reason" about it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1), *err = NULL;
	struct config c;
	int r;

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = 0;
	config_init(&c);
	r = config_parse(&c, text, "fuzz.conf", &err);
	if (r < 0 && (!err || strncmp(err, "fuzz.conf:", 10) != 0))
		abort(); /* every refusal names the file and the line */
	if (r == 0 && (err || c.n_order == 0 || c.n_order > CONFIG_MAX_LIST || c.max_dimension == 0 ||
		       c.n_streams > CONFIG_MAX_STREAMS))
		abort();
	for (unsigned i = 0; r == 0 && i < c.n_streams; i++)
		if (!c.streams[i].name || !*c.streams[i].name || strlen(c.streams[i].name) > 63 || c.streams[i].n == 0 ||
		    c.streams[i].n > CONFIG_MAX_PRINCIPALS)
			abort(); /* a [streams] rule names a stream CreateStream takes, and someone */
	free(err);
	config_free(&c);
	free(text);
	return 0;
}

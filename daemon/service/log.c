/* SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "log.h"
#include "printable.h"

int log_max_level = LOG_INFO;

static const char *const level_names[] = {
	[LOG_ERR] = "err", [LOG_WARNING] = "warning", [LOG_NOTICE] = "notice",
	[LOG_INFO] = "info", [LOG_DEBUG] = "debug",
};

void log_set_level(int level)
{
	log_max_level = level;
}

int log_level_from_string(const char *s)
{
	for (int i = LOG_ERR; i <= LOG_DEBUG; i++)
		if (level_names[i] && strcasecmp(s, level_names[i]) == 0)
			return i;
	if (strcasecmp(s, "error") == 0)
		return LOG_ERR;
	return -1;
}

void log_full(int level, const char *fmt, ...)
{
	char text[4096], buf[2048];
	va_list ap;

	if (level > log_max_level)
		return;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	/* A line may quote what a client sent: no control characters, no forged lines. */
	printable(text, buf, sizeof(buf));
	/* One write per line, so that lines from a busy daemon do not mix. */
	if (getenv("JOURNAL_STREAM"))
		dprintf(STDERR_FILENO, "<%d>%s\n", level, buf);
	else
		dprintf(STDERR_FILENO, "dmabrokerd[%s]: %s\n", level_names[level] ? level_names[level] : "?", buf);
}

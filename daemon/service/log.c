/* SPDX-License-Identifier: MIT */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "printable.h"

int log_max_level = LOG_INFO;

static const char *const level_names[] = {
	[LOG_EMERG] = "emerg", [LOG_ALERT] = "alert", [LOG_CRIT] = "crit",
	[LOG_ERR] = "err", [LOG_WARNING] = "warning", [LOG_NOTICE] = "notice",
	[LOG_INFO] = "info", [LOG_DEBUG] = "debug",
};

/* whether stderr is the journal's stream: log_open() */
static bool to_journal;

void log_set_level(int level)
{
	log_max_level = level;
}

int log_level_from_string(const char *s)
{
	for (int i = LOG_ERR; i <= LOG_DEBUG; i++)
		if (strcasecmp(s, level_names[i]) == 0)
			return i;
	if (strcasecmp(s, "error") == 0)
		return LOG_ERR;
	return -1;
}

bool log_stderr_is_journal(void)
{
	const char *e = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	int end = 0;

	/*
	 * systemd sets JOURNAL_STREAM=DEVICE:INODE when it connects stderr to
	 * the journal. A child inherits the variable even when its stderr
	 * goes elsewhere (a pipe, a file): only the same device and inode
	 * mean the journal reads this stderr.
	 */
	if (!e || sscanf(e, "%llu:%llu%n", &dev, &ino, &end) != 2 || e[end] != 0)
		return false;
	if (fstat(STDERR_FILENO, &st) < 0)
		return false;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void log_open(void)
{
	to_journal = log_stderr_is_journal();
}

void log_full(int level, const char *fmt, ...)
{
	char text[4096], buf[2048];
	va_list ap;

	if (level > log_max_level)
		return;
	if (level < LOG_EMERG || level > LOG_DEBUG)
		level = LOG_ERR;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	/* A line may quote what a client sent: no control characters, no forged lines. */
	printable(text, buf, sizeof(buf));
	/*
	 * One write per line, so that lines from a busy daemon do not mix. To
	 * the journal, "<N>" gives the line its priority (journald reads it,
	 * SyslogLevelPrefix=yes being the default) and the journal adds the
	 * name and pid; anywhere else, the name and the level in words.
	 */
	if (to_journal)
		dprintf(STDERR_FILENO, "<%d>%s\n", level, buf);
	else
		dprintf(STDERR_FILENO, "dmabrokerd[%s]: %s\n", level_names[level], buf);
}

/* SPDX-License-Identifier: MIT */
/*
 * Daemon logging: levels as syslog's, one line per message on stderr. When
 * stderr is the journal's stream ($JOURNAL_STREAM names its device and
 * inode), each line starts with "<N>", which journald turns into the line's
 * priority; elsewhere with "dmabrokerd[LEVEL]: ".
 */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <syslog.h>

extern int log_max_level;

void log_set_level(int level);
int log_level_from_string(const char *s);
/* Whether stderr is the stream $JOURNAL_STREAM names. */
bool log_stderr_is_journal(void);
/* Looks once at where stderr goes (before any thread starts); until then, lines are not for the journal. */
void log_open(void);
void log_full(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_full(LOG_ERR, __VA_ARGS__)
#define log_warning(...) log_full(LOG_WARNING, __VA_ARGS__)
#define log_notice(...) log_full(LOG_NOTICE, __VA_ARGS__)
#define log_info(...) log_full(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_full(LOG_DEBUG, __VA_ARGS__)

/* SPDX-License-Identifier: MIT */
/*
 * Daemon logging: levels as syslog's, to stderr with a "<N>" prefix that
 * journald turns into the priority when the daemon runs under systemd.
 */
#pragma once

#include <stdarg.h>
#include <syslog.h>

extern int log_max_level;

void log_set_level(int level);
int log_level_from_string(const char *s);
void log_full(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_full(LOG_ERR, __VA_ARGS__)
#define log_warning(...) log_full(LOG_WARNING, __VA_ARGS__)
#define log_notice(...) log_full(LOG_NOTICE, __VA_ARGS__)
#define log_info(...) log_full(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_full(LOG_DEBUG, __VA_ARGS__)

/* SPDX-License-Identifier: MIT */
/*
 * Client strings made fit to quote in an error message, a log line or a
 * D-Bus string. A client may send any valid UTF-8 (control characters,
 * right-to-left overrides, emoji); quoting it raw lets it forge log lines,
 * and cutting it at a byte count (%.32s, a fixed buffer) can split a
 * character, which sd-bus then refuses to send: the call went unanswered.
 *
 * printable() copies s as printable, valid UTF-8:
 *   - ASCII control characters (0x00-0x1f, 0x7f) and bytes that are not
 *     UTF-8 (stray continuation bytes, overlong forms, surrogates, beyond
 *     U+10FFFF, a character cut short) become \xNN, byte by byte;
 *   - characters that are valid but invisible or that reorder or break
 *     the line (C1 controls, bidi marks, overrides and isolates, zero-width
 *     characters, U+2028/U+2029, the byte-order mark) and noncharacters
 *     (which sd-bus refuses in a message) become \uNNNN or \UNNNNNNNN;
 *   - everything else is copied as it is.
 * Backslashes are kept, so that printable text goes through unchanged (a
 * second pass changes nothing; "\x01" in the output may have been typed by
 * the client). When the result does not fit in size bytes it is cut at a
 * character (or escape) boundary and ends in "…" (U+2026). The result is
 * always NUL-terminated (size >= 1).
 */
#pragma once

#include <stddef.h>

/* Room for one quoted client string in a message. */
#define PRINTABLE_MAX 128

/* s (NULL: "") into buf; returns buf. */
char *printable(const char *s, char *buf, size_t size);
/* The first len bytes of s, which may hold any bytes, NUL among them. */
char *printable_n(const char *s, size_t len, char *buf, size_t size);

/*
 * printable(s) into a buffer that lives until the end of the enclosing
 * block: for an argument, as in
 *   sd_bus_error_setf(error, ..., "no token '%s'", PRINTABLE(value));
 */
#define PRINTABLE(s) printable((s), (char[PRINTABLE_MAX]){ 0 }, PRINTABLE_MAX)

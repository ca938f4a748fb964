/* SPDX-License-Identifier: MIT */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "printable.h"

#define ELLIPSIS "\xe2\x80\xa6" /* U+2026 */
#define ELLIPSIS_LEN (sizeof(ELLIPSIS) - 1)

/*
 * The character at s (n > 0 bytes left): its code point and length, or
 * -1 when s does not start a well-formed UTF-8 sequence (Unicode 15,
 * table 3-7: no overlong forms, no surrogates, nothing beyond U+10FFFF).
 */
static int decode(const unsigned char *s, size_t n, uint32_t *ret)
{
	unsigned len;
	uint32_t cp;
	unsigned char lo = 0x80, hi = 0xbf;

	if (s[0] < 0x80) {
		*ret = s[0];
		return 1;
	}
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3;
		cp = s[0] & 0x0f;
		if (s[0] == 0xe0)
			lo = 0xa0;
		else if (s[0] == 0xed)
			hi = 0x9f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4;
		cp = s[0] & 0x07;
		if (s[0] == 0xf0)
			lo = 0x90;
		else if (s[0] == 0xf4)
			hi = 0x8f;
	} else {
		return -1;
	}
	if (n < len)
		return -1;
	for (unsigned i = 1; i < len; i++) {
		if (s[i] < lo || s[i] > hi)
			return -1;
		lo = 0x80;
		hi = 0xbf;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	*ret = cp;
	return (int)len;
}

/* Valid, but invisible, reordering, line-breaking, or refused by sd-bus. */
static bool hidden(uint32_t cp)
{
	return (cp >= 0x80 && cp <= 0x9f) ||            /* C1 controls */
	       cp == 0x061c ||                          /* arabic letter mark */
	       (cp >= 0x200b && cp <= 0x200f) ||        /* zero-width, LRM, RLM */
	       (cp >= 0x2028 && cp <= 0x202e) ||        /* line/paragraph separators, embeddings, overrides */
	       (cp >= 0x2060 && cp <= 0x2069) ||        /* word joiner, invisible operators, isolates */
	       cp == 0xfeff ||                          /* byte-order mark */
	       (cp >= 0xfdd0 && cp <= 0xfdef) ||        /* noncharacters */
	       (cp & 0xfffe) == 0xfffe;
}

/* The text for the character or byte at in[0]: piece (NUL-terminated); its length in *ret_k. */
static size_t next_piece(const unsigned char *in, size_t len, char piece[static 16], size_t *ret_k)
{
	uint32_t cp;
	int k = decode(in, len, &cp);

	if (k < 0 || (k == 1 && (cp < 0x20 || cp == 0x7f))) {
		snprintf(piece, 16, "\\x%02x", in[0]);
		k = 1;
	} else if (hidden(cp)) {
		snprintf(piece, 16, cp > 0xffff ? "\\U%08x" : "\\u%04x", (unsigned)cp);
	} else {
		memcpy(piece, in, (size_t)k);
		piece[k] = '\0';
	}
	*ret_k = (size_t)k;
	return strlen(piece);
}

char *printable_n(const char *s, size_t len, char *buf, size_t size)
{
	const unsigned char *in = (const unsigned char *)s;
	size_t i = 0, o = 0, room, mark = SIZE_MAX;

	if (size == 0)
		return buf;
	room = size - 1;
	while (i < len) {
		char piece[16];
		size_t k, n = next_piece(in + i, len - i, piece, &k);

		if (o + ELLIPSIS_LEN <= room)
			mark = o; /* the last boundary an ellipsis still fits after */
		if (o + n > room)
			break;
		memcpy(buf + o, piece, n);
		o += n;
		i += k;
	}
	if (i < len) {
		/* Cut: at the last boundary that leaves room for the ellipsis. */
		if (o + ELLIPSIS_LEN <= room)
			mark = o;
		if (mark != SIZE_MAX) {
			memcpy(buf + mark, ELLIPSIS, ELLIPSIS_LEN);
			o = mark + ELLIPSIS_LEN;
		}
	}
	buf[o] = '\0';
	return buf;
}

char *printable(const char *s, char *buf, size_t size)
{
	return printable_n(s ? s : "", s ? strlen(s) : 0, buf, size);
}

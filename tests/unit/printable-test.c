/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of common/printable.c: what is escaped and how, cuts at
 * character boundaries only, and, for any input at all, output that sd-bus
 * takes as a D-Bus string (the daemon's error replies depend on it).
 */
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <systemd/sd-bus.h>

#include "printable.h"
#include "tap.h"

TAP_DEFINE;

static sd_bus *bus; /* only to build messages with: never connected to anyone */

/* What sd-bus says of s as a D-Bus string: the check an error reply must pass. */
static bool sd_bus_takes(const char *s)
{
	sd_bus_message *m = NULL;
	int r = sd_bus_message_new_method_call(bus, &m, "org.example", "/", "org.example", "M");

	if (r >= 0)
		r = sd_bus_message_append(m, "s", s);
	sd_bus_message_unref(m);
	return r >= 0;
}

/* Printable, valid UTF-8 by a check of our own: no control bytes, well-formed sequences. */
static bool clean(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	while (*p) {
		unsigned n = *p < 0x80 ? 1 : *p >= 0xc2 && *p <= 0xdf ? 2 : *p >= 0xe0 && *p <= 0xef ? 3 :
			     *p >= 0xf0 && *p <= 0xf4 ? 4 : 0;
		if (n == 0 || (n == 1 && (*p < 0x20 || *p == 0x7f)))
			return false;
		for (unsigned i = 1; i < n; i++)
			if ((p[i] & 0xc0) != 0x80)
				return false;
		if (n == 2 && *p == 0xc2 && p[1] <= 0x9f) /* C1 */
			return false;
		if (n == 3 && *p == 0xe2 && p[1] == 0x80 && p[2] >= 0xa8 && p[2] <= 0xae) /* U+2028-U+202E */
			return false;
		p += n;
	}
	return true;
}

static bool is(const char *in, size_t size, const char *want)
{
	char buf[512];
	printable(in, buf, size);
	if (strcmp(buf, want) != 0) {
		tap_diag("printable(\"%s\", %zu) = \"%s\", want \"%s\"", in, size, buf, want);
		return false;
	}
	return true;
}

static bool test_unchanged(void)
{
	CHECK(is("", 64, ""));
	CHECK(is("camera-0.front_left", 64, "camera-0.front_left"));
	CHECK(is("token '\\x41' \"quoted\"", 64, "token '\\x41' \"quoted\""));
	CHECK(is("caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xd7\xa9\xd7\x9c\xd7\x95\xd7\x9d", 64,
		 "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xd7\xa9\xd7\x9c\xd7\x95\xd7\x9d"));   /* é, 日本, שלום */
	CHECK(is("\xf0\x9f\x98\x80\xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd", 64,
		 "\xf0\x9f\x98\x80\xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd"));                      /* emoji, skin tone */
	CHECK(is("\xf4\x8f\xbf\xbd", 64, "\xf4\x8f\xbf\xbd"));                               /* U+10FFFD */
	CHECK(is(NULL, 64, ""));
	return true;
}

static bool test_controls(void)
{
	CHECK(is("a\x01" "b\nc\td\x1f" "e\x7f", 64, "a\\x01b\\x0ac\\x09d\\x1fe\\x7f"));
	CHECK(is("line\r\n[err] forged", 64, "line\\x0d\\x0a[err] forged"));
	CHECK(is("\x1b[31mred", 64, "\\x1b[31mred"));
	/* With NULs inside: printable_n */
	{
		char buf[64];
		CHECK(strcmp(printable_n("a\0b", 3, buf, sizeof(buf)), "a\\x00b") == 0);
	}
	return true;
}

static bool test_invalid_utf8(void)
{
	CHECK(is("\xff\xfe", 64, "\\xff\\xfe"));
	CHECK(is("ab\xc3", 64, "ab\\xc3"));                          /* cut short at the end */
	CHECK(is("\xe2\x82z", 64, "\\xe2\\x82z"));                   /* cut short in the middle */
	CHECK(is("\x80\xbf", 64, "\\x80\\xbf"));                     /* stray continuations */
	CHECK(is("\xc0\xaf\xe0\x80\xaf", 64, "\\xc0\\xaf\\xe0\\x80\\xaf")); /* overlong '/' */
	CHECK(is("\xed\xa0\x80", 64, "\\xed\\xa0\\x80"));            /* a UTF-16 surrogate */
	CHECK(is("\xf4\x90\x80\x80", 64, "\\xf4\\x90\\x80\\x80"));   /* beyond U+10FFFF */
	CHECK(is("\xf8\x88\x80\x80\x80", 64, "\\xf8\\x88\\x80\\x80\\x80"));
	return true;
}

static bool test_hidden(void)
{
	CHECK(is("abc\xe2\x80\xae" "gpj.exe", 64, "abc\\u202egpj.exe"));       /* RIGHT-TO-LEFT OVERRIDE */
	CHECK(is("\xe2\x80\x8f\xe2\x81\xa6x\xe2\x81\xa9", 64, "\\u200f\\u2066x\\u2069")); /* RLM, LRI, PDI */
	CHECK(is("\xc2\x85\xc2\x9b", 64, "\\u0085\\u009b"));                  /* C1: NEL, CSI */
	CHECK(is("a\xe2\x80\xa8" "b", 64, "a\\u2028b"));                     /* LINE SEPARATOR */
	CHECK(is("\xe2\x80\x8b\xef\xbb\xbf", 64, "\\u200b\\ufeff"));          /* zero width space, BOM */
	CHECK(is("\xef\xbf\xbf\xef\xb7\x90", 64, "\\uffff\\ufdd0"));          /* noncharacters */
	CHECK(is("\xf0\x9f\xbf\xbe", 64, "\\U0001fffe"));
	return true;
}

static bool test_truncation(void)
{
	/* room for 7 bytes: "€" (3) + "…" (3); "€€" (6) + "…" would not fit */
	CHECK(is("\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac", 8, "\xe2\x82\xac\xe2\x80\xa6"));
	/* what fits exactly is not cut */
	CHECK(is("\xe2\x82\xac\xe2\x82\xac", 7, "\xe2\x82\xac\xe2\x82\xac"));
	CHECK(is("abcdefghij", 11, "abcdefghij"));
	CHECK(is("abcdefghijk", 11, "abcdefg\xe2\x80\xa6"));
	/* an escape is never split */
	CHECK(is("\x01\x01\x01", 9, "\\x01\xe2\x80\xa6"));
	CHECK(is("\xe2\x80\xae\xe2\x80\xae", 12, "\\u202e\xe2\x80\xa6"));
	/* emoji (4 bytes) at every cut point */
	for (size_t size = 1; size < 40; size++) {
		char buf[64];
		printable("x\xf0\x9f\x98\x80\xf0\x9f\x98\x80y\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80", buf, size);
		CHECKF(strlen(buf) < size && clean(buf) && sd_bus_takes(buf), "size %zu: \"%s\"", size, buf);
	}
	/* too small for an ellipsis: cut at a boundary all the same */
	CHECK(is("\xc3\xa9\xc3\xa9", 3, "\xc3\xa9"));
	CHECK(is("\xc3\xa9", 2, ""));
	CHECK(is("abc", 1, ""));
	/* PRINTABLE(): bounded */
	{
		char big[4096];
		memset(big, 'a', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		CHECK(strlen(PRINTABLE(big)) == PRINTABLE_MAX - 1);
		CHECK(strcmp(PRINTABLE(big) + PRINTABLE_MAX - 4, "\xe2\x80\xa6") == 0);
	}
	return true;
}

/* Deterministic pseudo-random input: any bytes, weighted towards the interesting ones. */
static uint32_t rnd_state = 12345;
static uint32_t rnd(void)
{
	rnd_state = rnd_state * 1103515245u + 12345u;
	return rnd_state >> 8;
}

static bool test_any_input(void)
{
	/* the checks themselves: a cut character and a control byte */
	CHECK(!sd_bus_takes("ab\xe2\x82") && sd_bus_takes("ab\xe2\x82\xac"));
	CHECK(!clean("ab\xe2\x82") && !clean("a\x01") && clean("ab\xe2\x82\xac"));
	static const unsigned char pool[] = { 'a', '\\', 'x', 0x01, 0x1f, 0x7f, 0x80, 0xbf, 0xc2, 0xc3, 0xa9, 0xe2,
					      0x80, 0xae, 0xed, 0xa0, 0xef, 0xbf, 0xf0, 0x9f, 0x98, 0xf4, 0x8f,
					      0xf5, 0xff };
	for (int iter = 0; iter < 20000; iter++) {
		char in[64], out[80], again[80], big[1024]; /* big: room for 64 escapes of 10 */
		size_t len = rnd() % sizeof(in), size = 1 + rnd() % sizeof(out);
		for (size_t i = 0; i < len; i++)
			in[i] = (char)(rnd() % 3 ? pool[rnd() % sizeof(pool)] : (unsigned char)rnd());
		printable_n(in, len, out, size);
		CHECKF(strlen(out) < size, "too long: size %zu, \"%s\"", size, out);
		CHECKF(clean(out) && sd_bus_takes(out), "not printable UTF-8 (size %zu): \"%s\"", size, out);
		/* printable text goes through unchanged */
		CHECKF(strcmp(printable(out, again, sizeof(again)), out) == 0, "not idempotent: \"%s\" -> \"%s\"", out,
		       again);
		/* a cut result is a prefix of the whole plus "…" */
		printable_n(in, len, big, sizeof(big));
		if (strcmp(out, big) != 0) {
			size_t n = strlen(out);
			CHECKF(n >= 3 || size < 4, "a cut without the ellipsis: \"%s\"", out);
			if (size >= 4)
				CHECKF(strcmp(out + n - 3, "\xe2\x80\xa6") == 0 && strncmp(out, big, n - 3) == 0,
				       "\"%s\" is not a cut of \"%s\"", out, big);
		}
	}
	return true;
}

int main(void)
{
	int fds[2], r;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0 || sd_bus_new(&bus) < 0 ||
	    sd_bus_set_fd(bus, fds[0], fds[0]) < 0 || sd_bus_start(bus) < 0)
		return 1;
	tap_plan(6);
	tap_step("printable text is copied as it is", test_unchanged);
	tap_step("control characters become \\xNN", test_controls);
	tap_step("bytes that are not UTF-8 become \\xNN", test_invalid_utf8);
	tap_step("invisible, reordering and noncharacters become \\uNNNN", test_hidden);
	tap_step("cuts at character and escape boundaries, with an ellipsis", test_truncation);
	tap_step("any input: valid printable UTF-8 that sd-bus takes, idempotent, bounded", test_any_input);
	r = tap_done();
	sd_bus_close_unref(bus); /* no flush: nobody reads the other end */
	close(fds[1]);
	return r;
}

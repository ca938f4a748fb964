/* SPDX-License-Identifier: MIT */
/*
 * strings-test: every method call gets an answer, whatever its strings.
 *
 * usage: strings-test PROTOCOL_XML (under tests/common/with-daemon.py)
 *
 * Reads the methods and their in-arguments from the protocol XML, and for
 * every string argument (an 's' at the top level; in a{sv} options, the key
 * and the value of each string option the XML documents) sends each of a
 * set of unusual but valid strings: multibyte characters across every cut
 * point up to 2 KiB, right-to-left overrides, emoji, control characters,
 * very long strings. (Not noncharacters such as U+FFFF: sd-bus refuses to
 * send them, and the daemon's sd-bus to read them.) On the bus and on a direct connection.
 * Other arguments get values that pass the daemon's first checks (a buffer
 * the test holds, a known format), so that the strings reach as far in as
 * they can.
 *
 * A call is answered when its reply (a return or any error) arrives within
 * 1 s (10 s under valgrind; DMABROKER_STRINGS_TIMEOUT_SEC): sd-bus's own
 * NoReply after that counts as unanswered. (Waiting for a Peer.Ping sent
 * after it, as this test once did, no longer works: an Allocate is
 * answered when its worker is done, after later calls.)
 *
 * Then the same strings where the daemon finds them itself: as the
 * caller's process name (comm, which the daemon quotes in lists, logs and
 * a stream's default label) and as the labels of a stream whose negotiation
 * fails; and as the backend and device of an Allocate on the access
 * channel, where a client sends bytes, not D-Bus strings. Output is TAP.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <drm_fourcc.h>
#include <systemd/sd-bus.h>

#include "access-wire.h"
#include "tap.h"
#include "broker-util.h"

TAP_DEFINE;

#define ELEMENTSOF(a) (sizeof(a) / sizeof((a)[0]))

/* ---- the protocol, from its XML ---- */

struct method {
	char name[64];
	char in[16][64]; /* the in-arguments' types */
	unsigned n_in;
};

struct option {
	char name[32];
	char type[4]; /* "s" or "as" */
};

static struct method methods[64];
static unsigned n_methods;
static struct option options[16];
static unsigned n_options;

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "re");
	char *text = NULL;
	size_t n = 0;
	long len;

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) > 0 && fseek(f, 0, SEEK_SET) == 0 &&
	    (text = calloc(1, (size_t)len + 1)))
		n = fread(text, 1, (size_t)len, f);
	fclose(f);
	if (text && n == 0) {
		free(text);
		text = NULL;
	}
	return text;
}

/* The value of attribute attr in the tag that starts at tag (up to its '>'). */
static bool attribute(const char *tag, const char *attr, char *out, size_t len)
{
	const char *end = strchr(tag, '>'), *p = tag;
	char key[32];

	snprintf(key, sizeof(key), " %s=\"", attr);
	p = strstr(p, key);
	if (!p || (end && p > end))
		return false;
	p += strlen(key);
	end = strchr(p, '"');
	if (!end || (size_t)(end - p) >= len)
		return false;
	memcpy(out, p, (size_t)(end - p));
	out[end - p] = '\0';
	return true;
}

/*
 * Methods: <method name="..."> ... <arg type="..." direction="in"/> ...
 * </method>. String options: the documentation's "name (s" and "name (as",
 * with or without quotes around the name.
 */
static bool parse_protocol(const char *path)
{
	char *text = read_file(path);
	const char *p;

	if (!text)
		return false;
	for (p = text; (p = strstr(p, "<method ")) && n_methods < ELEMENTSOF(methods); p++) {
		struct method *m = &methods[n_methods];
		const char *end = strstr(p, "</method>");
		if (!end || !attribute(p, "name", m->name, sizeof(m->name)))
			break;
		for (const char *a = p; (a = strstr(a + 1, "<arg ")) && a < end;) {
			char dir[8] = "in";
			attribute(a, "direction", dir, sizeof(dir));
			if (strcmp(dir, "in") == 0 && m->n_in < ELEMENTSOF(m->in))
				attribute(a, "type", m->in[m->n_in++], sizeof(m->in[0]));
		}
		n_methods++;
	}
	for (p = text; (p = strstr(p, " (")) && n_options < ELEMENTSOF(options); p++) {
		const char *type = p + 2, *start = p, *stop = p;
		struct option *o = &options[n_options];
		bool dup = false;
		if (strncmp(type, "s", 1) != 0 && strncmp(type, "as", 2) != 0)
			continue;
		if (type[type[0] == 'a' ? 2 : 1] >= 'a' && type[type[0] == 'a' ? 2 : 1] <= 'z')
			continue; /* "(see", "(sstt)": not an option */
		if (stop > text && stop[-1] == '"')
			stop--;
		start = stop;
		while (start > text && ((start[-1] >= 'a' && start[-1] <= 'z') || start[-1] == '-'))
			start--;
		if (start == stop || (size_t)(stop - start) >= sizeof(o->name))
			continue;
		memcpy(o->name, start, (size_t)(stop - start));
		o->name[stop - start] = '\0';
		snprintf(o->type, sizeof(o->type), "%s", type[0] == 'a' ? "as" : "s");
		for (unsigned i = 0; i < n_options; i++)
			dup |= strcmp(options[i].name, o->name) == 0;
		if (!dup)
			n_options++;
	}
	free(text);
	return n_methods > 0;
}

/* ---- the strings ---- */

struct nasty {
	const char *what;
	char *s;
};

static struct nasty nasties[64];
static unsigned n_nasties;

static void add(const char *what, const char *s)
{
	nasties[n_nasties].what = what;
	nasties[n_nasties++].s = strdup(s);
}

/* prefix ASCII bytes, then piece n times: piece crosses every cut point up to the string's length */
static void add_run(const char *what, unsigned prefix, const char *piece, unsigned n)
{
	size_t len = strlen(piece);
	char *s = malloc(prefix + len * n + 1);

	memset(s, 'a', prefix);
	for (unsigned i = 0; i < n; i++)
		memcpy(s + prefix + i * len, piece, len);
	s[prefix + len * n] = '\0';
	nasties[n_nasties].what = what;
	nasties[n_nasties++].s = s;
}

static void make_nasties(void)
{
	static const char *const aligns[] = { "€ x40 after 0 ASCII", "€ x40 after 1 ASCII", "€ x40 after 2 ASCII" };
	static const char *const emoji[] = { "😀 x40 after 0 ASCII", "😀 x40 after 1 ASCII", "😀 x40 after 2 ASCII",
					     "😀 x40 after 3 ASCII" };
	static const char *const longs[] = { "€ x700 after 0 ASCII", "€ x700 after 1 ASCII", "€ x700 after 2 ASCII" };
	char controls[40], *p = controls;

	add("empty", "");
	for (unsigned k = 0; k < 3; k++)
		add_run(aligns[k], k, "\xe2\x82\xac", 40);                     /* € (3 bytes) */
	for (unsigned k = 0; k < 4; k++)
		add_run(emoji[k], k, "\xf0\x9f\x98\x80", 40);                 /* 😀 (4 bytes) */
	add_run("é x40 after 0 ASCII", 0, "\xc3\xa9", 40);
	add_run("é x40 after 1 ASCII", 1, "\xc3\xa9", 40);
	for (unsigned k = 0; k < 3; k++)
		add_run(longs[k], k, "\xe2\x82\xac", 700);                    /* cut points up to 2 KiB */
	add_run("ж x32768 (64 KiB)", 0, "\xd0\xb6", 32768);
	add("right-to-left override", "invoice\xe2\x80\xae" "fdp.exe");
	add("bidi marks and isolates", "\xe2\x80\x8f\xe2\x80\x8e\xe2\x81\xa6\xe2\x81\xa7\xe2\x81\xa8\xe2\x81\xa9\xd8\x9c");
	add("emoji with ZWJ and skin tones",
	    "\xf0\x9f\x91\xa8\xe2\x80\x8d\xf0\x9f\x91\xa9\xe2\x80\x8d\xf0\x9f\x91\xa7\xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd");
	for (int c = 1; c < 0x20; c++)
		*p++ = (char)c;
	*p++ = 0x7f;
	*p = '\0';
	add("control characters 0x01-0x1f, 0x7f", controls);
	add("a forged log line", "x\n<3>dmabrokerd[err]: forged\r\x1b[2K");
	add("C1 controls, line separator", "\xc2\x85\xc2\x9b\xe2\x80\xa8");
	add("a token's length, € at the end", "0123456789abcdef0123456789abcde\xe2\x82\xac");
	add("combining marks", "e\xcc\x81\xcc\x81\xcc\x81\xcc\x81\xcc\x81\xcc\x81\xcc\x81\xcc\x81\xcc\x81\xcc\x81");
}

/* Drops a character the end of s cuts short. */
static void utf8_cut(char *s)
{
	size_t n = strlen(s), lead = n;

	while (lead > 0 && ((unsigned char)s[lead - 1] & 0xc0) == 0x80)
		lead--;
	if (lead > 0 && (unsigned char)s[lead - 1] >= 0xc0) {
		unsigned char c = (unsigned char)s[lead - 1];
		size_t want = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
		if (n - (lead - 1) < want)
			s[lead - 1] = '\0';
	}
}

/* ---- building a call ---- */

/* Values that get past the first checks, per method: its 'u' arguments in order. */
static const struct {
	const char *method;
	uint32_t u[4];
} baseline_u[] = {
	{ "Allocate", { 64, 64, DRM_FORMAT_XRGB8888, DMABROKER_USAGE_CPU_READ_FLAG | DMABROKER_USAGE_CPU_WRITE_FLAG } },
	{ "Attach", { DMABROKER_USAGE_GPU_FLAG, 0 } },
};

struct target {
	const struct method *m;
	unsigned arg;           /* the argument that carries the string */
	int option;             /* a{sv}: -1 the key, else options[option]'s value */
	const char *s;
};

struct builder {
	const struct target *t;
	unsigned n_u;
	uint64_t buffer;        /* for every 't' */
	int fd;                 /* for every 'h' */
};

static size_t type_len(const char *sig)
{
	size_t n = 1;
	int depth = 0;

	if (*sig == 'a')
		return 1 + type_len(sig + 1);
	if (*sig != '(' && *sig != '{')
		return 1;
	do {
		if (sig[n - 1] == '(' || sig[n - 1] == '{')
			depth++;
		else if (sig[n - 1] == ')' || sig[n - 1] == '}')
			depth--;
	} while (depth > 0 && sig[n++]);
	return n;
}

static uint32_t next_u(struct builder *b)
{
	unsigned i = b->n_u++;
	for (unsigned k = 0; k < ELEMENTSOF(baseline_u); k++)
		if (strcmp(baseline_u[k].method, b->t->m->name) == 0 && i < ELEMENTSOF(baseline_u[k].u))
			return baseline_u[k].u[i];
	return 0;
}

/* One complete type of sig, with a harmless value. */
static int append_default(sd_bus_message *m, struct builder *b, const char *sig)
{
	char inner[64];
	size_t len = type_len(sig);
	uint64_t zero = 0;
	int r;

	switch (*sig) {
	case 'u': {
		uint32_t v = next_u(b);
		return sd_bus_message_append_basic(m, 'u', &v);
	}
	case 't':
		return sd_bus_message_append_basic(m, 't', &b->buffer);
	case 'h':
		return sd_bus_message_append_basic(m, 'h', &b->fd);
	case 's':
		return sd_bus_message_append_basic(m, 's', "strings-test");
	case 'o':
		return sd_bus_message_append_basic(m, 'o', "/");
	case 'g':
		return sd_bus_message_append_basic(m, 'g', "");
	case 'v':
		return sd_bus_message_append(m, "v", "s", "");
	case 'a':
		snprintf(inner, sizeof(inner), "%.*s", (int)(len - 1), sig + 1);
		r = sd_bus_message_open_container(m, 'a', inner);
		return r < 0 ? r : sd_bus_message_close_container(m); /* empty */
	case '(':
		snprintf(inner, sizeof(inner), "%.*s", (int)(len - 2), sig + 1);
		r = sd_bus_message_open_container(m, 'r', inner);
		for (const char *p = inner; r >= 0 && *p; p += type_len(p))
			r = append_default(m, b, p);
		return r < 0 ? r : sd_bus_message_close_container(m);
	default: /* y b n q i x d: all zero */
		return sd_bus_message_append_basic(m, *sig, &zero);
	}
}

/* Options that let CreateStream and JoinStream get as far as they can. */
static int append_base_options(sd_bus_message *m, const struct method *me)
{
	static const uint32_t xrgb[] = { DRM_FORMAT_XRGB8888 };
	int r = 0;

	if (strcmp(me->name, "CreateStream") == 0 || strcmp(me->name, "JoinStream") == 0)
		r = sd_bus_message_append(m, "{sv}", "formats", "au", 1, xrgb[0]);
	if (r >= 0 && strcmp(me->name, "CreateStream") == 0)
		r = sd_bus_message_append(m, "{sv}{sv}", "width", "u", 64, "height", "u", 64);
	return r;
}

static int build(sd_bus *bus, const char *dest, const struct target *t, uint64_t buffer, int fd,
		 sd_bus_message **ret)
{
	struct builder b = { .t = t, .buffer = buffer, .fd = fd };
	sd_bus_message *m = NULL;
	int r = sd_bus_message_new_method_call(bus, &m, dest, PATH, IFACE, t->m->name);

	for (unsigned i = 0; r >= 0 && i < t->m->n_in; i++) {
		const char *type = t->m->in[i];
		if (i != t->arg) {
			if (strcmp(type, "a{sv}") == 0) {
				r = sd_bus_message_open_container(m, 'a', "{sv}");
				if (r >= 0)
					r = append_base_options(m, t->m);
				if (r >= 0)
					r = sd_bus_message_close_container(m);
			} else {
				r = append_default(m, &b, type);
			}
		} else if (strcmp(type, "s") == 0) {
			r = sd_bus_message_append(m, "s", t->s);
		} else if (strcmp(type, "as") == 0) {
			r = sd_bus_message_append(m, "as", 1, t->s);
		} else { /* a{sv} */
			r = sd_bus_message_open_container(m, 'a', "{sv}");
			if (r >= 0)
				r = append_base_options(m, t->m);
			if (r >= 0 && t->option < 0)
				r = sd_bus_message_append(m, "{sv}", t->s, "s", "x");
			else if (r >= 0 && strcmp(options[t->option].type, "as") == 0)
				r = sd_bus_message_append(m, "{sv}", options[t->option].name, "as", 1, t->s);
			else if (r >= 0)
				r = sd_bus_message_append(m, "{sv}", options[t->option].name, "s", t->s);
			if (r >= 0)
				r = sd_bus_message_close_container(m);
		}
	}
	if (r < 0) {
		sd_bus_message_unref(m);
		return r;
	}
	*ret = m;
	return 0;
}

/* ---- calling ---- */

struct answer {
	bool done;
	char name[128]; /* "" for a method return, else the error's name */
	bool printable; /* the error's message: no control characters, bidi controls or line separators */
};

static bool printable_text(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p == 0x7f || (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) ||
		    (p[0] == 0xe2 && p[1] == 0x80 && p[2] >= 0xa8 && p[2] <= 0xae) ||
		    (p[0] == 0xe2 && p[1] == 0x81 && p[2] >= 0xa6 && p[2] <= 0xa9))
			return false;
	return true;
}

static int on_answer(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
	struct answer *a = userdata;
	const sd_bus_error *e = sd_bus_message_get_error(m);

	a->done = true;
	snprintf(a->name, sizeof(a->name), "%s", e ? e->name : "");
	a->printable = !e || !e->message || printable_text(e->message);
	return 0;
}

static uint64_t timeout_usec(void)
{
	const char *env = getenv("DMABROKER_STRINGS_TIMEOUT_SEC");
	if (env)
		return (uint64_t)atoi(env) * 1000000u;
	return getenv("DMABROKER_VALGRIND") && strcmp(getenv("DMABROKER_VALGRIND"), "1") == 0 ? 10000000u : 1000000u;
}

struct tally {
	unsigned calls, unanswered, returns, unprintable;
	char errors[32][128];    /* the error names seen, each once */
	unsigned n_errors;
	char missed[32][64];     /* the methods of the unanswered calls, and how many of each */
	unsigned n_missed[32], n_methods_missed;
};

/* Sends m; true when it was answered within the time limit. *a: the answer. */
static bool call(sd_bus *bus, const char *dest, sd_bus_message *m, struct answer *a)
{
	sd_bus_slot *slot = NULL;
	int r;

	(void)dest;
	/* Answered, or sd-bus's own NoReply once timeout_usec() has passed (Allocate
	 * answers when its worker is done: a reply may come after later calls'). */
	*a = (struct answer){ 0 };
	r = sd_bus_call_async(bus, &slot, m, on_answer, a, timeout_usec());
	while (r >= 0 && !a->done) {
		r = sd_bus_process(bus, NULL);
		if (r == 0)
			r = sd_bus_wait(bus, UINT64_MAX);
	}
	if (r < 0)
		tap_diag("the connection failed: %s", strerror(-r));
	sd_bus_slot_unref(slot);
	return r >= 0 && a->done && strcmp(a->name, SD_BUS_ERROR_NO_REPLY) != 0;
}

static void count(struct tally *t, bool answered, const struct answer *a, const char *what)
{
	t->calls++;
	if (!answered) {
		unsigned i = 0;
		size_t len = strcspn(what, " ");
		if (++t->unanswered <= 12)
			tap_diag("unanswered: %s", what);
		while (i < t->n_methods_missed && strncmp(t->missed[i], what, len) != 0)
			i++;
		if (i == t->n_methods_missed && i < ELEMENTSOF(t->missed))
			snprintf(t->missed[t->n_methods_missed++], sizeof(t->missed[0]), "%.*s", (int)len, what);
		if (i < ELEMENTSOF(t->missed))
			t->n_missed[i]++;
		return;
	}
	if (!*a->name) {
		t->returns++;
		return;
	}
	if (!a->printable && ++t->unprintable <= 12)
		tap_diag("error message not printable: %s", what);
	for (unsigned i = 0; i < t->n_errors; i++)
		if (strcmp(t->errors[i], a->name) == 0)
			return;
	if (t->n_errors < ELEMENTSOF(t->errors))
		snprintf(t->errors[t->n_errors++], sizeof(t->errors[0]), "%s", a->name);
}

static void report(const struct tally *t)
{
	char names[1024] = "";

	for (unsigned i = 0; i < t->n_errors; i++)
		snprintf(names + strlen(names), sizeof(names) - strlen(names), "%s%s", i ? " " : "",
			 strncmp(t->errors[i], "org.dmabroker.Error.", 20) == 0 ? t->errors[i] + 20 : t->errors[i]);
	tap_diag("%u of %u calls unanswered; %u returned; %u errors not printable; errors: %s", t->unanswered,
		 t->calls, t->returns, t->unprintable, names);
	for (unsigned i = 0; i < t->n_methods_missed; i++)
		tap_diag("  %s: %u unanswered", t->missed[i], t->n_missed[i]);
}

/* ---- connections ---- */

static sd_bus *open_bus(void)
{
	sd_bus *bus = NULL;
	if (sd_bus_open_user(&bus) < 0)
		return NULL;
	return bus;
}

/* A 64x64 buffer of the shm backend, held by bus's client. */
static uint64_t allocate(sd_bus *bus)
{
	sd_bus_message *reply = NULL;
	uint64_t id = 0;
	int r = sd_bus_call_method(bus, BUS_NAME, PATH, IFACE, "Allocate", NULL, &reply, "uuuatua{sv}", 64, 64,
				   DRM_FORMAT_XRGB8888, 0, DMABROKER_USAGE_CPU_READ_FLAG, 0);
	if (r >= 0)
		sd_bus_message_read(reply, "t", &id);
	sd_bus_message_unref(reply);
	return id;
}

/* ---- steps ---- */

static struct baseline before;

static bool test_protocol(void)
{
	static const char *const want[] = { "OpenToken", "RevokeToken", "Attach", "CreateStream", "JoinStream",
					    "Allocate" };
	unsigned n = 0;

	for (unsigned i = 0; i < ELEMENTSOF(want); i++) {
		bool found = false;
		for (unsigned k = 0; k < n_methods; k++)
			found |= strcmp(methods[k].name, want[i]) == 0;
		CHECKF(found, "no method %s in the protocol XML", want[i]);
	}
	for (unsigned k = 0; k < n_methods; k++)
		for (unsigned i = 0; i < methods[k].n_in; i++) {
			const char *t = methods[k].in[i];
			if (strcmp(t, "s") == 0 || strcmp(t, "as") == 0 || strcmp(t, "a{sv}") == 0)
				n++;
			else if (strchr(t, 's'))
				tap_diag("%s argument %u (%s): strings inside it are not probed", methods[k].name, i, t);
		}
	tap_diag("%u methods, %u string arguments, %u string options:", n_methods, n, n_options);
	for (unsigned i = 0; i < n_options; i++)
		tap_diag("  option %s (%s)", options[i].name, options[i].type);
	CHECK(n_options >= 4);
	return true;
}

static bool probe_all(bool direct)
{
	sd_bus *bus = open_bus(), *door = NULL;
	const char *dest = direct ? NULL : BUS_NAME;
	struct tally t = { 0 };
	uint64_t buffer;
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

	CHECK(bus && fd >= 0);
	buffer = allocate(bus);
	CHECK(buffer != 0);
	door = direct ? raw_direct(bus) : sd_bus_ref(bus);
	CHECK(door);
	for (unsigned k = 0; k < n_methods; k++) {
		const struct method *me = &methods[k];
		for (unsigned i = 0; i < me->n_in; i++) {
			bool dict = strcmp(me->in[i], "a{sv}") == 0;
			if (!dict && strcmp(me->in[i], "s") != 0 && strcmp(me->in[i], "as") != 0)
				continue;
			for (int o = -1; o < (dict ? (int)n_options : 0); o++)
				for (unsigned s = 0; s < n_nasties; s++) {
					struct target tg = { .m = me, .arg = i, .option = o, .s = nasties[s].s };
					sd_bus_message *m = NULL;
					struct answer a;
					char what[512];
					CHECK(build(door, dest, &tg, buffer, fd, &m) >= 0);
					snprintf(what, sizeof(what), "%.64s argument %u%s%.32s: %.128s", me->name, i,
						 dict ? (o < 0 ? " key" : " option ") : "", o >= 0 ? options[o].name : "",
						 nasties[s].what);
					count(&t, call(door, dest, m, &a), &a, what);
					sd_bus_message_unref(m);
				}
		}
	}
	report(&t);
	sd_bus_flush_close_unref(door);
	sd_bus_flush_close_unref(bus);
	close(fd);
	CHECK(t.calls > 0);
	CHECKF(t.unanswered == 0, "%u of %u calls were not answered", t.unanswered, t.calls);
	CHECKF(t.unprintable == 0, "%u error messages quote strings raw", t.unprintable);
	return true;
}

static bool test_bus(void)
{
	return probe_all(false);
}

static bool test_direct(void)
{
	return probe_all(true);
}

/* Each string as the caller's comm (cut by the kernel at 15 bytes, maybe inside a character). */
static bool test_comm(void)
{
	static const uint32_t xrgb = DRM_FORMAT_XRGB8888;
	char saved[16] = "";
	struct tally t = { 0 };

	prctl(PR_GET_NAME, saved);
	for (unsigned s = 0; s < n_nasties; s++) {
		sd_bus *bus, *direct = NULL;
		sd_bus_message *m = NULL;
		struct answer a;
		char name[32], what[128];

		prctl(PR_SET_NAME, nasties[s].s);
		bus = open_bus();
		/* The first call makes it a client: the daemon reads its comm once the bus has
		 * said who the caller is, and holds the call until then, while a Peer.Ping is
		 * answered at once; the calls counted below are made by a known client. */
		if (bus && sd_bus_call_method(bus, BUS_NAME, PATH, IFACE, "GetUsage", NULL, NULL, "") < 0)
			bus = sd_bus_flush_close_unref(bus);
		prctl(PR_SET_NAME, saved);
		CHECK(bus);
		snprintf(name, sizeof(name), "strings-comm-%u", s);
		static const char *const plain[] = { "ListClients", "GetUsage", "ListStreams", "ListBuffers" };
		for (unsigned i = 0; i < ELEMENTSOF(plain); i++) {
			CHECK(sd_bus_message_new_method_call(bus, &m, BUS_NAME, PATH, IFACE, plain[i]) >= 0);
			snprintf(what, sizeof(what), "%s with comm: %s", plain[i], nasties[s].what);
			count(&t, call(bus, BUS_NAME, m, &a), &a, what);
			m = sd_bus_message_unref(m);
		}
		/* the stream's default label is the comm */
		direct = raw_direct(bus);
		CHECK(direct);
		CHECK(sd_bus_message_new_method_call(direct, &m, NULL, PATH, IFACE, "CreateStream") >= 0);
		CHECK(sd_bus_message_append(m, "sa{sv}", name, 3, "formats", "au", 1, xrgb, "width", "u", 64, "height",
					    "u", 64) >= 0);
		snprintf(what, sizeof(what), "CreateStream with comm: %s", nasties[s].what);
		count(&t, call(direct, NULL, m, &a), &a, what);
		m = sd_bus_message_unref(m);
		CHECK(sd_bus_message_new_method_call(bus, &m, BUS_NAME, PATH, IFACE, "ListStreams") >= 0);
		snprintf(what, sizeof(what), "ListStreams after CreateStream with comm: %s", nasties[s].what);
		count(&t, call(bus, BUS_NAME, m, &a), &a, what);
		m = sd_bus_message_unref(m);
		sd_bus_flush_close_unref(direct);
		sd_bus_flush_close_unref(bus);
	}
	report(&t);
	CHECKF(t.unanswered == 0, "%u of %u calls were not answered", t.unanswered, t.calls);
	CHECKF(t.unprintable == 0, "%u error messages quote strings raw", t.unprintable);
	return true;
}

/*
 * A stream whose negotiation fails (the consumer takes NV12 only), with
 * the strings as labels: the failure quotes both, and every later call
 * about the stream answers with that text.
 */
static bool test_labels(void)
{
	static const uint32_t xrgb = DRM_FORMAT_XRGB8888, nv12 = DRM_FORMAT_NV12;
	struct tally t = { 0 };

	for (unsigned s = 0; s < n_nasties; s++) {
		int r;
		sd_bus *pb = open_bus(), *cb = open_bus(), *xb = open_bus(), *pd, *cd, *xd;
		sd_bus_message *m = NULL, *reply = NULL;
		sd_bus_error e = SD_BUS_ERROR_NULL;
		struct answer a;
		char name[32], what[128], label[32];
		uint64_t stream = 0;

		CHECK(pb && cb && xb);
		pd = raw_direct(pb);
		cd = raw_direct(cb);
		xd = raw_direct(xb);
		CHECK(pd && cd && xd);
		snprintf(name, sizeof(name), "strings-label-%u", s);
		/* a label is at most 31 bytes: the longest that fits, cut between characters */
		snprintf(label, sizeof(label), "%s", nasties[s].s);
		utf8_cut(label);
		r = sd_bus_call_method(pd, NULL, PATH, IFACE, "CreateStream", &e, &reply, "sa{sv}", name, 5, "formats",
				       "au", 1, xrgb, "width", "u", 64, "height", "u", 64, "consumers", "u", 1, "label",
				       "s", label);
		CHECKF(r >= 0, "CreateStream: %s: %s", e.name, e.message);
		CHECK(sd_bus_message_read(reply, "t", &stream) > 0);
		reply = sd_bus_message_unref(reply);

		CHECK(sd_bus_message_new_method_call(cd, &m, NULL, PATH, IFACE, "JoinStream") >= 0);
		CHECK(sd_bus_message_append(m, "sa{sv}", name, 2, "formats", "au", 1, nv12, "label", "s", label) >= 0);
		snprintf(what, sizeof(what), "JoinStream (negotiation fails) with labels: %s", nasties[s].what);
		count(&t, call(cd, NULL, m, &a), &a, what);
		m = sd_bus_message_unref(m);

		CHECK(sd_bus_message_new_method_call(pd, &m, NULL, PATH, IFACE, "StreamBuffers") >= 0);
		CHECK(sd_bus_message_append(m, "t", stream) >= 0);
		snprintf(what, sizeof(what), "StreamBuffers of the failed stream with labels: %s", nasties[s].what);
		count(&t, call(pd, NULL, m, &a), &a, what);
		m = sd_bus_message_unref(m);

		CHECK(sd_bus_message_new_method_call(xd, &m, NULL, PATH, IFACE, "JoinStream") >= 0);
		CHECK(sd_bus_message_append(m, "sa{sv}", name, 1, "formats", "au", 1, xrgb) >= 0);
		snprintf(what, sizeof(what), "JoinStream of the failed stream with labels: %s", nasties[s].what);
		count(&t, call(xd, NULL, m, &a), &a, what);
		m = sd_bus_message_unref(m);

		CHECK(sd_bus_message_new_method_call(pb, &m, BUS_NAME, PATH, IFACE, "ListStreams") >= 0);
		snprintf(what, sizeof(what), "ListStreams with labels: %s", nasties[s].what);
		count(&t, call(pb, BUS_NAME, m, &a), &a, what);
		m = sd_bus_message_unref(m);

		sd_bus_flush_close_unref(xd);
		sd_bus_flush_close_unref(cd);
		sd_bus_flush_close_unref(pd);
		sd_bus_flush_close_unref(xb);
		sd_bus_flush_close_unref(cb);
		sd_bus_flush_close_unref(pb);
	}
	report(&t);
	CHECKF(t.unanswered == 0, "%u of %u calls were not answered", t.unanswered, t.calls);
	CHECKF(t.unprintable == 0, "%u error messages quote strings raw", t.unprintable);
	return true;
}

/* Well-formed UTF-8 (no overlong forms, surrogates or code points past U+10FFFF). */
static bool valid_utf8(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	while (*p) {
		unsigned n = *p < 0x80 ? 1 : *p >= 0xc2 && *p <= 0xdf ? 2 : *p >= 0xe0 && *p <= 0xef ? 3 :
			     *p >= 0xf0 && *p <= 0xf4 ? 4 : 0;
		if (n == 0 || (n == 3 && ((*p == 0xe0 && p[1] < 0xa0) || (*p == 0xed && p[1] > 0x9f))) ||
		    (n == 4 && ((*p == 0xf0 && p[1] < 0x90) || (*p == 0xf4 && p[1] > 0x8f))))
			return false;
		for (unsigned i = 1; i < n; i++)
			if ((p[i] & 0xc0) != 0x80)
				return false;
		p += n;
	}
	return true;
}

/*
 * ALLOCATE on the access channel with the strings, and with bytes that are
 * no UTF-8 at all, as backend and device (cut to the wire's 63 and 127
 * bytes, inside characters): each is answered, and the ERROR's message is
 * printable UTF-8 (the library hands it to the application as a string).
 */
static bool test_access_channel(void)
{
	static const char *const bytes[] = { "\xff\xfe\xfd", "ab\xc3", "\xed\xa0\x80\xc0\xaf", "\x80\x80\x80\x01\x1b[2K" };
	sd_bus *bus = open_bus();
	sd_bus_message *reply = NULL;
	unsigned n = 0, bad = 0;
	int fd = -1, r;

	CHECK(bus);
	r = sd_bus_call_method(bus, BUS_NAME, PATH, IFACE, "OpenAccessChannel", NULL, &reply, "");
	if (r >= 0)
		r = sd_bus_message_read(reply, "h", &fd);
	if (r >= 0)
		fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	sd_bus_message_unref(reply);
	CHECK(r >= 0 && fd >= 0);
	for (unsigned s = 0; s < n_nasties + ELEMENTSOF(bytes); s++) {
		const char *str = s < n_nasties ? nasties[s].s : bytes[s - n_nasties];
		for (unsigned which = 0; which < 2; which++) {
			struct access_wire_alloc w = { .op = ACCESS_WIRE_ALLOCATE, .cookie = ++n, .width = 64, .height = 64,
						       .fourcc = DRM_FORMAT_XRGB8888,
						       .usage = DMABROKER_USAGE_CPU_READ_FLAG };
			struct access_wire_reply a = { 0 };
			struct pollfd p = { fd, POLLIN, 0 };
			if (which == 0)
				snprintf(w.backend, sizeof(w.backend), "%s", str);
			else
				snprintf(w.device, sizeof(w.device), "%s", str);
			CHECK(send(fd, &w, sizeof(w), MSG_NOSIGNAL) == (ssize_t)sizeof(w));
			/* answered at once: the limit only keeps a broken daemon from hanging the test */
			CHECKF(poll(&p, 1, (int)(timeout_usec() / 1000)) == 1, "no answer to ALLOCATE with %s %s",
			       which ? "device" : "backend", s < n_nasties ? nasties[s].what : "bytes");
			CHECK(recv(fd, &a, sizeof(a), 0) > 0);
			CHECK(a.cookie == w.cookie);
			if (a.op != ACCESS_WIRE_ERROR)
				continue;
			a.message[sizeof(a.message) - 1] = '\0';
			if (!valid_utf8(a.message) || !printable_text(a.message)) {
				if (++bad <= 6)
					tap_diag("not printable UTF-8: %s (%s %s)", a.message, which ? "device" : "backend",
						 s < n_nasties ? nasties[s].what : "bytes");
			}
		}
	}
	tap_diag("%u ALLOCATEs answered, %u error messages not printable UTF-8", n, bad);
	close(fd);
	sd_bus_flush_close_unref(bus);
	CHECK(bad == 0);
	return true;
}

static bool test_nothing_left(void)
{
	CHECK(baseline_restored(before));
	return true;
}

int main(int argc, char **argv)
{
	int r;

	if (argc != 2 || !daemon_pid_from_env(argv[0]))
		return 2;
	if (!parse_protocol(argv[1])) {
		fprintf(stderr, "%s: cannot read the methods of %s\n", argv[0], argv[1]);
		return 2;
	}
	make_nasties();
	before = baseline_take();
	tap_plan(7);
	tap_step("the protocol XML names the methods with strings and the string options", test_protocol);
	tap_step("every call with unusual strings is answered, on the bus", test_bus);
	tap_step("every call with unusual strings is answered, on a direct connection", test_direct);
	tap_step("a caller with an unusual process name is answered (lists, default labels)", test_comm);
	tap_step("a stream failing with unusual labels answers every party", test_labels);
	tap_step("the access channel answers unusual bytes with printable errors", test_access_channel);
	tap_step("the daemon holds as many fds and buffers as before", test_nothing_left);
	r = tap_done();
	for (unsigned i = 0; i < n_nasties; i++)
		free(nasties[i].s);
	return r;
}

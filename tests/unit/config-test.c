/* SPDX-License-Identifier: MIT */
/* Unit tests of daemon/config.c: every key, and each error with its line. */
#include <errno.h>
#include <stdlib.h>
#include <syslog.h>
#include <unistd.h>

#include "config.h"
#include "tap.h"

TAP_DEFINE;

static bool step_defaults(void)
{
	struct config c;
	char *err = NULL;

	config_init(&c);
	CHECK(config_parse(&c, "", "empty.conf", &err) == 0 && !err);
	CHECK(c.n_order == 4 && strcmp(c.order[0], "heap") == 0 && strcmp(c.order[3], "shm") == 0);
	CHECK(strcmp(c.heap, "system") == 0 && strcmp(c.contiguous_heap, "auto") == 0);
	CHECK(c.shm && c.n_drm_devices == 0 && c.max_dimension == 16384);
	config_free(&c);
	return true;
}

static bool step_every_key(void)
{
	static const char text[] =
		"# comment\n"
		"; another\n"
		"\n"
		"[daemon]\n"
		"log-level = debug\n"
		"[backends]\n"
		"  order = drm, heap  \n"
		"heap = system\n"
		"contiguous-heap = reserved\n"
		"drm-devices = vkms, /dev/dri/card2\n"
		"shm = no\n"
		"[limits]\n"
		"max-buffer-size = 256M\n"
		"max-dimension = 8192\n"
		"max-clients = 10\n"
		"max-buffers-per-client = 7\n"
		"max-bytes-per-client = 1G\n"
		"max-tokens-per-client = 3\n"
		"max-token-ttl = 60\n"
		"max-attachments-per-buffer = 4\n"
		"max-direct-connections-per-client = 2\n";
	struct config c;
	char *err = NULL;

	config_init(&c);
	CHECKF(config_parse(&c, text, "full.conf", &err) == 0, "%s", err);
	CHECK(c.log_level == LOG_DEBUG);
	CHECK(c.n_order == 2 && strcmp(c.order[0], "drm") == 0 && strcmp(c.order[1], "heap") == 0);
	CHECK(strcmp(c.contiguous_heap, "reserved") == 0);
	CHECK(c.n_drm_devices == 2 && strcmp(c.drm_devices[1], "/dev/dri/card2") == 0);
	CHECK(!c.shm);
	CHECK(c.max_buffer_size == 256ull << 20 && c.max_dimension == 8192 && c.max_clients == 10);
	CHECK(c.max_buffers_per_client == 7 && c.max_bytes_per_client == 1ull << 30);
	CHECK(c.max_tokens_per_client == 3 && c.max_token_ttl == 60);
	CHECK(c.max_attachments_per_buffer == 4 && c.max_direct_per_client == 2);
	config_free(&c);
	return true;
}

static bool expect_error(const char *text, const char *want)
{
	struct config c;
	char *err = NULL;
	int r;

	config_init(&c);
	r = config_parse(&c, text, "bad.conf", &err);
	config_free(&c);
	CHECKF(r == -EINVAL && err && strcmp(err, want) == 0, "for %s\n#   got:  %s\n#   want: %s", text,
	       err ? err : "(none)", want);
	free(err);
	return true;
}

static bool step_errors(void)
{
	return expect_error("[nope]\n", "bad.conf:1: unknown section [nope] (known: daemon, backends, limits, fences)") &&
	       expect_error("\n[limits]\nfrobnicate = 1\n", "bad.conf:3: unknown key 'frobnicate' in section [limits]") &&
	       expect_error("max-clients = 3\n", "bad.conf:1: key 'max-clients' outside of a section") &&
	       expect_error("[limits\n", "bad.conf:1: malformed section header") &&
	       expect_error("[limits]\njust words\n", "bad.conf:2: expected 'key = value' or '[section]'") &&
	       expect_error("[limits]\nmax-clients = 3\nmax-clients = 4\n", "bad.conf:3: key 'max-clients' set twice") &&
	       expect_error("[limits]\nmax-buffer-size = 12X\n",
			    "bad.conf:2: max-buffer-size: bad value '12X': expected a positive size such as 4096, 64K, 256M or 2G") &&
	       expect_error("[limits]\nmax-clients = 0\n",
			    "bad.conf:2: max-clients: bad value '0': expected a positive number below 2^32") &&
	       expect_error("[limits]\nmax-clients = 4294967296\n",
			    "bad.conf:2: max-clients: bad value '4294967296': expected a positive number below 2^32") &&
	       expect_error("[backends]\norder = heap, gpu\n",
			    "bad.conf:2: order: bad value 'heap, gpu': unknown backend (known: heap, udmabuf, drm, shm)") &&
	       expect_error("[backends]\norder = heap, heap\n", "bad.conf:2: order: bad value 'heap, heap': backend listed twice") &&
	       expect_error("[backends]\ndrm-devices = vkms,,vgem\n",
			    "bad.conf:2: drm-devices: bad value 'vkms,,vgem': empty item in list") &&
	       expect_error("[backends]\nshm = maybe\n", "bad.conf:2: shm: bad value 'maybe': expected yes or no") &&
	       expect_error("[backends]\nheap = ../system\n", "bad.conf:2: heap: bad value '../system': expected a name (no '/')") &&
	       expect_error("[daemon]\nlog-level = loud\n",
			    "bad.conf:2: log-level: bad value 'loud': expected err, warning, notice, info or debug");
}

static bool step_sizes(void)
{
	uint64_t v;
	CHECK(config_parse_size("4096", &v) && v == 4096);
	CHECK(config_parse_size("64K", &v) && v == 65536);
	CHECK(config_parse_size("2G", &v) && v == 2ull << 30);
	CHECK(config_parse_size("18446744073709551615", &v) && v == UINT64_MAX);
	CHECK(!config_parse_size("18446744073709551616", &v));
	CHECK(!config_parse_size("17179869184G", &v));
	CHECK(!config_parse_size("-1", &v) && !config_parse_size("", &v) && !config_parse_size("1KB", &v));
	return true;
}

static bool step_files(void)
{
	char path[] = "/tmp/config-test-XXXXXX";
	struct config c;
	char *err = NULL;
	int fd;

	config_init(&c);
	CHECK(config_load(&c, "/nonexistent/dmabroker.conf", false, &err) == 0 && !err);
	CHECK(config_load(&c, "/nonexistent/dmabroker.conf", true, &err) == -ENOENT);
	CHECK(err && strstr(err, "/nonexistent/dmabroker.conf: cannot open"));
	free(err);
	err = NULL;
	fd = mkstemp(path);
	CHECK(fd >= 0);
	CHECK(write(fd, "[limits]\nmax-clients = 9\n\0x", 27) == 27);
	close(fd);
	CHECK(config_load(&c, path, true, &err) == -EINVAL);
	CHECK(err && strstr(err, "NUL byte"));
	unlink(path);
	free(err);
	config_free(&c);
	return true;
}

int main(void)
{
	tap_plan(5);
	tap_step("defaults", step_defaults);
	tap_step("every key", step_every_key);
	tap_step("each error names file, line and reason", step_errors);
	tap_step("sizes", step_sizes);
	tap_step("files: missing, NUL bytes", step_files);
	return tap_done();
}

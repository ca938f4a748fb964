/* SPDX-License-Identifier: MIT */
/* Unit tests of daemon/service/config.c: every key, and each error with its line. */
#include <errno.h>
#include <stdlib.h>
#include <syslog.h>
#include <unistd.h>

#include "config.h"
#include "quota.h"
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
	CHECK(c.max_fds == 0); /* auto */
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
		"max-direct-connections-per-client = 2\n"
		"max-fences-per-client = 9\n"
		"max-clients-per-uid = 5\n"
		"max-bytes-per-uid = 3G\n"
		"max-pending-per-uid = 11\n"
		"max-fds = 5000\n"
		"[fences]\n"
		"timeout = 3\n"
		"timeout-policy = report\n"
		"hold-timeout = 5\n"
		"[access]\n"
		"heap:reserved = @0, root, 1000\n"
		"drm:vkms = @video\n"
		"[streams]\n"
		"camera = @video, 1000\n"
		"Mic_2.left = root\n";
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
	CHECK(c.max_fences_per_client == 9 && c.max_clients_per_uid == 5 && c.max_bytes_per_uid == 3ull << 30);
	CHECK(c.max_pending_per_uid == 11 && c.max_buffers_per_uid == 4096);
	CHECK(c.fence_timeout_sec == 3 && c.fence_timeout_policy == FENCE_POLICY_REPORT && c.hold_timeout_sec == 5);
	CHECK(c.max_fds == 5000);
	CHECK(c.n_access == 2 && strcmp(c.access[0].backend, "heap:reserved") == 0 && c.access[0].n == 3);
	CHECK(c.access[0].who[0].group && c.access[0].who[0].resolved && c.access[0].who[0].id == 0);
	CHECK(!c.access[0].who[1].group && !c.access[0].who[1].resolved && strcmp(c.access[0].who[1].name, "root") == 0);
	CHECK(c.access[0].who[2].resolved && c.access[0].who[2].id == 1000);
	CHECK(c.access[1].who[0].group && strcmp(c.access[1].who[0].name, "video") == 0);
	CHECK(c.n_streams == 2 && strcmp(c.streams[0].name, "camera") == 0 && c.streams[0].n == 2);
	CHECK(c.streams[0].who[0].group && !c.streams[0].who[0].resolved && strcmp(c.streams[0].who[0].name, "video") == 0);
	CHECK(!c.streams[0].who[1].group && c.streams[0].who[1].resolved && c.streams[0].who[1].id == 1000);
	CHECK(strcmp(c.streams[1].name, "Mic_2.left") == 0 && c.streams[1].n == 1 && !c.streams[1].who[0].resolved);
	/* names are resolved once, at start-up: root is uid 0 everywhere */
	CHECKF(config_resolve(&c, &err) == 0 || strstr(err, "video"), "%s", err);
	CHECK(c.access[0].who[1].resolved && c.access[0].who[1].id == 0);
	free(err);
	err = NULL;
	config_free(&c);
	/* [streams] names are resolved like [access] ones */
	config_init(&c);
	CHECKF(config_parse(&c, "[streams]\nmic = root, @0\n", "s.conf", &err) == 0, "%s", err);
	CHECKF(config_resolve(&c, &err) == 0, "%s", err);
	CHECK(c.streams[0].who[0].resolved && c.streams[0].who[0].id == 0 && !c.streams[0].who[0].group);
	CHECK(c.streams[0].who[1].resolved && c.streams[0].who[1].id == 0 && c.streams[0].who[1].group);
	free(err);
	err = NULL;
	config_free(&c);
	config_init(&c);
	CHECK(config_parse(&c, "[access]\nheap:system = nosuchuser12345\n", "x.conf", &err) == 0);
	CHECK(config_resolve(&c, &err) == -EINVAL);
	CHECKF(strcmp(err, "[access] heap:system (line 2): no user named 'nosuchuser12345'") == 0, "%s", err);
	free(err);
	err = NULL;
	config_free(&c);
	config_init(&c);
	CHECK(config_parse(&c, "[streams]\ncamera = root\n\ndisplay = @nosuchgroup12345\n", "x.conf", &err) == 0);
	CHECK(config_resolve(&c, &err) == -EINVAL);
	CHECKF(strcmp(err, "[streams] display (line 4): no group named 'nosuchgroup12345'") == 0, "%s", err);
	free(err);
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
	return expect_error("[nope]\n",
			    "bad.conf:1: unknown section [nope] (known: daemon, backends, limits, fences, access, pool, streams)") &&
	       expect_error("[streams]\ncamera = @\n", "bad.conf:2: [streams] camera: bad value '@': an empty user or @group") &&
	       expect_error("[streams]\ncamera =\n",
			    "bad.conf:2: [streams] camera: bad value '': expected users and @groups, e.g. '@video, root'") &&
	       expect_error("[streams]\ncamera = root\ncamera = @video\n",
			    "bad.conf:3: [streams] camera: bad value '@video': stream has a rule already") &&
	       expect_error("[streams]\nmy camera = root\n",
			    "bad.conf:2: [streams] my camera: bad value 'root': stream names are letters, digits, '-', '_', '.'") &&
	       expect_error("[streams]\ncam/0 = root\n",
			    "bad.conf:2: [streams] cam/0: bad value 'root': stream names are letters, digits, '-', '_', '.'") &&
	       expect_error("[streams]\n"
			    "a123456789012345678901234567890123456789012345678901234567890123 = root\n",
			    "bad.conf:2: [streams] a123456789012345678901234567890123456789012345678901234567890123: "
			    "bad value 'root': expected a stream name of 1 to 63 characters") &&
	       expect_error("[streams]\n = root\n",
			    "bad.conf:2: [streams] : bad value 'root': expected a stream name of 1 to 63 characters") &&
	       expect_error("[access]\nheap:system = @\n", "bad.conf:2: [access] heap:system: bad value '@': an empty user or @group") &&
	       expect_error("[access]\nheap:system = a b\n",
			    "bad.conf:2: [access] heap:system: bad value 'a b': user and group names are letters, digits, '_', '-', '.'") &&
	       expect_error("[access]\nheap:system = root\nheap:system = root\n",
			    "bad.conf:3: [access] heap:system: bad value 'root': backend has a rule already") &&
	       expect_error("[access]\nheap:system =\n",
			    "bad.conf:2: [access] heap:system: bad value '': expected users and @groups, e.g. '@video, root'") &&
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
	       expect_error("[fences]\nhold-timeout = -1\n",
			    "bad.conf:2: hold-timeout: bad value '-1': expected a number below 2^32 (0: no limit)") &&
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

static const char *shipped_path;

static bool step_shipped(void)
{
	struct config def, doc;
	char *text = NULL, *err = NULL, *out;
	size_t len = 0;
	FILE *f = fopen(shipped_path, "re");

	CHECKF(f, "%s: %s", shipped_path, strerror(errno));
	CHECK(getdelim(&text, &len, 0, f) > 0);
	fclose(f);
	/* every key the parser knows is there, commented out with its value */
	for (unsigned i = 0;; i++) {
		const char *section, *key = config_key_name(i, &section);
		char want[96];
		if (!key)
			break;
		snprintf(want, sizeof(want), "\n#%s = ", key);
		CHECKF(strstr(text, want), "[%s] %s is not documented in %s", section, key, shipped_path);
	}
	/* uncommented, the values are the defaults */
	out = text;
	for (char *p = text; *p; p++) {
		if (*p == '#' && (p == text || p[-1] == '\n') && p[1] >= 'a' && p[1] <= 'z' && strstr(p, " = ") &&
		    strstr(p, " = ") < strchr(p, '\n'))
			continue;
		*out++ = *p;
	}
	*out = 0;
	config_init(&def);
	config_init(&doc);
	CHECKF(config_parse(&doc, text, shipped_path, &err) == 0, "%s", err);
	CHECK(doc.max_buffer_size == def.max_buffer_size && doc.max_dimension == def.max_dimension);
	CHECK(doc.max_clients == def.max_clients && doc.max_buffers_per_client == def.max_buffers_per_client);
	CHECK(doc.max_bytes_per_client == def.max_bytes_per_client && doc.max_tokens_per_client == def.max_tokens_per_client);
	CHECK(doc.max_streams_per_client == def.max_streams_per_client && doc.max_fences_per_client == def.max_fences_per_client);
	CHECK(doc.max_grants_per_client == def.max_grants_per_client && doc.max_pending_per_client == def.max_pending_per_client);
	CHECK(doc.max_clients_per_uid == def.max_clients_per_uid && doc.max_buffers_per_uid == def.max_buffers_per_uid);
	CHECK(doc.max_bytes_per_uid == def.max_bytes_per_uid && doc.max_tokens_per_uid == def.max_tokens_per_uid);
	CHECK(doc.max_streams_per_uid == def.max_streams_per_uid && doc.max_grants_per_uid == def.max_grants_per_uid);
	CHECK(doc.max_pending_per_uid == def.max_pending_per_uid && doc.max_fences_per_uid == def.max_fences_per_uid);
	CHECK(doc.fence_timeout_sec == def.fence_timeout_sec && doc.fence_timeout_policy == def.fence_timeout_policy &&
	      doc.hold_timeout_sec == def.hold_timeout_sec);
	CHECK(doc.max_token_ttl == def.max_token_ttl && doc.max_attachments_per_buffer == def.max_attachments_per_buffer);
	CHECK(doc.max_fds == def.max_fds);
	CHECK(doc.n_access == 1); /* the example rule */
	CHECK(doc.n_streams == 1 && strcmp(doc.streams[0].name, "camera") == 0); /* the example reservation */
	config_free(&def);
	config_free(&doc);
	free(text);
	return true;
}

/* max-fds: auto is RLIMIT_NOFILE less the head-room; an explicit value never passes that. */
static bool step_max_fds(void)
{
	struct config c;
	uint64_t headroom;

	config_init(&c);
	headroom = fd_budget_headroom(&c);
	CHECK(headroom >= 256 + c.pool_max_buffers + c.max_clients);
	CHECK(fd_budget_limit(&c, 1048576) == 1048576 - headroom);
	CHECK(fd_budget_limit(&c, 20000) == 20000 - headroom);
	/* a limit too small for the head-room: half of it for clients */
	CHECK(fd_budget_limit(&c, headroom) == headroom / 2);
	c.max_fds = 100;
	CHECK(fd_budget_limit(&c, 20000) == 100);
	c.max_fds = 1000000;
	CHECK(fd_budget_limit(&c, 20000) == 20000 - headroom);
	config_free(&c);
	return true;
}

int main(void)
{
	shipped_path = SOURCE_ROOT "/configs/dmabroker.conf";
	tap_plan(7);
	tap_step("defaults", step_defaults);
	tap_step("every key", step_every_key);
	tap_step("each error names file, line and reason", step_errors);
	tap_step("sizes", step_sizes);
	tap_step("files: missing, NUL bytes", step_files);
	tap_step("configs/dmabroker.conf documents every key, with its default", step_shipped);
	tap_step("max-fds: the fd limit less head-room, or less", step_max_fds);
	return tap_done();
}

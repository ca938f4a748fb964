/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the names of buffers in the service manager's fd store,
 * which a starting daemon parses (LISTEN_FDNAMES) and trusts to rebuild
 * buffers. Each input is the size of a memfd (two bytes, in pages of 256
 * bytes) and a name. Checked after every input:
 *  - a name that parses formats again, and that name parses and formats to
 *    itself (what the daemon stores again is what it reads back);
 *  - restoring it with the memfd either fails, leaving no buffer and no fd,
 *    or makes exactly one buffer under the name's id, held by the restored
 *    client, whose planes fit the fd; a second restore of the same name is
 *    refused;
 *  - once the restored buffers are released, the broker is empty, its fd
 *    budget back at zero, and the process has the fds it had before.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "broker.h"
#include "fdstore.h"
#include "fd-util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct broker broker;

static void setup(void)
{
	memset(&broker, 0, sizeof(broker));
	config_init(&broker.config);
	broker.restored.broker = &broker;
	broker.self.broker = &broker;
	snprintf(broker.restored.comm, sizeof(broker.restored.comm), "restored");
}

static void check_round_trip(const char *name)
{
	struct fdstore_record rec, again;
	char out[FDSTORE_NAME_MAX + 2], out2[FDSTORE_NAME_MAX + 2];
	int len;

	if (fdstore_parse_name(name, &rec) < 0)
		return;
	if (rec.layout.n_planes == 0 || rec.layout.n_planes > 4)
		abort(); /* parsed a record no buffer has */
	len = fdstore_format_name(&rec, out, sizeof(out));
	if (len < 0)
		return; /* documented: a record no name describes */
	if ((size_t)len != strlen(out) || len > FDSTORE_NAME_MAX)
		abort();
	if (fdstore_parse_name(out, &again) < 0)
		abort(); /* the daemon would store a name it cannot read */
	if (again.id != rec.id || again.width != rec.width || again.height != rec.height ||
	    again.fourcc != rec.fourcc || again.modifier != rec.modifier || again.usage != rec.usage ||
	    again.owner_uid != rec.owner_uid || again.flags != rec.flags || strcmp(again.backend, rec.backend) ||
	    again.layout.n_planes != rec.layout.n_planes || again.n_uids > rec.n_uids)
		abort();
	if (fdstore_format_name(&again, out2, sizeof(out2)) != len || strcmp(out, out2) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int fds0 = -1;
	char name[FDSTORE_NAME_MAX + 64];
	struct fdstore_record rec;
	size_t fd_size, n;
	struct buffer *buf;
	int r;

	if (fds0 < 0) {
		setup();
		fds0 = self_fd_count();
	}
	if (size < 2)
		return 0;
	fd_size = ((size_t)data[0] << 8 | data[1]) * 256;
	n = size - 2 < sizeof(name) - 1 ? size - 2 : sizeof(name) - 1;
	memcpy(name, data + 2, n);
	name[n] = '\0';

	check_round_trip(name);

	r = fdstore_restore_fd(&broker, memfd_of_size(fd_size), name);
	if (r == 0) {
		if (fdstore_parse_name(name, &rec) < 0)
			abort(); /* restored from a name that does not parse */
		buf = buffer_find(&broker, rec.id);
		if (!buf || broker.buffers.len != 1 || !buffer_held_by(buf, &broker.restored) ||
		    buf->size != fd_size || buf->width != rec.width || buf->height != rec.height)
			abort();
		for (unsigned i = 0; i < buf->layout.n_planes; i++)
			if (buf->layout.plane[i].offset >= buf->size)
				abort(); /* a plane outside the memory */
		/* the same id again is refused */
		if (fdstore_restore_fd(&broker, memfd_of_size(fd_size), name) == 0 || broker.buffers.len != 1)
			abort();
	} else if (broker.buffers.len != 0 || broker.restored.holds) {
		abort(); /* a refused name left a buffer */
	}
	/* restore-grace ends: nobody reclaimed them */
	while (broker.restored.holds)
		buffer_release(broker.restored.holds);
	if (broker.buffers.len != 0 || broker.bytes != 0 || broker.fds != 0)
		abort();
	if (self_fd_count() != fds0)
		abort(); /* an fd leaked */
	return 0;
}

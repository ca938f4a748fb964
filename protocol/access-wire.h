/* SPDX-License-Identifier: MIT */
/*
 * The access channel: BeginAccess, EndAccess, Allocate and Release in a
 * fixed binary form, on a SOCK_SEQPACKET socket of a client's own
 * (OpenAccessChannel), for the per-frame path. The same grants as the D-Bus methods, ordered with them
 * in the same queue; only the encoding differs, and with it the cost: one
 * sendmsg and one recvmsg a side, where a D-Bus call on a direct connection
 * takes sd-bus's message building and parsing and three or four syscalls
 * a side.
 *
 *   client -> daemon   BEGIN (cookie, buffer, mode, flags)   answered later
 *                      END (grant) + zero or one release fence   one-way
 *                      ALLOCATE (cookie, what Allocate takes)    answered at once
 *                      RELEASE (buffer)                          one-way
 *   daemon -> client   GRANTED (cookie, grant) + zero or one acquire fence
 *                      BUFFER (cookie, what Allocate returns) + the buffer's fd
 *                      ERROR (cookie, errno, error code, message)
 *
 * Each message is one struct below (a reply cut after `grant` when it is
 * GRANTED), fences in SCM_RIGHTS. A BEGIN that must wait is answered when
 * it is granted, as the D-Bus call would be. A refused END or RELEASE is
 * logged by the daemon (they are one-way, like their D-Bus twins as the
 * library sends them). A message of the wrong size or kind closes the
 * channel.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

enum access_wire_op {
	ACCESS_WIRE_BEGIN = 1,
	ACCESS_WIRE_END = 2,
	ACCESS_WIRE_GRANTED = 3,
	ACCESS_WIRE_ERROR = 4,
	ACCESS_WIRE_ALLOCATE = 5,
	ACCESS_WIRE_BUFFER = 6,
	ACCESS_WIRE_RELEASE = 7,
};

#define ACCESS_WIRE_MAX_MODIFIERS 16
#define ACCESS_WIRE_MAX_PLANES 4

/* ALLOCATE: Allocate's arguments; the strings NUL-terminated, empty for none. */
struct access_wire_alloc {
	uint32_t op, cookie;
	uint32_t width, height, fourcc, usage;
	uint32_t flags;                 /* 1: fresh */
	uint32_t n_modifiers;
	uint64_t modifiers[ACCESS_WIRE_MAX_MODIFIERS];
	char backend[64], device[128];
};

/* BUFFER: Allocate's answer, with the buffer's fd. */
struct access_wire_buffer {
	uint32_t op, cookie;
	uint64_t id, size, modifier;
	uint32_t n_planes, dmabuf;
	struct {
		uint64_t offset;
		uint32_t stride, reserved;
	} planes[ACCESS_WIRE_MAX_PLANES];
	char backend[64];
};

struct access_wire_request {
	uint32_t op, cookie;
	uint64_t id;                    /* BEGIN, RELEASE: the buffer; END: the grant */
	uint32_t mode, flags;           /* BEGIN */
};

struct access_wire_reply {
	uint32_t op, cookie;
	uint64_t grant;                 /* GRANTED */
	int32_t error;                  /* ERROR: the errno */
	int32_t code;                   /* ERROR: the error's code (protocol/errors.h), 0: a system errno alone */
	char message[456];              /* ERROR: printable, NUL-terminated */
};

#define ACCESS_WIRE_GRANTED_SIZE offsetof(struct access_wire_reply, error)

/*
 * The same bytes on every ABI. i386 aligns a uint64_t to 4 bytes, x86-64
 * and arm to 8: every 64-bit field sits at a multiple of 8 and every
 * struct is a multiple of 8 long, so no ABI pads one differently. A change
 * that moves a field or changes a size fails the build on every ABI.
 */
#define ACCESS_WIRE_AT(type, field, offset) \
	_Static_assert(offsetof(struct type, field) == (offset), #type "." #field ": the wire layout")
ACCESS_WIRE_AT(access_wire_alloc, modifiers, 32);
ACCESS_WIRE_AT(access_wire_alloc, backend, 160);
ACCESS_WIRE_AT(access_wire_alloc, device, 224);
_Static_assert(sizeof(struct access_wire_alloc) == 352, "access_wire_alloc: the wire size");
ACCESS_WIRE_AT(access_wire_buffer, id, 8);
ACCESS_WIRE_AT(access_wire_buffer, size, 16);
ACCESS_WIRE_AT(access_wire_buffer, modifier, 24);
ACCESS_WIRE_AT(access_wire_buffer, n_planes, 32);
ACCESS_WIRE_AT(access_wire_buffer, planes, 40);
ACCESS_WIRE_AT(access_wire_buffer, planes[1].offset, 56);
ACCESS_WIRE_AT(access_wire_buffer, backend, 104);
_Static_assert(sizeof(struct access_wire_buffer) == 168, "access_wire_buffer: the wire size");
ACCESS_WIRE_AT(access_wire_request, id, 8);
ACCESS_WIRE_AT(access_wire_request, mode, 16);
_Static_assert(sizeof(struct access_wire_request) == 24, "access_wire_request: the wire size");
ACCESS_WIRE_AT(access_wire_reply, grant, 8);
ACCESS_WIRE_AT(access_wire_reply, message, 24);
_Static_assert(ACCESS_WIRE_GRANTED_SIZE == 16, "access_wire_reply: GRANTED's wire size");
_Static_assert(sizeof(struct access_wire_reply) == 480, "access_wire_reply: the wire size");

/* SPDX-License-Identifier: MIT */
/*
 * One message with zero or one fd, on a SOCK_SEQPACKET socket: what the
 * stream peer channels and the access channel are made of. Shared by the
 * daemon and the client library.
 */
#pragma once

#include <stddef.h>
#include <sys/types.h>

/* Sends len bytes and fd (borrowed; -1: none), without blocking or SIGPIPE. 0 or negative errno. */
int fdmsg_send(int sock, const void *data, size_t len, int fd);
/*
 * Receives one message of at most len bytes. *ret_fd: the first fd it
 * carried (ours, CLOEXEC) or -1; any further ones are closed. Returns its
 * size (0 with no fd: the end of the channel), -EMSGSIZE for a message
 * longer than len, -EBADMSG for one of no bytes with an fd (their fds
 * closed, *ret_fd -1), or negative errno (-EAGAIN: nothing there; a
 * blocking socket waits, up to its SO_RCVTIMEO).
 */
ssize_t fdmsg_recv(int sock, void *data, size_t len, int *ret_fd, int flags);

#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Writes the seed corpora of fuzz-access, fuzz-peer, fuzz-bus and
fuzz-token (tests/fuzz/corpus/access, peer, bus, token): a handful of
valid exchanges each, in the byte encoding the targets read their steps
from (see fuzz-access.c, fuzz-peer.c, fuzz-bus.c and fuzz-token.c; keep
this in step with them). Run from anywhere: ./tests/fuzz/gen-seeds.py"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))

# ---- fuzz-access: a step is a byte: bit 0 the client (0 = A, 1 = B), the
# rest what it does; a message is followed by its kind, shape, fds and fields.

PUMP = 0       # send a message, then let the daemon run
MORE = 1       # send a message, more follow before the daemon runs
SHARE = 96     # the other client gets the buffer (as OpenToken)
REOPEN = 104   # open the channel again (after the daemon closed it)
LEAVE = 110    # the client goes
FLOOD = 112    # many BEGINs, answers not read (then how many, less 128)
IDLE = 120     # just run the daemon

LATEST = 1     # some_id(): the newest buffer or grant
BEGIN, END, ALLOCATE, RELEASE, OTHER = range(5)
READ, WRITE = 1, 2


def step(side, what):
    return bytes([(what << 1) | side])


def msg(side, kind, fields, pump=True, cut=None, fds=()):
    """kind, shape, fd count, the fields, [cut length], [fd kinds]."""
    shape = 0 if cut is None else 224
    n_fds = {0: 0, 1: 192, 2: 248}[len(fds)]
    out = step(side, PUMP if pump else MORE) + bytes([kind, shape, n_fds]) + fields
    if cut is not None:
        out += struct.pack('>H', cut)
    for k in fds:  # 0 memfd (then its size / 64), 1 pipe, 2 /dev/null
        out += bytes([k]) + (bytes([1]) if k == 0 else b'')
    return out


def begin(side, mode, flags=0, **kw):
    return msg(side, BEGIN, bytes([LATEST, mode, flags]), **kw)


def end(side, **kw):
    return msg(side, END, bytes([LATEST]), **kw)


def release(side, **kw):
    return msg(side, RELEASE, bytes([LATEST]), **kw)


def allocate(side, w=64, h=32, fourcc=0, backend=None, mods=(), fresh=False, **kw):
    f = bytes([0, w - 1, 0, h - 1, fourcc, 0, 1 if fresh else 0, len(mods)])
    for m in mods:  # 0 linear, 128 invalid
        f += bytes([m])
    f += bytes([1, backend]) if backend is not None else bytes([0])
    f += bytes([0])  # no device
    return msg(side, ALLOCATE, f, **kw)


A, B = 0, 1
access = {
    'alone': allocate(A) + begin(A, READ) + end(A) + begin(A, WRITE) + end(A) + release(A),
    'queue': allocate(A) + step(A, SHARE) + bytes([0]) + begin(A, WRITE) + begin(B, READ) + end(A)
    + end(B) + release(A) + release(B),
    'leave-while-waiting': allocate(A) + step(A, SHARE) + bytes([0]) + begin(A, READ)
    + begin(B, WRITE) + step(A, LEAVE) + end(B),
    'nonblock-busy': allocate(A) + step(A, SHARE) + bytes([0]) + begin(A, WRITE) + begin(B, READ, flags=1),
    'end-with-fd': allocate(A) + begin(A, READ) + end(A, fds=(0,)),
    'bad-then-reopen': allocate(A) + begin(A, READ) + step(A, SHARE) + bytes([0]) + begin(B, WRITE)
    + begin(A, READ, fds=(1,)) + step(A, REOPEN) + begin(A, READ) + end(B),
    # regression: a BEGIN still queued when its channel closed was answered on the next channel
    'stale-after-close': allocate(A) + step(A, SHARE) + bytes([0]) + begin(B, WRITE) + begin(A, READ)
    + msg(A, OTHER, bytes([9, LATEST, 0])) + step(A, REOPEN) + end(B) + begin(A, READ),
    # regression: answers the daemon could not send (the client did not read) were dropped, the channel kept
    'flood': allocate(A) + step(A, FLOOD) + bytes([100]) + begin(A, READ),
    'cut': allocate(A) + begin(A, READ, cut=12),
    'batch': allocate(A, pump=False) + allocate(A, w=128, fourcc=2, backend=1, mods=(0,), pump=False)
    + begin(A, WRITE, pump=False) + release(A),
    'two-fds': allocate(A) + begin(A, WRITE) + end(A, fds=(2, 1)),
}

# ---- fuzz-peer: set-up bytes (role, buffers, max-acquired, peers), then
# steps: a byte for what, then its fields.

P_SEND, P_CLOSE, P_TAKE, P_GIVE, P_JOIN, P_IDLE, P_WIRE = 0, 1, 2, 3, 4, 5, 6
FRAME, REL = 1, 2


def wire(type_, index, n_damage=0, seq=0):
    return struct.pack('<IIQQII', type_, index, seq, seq * 1000, n_damage, 0) + \
        b''.join(struct.pack('<iiii', 0, 0, 16, 16) for _ in range(n_damage))


def psend(peer, w, fd=0, size=None):
    """peer, fd kind (0 none), then length (0: exact) and the message's bytes."""
    size = 0 if size is None else size
    return bytes([P_SEND, peer, fd]) + struct.pack('<H', size) + bytes([len(w)]) + w


def setup(producer, n_buffers, max_acquired=2, peers=1):
    return bytes([1 if producer else 0, n_buffers, max_acquired, peers])


def pwire(peer, index, n_damage=0, fd=0):
    """peer, type (0: its side's), index, damage count, fd (224: memfd), sequence, timestamp, the damage."""
    return bytes([P_WIRE, peer, 0, index, n_damage, fd, 1, 2]) + bytes(range(4 * n_damage))


take = bytes([P_TAKE])
give = bytes([P_GIVE, 0])
peer = {
    'consumer': setup(False, 3) + psend(0, wire(FRAME, 0, 0, 1)) + take + give + psend(0, wire(FRAME, 1, 2, 2))
    + psend(0, wire(FRAME, 2, 0, 3)) + take + take + give + give,
    'consumer-dup': setup(False, 2) + psend(0, wire(FRAME, 0)) + psend(0, wire(FRAME, 0)),
    'consumer-end': setup(False, 2) + psend(0, wire(FRAME, 1, 1)) + bytes([P_CLOSE, 0]) + take + give,
    'producer': setup(True, 2, peers=2) + take + give + psend(0, wire(REL, 0)) + psend(1, wire(REL, 0)) + take
    + give,
    'producer-join': setup(True, 3, peers=1) + take + give + bytes([P_JOIN]) + take + give
    + psend(1, wire(REL, 1)) + bytes([P_CLOSE, 0]) + take,
    'empty-with-fd': setup(False, 2) + psend(0, b'', fd=1),
    'consumer-wire': setup(False, 4, max_acquired=2) + pwire(0, 0) + pwire(0, 1, 3) + pwire(0, 2, 16) + take
    + take + take + give + take + give + give,
    'producer-wire': setup(True, 2, peers=3) + take + give + pwire(0, 0) + pwire(1, 0) + pwire(2, 0, fd=224)
    + take + take + give,
    'short': setup(True, 2) + take + give + psend(0, wire(REL, 0)[:20]),
}

# ---- fuzz-bus: a call is a byte (the method, by its place in the daemon's
# vtable, bus-interface.c, plus 25 for client B), its arguments as append_value()
# reads them, then a byte whose low 3 bits are 0 for a call that wants no
# reply; the byte 250 (251) instead: client A (B) leaves. Seeds that get
# past the argument checks, so that the books hold grants, tokens,
# attachments, an access channel and streams when a client leaves.

(ALLOCATE, IMPORT, RELEASE, CREATE_TOKEN, REVOKE_TOKEN, OPEN_TOKEN, ATTACH, DETACH, BEGIN_ACCESS,
 BEGIN_ACCESS_MULTI, END_ACCESS, LIST_BUFFERS, LIST_CLIENTS, GET_USAGE, LIST_BACKENDS, RECLAIM, OPEN_DIRECT,
 OPEN_ACCESS_CHANNEL, CREATE_STREAM, JOIN_STREAM, STREAM_BUFFERS, QUEUE_FRAME, RELEASE_FRAME, LEAVE_STREAM,
 LIST_STREAMS) = range(25)
WORDS = ['backend', 'device', 'shm', 'heap', 'drm', 'label', 'mode', 'fifo', 'mailbox', 'buffers', 'width',
         'height', 'consumers', 'max-acquired', 'usage', 'formats', 'modifiers', 'devices', 'allow-uids',
         'allow-gids', 's1', 's2', '', '/dev/dri/card0', 'virtio_gpu', 'heap:system']
REPLY = bytes([1])
NEWEST_BUFFER, NEWEST_GRANT, NEWEST_STREAM = bytes([0]), bytes([64]), bytes([96])
LAST_TOKEN = bytes([160])
XR24 = bytes([96])
EMPTY = bytes([0])


def u_small(v):  # 0 to 7: indices, modes, flags, usage bits
    return bytes([v])


def u_size(v):  # 1 to 2048
    return bytes([160]) + struct.pack('>H', v - 1)


def word(w):
    return bytes([WORDS.index(w)])


def array(n):  # 1 to 5 elements
    return bytes([112 + (n - 112) % 6 if n else 0])


def call(method, *args, b=False):
    return bytes([method + (25 if b else 0)]) + b''.join(args) + REPLY


A_LEAVES, B_LEAVES = bytes([250]), bytes([251])


def v_u(v):
    return bytes([1]) + v


ALLOC = call(ALLOCATE, u_size(64), u_size(32), XR24, EMPTY, u_small(1), EMPTY)
SHARED = ALLOC + call(CREATE_TOKEN, NEWEST_BUFFER, u_small(0), u_small(0)) + call(OPEN_TOKEN, LAST_TOKEN, b=True)


def stream(mode):
    return call(CREATE_STREAM, word('s1'), array(4), word('mode'), bytes([0]), word(mode), word('formats'),
                bytes([4]), array(1), XR24, word('width'), v_u(u_size(64)), word('height'), v_u(u_size(32)))


bus = {
    'grant-held': ALLOC + call(BEGIN_ACCESS, NEWEST_BUFFER, u_small(2), u_small(0)),
    'grant-ended': ALLOC + call(BEGIN_ACCESS, NEWEST_BUFFER, u_small(1), u_small(0))
    + call(END_ACCESS, NEWEST_GRANT, EMPTY),
    'grant-waiting': ALLOC + call(BEGIN_ACCESS, NEWEST_BUFFER, u_small(2), u_small(0))
    + call(BEGIN_ACCESS, NEWEST_BUFFER, u_small(1), u_small(0)),
    'grant-multi': ALLOC + ALLOC + call(BEGIN_ACCESS_MULTI, array(2), bytes([0]), u_small(2), bytes([1]),
                                        u_small(1), u_small(0)),
    'token-open-revoke': ALLOC + call(CREATE_TOKEN, NEWEST_BUFFER, u_small(0), u_small(0))
    + call(OPEN_TOKEN, LAST_TOKEN) + call(REVOKE_TOKEN, LAST_TOKEN),
    'token-single-use': ALLOC + call(CREATE_TOKEN, NEWEST_BUFFER, u_small(1), u_small(0))
    + call(OPEN_TOKEN, LAST_TOKEN) + call(OPEN_TOKEN, LAST_TOKEN),
    'token-kept': ALLOC + call(CREATE_TOKEN, NEWEST_BUFFER, u_small(0), u_small(0))
    + call(CREATE_TOKEN, NEWEST_BUFFER, u_small(1), u_small(0)),
    'attach': ALLOC + call(ATTACH, NEWEST_BUFFER, u_small(1), word(''), u_small(1))
    + call(ATTACH, NEWEST_BUFFER, u_small(2), word(''), u_small(0)),
    'attach-detach': ALLOC + call(ATTACH, NEWEST_BUFFER, u_small(1), word(''), u_small(0))
    + call(DETACH, NEWEST_BUFFER, u_small(1)),
    'channel-grant': call(OPEN_ACCESS_CHANNEL) + ALLOC + call(BEGIN_ACCESS, NEWEST_BUFFER, u_small(2), u_small(0)),
    'release': ALLOC + call(CREATE_TOKEN, NEWEST_BUFFER, u_small(0), u_small(0)) + call(RELEASE, NEWEST_BUFFER),
    'stream-fifo': stream('fifo') + call(STREAM_BUFFERS, NEWEST_STREAM),
    'stream-mailbox': stream('mailbox') + call(STREAM_BUFFERS, NEWEST_STREAM)
    + call(QUEUE_FRAME, NEWEST_STREAM, u_small(0), bytes([128]), bytes([128]), EMPTY, EMPTY),
    'stream-left': stream('mailbox') + call(STREAM_BUFFERS, NEWEST_STREAM) + call(LEAVE_STREAM, NEWEST_STREAM),
    'shared-grant-owner-leaves': SHARED + call(BEGIN_ACCESS, NEWEST_BUFFER, u_small(2), u_small(0), b=True)
    + A_LEAVES + call(LIST_BUFFERS, b=True),
    'shared-waiting': SHARED + call(BEGIN_ACCESS, NEWEST_BUFFER, u_small(2), u_small(0))
    + call(BEGIN_ACCESS, NEWEST_BUFFER, u_small(1), u_small(0), b=True) + A_LEAVES
    + call(END_ACCESS, NEWEST_GRANT, EMPTY, b=True),
    'shared-token-creator-leaves': ALLOC + call(CREATE_TOKEN, NEWEST_BUFFER, u_small(0), u_small(0))
    + call(CREATE_TOKEN, NEWEST_BUFFER, u_small(0), u_small(0)) + call(OPEN_TOKEN, LAST_TOKEN, b=True) + A_LEAVES,
    'stream-consumer': stream('mailbox') + call(JOIN_STREAM, word('s1'), EMPTY, b=True)
    + call(STREAM_BUFFERS, NEWEST_STREAM) + call(STREAM_BUFFERS, NEWEST_STREAM, b=True)
    + call(QUEUE_FRAME, NEWEST_STREAM, u_small(0), bytes([128]), bytes([128]), EMPTY, EMPTY)
    + call(RELEASE_FRAME, NEWEST_STREAM, u_small(0), EMPTY, b=True),
    'stream-producer-leaves': stream('fifo') + call(JOIN_STREAM, word('s1'), EMPTY, b=True)
    + call(STREAM_BUFFERS, NEWEST_STREAM, b=True) + A_LEAVES + call(LIST_STREAMS, b=True),
    'stream-consumer-leaves': stream('mailbox') + call(JOIN_STREAM, word('s1'), EMPTY, b=True)
    + call(STREAM_BUFFERS, NEWEST_STREAM, b=True)
    + call(QUEUE_FRAME, NEWEST_STREAM, u_small(0), bytes([128]), bytes([128]), EMPTY, EMPTY) + B_LEAVES
    + call(STREAM_BUFFERS, NEWEST_STREAM),
}

# ---- fuzz-token: a step is a byte, the client (0 alice, 1 bob, 2 mallory)
# plus 3 times what it does; then that step's bytes (see fuzz-token.c).

ALICE, BOB, MALLORY = range(3)
MINT, REDEEM, REVOKE, EXPIRE, RELEASE_BUF, LEAVE_ALL = 0, 20, 50, 62, 72, 80


def tstep(who, what):
    return bytes([what * 3 + who])


def mint(who, buf=0, single=False, ttl=0):
    return tstep(who, MINT) + bytes([buf, 1 if single else 0, ttl])


def token(i):  # the i-th token minted in this input, as it is
    return bytes([0, i])


def changed(i, *edits):  # (position, charset index or 240 for a cut) each, 1 to 3
    return bytes([112, i, len(edits) - 1]) + b''.join(bytes([p, c]) for p, c in edits)


def raw(text):
    return bytes([200, len(text)]) + text


def redeem(who, s):
    return tstep(who, REDEEM) + s


def revoke(who, s):
    return tstep(who, REVOKE) + s


token_seeds = {
    'redeem': mint(ALICE) + redeem(BOB, token(0)) + redeem(MALLORY, token(0)),
    'single-use': mint(ALICE, single=True) + redeem(BOB, token(0)) + redeem(MALLORY, token(0)),
    'expired': mint(ALICE, ttl=200) + tstep(ALICE, EXPIRE) + bytes([0]) + redeem(BOB, token(0))
    + redeem(BOB, token(0)),
    'revoke': mint(ALICE) + revoke(MALLORY, token(0)) + revoke(BOB, token(0)) + revoke(ALICE, token(0))
    + redeem(BOB, token(0)),
    'changed': mint(ALICE) + redeem(BOB, changed(0, (5, 16))) + redeem(BOB, changed(0, (31, 240)))
    + redeem(BOB, changed(0, (32, 1))) + redeem(BOB, changed(0, (20, 22))) + redeem(BOB, token(0)),
    'raw': mint(ALICE) + redeem(BOB, raw(b'0123456789abcdef0123456789abcdef')) + redeem(BOB, raw(b'short')),
    'quota': mint(ALICE) + redeem(BOB, token(0)) + mint(ALICE) + mint(ALICE) + mint(ALICE) + mint(ALICE)
    + mint(BOB) + mint(BOB) + mint(BOB),
    'sweep': mint(ALICE, single=True) + mint(ALICE, single=True) + mint(ALICE) + mint(ALICE)
    + redeem(BOB, token(0)) + redeem(BOB, token(1)) + tstep(ALICE, EXPIRE) + bytes([2]) + mint(ALICE)
    + mint(ALICE) + mint(ALICE),
    'bad-flags': tstep(ALICE, MINT) + bytes([0, 230, 0]) + mint(ALICE, ttl=255),
    'release-frees': mint(ALICE, buf=1) + tstep(ALICE, RELEASE_BUF) + bytes([1]) + redeem(BOB, token(0)),
    'creator-leaves': mint(ALICE) + redeem(BOB, token(0)) + mint(ALICE) + tstep(ALICE, LEAVE_ALL)
    + redeem(MALLORY, token(1)),
    'mallory-mints': mint(ALICE) + redeem(MALLORY, token(0)) + mint(MALLORY) + redeem(BOB, token(1))
    + tstep(MALLORY, LEAVE_ALL) + redeem(BOB, token(1)),
}


def write(name, seeds):
    d = os.path.join(HERE, 'corpus', name)
    os.makedirs(d, exist_ok=True)
    for k, v in seeds.items():
        with open(os.path.join(d, 'seed-' + k), 'wb') as f:
            f.write(v)


write('access', access)
write('peer', peer)
write('bus', bus)
write('token', token_seeds)

#!/usr/bin/env python3
"""A daemon restart without loss, tested without systemd: this script is
the service manager. It implements the part of systemd the daemon relies
on: a NOTIFY_SOCKET that takes FDSTORE=1/FDNAME fds and FDSTOREREMOVE=1,
and a restart that hands the stored fds back as LISTEN_FDS/LISTEN_FDNAMES
(sd_listen_fds_with_names). The test bed boots a shell, not systemd, so the
real unit (configs/dmabrokerd.service.in, --fd-store, FileDescriptorStoreMax)
is not run here.

It restarts the daemon twice: by SIGKILL (a crash) and by SIGTERM (what
`systemctl restart` does); a stopping daemon must leave the store as it
is. It also tries Reclaim where it must be refused (another uid, an
O_PATH fd, a buffer that was not restored, after restore-grace), checks
that a buffer another uid held is still never pooled after a restart, and
that the daemon keeps serving while the service manager does not read its
notify socket, with every fd-store message delivered in order later.

usage: restart-test.py DMABROKERD RESTART_CLIENT [BACKEND]
(BACKEND: what the client allocates from, e.g. heap:system in the VM)"""
import array
import fcntl
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from taptest import run, check  # noqa: E402
from busfixture import PrivateBus, wrapped  # noqa: E402

DAEMON, CLIENT = sys.argv[1:3]
BACKEND = sys.argv[3] if len(sys.argv) > 3 else None
VALGRIND = os.environ.get("DMABROKER_VALGRIND") == "1"
# Short, so the test sees an orphan go; long enough for the checks before it
# ends under valgrind or in the test bed (TCG, and ASan there: seconds per step).
IN_VM = "DMABROKER_VM_CTL_PORT" in os.environ
GRACE = 30 if IN_VM else 20 if VALGRIND else 8
# The second restart's grace: long enough for several clients to act in it.
GRACE2 = 2 * GRACE
NOBODY = 65534
# More fd-store messages than a unix datagram socket queues
# (net.unix.max_dgram_qlen, 10 by default in a fresh network namespace; the
# harness makes sure below).
BURST = 40


class FdStore:
    """The service manager's notify socket and fd store."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="dmabroker-fdstore.")
        self.path = os.path.join(self.dir, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.store = {}   # name -> fd
        self.added = []   # names in the order FDSTORE=1 brought them
        self.ready = False
        self.config = os.path.join(self.dir, "dmabroker.conf")
        self.write_config(GRACE)

    def write_config(self, grace):
        """restore-grace for the next start; a pool, so that a wrongly pooled buffer shows"""
        with open(self.config, "w") as f:
            f.write("[daemon]\nrestore-grace = %d\n[pool]\nmax-bytes = 16M\nmax-buffers = 16\n" % grace)

    def pump(self, timeout=0.0):
        """Handles the messages that came in, waiting up to timeout for the first."""
        self.sock.settimeout(timeout if timeout > 0 else 0.0001)
        while True:
            try:
                msg, anc, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(253 * 4))
            except (socket.timeout, BlockingIOError):
                return
            fds = []
            for level, kind, data in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    a = array.array("i")
                    a.frombytes(data[:len(data) - len(data) % a.itemsize])
                    fds.extend(a)
            fields = dict(l.split("=", 1) for l in msg.decode().split("\n") if "=" in l)
            if fields.get("READY") == "1":
                self.ready = True
            if fields.get("FDSTORE") == "1" and fds:
                name = fields.get("FDNAME", "stored")
                if name in self.store:
                    os.close(self.store.pop(name))
                self.store[name] = fds.pop(0)
                self.added.append(name)
            if fields.get("FDSTOREREMOVE") == "1":
                fd = self.store.pop(fields.get("FDNAME"), None)
                if fd is not None:
                    os.close(fd)
            for fd in fds:
                os.close(fd)
            self.sock.settimeout(0.0001)

    def start(self, bus):
        """Starts the daemon, handing it the store (as systemd does on a restart)."""
        names = list(self.store)
        fds = [self.store[n] for n in names]
        env = bus.env(NOTIFY_SOCKET=self.path)
        env.pop("LISTEN_FDS", None)

        if fds:
            env["LISTEN_FDS"] = str(len(fds))
            env["LISTEN_FDNAMES"] = ":".join(names)

        def child_setup():
            # the stored fds at 3, 4, ...; nothing else of ours gets through the exec
            tmp = [fcntl.fcntl(fd, fcntl.F_DUPFD, 3 + len(fds)) for fd in fds]  # above the targets
            for i, fd in enumerate(tmp):
                os.dup2(fd, 3 + i)  # inheritable
                os.close(fd)
            for fd in range(3 + len(fds), os.sysconf("SC_OPEN_MAX")):
                try:
                    if not fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC:
                        os.close(fd)
                except OSError:
                    pass

        self.ready = False
        # LISTEN_PID names the daemon's process: the shell's $$, kept by its exec
        argv = ["/bin/sh", "-c", 'LISTEN_PID=$$ exec "$0" "$@"'] + wrapped(
            [DAEMON, "--session", "--fd-store", "--config", self.config, "--log-level", "debug"])
        if not fds:
            argv = argv[3:]
        self.log = open(os.path.join(self.dir, "daemon.log"), "a")
        proc = subprocess.Popen(argv, env=env, preexec_fn=child_setup, close_fds=False, stderr=self.log)
        deadline = time.monotonic() + (90 if VALGRIND else 20)
        while not self.ready and time.monotonic() < deadline and proc.poll() is None:
            self.pump(0.1)
        check(self.ready, "the daemon did not become ready", proc.poll(), self.daemon_log())
        return proc

    def daemon_log(self):
        self.log.flush()
        with open(self.log.name) as f:
            return f.read()[-3000:]

    def buffer_names(self):
        return sorted(n for n in self.store if n.startswith("dmabroker.b"))

    def fd_of(self, buffer_id):
        """the stored fd of a buffer: the real thing, as its holders have it"""
        names = [n for n in self.buffer_names() if n.split(".")[2] == str(buffer_id)]
        check(len(names) == 1, "buffer %s in the store once" % buffer_id, self.buffer_names())
        return self.store[names[0]]

    def close(self):
        for fd in self.store.values():
            os.close(fd)
        self.sock.close()
        self.log.close()
        for name in ("notify", "daemon.log", "dmabroker.conf"):
            os.unlink(os.path.join(self.dir, name))
        os.rmdir(self.dir)


def read_line(proc, timeout):
    """a line from proc's stdout, or "" when none came in timeout seconds"""
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    return proc.stdout.readline().strip() if ready else ""


def client(*args, user=None):
    return subprocess.Popen([CLIENT] + (["--backend", BACKEND] if BACKEND else []) + [str(a) for a in args],
                            env=STATE["bus"].env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            user=user)


def tell(proc, line):
    proc.stdin.write(line + "\n")
    proc.stdin.flush()


def reclaim(buffer_id, fd, user=None):
    """one Reclaim of (buffer_id, fd) by a client of its own: "reclaimed N" or "error NAME"."""
    out = subprocess.run([CLIENT, "reclaim", str(buffer_id), str(fd)], env=STATE["bus"].env(), pass_fds=[fd],
                         user=user, capture_output=True, text=True, timeout=60)
    check(out.returncode == 0, "reclaim client failed", out.stdout, out.stderr)
    return out.stdout.strip()


def buffers_property(bus):
    out = subprocess.run(["busctl", "--user", "get-property", "org.dmabroker.Broker1", "/org/dmabroker/Broker1",
                          "org.dmabroker.Broker1", "Buffers"], env=bus.env(), capture_output=True, text=True)
    return int(out.stdout.split()[1]) if out.returncode == 0 else -1


STATE = {}


def test_store_fills():
    """every buffer the daemon holds is in the fd store, named after its id and layout"""
    bus = PrivateBus(any_user=True)
    store = FdStore()
    STATE.update(bus=bus, store=store)
    STATE["daemon"] = store.start(bus)
    client = subprocess.Popen([CLIENT] + (["--backend", BACKEND] if BACKEND else []), env=bus.env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    STATE["client"] = client
    line = client.stdout.readline().split()
    check(line and line[0] == "ready", "the client did not get ready", line)
    ids = line[1:]
    STATE["ids"] = ids
    time.sleep(0.2)
    store.pump()
    names = store.buffer_names()
    print("# stored: " + ", ".join(names))
    check(len(names) == 4, "4 buffers in the store", names)
    if BACKEND:
        kind = BACKEND.replace(":", "+")
        check(all(("." + kind + ".") in n for n in names), "all on " + BACKEND, names)
    for i in ids:
        check(any(n.split(".")[2] == i for n in names), "buffer %s stored" % i, names)


def test_restart_reclaim():
    """the daemon is SIGKILLed and restarted with the store: the clients reconnect and reclaim their buffers by themselves, contents intact; a stream ends (StreamEnded) and is made again"""
    bus, store, client = STATE["bus"], STATE["store"], STATE["client"]
    STATE["daemon"].send_signal(signal.SIGKILL)
    STATE["daemon"].wait(10)
    store.pump(0.2)
    client.stdin.write("down\n")
    client.stdin.flush()
    check(client.stdout.readline().strip() == "child gone", "the short-lived client left during the downtime")
    check(len(store.buffer_names()) == 4, "the store kept all 4 while the daemon was down", store.buffer_names())
    daemon = store.start(bus)
    STATE["daemon"] = daemon
    check(buffers_property(bus) == 4, "4 buffers restored", buffers_property(bus))
    client.stdin.write("go\n")
    client.stdin.flush()
    line = client.stdout.readline().strip()
    print("# " + line)
    check(line.startswith("stream ended by the restart and made again; reclaimed and used"),
          "the client saw its stream end, made it again and used its buffers again", line, store.daemon_log())


def test_forged_reclaim():
    """a reclaim that shows another file under a restored id (a memfd, /dev/null, a pipe) or an unknown id is refused with NotReclaimable"""
    bus = STATE["bus"]
    orphan = STATE["ids"][3]
    check(buffers_property(bus) == 5, "3 reclaimed + 1 new + the orphan until the grace ends", buffers_property(bus))
    out = subprocess.run([CLIENT, "forge", orphan], env=bus.env(), capture_output=True, text=True, timeout=30)
    check(out.returncode == 0, "every forged Reclaim got a reply", out.stdout, out.stderr)
    check(out.stdout.split() == ["memfd", "NotReclaimable", "null", "NotReclaimable", "pipe", "NotReclaimable",
                                 "unknown", "NotReclaimable"], "each refused by name", out.stdout)
    check(buffers_property(bus) == 5, "the orphan is still waiting", buffers_property(bus))
    check(STATE["daemon"].poll() is None, "the daemon is alive")


def test_reclaim_rules():
    """the real fd is not enough: Reclaim is refused for a uid that did not hold the buffer, for an O_PATH fd, and for a buffer that was not restored"""
    bus, store = STATE["bus"], STATE["store"]
    orphan = STATE["ids"][3]
    store.pump(0.2)
    fd = store.fd_of(orphan)
    got = reclaim(orphan, fd, user=NOBODY)
    check(got == "error NotReclaimable", "another uid with the orphan's own fd", got)
    path_fd = os.open("/proc/self/fd/%d" % fd, os.O_PATH | os.O_CLOEXEC)
    try:
        got = reclaim(orphan, path_fd)
    finally:
        os.close(path_fd)
    check(got == "error NotReclaimable", "an O_PATH fd of the orphan, by its own uid", got)
    # the client's new buffer lives, it was never restored: its fd gives no hold to another client
    fresh = max(int(n.split(".")[2]) for n in store.buffer_names())
    got = reclaim(fresh, store.fd_of(fresh))
    check(got == "error NotReclaimable", "a buffer that was not restored", got)
    # that the orphan was taken by nobody shows when the grace ends: it is released (test_grace)
    check(STATE["daemon"].poll() is None, "the daemon is alive")


def test_grace():
    """a buffer whose client left while the daemon was down is released when restore-grace ends"""
    bus, store = STATE["bus"], STATE["store"]
    deadline = time.monotonic() + GRACE + 15
    while time.monotonic() < deadline and buffers_property(bus) != 4:
        time.sleep(0.2)
    check(buffers_property(bus) == 4, "the orphan was released", buffers_property(bus))
    store.pump(0.2)
    orphan = STATE["ids"][3]
    check(not any(n.startswith("dmabroker.b.%s." % orphan) for n in store.buffer_names()),
          "the orphan left the store", store.buffer_names())
    check("buffers nobody reclaimed were released" in store.daemon_log(), "the daemon says so", store.daemon_log())
    first = STATE["ids"][0]
    got = reclaim(first, store.fd_of(first))
    check(got == "error NotReclaimable", "after restore-grace, even the holder's uid with the real fd", got)


def test_sigterm_restart():
    """the daemon is stopped with SIGTERM (systemctl restart) and started again: the store is left as it was, every buffer comes back, including one shared with another uid, which that uid reclaims"""
    bus, store = STATE["bus"], STATE["store"]
    sharer = client("share")
    STATE["sharer"] = sharer
    line = read_line(sharer, 60).split()
    check(line and line[0] == "shared", "the sharing client did not get ready", line)
    x1, x2, t1, t2 = line[1:5]
    STATE["shared"] = (x1, x2)
    opener = client("open", t1, t2, user=NOBODY)
    line = read_line(opener, 60).split()
    check(line == ["opened", x1, x2], "another uid opened both", line)
    store.pump(0.2)
    before = store.buffer_names()
    check(len(before) == 6, "4 + 2 buffers stored", before)
    STATE["daemon"].send_signal(signal.SIGTERM)
    check(STATE["daemon"].wait(60) == 0, "the daemon stopped cleanly", store.daemon_log())
    store.pump(0.2)
    check(store.buffer_names() == before, "a stopping daemon leaves the store as it is", before, store.buffer_names())
    tell(opener, "bye")  # the other uid goes while the daemon is down: it never reclaims
    check(opener.wait(20) == 0, "the opener ended")
    store.write_config(GRACE2)
    STATE["daemon"] = store.start(bus)
    check(buffers_property(bus) == 6, "6 buffers restored", buffers_property(bus))
    tell(STATE["client"], "again")
    line = read_line(STATE["client"], 60)
    print("# " + line)
    check(line.startswith("again: reclaimed and used"), "the client used its buffers again", line, store.daemon_log())
    got = reclaim(x1, store.fd_of(x1), user=NOBODY)
    check(got == "reclaimed 1", "the other uid that held it reclaims the shared buffer", got, store.daemon_log())


def test_no_pool_survives():
    """a buffer another uid held is still never pooled after the restart: its owner lets go, the grace ends, and the owner's next Allocate gets fresh memory"""
    bus, store, sharer = STATE["bus"], STATE["store"], STATE["sharer"]
    tell(sharer, "release")
    line = read_line(sharer, 60)
    check(line == "released", "the owner reclaimed and released the second shared buffer", line)
    x2 = STATE["shared"][1]
    deadline = time.monotonic() + GRACE2 + 15
    while time.monotonic() < deadline and buffer_stored(store, x2):
        time.sleep(0.2)
        store.pump()
    check(not buffer_stored(store, x2), "the second shared buffer went at the end of the grace", store.buffer_names())
    tell(sharer, "alloc")
    line = read_line(sharer, 60)
    check(line == "pooled different", "the owner's next Allocate did not get memory another uid may still map",
          line)
    tell(sharer, "end")
    check(sharer.wait(20) == 0, "the sharing client ended")


def test_notify_not_blocking():
    """while the service manager does not read its notify socket, the daemon still answers every call; the fd-store messages arrive later, all and in order"""
    bus, store = STATE["bus"], STATE["store"]
    with open("/proc/sys/net/unix/max_dgram_qlen") as f:
        qlen = int(f.read())
    check(qlen < BURST, "a burst of %d fills the notify socket (max_dgram_qlen %d)" % (BURST, qlen))
    store.pump(0.2)
    added = len(store.added)
    burster = client("burst", BURST)
    # no pump from here: the notify socket fills up
    line = read_line(burster, 90)
    check(line == "allocated %d" % BURST, "every Allocate answered while the notify socket was full", line,
          store.daemon_log())
    check(buffers_property(bus) >= BURST, "and a property read", buffers_property(bus))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(store.added) < added + BURST:
        store.pump(0.1)
    new = store.added[added:]
    ids = [int(n.split(".")[2]) for n in new]
    check(len(new) == BURST, "every buffer reached the store", new)
    check(ids == sorted(ids), "in order", ids)
    tell(burster, "end")
    check(burster.wait(30) == 0, "the burst client ended")


def buffer_stored(store, buffer_id):
    return any(n.split(".")[2] == str(buffer_id) for n in store.buffer_names())


def test_clean_stop():
    """the store holds exactly the live buffers; the client ends and the daemon stops cleanly with an empty store"""
    bus, store, client, daemon = STATE["bus"], STATE["store"], STATE["client"], STATE["daemon"]
    store.pump(0.2)
    # the other clients are gone: only the first client's 4 remain
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and buffers_property(bus) != 4:
        time.sleep(0.1)
    store.pump(0.2)
    check(len(store.buffer_names()) == 4, "4 live buffers stored", store.buffer_names())
    client.stdin.write("end\n")
    client.stdin.flush()
    check(client.wait(20) == 0, "the client failed")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and buffers_property(bus) != 0:
        time.sleep(0.1)
    store.pump(0.2)
    check(store.buffer_names() == [], "released buffers leave the store", store.buffer_names())
    daemon.send_signal(signal.SIGTERM)
    check(daemon.wait(60) == 0, "the daemon did not stop cleanly", store.daemon_log())
    store.close()
    bus.close()


run([test_store_fills, test_restart_reclaim, test_forged_reclaim, test_reclaim_rules, test_grace,
     test_sigterm_restart, test_no_pool_survives, test_notify_not_blocking, test_clean_stop])

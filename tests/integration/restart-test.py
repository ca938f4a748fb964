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
import errno
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
from busfixture import PrivateBus, wrapped, sanitized, exit_problem, stop_process, READY_TIMEOUT  # noqa: E402

DAEMON, CLIENT = sys.argv[1:3]
BACKEND = sys.argv[3] if len(sys.argv) > 3 else None
VALGRIND = os.environ.get("DMABROKER_VALGRIND") == "1"
ASAN = sanitized(DAEMON)
IN_VM = "DMABROKER_VM_CTL_PORT" in os.environ
# restore-grace after the first restart: the clients reconnect and reclaim,
# and the refused reclaims run, before it ends (each step checks it did:
# in_grace()); the test then waits for its end to see the orphan go. Sized
# for a 2-core machine loaded with TCG VMs, 7x and more what those steps
# took on one: 0.2 s on the host, 1 s with ASan, 4 s under valgrind, 8 s in
# the test bed (TCG) and 13 s there with ASan.
GRACE = (90 if ASAN else 60) if IN_VM else 40 if VALGRIND else 20 if ASAN else 10
# The second restart's: fewer steps in it (0.2 s on the host, 3 s under
# valgrind, 4 s in the test bed).
GRACE2 = max(10, GRACE // 2)
# A bound on a wait for the daemon's or a client's next state: only a hang takes this long.
HANG = 180 if VALGRIND or IN_VM else 60
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
        self.started = time.monotonic()
        # LISTEN_PID names the daemon's process: the shell's $$, kept by its exec
        argv = ["/bin/sh", "-c", 'LISTEN_PID=$$ exec "$0" "$@"'] + wrapped(
            [DAEMON, "--session", "--fd-store", "--config", self.config, "--log-level", "debug"])
        if not fds:
            argv = argv[3:]
        self.log = open(os.path.join(self.dir, "daemon.log"), "a")
        proc = subprocess.Popen(argv, env=env, preexec_fn=child_setup, close_fds=False, stderr=self.log)
        deadline = time.monotonic() + READY_TIMEOUT
        while not self.ready and time.monotonic() < deadline and proc.poll() is None:
            self.pump(0.1)
        check(self.ready, "the daemon did not become ready", proc.poll(), self.daemon_log())
        return proc

    def pump_until(self, cond, timeout=None):
        """pumps until cond() holds or timeout (default HANG) passed"""
        deadline = time.monotonic() + (HANG if timeout is None else timeout)
        while not cond() and time.monotonic() < deadline:
            self.pump(0.1)

    def in_grace(self, grace, what):
        """fails unless the daemon started less than grace seconds ago: what was checked was checked in its
        restore-grace (else the machine is too slow for GRACE, and the checks prove nothing)"""
        took = time.monotonic() - self.started
        print("# %s: %.1f s into the %d s restore-grace" % (what, took, grace))
        check(took < grace, "%s took %.1f s from the daemon's start: past its %d s restore-grace" % (what, took, grace))

    def stop(self, proc):
        """SIGTERM, and the daemon's exit checked: status 0, no valgrind or sanitizer report"""
        code = stop_process(proc, signal.SIGTERM)
        problem = exit_problem(code, self.daemon_log(full=True))
        check(not problem, "the daemon did not stop cleanly: %s" % problem, self.daemon_log())

    def daemon_log(self, full=False):
        self.log.flush()
        with open(self.log.name) as f:
            return f.read() if full else f.read()[-3000:]

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


def needs_daemon():
    """a step starts with the daemon running; when an earlier step left none, it fails at once (not after a wait)"""
    check("daemon" in STATE and STATE["daemon"].poll() is None, "no daemon running (an earlier step failed)")


def test_store_fills():
    """every buffer the daemon holds is in the fd store, named after its id and layout"""
    bus = PrivateBus(any_user=True)
    store = FdStore()
    STATE.update(bus=bus, store=store)
    STATE["daemon"] = store.start(bus)
    client = subprocess.Popen([CLIENT] + (["--backend", BACKEND] if BACKEND else []), env=bus.env(),
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    STATE["client"] = client
    line = read_line(client, HANG).split()
    check(line and line[0] == "ready", "the client did not get ready", line)
    ids = line[1:]
    STATE["ids"] = ids
    store.pump_until(lambda: len(store.buffer_names()) >= 4)
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
    needs_daemon()
    bus, store, client = STATE["bus"], STATE["store"], STATE["client"]
    STATE["daemon"].send_signal(signal.SIGKILL)
    STATE["daemon"].wait(10)
    store.pump(0.2)
    client.stdin.write("down\n")
    client.stdin.flush()
    line = read_line(client, HANG)
    print("# " + line)
    check(line.startswith("child gone;"), "the short-lived client left during the downtime", line)
    fields = line.replace(",", "").split()
    check(fields[2:4] == ["while", "down:"] and fields[5] == str(-errno.ENOTCONN) and fields[7] == str(-errno.ENOTCONN)
          and float(fields[8]) < 5,
          "calls while the daemon is down fail with ENOTCONN at once, not waiting for it", line)
    check(len(store.buffer_names()) == 4, "the store kept all 4 while the daemon was down", store.buffer_names())
    daemon = store.start(bus)
    STATE["daemon"] = daemon
    check(buffers_property(bus) == 4, "4 buffers restored", buffers_property(bus))
    client.stdin.write("go\n")
    client.stdin.flush()
    line = read_line(client, HANG)
    print("# " + line)
    check(line.startswith("stream ended by the restart and made again; reclaimed and used"),
          "the client saw its stream end, made it again and used its buffers again", line, store.daemon_log())
    store.in_grace(GRACE, "reclaimed")


def test_forged_reclaim():
    """a reclaim that shows another file under a restored id (a memfd, /dev/null, a pipe) or an unknown id is refused with NotReclaimable"""
    needs_daemon()
    bus, store = STATE["bus"], STATE["store"]
    orphan = STATE["ids"][3]
    check(buffers_property(bus) == 5, "3 reclaimed + 1 new + the orphan until the grace ends", buffers_property(bus))
    out = subprocess.run([CLIENT, "forge", orphan], env=bus.env(), capture_output=True, text=True, timeout=HANG)
    check(out.returncode == 0, "every forged Reclaim got a reply", out.stdout, out.stderr)
    check(out.stdout.split() == ["memfd", "NotReclaimable", "null", "NotReclaimable", "pipe", "NotReclaimable",
                                 "unknown", "NotReclaimable"], "each refused by name", out.stdout)
    check(buffers_property(bus) == 5, "the orphan is still waiting", buffers_property(bus))
    check(STATE["daemon"].poll() is None, "the daemon is alive")
    store.in_grace(GRACE, "forged reclaims refused")


def test_reclaim_rules():
    """the real fd is not enough: Reclaim is refused for a uid that did not hold the buffer, for an O_PATH fd, and for a buffer that was not restored"""
    needs_daemon()
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
    store.in_grace(GRACE, "reclaims refused by the rules")


def test_grace():
    """a buffer whose client left while the daemon was down is released when restore-grace ends"""
    needs_daemon()
    bus, store = STATE["bus"], STATE["store"]
    deadline = store.started + GRACE + HANG
    while time.monotonic() < deadline and buffers_property(bus) != 4:
        time.sleep(0.2)
    check(buffers_property(bus) == 4, "the orphan was released", buffers_property(bus))
    orphan = STATE["ids"][3]
    store.pump_until(lambda: not buffer_stored(store, orphan))
    check(not buffer_stored(store, orphan), "the orphan left the store", store.buffer_names())
    check("buffers nobody reclaimed were released" in store.daemon_log(), "the daemon says so", store.daemon_log())
    first = STATE["ids"][0]
    got = reclaim(first, store.fd_of(first))
    check(got == "error NotReclaimable", "after restore-grace, even the holder's uid with the real fd", got)


def test_sigterm_restart():
    """the daemon is stopped with SIGTERM (systemctl restart) and started again: the store is left as it was, every buffer comes back, including one shared with another uid, which that uid reclaims"""
    needs_daemon()
    bus, store = STATE["bus"], STATE["store"]
    sharer = client("share")
    STATE["sharer"] = sharer
    line = read_line(sharer, HANG).split()
    check(line and line[0] == "shared", "the sharing client did not get ready", line)
    x1, x2, t1, t2 = line[1:5]
    STATE["shared"] = (x1, x2)
    opener = STATE["opener"] = client("open", t1, t2, user=NOBODY)
    line = read_line(opener, HANG).split()
    check(line == ["opened", x1, x2], "another uid opened both", line)
    store.pump_until(lambda: len(store.buffer_names()) >= 6)
    before = store.buffer_names()
    check(len(before) == 6, "4 + 2 buffers stored", before)
    store.stop(STATE["daemon"])
    store.pump(0.2)
    check(store.buffer_names() == before, "a stopping daemon leaves the store as it is", before, store.buffer_names())
    tell(opener, "bye")  # the other uid goes while the daemon is down: it never reclaims
    check(opener.wait(HANG) == 0, "the opener ended")
    store.write_config(GRACE2)
    STATE["daemon"] = store.start(bus)
    check(buffers_property(bus) == 6, "6 buffers restored", buffers_property(bus))
    tell(STATE["client"], "again")
    line = read_line(STATE["client"], HANG)
    print("# " + line)
    check(line.startswith("again: reclaimed and used"), "the client used its buffers again", line, store.daemon_log())
    got = reclaim(x1, store.fd_of(x1), user=NOBODY)
    check(got == "reclaimed 1", "the other uid that held it reclaims the shared buffer", got, store.daemon_log())
    store.in_grace(GRACE2, "reclaimed after the SIGTERM restart")


def test_no_pool_survives():
    """a buffer another uid held is still never pooled after the restart: its owner lets go, the grace ends, and the owner's next Allocate gets fresh memory"""
    needs_daemon()
    bus, store, sharer = STATE["bus"], STATE["store"], STATE["sharer"]
    tell(sharer, "release")
    line = read_line(sharer, HANG)
    check(line == "released", "the owner reclaimed and released the second shared buffer", line)
    store.in_grace(GRACE2, "the owner's reclaim")
    x2 = STATE["shared"][1]
    deadline = store.started + GRACE2 + HANG
    while time.monotonic() < deadline and buffer_stored(store, x2):
        time.sleep(0.2)
        store.pump()
    check(not buffer_stored(store, x2), "the second shared buffer went at the end of the grace", store.buffer_names())
    tell(sharer, "alloc")
    line = read_line(sharer, HANG)
    check(line == "pooled different", "the owner's next Allocate did not get memory another uid may still map",
          line)
    tell(sharer, "end")
    check(sharer.wait(HANG) == 0, "the sharing client ended")


def test_notify_not_blocking():
    """while the service manager does not read its notify socket, the daemon still answers every call; the fd-store messages arrive later, all and in order"""
    needs_daemon()
    bus, store = STATE["bus"], STATE["store"]
    with open("/proc/sys/net/unix/max_dgram_qlen") as f:
        qlen = int(f.read())
    check(qlen < BURST, "a burst of %d fills the notify socket (max_dgram_qlen %d)" % (BURST, qlen))
    store.pump(0.2)
    added = len(store.added)
    burster = STATE["burster"] = client("burst", BURST)
    # no pump from here: the notify socket fills up
    line = read_line(burster, HANG)
    check(line == "allocated %d" % BURST, "every Allocate answered while the notify socket was full", line,
          store.daemon_log())
    check(buffers_property(bus) >= BURST, "and a property read", buffers_property(bus))
    store.pump_until(lambda: len(store.added) >= added + BURST)
    new = store.added[added:]
    ids = [int(n.split(".")[2]) for n in new]
    check(len(new) == BURST, "every buffer reached the store", new)
    check(ids == sorted(ids), "in order", ids)
    tell(burster, "end")
    check(burster.wait(HANG) == 0, "the burst client ended")


def buffer_stored(store, buffer_id):
    return any(n.split(".")[2] == str(buffer_id) for n in store.buffer_names())


def test_clean_stop():
    """the store holds exactly the live buffers; the client ends and the daemon stops cleanly with an empty store"""
    needs_daemon()
    bus, store, client, daemon = STATE["bus"], STATE["store"], STATE["client"], STATE["daemon"]
    # the other clients are gone: only the first client's 4 remain
    deadline = time.monotonic() + HANG
    while time.monotonic() < deadline and buffers_property(bus) != 4:
        time.sleep(0.1)
    store.pump_until(lambda: len(store.buffer_names()) <= 4)
    check(len(store.buffer_names()) == 4, "4 live buffers stored", store.buffer_names())
    client.stdin.write("end\n")
    client.stdin.flush()
    check(client.wait(HANG) == 0, "the client failed")
    deadline = time.monotonic() + HANG
    while time.monotonic() < deadline and buffers_property(bus) != 0:
        time.sleep(0.1)
    store.pump_until(lambda: store.buffer_names() == [])
    check(store.buffer_names() == [], "released buffers leave the store", store.buffer_names())
    store.stop(daemon)


def cleanup():
    """after a failed step: whatever still runs is stopped, so that nothing outlives the test (a left dbus-daemon
    holds meson's pipe: the run would hang until its timeout)"""
    for key in ("client", "sharer", "opener", "burster"):
        if key in STATE and STATE[key].poll() is None:
            STATE[key].kill()
            STATE[key].wait()
    if "daemon" in STATE and STATE["daemon"].poll() is None:
        stop_process(STATE["daemon"], signal.SIGTERM)
    if "store" in STATE:
        STATE["store"].close()
    if "bus" in STATE:
        STATE["bus"].close()


try:
    run([test_store_fills, test_restart_reclaim, test_forged_reclaim, test_reclaim_rules, test_grace,
         test_sigterm_restart, test_no_pool_survives, test_notify_not_blocking, test_clean_stop])
finally:
    cleanup()

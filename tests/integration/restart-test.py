#!/usr/bin/env python3
"""A daemon restart without loss, tested without systemd: this script is
the service manager. It implements the part of systemd the daemon relies
on: a NOTIFY_SOCKET that takes FDSTORE=1/FDNAME fds and FDSTOREREMOVE=1,
and a restart that hands the stored fds back as LISTEN_FDS/LISTEN_FDNAMES
(sd_listen_fds_with_names). The test bed boots a shell, not systemd, so the
real unit (configs/dmabrokerd.service.in, --fd-store, FileDescriptorStoreMax)
is not run here.

usage: restart-test.py DMABROKERD RESTART_CLIENT [BACKEND]
(BACKEND: what the client allocates from, e.g. heap:system in the VM)"""
import array
import fcntl
import os
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
GRACE = 20 if VALGRIND or IN_VM else 4


class FdStore:
    """The service manager's notify socket and fd store."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="dmabroker-fdstore.")
        self.path = os.path.join(self.dir, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.store = {}   # name -> fd
        self.ready = False
        self.config = os.path.join(self.dir, "dmabroker.conf")
        with open(self.config, "w") as f:
            f.write("[daemon]\nrestore-grace = %d\n" % GRACE)

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
        return sorted(n for n in self.store if n.startswith("dmabroker.b."))

    def close(self):
        for fd in self.store.values():
            os.close(fd)
        self.sock.close()
        self.log.close()
        for name in ("notify", "daemon.log", "dmabroker.conf"):
            os.unlink(os.path.join(self.dir, name))
        os.rmdir(self.dir)


def buffers_property(bus):
    out = subprocess.run(["busctl", "--user", "get-property", "org.dmabroker.Broker1", "/org/dmabroker/Broker1",
                          "org.dmabroker.Broker1", "Buffers"], env=bus.env(), capture_output=True, text=True)
    return int(out.stdout.split()[1]) if out.returncode == 0 else -1


STATE = {}


def test_store_fills():
    """every buffer the daemon holds is in the fd store, named after its id and layout"""
    bus = PrivateBus()
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
        check(any(n.startswith("dmabroker.b.%s." % i) for n in names), "buffer %s stored" % i, names)


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
    """a reclaim that shows another file under a restored id (a memfd, /dev/null, a pipe) or an unknown id gets nothing"""
    bus = STATE["bus"]
    orphan = STATE["ids"][3]
    check(buffers_property(bus) == 5, "3 reclaimed + 1 new + the orphan until the grace ends", buffers_property(bus))
    out = subprocess.run([CLIENT, "forge", orphan], env=bus.env(), capture_output=True, text=True, timeout=30)
    check(out.returncode == 0, "every forged Reclaim got a reply", out.stdout, out.stderr)
    check(out.stdout.split() == ["memfd", "0", "null", "0", "pipe", "0", "unknown", "0"], "nothing reclaimed",
          out.stdout)
    check(buffers_property(bus) == 5, "the orphan is still waiting", buffers_property(bus))
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


def test_clean_stop():
    """the store holds exactly the live buffers; the client ends and the daemon stops cleanly with an empty store"""
    bus, store, client, daemon = STATE["bus"], STATE["store"], STATE["client"], STATE["daemon"]
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


run([test_store_fills, test_restart_reclaim, test_forged_reclaim, test_grace, test_clean_stop])

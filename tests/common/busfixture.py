"""Test fixtures: a private dbus-daemon and dmabrokerd started with a
NOTIFY_SOCKET, so tests know when it is ready."""
import os
import signal
import socket
import subprocess
import tempfile
import time


VALGRIND = ["valgrind", "--quiet", "--leak-check=full", "--show-leak-kinds=definite,indirect",
            "--errors-for-leak-kinds=definite,indirect", "--error-exitcode=99"]


def wrapped(cmd):
    """cmd under valgrind when DMABROKER_VALGRIND=1 and it is a native
    program (not a script): meson test --setup valgrind. Used for the
    daemon; the test programs fork children that _exit() holding their
    parent's memory, which memcheck would call leaks (ASan's pass covers
    them instead)."""
    if os.environ.get("DMABROKER_VALGRIND") != "1":
        return list(cmd)
    try:
        with open(cmd[0], "rb") as f:
            native = f.read(4) == b"\x7fELF"
    except OSError:
        native = False
    return VALGRIND + list(cmd) if native else list(cmd)


ANY_USER_BUS = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:tmpdir=/tmp</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""


class PrivateBus:
    """A private session-type dbus-daemon; .address is its address. With
    any_user, processes of every uid may connect (tests that drop
    privileges to check the daemon's per-user rules)."""

    def __init__(self, any_user=False):
        cmd = ["dbus-daemon", "--session", "--nofork", "--nopidfile", "--print-address=1"]
        self.config = None
        if any_user:
            fd, self.config = tempfile.mkstemp(prefix="dmabroker-bus.", suffix=".conf")
            with os.fdopen(fd, "w") as f:
                f.write(ANY_USER_BUS)
            cmd[1] = "--config-file=" + self.config
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        self.address = self.proc.stdout.readline().strip()
        if not self.address:
            raise RuntimeError("dbus-daemon did not start")

    def env(self, **extra):
        e = dict(os.environ, DBUS_SESSION_BUS_ADDRESS=self.address)
        e.update(extra)
        return e

    def close(self):
        self.proc.terminate()
        self.proc.wait(5)
        if self.config:
            os.unlink(self.config)


class Daemon:
    """dmabrokerd on a bus, waited for until it sends READY=1."""

    def __init__(self, exe, bus, args=("--session",), timeout=None):
        # Slow wrappers (valgrind under TCG) may set a longer start-up time.
        timeout = timeout or float(os.environ.get("DMABROKER_TEST_READY_TIMEOUT",
                                                  60 if os.environ.get("DMABROKER_VALGRIND") == "1" else 10))
        self.dir = tempfile.mkdtemp(prefix="dmabroker-test.")
        self.notify_path = os.path.join(self.dir, "notify")
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(self.notify_path)
        self.stderr_path = os.path.join(self.dir, "stderr")
        self.stderr = open(self.stderr_path, "w+")
        self.proc = subprocess.Popen(wrapped([exe, *args]), env=bus.env(NOTIFY_SOCKET=self.notify_path),
                                     stdout=subprocess.DEVNULL, stderr=self.stderr)
        self.notify.settimeout(0.1)
        deadline = time.monotonic() + timeout
        self.ready = False
        while time.monotonic() < deadline and not self.ready:
            try:
                msg = self.notify.recv(4096).decode()
                self.ready = "READY=1" in msg.split("\n")
            except socket.timeout:
                if self.proc.poll() is not None:
                    break

    def log(self):
        self.stderr.flush()
        with open(self.stderr_path) as f:
            return f.read()

    def stop(self, sig=signal.SIGTERM, timeout=60):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None

    def close(self):
        self.stop(signal.SIGKILL)
        self.notify.close()
        self.stderr.close()
        for n in os.listdir(self.dir):
            os.unlink(os.path.join(self.dir, n))
        os.rmdir(self.dir)

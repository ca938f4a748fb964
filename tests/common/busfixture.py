"""Test fixtures: a private dbus-daemon and dmabrokerd started with a
NOTIFY_SOCKET, so tests know when it is ready, and stopped cleanly with its
exit status checked (valgrind's and the sanitizers' verdicts come at a
clean exit)."""
import os
import re
import signal
import socket
import subprocess
import tempfile
import time


# The same options as tests/common/maybe-valgrind.sh (the unit tests').
VALGRIND = ["valgrind", "--quiet", "--leak-check=full", "--show-leak-kinds=definite,indirect",
            "--errors-for-leak-kinds=definite,indirect", "--error-exitcode=99"]
# valgrind's status when it found an error or a leak (--error-exitcode)
VALGRIND_ERROR = 99


def valgrind_on():
    """meson test --setup valgrind"""
    return os.environ.get("DMABROKER_VALGRIND") == "1"


def env_seconds(name, default):
    return float(os.environ.get(name, default))


# Limits that only catch a hang: a loaded 2-core machine running TCG VMs,
# ASan in the test bed, valgrind on the host, all take seconds per step.
# Start-up to READY=1:
READY_TIMEOUT = env_seconds("DMABROKER_TEST_READY_TIMEOUT", 180 if valgrind_on() else 60)
# SIGTERM to exit, the leak check at exit included:
STOP_TIMEOUT = env_seconds("DMABROKER_TEST_STOP_TIMEOUT", 180 if valgrind_on() else 120)


def wrapped(cmd):
    """cmd under valgrind when DMABROKER_VALGRIND=1 and it is a native
    program (not a script): meson test --setup valgrind. Used for the
    daemon; the test programs fork children that _exit() holding their
    parent's memory, which memcheck would call leaks (ASan's pass covers
    them instead)."""
    if not valgrind_on():
        return list(cmd)
    try:
        with open(cmd[0], "rb") as f:
            native = f.read(4) == b"\x7fELF"
    except OSError:
        native = False
    return VALGRIND + list(cmd) if native else list(cmd)


def sanitized(exe):
    """whether exe was built with AddressSanitizer (the ASan build of ./run test)"""
    try:
        with open(exe, "rb") as f:
            return b"__asan_init" in f.read()
    except OSError:
        return False


# What valgrind, ASan, LeakSanitizer and UBSan write when they find
# something, whatever the exit status (UBSan goes on without halt_on_error).
REPORT = re.compile(r"ERROR: (Address|Leak|Memory|Thread)Sanitizer|runtime error: |"
                    r"SUMMARY: \w+Sanitizer|==\d+== (Invalid|Conditional jump|Syscall param|Mismatched|"
                    r"Source and destination overlap|"
                    r"\d[\d,]* bytes in \d[\d,]* blocks are (definitely|indirectly) lost)")


def exit_problem(code, log, expected=0):
    """None when a daemon's exit (status code, stderr log) is clean, else
    what was wrong: a status other than expected (a signal, valgrind's 99,
    a sanitizer's abort) or a valgrind or sanitizer report in its log.
    expected may be a signal, as Popen says it: -signal.SIGKILL."""
    m = REPORT.search(log or "")
    if code is None:
        return "did not exit (SIGKILLed)"
    if code == VALGRIND_ERROR and valgrind_on():
        return "valgrind found errors or leaks (status %d)" % code
    if code < 0 and code != expected:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = "signal %d" % -code
        return "killed by %s%s" % (name, " (a sanitizer's abort: %r)" % m.group(0) if m else "")
    if code != expected:
        return "exit status %d, not %d" % (code, expected)
    if m:
        return "a valgrind or sanitizer report: %r" % m.group(0)
    return None


def stop_process(proc, sig=signal.SIGTERM, timeout=None):
    """Sends sig (unless proc already ended) and waits up to timeout for the
    exit; returns its status, or None when it did not exit in time: then it
    is SIGKILLed, the last resort, and the caller must fail."""
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        return proc.wait(STOP_TIMEOUT if timeout is None else timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return None


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
        stop_process(self.proc, signal.SIGTERM, 60)
        if self.config:
            os.unlink(self.config)


class Daemon:
    """dmabrokerd on a bus, waited for until it sends READY=1 (.ready).
    close() stops it with SIGTERM if it still runs and fails (AssertionError)
    unless it exited cleanly: status 0 (or expect_status) within
    STOP_TIMEOUT, no valgrind or sanitizer report."""

    def __init__(self, exe, bus, args=("--session",), timeout=None, env=None, journal_stream=False):
        """env: more environment variables; journal_stream: JOURNAL_STREAM
        names its stderr's device and inode, as when systemd connects
        stderr to the journal"""
        timeout = timeout or READY_TIMEOUT
        self.dir = tempfile.mkdtemp(prefix="dmabroker-test.")
        self.notify_path = os.path.join(self.dir, "notify")
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(self.notify_path)
        self.stderr_path = os.path.join(self.dir, "stderr")
        self.stderr = open(self.stderr_path, "w+")
        self.closed = False
        self.killed = False
        self.notes = []  # the fixture's own lines, after the daemon's in log()
        env = dict(env or {}, NOTIFY_SOCKET=self.notify_path)
        if journal_stream:
            st = os.fstat(self.stderr.fileno())
            env["JOURNAL_STREAM"] = "%d:%d" % (st.st_dev, st.st_ino)
        self.proc = subprocess.Popen(wrapped([exe, *args]), env=bus.env(**env),
                                     stdout=subprocess.DEVNULL, stderr=self.stderr)
        self.notify.settimeout(0.1)
        t0 = time.monotonic()
        deadline = t0 + timeout
        self.ready = False
        while time.monotonic() < deadline and not self.ready:
            try:
                msg = self.notify.recv(4096).decode()
                self.ready = "READY=1" in msg.split("\n")
            except socket.timeout:
                if self.proc.poll() is not None:
                    break
        self.ready_seconds = time.monotonic() - t0
        if not self.ready:
            self.notes.append("busfixture: no READY=1 after %.1f s (limit %.0f s), status %r\n"
                              % (self.ready_seconds, timeout, self.proc.poll()))

    def log(self):
        with open(self.stderr_path) as f:
            return f.read() + "".join(self.notes)

    def stop(self, sig=signal.SIGTERM, timeout=None):
        """Sends sig (if it still runs) and returns its exit status; None
        when it did not exit within timeout (default STOP_TIMEOUT): then it
        was SIGKILLed and close() fails."""
        code = stop_process(self.proc, sig, timeout)
        if code is None:
            self.killed = True
            self.notes.append("busfixture: no exit %.0f s after %s: SIGKILLed\n"
                              % (STOP_TIMEOUT if timeout is None else timeout, signal.Signals(sig).name))
        return code

    def problem(self, expect_status=0):
        """None when it exited cleanly, else what was wrong (see exit_problem)"""
        if self.killed:
            return "did not stop: SIGKILLed"
        return exit_problem(self.proc.returncode, self.log(), expect_status)

    def close(self, expect_status=0):
        """Stops it (SIGTERM) if it still runs, removes its files, and fails
        unless it exited cleanly. Safe to call twice (the second does nothing)."""
        if self.closed:
            return
        self.closed = True
        if self.proc.poll() is None:
            self.stop(signal.SIGTERM)
        problem, log = self.problem(expect_status), self.log()
        self.notify.close()
        self.stderr.close()
        for n in os.listdir(self.dir):
            os.unlink(os.path.join(self.dir, n))
        os.rmdir(self.dir)
        if problem:
            raise AssertionError("dmabrokerd (pid %d) did not stop cleanly: %s\n%s" % (self.proc.pid, problem, log))

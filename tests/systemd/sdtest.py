"""What the systemd tests share. They run inside the test bed booted with
systemd as PID 1 (tests/vm/vm-run --systemd --install BUILD): the project
is installed as `meson install` puts it, dmabrokerd.service is the shipped
unit, the system bus is Debian's dbus-daemon started by dbus.socket.

usage of every test: TEST.py BUILDDIR PREFIX SYSCONFDIR
(the build's prefix and sysconfdir, where the install put the daemon and its
config)"""
import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from taptest import run, check, Skip  # noqa: E402,F401

BUILD, PREFIX, SYSCONFDIR = sys.argv[1:4]
UNIT = "dmabrokerd.service"
CONFIG = os.path.join(SYSCONFDIR, "dmabroker", "dmabroker.conf")
DMABROKERCTL = os.path.join(PREFIX, "bin", "dmabrokerctl")
RESTART_CLIENT = os.path.join(BUILD, "tests", "integration", "restart-client")
SYSTEM_BUS = "unix:path=/run/dbus/system_bus_socket"
# Two unprivileged users: nobody, and one made here (dbus-daemon refuses a
# uid without an account: 'hold: connect' failed for one).
NOBODY = 65534
if subprocess.run(["id", "dmabroker-peer"], capture_output=True).returncode != 0:
    subprocess.run(["useradd", "--system", "--no-create-home", "dmabroker-peer"], check=True)
OTHER = int(subprocess.run(["id", "-u", "dmabroker-peer"], capture_output=True, text=True, check=True).stdout)
# Only a hang takes this long (TCG, a loaded 2-core machine).
HANG = 120

if os.environ.get("DMABROKER_VM") != "1" or os.getpid() == 1 or not os.path.isdir("/run/systemd/system"):
    print("Bail out! not in the test bed booted with systemd (tests/vm/vm-run --systemd)")
    sys.exit(1)

# The test bed does not coldplug every device (vm-run --systemd): udev gives the nodes of the subsystems the daemon
# uses their owners and modes (the installed rule among its rules) before the daemon opens any.
subprocess.run(["udevadm", "trigger", "--action=add", "--subsystem-match=dma_heap", "--subsystem-match=misc",
                "--subsystem-match=drm", "--subsystem-match=video4linux"], check=True)
subprocess.run(["udevadm", "settle", "--timeout=%d" % HANG], check=True)


def diag(text):
    """text as TAP comments, every line of it"""
    print("\n".join("# " + line for line in str(text).splitlines() or [""]))


def sh(*cmd, user=None, check_ok=False, env=None, timeout=HANG):
    """runs cmd (as uid user, with that uid as its group and no other); returns the CompletedProcess"""
    kw = {}
    if user is not None:
        kw = {"user": user, "group": user, "extra_groups": []}
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env, timeout=timeout, **kw)
    if check_ok:
        check(r.returncode == 0, "%s failed (%d)" % (" ".join(map(str, cmd)), r.returncode), r.stdout, r.stderr)
    return r


def client_env():
    """the test clients connect to the "session" bus: here that is the system bus"""
    return dict(os.environ, DBUS_SESSION_BUS_ADDRESS=SYSTEM_BUS)


def systemctl(*args):
    return sh("systemctl", *args)


def show(prop, unit=UNIT):
    return sh("systemctl", "show", "-p", prop, "--value", unit, check_ok=True).stdout.strip()


def main_pid():
    return int(show("MainPID"))


def wait_for(cond, what, timeout=HANG):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.1)
    check(cond(), "timed out waiting for: " + what)


def wait_state(want, timeout=HANG):
    """waits until the unit's ActiveState is want; returns the time it took"""
    t0 = time.monotonic()
    wait_for(lambda: show("ActiveState") == want, "%s %s (now %s/%s)" % (UNIT, want, show("ActiveState"),
                                                                         show("SubState")), timeout)
    return time.monotonic() - t0


def start():
    r = systemctl("start", UNIT)
    check(r.returncode == 0, "systemctl start failed", r.stderr, journal_text())
    check(show("ActiveState") == "active", "active after systemctl start", show("ActiveState"))


def journal(since=None):
    """the unit's journal entries (dicts) of this boot, received after since (a mark()); journald's own lines about
    the unit left out"""
    sh("journalctl", "--sync")
    r = sh("journalctl", "-b", "-u", UNIT, "-o", "json", "--no-pager", check_ok=True)
    entries = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
    return [e for e in entries if since is None or int(e["__MONOTONIC_TIMESTAMP"]) > since]


def daemon_lines(entries):
    """(priority, message) of what dmabrokerd wrote (not systemd's lines about it)"""
    return [(int(e.get("PRIORITY", -1)), e.get("MESSAGE", "")) for e in entries
            if e.get("SYSLOG_IDENTIFIER") == "dmabrokerd"]


def mark():
    """now, as journald stamps what it receives (CLOCK_MONOTONIC, µs): journal(mark()) is what came after.
    Not a cursor: systemd 252's `journalctl -u UNIT --after-cursor C` skips the first entry of the unit after C
    when C is not the unit's (a wedged daemon's last line went missing that way)"""
    sh("journalctl", "--sync")
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


def journal_text():
    return sh("journalctl", "-u", UNIT, "--no-pager", "-n", "40").stdout


def write_config(text):
    with open(CONFIG, "w") as f:
        f.write(text)


class Client:
    """a restart-client kept running, driven by lines"""

    def __init__(self, *args, user=None):
        kw = {"user": user, "group": user, "extra_groups": []} if user is not None else {}
        self.proc = subprocess.Popen([RESTART_CLIENT] + [str(a) for a in args], env=client_env(),
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, **kw)

    def line(self):
        out = self.proc.stdout.readline().strip()
        check(out, "the client said nothing", self.proc.poll(), self.stderr())
        return out

    def tell(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def stderr(self):
        if self.proc.poll() is None:
            return ""
        return self.proc.stderr.read()

    def end(self):
        if self.proc.poll() is None:
            try:
                self.tell("end")
            except BrokenPipeError:
                pass
        try:
            return self.proc.wait(HANG)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


def kill(pid, sig=signal.SIGKILL):
    os.kill(pid, sig)

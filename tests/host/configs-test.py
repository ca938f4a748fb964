#!/usr/bin/env python3
"""configs/: the system-bus policy enforced by a real system-type dbus-daemon
(root owns the name, an unprivileged user may call but not own it), and
session-bus activation through the activation file. Every daemon it starts,
the activated one included, runs under the suite's wrapper (valgrind with
--setup valgrind) and its exit is checked: the status the step expects, no
valgrind or sanitizer report."""
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from taptest import run, check  # noqa: E402
from busfixture import wrapped, exit_problem, stop_process, READY_TIMEOUT, STOP_TIMEOUT  # noqa: E402

DAEMON, CTL, CONFIGS, SESSION_SERVICE = sys.argv[1:5]
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]

SYSTEM_BUS = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=%(dir)s/system_bus_socket</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
  </policy>
  <include>%(policy)s</include>
</busconfig>
"""

SESSION_BUS = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=%(dir)s/session_bus_socket</listen>
  <servicedir>%(dir)s/services</servicedir>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""


def start_bus(config_text, d):
    path = os.path.join(d, "bus.conf")
    with open(path, "w") as f:
        f.write(config_text)
    p = subprocess.Popen(["dbus-daemon", "--config-file=" + path, "--nofork", "--nopidfile", "--print-address=1"],
                         stdout=subprocess.PIPE, text=True)
    addr = p.stdout.readline().strip()
    check(addr, "dbus-daemon did not start")
    return p, addr


def log_of(path):
    with open(path) as f:
        return f.read()


def test_system_policy():
    """system bus: root owns org.dmabroker.Broker1; nobody may call it but not own it"""
    d = tempfile.mkdtemp(prefix="dmabroker-policy.")
    os.chmod(d, 0o755)
    bus, addr = start_bus(SYSTEM_BUS % {"dir": d, "policy": os.path.join(CONFIGS, "org.dmabroker.Broker1.conf")}, d)
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(os.path.join(d, "notify"))
    notify.settimeout(READY_TIMEOUT)
    env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=addr)
    log_path = os.path.join(d, "daemon.log")
    log = open(log_path, "w")
    daemon = subprocess.Popen(wrapped([DAEMON, "--system"]), env=dict(env, NOTIFY_SOCKET=os.path.join(d, "notify")),
                              stderr=log)
    try:
        try:
            ready = "READY=1" in notify.recv(4096).decode()
        except socket.timeout:
            ready = False
        check(ready, "daemon not ready", log_of(log_path))
        r = subprocess.run(NOBODY + [CTL, "--system", "status"], env=env, capture_output=True, text=True, timeout=60)
        check(r.returncode == 0 and "clients:" in r.stdout, "nobody cannot call the broker", r.stdout, r.stderr)
        r = subprocess.run(NOBODY + [CTL, "--system", "alloc", "64x64", "XRGB8888"], env=env, capture_output=True,
                           text=True, timeout=60)
        check(r.returncode == 0 and "buffer" in r.stdout, "nobody cannot allocate", r.stdout, r.stderr)
        # a second daemon, as nobody: refused the name, and it exits cleanly too
        r = subprocess.run(NOBODY + wrapped([DAEMON, "--system"]), env=env, capture_output=True, text=True,
                           timeout=READY_TIMEOUT)
        check("cannot own the name" in r.stderr, "nobody owned the name", r.returncode, r.stderr)
        second = exit_problem(r.returncode, r.stderr, 1)
        check(not second, "the refused daemon: " + str(second), r.stderr)
        r = subprocess.run(NOBODY + ["dbus-send", "--system", "--print-reply", "--dest=org.dmabroker.Broker1",
                                     "/org/dmabroker/Broker1", "org.freedesktop.DBus.Properties.Set",
                                     "string:org.dmabroker.Broker1", "string:Version", "variant:string:x"],
                           env=env, capture_output=True, text=True, timeout=60)
        check(r.returncode != 0 and "AccessDenied" in r.stderr, "Properties.Set was not denied", r.stderr)
    finally:
        code = stop_process(daemon, signal.SIGTERM)
        log.close()
        text = log_of(log_path)
        problem = "not stopped %.0f s after SIGTERM" % STOP_TIMEOUT if code is None else exit_problem(code, text)
        notify.close()
        bus.terminate()
        bus.wait(5)
        shutil.rmtree(d)
    check(not problem, "the daemon did not stop cleanly: %s" % problem, text)


# The activated daemon, under the suite's wrapper: its stderr goes to
# daemon.log and its exit status to ./status when it ends.
ACTIVATED = """#!/bin/sh
%(cmd)s "$@" 2>>%(dir)s/daemon.log
echo $? >%(dir)s/status.tmp && mv %(dir)s/status.tmp %(dir)s/status
"""


def test_session_activation():
    """session bus: the first call starts dmabrokerd through the activation file"""
    d = tempfile.mkdtemp(prefix="dmabroker-activation.")
    os.makedirs(os.path.join(d, "services"))
    with open(SESSION_SERVICE) as f:
        text = f.read()
    exec_line = [line for line in text.splitlines() if line.startswith("Exec=")]
    check(exec_line and exec_line[0].endswith("dmabrokerd --session"), "Exec line", text)
    # The installed file points at the installed daemon; test with the built one, through a script that records
    # how it ended (the bus, not this test, is its parent).
    script = os.path.join(d, "activate-dmabrokerd")
    with open(script, "w") as f:
        f.write(ACTIVATED % {"cmd": " ".join(shlex.quote(a) for a in wrapped([DAEMON])), "dir": shlex.quote(d)})
    os.chmod(script, 0o755)
    with open(os.path.join(d, "services", "org.dmabroker.Broker1.service"), "w") as f:
        f.write(text.replace(exec_line[0], "Exec=%s --session" % script))
    bus, addr = start_bus(SESSION_BUS % {"dir": d}, d)
    env = dict(os.environ, DBUS_SESSION_BUS_ADDRESS=addr)
    status_path, log_path = os.path.join(d, "status"), os.path.join(d, "daemon.log")
    pid = None
    try:
        t0 = time.monotonic()
        r = subprocess.run([CTL, "--session", "status"], env=env, capture_output=True, text=True,
                           timeout=READY_TIMEOUT)
        check(r.returncode == 0 and "dmabrokerd" in r.stdout, "activation failed", r.stdout, r.stderr)
        out = subprocess.run(["dbus-send", "--session", "--print-reply=literal", "--dest=org.freedesktop.DBus",
                              "/org/freedesktop/DBus", "org.freedesktop.DBus.GetConnectionUnixProcessID",
                              "string:org.dmabroker.Broker1"], env=env, capture_output=True, text=True).stdout
        pid = int(out.split()[-1])
        print("# activated in %.2f s as pid %d" % (time.monotonic() - t0, pid))
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            argv = f.read().decode().split("\0")
        check(DAEMON in argv and "--session" in argv, "not our daemon", argv)
    finally:
        # stop it and see how it ended
        if pid is not None:
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        while pid is not None and not os.path.exists(status_path) and time.monotonic() < deadline:
            time.sleep(0.1)
        code = int(log_of(status_path)) if os.path.exists(status_path) else None
        log = log_of(log_path) if os.path.exists(log_path) else ""
        if pid is not None and code is None:
            os.kill(pid, signal.SIGKILL)
        bus.terminate()
        bus.wait(5)
        shutil.rmtree(d)
    # the shell reports a death by signal N as 128 + N
    problem = exit_problem(-(code - 128) if code is not None and code > 128 else code, log)
    check(not problem, "the activated daemon did not stop cleanly: %s" % problem, log)


run([test_system_policy, test_session_activation])

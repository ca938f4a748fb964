#!/usr/bin/env python3
"""configs/: the system-bus policy enforced by a real system-type dbus-daemon
(root owns the name, an unprivileged user may call but not own it), and
session-bus activation through the activation file."""
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from taptest import run, check  # noqa: E402

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


def test_system_policy():
    """system bus: root owns org.dmabroker.Broker1; nobody may call it but not own it"""
    d = tempfile.mkdtemp(prefix="dmabroker-policy.")
    os.chmod(d, 0o755)
    bus, addr = start_bus(SYSTEM_BUS % {"dir": d, "policy": os.path.join(CONFIGS, "org.dmabroker.Broker1.conf")}, d)
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(os.path.join(d, "notify"))
    notify.settimeout(10)
    env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=addr)
    daemon = subprocess.Popen([DAEMON, "--system"], env=dict(env, NOTIFY_SOCKET=os.path.join(d, "notify")),
                              stderr=subprocess.PIPE, text=True)
    try:
        check("READY=1" in notify.recv(4096).decode(), "daemon not ready")
        r = subprocess.run(NOBODY + [CTL, "--system", "status"], env=env, capture_output=True, text=True, timeout=10)
        check(r.returncode == 0 and "clients:" in r.stdout, "nobody cannot call the broker", r.stdout, r.stderr)
        r = subprocess.run(NOBODY + [CTL, "--system", "alloc", "64x64", "XRGB8888"], env=env, capture_output=True,
                           text=True, timeout=10)
        check(r.returncode == 0 and "buffer" in r.stdout, "nobody cannot allocate", r.stdout, r.stderr)
        r = subprocess.run(NOBODY + [DAEMON, "--system"], env=env, capture_output=True, text=True, timeout=10)
        check(r.returncode == 1 and "cannot own the name" in r.stderr, "nobody owned the name", r.stderr)
        r = subprocess.run(NOBODY + ["dbus-send", "--system", "--print-reply", "--dest=org.dmabroker.Broker1",
                                     "/org/dmabroker/Broker1", "org.freedesktop.DBus.Properties.Set",
                                     "string:org.dmabroker.Broker1", "string:Version", "variant:string:x"],
                           env=env, capture_output=True, text=True, timeout=10)
        check(r.returncode != 0 and "AccessDenied" in r.stderr, "Properties.Set was not denied", r.stderr)
    finally:
        daemon.send_signal(signal.SIGTERM)
        code = daemon.wait(10)
        bus.terminate()
        bus.wait(5)
        shutil.rmtree(d)
    check(code == 0, "daemon exit status %r" % code)


def test_session_activation():
    """session bus: the first call starts dmabrokerd through the activation file"""
    d = tempfile.mkdtemp(prefix="dmabroker-activation.")
    os.makedirs(os.path.join(d, "services"))
    with open(SESSION_SERVICE) as f:
        text = f.read()
    exec_line = [line for line in text.splitlines() if line.startswith("Exec=")]
    check(exec_line and exec_line[0].endswith("dmabrokerd --session"), "Exec line", text)
    # The installed file points at the installed daemon; test with the built one.
    with open(os.path.join(d, "services", "org.dmabroker.Broker1.service"), "w") as f:
        f.write(text.replace(exec_line[0], "Exec=%s --session" % DAEMON))
    bus, addr = start_bus(SESSION_BUS % {"dir": d}, d)
    env = dict(os.environ, DBUS_SESSION_BUS_ADDRESS=addr)
    try:
        t0 = time.monotonic()
        r = subprocess.run([CTL, "--session", "status"], env=env, capture_output=True, text=True, timeout=20)
        check(r.returncode == 0 and "dmabrokerd" in r.stdout, "activation failed", r.stdout, r.stderr)
        pid = subprocess.run(["dbus-send", "--session", "--print-reply=literal", "--dest=org.freedesktop.DBus",
                              "/org/freedesktop/DBus", "org.freedesktop.DBus.GetConnectionUnixProcessID",
                              "string:org.dmabroker.Broker1"], env=env, capture_output=True, text=True).stdout
        pid = int(pid.split()[-1])
        check(os.readlink("/proc/%d/exe" % pid) == os.path.realpath(DAEMON), "not our daemon")
        print("# activated in %.2f s as pid %d" % (time.monotonic() - t0, pid))
        os.kill(pid, signal.SIGTERM)
    finally:
        bus.terminate()
        bus.wait(5)
        shutil.rmtree(d)


run([test_system_policy, test_session_activation])

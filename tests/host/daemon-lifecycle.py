#!/usr/bin/env python3
"""dmabrokerd start-up, readiness, name ownership and clean shutdown, on a
private dbus-daemon. Every daemon it starts runs under the suite's wrapper
(valgrind with --setup valgrind) and its exit is checked: the status the
step expects and no valgrind or sanitizer report."""
import os
import signal
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from taptest import run, check  # noqa: E402
from busfixture import PrivateBus, Daemon, wrapped, exit_problem, READY_TIMEOUT  # noqa: E402

EXE = sys.argv[1]
bus = PrivateBus()


def daemon(*args, status, env=None):
    """runs dmabrokerd with args to its end; fails unless it exits with status, cleanly"""
    r = subprocess.run(wrapped([EXE, *args]), env=env, capture_output=True, text=True, timeout=READY_TIMEOUT)
    problem = exit_problem(r.returncode, r.stderr, status)
    check(not problem, "dmabrokerd %s: %s" % (" ".join(args), problem), r.stdout, r.stderr)
    return r


def get_version():
    return subprocess.run(
        ["dbus-send", "--print-reply=literal", "--dest=org.dmabroker.Broker1",
         "/org/dmabroker/Broker1", "org.freedesktop.DBus.Properties.Get",
         "string:org.dmabroker.Broker1", "string:Version"],
        env=bus.env(), capture_output=True, text=True, timeout=60)


def test_ready_and_version():
    """the daemon reports READY=1 and serves its Version property"""
    d = Daemon(EXE, bus)
    try:
        check(d.ready, "no READY=1", d.log())
        r = get_version()
        check(r.returncode == 0, "Get Version failed", r.stderr)
        out = daemon("--version", status=0).stdout.split()[-1]
        check(r.stdout.split()[-1] == out, "version mismatch", r.stdout, out)
        code = d.stop(signal.SIGTERM)
        check(code == 0, "SIGTERM exit status %r" % code, d.log())
        check("stopping" in d.log(), "no stop log line", d.log())
    finally:
        d.close()


def test_sigint():
    """SIGINT stops it cleanly too, and the name is released"""
    d = Daemon(EXE, bus)
    try:
        check(d.ready, "no READY=1", d.log())
        check(d.stop(signal.SIGINT) == 0, "SIGINT exit status", d.log())
        r = get_version()
        check(r.returncode != 0 and "ServiceUnknown" in r.stderr, "name still owned", r.stdout, r.stderr)
    finally:
        d.close()


def test_second_instance():
    """a second daemon on the same bus refuses to start, saying why"""
    d = Daemon(EXE, bus)
    try:
        check(d.ready, "no READY=1", d.log())
        r = daemon("--session", env=bus.env(), status=1)
        check("another dmabrokerd runs" in r.stderr, "unclear error", r.stderr)
        check(get_version().returncode == 0, "first daemon disturbed")
    finally:
        d.close()


def test_no_bus():
    """with no bus to connect to it exits 1 and names the bus"""
    r = daemon("--session", env=dict(os.environ, DBUS_SESSION_BUS_ADDRESS="unix:path=/nonexistent/bus"), status=1)
    check("cannot connect to the session bus" in r.stderr, "bad failure", r.stderr)


def test_usage():
    """--help documents the options; bad usage exits 2 with a hint"""
    r = daemon("--help", status=0)
    check("--session" in r.stdout and "--log-level" in r.stdout, "help", r.stdout)
    for args, what in ((["--bogus"], "--help"), (["--log-level=loud"], "unknown log level"), (["extra"], "unexpected argument")):
        r = daemon(*args, status=2)
        check(what in r.stderr, "args %r" % args, r.stderr)


def test_bad_config():
    """a malformed config is refused at start with its file, line and reason; so is a missing one given by name"""
    import tempfile
    with tempfile.NamedTemporaryFile("w", suffix=".conf") as f:
        f.write("[limits]\nmax-clients = 4\nfrobnicate = yes\n")
        f.flush()
        r = daemon("--session", "--config", f.name, env=bus.env(), status=1)
        check("%s:3: unknown key 'frobnicate' in section [limits]" % f.name in r.stderr, "message", r.stderr)
        check("not starting" in r.stderr, "message", r.stderr)
    r = daemon("--session", "--config", "/nonexistent/x.conf", env=bus.env(), status=1)
    check("/nonexistent/x.conf: cannot open" in r.stderr, "missing file", r.stderr)
    check(get_version().returncode != 0, "a daemon started anyway")


try:
    run([test_bad_config, test_ready_and_version, test_sigint, test_second_instance, test_no_bus, test_usage])
finally:
    bus.close()

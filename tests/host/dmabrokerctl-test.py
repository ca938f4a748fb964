#!/usr/bin/env python3
"""dmabrokerctl against a real daemon: every command, in columns and JSON,
alloc --hold seen by 'buffers' and 'clients', and its errors."""
import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from taptest import run, check  # noqa: E402
from busfixture import PrivateBus, Daemon  # noqa: E402

DAEMON, CTL = sys.argv[1], sys.argv[2]
bus = PrivateBus()
daemon = Daemon(DAEMON, bus)


def ctl(*args, ok=True):
    r = subprocess.run([CTL, "--session", *args], env=bus.env(), capture_output=True, text=True, timeout=60)
    if ok:
        check(r.returncode == 0, "dmabrokerctl %s: status %d" % (" ".join(args), r.returncode), r.stdout, r.stderr)
    return r


def test_backends():
    """backends: columns and JSON agree; shm is there, the kernel ones say why not"""
    text = ctl("backends").stdout
    check(text.startswith("NAME") and "shm" in text, "columns", text)
    rows = json.loads(ctl("--json", "backends").stdout)
    names = {r["name"]: r for r in rows}
    check(names["shm"]["available"] is True, "shm", rows)
    for r in rows:
        check(r["available"] or r["detail"], "no reason given for %s" % r["name"])


def test_alloc_and_list():
    """alloc --hold is listed by buffers and clients until it exits, then gone"""
    p = subprocess.Popen([CTL, "--session", "--json", "alloc", "320x240", "NV12", "--hold", "--share"],
                         env=bus.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        info = json.loads(p.stdout.readline())
        check(info["format"] == "NV12" and len(info["planes"]) == 2 and len(info["token"]) == 32, "alloc", info)
        bufs = json.loads(ctl("--json", "buffers").stdout)
        mine = [b for b in bufs if b["id"] == info["id"]]
        check(mine and mine[0]["format"] == "NV12" and mine[0]["size"] == info["size"], "buffers", bufs)
        check(mine[0]["owner_pid"] == p.pid and mine[0]["backend"] == "shm", "owner", mine)
        check(mine[0]["grants"] == 0 and mine[0]["waiters"] == 0 and mine[0]["pending_fences"] == 0
              and mine[0]["fence_timeouts"] == 0, "access state", mine)
        text = ctl("buffers").stdout
        check("320x240" in text and "NV12" in text and "WAITERS" in text and "FENCES" in text, "columns", text)
        clients = json.loads(ctl("--json", "clients").stdout)
        check(any(c["pid"] == p.pid and c["buffers"] == 1 for c in clients), "clients", clients)
        usage = json.loads(ctl("--json", "usage").stdout)
        check(any(u["scope"].startswith("client") and u["resource"] == "buffers" and u["used"] == 1
                  and u["limit"] == 1024 for u in usage), "usage: the holder's client row", usage)
        check(any(u["scope"] == "uid %d" % os.getuid() and u["resource"] == "bytes" and u["used"] >= info["size"]
                  for u in usage), "usage: the uid row", usage)
        text = ctl("usage").stdout
        check(text.startswith("SCOPE") and "max" not in text and "buffers" in text, "usage columns", text)
        status = json.loads(ctl("--json", "status").stdout)
        check(status["buffers"] >= 1 and status["bytes_allocated"] >= info["size"], "status", status)
        check(status["pool_buffers"] == 0 and status["pool_bytes"] == 0, "no pool by default", status)
        check(status["fence_timeouts"] == 0, "status", status)
    finally:
        p.send_signal(signal.SIGINT)
        p.wait(10)
    # the daemon sees the holder go: a bound that only catches a hang
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if not any(b["id"] == info["id"] for b in json.loads(ctl("--json", "buffers").stdout)):
            break
        time.sleep(0.05)
    check(not any(b["id"] == info["id"] for b in json.loads(ctl("--json", "buffers").stdout)), "buffer left behind")


def test_streams_empty():
    """streams: with none, the header and an empty JSON list (the VM demo test sees a live one)"""
    text = ctl("streams").stdout
    check(text.split() [:4] == ["ID", "NAME", "MODE", "STATE"] and len(text.splitlines()) == 1, "columns", text)
    check(json.loads(ctl("--json", "streams").stdout) == [], "json")


def test_errors():
    """bad usage exits 2; a refusal exits 1 with the daemon's message and error name"""
    for args, what in ((["frob"], "unknown command"), (["alloc", "64"], "alloc needs"),
                       (["alloc", "64x", "NV12"], "bad size"), (["alloc", "64x64", "NV99"], "unknown format"),
                       (["alloc", "--usage=teleport", "64x64", "NV12"], "bad --usage"), (["status", "x"], "no arguments")):
        r = ctl(*args, ok=False)
        check(r.returncode == 2 and what in r.stderr, "args %r" % args, r.returncode, r.stderr)
    r = ctl("alloc", "64x64", "XRGB8888", "--usage=scanout", ok=False)
    check(r.returncode == 1 and "org.dmabroker.Error.NoBackend" in r.stderr, "refusal", r.stderr)
    r = subprocess.run([CTL, "--session", "status"], capture_output=True, text=True,
                       env=dict(os.environ, DBUS_SESSION_BUS_ADDRESS="unix:path=/nonexistent"))
    check(r.returncode == 1 and "cannot connect" in r.stderr, "no bus", r.stderr)
    r = subprocess.run([CTL, "--help"], capture_output=True, text=True)
    check(r.returncode == 0 and "backends" in r.stdout and "--json" in r.stdout, "help", r.stdout)


def test_option_order():
    """options after the command work as before it; an unknown one, or alloc's on another command, is bad usage

    As with systemctl: the same output either way, alloc's options among its arguments."""
    def raw(*args):
        return subprocess.run([CTL, *args], env=bus.env(), capture_output=True, text=True, timeout=60)

    # the daemon is on the session bus only: --session after the command is read, or the call fails
    for cmd in ("backends", "streams", "buffers"):
        for fmt in ([], ["--json"]):
            before, after = raw("--session", *fmt, cmd), raw(cmd, *fmt, "--session")
            check(before.returncode == 0 and after.returncode == 0 and before.stdout
                  and (before.stdout, before.stderr) == (after.stdout, after.stderr),
                  "%s %s: both orders" % (cmd, fmt), before, after)
    # (status counts clients, which may change between two calls)
    r = raw("status", "--session")
    check(r.returncode == 0 and "on the session bus" in r.stdout, "status --session", r)
    r = raw("status", "--json", "--session")
    check(r.returncode == 0 and json.loads(r.stdout)["version"], "status --json --session", r)
    r = raw("alloc", "--json", "64x32", "--session", "NV12", "--share", "--usage=cpu-read")
    info = json.loads(r.stdout) if r.returncode == 0 else {}
    check(info.get("format") == "NV12" and info.get("width") == 64 and len(info.get("token", "")) == 32,
          "alloc with options among its arguments", r.returncode, r.stdout, r.stderr)
    for args, what in ((["buffers", "--frob"], "unrecognized option '--frob'"),
                       (["--frob", "buffers"], "unrecognized option '--frob'"),
                       (["buffers", "--hold"], "--hold is an option of alloc, not of buffers"),
                       (["status", "--", "--json"], "'status' takes no arguments")):
        r = ctl(*args, ok=False)
        check(r.returncode == 2 and what in r.stderr and "Try 'dmabrokerctl --help'" in r.stderr and not r.stdout,
              "args %r" % args, r.returncode, r.stdout, r.stderr)


def test_not_running():
    """no daemon: a clear message"""
    other = PrivateBus()
    try:
        r = subprocess.run([CTL, "--session", "buffers"], env=other.env(), capture_output=True, text=True)
        check(r.returncode == 1 and "dmabrokerd is not running on the session bus" in r.stderr, "msg", r.stderr)
    finally:
        other.close()


def test_daemon_stops_cleanly():
    """the daemon stops on SIGTERM with status 0 and no valgrind or sanitizer report"""
    daemon.close()


try:
    check(daemon.ready, "daemon not ready", daemon.log())
    run([test_backends, test_alloc_and_list, test_streams_empty, test_errors, test_option_order, test_not_running,
         test_daemon_stops_cleanly])
finally:
    daemon.close()
    bus.close()

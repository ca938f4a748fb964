#!/usr/bin/env python3
"""systemd-bus: the system bus with the shipped policy and activation file.
Bus activation starts the daemon on the first call, made by an
unprivileged user; unprivileged users allocate, share by token and access;
none of them can own the broker's name.
usage: bus-test.py BUILDDIR PREFIX SYSCONFDIR"""
import json

from sdtest import (diag, UNIT, NOBODY, OTHER, DMABROKERCTL, run, check, sh, show, main_pid, Client, mark, journal,
                    daemon_lines)

STATE = {}


def test_activation():
    """the first call, by an unprivileged user, starts the daemon through bus activation (the unit, not a bare process)"""
    check(show("ActiveState") == "inactive", "not running before the call", show("ActiveState"))
    since = mark()
    r = sh(DMABROKERCTL, "--system", "--json", "status", user=NOBODY)
    check(r.returncode == 0, "dmabrokerctl status as nobody", r.stdout, r.stderr)
    status = json.loads(r.stdout)
    diag("status: " + r.stdout.strip())
    check(show("ActiveState") == "active", "the unit is active", show("ActiveState"))
    check(main_pid() > 0, "with its main process")
    entries = journal(since)
    started = [e for e in entries if e.get("JOB_TYPE") == "start" and e.get("JOB_RESULT") == "done"]
    check(started, "systemd started the unit in that time", [e.get("MESSAGE") for e in entries])
    check(any("ready on the system bus" in m for _, m in daemon_lines(entries)), "the daemon came up on the system bus")
    check(status.get("buffers", 0) == 0, "no buffers yet", status)


def test_share():
    """nobody allocates two buffers and writes them, shares one by token; another uid opens the token and reads it"""
    holder = STATE["holder"] = Client("hold", user=NOBODY)
    words = holder.line().split()
    check(words[0] == "holding" and len(words) == 4, "nobody holds two buffers", words, holder.stderr())
    peer = STATE["peer"] = Client("peer", words[3], user=OTHER)
    line = peer.line().split()
    check(line == ["peer", words[2]], "uid %d opened the shared buffer and read its contents" % OTHER, line,
          peer.stderr())
    for c in (holder, peer):
        c.tell("check")
        line = c.line()
        check(line == "intact 0", "contents intact, no reconnect", line, c.stderr())
    r = sh(DMABROKERCTL, "--system", "--json", "buffers")
    check(r.returncode == 0, "dmabrokerctl buffers as root", r.stderr)
    bufs = {b["id"]: b for b in json.loads(r.stdout)}
    print("# buffers: " + ", ".join("%d: uid %d, %d holders" % (i, b["owner_uid"], b["holders"])
                                    for i, b in sorted(bufs.items())))
    ids = [int(w) for w in words[1:3]]
    check(sorted(bufs) == sorted(ids), "the daemon has the two", bufs)
    check(all(bufs[i]["owner_uid"] == NOBODY for i in ids), "owned by nobody", bufs)
    check([bufs[i]["holders"] for i in ids] == [1, 2], "the shared one has two holders", bufs)


def test_cannot_own():
    """an unprivileged user cannot own org.dmabroker.Broker1: the bus refuses (AccessDenied), and a dmabrokerd it starts says why and exits"""
    r = sh("busctl", "--system", "call", "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
           "RequestName", "su", "org.dmabroker.Broker1", "4", user=NOBODY)
    diag("RequestName as nobody: %d %s" % (r.returncode, r.stderr.strip()))
    check(r.returncode != 0 and "Access denied" in r.stderr or "AccessDenied" in r.stderr,
          "RequestName refused", r.stdout, r.stderr)
    daemon = sh("systemctl", "show", "-p", "ExecStart", "--value", UNIT).stdout.split("path=")[1].split(" ")[0]
    r = sh(daemon, "--system", user=NOBODY)
    diag("%s --system as nobody: %d %s" % (daemon, r.returncode, r.stderr.strip()))
    check(r.returncode == 1 and "cannot own the name org.dmabroker.Broker1" in r.stderr and
          "install the bus policy" in r.stderr, "the daemon says it may not own the name", r.stderr)
    r = sh("busctl", "--system", "status", "org.dmabroker.Broker1")
    check(r.returncode == 0 and "PID=%d" % main_pid() in r.stdout, "the name is still the unit's daemon's", r.stdout)


def test_end():
    """the clients end; their buffers go"""
    for c in (STATE["peer"], STATE["holder"]):
        check(c.end() == 0, "the client ended cleanly", c.stderr())
    r = sh(DMABROKERCTL, "--system", "--json", "status", check_ok=True)
    check(json.loads(r.stdout).get("buffers") == 0, "no buffers left", r.stdout)


def cleanup():
    for c in STATE.values():
        if c.proc.poll() is None:
            c.proc.kill()


try:
    run([test_activation, test_share, test_cannot_own, test_end])
finally:
    cleanup()

#!/usr/bin/env python3
"""systemd-restart: restarts without loss under the real service manager.
Two unprivileged clients hold buffers (one of them shared by token with
the other) across `systemctl restart`, across a SIGKILL that
Restart=on-failure answers, and across a watchdog-triggered restart of a
daemon wedged on purpose: each time the buffers are intact and each
client reconnected exactly once more. Then `systemctl stop` and `start`:
systemd 252 releases the fd store when the unit stops (there is no
FileDescriptorStorePreserve= before v254), so the buffers are gone for the
new daemon, and a client that still uses one is told so.
usage: restart-test.py BUILDDIR PREFIX SYSCONFDIR"""
import json
import os
import signal
import time

from sdtest import (diag, UNIT, NOBODY, OTHER, DMABROKERCTL, HANG, Skip, run, check, sh, systemctl, show, main_pid,
                    wait_for, wait_state, start, Client, mark, journal, daemon_lines, journal_text)

STATE = {"restarts": 0}


def buffers():
    r = sh(DMABROKERCTL, "--system", "--json", "status", check_ok=True)
    return json.loads(r.stdout)["buffers"]


def store_size():
    return int(show("NFileDescriptorStore"))


def test_hold():
    """two unprivileged clients hold two buffers, one shared by token; both are in the fd store"""
    start()
    holder = STATE["holder"] = Client("hold", user=NOBODY)
    words = holder.line().split()
    check(words[0] == "holding", "nobody holds two buffers", words, holder.stderr())
    peer = STATE["peer"] = Client("peer", words[3], user=OTHER)
    check(peer.line().split() == ["peer", words[2]], "the other uid opened the shared one", peer.stderr())
    wait_for(lambda: store_size() >= 2, "the two buffers in the fd store", 30)
    print("# NFileDescriptorStore=%d, FileDescriptorStoreMax=%s" % (store_size(), show("FileDescriptorStoreMax")))
    check(store_size() == 2, "two fds in the store", store_size())


def restarted(how, old_pid, since):
    """after a restart: a new daemon, active, that restored both buffers; both clients find theirs intact and
    reconnected once more"""
    wait_for(lambda: main_pid() not in (0, old_pid) and show("ActiveState") == "active", "a new daemon, active")
    STATE["restarts"] += 1
    lines = daemon_lines(journal(since))
    check(any("restored 2 buffers" in m for _, m in lines), "the new daemon restored both from the store",
          [m for _, m in lines])
    for c in (STATE["holder"], STATE["peer"]):
        c.tell("check")
        line = c.line()
        check(line == "intact %d" % STATE["restarts"], "contents intact, reconnected once (%s)" % how, line,
              c.stderr(), journal_text())
    check(buffers() == 2, "the daemon has both again", buffers())
    check(store_size() == 2, "still two fds in the store", store_size())


def test_systemctl_restart():
    """systemctl restart: the store is handed to the new daemon; buffers intact, clients reconnected once"""
    old, since = main_pid(), mark()
    r = systemctl("restart", UNIT)
    check(r.returncode == 0, "systemctl restart", r.stderr)
    restarted("systemctl restart", old, since)
    check(show("NRestarts") == "0", "not counted as an automatic restart", show("NRestarts"))


def test_kill9():
    """kill -9: Restart=on-failure starts the daemon again with the store; buffers intact, clients reconnected once"""
    old, since = main_pid(), mark()
    os.kill(old, signal.SIGKILL)
    restarted("SIGKILL", old, since)
    check(show("NRestarts") == "1", "one automatic restart", show("NRestarts"))


def test_watchdog():
    """a daemon wedged on purpose (SIGUSR2, a test build) sends no more WATCHDOG=1; at the unit's WatchdogSec= systemd aborts it and Restart=on-failure brings it back with the store"""
    daemon = show("ExecStart").split("path=")[1].split(" ")[0]
    if "SIGUSR2 wedges" not in sh(daemon, "--help").stdout:
        raise Skip("the daemon is built without its test hooks (meson -Dtest-hooks=true, as ./run builds it)")
    r = sh("busctl", "get-property", "org.freedesktop.systemd1", "/org/freedesktop/systemd1/unit/dmabrokerd_2eservice",
           "org.freedesktop.systemd1.Service", "WatchdogUSec", check_ok=True)
    usec = int(r.stdout.split()[1])
    check(usec > 0, "the unit sets WatchdogSec=", show("WatchdogUSec"))
    old, since = main_pid(), mark()
    t0 = time.monotonic()
    os.kill(old, signal.SIGUSR2)
    wait_for(lambda: main_pid() != old, "the watchdog's restart", usec / 1e6 + HANG)
    print("# restarted %.1f s after the wedge (WatchdogSec=%g s)" % (time.monotonic() - t0, usec / 1e6))
    restarted("watchdog", old, since)
    entries = journal(since)
    messages = [e.get("MESSAGE", "") for e in entries]
    check(any("wedging the event loop" in m for _, m in daemon_lines(entries)), "the daemon said it wedged", messages)
    check(any("Watchdog timeout" in m for m in messages), "systemd says it was the watchdog", messages)
    check(show("NRestarts") == "2", "the second automatic restart", show("NRestarts"))


def test_stop_start():
    """systemctl stop, then start: systemd 252 empties the fd store when the unit stops; the new daemon has no buffers, and a client using one is told it is gone"""
    since = mark()
    r = systemctl("stop", UNIT)
    check(r.returncode == 0, "stopped", r.stderr)
    check(show("ActiveState") == "inactive", "inactive", show("ActiveState"))
    n = store_size()
    print("# NFileDescriptorStore after stop: %d" % n)
    check(n == 0, "systemd released the store on stop", n)
    start()
    lines = daemon_lines(journal(since))
    check(not any("restored" in m for _, m in lines), "nothing restored", [m for _, m in lines])
    check(buffers() == 0, "the new daemon has no buffers", buffers())
    holder = STATE["holder"]
    holder.tell("check")
    code = holder.proc.wait(60)
    err = holder.stderr()
    diag("the holder: status %d, %s" % (code, err.strip()))
    check(code == 1 and "cpu_begin on buffer" in err, "the holder's next use of a buffer fails, by name", err)


def cleanup():
    for key in ("holder", "peer"):
        if key in STATE and STATE[key].proc.poll() is None:
            STATE[key].proc.kill()


try:
    run([test_hold, test_systemctl_restart, test_kill9, test_watchdog, test_stop_start])
finally:
    cleanup()

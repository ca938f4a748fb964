#!/usr/bin/env python3
"""systemd-notify: the shipped unit is Type=notify. systemd calls it active
only once the daemon sent READY=1 (held back here by stopping the system
bus, which the daemon needs before it is ready), and a daemon whose
configuration is broken is reported failed, with the reason in its journal.
usage: notify-test.py BUILDDIR PREFIX SYSCONFDIR"""
import os
import signal
import time

from sdtest import (UNIT, PREFIX, CONFIG, run, check, sh, systemctl, show, main_pid, wait_for, wait_state, start,
                    journal, daemon_lines, mark, journal_text, write_config)

SHIPPED = open(CONFIG).read()
# A bad key in a good file: the daemon names the file and the line.
BROKEN = SHIPPED + "\n[daemon]\nno-such-key = 1\n"


def test_installed():
    """the unit systemd loaded is the installed one, Type=notify, not running before anything asks for it"""
    frag = show("FragmentPath")
    check(frag == os.path.join(PREFIX, "lib", "systemd", "system", UNIT), "the unit comes from the install", frag)
    check(show("LoadState") == "loaded", "loaded", show("LoadState"), show("LoadError"))
    check(show("Type") == "notify", "Type=notify", show("Type"))
    check(show("ActiveState") == "inactive", "nothing started it", show("ActiveState"))
    print("# unit: %s; ExecStart: %s" % (frag, show("ExecStart")))


def test_active_after_ready():
    """while the daemon runs but has not sent READY=1 (the bus it waits for is stopped) the unit is activating; it is active once READY=1 came, with the daemon's STATUS="""
    r = systemctl("start", "dbus.service")
    check(r.returncode == 0, "dbus started", r.stderr)
    bus_pid = int(show("MainPID", "dbus.service"))
    check(bus_pid > 0, "dbus-daemon runs")
    since = mark()
    os.kill(bus_pid, signal.SIGSTOP)
    try:
        r = systemctl("start", "--no-block", UNIT)
        check(r.returncode == 0, "start queued", r.stderr)
        wait_for(lambda: main_pid() > 0, "the daemon's process", 60)
        pid = main_pid()
        # the daemon runs and is stuck at its RequestName call: give it time to be wrongly taken as started
        time.sleep(3)
        check(os.path.exists("/proc/%d" % pid), "the daemon still runs")
        state = (show("ActiveState"), show("SubState"))
        check(state == ("activating", "start"), "activating until READY=1", state)
        check(not any("ready on the system bus" in m for _, m in daemon_lines(journal(since))), "not ready yet")
    finally:
        os.kill(bus_pid, signal.SIGCONT)
    took = wait_state("active", 60)
    print("# active %.1f s after the bus went on" % took)
    check(main_pid() == pid, "the same process", main_pid(), pid)
    check(show("StatusText") == "serving org.dmabroker.Broker1", "STATUS= from the daemon", show("StatusText"))
    check(any("ready on the system bus" in m for _, m in daemon_lines(journal(since))), "the daemon said ready",
          journal_text())


def test_broken_config():
    """a daemon whose config is broken: systemctl start reports the failure (exit status 1), and the journal holds the reason at priority err"""
    systemctl("stop", UNIT)
    since = mark()
    write_config(BROKEN)
    try:
        r = systemctl("start", UNIT)
        print("# systemctl start: %d %s" % (r.returncode, r.stderr.strip().splitlines()[0] if r.stderr else ""))
        check(r.returncode != 0 and "failed" in r.stderr, "systemctl start fails and says so", r.stdout, r.stderr)
        # Restart=on-failure tries again; the start limit (5 in 10 s) ends that only where a try takes less than 2 s
        print("# now %s/%s, Result=%s, NRestarts=%s" % (show("ActiveState"), show("SubState"), show("Result"),
                                                       show("NRestarts")))
        lines = daemon_lines(journal(since))
        bad = [(p, m) for p, m in lines if "bad configuration, not starting" in m]
        check(bad, "the reason is in the journal", lines)
        p, m = bad[0]
        print("# " + m)
        check(p == 3, "at priority err (3)", p)
        check(CONFIG in m and "no-such-key" in m, "naming the file and the key", m)
        entries = journal(since)
        check(any("status=1/FAILURE" in e.get("MESSAGE", "") for e in entries), "systemd logged exit status 1",
              [e.get("MESSAGE") for e in entries])
        check(any("Failed with result 'exit-code'" in e.get("MESSAGE", "") for e in entries),
              "systemd logged the unit failed", [e.get("MESSAGE") for e in entries])
    finally:
        systemctl("stop", UNIT)
        write_config(SHIPPED)
        systemctl("reset-failed", UNIT)
    start()


def test_stop():
    """systemctl stop: the daemon stops cleanly (SIGTERM, exit 0) and the unit is inactive, not failed"""
    pid = main_pid()
    r = systemctl("stop", UNIT)
    check(r.returncode == 0, "stopped", r.stderr)
    check(show("ActiveState") == "inactive", "inactive", show("ActiveState"), show("Result"))
    check(show("Result") == "success", "Result=success", show("Result"))
    check(not os.path.exists("/proc/%d" % pid), "the daemon is gone")


def test_startup_time():
    """start-up under systemd, 5 starts: from the daemon's exec to READY=1 (systemd's own timestamps: ExecMainStart and ActiveEnter), and what `systemctl start` took; each start active"""
    execs, calls = [], []
    for _ in range(5):
        systemctl("stop", UNIT)
        t0 = time.monotonic()
        start()
        calls.append(time.monotonic() - t0)
        # ExecMainStartTimestampMonotonic is taken by systemd as it forks the daemon, ActiveEnter... on READY=1
        execs.append((int(show("ActiveEnterTimestampMonotonic")) - int(show("ExecMainStartTimestampMonotonic"))) / 1e6)
    execs.sort()
    calls.sort()
    print("# start-up to READY=1 under systemd (exec to active): median %.2f s [%.2f-%.2f]; systemctl start: "
          "median %.2f s [%.2f-%.2f]" % (execs[2], execs[0], execs[-1], calls[2], calls[0], calls[-1]))
    check(all(0 < e <= c for e, c in zip(sorted(execs), sorted(calls))), "exec to READY=1 within each systemctl start",
          execs, calls)


run([test_installed, test_active_after_ready, test_broken_config, test_startup_time, test_stop])

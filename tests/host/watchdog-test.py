#!/usr/bin/env python3
"""The daemon's watchdog pings, against the busfixture's stand-in for
systemd's notify socket: with $WATCHDOG_USEC, WATCHDOG=1 comes every quarter
of it, from the event loop; not without it, nor for another process's
$WATCHDOG_PID, nor for a $WATCHDOG_USEC that is no number (said in the log);
and a daemon whose loop is wedged (SIGUSR2, in a build with -Dtest-hooks=true)
sends no more, which is what makes systemd's WatchdogSec= restart it.

usage: watchdog-test.py DMABROKERD TEST-HOOKS (true or false: the build's option)"""
import os
import signal
import socket
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from taptest import run, check, Skip  # noqa: E402
from busfixture import PrivateBus, Daemon, valgrind_on  # noqa: E402

EXE, HOOKS = sys.argv[1], sys.argv[2] == "true"
bus = PrivateBus()
# WATCHDOG_USEC of the tests: pings every quarter of it
USEC = 1000000 if valgrind_on() else 500000
PERIOD = USEC / 4 / 1e6
# How long a step waits for a ping that must not come: a loop that pinged
# would have sent several
QUIET = 4 * PERIOD


def pings(d, seconds):
    """the monotonic times WATCHDOG=1 came in the next seconds"""
    got, end = [], time.monotonic() + seconds
    while time.monotonic() < end:
        d.notify.settimeout(max(end - time.monotonic(), 0.001))
        try:
            msg = d.notify.recv(4096).decode()
        except socket.timeout:
            break
        if "WATCHDOG=1" in msg.split("\n"):
            got.append(time.monotonic())
    return got


def started(env):
    d = Daemon(EXE, bus, env=env)
    check(d.ready, "no READY=1", d.log())
    return d


def test_period():
    """WATCHDOG=1 every quarter of WATCHDOG_USEC, never WATCHDOG_USEC without one"""
    d = started({"WATCHDOG_USEC": str(USEC)})
    try:
        ready = time.monotonic()
        got = pings(d, 9.5 * PERIOD)
        check(len(got) >= 5, "%d WATCHDOG=1 in %.2f s, want 9" % (len(got), 9.5 * PERIOD), d.log())
        gaps = [b - a for a, b in zip([ready] + got, got)]
        print("# %d pings; gaps from READY=1 on: %s s" % (len(got), " ".join("%.3f" % g for g in gaps)))
        # what systemd needs: never WATCHDOG_USEC without one (valgrind translates the loop's code on its
        # first pass after READY=1: 1.1 s once)
        check(gaps[0] < USEC / 1e6 * (3 if valgrind_on() else 1), "the first ping %.3f s after READY=1" % gaps[0])
        check(max(gaps[1:]) < USEC / 1e6, "a gap of %.3f s: systemd would have stopped the daemon" % max(gaps))
        # the period: a quarter, not every loop iteration, nor half or the whole (measured where they
        # arrive: this process's own scheduling shifts single gaps on a loaded machine)
        check(len(got) <= 9.5 / 0.875 + 1, "%d pings in %.2f s: more often than every %.3f s"
              % (len(got), 9.5 * PERIOD, PERIOD))
        median = statistics.median(gaps[1:])
        check(0.8 * PERIOD <= median <= 1.5 * PERIOD, "median gap %.3f s, want %.3f s" % (median, PERIOD))
        says = "watchdog: WATCHDOG=1 every %d ms" % (USEC // 4000)
        check(says in d.log(), "the log does not say %r" % says, d.log())
    finally:
        d.close()


def test_not_asked():
    """no WATCHDOG=1 without WATCHDOG_USEC, for another WATCHDOG_PID, or for a bad WATCHDOG_USEC"""
    cases = [({}, None),
             ({"WATCHDOG_USEC": str(USEC), "WATCHDOG_PID": str(os.getpid())}, None),
             ({"WATCHDOG_USEC": "soon"}, "no watchdog: cannot send WATCHDOG=1 for $WATCHDOG_USEC=soon")]
    for env, says in cases:
        d = started(env)
        try:
            got = pings(d, QUIET)
            check(not got, "%d WATCHDOG=1 with %r" % (len(got), env), d.log())
            if says:
                check(says in d.log(), "with %r the log does not say %r" % (env, says), d.log())
        finally:
            d.close()


def test_wedged():
    """a daemon whose event loop is wedged (SIGUSR2, test hooks) sends no more WATCHDOG=1"""
    if not HOOKS:
        raise Skip("built without -Dtest-hooks=true (./run turns it on)")
    d = started({"WATCHDOG_USEC": str(USEC)})
    try:
        check(len(pings(d, 3 * PERIOD)) >= 1, "no WATCHDOG=1 before the wedge", d.log())
        d.proc.send_signal(signal.SIGUSR2)
        end = time.monotonic() + (60 if valgrind_on() else 10)
        while "wedging the event loop" not in d.log() and time.monotonic() < end:
            time.sleep(0.02)
        check("wedging the event loop" in d.log(), "the daemon did not say it wedged its loop", d.log())
        # a ping queued before the signal was read may still come in now: drain it, then none
        pings(d, 0.05)
        got = pings(d, QUIET)
        check(not got, "%d WATCHDOG=1 from a wedged loop" % len(got), d.log())
        check(d.proc.poll() is None, "the daemon exited instead of hanging", d.proc.returncode, d.log())
        # what systemd's watchdog does next (SIGABRT, ours the kill that core dumps nothing)
        code = d.stop(signal.SIGKILL)
        check(code == -signal.SIGKILL, "status %r after SIGKILL" % code)
    finally:
        d.close(expect_status=-signal.SIGKILL)


try:
    run([test_period, test_not_asked, test_wedged])
finally:
    bus.close()

#!/usr/bin/env python3
"""The daemon's log lines carry their priority to the journal: when its
stderr is the stream $JOURNAL_STREAM names (device:inode, as systemd sets
it), every line starts with "<N>", N the syslog level, which journald reads
as the line's priority (SyslogLevelPrefix=yes, the default); when stderr is
anything else, even with $JOURNAL_STREAM inherited, lines are
"dmabrokerd[LEVEL]: ...". The real journal is the systemd VM tests' part.

usage: log-priorities-test.py DMABROKERD"""
import os
import re
import signal
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from taptest import run, check  # noqa: E402
from busfixture import PrivateBus, Daemon, wrapped, exit_problem, READY_TIMEOUT  # noqa: E402

EXE = sys.argv[1]
bus = PrivateBus()
PREFIX = re.compile(r"^<([0-7])>")


def test_running():
    """to the journal: err to debug, each line with its level as <N>"""
    # a $WATCHDOG_USEC that is no number: a warning
    d = Daemon(EXE, bus, args=("--session", "--log-level=debug"), env={"WATCHDOG_USEC": "soon"},
               journal_stream=True)
    try:
        check(d.ready, "no READY=1", d.log())
        check(d.stop(signal.SIGTERM) == 0, "no clean stop", d.log())
        lines = d.log().splitlines()
        bare = [l for l in lines if not PREFIX.match(l)]
        check(not bare, "lines without <N>: %r" % bare, d.log())
        for level, text in ((4, "no watchdog: cannot send WATCHDOG=1"), (5, "backend heap (/dev/dma_heap)"),
                            (6, "dmabrokerd "), (6, "received Terminated, stopping"), (7, "fd limit")):
            check(any(l.startswith("<%d>%s" % (level, text)) for l in lines),
                  "no line '<%d>%s...'" % (level, text), d.log())
    finally:
        d.close()


def bad_config(journal_stream):
    """the daemon's stderr when it refuses a config, JOURNAL_STREAM a function of its stderr file"""
    with tempfile.TemporaryFile("w+") as err:
        env = dict(os.environ)
        env.pop("JOURNAL_STREAM", None)
        value = journal_stream(os.fstat(err.fileno()))
        if value is not None:
            env["JOURNAL_STREAM"] = value
        r = subprocess.run(wrapped([EXE, "--session", "--config", "/nonexistent/dmabroker.conf"]), env=env,
                           stderr=err, timeout=READY_TIMEOUT)
        err.seek(0)
        text = err.read()
    problem = exit_problem(r.returncode, text, 1)
    check(not problem, "a bad config: %s" % problem, text)
    return text


def test_error():
    """to the journal, a refused config is <3> (err)"""
    text = bad_config(lambda st: "%d:%d" % (st.st_dev, st.st_ino))
    check(text.startswith("<3>bad configuration, not starting: "), "not an err line", text)


def test_not_journal():
    """stderr not the journal's (JOURNAL_STREAM another file's, malformed, unset): dmabrokerd[LEVEL]"""
    other = os.stat(__file__)
    cases = {"another file's": lambda st: "%d:%d" % (other.st_dev, other.st_ino),
             "with a tail": lambda st: "%d:%d:0" % (st.st_dev, st.st_ino),
             "not numbers": lambda st: "journal",
             "unset": lambda st: None}
    for what, value in cases.items():
        text = bad_config(value)
        check(text.startswith("dmabrokerd[err]: bad configuration, not starting: "),
              "JOURNAL_STREAM %s: not a plain line" % what, text)


try:
    run([test_running, test_error, test_not_journal])
finally:
    bus.close()

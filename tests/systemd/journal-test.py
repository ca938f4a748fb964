#!/usr/bin/env python3
"""systemd-journal: `journalctl -u dmabrokerd` shows the daemon's lines,
each at its own priority: the <N> prefix the daemon writes under
JOURNAL_STREAM is read by journald, not left in the text. A config with
log-level = debug, a per-uid buffer limit of 1 and an impossible max-fds
makes it write a line at each level: debug (its fd limit), info (ready),
notice (a refused allocation), warning (max-fds lowered), err (a broken
config, on a second start).
usage: journal-test.py BUILDDIR PREFIX SYSCONFDIR"""
import re
import subprocess

from sdtest import (UNIT, NOBODY, DMABROKERCTL, run, check, sh, systemctl, mark,
                    journal, daemon_lines, write_config, client_env, CONFIG)

SHIPPED = open(CONFIG).read()
CONF = "[daemon]\nlog-level = debug\n[limits]\nmax-buffers-per-uid = 1\nmax-fds = 100000000\n"
STATE = {}

# (priority, the line's pattern)
WANT = [(7, r"^fd limit \d+: max-fds = "), (4, r"^max-fds = 100000000, but the fd limit is"),
        (6, r"ready on the system bus"), (5, r"^refused client .*max-buffers-per-uid = 1"),
        (3, r"^bad configuration, not starting")]


def test_lines():
    """a line at each level from debug to err, each with its priority, no <N> left in the text, identified as dmabrokerd"""
    since = mark()
    write_config(CONF)
    try:
        r = systemctl("restart", UNIT)
        check(r.returncode == 0, "restarted with the config", r.stderr)
        holder = subprocess.Popen([DMABROKERCTL, "--system", "alloc", "64x64", "XRGB8888", "--hold"], user=NOBODY,
                                  group=NOBODY, extra_groups=[], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True, env=client_env())
        try:
            check(holder.stdout.readline(), "the first allocation", holder.stderr.read() if holder.poll() else "")
            r = sh(DMABROKERCTL, "--system", "alloc", "64x64", "XRGB8888", user=NOBODY)
            check(r.returncode == 1 and "max-buffers-per-uid" in r.stderr + r.stdout, "the second is refused by the limit",
                  r.stdout, r.stderr)
        finally:
            holder.kill()
            holder.wait()
        systemctl("stop", UNIT)
        write_config(CONF + "[daemon]\nlog-level = loud\n")
        r = systemctl("start", UNIT)
        check(r.returncode != 0, "the broken config does not start")
    finally:
        systemctl("stop", UNIT)
        write_config(SHIPPED)
        systemctl("reset-failed", UNIT)
    lines = daemon_lines(journal(since))
    for p, m in lines[:12]:
        print("# <%d> %s" % (p, m))
    for prio, text in WANT:
        got = [p for p, m in lines if re.search(text, m)]
        check(got, "a line with '%s'" % text, lines)
        check(got[0] == prio, "'%s' at priority %d" % (text, prio), got)
    check(not any(m.startswith("<") for _, m in lines), "no <N> prefix left in the messages",
          [m for _, m in lines if m.startswith("<")])
    check(len({p for p, _ in lines}) == 5, "five priorities", sorted({p for p, _ in lines}))


def test_journalctl_text():
    """journalctl -u dmabrokerd (the plain text an admin reads) shows the lines, and -p warning only warning and worse"""
    r = sh("journalctl", "-u", UNIT, "--no-pager", "-o", "cat", check_ok=True)
    check("ready on the system bus" in r.stdout and re.search(WANT[0][1], r.stdout, re.M), "all lines", r.stdout[-2000:])
    r = sh("journalctl", "-u", UNIT, "--no-pager", "-o", "cat", "-p", "warning", check_ok=True)
    check("max-fds = 100000000" in r.stdout and "bad configuration" in r.stdout, "warning and err", r.stdout[-2000:])
    check("ready on the system bus" not in r.stdout and not re.search(WANT[0][1], r.stdout, re.M), "not info or debug",
          r.stdout[-2000:])


run([test_lines, test_journalctl_text])

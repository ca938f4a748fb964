#!/usr/bin/env python3
"""with-daemon.py DMABROKERD [--any-user] [--config FILE] -- COMMAND...

Starts a private dbus-daemon and dmabrokerd on it (--session), waits for its
READY=1, runs COMMAND with DBUS_SESSION_BUS_ADDRESS and DMABROKER_PID set,
then stops the daemon with SIGTERM. Fails when COMMAND fails, when the daemon
did not start, or when it did not stop cleanly (exit status 0) — a crash or
a hang of the daemon fails the test even if COMMAND passed. --any-user lets
processes of any uid on the bus (tests that drop privileges)."""
import os
import signal
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from busfixture import PrivateBus, Daemon  # noqa: E402


def main():
    args = sys.argv[1:]
    if "--" not in args or not args:
        sys.stderr.write(__doc__)
        return 2
    sep = args.index("--")
    exe, extra, cmd = args[0], args[1:sep], args[sep + 1:]
    any_user = "--any-user" in extra
    extra = [a for a in extra if a != "--any-user"]
    bus = PrivateBus(any_user=any_user)
    d = Daemon(exe, bus, args=["--session", *extra])
    try:
        if not d.ready:
            sys.stderr.write("with-daemon: dmabrokerd did not become ready:\n%s\n" % d.log())
            return 1
        env = bus.env(DMABROKER_PID=str(d.proc.pid))
        rc = subprocess.call(cmd, env=env)
        code = d.stop(signal.SIGTERM)
        if code != 0:
            sys.stderr.write("with-daemon: dmabrokerd did not stop cleanly (status %r):\n%s\n" % (code, d.log()))
            return rc or 1
        if os.environ.get("DMABROKER_TEST_VERBOSE"):
            sys.stderr.write(d.log())
        return rc
    finally:
        d.close()
        bus.close()


if __name__ == "__main__":
    sys.exit(main())

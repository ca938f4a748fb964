#!/usr/bin/env python3
"""with-daemon.py DMABROKERD [--any-user] [--config FILE] -- COMMAND...

Starts a private dbus-daemon and dmabrokerd on it (--session), waits for its
READY=1, runs COMMAND with DBUS_SESSION_BUS_ADDRESS and DMABROKER_PID set,
then stops the daemon with SIGTERM. Fails when COMMAND fails, when the daemon
did not start, or when it did not stop cleanly: exit status 0 within the stop
limit, no valgrind or sanitizer report in its log (busfixture.Daemon.close) —
a crash, a leak or a hang of the daemon fails the test even if COMMAND passed.
--any-user lets processes of any uid on the bus (tests that drop privileges)."""
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
    rc = 1
    try:
        if not d.ready:
            sys.stderr.write("with-daemon: dmabrokerd did not become ready:\n%s\n" % d.log())
            return 1
        env = bus.env(DMABROKER_PID=str(d.proc.pid))
        rc = subprocess.call(cmd, env=env)
        d.stop(signal.SIGTERM)
        if os.environ.get("DMABROKER_TEST_VERBOSE"):
            sys.stderr.write(d.log())
    finally:
        try:
            d.close()
        except AssertionError as e:
            # its log was shown already when it did not become ready
            sys.stderr.write("with-daemon: %s\n" % (e if d.ready else str(e).split("\n")[0]))
            rc = rc or 1
        bus.close()
    return rc


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""pair.py WAY I386_BUILD DMABROKERD PROGRAM [DAEMON-ARG...] -- [ARG...]

Runs a test program against a dmabrokerd of the other ABI, through
tests/common/with-daemon.py:
  clients  the i386 build's PROGRAM (I386_BUILD/tests/integration/, the same
           name) against DMABROKERD, this build's x86-64 daemon;
  daemon   PROGRAM, this build's x86-64 client, against the i386 build's
           daemon (I386_BUILD/daemon/dmabrokerd).
The i386 build is brought up to date first (ninja, for the daemon and the
program; one test at a time, under a lock), and both binaries are checked:
present, and ELF of the ABI they stand for (a missing or misconfigured i386
build fails with the reason, never runs a test of one ABI against itself). The program's stderr is passed through and
read: libdmabroker's line saying the access channel failed fails the test,
since a wire layout that differs between the ABIs shows there first (the
library then goes on over D-Bus, and the calls still succeed).
Output is the program's TAP."""
import fcntl
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
WITH_DAEMON = os.path.join(HERE, "..", "common", "with-daemon.py")
# e_machine of the ELF header (elf.h), and the class each has here
ABIS = {"i386": (1, 3), "x86-64": (2, 62)}
CHANNEL_FAILED = "libdmabroker: access channel"


def bail(why):
    print("Bail out! %s" % why, flush=True)
    sys.exit(1)


def elf_abi(path):
    """The ABI of ELF file path (a name of ABIS, or what it is), or None when there is no such file."""
    try:
        with open(path, "rb") as f:
            head = f.read(20)
    except FileNotFoundError:
        return None
    if len(head) < 20 or head[:4] != b"\x7fELF":
        return "not ELF"
    got = (head[4], int.from_bytes(head[18:20], "little"))
    return next((name for name, abi in ABIS.items() if abi == got), "ELF class %d, machine %d" % got)


def build_i386(i386_build, targets):
    """Brings targets of the i386 build up to date; the tests of the suite run at once share the build directory."""
    if not os.path.exists(os.path.join(i386_build, "build.ninja")):
        bail("no i386 build in %s. ./run test makes it; by hand: meson setup %s --cross-file cross/i386.ini "
             "-Dauto_features=disabled (its packages: ./run setup, group i386)" % (i386_build, i386_build))
    with open(os.path.join(i386_build, ".i386-tests.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        out = subprocess.run(["ninja", "-C", i386_build] + targets, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True, errors="replace")
    if out.returncode != 0:
        sys.stderr.write(out.stdout)
        bail("the i386 build in %s failed (above)" % i386_build)
    if "no work to do" not in out.stdout:
        print("# the i386 build was out of date: built %s" % " ".join(targets), flush=True)


def checked(path, want, what):
    abi = elf_abi(path)
    if abi is None:
        bail("no %s: %s is missing" % (what, path))
    if abi != want:
        bail("%s %s is %s, not %s" % (what, path, abi, want))
    return path


def main():
    args = sys.argv[1:]
    if "--" not in args or len(args) < 5 or args[0] not in ("clients", "daemon"):
        sys.stderr.write(__doc__)
        return 2
    sep = args.index("--")
    way, i386_build, daemon, program = args[:4]
    daemon_args, program_args = args[4:sep], args[sep + 1:]
    name = os.path.basename(program)
    build_i386(i386_build, ["daemon/dmabrokerd" if way == "daemon" else "tests/integration/" + name])
    if way == "clients":
        program = checked(os.path.join(i386_build, "tests", "integration", name), "i386", "i386 client")
        daemon = checked(daemon, "x86-64", "x86-64 daemon")
    else:
        daemon = checked(os.path.join(i386_build, "daemon", "dmabrokerd"), "i386", "i386 daemon")
        program = checked(program, "x86-64", "x86-64 client")
    print("# %s client %s against the %s daemon %s" % (elf_abi(program), program, elf_abi(daemon), daemon),
          flush=True)
    env = dict(os.environ)
    env.pop("DMABROKER_ACCESS_CHANNEL", None)  # the channel is what is compared: never off here
    p = subprocess.Popen([sys.executable, WITH_DAEMON, daemon] + daemon_args + ["--"] + [program] + program_args,
                         stderr=subprocess.PIPE, env=env, text=True, errors="replace")
    failed = []
    for line in p.stderr:
        sys.stderr.write(line)
        if line.startswith(CHANNEL_FAILED):
            failed.append(line.strip())
    rc = p.wait()
    sys.stderr.flush()
    if failed:
        bail("the access channel failed between the two ABIs (%d times): %s" % (len(failed), failed[0]))
    return rc


if __name__ == "__main__":
    sys.exit(main())

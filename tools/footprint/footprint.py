#!/usr/bin/env python3
"""footprint.py [OPTION]... LABEL=BUILDDIR...

The footprint of the dmabroker builds given (./run footprint runs it): per
build, the stripped size of dmabrokerd, libdmabroker.so and dmabrokerctl, and
the options it was configured with; for a build of this machine's
architecture also the daemon's idle RSS, its RSS per buffer and per client,
and its start-up time to READY=1, each over --repeats runs (median, and the
spread: min-max). A BUILDDIR that does not exist is named as missing in the
table. The sizes are the files' sizes after `strip` (the build's own
architecture's strip), as they would lie on a target's disk.

Start-up: from spawning dmabrokerd to its READY=1 on NOTIFY_SOCKET, over
--repeats starts and stops of a daemon that does nothing else, after one
that is not counted (its files are then in the page cache). Each daemon runs
on one private dbus-daemon, with NOTIFY_SOCKET set (the test fixtures',
tests/common/busfixture.py) and footprint.conf.
Idle RSS: VmRSS of /proc/PID/status 0.3 s after READY=1 in the start-up
runs, most of it the pages of libc and libsystemd that every process mapping
them shares (the reference line gives sleep(1)'s, measured the same way);
"private" is Private_Clean + Private_Dirty of /proc/PID/smaps_rollup, the
pages only the daemon maps.
Per buffer: in --repeats more runs, footprint-client allocates --buffers
buffers (64x64 XRGB8888, shm on a host without dma-buf exporters) on one
connection after a warm-up of 100: the daemon's VmRSS growth over them
divided by their number. Per client: the same for --clients bus connections,
each calling GetUsage once, after a warm-up of 10. The buffers' own memory
(memfds, dma-bufs) and the kernel's objects for the fds are not in the
daemon's RSS and are not counted.

Options:
  --repeats N       daemon runs per build for the runtime figures (default 5)
  --buffers N       buffers in the per-buffer slope (default 1000)
  --clients N       clients in the per-client slope (default 100)
  --sizes           only the sizes and options, no runtime figure
  --no-load         no RSS per buffer and per client: only the start-ups
                    (and the idle RSS they give)
  --check           also judge the targets (README, "Footprint"): dmabrokerd
                    stripped <= 150 KiB for every build given, and, where
                    measured, the idle daemon's private memory <= 2 MiB and
                    its RSS per buffer <= 1 KiB (the medians). One TAP
                    line per build and figure; exits 1 when one fails.
Exit status: 0, 1 when a figure could not be measured or a check failed, 2 on
bad usage."""
import json
import os
import platform
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "common"))
from busfixture import PrivateBus, Daemon  # noqa: E402

KIB = 1024
# The targets of issue 17 (README, "Footprint").
MAX_DAEMON = 150 * KIB
# judged on the idle daemon's private memory: its VmRSS is mostly libc's
# and libsystemd's pages, shared with every process that maps them (see
# the reference line: sleep(1) alone has most of it)
MAX_IDLE = 2048 * KIB
MAX_PER_BUFFER = 1 * KIB
FILES = [("dmabrokerd", "daemon/dmabrokerd"), ("libdmabroker.so", "client-lib/libdmabroker.so"),
         ("dmabrokerctl", "tools/dmabrokerctl")]
# ELF e_machine: (name, the GNU triplet whose strip reads it, the platform.machine() that runs it)
MACHINES = {62: ("x86-64", "x86_64-linux-gnu", "x86_64"), 183: ("aarch64", "aarch64-linux-gnu", "aarch64"),
            40: ("armhf", "arm-linux-gnueabihf", "armv7l"), 3: ("i386", "i686-linux-gnu", "i686")}
WARMUP_BUFFERS, WARMUP_CLIENTS = 100, 10


def elf_machine(path):
    with open(path, "rb") as f:
        head = f.read(20)
    if head[:4] != b"\x7fELF":
        raise ValueError("%s is not an ELF file" % path)
    return struct.unpack("<H" if head[5] == 1 else ">H", head[18:20])[0]


def stripped_size(path, triplet):
    """the size of path after strip, with the strip of its architecture"""
    tools = ["strip"] if MACHINES.get(elf_machine("/proc/self/exe"), (0, triplet))[1] == triplet else []
    tools.insert(0, triplet + "-strip")
    with tempfile.TemporaryDirectory(prefix="dmabroker-footprint.") as d:
        out = os.path.join(d, "stripped")
        for tool in tools:
            try:
                r = subprocess.run([tool, "-o", out, path], capture_output=True, text=True)
            except FileNotFoundError:
                continue
            if r.returncode != 0:
                raise RuntimeError("%s %s: %s" % (tool, path, r.stderr.strip()))
            return os.path.getsize(out)
    raise RuntimeError("no strip for %s found (%s)" % (triplet, ", ".join(tools)))


def quote(a):
    return '"%s"' % a if any(c in a for c in " '[],") else a


def build_options(d):
    """the compiler, and the options that shape the binaries as `meson setup` arguments"""
    info = os.path.join(d, "meson-info")
    opts = {o["name"]: o["value"] for o in json.load(open(os.path.join(info, "intro-buildoptions.json")))}
    target = next(t for t in json.load(open(os.path.join(info, "intro-targets.json"))) if t["name"] == "dmabrokerd")
    cc = target["target_sources"][0]["compiler"]
    try:
        version = subprocess.run(cc + ["--version"], capture_output=True, text=True).stdout.split("\n")[0]
    except OSError:
        version = " ".join(cc)
    args = []
    # the machine files it was set up with (meson-private/cmd_line.txt)
    try:
        for line in open(os.path.join(d, "meson-private", "cmd_line.txt")):
            k, _, v = line.partition("=")
            if k.strip() in ("cross_file", "native_file") and v.strip() not in ("", "[]"):
                for f in json.loads(v.strip().replace("'", '"')):
                    args.append("--%s=%s" % (k.strip().replace("_", "-"), os.path.relpath(f)))
    except (OSError, ValueError):
        pass
    for name in ("buildtype", "optimization", "debug", "b_lto", "b_ndebug", "c_args", "c_link_args"):
        v = opts.get(name)
        if v is None or v == []:
            continue
        if isinstance(v, bool):
            v = str(v).lower()
        elif isinstance(v, list):
            v = "[" + ",".join("'%s'" % a for a in v) + "]"
        args.append("-D%s=%s" % (name, v))
    return "%s; meson setup %s" % (version, " ".join(quote(a) for a in args))


def status(pid):
    """VmRSS of pid and its private part (Private_Clean + Private_Dirty of
    smaps_rollup: the pages no other process maps), in bytes"""
    v = {}
    for name in ("status", "smaps_rollup"):
        with open("/proc/%d/%s" % (pid, name)) as f:
            for line in f:
                k, _, rest = line.partition(":")
                if k in ("VmRSS", "Private_Clean", "Private_Dirty"):
                    v[k] = int(rest.split()[0]) * KIB
    return v["VmRSS"], v["Private_Clean"] + v["Private_Dirty"]


def reference():
    """VmRSS and private memory of sleep(1), a process that links only libc,
    measured as the daemon is: what any process costs here"""
    p = subprocess.Popen(["sleep", "10"])
    try:
        time.sleep(0.3)
        return status(p.pid)
    finally:
        p.kill()
        p.wait()


class Load:
    """footprint-client on the bus, driven line by line"""

    def __init__(self, exe, bus):
        self.proc = subprocess.Popen([exe], env=bus.env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def add(self, what, n):
        self.proc.stdin.write("%s %d\n" % (what, n))
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline().strip()
        if not answer.startswith("ok "):
            raise RuntimeError("footprint-client, %s %d: %s" % (what, n, answer or "no answer"))

    def close(self):
        self.proc.stdin.close()
        if self.proc.wait(60) != 0:
            raise RuntimeError("footprint-client exited with status %d" % self.proc.returncode)


def started(d, bus, conf):
    """a daemon of build d, ready, and the seconds from its spawning to READY=1"""
    t0 = time.monotonic()
    daemon = Daemon(os.path.join(d, FILES[0][1]), bus, args=["--session", "--config", conf])
    secs = time.monotonic() - t0
    if not daemon.ready:
        log = daemon.log()
        daemon.close()
        raise RuntimeError("dmabrokerd did not become ready:\n" + log)
    return daemon, secs


def stopped(daemon):
    daemon.stop(signal.SIGTERM)
    daemon.close()


def start_run(d, bus, conf):
    """a daemon started and stopped: (start-up s, idle RSS, idle private)"""
    daemon, secs = started(d, bus, conf)
    try:
        time.sleep(0.3)
        idle, private = status(daemon.proc.pid)
    finally:
        stopped(daemon)
    return secs, idle, private


def load_run(d, bus, conf, n_buffers, n_clients):
    """a daemon under footprint-client's load: (RSS per buffer, RSS per client)"""
    daemon, _ = started(d, bus, conf)
    try:
        pid = daemon.proc.pid
        load = Load(os.path.join(d, "tools", "footprint-client"), bus)
        try:
            load.add("buffers", WARMUP_BUFFERS)
            r0 = status(pid)[0]
            load.add("buffers", n_buffers)
            r1 = status(pid)[0]
            load.add("clients", WARMUP_CLIENTS)
            r2 = status(pid)[0]
            load.add("clients", n_clients)
            r3 = status(pid)[0]
        finally:
            load.close()
    finally:
        stopped(daemon)
    return (r1 - r0) / n_buffers, (r3 - r2) / n_clients


def spread(values, fmt):
    return "%s [%s-%s]" % (fmt(statistics.median(values)), fmt(min(values)), fmt(max(values)))


def kib(v):
    return "%.1f KiB" % (v / KIB)


def mib(v):
    return "%.2f MiB" % (v / KIB / KIB)


def byte(v):
    return "%.0f B" % v


def ms(v):
    return "%.1f ms" % (v * 1000)


def main():
    args, builds = sys.argv[1:], []
    repeats, n_buffers, n_clients, sizes_only, check = 5, 1000, 100, False, False
    while args:
        a = args.pop(0)
        if a in ("-h", "--help"):
            print(__doc__)
            return 0
        if a in ("--repeats", "--buffers", "--clients") and args and args[0].isdigit() and int(args[0]) > 0:
            v = int(args.pop(0))
            repeats, n_buffers, n_clients = {"--repeats": (v, n_buffers, n_clients),
                                             "--buffers": (repeats, v, n_clients),
                                             "--clients": (repeats, n_buffers, v)}[a]
        elif a == "--sizes":
            sizes_only = True
        elif a == "--no-load":
            n_buffers = 0
        elif a == "--check":
            check = True
        elif "=" in a and not a.startswith("-"):
            builds.append(a.split("=", 1))
        else:
            sys.stderr.write("footprint: bad argument '%s'\n%s\n" % (a, __doc__))
            return 2
    if not builds:
        sys.stderr.write(__doc__ + "\n")
        return 2
    conf = os.path.join(HERE, "footprint.conf")
    here = platform.machine()
    rows = [("dmabrokerd, stripped", []), ("libdmabroker.so, stripped", []), ("dmabrokerctl, stripped", []),
            ("idle RSS", []), ("idle, private", []), ("RSS per buffer", []), ("RSS per client", []),
            ("start-up to READY=1", [])]
    notes, checks, failed = [], [], False
    bus = None
    for label, d in builds:
        col = ["-"] * len(rows)
        if not os.path.exists(os.path.join(d, FILES[0][1])):
            col = ["missing"] * len(rows)
            notes.append("%s: missing: no %s (%s)" % (label, os.path.join(d, FILES[0][1]),
                                                      "not built" if os.path.isdir(d) else "no such build directory"))
            for i, c in enumerate(col):
                rows[i][1].append(c)
            continue
        try:
            arch, triplet, runs_on = MACHINES.get(elf_machine(os.path.join(d, FILES[0][1])), ("?", "?", "?"))
            sizes = [stripped_size(os.path.join(d, f), triplet) for _, f in FILES]
            col[:3] = [kib(s) for s in sizes]
            notes.append("%s (%s): %s" % (label, arch, build_options(d)))
            checks.append((sizes[0] <= MAX_DAEMON, "%s: dmabrokerd stripped %s <= %s" % (label, kib(sizes[0]),
                                                                                        kib(MAX_DAEMON))))
            if sizes_only:
                pass
            elif runs_on != here:
                notes.append("%s: runtime figures not measured: built for %s, this is %s (under qemu-user the RSS and the "
                             "time would be the emulator's)" % (label, arch, here))
            else:
                if bus is None:
                    bus = PrivateBus()
                # one start first, not counted: the figures are of a daemon
                # whose files are in the page cache
                start_run(d, bus, conf)
                start, idle, private = zip(*[start_run(d, bus, conf) for _ in range(repeats)])
                col[3:5] = [spread(idle, mib), spread(private, mib)]
                col[7] = spread(start, ms)
                if n_buffers:
                    per_buf, per_client = zip(*[load_run(d, bus, conf, n_buffers, n_clients) for _ in range(repeats)])
                    col[5:7] = [spread(per_buf, byte), spread(per_client, byte)]
                    checks.append((statistics.median(per_buf) <= MAX_PER_BUFFER, "%s: RSS per buffer %s <= %s" % (
                        label, byte(statistics.median(per_buf)), byte(MAX_PER_BUFFER))))
                else:
                    col[5:7] = ["not measured (--no-load)"] * 2
                checks.append((statistics.median(private) <= MAX_IDLE, "%s: idle private memory %s <= %s" % (
                    label, mib(statistics.median(private)), mib(MAX_IDLE))))
        except (OSError, RuntimeError, ValueError) as e:
            notes.append("%s: ERROR: %s" % (label, e))
            failed = True
        for i, c in enumerate(col):
            rows[i][1].append(c)
    if bus:
        bus.close()
        ref = reference()
        notes.append("reference: sleep(1) here: VmRSS %s, private %s" % (mib(ref[0]), mib(ref[1])))
    load = "%d buffers, %d clients" % (n_buffers, n_clients) if n_buffers else "no load"
    print("Footprint (tools/footprint/footprint.py, %s, kernel %s; runtime: median [min-max] of %d runs, %s; "
          "load average %.1f)" % (time.strftime("%Y-%m-%d"), platform.release(), repeats, load, os.getloadavg()[0]))
    print()
    print("| | " + " | ".join(label for label, _ in builds) + " |")
    print("|---|" + "---|" * len(builds))
    for name, cols in rows:
        if not sizes_only or name.endswith("stripped"):
            print("| %s | %s |" % (name, " | ".join(cols)))
    print()
    for n in notes:
        print(n)
    if check:
        print("1..%d" % len(checks))
        for i, (ok, what) in enumerate(checks, 1):
            print("%s %d - %s" % ("ok" if ok else "not ok", i, what))
            failed |= not ok
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

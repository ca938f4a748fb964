#!/usr/bin/env python3
"""bench-check.py -- COMMAND...

Runs COMMAND (dmabroker-bench, usually behind with-daemon.py or vm-run),
relays its output as TAP comments and checks, as TAP steps, that it printed
every figure it promises and that each one is a measurement: the command
exited 0; every table row of every section is there, its p50 and p99 are
finite, positive and in order, its sample count is the one the bench takes
for it (so no sample was lost), and its ratio is its p50 over its baseline's
p50 as printed; the daemon's CPU time per frame, the frame rates and its
memory per buffer and per client were measured; every target line has a
finite value and says "met" exactly when the value is within its limit.

No figure is judged against a target here (docs/BENCHMARKS.md): the smoke
test proves the benchmark runs and measures, not how fast. The rows below
follow tools/bench/dmabroker-bench.c; a row added there is added here.
"""
import math
import re
import subprocess
import sys

SECTIONS = ("baseline", "access", "stream", "alloc", "scaling", "memory", "targets")
ROW = re.compile(r"^  (?P<name>\S.*?)\s+(?P<p50>\S+)\s+(?P<p99>\S+)\s+(?P<n>\d+)\s+(?P<ratio>base|\S+x)$")


def num(s):
    try:
        v = float(s)
    except ValueError:
        return None
    return v if math.isfinite(v) else None


class Output:
    def __init__(self, text):
        self.lines = text.splitlines()
        self.rows = {}       # (section, name) -> dict
        self.free = {}       # section -> lines that are not table rows
        section = None
        for line in self.lines:
            if line and not line.startswith(" "):
                word = line.split(":", 1)[0].split(" ", 1)[0]
                if word in SECTIONS:
                    section = word
                    if word == "scaling":
                        section = "scaling-clients" if "client processes" in line else "scaling-buffers"
                    self.free.setdefault(section, []).append(line)
                continue
            m = ROW.match(line)
            if m and section:
                self.rows[(section, m["name"])] = m.groupdict()
            elif section:
                self.free.setdefault(section, []).append(line)


class Step:
    def __init__(self):
        self.problems = []

    def check(self, cond, msg):
        if not cond:
            self.problems.append(msg)
        return cond


def check_row(st, out, section, name, n, base=None):
    """One row: present, finite positive p50 <= p99, n samples, its ratio to base (a row name) or 'base'."""
    r = out.rows.get((section, name))
    if not st.check(r is not None, "%s: no row '%s'" % (section, name)):
        return None
    p50, p99 = num(r["p50"]), num(r["p99"])
    ok = st.check(p50 is not None and p99 is not None and 0 < p50 <= p99,
                  "%s: '%s': p50 %s, p99 %s: not finite, positive and in order" % (section, name, r["p50"], r["p99"]))
    st.check(int(r["n"]) == n, "%s: '%s': %s samples, the bench takes %d" % (section, name, r["n"], n))
    if base is None:
        st.check(r["ratio"] == "base", "%s: '%s' is a baseline but shows a ratio %s" % (section, name, r["ratio"]))
        return p50 if ok else None
    b = out.rows.get(base)
    ratio = num(r["ratio"][:-1]) if r["ratio"] != "base" else None
    # 0.00x is a ratio under 0.005 (a pooled 32 MiB Allocate against a fresh one by hand in the test bed: its
    # p50s are checked positive above, and the ratio against them below)
    if not st.check(ratio is not None and ratio >= 0, "%s: '%s': ratio %s" % (section, name, r["ratio"])):
        return None
    if b is not None and ok and num(b["p50"]):
        want = p50 / num(b["p50"])
        # p50s are printed to 0.1 µs, the ratio to 0.01
        slack = 0.006 + want * (0.05 / p50 + 0.05 / num(b["p50"]))
        st.check(abs(ratio - want) <= slack, "%s: '%s': ratio %.2f, but p50 %.1f / baseline '%s' %.1f = %.3f"
                 % (section, name, ratio, p50, base[1], num(b["p50"]), want))
    return p50 if ok else None


def figure(st, out, section, pattern, what):
    """A figure on a line of its own in section: present and finite; returns the match."""
    for line in out.free.get(section, []):
        m = re.search(pattern, line)
        if m:
            vals = [num(g) for g in m.groups()]
            st.check(all(v is not None and v >= 0 for v in vals), "%s: %s not finite: %s" % (section, what, line))
            return vals
    st.check(False, "%s: no line with %s (/%s/)" % (section, what, pattern))
    return None


def main():
    args = sys.argv[1:]
    if not args or args[0] != "--" or len(args) < 2:
        sys.stderr.write(__doc__)
        return 2
    proc = subprocess.run(args[1:], stdout=subprocess.PIPE, text=True, errors="replace")
    for line in proc.stdout.splitlines():
        print("# " + line)
    out = Output(proc.stdout)
    steps = []

    def step(name):
        def deco(fn):
            steps.append((name, fn))
            return fn
        return deco

    hdr = re.search(r"^dmabroker-bench: (\d+) samples per figure.*; backend (.*); daemon pid (\S+)$", proc.stdout, re.M)
    it = int(hdr.group(1)) if hdr else 0
    raw_rtt = ("baseline", "request/reply, one fd each way")
    raw_oneway = ("baseline", "one-way fd handoff (send to the peer's wakeup)")

    @step("the bench exited 0 and named its samples per figure and its daemon")
    def _(st):
        st.check(proc.returncode == 0, "exit status %d" % proc.returncode)
        st.check(hdr is not None, "no 'dmabroker-bench: N samples per figure' line")
        st.check(hdr is None or hdr.group(3).isdigit(), "no daemon pid (DMABROKER_PID unset): no daemon figures")

    @step("baseline: raw request/reply and one-way handoff, finite positive figures, every sample")
    def _(st):
        check_row(st, out, *raw_rtt, it)
        check_row(st, out, *raw_oneway, it)

    @step("access: BeginAccess (+EndAccess) on the bus, direct D-Bus and the access channel, ratios to raw")
    def _(st):
        for name in ("BeginAccess alone, bus", "BeginAccess+EndAccess, bus", "BeginAccess alone, direct D-Bus",
                     "BeginAccess+EndAccess, direct D-Bus, one-way end",
                     "BeginAccess+EndAccess, access channel, waited end", "BeginAccess alone, access channel",
                     "BeginAccess+EndAccess, access channel, one-way end"):
            check_row(st, out, "access", name, it, raw_rtt)

    @step("stream: FIFO, mailbox and PipeWire handoffs, the daemon's CPU per frame, frame rates")
    def _(st):
        check_row(st, out, "stream", "queue -> consumer's acquire (one way)", it, raw_oneway)
        check_row(st, out, "stream", "queue -> acquire -> release -> producer's dequeue", it, raw_rtt)
        check_row(st, out, "stream", "mailbox, relayed by the daemon: one way", it, raw_oneway)
        check_row(st, out, "stream", "mailbox, relayed by the daemon: full cycle", it, raw_rtt)
        check_row(st, out, "stream", "PipeWire: queue -> consumer's process (one way)", it, raw_oneway)
        figure(st, out, "stream", r"daemon CPU time per frame \(1 consumer\): (\S+) µs", "the daemon's CPU per frame")
        figure(st, out, "stream", r"daemon CPU time per mailbox frame: (\S+) µs", "the daemon's CPU per mailbox frame")
        fps = figure(st, out, "stream", r"frames/s, 4 buffers, .*: 1 consumer (\S+), 3 consumers (\S+)$", "frame rates")
        st.check(fps is None or all(v and v > 0 for v in fps), "a frame rate of 0: %r" % fps)

    @step("alloc: 4, 1024, 8192 and 32768 KiB by hand, fresh and pooled, ratios to by hand")
    def _(st):
        backend = hdr.group(2) if hdr else ""
        if backend not in ("(the daemon's choice)", "shm") and not backend.startswith("heap:"):
            st.check(any("alloc: skipped" in line for line in out.free.get("alloc", [])), "no alloc section")
            return
        for kib in (4, 1024, 8192, 32768):
            n = it // 20 + 5 if kib >= 8192 else it // 4 + 5
            hand = "%d KiB by hand" % kib
            check_row(st, out, "alloc", hand, n)
            check_row(st, out, "alloc", "%d KiB through the daemon, fresh" % kib, n, ("alloc", hand))
            check_row(st, out, "alloc", "%d KiB through the daemon, from its pool" % kib, n, ("alloc", hand))

    held = [int(n) for n in re.findall(r"^  (\d+) buffers held ", proc.stdout, re.M) if n != "10"]
    bufs = held[0] if len(held) == 1 else None

    @step("scaling: BeginAccess+EndAccess with 10 and with many buffers held, the ratio between them")
    def _(st):
        check_row(st, out, "scaling-buffers", "10 buffers held", it)
        if st.check(bufs is not None, "no 'N buffers held' row"):
            check_row(st, out, "scaling-buffers", "%d buffers held" % bufs, it, ("scaling-buffers", "10 buffers held"))

    @step("memory: the daemon's resident set per buffer and per client, measured")
    def _(st):
        figure(st, out, "memory", r"per buffer: (\S+) bytes \((\d+) -> (\d+) KiB for (\d+) buffers", "per buffer")
        figure(st, out, "memory", r"per client: (\S+) bytes \((\d+) -> (\d+) KiB for (\d+) clients", "per client")

    @step("scaling: 1, 8 and 64 client processes, every sample of every client, ratios to one client")
    def _(st):
        per = min(it // 4 + 10, 2048)
        names = {}
        for (sec, name) in out.rows:
            mm = re.match(r"^(\d+) clients? \((\S+) pairs/s in all\)$", name)
            if sec == "scaling-clients" and mm:
                names[int(mm.group(1))] = name
                rate = num(mm.group(2))
                st.check(rate is not None and rate > 0, "'%s': no rate" % name)
        for k in (1, 8, 64):
            if st.check(k in names, "no row for %d clients" % k):
                check_row(st, out, "scaling-clients", names[k], k * per,
                          None if k == 1 else ("scaling-clients", names[1]))

    @step("targets: every target read off, a finite value, 'met' exactly when within its limit")
    def _(st):
        tl = [line for line in out.free.get("targets", []) if line.startswith("  ")]
        want = 7 if hdr and hdr.group(2).startswith(("heap:", "shm", "(the")) else 5
        st.check(len(tl) == want, "%d target lines, %d expected" % (len(tl), want))
        for line in tl:
            mm = re.match(r"^  (.*?)\s+(\S+) (\S+)\s*\(target <= (\S+) (\S+)\): (met|NOT MET)$", line)
            if not st.check(mm is not None, "unreadable target line: %s" % line):
                continue
            v, lim = num(mm.group(2)), num(mm.group(4))
            # printed to 0.01: a pooled Allocate can read 0.00 (see check_row)
            if st.check(v is not None and v >= 0 and lim is not None, "target not finite: %s" % line):
                st.check((mm.group(6) == "met") == (v <= lim), "judged wrongly: %s" % line)

    print("1..%d" % len(steps))
    failed = 0
    for i, (name, fn) in enumerate(steps, 1):
        st = Step()
        fn(st)
        for p in st.problems:
            print("# " + p)
        print("%s %d - %s" % ("not ok" if st.problems else "ok", i, name))
        failed += bool(st.problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

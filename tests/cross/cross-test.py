#!/usr/bin/env python3
"""A cross build's tests, run under qemu-user from the native build.

usage: cross-test.py ARCH SUITE BUILD-DIR

ARCH is aarch64 or armhf, BUILD-DIR its cross build (./run cross makes
build-aarch64 and build-armhf; DMABROKER_AARCH64_BUILD_DIR and
DMABROKER_ARMHF_BUILD_DIR name others). SUITE is unit (the unit tests) or
host (the rest of the host suite: the unit tests are cross-ARCH-unit's).
The tests run as `meson test` in BUILD-DIR: meson starts a test program
through the cross file's exe_wrapper (qemu-ARCH-static), and the programs a
test script starts run through binfmt_misc.

Output is TAP: one step per test of the cross build, in its order, with
its duration, or its failed steps and last lines; a step a test skipped
(TAP "# SKIP") is a skipped step here too, with its reason. A test that
cannot run under qemu-user is listed in EXCLUDED, with its reason, and
shows as a skipped step. A cross build that is missing, of the wrong
architecture or older than the sources, or no binfmt_misc entry for
qemu-user, fails the test, saying so.
"""
import json
import os
import re
import shutil
import subprocess
import sys

ARCHES = {
    # ARCH: its ELF e_machine, the binfmt_misc entry qemu-user-static registers, the cross file
    "aarch64": (183, "qemu-aarch64", "cross/aarch64.ini"),
    "armhf": (40, "qemu-arm", "cross/armhf.ini"),
}
MACHINES = {3: "i386", 40: "arm", 62: "x86-64", 183: "aarch64"}
# Tests of the cross build's host suite that cannot run under qemu-user: name -> why. None today: the RSS
# checks (churn, soak-shm) skip their own step under an emulator, with the reason.
EXCLUDED = {}
# meson's timeouts, for a program emulated instruction by instruction
TIMEOUT_MULTIPLIER = 3
BINFMT = "/proc/sys/fs/binfmt_misc"
STEP_SKIP = re.compile(r"^ok\s+(\d+)\s*(?:-\s*)?(.*?)\s*#\s*skip\b\s*(.*)$", re.I)
PLAN_SKIP = re.compile(r"^1\.\.0\s*#\s*skip\b\s*(.*)$", re.I | re.M)


def bail(what, *why):
    """The cross build's tests cannot run: one failed step, and why."""
    print("1..1")
    for line in why:
        print("# " + line)
    print("not ok 1 - %s" % what, flush=True)
    sys.exit(1)


def check_build(arch, build):
    machine, entry, cross_file = ARCHES[arch]
    daemon = os.path.join(build, "daemon", "dmabrokerd")
    if not os.path.isfile(os.path.join(build, "build.ninja")) or not os.path.isfile(daemon):
        bail("no %s cross build in %s" % (arch, build),
             "./run cross configures and builds it (meson setup %s --cross-file %s)" % (build, cross_file))
    with open(daemon, "rb") as f:
        head = f.read(20)
    found = int.from_bytes(head[18:20], "little") if head[:4] == b"\x7fELF" else None
    if found != machine:
        what = MACHINES.get(found, "ELF machine %s" % found)
        bail("%s is not an %s build: its dmabrokerd is %s" % (build, arch, what),
             "set DMABROKER_%s_BUILD_DIR to the %s cross build" % (arch.upper(), arch))
    status = os.path.join(BINFMT, entry)
    if not os.path.isfile(os.path.join(BINFMT, "status")):
        bail("binfmt_misc is not mounted (%s): the test scripts start %s programs directly" % (BINFMT, arch),
             "./run cross mounts it and registers qemu-user-static's entries (as root)")
    state = open(status).readline().strip() if os.path.isfile(status) else "missing"
    if state != "enabled":
        bail("binfmt_misc entry %s is %s: the test scripts start %s programs directly" % (entry, state, arch),
             "./run cross registers it (qemu-user-static and binfmt-support; update-binfmts --enable %s)" % entry)
    ninja = shutil.which("ninja") or shutil.which("samu")
    if not ninja:
        bail("no ninja to tell whether %s is up to date" % build)
    dry = subprocess.run([ninja, "-C", build, "-n"], capture_output=True, text=True)
    if dry.returncode != 0 or "no work to do" not in dry.stdout:
        bail("%s is older than the sources" % build,
             *(["ninja -n says:"] + (dry.stdout + dry.stderr).splitlines()[:5] + ["./run cross rebuilds it"]))


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in ARCHES or sys.argv[2] not in ("unit", "host"):
        print("usage: cross-test.py aarch64|armhf unit|host BUILD-DIR", file=sys.stderr)
        return 2
    arch, suite = sys.argv[1], sys.argv[2]
    build = os.environ.get("DMABROKER_%s_BUILD_DIR" % arch.upper()) or sys.argv[3]
    check_build(arch, build)

    select = ["--suite", suite] + (["--no-suite", "unit"] if suite == "host" else [])
    listed = subprocess.run(["meson", "test", "-C", build, "--no-rebuild", "--list"] + select,
                            capture_output=True, text=True)
    names = [line.split(" / ", 1)[-1].strip() for line in listed.stdout.splitlines() if " / " in line]
    if listed.returncode != 0 or not names:
        bail("meson lists no %s test in %s" % (suite, build), *(listed.stdout + listed.stderr).splitlines()[-10:])
    run = [n for n in names if n not in EXCLUDED]

    logbase = "cross-" + suite
    log = os.path.join(build, "meson-logs", logbase + ".json")
    if os.path.exists(log):
        os.unlink(log)
    print("# %s: %d %s tests under qemu-user in %s" % (arch, len(run), suite, build), flush=True)
    # meson's own output goes to stderr (this test's log), TAP to stdout
    subprocess.run(["meson", "test", "-C", build, "--no-rebuild", "--print-errorlogs", "--logbase", logbase,
                    "--timeout-multiplier", str(TIMEOUT_MULTIPLIER)] + run, stdout=sys.stderr, stderr=sys.stderr)
    results = {}
    if os.path.exists(log):
        for line in open(log):
            r = json.loads(line)
            results[r["name"].split(" / ", 1)[-1]] = r

    lines, failed = [], 0
    for name in names:
        if name in EXCLUDED:
            lines.append(("ok", "%s # SKIP not run under qemu-user: %s" % (name, EXCLUDED[name]), []))
            continue
        r = results.get(name)
        if r is None:
            failed += 1
            lines.append(("not ok", "%s: no result in %s" % (name, log), []))
            continue
        res, out = r["result"], r.get("stdout") or ""
        if res in ("OK", "EXPECTEDFAIL"):
            lines.append(("ok", "%s (%.1f s)" % (name, r.get("duration", 0)), []))
            # its own skipped steps, each a skipped step here
            for m in filter(None, map(STEP_SKIP.match, out.splitlines())):
                lines.append(("ok", "%s: step %s (%s) # SKIP %s" % (name, m.group(1), m.group(2), m.group(3)), []))
        elif res == "SKIP":
            why = PLAN_SKIP.search(out)
            steps = ["step %s (%s): %s" % m.groups() for m in filter(None, map(STEP_SKIP.match, out.splitlines()))]
            lines.append(("ok", "%s # SKIP %s" % (name, why.group(1) if why else "; ".join(steps) or
                                                 "exit status %s" % r.get("returncode")), []))
        else:
            failed += 1
            all_lines = (out + (r.get("stderr") or "")).splitlines()
            diag = [ln for ln in all_lines if ln.startswith("not ok")][:10] + ["its last lines:"] + all_lines[-20:]
            lines.append(("not ok", "%s: %s, exit status %s" % (name, res, r.get("returncode")), diag))
    print("1..%d" % len(lines))
    for i, (state, text, diag) in enumerate(lines, 1):
        for d in diag:
            print("#   " + d)
        print("%s %d - %s" % (state, i, text))
    sys.stdout.flush()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

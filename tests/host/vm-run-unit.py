#!/usr/bin/env python3
"""Unit tests of tests/vm/vm-run that need no VM: the kernel-log checker,
the initramfs writer and the command-line errors."""
import gzip
import importlib.machinery
import importlib.util
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from taptest import run, check  # noqa: E402

VM_RUN = sys.argv[1]
loader = importlib.machinery.SourceFileLoader("vm_run", VM_RUN)
spec = importlib.util.spec_from_loader("vm_run", loader)
vm = importlib.util.module_from_spec(spec)
loader.exec_module(vm)

CLEAN = """[    0.000000] Linux version 6.12.57 (root@host) #1 SMP
[    0.512000] vkms: [drm] Initialized vkms 1.0.0 for vkms on minor 1
[    0.600000] tsc: Refined TSC clocksource calibration: 2445.400 MHz
[    1.000000] Run /init as init process
"""

LOCKDEP = """[    1.100000] ok line
[    2.000000] ======================================================
[    2.000001] WARNING: possible circular locking dependency detected
[    2.000002] 6.12.57 #1 Not tainted
[    2.000003] ------------------------------------------------------
[    2.000004] test/77 is trying to acquire lock:
[    2.000005] ffff (reservation_ww_class_mutex){+.+.}-{3:3}, at: dma_buf_mmap
[    2.000006]
[    2.000007] other info that might help us debug this:
"""

WARN = """[    3.000000] ------------[ cut here ]------------
[    3.000001] WARNING: CPU: 0 PID: 1 at drivers/dma-buf/dma-buf.c:100 foo+0x1/0x2
[    3.000002] Call Trace:
[    3.000003]  <TASK>
[    3.000004]  dump_stack+0x1
[    3.000005] ---[ end trace 0000000000000000 ]---
[    3.100000] after the trace
"""


def test_clean_log():
    """a clean boot log has no report"""
    check(vm.kernel_reports(CLEAN) == [], "false positive", vm.kernel_reports(CLEAN))


def test_lockdep():
    """a lockdep splat is a report, printed with its context"""
    r = vm.kernel_reports(CLEAN + LOCKDEP)
    check(len(r) == 1, "want one report", r)
    check("circular locking" in r[0] and "dma_buf_mmap" in r[0], "context missing", r[0])


def test_warning_trace():
    """a WARNING with its trace is one report, ending at the end-of-trace line"""
    r = vm.kernel_reports(WARN)
    check(len(r) == 1, "want one report", r)
    check("end trace" in r[0] and "after the trace" not in r[0], "bad extent", r[0])


def test_bug():
    """BUG, Oops and UBSAN lines are reports"""
    for line in ("BUG: kernel NULL pointer dereference, address: 0000000000000008",
                 "Oops: 0000 [#1] PREEMPT SMP", "UBSAN: shift-out-of-bounds in foo.c:1:2"):
        check(len(vm.kernel_reports("[ 1.0] " + line + "\n")) == 1, "missed: " + line)


def test_initramfs(tmp=os.environ.get("TMPDIR", "/tmp")):
    """the initramfs is a newc archive with /init, busybox and /dev/console"""
    path = os.path.join(tmp, "vm-run-unit-%d.cpio.gz" % os.getpid())
    try:
        vm.make_initramfs(path)
        with gzip.open(path) as f:
            blob = f.read()
    finally:
        if os.path.exists(path):
            os.unlink(path)
    names, off = [], 0
    while True:
        check(blob[off:off + 6] == b"070701", "bad magic at %d" % off)
        mode = int(blob[off + 14:off + 22], 16)
        size = int(blob[off + 54:off + 62], 16)
        nlen = int(blob[off + 94:off + 102], 16)
        name = blob[off + 110:off + 110 + nlen - 1].decode()
        off = (off + 110 + nlen + 3) & ~3
        off = (off + size + 3) & ~3
        if name == "TRAILER!!!":
            break
        names.append((name, mode, size))
    d = {n: (m, s) for n, m, s in names}
    check("init" in d and d["init"][1] > 100, "no /init", names)
    check("bin/busybox" in d and d["bin/busybox"][1] > 100000, "no busybox", names)
    check("dev/console" in d and (d["dev/console"][0] & 0o170000) == 0o020000, "no console node", names)


def test_usage_errors():
    """bad command lines fail with a message and exit 2; a missing kernel is named"""
    r = subprocess.run([VM_RUN], capture_output=True, text=True)
    check(r.returncode == 2 and "no command given" in r.stderr, "no-command", r.returncode, r.stderr)
    r = subprocess.run([VM_RUN, "--frobnicate", "true"], capture_output=True, text=True)
    check(r.returncode == 2 and "unknown option" in r.stderr, "bad option", r.returncode, r.stderr)
    r = subprocess.run([VM_RUN, "--kernel", "/nonexistent/bzImage", "true"], capture_output=True, text=True)
    check(r.returncode == 125 and "/nonexistent/bzImage" in r.stderr, "missing kernel", r.returncode, r.stderr)


def test_systemd_setup():
    """the --systemd set-up: empty fstab, the host's enabled units left out, the masks, vmtest.target; the policies and libraries linked and sysusers run only after an install"""
    plain = vm.systemd_setup()
    check(plain.startswith("set -e\n"), "stops at the first failure", plain)
    check(": > /etc/fstab" in plain and "rm -rf /etc/systemd/system/*.wants" in plain, "fstab, wants", plain)
    for u in vm.SYSTEMD_MASKED:
        check("ln -sf /dev/null /etc/systemd/system/%s\n" % u in plain, "masked: " + u)
    check("cat > /etc/systemd/system/vmtest.target <<'EOF'\n" + vm.VMTEST_TARGET + "EOF\n" in plain, "the target", plain)
    check("ExecStart=/bin/sh /run/dmabroker-vm/run-cmd" in plain, "the service runs run-cmd", plain)
    check("\nsystemd-sysusers\n" not in plain and "system.d/\n" not in plain and vm.LOADER_DIR not in plain,
          "no install, nothing of it", plain)
    inst = vm.systemd_setup(True, ["/usr/local/share/dbus-1/system.d/org.example.conf"],
                            ["/usr/local/lib/x86_64-linux-gnu/libexample.so.0"])
    check(inst.endswith("ln -sf /usr/local/share/dbus-1/system.d/org.example.conf /etc/dbus-1/system.d/\n"
                        "ln -sf /usr/local/lib/x86_64-linux-gnu/libexample.so.0 /usr/lib/x86_64-linux-gnu/\n"
                        "systemd-sysusers\n"), "policy and library linked, then sysusers", inst[-300:])
    check("\nldconfig\n" not in inst, "no ldconfig (15 s of scanning in TCG)", inst)
    r = subprocess.run([VM_RUN, "--install", "/nonexistent", "true"], capture_output=True, text=True)
    check(r.returncode == 2 and "--install needs --systemd" in r.stderr, "--install alone", r.returncode, r.stderr)


def test_missing_parts_fail_loudly():
    """no test kernel built, or no qemu: the run fails (125) and says what to do"""
    import tempfile
    with tempfile.TemporaryDirectory() as empty:
        r = subprocess.run([VM_RUN, "true"], capture_output=True, text=True,
                           env=dict(os.environ, DMABROKER_CACHE=empty))
        check(r.returncode == 125 and "not built" in r.stderr and "build-kernel.sh" in r.stderr,
              "unbuilt kernel", r.returncode, r.stderr)
        os.symlink(sys.executable, os.path.join(empty, "python3"))
        r = subprocess.run([sys.executable, VM_RUN, "true"], capture_output=True, text=True,
                           env=dict(os.environ, PATH=empty))
        check(r.returncode == 125 and "qemu-system-x86_64 is not installed" in r.stderr,
              "no qemu", r.returncode, r.stderr)


run([test_clean_log, test_lockdep, test_warning_trace, test_bug, test_initramfs, test_usage_errors,
     test_systemd_setup, test_missing_parts_fail_loudly])

#!/usr/bin/env python3
"""Tests of the test bed's runner (tests/vm/vm-run), each booting the VM:
exit status and output, the kernel-log check, the timeout, no qemu left
behind, and screendumps requested from inside the guest."""
import os
import re
import signal
import struct
import subprocess
import sys
import tempfile
import time
import zlib

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from taptest import run, check  # noqa: E402
from images import png_read  # noqa: E402

VM_RUN = sys.argv[1]
SHOW_PATTERN = sys.argv[2]
SCREENDUMP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "vm-screendump")


def vm(*args, timeout=300):
    return subprocess.run([VM_RUN, *args], capture_output=True, text=True, timeout=timeout)


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open("/proc/%d/stat" % pid) as f:
        return f.read().split(")")[1].split()[0] != "Z"


def qemu_pid(stderr):
    m = re.search(r"vm-run: qemu pid (\d+)", stderr)
    check(m, "no qemu pid in -v output", stderr)
    return int(m.group(1))


def test_status_and_output():
    """exit status, stdout, stderr, working directory and environment come back"""
    with tempfile.TemporaryDirectory() as d:
        os.chdir(d)
        r = vm("--env", "DMABROKER_TEST_VAR=hello world", "--", "sh", "-c",
               'echo out; echo err >&2; pwd; echo "$DMABROKER_TEST_VAR/$DMABROKER_VM";'
               'test -e /dev/dma_heap/system && test -e /dev/udmabuf && echo devices; exit 7')
        os.chdir("/")
    check(r.returncode == 7, "status %d" % r.returncode, r.stderr)
    check(r.stdout == "out\n%s\nhello world/1\ndevices\n" % d, "stdout", repr(r.stdout))
    check(r.stderr.strip() == "err", "stderr", repr(r.stderr))


def test_kernel_report_fails_run():
    """a WARNING in the guest's kernel log fails a command that passed, and is printed"""
    cmd = ["sh", "-c", 'echo "WARNING: injected by the vm-run test" > /dev/kmsg']
    r = vm("--", *cmd)
    check(r.returncode == 125, "status %d" % r.returncode, r.stderr)
    check("injected by the vm-run test" in r.stderr and "kernel report" in r.stderr, "not printed", r.stderr)
    with tempfile.NamedTemporaryFile("r") as f:
        r = vm("--allow-kernel-reports", "--dmesg", f.name, "--", *cmd)
        check(r.returncode == 0, "allowed: status %d" % r.returncode, r.stderr)
        log = f.read()
    check("injected by the vm-run test" in log and "Linux version" in log, "--dmesg", log[:2000])


def test_timeout_kills_vm():
    """a command that outlives --timeout is killed with the VM: status 124, no qemu left"""
    t0 = time.monotonic()
    r = vm("-v", "--timeout", "15", "--", "sleep", "600")
    took = time.monotonic() - t0
    check(r.returncode == 124 and "timed out" in r.stderr, "status %d" % r.returncode, r.stderr[-2000:])
    check(took < 60, "took %.0f s" % took)
    pid = qemu_pid(r.stderr)
    check(not alive(pid), "qemu %d still alive" % pid)


def test_killed_runner_leaves_no_qemu():
    """SIGKILL of vm-run takes qemu with it"""
    p = subprocess.Popen([VM_RUN, "-v", "--", "sleep", "600"], stderr=subprocess.PIPE, text=True)
    line = ""
    while "qemu pid" not in line:
        line = p.stderr.readline()
        check(line, "vm-run ended early")
    pid = qemu_pid(line)
    check(alive(pid), "qemu not running")
    p.kill()
    p.wait()
    deadline = time.monotonic() + 10
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    check(not alive(pid), "qemu %d survived its runner" % pid)


def test_screendump():
    """the guest asks for a screendump of each display and gets a PNG back"""
    with tempfile.TemporaryDirectory() as d:
        r = vm("--artifacts", d, "--", "sh", "-c",
               'set -e; for disp in virtio-gpu vga; do p=$(%s $disp $disp.png); test -s "$p"; echo "$p"; done;'
               '! %s nosuch x.png 2>err && cat err' % (SCREENDUMP, SCREENDUMP))
        check(r.returncode == 0, "status %d" % r.returncode, r.stdout, r.stderr)
        check("/run/dmabroker-vm/artifacts/virtio-gpu.png" in r.stdout, "guest path", r.stdout)
        check("unknown display 'nosuch'" in r.stdout, "bad display not refused", r.stdout)
        for disp in ("virtio-gpu", "vga"):
            w, h, _ = png_read(os.path.join(d, disp + ".png"))
            check(w >= 320 and h >= 200, "%s: %dx%d" % (disp, w, h))


BARS = [0xff0000, 0x00ff00, 0x0000ff, 0xffffff, 0x000000, 0x808080, 0x12345a, 0xa5c3e1]


def test_screendump_shows_scanout():
    """a screendump of virtio-gpu shows the scanned-out buffer pixel for pixel"""
    with tempfile.TemporaryDirectory() as d:
        r = vm("--artifacts", d, "--", SHOW_PATTERN, "virtio_gpu", SCREENDUMP, "virtio-gpu", "bars.png")
        check(r.returncode == 0, "status %d" % r.returncode, r.stdout, r.stderr)
        w, h, rows = png_read(os.path.join(d, "bars.png"))
    check(r.stdout.strip().endswith("%dx%d" % (w, h)), "size differs from the mode", r.stdout, (w, h))
    bad = 0
    for y in range(0, h, 7):
        row = rows[y]
        for x in range(w):
            want = BARS[x * 8 // w]
            got = (row[3 * x] << 16) | (row[3 * x + 1] << 8) | row[3 * x + 2]
            bad += got != want
    check(bad == 0, "%d pixels differ from the pattern" % bad)


run([test_status_and_output, test_kernel_report_fails_run, test_timeout_kills_vm,
     test_killed_runner_leaves_no_qemu, test_screendump, test_screendump_shows_scanout])

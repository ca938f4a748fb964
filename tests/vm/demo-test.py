#!/usr/bin/env python3
"""./run demo's pieces as a test: the demo in the test bed with fewer
frames (tools/demo/demo-guest.sh), then its report (tools/demo/report.py):
vivid shown on vkms and virtio-gpu at once, buffers placed on virtio-gpu,
both screenshots identical to the camera's last frame.

usage: demo-test.py VM_RUN PYTHON_IN_VM WITH_DAEMON DMABROKERD BUILD_DIR"""
import json
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from taptest import run, check  # noqa: E402

VM_RUN, PYTHON_VM, WITH_DAEMON, DAEMON, BUILD = sys.argv[1:6]
TOP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
FRAMES = 60
COMPOSITOR_FRAMES = 20  # the compositor part runs at 2-3 frames a second under TCG


def check_counts(report, frames):
    """The report's counts as the demo promises them: the camera captured every frame asked for, and each
    display showed at least one of them and no more than were captured (mailbox mode: a display may miss
    some, never show none). A "0 frames shown" line, or a missing one, fails."""
    m = re.search(r"^  camera: +(\d+) frames captured in [\d.]+ s", report, re.M)
    check(m and int(m.group(1)) == frames, "the camera captured %d frames" % frames, report)
    for name in ("vkms", "virtio-gpu"):
        m = re.search(r"^  %s: +(\d+) frames shown in [\d.]+ s \([\d.]+ fps\), (\d+) skipped$" % name, report, re.M)
        check(m, "%s: no summary line" % name, report)
        shown, skipped = int(m.group(1)), int(m.group(2))
        check(1 <= shown <= frames and shown + skipped <= frames,
              "%s showed %d frames (%d skipped) of the %d captured: at least one, at most all" % (
                  name, shown, skipped, frames), report)
        print("# %s: %d of %d frames shown, %d skipped" % (name, shown, frames, skipped))


def test_demo():
    """the demo: 60 frames on vkms and virtio-gpu, both screenshots identical to the camera's last frame; then 20 through dmabroker-gl into Weston, its screenshot holding the last as drawn"""
    with tempfile.TemporaryDirectory() as out:
        r = subprocess.run([VM_RUN, "--timeout", "300", "--artifacts", out, "--", PYTHON_VM, WITH_DAEMON, DAEMON,
                            "--", os.path.join(TOP, "tools", "demo", "demo-guest.sh"), BUILD, str(FRAMES),
                            str(COMPOSITOR_FRAMES)],
                           capture_output=True, text=True, timeout=360)
        check(r.returncode == 0, "the test bed run failed (%d)" % r.returncode, r.stdout[-3000:], r.stderr[-3000:])
        rep = subprocess.run([sys.executable, os.path.join(TOP, "tools", "demo", "report.py"), out],
                             capture_output=True, text=True, timeout=120)
        print("\n".join("# " + line for line in rep.stdout.splitlines()))
        check(rep.returncode == 0, "the report failed", rep.stdout, rep.stderr)
        check("placement:   5 buffers on drm:virtio_gpu" in rep.stdout, "placed on virtio-gpu", rep.stdout)
        check(len(re.findall(r"vs the camera's last frame \(640x480\): identical", rep.stdout)) == 2,
              "both screenshots identical", rep.stdout)
        check_counts(rep.stdout, FRAMES)
        check("SKIPPED" not in rep.stdout, "the compositor part ran (Weston, dmabroker-gl and -wayland built)",
              rep.stdout)
        check(re.search(r"Weston \(\d+x\d+\) vs the camera's last frame as drawn by the GL stage \(320x180\): "
                        r"found at \d+,\d+, identical", rep.stdout), "Weston's screenshot holds the GL stage's frame",
              rep.stdout)
        with open(os.path.join(out, "streams.json")) as f:
            streams = json.load(f)
        demo = [s for s in streams if s["name"] == "demo"]
        check(len(demo) == 1 and demo[0]["state"] == "ended" and demo[0]["produced"] == FRAMES
              and demo[0]["backend"] == "drm:virtio_gpu" and demo[0]["consumers"] == 2 and demo[0]["fourcc"] == "XR24"
              and 2 <= demo[0]["consumed"] and demo[0]["consumed"] + demo[0]["dropped"] <= 2 * FRAMES,
              "dmabrokerctl --json streams", streams)
        for name in ("camera-last.png", "vkms-writeback.png", "virtio-gpu.png"):
            check(os.path.getsize(os.path.join(out, name)) > 1000, name + " written")


run([test_demo])

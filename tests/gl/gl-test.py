#!/usr/bin/env python3
"""dmabroker-gl in the test bed (gl-pipeline; WORK IN PROGRESS): vivid
captured by dmabroker-camera, drawn by dmabroker-gl on vkms (Mesa's
kms_swrast, llvmpipe), shown by dmabroker-display on vkms and read by
check-consumer, which compares every frame with the transform of the
camera's copy of it (tests/gl/check-consumer.c). The last frame
on screen (the vkms writeback) equals the camera's last frame mirrored
left to right with the frame number drawn in its top row, computed here
on the CPU: exact (GL_NEAREST at texel centres), the X byte ignored.

usage: gl-test.py BUILD_DIR"""
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from taptest import run, check  # noqa: E402
import images  # noqa: E402

BUILD = sys.argv[1]
TOOLS = os.path.join(BUILD, "tools")
WORK = tempfile.mkdtemp(prefix="gl-test-")
FRAMES, W, H = int(os.environ.get("GL_TEST_FRAMES", "100")), 320, 180
STATE = {}


def expected(n):
    """the camera's frame n (DIR/frame-N.raw, XR24) mirrored, with counter n in the top row: (w, h, RGB rows)"""
    with open(os.path.join(WORK, "frames", "frame-%d.raw" % n), "rb") as f:
        head = f.readline().split()
        check(head[:2] == [b"DMBF", b"XR24"], "an XR24 frame", head)
        w, h = int(head[2]), int(head[3])
        data = f.read()
    rows = []
    for y in range(h):
        src = data[y * w * 4:(y + 1) * w * 4]
        px = [bytes((src[x * 4 + 2], src[x * 4 + 1], src[x * 4])) for x in range(w)]  # B G R X -> R G B
        px.reverse()
        if y < 8:
            for x in range(min(128, w)):
                px[x] = b"\xff\xff\xff" if (n >> (x // 8)) & 1 else b"\x00\x00\x00"
        rows.append(b"".join(px))
    return w, h, rows


def test_pipeline():
    """camera -> dmabroker-gl (vkms, native buffers) -> dmabroker-display (vkms) and check-consumer: every stage ends cleanly, every frame exactly the transform of the camera's"""
    os.makedirs(os.path.join(WORK, "frames"))
    wb = os.path.join(WORK, "screen.ppm")
    procs = {
        "camera": [os.path.join(TOOLS, "dmabroker-camera"), "--session", "-q", "-f", "XR24", "-W", str(W), "-H",
                   str(H), "-n", str(FRAMES), "-m", "fifo", "--save-frames", os.path.join(WORK, "frames")],
        "gl": [os.path.join(TOOLS, "gl", "dmabroker-gl"), "--session", "--device", "vkms", "-m", "fifo", "-c", "2"],
        "check": [os.path.join(BUILD, "tests", "gl", "check-consumer"), "--session", "--stream", "gl",
                  "--frames-dir", os.path.join(WORK, "frames")],
        "display": [os.path.join(TOOLS, "dmabroker-display"), "--session", "--device", "vkms", "--stream", "gl",
                    "--input", "none", "--exit-on-end", "--writeback", wb, "--wait", "120"],
    }
    p = {k: subprocess.Popen(v, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for k, v in procs.items()}
    out = {k: v.communicate(timeout=400)[0] for k, v in p.items()}
    for k in procs:
        print("# %s: %s" % (k, " | ".join(out[k].strip().splitlines()[-3:])))
        check(p[k].returncode == 0, k + " exits 0", out[k])
    STATE.update(out=out, wb=wb)
    check("on drm:vkms -> 'gl' on drm:vkms" in out["gl"], "both streams on vkms (native to kms_swrast)", out["gl"])
    check(re.search(r"gl: %d frames" % FRAMES, out["gl"]), "every frame drawn", out["gl"])
    check("check: %d frames, %d identical, 0 differ" % (FRAMES, FRAMES) in out["check"],
          "every frame the transform of the camera's, pixel for pixel", out["check"])


def test_last_frame():
    """the last frame on screen is the camera's last frame mirrored with its number drawn in, pixel for pixel"""
    screen = images.read(STATE["wb"])
    want = expected(FRAMES)
    bad = sum(1 for y in range(want[1]) if screen[2][y][:want[0] * 3] != want[2][y])
    print("# screen %dx%d; rows of the %dx%d frame at 0,0 that differ: %d" % (screen[0], screen[1], want[0], want[1],
                                                                           bad))
    if bad:
        images.png_write(os.path.join(os.environ.get("DMABROKER_VM_ARTIFACTS", WORK), "gl-expected.png"), *want)
        images.png_write(os.path.join(os.environ.get("DMABROKER_VM_ARTIFACTS", WORK), "gl-screen.png"), *screen)
    check(bad == 0, "the frame is exactly the transform of the camera's")


run([test_pipeline, test_last_frame])

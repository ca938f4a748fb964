#!/usr/bin/env python3
"""dmabroker-gl in the test bed (gl-pipeline): vivid
captured by dmabroker-camera, drawn by dmabroker-gl on vkms (Mesa's
kms_swrast, llvmpipe), shown by dmabroker-display on vkms and read by
check-consumer, which compares every frame with the transform of the
camera's copy of it (tests/gl/check-consumer.c). The last frame
on screen (the vkms writeback) equals the camera's last frame mirrored
left to right with the frame number drawn in its top row, computed here
on the CPU: exact (GL_NEAREST at texel centres), the X byte ignored.
The checker is shown to fail on frames that are not the transform (the
camera's own), a stage that cannot read the input's placement is refused
naming itself, and the stage killed mid-stream leaves the camera running,
a new stage able to join, and the daemon's fds and buffers at baseline.

usage: gl-test.py BUILD_DIR"""
import json
import os
import queue
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from taptest import run, check  # noqa: E402
import images  # noqa: E402

BUILD = sys.argv[1]
TOOLS = os.path.join(BUILD, "tools")
WORK = tempfile.mkdtemp(prefix="gl-test-")
FRAMES, W, H = int(os.environ.get("GL_TEST_FRAMES", "300")), 320, 180
CAMERA = [os.path.join(TOOLS, "dmabroker-camera"), "--session", "-f", "XR24", "-W", str(W), "-H", str(H)]
GL = [os.path.join(TOOLS, "gl", "dmabroker-gl"), "--session", "--device", "vkms"]
CHECK = [os.path.join(BUILD, "tests", "gl", "check-consumer"), "--session"]
CTL = [os.path.join(TOOLS, "dmabrokerctl"), "--session"]
DAEMON_FDS = "/proc/%s/fd" % os.environ["DMABROKER_PID"]
STATE = {"fds": len(os.listdir(DAEMON_FDS))}


def popen(argv):
    """argv started, its output (stdout and stderr) read line by line into a queue by a thread"""
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    p.lines = queue.Queue()
    p.seen = []

    def reader():
        for line in p.stdout:
            p.lines.put(line)
        p.lines.put(None)
    threading.Thread(target=reader, daemon=True).start()
    return p


def output(p):
    """all of p's output so far"""
    while True:
        try:
            line = p.lines.get_nowait()
        except queue.Empty:
            break
        if line is not None:
            p.seen.append(line)
    return "".join(p.seen)


def expect_line(p, pattern, timeout=120):
    """waits until a line of p's output matches pattern: the match"""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = p.lines.get(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:
            break
        if line is None:
            break
        p.seen.append(line)
        m = re.search(pattern, line)
        if m:
            return m
    check(False, "%s: no line matching %r within %d s" % (os.path.basename(p.args[0]), pattern, timeout), output(p))


def finish(p, timeout):
    """waits for p to exit: (status, its whole output)"""
    rc = p.wait(timeout)
    deadline = time.monotonic() + 10
    while (not p.seen or p.seen[-1] is not None) and time.monotonic() < deadline:
        try:
            p.seen.append(p.lines.get(timeout=1))
        except queue.Empty:
            pass
    if p.seen and p.seen[-1] is None:
        p.seen.pop()
    return rc, "".join(p.seen)


def expected(n):
    """the camera's frame n (DIR/frame-N.raw, XR24) as dmabroker-gl draws it: (w, h, RGB rows)"""
    with open(os.path.join(WORK, "frames", "frame-%d.raw" % n), "rb") as f:
        head = f.readline().split()
        check(head[:2] == [b"DMBF", b"XR24"], "an XR24 frame", head)
        w, h = int(head[2]), int(head[3])
        data = f.read()
    rows = [bytes(b for x in range(w) for b in (data[(y * w + x) * 4 + 2], data[(y * w + x) * 4 + 1],
                                                 data[(y * w + x) * 4])) for y in range(h)]  # B G R X -> R G B
    return images.gl_transform((w, h, rows), n)


def test_pipeline():
    """camera -> dmabroker-gl (vkms, native buffers) -> dmabroker-display (vkms) and check-consumer: every stage ends cleanly, every frame exactly the transform of the camera's"""
    os.makedirs(os.path.join(WORK, "frames"))
    wb = os.path.join(WORK, "screen.ppm")
    procs = {
        "camera": CAMERA + ["-q", "-n", str(FRAMES), "-m", "fifo", "--save-frames", os.path.join(WORK, "frames")],
        "gl": GL + ["-m", "fifo", "-c", "2"],
        "check": CHECK + ["--stream", "gl", "--frames-dir", os.path.join(WORK, "frames")],
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


def test_checker_and_refusal():
    """the checker fails on frames that are not the transform (the camera's own, on a heap); the GL stage joining that stream late is refused, naming itself, its device and the placement"""
    frames = os.path.join(WORK, "frames-raw")
    os.makedirs(frames)
    procs = []
    try:
        cam = popen(CAMERA + ["-r", "5", "-m", "mailbox", "-s", "raw", "--save-frames", frames])  # until SIGINT
        chk = popen(CHECK + ["--stream", "raw", "--frames-dir", frames])
        procs += [cam, chk]
        m = expect_line(cam, r"camera: \d+ buffers on (\S+)")
        print("# " + m.group(0))
        check(m.group(1).startswith("heap"), "a consumer with no device: the buffers on a heap", m.group(0))
        r = subprocess.run(GL + ["-i", "raw", "-o", "never"], capture_output=True, text=True, timeout=120)
        print("# dmabroker-gl: " + r.stderr.strip().splitlines()[-1] if r.stderr.strip() else "# (no message)")
        check(r.returncode == 1, "the GL stage exits 1", r.returncode, r.stdout, r.stderr)
        check(re.search(r"stream 'raw': .*gl:vkms.* uses vkms \(/dev/dri/card\d+\) and reads only buffers allocated "
                        r"on it \(native\), but the buffers are on heap", r.stderr),
              "the refusal names the stage, its device and the placement", r.stderr)
        time.sleep(2)
        cam.send_signal(signal.SIGINT)
        rc, out = finish(cam, 60)
        check(rc == 0, "the camera went on until stopped", out)
        rc, out = finish(chk, 60)
        m = re.search(r"check: (\d+) frames, (\d+) identical, (\d+) differ", out)
        print("# " + (m.group(0) if m else out.strip()))
        check(rc == 1 and m and int(m.group(1)) > 0 and int(m.group(2)) == 0,
              "the checker fails every frame that is not the transform", out)
    finally:  # a failed step leaves no process holding vivid for the next
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(30)


def at_baseline(what):
    deadline, fds = time.monotonic() + 20, None
    while time.monotonic() < deadline:
        fds = len(os.listdir(DAEMON_FDS))
        st = json.loads(subprocess.run(CTL + ["--json", "status"], capture_output=True, text=True, timeout=60).stdout)
        if fds == STATE["fds"] and st["buffers"] == 0:
            break
        time.sleep(0.5)
    print("# %s: daemon fds %d (baseline %d), buffers %d" % (what, fds, STATE["fds"], st["buffers"]))
    check(fds == STATE["fds"] and st["buffers"] == 0, what + ": the daemon's fds and buffers at baseline")


def test_gl_killed():
    """the GL stage killed mid-stream: the display is told the stream ended, the camera goes on, a new stage joins the camera's stream and renders, and afterwards the daemon's fds and buffers are at baseline"""
    procs = []
    try:
        cam = popen(CAMERA + ["-q", "-n", "150", "-m", "mailbox", "-s", "live"])
        gl = popen(GL + ["-i", "live", "-o", "gl-live"])
        disp = popen([os.path.join(TOOLS, "dmabroker-display"), "--session", "--device", "vkms", "--stream", "gl-live",
                      "--input", "none", "--exit-on-end", "--wait", "120"])
        procs += [cam, gl, disp]
        expect_line(gl, r"gl: 'live' .* -> 'gl-live'")
        time.sleep(3)
        gl.send_signal(signal.SIGKILL)
        gl.wait(30)
        rc, out = finish(disp, 60)
        print("# display: " + " | ".join(out.strip().splitlines()[-2:]))
        check(rc == 0 and re.search(r"ended|went away|gone", out), "the display says the stream ended", out)
        r = subprocess.run(GL + ["-i", "live", "-o", "gl-again", "-c", "0", "-n", "10"], capture_output=True, text=True,
                           timeout=180)
        print("# a new stage: " + r.stdout.strip().splitlines()[-1] if r.stdout.strip() else "# (no output)")
        check(r.returncode == 0 and "gl: 10 frames" in r.stdout, "a new stage joins the running stream and renders",
              r.stdout, r.stderr)
        rc, out = finish(cam, 180)
        check(rc == 0, "the camera goes on to its 150 frames", out)
    finally:  # a failed step leaves no process holding vivid or vkms
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(30)
    at_baseline("all gone")


run([test_pipeline, test_last_frame, test_checker_and_refusal, test_gl_killed])

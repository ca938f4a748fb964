#!/usr/bin/env python3
"""The demo clients end to end, inside the test bed, under a session-bus
dmabrokerd (tests/common/with-daemon.py): the three-stage pipeline with
every frame checked on screen, the keyboard controls through a uinput
keyboard and libinput, and the clients' errors.

usage: pipeline-test.py BUILD_DIR"""
import functools
import json
import os
import queue
import re
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from taptest import run, check  # noqa: E402

BUILD = sys.argv[1]
TOOLS = os.path.join(BUILD, "tools")
CAMERA = [os.path.join(TOOLS, "dmabroker-camera"), "--session"]
DISPLAY = [os.path.join(TOOLS, "dmabroker-display"), "--session", "--wait", "120"]
PROCESS = [os.path.join(TOOLS, "dmabroker-process"), "--session"]
CTL = os.path.join(TOOLS, "dmabrokerctl")
UINPUT_KEYS = os.path.join(BUILD, "tests", "vm", "uinput-keys")


RUNNING = []


class Proc:
    """A client whose output lines are collected as they come."""

    def __init__(self, argv, stdin=None):
        self.argv = argv
        self.p = subprocess.Popen(argv, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        RUNNING.append(self.p)
        self.lines, self.q = [], queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.p.stdout:
            self.q.put(line.rstrip("\n"))
        self.q.put(None)

    def expect(self, pattern, timeout=60):
        """Waits for a line matching pattern; returns the match."""
        deadline = time.monotonic() + timeout
        for line in self.lines:
            m = re.search(pattern, line)
            if m:
                return m
        while True:
            left = deadline - time.monotonic()
            check(left > 0, "%s: no line matching %r in %d s" % (self.argv[0], pattern, timeout), *self.lines)
            try:
                line = self.q.get(timeout=left)
            except queue.Empty:
                continue
            check(line is not None, "%s ended without a line matching %r" % (self.argv[0], pattern), *self.lines)
            self.lines.append(line)
            m = re.search(pattern, line)
            if m:
                return m

    def wait(self, timeout=120):
        rc = self.p.wait(timeout)
        while True:
            line = self.q.get(timeout=10)
            if line is None:
                break
            self.lines.append(line)
        return rc

    def output(self):
        """Every line so far, those not waited for yet included."""
        while True:
            try:
                line = self.q.get_nowait()
            except queue.Empty:
                break
            if line is None:
                self.q.put(None)  # the end, for wait()
                break
            self.lines.append(line)
        return "\n".join(self.lines)


def stream_counts(*names):
    """(produced, consumed) of each named stream, as the daemon counts them (ListStreams), or None if absent."""
    out = subprocess.run([CTL, "--session", "--json", "streams"], capture_output=True, text=True).stdout
    try:
        streams = {s["name"]: (s["produced"], s["consumed"]) for s in json.loads(out)}
    except ValueError:
        streams = {}
    return tuple(streams.get(n) for n in names)


def wait_progressing(proc, streams, stall, *others):
    """Waits for proc to end while the frames of streams keep moving: a slow machine only makes it longer;
    a stage that stalls (no frame produced or consumed in any of streams for stall seconds) fails,
    showing where each stage stood."""
    last, since = None, time.monotonic()
    while True:
        try:
            return proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
        now = stream_counts(*streams)
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since > stall:
            check(False, "no frame moved in %s for %d s (produced, consumed: %s)" % (", ".join(streams), stall, now),
                  *[x for o in (proc,) + others for x in (o.argv[0] + ":", o.output())])


def test_three_stages():
    """camera (YUYV) -> process (grey) -> vkms: 300 frames, each on screen its buffer and its camera frame's grey

    Each frame on screen (writeback) is compared with its buffer, and with the grey of the camera frame it came
    from (by sequence number), computed by the display."""
    with tempfile.TemporaryDirectory() as frames:
        three_stages(frames)


def three_stages(frames):
    # the camera keeps every frame it captured (frames/frame-N.raw); the display computes the grey of frame N
    # itself and compares the screen with it: a grey stage that computed anything else fails
    disp = Proc(DISPLAY + ["--device", "vkms", "--stream", "grey", "--verify", "--verify-grey-of", frames,
                           "--exit-on-end", "--input", "none"])
    proc = Proc(PROCESS + ["--input", "cam", "--output", "grey", "--mode", "fifo", "--consumers", "1", "--wait", "180"])
    cam = Proc(CAMERA + ["--stream", "cam", "--format", "YUYV", "--width", "320", "--height", "180",
                         "--mode", "fifo", "--consumers", "1", "--frames", "300", "--save-frames", frames])
    # vivid gives 5 frames a second here, fewer on a loaded machine: no fixed budget for the 300,
    # but none may stall for 60 s
    check(wait_progressing(cam, ("cam", "grey"), 60, proc, disp) == 0, "camera failed", cam.output())
    check(proc.wait(60) == 0, "process failed", proc.output())
    rc = disp.wait(60)
    print("# " + "\n# ".join(cam.lines[-2:] + proc.lines[-1:] + disp.lines[-4:]))
    check(rc == 0, "display failed", disp.output())
    check(re.search(r"camera: 300 frames", cam.output()), "camera count", cam.output())
    check(re.search(r"process: 300 frames in", proc.output()), "process count", proc.output())
    check(len([f for f in os.listdir(frames) if f.startswith("frame-")]) == 300, "the camera saved 300 frames")
    m = disp.expect(r"writeback check: (\d+) frames identical on screen, (\d+) differ")
    check(m.group(1) == "300" and m.group(2) == "0", "every frame identical on screen", disp.output())
    m = disp.expect(r"grey check: (\d+) frames on screen are the grey of their camera frame, (\d+) differ")
    check(m.group(1) == "300" and m.group(2) == "0", "every frame on screen the grey of its camera frame",
          disp.output())
    check(re.search(r"latency capture to flip: p50", disp.output()), "latency measured end to end", disp.output())


def test_late_consumer():
    """the process waits for its output's consumer however late it joins (it gave up after 200 ms)"""
    proc = Proc(PROCESS + ["--input", "late-in", "--output", "late-out", "--mode", "fifo", "--consumers", "1",
                           "--wait", "60"])
    cam = Proc(CAMERA + ["--stream", "late-in", "--format", "YUYV", "--width", "320", "--height", "180",
                         "--mode", "fifo", "--consumers", "1", "--frames", "30"])
    # the input is negotiated: the process has created its output and waits for a consumer
    deadline = time.monotonic() + 60
    while "late-out" not in subprocess.run([CTL, "--session", "streams"], capture_output=True, text=True).stdout:
        check(time.monotonic() < deadline and proc.p.poll() is None,
              "the process did not create its output stream", proc.output(), cam.output())
        time.sleep(0.5)
    time.sleep(3)
    check(proc.p.poll() is None, "the process gave up while its output waited for a consumer", proc.output())
    disp = Proc(DISPLAY + ["--device", "vkms", "--stream", "late-out", "--verify", "--exit-on-end",
                           "--input", "none"])
    check(cam.wait(120) == 0, "camera failed", cam.output())
    check(proc.wait(60) == 0, "process failed", proc.output())
    check(disp.wait(60) == 0, "display failed", disp.output())
    check(re.search(r"process: 30 frames in", proc.output()), "process count", proc.output())
    print("# " + "\n# ".join(proc.lines[-1:] + disp.lines[-1:]))


def test_master_held_briefly():
    """a display whose card another process holds for a moment (as DRM master) takes it once let go

    Two displays started together each look through every card for their own, and the first to open a card is
    its DRM master: the display that wanted it then could not commit (atomic commit: Permission denied)."""
    backends = json.loads(subprocess.run([CTL, "--session", "--json", "backends"], capture_output=True,
                                         text=True).stdout)
    dev = [b["device"] for b in backends if b["name"] == "drm:vkms"]
    check(dev, "vkms is in the backends", backends)
    holder = os.open(dev[0], os.O_RDWR)  # nobody is master: this open is
    try:
        cam = Proc(CAMERA + ["--stream", "held", "--format", "XR24", "--width", "640", "--height", "480",
                             "--consumers", "1", "--frames", "20"])
        disp = Proc(DISPLAY + ["--device", "vkms", "--stream", "held", "--exit-on-end", "--input", "none"])
        time.sleep(2)
        check(disp.p.poll() is None, "the display gave up while the card was held", disp.output())
    finally:
        os.close(holder)
    check(cam.wait(120) == 0, "camera failed", cam.output())
    check(disp.wait(60) == 0, "display failed", disp.output())
    m = disp.expect(r"(\d+) frames shown")
    check(int(m.group(1)) > 0, "frames were shown", disp.output())
    print("# " + m.group(0))


def test_keyboard():
    """a uinput keyboard, through libinput: space pauses, p resumes, Tab cycles outputs, q quits"""
    keys = Proc([UINPUT_KEYS], stdin=subprocess.PIPE)
    node = keys.expect(r"^/dev/input/event\d+$", 10).group(0)
    cam = Proc(CAMERA + ["--stream", "kb", "--format", "XR24", "--width", "640", "--height", "480",
                         "--consumers", "1"])
    disp = Proc(DISPLAY + ["--device", "virtio_gpu", "--stream", "kb", "--input", "auto"])
    try:
        disp.expect(r"display: 1 keyboard\(s\)", 20)
        disp.expect(r"output Virtual-\d+ 640x480: stream 'kb'", 30)
        time.sleep(2)

        def press(key, reply):
            keys.p.stdin.write(key + "\n")
            keys.p.stdin.flush()
            keys.expect("typed " + key, 10)
            return disp.expect(reply, 10)

        press("SPACE", r"^display: paused$")
        time.sleep(2)
        press("P", r"^display: resumed$")
        press("TAB", r"^display: output (Virtual-\d+) is the only connected one$|^display: output \S+ \(\d+x\d+\)$")
        time.sleep(1)
        press("Q", r"^display: quit$")
        check(disp.wait(20) == 0, "display exit status", disp.output())
        m = disp.expect(r"(\d+) frames shown in [\d.]+ s \([\d.]+ fps\), (\d+) skipped")
        print("# " + m.group(0))
        check(int(m.group(1)) > 0, "frames were shown")
        check(int(m.group(2)) > 0, "frames were skipped while paused")
    finally:
        cam.p.terminate()
        keys.p.stdin.close()
    check(cam.wait(20) == 0, "camera exit status", cam.output())
    check(keys.wait(10) == 0, "uinput-keys exit status", keys.output())


def test_negotiation_errors():
    """a display that cannot show the camera's format, and two devices that import nothing: clear errors"""
    disp = Proc(DISPLAY + ["--device", "vkms", "--stream", "yuv", "--input", "none"])
    cam = Proc(CAMERA + ["--stream", "yuv", "--format", "YUYV", "--width", "640", "--height", "480",
                         "--consumers", "1", "--frames", "10"])
    check(cam.wait(60) == 1 and disp.wait(60) == 1, "both fail", cam.output(), disp.output())
    for p in (cam, disp):
        check(re.search(r"NegotiationFailed|consumer 'display:vkms' \(client \d+\) accepts none of the producer's "
                        r"formats \(YUYV\)", p.output()), "the error names the display and the format", p.output())
    print("# " + cam.lines[-1])

    d1 = Proc(DISPLAY + ["--device", "virtio_gpu", "--stream", "two", "--input", "none"])
    d2 = Proc(DISPLAY + ["--device", "bochs-drm", "--stream", "two", "--input", "none"])
    cam = Proc(CAMERA + ["--stream", "two", "--format", "XR24", "--width", "640", "--height", "480",
                         "--consumers", "2", "--frames", "10"])
    check(cam.wait(60) == 1, "camera fails", cam.output())
    d1.wait(60)
    d2.wait(60)
    check(re.search(r"neither device imports foreign dma-bufs", cam.output()) and "display:virtio_gpu" in cam.output()
          and "display:bochs-drm" in cam.output(), "the error names both displays and why", cam.output())
    print("# " + cam.lines[-1])


def test_client_errors():
    """missing device, refused format, unknown output: each a clear message and exit status 1"""
    cam = Proc(CAMERA + ["--device", "/dev/video9", "--stream", "x"])
    check(cam.wait(20) == 1 and "/dev/video9: no such device" in cam.output(), "missing device", cam.output())
    cam = Proc(CAMERA + ["--format", "ZZZZ", "--stream", "x"])
    check(cam.wait(20) == 1 and re.search(r"refuses the format ZZZZ; it offers: .*YUYV", cam.output()),
          "refused format", cam.output())
    cam = Proc(CAMERA + ["--width", "123", "--height", "45", "--stream", "x"])
    check(cam.wait(20) == 1 and "refuses 123x45" in cam.output(), "refused size", cam.output())
    disp = Proc(DISPLAY + ["--device", "vkms", "--output", "HDMI-A-7", "--stream", "x", "--input", "none"])
    check(disp.wait(20) == 1 and "no connected output 'HDMI-A-7'" in disp.output(), "unknown output", disp.output())
    disp = Proc(DISPLAY + ["--frames", "0"])
    check(disp.wait(20) == 2 and "--frames" in disp.output(), "bad usage exits 2", disp.output())
    for line in (cam.lines[-1:] + disp.lines[-2:-1]):
        print("# " + line)


def reaped(test):
    """test, then every client it left running killed: a test that fails
    must not leave the camera streaming (vivid busy) or a display waiting
    for the next test's streams."""
    @functools.wraps(test)
    def run_and_reap():
        try:
            test()
        finally:
            while RUNNING:
                p = RUNNING.pop()
                if p.poll() is None:
                    p.kill()
                    p.wait()
    return run_and_reap


run([reaped(t) for t in (test_three_stages, test_late_consumer, test_master_held_briefly, test_keyboard,
                         test_negotiation_errors, test_client_errors)])

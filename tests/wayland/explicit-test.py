#!/usr/bin/env python3
"""A PROTOCOL TEST, against a stand-in: dmabroker-wayland's explicit-sync
and dmabuf-feedback paths, which no compositor in the test bed offers
(Weston 10 on llvmpipe has neither), exercised against mini-compositor, a
minimal compositor written for this test that shows nothing and logs what
each commit carried (tests/wayland/mini-compositor.c). fence-producer
queues each frame under a pending sw_sync fence and finishes writing it
before it signals (tests/wayland/fence-producer.c). In the test bed, under
a session-bus dmabrokerd.

Asserted: the client takes the main device from the version-4 feedback
(no --device) and gets its buffers there; it uses explicit sync when
offered, handing each frame's acquire fence to the compositor without
waiting for it itself; every commit's content is complete once the fence
signalled, every frame arrives in order (FIFO); the compositor's release
fences, fenced and immediate, go back to the producer, which gets fenced
ones still pending and waits for them.

usage: explicit-test.py BUILD_DIR"""
import glob
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from taptest import run, check  # noqa: E402

BUILD = sys.argv[1]
HERE = os.path.join(BUILD, "tests", "wayland")
WORK = tempfile.mkdtemp(prefix="explicit-test-")
SOCKET = "wayland-mini"
FRAMES = 12
STATE = {}


def colour_of(n):
    """fence-producer's colour of frame n, as 0xRRGGBB"""
    return ((n * 53) & 0xff) << 16 | ((n * 101) & 0xff) << 8 | ((n * 197) & 0xff)


def vkms_node():
    for dev in sorted(glob.glob("/sys/class/drm/card[0-9]*")):
        with open(os.path.join(dev, "device", "uevent")) as f:
            if "MODALIAS=platform:vkms\n" in f.read():
                return "/dev/dri/" + os.path.basename(dev)
    check(False, "the test bed has no vkms card")


def env():
    return dict(os.environ, XDG_RUNTIME_DIR=os.path.join(WORK, "xdg"), WAYLAND_DISPLAY=SOCKET)


def start(name, argv, **kw):
    out = open(os.path.join(WORK, name + ".out"), "w+")
    STATE[name] = (subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, text=True, **kw), out.name)
    return STATE[name][0]


def output(name):
    with open(STATE[name][1], errors="replace") as f:
        return f.read()


def test_run():
    """the producer's frames through dmabroker-wayland into mini-compositor: the client ends with the stream, status 0"""
    os.makedirs(os.path.join(WORK, "xdg"), mode=0o700)
    STATE["node"] = vkms_node()
    comp = start("compositor", [os.path.join(HERE, "mini-compositor"), "--socket", SOCKET, "--main-device",
                                STATE["node"]], env=env())
    deadline = time.monotonic() + 30
    while not os.path.exists(os.path.join(WORK, "xdg", SOCKET)) and time.monotonic() < deadline:
        time.sleep(0.1)
    check(comp.poll() is None, "mini-compositor runs", output("compositor"))
    prod = start("producer", [os.path.join(HERE, "fence-producer"), "--session", "--stream", "fenced", "--frames",
                              str(FRAMES), "--size", "320x180", "--delay-ms", "150"])
    wl = start("wayland", [os.path.join(BUILD, "tools", "wayland", "dmabroker-wayland"), "--session", "--stream",
                           "fenced", "--wait", "60", "--exit-on-end"], env=env())
    check(prod.wait(180) == 0, "the producer queued its frames", output("producer"))
    check(wl.wait(60) == 0, "the client ended with the stream, status 0", output("wayland"))
    comp.terminate()
    check(comp.wait(30) == 0, "mini-compositor stopped", output("compositor"))
    for name in ("producer", "wayland"):
        print("# " + output(name).strip().splitlines()[-1])


def test_feedback():
    """linux-dmabuf version 4: the main device comes from the compositor's feedback (no --device), and the buffers are allocated there (vkms has no render node: native)"""
    out = output("wayland")
    m = re.search(r"linux-dmabuf version (\d+), .* main device (\S+), explicit sync (\w+)", out)
    check(m, "the client's first line", out)
    print("# " + m.group(0))
    check(m.group(1) == "4" and m.group(2) == STATE["node"], "version 4, main device " + STATE["node"], m.group(0))
    check(re.search(r"stream 'fenced' 320x180 XR24, \d+ buffers on drm:vkms", out), "the buffers on vkms", out)


def test_explicit():
    """explicit sync: the acquire fences went to the compositor, still pending, and the client waited for none itself; each commit complete once its fence signalled, in order"""
    out, comp = output("wayland"), output("compositor")
    check(re.search(r"sync explicit, %d frames came with an acquire fence, 0 waited for on the CPU" % FRAMES, out),
          "explicit, %d fences handed on, none waited for" % FRAMES, out)
    commits = re.findall(r"commit \d+ buffer \d+ acquire (\w+) content 0x([0-9a-f]{6}) (\w+)", comp)
    states = [c[0] for c in commits]
    print("# %d commits; acquire fences: %d pending, %d signalled, %d none" %
          (len(commits), states.count("pending"), states.count("signalled"), states.count("none")))
    check(len(commits) == FRAMES, "one commit per frame (FIFO)", comp)
    check(states.count("none") == 0, "every commit carried an acquire fence", comp)
    check(states.count("pending") >= FRAMES // 2, "most still pending when committed", comp)
    check(all(c[2] == "complete" for c in commits), "every frame complete when read", comp)
    check([int(c[1], 16) for c in commits] == [colour_of(n) for n in range(1, FRAMES + 1)], "the frames in order",
          comp)


def test_release():
    """the compositor's releases, fenced and immediate, reached the producer: fenced ones still pending, waited for before the buffer was written again"""
    comp, prod = output("compositor"), output("producer")
    fenced, immediate = comp.count(" fenced\n"), comp.count(" immediate\n")
    m = re.search(r"(\d+) release fences, (\d+) of them pending", prod)
    check(m, "the producer's summary", prod)
    print("# compositor: %d fenced and %d immediate releases; producer: %s" % (fenced, immediate, m.group(0)))
    check(fenced >= 2 and immediate >= 2, "both kinds of release", comp)
    check(int(m.group(2)) >= 1, "a release fence reached the producer still pending", m.group(0))


def test_refused():
    """a compositor that refuses the buffers (zwp_linux_buffer_params_v1.failed; linear, the only modifier it listed): the client exits 1 saying so; the producer goes on to its last frame; no buffer left in the daemon"""
    sock = SOCKET + "-refusing"
    comp = start("refusing", [os.path.join(HERE, "mini-compositor"), "--socket", sock, "--main-device",
                              STATE["node"], "--refuse-buffers"], env=env())
    deadline = time.monotonic() + 30
    while not os.path.exists(os.path.join(WORK, "xdg", sock)) and time.monotonic() < deadline:
        time.sleep(0.1)
    check(comp.poll() is None, "mini-compositor runs", output("refusing"))
    wl = start("refused", [os.path.join(BUILD, "tools", "wayland", "dmabroker-wayland"), "--session", "--stream",
                           "refused", "--wait", "60", "--display", sock], env=env())
    prod = start("producer2", [os.path.join(HERE, "fence-producer"), "--session", "--stream", "refused", "--frames",
                               "6", "--size", "320x180", "--delay-ms", "20", "--mode", "mailbox"])
    check(wl.wait(60) == 1, "the client exits 1", output("refused"))
    out = output("refused")
    print("# " + out.strip().splitlines()[-1])
    check(re.search(r"the compositor refused the stream's buffers: 320x180 XR24, linear, 1 plane\(s\) on drm:vkms "
                    r"\(zwp_linux_buffer_params_v1.failed\)", out), "the message names what was refused", out)
    check(prod.wait(120) == 0, "the producer went on to its last frame", output("producer2"))
    comp.terminate()
    check(comp.wait(30) == 0, "mini-compositor stopped", output("refusing"))
    r = subprocess.run([os.path.join(BUILD, "tools", "dmabrokerctl"), "--session", "--json", "status"],
                       capture_output=True, text=True, timeout=60)
    check(r.returncode == 0 and json.loads(r.stdout)["buffers"] == 0, "no buffer left in the daemon", r.stdout)


def test_unplugged():
    """the output unplugged mid-stream (mini-compositor on SIGUSR1: the surface leaves it, the global goes, no frame callback comes): the client says so and gives every frame back unshown, so the FIFO producer goes on to its last frame; the client ends with the stream; no buffer left in the daemon"""
    sock = SOCKET + "-unplug"
    comp = start("unplug", [os.path.join(HERE, "mini-compositor"), "--socket", sock, "--main-device",
                            STATE["node"]], env=env())
    deadline = time.monotonic() + 30
    while not os.path.exists(os.path.join(WORK, "xdg", sock)) and time.monotonic() < deadline:
        time.sleep(0.1)
    check(comp.poll() is None, "mini-compositor runs", output("unplug"))
    wl = start("unplugged", [os.path.join(BUILD, "tools", "wayland", "dmabroker-wayland"), "--session", "--stream",
                             "unplug", "--wait", "60", "--display", sock, "--exit-on-end"], env=env())
    prod = start("producer3", [os.path.join(HERE, "fence-producer"), "--session", "--stream", "unplug", "--frames",
                               "30", "--size", "320x180", "--delay-ms", "30", "--mode", "fifo"])
    deadline = time.monotonic() + 60
    while output("unplug").count("commit ") < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    check(output("unplug").count("commit ") >= 3, "frames shown before the unplug", output("unplug"))
    comp.send_signal(signal.SIGUSR1)
    check(prod.wait(120) == 0, "the FIFO producer went on to its last frame", output("producer3"))
    check(wl.wait(60) == 0, "the client ended with the stream, status 0", output("unplugged"))
    out = output("unplugged")
    print("# " + out.strip().splitlines()[-1])
    check("the window is on no output" in out, "the client says the window is on no output", out)
    m = re.search(r"(\d+) frames shown, \d+ skipped \((\d+) of them given back unshown", out)
    check(m and int(m.group(2)) >= 10, "the frames after the unplug given back unshown", out)
    comp.terminate()
    check(comp.wait(30) == 0, "mini-compositor stopped", output("unplug"))
    r = subprocess.run([os.path.join(BUILD, "tools", "dmabrokerctl"), "--session", "--json", "status"],
                       capture_output=True, text=True, timeout=60)
    check(r.returncode == 0 and json.loads(r.stdout)["buffers"] == 0, "no buffer left in the daemon", r.stdout)


def cleanup():
    for p, _ in (v for k, v in STATE.items() if k != "node"):
        if p.poll() is None:
            p.kill()


try:
    run([test_run, test_feedback, test_explicit, test_release, test_refused, test_unplugged])
finally:
    cleanup()

#!/usr/bin/env python3
"""dmabroker demo report: reads what tools/demo/demo-guest.sh left in DIR,
compares the screenshots with the camera's last frame pixel for pixel,
writes PNGs of them, and prints frames, frame rates, latency percentiles
and drops; then the compositor part: Weston's screenshot searched for the
camera's last frame as dmabroker-gl draws it (mirrored, its number in the
top row), pixel for pixel.

usage: report.py DIR
Exit status: 0 when every client exited 0 and every screenshot holds the
frame it should (the compositor part may be skipped, saying why), 1
otherwise, 2 on bad usage."""
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "common"))
import images  # noqa: E402


def text(d, name):
    try:
        with open(os.path.join(d, name)) as f:
            return f.read()
    except OSError:
        return ""


def compositor(d):
    """the compositor part's report: True when it passed or was skipped (saying why)"""
    print("dmabroker demo, compositor: vivid --> camera --\"live\"--> dmabroker-gl on vkms --\"live-gl\"--> "
          "dmabroker-wayland in Weston on vkms")
    skipped = text(d, "compositor-skipped.txt").strip()
    if skipped:
        print("  SKIPPED:     " + skipped)
        return True
    camera, gl, wl = text(d, "live-camera.log"), text(d, "gl.log"), text(d, "wayland.log")
    m = re.search(r"camera: (\d+) frames in ([\d.]+) s \(([\d.]+) fps\)", camera)
    frames = int(m.group(1)) if m else -1
    print("  camera:      %s" % ("%s frames captured in %s s (%s fps)" % m.groups() if m else "no summary"))
    m = re.search(r"gl: '.*", gl)
    print("  gl:          %s" % (m.group(0) if m else "no stream line (see gl.log)"))
    m = re.search(r"gl: (\d+) frames, .*", gl)
    drawn = int(m.group(1)) if m else -2
    print("               %s" % (m.group(0) if m else "no summary (see gl.log)"))
    m = re.search(r"wayland: stream .*", wl)
    print("  wayland:     %s" % (m.group(0) if m else "no stream line (see wayland.log)"))
    m = re.search(r"wayland: \d+ frames shown.*", wl)
    print("               %s" % (m.group(0) if m else "no summary (see wayland.log)"))
    ok = drawn == frames
    if not ok:
        print("  FAILED:      the GL stage drew %d frames of the camera's %d" % (drawn, frames))
    try:
        want = images.gl_transform(images.read(os.path.join(d, "live-last.ppm")), frames)
        screen = images.read(os.path.join(d, "weston.png"))
    except (OSError, ValueError) as e:
        print("  FAILED:      %s" % e)
        return False
    images.png_write(os.path.join(d, "live-gl-expected.png"), *want)
    at = images.find(screen, want)
    print("  screenshot:  Weston (%dx%d) vs the camera's last frame as drawn by the GL stage (%dx%d): %s" % (
        screen[0], screen[1], want[0], want[1], "found at %d,%d, identical" % at if at else "NOT FOUND"))
    print("  files:       %s/{weston,live-gl-expected}.png, gl.log, wayland.log, weston.log" % d)
    return ok and at is not None


def main():
    if len(sys.argv) != 2 or sys.argv[1].startswith("-"):
        print(__doc__.strip().split("\n\n")[1], file=sys.stderr)
        return 2
    d = sys.argv[1]
    ok = True
    status = text(d, "status.txt")
    camera = text(d, "camera.log")
    print("dmabroker demo: vivid --V4L2 DMABUF--> camera --stream--> displays on vkms and virtio-gpu")
    m = re.search(r"camera: (\d+) buffers on (\S+)", camera)
    print("  placement:   %s" % ("%s buffers on %s" % m.groups() if m else "unknown (see camera.log)"))
    m = re.search(r"camera: (\d+) frames in ([\d.]+) s \(([\d.]+) fps\)", camera)
    print("  camera:      %s" % ("%s frames captured in %s s (%s fps)" % m.groups() if m else "no summary"))
    for name in ("vkms", "virtio-gpu"):
        log = text(d, "display-%s.log" % name)
        shown = re.search(r"(\d+) frames shown in ([\d.]+) s \(([\d.]+) fps\), (\d+) skipped", log)
        lat = re.search(r"latency capture to flip: p50 ([\d.]+) ms, p90 ([\d.]+) ms, p99 ([\d.]+) ms, max ([\d.]+) ms",
                        log)
        print("  %-12s %s" % (name + ":", "%s frames shown in %s s (%s fps), %s skipped" % shown.groups()
                               if shown else "no summary (see display-%s.log)" % name))
        if lat:
            print("               latency capture to flip: p50 %s ms, p90 %s ms, p99 %s ms, max %s ms" % lat.groups())
        for line in log.splitlines():
            if "error" in line:
                print("               " + line)
    streams = text(d, "streams.txt").split("# after the camera left")
    if len(streams) == 2:
        rows = [r.split() for r in streams[1].splitlines() if r.strip() and not r.startswith("  ID")]
        for r in rows:
            if len(r) >= 13 and r[1] == "demo":
                print("  stream:      %s mode, %s frames produced, %s consumed, %s dropped (frames a "
                      "display never got)" % (r[2], r[-3], r[-2], r[-1]))
    for line in status.splitlines():
        if not line.endswith(" 0"):
            ok = False
            print("  FAILED:      " + line)
    try:
        ref = images.read(os.path.join(d, "camera-last.ppm"))
    except (OSError, ValueError) as e:
        print("  FAILED:      no camera frame: %s" % e)
        return 1
    images.png_write(os.path.join(d, "camera-last.png"), *ref)
    for shot, what in (("vkms-writeback.ppm", "vkms writeback"), ("virtio-gpu.png", "virtio-gpu screendump")):
        try:
            img = images.read(os.path.join(d, shot))
        except (OSError, ValueError) as e:
            print("  FAILED:      %s: %s" % (what, e))
            ok = False
            continue
        if shot.endswith(".ppm"):
            images.png_write(os.path.join(d, shot[:-4] + ".png"), *img)
        bad = images.differing_pixels(ref, img)
        same_size = img[:2] == ref[:2]
        verdict = "identical" if same_size and bad == 0 else "DIFFERENT (%d pixels%s)" % (
            bad, "" if same_size else ", %dx%d vs %dx%d" % (img[0], img[1], ref[0], ref[1]))
        print("  screenshot:  %-22s vs the camera's last frame (%dx%d): %s" % (what, ref[0], ref[1], verdict))
        ok &= same_size and bad == 0
    print("  files:       %s/{camera-last,vkms-writeback,virtio-gpu}.png, *.log, streams.txt" % d)
    ok &= compositor(d)
    print("demo %s" % ("passed" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""gst-test.py PLUGIN-DIR inspect|roundtrip|errors

The GStreamer elements (gst/) driven by gst-launch-1.0 and gst-inspect-1.0,
with GST_PLUGIN_PATH at the build's plugin and a registry of its own. The
roundtrip and errors parts run against a dmabrokerd on a private session bus
(tests/common/with-daemon.py; the shm backend on the host):

  inspect    both elements listed; every property documented (a blurb)
  roundtrip  videotestsrc ! dmabrokersink -> dmabrokersrc ! filesink, the
             file byte-identical to videotestsrc ! filesink of the same
             caps, for BGRx, NV12 and YUY2, at 320x180 and at 328x184
             (where the stream's 64-byte stride needs padding and
             GStreamer's does not); NV12 at 322x182 (both padded: the
             visible bytes compared); and dmabrokersrc ! videoconvert (which
             reads GstVideoMeta) pushed every frame without a copy; the
             producer's pipeline killed mid-stream: the consumer's ends (EOS);
             the consumer's killed: the producer's goes on to its end
  errors     a stream that never appears, a format the producer does not
             make (the daemon's refusal in the error), bad property values
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from taptest import run, check  # noqa: E402
from busfixture import REPORT  # noqa: E402

PLUGIN_DIR, PART = sys.argv[1], sys.argv[2]
TMP = tempfile.mkdtemp(prefix="dmabroker-gst.")
FRAMES = 12
# gst-launch's own limit: a hang fails the step, it does not stall the suite
LAUNCH_TIMEOUT = 60


def gst_env():
    env = dict(os.environ, GST_PLUGIN_PATH=PLUGIN_DIR, GST_REGISTRY=os.path.join(TMP, "registry.bin"),
               GST_DEBUG="dmabrokersink:4,dmabrokersrc:4", GST_DEBUG_NO_COLOR="1")
    plugin = os.path.join(PLUGIN_DIR, "libgstdmabroker.so")
    with open(plugin, "rb") as f:
        asan = b"__asan_init" in f.read()
    if asan:
        # the ASan build's plugin in an uninstrumented gst-launch-1.0: its runtime must come first
        lib = subprocess.run(["cc", "-print-file-name=libasan.so"], capture_output=True, text=True).stdout.strip()
        env["LD_PRELOAD"] = lib
    return env


def launch(pipeline, wait=True):
    cmd = ["gst-launch-1.0", "-q"] + pipeline.split()
    p = subprocess.Popen(cmd, env=gst_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return finish(p) if wait else p


def finish(p):
    try:
        out, err = p.communicate(timeout=LAUNCH_TIMEOUT)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        raise AssertionError("%s did not end in %d s:\n%s%s" % (" ".join(p.args), LAUNCH_TIMEOUT, out, err))
    # the ASan build's plugin: a memory error, undefined behaviour or a leak fails whatever the status
    m = REPORT.search(out + err)
    check(not m, "%s: a sanitizer's report: %r" % (" ".join(p.args), m and m.group(0)), out + err)
    return p.returncode, out + err


def stopped(log, element):
    """(frames, copies) from an element's 'stopped:' debug line"""
    m = re.search(r"<%s\d+> stopped: (\d+) frames \w+, (\d+) of them copied" % element, log)
    check(m, "no 'stopped:' line of %s in its log" % element, log)
    return int(m.group(1)), int(m.group(2))


# ---- inspect ----

def test_plugin_lists_both():
    """gst-inspect-1.0 dmabroker lists dmabrokersink and dmabrokersrc"""
    rc, out = launch_inspect("dmabroker")
    check(rc == 0, "gst-inspect-1.0 dmabroker: status %d" % rc, out)
    for e in ("dmabrokersink", "dmabrokersrc"):
        check(re.search(r"^\s+%s: " % e, out, re.M), "%s not listed" % e, out)
    check("2 elements" in out, "not 2 elements", out)


def launch_inspect(what):
    p = subprocess.run(["gst-inspect-1.0", what], env=gst_env(), capture_output=True, text=True,
                       timeout=LAUNCH_TIMEOUT)
    return p.returncode, p.stdout + p.stderr


def properties(out):
    """{name: blurb} of an element's gst-inspect-1.0 page"""
    section = out.split("Element Properties:", 1)[1]
    return dict(re.findall(r"^  (\S+)\s+: (.*)$", section, re.M))


def inspect_element(element, ours):
    rc, out = launch_inspect(element)
    check(rc == 0, "gst-inspect-1.0 %s: status %d" % (element, rc), out)
    props = properties(out)
    for name in ours:
        check(name in props, "%s has no property %s" % (element, name), out)
    for name, blurb in props.items():
        check(blurb.strip() and blurb.strip() != "(null)", "%s.%s has no blurb" % (element, name))
    return props


def test_sink_properties():
    """dmabrokersink: stream, mode, buffers, consumers, session, frames, copies, each with a blurb"""
    inspect_element("dmabrokersink", ["stream", "mode", "buffers", "consumers", "session", "frames", "copies"])


def test_src_properties():
    """dmabrokersrc: stream, session, wait, num-buffers, frames, copies, each with a blurb"""
    inspect_element("dmabrokersrc", ["stream", "session", "wait", "num-buffers", "frames", "copies"])


# ---- roundtrip ----

def source(fmt, w, h):
    return "videotestsrc num-buffers=%d pattern=smpte ! video/x-raw,format=%s,width=%d,height=%d" % (FRAMES, fmt, w, h)


def roundtrip(fmt, w, h, stream, consumer_tail, reference_tail):
    """the producer and consumer pipelines; returns (consumer's file, reference file, producer log, consumer log)"""
    out, ref = os.path.join(TMP, stream + ".raw"), os.path.join(TMP, stream + ".ref")
    # the consumer first: it waits for the stream to appear
    consumer = launch("dmabrokersrc stream=%s session=true wait=30 ! %s location=%s" % (stream, consumer_tail, out),
                      wait=False)
    prc, plog = launch("%s ! dmabrokersink stream=%s session=true mode=fifo" % (source(fmt, w, h), stream))
    crc, clog = finish(consumer)
    check(prc == 0, "producer: status %d" % prc, plog)
    check(crc == 0, "consumer: status %d" % crc, clog)
    rrc, rlog = launch("%s ! %s location=%s" % (source(fmt, w, h), reference_tail, ref))
    check(rrc == 0, "reference: status %d" % rrc, rlog)
    return out, ref, plog, clog


def same_files(out, ref, frame_size):
    a, b = open(out, "rb").read(), open(ref, "rb").read()
    check(len(b) == FRAMES * frame_size, "the reference has %d bytes, not %d frames of %d" % (len(b), FRAMES, frame_size))
    check(len(a) == len(b), "the consumer wrote %d bytes, the reference %d" % (len(a), len(b)))
    for i in range(FRAMES):
        fa, fb = a[i * frame_size:(i + 1) * frame_size], b[i * frame_size:(i + 1) * frame_size]
        if fa != fb:
            first = next(k for k in range(frame_size) if fa[k] != fb[k])
            raise AssertionError("frame %d differs from byte %d on (%d bytes differ)" %
                                 (i, first, sum(1 for k in range(frame_size) if fa[k] != fb[k])))


FRAME_SIZE = {"BGRx": lambda w, h: w * h * 4, "YUY2": lambda w, h: w * h * 2,
              "NV12": lambda w, h: w * h + w * (h // 2), "I420": lambda w, h: w * h + 2 * (w // 2) * (h // 2)}


def identical_test(fmt, w, h):
    def t():
        stream = "rt-%s-%dx%d" % (fmt.lower(), w, h)
        out, ref, plog, clog = roundtrip(fmt, w, h, stream, "video/x-raw,format=%s ! filesink" % fmt, "filesink")
        same_files(out, ref, FRAME_SIZE[fmt](w, h))
        check(stopped(plog, "dmabrokersink") == (FRAMES, FRAMES), "the sink did not queue and copy %d frames" % FRAMES,
              plog)
        # filesink reads no GstVideoMeta: the source copies exactly when the stream's layout is not GStreamer's
        copies = 0 if w % 64 == 0 else FRAMES
        check(stopped(clog, "dmabrokersrc") == (FRAMES, copies),
              "the source did not push %d frames, %d of them copied" % (FRAMES, copies), clog)
    t.__doc__ = ("%s %dx%d: %d frames through a stream byte-identical to videotestsrc's, %s" %
                 (fmt, w, h, FRAMES, "none copied by the source" if w % 64 == 0 else
                  "each copied by the source into GStreamer's layout"))
    return t


def nv12_visible(data, w, h):
    """the visible bytes of NV12 frames in GStreamer's layout: rows of 4-byte aligned strides, their padding dropped"""
    stride, rows = (w + 3) // 4 * 4, (h + 1) // 2 * 2
    frame = stride * rows + stride * rows // 2
    out = bytearray()
    for f in range(len(data) // frame):
        base = f * frame
        for y in range(h):
            out += data[base + y * stride:base + y * stride + w]
        for y in range((h + 1) // 2):
            row = base + stride * rows + y * stride
            out += data[row:row + (w + 1) // 2 * 2]
    return len(data) // frame, len(data) % frame, bytes(out)


def test_padded_both_sides():
    """NV12 322x182: GStreamer's rows padded to 324, the stream's to 384: every frame's visible bytes identical"""
    w, h = 322, 182
    out, ref, plog, clog = roundtrip("NV12", w, h, "padded", "video/x-raw,format=NV12 ! filesink", "filesink")
    # the padding bytes of GStreamer's own layout are whatever the allocation held: not compared
    n_out, rest_out, a = nv12_visible(open(out, "rb").read(), w, h)
    n_ref, rest_ref, b = nv12_visible(open(ref, "rb").read(), w, h)
    check(n_ref == FRAMES and rest_ref == 0, "the reference holds %d frames and %d bytes more" % (n_ref, rest_ref))
    check(n_out == FRAMES and rest_out == 0, "the consumer wrote %d frames and %d bytes more" % (n_out, rest_out))
    if a != b:
        raise AssertionError("the visible bytes differ from byte %d on" % next(k for k in range(len(a)) if a[k] != b[k]))
    check(stopped(clog, "dmabrokersrc") == (FRAMES, FRAMES), "the source did not copy every frame", clog)


def test_zero_copy_downstream():
    """NV12 328x184 -> dmabrokersrc ! videoconvert (reads GstVideoMeta) ! I420: identical, no frame copied"""
    fmt, w, h = "NV12", 328, 184
    conv = "videoconvert ! video/x-raw,format=I420 ! filesink"
    out, ref, plog, clog = roundtrip(fmt, w, h, "zero-copy", conv, conv)
    same_files(out, ref, FRAME_SIZE["I420"](w, h))
    check("downstream reads GstVideoMeta" in clog, "videoconvert did not announce GstVideoMeta", clog)
    check(stopped(clog, "dmabrokersrc") == (FRAMES, 0), "the source copied frames", clog)


def wait_for_size(path, size):
    """until the consumer's file holds size bytes (at most LAUNCH_TIMEOUT)"""
    deadline = time.monotonic() + LAUNCH_TIMEOUT
    while time.monotonic() < deadline and (not os.path.exists(path) or os.path.getsize(path) < size):
        time.sleep(0.1)


def test_producer_killed():
    """the producer pipeline SIGKILLed mid-stream: the consumer's pipeline ends (EOS, status 0), whole frames written"""
    w, h = 320, 180
    size = w * h * 4
    out, ref = os.path.join(TMP, "killed.raw"), os.path.join(TMP, "killed.ref")
    consumer = launch("dmabrokersrc stream=killed session=true wait=30 ! video/x-raw,format=BGRx ! filesink "
                      "location=%s buffer-mode=unbuffered" % out, wait=False)
    producer = launch("videotestsrc is-live=true pattern=smpte ! video/x-raw,format=BGRx,width=%d,height=%d,"
                      "framerate=30/1 ! dmabrokersink stream=killed session=true" % (w, h), wait=False)
    wait_for_size(out, 5 * size)
    producer.kill()
    finish(producer)
    crc, clog = finish(consumer)
    check(crc == 0, "the consumer: status %d, not an EOS" % crc, clog)
    check("the stream ended" in clog, "the consumer did not say the stream ended", clog)
    data = open(out, "rb").read()
    check(len(data) >= 5 * size and len(data) % size == 0, "the consumer wrote %d bytes: not 5 or more whole frames"
          % len(data))
    n = len(data) // size
    rc, log = launch("videotestsrc num-buffers=%d pattern=smpte ! video/x-raw,format=BGRx,width=%d,height=%d ! "
                     "filesink location=%s" % (n, w, h, ref))
    check(rc == 0, "reference: status %d" % rc, log)
    # FIFO: no frame dropped, so frame i is videotestsrc's frame i
    check(data == open(ref, "rb").read(), "the %d frames differ from videotestsrc's first %d" % (n, n))


def test_consumer_killed():
    """the consumer pipeline SIGKILLed mid-stream: the producer's goes on to its last frame and ends (status 0)"""
    w, h = 320, 180
    out = os.path.join(TMP, "gone.raw")
    consumer = launch("dmabrokersrc stream=gone session=true wait=30 ! video/x-raw,format=BGRx ! filesink "
                      "location=%s buffer-mode=unbuffered" % out, wait=False)
    producer = launch("videotestsrc num-buffers=60 pattern=smpte ! video/x-raw,format=BGRx,width=%d,height=%d,"
                      "framerate=30/1 ! dmabrokersink stream=gone session=true" % (w, h), wait=False)
    wait_for_size(out, 5 * w * h * 4)
    consumer.kill()
    finish(consumer)
    prc, plog = finish(producer)
    check(prc == 0, "the producer: status %d" % prc, plog)
    check(stopped(plog, "dmabrokersink")[0] == 60, "the producer did not queue its 60 frames", plog)


# ---- errors ----

def test_stream_never_appears():
    """dmabrokersrc wait=1 on a stream nobody creates: an error naming the stream, after about 1 s"""
    t0 = time.monotonic()
    rc, log = launch("dmabrokersrc stream=nobody-makes-this session=true wait=1 ! fakesink")
    took = time.monotonic() - t0
    check(rc != 0, "gst-launch-1.0 succeeded", log)
    check(1 <= took < 20, "it ended after %.1f s, not after its 1 s wait" % took)
    check("stream 'nobody-makes-this' did not appear within 1 s" in log, "no error naming the stream", log)


def test_format_refused():
    """a consumer that takes only BGRx from an NV12 producer: the daemon's refusal is the error"""
    consumer = launch("dmabrokersrc stream=refused session=true wait=30 ! video/x-raw,format=BGRx ! fakesink",
                      wait=False)
    producer = launch("%s ! dmabrokersink stream=refused session=true" % source("NV12", 64, 64), wait=False)
    crc, clog = finish(consumer)
    prc, plog = finish(producer)
    check(crc != 0, "the consumer succeeded", clog)
    check(prc != 0, "the producer succeeded", plog)
    for log in (clog, plog):
        m = re.search(r"ERROR: from element .*: stream 'refused': (.*)", log)
        check(m, "no error naming stream 'refused'", log)
        print("# " + m.group(0))
        check("NV12" in m.group(1) and ("XRGB8888" in m.group(1) or "XR24" in m.group(1)),
              "the error does not say which format was refused", m.group(0))


def test_bad_mode():
    """mode=bogus is refused by gst-launch-1.0"""
    rc, log = launch("videotestsrc num-buffers=1 ! dmabrokersink mode=bogus session=true")
    check(rc != 0 and 'could not set property "mode"' in log, "mode=bogus was taken", log)


def test_out_of_range():
    """buffers=17 (1 to 16), consumers=17 (0 to 16), wait=86401 (0 to 86400): each refused by name"""
    # a bad stream name ends each pipeline at its start: GObject only warns and keeps the default
    for element, prop in (("dmabrokersink", "buffers=17"), ("dmabrokersink", "consumers=17"),
                          ("dmabrokersrc", "wait=86401")):
        pipeline = "%s %s session=true stream=bad/name" % (element, prop)
        if element == "dmabrokersink":
            pipeline = "videotestsrc num-buffers=1 ! " + pipeline
        else:
            pipeline += " ! fakesink"
        rc, log = launch(pipeline)
        name, value = prop.split("=")
        check('value "%s" of type \'guint\' is invalid or out of range for property \'%s\'' % (value, name) in log,
              "%s was not refused" % prop, log)


def test_bad_stream_name():
    """stream names outside the daemon's rule fail the start, naming the name and the rule"""
    for element in ("videotestsrc num-buffers=1 ! dmabrokersink", "dmabrokersrc wait=0"):
        tail = "" if "sink" in element else " ! fakesink"
        rc, log = launch("%s stream=bad/name session=true%s" % (element, tail))
        check(rc != 0, "%s stream=bad/name: status 0" % element, log)
        check("stream name 'bad/name' is not valid: 1 to 63 of A-Z a-z 0-9 - _ ." in log, "no error naming it", log)


PARTS = {
    "inspect": [test_plugin_lists_both, test_sink_properties, test_src_properties],
    "roundtrip": [identical_test(f, w, h) for (w, h) in ((320, 180), (328, 184)) for f in ("BGRx", "NV12", "YUY2")]
    + [test_padded_both_sides, test_zero_copy_downstream, test_producer_killed,
       test_consumer_killed],
    "errors": [test_stream_never_appears, test_format_refused, test_bad_mode, test_out_of_range, test_bad_stream_name],
}

def build_registry():
    """GStreamer's registry written once, before the tests: building it leaks
    16 KiB inside GLib (LeakSanitizer says so, with no plugin of ours in the
    pipeline), not the plugin's to answer for"""
    env = gst_env()
    env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":detect_leaks=0"
    subprocess.run(["gst-inspect-1.0", "fakesink"], env=env, capture_output=True, timeout=LAUNCH_TIMEOUT)


if __name__ == "__main__":
    try:
        build_registry()
        run(PARTS[PART])
    finally:
        shutil.rmtree(TMP, ignore_errors=True)

#!/usr/bin/env python3
"""The running daemon's introspection matches protocol/*.xml exactly (methods,
arguments with names, types and directions, properties, signals), and every
error the code can send is documented there."""
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from taptest import run, check  # noqa: E402
from busfixture import PrivateBus, Daemon  # noqa: E402

EXE, PROTOCOL_DIR, ERRORS_H = sys.argv[1], sys.argv[2], sys.argv[3]
IFACE = "org.dmabroker.Broker1"
XML = os.path.join(PROTOCOL_DIR, IFACE + ".xml")


def shape(root):
    """Interface name -> a comparable description of its members."""
    out = {}
    for iface in root.iter("interface"):
        name = iface.get("name")
        if name.startswith("org.freedesktop.DBus."):
            continue
        members = {}
        for m in iface.findall("method"):
            members["method " + m.get("name")] = [(a.get("name"), a.get("type"), a.get("direction", "in"))
                                                 for a in m.findall("arg")]
        for s in iface.findall("signal"):
            members["signal " + s.get("name")] = [(a.get("name"), a.get("type")) for a in s.findall("arg")]
        for p in iface.findall("property"):
            members["property " + p.get("name")] = [(p.get("type"), p.get("access"))]
        out[name] = members
    return out


def live_introspection():
    bus = PrivateBus()
    d = Daemon(EXE, bus)
    try:
        check(d.ready, "daemon not ready", d.log())
        r = subprocess.run(["dbus-send", "--print-reply=literal", "--dest=" + IFACE, "/org/dmabroker/Broker1",
                            "org.freedesktop.DBus.Introspectable.Introspect"],
                           env=bus.env(), capture_output=True, text=True, timeout=60)
        check(r.returncode == 0, "Introspect failed", r.stderr)
        d.close()  # stops it and fails unless it exits cleanly (status 0, no valgrind or sanitizer report)
        return r.stdout.strip()
    finally:
        d.close()
        bus.close()


def test_no_drift():
    """the daemon serves exactly the interface described in the XML"""
    want = shape(ET.parse(XML).getroot())
    got = shape(ET.fromstring(live_introspection()))
    check(IFACE in want and IFACE in got, "interface missing", sorted(want), sorted(got))
    w, g = want[IFACE], got[IFACE]
    diffs = []
    for k in sorted(set(w) | set(g)):
        if w.get(k) != g.get(k):
            diffs.append("%s:\n  xml:    %s\n  daemon: %s" % (k, w.get(k), g.get(k)))
    check(not diffs, "protocol drift:\n" + "\n".join(diffs))


def test_errors_documented():
    """every org.dmabroker.Error.* the code defines is documented in the XML, and no other"""
    with open(ERRORS_H) as f:
        code = set(re.findall(r'DMABROKER_ERROR\("(\w+)"\)', f.read()))
    with open(XML) as f:
        text = f.read()
    header = text.split("Errors (org.dmabroker.Error.*)")[1].split("-->")[0]
    documented = set(re.findall(r"^\s{4}(\w+)\s{2,}", header, re.M))
    check(code, "no error names found in " + ERRORS_H)
    check(code == documented, "undocumented: %s; documented but unknown: %s"
          % (sorted(code - documented), sorted(documented - code)))


def test_members_documented():
    """every method and property in the XML has a comment before it"""
    root_text = open(XML).read()
    for kind, name in re.findall(r'<(method|property) name="(\w+)"', root_text):
        before = root_text.split('<%s name="%s"' % (kind, name))[0].rstrip()
        check(before.endswith("-->"), "%s %s has no documentation comment" % (kind, name))


run([test_no_drift, test_errors_documented, test_members_documented])

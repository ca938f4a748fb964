#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""
layering-test: the daemon's tree keeps its layers apart (README "Layout").

- The core (daemon/core/) includes no transport's header and names no
  sd-bus type or function: it answers through core/transport.h only, so no
  call goes from the core into a transport.
- The backends (daemon/backends/) and the service files (daemon/service/)
  know neither the core's transports nor sd-bus.
- A transport (daemon/bus/, daemon/channel/) does not include the other
  one's internal header: a request goes door -> core -> door.
- The shared protocol headers (protocol/) and common/ know no daemon part.

A finding names the file, the line and the rule. The check must see each
folder it judges (an empty folder fails: the tree moved under the test).
"""
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from taptest import check, run  # noqa: E402

ROOT = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", ".."))
INCLUDE = re.compile(r'^\s*#\s*include\s*[<"]([^">]+)[">]')
SD_BUS = re.compile(r"\bsd_bus\w*|\bSD_BUS_\w+")

TRANSPORT_HEADERS = {"systemd/sd-bus.h", "bus.h", "bus-internal.h", "channel.h", "errors-sdbus.h",
                     "access-wire.h"}


def sources(folder):
    path = os.path.join(ROOT, folder)
    files = sorted(os.path.join(path, f) for f in os.listdir(path) if f.endswith((".c", ".h")))
    check(files, "no sources in %s" % folder)
    return files


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def findings(folder, forbidden_headers, forbid_sd_bus):
    out = []
    for path in sources(folder):
        code = strip_comments(open(path).read())
        for n, line in enumerate(code.split("\n"), 1):
            m = INCLUDE.match(line)
            if m and m.group(1) in forbidden_headers:
                out.append("%s:%d includes %s" % (os.path.relpath(path, ROOT), n, m.group(1)))
            if forbid_sd_bus and not m and SD_BUS.search(line):
                out.append("%s:%d names %s" % (os.path.relpath(path, ROOT), n, SD_BUS.search(line).group(0)))
    return out


def test_core():
    """the core includes no transport header and names nothing of sd-bus"""
    bad = findings("daemon/core", TRANSPORT_HEADERS, True)
    check(not bad, "the core reaches into a transport:\n  " + "\n  ".join(bad))


def test_backends_service():
    """the backends and the service files know no transport"""
    bad = findings("daemon/backends", TRANSPORT_HEADERS, True) + findings("daemon/service", TRANSPORT_HEADERS, True)
    check(not bad, "\n  ".join(bad))


def test_doors():
    """the two doors do not include each other's internals"""
    bad = findings("daemon/channel", {"bus.h", "bus-internal.h", "errors-sdbus.h", "systemd/sd-bus.h"}, True)
    bad += findings("daemon/bus", {"access-wire.h"}, False)
    check(not bad, "\n  ".join(bad))


def test_shared():
    """protocol/ and common/ know no daemon part"""
    daemon_headers = {os.path.basename(f) for d in ("core", "bus", "channel", "backends", "service")
                      for f in sources("daemon/" + d) if f.endswith(".h")}
    bad = findings("protocol", daemon_headers, False) + findings("common", daemon_headers, False)
    check(not bad, "\n  ".join(bad))


run([test_core, test_backends_service, test_doors, test_shared])

#!/usr/bin/env python3
"""libdmabroker exports exactly the functions its public header declares:
nothing private leaks (hidden visibility + version script), nothing
declared is missing."""
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from taptest import run, check  # noqa: E402

LIB, HEADER = sys.argv[1], sys.argv[2]


def test_exports_match_header():
    """exported symbols == functions declared in dmabroker.h"""
    out = subprocess.run(["nm", "-D", "--defined-only", LIB], capture_output=True, text=True, check=True).stdout
    exported = {line.split()[2].split("@")[0] for line in out.splitlines()
                if len(line.split()) == 3 and line.split()[1] in "TW"}
    with open(HEADER) as f:
        text = f.read()
    declared = set(re.findall(r"\b(dmabroker_\w+)\s*\(", text)) - {"dmabroker_buffer_callback"}
    check(exported, "nothing exported?", out)
    check(exported == declared, "exported but not declared: %s; declared but not exported: %s"
          % (sorted(exported - declared), sorted(declared - exported)))


def test_version_node():
    """the symbols carry the DMABROKER_0.1 version"""
    out = subprocess.run(["objdump", "-T", LIB], capture_output=True, text=True, check=True).stdout
    lines = [line for line in out.splitlines() if "dmabroker_connect" in line]
    check(lines and all("DMABROKER_0.1" in line for line in lines), "no version node", lines)


run([test_exports_match_header, test_version_node])

#!/usr/bin/env python3
"""Every relative link in README.md and docs/*.md leads somewhere: the file
exists and, for a #anchor, the target has a heading with that anchor
(GitHub's rule: lower case, punctuation dropped, spaces to hyphens, -N for
repeats). Links in code blocks and inline code are not links. One TAP step
per file."""
import glob
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from taptest import run, check  # noqa: E402

TOP = sys.argv[1]
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^\s*(```|~~~)")


def prose(path):
    """The file's lines outside fenced code, inline code blanked out."""
    inside = False
    for no, line in enumerate(open(path, encoding="utf-8"), 1):
        if FENCE.match(line):
            inside = not inside
            continue
        if not inside:
            yield no, re.sub(r"`[^`]*`", "``", line)


def anchors(path):
    """The anchors of path's headings, as GitHub makes them."""
    seen, out = {}, set()
    inside = False
    for line in open(path, encoding="utf-8"):
        if FENCE.match(line):
            inside = not inside
            continue
        m = None if inside else re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not m:
            continue
        a = re.sub(r"[^\w\- ]", "", m.group(1).lower()).replace(" ", "-")
        n = seen.get(a, 0)
        seen[a] = n + 1
        out.add(a if n == 0 else "%s-%d" % (a, n))
    return out


def broken_links(path):
    bad = []
    for no, line in prose(path):
        for target in LINK.findall(line):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):
                continue  # http:, https:, mailto:, file:
            file_part, _, anchor = target.partition("#")
            dest = os.path.normpath(os.path.join(os.path.dirname(path), file_part)) if file_part else path
            where = "%s:%d: %s" % (os.path.relpath(path, TOP), no, target)
            if not os.path.exists(dest):
                bad.append("%s: no such file" % where)
            elif anchor and (not dest.endswith(".md") or anchor not in anchors(dest)):
                bad.append("%s: no heading with anchor #%s" % (where, anchor))
    return bad


def steps():
    files = [os.path.join(TOP, "README.md")] + sorted(glob.glob(os.path.join(TOP, "docs", "*.md")))
    check(len(files) > 1, "no docs/*.md under %s" % TOP)
    tests = []
    for f in files:
        def step(f=f):
            bad = broken_links(f)
            check(not bad, "%d broken links:" % len(bad), *bad)
        step.__doc__ = "every relative link of %s resolves" % os.path.relpath(f, TOP)
        tests.append(step)
    return tests


if __name__ == "__main__":
    run(steps())

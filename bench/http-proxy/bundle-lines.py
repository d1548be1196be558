#!/usr/bin/env python3
"""Names the source file and line of the bundle positions in a callgrind-core.sh report
(`JS name file:///.../core.mjs:LINE:COL`): esbuild marks each module's start in the bundle with a
`// path` comment; the function's line is where `name` is first defined in that file after the
part of the module the bundle line falls in (best effort: by name).

Usage: bundle-lines.py <core.mjs> <report.txt> [top=15]
"""
import re
import sys

bundle, report = sys.argv[1], sys.argv[2]
top = int(sys.argv[3]) if len(sys.argv) > 3 else 15
lines = open(bundle, errors="replace").read().split("\n")
starts = []  # (bundle line, path)
for i, line in enumerate(lines, 1):
    m = re.match(r"^// (\S+\.(?:ts|js|mjs|cjs))$", line)
    if m:
        starts.append((i, m.group(1)))


def source_of(bline, name):
    path, start = None, 0
    for i, p in starts:
        if i > bline:
            break
        path, start = p, i
    if path is None:
        return "?"
    # The bundle is made in apps/proxy: its own modules' paths are relative to it.
    clean = re.sub(r"^(\.\./)+", "", path) if path.startswith("../") else "apps/proxy/" + path
    short = name.lstrip("#").split(" ")[0].split(".")[-1]
    offset = bline - start
    try:
        src = open("/work/main/" + clean if not clean.startswith("/") else clean).read().split("\n")
    except OSError:
        return f"{clean}"
    # Definitions first (a function, a method, an arrow assigned to a name), nearest the offset.
    pat = re.compile(
        r"^\s*(export\s+)?(async\s+)?(function\s*\*?\s*)?((static|private|protected|public|readonly|override|get|set)\s+)*#?"
        + re.escape(short)
        + r"\s*(\(|<|=|:\s*\()"
    )
    best = None
    for j, l in enumerate(src, 1):
        if pat.search(l):
            if best is None or abs(j - offset) < abs(best - offset):
                best = j
    return f"{clean}:{best}" if best else clean


n = 0
for line in open(report):
    m = re.match(r"\s+(-?[\d,]+)\s+(-?[\d.]+)\s+(.*)$", line)
    if not m or line.startswith("calls"):
        continue
    name = m.group(3)
    j = re.match(r"JS (\S*) file:///\S+core\.mjs:(\d+):\d+", name)
    where = source_of(int(j.group(2)), j.group(1)) if j else ""
    short = re.sub(r"\(.*", "", name.split(" file:")[0])
    print(f"| {m.group(1)} | {m.group(2)} | {short} | {where} |")
    n += 1
    if n >= top:
        break

#!/usr/bin/env python3
"""Callees of named functions per round trip from two callgrind dumps (turn-count.sh):
for each function whose name contains one of the patterns, the inclusive Ir per round trip
of each callee ((Ir(N2) - Ir(N1)) / (N2 - N1)) and the calls per round trip.

Usage: callees.py <cg.N1> <cg.N2> <N1> <N2> <pattern>[,<pattern>...] [--maps <map.N1> <map.N2>]
"""
import importlib.util
import os
import sys
from collections import defaultdict

spec = importlib.util.spec_from_file_location(
    "cgcore", os.path.join(os.path.dirname(__file__), "..", "http-proxy", "callgrind-core.py")
)
src = open(spec.origin).read().replace("\nmain()\n", "\n")
cg = {}
exec(compile(src, spec.origin, "exec"), cg)


def edges(path, name_of):
    names = {"fn": {}}
    out = defaultdict(lambda: [0, 0])  # (fn, cfn) -> [ir, calls]
    fn = cfn = None
    pending = 0
    with open(path, errors="replace") as f:
        for line in f:
            if line.startswith("fn="):
                fn = cg["jit_name"](cg["resolve"](names["fn"], names, line[3:].strip()), name_of)
            elif line.startswith("cfn="):
                cfn = cg["jit_name"](cg["resolve"](names["fn"], names, line[4:].strip()), name_of)
            elif line.startswith("calls="):
                pending = int(line[6:].split()[0])
            elif pending and (line[0].isdigit() or line[0] in "+-*"):
                parts = line.split()
                e = out[(fn, cfn)]
                e[0] += int(parts[1]) if len(parts) > 1 else 0
                e[1] += pending
                pending = 0
    return out


a, b, n1, n2, pats = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5].split(",")
maps = sys.argv[sys.argv.index("--maps") + 1 :][:2] if "--maps" in sys.argv else None
e1 = edges(a, cg["perf_map"](maps[0]) if maps else None)
e2 = edges(b, cg["perf_map"](maps[1]) if maps else None)
d = n2 - n1
by_fn = defaultdict(list)
for k in set(e1) | set(e2):
    fn, cfn = k
    if any(p in str(fn) for p in pats):
        ir = (e2.get(k, [0, 0])[0] - e1.get(k, [0, 0])[0]) / d
        calls = (e2.get(k, [0, 0])[1] - e1.get(k, [0, 0])[1]) / d
        if abs(ir) >= 20 or abs(calls) >= 0.05:
            by_fn[fn].append((ir, calls, cfn))
for fn in sorted(by_fn, key=str):
    print(fn)
    for ir, calls, cfn in sorted(by_fn[fn], reverse=True):
        print(f"  {ir:10,.0f} {calls:7.2f}  {cfn[:150]}")

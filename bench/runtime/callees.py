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

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from callgrind_out import call_edges  # noqa: E402

spec = importlib.util.spec_from_file_location(
    "cgcore", os.path.join(os.path.dirname(__file__), "..", "http-proxy", "callgrind-core.py")
)
src = open(spec.origin).read().replace("\nmain()\n", "\n")
cg = {"__file__": spec.origin}
exec(compile(src, spec.origin, "exec"), cg)


def edges(path, name_of):
    """(fn, cfn) -> [inclusive Ir, calls], summed over the file."""
    out = defaultdict(lambda: [0, 0])
    for key, (calls, ir) in call_edges(path, lambda n: cg["jit_name"](n, name_of)).items():
        out[key] = [ir, calls]
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

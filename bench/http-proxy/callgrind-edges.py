#!/usr/bin/env python3
"""Per-request call edges of two callgrind-core.sh runs: for each function whose name contains one
of the given patterns, its callees' inclusive Ir and calls per request ((run2 - run1) / (N2 - N1)),
JIT code named by the runs' V8 perf maps. Where a function's inclusive cost (callgrind-core.py
--incl) goes, one level down.

Usage: callgrind-edges.py [--callers] <dir> <N1> <N2> pattern[,pattern...]
  <dir>: a callgrind-core.sh run dir made with PERF_MAP=1 (cg.N1, cg.N2, map.N1, map.N2).
  --callers: the other way round: who calls the matching functions (Builtins_CreateTypedArray...).
"""
import importlib.util
import os
import sys
from collections import defaultdict

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from callgrind_out import call_edges  # noqa: E402

spec = importlib.util.spec_from_file_location("cgc", __file__.replace("callgrind-edges.py", "callgrind-core.py"))
src = open(spec.origin).read().rsplit("\nmain()", 1)[0]
cgc = {"__file__": spec.origin}
exec(compile(src, spec.origin, "exec"), cgc)


def edges(path, name_of):
    """(caller, callee) -> [calls, inclusive Ir], summed over the file."""
    return defaultdict(lambda: [0, 0], call_edges(path, lambda n: cgc["jit_name"](n, name_of)))


def main():
    args = sys.argv[1:]
    callers = args[0] == "--callers"
    if callers:
        args = args[1:]
    d, n1, n2 = args[0], int(args[1]), int(args[2])
    pats = args[3].split(",")
    e1 = edges(f"{d}/cg.{n1}", cgc["perf_map"](f"{d}/map.{n1}"))
    e2 = edges(f"{d}/cg.{n2}", cgc["perf_map"](f"{d}/map.{n2}"))
    n = n2 - n1
    rows = defaultdict(list)
    for k in set(e1) | set(e2):
        caller, callee = k
        if callers:
            caller, callee = callee, caller
        if caller is None or callee is None or not any(p in caller for p in pats) or caller == callee:
            continue
        a, b = e1.get(k, [0, 0]), e2.get(k, [0, 0])
        rows[caller].append(((b[1] - a[1]) / n, (b[0] - a[0]) / n, callee))
    for caller in sorted(rows):
        print(caller)
        for ir, calls, callee in sorted(rows[caller], reverse=True):
            if abs(ir) >= 5 or abs(calls) >= 0.05:
                print(f"  {ir:10,.0f} {calls:8.2f}  {callee}")


main()

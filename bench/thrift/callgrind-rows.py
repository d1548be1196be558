#!/usr/bin/env python3
# A relayed Thrift call's callgrind rows by call site and by owner (issue 15): reads the dumps of
# `CALLGRIND=1 NODE_OPTIONS=--perf-basic-prof bench/thrift/counts.sh ...` (the run directory's
# callgrind.out.<pid>.1 and perf-<pid>.map) and prints, per call:
#   --edges REGEX  the calls into and out of every function whose name matches: calls per call and
#                  inclusive Ir per call of each caller -> callee pair (e.g. 'LoadGlobalIC' shows
#                  which optimized functions call that builtin, and what it costs them);
#   --owners       Ir per call by owner: a JavaScript function's self cost plus the inclusive cost
#                  of its calls into builtins, V8's runtime and the addon (call and construct
#                  trampolines left out: they lead back into JavaScript, counted there), owners by
#                  source path (apps/proxy/src/thrift, packages/thrift, packages/transports,
#                  packages/uring-runtime, node's own); the rest is what no JavaScript called.
# A call site's row reads the same in every window where its function was optimized; totals move
# with TurboFan compiles and GCs in the window (bench/thrift/readings-2026-12-07b.md). Names by
# bench/lib/callgrind_out.py's AddressNames: JIT code by the perf map, V8's builtins in node's code range by
# their offset from the node binary's `Builtins_*` symbols.
#
# Usage: callgrind-rows.py (--edges REGEX | --owners) PERF_MAP CALLS DUMP [DUMP...]
import collections
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from callgrind_out import AddressNames, Names, records  # noqa: E402

args = sys.argv[1:]
mode = args.pop(0)
pattern = re.compile(args.pop(0)) if mode == "--edges" else None
if mode not in ("--edges", "--owners") or len(args) < 3:
    sys.exit("usage: callgrind-rows.py (--edges REGEX | --owners) PERF_MAP CALLS DUMP [DUMP...]")
perf_map, calls, files = args[0], float(args[1]), args[2:]

code = AddressNames(perf_map)

self_cost = collections.Counter()
edges = []
for path in files:
    for rec in records(path, Names()):
        if rec[0] == "cost":
            self_cost[rec[1]["fn"]] += rec[2][0] if rec[2] else 0
        elif rec[0] == "call":
            _, where, callee, count, costs = rec
            edges.append((where["fn"], callee["cfn"], count, costs[0] if costs else 0))

# The code range's offset from the binary, from the addresses no perf-map entry covers.
addresses = {int(f.split("'")[0], 16) for f in list(self_cost) + [e[1] for e in edges] if f.startswith("0x")}
code.relocate(a for a in addresses if code.code(a) is None)

names = {}


def name(fn):
    n = names.get(fn)
    if n is None:
        n = fn
        if fn.startswith("0x"):
            address = int(fn.split("'")[0], 16)
            n = code.code(address) or code.builtin(address)
            n = n or fn
        n = re.sub(r"\?tsx-namespace=[0-9a-f-]+|file://\S*?/(?=(packages|apps)/)", "", n)
        names[fn] = n
    return n


OWNERS = (
    ("apps/proxy/src/thrift", "apps/proxy/src/thrift"),
    ("packages/thrift", "packages/thrift"),
    ("packages/transports", "packages/transports"),
    ("packages/uring-runtime", "packages/uring-runtime"),
    ("node:", "node's JavaScript"),
)


def owner(n):
    if not n.startswith("JS:"):
        return None
    for part, who in OWNERS:
        if part in n:
            return who
    return "other JavaScript"


if mode == "--edges":
    into = collections.defaultdict(lambda: [0, 0])
    out_of = collections.defaultdict(lambda: [0, 0])
    for a, c, count, ir in edges:
        caller, callee = name(a), name(c)
        if pattern.search(callee):
            e = into[(caller, callee)]
            e[0] += count
            e[1] += ir
        if pattern.search(caller):
            e = out_of[(caller, callee)]
            e[0] += count
            e[1] += ir
    for title, table in (("calls into", into), ("calls out of", out_of)):
        print(f"== {title} the matching functions: calls per call, inclusive Ir per call")
        for (caller, callee), (count, ir) in sorted(table.items(), key=lambda kv: -kv[1][1])[:60]:
            if ir / calls >= 5:
                print(f"  {count / calls:7.2f} {ir / calls:8,.0f}  {caller[:90]} -> {callee[:90]}")
    sys.exit(0)

REST = "not called from JavaScript (native, V8, builtins)"
TRAMPOLINE = re.compile(r"Builtins_(Call|Construct|InterpreterEntry|JSEntry)")
by_owner = collections.Counter()
into_native = collections.defaultdict(collections.Counter)
for fn, c in self_cost.items():
    by_owner[owner(name(fn)) or REST] += c
for a, c, _, ir in edges:
    caller, callee = name(a), name(c)
    who = owner(caller)
    if who is not None and owner(callee) is None and not TRAMPOLINE.match(callee):
        by_owner[who] += ir
        by_owner[REST] -= ir
        into_native[who][callee] += ir
print(f"== Ir per call by owner ({calls:g} calls): {sum(by_owner.values()) / calls:,.0f} in all")
for who, c in by_owner.most_common():
    print(f"  {c / calls:8,.0f}  {who}")
for who, table in into_native.items():
    top = ", ".join(f"{k[:48]} {v / calls:,.0f}" for k, v in table.most_common(6))
    print(f"  {who}, its calls into builtins and native code: {top}")

#!/usr/bin/env python3
# Where a relayed Thrift call's simulated cache misses go (issue 15): reads callgrind dumps taken
# with --cache-sim=yes (counts.sh CACHESIM=1) and prints, per call, the self cost of the functions
# with the most first-level data misses (D1: reads + writes), with their instructions, last-level
# data misses (LL) and bytes per miss-free instruction left out. Functions callgrind names by
# address only (JIT code, V8's embedded builtins copied into its code range) are summed by their
# object ("???" = JIT or code-range builtins). Kernel copies are not simulated: bytes the kernel
# just wrote into a receive buffer are as cold to callgrind as bytes nobody touched for a while.
#
# --perf-map FILE (node's --perf-basic-prof map, /tmp/perf-<pid>.map: loch's pid is valgrind's)
# names the code callgrind knows by address only, JavaScript functions and V8's builtins by the
# name V8 logged for the code object that held the address (code that moved or was freed after it
# was logged may be named wrongly; what no entry covers stays "[... by address]").
# V8's builtins that node copies into its code range are in no map: they are named by their
# offset from the node binary's `Builtins_*` symbols (`nm`), the one relocation that puts most of
# the code range's addresses on a symbol's start (LoadIC, Call_ReceiverIsAny, ...).
# Dumps without the cache simulation (CALLGRIND=1 alone) print the instructions table only.
#
# Usage: callgrind-misses.py [--top N] [--perf-map FILE] CALLS DUMP [DUMP...]
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from callgrind_out import AddressNames, Names, records  # noqa: E402

args = sys.argv[1:]
top = 25
perf_map = None
while args and args[0].startswith("--"):
    if args[0] == "--top":
        top = int(args[1])
    elif args[0] == "--perf-map":
        perf_map = args[1]
    args = args[2:]
calls = float(args[0])
files = args[1:]

code = AddressNames(perf_map)

names = Names()
events = ["Ir"]
by_fn = {}

for path in files:
    for rec in records(path, names):
        if rec[0] == "events":
            events = rec[1]
        elif rec[0] == "cost":
            _, where, costs = rec
            key = where["fn"]
            if key.startswith("0x"):
                # Named after the parse (the builtins' relocation needs every address).
                key = (int(key.split("'")[0], 16), where["ob"].rsplit("/", 1)[-1])
            row = by_fn.setdefault(key, [0] * len(events))
            for i, v in enumerate(costs):
                row[i] += v

unnamed = [k[0] for k in by_fn if isinstance(k, tuple) and code.code(k[0]) is None]
if code.builtins and unnamed:
    code.relocate(unnamed)
named_fn = {}
for key, row in by_fn.items():
    if isinstance(key, tuple):
        address, ob = key
        builtin = code.builtin(address)
        key = code.code(address) or (builtin and builtin + " (code range)") or f"[{ob} by address]"
    total = named_fn.setdefault(key, [0] * len(row))
    for i, v in enumerate(row):
        total[i] += v
# JavaScript's names shortened: tsx's query string and the checkout's file:// prefix go.
by_fn = {re.sub(r"\?tsx-namespace=[0-9a-f-]+|file://\S*?/(?=(packages|apps)/)", "", k): v for k, v in named_fn.items()}
idx = {e: i for i, e in enumerate(events)}


def get(row, *names_):
    return sum(row[idx[n]] for n in names_ if n in idx)


rows = [(fn, get(r, "Ir"), get(r, "D1mr", "D1mw"), get(r, "DLmr", "DLmw"), get(r, "Dr"), get(r, "Dw"),
         get(r, "I1mr"), get(r, "ILmr")) for fn, r in by_fn.items()]
tot = [sum(r[i] for r in rows) for i in range(1, 8)]
cache_sim = "D1mr" in idx
if cache_sim:
    print(f"per call ({calls:g} calls): instructions {tot[0] / calls:,.0f}, data reads {tot[3] / calls:,.0f}, "
          f"writes {tot[4] / calls:,.0f}, D1 misses {tot[1] / calls:,.0f}, LL data misses {tot[2] / calls:,.0f}, "
          f"I1 misses {tot[5] / calls:,.0f}, LL instruction misses {tot[6] / calls:,.0f}")
else:
    print(f"per call ({calls:g} calls): instructions {tot[0] / calls:,.0f}")
print(f"top {top} functions by instructions per call (self): instructions, I1 misses, D1 misses")
for fn, ir, d1, _, _, _, i1, _ in sorted(rows, key=lambda r: -r[1])[:top]:
    print(f"  {ir / calls:10,.0f} {i1 / calls:9,.1f} {d1 / calls:9,.1f}  {fn[:140]}")
if not cache_sim:
    sys.exit(0)
print(f"top {top} functions by D1 misses per call (self): D1 misses, LL data misses, instructions")
for fn, ir, d1, ll, *_ in sorted(rows, key=lambda r: -r[2])[:top]:
    print(f"  {d1 / calls:9,.1f} {ll / calls:9,.1f} {ir / calls:10,.0f}  {fn[:140]}")
print(f"top {top} functions by LL data misses per call (self): LL data misses, D1 misses, instructions")
for fn, ir, d1, ll, *_ in sorted(rows, key=lambda r: -r[3])[:top]:
    print(f"  {ll / calls:9,.1f} {d1 / calls:9,.1f} {ir / calls:10,.0f}  {fn[:140]}")

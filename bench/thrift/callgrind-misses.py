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
import bisect
import collections
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from callgrind_out import Names, records  # noqa: E402

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

starts, ends, code_names = [], [], []
if perf_map:
    entries = []
    for line in open(perf_map, errors="replace"):
        parts = line.rstrip("\n").split(" ", 2)
        if len(parts) == 3:
            entries.append((int(parts[0], 16), int(parts[1], 16), parts[2]))
    entries.sort()
    for start, size, name in entries:
        starts.append(start)
        ends.append(start + size)
        code_names.append(name)


def code_name(address):
    # The last code object logged at or below the address, if it covers it.
    i = bisect.bisect_right(starts, address) - 1
    return code_names[i] if i >= 0 and address < ends[i] else None



def node_builtins():
    """(start, end, name) of the node binary's Builtins_* symbols, sorted; empty without nm."""
    node = shutil.which("node")
    if node is None or shutil.which("nm") is None:
        return []
    out = subprocess.run(["nm", "-S", os.path.realpath(node)], capture_output=True, text=True).stdout
    syms = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[3].startswith("Builtins_"):
            syms.append((int(parts[0], 16), int(parts[0], 16) + int(parts[1], 16), parts[3]))
    return sorted(syms)


builtins = node_builtins()
builtin_starts = [b[0] for b in builtins]
builtin_delta = None


def relocate(addresses):
    """The offset of node's code-range copy of its builtins: the most common address - symbol."""
    global builtin_delta
    sample = sorted(addresses)
    sample = sample[:: max(1, len(sample) // 400)]
    counts = collections.Counter(a - b for a in sample for b in builtin_starts if a > b)
    if counts:
        delta, n = counts.most_common(1)[0]
        # Chance puts a few addresses on some delta; the copy's puts every builtin called.
        if n >= 10:
            builtin_delta = delta


def builtin_name(address):
    if builtin_delta is None:
        return None
    a = address - builtin_delta
    i = bisect.bisect_right(builtin_starts, a) - 1
    return builtins[i][2] + " (code range)" if i >= 0 and a < builtins[i][1] else None


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

unnamed = [k[0] for k in by_fn if isinstance(k, tuple) and (not starts or code_name(k[0]) is None)]
if builtins and unnamed:
    relocate(unnamed)
named_fn = {}
for key, row in by_fn.items():
    if isinstance(key, tuple):
        address, ob = key
        key = (code_name(address) if starts else None) or builtin_name(address) or f"[{ob} by address]"
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

#!/usr/bin/env python3
"""What each young-generation cap costs per request, counted (issue 18): for every semi-space
size S in a semi-space-callgrind.sh run directory, the interval between its two request counts
N1 < N2, per request: all Ir, the garbage collector's Ir split into scavenging and the rest
(mark-compact's marking, sweeping and evacuation, bench/http-proxy/gc-callgrind.py's parts), and
the interval's scavenges and mark-compacts from node's --trace-gc lines (out.S.N).
"Scavenge Ir per scavenge" is the scavenging part over the interval's scavenge count.

Usage: young-callgrind.py DIR N1 N2 [S ...]   (S default: every cg.S.N2 in DIR)
Semi-space S MiB is the cap "3S m" (runtime.worker_young_generation_bytes): 8 = "24m", 2 = "6m",
1 = "3m".
"""
import importlib.util
import os
import re
import sys

here = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location(
    'counts_batch', os.path.join(here, '..', 'http-proxy', 'counts-batch.py'))
cb = importlib.util.module_from_spec(spec)
spec.loader.exec_module(cb)
GC_TEST = cb.CATEGORIES[0][1]
# bench/http-proxy/gc-callgrind.py's parts (one table for both pages): the first part whose test
# matches a gc function wins.
spec = importlib.util.spec_from_file_location(
    'gc_callgrind', os.path.join(here, '..', 'http-proxy', 'gc-callgrind.py'))
gcc = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gcc)
PARTS = gcc.PARTS


def gc_parts(path):
    """Self Ir of the gc functions by gc-callgrind.py's parts, and the dump's total Ir."""
    parts = {name: 0 for name, _ in PARTS}
    for fn, ir in cb.self_by_function(path).items():
        if not GC_TEST(fn):
            continue
        for name, keys in PARTS:
            if not keys or any(k in fn for k in keys):
                parts[name] += ir
                break
    return parts, cb.cg_total(path)


def collections(path):
    """(scavenges, mark-compacts) in a --trace-gc output."""
    text = open(path, errors='replace').read()
    return len(re.findall(r'\bScavenge\b', text)), len(re.findall(r'\bMark-Compact\b', text))


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    d, n1, n2 = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    sizes = sys.argv[4:] or sorted(
        {m.group(1) for f in os.listdir(d) if (m := re.fullmatch(rf'cg\.(\d+)\.{n2}', f))},
        key=lambda s: -int(s))
    n = n2 - n1
    print(f'{d}: {n1:,} -> {n2:,} requests ({n:,}), per request')
    print('| semi-space MiB (cap) | Ir/request | GC Ir/request | scavenging | other heap '
          '| marking + sweeping + evacuation | scavenges (per 1,000 req) | mark-compacts '
          '| scavenging + other heap per scavenge |')
    print('|---|---:|---:|---:|---:|---:|---|---:|---:|')
    for s in sizes:
        p1, t1 = gc_parts(os.path.join(d, f'cg.{s}.{n1}'))
        p2, t2 = gc_parts(os.path.join(d, f'cg.{s}.{n2}'))
        sc1, mc1 = collections(os.path.join(d, f'out.{s}.{n1}'))
        sc2, mc2 = collections(os.path.join(d, f'out.{s}.{n2}'))
        scav = p2['scavenge'] - p1['scavenge']
        other = p2['other heap'] - p1['other heap']
        gc = sum(p2.values()) - sum(p1.values())
        full = gc - scav - other
        sc, mc = sc2 - sc1, mc2 - mc1
        # "other heap" (root walks such as the startup object cache's, Heap:: bookkeeping) runs in
        # every collection; per scavenge it is exact only in an interval without a mark-compact.
        per = f'{(scav + other) / sc:,.0f}' if sc > 0 else '-'
        print(f'| {s} ("{3 * int(s)}m") | {(t2 - t1) / n:,.0f} | {gc / n:,.0f} | {scav / n:,.0f} '
              f'| {other / n:,.0f} | {full / n:,.0f} | {sc} ({1000 * sc / n:.2f}) | {mc} | {per} |')


if __name__ == '__main__':
    main()

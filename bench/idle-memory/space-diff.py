#!/usr/bin/env python3
"""busy.ts --spaces-dir's readings by moment (issue 18): for each round (mark prefix
<peer>-<mode>-r<round>) and each V8 heap space, the committed (size), used and resident (physical)
KiB at each moment (the heap's physical total only: no per-space physical size in Node 20) (baseline, warmed, the first count, the last count) and the differences between
consecutive moments; with two counts, the one-time part of the first count (its growth less the
first count times the per-connection rate between the counts).
Usage: python3 space-diff.py DIR/spaces.jsonl"""
import json
import re
import sys
from collections import OrderedDict

rounds = OrderedDict()
for line in open(sys.argv[1]):
    r = json.loads(line)
    m = re.match(r'(.*-r\d+)-(.*)$', r['mark'])
    rounds.setdefault(m.group(1), OrderedDict())[m.group(2)] = r


def kib(b):
    return round(b / 1024)


for name, moments in rounds.items():
    keys = list(moments)
    print(f'\n## {name}: moments {", ".join(keys)} (KiB; d = difference from the previous moment)')
    spaces = list(next(iter(moments.values()))['spaces'])
    print('| space | field | ' + ' | '.join(keys) + ' | ' + ' | '.join(f'd {k}' for k in keys[1:]) + ' |')
    print('|---|---|' + '---:|' * (2 * len(keys) - 1))
    rows = [(s, f) for s in spaces for f in ('size', 'used')]
    totals = {f: [sum(moments[k]['spaces'][s].get(f, 0) for s in spaces) for k in keys] for f in ('size', 'used')}
    for s, f in rows:
        vals = [moments[k]['spaces'][s].get(f, 0) for k in keys]
        if max(vals) == 0:
            continue
        print(f'| {s} | {f} | ' + ' | '.join(str(kib(v)) for v in vals) + ' | '
              + ' | '.join(str(kib(b - a)) for a, b in zip(vals, vals[1:])) + ' |')
    for f, vals in totals.items():
        print(f'| all | {f} | ' + ' | '.join(str(kib(v)) for v in vals) + ' | '
              + ' | '.join(str(kib(b - a)) for a, b in zip(vals, vals[1:])) + ' |')
    for f in ('totalPhysical', 'mallocedMemory', 'externalMemory', 'arrayBuffers'):
        vals = [moments[k][f] for k in keys]
        print(f'| heap | {f} | ' + ' | '.join(str(kib(v)) for v in vals) + ' | '
              + ' | '.join(str(kib(b - a)) for a, b in zip(vals, vals[1:])) + ' |')
    counts = [k for k in keys if k.isdigit()]
    if len(counts) == 2:
        n1, n2 = int(counts[0]), int(counts[1])
        prev = keys[keys.index(counts[0]) - 1]
        print(f'\none-time part of the first {n1} over {prev} (growth to {n1} less {n1} x the rate {n1} -> {n2}), KiB:')
        for s in spaces:
            for f in ('size', 'used'):
                a, b, c = (moments[k]['spaces'][s].get(f, 0) for k in (prev, counts[0], counts[1]))
                rate = (c - b) / (n2 - n1)
                once = (b - a) - n1 * rate
                if abs(b - a) + abs(c - b) > 0:
                    print(f'  {s} {f}: +{kib(b - a)} to {n1}, {rate:.0f} B/conn after, one-time {kib(once)}')

#!/usr/bin/env python3
"""What survives a scavenge in a busy loch worker (issue 18): from V8's --trace-gc-nvp lines of
one measured run (bench/http-proxy/gc-pauses.sh's <dir>/<size>/gc.txt), the worker isolate's
scavenges (gc=s): bytes allocated since the previous GC, bytes copied within new space
(new_space_survived) and bytes promoted to old space, per scavenge (median [min, max], mean) and
per request over the run, with the scavenges per 10,000 requests. A scavenge's cost grows with
what it copies, not with what dies, so the copied bytes per request are what a smaller young
generation would multiply. Not a pause summary (gc-nvp.py) and not by allocation site.

The worker is the isolate with the most scavenges (the main thread's barely collects under load).
Usage: scavenge-survivors.py gc.txt requests
"""
import importlib.util
import statistics
import sys
from pathlib import Path

# The --trace-gc-nvp line parser is gc-nvp.py's (bench/http-proxy), loaded by path (its file name
# has a hyphen).
_spec = importlib.util.spec_from_file_location('gc_nvp', Path(__file__).resolve().parent.parent / 'http-proxy' / 'gc-nvp.py')
gc_nvp = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gc_nvp)

FIELDS = ('allocated', 'new_space_survived', 'promoted', 'total_size_before', 'total_size_after')


def scavenges(path):
    by_isolate = {
        isolate: [
            {**{k: float(kv[k]) for k in FIELDS if k in kv}, 'pause': float(kv.get('pause', 'nan'))}
            for kv in rows
            if kv.get('gc') == 's'
        ]
        for isolate, rows in gc_nvp.parse(path).items()
    }
    return max(by_isolate.values(), key=len) if by_isolate else []


def main():
    path, requests = sys.argv[1], int(sys.argv[2])
    rows = scavenges(path)
    if not rows:
        print('no scavenges')
        return
    n = len(rows)
    print(f'{n} scavenges over {requests:,} requests: {n * 10000 / requests:.2f} per 10,000 requests, '
          f'one per {requests / n:,.0f} requests')
    print('| per scavenge | median | [min, max] | mean | per request (run total / requests) |')
    print('|---|---:|---:|---:|---:|')
    for key, name in (('allocated', 'allocated since the last GC'),
                      ('new_space_survived', 'copied within new space (survived)'),
                      ('promoted', 'promoted to old space'),
                      ('pause', 'pause (ms)')):
        xs = [r[key] for r in rows if key in r]
        if not xs:
            continue
        unit = '' if key == 'pause' else ' B'
        fmt = (lambda v: f'{v:.2f}') if key == 'pause' else (lambda v: f'{v:,.0f}')
        per = '' if key == 'pause' else f'{sum(xs) / requests:,.1f} B'
        print(f'| {name} | {fmt(statistics.median(xs))}{unit} | [{fmt(min(xs))}, {fmt(max(xs))}] | '
              f'{fmt(statistics.mean(xs))}{unit} | {per} |')
    copied = sum(r.get('new_space_survived', 0) + r.get('promoted', 0) for r in rows)
    alloc = sum(r.get('allocated', 0) for r in rows)
    print(f'copied (survived + promoted): {copied / requests:,.1f} B per request, '
          f'{100 * copied / alloc:.2f}% of the bytes allocated' if alloc else '')


main()

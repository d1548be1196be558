#!/usr/bin/env python3
"""The garbage collector's share of a counts-batch.sh dump (issue 18): self Ir per request of the
functions counts-batch.py files under "gc", split by what V8 was doing (scavenges, a mark-compact's
concurrent and main-thread marking, sweeping, evacuation, the rest), the whole dump's Ir per
request, and, with loch's perf map, the turn clock's own rows (turnNow, its expiry). All threads
are in one callgrind dump, so a mark-compact's helpers count here whichever thread ran them.
Usage: gc-callgrind.py <counts-batch dir> <peer> <conns> [perf map]
"""
import importlib.util
import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location('counts_batch', os.path.join(here, 'counts-batch.py'))
cb = importlib.util.module_from_spec(spec)
spec.loader.exec_module(cb)

# The first part whose test matches a gc function wins.
PARTS = (
    ('scavenge', ('Scaveng', 'SemiSpace', 'NewSpace', 'ArrayBufferSweeper')),
    ('concurrent marking', ('ConcurrentMarking', 'ConcurrentMarkingVisitor')),
    ('incremental / main-thread marking', ('IncrementalMarking', 'MarkCompactCollector::Mark', 'MainMarkingVisitor',
                                            'MarkingVisitor', 'Marking', 'MarkingWorklist', 'MarkBit')),
    ('sweeping', ('Sweep',)),
    ('evacuation and compaction', ('Evacuat', 'Compaction', 'UpdatingItem', 'RememberedSetUpdating')),
    ('other heap', ()),
)


def main():
    d, peer, conns = sys.argv[1:4]
    mapfile = sys.argv[4] if len(sys.argv) > 4 else None
    dump = os.path.join(d, f'{peer}-c{conns}.cg')
    requests = cb.wrk_requests(os.path.join(d, peer, f'wrk-c{conns}'))
    resolve = cb.perf_map(mapfile) if mapfile else None
    fns = cb.self_by_function(dump, resolve)
    gc_test = cb.CATEGORIES[0][1]
    parts = {name: 0 for name, _ in PARTS}
    top = {}
    for fn, ir in fns.items():
        if not gc_test(fn):
            continue
        for name, keys in PARTS:
            if not keys or any(k in fn for k in keys):
                parts[name] += ir
                top.setdefault(name, []).append((ir, fn))
                break
    total = cb.cg_total(dump)
    gc = sum(parts.values())
    print(f'{dump}: {requests:,} requests, {total / requests:,.0f} Ir per request, gc {gc / requests:,.0f}')
    for name, _ in PARTS:
        best = sorted(top.get(name, []), reverse=True)[:2]
        names = '; '.join(f'{fn[:70]} {ir / requests:,.0f}' for ir, fn in best)
        print(f'  {name}: {parts[name] / requests:,.0f} Ir per request  ({names})')
    if resolve is not None:
        for fn, ir in sorted(fns.items(), key=lambda kv: -kv[1]):
            if any(k in fn for k in ('turnNow', 'turnWallNow', 'JS:^expire', 'JS:*expire', 'checkWall')):
                print(f'  {fn[:90]}: {ir / requests:,.1f} Ir per request')


if __name__ == '__main__':
    main()

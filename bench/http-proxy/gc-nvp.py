#!/usr/bin/env python3
"""Summarises V8 --trace-gc-nvp lines of one measured run (gc-pauses.sh's <dir>/<size>/gc.txt).

Lines look like `[pid:0xISOLATE]  T ms: pause=8.0 mutator=56.1 gc=s ... scavenge.sweep_array_buffers=0.01 ...`.
The busiest isolate is loch's worker (the main thread's isolate barely collects under load); its
lines are summarised: pauses per kind (gc=s scavenge, gc=ms mark-compact, gc=mmc minor MC), pauses
over 2 ms per 10 s, the pause percentiles, and for each pause over 2 ms the phase that took most of
it (the largest *.key among the main-thread phases, not background.*), counted by phase name.
Usage: gc-nvp.py gc.txt seconds [requests]
"""
import re
import sys
from collections import Counter, defaultdict

LINE = re.compile(r'^\[(\d+):(0x[0-9a-f]+)\]\s+(\d+) ms: (pause=.*)$')
# Phases that contain other phases (the parents would always win the "largest phase" vote).
PARENTS = {'pause', 'mutator', 'scavenge', 'mark', 'sweep', 'evacuate', 'clear', 'compact', 'finish'}
NOT_TIMES = re.compile(
    r'(_size_|_count|throughput|ratio|rate|allocated|promoted|survived|nodes_|reduce_memory|gc$|'
    r'total_size|holes_size|unmapper_chunks|steps_count|_bytes|_objects|compaction_speed|speed|^at_ms$)'
)


def parse(path):
    by_isolate = defaultdict(list)
    with open(path, errors='replace') as f:
        for line in f:
            m = LINE.match(line.strip())
            if not m:
                continue
            # at_ms: the line's time, milliseconds since this isolate's heap was made (gc-steady.py).
            kv = {'at_ms': m.group(3)}
            for tok in m.group(4).split():
                if '=' in tok:
                    k, v = tok.split('=', 1)
                    kv[k] = v
            by_isolate[m.group(2)].append(kv)
    return by_isolate


def num(v):
    try:
        return float(v.rstrip('%'))
    except (ValueError, AttributeError):
        return 0.0


def main():
    path, seconds = sys.argv[1], float(sys.argv[2])
    requests = int(sys.argv[3]) if len(sys.argv) > 3 and sys.argv[3] else 0
    by_isolate = parse(path)
    if not by_isolate:
        print('  no GC lines')
        return
    iso, gcs = max(by_isolate.items(), key=lambda kv: len(kv[1]))
    per10 = 10.0 / seconds
    print(f'  worker isolate {iso}: {len(gcs)} GCs in {seconds:g} s'
          + (f' (one per {requests / len(gcs):.0f} requests)' if requests else '')
          + f'; other isolates: {sum(len(v) for k, v in by_isolate.items() if k != iso)} GCs')
    kinds = defaultdict(list)
    for g in gcs:
        kinds[g.get('gc', '?')].append(g)
    for kind, lst in sorted(kinds.items()):
        pauses = sorted(num(g['pause']) for g in lst)
        long_ = [g for g in lst if num(g['pause']) > 2.0]
        q = lambda p: pauses[min(len(pauses) - 1, int(p * len(pauses)))]
        print(f'  gc={kind}: {len(lst)} pauses, {sum(pauses):.1f} ms total, p50 {q(0.5):.1f} p90 {q(0.9):.1f}'
              f' max {pauses[-1]:.1f} ms; > 2 ms: {len(long_)} ({len(long_) * per10:.1f} per 10 s)')
        for phase in ('scavenge.sweep_array_buffers', 'complete.sweep_array_buffers'):
            v = sorted(num(g[phase]) for g in lst if phase in g)
            if v and v[-1] > 0:
                print(f'    {phase} in every pause: p50 {v[len(v) // 2]:.2f} p90 {v[int(0.9 * len(v))]:.2f}'
                      f' max {v[-1]:.2f} ms, {sum(v):.1f} ms total')
        dom = Counter()
        dom_ms = defaultdict(float)
        phase_sum = defaultdict(float)
        for g in long_:
            times = {k: num(v) for k, v in g.items() if k not in PARENTS and not NOT_TIMES.search(k)
                     and not k.startswith('background.')}
            if not times:
                continue
            k, v = max(times.items(), key=lambda kv: kv[1])
            dom[k] += 1
            dom_ms[k] += num(g['pause'])
            for kk, vv in times.items():
                phase_sum[kk] += vv
        if dom:
            print('    largest phase of each pause > 2 ms: '
                  + ', '.join(f'{k} {n}x ({dom_ms[k]:.0f} ms of pause)' for k, n in dom.most_common(6)))
            top = sorted(phase_sum.items(), key=lambda kv: -kv[1])[:6]
            print('    phase ms summed over those pauses: ' + ', '.join(f'{k} {v:.1f}' for k, v in top))
            bg = defaultdict(float)
            for g in long_:
                for k, v in g.items():
                    if k.startswith('background.'):
                        bg[k] += num(v)
            bgtop = sorted(bg.items(), key=lambda kv: -kv[1])[:3]
            if bgtop and bgtop[0][1] > 0:
                print('    background phases in them: ' + ', '.join(f'{k} {v:.1f}' for k, v in bgtop))


if __name__ == '__main__':
    main()

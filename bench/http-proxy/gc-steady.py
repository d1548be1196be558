#!/usr/bin/env python3
"""What a busy loch worker's GC costs per request under a steady load (issue 18): reads the
--trace-gc-nvp lines of each measured point of gc-pauses.sh (REUSE=1: one long-lived loch over
consecutive points, <dir>/<n>-<size>/gc.txt and wrk.txt) and prints, for the worker isolate (the
isolate with the most GC lines), per point and over all points:
  scavenges (gc=s) and mark-compacts (gc=mc) per 1,000 requests,
  bytes allocated and promoted per request (the scavenges' allocated= and promoted=),
  bytes copied within the young generation per scavenge (new_space_survived=),
  the main-thread pause per request (us) and its share of the point's wall time, by kind,
  a mark-compact's background work (background.* ms summed) and what it freed.
Then, over the whole life of that loch (its stdout: warm-ups and gaps too), each mark-compact
with its reason when V8's --trace-incremental-marking lines are there ("Start (memory reducer)"),
whether it reduced memory (reduce_memory=1 shrinks the young generation too), and what the shrink
cost afterwards: the scavenges until one again found as much allocated as the last scavenge
before the mark-compact, and how many of them were extra (their count minus the bytes allocated
over them divided by the pre-mark-compact bytes per scavenge).
Usage: gc-steady.py <gc-pauses run dir> [seconds per point]
"""
import glob
import importlib.util
import os
import re
import sys

# gc-nvp.py's parser (one per --trace-gc-nvp format): lines by isolate, values as text.
_spec = importlib.util.spec_from_file_location('gc_nvp', os.path.join(os.path.dirname(os.path.abspath(__file__)), 'gc-nvp.py'))
gc_nvp = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gc_nvp)


def parse(path):
    """gc_nvp.parse with numbers as floats (`gc` stays text) and the time as `t` (ms)."""
    out = {}
    for iso, lines in gc_nvp.parse(path).items():
        rows = []
        for kv in lines:
            row = {k: (v if k == 'gc' else gc_nvp.num(v)) for k, v in kv.items()}
            row['t'] = row.pop('at_ms')
            rows.append(row)
        out[iso] = rows
    return out


def requests_of(wrk):
    for line in open(wrk):
        if 'requests in' in line:
            return int(line.split()[0])
    return 0


def summary(label, lines, req, seconds):
    s = [l for l in lines if l.get('gc') == 's']
    ms = [l for l in lines if l.get('gc') == 'mc']
    mmc = [l for l in lines if l.get('gc') == 'mmc']
    r = max(req, 1)
    alloc = sum(l.get('allocated', 0) for l in s)
    prom = sum(l.get('promoted', 0) for l in s)
    surv = sum(l.get('new_space_survived', 0) for l in s) / max(len(s), 1)
    ps = sum(l.get('pause', 0) for l in s)
    pm = sum(l.get('pause', 0) for l in ms + mmc)
    bg = sum(v for l in ms for k, v in l.items() if k.startswith('background.') and isinstance(v, float))
    freed = sum(l.get('total_size_before', 0) - l.get('total_size_after', 0) for l in ms)
    print(
        f'{label}: {req} requests; scavenges {len(s)} ({len(s) * 1000 / r:.3f}/1k req), '
        f'mark-compacts {len(ms)} ({len(ms) * 1000 / r:.4f}/1k req){f", minor MC {len(mmc)}" if mmc else ""}; '
        f'allocated {alloc / r:.0f} B/req, promoted {prom / r:.1f} B/req, survived young {surv / 1024:.0f} KiB/scavenge; '
        f'pause scavenge {ps * 1000 / r:.3f} us/req ({ps / 10 / seconds:.2f}% of wall), '
        f'mark-compact {pm * 1000 / r:.3f} us/req, background {bg * 1000 / r:.3f} us/req, '
        f'mark-compacts freed {freed / 1e6:.1f} MB'
    )
    for l in ms:
        print(
            f'    mark-compact at {l["t"] / 1000:.1f} s: pause {l.get("pause", 0):.1f} ms, background '
            f'{sum(v for k, v in l.items() if k.startswith("background.") and isinstance(v, float)):.0f} ms, '
            f'size {l.get("total_size_before", 0) / 1e6:.1f} -> {l.get("total_size_after", 0) / 1e6:.1f} MB'
        )


def main():
    run = sys.argv[1]
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 10
    points = sorted(glob.glob(os.path.join(run, '*-*/gc.txt')), key=lambda p: int(p.split('/')[-2].split('-')[0]))
    all_lines, all_req = [], 0
    for p in points:
        iso = parse(p)
        if not iso:
            continue
        worker = max(iso.values(), key=len)
        req = requests_of(os.path.join(os.path.dirname(p), 'wrk.txt'))
        summary(p.split('/')[-2], worker, req, seconds)
        all_lines += worker
        all_req += req
    summary(f'all {len(points)} points', all_lines, all_req, seconds * max(len(points), 1))


def whole(run):
    first = sorted(glob.glob(os.path.join(run, '*-*/out')), key=lambda p: int(p.split('/')[-2].split('-')[0]))
    if not first:
        return
    iso = parse(first[0])
    worker_id, lines = max(iso.items(), key=lambda kv: len(kv[1]))
    reasons = []
    start = re.compile(r'^\[\d+:' + worker_id + r'\]\s+(\d+) ms: \[IncrementalMarking\] Start \(([^)]*)\)')
    for line in open(first[0], errors='replace'):
        m = start.match(line.strip())
        if m:
            reasons.append((float(m.group(1)), m.group(2)))
    print(f'whole life of the worker isolate {worker_id} ({first[0]}): {len(lines)} GCs')
    for i, l in enumerate(lines):
        if l.get('gc') != 'mc':
            continue
        reason = [r for t, r in reasons if t <= l['t']]
        before = [x for x in lines[:i] if x.get('gc') == 's']
        full = before[-1].get('allocated', 0) if before else 0
        after = []
        for x in lines[i + 1 :]:
            if x.get('gc') != 's':
                break
            if full and x.get('allocated', 0) >= 0.95 * full:
                break
            after.append(x)
        extra = len(after) - sum(x.get('allocated', 0) for x in after) / full if full else 0
        bg = sum(v for k, v in l.items() if k.startswith('background.') and isinstance(v, float))
        print(
            f'  mark-compact at {l["t"] / 1000:.1f} s ({reason[-1] if reason else "reason not traced"}), '
            f'reduce_memory={int(l.get("reduce_memory", 0))}: pause {l.get("pause", 0):.1f} ms, '
            f'incremental {l.get("incremental", 0):.1f} ms, background {bg:.1f} ms; then {len(after)} scavenges '
            f'over {(after[-1]["t"] - l["t"]) / 1000 if after else 0:.1f} s below the {full / 1e6:.1f} MB allocated '
            f'per scavenge before it ({extra:.0f} extra scavenges, '
            f'{sum(x.get("pause", 0) for x in after) * extra / max(len(after), 1):.1f} ms of their pauses)'
        )


main()
whole(sys.argv[1])

#!/usr/bin/env python3
"""Deoptimizations of loch's own code per window of a fresh instance (issue 18).

Reads deopt-windows.sh's points.jsonl (TRACE=1 runs: node ran with --trace-opt
--trace-deopt-verbose, and each window says where its output stood at its start and end) and
prints, per tree:
  1. each deopt site of loch's code (packages/, apps/: the `;;; deoptimize at` line's innermost
     position, in dist JS) with its function, kind and reason, its count per instance and the
     windows it fell in ("w" = the warm-up and start-up before the first window, "gap" =
     between two windows, "end" = after the last);
  2. per instance and window: the window's start (s), CPU us a request, deopts, optimizations.
Two workers write into one output, so one worker's lines can fall between another's bailout
line and its `deoptimize at` line: a bailout is matched with the next `deoptimize at` line that
follows it before the next bailout (mismatches would show as a site with two reasons).
Usage: bench/http-proxy/deopt-windows.py points.jsonl [--sites N] (N: most sites listed, 40)
"""
import collections
import json
import re
import sys

BAILOUT = re.compile(r'\[bailout \(kind: ([\w-]+)(?:, reason: ([^)]*))?\): begin\. deoptimizing 0x[0-9a-f]+ '
                     r'<JSFunction ?(\S*) \(sfi')
AT = re.compile(r';;; deoptimize at <([^>]*)>')
OPTIMIZED = re.compile(r'\[completed optimizing 0x[0-9a-f]+ <JSFunction ?(\S*) ')
OURS = re.compile(r'/(packages|apps)/([^:]+):(\d+):(\d+)')
MARKED = re.compile(r'\[marking dependent code .*reason: (.*)\]')
MARK_COMPACT = re.compile(r'ms: Mark-Compact')
IDLE_TRIM = re.compile(r'idle trim \d+:')


def window_of(pos: int, windows: list) -> str:
    for k, w in enumerate(windows):
        if w['from'] <= pos < w['to']:
            return str(k + 1)
    # Before the first window: the warm-up; after the last: the stop; between two: the gap
    # (the last wrk's closes and the next one's connects).
    if pos < windows[0]['from']:
        return 'w'
    return 'end' if pos >= windows[-1]['to'] else 'gap'


def read(point: dict):
    """(deopts: [(site, fn, kind, reason, window)], opts per window, deopts per window, other
    events per window: code marked for deoptimization by reason, mark-compacts (--trace-gc),
    idle trims (NODE_DEBUG=loch))."""
    windows = point['windows']
    deopts, opt_n, deopt_n = [], collections.Counter(), collections.Counter()
    events = collections.defaultdict(collections.Counter)
    pending = None
    pos = 0
    with open(point['out'], 'rb') as f:
        data = f.read()
    for raw in data.split(b'\n'):
        at_pos = pos
        pos += len(raw) + 1
        line = raw.decode('utf-8', 'replace')
        m = BAILOUT.search(line)
        if m:
            pending = (m.group(3) or '(anonymous)', m.group(1), m.group(2) or '-', window_of(at_pos, windows))
            continue
        m = AT.search(line)
        if m and pending is not None:
            o = OURS.search(m.group(1))
            if o:
                site = f'{o.group(1)}/{o.group(2)}:{o.group(3)}:{o.group(4)}'
                deopts.append((site,) + pending)
                deopt_n[pending[3]] += 1
            pending = None
            continue
        m = OPTIMIZED.search(line)
        if m:
            opt_n[window_of(at_pos, windows)] += 1
            continue
        m = MARKED.search(line)
        if m:
            events[window_of(at_pos, windows)]['weak' if m.group(1) == 'weak objects' else 'deps'] += 1
        elif MARK_COMPACT.search(line):
            events[window_of(at_pos, windows)]['mc'] += 1
        elif IDLE_TRIM.search(line):
            events[window_of(at_pos, windows)]['trim'] += 1
    return deopts, opt_n, deopt_n, events


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith('--')]
    most = int(sys.argv[sys.argv.index('--sites') + 1]) if '--sites' in sys.argv else 40
    points = [json.loads(line) for line in open(args[0]) if line.strip()]
    points = [p for p in points if p.get('trace')]
    by_tree = collections.defaultdict(list)
    for p in points:
        by_tree[p['tree']].append(p)
    for tree, pts in by_tree.items():
        sites = collections.defaultdict(lambda: collections.defaultdict(list))
        per_instance = []
        for p in pts:
            deopts, opt_n, deopt_n, events = read(p)
            per_instance.append((p, opt_n, deopt_n, len(deopts), events))
            for site, fn, kind, reason, win in deopts:
                sites[(fn, kind, reason, site)][p['instance']].append(win)
        insts = [p['instance'] for p in pts]
        print(f'## {tree}: deopts of loch code per instance: ' +
              ', '.join(f'{p["instance"]}: {n}' for p, _, _, n, _ in per_instance))
        print()
        print('| function | kind | reason | site (dist) | ' + ' | '.join(f'inst {i}' for i in insts) + ' | windows |')
        print('|---|---|---|---|' + '---|' * len(insts) + '---|')
        rows = sorted(sites.items(), key=lambda kv: -sum(len(v) for v in kv[1].values()))
        for (fn, kind, reason, site), by in rows[:most]:
            wins = collections.Counter(w for v in by.values() for w in v)
            order = sorted(wins, key=lambda w: (w != 'w', w == 'gap', w == 'end', int(w) if w.isdigit() else 0))
            print(f'| {fn} | {kind} | {reason} | {site} | ' + ' | '.join(str(len(by.get(i, []))) for i in insts) +
                  ' | ' + ', '.join(f'{w}:{wins[w]}' if wins[w] > 1 else w for w in order) + ' |')
        if len(rows) > most:
            print(f'\n({len(rows) - most} more sites)')
        print()
        print('Per window: start (s), CPU us a request (traced: not the product\'s), eager deopts of loch '
              'code / optimizations / code marked by "weak objects" / by code dependencies / mark-compacts '
              '/ idle trims ("w": before the first window; "gap": between windows, all gaps together).')
        print()
        print('| instance | window | start s | us/req | deopts | opts | weak | deps | MC | trims |')
        print('|---|---|---|---|---|---|---|---|---|---|')
        for p, opt_n, deopt_n, _, ev in per_instance:
            rows = [('w', '', '')] + [(str(k + 1), f'{w["t"]:.0f}', f'{w["cpu_us"]:.1f}') for k, w in enumerate(p['windows'])]
            rows += [('gap', '', ''), ('end', '', '')]
            for key, t, us in rows:
                e = ev[key]
                print(f'| {p["instance"]} | {key} | {t} | {us} | {deopt_n[key]} | {opt_n[key]} | {e["weak"]} | '
                      f'{e["deps"]} | {e["mc"]} | {e["trim"]} |')
        print()


if __name__ == '__main__':
    main()

#!/usr/bin/env python3
"""Microseconds per call by symbol, kernel and user side, from counts.sh PROFILE=1 profiles (issue 15).

counts.sh PROFILE=1 samples each proxy with `perf record -F 1999 -g` and prints shares; shares of
two proxies cannot be compared when their CPU per call differs. This turns each profile's samples
into microseconds per call (samples / 1999 Hz / calls) for the proxy's busiest thread, so loch's
and nginx stream's kernel work per call can be set side by side, symbol by symbol, and prints the
busiest thread's total by part (kernel, V8 and builtins, JIT'd JavaScript, other user code) and
the other threads' (V8's helpers). Sampled time on a shared machine: read the kernel's symbols
against each other within one pair of runs, not against other days.

Usage: bench/thrift/profile-per-call.py <dir>/loch.prof <loch calls> <dir>/nginx.prof <nginx calls> [top]
(the run directory and the calls are in counts.sh's output: "== loch: 10240 B, N calls in ...").
"""

import collections
import subprocess
import sys

HZ = 1999


def load(prof: str, calls: int):
    out = subprocess.run(
        ['perf', 'report', '-i', prof, '--no-children', '--sort', 'pid,dso,sym', '--stdio', '-g', 'none', '-n',
         '--percent-limit', '0'],
        capture_output=True, text=True, check=True).stdout
    rows = collections.Counter()
    threads = collections.Counter()
    for line in out.splitlines():
        p = line.split()
        if len(p) < 5 or not p[0].endswith('%'):
            continue
        n, pid, dso, sym = int(p[1]), p[2], p[3], ' '.join(p[5:])
        threads[pid] += n
        rows[(pid, dso, sym)] += n
    main = threads.most_common(1)[0][0]
    us = lambda n: n / HZ * 1e6 / calls  # noqa: E731
    parts = collections.Counter()
    symbols = collections.Counter()
    for (pid, dso, sym), n in rows.items():
        if pid != main:
            parts['other threads'] += us(n)
            continue
        side = 'kernel' if 'kernel' in dso else 'user'
        part = ('kernel' if side == 'kernel' else 'JIT' if dso.startswith('[JIT]') else
                'node (V8, builtins, GC)' if dso == 'node' else 'other user')
        parts[part] += us(n)
        symbols[(side, sym[:70])] += us(n)
    return parts, symbols


def main() -> None:
    args = sys.argv[1:]
    top = int(args[4]) if len(args) > 4 else 40
    tabs = [load(args[0], int(args[1])), load(args[2], int(args[3]))]
    for name, (parts, _) in zip(('loch', 'nginx'), tabs):
        print(f'{name}: ' + ', '.join(f'{k} {v:.1f}' for k, v in parts.most_common()) + ' us per call')
    keys = set(tabs[0][1]) | set(tabs[1][1])
    order = sorted(keys, key=lambda k: -max(t[1].get(k, 0) for t in tabs))
    print(f"{'':6} {'symbol':70} {'loch':>7} {'nginx':>7}")
    for k in order[:top]:
        print(f'{k[0]:6} {k[1]:70} {tabs[0][1].get(k, 0):7.2f} {tabs[1][1].get(k, 0):7.2f}')


if __name__ == '__main__':
    main()

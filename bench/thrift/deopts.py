#!/usr/bin/env python3
"""Counts V8 deoptimizations in a node process's trace output, by function and reason (issue 15).

Reads the output of node run with `--trace-deopt` or `--trace-deopt-verbose` (and optionally
`--trace-opt`), as counts.sh's NODE_ARGS leaves it in a run directory's loch.out, from a byte
offset on (counts.sh prints where its warm-up's output ends), and prints one row per function
and deopt site: eager/soft deopts (`bailout`) with their reason, lazy ones (`marking dependent
code ... code dependencies`: an assumption the code made, a map or a constant, no longer holds),
and, with --trace-opt, how often the function was optimized again after it. With
--trace-deopt-verbose a site is named by its source position (`deoptimize at <file:line:col>`):
under tsx a module is one line of esbuild's output (minified whitespace), so the column is one
in that text, not in the .ts file (esbuild's transformSync with minifyWhitespace and keepNames
gives the same text).

Not a profiler: a deopt of a function that runs once costs nothing; read it beside a profile
(counts.sh PROFILE=1: `*name` frames are optimized code, `^name` baseline, `~name` interpreted).

Usage: bench/thrift/deopts.py <loch.out> [from-byte=0 [window-end-byte...]] [--all]
  --all also lists functions of node's own and tsx's sources (hidden by default).
  With window ends (counts.sh NOPERF=1 WINDOWS=N prints them), each deopt of loch's code is
  listed in order with where it fell: the warm-up (before from-byte: its last load run's end
  closes connections), a window, or after the last window (loch's stop).
"""
import collections
import re
import sys

BAILOUT = re.compile(r'^\[bailout \(kind: ([\w-]+)(?:, reason: ([^)]*))?\): begin\. deoptimizing 0x[0-9a-f]+ '
                     r'<JSFunction ?(\S*) \(sfi = (0x[0-9a-f]+)\)>.*?bytecode offset (\d+)')
AT = re.compile(r'^\s+;;; deoptimize at <(.*)>')
LAZY = re.compile(r'^\[marking dependent code 0x[0-9a-f]+ <Code \w+> \(0x[0-9a-f]+ <SharedFunctionInfo ?([^>]*)>\).*reason: (.*)\]')
OPTIMIZED = re.compile(r'^\[completed optimizing 0x[0-9a-f]+ <JSFunction ?(\S*) \(sfi = (0x[0-9a-f]+)\)>')


def tidy(site: str) -> str:
    return re.sub(r'\?tsx-namespace=[^:]*', '', re.sub(r'file://\S*?/(packages|apps)/', r'\1/', site))


def by_window(path: str, ends: list) -> None:
    """Each deopt of loch's code (packages/, apps/) in order, with the part of the run it fell in."""
    names = ['warm-up'] + [f'window {i + 1}' for i in range(len(ends) - 1)] + ['after the last window']
    pos, current = 0, None
    with open(path, 'rb') as f:
        data = f.read()
    for raw in data.split(b'\n'):
        line = raw.decode('utf-8', 'replace')
        part = names[sum(1 for end in ends if pos >= end)]
        pos += len(raw) + 1
        m = BAILOUT.match(line)
        if m:
            current = (m.group(3) or '(anonymous)', m.group(2) or '-')
            continue
        m = AT.match(line)
        if m and current is not None and ('/packages/' in m.group(1) or '/apps/' in m.group(1)):
            print(f'{part:<22} {current[0]:<24} {current[1]:<52} {tidy(m.group(1))}')
            current = None


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith('--')]
    show_all = '--all' in sys.argv
    path, start = args[0], int(args[1]) if len(args) > 1 else 0
    if len(args) > 2:
        by_window(path, [int(a) for a in args[1:]])
        return
    with open(path, 'rb') as f:
        f.seek(start)
        lines = f.read().decode('utf-8', 'replace').splitlines()
    deopts: collections.Counter = collections.Counter()
    where: dict = {}
    reopts: collections.Counter = collections.Counter()
    last: dict = {}
    pending = None
    for line in lines:
        m = BAILOUT.match(line)
        if m:
            kind, reason, name, sfi, offset = m.groups()
            pending = (name or '(anonymous)', sfi, kind, reason or '-', offset)
            deopts[pending] += 1
            last[(pending[0], sfi)] = 'deopt'
            continue
        m = AT.match(line)
        if m and pending is not None:
            where.setdefault(pending, m.group(1))
            pending = None
            continue
        m = LAZY.match(line)
        if m:
            key = (m.group(1) or '(anonymous)', '', 'lazy', m.group(2), '')
            deopts[key] += 1
            continue
        m = OPTIMIZED.match(line)
        if m:
            fn = (m.group(1) or '(anonymous)', m.group(2))
            if last.get(fn) == 'deopt':
                reopts[fn] += 1
            last[fn] = 'opt'
    rows = []
    for key, n in deopts.items():
        name, sfi, kind, reason, offset = key
        at = where.get(key, '')
        if not show_all and (at.startswith('node:') or '/tsx/' in at or '/tsx@' in at):
            continue
        rows.append((n, name, kind, reason, at or f'bytecode offset {offset}' if offset else '', sfi))
    rows.sort(key=lambda r: (-r[0], r[1]))
    print(f'{"count":>5}  {"function":<28} {"kind":<12} {"reason":<52} site; reoptimized; state at the end')
    for n, name, kind, reason, at, sfi in rows:
        fn = (name, sfi)
        state = '' if kind == 'lazy' else f'; reopt {reopts.get(fn, 0)}; {"optimized" if last.get(fn) == "opt" else "NOT optimized"}'
        site = tidy(at)
        print(f'{n:>5}  {name:<28} {kind:<12} {reason:<52} {site}{state}')


if __name__ == '__main__':
    main()

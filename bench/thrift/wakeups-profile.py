#!/usr/bin/env python3
"""Samples per call from wakeups.sh's profile (perf script -F ip,sym,dso of a -g record).

Prints: user / kernel samples per call (us per call = samples * 1e6 / freq / calls); kernel
samples by entry (the syscall, or the interrupt, the outermost kernel frame); kernel symbols by
self samples and inclusive (any frame in the stack); user DSOs by self samples.

Usage: wakeups-profile.py <perf script text> <calls> <freq Hz> [top=40]
"""
import collections
import sys

path, calls, freq = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
top = int(sys.argv[4]) if len(sys.argv) > 4 else 40
us = 1e6 / freq


def samples(p):
    stack = []
    for line in open(p, errors='replace'):
        line = line.rstrip('\n')
        if not line.strip():
            if stack:
                yield stack
            stack = []
            continue
        parts = line.split(None, 1)
        if len(parts) < 2:
            continue
        rest = parts[1]
        dso = ''
        if rest.endswith(')') and '(' in rest:
            dso = rest[rest.rindex('(') + 1:-1]
            rest = rest[:rest.rindex('(')].strip()
        sym = rest.split('+0x')[0]
        stack.append((sym, dso))
    if stack:
        yield stack


total = user = kernel = 0
self_k = collections.Counter()
incl_k = collections.Counter()
entry = collections.Counter()
self_u = collections.Counter()
for st in samples(path):
    total += 1
    leaf_sym, leaf_dso = st[0]
    if 'kernel' in leaf_dso:
        kernel += 1
        self_k[leaf_sym] += 1
        seen = set()
        for s, d in st:
            if 'kernel' in d and s not in seen:
                seen.add(s)
                incl_k[s] += 1
        kframes = [s for s, d in st if 'kernel' in d]
        # the outermost kernel frame below the entry stubs
        outer = [s for s in kframes if not s.startswith(('entry_SYSCALL', 'do_syscall_64', 'x64_sys_call', 'asm_', 'irq_exit', 'ret_from'))]
        e = '?'
        for s in reversed(kframes):
            if s.startswith('__x64_sys_') or s.startswith('__do_sys_'):
                e = s
                break
            if s.startswith('asm_'):
                e = s
                break
        if e == '?' and 'syscall_exit_to_user_mode' in kframes:
            e = 'syscall_exit_to_user_mode'
        if e == '?' and outer:
            e = outer[-1]
        entry[e] += 1
    else:
        user += 1
        self_u[leaf_dso or '?'] += 1
per = lambda n: f'{n / calls:.3f} ({n * us / calls:.2f} us)'
print(f'samples per call {per(total)}: user {per(user)}, kernel {per(kernel)}')
print('kernel by entry:')
for k, v in entry.most_common(20):
    print(f'  {per(v)}  {k}')
print('kernel self:')
for k, v in self_k.most_common(top):
    print(f'  {per(v)}  {k}')
print('kernel inclusive:')
for k, v in incl_k.most_common(top):
    print(f'  {per(v)}  {k}')
print('user self by dso:')
for k, v in self_u.most_common(8):
    print(f'  {per(v)}  {k}')

#!/usr/bin/env python3
"""Per-connection syscalls from two `strace -c` tables (proxy-local-address.sh at N=0 and N):
(calls at N - calls at 0) / N per syscall, rows under 0.02 left out, `total` their sum.
   proxy-local-address-diff.py TABLE0 TABLEN N [LABEL]"""
import sys


def calls(path):
    rows = {}
    for line in open(path):
        f = line.split()
        # % time, seconds, usecs/call, calls, [errors], syscall
        if len(f) >= 5 and f[0][0].isdigit() and f[3].isdigit() and f[-1] != 'total':
            rows[f[-1]] = int(f[3])
    return rows


a, b, n = calls(sys.argv[1]), calls(sys.argv[2]), int(sys.argv[3])
per = {k: (b.get(k, 0) - a.get(k, 0)) / n for k in set(a) | set(b)}
shown = sorted(((v, k) for k, v in per.items() if abs(v) >= 0.02), reverse=True)
label = sys.argv[4] if len(sys.argv) > 4 else ''
print(f'{label}total {sum(per.values()):.2f}, ' + ', '.join(f'{k} {v:.2f}' for v, k in shown)
      + f" | getsockname {per.get('getsockname', 0):.3f} close {per.get('close', 0):.3f}")

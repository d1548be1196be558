#!/usr/bin/env python3
# Summary of held-rounds.sh's rows (issue 15): per round the median of each run's windows (CPU us
# a call, user + system of the proxy's process tree) and the ratios A/B, A/nginx, B/nginx; their
# medians; how many rounds A/B is under 1.0; pooled means with user and system, and the loop's
# sleeps a call (the regime).
# Usage: held-rounds.py ROWS LA LB
import re
import statistics as st
import sys

path, A, B = sys.argv[1:4]
rows = {}
for line in open(path):
    m = re.match(r"round (\d+) (\S+) .*user ([\d.]+), system ([\d.]+), total ([\d.]+).*sleeps ([\d.]+)", line)
    if m:
        rows.setdefault((int(m[1]), m[2]), []).append(tuple(float(m[i]) for i in (5, 3, 4, 6)))
targets = sorted({t for _, t in rows})
ratios = {f"{A}/{B}": [], f"{A}/nginx": [], f"{B}/nginx": []}
print("| round | " + " | ".join(targets) + " | " + " | ".join(ratios) + " |")
for r in sorted({r for r, _ in rows}):
    med = {t: st.median(x[0] for x in rows[(r, t)]) for t in targets if (r, t) in rows}
    got = {}
    if A in med and B in med:
        got[f"{A}/{B}"] = med[A] / med[B]
    for t in (A, B):
        if t in med and "nginx" in med:
            got[f"{t}/nginx"] = med[t] / med["nginx"]
    for k, v in got.items():
        ratios[k].append(v)
    cells = " | ".join(f"{med[t]:.1f}" if t in med else "-" for t in targets)
    print(f"| {r} | {cells} | " + " | ".join(f"{got[k]:.3f}" if k in got else "-" for k in ratios) + " |")
print("| median | " + " | ".join("" for _ in targets) + " | " + " | ".join(f"{st.median(v):.3f}" if v else "-" for v in ratios.values()) + " |")
ab = ratios[f"{A}/{B}"]
if ab:
    print(f"{A}/{B}: {sum(x < 1 for x in ab)} of {len(ab)} rounds under 1.0")
for t in targets:
    v = [x for (_, tt), xs in rows.items() if tt == t for x in xs]
    print(f"{t}: {len(v)} windows, pooled mean {st.mean(x[0] for x in v):.1f} us a call "
          f"(user {st.mean(x[1] for x in v):.1f}, system {st.mean(x[2] for x in v):.1f}), "
          f"sleeps a call (median) {st.median(x[3] for x in v):.2f}")

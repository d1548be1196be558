"""Table for cache-share.sh: per (peer, sweep setting) the medians over rounds [min, max] of CPU
per request, and against the same round's run without the sweeper: the extra CPU per request and
per sweep (extra proxy CPU per second / sweeps per second, in us). Usage: cache-share.py points.jsonl
"""
import json
import statistics
import sys


def med(xs):
    xs = [x for x in xs if x is not None]
    if not xs:
        return ""
    m = statistics.median(xs)
    return f"{m:.2f} [{min(xs):.2f}, {max(xs):.2f}]" if len(xs) > 1 else f"{m:.2f}"


points = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
base = {(p["round"], p["peer"]): p for p in points if p["sweep"] == "off"}
rows = {}
for p in points:
    b = base.get((p["round"], p["peer"]))
    extra = per_sweep = None
    if b and p["sweep"] != "off":
        extra = p["cpu_us"] - b["cpu_us"]
        if p["sweeps_per_s"] > 0:
            per_sweep = extra * p["rps"] / p["sweeps_per_s"]
    rows.setdefault((p["peer"], p["sweep"]), []).append((p, extra, per_sweep))

print("| peer | sweep bytes | CPU us/req | user | system | req/s | switches/req | sweeps/s | extra CPU us/req | proxy us per sweep |")
print("|---|---|---|---|---|---|---|---|---|---|")
for (peer, sw), rs in sorted(rows.items(), key=lambda kv: (kv[0][0], kv[0][1] != "off", kv[0][1])):
    ps = [r[0] for r in rs]
    print(
        f"| {peer} | {sw} | {med([p['cpu_us'] for p in ps])} | {med([p['user_us'] for p in ps])} | "
        f"{med([p['sys_us'] for p in ps])} | {statistics.median(p['rps'] for p in ps):,.0f} | "
        f"{statistics.median(p['switches'] for p in ps):.4f} | {statistics.median(p['sweeps_per_s'] for p in ps):.0f} | "
        f"{med([r[1] for r in rs])} | {med([r[2] for r in rs])} |"
    )

"""Table for turn-taking.sh's points.jsonl (one or more files): per peer, CPU us per request at 1
and 2 workers (median [min, max] over rounds), the step 2w/1w per round, and the step over
nginx's in the same round (issue 18's figure; 1.0 = the same step). With turns (TURNS=1), the
medians of switch-ins, foreign turns, turns after the other worker and from idle per request.
Usage: turn-taking-table.py points.jsonl [more.jsonl ...]
"""
import json
import statistics
import sys

pts = []
for i, f in enumerate(sys.argv[1:]):
    for line in open(f):
        if line.strip():
            p = json.loads(line)
            p["run"] = i
            pts.append(p)
by = {(p["run"], p["round"], p["peer"], p["workers"]): p for p in pts}
peers = list(dict.fromkeys(p["peer"] for p in pts))


def fmt(xs, d=2):
    if not xs:
        return ""
    m = statistics.median(xs)
    return f"{m:.{d}f} [{min(xs):.{d}f}, {max(xs):.{d}f}]" if len(xs) > 1 else f"{m:.{d}f}"


rounds = sorted({(p["run"], p["round"]) for p in pts})
print("| peer | CPU us/req 1w | 2w | step 2w/1w per round | median | step over nginx's, per round | median |")
print("|---|---|---|---|---|---|---|")
for peer in peers:
    one = [by[(r, k, peer, 1)]["cpu_us"] for r, k in rounds if (r, k, peer, 1) in by]
    two = [by[(r, k, peer, 2)]["cpu_us"] for r, k in rounds if (r, k, peer, 2) in by]
    steps, over = [], []
    base = "nginx+spin" if peer.endswith("+spin") and any(q["peer"] == "nginx+spin" for q in pts) else "nginx"
    for r, k in rounds:
        a, b = by.get((r, k, peer, 1)), by.get((r, k, peer, 2))
        if a and b:
            s = b["cpu_us"] / a["cpu_us"]
            steps.append(s)
            na, nb = by.get((r, k, base, 1)), by.get((r, k, base, 2))
            if na and nb:
                over.append(s / (nb["cpu_us"] / na["cpu_us"]))
    print(
        f"| {peer} | {fmt(one)} | {fmt(two)} | {', '.join(f'{s:.3f}' for s in steps)} | {fmt(steps, 3)} | "
        f"{', '.join(f'{s:.3f}' for s in over) if peer != base else '(base: ' + base + ')'} | {fmt(over, 3) if peer != base else ''} |"
    )
if any(p.get("turns") for p in pts):
    print("\n| peer | workers | switch-ins/req | foreign turns/req | after the other worker | from idle |")
    print("|---|---|---|---|---|---|")
    for peer in peers:
        for n in (1, 2):
            ts = [p["turns"] for p in pts if p["peer"] == peer and p["workers"] == n and p.get("turns")]
            if ts:
                print(
                    f"| {peer} | {n} | {fmt([t['switch_ins'] for t in ts], 4)} | {fmt([t['foreign_turns'] for t in ts], 4)} | "
                    f"{fmt([t['after other worker'] for t in ts], 4)} | {fmt([t.get('from_idle', 0) for t in ts], 4)} |"
                )

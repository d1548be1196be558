#!/usr/bin/env python3
"""Summarises one worker's turns line (turns-preload.cjs) for turns.sh.

Usage: turns.py <turns-<tid>.txt> [mark]   (the line of that mark; default the last line)
"""
import json
import sys


def pct(h, bounds, q):
    """The bucket bound at or below which a fraction q of the observations fall."""
    n = h["n"]
    if n == 0:
        return 0
    seen = 0
    for i, c in enumerate(h["counts"]):
        seen += c
        if seen >= q * n:
            return bounds[i] if i < len(bounds) else float("inf")
    return float("inf")


def main():
    path = sys.argv[1]
    mark = sys.argv[2] if len(sys.argv) > 2 else None
    line = None
    with open(path) as f:
        for raw in f:
            x = json.loads(raw)
            if mark is None or x["mark"] == mark:
                line = x
    if line is None:
        print(f"  {path}: no line")
        return
    b = line["bounds"]
    t = line["turns"]
    tot = line["totals"]
    secs = line["seconds"]
    hist = " ".join(
        f"<={bound}:{c}" for bound, c in zip(b + ["inf"], t["counts"]) if c > 0
    )
    print(
        f"  worker {line['tid']}: {tot['turns']} turns in {secs} s, mean {t['sum'] / max(t['n'], 1):.3f} ms, "
        f"p50 <= {pct(t, b, 0.5)} ms, p99 <= {pct(t, b, 0.99)} ms, max {t['max']:.2f} ms; "
        f"{tot['cqes'] / max(tot['batches'], 1):.1f} CQEs per batch, {tot['batches'] / max(tot['turns'], 1):.2f} batches per turn"
    )
    print(f"    turn ms histogram: {hist}")
    if line.get("errors"):
        print(f"    failed completions by errno: {line['errors']}")
    g = line.get("gaps")
    if g is not None and g["n"] > 0:
        ghist = " ".join(f"<={bound}:{c}" for bound, c in zip(b + ["inf"], g["counts"]) if c > 0)
        print(f"    waits between turns: {g['sum']:.0f} ms in all, max {g['max']:.2f} ms; {ghist}")
    busy = t["sum"]
    print(
        f"    time in turns {busy:.0f} ms: batches {tot['batchMs']:.0f}, flushes {tot['flushMs']:.0f}, timers/immediates {tot['timerMs']:.0f} ({tot['timers']} timers)"
    )
    for k in ("minor", "major", "other"):
        g = line["gc"][k]
        if g["n"] == 0:
            continue
        print(
            f"    gc {k}: {g['n']} ({g['n'] / secs:.1f}/s), {g['sum']:.0f} ms, mean {g['sum'] / g['n']:.2f} ms, max {g['max']:.2f} ms"
        )
    lo = line["long"]
    print(
        f"    turns >= {lo['overMs']} ms: {lo['count']} ({lo['withGc']} with a GC in them), {lo['ms']:.0f} ms: GC {lo['gcMs']:.0f}, batches {lo['batchMs']:.0f}, flushes {lo['flushMs']:.0f}, timers {lo['timerMs']:.0f}"
    )
    for x in line["longest"][:8]:
        timers = ", ".join(f"{k} {v}" for k, v in x["timers"].items())
        print(
            f"    {x['ms']} ms (after a {x.get('gapBeforeMs', 0)} ms wait): {x['batches']} batches / {x['cqes']} CQEs ({x['batchMs']} ms), flush {x['flushMs']} ms"
            + (f", {timers}" if timers else "")
            + (f", GC {', '.join(x['gc'])}" if x["gc"] else "")
        )


main()

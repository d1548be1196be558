#!/usr/bin/env python3
"""Bytes per request that no scavenge collected (promoted, or still live in new space at the
mark), by allocation site: (after - before) / requests of survivor-sites-preload.cjs's file. The
profile is sampled, so this is an estimate: one sample per `interval` bytes on average.
The preload's own reads (node:inspector's messages, the site tables it keeps) are promoted too
and are left out: sites whose chain names node:inspector or the preload.
Usage: survivor-sites.py <survivors-TID.json> [top=25]
"""
import json
import sys

d = json.load(open(sys.argv[1]))
top = int(sys.argv[2]) if len(sys.argv) > 2 else 25
req = d['requests']
a, b = d['before'], d['after']
per = {k: (b.get(k, 0) - a.get(k, 0)) / req for k in set(a) | set(b)}
own = {k for k in per if 'node:inspector' in k or 'survivor-sites-preload' in k}
print(f"left out, the preload's own: {sum(per[k] for k in own):,.1f} B per request")
for k in own:
    del per[k]
total = sum(per.values())
print(f"{req:,} requests, sampling interval {d['interval']} B: {total:,.1f} B per request promoted "
      f"or live at the mark")
for k, v in sorted(per.items(), key=lambda kv: -kv[1])[:top]:
    if abs(v) < 0.1:
        break
    print(f'{v:8.1f}  {k}')

#!/usr/bin/env python3
"""Prints gc-ab-preload.cjs's lines (<LOCH_AB_DIR>/ab-<tid>.txt) per request: the sites that made
ArrayBuffers (count and bytes per request) and the rises of process.memoryUsage().arrayBuffers.
Usage: gc-ab.py <LOCH_AB_DIR>/ab-*.txt"""
import json
import sys

for path in sys.argv[1:]:
    for line in open(path):
        d = json.loads(line)
        r = d['requests'] or 1
        print(f"{path}: {d['requests']} requests; arrayBuffers live {d['arrayBuffersBefore']} -> "
              f"{d['arrayBuffersAfter']} B, rises {d.get('arrayBufferRises', 0) / r:.0f} B/request")
        for s in d['sites'][:20]:
            print(f"  {s['n'] / r:8.4f}/request {s['bytes'] / r:7.0f} B/request  {s['site']}")

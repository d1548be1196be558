"""Parts of many-idle.ts's B/conn (issue 18): for each --json file's rounds, every moment's RSS and
its workers' SIGUSR2 heap stats summed (heap total, used, new space, old space, external), as MiB
and as bytes per idle connection over the moment's base (busy 0 for the busy moments, quiet 0 for
quiet N); 'tot-new-old' = heap total less new and old space (code, map, large-object space),
'nonV8' = RSS less heap total (malloc, ArrayBuffer stores, touched binary pages).
Usage: python3 idle-memory/many-idle-parts.py FILE.json...  (readings-2026-12-07h.md)"""
import json
import sys

for f in sys.argv[1:]:
    for r in json.load(open(f)):
        n = r['connections']
        print('==', f.split('/')[-1], r['peer'], 'round', r['round'], n, 'idle')
        moments = [('quiet0', r['quiet0']), ('busy0', r['busy0']), ('busyN', r['busyN'])]
        for m in r.get('busyLate') or []:
            moments.append(('+%ds' % m['afterSeconds'], m['moment']))
        moments.append(('quietN', r['quietN']))
        base = {}
        for name, m in moments:
            ws = m.get('workers') or []
            s = lambda k: sum(w.get(k, 0) for w in ws)
            row = dict(rss=m['rssKiB'] * 1024, heapTot=s('heapTotal'), used=s('heapUsed'),
                       new=s('newSpace'), old=s('oldSpace'), ext=s('external'))
            row['tot-new-old'] = row['heapTot'] - row['new'] - row['old']
            row['nonV8'] = row['rss'] - row['heapTot']
            if name in ('quiet0', 'busy0'):
                base[name] = row
            b = base['quiet0' if name.startswith('quiet') else 'busy0']
            print(name.ljust(7), ' '.join('%s=%.1f' % (k, v / 2**20) for k, v in row.items()),
                  '| B/conn:', ' '.join('%s=%d' % (k, (v - b[k]) / n) for k, v in row.items()))
            print('        new space MiB by worker', [round(w.get('newSpace', 0) / 2**20) for w in ws])

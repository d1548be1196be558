#!/usr/bin/python3
"""counts-scaling.sh's arithmetic (issue 18, worker scaling).

point <proxy dir> <peer> <workers> <size> <round>: one JSON line of per-request numbers from the
files counts-scaling.sh left in <proxy dir>: wrk's output (wrk-a-<size>: the run with nothing
attached, wrk-b-<size>: the counted run), /proc snapshots of every thread before and after each
run (cpu-a/b-<size>, st-a/b-<size>: "tid utime stime voluntary nonvoluntary comm"), perf stat's
--per-thread CSV (perf-<size>) and, for loch, counts-preload.cjs's lines (counts/thread-<tid>.txt,
marks start-<size> and end-<size>).

table <points.jsonl>: medians per (size, peer, workers) with [min, max] over rounds, and the
2-worker / 1-worker ratio of each median.
"""
import json
import os
import statistics
import sys

TICK_US = 1e6 / os.sysconf('SC_CLK_TCK')


def wrk_requests(path):
    with open(path) as f:
        for line in f:
            if 'requests in' in line:
                return int(line.split()[0])
    raise SystemExit(f'{path}: no "requests in" line')


def wrk_seconds(path):
    with open(path) as f:
        for line in f:
            if 'requests in' in line:
                # "12345 requests in 5.00s, 1.23MB read"
                t = line.split('requests in')[1].split(',')[0].strip()
                return float(t[:-1]) if t.endswith('s') and not t.endswith('ms') else float(t[:-2]) / 1000
    return float('nan')


def snapshot(path):
    out = {}
    with open(path) as f:
        for line in f:
            p = line.split()
            if len(p) < 5:
                continue
            out[p[0]] = {
                'utime': int(p[1]),
                'stime': int(p[2]),
                'vol': int(p[3]),
                'invol': int(p[4]),
                'comm': p[5] if len(p) > 5 else '',
            }
    return out


def delta(a, b):
    d = {}
    for tid, after in b.items():
        before = a.get(tid, {'utime': 0, 'stime': 0, 'vol': 0, 'invol': 0})
        d[tid] = {k: after[k] - before[k] for k in ('utime', 'stime', 'vol', 'invol')}
        d[tid]['comm'] = after['comm']
    return d


def perf_per_thread(path):
    by_tid = {}
    with open(path) as f:
        for line in f:
            if line.startswith('#') or not line.strip():
                continue
            p = line.strip().split(',')
            if len(p) < 4:
                continue
            tid = p[0].rsplit('-', 1)[-1]
            try:
                v = float(p[1])
            except ValueError:
                v = 0.0
            by_tid.setdefault(tid, {})[p[3]] = v
    return by_tid


def preload(pdir, size):
    """Per worker tid: counter deltas between the marks start-<size> and end-<size>."""
    out = {}
    cdir = os.path.join(pdir, 'counts')
    if not os.path.isdir(cdir):
        return out
    for name in os.listdir(cdir):
        if not name.startswith('thread-'):
            continue
        marks = {}
        with open(os.path.join(cdir, name)) as f:
            for line in f:
                j = json.loads(line)
                marks[j['mark']] = j
        a, b = marks.get(f'start-{size}'), marks.get(f'end-{size}')
        if a is None or b is None:
            continue
        out[str(b['tid'])] = {
            k: b[k] - a[k]
            for k in ('submits', 'callbacks', 'minor', 'major', 'other', 'minorMs', 'majorMs', 'otherMs', 'active', 'idle')
        }
    return out


def point(pdir, peer, workers, size, rnd):
    req_a = wrk_requests(os.path.join(pdir, f'wrk-a-{size}'))
    sec_a = wrk_seconds(os.path.join(pdir, f'wrk-a-{size}'))
    cpu = delta(snapshot(os.path.join(pdir, f'cpu-a-{size}')), snapshot(os.path.join(pdir, f'cpu-b-{size}')))
    ut = sum(t['utime'] for t in cpu.values()) * TICK_US
    st = sum(t['stime'] for t in cpu.values()) * TICK_US
    req = wrk_requests(os.path.join(pdir, f'wrk-b-{size}'))
    sw = delta(snapshot(os.path.join(pdir, f'st-a-{size}')), snapshot(os.path.join(pdir, f'st-b-{size}')))
    perf = perf_per_thread(os.path.join(pdir, f'perf-{size}'))
    pre = preload(pdir, size)

    def total(ev, tids=None):
        return sum(v.get(ev, 0.0) for t, v in perf.items() if tids is None or t in tids)

    waits_ev = ('syscalls:sys_enter_epoll_wait', 'syscalls:sys_enter_epoll_pwait', 'syscalls:sys_enter_epoll_pwait2')
    # The threads that serve: nginx's workers (every process but the master: the one whose
    # epoll waits are few), loch's worker threads (the preload's tids with completion callbacks:
    # tsx's module-hooks thread runs the preload too, and serves nothing).
    pre = {t: p for t, p in pre.items() if p['callbacks'] > 0}
    if peer.startswith('loch'):
        serving = set(pre.keys())
    else:
        waits_by = {t: sum(v.get(e, 0.0) for e in waits_ev) for t, v in perf.items()}
        serving = {t for t, w in waits_by.items() if w > 100}
    waits = sum(total(e, serving) for e in waits_ev)
    r = {
        'peer': peer,
        'workers': int(workers),
        'size': int(size),
        'round': int(rnd),
        'rps': round(req_a / sec_a),
        'cpu_us': round((ut + st) / req_a, 2),
        'user_us': round(ut / req_a, 2),
        'sys_us': round(st / req_a, 2),
        'requests': req,
        'task_clock_us': round(total('task-clock') * 1000 / req, 2),
        'syscalls': round(total('raw_syscalls:sys_enter') / req, 3),
        'epoll_waits': round(sum(total(e) for e in waits_ev) / req, 4),
        'io_uring_enter': round(total('syscalls:sys_enter_io_uring_enter') / req, 4),
        'futex': round(total('syscalls:sys_enter_futex') / req, 4),
        'sqes': round(total('io_uring:io_uring_submit_req') / req, 3),
        'cqes': round(total('io_uring:io_uring_complete') / req, 3),
        'poll_arms': round(total('io_uring:io_uring_poll_arm') / req, 4),
        'task_adds': round(total('io_uring:io_uring_task_add') / req, 3),
        'ctx_switches': round(total('context-switches') / req, 4),
        'migrations': round(total('cpu-migrations') / req, 5),
        'vol_switches': round(sum(t['vol'] for t in sw.values()) / req, 4),
        'invol_switches': round(sum(t['invol'] for t in sw.values()) / req, 4),
        'req_per_wakeup': round(req / waits, 2) if waits else None,
        'serving_threads': len(serving),
    }
    if peer.startswith('loch') and pre:
        cb = sum(p['callbacks'] for p in pre.values())
        sub = sum(p['submits'] for p in pre.values())
        r['req_per_batch'] = round(req / cb, 2) if cb else None
        r['submit_calls'] = round(sub / req, 4)
        r['gc_minor_per_kreq'] = round(1000 * sum(p['minor'] for p in pre.values()) / req, 3)
        r['gc_major_per_kreq'] = round(1000 * sum(p['major'] + p['other'] for p in pre.values()) / req, 4)
        r['gc_us'] = round(1000 * sum(p['minorMs'] + p['majorMs'] + p['otherMs'] for p in pre.values()) / req, 3)
        r['elu_active_us'] = round(1000 * sum(p['active'] for p in pre.values()) / req, 2)
        # Share of the requests per worker, by completions of that thread (4 a request).
        cq = {t: perf.get(t, {}).get('io_uring:io_uring_complete', 0.0) for t in pre}
        tot = sum(cq.values()) or 1
        r['worker_share'] = sorted(round(v / tot, 3) for v in cq.values())
        # Per worker: requests per wakeup and per batch (requests by completions / 4).
        r['per_worker'] = [
            {
                'req_est': round(cq[t] / 4),
                'waits': int(sum(perf.get(t, {}).get(e, 0.0) for e in waits_ev)),
                'callbacks': int(pre[t]['callbacks']),
                'enters': int(perf.get(t, {}).get('syscalls:sys_enter_io_uring_enter', 0.0)),
            }
            for t in sorted(pre)
        ]
    print(json.dumps(r))


# The table's rows. CPU and requests/s are time (load-dependent); the rest are counts. The point
# lines also carry task-clock under perf, GC milliseconds and event-loop active time (wall time
# on a loaded machine: left out of the table).
KEYS = [
    'cpu_us', 'user_us', 'sys_us', 'rps', 'syscalls', 'epoll_waits', 'io_uring_enter', 'sqes', 'cqes',
    'req_per_wakeup', 'req_per_batch', 'submit_calls', 'ctx_switches', 'vol_switches', 'invol_switches',
    'migrations', 'futex', 'gc_minor_per_kreq', 'gc_major_per_kreq',
]


def table(path):
    pts = [json.loads(l) for l in open(path) if l.strip()]
    groups = {}
    for p in pts:
        groups.setdefault((p['size'], p['peer'], p['workers']), []).append(p)
    for size in sorted({k[0] for k in groups}):
        print(f'\n## {size} B (median [min, max] over rounds; 2w/1w = ratio of medians)\n')
        peers = sorted({k[1] for k in groups if k[0] == size}, key=lambda x: (x != 'nginx', x))
        cols = []
        for peer in peers:
            for w in sorted({k[2] for k in groups if k[0] == size and k[1] == peer}):
                cols.append((peer, w))
            if (peer, 1) in cols and (peer, 2) in cols:
                cols.append((peer, '2w/1w'))
        print('| per request | ' + ' | '.join(f'{p} {w}{"w" if w != "2w/1w" else ""}' for p, w in cols) + ' |')
        print('|---|' + '---|' * len(cols))
        for k in KEYS:
            cells = []
            med = {}
            for peer, w in cols:
                if w == '2w/1w':
                    a, b = med.get((peer, 1)), med.get((peer, 2))
                    cells.append(f'{b / a:.2f}x' if a and b is not None else '')
                    continue
                vals = [p[k] for p in groups[(size, peer, w)] if p.get(k) is not None]
                if not vals:
                    cells.append('')
                    continue
                m = statistics.median(vals)
                med[(peer, w)] = m
                cells.append(f'{m:.4g} [{min(vals):.4g}, {max(vals):.4g}]' if len(vals) > 1 else f'{m:.4g}')
            if any(cells):
                print(f'| {k} | ' + ' | '.join(cells) + ' |')


if __name__ == '__main__':
    if sys.argv[1] == 'point':
        point(*sys.argv[2:7])
    else:
        table(sys.argv[2])

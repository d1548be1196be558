#!/usr/bin/python3
"""counts-batch.sh's arithmetic (issue 18, worker scaling).

point <dir> <peer> <conns>: one JSON line: requests (wrk), user-space instructions per request
(callgrind's totals of <dir>/<peer>-c<conns>.cg), epoll waits, io_uring_enter calls and syscalls
per request (perf stat), and for loch the completion callbacks and ring submit calls per request
(counts-preload.cjs's marks start-c<conns> / end-c<conns>).

categories <dir> <peer>: self Ir per request by category (GC, compiler, JS, builtins, libuv,
N-API, node, libc) at every load, and a fit of the event loop's part (all but GC and compiler)
against waits per request and (loch) against completion callbacks per request.

turn <dir> <peer> <conns> [perf map]: self Ir per epoll wait of the functions that run once per
event-loop turn or callback (PER_TURN): the fixed cost of a wakeup, named.

diff <dir> <peer> <small conns> <large conns> [perf map]: self Ir per request by function at the
two loads and their difference (what fewer requests per wakeup cost, and where); with loch's
perf map (counts-batch.sh's PERF_MAP=1 runs loch with --perf-basic-prof) JIT code is named.

table <points.jsonl>: the points per peer (`categories` has the fit: GC and TurboFan's work,
which a warm-up leaves in the early loads, would swamp a fit of the totals).
"""
import json
import os
import sys


def wrk_requests(path):
    for line in open(path):
        if 'requests in' in line:
            return int(line.split()[0])
    raise SystemExit(f'{path}: no "requests in" line')


def cg_total(path):
    # A dump's header says 'summary: 0' with --instr-atstart=no; its 'totals:' line is the count.
    total = None
    for line in open(path):
        if line.startswith('totals:'):
            total = int(line.split()[1])
    if total is None:
        raise SystemExit(f'{path}: no totals')
    return total


def perf(path):
    out = {}
    for line in open(path):
        if line.startswith('#') or not line.strip():
            continue
        p = line.strip().split(',')
        try:
            out[p[2]] = float(p[0])
        except (ValueError, IndexError):
            pass
    return out


def preload(pdir, c):
    cdir = os.path.join(pdir, 'counts')
    best = None
    if not os.path.isdir(cdir):
        return None
    for name in os.listdir(cdir):
        if not name.startswith('thread-'):
            continue
        marks = {}
        for line in open(os.path.join(cdir, name)):
            j = json.loads(line)
            marks[j['mark']] = j
        a, b = marks.get(f'start-c{c}'), marks.get(f'end-c{c}')
        if a is None or b is None:
            continue
        d = {k: b[k] - a[k] for k in ('callbacks', 'submits', 'minor', 'major')}
        if best is None or d['callbacks'] > best['callbacks']:
            best = d
    return best


def point(d, peer, c):
    req = wrk_requests(os.path.join(d, peer, f'wrk-c{c}'))
    ir = cg_total(os.path.join(d, f'{peer}-c{c}.cg'))
    pf = perf(os.path.join(d, peer, f'perf-c{c}'))
    waits = pf.get('syscalls:sys_enter_epoll_wait', 0) + pf.get('syscalls:sys_enter_epoll_pwait', 0)
    if req == 0:
        print(json.dumps({'peer': peer, 'conns': int(c), 'requests': 0}))
        return
    r = {
        'peer': peer,
        'conns': int(c),
        'requests': req,
        'ir_per_req': round(ir / req),
        'waits_per_req': round(waits / req, 4),
        'req_per_wait': round(req / waits, 2) if waits else None,
        'enters_per_req': round(pf.get('syscalls:sys_enter_io_uring_enter', 0) / req, 4),
        'syscalls_per_req': round(pf.get('raw_syscalls:sys_enter', 0) / req, 3),
    }
    pre = preload(os.path.join(d, peer), c)
    if pre:
        r['callbacks_per_req'] = round(pre['callbacks'] / req, 4)
        r['submits_per_req'] = round(pre['submits'] / req, 4)
        r['gc_minor_per_kreq'] = round(1000 * pre['minor'] / req, 3)
    print(json.dumps(r))


def table(path):
    pts = [p for p in (json.loads(l) for l in open(path) if l.strip()) if p['requests'] > 0]
    for peer in sorted({p['peer'] for p in pts}, key=lambda x: x != 'nginx'):
        rows = [p for p in pts if p['peer'] == peer]
        print(f'\n### {peer}\n')
        print('| wrk -c | requests | Ir / request (all threads) | epoll waits / request | requests / wait | io_uring_enter / request | ring callbacks / request | submit calls / request |')
        print('|---|---|---|---|---|---|---|---|')
        for p in rows:
            print(f"| {p['conns']} | {p['requests']:,} | {p['ir_per_req']:,} | {p['waits_per_req']} | {p['req_per_wait']} | "
                  f"{p['enters_per_req']} | {p.get('callbacks_per_req', '')} | {p.get('submits_per_req', '')} |")


def fit(key, xs, ys, xlabel='waits/request'):
        n = len(xs)
        if n >= 2:
            mx, my = sum(xs) / n, sum(ys) / n
            sxx = sum((x - mx) ** 2 for x in xs)
            if sxx > 0:
                b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
                a = my - b * mx
                res = [y - (a + b * x) for x, y in zip(xs, ys)]
                print(f'\nfit of {key}: Ir/request = {a:,.0f} + {b:,.0f} x {xlabel} '
                      f'(residuals {", ".join(f"{r:+,.0f}" for r in res)})')


def perf_map(path):
    """V8's --perf-basic-prof map (/tmp/perf-<pid>.map): sorted (start, end, name)."""
    import bisect
    rows = []
    for line in open(path):
        parts = line.rstrip('\n').split(' ', 2)
        if len(parts) == 3:
            start, size = int(parts[0], 16), int(parts[1], 16)
            rows.append((start, start + size, parts[2]))
    rows.sort()
    starts = [r[0] for r in rows]

    def resolve(addr):
        i = bisect.bisect_right(starts, addr) - 1
        if i >= 0 and rows[i][0] <= addr < rows[i][1]:
            return 'JS ' + rows[i][2]
        return None
    return resolve


def self_by_function(path, resolve=None):
    """Exclusive Ir by function (callgrind_annotate), folding recursion suffixes ('2). With
    `resolve` (perf_map()), JIT code is named by V8's perf map."""
    import subprocess
    out = subprocess.run(['callgrind_annotate', '--threshold=100', path], capture_output=True, text=True).stdout
    fns = {}
    started = False
    for line in out.splitlines():
        if 'file:function' in line:
            started = True
            continue
        if not started:
            continue
        line = line.strip()
        if not line or not line[0].isdigit():
            continue
        ir_text, _, rest = line.partition(' ')
        try:
            ir = int(ir_text.replace(',', ''))
        except ValueError:
            continue
        name = rest.split(')  ', 1)[-1] if ')  ' in rest else rest
        name = name.split(':', 1)[-1].split(' [')[0].split("'")[0]
        if name.startswith('0x'):
            named = resolve(int(name, 16)) if resolve is not None else None
            name = named if named is not None else 'JIT code (no symbol under valgrind)'
        fns[name] = fns.get(name, 0) + ir
    return fns


CATEGORIES = (
    # (category, test on the function name); the first that matches wins.
    ('gc', lambda f: any(k in f for k in (
        'Heap::', 'Mark', 'Sweep', 'Scaveng', 'Evacuat', 'Concurrent', 'heap::base::', 'GCTracer',
        'MemoryChunk', 'PagedSpace', 'CompactionSpace', 'SemiSpace', 'NewSpace', 'LargeObjectSpace',
        'RememberedSet', 'SlotSet', 'IterateObjectCache', 'IteratePointers', 'SizeFromMap',
        'ActiveSystemPages', 'FreeList', 'popcount'))),
    ('compile', lambda f: any(k in f for k in (
        'compiler::', 'Compile', 'Baseline', 'maglev', 'Maglev', 'interpreter::', 'Parser', 'Scanner',
        'AstNode', 'Ast', 'Zone', 'Deoptimiz', 'SourcePosition', 'BytecodeArray', 'Turbofan', 'wasm'))),
    ('JS (JIT code)', lambda f: f.startswith('JIT code') or f.startswith('JS ')),
    ('V8 builtins', lambda f: f.startswith('Builtins_')),
    ('libuv', lambda f: f.startswith('uv_') or f.startswith('uv__')),
    ('loch native + N-API', lambda f: f.startswith('loch::') or f.startswith('napi_') or 'Napi::' in f or 'v8impl' in f),
    ('node', lambda f: f.startswith('node::')),
    ('V8 runtime (other)', lambda f: f.startswith('v8::')),
    ('libc + other', lambda f: True),
)


def categories(path):
    out = {}
    for fn, ir in self_by_function(path).items():
        for name, test in CATEGORIES:
            if test(fn):
                out[name] = out.get(name, 0) + ir
                break
    return out


def by_category(d, peer):
    """Self Ir per request by category at every load of `peer`, and a fit of what the event loop
    ran (all but gc and compile) against waits per request."""
    pts = {}
    for l in open(os.path.join(d, 'points.jsonl')):
        p = json.loads(l)
        if p['peer'] == peer and p['requests'] > 0:
            pts[p['conns']] = p
    conns = sorted(pts)
    cats = {c: categories(os.path.join(d, f'{peer}-c{c}.cg')) for c in conns}
    names = [n for n, _ in CATEGORIES]
    print(f'{peer}: self Ir per request by category')
    print('| category | ' + ' | '.join(f'-c{c}' for c in conns) + ' |')
    print('|---|' + '---|' * len(conns))
    for n in names:
        print(f'| {n} | ' + ' | '.join(f'{cats[c].get(n, 0) / pts[c]["requests"]:,.0f}' for c in conns) + ' |')
    loop = {c: sum(v for k, v in cats[c].items() if k not in ('gc', 'compile')) / pts[c]['requests'] for c in conns}
    print('| **event loop (all but gc, compile)** | ' + ' | '.join(f'**{loop[c]:,.0f}**' for c in conns) + ' |')
    print('| epoll waits / request | ' + ' | '.join(f'{pts[c]["waits_per_req"]}' for c in conns) + ' |')
    if 'callbacks_per_req' in pts[conns[0]]:
        print('| ring callbacks / request | ' + ' | '.join(f'{pts[c]["callbacks_per_req"]}' for c in conns) + ' |')
    fit('event loop Ir', [pts[c]['waits_per_req'] for c in conns], [loop[c] for c in conns])
    if 'callbacks_per_req' in pts[conns[0]]:
        fit('event loop Ir', [pts[c]['callbacks_per_req'] for c in conns], [loop[c] for c in conns],
            'ring callbacks/request')


# Functions that run once per event-loop turn or per callback into JavaScript, whatever the turn
# carries (libuv's loop, Node's callback scopes and immediates, the microtask checkpoint, the
# ring's poll callback and submit, the metrics' per-turn clock).
PER_TURN = (
    'uv_run', 'uv__io_poll', 'uv__run_check', 'uv__hrtime', 'uv__run_timers', 'epoll_pwait',
    'node::InternalCallbackScope', 'node::Environment::CheckImmediate', 'napi_make_callback',
    'node::AsyncHooks::push_async_context', 'node::AsyncHooks::pop_async_context',
    'v8::internal::MicrotaskQueue::', 'Builtins_RunMicrotasks', 'Builtins_JSRunMicrotasksEntry',
    'Builtins_EnqueueMicrotask', 'v8::internal::Execution::TryRunMicrotasks',
    'loch::Ring::OnPoll', 'loch::Ring::Submit', 'JS JS:*processImmediate', 'JS JS:^processImmediate',
    'JS JS:^runNextTicks', 'JS JS:*runNextTicks', 'turnNow', 'JS JS:^expire', 'JS JS:*expire',
    'queueMicrotask', 'flushBound', 'onCompleteBound', 'openBatch', 'closeBatch',
)


def turn(d, peer, c, mapfile=None):
    """Self Ir per epoll wait of the functions that run once per turn (PER_TURN), at one load."""
    pts = {}
    for l in open(os.path.join(d, 'points.jsonl')):
        p = json.loads(l)
        if p['peer'] == peer:
            pts[p['conns']] = p
    p = pts[int(c)]
    waits = p['waits_per_req'] * p['requests']
    resolve = perf_map(mapfile) if mapfile else None
    fns = self_by_function(os.path.join(d, f'{peer}-c{c}.cg'), resolve)
    rows = sorted(((v, k) for k, v in fns.items() if any(t in k for t in PER_TURN)), reverse=True)
    print(f'{peer} -c{c}: {p["requests"]:,} requests, {waits:,.0f} epoll waits, '
          f'{p.get("callbacks_per_req", 0) * p["requests"]:,.0f} ring callbacks')
    print('| function (self) | Ir per epoll wait | Ir per request |')
    print('|---|---|---|')
    for v, k in rows:
        if v / waits < 5:
            continue
        print(f'| `{k[:100]}` | {v / waits:,.0f} | {v / p["requests"]:,.0f} |')
    tot = sum(v for v, _ in rows)
    print(f'| all of them | {tot / waits:,.0f} | {tot / p["requests"]:,.0f} |')


def diff(d, peer, small, large, top=30, mapfile=None):
    """Per request Ir by function at conns=small minus at conns=large: what fewer requests per
    wakeup cost, and where."""
    pts = {}
    for l in open(os.path.join(d, 'points.jsonl')):
        p = json.loads(l)
        if p['peer'] == peer:
            pts[p['conns']] = p
    resolve = perf_map(mapfile) if mapfile else None
    a = self_by_function(os.path.join(d, f'{peer}-c{small}.cg'), resolve)
    b = self_by_function(os.path.join(d, f'{peer}-c{large}.cg'), resolve)
    ra, rb = pts[int(small)]['requests'], pts[int(large)]['requests']
    wa, wb = pts[int(small)]['waits_per_req'], pts[int(large)]['waits_per_req']
    rows = []
    for fn in set(a) | set(b):
        cat = next(n for n, test in CATEGORIES if test(fn))
        if cat in ('gc', 'compile'):
            continue
        rows.append((a.get(fn, 0) / ra - b.get(fn, 0) / rb, a.get(fn, 0) / ra, b.get(fn, 0) / rb, fn))
    rows.sort(reverse=True)
    print(f'{peer}: self Ir per request (event loop: GC and compiler left out) at -c{small} ({wa} waits/request) minus at -c{large} ({wb}); '
          f'per extra wait: / {wa - wb:.3f}')
    print('| function | -c%s | -c%s | difference | per extra wait |' % (small, large))
    print('|---|---|---|---|---|')
    for dv, va, vb, fn in rows[:top]:
        print(f'| `{fn[:90]}` | {va:,.0f} | {vb:,.0f} | {dv:+,.0f} | {dv / (wa - wb):+,.0f} |')
    tot = sum(r[0] for r in rows)
    print(f'| all | | | {tot:+,.0f} | {tot / (wa - wb):+,.0f} |')


if __name__ == '__main__':
    if sys.argv[1] == 'point':
        point(*sys.argv[2:5])
    elif sys.argv[1] == 'diff':
        diff(*sys.argv[2:6], mapfile=sys.argv[6] if len(sys.argv) > 6 else None)
    elif sys.argv[1] == 'turn':
        turn(*sys.argv[2:5], mapfile=sys.argv[5] if len(sys.argv) > 5 else None)
    elif sys.argv[1] == 'categories':
        by_category(*sys.argv[2:4])
    else:
        table(sys.argv[2])

#!/usr/bin/env python3
"""Per-call counts from wakeups.sh's trace (perf script -F comm,tid,cpu,time,event,trace).

Usage: wakeups-trace.py <perf script text> <calls> <tid of the proxy thread>
"""
import collections
import re
import sys

path, calls, tid = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
NAMES = {0: 'read', 1: 'write', 19: 'readv', 20: 'writev', 44: 'sendto', 45: 'recvfrom', 46: 'sendmsg',
         47: 'recvmsg', 232: 'epoll_wait', 281: 'epoll_pwait', 441: 'epoll_pwait2', 233: 'epoll_ctl',
         426: 'io_uring_enter', 202: 'futex', 3: 'close', 288: 'accept4', 43: 'accept', 42: 'connect',
         54: 'setsockopt', 55: 'getsockopt', 51: 'getsockname', 72: 'fcntl', 9: 'mmap', 11: 'munmap',
         10: 'mprotect', 28: 'madvise', 228: 'clock_gettime', 96: 'gettimeofday', 14: 'rt_sigprocmask',
         39: 'getpid', 186: 'gettid', 318: 'getrandom', 7: 'poll', 271: 'ppoll', 16: 'ioctl', 41: 'socket'}
WAITS = {'epoll_wait', 'epoll_pwait', 'epoll_pwait2'}
line_re = re.compile(r'^\s*(.+?)\s+(\d+)\s+\[(\d+)\]\s+([\d.]+):\s+(\S+):\s+(.*)$')
enter_re = re.compile(r'NR (\d+) \(([0-9a-f, ]*)\)')
exit_re = re.compile(r'NR (\d+) = (-?\d+)')
ring_re = re.compile(r'ring (0x[0-9a-f]+)')

syscalls = collections.Counter()
kinds = collections.Counter()
pending = None  # (name, args) of the thread's syscall in progress
sleeps = preempts = 0
wakers = collections.Counter()
tw_runs = tw_items = 0
task_adds = collections.Counter()
poll_arms = collections.Counter()
punts = collections.Counter()
submits = collections.Counter()
local_runs = 0
rings = set()
slept_in = collections.Counter()  # the syscall the thread slept in
after_wake = collections.Counter()  # how the syscall it slept in returned
in_sleep = False


def errname(r):
    return {-4: 'EINTR', -11: 'EAGAIN', -62: 'ETIME', -16: 'EBUSY'}.get(r, str(r))


for line in open(path):
    m = line_re.match(line)
    if not m:
        continue
    comm, t, cpu, _ts, event, rest = m.groups()
    t = int(t)
    if event == 'raw_syscalls:sys_enter' and t == tid:
        e = enter_re.search(rest)
        if not e:
            continue
        nr = int(e.group(1))
        args = [int(x, 16) for x in e.group(2).split(', ') if x]
        pending = (NAMES.get(nr, f'nr{nr}'), args)
    elif event == 'raw_syscalls:sys_exit' and t == tid:
        e = exit_re.search(rest)
        if not e:
            continue
        nr, ret = int(e.group(1)), int(e.group(2))
        name = NAMES.get(nr, f'nr{nr}')
        syscalls[name] += 1
        args = pending[1] if pending and pending[0] == name else None
        if name in WAITS:
            timeout = args[3] if args else None
            if timeout is not None and timeout >= 1 << 31:
                timeout -= 1 << 32
            tk = 'timeout 0' if timeout == 0 else ('timeout -1' if timeout == -1 else 'timeout >0')
            rk = errname(ret) if ret < 0 else ('0 events' if ret == 0 else ('1 event' if ret == 1 else '2+ events'))
            kinds[f'{name} ({tk}) -> {rk}'] += 1
        elif name == 'io_uring_enter' and args:
            to_submit, min_complete, flags = args[1], args[2], args[3]
            sub = '0' if to_submit == 0 else ('1' if to_submit == 1 else '2+')
            rk = errname(ret) if ret < 0 else ('0' if ret == 0 else ('1' if ret == 1 else '2+'))
            kinds[f'io_uring_enter (to_submit {sub}, min_complete {min_complete}, flags {flags:#x}) -> {rk}'] += 1
        elif ret < 0:
            kinds[f'{name} -> {errname(ret)}'] += 1
        if in_sleep:
            after_wake[f'{name} -> {errname(ret) if ret < 0 else ("0" if ret == 0 else ">0")}'] += 1
            in_sleep = False
        pending = None
    elif event == 'sched:sched_switch':
        pm = re.search(r'prev_pid=(\d+) .*prev_state=(\S+) ==> .*next_pid=(\d+)', rest)
        if pm and int(pm.group(1)) == tid:
            if pm.group(2).startswith('R'):
                preempts += 1
            else:
                sleeps += 1
                in_sleep = True
                slept_in[pending[0] if pending else '?'] += 1
    elif event == 'sched:sched_wakeup':
        wm = re.search(r'pid=(\d+)', rest)
        if wm and int(wm.group(1)) == tid:
            wakers[f'{comm.strip()} on CPU {int(cpu)}' + (' (itself)' if t == tid else '')] += 1
    elif event == 'io_uring:io_uring_submit_req' and t == tid:
        r = ring_re.search(rest)
        if r:
            rings.add(r.group(1))
        om = re.search(r'opcode (\w+)', rest)
        submits[om.group(1) if om else '?'] += 1
    elif event == 'io_uring:io_uring_task_work_run' and t == tid:
        tw_runs += 1
        cm = re.search(r'count (\d+)', rest)
        if cm:
            tw_items += int(cm.group(1))
    elif event == 'io_uring:io_uring_task_add':
        r = ring_re.search(rest)
        om = re.search(r'opcode (\w+)', rest)
        task_adds[(r.group(1) if r else '?', om.group(1) if om else '?', 'by the thread' if t == tid else 'by another task')] += 1
    elif event == 'io_uring:io_uring_poll_arm':
        r = ring_re.search(rest)
        om = re.search(r'opcode (\w+)', rest)
        poll_arms[(r.group(1) if r else '?', om.group(1) if om else '?')] += 1
    elif event == 'io_uring:io_uring_queue_async_work':
        r = ring_re.search(rest)
        om = re.search(r'opcode (\w+)', rest)
        punts[(r.group(1) if r else '?', om.group(1) if om else '?')] += 1
    elif event == 'io_uring:io_uring_local_work_run':
        local_runs += 1

per = lambda n: f'{n / calls:.3f}'
print(f"syscalls {per(sum(syscalls.values()))}: " + ', '.join(f'{k} {per(v)}' for k, v in syscalls.most_common() if v / calls >= 0.002))
for k, v in sorted(kinds.items(), key=lambda kv: -kv[1]):
    if v / calls >= 0.002:
        print(f'  {k}: {per(v)}')
print(f'sleeps {per(sleeps)} (in: ' + ', '.join(f'{k} {per(v)}' for k, v in slept_in.most_common()) +
      f'), preemptions {per(preempts)}')
print('  the syscall it slept in returned: ' + ', '.join(f'{k} {per(v)}' for k, v in after_wake.most_common()))
print('  woken by: ' + ', '.join(f'{k} {per(v)}' for k, v in wakers.most_common(6)))
if submits or tw_runs or task_adds:
    mine = lambda c: {k: v for k, v in c.items() if k[0] in rings}
    print(f'io_uring submissions {per(sum(submits.values()))}: ' + ', '.join(f'{k} {per(v)}' for k, v in submits.most_common() if v / calls >= 0.002))
    ta = mine(task_adds)
    print(f'task work queued for the ring {per(sum(ta.values()))}: ' + ', '.join(f'{k[1]} {k[2]} {per(v)}' for k, v in sorted(ta.items(), key=lambda kv: -kv[1]) if v / calls >= 0.002))
    print(f'task work runs in the thread {per(tw_runs)}, items run {per(tw_items)}; DEFER_TASKRUN local runs {per(local_runs)}')
    pa = mine(poll_arms)
    print(f'poll arms {per(sum(pa.values()))}: ' + ', '.join(f'{k[1]} {per(v)}' for k, v in pa.items()))
    pu = mine(punts)
    print(f'punts to io-wq {per(sum(pu.values()))}: ' + ', '.join(f'{k[1]} {per(v)}' for k, v in pu.items()))

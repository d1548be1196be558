"""Parser for turn-taking.sh: from `perf script` of sched:sched_switch on all CPUs, how often a
proxy worker starts running on a core after some other task ran there since its own last turn
("foreign turns": its caches hold the other task's lines), and whose turns those were.

Usage: turn-taking.py SCRIPT_TXT REQUESTS WORKER_TIDS(comma) PROXY_TIDS(comma) WRK_PIDS BACKEND_PIDS
Prints one JSON object: per request, worker switch-ins, foreign turns, and the foreign turns by
who ran before: the other worker of the same proxy, another thread of the proxy (loch's main
thread, V8's platform threads), wrk, the backend nginx, anything else (kernel threads, perf,
others' processes); plus migrations (a worker starting on a CPU other than its last one), and switch-ins from the idle task
("from_idle": the vCPU may have halted, and the host run others on the core meanwhile).
"""
import json
import re
import sys

path, requests, workers, proxy, wrk, backend = sys.argv[1:7]
requests = int(requests)
workers = {int(t) for t in workers.split(",") if t}
proxy = {int(t) for t in proxy.split(",") if t}
wrk = {int(t) for t in wrk.split(",") if t}
backend = {int(t) for t in backend.split(",") if t}
pat = re.compile(r"\[(\d+)\].*prev_comm=(.*) prev_pid=(\d+).*==> next_comm=.* next_pid=(\d+)")
last_on_cpu = {}  # cpu -> last non-idle tid that ran there
last_cpu = {}  # worker tid -> cpu of its last turn
ins = foreign = migrations = from_idle = 0
comm = {}  # tid -> its name when it last switched out
others = {}  # name -> foreign turns after it, for "other"
by = {"other worker": 0, "proxy thread": 0, "wrk": 0, "backend": 0, "other": 0}
for line in open(path, errors="replace"):
    m = pat.search(line)
    if not m:
        continue
    cpu, prev, nxt = int(m.group(1)), int(m.group(3)), int(m.group(4))
    if prev != 0:
        last_on_cpu[cpu] = prev
        comm[prev] = m.group(2).strip()
    if nxt in workers:
        ins += 1
        if prev == 0:
            from_idle += 1
        before = last_on_cpu.get(cpu)
        moved = last_cpu.get(nxt, cpu) != cpu
        if moved:
            migrations += 1
        if before is not None and (before != nxt or moved):
            foreign += 1
            if before in workers:
                by["other worker"] += 1
            elif before in proxy:
                by["proxy thread"] += 1
            elif before in wrk:
                by["wrk"] += 1
            elif before in backend:
                by["backend"] += 1
            else:
                by["other"] += 1
                name = re.sub(r"[/:]?\d+$", "", comm.get(before, "?"))
                others[name] = others.get(name, 0) + 1
        last_cpu[nxt] = cpu
        last_on_cpu[cpu] = nxt
out = {
    "switch_ins": round(ins / requests, 4),
    "foreign_turns": round(foreign / requests, 4),
    "from_idle": round(from_idle / requests, 4),
    "migrations": round(migrations / requests, 5),
}
out.update({"after " + k: round(v / requests, 4) for k, v in by.items()})
top = sorted(others.items(), key=lambda kv: -kv[1])[:4]
out["other, by name"] = {k: round(v / requests, 4) for k, v in top}
print(json.dumps(out))

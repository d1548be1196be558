"""Samples where a proxy's worker threads are, for turn-taking.sh's WINDOWS: every 10 ms, each
thread's state and the CPU it last ran on (/proc/<tid>/stat fields 3 and 39: a thread of loch
or an nginx worker process alike), one line
"time state:cpu state:cpu ..." to stdout, until killed. Usage: placement-sampler.py PID TID,TID
"""
import sys
import time

pid, tids = sys.argv[1], sys.argv[2].split(",")
out = sys.stdout
while True:
    row = [f"{time.time():.3f}"]
    for t in tids:
        try:
            rest = open(f"/proc/{t}/stat").read().rsplit(")", 1)[1].split()
            row.append(f"{rest[0]}:{rest[36]}")
        except OSError:
            row.append("?:-1")
    out.write(" ".join(row) + "\n")
    out.flush()
    time.sleep(0.01)

"""Reads callgrind's out files (callgrind.out.<pid>[.<thread>]) for the bench scripts.

One reader of the format's rules, so that each script only says what it sums:
- names are compressed: "(12) name" the first time, "(12)" after; the tables are shared by the
  dumps of one process (with --separate-threads=yes a name is defined in the first thread's file
  that used it), so one Names() serves all the dumps of a run, read in any order;
- fl/fi/fe/cfl/cfi share the file table, fn/cfn the function table, ob/cob the object table;
- a cost line (position, then the events of the "events:" line) charges the current fn; the one
  cost line right after "calls=N ..." is the inclusive cost of the call to the cfn named before
  it, not self cost of fn;
- a new fn= forgets the callee named under the previous fn.
`where["fl"]` is the fl= line's file only (fi/fe, files of inlined code, are read for their names
but do not change it): the scripts classify a function by the file it is defined in.
"""
import bisect
import collections
import os
import re
import shutil
import subprocess

_COMPRESSED = re.compile(r"^\((\d+)\)(?: (.*))?$")
_TABLE = {"fl": "fl", "fi": "fl", "fe": "fl", "cfl": "fl", "cfi": "fl", "fn": "fn", "cfn": "fn", "ob": "ob", "cob": "ob"}


class Names:
    """The compressed-name tables of one process's dumps."""

    def __init__(self):
        self.tables = {"fl": {}, "fn": {}, "ob": {}}

    def resolve(self, kind, value):
        m = _COMPRESSED.match(value)
        if m is None:
            return value
        table = self.tables[_TABLE[kind]]
        if m.group(2) is not None:
            table[m.group(1)] = m.group(2)
            return m.group(2)
        return table.get(m.group(1), "?")


def records(path, names):
    """Yields, in file order:
    ("events", [event names])
    ("cost", where, costs)                  self cost of where["fn"]
    ("call", where, callee, count, costs)   count calls from where["fn"] to callee["cfn"], inclusive
    where = {"fl", "fn", "ob"} and callee = {"cfl", "cfn", "cob"} are dicts the reader updates in
    place: read them before taking the next record. costs are ints in the events' order (trailing
    events left out by callgrind are absent)."""
    where = {"fl": "", "fn": "", "ob": ""}
    callee = {"cfl": "", "cfn": "", "cob": ""}
    call_count = None
    with open(path, errors="replace") as f:
        for line in f:
            if not line or line[0] == "#":
                continue
            if line.startswith("events:"):
                yield ("events", line.split()[1:])
                continue
            c = line[0]
            if c.isdigit() or c in "+-*":
                try:
                    costs = [int(x) for x in line.split()[1:]]
                except ValueError:
                    continue
                if call_count is not None:
                    count, call_count = call_count, None
                    yield ("call", where, callee, count, costs)
                else:
                    yield ("cost", where, costs)
                continue
            key, eq, value = line.rstrip("\n").partition("=")
            if not eq:
                continue
            if key in ("fl", "fn", "ob"):
                where[key] = names.resolve(key, value)
                if key == "fn":
                    callee["cfl"] = callee["cfn"] = callee["cob"] = ""
            elif key in ("fi", "fe"):
                names.resolve(key, value)
            elif key in ("cfl", "cfi", "cfn", "cob"):
                callee["cfl" if key == "cfi" else key] = names.resolve(key, value)
            elif key == "calls":
                call_count = int(value.split()[0])


def ir_index(events):
    """Where Ir is among a dump's events (first unless the dump says otherwise)."""
    return events.index("Ir") if "Ir" in events else 0


def call_edges(path, rename=None):
    """{(caller, callee): [calls, inclusive Ir]} over one dump (its own name tables), names passed
    through `rename` (e.g. naming JIT code by a perf map) once each."""
    renamed = {}

    def name(n):
        if rename is None:
            return n
        r = renamed.get(n)
        if r is None:
            r = renamed[n] = rename(n)
        return r

    out = {}
    ir = 0
    for rec in records(path, Names()):
        if rec[0] == "events":
            ir = ir_index(rec[1])
        elif rec[0] == "call":
            _, where, callee, count, costs = rec
            key = (name(where["fn"]), name(callee["cfn"]))
            e = out.get(key)
            if e is None:
                e = out[key] = [0, 0]
            e[0] += count
            e[1] += costs[ir] if len(costs) > ir else 0
    return out


def node_builtins():
    """(start, end, name) of the node binary's Builtins_* symbols, sorted; empty without nm."""
    node = shutil.which("node")
    if node is None or shutil.which("nm") is None:
        return []
    out = subprocess.run(["nm", "-S", os.path.realpath(node)], capture_output=True, text=True).stdout
    syms = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[3].startswith("Builtins_"):
            syms.append((int(parts[0], 16), int(parts[0], 16) + int(parts[1], 16), parts[3]))
    return sorted(syms)


class AddressNames:
    """Names for the code a dump knows by address only (fn "0x..."): JavaScript functions and V8's
    logged code by node's --perf-basic-prof map (the last code object logged at or below the
    address, if it covers it: code that moved or was freed after it was logged may be named
    wrongly), and the V8 builtins node copies into its code range, which no map lists, by their
    offset from the node binary's `Builtins_*` symbols: relocate() takes the one offset that puts
    most of the given (unnamed) addresses on a symbol's start."""

    def __init__(self, perf_map=None):
        entries = []
        if perf_map:
            for line in open(perf_map, errors="replace"):
                parts = line.rstrip("\n").split(" ", 2)
                if len(parts) == 3:
                    entries.append((int(parts[0], 16), int(parts[1], 16), parts[2]))
        entries.sort()
        self.code_objects = entries
        self._starts = [e[0] for e in entries]
        self.builtins = node_builtins()
        self._builtin_starts = [b[0] for b in self.builtins]
        self.delta = None

    def code(self, address):
        """The perf map's name of the code object covering the address, or None."""
        i = bisect.bisect_right(self._starts, address) - 1
        entries = self.code_objects
        return entries[i][2] if i >= 0 and address < entries[i][0] + entries[i][1] else None

    def relocate(self, addresses):
        """Finds the code range's offset from the binary: the most common address - symbol start."""
        sample = sorted(addresses)
        sample = sample[:: max(1, len(sample) // 400)]
        counts = collections.Counter(a - b for a in sample for b in self._builtin_starts if a > b)
        if counts:
            delta, n = counts.most_common(1)[0]
            # Chance puts a few addresses on some offset; the copy's puts every builtin called.
            if n >= 10:
                self.delta = delta

    def builtin(self, address):
        """The builtin at the address in node's code range (after relocate()), or None."""
        if self.delta is None:
            return None
        a = address - self.delta
        i = bisect.bisect_right(self._builtin_starts, a) - 1
        return self.builtins[i][2] if i >= 0 and a < self.builtins[i][1] else None

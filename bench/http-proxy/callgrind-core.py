#!/usr/bin/env python3
"""Per-request differences of two callgrind runs (callgrind-core.sh).

Usage: callgrind-core.py <cg.N1> <cg.N2> <N1> <N2> [top=40] [--maps <map.N1> <map.N2>] [--incl a,b]

Prints the total Ir of each run and (Ir2 - Ir1) / (N2 - N1); then the functions whose self Ir
grew the most, per request, with their calls per request (every call site of the function
summed: a JS -> native crossing is a call of its N-API callback or of the V8 builtin that makes
it). JIT-compiled JavaScript has no symbol under callgrind: it is the '0x...' lines, unless
--maps gives each run's V8 perf map (node --perf-basic-prof: callgrind-core.sh with PERF_MAP=1),
which names them 'JS name source:line' (the tier marker * + ^ ~ dropped, so one function's tiers
add up, unless CG_TIERS=1; the lines are the bundle's).
"""
import bisect
import os
import re
import sys
from collections import defaultdict

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from callgrind_out import Names, ir_index, records  # noqa: E402


# CG_TIERS=1 keeps V8's tier marker in a name (*: TurboFan, +: Maglev, ^: Sparkplug, ~: interpreted).
TIERS = os.environ.get("CG_TIERS") == "1"


def perf_map(path):
    """V8's --perf-basic-prof map: a function naming a JIT code address, or None outside it."""
    rows = []
    with open(path, errors="replace") as f:
        for line in f:
            parts = line.rstrip("\n").split(" ", 2)
            if len(parts) == 3:
                try:
                    start, size = int(parts[0], 16), int(parts[1], 16)
                except ValueError:
                    continue
                name = parts[2]
                if name.startswith("JS:"):
                    name = "JS " + (name[3:] if TIERS else name[3:].lstrip("*^~+"))
                rows.append((start, start + size, name))
    rows.sort()
    starts = [r[0] for r in rows]

    def name_of(addr):
        i = bisect.bisect_right(starts, addr) - 1
        if i >= 0 and rows[i][0] <= addr < rows[i][1]:
            return rows[i][2]
        return None

    return name_of


def parse(path, name_of=None):
    """Self Ir per function name and calls per callee name, summed over the file; with `name_of`
    (perf_map()) a '0x...' function is named by the JIT code holding that address."""
    self_ir = defaultdict(int)
    callee_ir = defaultdict(int)
    calls = defaultdict(int)
    total = 0
    ir = 0
    named = {}

    def name(n):
        r = named.get(n)
        if r is None:
            r = named[n] = jit_name(n, name_of)
        return r

    for rec in records(path, Names()):
        if rec[0] == "events":
            ir = ir_index(rec[1])
        elif rec[0] == "cost":
            costs = rec[2]
            v = costs[ir] if len(costs) > ir else 0
            self_ir[name(rec[1]["fn"])] += v
            total += v
        else:
            # The inclusive cost of a call: not self.
            _, where, callee, count, costs = rec
            fn, cfn = name(where["fn"]), name(callee["cfn"])
            calls[cfn] += count
            if cfn != fn:
                callee_ir[fn] += costs[ir] if len(costs) > ir else 0
    return total, self_ir, calls, callee_ir


def jit_name(name, name_of):
    if name_of is None or not name.startswith("0x"):
        return name
    try:
        named = name_of(int(name.split()[0], 16))
    except ValueError:
        return name
    return named if named is not None else name


PARTS = ("jit", "builtins", "gc", "compiler", "other")
GC = re.compile(
    r"v8::internal::.*(Heap|Scaveng|MarkCompact|Marking|Marker|Sweep|Evacuat|GCTracer|RootScavenge|"
    r"MemoryChunk|MemoryAllocator|Collector|IterateObjectCache|RememberedSet|SlotSet|Compactor|"
    r"Visitor|BodyDescriptor|YoungGeneration|Minor|Page::|LargeObjectSpace|PagedSpace|NewSpace|"
    r"SemiSpace|FreeList|Worklist|ObjectStats|Weak|IteratePointers)|^cppgc::|^heap::|"
    r"_Map_base<v8::internal::MemoryChunk\*"
)
COMPILER = re.compile(
    r"^v8::internal::(compiler::|maglev::|baseline::|wasm::|interpreter::Bytecode(Array)?(Builder|Generator|Writer)|"
    r"Zone|Parser|Scanner|Ast|Compiler|Deoptimizer|OptimizedCompilationJob|Compile|BytecodeGenerator|"
    r"ParseInfo|PreParser|ScopeInfo|DeclarationScope|Scope::|SourcePosition|CodeReference|Assembler|"
    r"TurboAssembler|MacroAssembler|RelocIterator|Label)|^v8::internal::.*(Compil|Zone)"
)


def part(name):
    """jit (unnamed JIT code: '0x...' / '???'), builtins (V8's Builtins_*), gc, compiler, other
    (V8's C++ runtime, N-API, Node, the addon, libc)."""
    if name is None or name.startswith("0x") or name.startswith("???") or name.startswith("JS "):
        return "jit"
    if name.startswith("Builtins_"):
        return "builtins"
    if GC.search(name):
        return "gc"
    if COMPILER.search(name):
        return "compiler"
    return "other"


def main():
    a, b, n1, n2 = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    top = int(sys.argv[5]) if len(sys.argv) > 5 and sys.argv[5].isdigit() else 40
    maps = sys.argv[sys.argv.index("--maps") + 1 :][:2] if "--maps" in sys.argv else None
    t1, s1, c1, i1 = parse(a, perf_map(maps[0]) if maps else None)
    t2, s2, c2, i2 = parse(b, perf_map(maps[1]) if maps else None)
    d = n2 - n1
    print(f"Ir: {t1:,} ({n1} requests), {t2:,} ({n2}); per request {(t2 - t1) / d:,.0f}")
    rows = []
    for k in set(s1) | set(s2):
        rows.append(((s2.get(k, 0) - s1.get(k, 0)) / d, (c2.get(k, 0) - c1.get(k, 0)) / d, k))
    rows.sort(reverse=True)
    parts = defaultdict(float)
    for ir, _calls, k in rows:
        parts[part(k)] += ir
    print("per request by part (self Ir): " + ", ".join(f"{p} {parts[p]:,.0f}" for p in PARTS))
    print(f"everything except GC and compiler: {sum(parts[p] for p in PARTS if p not in ('gc', 'compiler')):,.0f}")
    print(f"{'self Ir/req':>12} {'calls/req':>10}  function")
    for ir, calls, k in rows[:top]:
        print(f"{ir:12,.0f} {calls:10.2f}  {k}")
    # --incl a,b: inclusive Ir per request (self plus its calls' costs) of the functions whose
    # name contains a or b (named JIT code needs --maps).
    if "--incl" in sys.argv:
        pats = sys.argv[sys.argv.index("--incl") + 1].split(",")
        print("inclusive per request (self + calls):")
        for k in sorted(set(s1) | set(s2), key=str):
            if any(p in str(k) for p in pats):
                own = (s2.get(k, 0) - s1.get(k, 0)) / d
                inc = own + (i2.get(k, 0) - i1.get(k, 0)) / d
                print(f"{inc:12,.0f} {own:10,.0f}  {k}")
    watch = [
        "napi_get_typedarray_info",
        "napi_get_cb_info",
        "napi_check_object_type_tag",
        "v8impl::(anonymous namespace)::FunctionCallbackWrapper::Invoke(v8::FunctionCallbackInfo<v8::Value> const&)",
        "Builtins_CallApiCallbackGeneric",
        "Builtins_CallApiCallback",
        "node::StringSlice<(node::encoding)3>(v8::FunctionCallbackInfo<v8::Value> const&)",
        "Builtins_ScavengerCollect",
        "v8::internal::Heap::Scavenge()",
        "v8::internal::ScavengerCollector::CollectGarbage()",
    ]
    print("calls per request of named functions (inclusive counts by call):")
    for k in sorted(set(c1) | set(c2)):
        per = (c2.get(k, 0) - c1.get(k, 0)) / d
        if any(w in k for w in watch) or re.search(r"headscan|ScanJs|latin1|StringSlice|Scavenge\(|MarkCompact", k, re.I):
            if abs(per) >= 0.005:
                print(f"{per:10.3f}  {k}")


main()

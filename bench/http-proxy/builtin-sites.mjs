// Where loch's JavaScript calls the builtins a callgrind profile names per request (issue 18):
// hasOwnProperty, Function.prototype.bind, TypedArray.prototype.set/subarray, new typed arrays
// and DataViews, Set.prototype.add. A preload (node --import) that wraps each and counts its
// callers' source lines; printed to stderr at exit. Run it with two request counts and take the
// difference per request (a first call site of a start-up path cancels out):
//   cd apps/proxy && node --conditions=@loch/source --import tsx \
//     --import ../../bench/http-proxy/builtin-sites.mjs bench/proxy-core.ts N --rounds 1 ...
// bench/http-proxy/builtin-sites.sh does both runs and prints the difference. Counting only: the
// wrappers slow every call, so no time read with this preload loaded means anything.
const counts = new Map();
const limit = Error.stackTraceLimit;
function site(kind, depth = 2) {
  Error.stackTraceLimit = depth + 2;
  const lines = (new Error().stack ?? '').split('\n');
  Error.stackTraceLimit = limit;
  const frame = (lines[depth + 1] ?? '?')
    .trim()
    .replace(/^at /, '')
    .replace(/file:\/\/\S*?\/(packages|apps|bench)\//, '$1/');
  const key = `${kind} ${frame}`;
  counts.set(key, (counts.get(key) ?? 0) + 1);
}
function wrapMethod(owner, name, kind) {
  const orig = owner[name];
  Object.defineProperty(owner, name, {
    value: {
      [name](...args) {
        site(kind);
        return Reflect.apply(orig, this, args);
      },
    }[name],
    writable: true,
    configurable: true,
  });
}
const TA = Object.getPrototypeOf(Uint8Array.prototype);
wrapMethod(Object.prototype, 'hasOwnProperty', 'hasOwnProperty');
wrapMethod(Object, 'hasOwn', 'Object.hasOwn');
wrapMethod(Function.prototype, 'bind', 'bind');
wrapMethod(TA, 'set', 'TypedArray.set');
wrapMethod(TA, 'subarray', 'TypedArray.subarray');
wrapMethod(Set.prototype, 'add', 'Set.add');
for (const name of ['Uint8Array', 'Uint16Array', 'Int32Array', 'Uint32Array', 'Float64Array', 'DataView']) {
  const C = globalThis[name];
  globalThis[name] = new Proxy(C, {
    construct(target, args, newTarget) {
      site(`new ${name}`);
      return Reflect.construct(target, args, newTarget === globalThis[name] ? target : newTarget);
    },
  });
}
process.on('exit', () => {
  const rows = [...counts].sort((a, b) => b[1] - a[1]);
  process.stderr.write(`${rows.map(([k, n]) => `SITE\t${n}\t${k}`).join('\n')}\n`);
});

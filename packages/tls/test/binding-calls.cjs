/**
 * Counts every call into a native addon's functions, by name (issue 13: "a TLS request must cost
 * no more JavaScript<->native crossings than a plain one"). One implementation for the three
 * places that count them: sent-counts.test.ts here and
 * apps/proxy/test/https-crossings.test.ts (in process, around a piece of work, then restored) and
 * bench/https/count-crossings.cjs (preloaded into every thread of a running loch, never restored).
 * CommonJS on purpose: `node --require` loads it into each worker thread without a TypeScript
 * loader, and the tests import it as well (types: binding-calls.d.cts). It lives in this package
 * (which tests on its own) and is reached from outside, as packages/http/test/free-port.ts is.
 * Bench and test only: not part of Loch.
 *
 * countCalls(binding, skip): replaces each function property of `binding` (the addon's exports
 * object: every loader of the same .node file in a thread gets the same object) by a wrapper that
 * counts its calls, except the names in `skip`. Returns `calls` (name -> calls so far; a function
 * not called is absent) and `restore()` (puts the original functions back).
 */
'use strict';

function countCalls(binding, skip = []) {
  const calls = new Map();
  const saved = new Map();
  for (const name of Object.keys(binding)) {
    const fn = binding[name];
    if (typeof fn !== 'function' || skip.includes(name)) continue;
    saved.set(name, fn);
    binding[name] = function (...args) {
      calls.set(name, (calls.get(name) ?? 0) + 1);
      return fn.apply(this, args);
    };
  }
  return {
    calls,
    restore() {
      for (const [name, fn] of saved) binding[name] = fn;
    },
  };
}

module.exports = { countCalls };

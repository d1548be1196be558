// What writing bytes costs in V8's optimized code, per element, for the choices loch's hot paths
// make (issue 18, per-request-2026-12-05b.md). Run each variant under callgrind at two counts
// and take the difference (start-up cancels):
//   for v in chars bytes set latin1Write; do for n in 100000 200000; do
//     valgrind --tool=callgrind --callgrind-out-file=/dev/null node bench/http-proxy/byte-loops.mjs $v $n 2>&1 | grep Collected
//   done; done
// (Ir(200000) - Ir(100000)) / 100000 is one round: 1,000 chars or bytes written into a
// Uint8Array at an offset, or one 17-byte name for `set` and `latin1Write` (their per-call cost).
const [variant, count] = process.argv.slice(2);
const N = Number(count);
const out = new Uint8Array(2048);
// A flat one-byte string as the runtime's strings are (not a literal's internalized one).
const text = Buffer.from('a'.repeat(1000), 'latin1').toString('latin1');
const bytes = new Uint8Array(1000).fill(0x61);
const name = new Uint8Array(Buffer.from('x-forwarded-for: ', 'latin1'));
const nameText = Buffer.from('x-forwarded-for: ', 'latin1').toString('latin1');
const typedArraySet = Object.getPrototypeOf(Uint8Array.prototype).set;
const latin1Write = Buffer.prototype.latin1Write;

function chars(o, pos, s) {
  const n = s.length;
  for (let k = 0; k < n; k++) o[pos + k] = s.charCodeAt(k);
  return pos + n;
}
function copy(o, pos, b) {
  const n = b.length;
  for (let k = 0; k < n; k++) o[pos + k] = b[k];
  return pos + n;
}

let sum = 0;
for (let i = 0; i < N; i++) {
  const at = i & 7;
  if (variant === 'chars') sum += chars(out, at, text);
  else if (variant === 'bytes') sum += copy(out, at, bytes);
  else if (variant === 'set') {
    typedArraySet.call(out, name, at);
    sum += name.length;
  } else if (variant === 'latin1Write') sum += latin1Write.call(out, nameText, at);
  else throw new Error(`variant: chars, bytes, set or latin1Write, not ${variant}`);
}
console.log(variant, sum);

/**
 * In-process cost of the server core per request, without I/O: an in-memory stream hands the
 * server one keep-alive GET per recvTo() and swallows writes (results delivered from a
 * microtask, as the runtime does). Measures the JS work the runtime
 * cannot save (decode, handler call, encode, bookkeeping). Run: tsx --conditions=@loch/source
 * bench/server-core.ts [N] [sync|async] [hooks]. `async`: the handler answers with a promise (as
 * a proxy does) and the client sends its next request only once the answer was written (a
 * client waiting for each answer, so a receive armed during the handler's wait stays pending as
 * a real one would); `hooks`: the server has onAbandoned and onAnswered (no-ops).
 */
import { createResponse, FixedBody, HttpHeaders, HttpServer, type HttpStream } from '@loch/http';
import { plainFacts, type RecvTarget } from '@loch/uring-runtime';

const REQ = Buffer.from(
  'GET /hello HTTP/1.1\r\nHost: bench.test\r\nUser-Agent: wrk\r\nAccept: */*\r\n\r\n',
  'latin1',
);
const N = Number(process.argv[2] ?? 300_000);
const ASYNC = process.argv[3] === 'async';
const HOOKS = process.argv[4] === 'hooks';
let left = N;
let written = 0;
/** async mode: a receive waiting for the answer to be written, and whether one was written since. */
let waiting: RecvTarget | null = null;
let answered = true;
function deliver(target: RecvTarget): void {
  const chunk = left-- <= 0 ? null : { bytes: REQ, release() {} };
  answered = false;
  queueMicrotask(() => target.onRecv(chunk, undefined));
}
const stream: HttpStream = {
  remoteAddress: { family: 'ipv4', address: '127.0.0.1', port: 1 },
  localAddress: { family: 'ipv4', address: '127.0.0.1', port: 2 },
  driver: 'legacy',
  closed: false,
  facts: plainFacts({ family: 'ipv4', address: '127.0.0.1', port: 1 }),
  recvTo(target) {
    if (ASYNC && !answered) waiting = target;
    else deliver(target);
  },
  writeTo(data, target) {
    if (data instanceof Uint8Array) written += data.byteLength;
    else for (const b of data) written += b.byteLength;
    queueMicrotask(() => {
      target.onWritten(undefined);
      answered = true;
      const w = waiting;
      waiting = null;
      if (w !== null) deliver(w);
    });
  },
  async shutdown() {},
  async close() {},
  setNoDelay() {},
};
const body = new FixedBody(`${'x'.repeat(127)}\n`);
const headers = new HttpHeaders([['content-type', 'text/plain']]);
const respond = () => createResponse(200, { headers, body });
const server = new HttpServer(
  { call: ASYNC ? () => Promise.resolve(respond()) : respond },
  HOOKS ? { onAbandoned: () => {}, onAnswered: () => {} } : {},
);
// CPU time, not wall time: the machine is shared. Best of 5 rounds.
let best = Number.POSITIVE_INFINITY;
for (let round = 0; round < 5; round++) {
  left = N;
  written = 0;
  answered = true;
  waiting = null;
  const before = process.cpuUsage();
  await server.serveConnection({ ...stream });
  const used = process.cpuUsage(before);
  best = Math.min(best, (used.user + used.system) / N);
}
const mode = ASYNC ? (HOOKS ? ' (async, hooks)' : ' (async)') : '';
console.log(
  `server core${mode}: ${best.toFixed(2)} CPU us/request (best of 5 x ${N}), ${(written / N).toFixed(0)} bytes/response`,
);

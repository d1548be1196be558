/**
 * In-process cost of the server core per request, without I/O: an in-memory stream hands the
 * server one keep-alive GET per recvTo() and swallows writes (results delivered from a
 * microtask, as the runtime does). Measures the JS work the runtime
 * cannot save (decode, handler call, encode, bookkeeping). Run: tsx --conditions=@loch/source
 * bench/server-core.ts
 */
import { createResponse, FixedBody, HttpHeaders, HttpServer, type HttpStream } from '@loch/http';
import { plainFacts } from '@loch/uring-runtime';

const REQ = Buffer.from(
  'GET /hello HTTP/1.1\r\nHost: bench.test\r\nUser-Agent: wrk\r\nAccept: */*\r\n\r\n',
  'latin1',
);
const N = Number(process.argv[2] ?? 300_000);
let left = N;
let written = 0;
const stream: HttpStream = {
  remoteAddress: { family: 'ipv4', address: '127.0.0.1', port: 1 },
  localAddress: { family: 'ipv4', address: '127.0.0.1', port: 2 },
  driver: 'legacy',
  closed: false,
  facts: plainFacts({ family: 'ipv4', address: '127.0.0.1', port: 1 }),
  recvTo(target) {
    const chunk = left-- <= 0 ? null : { bytes: REQ, release() {} };
    queueMicrotask(() => target.onRecv(chunk, undefined));
  },
  writeTo(data, target) {
    if (data instanceof Uint8Array) written += data.byteLength;
    else for (const b of data) written += b.byteLength;
    queueMicrotask(() => target.onWritten(undefined));
  },
  async shutdown() {},
  async close() {},
  setNoDelay() {},
};
const body = new FixedBody(`${'x'.repeat(127)}\n`);
const headers = new HttpHeaders([['content-type', 'text/plain']]);
const server = new HttpServer({ call: () => createResponse(200, { headers, body }) });
// CPU time, not wall time: the machine is shared. Best of 5 rounds.
let best = Number.POSITIVE_INFINITY;
for (let round = 0; round < 5; round++) {
  left = N;
  written = 0;
  const before = process.cpuUsage();
  await server.serveConnection({ ...stream });
  const used = process.cpuUsage(before);
  best = Math.min(best, (used.user + used.system) / N);
}
console.log(
  `server core: ${best.toFixed(2)} CPU us/request (best of 5 x ${N}), ${(written / N).toFixed(0)} bytes/response`,
);

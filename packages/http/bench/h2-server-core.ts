/**
 * In-process cost of the HTTP/2 server session per request, without I/O: an in-memory stream
 * hands the session the client preface, then chunks of `M` GET requests each (HEADERS with
 * END_STREAM on new stream ids, HPACK-indexed after the first, as h2load -m M sends them) plus
 * the connection WINDOW_UPDATE a client would send, and swallows writes (results delivered from
 * a microtask, as the runtime does). The HTTP/2 twin of server-core.ts (same handler and
 * body), so the two numbers compare. Run: tsx --conditions=@loch/source bench/h2-server-core.ts [N] [M]
 */
import { createResponse, FixedBody, HttpHeaders, HttpServer, type HttpStream } from '@loch/http';
import {
  CONNECTION_PREFACE,
  encodeHeaders,
  encodeSettings,
  encodeWindowUpdate,
  HpackEncoder,
} from '@loch/http/h2';
import { plainFacts } from '@loch/uring-runtime';

const N = Number(process.argv[2] ?? 300_000);
const M = Number(process.argv[3] ?? 10);
const body = new FixedBody(`${'x'.repeat(127)}\n`);
const headers = new HttpHeaders([['content-type', 'text/plain']]);
const server = new HttpServer({ call: () => createResponse(200, { headers, body }) });
const fields: [string, string][] = [
  [':method', 'GET'],
  [':scheme', 'http'],
  [':path', '/hello'],
  [':authority', 'bench.test'],
  ['user-agent', 'h2load'],
  ['accept', '*/*'],
];

/** The chunks of one connection: preface + SETTINGS, then N/M chunks of M requests each. */
function script(): Uint8Array[] {
  const enc = new HpackEncoder();
  const chunks: Uint8Array[] = [Buffer.concat([CONNECTION_PREFACE, encodeSettings({})])];
  let id = 1;
  for (let i = 0; i < N; i += M) {
    const frames: Uint8Array[] = [encodeWindowUpdate(0, M * 1024)];
    for (let j = 0; j < M; j++, id += 2)
      frames.push(encodeHeaders(id, enc.encode(fields), { endStream: true }));
    chunks.push(Buffer.concat(frames));
  }
  return chunks;
}

let written = 0;
function stream(chunks: Uint8Array[]): HttpStream {
  let next = 0;
  return {
    remoteAddress: { family: 'ipv4', address: '127.0.0.1', port: 1 },
    localAddress: { family: 'ipv4', address: '127.0.0.1', port: 2 },
    driver: 'legacy',
    closed: false,
    facts: plainFacts({ family: 'ipv4', address: '127.0.0.1', port: 1 }),
    recvTo(target) {
      const c = next < chunks.length ? chunks[next++]! : null;
      // The next chunk after the answers to this one (a task later, as from a socket).
      if (c === null) setImmediate(() => target.onRecv(null, undefined));
      else queueMicrotask(() => target.onRecv({ bytes: c, release() {} }, undefined));
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
}

// CPU time, not wall time: the machine is shared. Best of 5 rounds.
let best = Number.POSITIVE_INFINITY;
for (let round = 0; round < 5; round++) {
  const chunks = script();
  written = 0;
  const before = process.cpuUsage();
  await server.serveConnection(stream(chunks));
  const used = process.cpuUsage(before);
  best = Math.min(best, (used.user + used.system) / N);
}
console.log(
  `h2 server session: ${best.toFixed(2)} CPU us/request (best of 5 x ${N}, ${M} per read), ${(written / N).toFixed(0)} bytes/response`,
);

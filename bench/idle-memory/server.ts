/**
 * The server side of the idle-memory benchmark: HttpServer on a runtime TcpListener with a hello
 * handler. Answers `gc` on stdin with `mem <rss> <heapUsed>` after a full GC, and `snap <file>`
 * with a heap snapshot. Not a load target (see bench/http-hello).
 * Usage: [CONTEXT_PER_REQUEST=1] node --expose-gc --import tsx --conditions=@loch/source server.ts
 */
import { writeHeapSnapshot } from 'node:v8';
import { TcpListener } from '@loch/uring-runtime';
import { createResponse, FixedBody, HttpHeaders, HttpServer } from '../../packages/http/src/index.js';

const body = new FixedBody('hello\n');
const headers = new HttpHeaders([['content-type', 'text/plain']]);
const listener = await TcpListener.bind({ host: '127.0.0.1', port: 0 });
// CONTEXT_PER_REQUEST=1: the HTTP/1.1 connections make their context per request, as loch's
// worker has them do (HttpServerOptions.contextPerRequest).
const server = new HttpServer(
  { call: () => createResponse(200, { headers, body }) },
  { contextPerRequest: process.env.CONTEXT_PER_REQUEST === '1' },
);
process.stdin.setEncoding('utf8');
let buf = '';
process.stdin.on('data', (d: string) => {
  buf += d;
  for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
    const [cmd, arg] = buf.slice(0, i).split(' ');
    buf = buf.slice(i + 1);
    if (cmd === 'gc') {
      (globalThis as { gc?: () => void }).gc?.();
      (globalThis as { gc?: () => void }).gc?.();
      const m = process.memoryUsage();
      process.stdout.write(`mem ${m.rss} ${m.heapUsed}\n`);
    } else if (cmd === 'snap') {
      process.stdout.write(`snap ${writeHeapSnapshot(arg)}\n`);
    }
  }
});
process.stdin.on('end', () => process.exit(0));
const local = listener.localAddress;
if (local.family === 'unix') throw new Error('expected a TCP listener');
process.stdout.write(`port ${local.port}\n`);
await server.serve(listener);

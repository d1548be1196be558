import { describe, expect, it } from 'vitest';
import { fixedBody } from './body.js';
import { createResponse } from './message.js';
import { HttpServer } from './server.js';
import type { HttpStream } from './transport.js';

/** An in-memory stream: hands out the given chunks, records every write call. */
function memoryStream(chunks: string[]) {
  const writes: string[][] = [];
  const stream: HttpStream = {
    remoteAddress: { family: 'ipv4', address: '10.0.0.1', port: 1000 },
    localAddress: { family: 'ipv4', address: '10.0.0.2', port: 80 },
    driver: 'legacy',
    closed: false,
    async recv() {
      const c = chunks.shift();
      return c === undefined ? null : { bytes: Buffer.from(c, 'latin1'), release() {} };
    },
    async writeAll<B extends Uint8Array>(b: B) {
      writes.push([Buffer.from(b).toString('latin1')]);
      return b;
    },
    async writev(bufs: readonly Uint8Array[]) {
      writes.push(bufs.map((b) => Buffer.from(b).toString('latin1')));
      return bufs.reduce((n, b) => n + b.byteLength, 0);
    },
    async shutdown() {},
    async close() {},
    setNoDelay() {},
  };
  return { stream, writes };
}

const hello = new HttpServer({ call: (req) => createResponse(200, { body: fixedBody(req.target) }) });
const get = (path: string) => `GET ${path} HTTP/1.1\r\nHost: t\r\n\r\n`;

describe('HttpServer write batching', () => {
  it('answers requests pipelined in one chunk with one write', async () => {
    const { stream, writes } = memoryStream([get('/1') + get('/2') + get('/3')]);
    await hello.serveConnection(stream);
    expect(writes).toHaveLength(1);
    expect(writes[0]!.map((w) => w.slice(w.indexOf('\r\n\r\n') + 4))).toEqual(['/1', '/2', '/3']);
  });

  it('does not hold an answer while the next request is incomplete', async () => {
    const { stream, writes } = memoryStream([`${get('/1')}GET /2 HT`, 'TP/1.1\r\nHost: t\r\n\r\n']);
    await hello.serveConnection(stream);
    expect(writes).toHaveLength(2);
    expect(writes[0]!.join('')).toMatch(/\r\n\r\n\/1$/);
    expect(writes[1]!.join('')).toMatch(/\r\n\r\n\/2$/);
  });

  it('flushes held answers before a parse error answer, in order', async () => {
    const { stream, writes } = memoryStream([
      `${get('/1')}GET /2 HTTP/1.1\r\nHost: t\r\nBad Header: x\r\n\r\n`,
    ]);
    await hello.serveConnection(stream);
    const all = writes.flat().join('');
    expect(all.indexOf('/1')).toBeGreaterThan(0);
    expect(all.indexOf('400 Bad Request')).toBeGreaterThan(all.indexOf('/1'));
  });
});

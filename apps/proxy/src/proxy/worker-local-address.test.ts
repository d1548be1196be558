/**
 * A connection's local address is read only where it is used (REVIEW F217). On a wildcard
 * listener (`0.0.0.0`) the stream does not know it: its first read asks the kernel (a getsockname;
 * on a direct stream also a momentary fd: FIXED_FD_INSTALL and a close). The connection context
 * holds the stream (context.ts ConnectionSocket), and the one reader is the PROXY header to an
 * upstream with `send_proxy_protocol` (upstream.ts). A counting stub on the runtime stream's
 * `localAddress` getter: zero reads for connections proxied to a plain upstream; reads, and the
 * right address in the header, for one that sends PROXY headers.
 */
import { request } from 'node:http';
import * as net from 'node:net';
import { RuntimeStream } from '@loch/uring-runtime';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { freePort } from '../../../../packages/http/test/free-port.js';
import { parseConfig } from '../config/load.js';
import { ProxyWorker } from './worker.js';

/**
 * An upstream that answers every request head with 200 "ok" and keeps the head's first line (on a
 * connection's first head after a PROXY header, the header's line).
 */
async function upstream(): Promise<{ port: number; firstLines: string[]; server: net.Server }> {
  const firstLines: string[] = [];
  const server = net.createServer((s) => {
    let got = '';
    s.setEncoding('latin1');
    s.on('error', () => undefined);
    s.on('data', (d: string) => {
      got += d;
      if (!got.includes('\r\n\r\n')) return;
      if (firstLines.length < 100) firstLines.push(got.slice(0, got.indexOf('\r\n')));
      got = '';
      s.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as net.AddressInfo).port, firstLines, server };
}

/** The status and body of one GET on a connection of its own, and the client's port. */
function get(port: number, path: string): Promise<{ status: number; body: string; clientPort: number }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let body = '';
      res.setEncoding('latin1');
      res.on('data', (d: string) => {
        body += d;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, clientPort }));
    });
    let clientPort = 0;
    req.on('socket', (s) => s.on('connect', () => (clientPort = s.localPort ?? 0)));
    req.on('error', reject).end();
  });
}

describe('the local address of a connection on a wildcard listener', () => {
  let worker: ProxyWorker;
  let port: number;
  let plain: Awaited<ReturnType<typeof upstream>>;
  let proxied: Awaited<ReturnType<typeof upstream>>;

  beforeAll(async () => {
    plain = await upstream();
    proxied = await upstream();
    port = await freePort('apps/proxy');
    worker = new ProxyWorker(
      0,
      parseConfig(`
log = { level = "error", access = false }
[servers.web]
listener = { type = "socket", value = "0.0.0.0:${port}" }
[[servers.web.routes]]
path = "/plain"
upstreams = [{ endpoint = "http://127.0.0.1:${plain.port}" }]
[[servers.web.routes]]
path = "/proxied"
upstreams = [{ endpoint = "http://127.0.0.1:${proxied.port}", send_proxy_protocol = "v1" }]
`),
    );
    await worker.start();
  });
  afterAll(async () => {
    await worker?.shutdown();
    for (const u of [plain, proxied]) await new Promise((r) => u?.server.close(r));
  });

  it('is not read for a connection whose upstream takes no PROXY header', async () => {
    const reads = vi.spyOn(RuntimeStream.prototype, 'localAddress', 'get');
    try {
      for (let i = 0; i < 20; i++)
        expect(await get(port, '/plain')).toMatchObject({ status: 200, body: 'ok' });
      expect(plain.firstLines).toHaveLength(20);
      expect(reads).not.toHaveBeenCalled();
    } finally {
      reads.mockRestore();
    }
  });

  it('is read for the PROXY header of an upstream that takes one, and names the listening side', async () => {
    const reads = vi.spyOn(RuntimeStream.prototype, 'localAddress', 'get');
    try {
      const answers = [await get(port, '/proxied'), await get(port, '/proxied')];
      for (const a of answers) expect(a).toMatchObject({ status: 200, body: 'ok' });
      expect(reads).toHaveBeenCalled();
      // One upstream connection per client (the header names it): its first line is the header,
      // whose destination is the address the client reached (asked of the kernel: the listener
      // is 0.0.0.0), not the wildcard.
      expect(proxied.firstLines).toEqual(
        answers.map((a) => `PROXY TCP4 127.0.0.1 127.0.0.1 ${a.clientPort} ${port}`),
      );
    } finally {
      reads.mockRestore();
    }
  });
});

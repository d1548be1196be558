/**
 * The end of the shutdown grace closes the connections still in the middle of a request, through
 * their HttpServer (closeAll): the worker keeps no set of attached connections of its own since
 * issue 18 (a set entry per idle connection). A request waiting for an upstream that never
 * answers is not between requests, so the graceful part of the stop leaves its connection open;
 * the grace's end must close it (before the upstream's stream, so no answer goes out: the client
 * gets nothing), count it in the log line, and loch exits 0.
 */
import { rmSync } from 'node:fs';
import * as net from 'node:net';
import { describe, expect, it } from 'vitest';
import { availableDrivers, freePort, startLoch, tempDir } from './harness.js';

const drivers = availableDrivers();

/** An upstream that reads requests and never answers; `arrived` settles with the first bytes. */
async function mute(): Promise<{ port: number; arrived: Promise<void>; close(): void }> {
  const sockets: net.Socket[] = [];
  let arrived!: () => void;
  const first = new Promise<void>((r) => {
    arrived = r;
  });
  const server = net.createServer((s) => {
    sockets.push(s);
    s.on('error', () => {});
    s.once('data', () => arrived());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    arrived: first,
    close() {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

describe.each(drivers)('the end of shutdown_grace (driver %s)', (driver) => {
  it('closes a connection whose request waits for its upstream, without an answer, and exits 0', async () => {
    const dir = tempDir('loch-proxy-grace-close-');
    const port = await freePort();
    const upstream = await mute();
    const loch = await startLoch(
      dir,
      `
[runtime]
workers = 1

[servers.web]
listener = { type = "socket", value = "127.0.0.1:${port}" }
timeouts = { shutdown_grace = "300ms", upstream_read = "120s" }

[[servers.web.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:${upstream.port}" }]
`,
      { LOCH_DRIVER: driver },
    );
    const client = net.connect(port, '127.0.0.1');
    try {
      const received: Buffer[] = [];
      client.on('data', (b) => received.push(b));
      client.on('error', () => {});
      const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
      client.write('GET / HTTP/1.1\r\nhost: x\r\n\r\n');
      // The request reached the upstream: its connection is served and not between requests.
      await upstream.arrived;
      const from = loch.stderr().length;
      loch.child.kill('SIGTERM');
      await loch.waitFor(/shutdown grace \(300 ms\) over: closing 1 connection\(s\)/, from, 30_000);
      await closed;
      expect(Buffer.concat(received).toString('latin1')).toBe('');
      expect(await loch.exited, loch.stderr()).toBe(0);
    } finally {
      client.destroy();
      await loch.stop();
      upstream.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});

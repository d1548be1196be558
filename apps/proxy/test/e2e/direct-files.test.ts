/**
 * `runtime.direct_files` end to end (issue 18, REVIEW F215): the key reaches the workers' rings,
 * whose accepts then put client connections in the ring's direct-descriptor table instead of the
 * process's fd table. Two `loch run`s on the io_uring driver, with and without the key: after
 * 100 keep-alive connections that each had a response, the one without it holds ~100 descriptors
 * more, the one with it about none more. The request goes through the route (one pooled upstream
 * connection, asked in turn) so each connection was accepted and served, not only queued.
 */
import * as net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { availableDrivers, freePort, httpUpstream, type Loch, startLoch, tempDir } from './harness.js';

const CONNECTIONS = 100;

/** Opens a keep-alive connection, has one response on it, and leaves it open. */
function servedConnection(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let got = '';
    socket.setEncoding('latin1');
    socket.on('error', reject);
    socket.on('connect', () => socket.write('GET / HTTP/1.1\r\nHost: direct.test\r\n\r\n'));
    socket.on('data', (d: string) => {
      got += d;
      if (got.includes('\r\n\r\nok')) {
        socket.removeAllListeners('data');
        resolve(socket);
      }
    });
  });
}

const config = (port: number, upstream: number, directFiles: string) => `
[runtime]
workers = 1
driver = "uring"
${directFiles}

[servers.web]
listener = { type = "socket", value = "127.0.0.1:${port}" }

[[servers.web.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:${upstream}" }]
`;

describe.skipIf(!availableDrivers().includes('uring'))('runtime.direct_files', () => {
  let upstream: Awaited<ReturnType<typeof httpUpstream>>;
  const running: Loch[] = [];
  const sockets: net.Socket[] = [];

  beforeAll(async () => {
    upstream = await httpUpstream((_req, res) => res.end('ok'));
  });

  afterAll(async () => {
    for (const s of sockets) s.destroy();
    for (const l of running) await l.stop();
    await upstream?.close();
  });

  /** How many descriptors `loch` gains holding CONNECTIONS served keep-alive connections. */
  async function fdGrowth(directFiles: string): Promise<number> {
    const port = await freePort();
    // No env fallback: the key alone decides.
    const loch = await startLoch(tempDir('loch-direct-'), config(port, upstream.port, directFiles), {
      LOCH_URING_DIRECT_FILES: '',
    });
    running.push(loch);
    await servedConnection(port).then((s) => sockets.push(s)); // the upstream connection is pooled now
    const before = loch.fdCount();
    for (let i = 0; i < CONNECTIONS; i++) sockets.push(await servedConnection(port));
    return loch.fdCount() - before;
  }

  it('keeps accepted connections out of the fd table with the key, in it without', async () => {
    expect(await fdGrowth('')).toBeGreaterThanOrEqual(CONNECTIONS);
    expect(await fdGrowth('direct_files = 256')).toBeLessThan(10);
  }, 120_000);
});

/**
 * `runtime.direct_files` end to end (issue 18, REVIEW F215): the key reaches the workers' rings,
 * whose accepts then put client connections in the ring's direct-descriptor table instead of the
 * process's fd table. `loch run`s on the io_uring driver: after 100 keep-alive connections that
 * each had a response, one without direct descriptors holds ~100 descriptors more, one with them
 * about none more. The request goes through the route (one pooled upstream connection, asked in
 * turn) so each connection was accepted and served, not only queued. Without the key (the
 * default, "auto": src/proxy/direct-files.ts) a plain listener accepts into the table and a TLS
 * one keeps descriptors (in-ring TLS); on the legacy driver the default starts and serves with
 * no warning.
 */
import * as net from 'node:net';
import * as tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selfSignedCertificate } from '../../src/demo-certificate.js';
import { availableDrivers, freePort, httpUpstream, type Loch, startLoch, tempDir } from './harness.js';

const CONNECTIONS = 100;

/** Opens a keep-alive connection (TLS with `secure`), has one response on it, and leaves it open. */
function servedConnection(port: number, secure = false): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = secure
      ? tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false })
      : net.connect(port, '127.0.0.1');
    let got = '';
    socket.setEncoding('latin1');
    socket.on('error', reject);
    socket.on(secure ? 'secureConnect' : 'connect', () =>
      socket.write('GET / HTTP/1.1\r\nHost: direct.test\r\n\r\n'),
    );
    socket.on('data', (d: string) => {
      got += d;
      if (got.includes('\r\n\r\nok')) {
        socket.removeAllListeners('data');
        resolve(socket);
      }
    });
  });
}

const config = (port: number, upstream: number, directFiles: string, tlsKeys = '', driver = 'uring') => `
[runtime]
workers = 1
driver = "${driver}"
${directFiles}

[servers.web]
listener = { type = "socket", value = "127.0.0.1:${port}" }
${tlsKeys}

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

  /**
   * How many descriptors `loch` gains holding `count` served keep-alive connections (TLS ones on
   * a TLS listener with `secure`), and its stderr.
   */
  async function fdGrowth(
    directFiles: string,
    { secure = false, count = CONNECTIONS }: { secure?: boolean; count?: number } = {},
  ): Promise<{ grew: number; stderr: string }> {
    const port = await freePort();
    const dir = tempDir('loch-direct-');
    let tlsKeys = '';
    if (secure) {
      const cert = selfSignedCertificate(dir, 'direct', ['direct.test']);
      tlsKeys = `tls = { chain = "${cert.chain}", key = "${cert.key}" }`;
    }
    // No env fallback: the key (or its absence: the default) alone decides.
    const loch = await startLoch(dir, config(port, upstream.port, directFiles, tlsKeys), {
      LOCH_URING_DIRECT_FILES: '',
    });
    running.push(loch);
    await servedConnection(port, secure).then((s) => sockets.push(s)); // the upstream connection is pooled now
    const before = loch.fdCount();
    for (let i = 0; i < count; i++) sockets.push(await servedConnection(port, secure));
    return { grew: loch.fdCount() - before, stderr: loch.stderr() };
  }

  it('keeps accepted connections out of the fd table with the key or without it (the default), in it with 0', async () => {
    expect((await fdGrowth('direct_files = 0')).grew).toBeGreaterThanOrEqual(CONNECTIONS);
    expect((await fdGrowth('direct_files = 256')).grew).toBeLessThan(10);
    const byDefault = await fdGrowth('');
    expect(byDefault.grew).toBeLessThan(10);
    expect(byDefault.stderr).not.toMatch(/direct descriptors|LOCH_URING_DIRECT_FILES/);
  }, 120_000);

  it('by default leaves a TLS listener on descriptors (in-ring TLS needs one); the key takes it too', async () => {
    const count = 20;
    expect((await fdGrowth('', { secure: true, count })).grew).toBeGreaterThanOrEqual(count);
    expect((await fdGrowth('direct_files = 256', { secure: true, count })).grew).toBeLessThan(5);
  }, 120_000);
});

describe('runtime.direct_files by default on the legacy driver', () => {
  it('starts and serves, with no word of direct descriptors', async () => {
    const upstream = await httpUpstream((_req, res) => res.end('ok'));
    const port = await freePort();
    const loch = await startLoch(
      tempDir('loch-direct-legacy-'),
      config(port, upstream.port, '', '', 'legacy'),
      {
        LOCH_URING_DIRECT_FILES: '',
        LOCH_DRIVER: '',
      },
    );
    try {
      const socket = await servedConnection(port);
      socket.destroy();
      expect(loch.stderr()).not.toMatch(/direct descriptors|LOCH_URING_DIRECT_FILES/);
    } finally {
      await loch.stop();
      await upstream.close();
    }
  }, 60_000);
});

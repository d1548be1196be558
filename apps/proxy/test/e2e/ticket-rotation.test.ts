/**
 * Session ticket key rotation through a running loch (two workers): the main thread's timer
 * rotates the keys of every worker at once. Waits for loch's own "rotated" log lines (events, not
 * times): a session issued before a rotation resumes on either worker after it, and no longer
 * after the next one. The rotation itself is unit-tested without a clock in
 * src/proxy/ticket-rotation.test.ts; this covers the main thread's broadcast.
 */
import * as tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selfSignedCertificate } from '../../src/demo-certificate.js';
import { freePort, httpUpstream, type Loch, startLoch, tempDir } from './harness.js';

/** One request over TLS; whether it resumed `session`, and the session it was given. */
function exchange(port: number, session?: Buffer): Promise<{ reused: boolean; session: Buffer | undefined }> {
  return new Promise((resolve, reject) => {
    let latest: Buffer | undefined;
    const socket = tls.connect({
      host: '127.0.0.1',
      port,
      servername: 'localhost',
      rejectUnauthorized: false,
      ...(session === undefined ? {} : { session }),
    });
    socket.on('session', (s: Buffer) => {
      latest = s;
    });
    socket.once('secureConnect', () =>
      socket.write('GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n'),
    );
    socket.resume();
    socket.once('end', () => {
      resolve({ reused: socket.isSessionReused(), session: latest });
      socket.destroy();
    });
    socket.once('error', reject);
  });
}

const rotations = (loch: Loch) =>
  loch.stderr().match(/rotated the session ticket keys of secure/g)?.length ?? 0;

describe('session ticket key rotation in a running loch', () => {
  let loch: Loch;
  let upstream: Awaited<ReturnType<typeof httpUpstream>>;
  let port: number;

  beforeAll(async () => {
    const dir = tempDir('loch-ticket-rotation-');
    selfSignedCertificate(dir, 'localhost', ['localhost']);
    upstream = await httpUpstream((_req, res) => res.end('ok'));
    port = await freePort();
    loch = await startLoch(
      dir,
      `
log = { access = false }
[runtime]
workers = 2

[servers.secure]
listener = { type = "socket", value = "127.0.0.1:${port}" }
tls = { chain = "localhost.pem", key = "localhost.key", session_ticket_rotation = "5s" }

[[servers.secure.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:${upstream.port}" }]
`,
    );
  });
  afterAll(async () => {
    await loch?.stop();
    await upstream?.close();
  });

  it('keeps sessions across one rotation on every worker, not across two', async () => {
    // A session issued right after a rotation, so the next one is a whole period away.
    await loch.waitFor(/rotated the session ticket keys of secure/);
    const issued = rotations(loch);
    const first = await exchange(port);
    expect(first.session).toBeDefined();
    await loch.waitFor(new RegExp(`(?:rotated the session ticket keys of secure[^]*){${issued + 1}}`));
    // Connections land on either worker (SO_REUSEPORT): each resumes.
    const resumed: boolean[] = [];
    for (let i = 0; i < 6; i++) resumed.push((await exchange(port, first.session)).reused);
    expect(rotations(loch)).toBe(issued + 1);
    expect(resumed).toEqual([true, true, true, true, true, true]);
    await loch.waitFor(new RegExp(`(?:rotated the session ticket keys of secure[^]*){${issued + 2}}`));
    const late: boolean[] = [];
    for (let i = 0; i < 6; i++) late.push((await exchange(port, first.session)).reused);
    expect(late).toEqual([false, false, false, false, false, false]);
  }, 60_000);
});

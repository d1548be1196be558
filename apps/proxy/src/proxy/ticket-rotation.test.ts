/**
 * Session ticket key rotation: the key sets it computes, its timers (fake clock), and a worker
 * serving HTTPS that receives rotated keys the way run.ts sends them: a session issued before
 * one rotation still resumes (node:tls as the client), one issued two rotations ago makes a full
 * handshake. Rotation is driven by calling the function, never by waiting.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tls from 'node:tls';
import { generateTicketKeys, TICKET_KEY_BYTES } from '@loch/tls';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { freePort } from '../../../../packages/http/test/free-port.js';
import { parseConfig } from '../config/load.js';
import type { ProxyConfig } from '../config/schema.js';
import { selfSignedCertificate } from '../demo-certificate.js';
import { rotateTicketKeys, TicketKeyRotation } from './ticket-rotation.js';
import { ProxyWorker } from './worker.js';

const dir = mkdtempSync(join(tmpdir(), 'loch-ticket-rotation-'));
const cert = selfSignedCertificate(dir, 'localhost', ['localhost']);

function configOf(port: number, rotation = '', plainPort = port + 1): ProxyConfig {
  return parseConfig(`
log = { level = "error", access = false }
[servers.secure]
listener = { type = "socket", value = "127.0.0.1:${port}" }
[servers.secure.tls]
chain = "${cert.chain}"
key = "${cert.key}"
${rotation}
[[servers.secure.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:1" }]

[servers.plain]
listener = { type = "socket", value = "127.0.0.1:${plainPort}" }
[[servers.plain.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:1" }]
`);
}

/** Two distinct free ports below the ephemeral range (free-port.ts says why). */
async function freePorts(): Promise<[number, number]> {
  return [await freePort('apps/proxy'), await freePort('apps/proxy')];
}

/** One request over TLS (TLS 1.3 tickets arrive after the handshake); whether it resumed, and the newest session. */
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

describe('rotateTicketKeys', () => {
  it('puts a fresh key first and keeps only the previous current key, for TLS servers named', () => {
    const config = configOf(1);
    const before = config.servers.find((s) => s.key === 'secure')!.tls!.ticketKeys;
    const fresh = generateTicketKeys();
    const once = rotateTicketKeys(config, ['secure', 'plain', 'absent'], () => fresh);
    expect(Object.keys(once.keys)).toEqual(['secure']);
    const keys = once.keys.secure!;
    expect(keys.byteLength).toBe(2 * TICKET_KEY_BYTES);
    expect(keys.subarray(0, TICKET_KEY_BYTES)).toEqual(fresh);
    expect(keys.subarray(TICKET_KEY_BYTES)).toEqual(before.subarray(0, TICKET_KEY_BYTES));
    expect(once.config.servers.find((s) => s.key === 'secure')!.tls!.ticketKeys).toBe(keys);
    // The input config is left as it was.
    expect(config.servers.find((s) => s.key === 'secure')!.tls!.ticketKeys).toBe(before);
    const twice = rotateTicketKeys(once.config, ['secure']).keys.secure!;
    expect(twice.byteLength).toBe(2 * TICKET_KEY_BYTES);
    expect(twice.subarray(TICKET_KEY_BYTES)).toEqual(fresh);
  });
});

describe('TicketKeyRotation timers', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('fires per TLS server at its period (12 h by default), follows reloads, and stops', () => {
    vi.useFakeTimers();
    const due: string[][] = [];
    const rotation = new TicketKeyRotation((servers) => due.push([...servers]));
    rotation.update(configOf(1));
    expect([...rotation.armed]).toEqual([['secure', 12 * 3_600_000]]);
    vi.advanceTimersByTime(12 * 3_600_000 - 1);
    expect(due).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(due).toEqual([['secure']]);
    // A reload that changes the period re-arms; "0s" turns rotation off.
    rotation.update(configOf(1, 'session_ticket_rotation = "1h"'));
    vi.advanceTimersByTime(3_600_000);
    expect(due).toEqual([['secure'], ['secure']]);
    rotation.update(configOf(1, 'session_ticket_rotation = "0s"'));
    expect(rotation.armed.size).toBe(0);
    rotation.update(configOf(1));
    rotation.close();
    // A period past Node's longest timer would fire at once, forever: refused by the config.
    expect(() => configOf(1, 'session_ticket_rotation = "1000h"')).toThrow(/session_ticket_rotation/);
    vi.advanceTimersByTime(48 * 3_600_000);
    expect(due).toHaveLength(2);
  });
});

describe('a worker given rotated ticket keys', () => {
  let worker: ProxyWorker;
  let port: number;
  let config: ProxyConfig;

  beforeAll(async () => {
    let plainPort: number;
    [port, plainPort] = await freePorts();
    config = configOf(port, '', plainPort);
    worker = new ProxyWorker(0, config);
    await worker.start();
  });
  afterAll(async () => {
    await worker?.shutdown();
  });

  /** Rotates as run.ts does: the next key set from the running config, sent as a command. */
  const rotate = (): void => {
    const next = rotateTicketKeys(config, ['secure']);
    config = next.config;
    expect(worker.command({ t: 'ticket-keys', keys: next.keys })).toBe(1);
  };

  it('resumes a session issued before one rotation, not one from two rotations ago', async () => {
    const first = await exchange(port);
    expect(first.reused).toBe(false);
    expect(first.session).toBeDefined();
    // Control: without a rotation the session resumes.
    expect((await exchange(port, first.session)).reused).toBe(true);

    rotate();
    const acrossOne = await exchange(port, first.session);
    expect(acrossOne.reused).toBe(true);
    const afterOne = await exchange(port);
    expect(afterOne.reused).toBe(false);

    rotate();
    // `first` was issued under the key that is now two rotations old: a full handshake.
    expect((await exchange(port, first.session)).reused).toBe(false);
    // A session issued after the first rotation is one rotation old: it resumes.
    expect((await exchange(port, afterOne.session)).reused).toBe(true);
  });
});

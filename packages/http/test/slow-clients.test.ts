/**
 * Slow clients against HttpServer's deadlines, on every runtime driver, with raw sockets: a
 * head that trickles in a byte at a time (slowloris) is cut by the head deadline counted from
 * its first byte (each byte does not extend it), answered 408 and closed, while a normal client
 * on the same server is answered meanwhile; a client that stops reading a large streamed
 * response is cut by the write deadline, and the server pulled only a bounded part of the body.
 */
import * as net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixedBody, streamBody } from '../src/body.js';
import { createResponse } from '../src/message.js';
import { availableDrivers, type InProcess, raw, startServer } from './server-harness.js';

const drivers = await availableDrivers();

/** Bytes the streamed response offers (64 MiB, in 64 KiB chunks): far more than socket buffers hold. */
const CHUNK = 64 * 1024;
const CHUNKS = 1024;

describe.each(drivers)('slow clients (driver %s)', (driver) => {
  let s: InProcess;
  /** Chunks the body source handed out, per request target. */
  const pulled = new Map<string, number>();

  beforeAll(async () => {
    s = await startServer(
      driver,
      { timeouts: { head: 400, write: 400, idle: 30_000 } },
      {
        call(request) {
          if (request.target !== '/large') return createResponse(200, { body: fixedBody('ok\n') });
          const key = `${request.target}#${pulled.size}`;
          pulled.set(key, 0);
          async function* body() {
            const chunk = new Uint8Array(CHUNK);
            for (let i = 0; i < CHUNKS; i++) {
              pulled.set(key, i + 1);
              yield chunk;
            }
          }
          return createResponse(200, { body: streamBody(body()) });
        },
      },
    );
  });
  afterAll(async () => {
    await s.stop();
  });

  it('a head trickled a byte at a time is cut by the head deadline (408), and others are answered meanwhile', async () => {
    const head = `GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ${'a'.repeat(200)}\r\n\r\n`;
    const socket = net.connect(s.port, '127.0.0.1');
    socket.on('error', () => {});
    let got = '';
    let sent = 0;
    socket.setEncoding('latin1').on('data', (d: string) => {
      got += d;
    });
    const closed = new Promise<void>((r) => socket.on('close', () => r()));
    await new Promise((r) => socket.once('connect', r));
    const trickle = setInterval(() => {
      if (sent < head.length && !socket.destroyed) socket.write(head[sent++]!);
    }, 50);
    // a normal client on the same server, while the slow one trickles
    const normal = await raw(s.port, 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expect(normal).toMatch(/^HTTP\/1\.1 200 /);
    await closed;
    clearInterval(trickle);
    expect(got).toMatch(/^HTTP\/1\.1 408 /);
    // cut well before the whole head (260 bytes at 50 ms each: 13 s) was sent
    expect(sent).toBeLessThan(head.length);
  });

  it('a client that stops reading a large response is cut by the write deadline; the body is pulled only as it is written', async () => {
    const socket = net.connect(s.port, '127.0.0.1');
    socket.on('error', () => {});
    let bytes = 0;
    let paused = false;
    socket.on('data', (d: Buffer) => {
      bytes += d.length;
      // read the first bytes (the head), then stop reading, as a client reading a byte at a time would
      if (!paused) {
        paused = true;
        socket.pause();
      }
    });
    const closed = new Promise<void>((r) => socket.on('close', () => r()));
    socket.write('GET /large HTTP/1.1\r\nHost: x\r\n\r\n');
    await new Promise((r) => setTimeout(r, 1500));
    // The write deadline (400 ms) cut it: resuming reads what the kernel held, then the end.
    socket.resume();
    await closed;
    const chunks = [...pulled.values()].at(-1)!;
    // bounded: what the socket buffers took plus a chunk or two, never the 64 MiB body
    expect(chunks).toBeLessThan(CHUNKS / 4);
    expect(bytes).toBeLessThan(CHUNK * CHUNKS);
  });
});

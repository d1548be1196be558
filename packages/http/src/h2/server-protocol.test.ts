/**
 * HttpServer's import of its HTTP/2 side (server.ts: at the isolate's first h2 connection): an
 * import that fails closes only the connection that needed it and tells onError, the server goes
 * on serving HTTP/1.1, and the next h2 connection imports again; the first ALPN-h2 connection is
 * one of the server's open connections while it waits. The failure is a mock (no real peer can
 * make an import fail); the streams are in memory.
 */
import { plainFacts } from '@loch/uring-runtime';
import { describe, expect, it, vi } from 'vitest';
import { createResponse } from '../message.js';
import { HttpServer } from '../server.js';
import type { HttpStream, StreamChunk } from '../transport.js';
import { CONNECTION_PREFACE, encodeSettings, FrameType } from './frames.js';

/** Imports of server-protocol.ts left to fail. */
const imports = vi.hoisted(() => ({ failures: 0 }));
vi.mock('./server-protocol.js', async (importOriginal) => {
  if (imports.failures > 0) {
    imports.failures--;
    throw new Error('the HTTP/2 code is missing');
  }
  return importOriginal();
});

const ADDRESS = { family: 'ipv4', address: '127.0.0.1', port: 1 } as const;

/** A client stream in memory: `send()` hands the server bytes; what it writes is kept. */
class MemoryClient implements HttpStream {
  readonly remoteAddress = ADDRESS;
  readonly localAddress = { ...ADDRESS, port: 2 };
  readonly driver = 'legacy' as const;
  closed = false;
  written: Uint8Array[] = [];
  /** Resolves at the first write (for a session: its SETTINGS). */
  readonly firstWrite: Promise<void>;
  private wrote: () => void = () => {};
  private ready: Uint8Array[] = [];
  private target: { onRecv(chunk: StreamChunk | null, error: unknown): void } | null = null;

  constructor(readonly facts: HttpStream['facts'] = plainFacts(ADDRESS)) {
    this.firstWrite = new Promise((resolve) => {
      this.wrote = resolve;
    });
  }

  send(bytes: Uint8Array): void {
    const target = this.target;
    if (target === null) {
      this.ready.push(bytes);
      return;
    }
    this.target = null;
    target.onRecv({ bytes, release() {} }, undefined);
  }

  recvTo(target: { onRecv(chunk: StreamChunk | null, error: unknown): void }): void {
    if (this.closed) {
      process.nextTick(() => target.onRecv(null, undefined));
      return;
    }
    const next = this.ready.shift();
    if (next === undefined) this.target = target;
    else process.nextTick(() => target.onRecv({ bytes: next, release() {} }, undefined));
  }

  writeTo(data: Uint8Array | readonly Uint8Array[], target: { onWritten(error: unknown): void }): void {
    for (const piece of data instanceof Uint8Array ? [data] : data) this.written.push(piece.slice());
    this.wrote();
    process.nextTick(() => target.onWritten(undefined));
  }

  shutdown(): Promise<void> {
    return Promise.resolve();
  }

  setNoDelay(): void {}

  close(): Promise<void> {
    this.closed = true;
    const target = this.target;
    this.target = null;
    if (target !== null) process.nextTick(() => target.onRecv(null, undefined));
    return Promise.resolve();
  }

  /** Whether the server wrote a frame of `type` (its first bytes are frames once h2 runs). */
  wroteFrame(type: number): boolean {
    return this.written.some((b) => b.length >= 9 && b[3] === type);
  }

  text(): string {
    return Buffer.concat(this.written).toString('latin1');
  }
}

const opening = (): Uint8Array => new Uint8Array(Buffer.concat([CONNECTION_PREFACE, encodeSettings({})]));
const settle = async (): Promise<void> => {
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
};

describe("HttpServer's HTTP/2 side, imported at the first h2 connection", () => {
  const errors: unknown[] = [];
  const server = new HttpServer({ call: () => createResponse(204) }, { onError: (e) => errors.push(e) });

  it('a failed import closes that h2c connection and tells onError; HTTP/1.1 is still served', async () => {
    imports.failures = 1;
    const h2c = new MemoryClient();
    const served = server.serveConnection(h2c);
    h2c.send(opening());
    await served;
    expect(h2c.closed).toBe(true);
    expect(h2c.wroteFrame(FrameType.SETTINGS)).toBe(false);
    // (vitest wraps the factory's throw; the import's error is the cause.)
    expect(errors).toHaveLength(1);
    expect(String((errors[0] as Error).cause ?? errors[0])).toMatch(/the HTTP\/2 code is missing/);
    expect(server.connections).toBe(0);

    const h1 = new MemoryClient();
    void server.serveConnection(h1);
    h1.send(new TextEncoder().encode('GET / HTTP/1.1\r\nhost: a\r\n\r\n'));
    await settle();
    expect(h1.text()).toMatch(/^HTTP\/1\.1 204 /);
    await h1.close();
    await settle();
    expect(server.connections).toBe(0);
  });

  it('the next h2 connection (here by ALPN) imports again, counted among the open connections while it waits', {
    timeout: 60_000,
  }, async () => {
    const alpn = new MemoryClient({ ...plainFacts(ADDRESS), secure: true, alpnProtocol: 'h2' });
    const served = server.serveConnection(alpn);
    // Waiting for the import, it is an open connection (close() would wait for it).
    expect(server.connections).toBe(1);
    alpn.send(opening());
    // The import transforms the h2 modules on its first run here: wait for the session's first
    // write (its SETTINGS), however long that takes; the test's timeout is the only bound.
    await alpn.firstWrite;
    expect(errors.slice(1)).toEqual([]);
    expect(alpn.wroteFrame(FrameType.SETTINGS)).toBe(true);
    await alpn.close();
    await served;
    expect(server.connections).toBe(0);
  });
});

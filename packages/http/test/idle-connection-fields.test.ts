/**
 * What an idle keep-alive connection costs in memory (issue 18): its numbers stay Smis. A number
 * field that ever held a fractional value or +Infinity becomes a double field in V8, and every
 * object of that class then carries a 16-byte HeapNumber box for it (no pointer compression in
 * Node's builds): the deadline, armed from the server's clock, was one such box per connection
 * (bench/idle-memory/readings-2026-12-05b.md, section 3).
 */
import { setFlagsFromString } from 'node:v8';
import { RuntimeStream } from '@loch/uring-runtime';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { H1ServerConnection } from '../src/h1/server-connection.js';
import { availableDrivers, type InProcess, RawClient, startServer } from './server-harness.js';

setFlagsFromString('--allow-natives-syntax');
/** V8's own answer: is this value a Smi (an integer kept in the field, no box)? */
const isSmi = new Function('v', 'return %IsSmi(v)') as (v: unknown) => boolean;

const drivers = await availableDrivers();

describe.each(drivers)('an idle HTTP/1.1 connection (driver %s)', (driver) => {
  let srv: InProcess | undefined;
  let client: RawClient | undefined;
  afterEach(async () => {
    vi.restoreAllMocks();
    client?.destroy();
    await srv?.stop();
    srv = undefined;
  });

  it('keeps every number field a Smi after serving requests (deadlines included)', async () => {
    const made: H1ServerConnection<unknown>[] = [];
    const start = H1ServerConnection.prototype.start;
    vi.spyOn(H1ServerConnection.prototype, 'start').mockImplementation(function (
      this: H1ServerConnection<unknown>,
    ) {
      made.push(this);
      start.call(this);
    });
    // Every deadline kind armed once: head (a head in two reads), write, body, idle.
    srv = await startServer(driver, {
      timeouts: { idle: 60_000, head: 30_000, body: 30_000, write: 30_000 },
    });
    client = new RawClient(srv.port);
    await client.opened;
    client.write('GET /hello HTTP/1.1\r\n');
    await new Promise((r) => setTimeout(r, 20));
    client.write('host: x\r\n\r\n');
    await client.until((t) => t.includes('hello world'));
    client.write('POST /len HTTP/1.1\r\nhost: x\r\ncontent-length: 4\r\n\r\nab');
    await new Promise((r) => setTimeout(r, 20));
    client.write('cd');
    await client.until((t) => t.includes('\r\n\r\n4 '));
    const server = srv.server;
    for (let n = 0; n < 200 && server.idleConnections !== 1; n++) await new Promise((r) => setTimeout(r, 10));
    expect(server.idleConnections).toBe(1);

    expect(made).toHaveLength(1);
    const conn = made[0] as unknown as Record<string, unknown>;
    const numbers = Object.keys(conn).filter((k) => typeof conn[k] === 'number');
    expect(numbers).toContain('deadlineAt');
    expect(numbers.filter((k) => !isSmi(conn[k]))).toEqual([]);
    // An idle connection has its idle deadline armed.
    expect(conn.deadline).toBeLessThan(Number.POSITIVE_INFINITY);
  });

  it('never reads the facts of its plain stream, HTTP/2 on (their object is 64 B per idle connection)', async () => {
    // The server asks RuntimeStream.hasPlainFacts before the facts (ALPN for h2, the preface sniff),
    // and the default context reads remoteAddress: nothing makes a runtime stream's facts.
    const factsRead = vi.spyOn(RuntimeStream.prototype, 'facts', 'get');
    srv = await startServer(driver, { http2: true, timeouts: { idle: 60_000 } });
    client = new RawClient(srv.port);
    await client.opened;
    client.write('GET /hello HTTP/1.1\r\nhost: x\r\n\r\n');
    await client.until((t) => t.includes('hello world'));
    const server = srv.server;
    for (let n = 0; n < 200 && server.idleConnections !== 1; n++) await new Promise((r) => setTimeout(r, 10));
    expect(server.idleConnections).toBe(1);
    expect(factsRead).not.toHaveBeenCalled();
  });
});

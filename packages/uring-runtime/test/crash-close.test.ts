/**
 * A worker that dies ends its sockets at once, on both drivers (issue 16): its kept-alive
 * clients get their FIN, and its listener leaves the SO_REUSEPORT group, before the thread
 * reports its error and is torn down, so a client's next request goes on a new connection, to
 * a worker still alive, instead of onto a connection nobody reads (reset once the teardown
 * closed it: ECONNRESET). The fixture holds the dying thread in its own 'exit' listener (after
 * the runtime's) until the test has looked, so nothing here depends on how fast a teardown is:
 * at that point, as a well-behaved HTTP client does, each client sends its next request on its
 * connection if the server has not closed it, else on a new one; every request must be
 * answered. Without the close at exit (workers/bootstrap.ts) the dead worker's connections are
 * still open then, and their requests are reset once the thread is released.
 */
import * as net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createRuntime, type Runtime, start, TcpListener, type WorkerPool } from '../src/index.js';
import type { HeldExitData } from './fixtures/held-exit-worker.js';

const fixture = new URL('./fixtures/held-exit-worker.ts', import.meta.url);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let pool: WorkerPool | undefined;
let holder: Runtime | undefined;
let gate: Int32Array | undefined;
afterEach(async () => {
  if (gate !== undefined) {
    Atomics.store(gate, 1, 1);
    Atomics.notify(gate, 1);
  }
  await pool?.stop({ deadline: 2000 });
  await holder?.close();
  pool = undefined;
  holder = undefined;
  gate = undefined;
});

/** A kept-alive client connection of the fixture's ping protocol. */
class Client {
  readonly socket: net.Socket;
  /** The server ended the connection (FIN or reset). */
  ended = false;
  private text = '';
  private waiting: ((line: string | null) => void) | null = null;

  constructor(port: number) {
    this.socket = net.connect(port, '127.0.0.1');
    this.socket.setEncoding('utf8');
    this.socket.on('data', (d: string) => {
      this.text += d;
      const at = this.text.indexOf('\n');
      if (at >= 0 && this.waiting !== null) {
        const line = this.text.slice(0, at);
        this.text = this.text.slice(at + 1);
        const w = this.waiting;
        this.waiting = null;
        w(line);
      }
    });
    const end = () => {
      this.ended = true;
      const w = this.waiting;
      this.waiting = null;
      w?.(null);
    };
    this.socket.on('end', end);
    this.socket.on('error', end);
    this.socket.on('close', end);
  }

  /** Sends a ping: the answering worker's index, or null when the connection ended first. */
  ping(): Promise<string | null> {
    return new Promise((resolve) => {
      this.waiting = resolve;
      this.socket.write('ping\n');
    });
  }
}

describe.each(['legacy', 'uring'] as const)(
  'a dead worker ends its sockets at once (%s driver)',
  (driver) => {
    it('its kept-alive clients see the close before the thread is torn down; their next requests all go to the live worker', async (test) => {
      const available = await createRuntime({ driver, log: () => undefined }).then(
        (runtime) => runtime.close().then(() => true),
        () => false,
      );
      if (!available) test.skip(`the ${driver} driver is unavailable here`);
      holder = await createRuntime({ driver: 'legacy', log: () => undefined });
      const reserved = await TcpListener.bind({
        host: '127.0.0.1',
        port: 0,
        reusePort: true,
        runtime: holder,
      });
      const port = (reserved.localAddress as { port: number }).port;
      const shared = new SharedArrayBuffer(8);
      gate = new Int32Array(shared);
      const data: HeldExitData = { port, gate: shared };
      pool = await start({ workers: 2, driver, data, restart: { minBackoffMs: 1000 } }, fixture);
      await reserved.close();

      // Kept-alive clients, each answered once, until worker 1 serves a few (connections made in
      // a burst tend to land on one listener: a pause between them spreads them).
      const clients: Client[] = [];
      const served = new Map<Client, string>();
      for (let round = 0; round < 100 && [...served.values()].filter((w) => w === '1').length < 4; round++) {
        const c = new Client(port);
        clients.push(c);
        served.set(c, (await c.ping()) ?? 'none');
        if (round % 4 === 3) await sleep(20);
      }
      const dead = clients.filter((c) => served.get(c) === '1');
      expect(dead.length).toBeGreaterThanOrEqual(4);
      expect([...served.values()].every((w) => w === '0' || w === '1')).toBe(true);

      // Worker 1 throws; its thread is held in the fixture's 'exit' listener.
      pool.send(1, { cmd: 'throw' }).catch(() => undefined);
      for (let i = 0; i < 2000 && Atomics.load(gate, 0) === 0; i++) await sleep(5);
      expect(Atomics.load(gate, 0)).toBe(1);
      // Whatever the server sent by now is in the clients' sockets: let the loop read it.
      await sleep(50);
      const closedEarly = dead.filter((c) => c.ended).length;

      // The next request of every client: on its connection if the server has not closed it, else
      // on a new one (which must reach worker 0: worker 1's listener is gone from the group).
      const sent = clients.map((c) => {
        if (!c.ended) return { reused: true, answer: c.ping() };
        const fresh = new Client(port);
        clients.push(fresh);
        return { reused: false, answer: fresh.ping() };
      });
      // And clients new to the server: none may land on the dead worker's listener.
      for (let i = 0; i < 8; i++) {
        const fresh = new Client(port);
        clients.push(fresh);
        sent.push({ reused: false, answer: fresh.ping() });
      }
      // Let the dying thread go: its teardown closes what it still holds.
      await sleep(50);
      Atomics.store(gate, 1, 1);
      Atomics.notify(gate, 1);
      const answers = await Promise.all(sent.map((s) => s.answer));
      const lost = answers.filter((a) => a !== '0').length;
      console.log(
        `[${driver}] ${served.size} clients, ${dead.length} on the dead worker, ${closedEarly} of them closed before its teardown; next requests: ${sent.filter((s) => !s.reused).length} on new connections (8 of new clients), ${lost} not answered by worker 0`,
      );
      expect(closedEarly).toBe(dead.length);
      expect(lost).toBe(0);
      for (const c of clients) c.socket.destroy();
    }, 60_000);
  },
);

/**
 * The client of the handshake benchmark: a node:tls loop that opens new TLS connections to
 * 127.0.0.1:<port> as fast as it can (a few at a time), each one a handshake and nothing else:
 * connect, handshake, wait for the server's session ticket (TLS 1.3 sends it after the
 * handshake, so the server has done all its handshake work), close with close_notify. `full`
 * offers no session; `resumed` offers the latest ticket it received (one priming connection
 * gets the first); a server that issues no new ticket on resumption is, once seen, no longer
 * waited for. It runs a warm-up, prints `start`, runs the measured window and prints
 * `done <json>`; the parent reads the server's CPU time at both lines. Not a load generator for
 * requests (wrk) and not a verifier: certificates are not checked.
 *
 * Usage: node --import tsx handshake-client.ts <port> <full|resumed> <seconds> <warmupSeconds> [concurrency]
 */
import { connect, type TLSSocket } from 'node:tls';

const port = Number(process.argv[2]);
const mode = process.argv[3] === 'resumed' ? 'resumed' : 'full';
const seconds = Number(process.argv[4] ?? 5);
const warmupSeconds = Number(process.argv[5] ?? 1);
const concurrency = Number(process.argv[6] ?? 8);

/** How long to wait for a session ticket after the handshake before closing anyway. */
const TICKET_WAIT_MS = 200;

/** What the measured window did. */
interface Counts {
  handshakes: number;
  resumed: number;
  failed: number;
  /** Connections closed without a ticket within TICKET_WAIT_MS. */
  noTicket: number;
  lastError: string;
}

let session: Buffer | undefined;
/** Resumed handshakes that brought a new ticket, and those that waited for one in vain. */
let resumedWithTicket = 0;
let resumedWithoutTicket = 0;
/**
 * Whether to wait for a ticket after a resumed handshake: until a few waits in a row went
 * unanswered and none ever was (a server that issues no new ticket on resumption), learned in
 * the warm-up. A slow ticket from a loaded server is not mistaken for none.
 */
const waitOnResume = () => resumedWithTicket > 0 || resumedWithoutTicket < 8;

/**
 * One connection: handshake, ticket (or its deadline), close_notify; resolves with whether the
 * session was resumed once the socket has closed, rejects if it closed before the handshake.
 */
function handshake(): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const socket: TLSSocket = connect({
      host: '127.0.0.1',
      port,
      servername: 'localhost',
      rejectUnauthorized: false,
      ...(mode === 'resumed' && session !== undefined ? { session } : {}),
    });
    let ticket = false;
    let secured = false;
    let reused = false;
    let failure: Error | undefined;
    let finished = false;
    let timer: NodeJS.Timeout | undefined;
    const finish = () => {
      if (finished) return;
      finished = true;
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
      reused = socket.isSessionReused();
      // close_notify and FIN, then the socket is gone: a server that does not close its side on
      // close_notify (HAProxy waits for its client timeout) does not hold the lane.
      socket.end(() => socket.destroy());
    };
    socket.on('session', (s: Buffer) => {
      session = s;
      if (ticket) return;
      ticket = true;
      if (socket.isSessionReused()) resumedWithTicket++;
      if (secured) finish();
    });
    socket.once('secureConnect', () => {
      secured = true;
      if (ticket || (socket.isSessionReused() && !waitOnResume())) finish();
      else
        timer = setTimeout(() => {
          counts.noTicket++;
          if (socket.isSessionReused()) resumedWithoutTicket++;
          finish();
        }, TICKET_WAIT_MS);
    });
    socket.on('error', (err) => {
      failure ??= err;
    });
    socket.once('close', () => {
      if (timer !== undefined) clearTimeout(timer);
      if (secured) resolve(reused);
      else reject(failure ?? new Error('closed before the handshake completed'));
    });
  });
}

let counts: Counts = { handshakes: 0, resumed: 0, failed: 0, noTicket: 0, lastError: '' };

/** Runs `concurrency` lanes of back-to-back handshakes until `until` (ms since epoch). */
async function run(until: number): Promise<void> {
  const lane = async () => {
    while (Date.now() < until) {
      try {
        const reused = await handshake();
        counts.handshakes++;
        if (reused) counts.resumed++;
      } catch (err) {
        counts.failed++;
        counts.lastError = (err as Error).message;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
}

async function main(): Promise<void> {
  // Priming: the first ticket (and the server's first handshakes) before the warm-up.
  await handshake().catch(() => undefined);
  await run(Date.now() + warmupSeconds * 1000);
  counts = { handshakes: 0, resumed: 0, failed: 0, noTicket: 0, lastError: '' };
  process.stdout.write('start\n');
  const started = performance.now();
  await run(Date.now() + seconds * 1000);
  const elapsed = (performance.now() - started) / 1000;
  process.stdout.write(
    `done ${JSON.stringify({ ...counts, ticketOnResume: resumedWithTicket > 0, seconds: elapsed })}\n`,
  );
}

await main();

/**
 * In-process cost of one gateway call through Loch's JavaScript, without I/O (issue 19): the
 * HttpServer serving @loch/gateway's ThriftGateway (as loch-gateway.ts builds it: POST /echo ->
 * Bench.echo over a ClientExchange) over in-memory streams. The client stream hands the server
 * the next POST once the previous answer was written (a client waiting for each answer); the
 * upstream stream answers each call written to it with its Item echoed (the call's bytes with
 * the message type made REPLY and the argument's field id 0: what upstream.ts sends, made by
 * one copy). Results are delivered from microtasks, as the runtime does. What the runtime and
 * the kernel cost (submissions, the sends themselves) is not here: this is the JavaScript work
 * a change to the gateway moves, measured as CPU time (best of `--rounds`), load-insensitive
 * enough for before/after on a shared machine; `--promises` counts the promises made per call
 * (async_hooks), and under callgrind the difference of two call counts gives instructions per
 * call. Not the wire benchmark (run.ts) nor the process profile (profile.ts).
 *
 * `--ab DIR`: DIR holds another @loch/gateway source tree (DIR/src/index.ts; inside the
 * checkout so that its imports resolve, e.g. `git archive <rev> packages/gateway/src | tar -x
 * --strip-components=2 -C packages/gateway/.ab-base`): its gateway (A) and this checkout's (B)
 * are measured in alternating rounds in one process, and the median of the per-round B/A CPU
 * ratios is printed: a before/after that a loaded machine moves much less than two runs.
 *
 * Run: pnpm --filter @loch/bench exec tsx --conditions=@loch/source gateway/core.ts
 *        [N] [--payload small|large] [--rounds 5] [--promises] [--ab DIR]
 */
import { createHook } from 'node:async_hooks';
import { resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import * as current from '@loch/gateway';
import { HttpServer } from '@loch/http';
import { MemoryStream } from '../lib/memory-stream.js';
import { PAYLOADS } from './payloads.js';

const { values: flags, positionals } = parseArgs({
  options: {
    payload: { type: 'string', default: 'small' },
    rounds: { type: 'string', default: '5' },
    promises: { type: 'boolean', default: false },
    ab: { type: 'string' },
  },
  allowPositionals: true,
});
const N = Number(positionals[0] ?? 50_000);
const ROUNDS = Number(flags.rounds);
const body = Buffer.from((flags.payload === 'large' ? PAYLOADS[1] : PAYLOADS[0])!.body);
// Plain Uint8Arrays, as the runtime delivers received bytes.
const REQUEST = new Uint8Array(
  Buffer.concat([
    Buffer.from(
      `POST /echo HTTP/1.1\r\nHost: 127.0.0.1:18080\r\nUser-Agent: wrk\r\nContent-Length: ${body.byteLength}\r\n\r\n`,
      'latin1',
    ),
    body,
  ]),
);
/** The client: one request now, the next once an answer (head and body: one write) went out. */
class Downstream extends MemoryStream {
  left = 0;
  /** The start of the first answer (checked: a 200, or the figures measure an error path). */
  first = '';
  protected override take(data: Uint8Array | readonly Uint8Array[]): number {
    if (this.first === '') {
      const head = data instanceof Uint8Array ? data : data[0];
      this.first = Buffer.from(head?.subarray(0, 12) ?? []).toString('latin1');
    }
    return super.take(data);
  }
  constructor(n: number) {
    super();
    this.left = n - 1;
    this.deliver(REQUEST);
  }
  protected override wrote(): void {
    this.deliver(this.left-- > 0 ? REQUEST : null);
  }
}

/** The echo upstream: each framed binary call written is answered with its Item. */
class Upstream extends MemoryStream {
  #reply = new Uint8Array(0);
  #length = 0;
  protected override take(data: Uint8Array | readonly Uint8Array[]): number {
    const parts = data instanceof Uint8Array ? [data] : data;
    let n = 0;
    for (const b of parts) n += b.byteLength;
    if (this.#reply.byteLength < n) this.#reply = new Uint8Array(n * 2);
    let at = 0;
    for (const b of parts) {
      this.#reply.set(b, at);
      at += b.byteLength;
    }
    // Frame length (4), strict message header: version and type (4), name (4 + length), seq id (4).
    const nameLength = new DataView(this.#reply.buffer).getUint32(8);
    this.#reply[7] = 2; // REPLY
    const field = 16 + nameLength; // the argument's field header: type, id (2)
    this.#reply[field + 1] = 0;
    this.#reply[field + 2] = 0;
    this.#length = n;
    this.written += n;
    return n;
  }
  protected override wrote(): void {
    this.deliver(this.#reply.subarray(0, this.#length));
  }
}

type GatewayModule = Pick<typeof current, 'ClientExchange' | 'loadIdl' | 'ThriftGateway'>;

/** An HttpServer serving the echo route of `gateway` (a @loch/gateway module) over Upstream. */
function serverOf(gateway: GatewayModule) {
  const idl = gateway.loadIdl(fileURLToPath(new URL('./bench.thrift', import.meta.url)));
  const upstream = new gateway.ClientExchange(async () => new Upstream(), {
    connections: 1,
    timeout: 10_000,
  });
  const service = new gateway.ThriftGateway([
    { idl, service: 'Bench', function: 'echo', path: '/echo', httpMethod: 'POST', upstream },
  ]);
  return { http: new HttpServer(service, { limits: { methods: 'any' } }), upstream };
}

const sides: { name: string; server: ReturnType<typeof serverOf>; best: number; rounds: number[] }[] = [];
if (flags.ab !== undefined) {
  const base = (await import(pathToFileURL(resolve(flags.ab, 'src/index.ts')).href)) as GatewayModule;
  sides.push({ name: `A (${flags.ab})`, server: serverOf(base), best: Number.POSITIVE_INFINITY, rounds: [] });
}
sides.push({
  name: 'B (this checkout)',
  server: serverOf(current),
  best: Number.POSITIVE_INFINITY,
  rounds: [],
});

// `--promises`: promises made per call (async_hooks, the last round's; the hook slows the run,
// so its CPU time is not the figure then). A count does not depend on the machine's load.
let promises = 0;
const promiseHook = flags.promises
  ? createHook({
      init(_id, type) {
        if (type === 'PROMISE') promises++;
      },
    })
  : null;

let answerBytes = 0;
for (let round = 0; round < ROUNDS; round++) {
  // Alternate which side goes first, so that neither always runs on a warmer (or busier) moment.
  const order = round % 2 === 0 ? sides : [...sides].reverse();
  for (const side of order) {
    const down = new Downstream(N);
    promises = 0;
    promiseHook?.enable();
    const before = process.cpuUsage();
    await side.server.http.serveConnection(down);
    const used = process.cpuUsage(before);
    promiseHook?.disable();
    const perCall = (used.user + used.system) / N;
    side.best = Math.min(side.best, perCall);
    side.rounds.push(perCall);
    answerBytes = down.written / N;
    if (down.first !== 'HTTP/1.1 200') throw new Error(`the gateway answered ${down.first}, not 200`);
  }
}
for (const side of sides) {
  console.log(
    `gateway core ${flags.payload}${sides.length > 1 ? ` ${side.name}` : ''}: ${side.best.toFixed(3)} CPU us/call (best of ${ROUNDS} x ${N}), ` +
      `${answerBytes.toFixed(0)} bytes/answer` +
      (promiseHook === null ? '' : `, ${(promises / N).toFixed(2)} promises/call (last round)`),
  );
}
if (sides.length === 2) {
  const [a, b] = sides as [(typeof sides)[0], (typeof sides)[0]];
  const ratios = a.rounds.map((x, i) => (b.rounds[i] as number) / x).sort((x, y) => x - y);
  console.log(
    `B/A per round: median ${(ratios[Math.floor(ratios.length / 2)] as number).toFixed(3)} ` +
      `[${(ratios[0] as number).toFixed(3)} .. ${(ratios[ratios.length - 1] as number).toFixed(3)}]`,
  );
}
for (const side of sides) await side.server.upstream.close();

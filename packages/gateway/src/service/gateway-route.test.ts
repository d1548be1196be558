/**
 * GatewayRoute and its exchange's optional release(): called with the reply frame once the
 * answer was made from it (also when the reply is unreadable), never for a oneway call. Its
 * JSON body read: chunks that split UTF-8 characters, a chunked body past the limit, a body at
 * hand read without waiting, and answers that stay intact while later calls are answered.
 */
import { createHook } from 'node:async_hooks';
import { fileURLToPath } from 'node:url';
import {
  createRequest,
  fixedBody,
  type HttpBody,
  type ReadyBodyIterator,
  readText,
  streamBody,
} from '@loch/http';
import { BinaryReader, createWriter, MessageType, type ThriftFrame, TType } from '@loch/thrift';
import { describe, expect, it } from 'vitest';
import { JsonToThriftCompiler } from '../codec/json-to-thrift.js';
import { loadIdl } from '../idl/load.js';
import { GatewayRoute, type ThriftExchange } from './gateway-route.js';

const idl = loadIdl(fileURLToPath(new URL('../../test/idl/pii.thrift', import.meta.url)));
const fns = idl.services.get('ProfileService')!.functions;

function reply(name: string, success: unknown): Uint8Array {
  const w = createWriter('binary');
  w.writeMessageBegin(name, MessageType.REPLY, 0);
  new JsonToThriftCompiler().struct(fns.get(name)!.result)(w, { success });
  w.writeMessageEnd();
  return w.finishCopy();
}

class Exchange implements ThriftExchange {
  readonly released: ThriftFrame[] = [];
  constructor(private readonly payload: Uint8Array | undefined) {}
  send(): Promise<ThriftFrame | undefined> {
    return Promise.resolve(
      this.payload === undefined ? undefined : ({ payload: this.payload } as ThriftFrame),
    );
  }
  release(frame: ThriftFrame): void {
    this.released.push(frame);
  }
}

function route(fn: string, upstream: ThriftExchange): GatewayRoute {
  return new GatewayRoute({ idl, service: 'ProfileService', function: fn, path: '/x', upstream });
}

describe('GatewayRoute releases reply frames', () => {
  it('once answered, and when the reply is unreadable; never for oneway', async () => {
    const ok = new Exchange(reply('count', 3));
    const res = await route('count', ok).call(
      createRequest('GET', '/x'),
      new Map(),
      new URLSearchParams('q=a'),
    );
    expect(await readText(res.body)).toBe('3');
    expect(ok.released).toHaveLength(1);
    const bad = new Exchange(new Uint8Array([1, 2, 3]));
    const failed = await route('count', bad).call(
      createRequest('GET', '/x'),
      new Map(),
      new URLSearchParams('q=a'),
    );
    expect(failed.status).toBe(502);
    expect(bad.released).toHaveLength(1);
    const oneway = new Exchange(undefined);
    const none = await route('ping', oneway).call(
      createRequest('GET', '/x'),
      new Map(),
      new URLSearchParams('note=a'),
    );
    expect(none.status).toBe(204);
    expect(oneway.released).toHaveLength(0);
  });
});

describe('GatewayRoute reads the JSON body', () => {
  const echoIdl = loadIdl('/virtual/echo.thrift', {
    readFile: () => 'service Echo {\n  string echo(1: string text)\n}\n',
  });

  /** Answers every call with the `text` argument it carried. */
  class EchoExchange implements ThriftExchange {
    send(message: Uint8Array): Promise<ThriftFrame | undefined> {
      const r = new BinaryReader().reset(message);
      r.readMessageBegin();
      r.readStructBegin();
      r.readFieldBegin();
      const text = r.readString();
      const w = createWriter('binary');
      w.writeMessageBegin('echo', MessageType.REPLY, 0);
      w.writeStructBegin();
      w.writeFieldBegin(TType.STRING, 0);
      w.writeString(text);
      w.writeFieldStop();
      w.writeStructEnd();
      return Promise.resolve({ payload: w.finishCopy() } as ThriftFrame);
    }
  }

  const echo = (maxBodySize?: number) =>
    new GatewayRoute({
      idl: echoIdl,
      service: 'Echo',
      function: 'echo',
      path: '/echo',
      upstream: new EchoExchange(),
      ...(maxBodySize === undefined ? {} : { maxBodySize }),
    });

  // `{"text":"grüße €"}` cut inside the two-byte ü and the three-byte €.
  const bytes = new TextEncoder().encode(JSON.stringify({ text: 'grüße €' }));
  const cuts = [bytes.indexOf(0xc3) + 1, bytes.indexOf(0xe2) + 2];
  const chunks = [bytes.subarray(0, cuts[0]), bytes.subarray(cuts[0], cuts[1]), bytes.subarray(cuts[1])];

  it.each([
    ['chunked', undefined],
    ['with a Content-Length', bytes.byteLength],
  ])('in chunks that split characters (%s)', async (_, length) => {
    const res = await echo().call(
      createRequest('POST', '/echo', {
        body: streamBody(
          chunks.map((c) => c.slice()),
          length === undefined ? {} : { length },
        ),
      }),
      new Map(),
      undefined,
    );
    expect(res.status).toBe(200);
    expect(await readText(res.body)).toBe('"grüße €"');
  });

  // `{"text":"` 0xff `"}`: not UTF-8, so not JSON.
  const notUtf8 = Uint8Array.of(...new TextEncoder().encode('{"text":"'), 0xff, 0x22, 0x7d);
  it.each([
    ['fixed', () => fixedBody(notUtf8.slice())],
    ['chunked', () => streamBody([notUtf8.subarray(0, 4).slice(), notUtf8.subarray(4).slice()])],
    ['one chunk with a Content-Length', () => streamBody([notUtf8.slice()], { length: notUtf8.byteLength })],
  ])('refuses a body that is not UTF-8 with 400 (%s)', async (_, body) => {
    const res = await echo().call(createRequest('POST', '/echo', { body: body() }), new Map(), undefined);
    expect(res.status).toBe(400);
    expect(await readText(res.body)).toContain('ERR_GATEWAY_BAD_JSON');
  });

  it('refuses a chunked body past maxBodySize with 413', async () => {
    const res = await echo(bytes.byteLength - 1).call(
      createRequest('POST', '/echo', { body: streamBody(chunks.map((c) => c.slice())) }),
      new Map(),
      undefined,
    );
    expect(res.status).toBe(413);
  });

  /** A wire body as the server hands it over: steps at hand through nextNow(), the rest by next(). */
  class WireBody implements HttpBody, ReadyBodyIterator {
    readonly kind = 'fixed' as const;
    readonly trailers = null;
    readonly length: number;
    nextCalls = 0;
    #at = 0;
    constructor(
      private readonly parts: Uint8Array[],
      /** How many of the steps (the parts, then the end) are at hand. */
      private readonly atHand: number,
    ) {
      this.length = parts.reduce((n, p) => n + p.byteLength, 0);
    }
    [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
      return this;
    }
    #step(): IteratorResult<Uint8Array> {
      const part = this.parts[this.#at++];
      return part === undefined ? { done: true, value: undefined } : { done: false, value: part };
    }
    nextNow(): IteratorResult<Uint8Array> | null {
      return this.#at < this.atHand ? this.#step() : null;
    }
    next(): Promise<IteratorResult<Uint8Array>> {
      this.nextCalls++;
      return Promise.resolve(this.#step());
    }
  }

  it('reads a body whose steps are all at hand without waiting for any (no next())', async () => {
    const body = new WireBody([bytes.slice()], 2);
    const res = await echo().call(createRequest('POST', '/echo', { body }), new Map(), undefined);
    expect(await readText(res.body)).toBe('"grüße €"');
    expect(body.nextCalls).toBe(0);
  });

  it("makes one promise of its own for a call whose body is at hand (beside the exchange's)", async () => {
    const route = echo();
    const request = () => createRequest('POST', '/echo', { body: new WireBody([bytes.slice()], 2) });
    await route.call(request(), new Map(), undefined);
    let made = 0;
    const hook = createHook({
      init(_id, type) {
        if (type === 'PROMISE') made++;
      },
    });
    const exchange = new EchoExchange();
    const message = route.encode({ text: 'x' });
    hook.enable();
    void exchange.send(message);
    hook.disable();
    const exchangeOwn = made;
    made = 0;
    const req = request();
    hook.enable();
    const answer = route.call(req, new Map(), undefined);
    hook.disable();
    expect(made - exchangeOwn).toBe(1);
    expect(await readText((await answer).body)).toBe('"grüße €"');
  });

  it('waits for the steps that are not at hand', async () => {
    const body = new WireBody(
      chunks.map((c) => c.slice()),
      1,
    );
    const res = await echo().call(createRequest('POST', '/echo', { body }), new Map(), undefined);
    expect(await readText(res.body)).toBe('"grüße €"');
    expect(body.nextCalls).toBe(3);
  });

  it('answers many calls with answers that stay intact (copies share a slab)', async () => {
    const route = echo();
    const answers = [];
    for (let i = 0; i < 2000; i++) {
      answers.push(
        await route.call(
          createRequest('POST', '/echo', {
            body: fixedBody(JSON.stringify({ text: `call ${i} ${'x'.repeat(i % 97)}` })),
          }),
          new Map(),
          undefined,
        ),
      );
    }
    for (let i = 0; i < answers.length; i++)
      expect(await readText(answers[i]!.body)).toBe(`"call ${i} ${'x'.repeat(i % 97)}"`);
  });
});

/**
 * GatewayRoute and its exchange's optional release(): called with the reply frame once the
 * answer was made from it (also when the reply is unreadable), never for a oneway call.
 */
import { fileURLToPath } from 'node:url';
import { createRequest, readText } from '@loch/http';
import { createWriter, MessageType, type ThriftFrame } from '@loch/thrift';
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

// Cost of a certain-map context against the two things it replaces: a plain object with the
// same fields, and a Map. Each iteration runs the per-request pattern 1,000 times: create a
// context, set three keys, read them back (and, in "read only", only reads a built context).
// Run: pnpm --filter @loch/certain-map bench
import { bench, describe } from 'vitest';
import { defineContext } from '../src/index.js';

interface Schema {
  peer: string;
  requestId: number;
  upstream: string;
}
const Ctx = defineContext<Schema>()(['peer', 'requestId', 'upstream']);
const RecordCtx = defineContext<Schema>()(['peer', 'requestId', 'upstream'], { implementation: 'record' });
const N = 1_000;
const peers = ['10.0.0.1:1', '10.0.0.2:2', '10.0.0.3:3', '10.0.0.4:4'];
let sink = 0;

describe('create + set 3 + get 3 (per request)', () => {
  bench('certain-map', () => {
    for (let i = 0; i < N; i++) {
      const ctx = Ctx.empty()
        .set('peer', peers[i & 3]!)
        .set('requestId', i)
        .set('upstream', 'u');
      sink += ctx.get('peer').length + ctx.get('requestId') + ctx.get('upstream').length;
    }
  });
  bench('certain-map (record fallback)', () => {
    for (let i = 0; i < N; i++) {
      const ctx = RecordCtx.empty()
        .set('peer', peers[i & 3]!)
        .set('requestId', i)
        .set('upstream', 'u');
      sink += ctx.get('peer').length + ctx.get('requestId') + ctx.get('upstream').length;
    }
  });
  bench('plain object', () => {
    for (let i = 0; i < N; i++) {
      const ctx: { [K in keyof Schema]: Schema[K] | undefined } = {
        peer: undefined,
        requestId: undefined,
        upstream: undefined,
      };
      ctx.peer = peers[i & 3]!;
      ctx.requestId = i;
      ctx.upstream = 'u';
      sink += ctx.peer.length + ctx.requestId + ctx.upstream.length;
    }
  });
  bench('Map', () => {
    for (let i = 0; i < N; i++) {
      const ctx = new Map<keyof Schema, Schema[keyof Schema]>();
      ctx.set('peer', peers[i & 3]!);
      ctx.set('requestId', i);
      ctx.set('upstream', 'u');
      sink +=
        (ctx.get('peer') as string).length +
        (ctx.get('requestId') as number) +
        (ctx.get('upstream') as string).length;
    }
  });
});

describe('get 3 on a built context (read only)', () => {
  const ctx = Ctx.empty().set('peer', peers[0]!).set('requestId', 7).set('upstream', 'u');
  const obj: Schema = { peer: peers[0]!, requestId: 7, upstream: 'u' };
  const map = new Map<keyof Schema, Schema[keyof Schema]>([
    ['peer', peers[0]!],
    ['requestId', 7],
    ['upstream', 'u'],
  ]);
  bench('certain-map', () => {
    for (let i = 0; i < N; i++)
      sink += ctx.get('peer').length + ctx.get('requestId') + ctx.get('upstream').length;
  });
  bench('plain object', () => {
    for (let i = 0; i < N; i++) sink += obj.peer.length + obj.requestId + obj.upstream.length;
  });
  bench('Map', () => {
    for (let i = 0; i < N; i++)
      sink +=
        (map.get('peer') as string).length +
        (map.get('requestId') as number) +
        (map.get('upstream') as string).length;
  });
});

describe('fork a context with 3 keys', () => {
  const ctx = Ctx.empty().set('peer', peers[0]!).set('requestId', 7).set('upstream', 'u');
  const obj: Schema = { peer: peers[0]!, requestId: 7, upstream: 'u' };
  const map = new Map<keyof Schema, Schema[keyof Schema]>([
    ['peer', peers[0]!],
    ['requestId', 7],
    ['upstream', 'u'],
  ]);
  bench('certain-map', () => {
    for (let i = 0; i < N; i++) sink += ctx.fork().get('requestId');
  });
  bench('plain object', () => {
    for (let i = 0; i < N; i++) sink += { ...obj }.requestId;
  });
  bench('Map', () => {
    for (let i = 0; i < N; i++) sink += new Map(map).get('requestId') as number;
  });
});

export { sink };

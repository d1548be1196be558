import { describe, expectTypeOf, it } from 'vitest';
import { type CertainMap, defineContext, type EmptyContext, type Has, type SubsetMap } from './index.js';

interface SocketAddr {
  host: string;
  port: number;
}
interface Schema {
  peer: SocketAddr;
  requestId: string;
  attempt: number;
}
const Ctx = defineContext<Schema>()(['peer', 'requestId', 'attempt']);

describe('certain-map type guarantees', () => {
  it('empty() has no key present: get of any key is an error, maybeGet is allowed', () => {
    const ctx = Ctx.empty();
    expectTypeOf(ctx).toEqualTypeOf<CertainMap<Schema, never>>();
    expectTypeOf(ctx).toEqualTypeOf<EmptyContext<typeof Ctx>>();
    // @ts-expect-error peer was never set
    ctx.get('peer');
    expectTypeOf(ctx.maybeGet('peer')).toEqualTypeOf<SocketAddr | undefined>();
  });

  it('set then get is allowed and typed with the schema value', () => {
    const ctx = Ctx.empty().set('requestId', 'r1');
    expectTypeOf(ctx).toEqualTypeOf<CertainMap<Schema, 'requestId'>>();
    expectTypeOf(ctx.get('requestId')).toEqualTypeOf<string>();
    // @ts-expect-error attempt was not set
    ctx.get('attempt');
    const both = ctx.set('attempt', 1);
    expectTypeOf(both).toEqualTypeOf<CertainMap<Schema, 'requestId' | 'attempt'>>();
    expectTypeOf(both.get('attempt')).toEqualTypeOf<number>();
  });

  it('set only accepts schema keys and schema value types', () => {
    const ctx = Ctx.empty();
    // @ts-expect-error not a schema key
    ctx.set('nope', 1);
    // @ts-expect-error attempt is a number
    ctx.set('attempt', 'one');
  });

  it('remove then get is an error', () => {
    const ctx = Ctx.empty().set('requestId', 'r1').set('attempt', 1).remove('requestId');
    expectTypeOf(ctx).toEqualTypeOf<CertainMap<Schema, 'attempt'>>();
    // @ts-expect-error requestId was removed
    ctx.get('requestId');
    expectTypeOf(ctx.get('attempt')).toEqualTypeOf<number>();
  });

  it('take returns the value and retypes the context', () => {
    const ctx = Ctx.empty().set('peer', { host: 'h', port: 1 }).set('attempt', 0);
    const [peer, rest] = ctx.take('peer');
    expectTypeOf(peer).toEqualTypeOf<SocketAddr>();
    expectTypeOf(rest).toEqualTypeOf<CertainMap<Schema, 'attempt'>>();
    // @ts-expect-error peer was taken
    rest.get('peer');
    // @ts-expect-error cannot take a key that is not present
    rest.take('requestId');
  });

  it('fork keeps the type', () => {
    const ctx = Ctx.empty().set('peer', { host: 'h', port: 1 });
    expectTypeOf(ctx.fork()).toEqualTypeOf<CertainMap<Schema, 'peer'>>();
    expectTypeOf(ctx.fork().get('peer')).toEqualTypeOf<SocketAddr>();
  });

  it('has() narrows the context', () => {
    const ctx: CertainMap<Schema> = Ctx.empty();
    if (ctx.has('attempt')) expectTypeOf(ctx.get('attempt')).toEqualTypeOf<number>();
  });

  it('a service requiring keys rejects a context that lacks them and accepts one that has more', () => {
    const handle = (ctx: Has<typeof Ctx, 'peer' | 'requestId'>): string =>
      `${ctx.get('requestId')} from ${ctx.get('peer').host}`;
    const full = Ctx.empty().set('peer', { host: 'h', port: 1 }).set('requestId', 'r').set('attempt', 0);
    expectTypeOf(handle(full)).toEqualTypeOf<string>();
    // @ts-expect-error requestId is missing
    handle(Ctx.empty().set('peer', { host: 'h', port: 1 }));
    // @ts-expect-error nothing is present
    handle(Ctx.empty());
    // @ts-expect-error requestId was removed
    handle(full.fork().remove('requestId'));
  });

  it('Has accepts a definition, a schema or a context type', () => {
    expectTypeOf<Has<typeof Ctx, 'peer'>>().toEqualTypeOf<CertainMap<Schema, 'peer'>>();
    expectTypeOf<Has<Schema, 'peer'>>().toEqualTypeOf<CertainMap<Schema, 'peer'>>();
    expectTypeOf<Has<CertainMap<Schema, 'attempt'>, 'peer'>>().toEqualTypeOf<CertainMap<Schema, 'peer'>>();
    // @ts-expect-error not a schema key
    expectTypeOf<Has<typeof Ctx, 'nope'>>();
  });

  it('a layer that adds a key keeps whatever the caller already had', () => {
    const withAttempt = <P extends keyof Schema>(ctx: CertainMap<Schema, P>) => ctx.set('attempt', 1);
    const out = withAttempt(Ctx.empty().set('requestId', 'r'));
    expectTypeOf(out).toEqualTypeOf<CertainMap<Schema, 'requestId' | 'attempt'>>();
  });

  it('of() types exactly the given keys', () => {
    const ctx = Ctx.of({ requestId: 'r' });
    expectTypeOf(ctx).toEqualTypeOf<CertainMap<Schema, 'requestId'>>();
    // @ts-expect-error wrong value type
    Ctx.of({ attempt: 'x' });
  });

  it('defineContext requires every schema key', () => {
    // @ts-expect-error attempt is missing from the key list
    defineContext<Schema>()(['peer', 'requestId']);
    // @ts-expect-error not a schema key
    defineContext<Schema>()(['peer', 'requestId', 'attempt', 'nope']);
  });
});

describe('subset context type guarantees', () => {
  const Conn = Ctx.subset(['peer', 'requestId']);
  const peer = { host: 'h', port: 1 };

  it('set takes only the subset keys: a schema key outside it (which throws at run time) does not compile', () => {
    const ctx = Conn.empty();
    expectTypeOf(ctx).toEqualTypeOf<SubsetMap<Schema, 'peer' | 'requestId'>>();
    // @ts-expect-error attempt has no slot in this subset (ERR_CERTAIN_MAP_OUTSIDE_SUBSET)
    ctx.set('attempt', 1);
    const set = ctx.set('peer', peer).set('requestId', 'r');
    expectTypeOf(set).toEqualTypeOf<SubsetMap<Schema, 'peer' | 'requestId', 'peer' | 'requestId'>>();
    // @ts-expect-error still a subset context after set
    set.set('attempt', 1);
    // @ts-expect-error nor after remove and take
    set.remove('peer').take('requestId')[1].set('attempt', 1);
    if (ctx.has('requestId')) {
      // @ts-expect-error nor after has
      ctx.set('attempt', 1);
    }
    // @ts-expect-error not a schema key
    ctx.set('nope', 1);
    // @ts-expect-error peer is a SocketAddr
    ctx.set('peer', 'x');
    // @ts-expect-error of() takes the subset keys only
    Conn.of({ attempt: 1 });
    expectTypeOf(Conn.of({ peer })).toEqualTypeOf<SubsetMap<Schema, 'peer' | 'requestId', 'peer'>>();
  });

  it('is a whole context for everything else: get, passed as Has, fork() whole and free to set any key', () => {
    const ctx = Conn.empty().set('peer', peer);
    expectTypeOf(ctx.get('peer')).toEqualTypeOf<SocketAddr>();
    // @ts-expect-error requestId was not set
    ctx.get('requestId');
    expectTypeOf(ctx.maybeGet('attempt')).toEqualTypeOf<number | undefined>();
    const needsPeer = (c: Has<typeof Ctx, 'peer'>) => c.get('peer').host;
    expectTypeOf(needsPeer(ctx)).toEqualTypeOf<string>();
    const whole = ctx.fork();
    expectTypeOf(whole).toEqualTypeOf<CertainMap<Schema, 'peer'>>();
    expectTypeOf(whole.set('attempt', 1)).toEqualTypeOf<CertainMap<Schema, 'peer' | 'attempt'>>();
  });
});

describe('key readers', () => {
  const Peer = Ctx.reader('peer');
  const Attempt = Ctx.reader('attempt');

  it('get compiles only for a context holding the key, maybeGet for any', () => {
    const ctx = Ctx.empty().set('peer', { host: 'h', port: 1 }).set('requestId', 'r');
    expectTypeOf(Peer.get(ctx)).toEqualTypeOf<SocketAddr>();
    // @ts-expect-error attempt was not set
    Attempt.get(ctx);
    // @ts-expect-error peer was never set
    Peer.get(Ctx.empty());
    expectTypeOf(Attempt.maybeGet(ctx)).toEqualTypeOf<number | undefined>();
    expectTypeOf(Attempt.maybeGet(Ctx.empty())).toEqualTypeOf<number | undefined>();
    const Conn = Ctx.subset(['peer']);
    expectTypeOf(Peer.get(Conn.empty().set('peer', { host: 'h', port: 1 }))).toEqualTypeOf<SocketAddr>();
    // @ts-expect-error not a key of the schema
    Ctx.reader('nope');
  });
});

describe('key writers', () => {
  const SetPeer = Ctx.writer('peer');
  const SetAttempt = Ctx.writer('attempt');

  it('set adds the key to the context type and takes the key value type', () => {
    const ctx = SetPeer.set(Ctx.empty(), { host: 'h', port: 1 });
    expectTypeOf(ctx).toEqualTypeOf<CertainMap<Schema, 'peer'>>();
    const both = SetAttempt.set(ctx, 1);
    expectTypeOf(both).toEqualTypeOf<CertainMap<Schema, 'peer' | 'attempt'>>();
    expectTypeOf(both.get('attempt')).toEqualTypeOf<number>();
    // @ts-expect-error attempt is a number
    SetAttempt.set(ctx, 'one');
    // @ts-expect-error requestId was never set
    SetPeer.set(Ctx.empty(), { host: 'h', port: 1 }).get('requestId');
    // @ts-expect-error not a key of the schema
    Ctx.writer('nope');
  });
});

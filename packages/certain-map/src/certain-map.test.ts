import { describe, expect, it } from 'vitest';
import { CertainMap, CertainMapError, defineContext } from './index.js';

interface Schema {
  peer: string;
  requestId: string;
  attempt: number;
  user: { name: string } | undefined;
}
const keys = ['peer', 'requestId', 'attempt', 'user'] as const;

// One conformance suite, run against both implementations.
describe.each(['compiled', 'record'] as const)('CertainMap operations (%s)', (implementation) => {
  const Ctx = defineContext<Schema>()(keys, { implementation });

  it('uses the requested implementation', () => {
    expect(Ctx.implementation).toBe(implementation);
  });

  it('empty() has no key present', () => {
    const ctx = Ctx.empty();
    expect(ctx).toBeInstanceOf(CertainMap);
    for (const key of Ctx.keys) {
      expect(ctx.has(key)).toBe(false);
      expect(ctx.maybeGet(key)).toBeUndefined();
    }
    expect(ctx.toJSON()).toEqual({});
  });

  it('set stores the value, returns the same object, and get reads it', () => {
    const ctx = Ctx.empty();
    const withPeer = ctx.set('peer', '127.0.0.1:80');
    expect(withPeer).toBe(ctx);
    expect(withPeer.get('peer')).toBe('127.0.0.1:80');
    expect(withPeer.set('peer', '10.0.0.1:81').get('peer')).toBe('10.0.0.1:81');
  });

  it('maybeGet returns the value or undefined', () => {
    const ctx = Ctx.empty().set('attempt', 0);
    expect(ctx.maybeGet('attempt')).toBe(0);
    expect(ctx.maybeGet('peer')).toBeUndefined();
  });

  it('undefined is a storable value, distinct from absence', () => {
    const ctx = Ctx.empty().set('user', undefined);
    expect(ctx.has('user')).toBe(true);
    expect(ctx.get('user')).toBeUndefined();
    expect(ctx.toJSON()).toEqual({ user: undefined });
    expect('user' in ctx.toJSON()).toBe(true);
  });

  it('remove clears the key', () => {
    const ctx = Ctx.empty().set('peer', 'a').set('attempt', 1);
    const removed = ctx.remove('peer');
    expect(removed).toBe(ctx);
    expect(removed.has('peer')).toBe(false);
    expect(removed.get('attempt')).toBe(1);
    expect(removed.remove('requestId').has('requestId')).toBe(false);
  });

  it('take returns the value and clears the key', () => {
    const ctx = Ctx.empty().set('requestId', 'r-1').set('attempt', 2);
    const [value, rest] = ctx.take('requestId');
    expect(value).toBe('r-1');
    expect(rest).toBe(ctx);
    expect(rest.has('requestId')).toBe(false);
    expect(rest.get('attempt')).toBe(2);
  });

  it('fork is an independent copy', () => {
    const a = Ctx.empty().set('peer', 'p').set('attempt', 1);
    const fork = a.fork();
    expect(fork).not.toBe(a);
    expect(fork.get('peer')).toBe('p');
    const b = fork.set('attempt', 2).set('requestId', 'only-b');
    a.remove('peer');
    expect(a.get('attempt')).toBe(1);
    expect(a.has('requestId')).toBe(false);
    expect(b.get('peer')).toBe('p');
    expect(b.get('requestId')).toBe('only-b');
  });

  it('has narrows at runtime and is false after remove', () => {
    const ctx = Ctx.empty().set('attempt', 3);
    expect(ctx.has('attempt')).toBe(true);
    ctx.remove('attempt');
    expect(ctx.has('attempt')).toBe(false);
  });

  it('of() creates a context with the given entries', () => {
    const ctx = Ctx.of({ peer: 'x', attempt: 0 });
    expect(ctx.get('peer')).toBe('x');
    expect(ctx.get('attempt')).toBe(0);
    expect(ctx.has('requestId')).toBe(false);
    expect(ctx.toJSON()).toEqual({ peer: 'x', attempt: 0 });
  });

  it('contexts of one definition are independent', () => {
    const a = Ctx.empty().set('peer', 'a');
    const b = Ctx.empty();
    expect(b.has('peer')).toBe(false);
    expect(a.get('peer')).toBe('a');
  });

  it('all contexts of a definition share one V8 shape-relevant constructor', () => {
    expect(Ctx.empty().constructor).toBe(Ctx.empty().set('peer', 'x').fork().constructor);
  });

  it('a schema key named like a method does not shadow the method', () => {
    const Odd = defineContext<{ get: number; set: string }>()(['get', 'set'], { implementation });
    const ctx = Odd.empty().set('get', 1).set('set', 's');
    expect(ctx.get('get')).toBe(1);
    expect(ctx.get('set')).toBe('s');
    expect(ctx.toJSON()).toEqual({ get: 1, set: 's' });
  });
});

describe.each(['compiled', 'record'] as const)(
  'CertainMap misuse that escapes the types (%s)',
  (implementation) => {
    const Ctx = defineContext<Schema>()(keys, { implementation });

    it('get of an absent key (through a cast) throws ERR_CERTAIN_MAP_ABSENT_KEY', () => {
      const ctx = Ctx.empty() as unknown as CertainMap<Schema, 'peer'>;
      expect(() => ctx.get('peer')).toThrow(CertainMapError);
      try {
        ctx.get('peer');
      } catch (error) {
        expect((error as CertainMapError).code).toBe('ERR_CERTAIN_MAP_ABSENT_KEY');
        expect((error as CertainMapError).key).toBe('peer');
      }
      expect(() => ctx.take('peer')).toThrow(/peer holds no value/);
    });

    it('set/remove of an undeclared key throws ERR_CERTAIN_MAP_UNKNOWN_KEY and leaves the object unchanged', () => {
      const ctx = Ctx.empty() as unknown as CertainMap<Record<string, unknown>>;
      expect(() => ctx.set('nope', 1)).toThrow(
        expect.objectContaining({ code: 'ERR_CERTAIN_MAP_UNKNOWN_KEY' }),
      );
      expect(() => ctx.set('toString', 1)).toThrow(
        expect.objectContaining({ code: 'ERR_CERTAIN_MAP_UNKNOWN_KEY' }),
      );
      expect(() => ctx.remove('nope')).toThrow(
        expect.objectContaining({ code: 'ERR_CERTAIN_MAP_UNKNOWN_KEY' }),
      );
      expect(ctx.toJSON()).toEqual({});
    });

    it('get/has/maybeGet of an undeclared key (through a cast) do not invent a value', () => {
      const ctx = Ctx.empty() as unknown as CertainMap<Record<string, unknown>, string>;
      expect(ctx.maybeGet('nope')).toBeUndefined();
      expect(ctx.has('nope')).toBe(false);
      expect(() => ctx.get('nope')).toThrow(CertainMapError);
    });
  },
);

describe('defineContext', () => {
  it('rejects duplicate keys', () => {
    expect(() => defineContext<{ a: number }>()(['a', 'a'])).toThrow(
      expect.objectContaining({ code: 'ERR_CERTAIN_MAP_DUPLICATE_KEY', key: 'a' }),
    );
  });

  it('defaults to the compiled implementation', () => {
    expect(defineContext<{ a: number }>()(['a']).implementation).toBe('compiled');
  });

  it('falls back to the record implementation for symbol keys', () => {
    const token = Symbol('token');
    const Sym = defineContext<{ [token]: number; name: string }>()([token, 'name']);
    expect(Sym.implementation).toBe('record');
    const ctx = Sym.empty().set(token, 1).set('name', 'n');
    expect(ctx.get(token)).toBe(1);
    expect(ctx.take(token)[1].has(token)).toBe(false);
  });

  it('key names cannot inject code into the compiled class', () => {
    const nasty = 'a"]; throw new Error("injected"); //';
    const Nasty = defineContext<Record<typeof nasty | 'b', number>>()([nasty, 'b']);
    expect(Nasty.implementation).toBe('compiled');
    expect(Nasty.empty().set(nasty, 1).get(nasty)).toBe(1);
    expect(Nasty.empty().set(nasty, 1).toJSON()).toEqual({ [nasty]: 1 });
  });
});

// A subset context (Ctx.subset(keys)): slots for its keys only, fork() whole.
describe.each(['compiled', 'record'] as const)('subset contexts (%s)', (implementation) => {
  const Ctx = defineContext<Schema>()(keys, { implementation });
  const Conn = Ctx.subset(['peer', 'user']);

  it('holds its keys like a whole context, and the others are always absent', () => {
    const ctx = Conn.empty().set('peer', 'p');
    expect(ctx.get('peer')).toBe('p');
    expect(ctx.has('user')).toBe(false);
    expect(ctx.set('user', undefined).has('user')).toBe(true);
    expect(ctx.has('attempt')).toBe(false);
    expect(ctx.maybeGet('attempt')).toBeUndefined();
    expect(ctx.remove('attempt')).toBe(ctx);
    expect(ctx.toJSON()).toEqual({ peer: 'p', user: undefined });
    expect(Conn.of({ peer: 'q' }).get('peer')).toBe('q');
    expect(Conn.keys).toEqual(['peer', 'user']);
    // The point of a subset: its contexts carry a slot per subset key only.
    if (implementation === 'compiled') {
      expect(Object.getOwnPropertyNames(Conn.empty())).toEqual(['$peer', '$user']);
      expect(Object.getOwnPropertyNames(Ctx.empty())).toHaveLength(keys.length);
    }
  });

  it('set of a schema key outside the subset throws ERR_CERTAIN_MAP_OUTSIDE_SUBSET, get ABSENT, unknown keys UNKNOWN', () => {
    const ctx = Conn.empty().set('peer', 'p') as unknown as CertainMap<Schema, 'peer' | 'attempt'>;
    expect(() => ctx.set('attempt', 1)).toThrow(
      expect.objectContaining({ code: 'ERR_CERTAIN_MAP_OUTSIDE_SUBSET', key: 'attempt' }),
    );
    expect(() => ctx.get('attempt')).toThrow(expect.objectContaining({ code: 'ERR_CERTAIN_MAP_ABSENT_KEY' }));
    const loose = ctx as unknown as CertainMap<Record<string, unknown>, string>;
    expect(() => loose.set('nope', 1)).toThrow(
      expect.objectContaining({ code: 'ERR_CERTAIN_MAP_UNKNOWN_KEY' }),
    );
    expect(() => loose.get('nope')).toThrow(expect.objectContaining({ code: 'ERR_CERTAIN_MAP_UNKNOWN_KEY' }));
    expect(() => loose.remove('nope')).toThrow(
      expect.objectContaining({ code: 'ERR_CERTAIN_MAP_UNKNOWN_KEY' }),
    );
    expect(ctx.toJSON()).toEqual({ peer: 'p' });
  });

  it('fork() is a whole context of the definition with the same entries, independent of the subset one', () => {
    const conn = Conn.empty().set('peer', 'p');
    const whole = conn.fork().set('attempt', 2).set('requestId', 'r');
    expect(whole.constructor).toBe(Ctx.empty().constructor);
    expect(whole.toJSON()).toEqual({ peer: 'p', attempt: 2, requestId: 'r' });
    expect(whole.has('user')).toBe(false);
    conn.set('peer', 'changed');
    expect(whole.get('peer')).toBe('p');
    expect(conn.has('attempt')).toBe(false);
  });

  it('refuses keys outside the schema and duplicates', () => {
    expect(() => Ctx.subset(['peer', 'peer'])).toThrow(
      expect.objectContaining({ code: 'ERR_CERTAIN_MAP_DUPLICATE_KEY' }),
    );
    expect(() => Ctx.subset(['nope' as keyof Schema])).toThrow(
      expect.objectContaining({ code: 'ERR_CERTAIN_MAP_UNKNOWN_KEY' }),
    );
  });
});

// Key readers (Ctx.reader(key)): standalone get/maybeGet of one key, same contract as the methods.
describe.each(['compiled', 'record'] as const)('key readers (%s)', (implementation) => {
  const Ctx = defineContext<Schema>()(keys, { implementation });
  const Conn = Ctx.subset(['peer', 'user']);
  const Peer = Ctx.reader('peer');
  const Attempt = Ctx.reader('attempt');
  const User = Ctx.reader('user');

  it('get and maybeGet read what the methods read, on whole contexts', () => {
    const ctx = Ctx.empty().set('peer', 'p').set('attempt', 0).set('user', undefined);
    expect(Peer.key).toBe('peer');
    expect(Peer.get(ctx)).toBe('p');
    expect(Attempt.get(ctx)).toBe(0);
    expect(User.get(ctx)).toBeUndefined();
    expect(Peer.maybeGet(ctx)).toBe('p');
    const later = ctx.set('peer', 'q').remove('attempt');
    expect(Peer.get(later)).toBe('q');
    expect(Attempt.maybeGet(later)).toBeUndefined();
    expect(Attempt.maybeGet(later.fork().set('attempt', 3))).toBe(3);
  });

  it('get of an absent key (through a cast) throws ERR_CERTAIN_MAP_ABSENT_KEY, maybeGet is undefined', () => {
    const ctx = Ctx.empty().set('peer', 'p');
    const cast = ctx as unknown as CertainMap<Schema, 'peer' | 'attempt' | 'user'>;
    expect(() => Attempt.get(cast)).toThrow(
      expect.objectContaining({ code: 'ERR_CERTAIN_MAP_ABSENT_KEY', key: 'attempt' }),
    );
    expect(() => User.get(cast)).toThrow(
      expect.objectContaining({ code: 'ERR_CERTAIN_MAP_ABSENT_KEY', key: 'user' }),
    );
    expect(User.maybeGet(ctx)).toBeUndefined();
  });

  it('reads subset contexts: their keys, and the schema keys they have no slot for as absent', () => {
    const conn = Conn.empty().set('peer', 'p');
    expect(Peer.get(conn)).toBe('p');
    expect(User.maybeGet(conn)).toBeUndefined();
    expect(Attempt.maybeGet(conn)).toBeUndefined();
    const cast = conn as unknown as CertainMap<Schema, 'peer' | 'attempt'>;
    expect(() => Attempt.get(cast)).toThrow(expect.objectContaining({ code: 'ERR_CERTAIN_MAP_ABSENT_KEY' }));
    // ... and the subset context still has a slot for its own keys only.
    if (implementation === 'compiled') expect(Object.getOwnPropertyNames(conn)).toEqual(['$peer', '$user']);
  });

  it('reads every key of a subset of no keys as absent (REVIEW F186)', () => {
    const none = Ctx.subset([]).empty();
    expect(Peer.maybeGet(none)).toBeUndefined();
    const cast = none as unknown as CertainMap<Schema, 'peer'>;
    expect(() => Peer.get(cast)).toThrow(
      expect.objectContaining({ code: 'ERR_CERTAIN_MAP_ABSENT_KEY', key: 'peer' }),
    );
  });

  it('refuses a key outside the schema', () => {
    expect(() => Ctx.reader('nope' as keyof Schema)).toThrow(
      expect.objectContaining({ code: 'ERR_CERTAIN_MAP_UNKNOWN_KEY', key: 'nope' }),
    );
  });
});

// Key writers (Ctx.writer(key)): standalone set of one key, same contract as the method.
describe.each(['compiled', 'record'] as const)('key writers (%s)', (implementation) => {
  const Ctx = defineContext<Schema>()(keys, { implementation });
  const Conn = Ctx.subset(['peer', 'user']);
  const SetPeer = Ctx.writer('peer');
  const SetAttempt = Ctx.writer('attempt');
  const SetUser = Ctx.writer('user');

  it('set stores what the method stores and returns the same context', () => {
    const ctx = Ctx.empty();
    expect(SetPeer.key).toBe('peer');
    const written = SetAttempt.set(SetPeer.set(ctx, 'p'), 0);
    expect(written).toBe(ctx);
    expect(written.get('peer')).toBe('p');
    expect(written.get('attempt')).toBe(0);
    expect(written.has('requestId')).toBe(false);
    expect(written.toJSON()).toEqual({ peer: 'p', attempt: 0 });
    // undefined is a value, a second set replaces, and a fork keeps its own copy.
    const withUser = SetUser.set(written, undefined);
    expect(withUser.has('user')).toBe(true);
    const fork = SetPeer.set(withUser.fork(), 'q');
    expect(fork.get('peer')).toBe('q');
    expect(withUser.get('peer')).toBe('p');
    expect(SetPeer.set(withUser.remove('peer'), 'r').get('peer')).toBe('r');
  });

  it('writes a subset context its own keys, and refuses the others as set does', () => {
    const conn = SetUser.set(SetPeer.set(Conn.empty(), 'p'), { name: 'n' });
    expect(conn.get('peer')).toBe('p');
    expect(conn.get('user')).toEqual({ name: 'n' });
    expect(() => SetAttempt.set(Conn.empty(), 1)).toThrow(
      expect.objectContaining({ code: 'ERR_CERTAIN_MAP_OUTSIDE_SUBSET', key: 'attempt' }),
    );
    const after = Conn.empty();
    expect(() => SetAttempt.set(after, 1)).toThrow(CertainMapError);
    expect(after.has('attempt')).toBe(false);
    expect(after.maybeGet('attempt')).toBeUndefined();
    if (implementation === 'compiled') expect(Object.getOwnPropertyNames(after)).toEqual(['$peer', '$user']);
    expect(SetAttempt.set(conn.fork(), 2).get('attempt')).toBe(2);
  });

  it('refuses every key on a subset of no keys, as set does (REVIEW F186)', () => {
    const none = Ctx.subset([]).empty();
    expect(() => SetPeer.set(none, 'p')).toThrow(
      expect.objectContaining({ code: 'ERR_CERTAIN_MAP_OUTSIDE_SUBSET', key: 'peer' }),
    );
    expect(() => none.set('peer' as never, 'p' as never)).toThrow(
      expect.objectContaining({ code: 'ERR_CERTAIN_MAP_OUTSIDE_SUBSET' }),
    );
    expect(Object.getOwnPropertyNames(none).filter((name) => name.startsWith('$'))).toEqual([]);
    expect(none.has('peer')).toBe(false);
    expect(SetPeer.set(none.fork(), 'q').get('peer')).toBe('q');
  });

  it('refuses a key outside the schema', () => {
    expect(() => Ctx.writer('nope' as keyof Schema)).toThrow(
      expect.objectContaining({ code: 'ERR_CERTAIN_MAP_UNKNOWN_KEY', key: 'nope' }),
    );
  });
});

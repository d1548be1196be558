/**
 * Pseudonymization applied to Thrift messages: the plan compiled from configured IDL paths and
 * `(pii)` annotations (and every way a path can be wrong), the message rewriter on binary and
 * compact (tokens in the chosen fields only, every other byte as it came, the reverse direction
 * restoring the exact bytes, containers, recursive structs, exceptions left alone), fail-closed
 * cases (a chosen field of another wire type, a bad token, an ambiguous bare method name), and
 * the Thrift service layer around an inner service.
 */
import { fileURLToPath } from 'node:url';
import {
  createReader,
  createWriter,
  MessageType,
  type ProtocolName,
  TApplicationException,
  TApplicationExceptionType,
  type ThriftReply,
  type ThriftRequest,
  TType,
} from '@loch/thrift';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  GatewayConfigError,
  JsonToThriftCompiler,
  loadIdl,
  PseudonymError,
  Pseudonymizer,
  PseudonymKeyring,
  PseudonymPlan,
  type PseudonymPlanOptions,
  PseudonymRewriter,
  segmentsPath,
  ThriftPseudonymService,
  ThriftToJsonCompiler,
} from '../src/index.js';

const idl = loadIdl(fileURLToPath(new URL('./idl/pii.thrift', import.meta.url)));
const keyA = new Uint8Array(64).map((_, i) => i);
const keyB = new Uint8Array(64).map((_, i) => 200 - i);
const pseudonymizer = new Pseudonymizer(new PseudonymKeyring([{ id: 'k1', key: keyA }]));
const service = idl.services.get('ProfileService')!;
const PROTOCOLS: ProtocolName[] = ['binary', 'compact'];

function fn(name: string) {
  return service.functions.get(name)!;
}

/** A message of `name` whose body is the struct `def` written from JSON `value`. */
function message(
  protocol: ProtocolName,
  name: string,
  type: MessageType,
  def: Parameters<JsonToThriftCompiler['struct']>[0],
  value: unknown,
): Uint8Array {
  const w = createWriter(protocol);
  w.writeMessageBegin(name, type, 7);
  new JsonToThriftCompiler().struct(def)(w, value);
  w.writeMessageEnd();
  return w.finishCopy();
}

/** The JSON of a message's body struct. */
function json(
  protocol: ProtocolName,
  payload: Uint8Array,
  def: Parameters<ThriftToJsonCompiler['struct']>[0],
) {
  const r = createReader(protocol).reset(payload);
  const header = r.readMessageBegin();
  return { header, body: JSON.parse(new ThriftToJsonCompiler().struct(def)(r)) };
}

function rewriter(options: PseudonymPlanOptions = {}, direction: 'upstream' | 'downstream' = 'upstream') {
  return new PseudonymRewriter(new PseudonymPlan(idl, options), pseudonymizer, direction);
}

function configError(options: PseudonymPlanOptions): string {
  try {
    new PseudonymPlan(idl, options);
  } catch (e) {
    expect(e).toBeInstanceOf(GatewayConfigError);
    return (e as Error).message;
  }
  throw new Error('no error');
}

function pseudonymError(f: () => unknown): PseudonymError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(PseudonymError);
    return e as PseudonymError;
  }
  throw new Error('no error');
}

const alice = {
  email: 'alice@example.com',
  name: 'Alice',
  photo: Buffer.from([0, 1, 2, 255]).toString('base64'),
  phones: ['+1 555 0100', '+1 555 0101'],
  notes: { a: 'note a', b: 'note b' },
  friend: { email: 'bob@example.com', name: 'Bob', age: 40 },
  age: 33,
};

describe('PseudonymPlan', () => {
  it('plans annotated fields wherever their struct travels, and configured paths', () => {
    const plan = new PseudonymPlan(idl, {
      fields: [{ path: 'ProfileService.get.args.id', domain: 'profile-id' }, 'ProfileService.count.args.q'],
    });
    expect(plan.functions).toEqual([
      'ProfileService.get',
      'ProfileService.find',
      'ProfileService.put',
      'ProfileService.count',
      'Other.get',
    ]);
    expect(plan.forMessage('ProfileService:ping')).toBeUndefined();
    expect(plan.forFunction('ProfileService', 'get')?.args?.fields.get(1)?.node).toEqual({
      kind: 'leaf',
      binary: false,
      domain: 'profile-id',
      format: 'text',
    });
    const profile = plan.forFunction('ProfileService', 'put')?.args?.fields.get(1)?.node;
    expect(profile?.kind).toBe('struct');
    if (profile?.kind !== 'struct') return;
    expect([...profile.plan.fields.keys()]).toEqual([1, 3, 4, 6]); // email, photo, phones, friend
    // The recursive struct is one plan that refers to itself.
    const friend = profile.plan.fields.get(6)?.node;
    expect(friend?.kind === 'struct' && friend.plan).toBe(profile.plan);
  });

  it('without annotations, only configured paths count', () => {
    const plan = new PseudonymPlan(idl, {
      annotations: false,
      fields: ['ProfileService.find.args.byKey.notes'],
    });
    expect(plan.functions).toEqual(['ProfileService.find']);
    const byKey = plan.forFunction('ProfileService', 'find')?.args?.fields.get(2);
    expect(byKey?.node.kind).toBe('map');
  });

  it('names the path that does not fit the IDL', () => {
    expect(configError({ fields: ['Nope.get.args.id'] })).toMatch(
      /pseudonymize field "Nope.get.args.id": no service .* services: ProfileService, Other/,
    );
    expect(configError({ fields: ['ProfileService.nope.args.id'] })).toContain(
      'service ProfileService has no function "nope"',
    );
    expect(configError({ fields: ['ProfileService.get.params.id'] })).toContain(
      '"params" after the function: expected args or result',
    );
    expect(configError({ fields: ['ProfileService.get.args'] })).toContain(
      'name a field after args or result',
    );
    expect(configError({ fields: ['ProfileService.get.result.success.emial'] })).toContain(
      '"emial" is not a field of Profile',
    );
    expect(configError({ fields: ['ProfileService.get.args.di'] })).toContain(
      `"di" is not a field of get's arguments`,
    );
    expect(configError({ fields: ['ProfileService.get.result.success'] })).toContain('ends at a struct');
    expect(configError({ fields: ['ProfileService.get.result.success.age'] })).toContain('ends at a i32');
    expect(configError({ fields: ['ProfileService.get.result.success.age.x'] })).toContain(
      '"x" follows a i32, not a struct',
    );
    expect(configError({ fields: ['ProfileService.get.args.id', 'ProfileService.get.args.id'] })).toContain(
      'given twice',
    );
    expect(configError({ fields: [{ path: 'ProfileService.get.args.id', domain: '' }] })).toContain(
      'domain must not be empty',
    );
  });

  it('refuses a (pii) annotation on a field that cannot hold a token', () => {
    const bad = loadIdl('/virtual/bad.thrift', {
      readFile: () => 'struct S { 1: i32 n (pii = "text") }\nservice X { S get() }\n',
    });
    expect(() => new PseudonymPlan(bad)).toThrow(/S\.n: \(pii\) on a i32 field/);
    expect(() => new PseudonymPlan(bad, { annotations: false })).not.toThrow();
  });
});

describe('PseudonymRewriter', () => {
  for (const protocol of PROTOCOLS) {
    describe(protocol, () => {
      it('puts tokens in the chosen fields only, and the reverse restores the exact bytes', () => {
        const up = rewriter({ fields: [{ path: 'ProfileService.put.args.p.name', domain: 'name' }] });
        const down = rewriter(
          { fields: [{ path: 'ProfileService.put.args.p.name', domain: 'name' }] },
          'downstream',
        );
        const call = message(protocol, 'put', MessageType.CALL, fn('put').args, { p: alice });
        const sealed = up.call(protocol, call);
        const { header, body } = json(protocol, sealed, fn('put').args);
        expect(header).toMatchObject({ name: 'put', type: MessageType.CALL, seqId: 7 });
        const p = body.p;
        expect(p.email).toMatch(/^tok_k1_[a-z2-7]+@pseudo\.invalid$/);
        expect(pseudonymizer.reveal('Profile.email', p.email)).toBe(alice.email);
        expect(p.name).toMatch(/^pn1\.k1\./);
        expect(pseudonymizer.reveal('name', p.name)).toBe('Alice');
        // binary: the token text as the bytes
        const photo = Buffer.from(p.photo, 'base64').toString();
        expect(pseudonymizer.revealBytes('Profile.photo', photo)).toEqual(new Uint8Array([0, 1, 2, 255]));
        expect(p.phones.map((t: string) => pseudonymizer.reveal('phone', t))).toEqual(alice.phones);
        expect(p.notes).toEqual(alice.notes); // not chosen
        expect(p.age).toBe(33);
        expect(p.friend.name).toBe('Bob'); // the path names p.name only; friend has its annotations
        expect(pseudonymizer.reveal('Profile.email', p.friend.email)).toBe('bob@example.com');
        // Deterministic: the same call gives the same bytes.
        expect(up.call(protocol, call)).toEqual(sealed);
        // The other direction opens them: the original message, byte for byte.
        expect(down.call(protocol, sealed)).toEqual(call);
      });

      it('a leading U+FEFF is part of a string value: its own token, restored byte for byte', () => {
        const fields = { fields: [{ path: 'ProfileService.put.args.p.name', domain: 'name' }] };
        const up = rewriter(fields);
        const down = rewriter(fields, 'downstream');
        const withBom = message(protocol, 'put', MessageType.CALL, fn('put').args, {
          p: { ...alice, name: '\uFEFFAlice' },
        });
        const sealed = up.call(protocol, withBom);
        const name = json(protocol, sealed, fn('put').args).body.p.name;
        expect(pseudonymizer.reveal('name', name)).toBe('\uFEFFAlice');
        expect(name).not.toBe(pseudonymizer.pseudonymize('name', 'Alice'));
        expect(down.call(protocol, sealed)).toEqual(withBom);
      });

      it('rewrites replies: success, containers, map values; exceptions and other messages pass as they are', () => {
        const r = rewriter({ fields: ['ProfileService.find.result.success.notes'] }, 'downstream');
        const reply = message(protocol, 'find', MessageType.REPLY, fn('find').result, {
          success: [alice, { email: 'c@example.com', name: 'C', age: 1 }],
        });
        const out = json(protocol, r.reply(protocol, reply), fn('find').result).body.success;
        expect(out[0].notes.a).toMatch(/^pn1\./);
        expect(out[0].email).toMatch(/@pseudo\.invalid$/);
        expect(out[1].email).toMatch(/@pseudo\.invalid$/);
        expect(out[1].name).toBe('C');
        // A declared exception's fields are not chosen: the same array comes back.
        const denied = message(protocol, 'ProfileService:get', MessageType.REPLY, fn('get').result, {
          denied: { who: 'x' },
        });
        expect(r.reply(protocol, denied)).toBe(denied);
        const count = message(protocol, 'count', MessageType.REPLY, fn('count').result, { success: 3 });
        expect(r.reply(protocol, count)).toBe(count);
        // A TApplicationException reply passes untouched.
        const w = createWriter(protocol);
        w.writeMessageBegin('find', MessageType.EXCEPTION, 1);
        new TApplicationException(TApplicationExceptionType.INTERNAL_ERROR, 'x').write(w);
        w.writeMessageEnd();
        const x = w.finishCopy();
        expect(r.reply(protocol, x)).toBe(x);
      });

      it('multiplexed names, oneway calls', () => {
        const r = rewriter({ fields: ['ProfileService.ping.args.note'] });
        const ping = message(protocol, 'ProfileService:ping', MessageType.ONEWAY, fn('ping').args, {
          note: 'n',
        });
        const out = json(protocol, r.call(protocol, ping), fn('ping').args);
        expect(out.header.type).toBe(MessageType.ONEWAY);
        expect(pseudonymizer.reveal('ProfileService.ping.args.note', out.body.note)).toBe('n');
        // A service the IDL does not have, for a method with chosen fields: refused, not passed.
        const evil = message(protocol, 'Evil:ping', MessageType.ONEWAY, fn('ping').args, { note: 'n' });
        const refused = pseudonymError(() => r.call(protocol, evil));
        expect(refused.code).toBe('ERR_PSEUDONYM_MESSAGE');
        expect(refused.message).toContain('"Evil:ping": the IDL has no such service');
        const other = message(protocol, 'Evil:nothing', MessageType.CALL, fn('ping').args, { note: 'n' });
        expect(r.call(protocol, other)).toBe(other);
      });

      it('fails closed: a chosen field of another wire type, a bad token, an ambiguous bare name', () => {
        const r = rewriter();
        // `p.email` sent as an i32: never forwarded as it is.
        const w = createWriter(protocol);
        w.writeMessageBegin('put', MessageType.CALL, 1);
        w.writeStructBegin();
        w.writeFieldBegin(TType.STRUCT, 1);
        w.writeStructBegin();
        w.writeFieldBegin(TType.I32, 1);
        w.writeI32(5);
        w.writeFieldStop();
        w.writeStructEnd();
        w.writeFieldStop();
        w.writeStructEnd();
        w.writeMessageEnd();
        const wrong = pseudonymError(() => r.call(protocol, w.finishCopy()));
        expect(wrong.code).toBe('ERR_PSEUDONYM_MESSAGE');
        expect(segmentsPath(wrong.segments)).toBe('p.email');

        const down = rewriter({}, 'downstream');
        const call = (phones: string[]) =>
          message(protocol, 'put', MessageType.CALL, fn('put').args, {
            p: {
              email: pseudonymizer.pseudonymize('Profile.email', 'a@b.c', 'email'),
              name: 'n',
              age: 1,
              phones,
            },
          });
        const good = pseudonymizer.pseudonymize('phone', '+1');
        expect(() => down.call(protocol, call([good]))).not.toThrow();
        const notToken = pseudonymError(() => down.call(protocol, call([good, '+1 555'])));
        expect(notToken.code).toBe('ERR_PSEUDONYM_TOKEN');
        expect(segmentsPath(notToken.segments)).toBe('p.phones[1]');
        // A token of another field (domain) does not open here.
        const moved = pseudonymizer.pseudonymize('Profile.email', '+1');
        expect(pseudonymError(() => down.call(protocol, call([moved]))).code).toBe('ERR_PSEUDONYM_INVALID');
        // A rotated-away key id.
        const other = new Pseudonymizer(new PseudonymKeyring([{ id: 'k9', key: keyB }]));
        const unknown = pseudonymError(() => down.call(protocol, call([other.pseudonymize('phone', '+1')])));
        expect(unknown.code).toBe('ERR_PSEUDONYM_UNKNOWN_KEY');

        // `get` is declared by two services with different plans: a bare name is refused.
        const get = message(protocol, 'get', MessageType.CALL, fn('get').args, { id: '1' });
        const reply = message(protocol, 'get', MessageType.REPLY, fn('get').result, { success: alice });
        expect(pseudonymError(() => down.reply(protocol, reply)).code).toBe('ERR_PSEUDONYM_MESSAGE');
        const named = message(protocol, 'Other:get', MessageType.REPLY, fn('get').result, { success: alice });
        expect(json(protocol, down.reply(protocol, named), fn('get').result).body.success.email).toMatch(
          /@pseudo\.invalid$/,
        );
        expect(pseudonymError(() => r.call(protocol, get)).code).toBe('ERR_PSEUDONYM_MESSAGE');
      });

      it('round-trips generated values (fast-check)', () => {
        const up = rewriter({}, 'upstream');
        const down = rewriter({}, 'downstream');
        const text = fc.string({ unit: 'grapheme', maxLength: 40 });
        const profile = fc.record({
          email: text,
          name: text,
          age: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
          phones: fc.array(text, { maxLength: 4 }),
          photo: fc.uint8Array({ maxLength: 32 }).map((b) => Buffer.from(b).toString('base64')),
        });
        fc.assert(
          fc.property(profile, (p) => {
            const call = message(protocol, 'put', MessageType.CALL, fn('put').args, { p });
            const sealed = up.call(protocol, call);
            expect(sealed).not.toEqual(call);
            expect(down.call(protocol, sealed)).toEqual(call);
          }),
          { numRuns: 200 },
        );
      });
    });
  }
});

describe('ThriftPseudonymService', () => {
  const protocol: ProtocolName = 'binary';
  function request(payload: Uint8Array): ThriftRequest {
    const r = createReader(protocol).reset(payload);
    const header = r.readMessageBegin();
    return {
      frame: {
        framing: 'framed',
        protocol,
        seqId: header.seqId,
        flags: 0,
        headers: new Map(),
        intHeaders: new Map(),
        persistentHeaders: new Map(),
        aclToken: undefined,
        transforms: [],
        payload,
        wireLength: payload.byteLength,
      },
      header,
      bodyOffset: r.pos,
      reader: () => createReader(protocol).reset(payload, r.pos),
      signal: new AbortController().signal,
      stream: {} as ThriftRequest['stream'],
    } as ThriftRequest;
  }

  it('the inner service sees tokens; the caller gets its values back', async () => {
    const seen: unknown[] = [];
    const inner = {
      call: (req: ThriftRequest): ThriftReply => {
        const args = JSON.parse(new ThriftToJsonCompiler().struct(fn('put').args)(req.reader()));
        seen.push(args.p.email);
        // Echo the profile back as a `get` reply.
        return {
          payload: message(protocol, 'ProfileService:get', MessageType.REPLY, fn('get').result, {
            success: args.p,
          }),
        };
      },
    };
    const layer = new ThriftPseudonymService(inner, rewriter({}, 'upstream'));
    const call = message(protocol, 'ProfileService:put', MessageType.CALL, fn('put').args, { p: alice });
    const reply = (await layer.call(request(call))) as ThriftReply;
    expect(seen[0]).toMatch(/^tok_k1_/);
    // The reply is named get here only to be read with get's result: its email is opened again.
    expect(json(protocol, reply.payload, fn('get').result).body.success.email).toBe(alice.email);
  });

  it('gives the received bytes back once copied: the call when rewritten, the reply when rewritten', async () => {
    let replyReleased = 0;
    const payloadOut = { value: undefined as Uint8Array | undefined };
    const inner = {
      call: (req: ThriftRequest): ThriftReply => {
        payloadOut.value = req.frame.payload;
        req.release?.();
        const payload = message(protocol, 'ProfileService:get', MessageType.REPLY, fn('get').result, {
          success: alice,
        });
        // A reply object whose release is a method (as loch's relayed replies are).
        return Object.assign(Object.create({ release: () => replyReleased++ }), { payload }) as ThriftReply;
      },
    };
    const layer = new ThriftPseudonymService(inner, rewriter({}, 'downstream'));
    const req = request(
      message(protocol, 'ProfileService:put', MessageType.CALL, fn('put').args, { p: { name: 'n', age: 1 } }),
    );
    let callReleased = 0;
    (req as { release?: () => void }).release = () => callReleased++;
    const reply = (await layer.call(req)) as ThriftReply;
    expect(payloadOut.value).toBe(req.frame.payload); // nothing chosen in it: the same bytes
    expect(callReleased).toBe(1); // by the inner service, once
    expect(replyReleased).toBe(1); // the sealed copy was made: the original went back
    expect(reply.release).toBeUndefined();
    expect(json(protocol, reply.payload, fn('get').result).body.success.email).toMatch(/@pseudo\.invalid$/);

    const sealedReq = request(
      message(protocol, 'ProfileService:put', MessageType.CALL, fn('put').args, {
        p: { email: pseudonymizer.pseudonymize('Profile.email', 'a@b.c', 'email'), name: 'n', age: 1 },
      }),
    );
    callReleased = 0;
    (sealedReq as { release?: () => void }).release = () => callReleased++;
    await layer.call(sealedReq);
    expect(payloadOut.value).not.toBe(sealedReq.frame.payload); // a rewritten copy went on
    expect(callReleased).toBe(1); // released by the layer; the inner's release of the copy is a no-op
  });

  it('a call without a plan reaches the inner service as the same request', async () => {
    let got: ThriftRequest | undefined;
    const layer = new ThriftPseudonymService(
      {
        call: (req: ThriftRequest) => {
          got = req;
          return undefined;
        },
      },
      rewriter(),
    );
    const req = request(message(protocol, 'ping', MessageType.ONEWAY, fn('ping').args, { note: 'x' }));
    await layer.call(req);
    expect(got).toBe(req);
  });

  it('a bad token is a PROTOCOL_ERROR naming the argument, and the inner service is not called', async () => {
    let called = false;
    const refusals: unknown[] = [];
    const layer = new ThriftPseudonymService(
      {
        call: () => {
          called = true;
          return undefined;
        },
      },
      rewriter({}, 'downstream'),
      (r) => refusals.push(r),
    );
    const call = message(protocol, 'ProfileService:put', MessageType.CALL, fn('put').args, {
      p: { email: 'pn1.k1.AAAA', name: 'n', age: 1 },
    });
    const error = await Promise.resolve(layer.call(request(call))).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TApplicationException);
    expect((error as TApplicationException).type).toBe(TApplicationExceptionType.PROTOCOL_ERROR);
    expect((error as Error).message).toMatch(/args\.p\.email: .*\(ERR_PSEUDONYM_(TOKEN|INVALID)\)/);
    expect((error as Error).message).not.toContain('pn1.k1.AAAA');
    expect(called).toBe(false);
    expect(refusals).toEqual([
      {
        reason: 'pseudonym_request',
        code: expect.stringMatching(/^ERR_PSEUDONYM_(TOKEN|INVALID)$/),
        path: 'p.email',
      },
    ]);
  });
});

/**
 * Pseudonymization in the JSON gateway: a route with a PseudonymRewriter sends tokens upstream
 * and gives the client its values back (direction upstream), or gives clients tokens and sends
 * the values upstream (direction downstream); a bad token from a client is a 400 naming its
 * JSON path, one from the upstream a 502. The upstream here is an in-process exchange that
 * records what it receives and answers with what a test asks (real peers: apps/proxy e2e).
 */
import { fileURLToPath } from 'node:url';
import { createRequest, fixedBody, readText } from '@loch/http';
import { createReader, createWriter, MessageType, type ThriftFrame } from '@loch/thrift';
import { describe, expect, it } from 'vitest';
import {
  type GatewayRefusal,
  type GatewayRefusalListener,
  JsonToThriftCompiler,
  loadIdl,
  Pseudonymizer,
  PseudonymKeyring,
  PseudonymPlan,
  PseudonymRewriter,
  type ThriftExchange,
  ThriftGateway,
  ThriftToJsonCompiler,
} from '../src/index.js';

const idl = loadIdl(fileURLToPath(new URL('./idl/pii.thrift', import.meta.url)));
const fns = idl.services.get('ProfileService')!.functions;
const pseudonymizer = new Pseudonymizer(
  new PseudonymKeyring([{ id: 'k1', key: new Uint8Array(64).map((_, i) => i * 3) }]),
);

/** Decodes calls, records their args as JSON, and replies with `answer(args)` as `success`. */
class RecordingExchange implements ThriftExchange {
  readonly calls: Record<string, unknown>[] = [];
  constructor(private readonly answer: (args: Record<string, unknown>) => unknown) {}
  send(message: Uint8Array): Promise<ThriftFrame | undefined> {
    const r = createReader('binary').reset(message);
    const header = r.readMessageBegin();
    const fn = fns.get(header.name)!;
    const args = JSON.parse(new ThriftToJsonCompiler().struct(fn.args)(r));
    this.calls.push(args);
    const w = createWriter('binary');
    w.writeMessageBegin(header.name, MessageType.REPLY, header.seqId);
    const success = this.answer(args);
    if (fn.returns !== undefined) new JsonToThriftCompiler().struct(fn.result)(w, { success });
    else {
      // A void result: an empty struct (the compiled writer holds a result to exactly one field).
      w.writeStructBegin();
      w.writeFieldStop();
      w.writeStructEnd();
    }
    w.writeMessageEnd();
    const payload = w.finishCopy();
    return Promise.resolve({ payload } as ThriftFrame);
  }
}

function gateway(
  exchange: ThriftExchange,
  direction: 'upstream' | 'downstream',
  fields: string[] = [],
  onRefused?: GatewayRefusalListener,
) {
  const pseudonyms = new PseudonymRewriter(new PseudonymPlan(idl, { fields }), pseudonymizer, direction);
  const told = onRefused === undefined ? {} : { onRefused };
  return new ThriftGateway([
    {
      idl,
      service: 'ProfileService',
      function: 'get',
      path: '/profiles/{id}',
      upstream: exchange,
      pseudonyms,
      ...told,
    },
    {
      idl,
      service: 'ProfileService',
      function: 'put',
      path: '/profiles',
      upstream: exchange,
      pseudonyms,
      ...told,
    },
    {
      idl,
      service: 'ProfileService',
      function: 'count',
      path: '/count',
      upstream: exchange,
      pseudonyms,
      ...told,
    },
  ]);
}

async function send(gw: ThriftGateway, method: string, target: string, body?: unknown) {
  const res = await gw.call(
    createRequest(method, target, body === undefined ? {} : { body: fixedBody(JSON.stringify(body)) }),
  );
  const text = await readText(res.body);
  return { status: res.status, json: text === '' ? undefined : JSON.parse(text) };
}

const profile = { email: 'alice@example.com', name: 'Alice', age: 30, phones: ['+1 555'] };

describe('gateway pseudonymization', () => {
  it('direction upstream: the upstream sees tokens, the client its values', async () => {
    let stored: unknown;
    const ex = new RecordingExchange((args) => {
      if (args.p !== undefined) stored = args.p;
      return args.p === undefined ? stored : undefined;
    });
    const gw = gateway(ex, 'upstream');
    const put = await send(gw, 'POST', '/profiles', { p: profile });
    expect(put.json).toBeUndefined();
    expect(put.status).toBe(204);
    const up = ex.calls[0]!.p as typeof profile;
    expect(up.email).toMatch(/^tok_k1_[a-z2-7]+@pseudo\.invalid$/);
    expect(up.phones[0]).toMatch(/^pn1\.k1\./);
    expect(up.name).toBe('Alice');
    const got = await send(gw, 'GET', '/profiles/1');
    expect(got).toEqual({ status: 200, json: profile });
  });

  it('direction downstream: the client sees tokens and sends them back; a bad one is a 400 with its path', async () => {
    const ex = new RecordingExchange((args) =>
      args.id === undefined ? undefined : { ...profile, name: String(args.id) },
    );
    const gw = gateway(ex, 'downstream', ['ProfileService.get.args.id']);
    const idToken = pseudonymizer.pseudonymize('ProfileService.get.args.id', 'user-7');
    const got = await send(gw, 'GET', `/profiles/${idToken}`);
    expect(got.status).toBe(200);
    expect(ex.calls[0]).toEqual({ id: 'user-7' });
    const body = got.json as typeof profile;
    expect(body.email).toBe(pseudonymizer.pseudonymize('Profile.email', profile.email, 'email'));
    expect(body.name).toBe('user-7');
    // The client passes the tokens it got back in; the upstream gets the values.
    expect((await send(gw, 'POST', '/profiles', { p: body })).status).toBe(204);
    expect((ex.calls[1]!.p as typeof profile).email).toBe(profile.email);
    // A token of another field (domain), a changed one, a value that is no token: 400 with the path.
    const moved = await send(gw, 'GET', `/profiles/${pseudonymizer.pseudonymize('Profile.email', 'user-7')}`);
    expect(moved.status).toBe(400);
    expect(moved.json).toMatchObject({ error: 'ERR_GATEWAY_PSEUDONYM', path: 'id' });
    expect((moved.json as { message: string }).message).toMatch(/^id: .*\(ERR_PSEUDONYM_INVALID\)$/);
    const plain = await send(gw, 'POST', '/profiles', { p: { ...body, phones: ['+1 555'] } });
    expect(plain.status).toBe(400);
    expect(plain.json).toMatchObject({ error: 'ERR_GATEWAY_PSEUDONYM', path: 'p.phones[0]' });
    expect(JSON.stringify(plain.json)).not.toContain('+1 555');
    expect(ex.calls).toHaveLength(2); // refused calls never went upstream
  });

  it('a reply the gateway cannot rewrite is a 502', async () => {
    // direction upstream: replies are revealed, and this upstream returns a plain email.
    const gw = gateway(new RecordingExchange(() => profile), 'upstream');
    const got = await send(gw, 'GET', '/profiles/1');
    expect(got.status).toBe(502);
    expect((got.json as { message: string }).message).toMatch(
      /could not be pseudonymized: success\.email: .*ERR_PSEUDONYM_TOKEN/,
    );
    expect(JSON.stringify(got.json)).not.toContain('alice@example.com');
  });

  it('tells onRefused of refused request tokens and refused replies (field path and code)', async () => {
    const refusals: GatewayRefusal[] = [];
    const down = gateway(
      new RecordingExchange(() => profile),
      'downstream',
      ['ProfileService.get.args.id'],
      (r) => refusals.push(r),
    );
    await send(down, 'GET', '/profiles/not-a-token');
    const up = gateway(new RecordingExchange(() => profile), 'upstream', [], (r) => refusals.push(r));
    await send(up, 'GET', '/profiles/1');
    expect(refusals).toEqual([
      { reason: 'pseudonym_request', code: 'ERR_PSEUDONYM_TOKEN', path: 'id' },
      { reason: 'pseudonym_reply', code: 'ERR_PSEUDONYM_TOKEN', path: 'success.email' },
    ]);
  });

  it('functions without planned fields are not rewritten', async () => {
    const ex = new RecordingExchange(() => 4);
    const got = await send(gateway(ex, 'upstream'), 'GET', '/count?q=alice@example.com');
    expect(got).toEqual({ status: 200, json: 4 });
    expect(ex.calls[0]).toEqual({ q: 'alice@example.com' });
  });
});

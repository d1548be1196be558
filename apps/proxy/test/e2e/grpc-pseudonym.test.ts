/**
 * `loch run` pseudonymizing gRPC calls (issue 19), end to end on every available driver: a
 * @grpc/grpc-js client (h2c) -> loch -> a @grpc/grpc-js server (h2c) that records what it
 * receives. `direction = "upstream"`: the server sees tokens in unary and bidirectional
 * streaming requests; a chosen response field that is not a token ends the call with
 * INTERNAL naming the field. `direction = "downstream"`: the client's tokens are opened for the
 * server, server-streamed replies are sealed, and a value that is not a token never reaches
 * the server (the call fails). The upstream side reads echo.proto (protobufjs), the downstream
 * side its binary FileDescriptorSet echo.binpb (@bufbuild/protobuf; test/fixtures/grpc/build.sh);
 * a change to options.proto, which echo.proto imports, reloads the route.
 */
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { Pseudonymizer, PseudonymKeyring } from '@loch/gateway';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { availableDrivers, freePort, type Loch, startLoch, tempDir } from './harness.js';

const drivers = availableDrivers();
const fixtures = fileURLToPath(new URL('../fixtures/grpc/', import.meta.url));
const key = Buffer.alloc(64, 0x3c);
const ours = new Pseudonymizer(new PseudonymKeyring([{ id: 'k1', key }]));
const SAY = 'loch.test.Echo.Say.request.text';
const CHAT = 'loch.test.Echo.Chat.request.text';
const REPEAT = 'loch.test.Echo.Repeat.response.text';

interface EchoReply {
  text: string;
  index: number;
}
type EchoClient = grpc.Client & {
  Say(req: object, cb: (err: grpc.ServiceError | null, reply?: EchoReply) => void): grpc.ClientUnaryCall;
  Repeat(req: object): grpc.ClientReadableStream<EchoReply>;
  Chat(): grpc.ClientDuplexStream<object, EchoReply>;
};

describe.each(drivers)('loch pseudonymizing gRPC calls (driver %s)', (driver) => {
  let loch: Loch;
  let server: grpc.Server;
  let up: EchoClient;
  let down: EchoClient;
  const seen: string[] = [];
  const notes: string[] = [];
  let dir: string;
  let adminPort: number;

  beforeAll(async () => {
    dir = tempDir('loch-grpc-pseudonym-');
    for (const f of ['echo.proto', 'options.proto', 'echo.binpb'])
      copyFileSync(join(fixtures, f), join(dir, f));
    writeFileSync(join(dir, 'k1.key'), key.toString('hex'));
    const pkg = grpc.loadPackageDefinition(
      protoLoader.loadSync(join(dir, 'echo.proto'), { keepCase: true, defaults: true }),
    ) as unknown as { loch: { test: { Echo: grpc.ServiceClientConstructor } } };
    const Echo = pkg.loch.test.Echo;
    server = new grpc.Server();
    server.addService(Echo.service, {
      Say(
        call: grpc.ServerUnaryCall<{ text: string; options: { note: string } | null }, EchoReply>,
        cb: grpc.sendUnaryData<EchoReply>,
      ) {
        seen.push(call.request.text);
        if (call.request.options !== null) notes.push(call.request.options.note);
        cb(null, { text: `hello ${call.request.text}`, index: 0 });
      },
      Repeat(call: grpc.ServerWritableStream<{ text: string; count: number }, EchoReply>) {
        for (let i = 0; i < call.request.count; i++)
          call.write({ text: `${call.request.text} ${i}`, index: i });
        call.end();
      },
      Chat(call: grpc.ServerDuplexStream<{ text: string }, EchoReply>) {
        let i = 0;
        call.on('data', (r: { text: string }) => {
          seen.push(r.text);
          call.write({ text: `re: ${r.text}`, index: i++ });
        });
        call.on('end', () => call.end());
      },
    });
    const upstream = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) =>
        err ? reject(err) : resolve(port),
      ),
    );
    const [p1, p2] = [await freePort(), await freePort()];
    adminPort = await freePort();
    const route = (schema: string, direction: string, fields: string[]) => `
[[ROUTES]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:${upstream}" }]
pseudonymize = { ${schema}, direction = "${direction}", keys = [{ id = "k1", file = "k1.key" }], fields = ${JSON.stringify(fields)} }
`;
    loch = await startLoch(
      dir,
      `
[runtime]
workers = 1

[admin]
listener = { type = "socket", value = "127.0.0.1:${adminPort}" }

[servers.up]
listener = { type = "socket", value = "127.0.0.1:${p1}" }
upstream_http_version = "http2"
${route('proto = ["echo.proto"]', 'upstream', [SAY, CHAT, REPEAT]).replace('ROUTES', 'servers.up.routes')}

[servers.down]
listener = { type = "socket", value = "127.0.0.1:${p2}" }
upstream_http_version = "http2"
${route('descriptor_set = ["echo.binpb"]', 'downstream', [SAY, REPEAT]).replace('ROUTES', 'servers.down.routes')}
`,
      { LOCH_DRIVER: driver },
    );
    up = new Echo(`127.0.0.1:${p1}`, grpc.credentials.createInsecure()) as unknown as EchoClient;
    down = new Echo(`127.0.0.1:${p2}`, grpc.credentials.createInsecure()) as unknown as EchoClient;
  });

  afterAll(async () => {
    up?.close();
    down?.close();
    await loch?.stop();
    server?.forceShutdown();
  });

  const say = (client: EchoClient, text: string) =>
    new Promise<{ err: grpc.ServiceError | null; reply?: EchoReply }>((resolve) =>
      client.Say({ text }, (err, reply) => resolve({ err, ...(reply ? { reply } : {}) })),
    );

  const repeat = (client: EchoClient, text: string, count: number) =>
    new Promise<{ err: Error | null; replies: EchoReply[] }>((resolve) => {
      const replies: EchoReply[] = [];
      const call = client.Repeat({ text, count });
      call.on('data', (r: EchoReply) => replies.push(r));
      call.on('error', (err) => resolve({ err, replies }));
      call.on('end', () => resolve({ err: null, replies }));
    });

  it('direction upstream: unary and bidirectional streaming requests reach the server as tokens', async () => {
    seen.length = 0;
    const r = await say(up, 'alice');
    expect(r.err).toBeNull();
    const token = r.reply!.text.slice('hello '.length);
    expect(token).toMatch(/^pn1\.k1\./);
    expect(ours.reveal(SAY, token)).toBe('alice');
    const chat = up.Chat();
    const got: EchoReply[] = [];
    chat.on('data', (m: EchoReply) => got.push(m));
    const ended = new Promise((resolve) => chat.on('end', resolve));
    chat.write({ text: 'one' });
    chat.write({ text: 'two' });
    chat.end();
    await ended;
    expect(seen.slice(1).map((t) => ours.reveal(CHAT, t))).toEqual(['one', 'two']);
    expect(got.map((m) => m.index)).toEqual([0, 1]);
  });

  it('direction upstream: a chosen reply field that is not a token ends the call with INTERNAL', async () => {
    const r = await repeat(up, 'plain', 2);
    expect((r.err as grpc.ServiceError | null)?.code).toBe(grpc.status.INTERNAL);
    expect((r.err as grpc.ServiceError).details).toContain(
      'refused the response at text (ERR_PSEUDONYM_TOKEN)',
    );
    expect((r.err as grpc.ServiceError).details).not.toContain('plain');
  });

  it('direction downstream: tokens opened for the server, streamed replies sealed, bad tokens stopped', async () => {
    seen.length = 0;
    const r = await say(down, ours.pseudonymize(SAY, 'bob'));
    expect(r.reply?.text).toBe('hello bob');
    expect(seen).toEqual(['bob']);
    const s = await repeat(down, 'x', 3);
    expect(s.err).toBeNull();
    expect(s.replies.map((m) => ours.reveal(REPEAT, m.text))).toEqual(['x 0', 'x 1', 'x 2']);
    const bad = await say(down, 'not-a-token');
    expect(bad.err).not.toBeNull();
    expect(bad.err?.code).not.toBe(grpc.status.OK);
    expect(seen).toEqual(['bob']); // the bad value never reached the server
  });

  it('refused messages are counted by server and reason, and logged with field and code', async () => {
    const text = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
    const refusals = (server: string, reason: string) =>
      Number(
        text
          .split('\n')
          .find((l) => l.startsWith(`loch_gateway_refusals_total{server="${server}",reason="${reason}"}`))
          ?.split(' ')
          .pop(),
      );
    // The plain reply of the upstream test, the bad token of the downstream test.
    expect(refusals('up', 'pseudonym_reply')).toBe(1);
    expect(refusals('down', 'pseudonym_request')).toBe(1);
    expect(refusals('up', 'pseudonym_request')).toBe(0);
    const log = loch.stderr() + loch.stdout();
    expect(log).toContain('up: gRPC: refused the reply at text: pseudonym_reply (ERR_PSEUDONYM_TOKEN)');
    expect(log).toContain('down: gRPC: refused the request at text: pseudonym_request (ERR_PSEUDONYM_TOKEN)');
    expect(log).not.toContain('not-a-token');
  });

  it('a changed import of a .proto reloads the route (a new (pii) option there applies)', async () => {
    notes.length = 0;
    const say2 = (note: string) =>
      new Promise<grpc.ServiceError | null>((resolve) =>
        up.Say({ text: 'n', options: { note } }, (err) => resolve(err)),
      );
    expect(await say2('first')).toBeNull();
    expect(notes).toEqual(['first']);
    const mark = loch.stderr().length;
    writeFileSync(
      join(dir, 'options.proto'),
      readFileSync(join(fixtures, 'options.proto'), 'utf8').replace(
        'string note = 1;',
        'string note = 1 [(pii) = "note"];',
      ),
    );
    await loch.waitFor(/reloaded/, mark);
    expect(await say2('second')).toBeNull();
    expect(notes[1]).toMatch(/^pn1\.k1\./);
    expect(ours.reveal('loch.test.Options.note', notes[1] as string)).toBe('second');
  });
});

/**
 * 'immediate' flush mode on the addon's own check handle (binding.armFlush): a loop turn's flush
 * makes no node Immediate, and records queued before the poll phase (by a timer, by an
 * immediate) still go out in the next check phase without another event waking the loop.
 */
import { createHook } from 'node:async_hooks';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { RuntimeScope } from '../../test/runtime-scope.js';
import { createRuntime } from '../runtime.js';
import type { ByteStream, RecvChunk, StreamListener } from '../stream.js';

const scope = new RuntimeScope();
afterEach(() => scope.close());

async function pair(): Promise<{ client: ByteStream; server: ByteStream }> {
  const runtime = scope.use(await createRuntime({ driver: 'uring', log: () => undefined }));
  const listener: StreamListener = await runtime.driver.listenTcp({ host: '127.0.0.1', port: 0 });
  scope.defer(() => listener.close());
  const address = listener.localAddress;
  const accepted = listener.accept();
  const client = await runtime.driver.connectTcp({
    host: '127.0.0.1',
    port: address.family === 'unix' ? 0 : address.port,
  });
  scope.defer(() => client.close());
  const server = await accepted;
  scope.defer(() => server.close());
  return { client, server };
}

/** Resolves with the next bytes `stream` receives, as text. */
function nextText(stream: ByteStream): Promise<string> {
  return new Promise((resolve, reject) => {
    stream.recvTo({
      onRecv(chunk: RecvChunk | null, error) {
        if (error !== undefined || chunk === null) {
          reject(error ?? new Error('early end of stream'));
          return;
        }
        const text = Buffer.from(chunk.bytes).toString();
        chunk.release();
        resolve(text);
      },
    });
  });
}

function send(stream: ByteStream, text: string): void {
  stream.writeTo(Buffer.from(text), {
    onWritten(error) {
      if (error !== undefined) throw error;
    },
  });
}

const uring = await createRuntime({ driver: 'uring', log: () => undefined }).then(
  async (r) => {
    await r.close();
    return true;
  },
  () => false,
);

/** A stack frame in ring.ts (not string.ts or any other file ending in "ring"). */
const RING_FRAME = /\bring\.ts:/;

describe.skipIf(!uring)("the io_uring ring's flush in 'immediate' mode", () => {
  it('makes no node Immediate per loop turn', async () => {
    const { client, server } = await pair();
    let immediates = 0;
    const hook = createHook({
      init(_id, type) {
        if (type === 'Immediate' && RING_FRAME.test(new Error().stack ?? '')) immediates++;
      },
    });
    hook.enable();
    try {
      for (let i = 0; i < 20; i++) {
        const got = nextText(server);
        send(client, `ping ${i}`);
        expect(await got).toBe(`ping ${i}`);
      }
    } finally {
      hook.disable();
    }
    expect(immediates).toBe(0);
  });

  it("flushes a timer's and an immediate's records with nothing else to wake the loop", () => {
    // In a process of its own: here vitest's own messages would wake a loop that slept.
    const fixture = fileURLToPath(new URL('../../test/fixtures/timer-flush.ts', import.meta.url));
    const out = spawnSync(process.execPath, ['--conditions=@loch/source', '--import', 'tsx', fixture], {
      encoding: 'utf8',
      timeout: 60_000, // a hang (the poll phase blocking with the records queued) ends here
    });
    expect(out.stderr).toBe('');
    expect(out.stdout.trim()).toBe('ok');
    expect(out.status).toBe(0);
  }, 90_000); // a node + tsx start: past vitest's default on a loaded CI machine
});

/**
 * acceptLoop over real listeners, the same for every driver: every connection reaches the
 * callback, and closing the listener ends the loop without reporting an error.
 */
import { describe, expect, it } from 'vitest';
import { acceptLoop } from '../../src/accept-loop.js';
import type { ByteStream } from '../../src/stream.js';
import { driverCases, portOf, readToEnd, useDriver } from './drivers.js';

const cases = await driverCases();

describe.each(cases)('acceptLoop: $name driver', ({ name, skip }) => {
  const { driver, res } = useDriver(name);
  const run = skip === undefined ? it : it.skip;

  run('serves every connection and resolves once the listener is closed', async () => {
    const listener = res.add(await driver().listenTcp({ host: '127.0.0.1', port: 0 }));
    const errors: unknown[] = [];
    let accepted = 0;
    const serve = (stream: ByteStream) => {
      accepted++;
      void stream
        .writeAll(Buffer.from(`hello ${accepted}`))
        .then(() => stream.close())
        .catch(() => stream.close());
    };
    const loop = acceptLoop(listener, serve, { onError: (e) => errors.push(e) });
    const replies: string[] = [];
    for (let i = 0; i < 5; i++) {
      const client = res.add(await driver().connectTcp({ host: '127.0.0.1', port: portOf(listener) }));
      replies.push((await readToEnd(client)).toString());
      await client.close();
    }
    expect(replies).toEqual(['hello 1', 'hello 2', 'hello 3', 'hello 4', 'hello 5']);
    await listener.close();
    await loop;
    expect(errors).toEqual([]);
  });

  run('stopping() ends the loop at the next connection, which still reaches the callback', async () => {
    const listener = res.add(await driver().listenTcp({ host: '127.0.0.1', port: 0 }));
    let stopping = false;
    const got: ByteStream[] = [];
    const loop = acceptLoop(listener, (s) => got.push(res.add(s)), { stopping: () => stopping });
    stopping = true;
    res.add(await driver().connectTcp({ host: '127.0.0.1', port: portOf(listener) }));
    await loop;
    expect(got).toHaveLength(1);
  });
});

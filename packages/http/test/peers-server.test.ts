/**
 * Real clients against HttpServer on loopback: node:http, undici, curl and wrk.
 */
import { execFile, spawn } from 'node:child_process';
import * as http from 'node:http';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Agent, request as undiciRequest } from 'undici';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { availableDrivers, type Running, startServer } from './server-harness.js';

const run = promisify(execFile);
const inProcess = await availableDrivers();

/** Where the server runs: in this process on a driver vitest can load, or in a child process. */
type Target = { driver: string; subprocess: boolean };
const targets: Target[] = [
  ...inProcess.map((driver) => ({ driver, subprocess: false })),
  ...(inProcess.includes('uring') ? [] : [{ driver: 'uring', subprocess: true }]),
];

/** Starts test/fixtures/serve.ts in a child process; undefined when io_uring is unavailable there. */
async function startChild(driver: string): Promise<Running | undefined> {
  const root = fileURLToPath(new URL('..', import.meta.url));
  const child = spawn('npx', ['tsx', '--conditions=@loch/source', 'test/fixtures/serve.ts'], {
    cwd: root,
    env: { ...process.env, LOCH_DRIVER: driver },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const port = await new Promise<number | undefined>((resolve) => {
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /PORT (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.on('exit', () => resolve(undefined));
  });
  if (port === undefined) {
    if (/ERR_LOCH_URING_UNAVAILABLE/.test(err)) return undefined;
    throw new Error(`fixture server failed: ${err}`);
  }
  return {
    port,
    server: undefined,
    errors: [],
    async stop() {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

function nodeRequest(
  agent: http.Agent,
  port: number,
  path: string,
  init: { method?: string; body?: Buffer; chunked?: boolean } = {},
): Promise<{
  status: number;
  body: Buffer;
  reused: boolean;
  trailers: NodeJS.Dict<string>;
  headers: http.IncomingHttpHeaders;
}> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, path, method: init.method ?? 'GET', agent },
      (res) => {
        const parts: Buffer[] = [];
        res.on('data', (b: Buffer) => parts.push(b));
        res.on('end', () =>
          resolve({
            status: res.statusCode!,
            body: Buffer.concat(parts),
            reused: req.reusedSocket,
            trailers: res.trailers,
            headers: res.headers,
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    if (init.body) {
      if (init.chunked) {
        // several writes without a length: node sends chunked
        for (let i = 0; i < init.body.length; i += 65536) req.write(init.body.subarray(i, i + 65536));
      } else {
        req.setHeader('content-length', init.body.length);
        req.write(init.body);
      }
    }
    req.end();
  });
}

function checksum(b: Uint8Array): number {
  let sum = 0;
  for (const x of b) sum = (sum + x) % 65521;
  return sum;
}

describe.each(targets)(
  'real clients against HttpServer on the $driver driver (subprocess: $subprocess)',
  (target) => {
    let srv: Running;
    let skip = false;
    beforeEach(async (ctx) => {
      if (target.subprocess) {
        const child = await startChild(target.driver);
        if (child === undefined) {
          skip = true;
          ctx.skip();
          return;
        }
        srv = child;
      } else {
        srv = await startServer(target.driver as 'legacy' | 'uring');
      }
    });
    afterEach(async () => {
      if (!skip) await srv.stop();
    });

    describe('node:http client', () => {
      it('reuses a kept-alive connection', async () => {
        const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
        try {
          const a = await nodeRequest(agent, srv.port, '/hello');
          const b = await nodeRequest(agent, srv.port, '/hello');
          expect([a.status, a.body.toString()]).toEqual([200, 'hello world']);
          expect(b.body.toString()).toBe('hello world');
          expect(b.reused).toBe(true);
          expect(a.headers.date).toBeDefined();
        } finally {
          agent.destroy();
        }
      });

      it('uploads large chunked and sized bodies and gets them back intact (backpressure both ways)', async () => {
        const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
        try {
          const data = Buffer.alloc(3 * 1024 * 1024);
          for (let i = 0; i < data.length; i++) data[i] = (i * 7) & 0xff;
          const echoed = await nodeRequest(agent, srv.port, '/echo', {
            method: 'POST',
            body: data,
            chunked: true,
          });
          expect(echoed.status).toBe(200);
          expect(echoed.headers['transfer-encoding']).toBe('chunked');
          expect(echoed.body.equals(data)).toBe(true);
          const sized = await nodeRequest(agent, srv.port, '/len', { method: 'PUT', body: data });
          expect(sized.body.toString()).toBe(`${data.length} ${checksum(data)}`);
          const big = await nodeRequest(agent, srv.port, '/big');
          expect(big.body.length).toBe(4 * 1024 * 1024);
          expect(big.reused).toBe(true);
        } finally {
          agent.destroy();
        }
      });

      it('receives trailers', async () => {
        const agent = new http.Agent({ keepAlive: false });
        const res = await nodeRequest(agent, srv.port, '/stream');
        expect(res.body.toString()).toBe('part0;part1;part2;part3;part4;');
        expect(res.trailers['x-trailer']).toBe('done');
      });
    });

    describe('undici', () => {
      it('GET, POST and streamed responses over one pooled connection', async () => {
        const dispatcher = new Agent({ connections: 1, pipelining: 1 });
        try {
          const base = `http://127.0.0.1:${srv.port}`;
          const a = await undiciRequest(`${base}/hello`, { dispatcher });
          expect(a.statusCode).toBe(200);
          expect(await a.body.text()).toBe('hello world');
          const b = await undiciRequest(`${base}/len`, {
            dispatcher,
            method: 'POST',
            body: Buffer.from('abcdef'),
          });
          expect(await b.body.text()).toBe(`6 ${checksum(Buffer.from('abcdef'))}`);
          const c = await undiciRequest(`${base}/stream`, { dispatcher });
          expect(await c.body.text()).toBe('part0;part1;part2;part3;part4;');
          expect(c.trailers['x-trailer']).toBe('done');
          const d = await undiciRequest(`${base}/nocontent`, { dispatcher });
          expect(d.statusCode).toBe(204);
          expect(await d.body.text()).toBe('');
        } finally {
          await dispatcher.close();
        }
      });

      it('pipelines requests', async () => {
        const dispatcher = new Agent({ connections: 1, pipelining: 4 });
        try {
          const base = `http://127.0.0.1:${srv.port}`;
          const results = await Promise.all(
            ['/hello', '/slow', '/hello', '/nope'].map(async (p) => {
              const r = await undiciRequest(`${base}${p}`, { dispatcher });
              return `${r.statusCode}:${await r.body.text()}`;
            }),
          );
          expect(results).toEqual(['200:hello world', '200:slow', '200:hello world', '404:not found']);
          if (srv.server) expect(srv.server.connections).toBeLessThanOrEqual(1);
        } finally {
          await dispatcher.close();
        }
      });
    });

    describe('curl', () => {
      it('answers an upload the handler does not read, then closes', async () => {
        const base = `http://127.0.0.1:${srv.port}`;
        const { stdout } = await run('sh', [
          '-c',
          `head -c 3000000 /dev/zero | curl -sS -H 'Expect:' --data-binary @- ${base}/hello 2>/dev/null; true`,
        ]);
        expect(stdout).toBe('hello world');
      });

      it('GET, HEAD, HTTP/1.0, upload with Expect: 100-continue', async () => {
        const base = `http://127.0.0.1:${srv.port}`;
        const get = await run('curl', ['-sS', '-i', `${base}/hello`, `${base}/hello`]);
        expect(get.stdout.match(/HTTP\/1\.1 200 OK/g)).toHaveLength(2);
        expect(get.stderr).toBe('');
        const head = await run('curl', ['-sS', '-I', `${base}/hello`]);
        expect(head.stdout).toMatch(/content-length: 11/i);
        const old = await run('curl', ['-sS', '-0', `${base}/stream`]);
        expect(old.stdout).toBe('part0;part1;part2;part3;part4;');
        const up = await run('sh', [
          '-c',
          `head -c 2000000 /dev/zero | curl -sS -v -H 'Expect: 100-continue' --data-binary @- ${base}/len 2>&1`,
        ]);
        expect(up.stdout).toMatch(/< HTTP\/1\.1 100 Continue/);
        expect(up.stdout).toMatch(/2000000 0/);
        const chunked = await run('sh', [
          '-c',
          `printf 'abc' | curl -sS -H 'Transfer-Encoding: chunked' --data-binary @- ${base}/echo`,
        ]);
        expect(chunked.stdout).toBe('abc');
      });
    });

    describe('wrk', () => {
      // Asserts what does not depend on the machine's speed: some requests made (NaN when wrk
      // printed no count fails too), none failed at the socket or answered non-2xx. wrk's own
      // request timeout (2 s by default, counted as a socket error) is raised above any stall a
      // loaded CI machine can cause; the 15 s bound only ends a hung wrk.
      it('runs a short keep-alive load without errors', async () => {
        const { stdout } = await run(
          'wrk',
          ['-t1', '-c8', '-d1s', '--timeout', '10s', `http://127.0.0.1:${srv.port}/hello`],
          { timeout: 15000 },
        );
        const total = Number(/(\d+) requests in/.exec(stdout)?.[1]);
        expect(total).toBeGreaterThan(0);
        expect(stdout).not.toMatch(/Socket errors|Non-2xx/);
      });
    });
  },
);

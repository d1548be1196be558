import {
  createRequest,
  createResponse,
  type HttpResponse,
  type HttpServerRequest,
  readText,
  streamBody,
} from '@loch/http';
import type { Answer, Service } from '@loch/service-async';
import { describe, expect, it, vi } from 'vitest';
import { logged } from '../../test/log-capture.js';
import { type ConnectionCx, ProxyContext, type RequestCx } from './context.js';
import { ContextHandler, CoreService, RequestHooks } from './core.js';
import { ProxyError } from './errors.js';
import type { ProxyLog } from './log.js';
import { ConnectionReuseService } from './reuse.js';

const connection = (): ConnectionCx =>
  ProxyContext.empty()
    .set('peerAddr', { family: 'ipv4', address: '10.0.0.1', port: 5000 })
    .set('socket', { localAddress: { family: 'ipv4', address: '127.0.0.1', port: 80 } })
    .set('driver', 'legacy')
    .set('server', { key: 'web', scheme: 'http' });

/** A request as the HttpServer hands it to its handler: carrying its connection's context. */
const serverRequest = (method: string, target: string): HttpServerRequest<ConnectionCx> => ({
  ...createRequest(method, target),
  context: connection(),
});

const service = (call: (cx: RequestCx) => Answer<HttpResponse>): Service<RequestCx, HttpResponse> => ({
  call,
});

/** What the HttpServer does with an answer: tells the chain's hooks (serverOptions()'s onAnswered). */
const told = (hooks: RequestHooks, request: HttpServerRequest<ConnectionCx>, res: HttpResponse) => {
  hooks.answered(request, res);
  return res;
};

/** A timed chain (access log on) whose inner service answers 204 at once. */
const timed204 = (log: ProxyLog) =>
  new ContextHandler(
    new CoreService(
      service(() => createResponse(204)),
      log,
      'web',
      true,
    ),
    true,
  );

describe('CoreService and ContextHandler', () => {
  it('answers a rejection with its status, and an inner layer that throws synchronously the same way', async () => {
    const { log } = logged();
    const rejects = new ContextHandler(
      new CoreService(
        service(() => Promise.reject(new ProxyError('ERR_LOCH_NO_ROUTE', 'no route'))),
        log,
        'web',
        false,
      ),
      false,
    );
    const res = await rejects.call(serverRequest('GET', '/x'));
    expect(res.status).toBe(404);
    expect(await readText(res.body)).toBe('404 ERR_LOCH_NO_ROUTE\n');
    const throws = new CoreService(
      service(() => {
        throw new Error('bug');
      }),
      log,
      'web',
      false,
    );
    const cx = connection()
      .fork()
      .set('request', createRequest('GET', '/y'))
      .set('clientTarget', '/y')
      .set('startedAt', 0);
    expect((await throws.call(cx)).status).toBe(500);
  });

  it('logs a streamed response when the server tells its body’s end, handing the body on as it is; untimed contexts start at 0', async () => {
    const { log, lines } = logged();
    const hooks = new RequestHooks('web', log);
    let startedAt = -1;
    const body = streamBody([Buffer.from('abc'), Buffer.from('de')]);
    const inner = service(async (cx) => {
      startedAt = cx.get('startedAt');
      return createResponse(200, { body });
    });
    const timed = new ContextHandler(new CoreService(inner, log, 'web', true), true);
    const request = serverRequest('GET', '/s?q=1');
    const res = told(hooks, request, await timed.call(request));
    expect(startedAt).toBeGreaterThan(0);
    // No wrapper of the body: its line is written from the server's onBodyEnd.
    expect(res.body).toBe(body);
    expect(lines()).toEqual([]);
    expect(await readText(res.body)).toBe('abcde');
    hooks.bodyEnded(request, res, 5, null);
    const [line] = lines();
    expect(line).toMatch(/ web 10\.0\.0\.1:5000 GET \/s\?q=1 200 5 - \d+\.\d\d$/);
    const untimed = new ContextHandler(new CoreService(inner, log, 'web', false), false);
    const quiet = serverRequest('GET', '/');
    const plain = told(hooks, quiet, await untimed.call(quiet));
    hooks.bodyEnded(quiet, plain, 5, null);
    expect(startedAt).toBe(0);
    expect(lines()).toHaveLength(1);
  });

  it('the access log reads the turn clock: requests answered in one turn share one performance.now()', async () => {
    const { log, lines } = logged();
    const hooks = new RequestHooks('web', log);
    const chain = timed204(log);
    await Promise.resolve(); // a fresh turn of the microtask queue: the clock's cache expired
    const now = vi.spyOn(performance, 'now');
    try {
      for (let i = 0; i < 10; i++) {
        const request = serverRequest('GET', `/r${i}`);
        told(hooks, request, chain.call(request) as HttpResponse);
      }
      // Start and end of 10 requests, one read: 20 reads when each stamp read the clock.
      expect(now).toHaveBeenCalledTimes(1);
    } finally {
      now.mockRestore();
    }
    expect(lines()).toHaveLength(10);
  });

  it('keeps a synchronous answer synchronous, a synchronous throw included (no promise on the way)', async () => {
    const { log, lines } = logged();
    const sync = timed204(log);
    const request = serverRequest('GET', '/now');
    const res = sync.call(request);
    expect(res).not.toBeInstanceOf(Promise);
    expect((res as HttpResponse).status).toBe(204);
    told(new RequestHooks('web', log), request, res as HttpResponse);
    expect(lines()).toHaveLength(1);
    const throws = new ContextHandler(
      new CoreService(
        service(() => {
          throw new ProxyError('ERR_LOCH_NO_ROUTE', 'no route');
        }),
        log,
        'web',
        false,
      ),
      false,
    );
    const failed = throws.call(serverRequest('GET', '/none'));
    expect(failed).not.toBeInstanceOf(Promise);
    expect((failed as HttpResponse).status).toBe(404);
  });
  it('without serverHooks the core layer answers a failure and the hooks log it once; an abandoned request once, as 499', async () => {
    const { log, lines } = logged();
    const hooks = new RequestHooks('web', log);
    const rejects = new ContextHandler(
      new CoreService(
        service(() => Promise.reject(new ProxyError('ERR_LOCH_NO_ROUTE', 'no route'))),
        log,
        'web',
        true,
      ),
      true,
    );
    const request = serverRequest('GET', '/x');
    const res = told(hooks, request, await rejects.call(request));
    expect(res.status).toBe(404);
    expect(lines()).toHaveLength(1);
    expect(lines()[0]).toMatch(/ web 10\.0\.0\.1:5000 GET \/x 404 22 - \d+\.\d\d$/);
    // The client goes first: the hooks log 499; the core layer's answer to the cancelled exchange is not told.
    let cancel: (e: unknown) => void = () => {};
    const pending = new ContextHandler(
      new CoreService(
        service(() => new Promise<HttpResponse>((_, reject) => (cancel = reject))),
        log,
        'web',
        true,
      ),
      true,
    );
    const gone = serverRequest('GET', '/gone');
    const answer = pending.call(gone);
    hooks.abandoned(gone);
    cancel(new Error('cancelled'));
    expect((await answer).status).toBe(499);
    expect(lines()).toHaveLength(2);
    expect(lines()[1]).toMatch(/ web 10\.0\.0\.1:5000 GET \/gone 499 0 - \d+\.\d\d$/);
  });
});

describe('failures and retirement answered by the server hooks (serverHooks)', () => {
  const routed = (version: '1.1' | '2') => {
    const request = { ...createRequest('GET', '/x'), version, context: connection() };
    const cx = connection().fork().set('request', request).set('clientTarget', '/x').set('startedAt', 0);
    request.context = cx;
    return { request: request as HttpServerRequest<ConnectionCx>, cx };
  };

  it('the core layer hands an HTTP/1.1 or HTTP/2 answer on as it is, with or without the access log', async () => {
    const { log, lines } = logged();
    const pending = Promise.reject(new ProxyError('ERR_LOCH_NO_ROUTE', 'no route'));
    pending.catch(() => {});
    const inner = service(() => pending);
    const hooked = new CoreService(inner, log, 'web', false, true);
    const quiet = routed('1.1').cx;
    expect(hooked.call(quiet)).toBe(pending);
    expect(quiet.maybeGet('accessLog')).toBeUndefined();
    // HTTP/2 servers call onFailed too (packages/http h2 server-on-failed.test.ts).
    expect(hooked.call(routed('2').cx)).toBe(pending);
    // The access log is told the answer by the server's hooks (the context's accessLog), not a reaction.
    const logging = new CoreService(inner, log, 'web', true, true);
    const cx = routed('1.1').cx;
    expect(logging.call(cx)).toBe(pending);
    expect(cx.maybeGet('accessLog')).toBe(logging);
    await pending.catch(() => {});
    expect(lines()).toEqual([]);
    const plain = new CoreService(inner, log, 'web', false);
    expect((await plain.call(routed('1.1').cx)).status).toBe(404);
  });

  it('RequestHooks write the access-log line of a hooked chain: once per answer, when a streamed body ends, 499 when abandoned', async () => {
    const { log, lines } = logged();
    const hooks = new RequestHooks('web', log, { lifecycle: { retired: false } });
    const line = (status: number, bytes: number) =>
      new RegExp(` web 10\\.0\\.0\\.1:5000 GET /x ${status} ${bytes} - \\d+\\.\\d\\d$`);
    // A fixed answer: logged when the server tells it (not when the chain answers).
    const fixed = routed('1.1');
    const sync = new CoreService(
      service(() => createResponse(204)),
      log,
      'web',
      true,
      true,
    );
    const res = sync.call(fixed.cx) as HttpResponse;
    expect(lines()).toEqual([]);
    hooks.answered(fixed.request, res);
    expect(lines()).toHaveLength(1);
    expect(lines()[0]).toMatch(line(204, 0));
    // A streamed answer: logged when the server tells its body's end, with the bytes taken from it.
    const streamed = routed('1.1');
    const stream = new CoreService(
      service(async () => createResponse(200, { body: streamBody([Buffer.from('abc')]) })),
      log,
      'web',
      true,
      true,
    );
    const answer = await stream.call(streamed.cx);
    hooks.answered(streamed.request, answer);
    expect(lines()).toHaveLength(1);
    expect(await readText(answer.body)).toBe('abc');
    expect(lines()).toHaveLength(1);
    hooks.bodyEnded(streamed.request, answer, 3, null);
    expect(lines()[1]).toMatch(line(200, 3));
    // A failure: answered by RequestHooks.failed, then logged with loch's status.
    const failing = routed('1.1');
    const rejects = new CoreService(
      service(() => Promise.reject(new ProxyError('ERR_LOCH_NO_ROUTE', 'no route'))),
      log,
      'web',
      true,
      true,
    );
    const failure = await (rejects.call(failing.cx) as Promise<HttpResponse>).catch((e: unknown) =>
      hooks.failed(failing.request, e),
    );
    hooks.answered(failing.request, failure);
    expect(lines()[2]).toMatch(line(404, 22));
    // A client gone before the answer: 499, no bytes, once (the server tells onAnswered nothing then).
    const gone = routed('1.1');
    new CoreService(
      service(() => new Promise<HttpResponse>(() => {})),
      log,
      'web',
      true,
      true,
    ).call(gone.cx);
    hooks.abandoned(gone.request);
    expect(lines()).toHaveLength(4);
    expect(lines()[3]).toMatch(line(499, 0));
  });

  it('RequestHooks.failed answers as the core layer does and marks the failure; no context: rethrown', async () => {
    const { log } = logged();
    const hooks = new RequestHooks('web', log, { lifecycle: { retired: false } });
    const { request, cx } = routed('1.1');
    const res = hooks.failed(request, new ProxyError('ERR_LOCH_NO_ROUTE', 'no route'));
    expect(res.status).toBe(404);
    expect(await readText(res.body)).toBe('404 ERR_LOCH_NO_ROUTE\n');
    expect(cx.maybeGet('failure')).toBe('ERR_LOCH_NO_ROUTE');
    expect(hooks.failed(routed('1.1').request, new Error('bug')).status).toBe(500);
    const bare = serverRequest('GET', '/y');
    expect(() => hooks.failed(bare, new Error('no context'))).toThrow('no context');
  });

  it('RequestHooks.answered closes the connections of a retired server (the lifecycle read at each answer)', () => {
    const { log } = logged();
    const server = { lifecycle: { retired: false } };
    const hooks = new RequestHooks('web', log, server);
    const first = createResponse(200);
    hooks.answered(routed('1.1').request, first);
    expect(first.headers.get('connection')).toBeUndefined();
    // A reload replaces the lifecycle; removing the server retires the current one.
    server.lifecycle = { retired: true };
    const second = createResponse(200);
    hooks.answered(routed('1.1').request, second);
    expect(second.headers.get('connection')).toBe('close');
  });

  it('the reuse layer adds no reaction when the hooks close retired connections, one when it does', () => {
    const lifecycle = { retired: true };
    const pending = new Promise<HttpResponse>(() => {});
    const inner = service(() => pending);
    const { cx } = routed('1.1');
    expect(
      new ConnectionReuseService(inner, lifecycle, undefined, undefined, undefined, false).call(cx),
    ).toBe(pending);
    expect(new ConnectionReuseService(inner, lifecycle).call(cx)).not.toBe(pending);
  });
});

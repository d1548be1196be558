// Three layers around a handler, assembled by a FactoryStack from a config, then hot-reloaded
// across two workers with a Deployment: the request counter survives the reload (make(old)), and
// a request that started before the commit finishes on the old service.
// Run: pnpm --filter @loch/service-async example
import {
  type Answer,
  Deployment,
  type FactoryLayer,
  FactoryStack,
  layerFn,
  type MakeService,
  makeFn,
  type Service,
} from '@loch/service-async';

interface Request {
  path: string;
}
interface Response {
  status: number;
  body: string;
}
interface Config {
  version: string;
  greeting: string;
  accessLog: boolean;
}

// The innermost service.
class Hello implements Service<Request, Response> {
  constructor(readonly greeting: string) {}
  async call(req: Request): Promise<Response> {
    return { status: 200, body: `${this.greeting} from ${req.path}` };
  }
}
const helloFactory = (config: Config): MakeService<Hello> => makeFn(() => new Hello(config.greeting));

// Layer 1: rejects paths outside /api. Fixed request/response types.
class OnlyApi implements Service<Request, Response> {
  constructor(readonly inner: Service<Request, Response>) {}
  call(req: Request): Answer<Response> {
    // Known at once: answered without a promise.
    if (!req.path.startsWith('/api')) return { status: 404, body: 'not found' };
    return this.inner.call(req);
  }
}
const onlyApiLayer = layerFn(
  (_config: Config, inner: MakeService<Service<Request, Response>>): MakeService<OnlyApi> =>
    makeFn((old) => new OnlyApi(inner.make(old?.inner))),
);

// Layer 2: counts requests. The counter is state that must survive a reload: make(old) reuses it.
class Counted<Req, Res> implements Service<Req, Res> {
  constructor(
    readonly inner: Service<Req, Res>,
    readonly counter: { requests: number },
  ) {}
  call(req: Req): Answer<Res> {
    this.counter.requests++;
    return this.inner.call(req);
  }
}
function countLayer<Req, Res>(): FactoryLayer<
  Config,
  MakeService<Service<Req, Res>>,
  MakeService<Counted<Req, Res>>
> {
  return layerFn((_config, inner) =>
    makeFn((old) => new Counted(inner.make(old?.inner), old?.counter ?? { requests: 0 })),
  );
}

// Layer 3 (optional by config): an access log line per request, tagged with the config version.
class AccessLog implements Service<Request, Response> {
  constructor(
    readonly inner: Service<Request, Response>,
    readonly version: string,
  ) {}
  async call(req: Request): Promise<Response> {
    const res = await this.inner.call(req);
    console.log(`[${this.version}] ${req.path} -> ${res.status} ${res.body}`);
    return res;
  }
}
const accessLogLayer = layerFn(
  (config: Config, inner: MakeService<Service<Request, Response>>): MakeService<AccessLog> =>
    makeFn((old) => new AccessLog(inner.make(old?.inner), config.version)),
);

// The last layer pushed is the outermost: Counted -> AccessLog (if enabled) -> OnlyApi -> Hello.
function stackFor(config: Config) {
  return new FactoryStack(config)
    .replace(helloFactory(config))
    .push(onlyApiLayer)
    .pushOptional(accessLogLayer, (c) => c.accessLog)
    .push(countLayer());
}
type Svc = ReturnType<ReturnType<typeof stackFor>['make']>;

const v1: Config = { version: 'v1', greeting: 'hello', accessLog: true };
const workers = new Deployment<Svc>(2);
await workers.deploy(stackFor(v1).factory);

await workers.slots[0]!.get().call({ path: '/api/a' });
await workers.slots[1]!.get().call({ path: '/other' });

// A request on worker 0 fetches its service before the reload...
const slowStart = workers.slots[0]!.get();
const v2: Config = { version: 'v2', greeting: 'bonjour', accessLog: true };
await workers.precommitAll(stackFor(v2).factory);
workers.commitAll();
// ...and finishes on the service it started with.
await slowStart.call({ path: '/api/slow' });

await workers.slots[0]!.get().call({ path: '/api/b' });

// The counter carried over through make(old): worker 0 counted /api/a, /api/slow (on v1's
// service, which shares the counter) and /api/b; worker 1 counted /other.
for (const slot of workers.slots) console.log(`${slot.name}: ${slot.get().counter.requests} requests`);

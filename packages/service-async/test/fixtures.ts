// Services, factories and layers shared by the runtime tests: a handler that counts requests (its
// counter is the state that must survive make(old)), and a tracing layer that records the order
// in which layers see a request.
import { type FactoryLayer, layerFn, type MakeService, makeFn, type Service } from '../src/index.js';

export interface Config {
  greeting: string;
  trace: string[];
  verbose: boolean;
}

export function config(overrides: Partial<Config> = {}): Config {
  return { greeting: 'hello', trace: [], verbose: false, ...overrides };
}

/** Answers `<greeting> <req> #<n>`; `hits` is carried from the old handler on make(old). */
export class Handler implements Service<string, string> {
  constructor(
    readonly greeting: string,
    readonly hits: { count: number },
  ) {}

  async call(req: string): Promise<string> {
    this.hits.count++;
    return `${this.greeting} ${req} #${this.hits.count}`;
  }
}

export function handlerFactory(cfg: Config): MakeService<Handler> {
  return makeFn((old) => new Handler(cfg.greeting, old?.hits ?? { count: 0 }));
}

/** Records `name` when a request enters and `name:done` when it leaves. */
export class Traced<Req, Res> implements Service<Req, Res> {
  constructor(
    readonly name: string,
    readonly trace: string[],
    readonly inner: Service<Req, Res>,
  ) {}

  async call(req: Req): Promise<Res> {
    this.trace.push(this.name);
    const res = await this.inner.call(req);
    this.trace.push(`${this.name}:done`);
    return res;
  }
}

/** A generic layer: wraps any service in Traced; passes `old.inner` down so state carries. */
export function traceLayer<Req, Res>(
  name: string,
): FactoryLayer<Config, MakeService<Service<Req, Res>>, MakeService<Traced<Req, Res>>> {
  return layerFn((cfg, inner) => makeFn((old) => new Traced(name, cfg.trace, inner.make(old?.inner))));
}

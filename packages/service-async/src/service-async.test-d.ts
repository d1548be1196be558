import { describe, expectTypeOf, it } from 'vitest';
import {
  type Answer,
  type AsyncMakeService,
  asyncMakeFn,
  Either,
  eitherLayer,
  type FactoryLayer,
  FactoryStack,
  layerFn,
  type MakeService,
  makeFn,
  type Service,
  ServiceSlot,
  serviceFn,
} from './index.js';

interface Config {
  tag: string;
  logging: boolean;
}

class Echo implements Service<string, string> {
  async call(req: string): Promise<string> {
    return req;
  }
}
class Dispatching implements Service<string, string> {
  readonly tag = 'x';
  maybe?: () => void;
  call(req: string): string {
    return req;
  }
  dispatch(req: string, answer: (res: string) => void): void {
    answer(req);
  }
}
class Length implements Service<string, number> {
  async call(req: string): Promise<number> {
    return req.length;
  }
}
const echoFactory: MakeService<Echo> = makeFn(() => new Echo());

/** A generic layer: works for any request/response type, inferred from the stack. */
class Logged<Req, Res> implements Service<Req, Res> {
  constructor(readonly inner: Service<Req, Res>) {}
  call(req: Req): Answer<Res> {
    return this.inner.call(req);
  }
}
function logLayer<Req, Res>(): FactoryLayer<
  Config,
  MakeService<Service<Req, Res>>,
  MakeService<Logged<Req, Res>>
> {
  return layerFn((_config, inner) => makeFn((old) => new Logged(inner.make(old?.inner))));
}

/** A layer with fixed types: needs a string -> string service. */
const upperLayer = layerFn(
  (_config: Config, inner: MakeService<Service<string, string>>): MakeService<Service<string, string>> =>
    makeFn((old) => {
      const next = inner.make(old);
      return serviceFn(async (req: string) => (await next.call(req)).toUpperCase());
    }),
);

/** A layer that turns a string -> number service into a string -> boolean one. */
const positiveLayer = layerFn(
  (_config: Config, inner: MakeService<Service<string, number>>): MakeService<Service<string, boolean>> =>
    makeFn(() => {
      const next = inner.make();
      return serviceFn(async (req: string) => (await next.call(req)) > 0);
    }),
);

const config: Config = { tag: 't', logging: true };

describe('FactoryStack types', () => {
  it('a stack built from fitting layers makes the outermost service type', () => {
    const stack = new FactoryStack(config).replace(echoFactory).push(upperLayer).push(logLayer());
    expectTypeOf(stack.make()).toEqualTypeOf<Logged<string, string>>();
    expectTypeOf(stack.make()).toExtend<Service<string, string>>();
    expectTypeOf(stack.makeAsync()).resolves.toEqualTypeOf<Logged<string, string>>();
    // make(old) takes the service type it builds
    expectTypeOf(stack.make).parameter(0).toEqualTypeOf<Logged<string, string> | undefined>();
  });

  it('a layer needing a different request type does not compile', () => {
    const numbers = new FactoryStack(config).replace(makeFn(() => serviceFn(async (n: number) => String(n))));
    // @ts-expect-error upperLayer needs a string request, the stack's service takes numbers
    numbers.push(upperLayer);
  });

  it('a layer needing a different response type does not compile', () => {
    const lengths = new FactoryStack(config).replace(makeFn(() => new Length()));
    // @ts-expect-error upperLayer needs a string response, the stack's service answers numbers
    lengths.push(upperLayer);
    // the fitting layer changes the response type
    expectTypeOf(lengths.push(positiveLayer).make()).toEqualTypeOf<Service<string, boolean>>();
    // @ts-expect-error after positiveLayer the response is boolean, and positiveLayer needs number
    lengths.push(positiveLayer).push(positiveLayer);
  });

  it('a layer with another config type does not compile', () => {
    const other = layerFn((_c: { port: number }, inner: MakeService<Service<string, string>>) => inner);
    // @ts-expect-error the layer reads config.port, the stack's config has none
    new FactoryStack(config).replace(echoFactory).push(other);
  });

  it('make() needs a factory; makeAsync() accepts an async one, make() does not', () => {
    // @ts-expect-error no factory yet
    new FactoryStack(config).make();
    const asyncStack = new FactoryStack(config).replace(asyncMakeFn(async () => new Echo()));
    expectTypeOf(asyncStack.makeAsync()).resolves.toEqualTypeOf<Echo>();
    // @ts-expect-error the factory is async-only
    asyncStack.make();
    expectTypeOf(asyncStack.pushMapTarget((s) => s).factory).toEqualTypeOf<AsyncMakeService<Echo>>();
  });

  it('pushMapTarget maps the service type', () => {
    const stack = new FactoryStack(config)
      .replace(echoFactory)
      .pushMapTarget((echo) => ({ echo, mapped: true }));
    expectTypeOf(stack.make()).toEqualTypeOf<{ echo: Echo; mapped: boolean }>();
  });

  it('optional and either layers produce an Either of the two service types', () => {
    const optional = new FactoryStack(config).replace(echoFactory).pushOptional(logLayer(), (c) => c.logging);
    expectTypeOf(optional.make()).toEqualTypeOf<Either<Logged<string, string>, Echo>>();
    expectTypeOf(optional.make()).toExtend<Service<string, string>>();
    const branched = new FactoryStack(config)
      .replace(echoFactory)
      .push(eitherLayer((c: Config) => c.logging, upperLayer, logLayer()));
    expectTypeOf(branched.make()).toExtend<Service<string, string>>();
    const echoStack = new FactoryStack(config).replace(echoFactory);
    // @ts-expect-error the branches need different inner factories (string and number responses)
    echoStack.push(eitherLayer((c: Config) => c.logging, upperLayer, positiveLayer));
  });

  it('Service request types are contravariant', () => {
    expectTypeOf<Service<string, number>>().toExtend<Service<'GET', number>>();
    expectTypeOf<Service<'GET', number>>().not.toExtend<Service<string, number>>();
  });
});

describe('ServiceSlot types', () => {
  it('precommit takes a factory of the slot type; service() forwards with the same types', () => {
    const slot = new ServiceSlot<Echo>({ initial: new Echo() });
    expectTypeOf(slot.get()).toEqualTypeOf<Echo>();
    expectTypeOf(slot.service()).toEqualTypeOf<Service<string, string>>();
    const dispatching = new ServiceSlot<Dispatching>({ initial: new Dispatching() });
    expectTypeOf(dispatching.service({ forward: ['dispatch'] }).dispatch).toEqualTypeOf<
      Dispatching['dispatch']
    >();
    // @ts-expect-error only required methods are forwarded: a field is not one
    dispatching.service({ forward: ['tag'] });
    // @ts-expect-error nor is an optional method (a service the slot holds may lack it)
    dispatching.service({ forward: ['maybe'] });
    // @ts-expect-error a Length factory does not build Echo services
    slot.precommit(makeFn(() => new Length()));
    expectTypeOf(Either.left(new Echo())).toExtend<Service<string, string>>();
  });
});

describe('Service answers', () => {
  it('may answer synchronously or with a promise, and nothing else', () => {
    const sync: Service<string, number> = { call: (req) => req.length };
    const later: Service<string, number> = { call: async (req) => req.length };
    expectTypeOf(sync.call('x')).toEqualTypeOf<Answer<number>>();
    expectTypeOf(later.call).returns.toEqualTypeOf<number | Promise<number>>();
    // @ts-expect-error a string is neither the response nor a promise of it
    const wrong: Service<string, number> = { call: (req: string) => req };
    void wrong;
  });
});

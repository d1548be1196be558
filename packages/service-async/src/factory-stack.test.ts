import { describe, expect, it } from 'vitest';
import { config, Handler, handlerFactory, Traced, traceLayer } from '../test/fixtures.js';
import {
  asyncMakeFn,
  Either,
  EitherFactory,
  eitherLayer,
  FactoryStack,
  layerFn,
  type MakeService,
  makeFn,
  optionalLayer,
  type Service,
  ServiceAsyncError,
  serviceFn,
} from './index.js';

describe('FactoryStack', () => {
  it('the last layer pushed is the outermost', async () => {
    const cfg = config();
    const service = new FactoryStack(cfg)
      .replace(handlerFactory(cfg))
      .push(traceLayer('first'))
      .push(traceLayer('second'))
      .push(traceLayer('third'))
      .make();
    expect(await service.call('you')).toBe('hello you #1');
    expect(cfg.trace).toEqual(['third', 'second', 'first', 'first:done', 'second:done', 'third:done']);
    expect(service).toBeInstanceOf(Traced);
    expect(service.name).toBe('third');
    expect(service.inner).toBeInstanceOf(Traced);
  });

  it('layers receive the stack config', () => {
    const seen: string[] = [];
    const cfg = config({ greeting: 'hi' });
    new FactoryStack(cfg).replace(handlerFactory(cfg)).push(
      layerFn((c: typeof cfg, inner: MakeService<Handler>) => {
        seen.push(c.greeting);
        return inner;
      }),
    );
    expect(seen).toEqual(['hi']);
  });

  it('make(old) carries state through every layer', async () => {
    const cfg = config();
    const stack = new FactoryStack(cfg)
      .replace(handlerFactory(cfg))
      .push(traceLayer('a'))
      .push(traceLayer('b'));
    const first = stack.make();
    await first.call('x');
    await first.call('x');
    const cfg2 = config({ greeting: 'bonjour' });
    const second = new FactoryStack(cfg2)
      .replace(handlerFactory(cfg2))
      .push(traceLayer('a'))
      .push(traceLayer('b'))
      .make(first);
    expect(second).not.toBe(first);
    expect(await second.call('x')).toBe('bonjour x #3');
    expect(await stack.make().call('x')).toBe('hello x #1');
  });

  it('replace sets the innermost factory; make builds a new service each time', () => {
    const cfg = config();
    const stack = new FactoryStack(cfg).replace(handlerFactory(cfg));
    expect(stack.factory).toBeDefined();
    expect(stack.config).toBe(cfg);
    expect(stack.make()).not.toBe(stack.make());
    const replaced = stack.replace(makeFn(() => serviceFn(async (n: number) => n * 2)));
    expect(replaced.config).toBe(cfg);
  });

  it('the constructor can take the innermost factory', async () => {
    const cfg = config();
    expect(await new FactoryStack(cfg, handlerFactory(cfg)).make().call('c')).toBe('hello c #1');
  });

  it('pushMapTarget maps the built service and keeps make(old) working', async () => {
    const cfg = config();
    const boxed = new FactoryStack(cfg)
      .replace(handlerFactory(cfg))
      .pushMapTarget((handler) => ({ handler, label: 'boxed' }));
    const first = boxed.make();
    expect(first.label).toBe('boxed');
    expect(first.handler).toBeInstanceOf(Handler);
    await first.handler.call('a');
    const second = boxed.make(first);
    expect(await second.handler.call('a')).toBe('hello a #2');
    expect(second.handler.hits).toBe(first.handler.hits);
  });

  it('pushMapTarget with primitive targets builds without old state', () => {
    const cfg = config();
    const names = new FactoryStack(cfg).replace(handlerFactory(cfg)).pushMapTarget((h) => h.greeting);
    expect(names.make()).toBe('hello');
    expect(names.make('ignored')).toBe('hello');
  });

  it('makeAsync works with async factories, through layers and map targets', async () => {
    const cfg = config();
    const stack = new FactoryStack(cfg)
      .replace(asyncMakeFn(async (old?: Handler) => new Handler('async', old?.hits ?? { count: 0 })))
      .pushMapTarget((h) => new Traced('mapped', cfg.trace, h));
    const first = await stack.makeAsync();
    expect(await first.call('q')).toBe('async q #1');
    const second = await stack.makeAsync(first);
    expect(await second.call('q')).toBe('async q #2');
    expect(cfg.trace).toEqual(['mapped', 'mapped:done', 'mapped', 'mapped:done']);
  });

  it('makeAsync also accepts a sync factory, and rejects when it throws', async () => {
    const cfg = config();
    expect(await (await new FactoryStack(cfg).replace(handlerFactory(cfg)).makeAsync()).call('s')).toBe(
      'hello s #1',
    );
    const broken = new FactoryStack(cfg).replace(
      makeFn((): Handler => {
        throw new Error('bad config');
      }),
    );
    await expect(broken.makeAsync()).rejects.toThrow('bad config');
    expect(() => broken.make()).toThrow('bad config');
  });

  it('a sync make that reaches an async-only factory throws ERR_SERVICE_ASYNC_ONLY_FACTORY', () => {
    const asyncOnly = new FactoryStack(config())
      .replace(asyncMakeFn(async () => new Handler('x', { count: 0 })))
      .pushMapTarget((h) => h);
    // The types forbid asyncOnly.make(); reach the runtime check through the factory itself.
    const factory = asyncOnly.factory as unknown as MakeService<Handler>;
    expect(() => factory.make()).toThrow(expect.objectContaining({ code: 'ERR_SERVICE_ASYNC_ONLY_FACTORY' }));
    expect(() => factory.make()).toThrow(ServiceAsyncError);
  });
});

describe('optional and either layers', () => {
  it('pushOptional applies the layer when the config enables it', async () => {
    const cfg = config({ verbose: true });
    const service = new FactoryStack(cfg)
      .replace(handlerFactory(cfg))
      .pushOptional(traceLayer('verbose'), (c) => c.verbose)
      .make();
    expect(service.isLeft).toBe(true);
    expect(await service.call('o')).toBe('hello o #1');
    expect(cfg.trace).toEqual(['verbose', 'verbose:done']);
  });

  it('pushOptional passes the inner factory through when the config disables it', async () => {
    const cfg = config({ verbose: false });
    const service = new FactoryStack(cfg)
      .replace(handlerFactory(cfg))
      .pushOptional(traceLayer('verbose'), (c) => c.verbose)
      .make();
    expect(service.isLeft).toBe(false);
    expect(service.value).toBeInstanceOf(Handler);
    expect(await service.call('o')).toBe('hello o #1');
    expect(cfg.trace).toEqual([]);
  });

  it('an absent optional layer passes through', async () => {
    const cfg = config();
    const maybe: ReturnType<typeof traceLayer<string, string>> | undefined = undefined;
    const service = new FactoryStack(cfg).replace(handlerFactory(cfg)).push(optionalLayer(maybe)).make();
    expect(service.isLeft).toBe(false);
    expect(await service.call('n')).toBe('hello n #1');
  });

  it('state carries across make(old) when the branch is unchanged, and starts fresh when it flips', async () => {
    const build = (verbose: boolean) => {
      const cfg = config({ verbose });
      return new FactoryStack(cfg)
        .replace(handlerFactory(cfg))
        .pushOptional(traceLayer('verbose'), (c) => c.verbose);
    };
    const on = build(true).make();
    await on.call('x');
    const stillOn = build(true).make(on);
    expect(await stillOn.call('x')).toBe('hello x #2');
    const off = build(false).make(stillOn);
    expect(await off.call('x')).toBe('hello x #1');
  });

  it('eitherLayer picks one of two layers by config', async () => {
    const build = (verbose: boolean) => {
      const cfg = config({ verbose });
      const service = new FactoryStack(cfg)
        .replace(handlerFactory(cfg))
        .push(eitherLayer((c) => c.verbose, traceLayer('left'), traceLayer('right')))
        .make();
      return { cfg, service };
    };
    const left = build(true);
    await left.service.call('e');
    expect(left.cfg.trace).toEqual(['left', 'left:done']);
    const right = build(false);
    await right.service.call('e');
    expect(right.cfg.trace).toEqual(['right', 'right:done']);
  });

  it('Either and EitherFactory work on their own', async () => {
    const a: Service<number, string> = serviceFn(async (n) => `a${n}`);
    const b: Service<number, string> = serviceFn(async (n) => `b${n}`);
    expect(await Either.left(a).call(1)).toBe('a1');
    expect(await Either.right(b).call(2)).toBe('b2');
    const factory = EitherFactory.right<
      MakeService<Service<number, string>>,
      MakeService<Service<number, string>>
    >(makeFn(() => b));
    const built = factory.make();
    expect(built.isLeft).toBe(false);
    expect(await built.call(3)).toBe('b3');
    expect(await (await factory.makeAsync(built)).call(4)).toBe('b4');
  });

  it('Either.call adds no promise of its own', () => {
    const promise = Promise.resolve('x');
    const service = Either.left(serviceFn(() => promise));
    expect(service.call('anything')).toBe(promise);
  });
});

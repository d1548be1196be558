import { describe, expect, it } from 'vitest';
import { config, Handler, handlerFactory, traceLayer } from '../test/fixtures.js';
import {
  asyncMakeFn,
  Deployment,
  FactoryStack,
  makeFn,
  PrecommitError,
  type Service,
  ServiceAsyncError,
  ServiceSlot,
} from './index.js';

/** The stack a worker would build from a config: a handler under one tracing layer. */
function stackFor(greeting: string) {
  const cfg = config({ greeting });
  return new FactoryStack(cfg).replace(handlerFactory(cfg)).push(traceLayer('edge'));
}
type Svc = ReturnType<ReturnType<typeof stackFor>['make']>;

function failingFactory(message: string) {
  return makeFn((): Svc => {
    throw new Error(message);
  });
}

describe('ServiceSlot', () => {
  it('precommit builds from the current service, commit swaps it in and returns the old one', async () => {
    const initial = stackFor('v1').make();
    const slot = new ServiceSlot<Svc>({ name: 'w0', initial });
    await slot.get().call('a');
    const staged = slot.precommit(stackFor('v2').factory);
    expect(slot.staged).toBe(staged);
    expect(slot.isStaged).toBe(true);
    expect(slot.get()).toBe(initial);
    expect(slot.commit()).toBe(initial);
    expect(slot.get()).toBe(staged);
    expect(slot.isPending).toBe(false);
    // the counter survived: the new service continues at #2
    expect(await slot.get().call('a')).toBe('v2 a #2');
  });

  it('abort drops the staged service and keeps the current one', () => {
    const initial = stackFor('v1').make();
    const slot = new ServiceSlot<Svc>({ initial });
    slot.precommit(stackFor('v2').factory);
    slot.abort();
    expect(slot.staged).toBeUndefined();
    expect(slot.get()).toBe(initial);
    expect(() => slot.commit()).toThrow(expect.objectContaining({ code: 'ERR_SERVICE_NOT_STAGED' }));
    slot.abort(); // idle: no-op
  });

  it('rejects a second precommit while one is pending', () => {
    const slot = new ServiceSlot<Svc>({ initial: stackFor('v1').make() });
    slot.precommit(stackFor('v2').factory);
    expect(() => slot.precommit(stackFor('v3').factory)).toThrow(
      expect.objectContaining({ code: 'ERR_SERVICE_ALREADY_STAGED' }),
    );
  });

  it('an empty slot throws on get and fills on the first commit, built with make(undefined)', async () => {
    const slot = new ServiceSlot<Svc>({ name: 'fresh' });
    expect(slot.isEmpty).toBe(true);
    expect(() => slot.get()).toThrow(expect.objectContaining({ code: 'ERR_SERVICE_SLOT_EMPTY' }));
    slot.precommit(stackFor('v1').factory);
    expect(slot.commit()).toBeUndefined();
    expect(slot.isEmpty).toBe(false);
    expect(await slot.get().call('z')).toBe('v1 z #1');
  });

  it('a precommit that throws leaves the slot idle and serving', () => {
    const initial = stackFor('v1').make();
    const slot = new ServiceSlot<Svc>({ initial });
    expect(() => slot.precommit(failingFactory('boom'))).toThrow('boom');
    expect(slot.isPending).toBe(false);
    expect(slot.get()).toBe(initial);
    slot.precommit(stackFor('v2').factory);
    expect(slot.isStaged).toBe(true);
  });

  it('abort during an async build drops the late result', async () => {
    const slot = new ServiceSlot<Svc>({ initial: stackFor('v1').make() });
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const building = slot.precommitAsync(
      asyncMakeFn(async (old?: Svc) => {
        await gate;
        return stackFor('v2').make(old);
      }),
    );
    expect(slot.isPending).toBe(true);
    slot.abort();
    release();
    await expect(building).rejects.toThrow(
      expect.objectContaining({ code: 'ERR_SERVICE_PRECOMMIT_ABORTED' }),
    );
    expect(slot.isPending).toBe(false);
    expect(slot.staged).toBeUndefined();
  });

  it('a request that fetched the service before commit finishes on the old service', async () => {
    const hits = { count: 0 };
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const slowOld: Service<string, string> = {
      call: async (req) => {
        await gate;
        hits.count++;
        return `old ${req}`;
      },
    };
    const slot = new ServiceSlot<Service<string, string>>({ initial: slowOld });
    const front = slot.service();
    const inFlight = front.call('first'); // fetches the current service now
    slot.precommit(makeFn(() => ({ call: async (req: string) => `new ${req}` })));
    slot.commit();
    const after = front.call('second');
    release();
    expect(await inFlight).toBe('old first');
    expect(await after).toBe('new second');
    expect(hits.count).toBe(1);
  });

  it('service() forwards the methods named in `forward` to the service current per call, with their receiver', () => {
    /** A service with a second way in: answers through a callback (as a relay's dispatch does). */
    class Callback implements Service<string, string> {
      constructor(readonly tag: string) {}
      call(req: string) {
        return `${this.tag} call ${req}`;
      }
      dispatch(req: string, answer: (res: string) => void, suffix = '') {
        answer(`${this.tag} dispatch ${req}${suffix}`);
      }
    }
    const slot = new ServiceSlot<Callback>({ name: 'w0' });
    // Built before the first commit, as a worker builds its server's handler.
    const plain = slot.service();
    const front = slot.service({ forward: ['dispatch'] });
    expect('dispatch' in plain).toBe(false);
    slot.precommit(makeFn(() => new Callback('v1')));
    slot.commit();
    const answers: string[] = [];
    front.dispatch('a', (res) => answers.push(res));
    slot.precommit(makeFn(() => new Callback('v2')));
    slot.commit();
    front.dispatch('b', (res) => answers.push(res), '!'); // every argument passed on
    expect(answers).toEqual(['v1 dispatch a', 'v2 dispatch b!']);
    expect(front.call('c')).toBe('v2 call c');
  });

  it('service() passes every argument on, whatever their number, with the receiver', () => {
    class Arities implements Service<string, string> {
      readonly tag = 'svc';
      call(req: string) {
        return req;
      }
      all(...args: unknown[]): string {
        return `${this.tag}:${args.length}:${args.join(',')}`;
      }
    }
    const slot = new ServiceSlot<Arities>({ initial: new Arities() });
    const front = slot.service({ forward: ['all'] });
    const got = [0, 1, 2, 3, 4, 6].map((n) => front.all(...Array.from({ length: n }, (_, i) => i)));
    expect(got).toEqual([
      'svc:0:',
      'svc:1:0',
      'svc:2:0,1',
      'svc:3:0,1,2',
      'svc:4:0,1,2,3',
      'svc:6:0,1,2,3,4,5',
    ]);
    // An explicit undefined is an argument (arguments.length counts it), as in a direct call.
    expect(front.all(undefined, undefined)).toBe('svc:2:,');
  });
});

describe('Deployment', () => {
  it('creates named empty slots from a count', () => {
    const deployment = new Deployment<Svc>(3);
    expect(deployment.slots.map((slot) => slot.name)).toEqual(['worker-0', 'worker-1', 'worker-2']);
    expect(deployment.slots.every((slot) => slot.isEmpty)).toBe(true);
  });

  it('precommitAll + commitAll swaps every slot, each built from its own old service', async () => {
    const slots = [0, 1, 2].map(
      (i) => new ServiceSlot<Svc>({ name: `w${i}`, initial: stackFor('v1').make() }),
    );
    await slots[1]!.get().call('x'); // slot 1 has served two requests
    await slots[1]!.get().call('x');
    const deployment = new Deployment(slots);
    await deployment.precommitAll(stackFor('v2').factory);
    expect(slots.every((slot) => slot.isStaged)).toBe(true);
    expect(await slots[0]!.get().call('x')).toBe('v1 x #1'); // not yet swapped
    deployment.commitAll();
    expect(await slots[0]!.get().call('x')).toBe('v2 x #2');
    expect(await slots[1]!.get().call('x')).toBe('v2 x #3');
    expect(await slots[2]!.get().call('x')).toBe('v2 x #1');
  });

  it('when one precommit throws, all slots are aborted and a PrecommitError names the slot', async () => {
    const initials = [0, 1, 2].map(() => stackFor('v1').make());
    const deployment = new Deployment(
      initials.map((initial, i) => new ServiceSlot({ name: `w${i}`, initial })),
    );
    const attempt = deployment.precommitAll((_slot, index) =>
      index === 1 ? failingFactory('worker 1 cannot bind') : stackFor('v2').factory,
    );
    const error = await attempt.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(PrecommitError);
    expect(error).toBeInstanceOf(ServiceAsyncError);
    const failure = error as PrecommitError;
    expect(failure.code).toBe('ERR_SERVICE_PRECOMMIT_FAILED');
    expect(failure.slotIndex).toBe(1);
    expect(failure.slotName).toBe('w1');
    expect((failure.cause as Error).message).toBe('worker 1 cannot bind');
    expect(failure.failures).toHaveLength(1);
    expect(failure.message).toContain('w1');
    for (const [i, slot] of deployment.slots.entries()) {
      expect(slot.isPending).toBe(false);
      expect(slot.get()).toBe(initials[i]);
    }
    // nothing is staged, so commitAll swaps nothing
    expect(() => deployment.commitAll()).toThrow(expect.objectContaining({ code: 'ERR_SERVICE_NOT_STAGED' }));
    expect(deployment.slots.map((slot) => slot.get())).toEqual(initials);
    // and the deployment can be retried
    await deployment.deploy(stackFor('v3').factory);
    expect(await deployment.slots[2]!.get().call('r')).toBe('v3 r #1');
  });

  it('reports every failing slot, first by index', async () => {
    const deployment = new Deployment<Svc>(3);
    const error = (await deployment
      .precommitAll((_slot, index) => (index === 0 ? stackFor('ok').factory : failingFactory(`bad ${index}`)))
      .catch((e: unknown) => e)) as PrecommitError;
    expect(error.slotIndex).toBe(1);
    expect(error.failures.map((f) => f.slotIndex)).toEqual([1, 2]);
    expect(deployment.slots.every((slot) => !slot.isPending && slot.isEmpty)).toBe(true);
  });

  it('a failing async precommit aborts the sync ones too', async () => {
    const deployment = new Deployment<Svc>(2);
    await expect(
      deployment.precommitAll((_slot, index) =>
        index === 0
          ? stackFor('ok').factory
          : asyncMakeFn(async (): Promise<Svc> => {
              throw new Error('async failure');
            }),
      ),
    ).rejects.toThrow(PrecommitError);
    expect(deployment.slots[0]!.isStaged).toBe(false);
  });

  it('commitAll swaps none when one slot is not staged', async () => {
    const initials = [0, 1].map(() => stackFor('v1').make());
    const deployment = new Deployment(initials.map((initial) => new ServiceSlot({ initial })));
    await deployment.precommitAll(stackFor('v2').factory);
    deployment.slots[1]!.abort();
    expect(() => deployment.commitAll()).toThrow(ServiceAsyncError);
    expect(deployment.slots.map((slot) => slot.get())).toEqual(initials);
    expect(deployment.slots[0]!.isStaged).toBe(true);
    deployment.abortAll();
    expect(deployment.slots.some((slot) => slot.isPending)).toBe(false);
  });

  it('the slot type accepts any service of its type', () => {
    const slot = new ServiceSlot<Handler>({ initial: new Handler('h', { count: 0 }) });
    expect(slot.precommit(makeFn((old) => new Handler('h2', old!.hits))).hits).toBe(slot.get().hits);
  });
});

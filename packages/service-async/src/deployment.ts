/**
 * Staged deployment for hot reload. A ServiceSlot holds the service a worker is serving with;
 * `precommit(factory)` builds the next one from the current (`make(old)`, so pools and counters
 * carry over) without serving it; `commit()` swaps it in; `abort()` drops it. A Deployment does
 * this over many slots (one per worker) all-or-nothing: if any slot's build throws, every slot is
 * aborted and keeps its current service.
 *
 * Requests in flight keep the service they started with: a handler fetches `slot.get()` once at
 * the start of a request (or calls through `slot.service()`, which does exactly that), so a
 * commit only affects requests that start after it. Cross-thread orchestration (telling each
 * worker to precommit, then commit) belongs to the runtime's command channel; this module is the
 * per-process transaction. Not a router or a load balancer.
 */
import { PrecommitError, type PrecommitFailure, ServiceAsyncError } from './errors.js';
import { buildAsync, buildSync, type Factory, type MakeService } from './make-service.js';
import type { Service } from './service.js';

type SlotState = 'idle' | 'building' | 'staged';

/** The names of the required methods of `S` other than `call`: what `ServiceSlot.service()` can forward. */
export type MethodName<S> = Exclude<
  {
    [K in keyof S]: K extends 'call' ? never : S[K] extends (...args: never[]) => unknown ? K : never;
  }[keyof S],
  undefined
>;

/** What `ServiceSlot.service()` returns: a Service, with the methods `K` of `S` when it forwards some. */
export type SlotForwarder<Req, Res, S, K extends keyof S> = [K] extends [never]
  ? Service<Req, Res>
  : Service<Req, Res> & Pick<S, K>;

type Methods = Record<string, ((...args: unknown[]) => unknown) | undefined>;

/** Holds the current service of one worker and, during a deployment, the staged next one. */
export class ServiceSlot<S> {
  /** A name for messages and errors, e.g. `worker-2`. */
  readonly name: string;
  #current: S | undefined;
  #hasCurrent: boolean;
  #staged: S | undefined = undefined;
  #state: SlotState = 'idle';
  /** Bumped by abort/commit so that a build that finishes late knows it was cancelled. */
  #generation = 0;

  /** A slot serving `initial`, or an empty slot (the first commit fills it). */
  constructor(options: { name?: string; initial?: S } = {}) {
    this.name = options.name ?? 'slot';
    this.#hasCurrent = 'initial' in options;
    this.#current = options.initial;
  }

  /** The service to use for a request starting now. Throws `ERR_SERVICE_SLOT_EMPTY` before the first commit. */
  get(): S {
    if (!this.#hasCurrent)
      throw new ServiceAsyncError('ERR_SERVICE_SLOT_EMPTY', `slot ${this.name} has no service yet`);
    return this.#current as S;
  }

  /** Whether a service has been committed (or given as `initial`). */
  get isEmpty(): boolean {
    return !this.#hasCurrent;
  }

  /** The staged service, if a precommit has finished and not been committed or aborted. */
  get staged(): S | undefined {
    return this.#staged;
  }

  /** Whether a precommit has finished and awaits commit or abort. */
  get isStaged(): boolean {
    return this.#state === 'staged';
  }

  /** Whether a precommit is building or staged. */
  get isPending(): boolean {
    return this.#state !== 'idle';
  }

  /**
   * Builds the next service synchronously from the current one (`factory.make(current)`) and
   * stages it. Throws what the factory throws (nothing is staged then), or
   * `ERR_SERVICE_ALREADY_STAGED` if a precommit is pending.
   */
  precommit(factory: MakeService<S>): S {
    this.#begin();
    const generation = this.#generation;
    try {
      return this.#stage(generation, buildSync(factory, this.#current));
    } catch (error) {
      if (generation === this.#generation) this.#state = 'idle';
      throw error;
    }
  }

  /** Like `precommit`, with an async (or sync) factory. */
  async precommitAsync(factory: Factory<S>): Promise<S> {
    this.#begin();
    const generation = this.#generation;
    let next: S;
    try {
      next = await buildAsync(factory, this.#current);
    } catch (error) {
      if (generation === this.#generation) this.#state = 'idle';
      throw error;
    }
    return this.#stage(generation, next);
  }

  /**
   * Swaps the staged service in and returns the one it replaced (undefined for a first commit).
   * Requests that already fetched the old service finish on it. Throws `ERR_SERVICE_NOT_STAGED`
   * when nothing is staged.
   */
  commit(): S | undefined {
    if (this.#state !== 'staged') {
      throw new ServiceAsyncError(
        'ERR_SERVICE_NOT_STAGED',
        `slot ${this.name} has no staged service to commit`,
      );
    }
    const previous = this.#current;
    this.#current = this.#staged;
    this.#hasCurrent = true;
    this.#reset();
    return previous;
  }

  /** Drops the staged service (or cancels a build in progress); the current service stays. No-op when idle. */
  abort(): void {
    if (this.#state !== 'idle') this.#reset();
  }

  /**
   * A Service that forwards each request to the service current when the request starts, and
   * each method named in `forward` likewise: a consumer that prefers a method of the service
   * over `call` when it has one (say a server taking answers through a callback instead of a
   * promise) then finds it on the forwarder too, not only `call`. Methods are named up front
   * because the forwarder is built once, maybe before the first commit; only required methods
   * of `S` can be named, so every service the slot can hold has them. No allocation per request.
   */
  service<Req, Res, K extends MethodName<S> = never>(
    this: ServiceSlot<Service<Req, Res>>,
    options: { readonly forward?: readonly K[] } = {},
  ): SlotForwarder<Req, Res, S, K> {
    const forwarder: Record<string, unknown> = { call: (req: Req) => this.get().call(req) };
    for (const name of options.forward ?? []) {
      const key = name as string;
      // Called per request (a Thrift server's dispatch). The usual arities call the method
      // directly: a spread call goes through V8's CallFunctionForwardVarargs, ~550 instructions
      // per relayed Thrift call (bench/thrift/readings-2026-12-06b.md) and about twice the direct
      // call's time; TurboFan drops `args` when only its length and elements are read.
      forwarder[key] = (...args: unknown[]) => {
        const service = this.get() as unknown as Methods;
        switch (args.length) {
          case 0:
            return service[key]!();
          case 1:
            return service[key]!(args[0]);
          case 2:
            return service[key]!(args[0], args[1]);
          case 3:
            return service[key]!(args[0], args[1], args[2]);
          default:
            return service[key]!(...args);
        }
      };
    }
    return forwarder as unknown as SlotForwarder<Req, Res, S, K>;
  }

  #begin(): void {
    if (this.#state !== 'idle') {
      throw new ServiceAsyncError(
        'ERR_SERVICE_ALREADY_STAGED',
        `slot ${this.name} already has a pending precommit: commit or abort it first`,
      );
    }
    this.#state = 'building';
  }

  #stage(generation: number, next: S): S {
    if (generation !== this.#generation) {
      throw new ServiceAsyncError(
        'ERR_SERVICE_PRECOMMIT_ABORTED',
        `slot ${this.name}: precommit was aborted while building; its service was dropped`,
      );
    }
    this.#staged = next;
    this.#state = 'staged';
    return next;
  }

  #reset(): void {
    this.#staged = undefined;
    this.#state = 'idle';
    this.#generation++;
  }
}

/** Which factory builds a slot's next service: one for all slots, or one per slot. */
export type FactoryForSlot<S> = Factory<S> | ((slot: ServiceSlot<S>, index: number) => Factory<S>);

/** Many slots (one per worker) deployed together, all or nothing. */
export class Deployment<S> {
  /** The slots, in index order. */
  readonly slots: readonly ServiceSlot<S>[];

  /** A deployment over `slots`, or over `count` new empty slots named `worker-0`... */
  constructor(slots: Iterable<ServiceSlot<S>> | number) {
    this.slots =
      typeof slots === 'number'
        ? Array.from({ length: slots }, (_, index) => new ServiceSlot<S>({ name: `worker-${index}` }))
        : [...slots];
  }

  /**
   * Builds every slot's next service from its current one. If any build throws, every slot is
   * aborted (none keeps a staged service) and a `PrecommitError` names the slot that failed.
   * Builds run concurrently; a failure waits for the other builds to settle before aborting.
   */
  async precommitAll(factory: FactoryForSlot<S>): Promise<void> {
    const pick = typeof factory === 'function' ? factory : () => factory;
    const results = await Promise.allSettled(
      this.slots.map((slot, index) => {
        try {
          return slot.precommitAsync(pick(slot, index));
        } catch (error) {
          return Promise.reject(error);
        }
      }),
    );
    const failures: PrecommitFailure[] = [];
    results.forEach((result, slotIndex) => {
      if (result.status === 'rejected') {
        failures.push({ slotIndex, slotName: this.slots[slotIndex]!.name, error: result.reason });
      }
    });
    if (failures.length > 0) {
      this.abortAll();
      throw new PrecommitError(failures);
    }
  }

  /**
   * Swaps every staged service in. Checks first that every slot is staged, so it either swaps all
   * or (throwing `ERR_SERVICE_NOT_STAGED`) none.
   */
  commitAll(): void {
    const unstaged = this.slots.find((slot) => !slot.isStaged);
    if (unstaged !== undefined) {
      throw new ServiceAsyncError(
        'ERR_SERVICE_NOT_STAGED',
        `slot ${unstaged.name} has no staged service; nothing was committed`,
      );
    }
    for (const slot of this.slots) slot.commit();
  }

  /** Drops every staged service (and cancels builds in progress). */
  abortAll(): void {
    for (const slot of this.slots) slot.abort();
  }

  /** `precommitAll` then `commitAll`: the whole reload, all or nothing. */
  async deploy(factory: FactoryForSlot<S>): Promise<void> {
    await this.precommitAll(factory);
    this.commitAll();
  }
}

/**
 * FactoryStack: assembles a service factory from a config and a sequence of layers. Start with
 * `new FactoryStack(config)`, set the innermost factory with `replace`, then `push` layers; the
 * last layer pushed is the outermost (it sees requests first). `make()`/`makeAsync()` build the
 * service, and `make(old)` builds it from the previous one so state survives a reload. Each step
 * returns a new stack whose type is the new factory's, so a layer that does not fit the factory
 * below it is a compile error. Not used per request: a stack is assembled once per config.
 */

import type { FactoryLayer, OptionalFactory } from './layer.js';
import { optionalLayer } from './layer.js';
import {
  buildAsync,
  buildSync,
  type Factory,
  type FactoryOf,
  type MakeService,
  type ServiceOf,
} from './make-service.js';
import { MapTargetFactory } from './map-target.js';

/** A config `C` and the factory `F` assembled so far (`undefined` before `replace`). */
export class FactoryStack<C, F = undefined> {
  /** The config every layer receives. */
  readonly config: C;
  /** The factory assembled so far. */
  readonly factory: F;

  /** A stack with no factory yet; set the innermost one with `replace`. */
  constructor(config: C);
  /** A stack whose innermost factory is `factory`. */
  constructor(config: C, factory: F);
  constructor(config: C, factory?: F) {
    this.config = config;
    this.factory = factory as F;
  }

  /** Replaces the whole factory (usually: sets the innermost service's factory). */
  replace<NF>(factory: NF): FactoryStack<C, NF> {
    return new FactoryStack(this.config, factory);
  }

  /** Wraps the current factory with `layer`; the new layer is the outermost. */
  push<Out>(layer: FactoryLayer<C, F, Out>): FactoryStack<C, Out> {
    return new FactoryStack(this.config, layer.layer(this.config, this.factory));
  }

  /**
   * Pushes a layer that may be off: when `layer` is absent or `enabled(config)` is false, the
   * current factory passes through. See `optionalLayer`.
   */
  pushOptional<Out>(
    layer: FactoryLayer<C, F, Out> | undefined | null,
    enabled?: (config: C) => boolean,
  ): FactoryStack<C, OptionalFactory<Out, F>> {
    return this.push(optionalLayer(layer, enabled));
  }

  /**
   * Maps the service the current factory builds (once per build, not per request). `make(old)`
   * still reaches the inner factory with the inner service `old` was made from.
   */
  pushMapTarget<T>(
    this: FactoryStack<C, Factory<ServiceOf<F>>>,
    map: (service: ServiceOf<F>) => T,
  ): FactoryStack<C, FactoryOf<F, T>> {
    const mapped = new MapTargetFactory(this.factory, map) as unknown as FactoryOf<F, T>;
    return new FactoryStack(this.config, mapped);
  }

  /** Builds the service synchronously, from `old` when given (the service it replaces). */
  make(this: FactoryStack<C, MakeService<ServiceOf<F>>>, old?: ServiceOf<F>): ServiceOf<F> {
    return buildSync(this.factory, old);
  }

  /** Builds the service with the factory's `makeAsync` (or `make`), from `old` when given. */
  makeAsync(this: FactoryStack<C, Factory<ServiceOf<F>>>, old?: ServiceOf<F>): Promise<ServiceOf<F>> {
    return buildAsync(this.factory, old);
  }
}

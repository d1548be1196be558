/**
 * FactoryLayer: a function of (config, inner factory) -> outer factory. Layers are how a stack is
 * assembled: each wraps the factory below it, and the last one pushed is the outermost. Also the
 * branching layers: `optionalLayer` (on/off by config) and `eitherLayer` (one of two by config).
 * Not for per-request logic: that lives in the services the factories build.
 */
import { type Either, EitherFactory } from './either.js';
import type { FactoryOf, ServiceOf } from './make-service.js';

/**
 * Wraps an inner factory `In` into an outer factory `Out`, given the stack's config `C`.
 * `layer` is a property, so `FactoryStack.push` checks that the stack's current factory really
 * is an `In` (a layer that needs `MakeService<Service<string, R>>` does not fit a stack that
 * builds `Service<number, R>`).
 *
 * To write a layer that works for any request/response type, write a generic function that
 * returns one (`function logLayer<Req, Res>(): FactoryLayer<...>`) and push `logLayer()`: the
 * type arguments are inferred from the stack.
 */
export interface FactoryLayer<C, In, Out> {
  /** Builds the outer factory around `inner`. Runs once, when the stack is assembled. */
  readonly layer: (config: C, inner: In) => Out;
}

/** Makes a FactoryLayer from a function. */
export function layerFn<C, In, Out>(layer: (config: C, inner: In) => Out): FactoryLayer<C, In, Out> {
  return { layer };
}

/** The factory an optional layer produces: the layer's factory (left) or the inner one passed through (right). */
export type OptionalFactory<Out, In> = FactoryOf<Out | In, Either<ServiceOf<Out>, ServiceOf<In>>>;

/**
 * A layer that may be off. When `layer` is absent, or `enabled(config)` is false, the inner
 * factory passes through unchanged (wrapped in the right side of an `Either`, so the stack's type
 * does not depend on configuration). Monolake's `Option<L>` layer.
 */
export function optionalLayer<C, In, Out = never>(
  layer: FactoryLayer<C, In, Out> | undefined | null,
  enabled?: (config: C) => boolean,
): FactoryLayer<C, In, OptionalFactory<Out, In>> {
  return {
    layer: (config, inner) =>
      (layer != null && (enabled === undefined || enabled(config))
        ? EitherFactory.left<Out, In>(layer.layer(config, inner))
        : EitherFactory.right<In, Out>(inner)) as unknown as OptionalFactory<Out, In>,
  };
}

/** The factory an either layer produces. */
export type BranchFactory<OutA, OutB> = FactoryOf<OutA | OutB, Either<ServiceOf<OutA>, ServiceOf<OutB>>>;

/** A layer that applies `left` when `useLeft(config)` is true, else `right`. */
export function eitherLayer<C, In, OutA, OutB>(
  useLeft: (config: C) => boolean,
  left: FactoryLayer<C, In, OutA>,
  right: FactoryLayer<C, In, OutB>,
): FactoryLayer<C, In, BranchFactory<OutA, OutB>> {
  return {
    layer: (config, inner) =>
      (useLeft(config)
        ? EitherFactory.left<OutA, OutB>(left.layer(config, inner))
        : EitherFactory.right<OutB, OutA>(right.layer(config, inner))) as unknown as BranchFactory<
        OutA,
        OutB
      >,
  };
}

/**
 * @loch/service-async: Monolake's service-async in TypeScript. `Service` (one method, `call`),
 * `MakeService` (build a service, possibly from the one it replaces), `FactoryLayer` and
 * `FactoryStack` (assemble a service chain from config), `Either` (branch by config), and
 * `ServiceSlot`/`Deployment` (stage and swap services across workers for hot reload).
 * `pendingPromise`/`takeResolve`/`takeReject`: a promise without a closure per promise.
 * Pure: no I/O, no timers.
 */
export {
  Deployment,
  type FactoryForSlot,
  type MethodName,
  ServiceSlot,
  type SlotForwarder,
} from './deployment.js';
export { Either, EitherFactory } from './either.js';
export {
  PrecommitError,
  type PrecommitFailure,
  ServiceAsyncError,
  type ServiceAsyncErrorCode,
} from './errors.js';
export { FactoryStack } from './factory-stack.js';
export {
  type BranchFactory,
  eitherLayer,
  type FactoryLayer,
  layerFn,
  type OptionalFactory,
  optionalLayer,
} from './layer.js';
export {
  type AsyncMakeService,
  asyncMakeFn,
  buildAsync,
  buildSync,
  type Factory,
  type FactoryOf,
  isMakeService,
  type MakeService,
  makeFn,
  type ServiceOf,
} from './make-service.js';
export { MapTargetFactory } from './map-target.js';
export { NO_SETTLER, pendingPromise, takeReject, takeResolve } from './promise-settlers.js';
export { type Answer, type RequestOf, type ResponseOf, type Service, serviceFn } from './service.js';

/**
 * Either: a value that is one of two services (or of two factories), chosen when the service is
 * built, not per request. It is how a stack branches on configuration (an optional layer is
 * `Either<WithLayer, Inner>`) while keeping one static type. Not a per-request router: a request
 * always goes to the side chosen at build time.
 */
import type { Factory, ServiceOf } from './make-service.js';
import { buildAsync, buildSync } from './make-service.js';
import type { Answer, RequestOf, ResponseOf, Service } from './service.js';

/**
 * One of two services. `call` forwards to the chosen side and returns its answer as is (no
 * allocation per request; one extra method call).
 */
export class Either<A, B> {
  /** True when the left side was chosen. */
  readonly isLeft: boolean;
  /** The chosen service. */
  readonly value: A | B;

  private constructor(isLeft: boolean, value: A | B) {
    this.isLeft = isLeft;
    this.value = value;
  }

  /** The left side. */
  static left<A, B = never>(value: A): Either<A, B> {
    return new Either<A, B>(true, value);
  }

  /** The right side. */
  static right<B, A = never>(value: B): Either<A, B> {
    return new Either<A, B>(false, value);
  }

  /** Forwards the request to the chosen service. */
  call(req: RequestOf<A> & RequestOf<B>): Answer<ResponseOf<A> | ResponseOf<B>> {
    return (this.value as Service<RequestOf<A> & RequestOf<B>, ResponseOf<A> | ResponseOf<B>>).call(req);
  }
}

/**
 * One of two factories; builds an `Either` of their services. On `make(old)`, the old service's
 * inner value is handed down only when it came from the same side, so state carries across a
 * reload that keeps the branch, and a factory never receives a service of the other branch.
 */
export class EitherFactory<FA, FB> {
  /** True when the left factory was chosen. */
  readonly isLeft: boolean;
  /** The chosen factory. */
  readonly factory: FA | FB;

  private constructor(isLeft: boolean, factory: FA | FB) {
    this.isLeft = isLeft;
    this.factory = factory;
  }

  /** The left factory. */
  static left<FA, FB = never>(factory: FA): EitherFactory<FA, FB> {
    return new EitherFactory<FA, FB>(true, factory);
  }

  /** The right factory. */
  static right<FB, FA = never>(factory: FB): EitherFactory<FA, FB> {
    return new EitherFactory<FA, FB>(false, factory);
  }

  /** Builds the chosen side synchronously (throws `ERR_SERVICE_ASYNC_ONLY_FACTORY` if it is async-only). */
  make(old?: Either<ServiceOf<FA>, ServiceOf<FB>>): Either<ServiceOf<FA>, ServiceOf<FB>> {
    return this.#wrap(buildSync(this.factory as Factory<unknown>, this.#previous(old)));
  }

  /** Builds the chosen side. */
  async makeAsync(old?: Either<ServiceOf<FA>, ServiceOf<FB>>): Promise<Either<ServiceOf<FA>, ServiceOf<FB>>> {
    return this.#wrap(await buildAsync(this.factory as Factory<unknown>, this.#previous(old)));
  }

  #previous(old: Either<unknown, unknown> | undefined): unknown {
    return old instanceof Either && old.isLeft === this.isLeft ? old.value : undefined;
  }

  #wrap(service: unknown): Either<ServiceOf<FA>, ServiceOf<FB>> {
    return this.isLeft
      ? Either.left<ServiceOf<FA>, ServiceOf<FB>>(service as ServiceOf<FA>)
      : Either.right<ServiceOf<FB>, ServiceOf<FA>>(service as ServiceOf<FB>);
  }
}

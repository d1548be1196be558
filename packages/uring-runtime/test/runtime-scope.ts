/**
 * One runtime per test and what the test opened on it, closed after the test in reverse order
 * (REVIEW F84: the scaffold five test files wrote alike). Framework-neutral (no vitest import):
 * `const scope = new RuntimeScope(); afterEach(() => scope.close());`. Not a test file, not
 * exported by the package.
 */
import type { Runtime } from '../src/index.js';

export class RuntimeScope {
  /** The runtime of the running test (set by use()), undefined between tests. */
  runtime: Runtime | undefined;
  readonly #closers: (() => unknown)[] = [];

  /** Adopts `runtime` (closed last, after every deferred close); returns it. */
  use<R extends Runtime>(runtime: R): R {
    this.runtime = runtime;
    return runtime;
  }

  /** Runs `close` after the test: the closes deferred later run first, the runtime's last. */
  defer(close: () => unknown): void {
    this.#closers.push(close);
  }

  /** For afterEach: the deferred closes newest first, then the runtime. */
  async close(): Promise<void> {
    for (const close of this.#closers.splice(0).reverse()) await close();
    await this.runtime?.close();
    this.runtime = undefined;
  }
}

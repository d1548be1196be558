/**
 * What a runtime has open: listeners (so a graceful stop can close them all), the streams handed
 * to user code and the tasks started with spawn() (so a stop can wait until they are done).
 * Kept by the public wrappers and spawn(). Not for drivers, which keep their own sets.
 */

/** Something that stops accepting when closed. */
export interface Closable {
  close(): Promise<void>;
}

/** Open listeners, streams and spawned tasks of one runtime. */
export class RuntimeActivity {
  readonly listeners = new Set<Closable>();
  #openStreams = 0;
  #tasks = 0;
  #idle: (() => void)[] = [];

  get openStreams(): number {
    return this.#openStreams;
  }

  get tasks(): number {
    return this.#tasks;
  }

  streamOpened(): void {
    this.#openStreams++;
  }

  streamClosed(): void {
    this.#openStreams--;
    this.#checkIdle();
  }

  taskStarted(): void {
    this.#tasks++;
  }

  taskEnded(): void {
    this.#tasks--;
    this.#checkIdle();
  }

  #checkIdle(): void {
    if (this.#openStreams === 0 && this.#tasks === 0 && this.#idle.length > 0) {
      const idle = this.#idle;
      this.#idle = [];
      for (const resolve of idle) resolve();
    }
  }

  /** Resolves once no stream is open and no spawned task runs. */
  whenIdle(): Promise<void> {
    if (this.#openStreams === 0 && this.#tasks === 0) return Promise.resolve();
    return new Promise<void>((resolve) => this.#idle.push(resolve));
  }
}

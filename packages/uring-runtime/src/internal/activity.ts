/**
 * What a runtime has open: listeners (so a graceful stop can close them all) and the number of
 * streams handed to user code (so it can wait until they are closed). Kept by the public
 * TcpListener/TcpStream/Unix* wrappers. Not for drivers, which keep their own sets.
 */

/** Something that stops accepting when closed. */
export interface Closable {
  close(): Promise<void>;
}

/** Open listeners and streams of one runtime. */
export class RuntimeActivity {
  readonly listeners = new Set<Closable>();
  #openStreams = 0;
  #idle: (() => void)[] = [];

  get openStreams(): number {
    return this.#openStreams;
  }

  streamOpened(): void {
    this.#openStreams++;
  }

  streamClosed(): void {
    this.#openStreams--;
    if (this.#openStreams === 0 && this.#idle.length > 0) {
      const idle = this.#idle;
      this.#idle = [];
      for (const resolve of idle) resolve();
    }
  }

  /** Resolves once no stream is open. */
  whenIdle(): Promise<void> {
    if (this.#openStreams === 0) return Promise.resolve();
    return new Promise<void>((resolve) => this.#idle.push(resolve));
  }
}

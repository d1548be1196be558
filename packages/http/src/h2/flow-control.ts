/**
 * HTTP/2 flow control (RFC 9113 §5.2, §6.9) for the receiving side: a window the peer may fill,
 * credited back with WINDOW_UPDATE as the bytes are consumed, in batches (a WINDOW_UPDATE once
 * half of the window was consumed, not per DATA frame). The sending side is two numbers per
 * stream and connection in the session (a send window may go negative after a SETTINGS change,
 * RFC 9113 §6.9.2, and never above 2^31 - 1).
 *
 * Not for buffering: the window is what bounds the memory a peer can make us hold.
 */
/** The receive window of a stream or of the connection. */
export class ReceiveWindow {
  /** Octets the peer may still send before a WINDOW_UPDATE. */
  available: number;
  /** Octets consumed since the last WINDOW_UPDATE (credited in the next one). */
  #consumed = 0;

  constructor(
    /** The size the window is kept at (credited back up to). */
    public size: number,
    initial: number = size,
  ) {
    this.available = initial;
  }

  /**
   * Takes `n` received octets off the window; false when the peer sent more than it allowed
   * (FLOW_CONTROL_ERROR).
   */
  receive(n: number): boolean {
    this.available -= n;
    return this.available >= 0;
  }

  /**
   * `n` octets were consumed (read by the handler, or discarded); returns the increment to send
   * in a WINDOW_UPDATE now, or 0 while less than half of the window waits to be credited.
   */
  consume(n: number): number {
    this.#consumed += n;
    if (this.#consumed < this.size >>> 1) return 0;
    const inc = this.#consumed;
    this.#consumed = 0;
    this.available += inc;
    return inc;
  }

  /** Our SETTINGS_INITIAL_WINDOW_SIZE changed (acknowledged): the window moves by the difference. */
  resize(size: number): void {
    this.available += size - this.size;
    this.size = size;
  }
}

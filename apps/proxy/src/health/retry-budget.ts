/**
 * A route group's retry budget, held for the whole process (issue 16: retries "bounded by a
 * retry budget"): retries in flight stay under `budget_percent` of the group's requests in
 * flight in every worker, or `min_retry_concurrency`, whichever is more. Envoy's retry_budget
 * is per cluster for the process: its ResourceManagerImpl counts the cluster's requests and
 * retries of all worker threads in shared atomics. Kept per worker, N workers allowed N times
 * the configured minimum, and a worker whose requests happened to fail retried against its own
 * requests alone.
 *
 * How: each worker counts its own requests and retries in flight in two fields and mirrors
 * them, with a plain store, into its own two words of the process's shared health memory
 * (health-flags.ts: one block per worker index, so no two workers write one cache line and no
 * atomic read-modify-write is on the request path). A retry decision, taken only after a
 * failure, sums every worker's words. Costs per request: a field increment and a store, in
 * and out (bench/retry-budget/atomics.ts: 1.4x a plain field's ++/--; an Atomics.add + sub on
 * one word two threads write cost 5-9x, 65-168 ns per request on this machine). Two workers deciding at the same instant may each pass the budget by one, as
 * Envoy's atomics may ("resources may temporarily go above the supplied maximums").
 * Without a place (no shared memory, unit tests) the counts are this worker's own.
 * Not for where a group's words are (retry-slots.ts) or when to retry (proxy/upstream.ts).
 */
import type { RetryConfig } from './config.js';
import { RETRY_BLOCK_WORDS, RETRY_WORDS_PER_GROUP } from './health-flags.js';

/** Where a group's counts sit in the shared retry words (health-flags.ts retryWords()). */
export interface RetryPlace {
  /** The retry part of the process's health memory. */
  readonly words: Int32Array;
  /** The group's index (retry-slots.ts). */
  readonly group: number;
  /** This worker's index: the block it writes. */
  readonly worker: number;
}

/** One group's retry budget in one worker, over the process's counts when placed. */
export class RetryBudget {
  /** This worker's requests of the group in flight (head not yet arrived). */
  active = 0;
  /** This worker's retries of the group in flight. */
  retries = 0;
  readonly #config: RetryConfig;
  readonly #words: Int32Array | null;
  /** This worker's requests word (its retries word follows). */
  readonly #own: number;
  /** The group's requests word in worker 0's block (the blocks are RETRY_BLOCK_WORDS apart). */
  readonly #first: number;
  readonly #end: number;

  constructor(config: RetryConfig, place?: RetryPlace) {
    this.#config = config;
    this.#words = place?.words ?? null;
    this.#first = (place?.group ?? 0) * RETRY_WORDS_PER_GROUP;
    this.#own = this.#first + (place?.worker ?? 0) * RETRY_BLOCK_WORDS;
    this.#end = place?.words.length ?? 0;
  }

  /** A request (first attempt or retry) went to an upstream. */
  enter(): void {
    const n = ++this.active;
    if (this.#words !== null) this.#words[this.#own] = n;
  }

  /** A request's attempt ended (answered or failed). */
  leave(): void {
    const n = --this.active;
    if (this.#words !== null) this.#words[this.#own] = n;
  }

  /** A retry went out (also counted by enter()). */
  retryStarted(): void {
    const n = ++this.retries;
    if (this.#words !== null) this.#words[this.#own + 1] = n;
  }

  /** A retry ended. */
  retryEnded(): void {
    const n = --this.retries;
    if (this.#words !== null) this.#words[this.#own + 1] = n;
  }

  /**
   * Whether a retry may start now: the process's retries in flight stay under budget_percent
   * of its requests in flight, or min_retry_concurrency (Envoy's retry_budget).
   */
  allows(): boolean {
    let active = this.active;
    let retries = this.retries;
    const words = this.#words;
    if (words !== null) {
      active = 0;
      retries = 0;
      for (let at = this.#first; at < this.#end; at += RETRY_BLOCK_WORDS) {
        active += Atomics.load(words, at);
        retries += Atomics.load(words, at + 1);
      }
    }
    const config = this.#config;
    return retries < Math.max(config.minRetryConcurrency, (active * config.budgetPercent) / 100);
  }
}

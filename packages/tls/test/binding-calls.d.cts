/** Types of binding-calls.cjs (which says what it is for). */
export interface CallCounts {
  /** Calls so far by function name; a function not called is absent. */
  readonly calls: Map<string, number>;
  /** Puts the original functions back on the binding. */
  restore(): void;
}

/** Wraps each function of `binding` (except `skip`) with a counter by name. */
export declare function countCalls(binding: object, skip?: readonly string[]): CallCounts;

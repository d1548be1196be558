/**
 * The one deadline sweep of the thrift proxy's upstream calls (per worker thread): a call's
 * upstream_call timeout is a number on it, not a timer per call. See DeadlineSweep in
 * @loch/uring-runtime.
 */
import { DeadlineSweep } from '@loch/uring-runtime';

export const callDeadlines = new DeadlineSweep();

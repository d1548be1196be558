/**
 * The one deadline sweep of the thrift proxy's upstream calls (per worker thread): a call's
 * upstream_call timeout is a number on it, not a timer per call. See DeadlineSweep in
 * @loch/uring-runtime.
 */
import { DeadlineSweep } from '@loch/uring-runtime';

export const callDeadlines = new DeadlineSweep();

/**
 * How long an upstream connection with no call idles before its receive low-water mark goes to 1
 * (ms; UpstreamConnection.watchIdle says why and what the window does not catch): longer than a
 * busy pool leaves a connection idle between calls, so a busy pool pays no setsockopt for it.
 * Armed on callDeadlines, whose tick is then at most 25 ms: the look comes 100-150 ms after.
 */
export const IDLE_LOOK_MS = 100;

/**
 * The one deadline sweep of @loch/thrift (per thread): FrameReaders arm their receive
 * deadlines on it, so a server with keepalive and message timeouts runs one coarse interval
 * for all its connections instead of a timer per receive. See DeadlineSweep in
 * @loch/uring-runtime.
 */
import { DeadlineSweep } from '@loch/uring-runtime';

export const deadlines = new DeadlineSweep();

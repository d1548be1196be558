/**
 * The one deadline sweep of @loch/http (per thread): server connections and client connections
 * arm their deadlines on it, so a worker runs one coarse timer for all of them. See
 * DeadlineSweep in @loch/uring-runtime.
 */
import { DeadlineSweep } from '@loch/uring-runtime';

export const deadlines = new DeadlineSweep();

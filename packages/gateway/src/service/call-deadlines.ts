/**
 * The call timeouts of every upstream connection of ClientExchange on this thread, exclusive
 * (exclusive-connection.ts) and multiplexed (multiplexed-connection.ts): one coarse sweep, not
 * a timer per call. Not for other deadlines.
 */
import { DeadlineSweep } from '@loch/uring-runtime';

export const callDeadlines = new DeadlineSweep();

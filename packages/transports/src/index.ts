/**
 * @loch/transports: stackable connectors and the connection pool (monoio-transports for Loch).
 */
export { ConnectionPool, type Poolable, type PoolKey, type PoolOptions, type PoolStats } from './pool.js';

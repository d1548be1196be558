/**
 * @loch/proxy: the reference reverse proxy (`loch`). The package entry exports the config
 * loader and the effective config types, for tools that generate or check loch configs.
 */
export { ConfigError, type ConfigIssue, loadConfigFile, parseConfig, validateConfig } from './config/load.js';
export type {
  ListenAddress,
  ProxyConfig,
  RouteConfig,
  RuntimeConfig,
  ServerConfig,
  TimeoutConfig,
  UpstreamAddress,
  UpstreamConfig,
} from './config/schema.js';

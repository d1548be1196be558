/**
 * Modules whose operational log level can be set apart (`[log] modules`, LOCH_LOG).
 *
 * A file of its own, without zod: every worker isolate imports it (proxy/log.ts), and importing
 * the list from schema.ts loaded zod and the whole config schema into each worker (+~5 MiB of
 * heap per worker, bench/idle-memory/readings-2026-12-06b.md).
 */
export const LOG_MODULES = [
  'accept',
  'http',
  'tls',
  'proxy_protocol',
  'upstream',
  'tunnel',
  'thrift',
  'reload',
  'access_log',
  'gateway',
] as const;
export type LogModule = (typeof LOG_MODULES)[number];

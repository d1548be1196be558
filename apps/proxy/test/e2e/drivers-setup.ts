/**
 * Vitest globalSetup of apps/proxy: probes once per test run which drivers this kernel grants
 * (harness.ts probeDrivers: a child under tsx, ~1.2 CPU-s) and hands the answer to every test
 * file through DRIVERS_ENV, instead of one probe per file (53 files call availableDrivers()).
 * Not a test.
 */
import { DRIVERS_ENV, probeDrivers } from './harness.js';

export default function setup(): () => void {
  process.env[DRIVERS_ENV] = probeDrivers().join(',');
  return () => {
    delete process.env[DRIVERS_ENV];
  };
}

/**
 * Test support for the gateway e2e suites (gateway-*.test.ts): `loch run` as an HTTP/JSON ->
 * Thrift gateway with one worker and one server, `gw`, on a free port, its routes the suite's,
 * in a directory that holds @loch/gateway's test IDL (user.thrift and the shared.thrift it
 * includes). Not a test itself.
 */
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, type Loch, startLoch, tempDir, waitConnectable } from './harness.js';

/** @loch/gateway's test folder: the IDL (idl/), the npm and python peers. */
export const gatewayFixtures = fileURLToPath(new URL('../../../../packages/gateway/test/', import.meta.url));

/** A new temp directory (named from `prefix`) holding user.thrift and shared.thrift. */
export function gatewayDir(prefix: string): string {
  const dir = tempDir(prefix);
  copyFileSync(join(gatewayFixtures, 'idl/user.thrift'), join(dir, 'user.thrift'));
  copyFileSync(join(gatewayFixtures, 'idl/shared.thrift'), join(dir, 'shared.thrift'));
  return dir;
}

/** A gateway loch, up and accepting. */
export interface Gateway {
  readonly loch: Loch;
  /** Its directory (config and IDL files). */
  readonly dir: string;
  /** `http://127.0.0.1:<port>` */
  readonly base: string;
}

/**
 * Starts loch on `driver` in a gatewayDir(`prefix`) with `routes` (TOML: `[[servers.gw.routes]]`
 * tables) and waits until it accepts.
 */
export async function startGateway(driver: string, prefix: string, routes: string): Promise<Gateway> {
  const port = await freePort();
  const dir = gatewayDir(prefix);
  const loch = await startLoch(
    dir,
    `
[runtime]
workers = 1

[servers.gw]
listener = { type = "socket", value = "127.0.0.1:${port}" }
${routes}`,
    { LOCH_DRIVER: driver },
  );
  try {
    await waitConnectable({ port });
  } catch (e) {
    await loch.stop();
    throw e;
  }
  return { loch, dir, base: `http://127.0.0.1:${port}` };
}

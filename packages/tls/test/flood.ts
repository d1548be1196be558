/**
 * The TLS flooder (fixtures/tls-flood.py) of the receive-budget tests: a Python peer that opens
 * `n` TLS connections and sends as fast as the server reads.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const FLOOD = fileURLToPath(new URL('./fixtures/tls-flood.py', import.meta.url));

/** Starts the flooder on `port`; resolves once its `n` handshakes are done. */
export function flood(port: number, n: number, caFile: string): Promise<ChildProcess> {
  const child = spawn('python3', [FLOOD, String(port), String(n), caFile], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    const early = (code: number | null) => reject(new Error(`flooder exited with ${code}`));
    child.once('exit', early);
    child.stdout!.once('data', () => {
      child.off('exit', early);
      resolve(child);
    });
  });
}

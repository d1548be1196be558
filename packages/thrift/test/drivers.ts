/**
 * The runtime drivers a thrift test suite runs on (not a test file): legacy (node:net) and
 * io_uring, each with why it cannot run on this machine (a kernel without io_uring, a seccomp
 * profile that refuses it), so a suite skips that driver's tests and says why, not fails.
 */
import { createRuntime, type DriverName } from '@loch/uring-runtime';

/** A driver and, when it cannot run here, the reason (the runtime's error). */
export interface TestDriver {
  readonly name: DriverName;
  readonly skip: string | undefined;
}

/** Why `driver` cannot start a runtime on this machine, or undefined when it can. */
async function unavailable(driver: DriverName): Promise<string | undefined> {
  try {
    const rt = await createRuntime({ driver, log: () => undefined });
    await rt.close();
    return undefined;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}

/** Both drivers, each tried once; a warning names `suite` and the driver it will skip. */
export async function testDrivers(suite: string): Promise<TestDriver[]> {
  const drivers: TestDriver[] = [];
  for (const name of ['legacy', 'uring'] as const) {
    const skip = await unavailable(name);
    if (skip !== undefined) console.warn(`${suite}: skipping the ${name} driver: ${skip}`);
    drivers.push({ name, skip });
  }
  return drivers;
}

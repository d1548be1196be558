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

/** Why `driver` (with `uring`'s options) cannot start a runtime here, or undefined when it can. */
async function unavailable(driver: DriverName, uring?: TestSetup['uring']): Promise<string | undefined> {
  try {
    const rt = await createRuntime({ driver, uring, log: () => undefined });
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

/** A runtime a suite's socket tests run on, as testDrivers' drivers, io_uring split by descriptor kind. */
export interface TestSetup extends TestDriver {
  /** For describe.each's title. */
  readonly label: string;
  /** The io_uring options (directFiles: accepted streams on direct descriptors or not). */
  readonly uring?: { readonly directFiles: number };
  /** Accepted streams are io_uring direct descriptors. */
  readonly direct: boolean;
}

/**
 * legacy, io_uring on descriptors and io_uring on direct descriptors (directFiles 64: socket
 * options such as the receive mark go by URING_CMD there), each tried once; a warning names
 * `suite` and the setup it will skip.
 */
export async function testSetups(suite: string): Promise<TestSetup[]> {
  const setups: Omit<TestSetup, 'skip'>[] = [
    { label: 'legacy', name: 'legacy', direct: false },
    { label: 'io_uring, descriptors', name: 'uring', uring: { directFiles: 0 }, direct: false },
    { label: 'io_uring, direct descriptors', name: 'uring', uring: { directFiles: 64 }, direct: true },
  ];
  const out: TestSetup[] = [];
  for (const setup of setups) {
    const skip = await unavailable(setup.name, setup.uring);
    if (skip !== undefined) console.warn(`${suite}: skipping ${setup.label}: ${skip}`);
    out.push({ ...setup, skip });
  }
  return out;
}

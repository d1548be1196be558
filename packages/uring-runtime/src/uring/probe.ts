/**
 * probeUring(): can this process and thread use the io_uring driver, and with what kernel
 * features? Used by the runtime's 'auto' driver selection. Not for creating rings.
 */
import { loadNative } from '@loch/native';

/** Kernel and addon features of io_uring, as probed at startup. */
export interface UringFeatures {
  /** IORING_SETUP_* flags a ring gets here (SINGLE_ISSUER|COOP_TASKRUN|SUBMIT_ALL or fewer). */
  readonly setupFlags: number;
  /** IORING_FEAT_* bits reported by the kernel. */
  readonly features: number;
  /** IORING_FEAT_NODROP: CQ overflow keeps completions. */
  readonly nodrop: boolean;
  /** Multishot recv (Linux 6.0). */
  readonly multishotRecv: boolean;
  /** Provided-buffer rings (Linux 5.19). */
  readonly bufRing: boolean;
  /** Supported opcodes the driver cares about. */
  readonly ops: Readonly<Record<string, boolean>>;
}

/** Result of probeUring(). */
export type UringProbe =
  | { readonly available: true; readonly features: UringFeatures }
  | {
      readonly available: false;
      readonly reason: string;
    };

/**
 * Probes once whether the addon loads and the kernel grants io_uring with every op the driver
 * needs. Never throws.
 */
export function probeUring(): UringProbe {
  const loaded = loadNative();
  if ('error' in loaded) return { available: false, reason: loaded.error };
  const p = loaded.probe;
  if (!p.multishotRecv || !p.bufRing) {
    return {
      available: false,
      reason: 'kernel lacks multishot recv or provided-buffer rings (needs Linux 6.0+)',
    };
  }
  return {
    available: true,
    features: {
      setupFlags: p.setupFlags,
      features: p.features,
      nodrop: p.nodrop,
      multishotRecv: p.multishotRecv,
      bufRing: p.bufRing,
      ops: p.ops,
    },
  };
}

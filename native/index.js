// @loch/native loader. Returns the addon, or `{ error }` saying why it cannot serve: the build
// failed (the text of build/loch-native-build-error.txt), the .node file does not load, or the
// kernel refuses io_uring (ENOSYS, EPERM from seccomp, kernel.io_uring_disabled). Never throws,
// so the runtime can fall back to its legacy driver. loadPlatform() and memoryTrimmer() hand out
// the calls that need no io_uring (listeners for node:net, thread affinity, memory trimming)
// whenever the .node file loads, so the legacy driver and worker threads use them too.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const buildError = join(here, 'build', 'loch-native-build-error.txt');

/** @type {import('./index.js').LoadResult | undefined} */
let cached;

function buildFailure() {
  try {
    return existsSync(buildError) ? readFileSync(buildError, 'utf8').trim() : '';
  } catch {
    return '';
  }
}

/** @type {{ binding?: import('./index.js').NativeBinding; loadError: string } | undefined} */
let loadedBinding;

/** Loads the .node file once per thread, without probing the kernel. */
function loadBinding() {
  if (loadedBinding) return loadedBinding;
  const explicit = process.env.LOCH_NATIVE_PATH;
  const candidates = explicit
    ? [explicit]
    : [join(here, 'build', 'Release', 'loch_native.node'), join(here, 'build', 'Debug', 'loch_native.node')];
  let binding;
  let loadError = '';
  for (const path of candidates) {
    if (!existsSync(path)) {
      if (explicit) loadError = `LOCH_NATIVE_PATH=${path} does not exist`;
      continue;
    }
    try {
      binding = require(path);
      break;
    } catch (error) {
      loadError = `cannot load ${path}: ${error instanceof Error ? error.message : String(error)}`;
    }
  }
  loadedBinding = binding ? { binding, loadError } : { loadError };
  return loadedBinding;
}

/** Why the .node file is not there or does not load. */
function unloadableReason(loadError) {
  const build = buildFailure();
  if (build && loadError) return `${loadError}\n${build}`;
  return (
    loadError ||
    build ||
    'the addon is not built (run `node scripts/build.mjs` in @loch/native; needs liburing-dev)'
  );
}

/**
 * Loads the addon once per thread and probes io_uring.
 * @returns {import('./index.js').LoadResult}
 */
export function loadNative() {
  if (cached) return cached;
  const { binding, loadError } = loadBinding();
  if (!binding) {
    cached = { error: unloadableReason(loadError) };
    return cached;
  }
  let probe;
  try {
    probe = binding.probe();
  } catch (error) {
    cached = { error: `io_uring probe failed: ${error instanceof Error ? error.message : String(error)}` };
    return cached;
  }
  if (!probe.ok) {
    cached = { error: probe.reason };
    return cached;
  }
  if (!probe.allRequiredOps) {
    cached = { error: `io_uring lacks required operations: ${JSON.stringify(probe.ops)}` };
    return cached;
  }
  cached = { binding, probe };
  return cached;
}

/**
 * The addon's trimMemory (V8 low-memory GC plus malloc_trim) when the addon loads, whether or not
 * the kernel allows io_uring (the legacy driver uses it too); undefined when it does not load.
 * @returns {(() => { mallocTrimmed: boolean }) | undefined}
 */
export function memoryTrimmer() {
  const { binding } = loadBinding();
  return binding ? () => binding.trimMemory() : undefined;
}

/**
 * The addon's collectAfterWave (V8's memory-reducing collection, started incrementally: see
 * src/memory.cc) when the addon loads, whether or not the kernel allows io_uring; undefined when
 * it does not load.
 * @returns {(() => boolean) | undefined}
 */
export function waveCollector() {
  const { binding } = loadBinding();
  return binding ? () => binding.collectAfterWave() : undefined;
}

/**
 * The addon's gcPauses (this thread's mark-compacts and V8's pauses for them, timed by a GC hook:
 * see src/memory.cc) when the .node file loads and has it; undefined otherwise.
 * @returns {(() => import('./index.js').GcPauses) | undefined}
 */
export function gcPauseReader() {
  const { binding } = loadBinding();
  return binding?.gcPauses ? () => binding.gcPauses() : undefined;
}

/** @type {import('./index.js').PlatformLoadResult | undefined} */
let platformCached;

/**
 * The addon's calls that need no io_uring (openTcpListener, setThreadAffinity, threadAffinity),
 * whether or not the kernel allows io_uring; `{ error }` when the .node file does not load.
 * Never throws. Cached per thread.
 * @returns {import('./index.js').PlatformLoadResult}
 */
export function loadPlatform() {
  if (platformCached) return platformCached;
  const { binding, loadError } = loadBinding();
  platformCached = binding
    ? {
        platform: {
          openTcpListener: binding.openTcpListener,
          setThreadAffinity: binding.setThreadAffinity,
          threadAffinity: binding.threadAffinity,
        },
      }
    : { error: unloadableReason(loadError) };
  return platformCached;
}

/** Opcodes of the submission record format (see README.md). */
export const Op = Object.freeze({
  NOP: 0,
  ACCEPT_MULTI: 1,
  CONNECT: 2,
  RECV_MULTI: 3,
  RECV: 4,
  SEND: 5,
  WRITEV: 6,
  SPLICE: 7,
  SHUTDOWN: 8,
  CLOSE: 9,
  TIMEOUT: 10,
  CANCEL: 11,
  CANCEL_FD: 12,
  PROVIDE: 13,
  POLL: 14,
  TLS_CLOSE_NOTIFY: 15,
  PLAIN_RELEASE: 16,
  RECV_SELECT: 17,
  ACCEPT_DIRECT: 18,
  SETSOCKOPT: 20,
});

/** What submitShared's `bufs` is (submitArgs[2]; Ring::BufsKind in src/ring.h). */
export const SubmitBufs = Object.freeze({ NONE: 0, VIEW: 1, ARRAY: 2 });

/** @type {import('./index.js').TlsLoadResult | undefined} */
let tlsCached;

/**
 * The TLS engine (loch_tls.node: OpenSSL from the node binary, driven over caller memory), whether or not
 * the kernel allows io_uring; `{ error }` when the module is not built or does not load. Binds
 * this thread's info slots on first use. Never throws; cached per thread.
 * @returns {import('./index.js').TlsLoadResult}
 */
export function loadTls() {
  if (tlsCached) return tlsCached;
  // The engine embedded in loch_native.node first: its sessions are the ones that module's ring
  // can carry (in-ring TLS). loch_tls.node serves where loch_native does not load (no liburing).
  const explicitTls = process.env.LOCH_NATIVE_TLS_PATH;
  if (!explicitTls) {
    const { binding } = loadBinding();
    if (binding?.tls) {
      try {
        const info = new Int32Array(4);
        binding.tls.bindInfo(info);
        tlsCached = { tls: { ...binding.tls, info } };
        return tlsCached;
      } catch {
        // fall through to the standalone module
      }
    }
  }
  const explicit = process.env.LOCH_NATIVE_TLS_PATH;
  const candidates = explicit
    ? [explicit]
    : [join(here, 'build', 'Release', 'loch_tls.node'), join(here, 'build', 'Debug', 'loch_tls.node')];
  let loadError = '';
  for (const path of candidates) {
    if (!existsSync(path)) {
      if (explicit) loadError = `LOCH_NATIVE_TLS_PATH=${path} does not exist`;
      continue;
    }
    try {
      const binding = require(path);
      const info = new Int32Array(4);
      binding.bindInfo(info);
      tlsCached = { tls: { ...binding, info } };
      return tlsCached;
    } catch (error) {
      loadError = `cannot load ${path}: ${error instanceof Error ? error.message : String(error)}`;
    }
  }
  const build = buildFailure();
  tlsCached = {
    error:
      [loadError, build].filter(Boolean).join('\n') ||
      'the TLS engine is not built (run `node scripts/build.mjs` in @loch/native)',
  };
  return tlsCached;
}

/** @type {import('./index.js').SivLoadResult | undefined} */
let sivCached;

/**
 * AES-SIV (RFC 5297) over the node binary's OpenSSL, whether or not the kernel allows io_uring;
 * `{ error }` when the .node file does not load. Never throws; cached per thread.
 * @returns {import('./index.js').SivLoadResult}
 */
export function loadSiv() {
  if (sivCached) return sivCached;
  const { binding, loadError } = loadBinding();
  sivCached = binding?.siv ? { siv: binding.siv } : { error: unloadableReason(loadError) };
  return sivCached;
}

/** @type {import('./index.js').HeadScanLoadResult | undefined} */
let headScanCached;

/**
 * The HTTP/1.1 head scanner of @loch/http's decoder, whether or not the kernel allows io_uring;
 * `{ error }` when the .node file does not load. Never throws; cached per thread.
 * @returns {import('./index.js').HeadScanLoadResult}
 */
export function loadHeadScan() {
  if (headScanCached) return headScanCached;
  const { binding, loadError } = loadBinding();
  headScanCached = binding?.headScan
    ? { headScan: binding.headScan }
    : { error: unloadableReason(loadError) };
  return headScanCached;
}

/** @type {import('./index.js').GatewayJsonLoadResult | undefined} */
let gatewayJsonCached;

/**
 * @loch/gateway's Thrift -> JSON converter, whether or not the kernel allows io_uring; `{ error }`
 * when the .node file does not load (or predates it). Never throws; cached per thread.
 * @returns {import('./index.js').GatewayJsonLoadResult}
 */
export function loadGatewayJson() {
  if (gatewayJsonCached) return gatewayJsonCached;
  const { binding, loadError } = loadBinding();
  gatewayJsonCached = binding?.gatewayJson
    ? { gatewayJson: binding.gatewayJson }
    : {
        error: binding ? 'the addon has no gatewayJson (rebuild @loch/native)' : unloadableReason(loadError),
      };
  return gatewayJsonCached;
}

/** @type {import('./index.js').DirWatchLoadResult | undefined} */
let dirWatchCached;

/**
 * The inotify directory watch that hears entry changes, not every write (native/README.md,
 * "Directory watch"), whether or not the kernel allows io_uring; `{ error }` when the .node file
 * does not load (or predates it). Never throws; cached per thread.
 * @returns {import('./index.js').DirWatchLoadResult}
 */
export function loadDirWatch() {
  if (dirWatchCached) return dirWatchCached;
  const { binding, loadError } = loadBinding();
  dirWatchCached = binding?.dirWatch
    ? { dirWatch: binding.dirWatch }
    : { error: binding ? 'the addon has no dirWatch (rebuild @loch/native)' : unloadableReason(loadError) };
  return dirWatchCached;
}

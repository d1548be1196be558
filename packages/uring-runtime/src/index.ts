/**
 * @loch/uring-runtime: the runtime every Loch package does I/O through. One driver per JS thread
 * (io_uring on @loch/native, or node:net as the fallback), TCP and Unix streams and listeners
 * with owned-buffer reads and pooled receives, timers with cancellation, copy/zeroCopy between
 * streams, and thread-per-core workers. Not for protocols: those live in @loch/http, @loch/thrift,
 * @loch/tls.
 */
export { type AcceptLoopOptions, type AcceptSource, acceptLoop } from './accept-loop.js';
export { type CopyOptions, copy, zeroCopy } from './copy.js';
export { DeadlineSweep, type DeadlineSweepOptions, NO_DEADLINE, type SweepMember } from './deadline-sweep.js';
export type {
  Driver,
  TcpConnectOptions,
  TcpListenOptions,
  UnixConnectOptions,
  UnixListenOptions,
} from './driver.js';
export { errnoName, formatAddress, RuntimeError } from './errors.js';
export type { BufferBudgetOptions, BufferStats } from './internal/buffer-budget.js';
// For stream kinds built on top of a runtime stream (a TLS wrapper): the convenience forms (recv,
// iteration, write, writeAll, writev) built once on the promise-free pair, to extend instead of
// keeping a copy...
export { StreamForms } from './internal/stream-forms.js';
// ...and the one per-thread queue that delivers recvTo/writeTo results at the next microtask
// checkpoint (for TLS and PROXY-protocol wrappers).
export { deliverRecv, deliverWritten } from './internal/target-delivery.js';
export { ipv4Text, ipv6Text } from './ip-text.js';
export type { RuntimeOption } from './net/runtime-stream.js';
export { heldBytes, RuntimeListener, RuntimeStream, sentBytes } from './net/runtime-stream.js';
export { type TcpBindOptions, TcpListener, TcpStream, type TcpStreamConnectOptions } from './net/tcp.js';
export { type UnixBindOptions, UnixListener, UnixStream, type UnixStreamConnectOptions } from './net/unix.js';
export {
  createRuntime,
  currentRuntime,
  type DriverChoice,
  type DriverSelection,
  Runtime,
  type RuntimeOptions,
  resolveDriverChoice,
} from './runtime.js';
export { type SpawnOptions, spawn } from './spawn.js';
export {
  type ByteStream,
  type ConnectionFacts,
  type DriverName,
  type IoOptions,
  type IoResult,
  isLayeredStream,
  type LayeredStream,
  plainFacts,
  type RecvChunk,
  type RecvTarget,
  type SocketAddress,
  type StreamListener,
  type WriteTarget,
} from './stream.js';
export { type SleepOptions, sleep, timeout } from './time.js';
export { type RingTlsEvents, type RingTlsPort, ringTlsPort } from './uring/tls-port.js';
export { type CommandHandler, onCommand, type WorkerContext, workerContext } from './workers/context.js';
export { createWorker } from './workers/exec-argv.js';
export {
  DEFAULT_RESTART_POLICY,
  DEFAULT_WATCHDOG,
  type RestartPolicy,
  type StartOptions,
  type StopResult,
  start,
  type WorkerCrash,
  type WorkerCrashLoop,
  type WorkerFault,
  type WorkerInfo,
  WorkerPool,
  type WorkerReply,
  type WorkerRestart,
  type WorkerStatus,
  type WorkerWatchdog,
} from './workers/start.js';
export { type ThreadEntry, threadEntry } from './workers/thread-entry.js';

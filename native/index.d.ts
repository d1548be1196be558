/**
 * Types of @loch/native: the io_uring binding with batched crossings, and the calls that need no
 * io_uring (loadPlatform: SO_REUSEPORT listeners for node:net, thread affinity). The record
 * format is documented in README.md. Users of the runtime never touch this directly; the drivers
 * and workers of @loch/uring-runtime do.
 */

/** A socket address as reported by getsockname/getpeername. */
export type NativeAddress =
  | { readonly family: 'ipv4' | 'ipv6'; readonly address: string; readonly port: number }
  | { readonly family: 'unix'; readonly path: string };

/** A failed synchronous syscall. */
export interface NativeFailure {
  readonly errno: number;
  readonly syscall: string;
}

/** What the kernel supports, from a throwaway ring. */
export interface NativeProbe {
  readonly ok: true;
  readonly setupFlags: number;
  readonly features: number;
  readonly nodrop: boolean;
  readonly ops: Readonly<
    Record<
      | 'accept'
      | 'connect'
      | 'recv'
      | 'send'
      | 'sendmsg'
      | 'splice'
      | 'shutdown'
      | 'close'
      | 'timeout'
      | 'linkTimeout'
      | 'asyncCancel'
      | 'socket'
      | 'sendZc'
      | 'uringCmd'
      | 'fixedFdInstall',
      boolean
    >
  >;
  /** Every op the driver needs is there (socket, sendZc, uringCmd, fixedFdInstall are optional). */
  readonly allRequiredOps: boolean;
  readonly multishotRecv: boolean;
  readonly bufRing: boolean;
  /** Init's `directFiles` can work: a sparse table registers and slots can be cancelled by (Linux 6.0). */
  readonly directFiles?: boolean;
}

/** Description of a live ring. */
export interface RingInfo {
  readonly setupFlags: number;
  readonly features: number;
  readonly sqEntries: number;
  readonly cqEntries: number;
  readonly singleIssuer: boolean;
  readonly coopTaskrun: boolean;
  readonly sqpoll: boolean;
  /** DEFER_TASKRUN with a registered eventfd (the LOCH_URING_DEFER_TASKRUN=1 experiment). */
  readonly deferTaskrun: boolean;
  /**
   * The ring's own fd is registered (io_uring_register_ring_fd: no fget of it per enter). Absent
   * in builds before it; false on kernels before 5.18.
   */
  readonly registeredRing?: boolean;
  readonly nodrop: boolean;
  /** The provided-buffer ring was registered (multishot recv available). */
  readonly bufRing: boolean;
  /** A plaintext pool was given (in-ring TLS available). */
  readonly plainPool: boolean;
  /**
   * Bytes of the set of descriptors this thread owns (closed when it goes away), at init: a
   * bitmap by descriptor number, so it does not grow per accepted connection.
   */
  readonly ownedFdBytes: number;
  /**
   * submit() takes a lone buffer as `bufs` itself (index 0), not only in an array. Absent in
   * builds before it: pass an array there.
   */
  readonly submitView?: boolean;
  /**
   * init was given `submitArgs`: submitShared(bufs) may be called. Absent in builds before it.
   */
  readonly submitArgs?: boolean;
  /** How many of the pool's buffers init put in the kernel's ring (absent in older builds: all). */
  readonly publishedBuffers?: number;
  /** The same for the plaintext pool, when one was given. */
  readonly plainPublished?: number;
  /**
   * Slots of the ring's direct descriptor table (init's `directFiles`; 0: none). Absent in
   * builds before it.
   */
  readonly directFiles?: number;
  /**
   * Why the table init asked for was refused (an errno, positive: EMFILE when it is larger than
   * the soft RLIMIT_NOFILE, EINVAL before 5.19, EOPNOTSUPP before 6.0: no CANCEL_FD by slot); the
   * ring then runs on descriptors only.
   */
  readonly directFilesError?: number;
  /**
   * The table works with IORING_OP_FIXED_FD_INSTALL (Linux 6.8): `directAddress` can read a
   * slot's addresses (what an accept does not bring: the local address on a wildcard listener).
   */
  readonly directInstall?: boolean;
}

/** Options of `init`. */
export interface RingInit {
  readonly entries: number;
  readonly sqpoll?: boolean;
  /** Memory of the provided-buffer ring: bufferCount * bufferSize bytes, pinned until destroy(). */
  readonly pool?: Uint8Array;
  /** Power of two, at most 32768. */
  readonly bufferCount?: number;
  readonly bufferSize?: number;
  /**
   * The caller keeps every buffer a record uses reachable until that op's final completion was
   * dispatched (and through destroy()), so native takes no napi reference per op. Default false:
   * native pins each buffer with a reference from submit to the final CQE.
   */
  readonly callerPins?: boolean;
  /**
   * In-ring TLS: memory for decrypted plaintext, plainCount * plainSize bytes, pinned until
   * destroy(). A TLS stream's recv completions hand out ids of these buffers (CQE flag 256);
   * PLAIN_RELEASE records give them back.
   */
  readonly plainPool?: Uint8Array;
  /** At most 65535. */
  readonly plainCount?: number;
  readonly plainSize?: number;
  /**
   * Called once in the loop iteration's check phase after each armFlush() (in a callback scope:
   * its promise jobs run at its end). Without it armFlush() returns -EBADF.
   */
  readonly onFlush?: () => void;
  /**
   * One word shared with the addon, read by the check phase an armFlush() started: 0, the armed
   * flush has nothing to do (the completion callback took it over): no call into JavaScript; 1,
   * call onFlush now; 2, leave it to the next loop iteration's check phase (the addon sets 1 and
   * keeps its handles started). Without it every armed check phase calls onFlush.
   */
  readonly flushWant?: Int32Array;
  /**
   * At least 3 words shared with the addon, the arguments of submitShared(): [n, drainInline
   * (0 | 1), what `bufs` is (SubmitBufs)], written before each call.
   */
  readonly submitArgs?: Int32Array;
  /** How many of the pool's buffers go in the kernel's ring at start (all unless given). */
  readonly publishedBuffers?: number;
  /** How many plaintext buffers are on the free list at start (all unless given). */
  readonly plainPublished?: number;
  /**
   * Slots of a direct (registered) descriptor table, registered sparse (0 or absent: none): an
   * ACCEPT_DIRECT record accepts into it (the CQE's res is the slot), a record with
   * IOSQE_FIXED_FILE (256) in its op word names a slot in `fd` (CLOSE then closes the slot). The
   * kernel refuses a table larger than the soft RLIMIT_NOFILE (ringInfo.directFilesError); its
   * sockets are not in the fd table. native/README.md, "Direct descriptors".
   */
  readonly directFiles?: number;
}

/** The addon. One ring per JS thread (napi_env). */
export interface NativeBinding {
  probe(): NativeProbe | { readonly ok: false; readonly errno: number; readonly reason: string };
  /**
   * Creates this thread's ring. `sq` holds submission records (8 int32 each), `cq` receives
   * completions (3 int32 each: slot, res, flags); `onComplete(n)` is called once per drain.
   * Throws (with `errno`) when the ring cannot be created.
   */
  init(sq: Int32Array, cq: Int32Array, onComplete: (count: number) => void, options: RingInit): RingInfo;
  /**
   * Submits the first `n` records of `sq`; `bufs` holds the buffers the records index (a lone
   * buffer may be passed as itself where ringInfo.submitView says so: index 0). With
   * `drainInline`, completions already available are written to `cq` and their count returned.
   * Negative: -errno (no ring).
   */
  submit(n: number, bufs: Uint8Array | readonly Uint8Array[] | undefined, drainInline: boolean): number;
  /**
   * submit() with n, drainInline and what `bufs` is read from init's `submitArgs` (no napi
   * argument reads: the wakeup turn's flush). A SubmitBufs that does not match `bufs` makes the
   * records using a buffer complete with -EINVAL. -EINVAL when init got no submitArgs; absent in
   * builds before it (see ringInfo.submitArgs).
   */
  submitShared?(bufs: Uint8Array | readonly Uint8Array[] | undefined): number;
  /**
   * Ends every socket this thread's ring owns now (shutdown(2) both ways; the descriptors stay
   * open until the ring is destroyed): for a dying worker, so its clients get their FIN at once
   * and its listeners leave their SO_REUSEPORT groups at once. destroy() does it first too.
   * Returns how many sockets it ended.
   */
  shutdownOwned(): number;
  /** Cancels in-flight ops, unpins buffers and closes the ring. Idempotent. */
  destroy(): void;
  /**
   * A listening TCP socket for the ring. TCP_NODELAY is set on it, and the sockets it accepts
   * inherit it (Linux), so an accept needs no setsockopt of its own.
   */
  listenTcp(
    host: string,
    port: number,
    backlog: number,
    reusePort: boolean,
    ipv6Only: boolean,
  ): number | NativeFailure;
  /**
   * Like listenTcp, but the descriptor is the caller's, not this environment's (teardown does not
   * close it): for `net.Server.listen({ fd })`, after which libuv owns it. See NativePlatform.
   */
  openTcpListener(
    host: string,
    port: number,
    backlog: number,
    reusePort: boolean,
    ipv6Only: boolean,
  ): number | NativeFailure;
  /** See NativePlatform.setThreadAffinity. */
  setThreadAffinity(cpus: readonly number[]): number;
  /** See NativePlatform.threadAffinity. */
  threadAffinity(): number[] | number;
  listenUnix(path: string, backlog: number): number | NativeFailure;
  /** 4, 6, or 0 for a Unix socket. */
  socket(family: 4 | 6 | 0): number | NativeFailure;
  /** sockaddr bytes for an IP literal, or null when `host` is not one. */
  encodeIp(host: string, port: number): Uint8Array | null;
  encodeUnix(path: string): Uint8Array | null;
  address(fd: number, peer: boolean): NativeAddress | NativeFailure;
  /**
   * What address() makes of a sockaddr's bytes (encodeIp's, a direct accept's): the text by
   * inet_ntop. null when the buffer is shorter than its family's sockaddr, or of another family.
   */
  describeSockaddr(bytes: Uint8Array): NativeAddress | null;
  /**
   * setsockopt(fd, level, optname, &value) with an int value: 0 or -errno. The level and option
   * numbers are Linux's (IPPROTO_TCP 6 / TCP_NODELAY 1, SOL_SOCKET 1 / SO_RCVLOWAT 18, ...).
   */
  setSockOpt(fd: number, level: number, optname: number, value: number): number;
  /** TCP_NODELAY as the kernel has it: 1, 0, or -errno. */
  noDelay(fd: number): number;
  /**
   * The address of the socket in slot `slot` of this thread's ring's direct table (its peer's,
   * or its own): a real descriptor for a moment (IORING_OP_FIXED_FD_INSTALL, Linux 6.8), then
   * getpeername/getsockname and close. For what an accept direct did not bring along.
   */
  directAddress(slot: number, peer: boolean): NativeAddress | NativeFailure;
  /** A pipe pair, both ends O_NONBLOCK; `sizeBytes` > 0 asks F_SETPIPE_SZ (best effort). */
  pipe(sizeBytes?: number): [number, number] | NativeFailure;
  /**
   * One splice(2) on this thread with SPLICE_F_NONBLOCK | SPLICE_F_MOVE: bytes moved, 0 at end of
   * stream, or -errno (-EAGAIN when the source is empty or the destination full). For O_NONBLOCK
   * fds only (a blocking socket would block the thread).
   */
  spliceNow(fdIn: number, fdOut: number, len: number): number;
  /** Sets or clears O_NONBLOCK on `fd`; 0 or -errno. */
  setNonBlocking(fd: number, enabled: boolean): number;
  closeFd(fd: number): number;
  /**
   * Gives free memory back to the OS: V8's low-memory GC (Isolate::LowMemoryNotification: full
   * GCs that shrink new space and unmap empty pages) on this thread's isolate, then malloc_trim(0).
   * Synchronous and slow (milliseconds to tens of them): call it when the thread is idle.
   */
  trimMemory(): { readonly mallocTrimmed: boolean };
  /**
   * After a wave of connections closed on a busy thread: starts V8's memory-reducing collection
   * incrementally (MemoryPressureNotification(kModerate); a no-op while a marking already runs).
   * It finishes on the thread's next allocations and tasks, compacting old space and giving
   * emptied pages back; the call takes a few milliseconds. True when this call started it; false
   * while a marking V8 began on its own still runs (the notification is a no-op then; the
   * wave-collect policy calls again) or when there is no isolate.
   */
  collectAfterWave(): boolean;
  /** This thread's mark-compacts and V8's pauses for them (a GC hook in memory.cc). Absent from builds before it. */
  gcPauses?(): GcPauses;
  /** How many times submit() ran on this thread; changes while the ring is busy. */
  submitCount(): number;
  /**
   * Has init's `onFlush` called in this loop iteration's check phase (the next iteration's when
   * the check phase is running or over), once however many times it is armed before; while
   * armed, the loop neither blocks in its poll phase nor exits. 0, or -EBADF (no ring, no
   * onFlush). Absent from builds before it.
   */
  armFlush?(): number;
  /**
   * Reports `error` as node reports an exception that reaches a callback's top (napi_fatal_exception:
   * the 'uncaughtException' handlers, else this thread's environment ends), at once, clearing the
   * async id stack as node does. Absent from builds before it.
   */
  reportUncaught?(error: unknown): void;
  /**
   * In-ring TLS: the ring carries `session` (a TlsSession of `loadTls()`'s engine, which is this
   * module's) on the stream `fd` until the fd is closed through the ring. Returns the conn id
   * (records of the stream carry it + 1), or -errno: -ENOTSUP without a plaintext pool, -EBUSY
   * when the fd already carries one, -EINVAL for another object, -EPROTO when the session failed
   * to start (its `error()` says why). A client's first flight goes out with the next flush.
   */
  tlsAttach(fd: number, session: NativeTlsSession): number;
  /**
   * In-ring TLS: from now on the ring keeps, in `counts` (a Float64Array of 1024 entries), the
   * ciphertext bytes the kernel took so far (short sends included) from each conn (tlsAttach's
   * id) in [page * 1024, (page + 1) * 1024), entry `id % 1024`: set to 0 when an id is attached
   * (ids are reused), raised at each send completion. A stream's write progress
   * (ByteStream.sentBytes) is then read from memory, with no call per read. Called once per page
   * per ring (the ring pins `counts` until destroy()). 0, or -EINVAL (no ring, a wrong array).
   */
  tlsSentPage?(page: number, counts: Float64Array): number;
  /** Crossings on this thread so far: [submit() calls, completion callbacks, TlsSession calls]. */
  crossings(): [number, number, number];
  /**
   * In-ring TLS output buffers on this thread: `grows`, times a conn's ciphertext output grew past
   * what an idle conn keeps (16 KiB); `shelfHits`, those served by a buffer an idle or closed conn
   * gave up (the thread's shelf, at most 2 MiB: no allocation, no page faults); `shelfBytes`, the
   * capacity on the shelf now (trimMemory() frees it).
   */
  tlsBufferStats(): { grows: number; shelfHits: number; shelfBytes: number };
  /** The TLS engine embedded in this module (loadTls() hands it out with its info slots). */
  readonly tls?: Omit<NativeTls, 'info'> & { bindInfo(info: Int32Array): void };
  /** AES-SIV (loadSiv() hands it out). */
  readonly siv?: NativeSiv;
  /** The HTTP/1.1 head scanner (loadHeadScan() hands it out). */
  readonly headScan?: NativeHeadScan;
  /** Thrift -> JSON text by an IDL plan (loadGatewayJson() hands it out). */
  readonly gatewayJson?: NativeGatewayJson;
  /** The directory watch (loadDirWatch() hands it out). */
  readonly dirWatch?: NativeDirWatch;
  readonly layout: { readonly sqStride: number; readonly cqStride: number };
}

/** Result of `loadNative()`. */
export type LoadResult =
  | { readonly binding: NativeBinding; readonly probe: NativeProbe }
  | { readonly error: string };

/** The addon's calls that need no io_uring; available whenever the .node file loads. */
export interface NativePlatform {
  /**
   * A listening TCP socket: SO_REUSEADDR, SO_REUSEPORT when `reusePort`, IPV6_V6ONLY on or off
   * for an IPv6 `host` (an IP literal: resolve names first), bound and listening with `backlog`.
   * Returns the descriptor (SOCK_CLOEXEC), which belongs to the caller: hand it to
   * `net.Server.listen({ fd })`, which then owns and closes it. For SO_REUSEPORT on Node versions
   * whose net.Server cannot set it. Failures: `{ errno, syscall }` (EINVAL/'bind' for a host that
   * is no IP literal, EADDRINUSE/'bind' for a taken port).
   */
  openTcpListener(
    host: string,
    port: number,
    backlog: number,
    reusePort: boolean,
    ipv6Only: boolean,
  ): number | NativeFailure;
  /**
   * Pins the calling OS thread (the worker_thread that calls it; no thread id needed) to exactly
   * `cpus` with sched_setaffinity. 0, or -errno: -EINVAL for an empty list, a CPU out of range
   * (negative, >= 65536) or none that is online and allowed; -EPERM when the policy forbids it.
   */
  setThreadAffinity(cpus: readonly number[]): number;
  /** The CPUs the calling thread may run on (sched_getaffinity), ascending; or -errno. */
  threadAffinity(): number[] | number;
}

/** Result of `loadPlatform()`. */
export type PlatformLoadResult = { readonly platform: NativePlatform } | { readonly error: string };

/** Loads the addon once per thread and probes io_uring; never throws. */
export function loadNative(): LoadResult;

/**
 * The calls of NativePlatform when the .node file loads, whether or not the kernel allows
 * io_uring; otherwise `{ error }` saying why. Never throws; cached per thread.
 */
export function loadPlatform(): PlatformLoadResult;

/**
 * The addon's trimMemory when the .node file loads (even when the kernel refuses io_uring, so the
 * legacy driver can use it); undefined when it does not.
 */
export function memoryTrimmer(): (() => { readonly mallocTrimmed: boolean }) | undefined;

/**
 * The addon's collectAfterWave when the .node file loads (even when the kernel refuses io_uring);
 * undefined when it does not.
 */
export function waveCollector(): (() => boolean) | undefined;

/** This thread's mark-compacts since the addon loaded on it, and V8's pauses for them (ms). */
export interface GcPauses {
  readonly markCompacts: number;
  /** Their atomic pauses (V8's GC prologue to epilogue) in total; not the incremental steps before. */
  readonly pauseMs: number;
  /** The last one's (0 before the first). */
  readonly lastPauseMs: number;
  /** The final pause of the last collection collectAfterWave() started (0 before one finished). */
  readonly lastWavePauseMs: number;
}

/** The addon's gcPauses when the .node file loads and has it; undefined otherwise. */
export function gcPauseReader(): (() => GcPauses) | undefined;

/** Opcodes of the submission record format. */
export declare const Op: Readonly<{
  NOP: 0;
  ACCEPT_MULTI: 1;
  CONNECT: 2;
  RECV_MULTI: 3;
  RECV: 4;
  SEND: 5;
  WRITEV: 6;
  SPLICE: 7;
  SHUTDOWN: 8;
  CLOSE: 9;
  TIMEOUT: 10;
  CANCEL: 11;
  CANCEL_FD: 12;
  PROVIDE: 13;
  POLL: 14;
  TLS_CLOSE_NOTIFY: 15;
  PLAIN_RELEASE: 16;
  RECV_SELECT: 17;
  ACCEPT_DIRECT: 18;
  SETSOCKOPT: 20;
}>;

/** What submitShared's `bufs` is (submitArgs[2]): nothing, the lone buffer itself, an array. */
export declare const SubmitBufs: Readonly<{ NONE: 0; VIEW: 1; ARRAY: 2 }>;

/** Flags that `TlsSession.feed` (and `encrypt`, `failed` only) writes into `info[1]`. */
export interface TlsFlags {
  /** The handshake is complete (now or earlier). */
  readonly handshakeDone: number;
  /** The handshake completed during this call. */
  readonly handshakeJustDone: number;
  /** The peer's close_notify arrived: no more plaintext will come. */
  readonly peerClosed: number;
  /** The plaintext buffer filled up: call feed(null, buf) again for the rest. */
  readonly morePlaintext: number;
  /** A client received a new session (ticket): `session()` serializes it. */
  readonly newSession: number;
  /** The session failed: `error()` says why. */
  readonly failed: number;
}

/** Why a TLS session failed. `kind`: 1 protocol, 2 certificate, 3 alert from the peer, 4 plain HTTP, 5 misuse. */
export interface TlsSessionError {
  readonly kind: 1 | 2 | 3 | 4 | 5;
  /** OpenSSL's reasons (or the X509 verification error). */
  readonly message: string;
  /** The fatal alert involved (received or sent), or -1. */
  readonly alert: number;
  readonly alertFromPeer: boolean;
}

/** What a handshake settled. Empty strings when not negotiated. */
export interface TlsNegotiated {
  readonly alpnProtocol: string;
  readonly servername: string;
  /** 'TLSv1.2' or 'TLSv1.3'. */
  readonly version: string;
  readonly cipher: string;
  readonly sessionReused: boolean;
  /** The peer's certificate, DER. */
  readonly peerCertificate: Uint8Array | undefined;
}

/**
 * An SSL_CTX with Loch's policy (TLS 1.2..1.3, ECDHE + AEAD, no renegotiation, no compression).
 * Configuration calls return an error string instead of throwing; argument type errors throw.
 */
export interface NativeTlsContext {
  /** Server: a certificate (PEM chain, leaf first; PEM key) for exact or `*.` wildcard names. */
  addCertificate(
    chainPem: string,
    keyPem: string,
    names: readonly string[],
    isDefault: boolean,
  ): string | undefined;
  /** ALPN list in wire form: the server's preference order, or the client's offer. */
  setAlpn(wire: Uint8Array): string | undefined;
  /** Server: n * 80 bytes (16 name, 32 HMAC, 32 AES); the first encrypts, all decrypt. */
  setTicketKeys(keys: Uint8Array): string | undefined;
  /** Trusted CAs (PEM). The server also advertises their names when it asks for client certificates. */
  setCaPem(pem: string): string | undefined;
  /** A CA file, or OpenSSL's default paths for ''. */
  loadCaFile(path: string): string | undefined;
  /** Server: request / require a client certificate. Client: verify the server (`request`). */
  setVerify(request: boolean, require: boolean): void;
  /**
   * Server: TLS 1.3 connections handshaken from now on move to Loch's own record layer once the
   * handshake is done (native/src/tls13_record.h); off by default.
   */
  setOwnRecords(on: boolean): void;
  /** Connections moved to Loch's record layer, and TLS 1.3 ones that stayed on OpenSSL. */
  recordStats(): { loch: number; declined: number };
  /** Server: TLS 1.3 session tickets sent after a full handshake (default 1). */
  setNumTickets(n: number): void;
}

/** One TLS connection. Results of feed/encrypt land in `NativeTls.info`. */
export interface NativeTlsSession {
  /** Client: SNI (host names only) and, with `verifyHost`, the name the certificate must match. */
  setServername(name: string, verifyHost: boolean): boolean;
  /** Client: ALPN offer for this connection (wire form). */
  setAlpn(wire: Uint8Array): boolean;
  /** Client: resume this session (bytes from `session()`). False when they do not parse. */
  setSession(bytes: Uint8Array): boolean;
  /**
   * Feeds received ciphertext (or null to drive the handshake) and decrypts what it can into
   * `plaintext`. `info[0]`: plaintext bytes written; `info[1]`: TlsFlags. Returns the ciphertext to
   * send (handshake flights, alerts, tickets), or undefined. OpenSSL reads `ciphertext` in place:
   * while calls return `morePlaintext`, it is still being read (the addon keeps it alive; do not
   * modify it until a call returns without that flag).
   */
  feed(ciphertext: Uint8Array | null, plaintext: Uint8Array): Uint8Array | undefined;
  /** Encrypts one buffer or several (one record stream); `info[1]` is `failed` on failure. */
  encrypt(data: Uint8Array | readonly Uint8Array[]): Uint8Array | undefined;
  /** Queues close_notify and returns what to send. */
  shutdown(): Uint8Array | undefined;
  /** Ciphertext still waiting, or undefined. */
  takeOutput(): Uint8Array | undefined;
  error(): TlsSessionError | undefined;
  negotiated(): TlsNegotiated;
  /** Client: the latest session received, serialized for `setSession`. */
  session(): Uint8Array | undefined;
  /** Frees the SSL now (otherwise at garbage collection). Idempotent; later calls throw. */
  destroy(): void;
}

/** The TLS engine of this thread. */
export interface NativeTls {
  readonly TlsContext: new (
    server: boolean,
    minVersion: number,
    maxVersion: number,
    ciphers: string,
    ciphersuites: string,
  ) => NativeTlsContext;
  readonly TlsSession: new (context: NativeTlsContext) => NativeTlsSession;
  /** The slots feed() and encrypt() report in: [plaintext bytes, flags, -, -]. */
  readonly info: Int32Array;
  readonly flags: TlsFlags;
  /** The OpenSSL this process runs (the node binary's). */
  opensslVersion(): string;
  /** Calls into TlsSession objects from JavaScript on this thread (a crossing counter). */
  callCount(): number;
}

/** Result of `loadTls()`. */
export type TlsLoadResult = { readonly tls: NativeTls } | { readonly error: string };

/**
 * The TLS engine when loch_tls.node loads (whether or not the kernel allows io_uring); `{ error }`
 * saying why when it does not. Never throws; cached per thread.
 */
export function loadTls(): TlsLoadResult;

/**
 * AES-SIV (RFC 5297) through OpenSSL 3's EVP cipher in the node binary: deterministic
 * authenticated encryption. Synchronous. Keys are the RFC's double-length keys: 32 bytes
 * (AES-128-SIV), 48 (AES-192-SIV) or 64 (AES-256-SIV). Each `aad` element is one S2V component,
 * in order (for the nonce-based use, the nonce is the last one); neither an AAD component nor the
 * plaintext may be empty (OpenSSL's provider skips zero-length input, so it would not compute the
 * RFC's function; a RangeError says so).
 */
export interface NativeSiv {
  /**
   * A key set up once (contexts keyed for each direction, copied per call: about half a call's
   * native cost saved for field-sized inputs). seal/open take it in place of the key bytes.
   */
  key(key: Uint8Array): SivKey;
  /** Returns V (the 16-byte synthetic IV, the tag) followed by the ciphertext. Throws TypeError/RangeError on bad arguments. */
  seal(key: Uint8Array | SivKey, aad: readonly Uint8Array[], plaintext: Uint8Array): Uint8Array;
  /** The plaintext, or null when the tag does not verify (wrong key, wrong AAD, tampered or truncated bytes). */
  open(key: Uint8Array | SivKey, aad: readonly Uint8Array[], sealed: Uint8Array): Uint8Array | null;
}

/** An opaque AES-SIV key handle of `NativeSiv.key()`; its key material stays in native memory. */
export interface SivKey {
  readonly __sivKey: unique symbol;
}

/** Result of `loadSiv()`. */
export type SivLoadResult = { readonly siv: NativeSiv } | { readonly error: string };

/** AES-SIV when the .node file loads (whether or not the kernel allows io_uring); otherwise `{ error }`. Never throws; cached per thread. */
export function loadSiv(): SivLoadResult;

/**
 * The HTTP/1.1 head scanner @loch/http's decoder uses when the .node file loads: finds a head's
 * end, checks it by the decoder's rules and writes the offsets of its start line and field lines
 * into an Int32Array record (layout in src/head_scan.cc). Internal to @loch/http; the record
 * layout may change with it.
 */
export interface NativeHeadScan {
  /** Sets the known header names (lowercase, ids 1..n in order); false when the list is refused or differs from the one set before. */
  init(names: readonly string[]): boolean;
  /**
   * Binds a record (Int32Array, 28 + 5 words per field + the summary's `summaryWords` after the
   * last field, 8-byte aligned) and the slab heads are copied into; the binding keeps both alive.
   * Make a new one when the record changes.
   */
  bind(io: Int32Array, slab: Uint8Array): HeadScanBinding;
  /**
   * bind()'s arguments bound into a function: `fn(src)` is `scan(binding, src)` with no binding
   * argument to check per call, and `fn` is itself the binding setSlab() takes.
   */
  scanner(io: Int32Array, slab: Uint8Array): ((src: Uint8Array) => number) & HeadScanBinding;
  /** Moves a binding to another slab (4-aligned), letting go of the one it held. */
  setSlab(binding: HeadScanBinding, slab: Uint8Array): void;
  /**
   * Scans `src` as the bound record's input words say; returns 0 (fall back to the line scan),
   * 1 (ok), 2 (a rule broken) or 3 (ok, and the head and its field entries were copied into the
   * bound slab at io[7]).
   */
  scan(binding: HeadScanBinding, src: Uint8Array): number;
  /**
   * Words of the summary of the field lines the scanner writes after a head's entries (in the
   * record and the slab; @loch/http's internal/head-summary.ts): its layout mark. A decoder uses
   * no scanner whose mark is not the one it reads (an older build writes no summary).
   */
  readonly summaryWords: number;
}

/** An opaque binding of `NativeHeadScan.bind()`. */
export interface HeadScanBinding {
  readonly __headScanBinding: unique symbol;
}

/** Result of `loadHeadScan()`. */
export type HeadScanLoadResult = { readonly headScan: NativeHeadScan } | { readonly error: string };

/** The head scanner when the .node file loads (whether or not the kernel allows io_uring); otherwise `{ error }`. Never throws; cached per thread. */
export function loadHeadScan(): HeadScanLoadResult;

/**
 * Thrift <-> JSON text for @loch/gateway (src/gateway_json.cc): reads one Thrift value (binary or
 * compact) by a plan compiled once per IDL type and writes the JSON text @loch/gateway's
 * JavaScript emitters write, byte for byte, and writes a request body's JSON as the Thrift its
 * JSON.parse + compiled writer write. Input the JavaScript side refuses is refused (2) and the
 * caller runs the JavaScript path for its typed error. Internal to @loch/gateway; the
 * plan layout (packages/gateway/src/codec/native-json.ts) may change with it.
 */
export interface NativeGatewayJson {
  /** A compiled plan; throws RangeError on a malformed one. */
  compile(plan: Int32Array, text: Uint8Array): GatewayJsonPlan;
  /**
   * Reads the value of the plan's node at word offset `root` from `src` and writes its JSON text
   * into `out`. io in: [0] src pos, [1] src end, [2] protocol (0 binary, 1 compact), [3] reader
   * depth, [4] max depth (<= 256), [5] out pos; out on 0: [6] src pos after the value, [7] out
   * pos after the text. Returns 0 written, 1 `out` too small (nothing kept; grow it and call
   * again), 2 refused (malformed or truncated input: run the JavaScript path).
   */
  emit(plan: GatewayJsonPlan, root: number, src: Uint8Array, out: Uint8Array, io: Int32Array): 0 | 1 | 2;
  /**
   * Writes the JSON text `src[io[0], io[1])` (one object: a request body) as the Thrift fields and
   * stop of the args struct at word offset `root`, as JSON.parse plus @loch/gateway's compiled
   * writer write them, at `out[io[3]]`; io[2] protocol. Returns 0 written (io[4] the end in
   * `out`), 1 `out` too small, 2 refused (JSON.parse and the JavaScript writer decide).
   */
  encode(plan: GatewayJsonPlan, root: number, src: Uint8Array, out: Uint8Array, io: Int32Array): 0 | 1 | 2;
}

/** An opaque compiled plan of `NativeGatewayJson.compile()`. */
export interface GatewayJsonPlan {
  readonly __gatewayJsonPlan: unique symbol;
}

/** Result of `loadGatewayJson()`. */
export type GatewayJsonLoadResult = { readonly gatewayJson: NativeGatewayJson } | { readonly error: string };

/** The Thrift -> JSON converter when the .node file loads (whether or not the kernel allows io_uring); otherwise `{ error }`. Never throws; cached per thread. */
export function loadGatewayJson(): GatewayJsonLoadResult;

/**
 * What changed in a watched directory. 'written': a file opened for writing was closed (`cat >`,
 * cp over, an editor saving in place); 'attrib': chmod, chown, utimes, or the link count of a
 * file replaced by a rename; 'created', 'deleted', 'moved-from', 'moved-to': an entry (name: its
 * name in the directory); 'overflow': the kernel's queue overflowed, any entry may have changed
 * (name null); 'gone': the directory itself was removed, renamed or unmounted (name null), the
 * watch's last event.
 */
export type DirWatchEvent =
  | 'written'
  | 'attrib'
  | 'created'
  | 'deleted'
  | 'moved-from'
  | 'moved-to'
  | 'overflow'
  | 'gone';

/** An open directory watch. */
export interface NativeDirWatchHandle {
  /** Stops the watch: no event is delivered after it. Idempotent. */
  close(): void;
}

/**
 * Directory watch on inotify without IN_MODIFY: it hears a directory's entries change (created,
 * deleted, renamed, closed after writing, attributes), not every write to a file in it (an
 * access log appended to beside the config does not wake the thread). Events are read on the
 * calling thread's loop; the watch never keeps the process alive, and ends with the thread.
 */
export interface NativeDirWatch {
  /**
   * Watches the directory `dir` (not recursive); `onEvent` runs on this thread's loop, once per
   * event, in order. Failures: `{ errno, syscall }` (ENOENT, ENOTDIR, EACCES / 'inotify_add_watch';
   * ENOSPC / 'inotify_add_watch' past fs.inotify.max_user_watches; EMFILE / 'inotify_init1' past
   * fs.inotify.max_user_instances, at the thread's first open(): one inotify instance per thread).
   */
  open(
    dir: string,
    onEvent: (event: DirWatchEvent, name: string | null) => void,
  ): NativeDirWatchHandle | NativeFailure;
}

/** Result of `loadDirWatch()`. */
export type DirWatchLoadResult = { readonly dirWatch: NativeDirWatch } | { readonly error: string };

/**
 * The directory watch when the .node file loads (whether or not the kernel allows io_uring);
 * otherwise `{ error }` saying why. Never throws; cached per thread.
 */
export function loadDirWatch(): DirWatchLoadResult;

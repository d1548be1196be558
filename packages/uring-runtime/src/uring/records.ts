/**
 * The JS side of @loch/native's record format (native/README.md): opcodes, record strides and
 * CQE flag bits. One place so ring.ts and the ops agree with native/src/ring.h. Not for anything
 * that allocates or talks to the binding.
 */

/** int32 fields per submission record: op, fd, slot, gen, len, buf, aux, aux2. */
export const SQ_STRIDE = 8;
/** int32 fields per completion record: slot, res, flags. */
export const CQ_STRIDE = 3;

/** No operation (completes with 0). */
export const OP_NOP = 0;
/** Multishot accept on a listener: a new fd per CQE. */
export const OP_ACCEPT_MULTI = 1;
/** Connect to the sockaddr in `buf`; `aux` is a deadline in ms (linked timeout). */
export const OP_CONNECT = 2;
/** Multishot recv into the provided-buffer ring: buffer id in the CQE flags. */
export const OP_RECV_MULTI = 3;
/** Recv into the caller's buffer. */
export const OP_RECV = 4;
/** Send from a buffer (MSG_NOSIGNAL). */
export const OP_SEND = 5;
/** Gathered send (sendmsg) of `aux` buffers starting at buffer index `buf`. */
export const OP_WRITEV = 6;
/** Splice `len` bytes from `fd` to the fd in `aux`. */
export const OP_SPLICE = 7;
/** shutdown(2) with `aux` as `how`. */
export const OP_SHUTDOWN = 8;
/** close(2) on the ring. */
export const OP_CLOSE = 9;
/** A timer of `aux` ms; completes with -ETIME when it fires. */
export const OP_TIMEOUT = 10;
/** Cancels the op at slot `aux`, generation `aux2`; no completion of its own. */
export const OP_CANCEL = 11;
/** Cancels every op on `fd`; no completion of its own. */
export const OP_CANCEL_FD = 12;
/** Returns provided buffer `aux` to the kernel; no SQE, no completion. */
export const OP_PROVIDE = 13;

/** One-shot poll of `fd` for the mask in `aux` (POLLIN 1, POLLOUT 4); completes with revents. */
export const OP_POLL = 14;

/** In-ring TLS: sends close_notify on the stream's session (`aux2` = conn + 1); completes once sent. */
export const OP_TLS_CLOSE_NOTIFY = 15;
/**
 * In-ring TLS: returns plaintext buffer `aux` to the ring (`aux2` 1: its reader released it but it
 * stays off the ring's free list, the thread's cap being full); no SQE, no completion.
 */
export const OP_PLAIN_RELEASE = 16;
/** fd, len: one recv of at most len bytes into a provided buffer (a stream near its budget); aux as RECV_MULTI. */
export const OP_RECV_SELECT = 17;
/**
 * Accept into the ring's direct descriptor table (res: the slot). aux 0: one-shot, the peer's
 * sockaddr written into `buf` (len bytes); aux 1: multishot, no address.
 */
export const OP_ACCEPT_DIRECT = 18;
/** setsockopt on `fd` (a slot, with FIXED_FILE_OP): aux = level, aux2 = optname, len = the int value. */
export const OP_SETSOCKOPT = 20;
/** IOSQE_FIXED_FILE in a record's op word: its `fd` is a slot of the direct descriptor table. */
export const FIXED_FILE_OP = 1 << 8;

/** IORING_CQE_F_BUFFER: the upper 16 bits of flags carry the provided buffer's id. */
export const CQE_F_BUFFER = 1;
/** IORING_CQE_F_MORE: a multishot op stays armed; more CQEs follow for this slot. */
export const CQE_F_MORE = 2;
/**
 * IORING_CQE_F_SOCK_NONEMPTY: after this recv the socket still had bytes waiting (Linux 5.19+;
 * older kernels never set it).
 */
export const CQE_F_SOCK_NONEMPTY = 4;
/** Added by the ring on a TLS stream's recv: the buffer id is a plaintext buffer's. */
export const CQE_F_PLAIN = 256;
/** Added by the ring on a TLS stream's recv: `res` holds TLS state flags (TLS_* below). */
export const CQE_F_TLS_EVENT = 512;
/** TLS state flags of a CQE_F_TLS_EVENT completion (the engine's FeedFlags). */
export const TLS_HANDSHAKE_DONE = 2;
export const TLS_PEER_CLOSED = 4;
export const TLS_NEW_SESSION = 16;
export const TLS_FAILED = 32;

/** IORING_CQE_BUFFER_SHIFT. */
export const CQE_BUFFER_SHIFT = 16;

/** Most buffers one writev record may carry (IOV_MAX). */
export const MAX_IOV = 1024;

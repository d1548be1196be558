/**
 * The JS side of @loch/native's record format (native/README.md): opcodes, record strides and
 * CQE flag bits. One place so ring.ts and the ops agree with native/src/ring.h. Not for anything
 * that allocates or talks to the binding.
 */

/** int32 fields per submission record: op, fd, slot, gen, len, buf, aux, aux2. */
export const SQ_STRIDE = 8;
/** int32 fields per completion record: slot, res, flags. */
export const CQ_STRIDE = 3;

export const OP_NOP = 0;
export const OP_ACCEPT_MULTI = 1;
export const OP_CONNECT = 2;
export const OP_RECV_MULTI = 3;
export const OP_RECV = 4;
export const OP_SEND = 5;
export const OP_WRITEV = 6;
export const OP_SPLICE = 7;
export const OP_SHUTDOWN = 8;
export const OP_CLOSE = 9;
export const OP_TIMEOUT = 10;
export const OP_CANCEL = 11;
export const OP_CANCEL_FD = 12;
export const OP_PROVIDE = 13;

/** IORING_CQE_F_BUFFER: the upper 16 bits of flags carry the provided buffer's id. */
export const CQE_F_BUFFER = 1;
/** IORING_CQE_F_MORE: a multishot op stays armed; more CQEs follow for this slot. */
export const CQE_F_MORE = 2;
/** IORING_CQE_BUFFER_SHIFT. */
export const CQE_BUFFER_SHIFT = 16;

/** Most buffers one writev record may carry (IOV_MAX). */
export const MAX_IOV = 1024;

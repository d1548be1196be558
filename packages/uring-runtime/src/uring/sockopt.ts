/**
 * Socket option numbers (Linux's) for the int options the runtime sets: by descriptor through
 * the addon's setSockOpt(fd, level, optname, value), by direct slot through an OP_SETSOCKOPT
 * record. One table for both paths.
 */
export const SOL_SOCKET = 1;
export const SO_RCVLOWAT = 18;
export const IPPROTO_TCP = 6;
export const TCP_NODELAY = 1;

/**
 * Type tests: the runtime's streams and listeners satisfy the structural contracts the server
 * and client take, so no adapter is ever needed between @loch/uring-runtime and @loch/thrift.
 */
import type { ByteStream, StreamListener, TcpListener, TcpStream } from '@loch/uring-runtime';
import { expectTypeOf, test } from 'vitest';
import type { ThriftListener, ThriftServerStream, ThriftStream } from './stream.js';

test('runtime streams are ThriftStreams', () => {
  expectTypeOf<ByteStream>().toExtend<ThriftStream>();
  expectTypeOf<TcpStream>().toExtend<ThriftStream>();
});

test('runtime streams are ThriftServerStreams (recvTo/writeTo), and listeners give them', () => {
  expectTypeOf<ByteStream>().toExtend<ThriftServerStream>();
  expectTypeOf<TcpStream>().toExtend<ThriftServerStream>();
  expectTypeOf<StreamListener>().toExtend<ThriftListener<ThriftServerStream>>();
});

test('a ThriftStream without recvTo/writeTo is no ThriftServerStream', () => {
  expectTypeOf<ThriftStream>().not.toExtend<ThriftServerStream>();
});

test('runtime listeners are ThriftListeners', () => {
  expectTypeOf<StreamListener>().toExtend<ThriftListener>();
  expectTypeOf<TcpListener>().toExtend<ThriftListener<TcpStream>>();
});

test('a plain object without recv is not a ThriftStream', () => {
  expectTypeOf<{ writev(b: readonly Uint8Array[]): Promise<number> }>().not.toExtend<ThriftStream>();
});

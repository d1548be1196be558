/**
 * Type-level guarantees of the public API: owned buffers come back with their own type, the
 * listener classes yield their stream classes, and driver choices are a closed set.
 */
import { describe, expectTypeOf, it } from 'vitest';
import {
  type ByteStream,
  createRuntime,
  type DriverChoice,
  type IoResult,
  type RecvChunk,
  type RuntimeError,
  type TcpListener,
  TcpStream,
  type UnixListener,
  type UnixStream,
  type WorkerReply,
} from './index.js';

describe('public API types', () => {
  it('hands the lent buffer back with its own type', () => {
    expectTypeOf<ByteStream['read']>().toBeFunction();
    const stream = {} as TcpStream;
    const buffer = Buffer.alloc(1);
    const bytes = new Uint8Array(1);
    expectTypeOf(stream.read(buffer)).resolves.toEqualTypeOf<IoResult<typeof buffer>>();
    expectTypeOf(stream.write(bytes)).resolves.toEqualTypeOf<IoResult<typeof bytes>>();
    expectTypeOf(stream.writeAll(buffer)).resolves.toEqualTypeOf<typeof buffer>();
    expectTypeOf(stream.recv()).resolves.toEqualTypeOf<RecvChunk | null>();
  });

  it('listeners yield their own stream classes', () => {
    expectTypeOf(({} as TcpListener).accept()).resolves.toEqualTypeOf<TcpStream>();
    expectTypeOf(({} as UnixListener).accept()).resolves.toEqualTypeOf<UnixStream>();
    expectTypeOf(TcpStream.connect).parameter(0).toHaveProperty('host');
  });

  it('accepts only known driver choices', () => {
    expectTypeOf<DriverChoice>().toEqualTypeOf<'auto' | 'uring' | 'legacy'>();
    // @ts-expect-error 'epoll' is not a driver
    void createRuntime({ driver: 'epoll' });
  });

  it('broadcast replies are a discriminated union on ok', () => {
    const reply = {} as WorkerReply;
    if (reply.ok) expectTypeOf(reply.value).toEqualTypeOf<unknown>();
    else expectTypeOf(reply.error).toEqualTypeOf<RuntimeError>();
  });
});

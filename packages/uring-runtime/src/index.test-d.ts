/**
 * Type-level guarantees of the public API: owned buffers come back with their own type, the
 * listener classes yield their stream classes, and driver choices are a closed set.
 */
import { describe, expectTypeOf, it } from 'vitest';
import {
  acceptLoop,
  type ByteStream,
  type ConnectionFacts,
  createRuntime,
  DeadlineSweep,
  type DriverChoice,
  type IoResult,
  type RecvChunk,
  type RuntimeError,
  type SweepMember,
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

  it('streams carry read-only connection facts', () => {
    expectTypeOf<ByteStream['facts']>().toEqualTypeOf<ConnectionFacts>();
    expectTypeOf(({} as TcpStream).facts.alpnProtocol).toEqualTypeOf<string | null>();
    const facts = {} as ConnectionFacts;
    // @ts-expect-error facts are read-only
    facts.secure = true;
  });

  it('acceptLoop hands the callback the listener stream type', () => {
    void acceptLoop({} as TcpListener, (stream) => expectTypeOf(stream).toEqualTypeOf<TcpStream>());
    // @ts-expect-error the callback must take what the listener yields
    void acceptLoop({} as TcpListener, (_stream: Uint8Array) => {});
  });

  it('a DeadlineSweep only takes its own member type', () => {
    class Conn implements SweepMember {
      deadline = 0;
      onSweep(): boolean {
        return false;
      }
    }
    const sweep = new DeadlineSweep<Conn>();
    expectTypeOf(sweep.deadline(new Conn(), 10)).toEqualTypeOf<number>();
    // @ts-expect-error not a member of this sweep
    sweep.deadline({ onSweep: () => true }, 10);
  });
});

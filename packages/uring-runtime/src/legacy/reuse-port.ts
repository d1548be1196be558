/**
 * SO_REUSEPORT listeners for the legacy driver on Node versions whose net.Server cannot set it
 * (Node 20; `listen({ reusePort })` exists from Node 22.12 / 23.1 and is used there instead).
 * A short-lived python3 child creates the socket with SO_REUSEPORT, binds and listens, and hands
 * the descriptor back over Node's own IPC channel (SCM_RIGHTS, the protocol `child.send(msg,
 * server)` uses), so Node receives it as a listening net.Server. Each call yields a separate
 * socket in the same reuseport group: the kernel spreads connections across them, exactly as
 * on the io_uring driver. Not for plain listeners: those use net.Server.listen directly.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { Server } from 'node:net';
import { RuntimeError } from '../errors.js';
import type { SocketAddress } from '../stream.js';
import { errnoError } from './node-errors.js';

/** True when this Node's net.Server.listen accepts `reusePort` (22.12+ in 22.x, 23.1+). */
export const nodeHasReusePort: boolean = (() => {
  const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
  return major > 23 || (major === 23 && minor >= 1) || (major === 22 && minor >= 12);
})();

// Runs in the child: argv = host port backlog v6only. Sends one JSON line on fd 3 (Node's IPC
// channel): the socket as a NODE_HANDLE message, or {ok:false, errno}. Waits for Node's ACK.
const CHILD_SCRIPT = `
import json, socket, sys
host, port, backlog, v6only = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == '1'
ch = socket.socket(fileno=3)
try:
    info = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM, 0, socket.AI_PASSIVE)[0]
    s = socket.socket(info[0], socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    if info[0] == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1 if v6only else 0)
    s.bind(info[4])
    s.listen(backlog)
    msg = {'cmd': 'NODE_HANDLE', 'type': 'net.Server', 'msg': {'ok': True}}
    socket.send_fds(ch, [(json.dumps(msg) + '\\n').encode()], [s.fileno()])
    ch.settimeout(5)
    ch.recv(256)
except OSError as e:
    ch.send((json.dumps({'ok': False, 'errno': e.errno or 0, 'text': str(e)}) + '\\n').encode())
`;

function pythonPath(): string {
  return process.env.LOCH_PYTHON ?? (existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3');
}

/** Options of bindReusePort. */
export interface ReusePortBindOptions {
  readonly host: string;
  readonly port: number;
  readonly backlog: number;
  readonly ipv6Only: boolean;
  readonly address: SocketAddress;
}

/**
 * Creates a listening SO_REUSEPORT socket and returns it as a listening net.Server. Fails with
 * the bind's errno (EADDRINUSE when a non-reuseport socket holds the port), or
 * ERR_LOCH_REUSEPORT_UNSUPPORTED when python3 cannot be run.
 */
export function bindReusePort(options: ReusePortBindOptions): Promise<Server> {
  return new Promise<Server>((resolve, reject) => {
    const child = spawn(
      pythonPath(),
      [
        '-c',
        CHILD_SCRIPT,
        options.host,
        String(options.port),
        String(options.backlog),
        options.ipv6Only ? '1' : '0',
      ],
      { stdio: ['ignore', 'ignore', 'pipe', 'ipc'], serialization: 'json' },
    );
    let settled = false;
    let stderr = '';
    child.stderr?.setEncoding('utf8').on('data', (text: string) => {
      if (stderr.length < 4096) stderr += text;
    });
    const fail = (error: RuntimeError) => {
      if (settled) return;
      settled = true;
      child.kill();
      reject(error);
    };
    child.once('message', (message: unknown, handle: unknown) => {
      const reply = (typeof message === 'object' && message !== null ? message : {}) as {
        ok?: unknown;
        errno?: unknown;
      };
      if (reply.ok === true && handle instanceof Server) {
        settled = true;
        child.disconnect();
        resolve(handle);
        return;
      }
      if (handle instanceof Server) handle.close();
      const errno = typeof reply.errno === 'number' ? reply.errno : 0;
      fail(
        errno > 0
          ? RuntimeError.fromErrno(-errno, 'bind', options.address)
          : errnoError('EINVAL', 'bind', options.address),
      );
    });
    child.once('error', (error) =>
      fail(
        new RuntimeError('ERR_LOCH_REUSEPORT_UNSUPPORTED', 'bind', {
          address: options.address,
          cause: error,
          detail: `SO_REUSEPORT on Node ${process.versions.node} needs python3 (set LOCH_PYTHON) or Node >= 22.12`,
        }),
      ),
    );
    child.once('exit', (code) =>
      fail(
        new RuntimeError('ERR_LOCH_REUSEPORT_UNSUPPORTED', 'bind', {
          address: options.address,
          detail: `reuseport helper exited with ${code}: ${stderr.trim().slice(0, 500)}`,
        }),
      ),
    );
  });
}

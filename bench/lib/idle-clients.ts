/**
 * A client process that holds many idle HTTP/1.1 keep-alive connections open on a proxy, for
 * measuring the proxy's memory per idle connection. Each connection sends one GET, reads the
 * whole response (so the proxy has served it and is now waiting for the next request), then
 * stays open and silent. Prints `ready <open> failed <n>` once all are idle and keeps them until
 * SIGTERM or stdin closes, then prints `closed <k>` (connections that closed while held: the
 * proxy's keep-alive timeout or an error, so the reading held fewer than it said) and exits. Not a
 * load generator (see wrk for that).
 *
 * Usage: node --import tsx idle-clients.ts <port> <count> <path> [concurrency] [source,source,...]
 * The sources (local addresses, taken in turn) default to 127.0.0.1, or past 20,000 connections
 * to 127.0.0.1, .2, ... (below). bench/idle-memory/many-idle.ts runs several of these processes,
 * each from its own address, where one process may hold fewer than 20,000 descriptors.
 */
import { execFileSync } from 'node:child_process';
import { connect, type Socket } from 'node:net';

const port = Number(process.argv[2]);
const count = Number(process.argv[3] ?? 10_000);
const path = process.argv[4] ?? '/';
const concurrency = Number(process.argv[5] ?? 200);
const sourceArg = process.argv[6];

/**
 * Connections per source address: one address has about 28,000 ephemeral ports (32768-60999)
 * toward one port, so past this many the connections take turns over 127.0.0.1, .2, ... (every
 * 127/8 address is loopback) and 50,000 fit without touching ip_local_port_range.
 */
const PER_SOURCE_ADDRESS = 20_000;
const sources =
  sourceArg !== undefined && sourceArg !== ''
    ? sourceArg.split(',')
    : count > PER_SOURCE_ADDRESS
      ? Array.from({ length: Math.ceil(count / PER_SOURCE_ADDRESS) }, (_, i) => `127.0.0.${i + 1}`)
      : undefined;
let opened = 0;
let ready = false;
let closedWhileHeld = 0;

// Past the usual descriptor limit (20,000 here), raise this process's own (prlimit works as root).
if (count > 15_000) {
  const nofile = count + 1_000;
  try {
    execFileSync('prlimit', ['--pid', String(process.pid), `--nofile=${nofile}:${nofile}`]);
  } catch (err) {
    process.stderr.write(`idle-clients: could not raise the descriptor limit to ${nofile}: ${String(err)}\n`);
  }
}

const request = Buffer.from(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
const sockets: Socket[] = [];
const HEADER_END = Buffer.from('\r\n\r\n');

/** Opens one connection and resolves after its first response arrived in full. */
function openOne(): Promise<void> {
  return new Promise((resolve, reject) => {
    const localAddress = sources?.[opened++ % sources.length];
    const socket = connect({ host: '127.0.0.1', port, ...(localAddress ? { localAddress } : {}) }, () =>
      socket.write(request),
    );
    let received = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      const end = received.indexOf(HEADER_END);
      if (end < 0) return;
      const length = /content-length:\s*(\d+)/i.exec(received.subarray(0, end).toString('latin1'));
      if (length && received.length < end + 4 + Number(length[1])) return;
      socket.off('data', onData);
      received = Buffer.alloc(0);
      sockets.push(socket);
      socket.once('close', () => {
        if (ready) closedWhileHeld++;
      });
      resolve();
    };
    socket.on('data', onData);
    socket.once('error', reject);
    socket.once('close', () => reject(new Error('closed before the response')));
  });
}

async function main(): Promise<void> {
  let next = 0;
  let failed = 0;
  const lanes = Array.from({ length: Math.min(concurrency, count) }, async () => {
    while (next < count) {
      next++;
      try {
        await openOne();
      } catch {
        failed++;
      }
    }
  });
  await Promise.all(lanes);
  for (const s of sockets) s.on('error', () => {});
  ready = true;
  process.stdout.write(`ready ${sockets.length} failed ${failed}\n`);
  const stop = () => {
    process.stdout.write(`closed ${closedWhileHeld}\n`, () => {
      for (const s of sockets) s.destroy();
      process.exit(0);
    });
  };
  process.on('SIGTERM', stop);
  process.stdin.on('end', stop);
  process.stdin.resume();
}

void main();

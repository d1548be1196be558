/**
 * Where a process's resident memory lives, read from outside (/proc/PID/smaps) without disturbing
 * it (issue 18): its mappings grouped into the node binary, native addons (*.node), other shared
 * objects, the brk heap, glibc thread arenas (arenas.ts), V8-sized anonymous mappings (V8's heap
 * pages: new, old, code and large-object space of every isolate) and the rest. A difference of two
 * readings says which allocator grew; what inside V8 grew is the worker's SIGUSR2 stats' business
 * (busy.ts, baseline.ts). Kernel socket buffers are not RSS and do not appear here.
 */
import { readFileSync } from 'node:fs';
import { processTree } from '../lib/measure.js';
import { arenaReading, mappings } from './arenas.js';

/** Resident KiB by part of the process (see the header). */
export interface MapParts {
  nodeBinary: number;
  addons: number;
  otherLibs: number;
  brkHeap: number;
  threadArenas: number;
  /** Anonymous mappings whose size is a multiple of 256 KiB (V8's page size) and not an arena. */
  anonV8Sized: number;
  anonOther: number;
  /** Anonymous executable mappings (V8's code space and the like). */
  anonExec: number;
  threads: number;
}

/**
 * The resident KiB by part of `pid` and its descendants (an nginx master and its worker), now; a
 * process gone meanwhile counts nothing.
 */
export function mapParts(pid: number): MapParts {
  const sum = emptyParts();
  for (const p of processTree(pid)) {
    let one: MapParts;
    try {
      one = processParts(p);
    } catch {
      continue;
    }
    for (const k of [...MAP_PART_KEYS, 'threads'] as const) sum[k] += one[k];
  }
  return sum;
}

function emptyParts(): MapParts {
  return {
    nodeBinary: 0,
    addons: 0,
    otherLibs: 0,
    brkHeap: 0,
    threadArenas: 0,
    anonV8Sized: 0,
    anonOther: 0,
    anonExec: 0,
    threads: 0,
  };
}

/** One process's resident KiB by part. */
function processParts(pid: number): MapParts {
  const arenas = arenaReading(pid);
  const arenaStarts = new Set(Object.keys(arenas.arenas));
  const p: MapParts = {
    nodeBinary: 0,
    addons: 0,
    otherLibs: 0,
    brkHeap: arenas.brkHeapKiB,
    threadArenas: arenas.threadArenasKiB,
    anonV8Sized: 0,
    anonOther: 0,
    anonExec: 0,
    threads: Number(/Threads:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0),
  };
  for (const m of mappings(pid)) {
    if (m.path === '[heap]' || arenaStarts.has(`0x${m.start.toString(16)}`)) continue;
    if (m.path === process.execPath || m.path.endsWith('/node')) p.nodeBinary += m.rssKiB;
    else if (m.path.endsWith('.node')) p.addons += m.rssKiB;
    else if (m.path.startsWith('/')) p.otherLibs += m.rssKiB;
    else if (m.path === '' && m.perms.includes('x')) p.anonExec += m.rssKiB;
    else if (m.path === '' && (m.end - m.start) % (256n * 1024n) === 0n) p.anonV8Sized += m.rssKiB;
    else p.anonOther += m.rssKiB;
  }
  return p;
}

/** The parts that sum to RSS (all but `threads`), in the order a table prints them. */
export const MAP_PART_KEYS = [
  'anonV8Sized',
  'threadArenas',
  'brkHeap',
  'anonOther',
  'anonExec',
  'nodeBinary',
  'addons',
  'otherLibs',
] as const satisfies readonly (keyof MapParts)[];

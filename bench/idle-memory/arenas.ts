/**
 * Resident bytes of a process's glibc thread arenas, read from outside (/proc/PID/smaps): where a
 * busy loch worker's native allocations and the free lists glibc keeps after them live (issue
 * 18). A thread arena's heap is a 64 MiB-aligned 64 MiB reservation (HEAP_MAX_SIZE on 64-bit):
 * its used part an anonymous rw-p mapping at the aligned start, the rest a ---p mapping up to the
 * 64 MiB boundary. The main arena (brk heap, "[heap]") is given apart. Not malloc_info: that
 * needs the process stopped under a debugger, and this reading must not disturb a busy run.
 *
 * Usage: `node --import tsx idle-memory/arenas.ts PID` prints the reading as JSON.
 */
import { readFileSync } from 'node:fs';

const HEAP_MAX = 64n * 1024n * 1024n;

/** One reading: the thread arenas' resident KiB (total and per arena, by start address) and the brk heap's. */
export interface ArenaReading {
  threadArenasKiB: number;
  arenas: Record<string, number>;
  brkHeapKiB: number;
}

/** One mapping of /proc/PID/smaps: its range, permissions, path (empty when anonymous) and resident KiB. */
export interface Mapping {
  start: bigint;
  end: bigint;
  perms: string;
  path: string;
  rssKiB: number;
}

/** `pid`'s mappings from /proc/PID/smaps, in address order. */
export function mappings(pid: number): Mapping[] {
  const out: Mapping[] = [];
  let current: Mapping | undefined;
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) (\S{4}) \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) {
      current = {
        start: BigInt(`0x${head[1]}`),
        end: BigInt(`0x${head[2]}`),
        perms: head[3]!,
        path: head[4]!.trim(),
        rssKiB: 0,
      };
      out.push(current);
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss && current) current.rssKiB = Number(rss[1]);
  }
  return out;
}

/** Reads `pid`'s arenas now. */
export function arenaReading(pid: number): ArenaReading {
  const maps = mappings(pid);
  const arenas: Record<string, number> = {};
  let threadArenasKiB = 0;
  let brkHeapKiB = 0;
  for (let i = 0; i < maps.length; i++) {
    const m = maps[i]!;
    if (m.path === '[heap]') {
      brkHeapKiB += m.rssKiB;
      continue;
    }
    if (m.path !== '' || m.perms !== 'rw-p' || m.start % HEAP_MAX !== 0n) continue;
    const next = maps[i + 1];
    const whole = m.end - m.start === HEAP_MAX;
    const reserved =
      next !== undefined && next.start === m.end && next.perms === '---p' && next.end === m.start + HEAP_MAX;
    if (!whole && !reserved) continue;
    arenas[`0x${m.start.toString(16)}`] = m.rssKiB;
    threadArenasKiB += m.rssKiB;
  }
  return { threadArenasKiB, arenas, brkHeapKiB };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const pid = Number(process.argv[2]);
  if (!Number.isInteger(pid) || pid <= 0) {
    console.error('usage: arenas.ts PID');
    process.exit(2);
  }
  console.log(JSON.stringify(arenaReading(pid)));
}

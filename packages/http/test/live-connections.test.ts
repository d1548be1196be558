/**
 * LiveConnections: HttpServer's open connections in index slots (each connection knows its
 * slot). What the server relies on: O(1) add and remove with slots reused, a connection that
 * changed protocol keeping its slot, an index walk across removals and additions that meets every
 * connection present throughout once, and compaction that keeps each `liveSlot` true.
 */
import { describe, expect, it } from 'vitest';
import { LiveConnections } from '../src/live-connections.js';

class Conn {
  liveSlot = -1;
  constructor(readonly name: string) {}
}

/** Every held connection is where its liveSlot says. */
function consistent(live: LiveConnections<Conn>): boolean {
  for (const c of live) if (live.at(c.liveSlot) !== c) return false;
  return true;
}

describe('LiveConnections', () => {
  it('reuses a removed connection’s slot, and a second removal changes nothing', () => {
    const live = new LiveConnections<Conn>();
    const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((n) => new Conn(n)) as [Conn, Conn, Conn, Conn];
    live.add(a);
    live.add(b);
    live.add(c);
    expect([a.liveSlot, b.liveSlot, c.liveSlot]).toEqual([0, 1, 2]);
    live.delete(b);
    live.delete(b);
    expect(b.liveSlot).toBe(-1);
    expect(live.size).toBe(2);
    expect(live.at(1)).toBeNull();
    live.add(d);
    expect(d.liveSlot).toBe(1);
    expect(live.length).toBe(3);
    expect([...live].map((x) => x.name)).toEqual(['a', 'd', 'c']);
    expect(consistent(live)).toBe(true);
  });

  it('reuses freed slots last freed first, then grows', () => {
    const live = new LiveConnections<Conn>();
    const cs = Array.from({ length: 6 }, (_, i) => new Conn(String(i)));
    for (const c of cs) live.add(c);
    live.delete(cs[1]!);
    live.delete(cs[4]!);
    live.delete(cs[2]!);
    const added = Array.from({ length: 4 }, (_, i) => new Conn(`n${i}`));
    for (const c of added) live.add(c);
    expect(added.map((c) => c.liveSlot)).toEqual([2, 4, 1, 6]);
    expect(live.size).toBe(7);
    expect(consistent(live)).toBe(true);
  });

  it('empties to no slots when the last connection goes', () => {
    const live = new LiveConnections<Conn>();
    const a = new Conn('a');
    const b = new Conn('b');
    live.add(a);
    live.add(b);
    live.delete(a);
    live.delete(b);
    expect([live.size, live.length]).toEqual([0, 0]);
    live.add(a);
    expect(a.liveSlot).toBe(0);
  });

  it('replace: the new connection takes the old one’s slot (or a new one when the old is gone)', () => {
    const live = new LiveConnections<Conn>();
    const h1 = new Conn('h1');
    const other = new Conn('other');
    live.add(other);
    live.add(h1);
    const h2 = new Conn('h2');
    live.replace(h1, h2);
    expect([h1.liveSlot, h2.liveSlot, live.size]).toEqual([-1, 1, 2]);
    expect(live.at(1)).toBe(h2);
    const late = new Conn('late');
    live.replace(h1, late);
    expect([late.liveSlot, live.size]).toEqual([2, 3]);
    expect(consistent(live)).toBe(true);
  });

  it('compacts only when at most a quarter of the slots hold a connection, keeping order and slots true', () => {
    const live = new LiveConnections<Conn>();
    const cs = Array.from({ length: 100 }, (_, i) => new Conn(String(i)));
    for (const c of cs) live.add(c);
    for (let i = 0; i < 74; i++) live.delete(cs[i]!);
    live.compact();
    expect(live.length).toBe(100);
    live.delete(cs[74]!);
    live.compact();
    expect([live.size, live.length]).toEqual([25, 25]);
    expect([...live].map((c) => c.name)).toEqual(cs.slice(75).map((c) => c.name));
    expect(consistent(live)).toBe(true);
    // The free list is gone with the holes: the next add takes the end.
    const next = new Conn('next');
    live.add(next);
    expect(next.liveSlot).toBe(25);
  });

  it('an index walk across removals and additions meets each connection present throughout once', () => {
    const live = new LiveConnections<Conn>();
    const cs = Array.from({ length: 50 }, (_, i) => new Conn(String(i)));
    for (const c of cs) live.add(c);
    const met = new Map<Conn, number>();
    let added = 0;
    // Walk in passes of 7 slots; between passes, remove two (one behind, one ahead) and add three.
    for (let i = 0, step = 0; i < live.length; step++) {
      for (const end = i + 7; i < end && i < live.length; i++) {
        const c = live.at(i);
        if (c !== null) met.set(c, (met.get(c) ?? 0) + 1);
      }
      if (step >= 20) continue;
      live.delete(cs[step * 2]!);
      live.delete(cs[49 - step]!);
      for (let k = 0; k < 3; k++) live.add(new Conn(`new${added++}`));
    }
    const stayed = cs.filter((c) => c.liveSlot !== -1);
    expect(stayed.length).toBeGreaterThan(0);
    for (const c of stayed) expect(met.get(c)).toBe(1);
    expect([...met.values()].every((n) => n === 1)).toBe(true);
    expect(consistent(live)).toBe(true);
  });
});

/**
 * The request bodies of the gateway benchmark: `{"item": ...}` for Bench.echo, small (~110 B)
 * and large (~10 KiB, 80 entries). Deterministic.
 */
export function itemJson(entries: number): string {
  const item: Record<string, unknown> = {
    id: '9007199254740993',
    title: 'benchmark item',
    count: 42,
  };
  if (entries > 0) {
    item.entries = Array.from({ length: entries }, (_, i) => ({
      id: String(1000 + i),
      name: `entry number ${i} of the benchmark`,
      score: i / 7,
      active: i % 2 === 0,
      tags: ['alpha', 'beta', `t${i}`],
    }));
  }
  // Keys in IDL order, so that the two encoders of convert.ts write the same bytes.
  item.attrs = { colour: 'blue', size: 'L' };
  return JSON.stringify({ item });
}

/** The two sizes measured. */
export const PAYLOADS: readonly { name: string; body: string }[] = [
  { name: 'small', body: itemJson(0) },
  { name: '10 KiB', body: itemJson(80) },
];

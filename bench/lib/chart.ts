/**
 * A small, dependency-free SVG chart writer for benchmark results: one series per peer over a
 * categorical x axis (body sizes, worker counts), drawn as lines with markers or as grouped
 * bars, with y ticks at round numbers, axis labels and a legend — the kind of chart Monolake's
 * README shows. Not a general plotting library: no log axes, no stacking, no interactivity.
 */

/** One peer's values, one per category; `null` where the peer has no point (left out). */
export interface ChartSeries {
  readonly name: string;
  readonly values: readonly (number | null)[];
}

/** What a chart shows. */
export interface ChartSpec {
  readonly title: string;
  /** Label under the x axis, e.g. "response body". */
  readonly xLabel: string;
  /** Label beside the y axis, e.g. "requests/s". */
  readonly yLabel: string;
  /** x categories in display order, e.g. ["128 B", "3,269 B"]. */
  readonly categories: readonly string[];
  readonly series: readonly ChartSeries[];
  /** Total size in pixels. Default 760 x 420. */
  readonly width?: number;
  readonly height?: number;
}

/** Colors per series, in order (colorblind-safe Okabe-Ito palette). */
const PALETTE = ['#0072B2', '#E69F00', '#009E73', '#D55E00', '#CC79A7', '#56B4E9', '#F0E442', '#000000'];

const MARGIN = { left: 78, right: 20, top: 44, bottom: 92 } as const;

interface Frame {
  readonly width: number;
  readonly height: number;
  readonly plotW: number;
  readonly plotH: number;
  readonly yMax: number;
  readonly ticks: readonly number[];
}

/** Escapes text for SVG content and attributes. */
function esc(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** Round tick values from 0 to at least `max`: steps of 1, 2, 2.5 or 5 times a power of ten. */
export function niceTicks(max: number, target = 5): number[] {
  if (!(max > 0) || !Number.isFinite(max)) return [0, 1];
  const raw = max / target;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = ([1, 2, 2.5, 5, 10].find((m) => m * power >= raw) ?? 10) * power;
  const ticks: number[] = [];
  for (let v = 0; v < max + step * 0.999; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

/** Short tick label: 120000 -> "120k", 2.5 -> "2.5". */
export function formatTick(v: number): string {
  if (v >= 1e6) return `${Number((v / 1e6).toPrecision(3))}M`;
  if (v >= 1e3) return `${Number((v / 1e3).toPrecision(3))}k`;
  return `${Number(v.toPrecision(3))}`;
}

function frame(spec: ChartSpec): Frame {
  const width = spec.width ?? 760;
  const height = spec.height ?? 420;
  let max = 0;
  for (const s of spec.series)
    for (const v of s.values) if (v !== null && Number.isFinite(v) && v > max) max = v;
  const ticks = niceTicks(max);
  return {
    width,
    height,
    plotW: width - MARGIN.left - MARGIN.right,
    plotH: height - MARGIN.top - MARGIN.bottom,
    yMax: ticks[ticks.length - 1]!,
    ticks,
  };
}

function y(f: Frame, v: number): number {
  return MARGIN.top + f.plotH - (v / f.yMax) * f.plotH;
}

/** Title, y grid with ticks, axes, x labels, axis labels and the legend. */
function scaffold(spec: ChartSpec, f: Frame, slotX: (i: number) => number): string[] {
  const out: string[] = [];
  const left = MARGIN.left;
  const bottom = MARGIN.top + f.plotH;
  out.push(
    `<text x="${f.width / 2}" y="24" text-anchor="middle" font-size="16" font-weight="bold">${esc(spec.title)}</text>`,
  );
  for (const t of f.ticks) {
    const ty = y(f, t).toFixed(1);
    out.push(`<line x1="${left}" y1="${ty}" x2="${left + f.plotW}" y2="${ty}" stroke="#e4e4e4"/>`);
    out.push(`<line x1="${left - 5}" y1="${ty}" x2="${left}" y2="${ty}" stroke="#333"/>`);
    out.push(
      `<text x="${left - 8}" y="${ty}" text-anchor="end" dominant-baseline="middle">${formatTick(t)}</text>`,
    );
  }
  out.push(`<line x1="${left}" y1="${MARGIN.top}" x2="${left}" y2="${bottom}" stroke="#333"/>`);
  out.push(`<line x1="${left}" y1="${bottom}" x2="${left + f.plotW}" y2="${bottom}" stroke="#333"/>`);
  spec.categories.forEach((c, i) => {
    const x = slotX(i).toFixed(1);
    out.push(`<line x1="${x}" y1="${bottom}" x2="${x}" y2="${bottom + 5}" stroke="#333"/>`);
    out.push(`<text x="${x}" y="${bottom + 18}" text-anchor="middle">${esc(c)}</text>`);
  });
  out.push(
    `<text x="${left + f.plotW / 2}" y="${bottom + 40}" text-anchor="middle" font-size="13">${esc(spec.xLabel)}</text>`,
  );
  const midY = MARGIN.top + f.plotH / 2;
  out.push(
    `<text x="18" y="${midY}" text-anchor="middle" font-size="13" transform="rotate(-90 18 ${midY})">${esc(spec.yLabel)}</text>`,
  );
  // Legend: one row under the x label, swatch + name per series.
  let lx = left;
  const ly = f.height - 18;
  spec.series.forEach((s, i) => {
    const color = PALETTE[i % PALETTE.length]!;
    out.push(`<rect x="${lx}" y="${ly - 9}" width="14" height="10" fill="${color}"/>`);
    out.push(`<text x="${lx + 19}" y="${ly}">${esc(s.name)}</text>`);
    lx += 19 + s.name.length * 7 + 22;
  });
  return out;
}

function wrap(spec: ChartSpec, f: Frame, body: string[]): string {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${f.width}" height="${f.height}" viewBox="0 0 ${f.width} ${f.height}" font-family="sans-serif" font-size="11">`,
    `<title>${esc(spec.title)}</title>`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    ...body,
    '</svg>',
    '',
  ].join('\n');
}

/** A line chart: each series a polyline with point markers; gaps where a value is null. */
export function lineChart(spec: ChartSpec): string {
  const f = frame(spec);
  const n = Math.max(1, spec.categories.length);
  const slotX = (i: number) => MARGIN.left + (f.plotW * (i + 0.5)) / n;
  const body = scaffold(spec, f, slotX);
  spec.series.forEach((s, si) => {
    const color = PALETTE[si % PALETTE.length]!;
    let run: string[] = [];
    const flush = () => {
      if (run.length > 1)
        body.push(`<polyline fill="none" stroke="${color}" stroke-width="2" points="${run.join(' ')}"/>`);
      run = [];
    };
    s.values.forEach((v, i) => {
      if (v === null || !Number.isFinite(v)) {
        flush();
        return;
      }
      const px = slotX(i).toFixed(1);
      const py = y(f, v).toFixed(1);
      run.push(`${px},${py}`);
      body.push(
        `<circle cx="${px}" cy="${py}" r="3.5" fill="${color}"><title>${esc(s.name)}: ${formatTick(v)}</title></circle>`,
      );
    });
    flush();
  });
  return wrap(spec, f, body);
}

/** A grouped bar chart: per category one bar per series, side by side; no bar where null. */
export function barChart(spec: ChartSpec): string {
  const f = frame(spec);
  const n = Math.max(1, spec.categories.length);
  const slot = f.plotW / n;
  const slotX = (i: number) => MARGIN.left + slot * (i + 0.5);
  const body = scaffold(spec, f, slotX);
  const k = Math.max(1, spec.series.length);
  const barW = (slot * 0.8) / k;
  spec.series.forEach((s, si) => {
    const color = PALETTE[si % PALETTE.length]!;
    s.values.forEach((v, i) => {
      if (v === null || !Number.isFinite(v)) return;
      const x = MARGIN.left + slot * i + slot * 0.1 + barW * si;
      const top = y(f, v);
      body.push(
        `<rect x="${x.toFixed(1)}" y="${top.toFixed(1)}" width="${(barW - 1).toFixed(1)}" height="${(MARGIN.top + f.plotH - top).toFixed(1)}" fill="${color}"><title>${esc(s.name)} ${esc(spec.categories[i] ?? '')}: ${formatTick(v)}</title></rect>`,
      );
    });
  });
  return wrap(spec, f, body);
}

/**
 * The results page and charts of the HTTPS benchmark (run.ts): per worker count, HTTPS CPU per
 * request, the plain HTTP CPU per request of the same instances and their difference (what TLS
 * adds), with each peer's ratio to nginx; requests/s and latency; server CPU per handshake; memory
 * per idle TLS connection; and issue 13's targets checked against those ratios. Pure rendering
 * from what run.ts measured: no measuring here.
 */
import { writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { formatSize } from '../lib/bodies.js';
import { barChart, lineChart } from '../lib/chart.js';
import { type Measurement, markdownTable } from '../lib/measure.js';
import type { IdleMemory } from '../lib/memory.js';
import { pointsTable, ratio } from '../lib/report.js';
import type { CertificateKind, TlsPolicy } from '../lib/tls-certs.js';
import type { HandshakeCost } from './clients.js';
import type { HttpsProxySpec } from './peers.js';

/**
 * One size at one worker count: the HTTPS point and the plain point of the same instance. With
 * several rounds (HTTPS, HTTP, HTTPS, HTTP... on one instance), `https` and `http` are the rounds'
 * median by CPU per request and `tlsAdds` the median of the rounds' own differences, so one round
 * in a slow state (a GC-heavy stretch, a noisy neighbour) moves neither.
 */
export interface RequestPoint {
  readonly proxy: string;
  readonly workers: number;
  readonly size: number;
  readonly https: Measurement;
  readonly http: Measurement;
  /** Every round, in the order measured (absent in results of runs before rounds). */
  readonly rounds?: readonly { readonly https: Measurement; readonly http: Measurement }[];
  /** Median over the rounds of HTTPS minus HTTP CPU us per request. */
  readonly tlsAdds?: number;
}

/** The median of `values` (the mean of the middle two for an even count). */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  if (sorted.length === 0) return Number.NaN;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** The measurement whose CPU per request is the median (the lower middle one for an even count). */
export function medianMeasurement(values: readonly Measurement[]): Measurement {
  const sorted = [...values].sort((a, b) => a.cpuUsPerRequest - b.cpuUsPerRequest);
  return sorted[(sorted.length - 1) >> 1]!;
}

/** Server CPU per handshake of one proxy, certificate and handshake kind. */
export interface HandshakePoint {
  readonly proxy: string;
  readonly workers: number;
  readonly kind: CertificateKind;
  readonly mode: 'full' | 'resumed';
  /** The median window (by server CPU per handshake). */
  readonly h: HandshakeCost;
  /** Every window, in round order (peers interleaved per round); absent on older runs. */
  readonly rounds?: readonly HandshakeCost[];
}

/** A per-round ratio for the table, '-' when there is none. */
function formatRoundRatio(ratio: number | undefined): string {
  return ratio === undefined ? '-' : `${ratio.toFixed(2)}x`;
}

/**
 * The median over rounds of `p`'s CPU per handshake divided by `ref`'s in the same round (the
 * drift-free comparison of interleaved windows); undefined without rounds on both.
 */
function perRoundRatio(p: HandshakePoint, ref: HandshakePoint | undefined): number | undefined {
  const a = p.rounds;
  const b = ref?.rounds;
  if (a === undefined || b === undefined || a.length === 0 || a.length !== b.length) return undefined;
  const ratios = a.map((h, i) => h.cpuUsPerHandshake / b[i]!.cpuUsPerHandshake).sort((x, y) => x - y);
  const mid = ratios.length >> 1;
  return ratios.length % 2 ? ratios[mid]! : (ratios[mid - 1]! + ratios[mid]!) / 2;
}

/** Idle-connection memory of one proxy over TLS and (a separate instance) plain HTTP. */
export interface MemoryPoint {
  readonly proxy: string;
  readonly tls: IdleMemory;
  readonly plain?: IdleMemory;
}

/** The reference peer of every ratio. */
const REFERENCE = 'nginx';

/** What TLS adds to the CPU per request of one point (the rounds' median difference). */
const tlsAdds = (p: RequestPoint) => p.tlsAdds ?? p.https.cpuUsPerRequest - p.http.cpuUsPerRequest;

/** Loch and its variants (`loch-openssl`: on OpenSSL's TLS 1.3 record layer), each checked against the targets. */
const isLoch = (name: string) => name === 'loch' || name.startsWith('loch-');

const plural = (workers: number) => `${workers} worker${workers > 1 ? 's' : ''}`;

function find(points: readonly RequestPoint[], proxy: string, workers: number, size: number) {
  return points.find((p) => p.proxy === proxy && p.workers === workers && p.size === size);
}

/** Writes the line charts per worker count and the handshake bar chart into `dir`. */
export function writeCharts(
  dir: string,
  r: {
    points: readonly RequestPoint[];
    handshakes: readonly HandshakePoint[];
    sizes: readonly number[];
    workerCounts: readonly number[];
    names: readonly string[];
  },
): void {
  const categories = r.sizes.map(formatSize);
  for (const workers of r.workerCounts) {
    const series = (value: (p: RequestPoint) => number) =>
      r.names.map((name) => ({
        name,
        values: r.sizes.map((size) => {
          const p = find(r.points, name, workers, size);
          return p === undefined ? null : value(p);
        }),
      }));
    const w = plural(workers);
    const charts: [string, string, string, (p: RequestPoint) => number][] = [
      ['rps', `HTTPS proxy: requests/s by body size (${w})`, 'requests/s', (p) => p.https.requestsPerSecond],
      [
        'cpu',
        `HTTPS proxy: CPU microseconds per request (${w}, lower is better)`,
        'proxy CPU us per request',
        (p) => p.https.cpuUsPerRequest,
      ],
      [
        'tls-cost',
        `What TLS adds: HTTPS minus HTTP CPU us per request (${w})`,
        'added CPU us per request',
        tlsAdds,
      ],
    ];
    for (const [file, title, yLabel, value] of charts)
      writeFileSync(
        join(dir, `https-${file}-by-size-${workers}w.svg`),
        lineChart({ title, xLabel: 'response body', yLabel, categories, series: series(value) }),
      );
  }
  if (r.handshakes.length === 0) return;
  const cats: { kind: CertificateKind; mode: string; workers: number }[] = [];
  for (const kind of ['ECDSA P-256', 'RSA 2048'] as const)
    for (const mode of ['full', 'resumed'])
      for (const workers of r.workerCounts) cats.push({ kind, mode, workers });
  writeFileSync(
    join(dir, 'https-handshake-cpu.svg'),
    barChart({
      title: 'TLS handshakes: server CPU microseconds per handshake (lower is better)',
      xLabel: 'certificate, handshake, workers',
      yLabel: 'proxy CPU us per handshake',
      categories: cats.map((c) => `${c.kind === 'RSA 2048' ? 'RSA' : 'ECDSA'} ${c.mode} ${c.workers}w`),
      series: r.names.map((name) => ({
        name,
        values: cats.map(
          (c) =>
            r.handshakes.find(
              (h) => h.proxy === name && h.kind === c.kind && h.mode === c.mode && h.workers === c.workers,
            )?.h.cpuUsPerHandshake ?? null,
        ),
      })),
      width: 900,
    }),
  );
}

/** Everything the page shows. */
export interface PageInput {
  readonly command: string;
  readonly started: Date;
  readonly loadBefore: readonly number[];
  readonly machine: string;
  readonly quick: boolean;
  readonly partial: boolean;
  readonly seconds: number;
  readonly warmupSeconds: number;
  /** Warm-up before each handshake window (--handshake-warmup). */
  readonly handshakeWarmupSeconds: number;
  /** HTTPS-then-HTTP rounds per size on one instance (medians across them). */
  readonly rounds: number;
  /** LOCH_TLS_RECORDS of each Loch variant (peer 'loch': 'loch', Loch's own; 'loch-openssl': 'openssl'). */
  readonly records: ReadonlyMap<string, string>;
  readonly connections: number;
  readonly policy: TlsPolicy;
  readonly certificate: CertificateKind;
  readonly idleCount: number;
  readonly idleSettleMs: number;
  readonly memoryPath: string;
  readonly cpuFor: (workers: number) => string;
  readonly sizes: readonly number[];
  readonly workerCounts: readonly number[];
  readonly specs: readonly HttpsProxySpec[];
  /** Per proxy: what its TLS port negotiated with the probe. */
  readonly negotiated: ReadonlyMap<string, string>;
  readonly points: readonly RequestPoint[];
  readonly handshakes: readonly HandshakePoint[];
  readonly memory: readonly MemoryPoint[];
  readonly failures: readonly string[];
  readonly warnings: readonly string[];
}

/**
 * A per-size table of one CPU metric: one column per peer, then each other peer's ratio to
 * nginx ("loch/nginx").
 */
function cpuTable(
  r: PageInput,
  names: readonly string[],
  workers: number,
  value: (p: RequestPoint) => number,
): string {
  const others = names.filter((n) => n !== REFERENCE);
  const ratios = names.includes(REFERENCE) ? others : [];
  return markdownTable(
    ['body', ...names, ...ratios.map((n) => `${n}/${REFERENCE}`)],
    r.sizes.map((size) => {
      const v = (n: string) => {
        const p = find(r.points, n, workers, size);
        return p === undefined ? undefined : value(p);
      };
      return [
        formatSize(size),
        ...names.map((n) => v(n) ?? Number.NaN),
        ...ratios.map((n) => ratio(v(n), v(REFERENCE))),
      ];
    }),
  );
}

/**
 * Bytes per idle plain connection; a negative one means RSS fell while the connections opened
 * (a short reading where Loch's idle trim or V8 gave back more than the connections took).
 */
function plainCell(plain: IdleMemory | undefined): string {
  if (plain === undefined) return 'n/a';
  const bytes = Math.round(plain.bytesPerConnection).toLocaleString('en-US');
  return plain.bytesPerConnection < 0 ? `${bytes} (RSS fell)` : bytes;
}

function mib(kib: number): string {
  return `${(kib / 1024).toFixed(1)} MiB`;
}

/** One row of the targets table: a loch/nginx ratio limit checked at every point it applies to. */
function targetRow(what: string, limit: number, ratios: readonly { at: string; value: number }[]): string[] {
  const valid = ratios.filter((x) => Number.isFinite(x.value));
  if (valid.length === 0) return [what, `<= ${limit.toFixed(2)}x`, 'not measured', '', ''];
  const met = valid.filter((x) => x.value <= limit).length;
  const worst = valid.reduce((a, b) => (b.value > a.value ? b : a));
  return [
    what,
    `<= ${limit.toFixed(2)}x`,
    `${met} of ${valid.length}`,
    `${worst.value.toFixed(2)}x (${worst.at})`,
    met === valid.length ? 'met' : '**not met**',
  ];
}

function targets(r: PageInput): string[] {
  const names = r.specs.map((s) => s.name);
  if (!names.includes(REFERENCE)) return [];
  return names.filter(isLoch).flatMap((loch) => targetsOf(r, loch));
}

function targetsOf(r: PageInput, loch: string): string[] {
  const requestRatios = (value: (p: RequestPoint) => number) =>
    r.workerCounts.flatMap((workers) =>
      r.sizes.map((size) => {
        const l = find(r.points, loch, workers, size);
        const n = find(r.points, REFERENCE, workers, size);
        return {
          at: `${workers}w ${formatSize(size)}`,
          value: l && n && value(n) > 0 ? value(l) / value(n) : Number.NaN,
        };
      }),
    );
  const handshakeRatios = (mode: 'full' | 'resumed') =>
    r.handshakes
      .filter((h) => h.proxy === loch && h.mode === mode)
      .map((l) => {
        const n = r.handshakes.find(
          (h) => h.proxy === REFERENCE && h.mode === mode && h.kind === l.kind && h.workers === l.workers,
        );
        return {
          at: `${l.workers}w ${l.kind}`,
          value: n ? l.h.cpuUsPerHandshake / n.h.cpuUsPerHandshake : Number.NaN,
        };
      });
  const lm = r.memory.find((m) => m.proxy === loch);
  const nm = r.memory.find((m) => m.proxy === REFERENCE);
  const memoryRatio =
    lm && nm && nm.tls.bytesPerConnection > 0
      ? [{ at: '1w', value: lm.tls.bytesPerConnection / nm.tls.bytesPerConnection }]
      : [];
  return [
    `## Targets (issue 13)${loch === 'loch' ? '' : `: ${loch}`}`,
    '',
    `${loch} divided by nginx at every point the target applies to (CPU and memory: lower is better).`,
    '',
    markdownTable(
      ['target', 'limit', 'points within', `worst ${loch}/nginx`, 'verdict'],
      [
        targetRow(
          'HTTPS CPU per request',
          1.5,
          requestRatios((p) => p.https.cpuUsPerRequest),
        ),
        targetRow('CPU TLS adds per request (HTTPS minus HTTP)', 1.2, requestRatios(tlsAdds)),
        targetRow('server CPU per full handshake', 1.2, handshakeRatios('full')),
        targetRow('server CPU per resumed handshake', 1.2, handshakeRatios('resumed')),
        targetRow('memory per idle TLS connection', 2, memoryRatio),
      ],
    ),
    '',
  ];
}

/** The markdown page. */
export function renderPage(r: PageInput): string {
  const out: string[] = [];
  const names = r.specs.map((s) => s.name);
  const loadAfter = loadavg();
  out.push('# HTTPS reverse proxy benchmark', '');
  out.push(
    `Generated by \`${r.command}\` on ${r.started.toISOString()} (` +
      `${r.quick ? '**quick smoke run**, ' : ''}${r.partial ? '**partial run**, ' : ''}` +
      `${r.seconds} s per point after a ${r.warmupSeconds} s warm-up).`,
    '',
    `Machine: ${r.machine}. Load average before/after: ${r.loadBefore.map((v) => v.toFixed(2)).join(' ')} / ` +
      `${loadAfter.map((v) => v.toFixed(2)).join(' ')} (other work on the machine makes numbers noisy; compare peers within one run).`,
    '',
  );
  for (const w of r.warnings) out.push(`**Warning**: ${w}`, '');
  out.push(
    `Method: wrk -t1 -c${r.connections} over TLS with keep-alive (an \`https://\` URL: each wrk run opens its ` +
      `${r.connections} connections with a full handshake, then sends only records) -> proxy terminating TLS -> nginx ` +
      'serving static files over plain HTTP (the backend of bench/results/http1.md). wrk and the backend are pinned to ' +
      'CPU 0. **1 worker: the proxy is pinned to CPU 1. 2 workers: the proxy is pinned to CPUs 0-1 and shares CPU 0 ' +
      'with wrk and the backend**, so 2-worker numbers show behaviour under contention, not on an idle second core. ' +
      'Each proxy instance also serves plain HTTP on a second port from the same workers: per body size the HTTPS ' +
      `point and the plain HTTP point are measured on the same instance, ${r.rounds} round${r.rounds > 1 ? 's' : ''} ` +
      '(HTTPS then HTTP in odd rounds, HTTP then HTTPS in even ones), so **TLS adds** = the median over the rounds of HTTPS minus HTTP CPU per ' +
      "request of one process in one state; the HTTPS and HTTP columns are the rounds' medians. A run in which " +
      "a peer served fewer than 10 requests per connection is a stall: recorded as a failed point (with Loch's " +
      '/stats at that moment), never averaged in. CPU us/req = utime+stime of the proxy process tree during the measured ' +
      'run / requests served. Ratios are to nginx at the same size and workers (CPU below 1x is cheaper).',
    '',
    ...[...r.records].map(
      ([name, records]) =>
        `${name}: LOCH_TLS_RECORDS=${records} (${records === 'loch' ? "Loch's own TLS 1.3 record layer after the handshake; the connections it took over are counted from loch's /stats after each point" : "OpenSSL's record layer"}).`,
    ),
    ...(r.records.size > 0 ? [''] : []),
    `TLS: only ${r.policy.version}, ${r.policy.version === 'TLSv1.3' ? r.policy.ciphersuites : r.policy.ciphers} ` +
      `pinned on every peer (their defaults differ: OpenSSL follows the client's order, and wrk offers AES-256-GCM first), ` +
      `a self-signed ${r.certificate} certificate made with \`openssl req\` at start, no client certificates, no ALPN ` +
      "(wrk sends none). The kernel's kTLS is not used by any peer. Negotiated with each peer's TLS port (the probe):",
    '',
  );
  for (const n of names) out.push(`- ${n}: ${r.negotiated.get(n) ?? 'not started'}`);
  out.push('', 'Configuration per proxy:', '');
  for (const s of r.specs) out.push(`- ${s.name}: ${s.note}`);
  out.push('');
  if (r.failures.length) {
    out.push('Failed points (left out of the tables):', '');
    for (const f of r.failures) out.push(`- ${f}`);
    out.push('');
  }
  out.push(...targets(r));

  for (const workers of r.workerCounts) {
    out.push(`## ${plural(workers)} (proxy on CPU ${r.cpuFor(workers)})`, '');
    const https = (n: string, size: number) => find(r.points, n, workers, size)?.https;
    const http = (n: string, size: number) => find(r.points, n, workers, size)?.http;
    out.push(
      'HTTPS: CPU microseconds per request (lower is better):',
      '',
      cpuTable(r, names, workers, (p) => p.https.cpuUsPerRequest),
      '',
      'What TLS adds: HTTPS minus plain HTTP CPU microseconds per request, same instance:',
      '',
      cpuTable(r, names, workers, tlsAdds),
      '',
      'Plain HTTP on the same instances: CPU microseconds per request:',
      '',
      cpuTable(r, names, workers, (p) => p.http.cpuUsPerRequest),
      '',
      'Every HTTPS point:',
      '',
      pointsTable({ sizes: r.sizes, names, reference: REFERENCE, label: 'proxy', find: https }),
      '',
      'Every plain HTTP point (same instances):',
      '',
      pointsTable({ sizes: r.sizes, names, reference: REFERENCE, label: 'proxy', find: http }),
      '',
      `![HTTPS CPU per request by body size, ${plural(workers)}](https-cpu-by-size-${workers}w.svg)`,
      '',
      `![what TLS adds per request by body size, ${plural(workers)}](https-tls-cost-by-size-${workers}w.svg)`,
      '',
      `![HTTPS requests/s by body size, ${plural(workers)}](https-rps-by-size-${workers}w.svg)`,
      '',
    );
  }

  if (r.handshakes.length) {
    out.push(
      '## TLS handshakes: server CPU per handshake',
      '',
      'A node:tls client (pinned to CPU 0, 8 connections at a time) opens new connections back to back: connect, ' +
        `${r.policy.version} handshake, wait for the server's session ticket, close_notify and close; no request. ` +
        '**full**: no session offered; **resumed**: the latest ticket offered (tickets, no session cache on the client). ' +
        'Proxy on CPU 1 (1 worker) or CPUs 0-1 (2 workers; resuming also proves that a ticket from one worker is ' +
        "accepted by another). The number is the CPU time of the proxy process tree's threads during the measured " +
        'window (from /proc/<pid>/task/<tid>/schedstat, nanoseconds; the system share from /proc/<pid>/stat, 10 ms ' +
        'ticks, so it is coarse) / handshakes completed: accept, handshake, ticket, close. Handshakes/s is what this client manages (on two ' +
        'cores it saturates before the server) and is not a server capacity. "no new ticket": the server issued no ' +
        'ticket on resumed handshakes (the client keeps offering the one it has), so it did less work there than a ' +
        "server that reissues (OpenSSL's default, nginx and HAProxy). " +
        `Each mode's window follows a ${r.handshakeWarmupSeconds} s warm-up of the same handshakes on the same instance: ` +
        "Loch's workers are V8 isolates that compile their per-connection code in the first thousands of handshakes " +
        "(each worker its own), on background threads that are part of the proxy's CPU: on a fresh 1-worker instance " +
        'they took 126 us per handshake in the first 8 s window and 30-40 us two windows later (loaded machine), so a ' +
        '2 s warm-up charged one-time compilation to the handshakes, twice over with 2 workers. ' +
        `Every peer of a worker count and certificate runs at once and each mode has ${r.rounds} rounds: each round ` +
        'gives every peer one window in turn (the order reversed every other round; windows after the first follow ' +
        `a ${r.warmupSeconds} s warm-up), so the host's drift lands on all peers alike. The table shows each peer's ` +
        "median window (the lower middle one for an even number of rounds), its ratio to nginx's median window, and the median of the per-round ratios (each round's " +
        'windows are minutes apart at most: the comparison least moved by drift).',
      '',
    );
    const rows: (string | number)[][] = [];
    for (const kind of ['ECDSA P-256', 'RSA 2048'] as const)
      for (const mode of ['full', 'resumed'] as const)
        for (const workers of r.workerCounts) {
          const ref = r.handshakes.find(
            (h) => h.proxy === REFERENCE && h.kind === kind && h.mode === mode && h.workers === workers,
          );
          for (const n of names) {
            const p = r.handshakes.find(
              (h) => h.proxy === n && h.kind === kind && h.mode === mode && h.workers === workers,
            );
            if (!p) continue;
            rows.push([
              kind,
              mode,
              String(workers),
              n,
              p.h.cpuUsPerHandshake,
              p.h.sysUsPerHandshake,
              ratio(p.h.cpuUsPerHandshake, ref?.h.cpuUsPerHandshake),
              formatRoundRatio(perRoundRatio(p, ref)),
              p.rounds?.map((h) => h.cpuUsPerHandshake.toFixed(0)).join(', ') ?? '-',
              p.h.handshakesPerSecond,
              `${((p.h.resumed / Math.max(1, p.h.handshakes)) * 100).toFixed(0)}%` +
                (mode === 'resumed' && !p.h.ticketOnResume ? ', no new ticket' : ''),
              `${p.h.failed}${p.h.noTicket ? ` (${p.h.noTicket} waited for a ticket in vain)` : ''}`,
            ]);
          }
        }
    out.push(
      markdownTable(
        [
          'certificate',
          'handshake',
          'workers',
          'proxy',
          'server CPU us/handshake',
          'of it sys (ticks)',
          'vs nginx',
          'per round vs nginx (median)',
          'each round us/handshake',
          'handshakes/s (client-bound)',
          'resumed',
          'failed',
        ],
        rows,
      ),
      '',
      '![server CPU per handshake](https-handshake-cpu.svg)',
      '',
    );
  }

  if (r.memory.length) {
    const ref = r.memory.find((m) => m.proxy === REFERENCE);
    out.push(
      '## Memory: idle keep-alive connections',
      '',
      `1 worker, a fresh instance per reading. A separate client process (pinned to CPU 0) opens ` +
        `${r.idleCount.toLocaleString('en-US')} connections (TLS: each with a full handshake), sends one ` +
        `\`GET ${r.memoryPath}\` on each, reads the response and leaves the connection idle. RSS is the proxy process ` +
        `tree before the connections (${r.idleSettleMs / 1000} s after a 1 s warm-up load over the same scheme) and ` +
        `with all of them open (${r.idleSettleMs / 1000} s after the last one is ready). The plain column is the same ` +
        'reading on the plain HTTP port of another fresh instance.',
      '',
      markdownTable(
        [
          'proxy',
          'idle TLS conns',
          'RSS before',
          'RSS with idle TLS conns',
          'bytes per idle TLS conn',
          'vs nginx',
          'bytes per idle plain conn',
          'TLS adds per conn',
        ],
        r.memory.map((m) => [
          m.proxy,
          `${m.tls.connections.toLocaleString('en-US')}${m.tls.failed ? ` (${m.tls.failed} failed)` : ''}`,
          mib(m.tls.baselineKiB),
          mib(m.tls.idleKiB),
          Math.round(m.tls.bytesPerConnection).toLocaleString('en-US'),
          ratio(m.tls.bytesPerConnection, ref?.tls.bytesPerConnection),
          plainCell(m.plain),
          m.plain && m.plain.bytesPerConnection >= 0
            ? Math.round(m.tls.bytesPerConnection - m.plain.bytesPerConnection).toLocaleString('en-US')
            : 'n/a',
        ]),
      ),
      '',
    );
  }
  return `${out.join('\n')}\n`;
}

/**
 * Test support: runs Node's own HTTP parser (llhttp, via the internal http_parser binding) over
 * an input and reports what it accepted, in the same shape as decode-all.ts. The reference for
 * differential tests. Not used by the package itself.
 */
export interface LlMessage {
  method?: string;
  target?: string;
  status?: number;
  version: string;
  headers: [string, string][];
  body: string;
  trailers: [string, string][] | null;
  keepAlive: boolean;
}

export interface LlResult {
  messages: LlMessage[];
  error: string | null;
}

interface Parser {
  initialize(type: number, resource: object, maxHeaderSize: number, lenient: number): void;
  execute(b: Buffer): number | Error;
  finish(): undefined | Error;
  close(): void;
  [k: number]: unknown;
}
interface ParserCtor {
  new (): Parser;
  REQUEST: number;
  RESPONSE: number;
  kOnHeaders: number;
  kOnHeadersComplete: number;
  kOnBody: number;
  kOnMessageComplete: number;
  kOnExecute: number;
}

const warn = process.emitWarning;
process.emitWarning = () => {};
const { HTTPParser, allMethods } = (
  process as unknown as { binding(n: string): { HTTPParser: ParserCtor; allMethods: string[] } }
).binding('http_parser');
process.emitWarning = warn;

function pairs(flat: string[] | undefined): [string, string][] {
  const out: [string, string][] = [];
  if (!flat) return out;
  for (let i = 0; i < flat.length; i += 2) out.push([flat[i]!.toLowerCase(), flat[i + 1]!]);
  return out;
}

/**
 * Parses `input` with llhttp (strict, no lenient flags) and returns every complete message or the
 * error. For responses, `methods` (then `method`) name the requests the final (non-1xx) responses
 * answer, in order: a response to HEAD has no body, as node:http's client tells llhttp (its
 * on_headers_complete returns 1).
 */
export function llparse(
  kind: 'request' | 'response',
  input: Buffer,
  opts: { eof?: boolean; maxHeaderSize?: number; method?: string; methods?: readonly string[] } = {},
): LlResult {
  let finals = 0;
  const p = new HTTPParser();
  p.initialize(
    kind === 'request' ? HTTPParser.REQUEST : HTTPParser.RESPONSE,
    {},
    opts.maxHeaderSize ?? 16384,
    0,
  );
  const messages: LlMessage[] = [];
  let cur: LlMessage | null = null;
  let pending: string[] = [];
  let pendingUrl = '';
  let body: Buffer[] = [];
  p[HTTPParser.kOnHeaders] = (headers: string[], url: string) => {
    pending.push(...headers);
    pendingUrl += url ?? '';
  };
  p[HTTPParser.kOnHeadersComplete] = (
    major: number,
    minor: number,
    headers: string[] | undefined,
    method: number,
    url: string,
    status: number,
    _statusMessage: string,
    _upgrade: boolean,
    keepAlive: boolean,
  ) => {
    const all = headers ? [...pending, ...headers] : pending;
    const target = pendingUrl + (url ?? '');
    pending = [];
    pendingUrl = '';
    cur = {
      ...(kind === 'request' ? { method: allMethods[method]!, target } : { status }),
      version: `${major}.${minor}`,
      headers: pairs(all),
      body: '',
      trailers: null,
      keepAlive,
    };
    body = [];
    return kind === 'response' && (opts.methods?.[finals] ?? opts.method) === 'HEAD' ? 1 : 0;
  };
  p[HTTPParser.kOnBody] = (b: Buffer) => {
    body.push(Buffer.from(b));
  };
  p[HTTPParser.kOnMessageComplete] = () => {
    if (cur) {
      cur.body = Buffer.concat(body).toString('latin1');
      if (pending.length > 0) cur.trailers = pairs(pending);
      pending = [];
      // a trailer flush repeats the previous URL: it belongs to no message
      pendingUrl = '';
      messages.push(cur);
      if ((cur.status ?? 200) >= 200) finals++;
      cur = null;
    }
  };
  try {
    const r = p.execute(input);
    if (r instanceof Error) return { messages, error: (r as Error & { code?: string }).code ?? r.message };
    if (opts.eof) {
      const f = p.finish();
      if (f instanceof Error) return { messages, error: (f as Error & { code?: string }).code ?? f.message };
    }
    return { messages, error: null };
  } finally {
    p.close();
  }
}

/**
 * A reusable llhttp parser with the callbacks node:http installs (headers, url and body handed to
 * JavaScript as strings and buffers), for benchmarks.
 */
export function llparser(kind: 'request' | 'response'): { execute(b: Buffer): void } {
  const p = new HTTPParser();
  p.initialize(kind === 'request' ? HTTPParser.REQUEST : HTTPParser.RESPONSE, {}, 16384, 0);
  let sink = 0;
  p[HTTPParser.kOnHeaders] = (headers: string[]) => {
    sink += headers.length;
  };
  p[HTTPParser.kOnHeadersComplete] = (
    _ma: number,
    _mi: number,
    headers: string[] | undefined,
    method: number,
    url: string,
  ) => {
    sink += (headers?.length ?? 0) + method + (url?.length ?? 0);
    return 0;
  };
  p[HTTPParser.kOnBody] = (b: Buffer) => {
    sink += b.length;
  };
  p[HTTPParser.kOnMessageComplete] = () => {
    sink++;
  };
  return {
    execute(b: Buffer) {
      const r = p.execute(b);
      if (r instanceof Error || sink < 0) throw r;
    },
  };
}

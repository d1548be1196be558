/**
 * Path templates of gateway routes: `/users/{id}` (the config spelling), `/users/:id` (Hertz's
 * `api.get` spelling) and a trailing rest parameter `{path...}` or `*path`. A parameter matches
 * one non-empty segment (`{*path}`, loch's router spelling, is a rest parameter too), percent-decoded (a bad escape does not match). Literal segments compare
 * exactly. Not a router over many templates: the gateway tries its routes in order.
 */

/** A compiled path template. */
export class PathTemplate {
  /** Literal text of each segment, or undefined where a parameter stands. */
  private readonly literals: (string | undefined)[] = [];
  /** Parameter names by segment (undefined for literals). */
  private readonly names: (string | undefined)[] = [];
  /** Name of the trailing rest parameter, if any. */
  private readonly rest: string | undefined;
  /** Every parameter name, in order. */
  readonly params: readonly string[];

  constructor(readonly template: string) {
    if (!template.startsWith('/'))
      throw new TypeError(`path template ${JSON.stringify(template)} must start with /`);
    const segments = template.slice(1).split('/');
    const params: string[] = [];
    let rest: string | undefined;
    segments.forEach((s, i) => {
      const last = i === segments.length - 1;
      let name: string | undefined;
      let isRest = false;
      if (s.startsWith('{') && s.endsWith('}')) {
        name = s.slice(1, -1);
        if (name.startsWith('*')) {
          // loch's router spelling of a catch-all: {*rest}
          name = name.slice(1);
          isRest = true;
        } else if (name.endsWith('...')) {
          name = name.slice(0, -3);
          isRest = true;
        }
      } else if (s.startsWith(':')) name = s.slice(1);
      else if (s.startsWith('*')) {
        name = s.slice(1);
        isRest = true;
      }
      if (name !== undefined && !/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
        throw new TypeError(
          `path template ${JSON.stringify(template)}: bad parameter name ${JSON.stringify(name)}`,
        );
      }
      if (isRest && !last)
        throw new TypeError(`path template ${JSON.stringify(template)}: a rest parameter must be last`);
      if (name !== undefined) {
        if (params.includes(name))
          throw new TypeError(`path template ${JSON.stringify(template)}: ${name} twice`);
        params.push(name);
      }
      if (isRest) rest = name;
      else {
        this.literals.push(name === undefined ? s : undefined);
        this.names.push(name);
      }
    });
    this.rest = rest;
    this.params = params;
  }

  /** The parameters of `path` (no query), or undefined when it does not match. */
  match(path: string): Map<string, string> | undefined {
    const n = this.literals.length;
    let pos = 1;
    let out: Map<string, string> | undefined;
    if (path.charCodeAt(0) !== 0x2f) return undefined;
    for (let i = 0; i < n; i++) {
      let end = path.indexOf('/', pos);
      if (end < 0) end = path.length;
      else if (i === n - 1 && this.rest === undefined) return undefined;
      const lit = this.literals[i];
      if (lit !== undefined) {
        if (end - pos !== lit.length || !path.startsWith(lit, pos)) return undefined;
      } else {
        if (end === pos) return undefined;
        const v = decode(path.slice(pos, end));
        if (v === undefined) return undefined;
        out ??= new Map();
        out.set(this.names[i] as string, v);
      }
      if (end === path.length) {
        if (i !== n - 1) return undefined;
        if (this.rest !== undefined) return undefined;
        return out ?? EMPTY;
      }
      pos = end + 1;
    }
    if (this.rest === undefined) return n === 0 && path.length === 1 ? EMPTY : undefined;
    const v = decode(path.slice(pos));
    if (v === undefined || v === '') return undefined;
    out ??= new Map();
    out.set(this.rest, v);
    return out;
  }
}

const EMPTY: Map<string, string> = new Map();

function decode(s: string): string | undefined {
  if (!s.includes('%')) return s;
  try {
    return decodeURIComponent(s);
  } catch {
    return undefined;
  }
}

/**
 * Route matching for one server: host, then path. Path patterns, in order of precedence:
 *   1. exact        "/status"             matches only "/status"
 *   2. parameters   "/users/{id}/posts"   one segment per {name}; more literal segments win
 *   3. prefix       "/static/", "/"       a pattern ending in "/" matches everything below it,
 *                   "/api/{*rest}"        and so does a final catch-all; the longest prefix wins
 * Routes that name a host are tried before host-less ones (the host is compared without its
 * port, case-insensitively; "*.example.com" matches any subdomain). The path it is given is
 * already normalized (path-normalizer.ts: escapes and dot segments), so "/public/../admin" or
 * "/public/%2e%2e/admin" cannot reach a "/public/" route. Not for rewriting or forwarding
 * (proxy/route.ts).
 */

/** A route as the router sees it: its pattern and optional host; T is whatever the caller attaches. */
export interface RoutePattern {
  readonly path: string;
  readonly host?: string | undefined;
}

/** A successful match: the route, its captured parameters and the matched prefix (prefix routes). */
export interface RouteMatch<T> {
  readonly route: T;
  readonly params: Readonly<Record<string, string>> | undefined;
  /** For prefix and catch-all routes, the literal part of the path the pattern covers. */
  readonly prefix: string | undefined;
}

/** A pattern that the router cannot compile. */
export class RoutePatternError extends Error {
  override readonly name = 'RoutePatternError';
  readonly code = 'ERR_LOCH_ROUTE_PATTERN';
  constructor(
    readonly pattern: string,
    reason: string,
  ) {
    super(`route path "${pattern}": ${reason}`);
  }
}

interface ParamRoute<T> {
  readonly route: T;
  /** Literal segment text, or null where a parameter goes. */
  readonly segments: readonly (string | null)[];
  readonly names: readonly string[];
  readonly literals: number;
}

interface PrefixRoute<T> {
  readonly route: T;
  readonly prefix: string;
  /** Catch-all parameter name, when the pattern ended in {*name}. */
  readonly rest: string | undefined;
  /** The match without parameters, made once (matches are read-only): none per request. */
  readonly match: RouteMatch<T>;
}

/** All routes for one host (or for any host). */
class RouteTable<T> {
  /** Exact paths and their match, made once (matches are read-only): none per request. */
  readonly exact = new Map<string, RouteMatch<T>>();
  readonly params: ParamRoute<T>[] = [];
  readonly prefixes: PrefixRoute<T>[] = [];

  add(path: string, route: T): void {
    const catchAll = /\{\*([A-Za-z_][A-Za-z0-9_]*)\}$/.exec(path);
    if (catchAll) {
      const prefix = path.slice(0, catchAll.index);
      if (!prefix.endsWith('/') || prefix.includes('{')) {
        throw new RoutePatternError(
          path,
          'a catch-all must be the whole last segment after literal segments',
        );
      }
      this.prefixes.push({
        route,
        prefix,
        rest: catchAll[1],
        match: { route, params: undefined, prefix },
      });
      return;
    }
    if (path.includes('{')) {
      const names: string[] = [];
      const segments = path
        .slice(1)
        .split('/')
        .map((seg) => {
          const m = /^\{([A-Za-z_][A-Za-z0-9_]*)\}$/.exec(seg);
          if (m) {
            if (names.includes(m[1]!)) throw new RoutePatternError(path, `parameter {${m[1]}} appears twice`);
            names.push(m[1]!);
            return null;
          }
          if (seg.includes('{') || seg.includes('}')) {
            throw new RoutePatternError(path, `segment "${seg}" mixes text and a parameter`);
          }
          return seg;
        });
      this.params.push({ route, segments, names, literals: segments.filter((s) => s !== null).length });
      return;
    }
    if (path.endsWith('/')) {
      this.prefixes.push({
        route,
        prefix: path,
        rest: undefined,
        match: { route, params: undefined, prefix: path },
      });
      return;
    }
    if (this.exact.has(path)) throw new RoutePatternError(path, 'declared twice');
    this.exact.set(path, { route, params: undefined, prefix: undefined });
  }

  seal(): void {
    this.params.sort((a, b) => b.literals - a.literals);
    this.prefixes.sort((a, b) => b.prefix.length - a.prefix.length);
  }

  match(path: string): RouteMatch<T> | undefined {
    // (a request's path is a fresh string: hashing it for an empty map is wasted work)
    const exact = this.exact.size === 0 ? undefined : this.exact.get(path);
    if (exact !== undefined) return exact;
    if (this.params.length) {
      const segs = path.slice(1).split('/');
      for (const p of this.params) {
        if (p.segments.length !== segs.length) continue;
        let ok = true;
        let params: Record<string, string> | undefined;
        let n = 0;
        for (let i = 0; i < segs.length; i++) {
          const want = p.segments[i];
          const got = segs[i]!;
          if (want === null) {
            if (got === '') {
              ok = false;
              break;
            }
            params ??= {};
            params[p.names[n++]!] = got;
          } else if (want !== got) {
            ok = false;
            break;
          }
        }
        if (ok) return { route: p.route, params, prefix: undefined };
      }
    }
    for (const p of this.prefixes) {
      if (path.startsWith(p.prefix) || (p.rest !== undefined && `${path}/` === p.prefix)) {
        if (p.rest === undefined) return p.match;
        return { route: p.route, params: { [p.rest]: path.slice(p.prefix.length) }, prefix: p.prefix };
      }
    }
    return undefined;
  }
}

/** Routes of one server, compiled for matching. */
export class Router<T extends RoutePattern> {
  readonly #byHost = new Map<string, RouteTable<T>>();
  readonly #wildcards: { suffix: string; table: RouteTable<T> }[] = [];
  readonly #any = new RouteTable<T>();

  constructor(routes: readonly T[]) {
    for (const route of routes) {
      if (!route.path.startsWith('/')) throw new RoutePatternError(route.path, 'must start with "/"');
      this.#table(route.host).add(route.path, route);
    }
    this.#any.seal();
    for (const t of this.#byHost.values()) t.seal();
    for (const w of this.#wildcards) w.table.seal();
    this.#wildcards.sort((a, b) => b.suffix.length - a.suffix.length);
  }

  #table(host: string | undefined): RouteTable<T> {
    if (host === undefined) return this.#any;
    const h = host.toLowerCase();
    if (h.startsWith('*.')) {
      const suffix = h.slice(1);
      let w = this.#wildcards.find((x) => x.suffix === suffix);
      if (!w) this.#wildcards.push((w = { suffix, table: new RouteTable<T>() }));
      return w.table;
    }
    let t = this.#byHost.get(h);
    if (!t) this.#byHost.set(h, (t = new RouteTable<T>()));
    return t;
  }

  /**
   * Finds the route for a request. `host` is the request's authority (the absolute-form
   * target's, else the Host field); `path` the target's path without the query, normalized
   * (path-normalizer.ts).
   */
  match(host: string | undefined, path: string): RouteMatch<T> | undefined {
    if (host !== undefined && (this.#byHost.size || this.#wildcards.length)) {
      const name = hostName(host);
      const t = this.#byHost.get(name);
      const m = t?.match(path);
      if (m) return m;
      for (const w of this.#wildcards) {
        if (name.endsWith(w.suffix) && name.length > w.suffix.length) {
          const wm = w.table.match(path);
          if (wm) return wm;
        }
      }
    }
    return this.#any.match(path);
  }
}

/** Host header without port, lower-cased ("Example.COM:8080" -> "example.com", "[::1]:80" -> "[::1]"). */
function hostName(host: string): string {
  let end = host.length;
  const colon = host.lastIndexOf(':');
  if (colon > 0 && host.indexOf(']') < colon) end = colon;
  const name = host.slice(0, end);
  return name === name.toLowerCase() ? name : name.toLowerCase();
}

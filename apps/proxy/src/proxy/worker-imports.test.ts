/**
 * What a worker isolate loads at start: every worker thread evaluates worker.ts's static import
 * graph again, so a package pulled into it costs its heap once per worker. And what `loch run`'s
 * main thread loads (cli.ts, then run.ts): it lives as long as the proxy and only supervises, so
 * the config schema, its parsers and the serving code are not its to keep (the config is read
 * in a short-lived thread, config/isolated-load.ts: -10.7 MiB of main-thread heap,
 * bench/idle-memory/readings-2026-12-06c.md). zod (the config
 * schema) belongs to the main thread; the worker gets the checked config in its workerData.
 * (proxy/log.ts imported LOG_MODULES from config/schema.ts and so loaded zod and the whole
 * schema in every worker: ~5 MiB of heap each, bench/idle-memory/readings-2026-12-06b.md.)
 * The schema parsers of @loch/gateway (thrift-parser, protobufjs, @bufbuild/protobuf: ~3.4 MiB)
 * load in a worker only when a route pseudonymizes gRPC (gateway/grpc-pseudonym.ts).
 *
 * The graph is read from the sources: value imports and re-exports (not `import type`, not
 * dynamic `import()`), followed through apps/proxy's own files and into the workspace's
 * @loch/* packages by their `@loch/source` export conditions.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const here = dirname(fileURLToPath(import.meta.url));
const packagesDir = resolve(here, '../../../../packages');

/** The source file a workspace package's export (`@loch/http`, `@loch/gateway/runtime`) names. */
function workspaceSource(spec: string): string | undefined {
  const [scope, name, ...rest] = spec.split('/');
  if (scope !== '@loch') return undefined;
  const dir = resolve(packagesDir, name!);
  if (!existsSync(resolve(dir, 'package.json'))) return undefined;
  const exports = JSON.parse(readFileSync(resolve(dir, 'package.json'), 'utf8')).exports as Record<
    string,
    { '@loch/source'?: string } | null
  >;
  const source = exports[rest.length === 0 ? '.' : `./${rest.join('/')}`]?.['@loch/source'];
  return source === undefined ? undefined : resolve(dir, source);
}

/** Module specifiers a file loads when evaluated (type-only imports and exports left out). */
function valueImports(file: string): string[] {
  const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, false);
  const out: string[] = [];
  for (const node of source.statements) {
    if (ts.isImportDeclaration(node)) {
      const clause = node.importClause;
      if (clause?.isTypeOnly) continue;
      const named = clause?.namedBindings;
      const onlyTypes =
        clause !== undefined &&
        clause.name === undefined &&
        named !== undefined &&
        ts.isNamedImports(named) &&
        named.elements.length > 0 &&
        named.elements.every((e) => e.isTypeOnly);
      if (!onlyTypes) out.push((node.moduleSpecifier as ts.StringLiteral).text);
    } else if (ts.isExportDeclaration(node) && node.moduleSpecifier !== undefined && !node.isTypeOnly) {
      const clause = node.exportClause;
      const onlyTypes =
        clause !== undefined &&
        ts.isNamedExports(clause) &&
        clause.elements.length > 0 &&
        clause.elements.every((e) => e.isTypeOnly);
      if (!onlyTypes) out.push((node.moduleSpecifier as ts.StringLiteral).text);
    }
  }
  return out;
}

/**
 * The bare specifiers (packages) reachable from `entry` through value imports, each with the
 * file that imports it first; workspace packages are followed into their sources. `seen` gets
 * every source file of the graph.
 */
function packagesLoadedBy(entry: string, seen = new Set<string>()): Map<string, string> {
  const packages = new Map<string, string>();
  const queue = [entry];
  while (queue.length > 0) {
    const file = queue.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    for (const spec of valueImports(file)) {
      if (spec.startsWith('.')) {
        queue.push(resolve(dirname(file), spec.replace(/\.js$/, '.ts')));
        continue;
      }
      if (!packages.has(spec)) packages.set(spec, file);
      const source = workspaceSource(spec);
      if (source !== undefined) queue.push(source);
    }
  }
  return packages;
}

describe('a worker isolate', () => {
  const loaded = packagesLoadedBy(resolve(here, 'worker.ts'));

  it('loads the proxy and the runtime packages (the graph is read)', () => {
    expect([...loaded.keys()]).toEqual(expect.arrayContaining(['@loch/http', '@loch/uring-runtime']));
  });

  it('does not load zod (the config schema)', () => {
    expect(loaded.get('zod'), `zod is imported through ${loaded.get('zod')}`).toBeUndefined();
  });

  it('follows the workspace packages into their sources (the native addon is reached)', () => {
    expect(loaded.has('@loch/native')).toBe(true);
  });

  it.each(['@creditkarma/thrift-parser', 'protobufjs', '@bufbuild/protobuf', '@bufbuild/protobuf/wkt'])(
    'does not load the schema parser %s',
    (parser) => {
      expect(loaded.get(parser), `${parser} is imported through ${loaded.get(parser)}`).toBeUndefined();
    },
  );
});

describe('a worker whose config has HTTP servers only', () => {
  // What it loads at start is worker.ts's static graph: thrift servers and gateway routes load
  // their code when a config has them (worker.ts #loadThrift, route.ts's gateway dispatch,
  // gateway/grpc-pseudonym.ts's schema side).
  const files = new Set<string>();
  const loaded = packagesLoadedBy(resolve(here, 'worker.ts'), files);

  it.each(['@loch/thrift', '@loch/gateway', '@loch/gateway/runtime'])('does not load %s', (pkg) => {
    expect(loaded.get(pkg), `${pkg} is imported through ${loaded.get(pkg)}`).toBeUndefined();
  });

  it.each([
    'thrift/servers.ts',
    'thrift/upstream.ts',
    'gateway/dispatch.ts',
    'gateway/grpc-pseudonym-schema.ts',
    // The active health checks run on the main thread (node:http, node:http2, node:tls clients).
    'health/active-checks.ts',
  ])('does not load %s', (file) => {
    expect(files.has(resolve(here, '..', file))).toBe(false);
  });
});

describe('a worker whose config has no TLS and no HTTP/2 upstream', () => {
  // TLS listeners load their side in precommit (worker-tls.ts); https and HTTP/2 upstreams load
  // their connectors at their first exchange (lazy-connectors.ts); HttpServer loads its HTTP/2
  // side at its first h2 connection (@loch/http's server.ts). About 1 MiB of heap per worker
  // (bench/idle-memory/readings-2026-12-06d.md).
  const files = new Set<string>();
  const loaded = packagesLoadedBy(resolve(here, 'worker.ts'), files);
  const h2Dir = resolve(packagesDir, 'http/src/h2');

  it.each(['@loch/tls', '@loch/transports/tls', '@loch/transports/h2', '@loch/http/h2'])(
    'does not load %s',
    (pkg) => {
      expect(loaded.get(pkg), `${pkg} is imported through ${loaded.get(pkg)}`).toBeUndefined();
    },
  );

  it.each([
    'transports/src/tls-connector.ts',
    'transports/src/h2-connector.ts',
    'tls/src/index.ts',
    'tls/src/internal/engine.ts',
    'http/src/h2/server-protocol.ts',
    'http/src/h2/server-session.ts',
    'http/src/h2/client-session.ts',
  ])('does not load packages/%s', (file) => {
    expect(files.has(resolve(packagesDir, file))).toBe(false);
  });

  it.each(['config/tls.ts', 'proxy/worker-tls.ts'])('does not load %s', (file) => {
    expect(files.has(resolve(here, '..', file))).toBe(false);
  });

  it("loads of @loch/http's h2/ only the errors a handler may test for and the server's limits", () => {
    const h2Files = [...files].filter((f) => f.startsWith(`${h2Dir}/`)).map((f) => f.slice(h2Dir.length + 1));
    expect(h2Files.sort()).toEqual(['client-errors.ts', 'errors.ts', 'limits.ts', 'stream-reset-error.ts']);
  });
});

describe("loch run's main thread", () => {
  const files = new Set<string>();
  // cli.ts imports run.ts when it runs the proxy (a dynamic import): both graphs are the thread's.
  const loaded = new Map([
    ...packagesLoadedBy(resolve(here, '../cli.ts'), files),
    ...packagesLoadedBy(resolve(here, 'run.ts'), files),
  ]);

  it('loads the runtime (the worker pool) and the admin listener (the graph is read)', () => {
    expect(loaded.has('@loch/uring-runtime')).toBe(true);
    expect(files.has(resolve(here, '../admin/admin-listener.ts'))).toBe(true);
  });

  it.each(['zod', 'smol-toml', '@creditkarma/thrift-parser', 'protobufjs', '@bufbuild/protobuf'])(
    'does not load %s (config validation runs in a thread of its own)',
    (parser) => {
      expect(loaded.get(parser), `${parser} is imported through ${loaded.get(parser)}`).toBeUndefined();
    },
  );

  it.each(['config/load.ts', 'config/schema.ts', 'gateway/config.ts'])('does not load %s', (file) => {
    expect(files.has(resolve(here, '..', file))).toBe(false);
  });

  it.each(['@loch/http', '@loch/transports', '@loch/thrift', '@loch/gateway', '@loch/gateway/runtime'])(
    "does not load the workers' %s",
    (pkg) => {
      expect(loaded.get(pkg), `${pkg} is imported through ${loaded.get(pkg)}`).toBeUndefined();
    },
  );

  it('does not load worker.ts (run.ts reads the protocol from worker-protocol.ts)', () => {
    expect(files.has(resolve(here, 'worker.ts'))).toBe(false);
  });
});

describe('the config thread (config/load-thread.ts)', () => {
  // It validates one config and exits: what it loads is on the way to the first request. The
  // TLS checks (config/tls.ts, @loch/tls) and the IDL, protobuf and thrift checks
  // (config/schema-parsers.ts) are imported by validate.ts for configs that have them only.
  const files = new Set<string>();
  const loaded = packagesLoadedBy(resolve(here, '../config/load-thread.ts'), files);

  it('loads the schema and the TOML parser (the graph is read)', () => {
    expect(loaded.has('zod')).toBe(true);
    expect(loaded.has('smol-toml')).toBe(true);
  });

  it.each([
    '@loch/gateway',
    '@loch/thrift',
    '@loch/tls',
    '@loch/http',
    '@loch/uring-runtime',
    '@creditkarma/thrift-parser',
    'protobufjs',
  ])('does not load %s', (pkg) => {
    expect(loaded.get(pkg), `${pkg} is imported through ${loaded.get(pkg)}`).toBeUndefined();
  });

  it.each(['config/load.ts', 'config/tls.ts', 'config/schema-parsers.ts', 'gateway/config.ts'])(
    'does not load %s',
    (file) => {
      expect(files.has(resolve(here, '..', file))).toBe(false);
    },
  );
});

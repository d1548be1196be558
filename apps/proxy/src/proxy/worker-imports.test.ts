/**
 * What a worker isolate loads at start: every worker thread evaluates worker.ts's static import
 * graph again, so a package pulled into it costs its heap once per worker. zod (the config
 * schema) belongs to the main thread; the worker gets the checked config in its workerData.
 * (proxy/log.ts imported LOG_MODULES from config/schema.ts and so loaded zod and the whole
 * schema in every worker: ~5 MiB of heap each, bench/idle-memory/readings-2026-12-06b.md.)
 *
 * The graph is read from the sources: value imports and re-exports (not `import type`, not
 * dynamic `import()`), followed through apps/proxy's own files.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const here = dirname(fileURLToPath(import.meta.url));

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

/** The bare specifiers (packages) reachable from `entry` through relative value imports. */
function packagesLoadedBy(entry: string): Map<string, string> {
  const packages = new Map<string, string>();
  const seen = new Set<string>();
  const queue = [entry];
  while (queue.length > 0) {
    const file = queue.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    for (const spec of valueImports(file)) {
      if (spec.startsWith('.')) queue.push(resolve(dirname(file), spec.replace(/\.js$/, '.ts')));
      else if (!packages.has(spec)) packages.set(spec, file);
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
});

// Bundles apps/proxy/bench/proxy-core.ts as callgrind-core.sh does (BUNDLE= for it), optionally
// (--worker-context) with bench-proxy.ts's context factory made as the worker's would be with
// session 38's context change (a request's own whole context, startedAt REQUEST_OWN, when
// HttpServer says forRequest): that change was not committed (it did not count lower; the patch
// is described in per-request-2026-12-06.md), so the flag needs it applied to the tree.
// Usage: node bench/http-proxy/bundle-core.mjs OUT [--worker-context]
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '../..');
const [out, flag] = process.argv.slice(2);
const require = createRequire(join(root, 'node_modules/.pnpm/node_modules/esbuild/package.json'));
const esbuild = require('esbuild');
const workerContext = {
  name: 'worker-context',
  setup(build) {
    build.onLoad({ filter: /apps\/proxy\/bench\/bench-proxy\.ts$/ }, (args) => {
      let src = readFileSync(args.path, 'utf8');
      const from = 'context: (stream) =>\n      ConnectionContext.empty()';
      if (!src.includes(from)) throw new Error('bench-proxy.ts context factory not found (already changed?)');
      src = src
        .replace(
          from,
          "context: (stream, forRequest) =>\n      (forRequest ? ProxyContext.empty().set('startedAt', REQUEST_OWN) : ConnectionContext.empty())",
        )
        .replace(
          "import { ConnectionContext, type ConnectionCx } from '../src/proxy/context.js';",
          "import { ConnectionContext, type ConnectionCx, ProxyContext, REQUEST_OWN } from '../src/proxy/context.js';",
        );
      return { contents: src, loader: 'ts', resolveDir: dirname(args.path) };
    });
  },
};
await esbuild.build({
  entryPoints: [join(root, 'apps/proxy/bench/proxy-core.ts')],
  absWorkingDir: join(root, 'apps/proxy'),
  bundle: true,
  platform: 'node',
  format: 'esm',
  conditions: ['@loch/source'],
  target: 'node20',
  logLevel: 'warning',
  banner: {
    js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);",
  },
  outfile: out,
  plugins: flag === '--worker-context' ? [workerContext] : [],
});

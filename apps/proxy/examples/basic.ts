/**
 * Validates a loch config in code, as `loch check` does, and prints the effective routes.
 * Run with `pnpm --filter @loch/proxy example`. (To run the proxy itself: `pnpm start`.)
 */
import { ConfigError, parseConfig } from '@loch/proxy';

const config = parseConfig(
  `
[servers.web]
listener = { type = "socket", value = "127.0.0.1:8080" }

[[servers.web.routes]]
path = "/api/{*rest}"
strip_prefix = "/api"
load_balancer = "round_robin"
upstreams = [{ endpoint = "http://127.0.0.1:9001" }, { endpoint = { type = "unix", value = "/run/app.sock" } }]
`,
  'example.toml',
);
for (const server of config.servers) {
  for (const route of server.routes) {
    console.log(
      `${server.key}: ${route.path} -> ${route.upstreams.map((u) => u.label).join(', ')} (${route.loadBalancer})`,
    );
  }
}

try {
  parseConfig('[servers.web]\nlistener = { type = "socket", value = "nowhere" }\n', 'bad.toml');
} catch (error) {
  if (error instanceof ConfigError) console.log(error.message);
}

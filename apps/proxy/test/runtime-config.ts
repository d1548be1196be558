/**
 * A minimal proxy config whose `[runtime]` table holds `workers = 1` and `lines` (TOML), with one
 * HTTP server to route. The one copy for the `[runtime]` key tests (src/config/*-key*.test.ts).
 * Not a test file.
 */
export function runtimeConfig(lines: string): string {
  return `
[runtime]
workers = 1
${lines}
[servers.web]
listener = { type = "socket", value = "127.0.0.1:8080" }
[[servers.web.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:9000" }]
`;
}

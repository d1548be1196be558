import { describe, expect, it } from 'vitest';
import { parseConfig } from '../config/load.js';
import { DIRECTORY_WATCH } from './file-watch.js';
import { logsInWatchedDirectories } from './watched-logs.js';

const config = (log: string, serverLog: string, errorLog: string) =>
  parseConfig(
    `
[log]
access_log = { path = "${log}" }
error_log = { path = "${errorLog}" }

[servers.api]
listener = { type = "socket", value = "127.0.0.1:8080" }
access_log = { path = "${serverLog}", format = "json" }
routes = [{ path = "/", upstreams = [{ endpoint = "http://127.0.0.1:9000" }] }]

[servers.web]
listener = { type = "socket", value = "127.0.0.1:8081" }
routes = [{ path = "/", upstreams = [{ endpoint = "http://127.0.0.1:9000" }] }]
`,
    '/etc/loch/loch.toml',
  );

describe('logsInWatchedDirectories', () => {
  it("names the logs beside the config or a certificate, relative paths resolved from the config's directory", () => {
    const c = config('all.log', '/etc/loch/tls/api.json', '/var/log/loch/error.log');
    expect(
      logsInWatchedDirectories(c, ['/etc/loch/loch.toml', '/etc/loch/tls/cert.pem'], true).sort(),
    ).toEqual(['/etc/loch/all.log', '/etc/loch/tls/api.json']);
  });

  it('names an error log in a watched directory, and nothing for logs in directories of their own', () => {
    const c = config('/var/log/loch/access.log', '/var/log/loch/api.json', '/etc/loch/error.log');
    expect(logsInWatchedDirectories(c, ['/etc/loch/loch.toml'], true)).toEqual(['/etc/loch/error.log']);
    const apart = config('logs/access.log', '/var/log/loch/api.json', '/var/log/loch/error.log');
    expect(logsInWatchedDirectories(apart, ['/etc/loch/loch.toml'], true)).toEqual([]);
  });

  it('names none when the directory watch hears entry changes only (the native one: a log there costs nothing)', () => {
    const c = config('all.log', '/etc/loch/tls/api.json', '/etc/loch/error.log');
    expect(logsInWatchedDirectories(c, ['/etc/loch/loch.toml', '/etc/loch/tls/cert.pem'], false)).toEqual([]);
  });

  it('warns by default only where loch falls back to node:fs watch', () => {
    const c = config('all.log', '/etc/loch/tls/api.json', '/etc/loch/error.log');
    expect(logsInWatchedDirectories(c, ['/etc/loch/loch.toml']).length > 0).toBe(
      DIRECTORY_WATCH.hearsEveryWrite,
    );
  });
});

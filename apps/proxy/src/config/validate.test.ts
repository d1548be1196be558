/**
 * validate.ts without load.ts: its parts (TLS; thrift, gateway and pseudonymization) are not
 * registered, so validation that reaches one throws a typed ConfigPartMissingError (what
 * loadConfigFile catches to import the part), and a plain HTTP config needs neither.
 */
import { describe, expect, it } from 'vitest';
import { ConfigPartMissingError, loadedSchemaPart, parseWithParts } from './validate.js';

const plain = `
[servers.web]
listener = { type = "socket", value = "127.0.0.1:8080" }
[[servers.web.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:9000" }]
`;

describe('validate.ts with no part loaded', () => {
  it('validates a plain HTTP config', () => {
    expect(parseWithParts(plain).servers.map((s) => s.key)).toEqual(['web']);
    expect(loadedSchemaPart()).toBeUndefined();
  });

  it('stops at a TLS server with a ConfigPartMissingError naming the part and what to use', () => {
    const error = (() => {
      try {
        parseWithParts(`${plain}\n[servers.web.tls]\nchain = "a.pem"\nkey = "a.key"\n`);
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(ConfigPartMissingError);
    expect(error).toBeInstanceOf(Error);
    expect(error).toMatchObject({ code: 'ERR_LOCH_CONFIG_PART_MISSING', part: 'tls' });
    expect((error as Error).message).toMatch(/use loadConfigFile, or config\/load\.js/);
  });
});

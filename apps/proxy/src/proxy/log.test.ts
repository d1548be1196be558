import { describe, expect, it } from 'vitest';
import { ProxyLog } from './log.js';

describe('ProxyLog', () => {
  it('buffers access lines and writes them in one call per tick (0 = next turn)', async () => {
    const out: string[] = [];
    const log = new ProxyLog(
      'info',
      'w0: ',
      (t) => out.push(t),
      () => {},
      0,
    );
    for (let i = 0; i < 3; i++) {
      log.access(
        'web',
        { family: 'ipv4', address: '10.1.2.3', port: 4000 + i },
        'GET',
        `/p${i}?q`,
        200,
        12,
        'http://u:1',
        1.234,
      );
    }
    expect(out).toEqual([]);
    await new Promise((r) => setImmediate(r));
    expect(out).toHaveLength(1);
    const lines = out[0]!.trimEnd().split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(
      /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z web 10\.1\.2\.3:4000 GET \/p0\?q 200 12 http:\/\/u:1 1\.23$/,
    );
  });

  it('waits for the coarse tick by default', async () => {
    const out: string[] = [];
    const log = new ProxyLog(
      'info',
      '',
      (t) => out.push(t),
      () => {},
    );
    log.access('s', { family: 'unix', path: '/x' }, 'GET', '/', 200, 0, undefined, 0);
    await new Promise((r) => setImmediate(r));
    expect(out).toEqual([]);
    await new Promise((r) => setTimeout(r, 120));
    expect(out).toHaveLength(1);
  });

  it('flushes every 256 lines without waiting for the tick, and on flush()', () => {
    const out: string[] = [];
    const log = new ProxyLog(
      'info',
      '',
      (t) => out.push(t),
      () => {},
    );
    for (let i = 0; i < 300; i++)
      log.access('s', { family: 'unix', path: '/x' }, 'GET', '/', 404, 0, undefined, 0);
    expect(out).toHaveLength(1);
    expect(out[0]!.split('\n')).toHaveLength(257);
    log.access('s', { family: 'unix', path: '/x' }, 'GET', '/', 404, 0, undefined, 0);
    log.flush();
    expect(out).toHaveLength(2);
    expect(out[1]).toMatch(/ s unix GET \/ 404 0 - 0\.00\n$/);
    expect(out[1]!.split('\n')).toHaveLength(46);
  });

  it('filters operational messages by level, to its own output', () => {
    const err: string[] = [];
    const log = new ProxyLog(
      'warn',
      'w1: ',
      () => {},
      (t) => err.push(t),
    );
    log.info('hidden');
    log.debug('hidden');
    log.warn('shown');
    log.error('also');
    log.flush();
    expect(err.join('')).toMatch(/ warn w1: shown\n.* error w1: also\n$/);
    expect(err.join('')).not.toContain('hidden');
    log.level = 'off';
    log.error('nothing');
    log.flush();
    expect(err.join('')).not.toContain('nothing');
  });
});

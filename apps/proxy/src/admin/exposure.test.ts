import { describe, expect, it } from 'vitest';
import { adminExposureWarning, isLoopback } from './exposure.js';

describe('isLoopback', () => {
  it('takes 127/8, ::1, localhost, IPv4-mapped 127/8 and Unix sockets as loopback', () => {
    for (const host of ['127.0.0.1', '127.1.2.3', '::1', 'localhost', '::ffff:127.0.0.1'])
      expect(isLoopback({ kind: 'tcp', host, port: 9901 })).toBe(true);
    expect(isLoopback({ kind: 'unix', path: '/run/loch-admin.sock' })).toBe(true);
  });

  it('takes every other address as reachable from other hosts', () => {
    for (const host of ['0.0.0.0', '::', '10.0.0.1', '128.0.0.1', '::ffff:10.0.0.1', 'example.com'])
      expect(isLoopback({ kind: 'tcp', host, port: 9901 })).toBe(false);
  });
});

describe('adminExposureWarning', () => {
  it('names a listener other hosts can reach, and says nothing of a loopback one or none', () => {
    expect(adminExposureWarning({ listen: { kind: 'tcp', host: '0.0.0.0', port: 9901 } })).toBe(
      'admin listener on 0.0.0.0:9901 is reachable from other hosts: it shows the config and traffic (bind 127.0.0.1 unless a firewall guards it)',
    );
    expect(adminExposureWarning({ listen: { kind: 'tcp', host: '127.0.0.1', port: 9901 } })).toBeUndefined();
    expect(adminExposureWarning(undefined)).toBeUndefined();
  });
});

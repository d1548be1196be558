import { describe, expect, it } from 'vitest';
import { parseConfig } from '../config/load.js';
import { MetricsLayout, ROUTE_SLOTS, SERVER_SLOTS, UPSTREAM_SLOTS } from './layout.js';

function config(routes: string): ReturnType<typeof parseConfig> {
  return parseConfig(
    `
[servers.web]
listener = { type = "socket", value = "127.0.0.1:18080" }
${routes}
`,
    'test.toml',
  );
}

const TWO_ROUTES = `
[[servers.web.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:9001" }]
[[servers.web.routes]]
path = "/api/"
host = "api.example.com"
upstreams = [{ endpoint = "http://127.0.0.1:9002" }, { endpoint = "http://127.0.0.1:9001" }]
`;

describe('MetricsLayout', () => {
  it('lays out a server, its unrouted series, each route and each upstream once', () => {
    const layout = new MetricsLayout();
    const plan = layout.extend(config(TWO_ROUTES), true);
    const web = plan.servers.get('web')!;
    expect(web.routes.get('')!.get('/')).toBeTypeOf('number');
    expect(web.routes.get('api.example.com')!.get('/api/')).toBeTypeOf('number');
    expect([...web.upstreams.keys()]).toEqual(['http://127.0.0.1:9001', 'http://127.0.0.1:9002']);
    expect(layout.series.map((s) => (s.kind === 'route' ? s.route : s.kind))).toEqual([
      'server',
      '',
      '/',
      'upstream',
      'api.example.com/api/',
      'upstream',
    ]);
    // No two series share a slot.
    const ends = layout.series.map((s) => s.at);
    expect(new Set(ends).size).toBe(ends.length);
    expect(plan.size).toBe(4 + SERVER_SLOTS + 3 * ROUTE_SLOTS + 2 * UPSTREAM_SLOTS);
  });

  it('keeps every slot where it was across a reload and only appends what the reload adds', () => {
    const layout = new MetricsLayout();
    const first = layout.extend(config(TWO_ROUTES), true);
    const rootAt = first.servers.get('web')!.routes.get('')!.get('/');
    const sizeBefore = first.size;
    const second = layout.extend(
      config(`
[[servers.web.routes]]
path = "/new/"
upstreams = [{ endpoint = "http://127.0.0.1:9003" }]
[[servers.web.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:9001" }]
`),
      true,
    );
    const web = second.servers.get('web')!;
    expect(web.routes.get('')!.get('/')).toBe(rootAt);
    expect(web.routes.get('')!.get('/new/')).toBe(sizeBefore);
    // The removed route keeps its slots (a later reload that brings it back counts on).
    expect(web.routes.get('api.example.com')!.get('/api/')).toBeTypeOf('number');
    expect(second.size).toBe(sizeBefore + ROUTE_SLOTS + UPSTREAM_SLOTS);
  });

  it('does not lay out series past its capacity, and counts them', () => {
    const layout = new MetricsLayout(4 + SERVER_SLOTS + 2 * ROUTE_SLOTS);
    const plan = layout.extend(config(TWO_ROUTES), true);
    expect(plan.size).toBeLessThanOrEqual(layout.capacity);
    expect(plan.servers.get('web')!.routes.get('')!.get('/')).toBeTypeOf('number');
    expect(plan.servers.get('web')!.routes.get('api.example.com')?.get('/api/')).toBeUndefined();
    // The /api/ route and both upstreams; asked again by a reload, they are not counted twice.
    expect(layout.overflow).toBe(3);
    layout.extend(config(TWO_ROUTES), true);
    expect(layout.overflow).toBe(3);
  });
});

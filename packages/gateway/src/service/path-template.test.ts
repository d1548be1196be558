/** PathTemplate: the config's `{id}`, Hertz's `:id`, rest parameters, escapes, and misses. */
import { describe, expect, it } from 'vitest';
import { PathTemplate } from './path-template.js';

const params = (t: string, path: string) => {
  const m = new PathTemplate(t).match(path);
  return m === undefined ? undefined : Object.fromEntries(m);
};

describe('PathTemplate', () => {
  it('matches literal and parameter segments in both spellings', () => {
    expect(params('/users/{id}', '/users/42')).toEqual({ id: '42' });
    expect(params('/users/:id/posts/:post', '/users/1/posts/2')).toEqual({ id: '1', post: '2' });
    expect(params('/', '/')).toEqual({});
    expect(params('/status', '/status')).toEqual({});
  });

  it('misses on another length, an empty segment, a trailing slash or another literal', () => {
    expect(params('/users/{id}', '/users')).toBeUndefined();
    expect(params('/users/{id}', '/users/')).toBeUndefined();
    expect(params('/users/{id}', '/users/1/')).toBeUndefined();
    expect(params('/users/{id}', '/users/1/more')).toBeUndefined();
    expect(params('/users/{id}', '/user/1')).toBeUndefined();
    expect(params('/status', '/statuses')).toBeUndefined();
    expect(params('/', '/x')).toBeUndefined();
  });

  it('percent-decodes parameters; a bad escape does not match', () => {
    expect(params('/files/{name}', '/files/a%20b%2Fc')).toEqual({ name: 'a b/c' });
    expect(params('/files/{name}', '/files/%E0%A4%A')).toBeUndefined();
  });

  it('takes the rest of the path in a rest parameter (three spellings)', () => {
    expect(params('/static/{path...}', '/static/a/b.css')).toEqual({ path: 'a/b.css' });
    expect(params('/static/*path', '/static/a/b.css')).toEqual({ path: 'a/b.css' });
    expect(params('/static/{*path}', '/static/a')).toEqual({ path: 'a' });
    expect(params('/static/{*path}', '/static/')).toBeUndefined();
  });

  it('refuses templates it cannot match', () => {
    expect(() => new PathTemplate('users')).toThrow(/must start with/);
    expect(() => new PathTemplate('/{a}/{a}')).toThrow(/twice/);
    expect(() => new PathTemplate('/{*rest}/x')).toThrow(/must be last/);
    expect(() => new PathTemplate('/{a-b}')).toThrow(/bad parameter name/);
  });
});

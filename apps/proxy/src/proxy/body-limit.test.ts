import { createRequest, HttpBodyError, streamBody } from '@loch/http';
import { describe, expect, it } from 'vitest';
import { LimitedBody, limitRequestBody } from './body-limit.js';

async function* chunks(sizes: number[], seen: number[]) {
  for (const n of sizes) {
    seen.push(n);
    yield new Uint8Array(n);
  }
}

describe('limitRequestBody', () => {
  it('refuses a known length above the limit at once, without reading', () => {
    const req = createRequest('POST', '/', { body: streamBody(chunks([10], []), { length: 2000 }) });
    const error = limitRequestBody(req, 1000);
    expect(error).toBeInstanceOf(HttpBodyError);
    expect(error?.status).toBe(413);
    expect(error?.code).toBe('ERR_HTTP_BODY_TOO_LARGE');
  });

  it('leaves a known length within the limit, and any body without a limit, untouched', () => {
    const body = streamBody(chunks([10], []), { length: 10 });
    const req = createRequest('POST', '/', { body });
    expect(limitRequestBody(req, 1000)).toBeNull();
    expect(req.body).toBe(body);
    const open = createRequest('POST', '/', { body: streamBody(chunks([10], [])) });
    expect(limitRequestBody(open, 0)).toBeNull();
    expect(open.body).not.toBeInstanceOf(LimitedBody);
  });

  it('cuts a body of unknown length on the chunk that crosses the limit, before passing it on', async () => {
    const produced: number[] = [];
    const req = createRequest('POST', '/', { body: streamBody(chunks([400, 400, 400, 400], produced)) });
    expect(limitRequestBody(req, 1000)).toBeNull();
    expect(req.body).toBeInstanceOf(LimitedBody);
    const passed: number[] = [];
    await expect(
      (async () => {
        for await (const c of req.body) passed.push(c.byteLength);
      })(),
    ).rejects.toMatchObject({ code: 'ERR_HTTP_BODY_TOO_LARGE', status: 413 });
    expect(passed).toEqual([400, 400]);
    expect(produced).toEqual([400, 400, 400]);
  });

  it('lets a body of unknown length that ends at the limit through', async () => {
    const req = createRequest('POST', '/', { body: streamBody(chunks([500, 500], [])) });
    limitRequestBody(req, 1000);
    let total = 0;
    for await (const c of req.body) total += c.byteLength;
    expect(total).toBe(1000);
  });
});

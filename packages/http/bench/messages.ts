/** The requests the parse benchmarks use: a browser-like GET and a small JSON POST. */
export const GET: Buffer = Buffer.from(
  [
    'GET /api/v1/items/12345?include=details&sort=desc HTTP/1.1',
    'Host: www.example.com',
    'User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36',
    'Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8',
    'Accept-Language: en-US,en;q=0.9',
    'Accept-Encoding: gzip, deflate, br',
    'Connection: keep-alive',
    'Cookie: session=abc123def456; theme=dark; lang=en',
    'Cache-Control: no-cache',
    'Referer: https://www.example.com/items',
    'Sec-Fetch-Mode: navigate',
    'X-Request-Id: 7f9c2ba4-e88f-4a43-b7c2-6c2a2d0e5a11',
    '',
    '',
  ].join('\r\n'),
  'latin1',
);

export const POST: Buffer = Buffer.from(
  'POST /submit HTTP/1.1\r\nHost: api.example.com\r\nContent-Type: application/json\r\nContent-Length: 27\r\n\r\n{"name":"loch","fast":true}',
  'latin1',
);

/**
 * @loch/http in one file: an HttpServer on a runtime TcpListener answering a fixed body, a
 * streamed body and an echo, then an HttpClient over a runtime TcpStream calling it on one
 * kept-alive connection. Run with `pnpm --filter @loch/http example`.
 */
import {
  createRequest,
  createResponse,
  fixedBody,
  HttpClient,
  type HttpConnectionContext,
  type HttpHandler,
  HttpServer,
  readText,
  streamBody,
} from '@loch/http';
import { TcpListener, TcpStream } from '@loch/uring-runtime';

const handler: HttpHandler<HttpConnectionContext> = {
  // The handler is a Service: one argument, the request, which carries its connection's context.
  async call(request) {
    if (request.target === '/hello') {
      const peer = request.context.get('peerAddr');
      const who = peer.family === 'unix' ? peer.path : `${peer.address}:${peer.port}`;
      return createResponse(200, {
        headers: { 'content-type': 'text/plain' },
        body: fixedBody(`hello ${who}\n`),
      });
    }
    if (request.target === '/echo') {
      // The request body streams back as it arrives (chunked), with backpressure both ways.
      return createResponse(200, { body: streamBody(request.body) });
    }
    return createResponse(404, { body: fixedBody('not found\n') });
  },
};

const listener = await TcpListener.bind({ host: '127.0.0.1', port: 0 });
const server = new HttpServer(handler, { timeouts: { idle: 5_000 } });
const serving = server.serve(listener);
const { port } = listener.localAddress as { port: number };
console.log(`listening on 127.0.0.1:${port} (${listener.driver} driver)`);

const client = new HttpClient(await TcpStream.connect({ host: '127.0.0.1', port }), {
  authority: `127.0.0.1:${port}`,
});
const hello = await client.send(createRequest('GET', '/hello'));
console.log(hello.status, await readText(hello.body));
const echo = await client.send(createRequest('POST', '/echo', { body: fixedBody('ping') }));
console.log(echo.status, echo.headers.get('transfer-encoding'), await readText(echo.body));
console.log('connection reusable:', client.reusable);

await client.close();
await server.close();
await serving;

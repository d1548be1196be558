/**
 * The gRPC-shaped upstream of the HTTP/2 benchmark's gRPC part, run as its own process
 * (`node --import tsx grpc-upstream.ts <port>`): a node:http2 h2c server that answers every
 * POST the way a gRPC server answers a unary call (HTTP 200, `content-type: application/grpc`,
 * one length-prefixed message, then trailers `grpc-status: 0`). It reads the request body to
 * its end first, as a server must before it answers a unary call. Not a gRPC implementation: no
 * protobuf, no service routing; it stands in for one so that the proxy's cost per call is
 * measured without a slow peer in the way.
 */
import * as http2 from 'node:http2';

const port = Number(process.argv[2]);
/** The reply: a gRPC message frame (not compressed, 7 bytes: field 1 = "hello"). */
const REPLY = Buffer.from([0, 0, 0, 0, 7, 0x0a, 0x05, 0x68, 0x65, 0x6c, 0x6c, 0x6f]);

const server = http2.createServer({ settings: { maxConcurrentStreams: 1000 } });
server.on('stream', (stream) => {
  stream.on('error', () => {});
  stream.on('data', () => {});
  stream.on('end', () => {
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
    stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
    stream.end(REPLY);
  });
});
server.listen(port, '127.0.0.1', () => process.stdout.write(`listening on ${port}\n`));
process.on('SIGTERM', () => process.exit(0));

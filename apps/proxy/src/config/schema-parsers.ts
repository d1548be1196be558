/**
 * The part of config validation that checks thrift servers, gateway routes and pseudonymization
 * tables: IDL and protobuf schemas (@loch/gateway with its thrift-parser, protobufjs and
 * @bufbuild/protobuf), TTHeader integer keys (@loch/thrift), and the files those read (for the
 * reload's file watch). validate.ts imports it only for a config that has one of them: the
 * other configs' validation loads none of these packages (issue 18). Not a parser of its own.
 */
export { gatewayFiles, gatewayRouteOf, mergeGatewayRoutes } from '../gateway/config.js';
export { grpcPseudonymOf } from '../gateway/grpc-pseudonym-schema.js';
export { intHeaderKey, unknownIntHeader } from '../thrift/int-headers.js';
export { thriftPseudonymOf } from '../thrift/pseudonym-config.js';

/**
 * @loch/gateway/runtime: everything of @loch/gateway that serves calls (converters, routes, the
 * gRPC and Thrift pseudonymization layers, errors), without the schema loaders (loadIdl,
 * loadProtoFiles, loadDescriptorSets, ProtoPseudonymPlan) and so without the parsers they bring
 * (@creditkarma/thrift-parser, protobufjs, @bufbuild/protobuf: ~3.4 MiB of heap per isolate).
 * For serving threads that receive parsed IDL documents from the thread that loaded the
 * configuration and load a schema parser only when a route needs one. The package's root exports
 * all of this and the loaders.
 */

export { JsonText } from './codec/json-text.js';
export { decodeBase64, JsonToThriftCompiler, ttypeOf, type ValueWriter } from './codec/json-to-thrift.js';
export { compileResponseStruct, type ResponseParts, type ResponseReader } from './codec/response-struct.js';
export { textParamValue } from './codec/text-params.js';
export {
  type JsonEmitter,
  type JsonFieldsEmitter,
  type JsonReader,
  ThriftToJsonCompiler,
  type ThriftToJsonOptions,
} from './codec/thrift-to-json.js';
export {
  GatewayConfigError,
  GatewayRequestError,
  type GatewayRequestErrorCode,
  GatewayUpstreamError,
  type GatewayUpstreamFailure,
  IdlError,
  type IdlErrorCode,
  UNKNOWN_FIELD,
} from './errors.js';
export { GrpcPseudonymService } from './grpc/grpc-layer.js';
export { GrpcMessageStream, GrpcPseudonymRewriter, ProtoMessageRewriter } from './grpc/proto-rewriter.js';
export type {
  Annotations,
  BaseKind,
  EnumDef,
  FieldDef,
  FunctionDef,
  IdlDocument,
  IdlType,
  Requiredness,
  ServiceDef,
  StructDef,
  StructKind,
} from './idl/model.js';
export { PseudonymError, type PseudonymErrorCode, segmentsPath } from './pseudonym/errors.js';
export {
  decodeKeyText,
  isKeyId,
  PseudonymKeyring,
  type PseudonymKeyringOptions,
  type PseudonymKeySource,
} from './pseudonym/keyring.js';
export { type PseudonymDirection, PseudonymRewriter } from './pseudonym/message-rewriter.js';
export {
  AMBIGUOUS_METHOD,
  type FunctionPlan,
  type PlanNode,
  type PlannedField,
  type PseudonymFieldRule,
  type PseudonymLeaf,
  PseudonymPlan,
  type PseudonymPlanOptions,
  type StructPlan,
} from './pseudonym/plan.js';
export { Pseudonymizer, type TokenFormat } from './pseudonym/pseudonymizer.js';
export { ThriftPseudonymService, thriftPseudonymLayer } from './pseudonym/thrift-layer.js';
export {
  type GatewayRefusal,
  type GatewayRefusalListener,
  type GatewayRefusalReason,
  replyRefusal,
  requestRefusal,
} from './refusal.js';
export { ClientExchange, type ClientExchangeOptions } from './service/client-exchange.js';
export {
  errorResponse,
  GatewayRoute,
  type GatewayRouteOptions,
  jsonResponse,
  type ThriftExchange,
} from './service/gateway-route.js';
export {
  type GatewayMatch,
  GatewayRoutes,
  ThriftGateway,
  ThriftGatewayService,
  thriftGatewayLayer,
} from './service/gateway-service.js';
export { PathTemplate } from './service/path-template.js';
export { annotatedRoute, type BindingInput, RequestBinding } from './service/request-binding.js';

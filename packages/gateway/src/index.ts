/**
 * @loch/gateway: an HTTP/JSON -> Thrift gateway. Loads .thrift IDLs (with
 * @creditkarma/thrift-parser), compiles JSON <-> Thrift converters per type from them, and maps
 * HTTP routes onto service functions as a Service of @loch/service-async over @loch/http
 * messages, calling upstreams through any ThriftExchange (@loch/thrift's ThriftClient is one).
 */

export {
  loadProtoRoot,
  type ProtoLeaf,
  type ProtoMessagePlan,
  type ProtoMethodPlan,
  type ProtoNode,
  ProtoPseudonymPlan,
} from './grpc/proto-plan.js';
export {
  loadDescriptorSets,
  loadProtoFiles,
  type ProtoFieldDesc,
  type ProtoMessageDesc,
  type ProtoMethodDesc,
  type ProtoSchema,
  type ProtoServiceDesc,
  schemaOfRegistry,
  schemaOfRoot,
} from './grpc/proto-schema.js';
export { type LoadIdlOptions, loadIdl } from './idl/load.js';
export * from './runtime.js';

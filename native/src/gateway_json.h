// Thrift -> JSON text for @loch/gateway: reads one Thrift value (binary or compact protocol) by a
// plan compiled once per IDL type and writes its JSON text as UTF-8 into caller memory, byte for
// byte what the gateway's JavaScript emitters (packages/gateway/src/codec/thrift-to-json.ts)
// write. Any input the JavaScript reader would refuse is refused here (kError) and the caller
// runs the JavaScript path, which throws the exact typed error; this side never builds error
// messages. See gateway_json.cc for the plan layout and the JS-facing calls.
#pragma once

#include <napi.h>

namespace loch::gatewayjson {

// Adds `gatewayJson: { compile(plan, text), emit(plan, root, src, out, io) }` to exports.
void Register(Napi::Env env, Napi::Object exports);

}  // namespace loch::gatewayjson

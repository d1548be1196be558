// The JavaScript face of the TLS engine, as seen by the module that embeds it: loch_native.node
// registers these exports under `tls` (and keeps TlsEnv in its per-environment state), so its ring
// can carry the very sessions JavaScript made (SessionOf). loch_tls.node registers them as its
// whole module. Not for the engine itself (tls_engine.h) or the ring (ring.h).
#pragma once

#include <napi.h>

#include <memory>

#include "tls_engine.h"

namespace loch::tlsjs {

/** Per-environment state of the TLS face. */
struct TlsEnv {
  Napi::FunctionReference contextClass;
  Napi::FunctionReference sessionClass;
  Napi::Reference<Napi::Int32Array> infoRef;
  int32_t* info = nullptr;
  /** Calls into a TlsSession from JavaScript on this thread (the crossing counter). */
  double calls = 0;
};

/** This environment's TlsEnv (defined by the module that embeds the face). */
TlsEnv* EnvOf(Napi::Env env);

/** Sets TlsContext, TlsSession, bindInfo, opensslVersion, flags and callCount on `exports`. */
void Register(Napi::Env env, Napi::Object exports);

/** The engine session behind a TlsSession object of this module; nullptr for anything else. */
std::shared_ptr<tls::TlsSession> SessionOf(Napi::Env env, Napi::Value value);

}  // namespace loch::tlsjs

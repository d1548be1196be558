// The JavaScript face of the TLS engine (tls_engine.h): `TlsContext` and `TlsSession` classes.
// One crossing per received chunk: `feed(ciphertext, plaintextBuffer)` decrypts into the caller's
// buffer and returns the ciphertext to send (handshake flights, alerts, tickets) in the same call;
// the counts and flags go into a per-thread Int32Array bound once (`bindInfo`), so the call
// allocates nothing on the JS heap unless there is something to send. `encrypt(data | data[])`
// turns a whole write (or writev) into one ciphertext buffer. Failures are reported, not thrown:
// JS validates arguments and builds typed errors from `error()`.
//
// Built twice: into loch_native.node (LOCH_TLS_EMBEDDED: addon.cc registers these exports under
// `tls` and keeps TlsEnv in its own per-environment state, so the ring can attach these very
// sessions to its streams), and as its own module loch_tls.node, so TLS works on machines where
// liburing is missing and the ring's build cannot break it.
#include "tls_addon.h"

#include <napi.h>
#include <openssl/crypto.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "tls_engine.h"

#ifndef LOCH_TLS_EMBEDDED
// The standalone module keeps TlsEnv as its instance data.
loch::tlsjs::TlsEnv* loch::tlsjs::EnvOf(Napi::Env env) { return env.GetInstanceData<TlsEnv>(); }
#endif

namespace {

using loch::tls::ErrorKind;
using loch::tls::FeedResult;
using loch::tlsjs::EnvOf;
using loch::tlsjs::TlsEnv;

// Slots of the info array.
constexpr int kInfoPlaintext = 0;
constexpr int kInfoFlags = 1;
constexpr int kInfoLength = 4;

// Bytes of a Uint8Array (or Buffer) argument, without materializing its ArrayBuffer; false when
// it is not one.
bool BytesOf(const Napi::Value& v, const unsigned char** data, size_t* len) {
  if (!v.IsTypedArray()) return false;
  napi_typedarray_type type;
  size_t length;
  void* bytes;
  if (napi_get_typedarray_info(v.Env(), v, &type, &length, &bytes, nullptr, nullptr) != napi_ok ||
      type != napi_uint8_array) {
    return false;
  }
  *data = static_cast<const unsigned char*>(bytes);
  *len = length;
  return true;
}

Napi::Value Failure(Napi::Env env, const std::string& why) { return Napi::String::New(env, why); }

void ThrowType(Napi::Env env, const char* what) { Napi::TypeError::New(env, what).ThrowAsJavaScriptException(); }

class ContextWrap : public Napi::ObjectWrap<ContextWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "TlsContext",
                       {
                           InstanceMethod<&ContextWrap::AddCertificate>("addCertificate"),
                           InstanceMethod<&ContextWrap::SetAlpn>("setAlpn"),
                           InstanceMethod<&ContextWrap::SetTicketKeys>("setTicketKeys"),
                           InstanceMethod<&ContextWrap::SetCaPem>("setCaPem"),
                           InstanceMethod<&ContextWrap::LoadCaFile>("loadCaFile"),
                           InstanceMethod<&ContextWrap::SetVerify>("setVerify"),
                           InstanceMethod<&ContextWrap::SetOwnRecords>("setOwnRecords"),
                           InstanceMethod<&ContextWrap::RecordStats>("recordStats"),
                           InstanceMethod<&ContextWrap::SetNumTickets>("setNumTickets"),
                       });
  }

  // new TlsContext(server, minVersion, maxVersion, ciphers, ciphersuites)
  explicit ContextWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ContextWrap>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 5 || !info[0].IsBoolean() || !info[1].IsNumber() || !info[2].IsNumber() ||
        !info[3].IsString() || !info[4].IsString()) {
      ThrowType(env, "TlsContext(server, minVersion, maxVersion, ciphers, ciphersuites)");
      return;
    }
    std::string why;
    context_ = loch::tls::TlsContext::Create(
        info[0].As<Napi::Boolean>(), info[1].As<Napi::Number>().Int32Value(), info[2].As<Napi::Number>().Int32Value(),
        info[3].As<Napi::String>(), info[4].As<Napi::String>(), &why);
    if (!context_) Napi::Error::New(env, why).ThrowAsJavaScriptException();
  }

  const std::shared_ptr<loch::tls::TlsContext>& context() const { return context_; }

 private:
  // addCertificate(chainPem, keyPem, names[], isDefault) -> undefined | error string
  Napi::Value AddCertificate(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 4 || !info[0].IsString() || !info[1].IsString() || !info[2].IsArray()) {
      ThrowType(env, "addCertificate(chainPem, keyPem, names, isDefault)");
      return env.Undefined();
    }
    auto list = info[2].As<Napi::Array>();
    std::vector<std::string> names;
    for (uint32_t i = 0; i < list.Length(); i++) {
      Napi::Value v = list.Get(i);
      if (v.IsString()) names.push_back(v.As<Napi::String>());
    }
    std::string why;
    if (!context_->AddCertificate(info[0].As<Napi::String>(), info[1].As<Napi::String>(), names,
                                  info[3].ToBoolean(), &why)) {
      return Failure(env, why);
    }
    return env.Undefined();
  }

  // setAlpn(wire: Uint8Array) -> undefined | error string
  Napi::Value SetAlpn(const Napi::CallbackInfo& info) {
    const unsigned char* data;
    size_t len;
    if (info.Length() < 1 || !BytesOf(info[0], &data, &len)) {
      ThrowType(info.Env(), "setAlpn(wire: Uint8Array)");
      return info.Env().Undefined();
    }
    std::string why;
    if (!context_->SetAlpn(data, len, &why)) return Failure(info.Env(), why);
    return info.Env().Undefined();
  }

  // setTicketKeys(keys: Uint8Array of n * 80 bytes) -> undefined | error string
  Napi::Value SetTicketKeys(const Napi::CallbackInfo& info) {
    const unsigned char* data;
    size_t len;
    if (info.Length() < 1 || !BytesOf(info[0], &data, &len)) {
      ThrowType(info.Env(), "setTicketKeys(keys: Uint8Array)");
      return info.Env().Undefined();
    }
    std::string why;
    if (!context_->SetTicketKeys(data, len, &why)) return Failure(info.Env(), why);
    return info.Env().Undefined();
  }

  // setCaPem(pem) -> undefined | error string
  Napi::Value SetCaPem(const Napi::CallbackInfo& info) {
    if (info.Length() < 1 || !info[0].IsString()) {
      ThrowType(info.Env(), "setCaPem(pem: string)");
      return info.Env().Undefined();
    }
    std::string why;
    if (!context_->SetCaPem(info[0].As<Napi::String>(), &why)) return Failure(info.Env(), why);
    return info.Env().Undefined();
  }

  // loadCaFile(path) -> undefined | error string; '' loads OpenSSL's default paths.
  Napi::Value LoadCaFile(const Napi::CallbackInfo& info) {
    if (info.Length() < 1 || !info[0].IsString()) {
      ThrowType(info.Env(), "loadCaFile(path: string)");
      return info.Env().Undefined();
    }
    std::string why;
    if (!context_->LoadCaFile(info[0].As<Napi::String>(), &why)) return Failure(info.Env(), why);
    return info.Env().Undefined();
  }

  // setVerify(request, require)
  Napi::Value SetVerify(const Napi::CallbackInfo& info) {
    context_->SetVerify(info.Length() > 0 && info[0].ToBoolean(), info.Length() > 1 && info[1].ToBoolean());
    return info.Env().Undefined();
  }

  // setOwnRecords(on)
  Napi::Value SetOwnRecords(const Napi::CallbackInfo& info) {
    context_->SetOwnRecords(info.Length() > 0 && info[0].ToBoolean());
    return info.Env().Undefined();
  }

  // setNumTickets(n): TLS 1.3 tickets sent after a full handshake (server)
  Napi::Value SetNumTickets(const Napi::CallbackInfo& info) {
    if (info.Length() < 1 || !info[0].IsNumber()) {
      ThrowType(info.Env(), "setNumTickets(n: number)");
      return info.Env().Undefined();
    }
    SSL_CTX_set_num_tickets(context_->ctx(), info[0].As<Napi::Number>().Uint32Value());
    return info.Env().Undefined();
  }

  // recordStats() -> { loch, declined }
  Napi::Value RecordStats(const Napi::CallbackInfo& info) {
    Napi::Object out = Napi::Object::New(info.Env());
    out.Set("loch", Napi::Number::New(info.Env(), static_cast<double>(context_->recordsTaken())));
    out.Set("declined", Napi::Number::New(info.Env(), static_cast<double>(context_->recordsDeclined())));
    return out;
  }

  std::shared_ptr<loch::tls::TlsContext> context_;
};

class SessionWrap : public Napi::ObjectWrap<SessionWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "TlsSession",
                       {
                           InstanceMethod<&SessionWrap::SetServername>("setServername"),
                           InstanceMethod<&SessionWrap::SetAlpn>("setAlpn"),
                           InstanceMethod<&SessionWrap::SetSession>("setSession"),
                           InstanceMethod<&SessionWrap::Feed>("feed"),
                           InstanceMethod<&SessionWrap::Encrypt>("encrypt"),
                           InstanceMethod<&SessionWrap::Shutdown>("shutdown"),
                           InstanceMethod<&SessionWrap::TakeOutput>("takeOutput"),
                           InstanceMethod<&SessionWrap::Error>("error"),
                           InstanceMethod<&SessionWrap::Negotiated>("negotiated"),
                           InstanceMethod<&SessionWrap::Session>("session"),
                           InstanceMethod<&SessionWrap::Destroy>("destroy"),
                       });
  }

  // new TlsSession(context)
  explicit SessionWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<SessionWrap>(info) {
    Napi::Env env = info.Env();
    TlsEnv* tlsEnv = EnvOf(env);
    if (info.Length() < 1 || !info[0].IsObject() ||
        !info[0].As<Napi::Object>().InstanceOf(tlsEnv->contextClass.Value())) {
      ThrowType(env, "TlsSession(context: TlsContext)");
      return;
    }
    if (tlsEnv->info == nullptr) {
      Napi::Error::New(env, "bindInfo() was not called on this thread").ThrowAsJavaScriptException();
      return;
    }
    ContextWrap* context = ContextWrap::Unwrap(info[0].As<Napi::Object>());
    session_ = std::make_shared<loch::tls::TlsSession>(context->context());
    if (!session_->ok()) Napi::Error::New(env, session_->error()).ThrowAsJavaScriptException();
  }

 private:
  // The ciphertext waiting to be sent, as a new Uint8Array; undefined when there is none.
  Napi::Value Output(Napi::Env env) {
    size_t n = session_->PendingOutput();
    if (n == 0) return env.Undefined();
    // A Buffer: node allocates its memory without zero-filling it (a Uint8Array's would be
    // cleared first, only to be overwritten).
    Napi::Buffer<unsigned char> out = Napi::Buffer<unsigned char>::New(env, n);
    size_t got = session_->TakeOutput(out.Data(), n);
    if (got != n) return Napi::Buffer<unsigned char>::Copy(env, out.Data(), got);
    return out;
  }

  bool Alive(Napi::Env env) {
    EnvOf(env)->calls++;
    if (session_) return true;
    Napi::Error::New(env, "the TLS session was destroyed").ThrowAsJavaScriptException();
    return false;
  }

  Napi::Value SetServername(const Napi::CallbackInfo& info) {
    if (!Alive(info.Env())) return info.Env().Undefined();
    if (info.Length() < 1 || !info[0].IsString()) {
      ThrowType(info.Env(), "setServername(name: string, verifyHost: boolean)");
      return info.Env().Undefined();
    }
    return Napi::Boolean::New(info.Env(),
                              session_->SetServername(info[0].As<Napi::String>(), info.Length() > 1 && info[1].ToBoolean()));
  }

  Napi::Value SetAlpn(const Napi::CallbackInfo& info) {
    if (!Alive(info.Env())) return info.Env().Undefined();
    const unsigned char* data;
    size_t len;
    if (info.Length() < 1 || !BytesOf(info[0], &data, &len)) {
      ThrowType(info.Env(), "setAlpn(wire: Uint8Array)");
      return info.Env().Undefined();
    }
    return Napi::Boolean::New(info.Env(), session_->SetAlpn(data, len));
  }

  Napi::Value SetSession(const Napi::CallbackInfo& info) {
    if (!Alive(info.Env())) return info.Env().Undefined();
    const unsigned char* data;
    size_t len;
    if (info.Length() < 1 || !BytesOf(info[0], &data, &len)) {
      ThrowType(info.Env(), "setSession(bytes: Uint8Array)");
      return info.Env().Undefined();
    }
    return Napi::Boolean::New(info.Env(), session_->SetSession(data, len));
  }

  // feed(ciphertext: Uint8Array | null, plaintext: Uint8Array) -> Uint8Array (to send) | undefined
  // info[0] = plaintext bytes written, info[1] = flags (tls_engine.h FeedFlags).
  Napi::Value Feed(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Alive(env)) return env.Undefined();
    const unsigned char* in = nullptr;
    size_t inLen = 0;
    const unsigned char* plain;
    size_t cap;
    if (info.Length() < 2 || (!info[0].IsNull() && !info[0].IsUndefined() && !BytesOf(info[0], &in, &inLen)) ||
        !BytesOf(info[1], &plain, &cap)) {
      ThrowType(env, "feed(ciphertext: Uint8Array | null, plaintext: Uint8Array)");
      return env.Undefined();
    }
    FeedResult r = session_->Feed(in, inLen, const_cast<unsigned char*>(plain), cap);
    // The engine reads the input in place until a call ends without kMorePlaintext: keep it
    // alive (and where it is) until then, whatever the caller does with it meanwhile.
    if ((r.flags & loch::tls::kMorePlaintext) != 0) {
      if (inLen > 0) pinnedInput_ = Napi::Persistent(info[0].As<Napi::Object>());
    } else if (!pinnedInput_.IsEmpty()) {
      pinnedInput_.Reset();
    }
    int32_t* slots = EnvOf(env)->info;
    slots[kInfoPlaintext] = static_cast<int32_t>(r.plaintext);
    slots[kInfoFlags] = r.flags;
    return Output(env);
  }

  // encrypt(data: Uint8Array | Uint8Array[]) -> Uint8Array (ciphertext) | undefined
  // info[1] = flags (kFailed when it failed). The records are written by OpenSSL straight into
  // the returned buffer (allocated once at the bound, not zero-filled): no copy after encryption.
  Napi::Value Encrypt(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Alive(env)) return env.Undefined();
    const unsigned char* data;
    size_t len;
    size_t total = 0;
    uint32_t count = 0;
    Napi::Array list;
    bool isList = info.Length() >= 1 && info[0].IsArray();
    if (isList) {
      list = info[0].As<Napi::Array>();
      count = list.Length();
      for (uint32_t i = 0; i < count; i++) {
        if (!BytesOf(list.Get(i), &data, &len)) {
          ThrowType(env, "encrypt(data: Uint8Array | Uint8Array[])");
          return env.Undefined();
        }
        total += len;
      }
    } else if (info.Length() >= 1 && BytesOf(info[0], &data, &len)) {
      total = len;
    } else {
      ThrowType(env, "encrypt(data: Uint8Array | Uint8Array[])");
      return env.Undefined();
    }
    // One bound for the whole list: records may span the buffers' boundaries.
    size_t cap = session_->PendingOutput() + loch::tls::TlsSession::EncryptBound(total) + 64 * static_cast<size_t>(count);
    Napi::Buffer<unsigned char> out = Napi::Buffer<unsigned char>::New(env, cap);
    size_t used = 0;
    bool ok = true;
    if (isList) {
      std::vector<iovec> pieces(count);
      for (uint32_t i = 0; i < count; i++) {
        BytesOf(list.Get(i), &data, &len);
        pieces[i] = iovec{const_cast<unsigned char*>(data), len};
      }
      ok = session_->EncryptPiecesInto(pieces.data(), pieces.size(), out.Data(), cap, &used);
    } else {
      ok = session_->EncryptInto(data, len, out.Data(), cap, &used);
    }
    EnvOf(env)->info[kInfoFlags] = ok ? 0 : loch::tls::kFailed;
    if (session_->PendingOutput() > 0) {
      // The bound was too small (it should not be): append the spill, with one copy.
      size_t spill = session_->PendingOutput();
      Napi::Buffer<unsigned char> all = Napi::Buffer<unsigned char>::New(env, used + spill);
      memcpy(all.Data(), out.Data(), used);
      session_->TakeOutput(all.Data() + used, spill);
      return all;
    }
    if (used == 0) return env.Undefined();
    if (used == cap) return out;
    return Napi::Uint8Array::New(env, used, out.ArrayBuffer(), out.ByteOffset());
  }

  // shutdown() -> Uint8Array (close_notify) | undefined
  Napi::Value Shutdown(const Napi::CallbackInfo& info) {
    if (!Alive(info.Env())) return info.Env().Undefined();
    session_->Shutdown();
    return Output(info.Env());
  }

  Napi::Value TakeOutput(const Napi::CallbackInfo& info) {
    if (!Alive(info.Env())) return info.Env().Undefined();
    return Output(info.Env());
  }

  // error() -> { kind, message, alert, alertFromPeer } | undefined
  Napi::Value Error(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!session_ || !session_->failed()) return env.Undefined();
    Napi::Object out = Napi::Object::New(env);
    out.Set("kind", Napi::Number::New(env, static_cast<int>(session_->errorKind())));
    out.Set("message", session_->error());
    out.Set("alert", Napi::Number::New(env, session_->alert()));
    out.Set("alertFromPeer", Napi::Boolean::New(env, session_->alertFromPeer()));
    return out;
  }

  // negotiated() -> { alpnProtocol, servername, version, cipher, sessionReused, peerCertificate }
  Napi::Value Negotiated(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Alive(env)) return env.Undefined();
    Napi::Object out = Napi::Object::New(env);
    out.Set("alpnProtocol", session_->alpnProtocol());
    out.Set("servername", session_->servername());
    out.Set("version", session_->version());
    out.Set("cipher", session_->cipher());
    out.Set("sessionReused", Napi::Boolean::New(env, session_->sessionReused()));
    std::vector<unsigned char> der = session_->PeerCertificateDer();
    if (der.empty()) {
      out.Set("peerCertificate", env.Undefined());
    } else {
      Napi::Uint8Array cert = Napi::Uint8Array::New(env, der.size());
      memcpy(cert.Data(), der.data(), der.size());
      out.Set("peerCertificate", cert);
    }
    return out;
  }

  // session() -> Uint8Array | undefined: the latest session a client received.
  Napi::Value Session(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Alive(env)) return env.Undefined();
    std::vector<unsigned char> bytes = session_->SessionBytes();
    if (bytes.empty()) return env.Undefined();
    Napi::Uint8Array out = Napi::Uint8Array::New(env, bytes.size());
    memcpy(out.Data(), bytes.data(), bytes.size());
    return out;
  }

  // destroy(): frees the SSL now rather than at garbage collection. Idempotent.
  Napi::Value Destroy(const Napi::CallbackInfo& info) {
    session_.reset();
    if (!pinnedInput_.IsEmpty()) pinnedInput_.Reset();
    return info.Env().Undefined();
  }

  std::shared_ptr<loch::tls::TlsSession> session_;
  Napi::ObjectReference pinnedInput_;

 public:
  // Shared with a ring that carries this session on a stream: destroy() drops only this owner.
  const std::shared_ptr<loch::tls::TlsSession>& session() const { return session_; }
};

// bindInfo(info: Int32Array of at least 4) : the per-thread slots feed() and encrypt() report in.
Napi::Value BindInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsTypedArray() ||
      info[0].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array ||
      info[0].As<Napi::Int32Array>().ElementLength() < kInfoLength) {
    ThrowType(env, "bindInfo(info: Int32Array(4))");
    return env.Undefined();
  }
  TlsEnv* tlsEnv = EnvOf(env);
  auto array = info[0].As<Napi::Int32Array>();
  tlsEnv->info = array.Data();  // moves an on-heap array's bytes off the heap: stable from now on
  tlsEnv->infoRef = Napi::Reference<Napi::Int32Array>::New(array, 1);
  return env.Undefined();
}

// openssl() -> the OpenSSL version this process runs (the node binary's).
Napi::Value OpensslVersion(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), OpenSSL_version(OPENSSL_VERSION));
}

// tls13TrafficKeys(suite: number, secret: Uint8Array) -> { key, iv, next } | undefined: the record
// layer's key schedule for one traffic secret (RFC 8446 7.2, 7.3), for the RFC 8448 vectors test
// (native/test/tls13-key-schedule.test.ts). Computes from the bytes given only; no connection's
// secret is reachable through it. A test hook, not API: left out of index.d.ts's NativeTls (the
// test declares its type), so no package builds on it.
Napi::Value Tls13TrafficKeys(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsTypedArray() ||
      info[1].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    ThrowType(env, "tls13TrafficKeys(suite: number, secret: Uint8Array)");
    return env.Undefined();
  }
  const auto* suite = loch::tls::Tls13Suite::Of(static_cast<uint16_t>(info[0].As<Napi::Number>().Uint32Value()));
  auto secret = info[1].As<Napi::Uint8Array>();
  if (suite == nullptr || secret.ByteLength() != suite->hashLen) return env.Undefined();
  unsigned char key[32];
  unsigned char iv[12];
  unsigned char next[loch::tls::kMaxSecret];
  Napi::Value result = env.Undefined();
  if (loch::tls::DeriveTrafficKeys(*suite, secret.Data(), key, iv, next)) {
    Napi::Object out = Napi::Object::New(env);
    out.Set("key", Napi::Buffer<unsigned char>::Copy(env, key, suite->keyLen));
    out.Set("iv", Napi::Buffer<unsigned char>::Copy(env, iv, sizeof iv));
    out.Set("next", Napi::Buffer<unsigned char>::Copy(env, next, suite->hashLen));
    result = out;
  }
  OPENSSL_cleanse(key, sizeof key);
  OPENSSL_cleanse(iv, sizeof iv);
  OPENSSL_cleanse(next, sizeof next);
  return result;
}

}  // namespace

std::shared_ptr<loch::tls::TlsSession> loch::tlsjs::SessionOf(Napi::Env env, Napi::Value value) {
  TlsEnv* tlsEnv = EnvOf(env);
  if (tlsEnv == nullptr || tlsEnv->sessionClass.IsEmpty() || !value.IsObject()) return nullptr;
  bool is = false;
  if (napi_instanceof(env, value, tlsEnv->sessionClass.Value(), &is) != napi_ok || !is) return nullptr;
  SessionWrap* wrap = SessionWrap::Unwrap(value.As<Napi::Object>());
  return wrap == nullptr ? nullptr : wrap->session();
}

void loch::tlsjs::Register(Napi::Env env, Napi::Object exports) {
  TlsEnv* tlsEnv = EnvOf(env);
  Napi::Function context = ContextWrap::Define(env);
  tlsEnv->contextClass = Napi::Persistent(context);
  Napi::Function session = SessionWrap::Define(env);
  tlsEnv->sessionClass = Napi::Persistent(session);
  exports.Set("TlsContext", context);
  exports.Set("TlsSession", session);
  exports.Set("bindInfo", Napi::Function::New(env, BindInfo, "bindInfo"));
  exports.Set("opensslVersion", Napi::Function::New(env, OpensslVersion, "opensslVersion"));
  exports.Set("tls13TrafficKeys", Napi::Function::New(env, Tls13TrafficKeys, "tls13TrafficKeys"));
  Napi::Object flags = Napi::Object::New(env);
  flags.Set("handshakeDone", Napi::Number::New(env, loch::tls::kHandshakeDone));
  flags.Set("handshakeJustDone", Napi::Number::New(env, loch::tls::kHandshakeJustDone));
  flags.Set("peerClosed", Napi::Number::New(env, loch::tls::kPeerClosed));
  flags.Set("morePlaintext", Napi::Number::New(env, loch::tls::kMorePlaintext));
  flags.Set("newSession", Napi::Number::New(env, loch::tls::kNewSession));
  flags.Set("failed", Napi::Number::New(env, loch::tls::kFailed));
  exports.Set("flags", flags);
  exports.Set("callCount", Napi::Function::New(env, [](const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), EnvOf(info.Env())->calls);
  }, "callCount"));
}

#ifndef LOCH_TLS_EMBEDDED
namespace {
Napi::Object Module(Napi::Env env, Napi::Object exports) {
  env.SetInstanceData<TlsEnv>(new TlsEnv());
  loch::tlsjs::Register(env, exports);
  return exports;
}
}  // namespace

NODE_API_MODULE(loch_tls, Module)
#endif

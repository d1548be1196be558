// AES-SIV (RFC 5297) over OpenSSL's EVP cipher of the node binary: deterministic authenticated
// encryption for the gateway's pseudonymization. See siv.cc.
#pragma once

#include <napi.h>

namespace loch {
// Adds `siv: { seal, open }` to exports.
void RegisterSiv(Napi::Env env, Napi::Object exports);
}  // namespace loch

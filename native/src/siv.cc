// AES-SIV (RFC 5297) through OpenSSL 3's EVP ("AES-128-SIV", "AES-192-SIV", "AES-256-SIV", the
// provider in the node binary): no mode of our own, only the glue. Synchronous and small: the
// inputs are field values of a few bytes to a few KiB, so a thread-pool hop would cost more than
// the cipher.
//
//   seal(key, aad[], plaintext) -> Uint8Array   V (the 16-byte synthetic IV) || ciphertext
//   open(key, aad[], sealed)    -> Uint8Array | null   (null: wrong key, AAD or tampered bytes)
//
// The key is the RFC's double-length key (32, 48 or 64 bytes: a CMAC half and a CTR half). Each
// AAD element is one component of the S2V vector, in order; RFC 5297's nonce-based use passes
// the nonce as the last component. OpenSSL's provider skips zero-length updates, so it cannot
// take an empty AAD component or an empty plaintext the way the RFC defines them: both are
// refused here with a TypeError instead of silently computing a different function.
#include "siv.h"

#include <openssl/evp.h>

#include <cstring>
#include <memory>
#include <vector>

namespace {

constexpr size_t kTagLength = 16;

// The fetched ciphers live for the process: fetching is a provider lookup, not worth per call.
EVP_CIPHER* CipherFor(size_t key_length) {
  static EVP_CIPHER* const k128 = EVP_CIPHER_fetch(nullptr, "AES-128-SIV", nullptr);
  static EVP_CIPHER* const k192 = EVP_CIPHER_fetch(nullptr, "AES-192-SIV", nullptr);
  static EVP_CIPHER* const k256 = EVP_CIPHER_fetch(nullptr, "AES-256-SIV", nullptr);
  switch (key_length) {
    case 32: return k128;
    case 48: return k192;
    case 64: return k256;
    default: return nullptr;
  }
}

struct Bytes {
  const unsigned char* data = nullptr;
  size_t length = 0;
};

bool AsBytes(const Napi::Value& v, Bytes* out) {
  if (!v.IsTypedArray()) return false;
  Napi::TypedArray t = v.As<Napi::TypedArray>();
  if (t.TypedArrayType() != napi_uint8_array) return false;
  Napi::Uint8Array u = v.As<Napi::Uint8Array>();
  out->data = u.Data();
  out->length = u.ByteLength();
  return true;
}

struct CtxFree {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};

// A key made once (`siv.key(bytes)`): contexts keyed for each direction, copied per call. The
// key schedule lives in OpenSSL's context memory, not on the JS heap.
struct KeyHandle {
  EVP_CIPHER_CTX* enc = nullptr;
  EVP_CIPHER_CTX* dec = nullptr;
  ~KeyHandle() {
    EVP_CIPHER_CTX_free(enc);
    EVP_CIPHER_CTX_free(dec);
  }
};

constexpr napi_type_tag kKeyTag = {0x6c6f6368'73697631ULL, 0x6b657968'616e646cULL};

// Validates (key, aad[], data) into `key`, `aad`, `data`; throws and returns false when they do
// not fit.
bool Arguments(const Napi::CallbackInfo& info, const char* usage, const KeyHandle** handle, Bytes* key,
               std::vector<Bytes>* aad, Bytes* data) {
  Napi::Env env = info.Env();
  *handle = nullptr;
  bool tagged = false;
  if (info.Length() == 3 && info[0].IsExternal() &&
      napi_check_object_type_tag(env, info[0], &kKeyTag, &tagged) == napi_ok && tagged) {
    *handle = info[0].As<Napi::External<KeyHandle>>().Data();
  }
  if (info.Length() != 3 || (*handle == nullptr && !AsBytes(info[0], key)) || !info[1].IsArray() ||
      !AsBytes(info[2], data)) {
    Napi::TypeError::New(env, usage).ThrowAsJavaScriptException();
    return false;
  }
  if (*handle == nullptr && CipherFor(key->length) == nullptr) {
    Napi::RangeError::New(env, "AES-SIV key must be 32, 48 or 64 bytes").ThrowAsJavaScriptException();
    return false;
  }
  Napi::Array list = info[1].As<Napi::Array>();
  uint32_t n = list.Length();
  aad->resize(n);
  for (uint32_t i = 0; i < n; i++) {
    if (!AsBytes(list.Get(i), &(*aad)[i])) {
      Napi::TypeError::New(env, usage).ThrowAsJavaScriptException();
      return false;
    }
    if ((*aad)[i].length == 0) {
      Napi::RangeError::New(env, "AES-SIV: an empty AAD component is not supported").ThrowAsJavaScriptException();
      return false;
    }
  }
  return true;
}

// Runs one SIV operation. Encrypting: `in` is the plaintext, `out` gets V || C. Decrypting: `in`
// is V || C, `out` gets the plaintext. Returns false when OpenSSL refuses (for decryption: the
// tag does not verify).
// `keyed` is a context already keyed for this direction (a KeyHandle's); copying it skips the
// key schedule and the CMAC fetch and setup that EVP_CipherInit_ex2 does (most of a call's cost
// for field-sized inputs). Without one, `key` keys a fresh context.
bool Run(bool encrypt, const EVP_CIPHER_CTX* keyed, const Bytes& key, const std::vector<Bytes>& aad,
         const unsigned char* in, size_t in_length, unsigned char* tag, unsigned char* out) {
  std::unique_ptr<EVP_CIPHER_CTX, CtxFree> ctx(EVP_CIPHER_CTX_new());
  if (!ctx) return false;
  if (keyed != nullptr) {
    if (EVP_CIPHER_CTX_copy(ctx.get(), keyed) != 1) return false;
  } else if (EVP_CipherInit_ex2(ctx.get(), CipherFor(key.length), key.data, nullptr, encrypt ? 1 : 0, nullptr) != 1) {
    return false;
  }
  if (!encrypt && EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_AEAD_SET_TAG, kTagLength, tag) != 1) return false;
  int n = 0;
  for (const Bytes& a : aad) {
    if (EVP_CipherUpdate(ctx.get(), nullptr, &n, a.data, static_cast<int>(a.length)) != 1) return false;
  }
  if (EVP_CipherUpdate(ctx.get(), out, &n, in, static_cast<int>(in_length)) != 1) return false;
  if (EVP_CipherFinal_ex(ctx.get(), out + n, &n) != 1) return false;
  if (encrypt && EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_AEAD_GET_TAG, kTagLength, tag) != 1) return false;
  return true;
}

Napi::Value Seal(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Bytes key, plaintext;
  std::vector<Bytes> aad;
  const KeyHandle* handle;
  if (!Arguments(info, "seal(key: Uint8Array | SivKey, aad: Uint8Array[], plaintext: Uint8Array)", &handle, &key, &aad,
                 &plaintext)) {
    return env.Undefined();
  }
  if (plaintext.length == 0) {
    Napi::RangeError::New(env, "AES-SIV: an empty plaintext is not supported").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (plaintext.length > 0x7fffffff - kTagLength) {
    Napi::RangeError::New(env, "AES-SIV: plaintext too large").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Uint8Array sealed = Napi::Uint8Array::New(env, kTagLength + plaintext.length);
  if (!Run(true, handle ? handle->enc : nullptr, key, aad, plaintext.data, plaintext.length, sealed.Data(), sealed.Data() + kTagLength)) {
    Napi::Error::New(env, "AES-SIV: OpenSSL refused to encrypt").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return sealed;
}

Napi::Value Open(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Bytes key, sealed;
  std::vector<Bytes> aad;
  const KeyHandle* handle;
  if (!Arguments(info, "open(key: Uint8Array | SivKey, aad: Uint8Array[], sealed: Uint8Array)", &handle, &key, &aad,
                 &sealed)) {
    return env.Undefined();
  }
  // Shorter than a tag plus one byte: nothing seal() can have produced.
  if (sealed.length <= kTagLength || sealed.length > 0x7fffffff) return env.Null();
  size_t n = sealed.length - kTagLength;
  // The tag is copied out: SET_TAG must not read memory the output may overlap.
  unsigned char tag[kTagLength];
  std::memcpy(tag, sealed.data, kTagLength);
  std::vector<unsigned char> plain(n);
  if (!Run(false, handle ? handle->dec : nullptr, key, aad, sealed.data + kTagLength, n, tag, plain.data())) {
    OPENSSL_cleanse(plain.data(), plain.size());
    return env.Null();
  }
  Napi::Uint8Array out = Napi::Uint8Array::New(env, n);
  std::memcpy(out.Data(), plain.data(), n);
  OPENSSL_cleanse(plain.data(), plain.size());
  return out;
}

// key(bytes) -> SivKey: an opaque handle seal/open take in place of the key bytes.
Napi::Value MakeKey(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Bytes key;
  if (info.Length() != 1 || !AsBytes(info[0], &key)) {
    Napi::TypeError::New(env, "key(key: Uint8Array)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  EVP_CIPHER* cipher = CipherFor(key.length);
  if (cipher == nullptr) {
    Napi::RangeError::New(env, "AES-SIV key must be 32, 48 or 64 bytes").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::unique_ptr<KeyHandle> handle(new KeyHandle());
  handle->enc = EVP_CIPHER_CTX_new();
  handle->dec = EVP_CIPHER_CTX_new();
  if (handle->enc == nullptr || handle->dec == nullptr ||
      EVP_CipherInit_ex2(handle->enc, cipher, key.data, nullptr, 1, nullptr) != 1 ||
      EVP_CipherInit_ex2(handle->dec, cipher, key.data, nullptr, 0, nullptr) != 1) {
    Napi::Error::New(env, "AES-SIV: OpenSSL refused the key").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::External<KeyHandle> out =
      Napi::External<KeyHandle>::New(env, handle.release(), [](Napi::Env, KeyHandle* h) { delete h; });
  napi_type_tag_object(env, out, &kKeyTag);
  return out;
}

}  // namespace

void loch::RegisterSiv(Napi::Env env, Napi::Object exports) {
  Napi::Object siv = Napi::Object::New(env);
  siv.Set("seal", Napi::Function::New(env, Seal, "seal"));
  siv.Set("open", Napi::Function::New(env, Open, "open"));
  siv.Set("key", Napi::Function::New(env, MakeKey, "key"));
  exports.Set("siv", siv);
}
